"""Decide throughput over Connect JSON (the HTTP listener) vs gRPC, against one server, in the same run.

Run from the repository root (``make bench-http``)::

    .venv/bin/python -m benchmarks.http_bench [--seconds 8] [--concurrency 8]
        [--customers 500] [--protocols grpc,grpc-connectrpc,connect-json,connect-json-h2,connect-proto]

One ``arbiter serve`` process (example policies, embedded store, gRPC and
HTTP listeners on free ports) serves every phase; ``--customers`` customers
are written first (US, personalisation granted, some VIPs), so decisions
choose banners. Each phase runs ``--concurrency`` closed-loop callers of
Decide (``home_banner``, ``in_app``, random customer, fresh request id) in
one driver process for ``--seconds`` after a 1 s warm-up:

- ``grpc``: grpc.aio's client -> the gRPC port (the baseline);
- ``grpc-connectrpc``: connectrpc's client speaking gRPC -> the gRPC port;
- ``connect-json``: connectrpc's client, Connect + JSON over HTTP/1.1 -> the HTTP port;
- ``connect-json-h2``: the same over cleartext HTTP/2;
- ``connect-proto``: Connect + binary protobuf over HTTP/1.1.

Reported per phase: calls/s, p50 / p99 / max latency seen by the caller,
non-OK answers, and the CPU the server and the driver used (% of one core;
a server near 100 % is saturated: the number is the server's ceiling).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

ROOT: Final = Path(__file__).resolve().parents[1]
for _p in (ROOT / "tests" / "integration",):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from server_procs import EXAMPLES, ServerProcess  # noqa: E402

PROTOCOLS: Final = ("grpc", "grpc-connectrpc", "connect-json", "connect-json-h2", "connect-proto")

Call = Callable[[Any], Awaitable[Any]]


def _decide_request(customers: int, rng: random.Random) -> Any:
    from arbiter.v1 import decision_pb2

    request = decision_pb2.DecideRequest(
        request_id=uuid.uuid4().hex,
        customer_id=f"bench-{rng.randrange(customers)}",
        placement="home_banner",
        channels=["in_app"],
    )
    request.context["page_type"].string_value = "home"
    return request


async def _seed(address: str, customers: int) -> None:
    """US customers with personalisation granted; every fifth a VIP with an active subscription."""
    import grpc
    from google.protobuf import timestamp_pb2

    from arbiter.v1 import decision_pb2, decision_pb2_grpc

    stamp = timestamp_pb2.Timestamp()
    stamp.FromSeconds(int(time.time()) - 60)
    async with grpc.aio.insecure_channel(address) as channel:
        stub = decision_pb2_grpc.DecisionServiceStub(channel)
        for n in range(customers):
            request = decision_pb2.UpdateProfileRequest(
                customer_id=f"bench-{n}", source="crm", timestamp=stamp
            )
            request.traits["region"].string_value = "US"
            request.consents.add(
                purpose="personalization", state=decision_pb2.CONSENT_STATE_GRANTED
            )
            if n % 5 == 0:
                request.traits["subscription_status"].string_value = "active"
                request.segments.segments.append("vip")
            await stub.UpdateProfile(request, timeout=5)


async def _caller(
    protocol: str, server: ServerProcess
) -> tuple[Call, Callable[[], Awaitable[None]]]:
    """A Decide function for ``protocol`` and a closer."""
    if protocol == "grpc":
        import grpc

        from arbiter.v1 import decision_pb2_grpc

        channel = grpc.aio.insecure_channel(server.address)
        stub = decision_pb2_grpc.DecisionServiceStub(channel)

        async def grpc_call(request: Any) -> Any:
            return await stub.Decide(request, timeout=5)

        return grpc_call, channel.close
    from connectrpc.compat import google_protobuf_binary_codec, google_protobuf_json_codec
    from connectrpc.protocol import ProtocolType
    from pyqwest import Client, HTTPTransport, HTTPVersion

    from arbiter.v1.decision_connect import DecisionServiceClient

    h2 = protocol in ("grpc-connectrpc", "connect-json-h2")
    transport = HTTPTransport(http_version=HTTPVersion.HTTP2 if h2 else HTTPVersion.HTTP1)
    client = DecisionServiceClient(
        f"http://{server.address}" if protocol == "grpc-connectrpc" else server.http_url,
        protocol=ProtocolType.GRPC if protocol == "grpc-connectrpc" else ProtocolType.CONNECT,
        codec=google_protobuf_json_codec()
        if protocol.startswith("connect-json")
        else google_protobuf_binary_codec(),
        send_compression=None,
        http_client=Client(transport),
    )

    async def connect_call(request: Any) -> Any:
        return await client.decide(request, timeout_ms=5000)

    async def close() -> None:
        await client.close()

    return connect_call, close


async def _phase(protocol: str, server: ServerProcess, args: argparse.Namespace) -> dict[str, Any]:
    call, close = await _caller(protocol, server)
    rng = random.Random(args.seed)
    latencies: list[float] = []
    errors = 0
    recording = False
    stop_at = 0.0

    async def loop() -> None:
        nonlocal errors
        while time.monotonic() < stop_at:
            request = _decide_request(args.customers, rng)
            started = time.perf_counter()
            try:
                await call(request)
            except Exception:
                errors += recording
                continue
            if recording:
                latencies.append(time.perf_counter() - started)

    stop_at = time.monotonic() + 1.0  # warm-up
    await asyncio.gather(*(loop() for _ in range(args.concurrency)))
    recording = True
    cpu_server = server.cpu_seconds()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_driver = usage.ru_utime + usage.ru_stime
    started = time.monotonic()
    stop_at = started + args.seconds
    await asyncio.gather(*(loop() for _ in range(args.concurrency)))
    elapsed = time.monotonic() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    driver_s = usage.ru_utime + usage.ru_stime - cpu_driver
    server_s = server.cpu_seconds() - cpu_server
    await close()
    latencies.sort()

    def pct(q: float) -> float:
        return (
            latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else 0.0
        )

    return {
        "protocol": protocol,
        "calls": len(latencies),
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(pct(0.50), 2),
        "p99_ms": round(pct(0.99), 2),
        "max_ms": round(latencies[-1] * 1000, 2) if latencies else 0.0,
        "errors": errors,
        "server_cpu_pct": round(100 * server_s / elapsed, 1),
        "driver_cpu_pct": round(100 * driver_s / elapsed, 1),
        "server_cpu_us_per_call": round(1e6 * server_s / max(len(latencies), 1), 1),
    }


async def _run(args: argparse.Namespace) -> list[dict[str, Any]]:
    protocols = [p.strip() for p in args.protocols.split(",") if p.strip()]
    unknown = set(protocols) - set(PROTOCOLS)
    if unknown:
        raise SystemExit(f"unknown protocols: {sorted(unknown)} (choose from {PROTOCOLS})")
    with tempfile.TemporaryDirectory(prefix="arbiter-http-bench-") as work:
        server = ServerProcess(EXAMPLES, Path(work), name="http-bench").start()
        try:
            await _seed(server.address, args.customers)
            return [await _phase(p, server, args) for p in protocols]
        finally:
            server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--customers", type=int, default=500)
    parser.add_argument("--protocols", default=",".join(PROTOCOLS))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    import uvloop

    rows = uvloop.run(_run(args))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(
        f"Decide, {args.concurrency} concurrent callers, {args.seconds:g} s per protocol, "
        f"one server (embedded store, example policies), {os.cpu_count()} CPUs"
    )
    header = f"{'protocol':<17}{'calls/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'errors':>8}"
    header += f"{'server CPU':>12}{'µs/call':>9}{'driver CPU':>12}"
    print(header)
    for r in rows:
        print(
            f"{r['protocol']:<17}{r['rps']:>9}{r['p50_ms']:>9}{r['p99_ms']:>9}{r['max_ms']:>9}"
            f"{r['errors']:>8}{r['server_cpu_pct']:>11}%{r['server_cpu_us_per_call']:>9}"
            f"{r['driver_cpu_pct']:>11}%"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
