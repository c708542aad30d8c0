"""Admission control: a bounded number of calls in progress per process, and fast refusals past it.

Without it, overload is processor sharing: every call in flight gets a
sliver of the one event loop, all of them slow down together, and past
saturation *every* call misses its deadline (and the store calls time out,
which looked like a Redis outage). With it:

- At most ``limit`` calls run at once; later ones wait in FIFO order.
- A call is refused at once -- before any work, with
  :class:`Overloaded` (``RESOURCE_EXHAUSTED``) -- when its deadline cannot
  be met given the queue ahead of it: the expected wait is the queue
  length times the recent time a call holds its slot, divided by
  ``limit`` (Little's law), and the call still needs that service time
  itself, with a margin. Calls without a deadline are refused only when
  the queue is full (``max_queue``); a call with one queues as long as it
  can make its deadline (a burst of a thousand calls with a generous
  deadline waits its turn).
- A waiting call whose remaining time no longer covers a service time is
  refused when that point comes, rather than timing out late.
- Calls also queue *before* they reach the handler: in the event loop's
  backlog, when it runs behind. A lag monitor (a callback every 10 ms that
  measures how late it runs) tells that state; while the loop is more than
  5 ms behind, a call arriving with too little time left for two service
  times is refused at once too, instead of being answered fail-safe at the cost
  of a full call. With the loop on time, a call with a tiny deadline gets
  the fail-safe answer as before.

The service time is an exponentially weighted moving average of how long
admitted calls held their slot (a store round trip included), so the
estimate follows the load. Everything happens on the event loop; not
thread-safe.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Final

__all__ = ["Admission", "Overloaded"]

_ALPHA: Final = 0.05  # weight of the newest call in the service-time average
_INITIAL_SERVICE_S: Final = 0.002
# An admitted call must have this many service times left after its expected wait: the
# average hides variance, and an admitted call must finish inside its deadline.
_MARGIN: Final = 2.0
_LAG_PERIOD_S: Final = 0.010
_LAG_OVERLOADED_S: Final = 0.005


class Overloaded(Exception):
    """The call was refused by admission control; ``reason`` says why (``queue full``, ``deadline``)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class Admission:
    """``limit`` concurrent calls, a bounded FIFO queue, deadline-aware refusals (module docstring)."""

    def __init__(
        self,
        limit: int,
        *,
        max_queue: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        self.limit = limit
        self.max_queue = 16 * limit if max_queue is None else max_queue
        self.active = 0
        self.service_s = _INITIAL_SERVICE_S
        self._clock = clock
        self._waiters: deque[asyncio.Future[None]] = deque()
        self.lag_s = 0.0  # how late the event loop ran the last monitor tick
        self._monitor: asyncio.TimerHandle | None = None
        self._monitor_loop: asyncio.AbstractEventLoop | None = None

    @property
    def queued(self) -> int:
        return len(self._waiters)

    @property
    def overloaded(self) -> bool:
        """Every slot busy, calls waiting, or the event loop running behind."""
        return bool(self._waiters) or self.active >= self.limit or self.lag_s >= _LAG_OVERLOADED_S

    def expected_wait_s(self, position: int) -> float:
        """The expected wait of a call with ``position`` calls queued ahead of it."""
        return (position + 1) * self.service_s / self.limit

    async def enter(self, remaining_s: float | None) -> float:
        """Take a slot (waiting in line if all are busy); the instant it was taken. Raises
        :class:`Overloaded` at once when ``remaining_s`` (None: no deadline) cannot be met."""
        loop = asyncio.get_running_loop()
        if loop is not self._monitor_loop:  # first call on this loop: start watching it
            self._monitor_loop = loop
            self._watch_lag(loop, 0.0)
        if self.active < self.limit and not self._waiters:
            if remaining_s is None or self.lag_s < _LAG_OVERLOADED_S:
                self.active += 1
                return self._clock()
            if remaining_s < _MARGIN * self.service_s:
                raise Overloaded(
                    "deadline",
                    f"server overloaded: {remaining_s * 1000:.0f} ms left with the server "
                    f"{self.lag_s * 1000:.0f} ms behind",
                )
            self.active += 1
            return self._clock()
        position = len(self._waiters)
        if remaining_s is None and position >= self.max_queue:
            raise Overloaded("queue_full", f"server overloaded: {position} calls waiting")
        wait = self.expected_wait_s(position)
        if remaining_s is not None and remaining_s < wait + _MARGIN * self.service_s:
            raise Overloaded(
                "deadline",
                f"server overloaded: the deadline ({remaining_s * 1000:.0f} ms) cannot be met "
                f"behind {position} waiting calls (~{wait * 1000:.0f} ms)",
            )
        waiter = loop.create_future()
        self._waiters.append(waiter)
        try:
            if remaining_s is None:
                await waiter
            else:
                async with asyncio.timeout(remaining_s - _MARGIN * self.service_s):
                    await waiter
        except TimeoutError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # handed over as the timeout fired: pass it on
            raise Overloaded(
                "deadline", "server overloaded: the deadline passed while waiting in line"
            ) from None
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._release()  # the slot was handed over just as the call was cancelled
            raise
        finally:
            if not waiter.done():
                waiter.cancel()
            if waiter in self._waiters:
                self._waiters.remove(waiter)
        return self._clock()

    def leave(self, entered: float, *, sample: bool = True) -> None:
        """Give the slot back (to the first live waiter, if any); ``entered`` from :meth:`enter`.

        ``sample``: the call did its full work, so its slot time counts toward the service
        time (a refused or failed call's short stay would make the queue look faster)."""
        if sample:
            held = self._clock() - entered
            self.service_s += _ALPHA * (held - self.service_s)
        self._release()

    def close(self) -> None:
        """Stop the lag monitor."""
        if self._monitor is not None:
            self._monitor.cancel()
        self._monitor = self._monitor_loop = None

    def _watch_lag(self, loop: asyncio.AbstractEventLoop, due: float) -> None:
        if loop is not self._monitor_loop:
            return  # closed, or watching another loop now
        now = loop.time()
        self.lag_s = max(0.0, now - due) if due else 0.0
        self._monitor = loop.call_at(
            now + _LAG_PERIOD_S, self._watch_lag, loop, now + _LAG_PERIOD_S
        )

    def _release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes to it: ``active`` is unchanged
                return
        self.active -= 1
