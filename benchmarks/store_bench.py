"""Store latency: RedisStore vs MemoryStore, load + commit per decision, measured in the same run.

Run from the repository root::

    .venv/bin/python -m benchmarks.store_bench [--customers 10000] [--seconds 3]
        [--concurrency 1,8,32,128] [--redis-url redis://...] [--cluster] [--json]

Without ``--redis-url`` a private ``redis-server`` is started on a free
127.0.0.1 port (``--cluster``: a private 3-master Redis Cluster) and removed
afterwards. Both stores are seeded with the same ``--customers`` customers
(profile, consent, a journey, a 24-bucket counter, three cap keys with
grants). One *op* is what Decide does with the store: ``load`` (the parts a
policy needs plus the idempotency lookup, one script call) followed by
``commit_decision`` (one grant counting against three caps, one script
call), for a random customer and a fresh request id. ``concurrency``
coroutines run ops back to back on one event loop (uvloop when installed)
for ``--seconds`` each; every call is timed. Reported per store and level:
ops/s and p50 / p99 of load, commit and the whole op, in microseconds.

The client's CPU dominates (``docs/state-redis.md``, "Benchmark"), so figures at concurrency 1 are
latency and figures at high concurrency are the client's throughput limit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sys
import time
import timeit
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from arbiter.policies.effects import CapIncrement, DecisionCommit, Grant
from arbiter.policies.snapshot import (
    PARTS,
    ConsentRecord,
    CustomerSnapshot,
    EventCounter,
    JourneyState,
    ProfileValue,
    SnapshotNeeds,
)
from arbiter.state.memory import MemoryStore
from arbiter.state.redis_codec import load_plan
from arbiter.state.redis_store import RedisStore
from arbiter.state.store import Store

T0 = 1_700_000_000_000
HOUR = 3_600_000
DAY = 24 * HOUR

NEEDS = SnapshotNeeds(
    parts=frozenset(PARTS),
    profile_attributes=frozenset({"country", "tier", "timezone", "do_not_contact"}),
    consent_purposes=frozenset({"email_marketing", "push"}),
    event_types=frozenset({"purchase"}),
    cap_keys=frozenset({"global", "channel/email", "action/welcome"}),
)
CAPS = (
    CapIncrement(cap_id="global", key="global", window_ms=DAY, limit=1_000_000),
    CapIncrement(cap_id="channel", key="channel/email", window_ms=7 * DAY, limit=1_000_000),
    CapIncrement(cap_id="action", key="action/welcome", window_ms=HOUR, limit=1_000_000),
)


def snapshot(cid: str) -> CustomerSnapshot:
    """A typical customer: a few traits, two consents, one journey, a counter, cap history."""
    return CustomerSnapshot(
        customer_id=cid,
        profile={
            "country": ProfileValue(value="DE", updated_ms=T0 - DAY, source="crm"),
            "tier": ProfileValue(value="gold", updated_ms=T0 - DAY, source="crm"),
            "timezone": ProfileValue(value="Europe/Berlin", updated_ms=T0 - DAY, source="crm"),
            "email": ProfileValue(value=f"{cid}@example.com", updated_ms=T0 - DAY, source="crm"),
        },
        consent={
            "email_marketing": ConsentRecord(state="granted", updated_ms=T0 - DAY, source="cmp"),
            "push": ConsentRecord(state="denied", updated_ms=T0 - DAY, source="cmp"),
        },
        events={
            "purchase": EventCounter(
                total=24,
                first_ms=T0 - DAY,
                last_ms=T0 - HOUR,
                buckets={T0 - T0 % HOUR - h * HOUR: 1 for h in range(1, 25)},
            )
        },
        journeys={
            "welcome": JourneyState(
                status="active",
                stage="day1",
                entered_ms=T0 - DAY,
                stage_entered_ms=T0 - DAY,
                entry_event_id="signup-1",
                last_event_id="signup-1",
                dedup={"signup": T0 - DAY},
            )
        },
        caps={
            "global": [T0 - 3 * HOUR, T0 - 2 * HOUR],
            "channel/email": [T0 - 2 * DAY, T0 - 3 * HOUR],
            "action/welcome": [],
        },
    )


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def run_level(
    store: Store, customers: int, concurrency: int, seconds: float, tag: str
) -> dict[str, Any]:
    loads: list[float] = []
    commits: list[float] = []
    ops: list[float] = []
    deadline = time.perf_counter() + seconds
    rng = random.Random(concurrency)
    perf = time.perf_counter

    async def worker(w: int) -> None:
        i = 0
        while perf() < deadline:
            i += 1
            cid = f"c{rng.randrange(customers)}"
            rid = f"{tag}-{concurrency}-{w}-{i}"
            t0 = perf()
            loaded = await store.load(cid, NEEDS, T0, request_id=rid)
            t1 = perf()
            assert loaded.replay is None
            await store.commit_decision(
                DecisionCommit(
                    customer_id=cid,
                    request_id=rid,
                    decision_id=rid,
                    now_ms=T0,
                    policy_version="bench",
                    grants=(
                        Grant(tracking_id=rid + ".a", action="welcome", channel="email", caps=CAPS),
                    ),
                ),
                b'{"actions":[]}',
                ttl_s=120,
            )
            t2 = perf()
            loads.append(t1 - t0)
            commits.append(t2 - t1)
            ops.append(t2 - t0)

    started = perf()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    elapsed = perf() - started
    us = 1e6
    return {
        "concurrency": concurrency,
        "ops_per_s": round(len(ops) / elapsed),
        "load_p50_us": round(pct(loads, 0.5) * us),
        "load_p99_us": round(pct(loads, 0.99) * us),
        "commit_p50_us": round(pct(commits, 0.5) * us),
        "commit_p99_us": round(pct(commits, 0.99) * us),
        "op_p50_us": round(pct(ops, 0.5) * us),
        "op_p99_us": round(pct(ops, 0.99) * us),
    }


async def bench(args: argparse.Namespace, url: str) -> dict[str, Any]:
    levels = [int(x) for x in args.concurrency.split(",")]
    memory = MemoryStore()
    redis = RedisStore.from_url(url, prefix="bench", default_timeout_s=5.0, max_in_flight=64)
    await redis.init_state()
    try:
        seeded = time.perf_counter()
        for i in range(args.customers):
            memory.seed(snapshot(f"c{i}"))
        batch = 256
        for start in range(0, args.customers, batch):
            await asyncio.gather(
                *(
                    redis.seed(snapshot(f"c{i}"))
                    for i in range(start, min(start + batch, args.customers))
                )
            )
        seed_s = time.perf_counter() - seeded
        results: dict[str, list[dict[str, Any]]] = {"memory": [], "redis": []}
        for level in levels:
            for name, store in (("memory", memory), ("redis", redis)):
                # Warm up (script cache, connections), then measure.
                await run_level(store, args.customers, level, 0.2, "warm")
                results[name].append(
                    await run_level(store, args.customers, level, args.seconds, name)
                )
        # What the per-needs memo of the load arguments saves per load.
        plans = {NEEDS: load_plan(NEEDS)}
        n = 100_000
        memo_ns = timeit.timeit(lambda: plans.get(NEEDS), number=n) / n * 1e9
        build_ns = timeit.timeit(lambda: load_plan(NEEDS), number=n) / n * 1e9
        for i in range(args.customers):
            await redis.forget_customer(f"c{i}")
        return {
            "customers": args.customers,
            "seconds_per_level": args.seconds,
            "seed_s": round(seed_s, 2),
            "cluster": redis.cluster,
            "load_plan_memo_ns": round(memo_ns),
            "load_plan_build_ns": round(build_ns),
            "results": results,
        }
    finally:
        await redis.close()
        await memory.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", default="1,8,32,128")
    parser.add_argument("--redis-url", default="", help="use this Redis instead of a private one")
    parser.add_argument("--cluster", action="store_true", help="private 3-master Redis Cluster")
    parser.add_argument("--no-uvloop", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    server: Any = None
    url = args.redis_url
    if not url:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        import redis_support

        server = (
            redis_support.RedisClusterServers() if args.cluster else redis_support.RedisServer()
        ).start()
        url = server.url
    runner: Callable[[Awaitable[dict[str, Any]]], dict[str, Any]] = asyncio.run  # type: ignore[assignment]
    if not args.no_uvloop:
        try:
            import uvloop

            runner = uvloop.run  # type: ignore[assignment]
        except ImportError:
            pass
    try:
        report = runner(bench(args, url))
    finally:
        if server is not None:
            server.close()
    report["python"] = platform.python_version()
    report["cpus"] = os.cpu_count()
    report["loop"] = "asyncio" if runner is asyncio.run else "uvloop"
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"store bench: {report['customers']} seeded customers (seeded in {report['seed_s']}s), "
        f"{report['seconds_per_level']}s per level, {report['loop']}, "
        f"{'Redis Cluster (3 masters)' if report['cluster'] else 'single-node Redis'}, "
        f"Python {report['python']}, {report['cpus']} CPUs"
    )
    header = (
        f"{'store':8} {'conc':>5} {'ops/s':>8} {'load p50':>9} {'load p99':>9} "
        f"{'commit p50':>11} {'commit p99':>11} {'op p50':>8} {'op p99':>8}   (µs)"
    )
    print(header)
    for i in range(len(report["results"]["memory"])):
        for name in ("memory", "redis"):
            r = report["results"][name][i]
            print(
                f"{name:8} {r['concurrency']:>5} {r['ops_per_s']:>8} {r['load_p50_us']:>9} "
                f"{r['load_p99_us']:>9} {r['commit_p50_us']:>11} {r['commit_p99_us']:>11} "
                f"{r['op_p50_us']:>8} {r['op_p99_us']:>8}"
            )
    print(
        f"load argument layout per needs: memoised {report['load_plan_memo_ns']} ns, "
        f"rebuilt {report['load_plan_build_ns']} ns per load"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
