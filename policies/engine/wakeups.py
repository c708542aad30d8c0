"""Wake-ups: when a journey state's next timed step comes due, so an outbound worker can fire it.

Timers are applied lazily (:mod:`.timers`): a stage's ``after`` transition
or a journey's ``max_duration`` takes effect the next time anything reads
the customer's state. An outbound journey ("email after 1 hour") needs
someone to read it at that hour: the service attaches to every journey
change the instant its new state next comes due (:func:`with_wakeups`), and
the store records that wake-up with the change, atomically
(``state/redis_scripts/commit.lua`` / ``event.lua``). ``arbiter worker``
claims due wake-ups and decides then (``server/outbound/``).

A wake-up is a lower bound, never a promise that something happens: an
``after`` transition whose ``when`` is false at its due instant does not
fire (and is re-checked at the next read or wake-up); a state changed since
by an event simply makes the wake-up find nothing due.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import msgspec

from arbiter.policies.effects import DecisionCommit, EventEffects, JourneyChange
from arbiter.policies.plan import CompiledJourney, CompiledPolicy
from arbiter.policies.snapshot import JourneyState

__all__ = ["next_wake_ms", "with_wakeups"]

_T = TypeVar("_T", DecisionCommit, EventEffects)


def next_wake_ms(journey: CompiledJourney, state: JourneyState) -> int | None:
    """The earliest instant at which ``state`` has a timed step due: its stage's shortest
    ``after`` or the journey's ``max_duration``; ``None`` when not active or nothing is timed."""
    if state.status != "active":
        return None
    stage = journey.stages.get(state.stage)
    due: list[int] = []
    if stage is not None and stage.first_timer_ms is not None:
        due.append(state.stage_entered_ms + stage.first_timer_ms)
    if journey.max_duration_ms is not None:
        due.append(state.entered_ms + journey.max_duration_ms)
    return min(due) if due else None


def _changes(policy: CompiledPolicy, changes: Sequence[JourneyChange]) -> tuple[JourneyChange, ...]:
    out = []
    for change in changes:
        journey = policy.journeys.get(change.journey)
        wake = None if journey is None else next_wake_ms(journey, change.state)
        out.append(
            change if wake == change.wake_ms else msgspec.structs.replace(change, wake_ms=wake)
        )
    return tuple(out)


def with_wakeups(policy: CompiledPolicy, effects: _T) -> _T:
    """``effects`` (a decision commit or an event's effects) with each journey change's
    ``wake_ms`` set from ``policy`` (unchanged when there are no journey changes)."""
    if not effects.journeys:
        return effects
    return msgspec.structs.replace(effects, journeys=_changes(policy, effects.journeys))
