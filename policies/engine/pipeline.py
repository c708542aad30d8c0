"""The decision pipeline: ``decide(policy, request, snapshot, now)`` -> a decision and its commit.

A pure function (no clock, no I/O) that runs one stage per module:

1. **Timers** (:mod:`.timers`): journey ``after`` transitions and
   ``max_duration`` time-outs due by ``now``, so a customer whose stage timed
   out sees the next stage's actions; the changes ride along in the commit.
2. **Candidates** (:mod:`.candidates`): always-on actions and the actions of
   the customer's active journey stages, for the placement and channels.
3. **Filters** (:mod:`.filters`), first failure wins: validity -> journey
   status / kill switch -> consent -> suppression -> quiet hours ->
   eligibility -> caps; then **holdouts** (:mod:`.holdouts`).
4. **Scoring and arbitration** (:mod:`.arbitration`).
5. **Result** (:mod:`.result`): a :class:`~arbiter.policies.decision.Decision`
   (with the explain trace when asked) and the
   :class:`~arbiter.policies.effects.DecisionCommit` the store must apply.

Fail safe: consent or caps that cannot be read deny; an expression reading
a part of the snapshot that could not be read is not evaluated and fails
toward not sending; an eligibility error is ``INELIGIBLE``, a suppression
error ``SUPPRESSED``, a value/score error ``ERROR``; each such case is also a
degradation on the decision. What the store then could not do (read at all,
commit) is folded in afterwards by :func:`.settle.settle`.

Performance: everything per policy is precomputed in the plan
(:mod:`arbiter.policies.plan`); per decision one activation is built and
reused for every expression, every suppression rule and every bucket is
computed at most once (:class:`.facts.Facts`), and with ``explain`` off no
per-candidate trace objects are built.
"""

from __future__ import annotations

from collections.abc import Mapping

from arbiter.policies.activation import build_activation
from arbiter.policies.contracts import JourneysView
from arbiter.policies.decision import CandidateTrace, Decision, ReasonCode, Request
from arbiter.policies.effects import DecisionCommit, JourneyChange
from arbiter.policies.plan import CompiledPolicy
from arbiter.policies.snapshot import CustomerSnapshot, JourneyState

from .arbitration import Notes, rank, score_candidates, select
from .candidates import Passing, candidate_index, gather
from .facts import Facts
from .filters import filter_candidates
from .holdouts import in_control_group, mark_held
from .result import chosen_action, decision_id, degradations, grant, trace_of
from .timers import advance_timers

__all__ = ["decide"]

_R = ReasonCode


def decide(
    policy: CompiledPolicy,
    request: Request,
    snapshot: CustomerSnapshot,
    now_ms: int,
    *,
    paused_journeys: frozenset[str] = frozenset(),
    paused_actions: frozenset[str] = frozenset(),
) -> tuple[Decision, DecisionCommit]:
    """Decide for one request (see the module docstring). Pure and deterministic.

    ``now_ms`` is the decision instant (epoch ms). ``paused_journeys`` is the
    operators' kill switch (AdminService ``PauseJourney``), on top of the
    statuses the policy declares; ``paused_actions`` are actions a tripped
    volume guard paused (``volume_guards``, counted by the server). Returns the decision and what the store
    must commit (nothing is written here; a dry run simply drops the commit).
    """
    customer_id = snapshot.customer_id
    did = decision_id(policy, customer_id, request.request_id, now_ms)
    activation = build_activation(
        policy,
        snapshot,
        request.context,
        now_ms,
        placement=request.placement,
        channels=request.channels or policy.channel_ids,
    )
    facts = Facts(policy, snapshot, activation, now_ms)
    states: Mapping[str, JourneyState] = snapshot.journeys
    journey_changes: tuple[JourneyChange, ...] = ()
    if snapshot.unavailable:
        for part in sorted(snapshot.unavailable & policy.needs.parts):
            facts.degrade(_R.STATE_UNAVAILABLE, f"{part} unavailable")
    if snapshot.unavailable or (policy.has_timers and states):
        states, journey_changes = _journey_states(policy, snapshot, activation, now_ms)

    index = candidate_index(policy, request.placement, request.channels)
    trace: dict[str, CandidateTrace] | None = {} if request.explain else None
    candidates = gather(index, states, ordered=request.explain)
    passing = filter_candidates(facts, candidates, paused_journeys, trace, paused_actions)
    control = policy.holdout is not None and in_control_group(policy, customer_id)
    notes: Notes | None = {} if request.explain else None
    chosen: list[Passing] = []
    held_out: list[Passing] = []
    if passing:
        any_held = mark_held(facts, passing, control)
        passing = score_candidates(facts, passing, request.propensities, trace)
        chosen, held_out = _arbitrate(facts, passing, request.limit, notes, any_held=any_held)
    actions = tuple(chosen_action(c, customer_id, did) for c in chosen)
    decision = Decision(
        decision_id=did,
        request_id=request.request_id,
        customer_id=customer_id,
        policy_version=policy.policy_version,
        decided_ms=now_ms,
        actions=actions,
        held_out=tuple(chosen_action(c, customer_id, did) for c in held_out),
        control_group=control,
        consent=facts.consent_summary(index.purposes, index.transactional_purposes),
        not_before_ms=facts.not_before,
        degradations=degradations(facts) if facts.degradations else (),
        candidates=()
        if trace is None or notes is None
        else trace_of(
            trace,
            candidates=candidates,
            passing=passing,
            chosen=chosen,
            held_out=held_out,
            notes=notes,
            customer_id=customer_id,
        ),
    )
    commit = DecisionCommit(
        customer_id=customer_id,
        request_id=request.request_id,
        decision_id=did,
        now_ms=now_ms,
        policy_version=policy.policy_version,
        grants=tuple(grant(a, c.action) for a, c in zip(actions, chosen, strict=True)),
        journeys=journey_changes,
    )
    return decision, commit


def _journey_states(
    policy: CompiledPolicy,
    snapshot: CustomerSnapshot,
    activation: dict[str, object],
    now_ms: int,
) -> tuple[Mapping[str, JourneyState], tuple[JourneyChange, ...]]:
    """The journey states at ``now`` (timers applied) and the changes that got them there."""
    states: Mapping[str, JourneyState] = snapshot.journeys
    if "journeys" in snapshot.unavailable:
        return {}, ()
    if not (policy.has_timers and states):
        return states, ()
    advanced, changes = advance_timers(policy, states, activation, now_ms)
    if not changes:
        return states, ()
    # Expressions see the same journey states the candidates come from.
    activation["journeys"] = JourneysView(advanced)
    return advanced, tuple(changes)


def _arbitrate(
    facts: Facts, passing: list[Passing], requested: int, notes: Notes | None, *, any_held: bool
) -> tuple[list[Passing], list[Passing]]:
    """(chosen, held out): arbitration among the live candidates, and -- when some were
    held out -- a second pass with them included, for what they would have received."""
    requested = requested if requested > 0 else 1
    limit = requested
    max_actions = facts.policy.arbitration.max_actions
    if max_actions is not None and max_actions < limit:
        limit = max_actions
    full_reason = _R.LIMIT_REACHED if limit < requested else _R.LOST_ARBITRATION
    rank(passing)
    # A held candidate whose score failed is gone: check again (only when some were held).
    any_held = any_held and any(c.held is not None for c in passing)
    live = [c for c in passing if c.held is None] if any_held else passing
    chosen = select(facts, live, limit, full_reason=full_reason, notes=notes)
    if not any_held:
        return chosen, []
    would = select(facts, passing, limit, full_reason=full_reason, notes=None)
    return chosen, [c for c in would if c.held is not None]
