"""Volume guards (message-storm breakers): count the fleet's grants per guard, trip, alert or pause.

A policy's ``volume_guards`` (``docs/policy-language.md``) each bound the
grants of one action, journey or channel per fixed window across every
replica. The request path only adds to a per-guard count in memory
(:meth:`VolumeGuards.granted`: a dictionary lookup per granted action); a
background task flushes the counts every ``flush_s`` to the shared counter
(``arbiter.state.open_volume_counter``: Redis on a Redis deployment, the
process on the embedded store) and reads the fleet's totals back. Every
replica therefore sees a storm within one flush interval of the grant that
crossed the limit and trips on its own -- no replica has to tell the others.

On a trip (the window's total above ``max_grants``), once per guard and window:

- ``alert``: ``arbiter_volume_guard_trips_total`` and one WARNING line;
- ``pause``: the same, and the guard's actions are paused (candidates
  filtered with reason ``PAUSED``, detail "paused by a tripped volume guard")
  for one window from the trip, through a :class:`PauseControl`.

The pause is held by :class:`WindowPause` (in this process, lifted after the
window): every replica trips from the same fleet total, so the pause is
fleet-wide in effect, and it lifts by itself -- if the storm goes on, the
guard trips again in the next window. The server uses :class:`FleetPause`:
the same hold, and the operators' kill switch too
(``arbiter.server.governance``: ``PauseAction`` with ``until`` = the end of
the window, actor ``volume-guard@<replica>``), so the trip is visible in
``GetPolicyStatus``, persisted, reaches replicas (and ``arbiter worker``
processes) that have no guard of their own, and lifts by itself at the end
of the window. ``arbiter admin resume --action`` ends the kill switch early;
the local hold of a replica that tripped still lasts to the window's end.

The paused actions in force are part of each decision log record
(``paused.actions``), so a replay reproduces a paused decision.

A process flushes early once its own grants since the last flush reach
10 % of a guard's ``max_grants``, and trips on its own, without waiting for
the flush, as soon as the fleet total it last read plus its own grants
since is above the limit (a lower bound of the fleet's total). Grants the
*other* replicas made since their last flush are not refused: a guard
bounds a storm to ``max_grants`` plus, per replica, about 10 % of it or
``flush_s`` (100 ms) of its grants, whichever is less; it is not an exact
limiter (caps are).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

from arbiter.policies import CompiledPolicy, CompiledVolumeGuard
from arbiter.server.metrics import METRICS
from arbiter.state import StoreUnavailable, VolumeCount, VolumeCounter

if TYPE_CHECKING:
    from arbiter.server.governance import Governance

__all__ = ["DEFAULT_FLUSH_S", "FleetPause", "PauseControl", "VolumeGuards", "WindowPause"]

_log = logging.getLogger("arbiter.volume_guard")

DEFAULT_FLUSH_S: Final = 0.1
_WARN_EVERY_S: Final = 10.0


class PauseControl(Protocol):
    """What ``on_trip: pause`` calls: pause ``actions`` until ``until_ms`` saying ``reason``,
    and which actions are paused now."""

    def pause(self, guard_id: str, actions: frozenset[str], until_ms: int, reason: str) -> None: ...

    def paused(self, now_ms: int) -> frozenset[str]: ...


@dataclass(frozen=True, slots=True)
class _Pause:
    actions: frozenset[str]
    until_ms: int
    reason: str


class WindowPause:
    """Pauses held in this process until they expire (see the module docstring)."""

    def __init__(self) -> None:
        self._pauses: dict[str, _Pause] = {}

    def pause(self, guard_id: str, actions: frozenset[str], until_ms: int, reason: str) -> None:
        self._pauses[guard_id] = _Pause(actions, until_ms, reason)

    def paused(self, now_ms: int) -> frozenset[str]:
        for guard_id, held in list(self._pauses.items()):
            if held.until_ms <= now_ms:
                del self._pauses[guard_id]
                METRICS.guard_paused.labels(guard_id).set(0)
                _log.warning("volume guard %s: pause lifted (%s)", guard_id, held.reason)
        return frozenset(a for held in self._pauses.values() for a in held.actions)


class FleetPause(WindowPause):
    """:class:`WindowPause` plus the operators' kill switch for each paused action (see the
    module docstring). The kill switch is recorded in the background: a store that cannot
    take it leaves the local hold in force and logs why."""

    def __init__(self, governance: Governance) -> None:
        super().__init__()
        self.governance = governance
        self._recording: set[asyncio.Task[None]] = set()

    def pause(self, guard_id: str, actions: frozenset[str], until_ms: int, reason: str) -> None:
        super().pause(guard_id, actions, until_ms, reason)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (unit use): the local hold is all there is
            return
        for action in sorted(actions):
            task = loop.create_task(self._kill_switch(guard_id, action, until_ms, reason))
            self._recording.add(task)
            task.add_done_callback(self._recording.discard)

    async def _kill_switch(self, guard_id: str, action: str, until_ms: int, reason: str) -> None:
        try:
            await self.governance.pause(
                "action",
                action,
                until_ms=until_ms,
                reason=f"volume guard {guard_id}: {reason}",
                actor=f"volume-guard@{self.governance.replica}",
            )
        except Exception as exc:  # held locally for the window anyway
            _log.warning(
                "volume guard %s: the kill switch for %s was not recorded (%s); "
                "paused in this process until the window ends",
                guard_id,
                action,
                exc,
            )

    async def settle(self) -> None:
        """Wait for the kill switches being recorded (tests, shutdown)."""
        if self._recording:
            await asyncio.gather(*self._recording, return_exceptions=True)


class VolumeGuards:
    """The server's volume guards (see the module docstring); :meth:`start` in the event loop."""

    def __init__(
        self,
        counter: VolumeCounter,
        *,
        flush_s: float = DEFAULT_FLUSH_S,
        pauses: PauseControl | None = None,
        clock_ms: Callable[[], int] | None = None,
    ) -> None:
        self.counter = counter
        self.flush_s = flush_s
        self.pauses: PauseControl = pauses if pauses is not None else WindowPause()
        self._clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self._policy: CompiledPolicy | None = None
        self._by_action: dict[str, tuple[str, ...]] = {}
        self._guards: dict[str, CompiledVolumeGuard] = {}
        self._flush_at: dict[str, int] = {}  # local grants that flush at once: 10 % of the limit
        self._pending: dict[str, int] = {}
        self._seen: dict[str, tuple[int, int]] = {}  # guard id -> (window, fleet total) last read
        self._tripped: dict[str, int] = {}  # guard id -> the window index it last tripped in
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._failures = 0  # consecutive failed flushes
        self._unlogged = 0
        self._warned_at = 0.0
        # Read on the request path without a lock: replaced whole, never mutated.
        self.paused: frozenset[str] = frozenset()

    # ------------------------------------------------------------------ the request path

    def granted(self, policy: CompiledPolicy, actions: Iterable[str]) -> None:
        """Count committed grants of ``actions`` (under ``policy``) toward their guards."""
        if policy is not self._policy:
            self._bind(policy)
        by_action = self._by_action
        if not by_action:
            return
        pending, seen = self._pending, self._seen
        for action in actions:
            for guard_id in by_action.get(action, ()):
                n = pending.get(guard_id, 0) + 1
                pending[guard_id] = n
                if n >= self._flush_at[guard_id]:
                    self._wake.set()
                last = seen.get(guard_id)
                if last is None or last[1] + n > self._guards[guard_id].max_grants:
                    self._over(guard_id, last or (-1, 0), n)

    def _over(self, guard_id: str, last: tuple[int, int], pending: int) -> None:
        """The fleet's last total plus this process's grants since is above the limit: the
        fleet's total is at least that, so trip now (without waiting for the flush) when it
        is still the same window, and flush at once so the other replicas learn it."""
        self._wake.set()
        guard = self._guards[guard_id]
        if last[1] + pending <= guard.max_grants:  # nothing read yet: flush soon
            return
        now_ms = self._clock_ms()
        window = now_ms // guard.window_ms
        if last[0] in (window, -1) and self._tripped.get(guard_id) != window:
            self._tripped[guard_id] = window
            self._trip(guard, last[1] + pending, now_ms)
            self.paused = self.pauses.paused(now_ms)

    def _bind(self, policy: CompiledPolicy) -> None:
        by_action: dict[str, list[str]] = {}
        self._guards = {g.id: g for g in policy.volume_guards}
        self._flush_at = {g.id: max(1, g.max_grants // 10) for g in policy.volume_guards}
        for guard in policy.volume_guards:
            METRICS.guard_limit.labels(guard.id).set(guard.max_grants)
            for action in guard.actions:
                by_action.setdefault(action, []).append(guard.id)
        self._by_action = {a: tuple(g) for a, g in by_action.items()}
        self._policy = policy

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="arbiter-volume-guards")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await self.flush()
        await self.counter.close()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_s)
            self._wake.clear()
            try:
                await self.flush()
            except Exception:  # never let the guard stop counting
                _log.exception("volume guards: flush failed")

    # ------------------------------------------------------------------ the flush

    async def flush(self) -> None:
        """Add what was granted since the last flush, read the fleet totals, trip, expire pauses."""
        policy = self._policy
        now_ms = self._clock_ms()
        if policy is not None and policy.volume_guards:
            guards = policy.volume_guards
            taken = {g.id: self._pending.pop(g.id, 0) for g in guards}
            counts: list[VolumeCount] = [
                (policy.id, g.id, now_ms // g.window_ms, taken[g.id], g.window_ms) for g in guards
            ]
            try:
                totals = await self.counter.add(counts)
            except StoreUnavailable as exc:
                for guard_id, n in taken.items():  # counted at the next flush
                    if n:
                        self._pending[guard_id] = self._pending.get(guard_id, 0) + n
                METRICS.guard_errors.inc()
                self._failed(exc)
                totals = []
            else:
                if self._failures:
                    _log.warning(
                        "volume guards: counting again after %d failed flushes", self._failures
                    )
                    self._failures = self._unlogged = 0
            for guard, (_, _, window, _, _), total in zip(guards, counts, totals, strict=False):
                METRICS.guard_grants.labels(guard.id).set(total)
                self._seen[guard.id] = (window, total)
                if total > guard.max_grants and self._tripped.get(guard.id) != window:
                    self._tripped[guard.id] = window
                    self._trip(guard, total, now_ms)
        self.paused = self.pauses.paused(now_ms)

    def _failed(self, exc: Exception) -> None:
        """A failed flush, logged once when the outage starts and then at most every
        ``_WARN_EVERY_S`` with how many were left out (a flush runs every 100 ms)."""
        self._failures += 1
        now = time.monotonic()
        if self._failures == 1 or now - self._warned_at >= _WARN_EVERY_S:
            more = (
                f" ({self._unlogged} more failures since the last line)" if self._unlogged else ""
            )
            _log.warning("volume guards: cannot count grants: %s%s", exc, more)
            self._warned_at, self._unlogged = now, 0
        else:
            self._unlogged += 1

    def _trip(self, guard: CompiledVolumeGuard, total: int, now_ms: int) -> None:
        METRICS.guard_trips.labels(guard.id, guard.on_trip).inc()
        window = _duration(guard.window_ms)
        what = f"{guard.scope} `{guard.target}`"
        reason = (
            f"volume guard `{guard.id}` tripped: {total} grants of {what} in this {window} "
            f"window across the fleet, above max_grants {guard.max_grants}"
        )
        if guard.on_trip != "pause":
            _log.warning("%s (on_trip: alert)", reason)
            return
        until_ms = now_ms + guard.window_ms
        self.pauses.pause(guard.id, guard.actions, until_ms, reason)
        METRICS.guard_paused.labels(guard.id).set(1)
        _log.warning(
            "%s; pausing %s for %s (actions: %s)",
            reason,
            what,
            window,
            ", ".join(sorted(guard.actions)),
        )


def _duration(ms: int) -> str:
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"
