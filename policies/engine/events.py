"""Events: ``apply_event(policy, snapshot, event, now)`` -> the journey, counter and feedback effects to commit.

One event is processed in a fixed order, each step seeing the previous
one's result, so the outcome depends only on the inputs:

1. **Timers** (:func:`.timers.advance_timers`): stage ``after`` transitions that
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
:class:`~arbiter.policies.effects.JourneyChange` ``cause_event_id``); timer changes
are caused by ``timer:<what>@<due ms>``, deterministic so that concurrent
decisions computing the same timer agree.

Entry is idempotent twice over: the store drops a repeated ``event_id``
before anything applies, and the state itself remembers the event that
entered it (``entry_event_id``) and the dedup keys (``dedup``).
"""

from __future__ import annotations

from typing import Any

import msgspec

from arbiter.policies.activation import build_activation, event_activation
from arbiter.policies.effects import (
    CounterIncrement,
    EventEffects,
    FeedbackKind,
    FeedbackRecord,
    JourneyChange,
    JourneyChangeKind,
    apply_counter,
)
from arbiter.policies.plan import EXIT, CompiledJourney, CompiledPolicy, CompiledTrigger
from arbiter.policies.snapshot import HOUR_MS, CustomerSnapshot, JourneyState

from .timers import advance_timers, journey_change, truthy

__all__ = ["Event", "StateUnavailableError", "apply_event"]


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
    base = build_activation(policy, msgspec.structs.replace(snapshot, events=counted), {}, at)
    states, changes = advance_timers(policy, snapshot.journeys, base, at)
    step = _Step(policy, event, at, base, states, changes)
    step.exits()
    step.transitions()
    step.entries(paused_journeys)
    return EventEffects(
        customer_id=snapshot.customer_id,
        event_id=event.event_id,
        event_type=event.type,
        event_ms=event.time_ms,
        now_ms=now_ms,
        counters=(increment,),
        journeys=tuple(changes),
        feedback=_feedback(event, at),
    )


class _Step:
    """The journey part of one event: exits, then transitions, then entries, each seeing the last."""

    def __init__(  # noqa: PLR0917 - one private call site
        self,
        policy: CompiledPolicy,
        event: Event,
        at: int,
        base: dict[str, object],
        states: dict[str, JourneyState],
        changes: list[JourneyChange],
    ) -> None:
        self.policy = policy
        self.event = event
        self.eid = event.event_id
        self.at = at
        self.states = states
        self.changes = changes
        contract = policy.events.get(event.type)
        self.activation = event_activation(
            base,
            policy,
            event_type=event.type,
            event_id=event.event_id,
            time_ms=at,
            properties=event.properties,
            version=event.version or (contract.version if contract is not None else 1),
        )

    def record(self, jid: str, kind: JourneyChangeKind, new: JourneyState) -> None:
        self.changes.append(journey_change(jid, kind, self.eid, self.at, self.states.get(jid), new))
        self.states[jid] = new

    def exits(self) -> None:
        """Every exit on this event type whose condition holds leaves its journey."""
        for ex in self.policy.exits_by_event.get(self.event.type, ()):
            state = self.states.get(ex.journey)
            if state is None or state.status != "active" or not truthy(ex.when, self.activation):
                continue
            new = msgspec.structs.replace(
                state,
                status="exited",
                exited_ms=self.at,
                exit_reason=ex.reason,
                last_event_id=self.eid,
            )
            self.record(ex.journey, "exit", new)

    def transitions(self) -> None:
        """The first matching ``on`` transition of the current stage, per journey."""
        moved: set[str] = set()
        for tr in self.policy.transitions_by_event.get(self.event.type, ()):
            state = self.states.get(tr.journey)
            if (
                tr.journey in moved
                or state is None
                or state.status != "active"
                or state.stage != tr.stage
                or not truthy(tr.when, self.activation)
            ):
                continue
            moved.add(tr.journey)
            if tr.to == EXIT:
                new = msgspec.structs.replace(
                    state,
                    status="completed",
                    exited_ms=self.at,
                    exit_reason="completed",
                    last_event_id=self.eid,
                )
                self.record(tr.journey, "complete", new)
            else:
                new = msgspec.structs.replace(
                    state, stage=tr.to, stage_entered_ms=self.at, last_event_id=self.eid
                )
                self.record(tr.journey, "transition", new)

    def entries(self, paused: frozenset[str]) -> None:
        """The first matching trigger per journey enters it (see the module docstring, step 4)."""
        entered: set[str] = set()
        for trigger in self.policy.triggers_by_event.get(self.event.type, ()):
            jid = trigger.journey
            journey = self.policy.journeys.get(jid)
            if jid in entered or journey is None or journey.status != "active" or jid in paused:
                continue
            state = self.states.get(jid)
            if not self._may_enter(journey, state) or not truthy(trigger.when, self.activation):
                continue
            dedup = self._dedup(trigger, state)
            if dedup is None:
                continue
            entered.add(jid)
            new = JourneyState(
                status="active",
                stage=journey.entry_stage,
                entered_ms=self.at,
                stage_entered_ms=self.at,
                entry_event_id=self.eid,
                last_event_id=self.eid,
                entries=(state.entries + 1) if state is not None else 1,
                dedup=dedup,
            )
            self.record(jid, "enter" if state is None else "reenter", new)

    def _may_enter(self, journey: CompiledJourney, state: JourneyState | None) -> bool:
        """Not active in it, not entered by this very event, and the re-entry rule allows it."""
        if state is None:
            return True
        if state.status == "active" or state.entry_event_id == self.eid:
            return False
        rule = journey.reentry
        return not (
            rule.kind == "never"
            or (rule.kind == "after" and self.at - state.entered_ms < rule.after_ms)
        )

    def _dedup(self, trigger: CompiledTrigger, state: JourneyState | None) -> dict[str, int] | None:
        """The dedup keys after entering, or ``None`` when the key entered within its window."""
        dedup = dict(state.dedup) if state is not None else {}
        if trigger.dedup_key is None:
            return dedup
        try:
            key = str(trigger.dedup_key.program.evaluate(self.activation))
        except Exception:
            return None  # fail safe: an entry that cannot be de-duplicated does not happen
        window = trigger.dedup_window_ms
        seen = dedup.get(key)
        if seen is not None and (window is None or self.at - seen < window):
            return None
        if window is not None:
            dedup = {k: v for k, v in dedup.items() if self.at - v < window}
        dedup[key] = self.at
        return dedup


def _feedback(event: Event, at: int) -> tuple[FeedbackRecord, ...]:
    """The feedback record of a feedback event about a decision (impression, click, ...)."""
    if event.feedback is None or not event.decision_id:
        return ()
    prefix = event.decision_id + "."
    action = event.tracking_id[len(prefix) :] if event.tracking_id.startswith(prefix) else ""
    record = FeedbackRecord(
        kind=event.feedback,
        decision_id=event.decision_id,
        tracking_id=event.tracking_id,
        action=action,
        event_id=event.event_id,
        at_ms=at,
    )
    return (record,)
