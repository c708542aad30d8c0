"""Client settings shared by the sync and asyncio clients: deadlines, retry policy, channel options."""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["DEFAULT_CHANNEL_OPTIONS", "USER_AGENT", "RetryPolicy", "Timeouts"]

USER_AGENT = "arbiter-client-python/0.1.0"

DEFAULT_CHANNEL_OPTIONS: tuple[tuple[str, int | str], ...] = (
    # Keepalive pings only while calls are in flight, at most once a minute:
    # gRPC servers by default answer more frequent or idle pings with GOAWAY
    # ("too_many_pings"). Detects dead connections behind load balancers.
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 0),
    # Reconnect quickly after a server restart. gRPC's default backoff grows
    # to 120 s, during which every call fails fast with UNAVAILABLE (and
    # decide() would answer with fallbacks).
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 5_000),
    ("grpc.primary_user_agent", USER_AGENT),
)
"""Channel arguments the clients use unless overridden (see ``channel_options``)."""


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Default overall deadline per method, in seconds, retries included."""

    decide: float = 0.05
    check: float = 0.05
    track: float = 1.0
    update_profile: float = 1.0

    def __post_init__(self) -> None:
        for name in ("decide", "check", "track", "update_profile"):
            if not getattr(self, name) > 0:
                raise ValueError(f"Timeouts.{name} must be > 0")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries of UNAVAILABLE calls, always with the same request, within the call's deadline.

    Attempt ``n`` (from 1) failing with UNAVAILABLE is followed by a pause
    drawn uniformly from ``[b/2, b]`` where ``b = min(max_backoff,
    initial_backoff * multiplier ** (n - 1))``, unless that pause would leave
    less than ``min_attempt_time`` before the deadline: then the call gives up.
    No other status code is retried.
    """

    max_attempts: int = 3
    initial_backoff: float = 0.005
    max_backoff: float = 0.1
    multiplier: float = 2.0
    min_attempt_time: float = 0.002

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("RetryPolicy.max_attempts must be >= 1")
        if self.initial_backoff < 0 or self.max_backoff < 0 or self.multiplier < 1:
            raise ValueError("RetryPolicy backoffs must be >= 0 and multiplier >= 1")

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """The pause after failed attempt ``attempt`` (1-based), jittered."""
        ceiling = min(self.max_backoff, self.initial_backoff * self.multiplier ** (attempt - 1))
        draw = (rng or random).random()
        return ceiling * (0.5 + draw / 2)
