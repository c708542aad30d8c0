"""The performance report: h2load against fresh ``arbiter serve`` processes, Decide vs Health, same run.

Run from the repository root (``make bench-grpc``, which installs h2load and
matplotlib first)::

    .venv/bin/python -m benchmarks.grpc_bench [--customers 50000] [--seconds 5]
        [--levels 1,8,32,64] [--rates 0.5,0.7,0.9] [--overload 2.0]
        [--workers 1,2,4] [--stores memory,redis,fixed] [--rounds 1] [--out benchmarks/results]

What it does:

1. Generates ``--customers`` realistic customers (``benchmarks.decide_bench``)
   and seeds them into a private ``redis-server`` and into an embedded-store
   server; requests pick customers with a Zipf skew (``--zipf``: a few
   customers are hot, most are cold), on a mix of surfaces.
2. **Concurrency sweep** (closed loop, ``--levels``): for each store (and the
   ``fixed`` ceiling server: every call answered with its first real answer,
   so Decide costs gRPC, interceptors and the messages but no deciding), Health
   (``grpc.health.v1.Health/Check``, the cheapest RPC the server has) and
   Decide on the same server, interleaved, ``--rounds`` times. Every Decide
   carries a fresh ``request_id`` (``benchmarks/h2load_bodies.c``), so each is
   a real decision with a commit, never a replay.
3. **Offered-rate runs** at ``--rates`` of each store's Decide saturation
   (the best closed-loop RPS): latency against offered load.
4. **Overload** (Redis): ``--overload`` x saturation with a 50 ms deadline;
   gRPC codes from the server's ``/metrics`` (h2load sees only HTTP 200), and
   a Python ``ArbiterClient`` probe during the run counts its fallbacks.
5. **Workers** (Redis): ``arbiter serve --workers N`` for ``--workers``,
   Health and Decide at the highest level.

Server CPU per call comes from ``/proc`` of the server process and its
workers; redis-server's separately. The tables print as they complete;
``--out`` receives ``grpc_bench.csv`` (every run), ``grpc_bench.md`` (the
tables) and PNG plots (latency vs offered rate, throughput vs workers).
"""

from __future__ import annotations

import argparse
import bisect
import csv
import itertools
import logging
import math
import os
import platform
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

