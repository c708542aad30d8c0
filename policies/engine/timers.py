"""Journey timers: stage ``after`` transitions and ``max_duration`` time-outs that came due, as journey changes.

Both a decision (its candidates come from the journey states at ``now``) and
an event (it applies to the states at its instant) run the timers first.
Timer changes are caused by ``timer:<from>-><to>@<due ms>`` or
``timer:max_duration@<ms>``: deterministic, so concurrent decisions
computing the same timer agree, and each change is chained on the previous
state's ``last_event_id`` (the store's compare-and-set precondition).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import msgspec

from arbiter.policies.effects import JourneyChange, JourneyChangeKind
from arbiter.policies.plan import EXIT, CompiledJourney, CompiledPolicy
from arbiter.policies.snapshot import JourneyState

__all__ = ["advance_timers", "journey_change", "truthy"]

_MAX_TIMER_STEPS: Final = 64  # bound on chained `after` transitions per journey per call

_Step = tuple[JourneyChangeKind, str, int, JourneyState]


def truthy(program: Any, activation: Mapping[str, object]) -> bool:
    """A condition holds only when it evaluates to ``true``; errors never hold (fail safe)."""
    if program is None:
        return True
    try:
        return program.evaluate(activation) is True
    except Exception:
        return False


def journey_change(  # noqa: PLR0917 - a private constructor, called positionally
    journey: str,
    kind: JourneyChangeKind,
    cause: str,
    at_ms: int,
    before: JourneyState | None,
    after: JourneyState,
) -> JourneyChange:
    """The change from ``before`` (``None``: no state) to ``after``, with its precondition."""
    return JourneyChange(
        journey=journey,
        kind=kind,
        cause_event_id=cause,
        at_ms=at_ms,
        from_stage=before.stage if before is not None and before.status == "active" else "",
        to_stage=after.stage if after.status == "active" else "",
        expect_last_event_id=None if before is None else before.last_event_id,
        state=after,
    )


def advance_timers(
    policy: CompiledPolicy,
    states: Mapping[str, JourneyState],
    activation: Mapping[str, object],
    now_ms: int,
) -> tuple[dict[str, JourneyState], list[JourneyChange]]:
    """Apply time-based stage transitions and max-duration time-outs due by ``now_ms``.

    Returns the states at ``now_ms`` and the changes (in journey id order,
    each chained on the previous state's ``last_event_id``). ``after``
    conditions are evaluated at ``now_ms`` (not at the due instant).
    """
    pending = [jid for jid, state in states.items() if _may_be_due(policy, jid, state, now_ms)]
    result = dict(states)
    if not pending:
        return result, []
    changes: list[JourneyChange] = []
    for jid in sorted(pending):
        before = states[jid]
        for kind, cause, at, after in _advance_one(
            policy.journeys[jid], before, activation, now_ms
        ):
            changes.append(journey_change(jid, kind, cause, at, before, after))
            before = after
        result[jid] = before
    return result, changes


def _may_be_due(policy: CompiledPolicy, jid: str, state: JourneyState, now_ms: int) -> bool:
    """Cheap pre-check: nothing is due before the stage's first timer or the journey's max duration."""
    if state.status != "active":
        return False
    journey = policy.journeys.get(jid)
    if journey is None:
        return False
    stage = journey.stages.get(state.stage)
    first = stage.first_timer_ms if stage is not None else None
    timer_due = first is not None and state.stage_entered_ms + first <= now_ms
    expired = (
        journey.max_duration_ms is not None and state.entered_ms + journey.max_duration_ms <= now_ms
    )
    return timer_due or expired


def _advance_one(
    journey: CompiledJourney, state: JourneyState, activation: Mapping[str, object], now_ms: int
) -> list[_Step]:
    """Timer steps of one active journey state up to ``now_ms``: (kind, cause, at, new state)."""
    steps: list[_Step] = []
    expiry = (
        state.entered_ms + journey.max_duration_ms if journey.max_duration_ms is not None else None
    )
    horizon = now_ms if expiry is None else min(now_ms, expiry)
    for _ in range(_MAX_TIMER_STEPS):
        stage = journey.stages.get(state.stage)
        if stage is None:
            break
        best = None
        for tr in stage.transitions:
            if tr.after_ms is None:
                continue
            due = state.stage_entered_ms + tr.after_ms
            if due <= horizon and (best is None or due < best[0]) and truthy(tr.when, activation):
                best = (due, tr)
        if best is None:
            break
        due, tr = best
        cause = f"timer:{state.stage}->{tr.to}@{due}"
        if tr.to == EXIT:
            state = msgspec.structs.replace(
                state,
                status="completed",
                exited_ms=due,
                exit_reason="completed",
                last_event_id=cause,
            )
            steps.append(("complete", cause, due, state))
            return steps
        state = msgspec.structs.replace(
            state, stage=tr.to, stage_entered_ms=due, last_event_id=cause
        )
        steps.append(("transition", cause, due, state))
    if expiry is not None and now_ms >= expiry:
        cause = f"timer:max_duration@{expiry}"
        state = msgspec.structs.replace(
            state,
            status="exited",
            exited_ms=expiry,
            exit_reason="max_duration",
            last_event_id=cause,
        )
        steps.append(("timeout", cause, expiry, state))
    return steps
