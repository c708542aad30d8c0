"""Runs the Store contract suite against every registered store factory.

The ``store`` fixture (a :class:`state.store.Store`) and its harness
``store_case`` (:class:`store_contract.StoreCase`: event loop, clock,
unique customer ids) are parametrized over ``STORE_FACTORIES`` at
collection time, one pytest id per factory (``-k memory``, ``-k redis``).

Adding a store is one registration, in either of two places:

1. **A new file** ``tests/contract/factories_<name>.py`` -- every such module
   is imported here before collection, so nothing else needs editing::

       from store_contract import MadeStore, register_store_factory

       @register_store_factory("redis")
       async def redis_store(request):
           store = RedisStore.from_url(request.getfixturevalue("redis_url"))
           try:
               yield MadeStore(store)  # advance=None: real time, the harness sleeps
           finally:
               await store.close()

2. **One line** in ``STORE_FACTORIES`` (any conftest or plugin that runs
   before collection may also mutate the dict directly).

A factory is an async generator function taking the pytest ``request``; it
runs on the test's own event loop (redis.asyncio clients are bound to the
loop they connect on). It yields a :class:`store_contract.MadeStore` whose
``advance`` moves the store's expiry clock, or ``None`` for real time. A
factory that cannot run here (no ``redis-server`` binary) calls
``pytest.skip(...)`` and its cases are reported as skipped.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:
    sys.path.insert(0, str(_HERE))

from store_contract import (  # noqa: E402 - needs the path above
    STORE_FACTORIES,
    MadeStore,
    StoreCase,
    StoreFactory,
    open_case,
    register_store_factory,
)

from arbiter.state.memory import ManualClock, MemoryStore  # noqa: E402
from arbiter.state.store import Store  # noqa: E402


@register_store_factory("memory")
async def memory_store(request: pytest.FixtureRequest) -> AsyncIterator[MadeStore]:
    clock = ManualClock()

    async def advance(seconds: float) -> None:
        clock.advance(seconds)

    store = MemoryStore(clock=clock)

    async def lose(customer_id: str) -> None:
        store.lose_state()

    try:
        yield MadeStore(store, advance=advance, lose=lose)
    finally:
        await store.close()


def _broken(module: str, error: BaseException) -> StoreFactory:
    """A factory that fails every case: a module that does not import must not pass silently,
    nor take the other stores' cases down with it."""

    async def fail(request: pytest.FixtureRequest) -> AsyncIterator[MadeStore]:
        pytest.fail(f"{module} did not import: {error!r}", pytrace=False)
        yield  # pragma: no cover - makes this an async generator

    return fail


for _path in sorted(_HERE.glob("factories_*.py")):
    try:
        importlib.import_module(_path.stem)
    except Exception as exc:  # reported per case by _broken
        STORE_FACTORIES[f"{_path.stem}:import-error"] = _broken(_path.stem, exc)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "store_case" in metafunc.fixturenames:
        names = sorted(STORE_FACTORIES, key=lambda n: (n != "memory", n))
        metafunc.parametrize("store_case", names, indirect=True, ids=names)


@pytest.fixture
def store_case(request: pytest.FixtureRequest) -> Iterator[StoreCase]:
    with open_case(request.param, request) as case:
        yield case


@pytest.fixture
def store(store_case: StoreCase) -> Store:
    return store_case.store
