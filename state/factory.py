"""Open the store a URL names: the embedded ``MemoryStore`` for none, ``RedisStore`` for ``redis://`` / ``redis+cluster://``."""

from __future__ import annotations

from arbiter.state.memory import MemoryStore
from arbiter.state.store import Store

__all__ = ["open_store"]


def open_store(url: str = "", *, default_timeout_s: float = 0.25) -> Store:
    """A store for ``url``: ``""`` is the embedded in-process ``MemoryStore``; a Redis URL
    (``redis://``, ``rediss://``, ``redis+cluster://``) a ``RedisStore`` whose calls take at
    most ``default_timeout_s`` when the caller gives no timeout. Needs the ``server`` extra
    (redis) only for a Redis URL."""
    if not url:
        return MemoryStore()
    from arbiter.state.redis_store import RedisStore

    store: Store = RedisStore.from_url(url, default_timeout_s=default_timeout_s)
    return store
