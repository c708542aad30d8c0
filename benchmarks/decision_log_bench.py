"""What the decision log costs a Decide, and that it loses nothing: logging off vs on, same run, same customers.

Run from the repository root (``make bench-decision-log``)::

    .venv/bin/python -m benchmarks.decision_log_bench [--customers 20000] [--seconds 5]
        [--rounds 3] [--concurrency 16] [--sink file|redis] [--json]

Two ``arbiter serve`` processes on the embedded store, seeded with the same
realistic customers (``benchmarks.decide_bench``): one without a decision
log, one with ``--decision-log FILE`` (``--sink redis``: a Redis Stream on a
private ``redis-server``, the embedded store unchanged). Each round drives both in turn (off,
then on) with ``--concurrency`` closed-loop ``grpc.aio`` clients in one
driver process for ``--seconds``; reported per configuration: Decide RPS
and client-side p50 / p99 over all rounds, the server process' CPU time per
answered call (``/proc``: what logging costs, whatever else the machine
runs), and the ratios on / off.

Then the logging server is stopped (SIGTERM: the queue is written within the
grace period) and the records are counted: every committed decision the
driver was answered (OK, not a replay, not a dry run, state read and
stored) must be one record with ``committed: true`` -- the count is the
driver's, not the server's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import random
import shutil
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from benchmarks.decide_bench import ROOT, _requests, memory_server_argv, pct

NOT_STORED: Final = ("could not be read", "could not be stored", "could not be recorded")


@dataclass(frozen=True, slots=True)
class Drive:
    """One measured run against one server (picklable: it crosses to the driver process)."""

    address: str
    concurrency: int
    seconds: float
    customers: int


async def _drive(spec: Drive) -> dict[str, Any]:
    import grpc

    from arbiter.v1 import decision_pb2_grpc

    pool = _requests(4096, spec.customers, random.Random())
    latencies: list[float] = []
    committed = 0
    errors = 0
    prefix = uuid.uuid4().hex[:12]
    perf = time.perf_counter
    t_end = perf() + spec.seconds
    channel = grpc.aio.insecure_channel(spec.address)
    stub = decision_pb2_grpc.DecisionServiceStub(channel)

    async def worker(w: int) -> None:
        nonlocal committed, errors
        i = 0
        while perf() < t_end:
            i += 1
            request = pool[(w * 7919 + i) % len(pool)]
            request.request_id = f"{prefix}-{w}-{i}"
            t0 = perf()
            try:
                reply = await stub.Decide(request, timeout=2.0)
            except grpc.aio.AioRpcError:
                errors += 1
                continue
            latencies.append(perf() - t0)
            stored = not any(n in d.detail for d in reply.degradations for n in NOT_STORED)
            if stored and not reply.replayed and not reply.dry_run:
                committed += 1

    await asyncio.gather(*(worker(w) for w in range(spec.concurrency)))
    await channel.close()
    return {"latencies": latencies, "committed": committed, "errors": errors}


def drive(spec: Drive) -> dict[str, Any]:
    """Run one :class:`Drive` (in the driver process)."""
    import uvloop

    return uvloop.run(_drive(spec))


def _server(work: Path, name: str, args: argparse.Namespace, now_ms: int, log: str) -> Any:
    from server_procs import ServerProcess

    policies = ROOT / "examples" / "policies"
    extra = ("--decision-log", log) if log else ()
    argv = memory_server_argv(policies, args.customers, 1, now_ms, *extra)
    return ServerProcess(policies, work, name=name, argv=argv).start(wait_s=180)


def _summary(parts: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    latencies = sorted(x for p in parts for x in p["latencies"])
    return {
        "calls": len(latencies),
        "rps": round(len(latencies) / seconds),
        # The server process' CPU per answered call: robust to what else the machine runs.
        "cpu_us": round(1e6 * sum(p["cpu_s"] for p in parts) / max(len(latencies), 1), 1),
        "p50_ms": round(pct(latencies, 0.50) * 1000, 3),
        "p99_ms": round(pct(latencies, 0.99) * 1000, 3),
        "errors": sum(p["errors"] for p in parts),
        "committed": sum(p["committed"] for p in parts),
    }


def _stream_records(url: str) -> list[dict[str, Any]]:
    """Every record of the decision log stream on ``url`` (the sink's default key)."""
    import redis

    client = redis.Redis.from_url(url)
    out: list[dict[str, Any]] = []
    last = "-"
    while True:
        entries = client.xrange("arb:{dlog}:stream", min=last, max="+", count=10_000)
        if last != "-":
            entries = entries[1:]  # the bound is inclusive
        if not entries:
            break
        out += [json.loads(fields[b"record"]) for _, fields in entries]
        last = entries[-1][0].decode()
    client.close()
    return out


def bench(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="arbiter-dlog-bench-"))
    log = work / "decisions.jsonl"
    now_ms = time.time_ns() // 1_000_000
    runs: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
    servers: dict[str, Any] = {}
    redis_server: Any = None
    try:
        destination = str(log)
        if args.sink == "redis":  # a private redis-server: the stream sink, embedded store
            from redis_support import RedisServer

            redis_server = RedisServer().start()
            destination = redis_server.url
        servers["off"] = _server(work, "off", args, now_ms, "")
        servers["on"] = _server(work, "on", args, now_ms, destination)
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            for _ in range(args.rounds):
                for name in ("off", "on"):
                    spec = Drive(
                        servers[name].address, args.concurrency, args.seconds, args.customers
                    )
                    cpu = servers[name].cpu_seconds()
                    result = pool.submit(drive, spec).result()
                    result["cpu_s"] = servers[name].cpu_seconds() - cpu
                    runs[name].append(result)
        servers.pop("on").stop()  # SIGTERM: the queue is written within the grace period
        if redis_server is not None:
            records = _stream_records(redis_server.url)
        else:
            lines = log.read_bytes().splitlines() if log.exists() else []
            records = [json.loads(line) for line in lines if line.strip()]
    finally:
        for server in servers.values():
            server.stop()
        if redis_server is not None:
            redis_server.close()
        shutil.rmtree(work, ignore_errors=True)
    seconds = args.seconds * args.rounds
    off, on = _summary(runs["off"], seconds), _summary(runs["on"], seconds)
    return {
        "sink": args.sink,
        "customers": args.customers,
        "concurrency": args.concurrency,
        "seconds": args.seconds,
        "rounds": args.rounds,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "off": off,
        "on": on,
        "rps_ratio": round(on["rps"] / off["rps"], 3) if off["rps"] else None,
        "cpu_ratio": round(on["cpu_us"] / off["cpu_us"], 3) if off["cpu_us"] else None,
        "p50_ratio": round(on["p50_ms"] / off["p50_ms"], 3) if off["p50_ms"] else None,
        "records": len(records),
        "records_committed": sum(1 for r in records if r["committed"]),
        "lost": on["committed"] - sum(1 for r in records if r["committed"]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per run")
    parser.add_argument("--rounds", type=int, default=3, help="off/on pairs")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--sink",
        choices=("file", "redis"),
        default="file",
        help="file: JSON Lines; redis: the stream on a private redis-server",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    report = bench(args)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0 if report["lost"] == 0 else 1
    print(
        f"decision log bench ({args.sink} sink): {args.customers} customers, "
        f"{args.rounds} x {args.seconds:g}s per "
        f"configuration, {args.concurrency} concurrent calls, Python {report['python']}, "
        f"{report['cpus']} CPUs"
    )
    for name in ("off", "on"):
        r = report[name]
        print(
            f"  logging {name:3}: {r['rps']:>6} Decide/s  server CPU {r['cpu_us']:.0f} µs/Decide  "
            f"p50 {r['p50_ms']:.3f} ms  "
            f"p99 {r['p99_ms']:.3f} ms  errors {r['errors']}  committed {r['committed']}"
        )
    print(
        f"  on/off: throughput x{report['rps_ratio']}, server CPU per Decide "
        f"x{report['cpu_ratio']}, p50 x{report['p50_ratio']}; records "
        f"{report['records_committed']} committed of {report['records']} = "
        f"{report['on']['committed']} decisions committed -> lost {report['lost']}"
    )
    return 0 if report["lost"] == 0 else 1


if __name__ == "__main__":
    import sys

    for path in (ROOT / "tests", ROOT / "tests" / "integration"):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    raise SystemExit(main())
