"""Journey state machine: ``apply_event(policy, snapshot, event, now)`` -> the effects to commit.

One event is processed in a fixed order, each step seeing the previous
one's result, so the outcome depends only on the inputs:

1. **Timers** (:func:`advance_timers`): stage ``after`` transitions that
   came due and ``max_duration`` time-outs, up to the event's instant.
2. **Exits**: an ``exits`` trigger on the event type (and its ``when``)
   leaves the journey (``status: exited``).
3. **Transitions**: in each journey the customer is active in, the first
   ``on: <event type>`` transition of the current stage whose ``when``
   holds moves to its ``to`` stage (``to: exit`` completes the journey).
   One transition per journey per event.
4. **Entries**: the first trigger of each journey matching the event (type
   and ``when``) enters it at ``entry_stage``, unless the customer is active
   in it, the re-entry rule forbids it (``never``; ``after <d>`` counted
   from the previous entry), this event already entered it, or its dedup
   key entered it within the dedup window. Paused or retired journeys
   (and operator-paused ones) enroll nobody; a journey *holdout* does not
   prevent entry -- held-out customers must be in the journey to be
   measured; they just get none of its actions.
5. **Counters** and **feedback** records.

Expressions see ``now`` = the event's instant (clamped to ``now_ms``, so a
producer's clock skew cannot schedule the future), the ``event.*``
variables, and counters *including* this event (``events.count("purchase")
== 1`` is "first purchase"). An expression that fails to evaluate never
enters, exits or moves anyone (fail safe: no state change).

Every change records its cause (``last_event_id``, ``entry_event_id``, the
:class:`~policies.effects.JourneyChange` ``cause_event_id``); timer changes
are caused by ``timer:<what>@<due ms>``, deterministic so that concurrent
decisions computing the same timer agree.

Entry is idempotent twice over: the store drops a repeated ``event_id``
before anything applies, and the state itself remembers the event that
entered it (``entry_event_id``) and the dedup keys (``dedup``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import msgspec

from .compiled import (
    EXIT,
    CompiledJourney,
    CompiledPolicy,
    build_activation,
    event_activation,
)
from .effects import (
    CounterIncrement,
    EventEffects,
    FeedbackKind,
    FeedbackRecord,
    JourneyChange,
    JourneyChangeKind,
    apply_counter,
)
from .snapshot import HOUR_MS, CustomerSnapshot, JourneyState

__all__ = ["Event", "StateUnavailableError", "advance_timers", "apply_event"]

_MAX_TIMER_STEPS: Final = 64  # bound on chained `after` transitions per journey per call


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """One customer event (proto ``Event``), validated against its contract by the server.

    ``time_ms`` is when it happened. Feedback events name the decision (and
    the tracking id ``<decision_id>.<action_id>``) of the action they are
    about.
    """

    event_id: str
    type: str
    time_ms: int
    properties: dict[str, Any] = {}
    version: int = 0
    decision_id: str = ""
    tracking_id: str = ""
    feedback: FeedbackKind | None = None


class StateUnavailableError(Exception):
    """The snapshot lacks journey state: an event cannot be applied without it (nothing is written)."""


def _truthy(program: Any, activation: Mapping[str, object]) -> bool:
    """A condition holds only when it evaluates to ``true``; errors never hold (fail safe)."""
    if program is None:
        return True
    try:
        return program.evaluate(activation) is True
    except Exception:
        return False


def _change(  # noqa: PLR0917 - a private constructor, called positionally in three places
    journey: str,
    kind: JourneyChangeKind,
    cause: str,
    at_ms: int,
    before: JourneyState | None,
    after: JourneyState,
) -> JourneyChange:
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


def _advance_one(
    journey: CompiledJourney, state: JourneyState, activation: Mapping[str, object], now_ms: int
) -> list[tuple[JourneyChangeKind, str, int, JourneyState]]:
    """Timer steps of one active journey state up to ``now_ms``: (kind, cause, at, new state)."""
    steps: list[tuple[JourneyChangeKind, str, int, JourneyState]] = []
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
            if due <= horizon and (best is None or due < best[0]) and _truthy(tr.when, activation):
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


_DUE: dict[int, tuple[CompiledPolicy, dict[tuple[str, str], int]]] = {}


def _next_due(policy: CompiledPolicy) -> dict[tuple[str, str], int]:
    """(journey, stage) -> the shortest ``after`` of the stage's timed transitions (cached)."""
    entry = _DUE.get(id(policy))
    if entry is not None and entry[0] is policy:
        return entry[1]
    table: dict[tuple[str, str], int] = {}
    for journey in policy.journeys.values():
        for stage in journey.stages.values():
            afters = [t.after_ms for t in stage.transitions if t.after_ms is not None]
            if afters:
                table[journey.id, stage.id] = min(afters)
    if len(_DUE) >= 8:
        _DUE.pop(next(iter(_DUE)))
    _DUE[id(policy)] = (policy, table)
    return table


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
    due = _next_due(policy)
    pending = []
    for jid, state in states.items():
        if state.status != "active":
            continue
        # Cheap pre-check: nothing can be due before the stage's earliest `after`
        # or the journey's max duration.
        earliest = due.get((jid, state.stage))
        journey = policy.journeys.get(jid)
        if journey is None:
            continue
        if (earliest is None or state.stage_entered_ms + earliest > now_ms) and (
            journey.max_duration_ms is None or state.entered_ms + journey.max_duration_ms > now_ms
        ):
            continue
        pending.append(jid)
    if not pending:
        return dict(states), []
    result = dict(states)
    changes: list[JourneyChange] = []
    for jid in sorted(pending):
        journey = policy.journeys[jid]
        state = states[jid]
        before = state
        for kind, cause, at, after in _advance_one(journey, state, activation, now_ms):
            changes.append(_change(jid, kind, cause, at, before, after))
            before = after
        result[jid] = before
    return result, changes