ROOT: Final = Path(__file__).resolve().parents[1]
for _p in (ROOT / "tests", ROOT / "tests" / "integration"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from benchmarks import decide_bench  # noqa: E402
from benchmarks.h2load import (  # noqa: E402
    SEQ_DIGITS,
    Bodies,
    H2Result,
    build_shim,
    run_h2load,
    scrape,
    tree_cpu_seconds,
    write_bodies,
)

HEALTH: Final = "/grpc.health.v1.Health/Check"
DECIDE: Final = "/arbiter.v1.DecisionService/Decide"
BODIES: Final = 50_000
OVERLOAD_DEADLINE_MS: Final = 50  # the clients' default Decide deadline
RATE_DEADLINE_MS: Final = 1000  # below saturation: long enough to see queueing, not refusals


# =========================================================================== requests


def zipf_draws(n: int, k: int, s: float, rng: random.Random) -> list[int]:
    """``k`` customer indexes out of ``n``, index ``i`` drawn with weight ``1 / (i + 1) ** s``."""
    cumulative = list(itertools.accumulate(1.0 / (i + 1) ** s for i in range(n)))
    total = cumulative[-1]
    return [bisect.bisect_left(cumulative, rng.random() * total) for _ in range(k)]


def decide_messages(customers: int, zipf: float, seed: int) -> list[Any]:
    """Decide requests for Zipf-drawn customers on the surface mix, padded to one length, each
    with the 16-digit sequence placeholder in its ``request_id``."""
    from arbiter.v1 import decision_pb2

    rng = random.Random(seed)
    nonce = uuid.uuid4().hex[:8]
    weights = [w for w, *_ in decide_bench.SURFACES]
    messages = []
    for index in zipf_draws(customers, BODIES, zipf, rng):
        _, placement, channels = rng.choices(decide_bench.SURFACES, weights)[0]
        request = decision_pb2.DecideRequest(
            request_id=f"{nonce}-{'0' * SEQ_DIGITS}",
            customer_id=decide_bench.customer_id(index),
            placement=placement,
            channels=channels,
        )
        request.context["device"].string_value = rng.choice(("ios", "android", "web"))
        if placement == "web_cart_sidebar":
            request.context["cart_value"].double_value = round(rng.uniform(5, 90), 2)
        messages.append(request)
    longest = max(m.ByteSize() for m in messages)
    for m in messages:
        m.request_id += "." * (longest - m.ByteSize())
    return messages


# =========================================================================== servers


@dataclass
class Target:
    """A running server under test and what to call on it."""

    name: str  # "memory", "redis", "redis x2"
    server: Any  # server_procs.ServerProcess
    metrics_port: int
    redis_pid: int | None = None

    def url(self, path: str) -> str:
        return f"http://{self.server.address}{path}"


def start_redis_target(
    policies: Path,
    work: Path,
    redis: Any,
    workers: int,
    name: str = "redis",
    *,
    extra: tuple[str, ...] = (),
) -> Target:
    from server_procs import ServerProcess, free_port

    port = free_port()
    server = ServerProcess(
        policies,
        work,
        redis_url=redis.url,
        name=name.replace(" ", ""),
        extra_args=(
            *("--metrics-port", str(port), "--workers", str(workers), "--http-listen", "off"),
            *extra,
        ),
    )
    server.start(wait_s=120)
    return Target(name, server, port, redis.proc.pid)


def start_memory_target(
    policies: Path, work: Path, args: argparse.Namespace, now_ms: int, *, fixed: bool = False
) -> Target:
    """An embedded-store server seeded with the customers; ``fixed``: the "fixed" ceiling
    server, which answers every call with its first real answer (``decide_bench``)."""
    from server_procs import ServerProcess, free_port

    port = free_port()
    argv = (
        *("-m", "benchmarks.decide_bench", "--serve-memory", "--listen", "127.0.0.1:{port}"),
        *("--policies", str(policies), "--customers", str(args.customers)),
        *("--seed", str(args.seed), "--now-ms", str(now_ms), "--metrics-port", str(port)),
        *(("--fixed-answer",) if fixed else ()),
    )
    name = "fixed" if fixed else "memory"
    server = ServerProcess(policies, work, name=name, argv=argv)
    server.start(wait_s=300)
    return Target(name, server, port)


# =========================================================================== one run


@dataclass
class Row:
    """One measured run (a CSV row)."""

    kind: str  # sweep | rate | overload | workers
    store: str
    rpc: str
    workers: int
    concurrency: int
    offered_rps: float
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    calls: int
    ok: int
    refused: int
    other_errors: int
    degraded: int
    server_cpu_us: float  # per completed call
    redis_cpu_us: float
    server_cores: float
    h2load_cores: float
    round: int = 0
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


REFUSED_CODES: Final = ("RESOURCE_EXHAUSTED", "UNAVAILABLE")


def measure(
    target: Target,
    rpc: str,
    bodies: Bodies,
    *,
    kind: str,
    workers: int,
    concurrency: int,
    seconds: float,
    offered_rps: float = 0.0,
    headers: Sequence[str] = (),
    during: Callable[[], dict[str, Any]] | None = None,
) -> Row:
    """One h2load run against ``target`` with server/redis CPU and gRPC codes around it."""
    path = HEALTH if rpc == "health" else DECIDE
    connections = min(concurrency, 8)
    streams = max(1, concurrency // connections)
    rate = None
    if offered_rps:
        streams = max(streams, 64)  # room for the offered rate; in flight is the server's queue
        rate = offered_rps / connections
    run: dict[str, Any] = {
        "connections": connections,
        "streams": streams,
        "rps_per_connection": rate,
        "headers": headers,
    }
    run_h2load(target.url(path), bodies, seconds=0.5, warmup_s=0, **run)  # warm the connections
    codes0 = scrape(target.metrics_port, "arbiter_requests_total")
    degraded0 = sum(scrape(target.metrics_port, "arbiter_degraded_responses_total").values())
    replays0 = sum(scrape(target.metrics_port, "arbiter_replays_total").values())
    cpu0 = tree_cpu_seconds(target.server.pid)
    rcpu0 = tree_cpu_seconds(target.redis_pid) if target.redis_pid else 0.0
    started = time.perf_counter()
    extra: dict[str, Any] = {}
    if during is not None:
        import concurrent.futures

        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            probe = pool.submit(_delayed, during, 1.0)
            result = run_h2load(target.url(path), bodies, seconds=seconds, warmup_s=0, **run)
            extra = probe.result()
    else:
        result = run_h2load(target.url(path), bodies, seconds=seconds, warmup_s=0, **run)
    elapsed = time.perf_counter() - started
    cpu = tree_cpu_seconds(target.server.pid) - cpu0
    rcpu = (tree_cpu_seconds(target.redis_pid) - rcpu0) if target.redis_pid else 0.0
    codes = _delta(codes0, scrape(target.metrics_port, "arbiter_requests_total"), "Decide")
    degraded = sum(scrape(target.metrics_port, "arbiter_degraded_responses_total").values())
    # Every Decide must be a decision: a replayed request id would be far cheaper.
    extra["replays"] = int(
        sum(scrape(target.metrics_port, "arbiter_replays_total").values()) - replays0
    )
    return _row(
        result, kind=kind, store=target.name, rpc=rpc, workers=workers, concurrency=concurrency,
        offered=offered_rps, cpu=cpu, rcpu=rcpu, elapsed=elapsed, codes=codes,
        degraded=int(degraded - degraded0), extra=extra,
    )  # fmt: skip


def _delayed(fn: Callable[[], dict[str, Any]], delay_s: float) -> dict[str, Any]:
    time.sleep(delay_s)
    return fn()


def _delta(
    before: dict[tuple[tuple[str, str], ...], float],
    after: dict[tuple[tuple[str, str], ...], float],
    method: str,
) -> dict[str, int]:
    out: dict[str, int] = {}
    for key, value in after.items():
        labels = dict(key)
        if labels.get("method") == method:
            n = int(value - before.get(key, 0.0))
            if n:
                out[labels["code"]] = out.get(labels["code"], 0) + n
    return out


def _row(
    result: H2Result,
    *,
    kind: str,
    store: str,
    rpc: str,
    workers: int,
    concurrency: int,
    offered: float,
    cpu: float,
    rcpu: float,
    elapsed: float,
    codes: dict[str, int],
    degraded: int,
    extra: dict[str, Any],
) -> Row:
    calls = result.done
    total_codes = sum(codes.values())
    ok_share = codes.get("OK", 0) / total_codes if rpc == "decide" and total_codes else 1.0
    # CPU per call: over every call the server answered in the window (h2load's count for
    # Health, which the server's metrics do not count).
    answered = total_codes if rpc == "decide" and total_codes else calls
    refused = sum(codes.get(c, 0) for c in REFUSED_CODES)
    return Row(
        kind=kind,
        store=store,
        rpc=rpc,
        workers=workers,
        concurrency=concurrency,
        offered_rps=round(offered),
        rps=round(result.rps * ok_share),  # answered OK per second
        p50_ms=round(result.pct(0.50), 2),
        p99_ms=round(result.pct(0.99), 2),
        max_ms=round(1000 * result.latencies[-1], 2) if result.latencies else math.nan,
        calls=calls,
        ok=round(calls * ok_share),
        refused=refused,
        # CANCELLED: calls still in flight when h2load stopped (not errors of the server).
        other_errors=total_codes - codes.get("OK", 0) - refused - codes.get("CANCELLED", 0),
        degraded=degraded if rpc == "decide" else 0,
        server_cpu_us=round(1e6 * cpu / answered) if answered else math.nan,
        redis_cpu_us=round(1e6 * rcpu / answered) if answered and rcpu else 0.0,
        server_cores=round(cpu / elapsed, 2),
        h2load_cores=round(result.cpu_s / elapsed, 2),
        extra={"codes": codes, **extra},
    )


# =========================================================================== the phases


@dataclass
class Bench:
    """Everything one run of the report shares: arguments, bodies, results."""

    args: argparse.Namespace
    health: Bodies
    decide: Bodies
    rows: list[Row] = field(default_factory=list)
    out: Callable[[str], None] = print

    def bodies(self, rpc: str) -> Bodies:
        return self.health if rpc == "health" else self.decide

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        self.out(format_row(row))
        return row


def sweep(bench: Bench, targets: Sequence[Target]) -> None:
    """Closed loop at every level: Health and Decide on each target, interleaved, in rounds."""
    for rnd in range(bench.args.rounds):
        for level in bench.args.levels:
            for target in targets:
                for rpc in ("health", "decide"):
                    row = measure(
                        target, rpc, bench.bodies(rpc), kind="sweep", workers=1,
                        concurrency=level, seconds=bench.args.seconds,
                    )  # fmt: skip
                    row.round = rnd
                    bench.add(row)


def saturation(bench: Bench, store: str, rpc: str = "decide") -> float:
    """The best closed-loop RPS of ``rpc`` on ``store`` in the sweep (``--saturation`` without one)."""
    rows = [r for r in bench.rows if r.kind == "sweep" and r.store == store and r.rpc == rpc]
    return max((r.rps for r in rows), default=float(bench.args.saturation))


def rates(bench: Bench, targets: Sequence[Target]) -> None:
    """Decide at fractions of its saturation: latency against offered load."""
    for target in targets:
        if target.name == "fixed":
            continue
        peak = saturation(bench, target.name)
        for fraction in bench.args.rates:
            row = measure(
                target, "decide", bench.decide, kind="rate", workers=1,
                concurrency=8, seconds=bench.args.seconds, offered_rps=fraction * peak,
                headers=(f"grpc-timeout: {RATE_DEADLINE_MS}m",),
            )  # fmt: skip
            row.notes = f"{fraction:.0%} of saturation ({peak:.0f} RPS)"
            bench.add(row)


def overload(bench: Bench, target: Target, *, label: str = "") -> None:
    """Decide at ``--overload`` x saturation with a 50 ms deadline, and a client probe."""
    peak = saturation(bench, "redis")
    probe = _client_probe(target.server.address, bench.args.customers)
    row = measure(
        target, "decide", bench.decide, kind="overload", workers=1, concurrency=64,
        seconds=bench.args.seconds, offered_rps=bench.args.overload * peak,
        headers=(f"grpc-timeout: {OVERLOAD_DEADLINE_MS}m",), during=probe,
    )  # fmt: skip
    row.notes = (
        f"{bench.args.overload:g}x saturation ({peak:.0f} RPS), deadline {OVERLOAD_DEADLINE_MS} ms"
        + (f", {label}" if label else "")
    )
    bench.add(row)
    bench.out(
        f"  {label or 'overload'}: codes {row.extra['codes']}; client probe: {row.extra.get('probe')}"
    )


def _client_probe(address: str, customers: int) -> Callable[[], dict[str, Any]]:
    """200 ``ArbiterClient.decide`` calls (default 50 ms deadline, default retries): how many
    were answered and how fast (p99, slowest), how many fell back and why, and how fast the
    refusals (``OVERLOADED``: RESOURCE_EXHAUSTED, from admission control or gRPC's core) came."""

    def probe() -> dict[str, Any]:
        from arbiter_client import ArbiterClient, ArbiterError

        logging.getLogger("arbiter_client").setLevel(logging.ERROR)  # one warning per fallback
        rng = random.Random(7)
        answered: list[float] = []
        fallbacks: dict[str, list[float]] = {}
        raised: dict[str, int] = {}
        started = time.perf_counter()
        with ArbiterClient(address) as client:
            for _ in range(200):
                t0 = time.perf_counter()
                try:
                    decision = client.decide(
                        decide_bench.customer_id(rng.randrange(customers)),
                        "home_banner",
                        channels=["in_app"],
                    )
                except ArbiterError as exc:  # neither an answer nor a fallback
                    raised[exc.code.name] = raised.get(exc.code.name, 0) + 1
                    continue
                took = 1000 * (time.perf_counter() - t0)
                if decision.fallback:
                    reason = decision.fallback_reason.name if decision.fallback_reason else "?"
                    fallbacks.setdefault(reason, []).append(took)
                else:
                    answered.append(took)
        answered.sort()
        return {
            "probe": {
                "calls": 200,
                "answered": len(answered),
                "answered_p99_ms": round(answered[int(0.99 * (len(answered) - 1))], 1)
                if answered
                else None,
                "answered_max_ms": round(answered[-1], 1) if answered else None,
                "fallbacks": {
                    reason: {"n": len(ms), "median_ms": round(sorted(ms)[len(ms) // 2], 1)}
                    for reason, ms in fallbacks.items()
                },
                "raised": raised,
                "seconds": round(time.perf_counter() - started, 2),
            }
        }

    return probe


def workers_curve(bench: Bench, policies: Path, work: Path, redis: Any) -> None:
    """Health and Decide at the highest level for ``arbiter serve --workers N`` on Redis."""
    level = max(bench.args.levels)
    for count in bench.args.workers:
        target = start_redis_target(policies, work, redis, count, name=f"redis x{count}")
        try:
            for rpc in ("health", "decide"):
                bench.add(
                    measure(
                        target, rpc, bench.bodies(rpc), kind="workers", workers=count,
                        concurrency=level, seconds=bench.args.seconds,
                    )
                )  # fmt: skip
        finally:
            target.server.stop()


# =========================================================================== output

HEADER: Final = (
    f"{'kind':8} {'store':9} {'rpc':6} {'conc':>4} {'offered':>7} {'RPS':>6} {'p50 ms':>7} "
    f"{'p99 ms':>7} {'max ms':>7} {'refused':>7} {'errors':>6} {'degr.':>5} {'CPU/call':>8} "
    f"{'redis':>6} {'srv cores':>9} {'h2load':>6} {'replays':>7}"
)


def format_row(r: Row) -> str:
    offered = f"{r.offered_rps:.0f}" if r.offered_rps else "-"
    return (
        f"{r.kind:8} {r.store:9} {r.rpc:6} {r.concurrency:>4} {offered:>7} {r.rps:>6.0f} "
        f"{r.p50_ms:>7.2f} {r.p99_ms:>7.2f} {r.max_ms:>7.1f} {r.refused:>7} {r.other_errors:>6} "
        f"{r.degraded:>5} {r.server_cpu_us:>6.0f}us {r.redis_cpu_us:>4.0f}us "
        f"{r.server_cores:>9.2f} {r.h2load_cores:>6.2f} {r.extra.get('replays', 0):>7}"
    )


def summary(bench: Bench) -> list[str]:
    """The goal table: Decide vs Health on the same server, same run (best level of each)."""
    lines = [
        "| store | Health RPS | Decide RPS | Decide / Health | CPU per call Health | "
        "CPU per call Decide | Decide / Health CPU | redis CPU per Decide |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for store in dict.fromkeys(r.store for r in bench.rows if r.kind == "sweep"):
        health, decide = saturation(bench, store, "health"), saturation(bench, store, "decide")
        h_cpu = _median_cpu(bench, store, "health")
        d_cpu = _median_cpu(bench, store, "decide")
        r_cpu = _median_cpu(bench, store, "decide", "redis_cpu_us")
        lines.append(
            f"| {store} | {health:,.0f} | {decide:,.0f} | {decide / health:.2f} | {h_cpu:.0f} µs | "
            f"{d_cpu:.0f} µs | {d_cpu / h_cpu:.2f} | {r_cpu:.0f} µs |"
        )
    return lines


def _median_cpu(bench: Bench, store: str, rpc: str, column: str = "server_cpu_us") -> float:
    """CPU per call at the saturating levels (>= 32 in flight, else the highest), median over
    rounds and levels."""
    rows = [r for r in bench.rows if r.kind == "sweep" and r.store == store and r.rpc == rpc]
    floor = min(32, max((r.concurrency for r in rows), default=0))
    values = sorted(getattr(r, column) for r in rows if r.concurrency >= floor)
    return values[len(values) // 2] if values else math.nan


def markdown(bench: Bench, kinds: Sequence[str]) -> list[str]:
    """Rows of ``kinds`` as a markdown table."""
    lines = [
        "| kind | store | rpc | workers | in flight | offered | RPS | p50 ms | p99 ms | max ms | "
        "refused | errors | degraded | server CPU/call | redis CPU/call | server cores |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in bench.rows:
        if r.kind in kinds:
            offered = f"{r.offered_rps:,.0f}" if r.offered_rps else "-"
            lines.append(
                f"| {r.kind} | {r.store} | {r.rpc} | {r.workers} | {r.concurrency} | {offered} | "
                f"{r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.max_ms:.1f} | {r.refused} | "
                f"{r.other_errors} | {r.degraded} | {r.server_cpu_us:.0f} µs | "
                f"{r.redis_cpu_us:.0f} µs | {r.server_cores:.2f} |"
            )
    return lines


def write_outputs(bench: Bench, out_dir: Path, header: str) -> list[Path]:
    """``grpc_bench.csv``, ``grpc_bench.md`` and the PNG plots into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / "grpc_bench.csv"
    with csv_path.open("w", newline="") as f:
        columns = [k for k in asdict(bench.rows[0]) if k != "extra"] + ["codes", "replays"]
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for row in bench.rows:
            data = asdict(row)
            extra = data.pop("extra")
            writer.writerow(
                {**data, "codes": extra.get("codes", {}), "replays": extra.get("replays", 0)}
            )
    md_path = out_dir / "grpc_bench.md"
    sections = [header, "", *summary(bench), ""]
    sections += ["Concurrency sweep (closed loop):", "", *markdown(bench, ("sweep",)), ""]
    sections += ["Offered rate and overload:", "", *markdown(bench, ("rate", "overload")), ""]
    sections += ["Worker processes:", "", *markdown(bench, ("workers",)), ""]
    md_path.write_text("\n".join(sections))
    from benchmarks import plots

    return [csv_path, md_path, *plots.write(bench.rows, out_dir)]


# =========================================================================== main


def _list(cast: Callable[[str], Any]) -> Callable[[str], list[Any]]:
    return lambda text: [cast(x) for x in text.split(",") if x.strip()]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--zipf", type=float, default=1.0, help="Zipf exponent of customer draws")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per run")
    parser.add_argument("--levels", type=_list(int), default=[1, 8, 32, 64])
    parser.add_argument("--rates", type=_list(float), default=[0.5, 0.7, 0.9])
    parser.add_argument("--overload", type=float, default=2.0, help="0: skip the overload run")
    parser.add_argument("--workers", type=_list(int), default=[1, 2, 4], help="empty: skip")
    parser.add_argument(
        "--stores",
        type=_list(str),
        default=["memory", "redis", "fixed"],
        help="fixed: the ceiling server, every call answered with its first answer",
    )
    parser.add_argument("--rounds", type=int, default=1, help="interleaved sweep rounds")
    parser.add_argument(
        "--phases", type=_list(str), default=["sweep", "rates", "overload", "workers"]
    )
    parser.add_argument(
        "--saturation", type=float, default=1000.0, help="Decide RPS assumed without a sweep"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> Bench:
    """Set up, run every phase, tear down; the results."""
    import redis_support
    from grpc_health.v1 import health_pb2

    work = Path(tempfile.mkdtemp(prefix="arbiter-grpc-bench-"))
    policies = ROOT / "examples" / "policies"
    now_ms = time.time_ns() // 1_000_000
    shim = build_shim(ROOT / "build")
    health = write_bodies(work, "health", [health_pb2.HealthCheckRequest()], None)
    decide = write_bodies(
        work, "decide", decide_messages(args.customers, args.zipf, args.seed), shim
    )
    bench = Bench(args, health, decide)
    targets: list[Target] = []
    redis: Any = None
    try:
        if "redis" in args.stores:
            redis = redis_support.RedisServer().start()
            seeded = decide_bench.seed_redis(redis.port, args.customers, now_ms, args.seed)
            print(f"seeded {args.customers} customers into Redis in {seeded:.1f}s", flush=True)
        if "memory" in args.stores:
            targets.append(start_memory_target(policies, work, args, now_ms))
        if "fixed" in args.stores:  # the ceiling: Decide as if deciding cost nothing
            targets.append(start_memory_target(policies, work, args, now_ms, fixed=True))
        if redis is not None:
            targets.append(start_redis_target(policies, work, redis, 1))
        print(HEADER, flush=True)
        if "sweep" in args.phases:
            sweep(bench, targets)
        if "rates" in args.phases:
            rates(bench, targets)
        redis_target = next((t for t in targets if t.name == "redis"), None)
        if "overload" in args.phases and args.overload and redis_target is not None:
            overload(bench, redis_target, label="--max-pending-calls 3000 (default: gRPC's)")
            # The same run with a tight pending-call limit in gRPC's core: what refusing there
            # (before any Python work) changes.
            tight = start_redis_target(
                policies, work, redis, 1, name="redis",
                extra=("--max-pending-calls", "64"),
            )  # fmt: skip
            try:
                overload(bench, tight, label="--max-pending-calls 64")
            finally:
                tight.server.stop()
        for target in targets:
            target.server.stop()
        targets = []
        if "workers" in args.phases and args.workers and redis is not None:
            workers_curve(bench, policies, work, redis)
    finally:
        for target in targets:
            target.server.stop()
        if redis is not None:
            redis.close()
        shutil.rmtree(work, ignore_errors=True)
    return bench


def describe(args: argparse.Namespace) -> str:
    load = os.getloadavg()[0]
    return (
        f"grpc bench: {args.customers:,} customers (Zipf {args.zipf:g}), {args.seconds:g}s per run, "
        f"levels {args.levels}, {args.rounds} round(s), Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, load average {load:.2f} at start, {time.strftime('%Y-%m-%d %H:%M')}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("h2load") is None:
        print("h2load is not installed: apt-get install -y nghttp2-client", file=sys.stderr)
        return 2
    if "redis" in args.stores and shutil.which("redis-server") is None:
        print("redis-server is not on the PATH (or --stores memory)", file=sys.stderr)
        return 2
    header = describe(args)
    print(header, flush=True)
    bench = run(args)
    print()
    for line in summary(bench):
        print(line)
    for path in write_outputs(bench, args.out, header):
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
