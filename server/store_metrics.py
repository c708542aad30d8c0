"""Store calls, timed and counted: a proxy around any ``Store`` that records latency and errors per operation.

The core and the AdminService call the store through :class:`MeteredStore`
(``arbiter_store_seconds{operation}``, ``arbiter_store_errors_total{operation,
error}``); everything else (``health_detail``, ``breaker``, ``close``, ...)
passes through untouched. A :class:`CircuitSampler` copies the circuit
breaker's state into ``arbiter_store_circuit_state`` and counts its openings;
the server calls it with every readiness check (once a second).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, Final, cast

from arbiter.policies import StateConflict
from arbiter.server.metrics import METRICS
from arbiter.state import StateLost, Store, StoreUnavailable

__all__ = ["CircuitSampler", "MeteredStore", "error_kind", "metered"]

_TIMED: Final = (
    "load",
    "commit_decision",
    "apply_event",
    "update_profile",
    "export_customer",
    "forget_customer",
    "ping",
)
_CIRCUIT: Final = {"closed": 0, "half_open": 1, "open": 2}


def error_kind(exc: BaseException) -> str:
    """The ``error`` label of a failed store call."""
    if isinstance(exc, StateLost):
        return "state_lost"
    if isinstance(exc, StoreUnavailable):
        return "timeout" if "timed out" in exc.detail or exc.detail == "timeout" else "unavailable"
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, StateConflict):
        return "conflict"
    return "error"


class MeteredStore:
    """A ``Store`` whose calls are timed and counted (see the module docstring)."""

    def __init__(self, store: Store) -> None:
        self.inner = store
        for name in _TIMED:
            setattr(self, name, self._timed(store, name))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    @staticmethod
    def _timed(store: Store, operation: str) -> Callable[..., Awaitable[Any]]:
        """A timed call of ``store.<operation>``, looked up per call (so a replaced method --
        a test's fault injection -- is the one called)."""
        latency = METRICS.store_latency.labels(operation)

        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await getattr(store, operation)(*args, **kwargs)
            except Exception as exc:
                METRICS.store_errors.labels(operation, error_kind(exc)).inc()
                raise
            finally:
                latency.observe(time.perf_counter() - started)

        timed.__name__ = operation
        return timed


def metered(store: Store) -> Store:
    """``store`` behind a :class:`MeteredStore` (once: a metered store is returned as it is)."""
    if isinstance(store, MeteredStore):
        return cast(Store, store)
    return cast(Store, MeteredStore(store))


class CircuitSampler:
    """Copies a breaker's state to the gauge and its new openings to the counter."""

    def __init__(self) -> None:
        self._opened = 0

    def __call__(self, store: Store) -> None:
        breaker = getattr(getattr(store, "inner", store), "breaker", None)
        if breaker is None:
            METRICS.circuit_state.set(0)
            return
        METRICS.circuit_state.set(_CIRCUIT.get(breaker.state, 0))
        opened = int(breaker.opened)
        if opened > self._opened:
            METRICS.circuit_opens.inc(opened - self._opened)
        self._opened = opened
