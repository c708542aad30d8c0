"""``make loadtest``: seed a population into a fresh server, run one Locust scenario headless, write the report.

    .venv/bin/python -m loadtests.run --scenario mixed --users 50 --duration 60s
        [--store memory|redis] [--customers 20000] [--processes 2] [--workers N]
        [--out benchmarks/results/loadtest]

1. Generates ``--customers`` customers (``benchmarks.decide_bench``: profiles,
   consent, counters, journeys, cap history) and seeds them: into a private
   ``redis-server`` (``--store redis``, then ``arbiter serve --redis-url``
   with ``--workers``) or into an embedded-store server process.
2. Runs ``locust -f loadtests/locustfile.py --headless`` with the scenario
   (``ARBITER_LOAD_SCENARIO``), the population size and its Zipf skew, and
   ``--processes`` load generator processes (Locust forks them: one Python
   process tops out at a few thousand calls per second, so the generator
   must not be the bottleneck; ``-1`` = one per core).
3. Writes ``<out>/<scenario>-<store>.html`` (Locust's report) and
   ``<out>/<scenario>-<store>_stats.csv`` (with ``_failures``, ``_exceptions``,
   ``_stats_history``), prints Locust's summary, stops everything.

Exit status: Locust's (non-zero when a call failed, was shed or degraded),
or 1 when the server's log has errors.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for _p in (ROOT / "tests", ROOT / "tests" / "integration"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

# The scenarios of loadtests/locustfile.py (its SCENARIOS; a unit test keeps them equal).
SCENARIO_NAMES = ("product_surfaces", "journey_ingestion", "mixed")


def _start_server(args: argparse.Namespace, work: Path, now_ms: int) -> tuple[Any, Any]:
    """The seeded server (and its private Redis, or None)."""
    from server_procs import ServerProcess

    from benchmarks import decide_bench

    policies = ROOT / "examples" / "policies"
    if args.store == "memory":
        argv = (
            *("-m", "benchmarks.decide_bench", "--serve-memory", "--listen", "127.0.0.1:{port}"),
            *("--policies", str(policies), "--customers", str(args.customers)),
            *("--seed", "1", "--now-ms", str(now_ms)),
        )
        return ServerProcess(policies, work, name="memory", argv=argv).start(wait_s=300), None
    import redis_support

    redis = redis_support.RedisServer().start()
    seeded = decide_bench.seed_redis(redis.port, args.customers, now_ms, 1)
    print(f"seeded {args.customers:,} customers into Redis in {seeded:.1f}s", flush=True)
    extra = ("--workers", str(args.workers)) if args.workers else ()
    server = ServerProcess(policies, work, redis_url=redis.url, name="redis", extra_args=extra)
    return server.start(wait_s=120), redis


def run(args: argparse.Namespace) -> int:
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="arbiter-loadtest-"))
    now_ms = time.time_ns() // 1_000_000
    server, redis = _start_server(args, work, now_ms)
    name = f"{args.scenario}-{args.store}"
    env = {
        **os.environ,
        "ARBITER_LOAD_SCENARIO": args.scenario,
        "ARBITER_LOAD_CUSTOMERS": str(args.customers),
        "ARBITER_LOAD_ZIPF": str(args.zipf),
        "PYTHONPATH": str(ROOT),
    }
    argv = [
        str(Path(sys.executable).with_name("locust")),
        *("-f", str(ROOT / "loadtests" / "locustfile.py"), "--headless", "--only-summary"),
        *("-u", str(args.users), "-r", str(args.spawn_rate or args.users), "-t", args.duration),
        *("--host", server.address, "--processes", str(args.processes)),
        *("--html", str(args.out / f"{name}.html"), "--csv", str(args.out / name)),
        *("--loglevel", "WARNING"),
    ]
    print(
        f"Locust: scenario {args.scenario}, {args.users} users for {args.duration}, "
        f"{args.processes} generator process(es), {args.store} store on {server.address}",
        flush=True,
    )
    try:
        status = subprocess.run(argv, env=env, cwd=ROOT, check=False).returncode
    finally:
        server.stop()
        if redis is not None:
            redis.close()
    log = server.log_tail(200_000)
    shutil.rmtree(work, ignore_errors=True)
    if "Traceback" in log or " ERROR " in log:
        print(f"server log has errors:\n{log[-3000:]}", file=sys.stderr)
        status = status or 1
    print(f"report: {args.out / f'{name}.html'}; stats: {args.out / f'{name}_stats.csv'}")
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--scenario", choices=SCENARIO_NAMES, default="mixed")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--spawn-rate", type=float, default=0)
    parser.add_argument("--duration", default="20s")
    parser.add_argument("--store", choices=("memory", "redis"), default="memory")
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--zipf", type=float, default=1.0)
    parser.add_argument("--processes", type=int, default=1, help="Locust processes; -1 = per core")
    parser.add_argument(
        "--workers", type=int, default=0, help="server workers (Redis); 0 = default"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "loadtest")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
