"""Decide end to end: ``arbiter serve`` on Redis vs on the embedded store, same run, same customers.

Run from the repository root (``make bench-decide``)::

    .venv/bin/python -m benchmarks.decide_bench [--customers 100000] [--seconds 5]
        [--levels 1,2,4,8,16,64] [--drivers 1] [--stores redis,memory] [--json]

What it does:

1. Generates ``--customers`` realistic customers for ``examples/policies``
   (region mix and consent, plan / subscription, app install, orders and
   lifetime value, VIP / price-sensitive segments, event counters, some
   customers in the cart-abandonment or onboarding journey, some cap
   history), deterministically from ``--seed``.
2. Seeds them into a private ``redis-server`` (free 127.0.0.1 port, removed
   afterwards) in the exact ``RedisStore`` format: the arguments of
   ``RedisStore.seed`` are captured per customer and streamed as ``EVALSHA
   seed.lua`` commands through ``redis-cli --pipe`` (one pipe, no per-call
   round trips).
3. Starts ``arbiter serve --redis-url ...`` and, for the embedded store, a
   server process whose ``MemoryStore`` is seeded with the same customers
   (``arbiter serve`` cannot seed one, so this module runs
   ``server.app.serve(settings, store=seeded)`` in a subprocess).
4. For each concurrency level and store: ``level`` concurrent closed-loop
   ``grpc.aio`` clients (split over ``--drivers`` processes) call Decide for
   random customers on a mix of surfaces for ``--seconds`` (after a short
   warm-up). Reported: RPS, p50 / p99 / max latency seen by the client,
   errors (non-OK status), degraded answers, and the CPU the server and the
   driver (and redis-server) used (% of one core) -- a server at >= 85 % of a core is
   saturated; a driver at >= 85 % means the level is client-bound.

The verdict line names the highest level where neither is saturated and
whether Redis-backed Decide p99 is under 10 ms there (``docs/architecture.md``, "Targets").
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import logging
import multiprocessing
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

ROOT: Final = Path(__file__).resolve().parents[1]
for _p in (ROOT / "tests", ROOT / "tests" / "integration"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from arbiter.policies.snapshot import (  # noqa: E402
    ConsentRecord,
    CustomerSnapshot,
    EventCounter,
    JourneyState,
    ProfileValue,
)

HOUR: Final = 3_600_000
DAY: Final = 24 * HOUR
SATURATED_CPU: Final = 0.85
P99_TARGET_MS: Final = 10.0

# (weight, placement, channels, context) -- what product backends ask about.
SURFACES: Final = (
    (5, "home_banner", ("in_app",)),
    (2, "cart_drawer", ("in_app",)),
    (2, "", ("email", "push", "sms")),
    (1, "web_cart_sidebar", ("web",)),
)
_REGIONS: Final = (
    ("US", "America/New_York", 45),
    ("US", "America/Los_Angeles", 10),
    ("EU", "Europe/Berlin", 20),
    ("EU", "Europe/Paris", 5),
    ("UK", "Europe/London", 10),
    ("CA", "America/Toronto", 7),
    ("OTHER", "Asia/Tokyo", 3),
)
_PURPOSES: Final = ("email_marketing", "push_marketing", "sms_marketing", "personalization")


# =========================================================================== customers


def customer_id(i: int) -> str:
    return f"bench-{i}"


def make_customer(i: int, now_ms: int, seed: int) -> CustomerSnapshot:
    """One realistic customer of the Acme Box example (deterministic in ``i`` and ``seed``)."""
    rng = random.Random(seed * 1_000_003 + i)
    cid = customer_id(i)
    region, tz, _ = rng.choices(_REGIONS, weights=[w for *_, w in _REGIONS])[0]
    at = now_ms - rng.randrange(1, 90) * DAY
    orders = rng.choice((0, 0, 1, 2, 3, 5, 8, 13))

    def pv(value: Any) -> ProfileValue:
        return ProfileValue(value=value, updated_ms=at, source="crm")

    profile = {
        "email": pv(f"{cid}@example.com"),
        "first_name": pv("Alex"),
        "country": pv({"US": "US", "EU": "DE", "UK": "GB", "CA": "CA"}.get(region, "JP")),
        "region": pv(region),
        "timezone": pv(tz),
        "plan": pv(rng.choice(("none", "basic", "basic", "premium"))),
        "subscription_status": pv(
            rng.choices(("active", "paused", "cancelled", "none"), (60, 10, 10, 20))[0]
        ),
        "lifetime_value": pv(round(orders * rng.uniform(20, 60), 2)),
        "orders_count": pv(orders),
        "app_installed": pv(rng.random() < 0.6),
        "email_verified": pv(rng.random() < 0.85),
        "do_not_contact": pv(rng.random() < 0.02),
        "favorite_categories": pv(rng.sample(["snacks", "drinks", "sweets", "vegan"], k=2)),
    }
    consent: dict[str, ConsentRecord] = {}
    for purpose in _PURPOSES:
        roll = rng.random()
        if roll < 0.55:
            consent[purpose] = ConsentRecord(state="granted", updated_ms=at, source="cmp")
        elif roll < 0.75:
            consent[purpose] = ConsentRecord(state="denied", updated_ms=at, source="cmp")
    segments = frozenset(
        s
        for s, p in (("vip", 0.1), ("price_sensitive", 0.2), ("newsletter", 0.4))
        if rng.random() < p
    )
    events: dict[str, EventCounter] = {}
    hour0 = now_ms - now_ms % HOUR
    for etype, rate in (
        ("app_opened", 0.5),
        ("product_viewed", 0.6),
        ("cart_updated", 0.3),
        ("order_placed", 0.2),
        ("complaint_opened", 0.02),
    ):
        if rng.random() < rate:
            hours = sorted({rng.randrange(0, 24 * 30) for _ in range(rng.randint(1, 6))})
            buckets = {hour0 - h * HOUR: 1 for h in hours}
            events[etype] = EventCounter(
                total=len(buckets) + rng.randrange(0, 20),
                first_ms=min(buckets) - 30 * DAY,
                last_ms=max(buckets) + 60_000,
                buckets=buckets,
            )
    journeys: dict[str, JourneyState] = {}
    roll = rng.random()
    if roll < 0.2:
        entered = now_ms - rng.randrange(2, 20) * HOUR
        journeys["cart_abandonment"] = JourneyState(
            status="active",
            stage="reminder",
            entered_ms=entered,
            stage_entered_ms=entered + HOUR,
            entry_event_id=f"ev-{cid}-cart",
            last_event_id=f"ev-{cid}-cart",
            dedup={f"cart-{cid}": entered},
        )
    elif roll < 0.3:
        entered = now_ms - rng.randrange(25, 90) * HOUR
        journeys["onboarding"] = JourneyState(
            status="active",
            stage="activation",
            entered_ms=entered,
            stage_entered_ms=entered + DAY,
            entry_event_id=f"ev-{cid}-signup",
            last_event_id=f"ev-{cid}-signup",
        )
    caps: dict[str, list[int]] = {}
    if rng.random() < 0.3:
        caps["marketing_monthly"] = sorted(
            now_ms - rng.randrange(1, 27 * 24) * HOUR for _ in range(3)
        )
        caps["outbound_daily"] = [now_ms - rng.randrange(1, 20) * HOUR]
    return CustomerSnapshot(
        customer_id=cid,
        profile=profile,
        consent=consent,
        events=events,
        segments=segments,
        journeys=journeys,
        caps=caps,
    )


def customers(n: int, now_ms: int, seed: int) -> Iterator[CustomerSnapshot]:
    for i in range(n):
        yield make_customer(i, now_ms, seed)


# =========================================================================== seeding Redis


def _resp(args: Sequence[str | int | bytes]) -> bytes:
    """One command in the Redis wire protocol."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%b\r\n" % (len(b), b))
    return b"".join(out)


