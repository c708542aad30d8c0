"""The adapter interface: deliver one entry, say how it went; never raise for a provider's answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from arbiter.server.outbound.redis_ops import Entry

__all__ = ["Adapter", "Result"]


@dataclass(frozen=True, slots=True)
class Result:
    """``delivered``; ``retry`` (a transient failure: timeout, 5xx, 429 -- ``retry_after_s`` when
    the provider said when); ``rejected`` (the provider refused this payload: retried up to
    ``max_attempts`` like any failure, then dead-lettered with ``error``)."""

    outcome: Literal["delivered", "retry", "rejected"]
    error: str = ""
    retry_after_s: float | None = None


class Adapter(Protocol):
    async def deliver(self, entry: Entry) -> Result:
        """Send ``entry`` once, with ``entry.key`` as the provider's idempotency key."""
        ...

    async def close(self) -> None: ...
