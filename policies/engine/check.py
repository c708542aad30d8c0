"""``Check``: the engine's filters for one action -- may it go to this customer on this channel now?

A Check is a decision restricted to the action's channel and placement, with
the trace on; the action is allowed when it was not filtered (losing
arbitration to another action does not matter here). A recording Check
commits one grant against the action's caps, idempotently per request.
"""

from __future__ import annotations

from arbiter.policies.decision import (
    CandidateTrace,
    CheckQuery,
    ChosenAction,
    Decision,
    Outcome,
    ReasonCode,
    Request,
)
from arbiter.policies.effects import DecisionCommit, Grant
from arbiter.policies.plan import CompiledAction, CompiledPolicy
from arbiter.policies.snapshot import CustomerSnapshot

from .pipeline import decide

__all__ = ["check", "precheck"]

_R = ReasonCode


def precheck(policy: CompiledPolicy, query: CheckQuery, now_ms: int) -> Decision | None:
    """The answer that needs no customer state: the action is not offered on the asked
    channel (``CHANNEL_NOT_ALLOWED``); ``None`` when the state must be read."""
    action = policy.actions[query.action]
    if action.channel_id == query.channel:
        return None
    trace = CandidateTrace(
        action=action.id,
        journey=action.journey,
        channel=action.channel_id,
        outcome=Outcome.FILTERED,
        reason=_R.CHANNEL_NOT_ALLOWED,
        detail=f"action `{action.id}` is offered on `{action.channel_id}`",
    )
    return _answer(policy, query, now_ms=now_ms, did=query.decision_id, trace=trace, chosen=())


def check(
    policy: CompiledPolicy,
    query: CheckQuery,
    snapshot: CustomerSnapshot,
    now_ms: int,
    *,
    paused_journeys: frozenset[str] = frozenset(),
    paused_actions: frozenset[str] = frozenset(),
) -> tuple[Decision, DecisionCommit]:
    """The one-action answer (allowed = it has the action; its one trace entry says why not)
    and the commit that records the send (committed only when ``query.record``)."""
    action = policy.actions[query.action]
    request_id = query.record_key or query.request_id
    request = Request(
        customer_id=query.customer_id,
        placement=min(action.placements) if action.placements else "",
        channels=(action.channel_id,),
        context=query.context,
        limit=1,
        explain=True,
        request_id=request_id,
    )
    evaluated, _ = decide(
        policy,
        request,
        snapshot,
        now_ms,
        paused_journeys=paused_journeys,
        paused_actions=paused_actions,
    )
    trace = evaluated.candidate(action.id) or _not_a_candidate(action, snapshot)
    did = query.decision_id or evaluated.decision_id
    chosen: tuple[ChosenAction, ...] = ()
    if trace.outcome is not Outcome.FILTERED:
        chosen = (
            ChosenAction(
                action=action.id,
                journey=trace.journey,
                stage=trace.stage,
                channel=action.channel_id,
                variant=trace.variant,
                tracking_id=f"{did}.{action.id}",
                score=trace.score or 0.0,
                tags=action.tags,
            ),
        )
    answer = _answer(
        policy, query, now_ms=now_ms, did=did, trace=trace, chosen=chosen, evaluated=evaluated
    )
    grants = tuple(
        Grant(
            tracking_id=a.tracking_id,
            action=a.action,
            channel=a.channel,
            journey=a.journey,
            stage=a.stage,
            caps=action.caps,
        )
        for a in chosen
    )
    commit = DecisionCommit(
        customer_id=query.customer_id,
        request_id=request_id,
        decision_id=did,
        now_ms=now_ms,
        policy_version=policy.policy_version,
        grants=grants,
    )
    return answer, commit


def _not_a_candidate(action: CompiledAction, snapshot: CustomerSnapshot) -> CandidateTrace:
    """The action was not a candidate: its journey stage is not the customer's (or unknown)."""
    unknown = "journeys" in snapshot.unavailable
    return CandidateTrace(
        action=action.id,
        journey=action.journey,
        channel=action.channel_id,
        outcome=Outcome.FILTERED,
        reason=_R.STATE_UNAVAILABLE if unknown else _R.NOT_IN_STAGE,
        detail="journey state unavailable"
        if unknown
        else f"the customer is not in a stage of journey `{action.journey}` offering it",
    )


def _answer(
    policy: CompiledPolicy,
    query: CheckQuery,
    *,
    now_ms: int,
    did: str,
    trace: CandidateTrace,
    chosen: tuple[ChosenAction, ...],
    evaluated: Decision | None = None,
) -> Decision:
    return Decision(
        decision_id=did,
        request_id=query.request_id,
        customer_id=query.customer_id,
        policy_version=policy.policy_version,
        decided_ms=now_ms,
        actions=chosen,
        degradations=evaluated.degradations if evaluated is not None else (),
        candidates=(trace,),
        not_before_ms=trace.not_before_ms,
    )
