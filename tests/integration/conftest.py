"""A real Arbiter server on a free port, in-process: its own uvloop event loop in a thread.

Tests talk to it through real gRPC channels; they reach into the embedded
``MemoryStore`` only to prove what was (not) written (``export_customer``)
and to inject store latency or faults. ``arbiter_server`` is shared by the
module's tests (customer ids keep them apart); ``ServerHandle`` starts
private servers for lifecycle tests.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import pytest
import uvloop

from arbiter.policies import CompiledPolicy, bucketing
from arbiter.server.app import ArbiterServer
from arbiter.server.config import Settings
from arbiter.state.memory import MemoryStore

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = str(ROOT / "examples" / "policies")

T = TypeVar("T")


class ServerHandle:
    """An :class:`ArbiterServer` running on a private event loop in a daemon thread.

    ``store`` is any ``Store`` (a fresh ``MemoryStore`` by default, the
    ``RedisStore`` of ``redis_url=`` when given, its state epoch initialised);
    further keyword arguments are :class:`Settings` fields (``tls=``, ``auth=``, ...).
    """

    def __init__(
        self,
        *,
        store: Any = None,
        load_policy: bool = True,
        grace_period_s: float = 5.0,
        store_timeout_s: float = 2.0,
        **settings: Any,
    ) -> None:
        if store is None and not settings.get("redis_url"):
            store = MemoryStore()
        self.settings = Settings(
            policies=settings.pop("policies", EXAMPLES),
            listen="127.0.0.1:0",
            grace_period_s=grace_period_s,
            store_timeout_s=store_timeout_s,
            **settings,
        )
        self.server = ArbiterServer(self.settings, store=store, readiness_interval_s=0.05)
        self.store = self.server.store
        self.loop = uvloop.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        if self.settings.redis_url:
            self.call(self.store.init_state())  # a new deployment: arbiter state init
        self.call(self.server.start())
        if load_policy:
            self.call(self.server.load_policy())
            self.call(self.server.wait_ready(10))

    @property
    def address(self) -> str:
        return self.server.address

    @property
    def policy(self) -> CompiledPolicy:
        return self.server.registry.require().policy

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return self.submit(coro).result(timeout)

    def export(self, customer_id: str) -> dict[str, Any]:
        return self.call(self.store.export_customer(customer_id))

    def close(self, grace_s: float = 0.0) -> None:
        if self.loop.is_closed():
            return
        self.call(self.server.stop(grace_s))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


def fresh_customer(policy: CompiledPolicy, tag: str = "c") -> str:
    """A new customer id outside the global control group and every journey holdout,
    so that tests see actions (bucketing is deterministic: docs/policy-language.md,
    "Deterministic bucketing")."""
    holdouts = [(h.salt, h.buckets) for h in [policy.holdout] if h is not None]
    holdouts += [(j.holdout_salt, j.holdout_buckets) for j in policy.journeys.values()]
    while True:
        customer = f"{tag}-{uuid.uuid4().hex[:12]}"
        if not any(b and bucketing.in_holdout(salt, customer, b) for salt, b in holdouts):
            return customer


@pytest.fixture(scope="module")
def arbiter_server() -> Iterator[ServerHandle]:
    handle = ServerHandle()
    try:
        yield handle
    finally:
        handle.close()


@pytest.fixture
def customer(arbiter_server: ServerHandle) -> str:
    return fresh_customer(arbiter_server.policy)


@pytest.fixture
def start_server() -> Iterator[Callable[..., ServerHandle]]:
    """A factory of private servers (``ServerHandle(**kwargs)``), closed after the test."""
    started: list[ServerHandle] = []

    def start(**kwargs: Any) -> ServerHandle:
        handle = ServerHandle(**kwargs)
        started.append(handle)
        return handle

    yield start
    for handle in started:
        handle.close()


@pytest.fixture
def new_customer() -> Callable[[CompiledPolicy], str]:
    return fresh_customer
