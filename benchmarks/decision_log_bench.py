"""What the decision log costs a Decide, and that it loses nothing: logging off vs on, same run, same customers.

Run from the repository root (``make bench-decision-log``)::

    .venv/bin/python -m benchmarks.decision_log_bench [--customers 20000] [--seconds 5]
        [--rounds 3] [--concurrency 16] [--json]

Two ``arbiter serve`` processes on the embedded store, seeded with the same
realistic customers (``benchmarks.decide_bench``): one without a decision
log, one with ``--decision-log FILE``. Each round drives both in turn (off,
then on) with ``--concurrency`` closed-loop ``grpc.aio`` clients in one
driver process for ``--seconds``; reported per configuration: Decide RPS
and client-side p50 / p99 over all rounds, and the ratio on / off.

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
        "p50_ms": round(pct(latencies, 0.50) * 1000, 3),
        "p99_ms": round(pct(latencies, 0.99) * 1000, 3),
        "errors": sum(p["errors"] for p in parts),
        "committed": sum(p["committed"] for p in parts),
    }


def bench(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="arbiter-dlog-bench-"))
    log = work / "decisions.jsonl"
    now_ms = time.time_ns() // 1_000_000
    runs: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
    servers: dict[str, Any] = {}
    try:
        servers["off"] = _server(work, "off", args, now_ms, "")
        servers["on"] = _server(work, "on", args, now_ms, str(log))
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            for _ in range(args.rounds):
                for name in ("off", "on"):
                    spec = Drive(
                        servers[name].address, args.concurrency, args.seconds, args.customers
                    )
                    runs[name].append(pool.submit(drive, spec).result())
        servers.pop("on").stop()  # SIGTERM: the queue is written within the grace period
        lines = log.read_bytes().splitlines() if log.exists() else []
        records = [json.loads(line) for line in lines]
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    seconds = args.seconds * args.rounds
    off, on = _summary(runs["off"], seconds), _summary(runs["on"], seconds)
    return {
        "customers": args.customers,
        "concurrency": args.concurrency,
        "seconds": args.seconds,
        "rounds": args.rounds,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "off": off,
        "on": on,
        "rps_ratio": round(on["rps"] / off["rps"], 3) if off["rps"] else None,
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
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    report = bench(args)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0 if report["lost"] == 0 else 1
    print(
        f"decision log bench: {args.customers} customers, {args.rounds} x {args.seconds:g}s per "
        f"configuration, {args.concurrency} concurrent calls, Python {report['python']}, "
        f"{report['cpus']} CPUs"
    )
    for name in ("off", "on"):
        r = report[name]
        print(
            f"  logging {name:3}: {r['rps']:>6} Decide/s  p50 {r['p50_ms']:.3f} ms  "
            f"p99 {r['p99_ms']:.3f} ms  errors {r['errors']}  committed {r['committed']}"
        )
    print(
        f"  on/off: throughput x{report['rps_ratio']}, p50 x{report['p50_ratio']}; records "
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