def apply_event(
    policy: CompiledPolicy,
    snapshot: CustomerSnapshot,
    event: Event,
    now_ms: int,
    *,
    paused_journeys: frozenset[str] = frozenset(),
    bucket_ms: int = HOUR_MS,
) -> EventEffects:
    """What ``event`` changes for the customer (see the module docstring). Pure and deterministic.

    Raises :class:`StateUnavailableError` when the snapshot could not read
    journey state (applying the event would lose entries).
    """
    if "journeys" in snapshot.unavailable:
        raise StateUnavailableError("journey state unavailable: the event cannot be applied")
    at = min(event.time_ms, now_ms)
    existing = snapshot.events.get(event.type)
    # An existing counter keeps its bucket width; ``bucket_ms`` applies to new ones.
    width = existing.bucket_ms if existing is not None else bucket_ms
    increment = CounterIncrement(
        event_type=event.type, at_ms=at, bucket_ms=width, bucket_start_ms=at - at % width
    )
    # Expressions see the event counted.
    counted = dict(snapshot.events)
    counted[event.type] = apply_counter(existing, increment)
    view = msgspec.structs.replace(snapshot, events=counted)
    base = build_activation(policy, view, {}, at)
    activation = event_activation(
        base,
        policy,
        event_type=event.type,
        event_id=event.event_id,
        time_ms=at,
        properties=event.properties,
        version=event.version or _current_version(policy, event.type),
    )

    states, changes = advance_timers(policy, snapshot.journeys, base, at)
    eid = event.event_id

    def record(jid: str, kind: JourneyChangeKind, new: JourneyState) -> None:
        changes.append(_change(jid, kind, eid, at, states.get(jid), new))
        states[jid] = new

    # exits
    for ex in policy.exits_by_event.get(event.type, ()):
        state = states.get(ex.journey)
        if state is None or state.status != "active" or not _truthy(ex.when, activation):
            continue
        record(
            ex.journey,
            "exit",
            msgspec.structs.replace(
                state, status="exited", exited_ms=at, exit_reason=ex.reason, last_event_id=eid
            ),
        )

    # transitions: the first matching one per journey
    moved: set[str] = set()
    for tr in policy.transitions_by_event.get(event.type, ()):
        state = states.get(tr.journey)
        if (
            tr.journey in moved
            or state is None
            or state.status != "active"
            or state.stage != tr.stage
            or not _truthy(tr.when, activation)
        ):
            continue
        moved.add(tr.journey)
        if tr.to == EXIT:
            new = msgspec.structs.replace(
                state, status="completed", exited_ms=at, exit_reason="completed", last_event_id=eid
            )
            record(tr.journey, "complete", new)
        else:
            new = msgspec.structs.replace(
                state, stage=tr.to, stage_entered_ms=at, last_event_id=eid
            )
            record(tr.journey, "transition", new)

    # entries: the first matching trigger per journey
    entered: set[str] = set()
    for trigger in policy.triggers_by_event.get(event.type, ()):
        jid = trigger.journey
        journey = policy.journeys.get(jid)
        if jid in entered or journey is None:
            continue
        if journey.status != "active" or jid in paused_journeys:
            continue
        state = states.get(jid)
        if state is not None:
            if state.status == "active" or state.entry_event_id == eid:
                continue
            rule = journey.reentry
            if rule.kind == "never" or (
                rule.kind == "after" and at - state.entered_ms < rule.after_ms
            ):
                continue
        if not _truthy(trigger.when, activation):
            continue
        dedup = dict(state.dedup) if state is not None else {}
        if trigger.dedup_key is not None:
            try:
                key = str(trigger.dedup_key.program.evaluate(activation))
            except Exception:
                continue  # fail safe: an entry that cannot be de-duplicated does not happen
            window = trigger.dedup_window_ms
            seen = dedup.get(key)
            if seen is not None and (window is None or at - seen < window):
                continue
            if window is not None:
                dedup = {k: v for k, v in dedup.items() if at - v < window}
            dedup[key] = at
        entered.add(jid)
        new = JourneyState(
            status="active",
            stage=journey.entry_stage,
            entered_ms=at,
            stage_entered_ms=at,
            entry_event_id=eid,
            last_event_id=eid,
            entries=(state.entries + 1) if state is not None else 1,
            dedup=dedup,
        )
        record(jid, "enter" if state is None else "reenter", new)

    feedback: tuple[FeedbackRecord, ...] = ()
    if event.feedback is not None and event.decision_id:
        action = ""
        prefix = event.decision_id + "."
        if event.tracking_id.startswith(prefix):
            action = event.tracking_id[len(prefix) :]
        feedback = (
            FeedbackRecord(
                kind=event.feedback,
                decision_id=event.decision_id,
                tracking_id=event.tracking_id,
                action=action,
                event_id=eid,
                at_ms=at,
            ),
        )
    return EventEffects(
        customer_id=snapshot.customer_id,
        event_id=eid,
        event_type=event.type,
        event_ms=event.time_ms,
        now_ms=now_ms,
        counters=(increment,),
        journeys=tuple(changes),
        feedback=feedback,
    )


def _current_version(policy: CompiledPolicy, event_type: str) -> int:
    contract = policy.events.get(event_type)
    return contract.version if contract is not None else 1
