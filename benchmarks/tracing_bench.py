"""What OpenTelemetry spans cost a Decide: tracing off (the default) and on, in one process.

Run from the repository root (``make bench-tracing``)::

    .venv/bin/python -m benchmarks.tracing_bench [--calls 20000] [--rounds 5]

The service core (``DecisionCore``, no transport) answers the same Decide
requests on the embedded store with the example policies, rounds
alternating between configurations:

- ``off``: no ``--otlp-endpoint`` -- the default;
- ``on``: spans built and handed to a ``BatchSpanProcessor`` whose exporter
  drops them (the SDK's cost, not the network's).

It also times the off path's own instructions in isolation -- the
``enabled`` test and four no-op ``with`` blocks -- since
the difference between "off" and "no tracing code at all" is below the
noise of whole calls. Numbers are per call, medians over rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import timeit
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


class _Drop:
    """A SpanExporter that drops every span (what the SDK costs, without a network)."""

    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def _core() -> Any:
    from arbiter.policies import load_policy
    from arbiter.server.registry import PolicyRegistry
    from arbiter.server.service import DecisionCore
    from arbiter.state import MemoryStore

    registry = PolicyRegistry()
    registry.activate(load_policy(ROOT / "examples" / "policies"))
    return DecisionCore(registry, MemoryStore())


def _requests(n: int, tag: str) -> list[Any]:
    from arbiter.v1 import decision_pb2

    return [
        decision_pb2.DecideRequest(
            request_id=f"{tag}-{i}",
            customer_id=f"c-{i % 500}",
            placement="home_banner",
            channels=["in_app"],
        )
        for i in range(n)
    ]


async def _round(core: Any, requests: list[Any]) -> float:
    from arbiter.server.service import Call

    call = Call()
    t0 = time.perf_counter()
    for request in requests:
        await core.invoke("Decide", request, call)
    return (time.perf_counter() - t0) / len(requests)


def _off_path_seconds() -> float:
    """The instructions tracing-off adds to a Decide, timed alone."""
    from arbiter.server.tracing import NO_DECIDE, NO_SPANS

    def off_path() -> None:
        tracing = NO_SPANS
        if not tracing.enabled:
            spans = NO_DECIDE
            with spans.phase("validate"):
                pass
            with spans.phase("load"):
                pass
            with spans.phase("decide"):
                pass
            with spans.phase("commit"):
                pass

    n = 200_000
    return min(timeit.repeat(off_path, number=n, repeat=5)) / n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    from arbiter.server.tracing import NO_SPANS, tracing_from_exporter

    core = _core()
    traced, provider = tracing_from_exporter(_Drop())
    results: dict[str, list[float]] = {"off": [], "on": []}

    async def run() -> None:
        await _round(core, _requests(2000, "warm"))
        for r in range(args.rounds):
            for name in ("off", "on"):
                core.spans = NO_SPANS if name == "off" else traced
                results[name].append(await _round(core, _requests(args.calls, f"{name}{r}")))

    asyncio.run(run())
    provider.shutdown()
    off = statistics.median(results["off"])
    on = statistics.median(results["on"])
    alone = _off_path_seconds()
    print(f"tracing bench: {args.rounds} x {args.calls} Decide calls per configuration, in-process")
    print(f"  off: {off * 1e6:8.1f} µs per Decide")
    print(f"  on : {on * 1e6:8.1f} µs per Decide  (x{on / off:.3f}, +{(on - off) * 1e6:.1f} µs)")
    print(
        f"  the off path alone: {alone * 1e9:.0f} ns per Decide = "
        f"{100 * alone / off:.2f} % of an in-process Decide"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
