"""Registers RedisStore on a private single node ("redis") and a 3-master Cluster ("redis-cluster")."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from store_contract import MadeStore, register_store_factory

_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from redis_support import shared_redis_cluster_url, shared_redis_url  # noqa: E402

from arbiter.state.redis_store import RedisStore  # noqa: E402

# Not the production prefix: a REDIS_URL pointing at a shared server stays untouched.
PREFIX = "arbtest"


@register_store_factory("redis")
async def redis_store(request: pytest.FixtureRequest) -> AsyncIterator[MadeStore]:
    store = RedisStore.from_url(shared_redis_url(request.config), prefix=PREFIX)
    try:
        yield MadeStore(store)  # real time: the harness sleeps for expiry
    finally:
        await store.close()


@register_store_factory("redis-cluster")
async def redis_cluster_store(request: pytest.FixtureRequest) -> AsyncIterator[MadeStore]:
    store = RedisStore.from_url(shared_redis_cluster_url(request.config), prefix=PREFIX)
    try:
        yield MadeStore(store)
    finally:
        await store.close()
