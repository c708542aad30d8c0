"""Operator checks of a Redis behind ``RedisStore``: eviction policy, persistence, state epoch.

Used at start-up (``arbiter serve`` refuses an evicting Redis unless
``--redis-allow-eviction``) and by ``arbiter state status``. Not on the
request path.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

from redis.asyncio.cluster import RedisCluster

from .redis_keys import SLOTS, epoch_key
from .redis_store import RedisStore, operation_error
from .store import StoreMisconfigured

__all__ = ["EVICTING_POLICIES", "check_deployment", "describe"]

# maxmemory-policy values under which Redis deletes keys by itself: a deleted consent key
# reads as "no consent recorded", a deleted cap key as "nothing sent yet".
EVICTING_POLICIES: Final = frozenset(
    {
        "allkeys-lru",
        "allkeys-lfu",
        "allkeys-random",
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
    }
)


async def check_deployment(store: RedisStore, *, allow_eviction: bool = False) -> dict[str, str]:
    """Refuse a Redis that may delete keys by itself; return ``{node: maxmemory-policy}``.

    Raises :class:`StoreMisconfigured` when a master's ``maxmemory-policy``
    evicts (every policy but ``noeviction``) unless ``allow_eviction``:
    an evicted consent key reads as "no consent recorded", an evicted cap
    key as "nothing sent yet". :class:`StoreUnavailable` when a master
    does not answer.
    """
    policies = {
        node: str(info.get("maxmemory_policy", "unknown"))
        for node, info in (await _node_info(store, "memory")).items()
    }
    evicting = {node: p for node, p in policies.items() if p in EVICTING_POLICIES}
    if evicting and not allow_eviction:
        listed = ", ".join(f"{node} has maxmemory-policy {p}" for node, p in evicting.items())
        raise StoreMisconfigured(
            f"Redis may evict Arbiter's keys ({listed}): an evicted consent reads as "
            "'no consent recorded' and an evicted cap as 'nothing sent'. "
            "Set `maxmemory-policy noeviction`."
        )
    return policies


async def describe(store: RedisStore) -> list[dict[str, Any]]:
    """Per master: address, role, ``maxmemory-policy``, persistence, state epoch markers
    (present / expected) -- what ``arbiter state status`` prints."""
    infos = await _node_info(store, "all")
    present = await _epoch_markers(store)
    return [
        {
            "node": node,
            "role": info.get("role", "?"),
            "maxmemory_policy": info.get("maxmemory_policy", "?"),
            "maxmemory": info.get("maxmemory", "?"),
            "aof_enabled": info.get("aof_enabled", "?"),
            "rdb_last_save": info.get("rdb_last_save_time", "?"),
            "epoch_markers": present.get(node, (0, 0)),
        }
        for node, info in infos.items()
    ]


async def _node_info(store: RedisStore, section: str) -> dict[str, dict[str, Any]]:
    """``INFO section`` of every master, by ``host:port``."""
    try:
        async with asyncio.timeout(max(store.max_timeout_s, 10.0)):
            if not store.cluster:
                kwargs = store.client.connection_pool.connection_kwargs  # type: ignore[union-attr]
                node = f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"
                return {node: await store.client.info(section)}
            await store._initialize_cluster()
            cluster = store.client
            assert isinstance(cluster, RedisCluster)
            return {
                node.name: await cluster.execute_command("INFO", section, target_nodes=node)
                for node in cluster.get_primaries()
            }
    except Exception as exc:
        raise operation_error("check_deployment", exc) from exc


async def _epoch_markers(store: RedisStore) -> dict[str, tuple[int, int]]:
    """Per master: (epoch markers present, markers expected)."""
    try:
        async with asyncio.timeout(max(store.max_timeout_s, 10.0)):
            if not store.cluster:
                kwargs = store.client.connection_pool.connection_kwargs  # type: ignore[union-attr]
                node = f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"
                return {node: (int(await store.client.exists(epoch_key(store.prefix))), 1)}
            await store._initialize_cluster()
            cluster = store.client
            assert isinstance(cluster, RedisCluster)
            pipe = cluster.pipeline()
            for slot in range(SLOTS):
                pipe.exists(epoch_key(store.prefix, slot))
            found = await pipe.execute()
            counts: dict[str, tuple[int, int]] = {}
            for slot in range(SLOTS):
                name = cluster.nodes_manager.slots_cache[slot][0].name
                have, want = counts.get(name, (0, 0))
                counts[name] = (have + int(found[slot]), want + 1)
            return counts
    except Exception as exc:
        raise operation_error("describe", exc) from exc
