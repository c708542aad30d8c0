"""Deferral: when a candidate refused only by time -- quiet hours, a full cap -- may go, so an outbound sender can schedule it (``not_before``).

A candidate filtered by quiet hours or by a cap the snapshot shows full is
*deferred*, not just refused, when the time at which both filters would let
it pass is known: the end of the quiet period (in the customer's local
time, across overlapping and consecutive windows and daylight-saving
changes) and the instant the cap's window frees a slot (the oldest grant in
the window that must leave, plus the window). The two are combined: a cap
that frees a slot at 03:00 on a channel quiet until 08:00 defers to 08:00,
and a quiet period ending when the cap is still full defers further.

``not_before`` is a lower bound, not a promise: the candidate's other
filters (consent, suppression, eligibility...) are evaluated again when the
caller asks then. Never deferred: a channel that is always quiet, a cap with
``limit: 0``, caps that could not be read, and a cap filled by actions chosen
in the same decision (there is no time at which it frees).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from arbiter.policies.effects import CapIncrement
from arbiter.policies.plan import CompiledAction, CompiledChannel

if TYPE_CHECKING:
    from .facts import Facts

__all__ = ["not_before"]

_MINUTE_MS: Final = 60_000
_DAY_MINUTES: Final = 1440
# Jumps tried before a channel counts as always quiet / a cap and quiet hours as never both open.
_MAX_STEPS: Final = 64


def not_before(facts: Facts, action: CompiledAction) -> int | None:
    """The earliest instant at which neither quiet hours nor the action's caps refuse it, or
    ``None`` when no such instant is known (see the module docstring)."""
    now = facts.now_ms
    at = now
    quiet = bool(action.channel.quiet_hours) and not action.transactional
    caps = action.caps if "caps" not in facts.unavailable else ()
    if "caps" in facts.unavailable and action.caps:
        return None
    for _ in range(_MAX_STEPS):
        moved = False
        if quiet:
            end = quiet_end(facts, action.channel, at)
            if end is None:
                return None
            moved = end > at
            at = end
        for binding in caps:
            free = slot_free(facts, binding, at)
            if free is None:
                return None
            if free > at:
                at, moved = free, True
        if not moved:
            return at if at > now else None
    return None


def slot_free(facts: Facts, binding: CapIncrement, at: int) -> int | None:
    """The earliest instant ``>= at`` at which cap ``binding`` counts fewer than ``limit``
    grants in its window (grants only leave the window as time passes)."""
    if binding.limit <= 0:
        return None
    grants = facts.snapshot.caps.get(binding.key, [])
    inside = sorted(g for g in grants if g > at - binding.window_ms)
    excess = len(inside) - binding.limit
    if excess < 0:
        return at
    # A grant at g counts while now < g + window; the (excess + 1) oldest must leave.
    return inside[excess] + binding.window_ms


def quiet_end(facts: Facts, channel: CompiledChannel, at: int) -> int | None:
    """The first instant ``>= at`` at which ``channel`` is not quiet in the customer's local
    time, or ``None`` when it stays quiet (every day, all day)."""
    t = at
    for _ in range(_MAX_STEPS):
        minute, weekday = facts.local_time_at(t)
        containing = [w for w in channel.quiet_hours if w.contains(minute, weekday)]
        if not containing:
            return t
        # Jump to the nearest end of a window that contains this minute, at a minute boundary.
        step = min((w.end_minute - minute) % _DAY_MINUTES or _DAY_MINUTES for w in containing)
        target = (minute + step) % _DAY_MINUTES
        before, t = t, t - t % _MINUTE_MS + step * _MINUTE_MS
        # A daylight-saving change during the jump moves local time: land on the local minute
        # when it exists (in a skipped hour the jump's instant stands).
        landed, _ = facts.local_time_at(t)
        drift = (target - landed + _DAY_MINUTES // 2) % _DAY_MINUTES - _DAY_MINUTES // 2
        corrected = t + drift * _MINUTE_MS
        if drift and corrected > before and facts.local_time_at(corrected)[0] == target:
            t = corrected
    return None
