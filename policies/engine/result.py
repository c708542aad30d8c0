"""The result of a decision: chosen actions (variant, payload, tracking id), grants, the explain trace, and the ids."""

from __future__ import annotations

import hashlib
from typing import Any

from arbiter.policies import bucketing
from arbiter.policies.decision import CandidateTrace, ChosenAction, Degradation, Outcome, ReasonCode
from arbiter.policies.effects import Grant
from arbiter.policies.plan import CompiledAction, CompiledPolicy

from .arbitration import Notes
from .candidates import Passing
from .facts import Facts

__all__ = ["chosen_action", "decision_id", "degradations", "grant", "trace_of", "variant"]

_R = ReasonCode


def decision_id(policy: CompiledPolicy, customer_id: str, request_id: str, now_ms: int) -> str:
    """Deterministic decision id: the first 32 hex digits of
    SHA-256(``digest \\n customer_id \\n request_id \\n now_ms``).

    Unique as long as request ids are (the server requires one per call).
    """
    text = f"{policy.digest}\n{customer_id}\n{request_id}\n{now_ms}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def variant(action: CompiledAction, customer_id: str) -> tuple[str, dict[str, Any]]:
    """(variant id, payload) the customer gets of ``action`` (``""`` and the base payload without variants)."""
    if not action.variants:
        return "", action.payload
    index = bucketing.pick_weighted(
        action.variant_weights, bucketing.variant_bucket(action.id, customer_id)
    )
    if index is None:
        return "", action.payload
    chosen = action.variants[index]
    return chosen.id, chosen.payload


def chosen_action(c: Passing, customer_id: str, did: str) -> ChosenAction:
    """The chosen action of a decision ``did`` (tracking id ``<decision id>.<action id>``)."""
    action = c.action
    variant_id, payload = variant(action, customer_id)
    return ChosenAction(
        action=action.id,
        journey=action.journey,
        stage=c.stage,
        channel=action.channel_id,
        variant=variant_id,
        payload=payload,
        tracking_id=f"{did}.{action.id}",
        score=c.score,
        tags=action.tags,
        fallback=action.fallback,
    )


def grant(chosen: ChosenAction, action: CompiledAction) -> Grant:
    """What the store counts for a chosen action: one increment per cap counter it binds."""
    return Grant(
        tracking_id=chosen.tracking_id,
        action=chosen.action,
        channel=chosen.channel,
        journey=chosen.journey,
        stage=chosen.stage,
        caps=action.caps,
    )


def degradations(facts: Facts) -> tuple[Degradation, ...]:
    """The decision's degradations, sorted (their discovery order depends on the trace being on)."""
    found = facts.degradations
    return tuple(sorted(found, key=_degradation_key)) if found else ()


def _degradation_key(d: Degradation) -> tuple[str, str]:
    return (d.reason.value, d.detail)


def trace_of(
    trace: dict[str, CandidateTrace],
    *,
    candidates: list[tuple[CompiledAction, str]],
    passing: list[Passing],
    chosen: list[Passing],
    held_out: list[Passing],
    notes: Notes,
    customer_id: str,
) -> tuple[CandidateTrace, ...]:
    """The explain trace in candidate order: the filtered ones are already in ``trace``;
    the ones that passed get their outcome here (selected, held out, or why not)."""
    chosen_ids = {c.action.id for c in chosen}
    would_ids = {c.action.id for c in held_out}
    for c in passing:
        action = c.action
        if action.id in chosen_ids:
            outcome, reason = Outcome.SELECTED, _R.SELECTED
            detail = "fallback: nothing else qualified" if action.fallback else ""
        elif c.held is not None:
            outcome, reason = Outcome.FILTERED, c.held
            detail = ("would have been selected" if action.id in would_ids else "held out") + (
                " (global control group)" if c.held is _R.CONTROL_GROUP else ""
            )
        else:
            outcome = Outcome.NOT_SELECTED
            reason, detail = notes.get(action.id, (_R.LOST_ARBITRATION, "outranked"))
        trace[action.id] = CandidateTrace(
            action=action.id,
            journey=action.journey,
            stage=c.stage,
            channel=action.channel_id,
            outcome=outcome,
            reason=reason,
            detail=detail,
            score=c.score,
            variant=variant(action, customer_id)[0],
        )
    return tuple(trace[action.id] for action, _ in candidates)
