"""``arbiter policy bench``: µs per decision, explain off and on, on a policy directory or a synthetic set."""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Sequence

import msgspec

from arbiter.policies import (
    CompiledPolicy,
    CustomerSnapshot,
    PolicyError,
    Request,
    decide,
    load_policy,
)
from arbiter.server.cli.synthetic import BENCH_NOW_MS, synthetic_policy, synthetic_snapshots

__all__ = ["BenchResult", "bench", "bench_command"]


class BenchResult(msgspec.Struct, frozen=True, kw_only=True):
    label: str
    decisions: int
    candidates: float  # mean candidates per decision (from the explain runs)
    chosen: float
    off_median_us: float
    off_p90_us: float
    off_p99_us: float
    on_median_us: float
    on_p90_us: float
    on_p99_us: float

    @property
    def ratio(self) -> float:
        return self.on_median_us / self.off_median_us if self.off_median_us else 0.0


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def bench(
    policy: CompiledPolicy,
    snapshots: Sequence[CustomerSnapshot],
    requests: Sequence[tuple[str, Request]],
    *,
    now_ms: int = BENCH_NOW_MS,
    rounds: int = 5,
) -> list[BenchResult]:
    """µs per decision for each request shape, explain off and on, over every snapshot."""
    results = []
    clock = time.perf_counter_ns
    for label, base in requests:
        quiet = msgspec.structs.replace(base, explain=False)
        loud = msgspec.structs.replace(base, explain=True)
        bound = [
            (
                msgspec.structs.replace(quiet, customer_id=s.customer_id, request_id=f"b{i}"),
                msgspec.structs.replace(loud, customer_id=s.customer_id, request_id=f"b{i}"),
                s,
            )
            for i, s in enumerate(snapshots)
        ]
        candidates = chosen = 0
        for _, req, snap in bound:  # warm-up (plans, zone caches) + candidate counts
            d, _ = decide(policy, req, snap, now_ms)
            candidates += len(d.candidates)
            chosen += len(d.actions)
        off: list[float] = []
        on: list[float] = []
        gc.collect()
        gc.disable()
        try:
            for _ in range(rounds):
                for q, loud_req, snap in bound:
                    t0 = clock()
                    decide(policy, q, snap, now_ms)
                    t1 = clock()
                    decide(policy, loud_req, snap, now_ms)
                    t2 = clock()
                    off.append((t1 - t0) / 1000)
                    on.append((t2 - t1) / 1000)
        finally:
            gc.enable()
        off.sort()
        on.sort()
        n = len(bound)
        results.append(
            BenchResult(
                label=label,
                decisions=len(off),
                candidates=candidates / n if n else 0.0,
                chosen=chosen / n if n else 0.0,
                off_median_us=statistics.median(off),
                off_p90_us=_percentile(off, 0.9),
                off_p99_us=_percentile(off, 0.99),
                on_median_us=statistics.median(on),
                on_p90_us=_percentile(on, 0.9),
                on_p99_us=_percentile(on, 0.99),
            )
        )
    return results


def _bench_requests(policy: CompiledPolicy) -> list[tuple[str, Request]]:
    requests: list[tuple[str, Request]] = [
        ("outbound: all channels, no placement, limit 3", Request(customer_id="x", limit=3)),
    ]
    placements = sorted({p for c in policy.channels.values() for p in c.placements})
    if placements:
        requests.append(
            (
                f"placement {placements[0]}, limit 1",
                Request(customer_id="x", placement=placements[0], context={"cart_value": 42.0}),
            )
        )
    return requests


def bench_command(args: argparse.Namespace) -> int:
    out = sys.stdout
    try:
        if args.synthetic_actions is not None:
            policy = synthetic_policy(
                args.synthetic_actions, args.synthetic_journeys, seed=args.seed
            )
        elif args.directory is not None:
            policy = load_policy(args.directory)
        else:
            out.write("arbiter policy bench: give DIR or --synthetic-actions N\n")
            return 2
    except PolicyError as exc:
        out.write(f"{exc}\n")
        return 2
    except OSError as exc:
        out.write(f"arbiter policy bench: {exc}\n")
        return 2
    snapshots = synthetic_snapshots(policy, args.customers, seed=args.seed + 4)
    out.write(
        f"policy {policy.id} {policy.version} ({policy.digest[:19]}...): "
        f"{len(policy.actions)} actions, {len(policy.journeys)} journeys; "
        f"{len(snapshots)} synthetic customers x {args.rounds} rounds\n"
    )
    for r in bench(policy, snapshots, _bench_requests(policy), rounds=args.rounds):
        out.write(
            f"{r.label}: {r.candidates:.1f} candidates, {r.chosen:.2f} chosen per decision\n"
            f"  explain off: median {r.off_median_us:7.1f} µs  p90 {r.off_p90_us:7.1f} µs  "
            f"p99 {r.off_p99_us:7.1f} µs  ({1e6 / r.off_median_us:,.0f} decisions/s)\n"
            f"  explain on:  median {r.on_median_us:7.1f} µs  p90 {r.on_p90_us:7.1f} µs  "
            f"p99 {r.on_p99_us:7.1f} µs  (x{r.ratio:.2f})\n"
        )
    return 0
