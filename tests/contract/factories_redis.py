"""Registers RedisStore on a private single node ("redis") and a 3-master Cluster ("redis-cluster")."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from store_contract import MadeStore, register_store_factory

_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from redis_support import shared_redis_cluster_url, shared_redis_url  # noqa: E402

from arbiter.state.redis_keys import customer_keys, epoch_key, slot_of  # noqa: E402
from arbiter.state.redis_store import RedisStore  # noqa: E402

# Not the production prefix: a REDIS_URL pointing at a shared server stays untouched.
PREFIX = "arbtest"


_INITIALISED: set[str] = set()


@contextlib.asynccontextmanager
async def _made(url: str) -> AsyncIterator[MadeStore]:
    store = RedisStore.from_url(url, prefix=PREFIX)
    if url not in _INITIALISED:  # the epoch: once per server and session
        await store.init_state()
        _INITIALISED.add(url)
    lost: list[str] = []

    async def lose(customer_id: str) -> None:
        """What a restart without persistence does to the test's customer: its keys and the
        state epoch its scripts check are gone."""
        slot = slot_of(customer_id) if store.cluster else None
        lost.append(epoch_key(PREFIX, slot))
        for key in (*customer_keys(customer_id, PREFIX), lost[-1]):
            await store.client.delete(key)

    try:
        yield MadeStore(store, lose=lose)  # real time: the harness sleeps for expiry
    finally:
        for key in lost:  # for the next tests, whether or not this one acknowledged
            await store.client.set(key, "restored", nx=True)
        await store.close()


@register_store_factory("redis")
async def redis_store(request: pytest.FixtureRequest) -> AsyncIterator[MadeStore]:
    async with _made(shared_redis_url(request.config)) as made:
        yield made


@register_store_factory("redis-cluster")
async def redis_cluster_store(request: pytest.FixtureRequest) -> AsyncIterator[MadeStore]:
    async with _made(shared_redis_cluster_url(request.config)) as made:
        yield made
