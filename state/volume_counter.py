"""Fleet-wide grant counters of volume guards (message-storm breakers): add, read the total.

A guard counts grants per fixed window (``window_index = now_ms // window_ms``)
across every replica. Each replica adds what it granted since its last flush
and reads the fleet's total back in the same call, so every replica sees a
storm within one flush interval and trips on its own.

- :class:`MemoryVolumeCounter` -- the embedded store's: one process is the fleet.
- :class:`RedisVolumeCounter` -- ``INCRBY`` + ``PEXPIRE`` per guard window in one
  pipeline, keys ``<prefix>:{vg:<policy id>:<guard id>}:<window index>``
  (one Cluster hash tag per guard, so a guard's key lives on one node),
  expiring two windows after they start. Counts are plain integers a human
  can ``GET``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Final, Protocol

from .redis_keys import DEFAULT_PREFIX
from .redis_url import redis_client
from .store import StoreUnavailable

__all__ = ["MemoryVolumeCounter", "VolumeCount", "VolumeCounter", "open_volume_counter"]

_TIMEOUT_S: Final = 1.0

# (policy id, guard id, window index, grants to add, window ms)
VolumeCount = tuple[str, str, int, int, int]


class VolumeCounter(Protocol):
    """Where guards count: ``add`` returns the fleet total of each window after adding."""

    name: str

    async def add(self, counts: Sequence[VolumeCount]) -> list[int]: ...

    async def close(self) -> None: ...


class MemoryVolumeCounter:
    """In-process counts (the embedded store: this process is the whole fleet)."""

    name = "memory"

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str, int], int] = {}

    async def add(self, counts: Sequence[VolumeCount]) -> list[int]:
        totals = []
        for policy_id, guard_id, window, n, _window_ms in counts:
            key = (policy_id, guard_id, window)
            total = self._counts.get(key, 0) + n
            self._counts[key] = total
            totals.append(total)
        # Forget windows older than the previous one of their guard.
        current = {(p, g): w for p, g, w, _, _ in counts}
        for p, g, w in list(self._counts):
            latest = current.get((p, g))
            if latest is not None and w < latest - 1:
                del self._counts[(p, g, w)]
        return totals

    async def close(self) -> None:
        return None


class RedisVolumeCounter:
    """Counts in Redis (see the module docstring)."""

    name = "redis"

    def __init__(self, client: Any, *, prefix: str = DEFAULT_PREFIX) -> None:
        self._client = client
        self.prefix = prefix

    @classmethod
    def from_url(cls, url: str, *, prefix: str = DEFAULT_PREFIX) -> RedisVolumeCounter:
        """A counter on ``url`` (``redis+cluster://`` for Redis Cluster)."""
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        options: dict[str, Any] = {
            "socket_timeout": _TIMEOUT_S + 1.0,
            "socket_connect_timeout": _TIMEOUT_S,
            "retry": Retry(NoBackoff(), 0),
            "protocol": 2,
            "driver_info": None,
            "max_connections": 2,
        }
        return cls(redis_client(url, **options), prefix=prefix)

    def key(self, policy_id: str, guard_id: str, window: int) -> str:
        return f"{self.prefix}:{{vg:{policy_id}:{guard_id}}}:{window}"

    async def add(self, counts: Sequence[VolumeCount]) -> list[int]:
        if not counts:
            return []
        pipe = self._client.pipeline(transaction=False)
        for policy_id, guard_id, window, n, window_ms in counts:
            key = self.key(policy_id, guard_id, window)
            pipe.incrby(key, n)
            pipe.pexpire(key, 2 * window_ms)
        try:
            async with asyncio.timeout(_TIMEOUT_S):
                replies = await pipe.execute()
        except Exception as exc:
            raise StoreUnavailable("volume_guard", f"{type(exc).__name__}: {exc}") from exc
        return [int(x) for x in replies[0::2]]

    async def close(self) -> None:
        await self._client.aclose()


def open_volume_counter(redis_url: str = "") -> VolumeCounter:
    """Redis when the server runs on Redis (``redis_url``), else in-process."""
    if redis_url:
        return RedisVolumeCounter.from_url(redis_url)
    return MemoryVolumeCounter()
