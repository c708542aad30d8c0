"""A small circuit breaker (closed / open / half-open) so that a dead Redis is not hammered.

States and transitions::

    closed --(failure_threshold consecutive failures)--> open
    open --(reset_timeout_s elapsed; the next call is the probe)--> half-open
    half-open --(probe succeeds)--> closed          (backoff reset)
    half-open --(probe fails)--> open               (reset timeout doubled, up to max_reset_timeout_s)

While open, :meth:`CircuitBreaker.allow` answers ``False`` at once, so a
caller fails fast instead of queueing behind timeouts. In half-open exactly
one call (the probe) goes through; the others keep failing fast until it
reports. A probe that neither succeeds nor fails (cancelled by its caller)
calls :meth:`release` and the next caller probes again.

Only *availability* failures count (timeouts, connection errors, a server
that says it is loading / busy / down). An answer the server gave -- even
an error -- is a success: the store is reachable.

Defaults (``RedisStore``): 5 consecutive failures open it, the first probe
after 0.25 s, then 0.5 s, 1 s, capped at 1 s -- so recovery after the server
returns takes at most about one second plus one call.

Not thread-safe: one breaker per event loop (as the store's client is).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final, Literal

__all__ = ["BreakerState", "CircuitBreaker"]

BreakerState = Literal["closed", "open", "half_open"]

DEFAULT_FAILURE_THRESHOLD: Final = 5
DEFAULT_RESET_TIMEOUT_S: Final = 0.25
DEFAULT_MAX_RESET_TIMEOUT_S: Final = 1.0


class CircuitBreaker:
    """Consecutive-failure circuit breaker with exponential probe backoff (see the module docstring)."""

    def __init__(
        self,
        *,
        failure_threshold: int = DEFAULT_FAILURE_THRESHOLD,
        reset_timeout_s: float = DEFAULT_RESET_TIMEOUT_S,
        max_reset_timeout_s: float = DEFAULT_MAX_RESET_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be >= 1")
        if not 0 < reset_timeout_s <= max_reset_timeout_s:
            raise ValueError("need 0 < reset_timeout_s <= max_reset_timeout_s")
        self.failure_threshold = failure_threshold
        self.reset_timeout_s = reset_timeout_s
        self.max_reset_timeout_s = max_reset_timeout_s
        self._clock = clock
        self._state: BreakerState = "closed"
        self._failures = 0
        self._timeout = reset_timeout_s
        self._open_until = 0.0
        self._probing = False
        # Counters for metrics and tests.
        self.opened = 0
        self.rejected = 0

    @property
    def state(self) -> BreakerState:
        """The state now (an open breaker whose timeout has passed reports ``half_open``)."""
        if self._state == "open" and self._clock() >= self._open_until:
            return "half_open"
        return self._state

    def allow(self) -> bool:
        """Whether a call may go to the server now (in half-open: only the single probe)."""
        if self._state == "closed":
            return True
        if self._state == "open":
            if self._clock() < self._open_until:
                self.rejected += 1
                return False
            self._state = "half_open"
            self._probing = False
        if self._probing:
            self.rejected += 1
            return False
        self._probing = True
        return True

    def record_success(self) -> None:
        self._state = "closed"
        self._failures = 0
        self._probing = False
        self._timeout = self.reset_timeout_s

    def record_failure(self) -> None:
        if self._state == "half_open":
            self._timeout = min(self._timeout * 2, self.max_reset_timeout_s)
            self._trip()
            return
        if self._state == "open":
            return  # a call admitted before the breaker opened; already counted
        self._failures += 1
        if self._failures >= self.failure_threshold:
            self._trip()

    def release(self) -> None:
        """A call admitted by :meth:`allow` ended without a verdict (e.g. cancelled)."""
        if self._state == "half_open":
            self._probing = False

    def _trip(self) -> None:
        self._state = "open"
        self._probing = False
        self._failures = 0
        self._open_until = self._clock() + self._timeout
        self.opened += 1