def seed_redis(port: int, n: int, now_ms: int, seed: int) -> float:
    """Seed ``n`` customers in ``RedisStore`` format through ``redis-cli --pipe``; seconds taken."""
    from arbiter.state.redis_store import _SCRIPTS, RedisStore

    captured: list[bytes] = []

    class _Capture(RedisStore):
        async def _run(
            self,
            operation: str,
            script: Any,
            keys: Sequence[str],
            args: Sequence[str | int | bytes],
            timeout_s: float | None,
        ) -> Any:
            captured.append(_resp(["EVALSHA", script.sha, len(keys), *keys, *args]))

    from redis.asyncio import Redis

    capture = _Capture(Redis())  # never connects: _run only records the call
    started = time.perf_counter()
    script = _SCRIPTS["seed"]
    captured.append(_resp(["SCRIPT", "LOAD", script.source]))
    for snap in customers(n, now_ms, seed):
        coro = capture.seed(snap)
        try:
            coro.send(None)  # completes without suspending
        except StopIteration:
            pass
        else:  # pragma: no cover - seed() awaited something real
            raise RuntimeError("RedisStore.seed suspended during capture")
    with tempfile.TemporaryFile() as data:
        data.writelines(captured)
        data.seek(0)
        out = subprocess.run(
            ["redis-cli", "-h", "127.0.0.1", "-p", str(port), "--pipe"],
            stdin=data,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    if out.returncode != 0 or "errors: 0," not in out.stdout:
        raise RuntimeError(f"redis-cli --pipe failed: {out.stdout[-500:]} {out.stderr[-500:]}")
    return time.perf_counter() - started


# =========================================================================== embedded server


def serve_memory(args: argparse.Namespace) -> int:
    """Subprocess mode: ``arbiter serve`` on a MemoryStore seeded with the bench customers."""
    import uvloop

    from arbiter.server.app import serve
    from arbiter.server.config import Settings
    from arbiter.state.memory import MemoryStore

    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    store = MemoryStore()
    for snap in customers(args.customers, args.now_ms, args.seed):
        store.seed(snap)
    if args.fixed_answer:
        _answer_every_call_with_the_first()
    settings = Settings(
        policies=args.policies,
        listen=args.listen,
        grace_period_s=2.0,
        metrics_port=args.metrics_port,
        decision_log=args.decision_log,
    )
    return uvloop.run(serve(settings, store=store))


def _answer_every_call_with_the_first() -> None:
    """Benchmark ceiling (``grpc_bench``'s "fixed" server): each RPC method answers every call
    with its first real response, so a call costs only gRPC, the interceptors and (de)serialising
    the same messages -- what Decide would cost if deciding were free."""
    from arbiter.server.service import DecisionCore

    decide_for_real = DecisionCore.invoke
    first: dict[str, Any] = {}

    async def invoke(self: DecisionCore, method: str, request: Any, call: Any) -> Any:
        if method not in first:
            first[method] = await decide_for_real(self, method, request, call)
        return first[method]

    DecisionCore.invoke = invoke  # type: ignore[method-assign]


def memory_server_argv(
    policies: Path, customers_n: int, seed: int, now_ms: int, *extra: str
) -> tuple[str, ...]:
    """The command (after the interpreter) of a :func:`serve_memory` server process."""
    return (
        "-m",
        "benchmarks.decide_bench",
        "--serve-memory",
        "--listen",
        "127.0.0.1:{port}",
        "--policies",
        str(policies),
        "--customers",
        str(customers_n),
        "--seed",
        str(seed),
        "--now-ms",
        str(now_ms),
        *extra,
    )


# =========================================================================== the driver


def _requests(n: int, customers_n: int, rng: random.Random) -> list[Any]:
    from arbiter.v1 import decision_pb2

    weights = [w for w, *_ in SURFACES]
    out = []
    for _ in range(n):
        _, placement, channels = rng.choices(SURFACES, weights)[0]
        req = decision_pb2.DecideRequest(
            customer_id=customer_id(rng.randrange(customers_n)),
            placement=placement,
            channels=channels,
        )
        req.context["device"].string_value = rng.choice(("ios", "android", "web"))
        if placement == "web_cart_sidebar":
            req.context["cart_value"].double_value = round(rng.uniform(5, 90), 2)
        out.append(req)
    return out


@dataclass(frozen=True, slots=True)
class DriveSpec:
    """One driver process' share of a level (picklable: it crosses to a pool worker)."""

    address: str
    concurrency: int
    warmup_s: float
    seconds: float
    customers: int
    deadline_s: float


async def _drive(spec: DriveSpec) -> dict[str, Any]:
    import grpc

    from arbiter.v1 import decision_pb2_grpc

    rng = random.Random()
    pool = _requests(4096, spec.customers, rng)
    latencies: list[float] = []
    errors: dict[str, int] = {}
    degraded = 0
    perf = time.perf_counter
    channel = grpc.aio.insecure_channel(spec.address)
    stub = decision_pb2_grpc.DecisionServiceStub(channel)
    t_start = perf()
    t_measure = t_start + spec.warmup_s
    t_end = t_measure + spec.seconds
    cpu = [0.0, 0.0]
    prefix = uuid.uuid4().hex[:12]

    async def worker(w: int) -> None:
        nonlocal degraded
        i = 0
        while True:
            now = perf()
            if now >= t_end:
                return
            i += 1
            req = pool[(w * 7919 + i) % len(pool)]
            req.request_id = f"{prefix}-{w}-{i}"
            t0 = perf()
            try:
                reply = await stub.Decide(req, timeout=spec.deadline_s)
            except grpc.aio.AioRpcError as exc:
                if t0 >= t_measure:
                    errors[exc.code().name] = errors.get(exc.code().name, 0) + 1
                continue
            t1 = perf()
            if t0 >= t_measure and t1 <= t_end:
                latencies.append(t1 - t0)
                if reply.degradations:
                    degraded += 1

    async def cpu_marks() -> None:
        await asyncio.sleep(max(0.0, t_measure - perf()))
        cpu[0] = time.process_time()
        await asyncio.sleep(max(0.0, t_end - perf()))
        cpu[1] = time.process_time()

    await asyncio.gather(cpu_marks(), *(worker(w) for w in range(spec.concurrency)))
    await channel.close()
    return {
        "latencies": latencies,
        "errors": errors,
        "degraded": degraded,
        "cpu_s": cpu[1] - cpu[0],
    }


def drive_process(spec: DriveSpec) -> dict[str, Any]:
    """Run one driver's share of a level (in a pool worker process)."""
    import uvloop

    return uvloop.run(_drive(spec))


def pct(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of ``pid`` so far (0 without one)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_level(
    pool: concurrent.futures.Executor,
    server: Any,
    level: int,
    args: argparse.Namespace,
    redis_pid: int | None = None,
) -> dict[str, Any]:
    drivers = max(1, min(args.drivers, level))
    shares = [level // drivers + (1 if d < level % drivers else 0) for d in range(drivers)]
    futures = [
        pool.submit(
            drive_process,
            DriveSpec(
                server.address, share, args.warmup, args.seconds, args.customers, args.deadline
            ),
        )
        for share in shares
    ]
    # The server's CPU over the measured part (the drivers' warm-up runs first).
    time.sleep(args.warmup + 0.3)  # pool start-up + warm-up
    cpu0, rcpu0, t0 = server.cpu_seconds(), _cpu_seconds(redis_pid), time.perf_counter()
    time.sleep(max(0.0, args.seconds - 0.6))
    cpu1, rcpu1, t1 = server.cpu_seconds(), _cpu_seconds(redis_pid), time.perf_counter()
    parts = [f.result() for f in futures]
    latencies = sorted(x for p in parts for x in p["latencies"])
    errors: dict[str, int] = {}
    for p in parts:
        for k, v in p["errors"].items():
            errors[k] = errors.get(k, 0) + v
    ms = 1000.0
    return {
        "concurrency": level,
        "drivers": drivers,
        "calls": len(latencies),
        "rps": round(len(latencies) / args.seconds),
        "p50_ms": round(pct(latencies, 0.50) * ms, 2),
        "p99_ms": round(pct(latencies, 0.99) * ms, 2),
        "max_ms": round((latencies[-1] if latencies else float("nan")) * ms, 2),
        "errors": sum(errors.values()),
        "error_codes": errors,
        "degraded": sum(p["degraded"] for p in parts),
        "server_cpu": round((cpu1 - cpu0) / (t1 - t0), 2),
        "redis_cpu": round((rcpu1 - rcpu0) / (t1 - t0), 2),
        "driver_cpu": round(max(p["cpu_s"] for p in parts) / args.seconds, 2),
    }


# =========================================================================== main


def bench(args: argparse.Namespace) -> dict[str, Any]:
    import redis_support
    from server_procs import ServerProcess

    levels = [int(x) for x in args.levels.split(",") if x.strip()]
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    now_ms = time.time_ns() // 1_000_000
    work = Path(tempfile.mkdtemp(prefix="arbiter-decide-bench-"))
    policies = ROOT / "examples" / "policies"
    redis_server: Any = None
    servers: dict[str, Any] = {}
    report: dict[str, Any] = {
        "customers": args.customers,
        "seconds_per_level": args.seconds,
        "levels": levels,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "results": {},
    }
    ctx = multiprocessing.get_context("spawn")
    try:
        if "redis" in stores:
            redis_server = redis_support.RedisServer().start()
            report["seed_redis_s"] = round(
                seed_redis(redis_server.port, args.customers, now_ms, args.seed), 2
            )
            servers["redis"] = ServerProcess(
                policies, work, redis_url=redis_server.url, name="redis"
            )
        if "memory" in stores:
            servers["memory"] = ServerProcess(
                policies,
                work,
                name="memory",
                argv=memory_server_argv(policies, args.customers, args.seed, now_ms),
            )
        for name, server in servers.items():
            started = time.perf_counter()
            server.start(wait_s=180)
            report[f"start_{name}_s"] = round(time.perf_counter() - started, 2)
        with concurrent.futures.ProcessPoolExecutor(
            max_workers=args.drivers, mp_context=ctx
        ) as pool:
            for level in levels:
                for name, server in servers.items():
                    pid = redis_server.proc.pid if name == "redis" else None
                    result = run_level(pool, server, level, args, pid)
                    report["results"].setdefault(name, []).append(result)
                    if not args.json:
                        print(_row(name, result), flush=True)
    finally:
        for server in servers.values():
            server.stop()
        if redis_server is not None:
            redis_server.close()
        shutil.rmtree(work, ignore_errors=True)
    report["verdict"] = _verdict(report)
    return report


def _saturated(r: dict[str, Any]) -> bool:
    return bool(r["server_cpu"] >= SATURATED_CPU or r["driver_cpu"] >= SATURATED_CPU or r["errors"])


def _verdict(report: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, rows in report["results"].items():
        ok = [r for r in rows if not _saturated(r)]
        best = ok[-1] if ok else None
        out[name] = {
            "highest_unsaturated_concurrency": best["concurrency"] if best else None,
            "p99_ms": best["p99_ms"] if best else None,
            "p99_under_10ms": bool(best and best["p99_ms"] < P99_TARGET_MS),
        }
    return out


_HEADER: Final = (
    f"{'store':7} {'conc':>5} {'RPS':>7} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} "
    f"{'errors':>6} {'degr.':>6} {'srv CPU':>8} {'drv CPU':>8} {'redis CPU':>9}"
)


def _row(name: str, r: dict[str, Any]) -> str:
    flag = "  saturated" if _saturated(r) else ""
    return (
        f"{name:7} {r['concurrency']:>5} {r['rps']:>7} {r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f} "
        f"{r['max_ms']:>7.2f} {r['errors']:>6} {r['degraded']:>6} {r['server_cpu'] * 100:>7.0f}% "
        f"{r['driver_cpu'] * 100:>7.0f}% {r['redis_cpu'] * 100:>8.0f}%{flag}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per level")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds per level")
    parser.add_argument("--levels", default="1,2,4,8,16,64", help="concurrency levels")
    parser.add_argument("--drivers", type=int, default=1, help="driver processes")
    parser.add_argument("--stores", default="redis,memory")
    parser.add_argument("--deadline", type=float, default=1.0, help="Decide deadline, seconds")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    # Internal: the embedded-store server subprocess.
    parser.add_argument("--serve-memory", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--listen", default="127.0.0.1:0", help=argparse.SUPPRESS)
    parser.add_argument("--policies", default="", help=argparse.SUPPRESS)
    parser.add_argument("--now-ms", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--metrics-port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--decision-log", default="", help=argparse.SUPPRESS)
    parser.add_argument("--fixed-answer", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_memory:
        return serve_memory(args)
    if shutil.which("redis-server") is None and "redis" in args.stores:
        parser.error("redis-server is not on the PATH (or use --stores memory)")

    if not args.json:
        print(
            f"decide bench: {args.customers} customers, levels {args.levels}, "
            f"{args.seconds:g}s (+{args.warmup:g}s warm-up) per level and store, "
            f"{args.drivers} driver process(es), Python {platform.python_version()}, "
            f"{os.cpu_count()} CPUs"
        )
        print(_HEADER, flush=True)
    report = bench(args)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for key in ("seed_redis_s", "start_redis_s", "start_memory_s"):
        if key in report:
            print(f"{key}: {report[key]}")
    for name, v in report["verdict"].items():
        level = v["highest_unsaturated_concurrency"]
        if level is None:
            print(f"{name}: saturated at every level")
        else:
            print(
                f"{name}: highest unsaturated concurrency {level}: p99 {v['p99_ms']:.2f} ms "
                f"-> {'PASS' if v['p99_under_10ms'] else 'FAIL'} (p99 < {P99_TARGET_MS:g} ms)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
