"""PNG plots of ``benchmarks.grpc_bench`` results: latency vs offered rate, throughput vs workers."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["write"]


def write(rows: Sequence[Any], out_dir: Path) -> list[Path]:
    """Write the plots the rows allow into ``out_dir``; the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    written = []
    if any(r.kind in ("rate", "overload") for r in rows):
        written.append(_latency_vs_rate(rows, out_dir / "latency_vs_offered_rate.png"))
    if any(r.kind == "workers" for r in rows):
        written.append(_throughput_vs_workers(rows, out_dir / "throughput_vs_workers.png"))
    if any(r.kind == "sweep" for r in rows):
        written.append(_throughput_vs_concurrency(rows, out_dir / "throughput_vs_concurrency.png"))
    return written


def _finish(fig: Any, ax: Any, title: str, path: Path, *, legend_size: int = 10) -> Path:
    """Title, legend and grid; save ``fig`` to ``path`` and close it."""
    import matplotlib.pyplot as plt

    ax.set_title(title)
    ax.legend(fontsize=legend_size)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _latency_vs_rate(rows: Sequence[Any], path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for store in dict.fromkeys(r.store for r in rows if r.kind == "rate"):
        points = sorted(
            (r.offered_rps, r.p50_ms, r.p99_ms)
            for r in rows
            if r.kind == "rate" and r.store == store
        )
        xs = [p[0] for p in points]
        ax.plot(xs, [p[2] for p in points], marker="o", label=f"{store} p99")
        ax.plot(xs, [p[1] for p in points], marker=".", linestyle="--", label=f"{store} p50")
    for r in rows:
        if r.kind == "overload":
            ax.scatter([r.offered_rps], [r.p99_ms], marker="x", color="black")
            ax.annotate(
                f"{r.store} overload p99 (50 ms deadline)", (r.offered_rps, r.p99_ms), fontsize=7
            )
    ax.axhline(10, color="grey", linewidth=0.8, linestyle=":", label="10 ms")
    ax.set_xlabel("offered Decide rate (calls/s)")
    ax.set_ylabel("latency seen by h2load (ms)")
    ax.set_yscale("log")
    return _finish(fig, ax, "Decide latency vs offered rate", path, legend_size=8)


def _throughput_vs_workers(rows: Sequence[Any], path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for rpc in ("health", "decide"):
        points = sorted((r.workers, r.rps) for r in rows if r.kind == "workers" and r.rpc == rpc)
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=rpc)
    ax.set_xlabel("worker processes (arbiter serve --workers N, Redis)")
    ax.set_ylabel("calls/s")
    ax.set_xticks(sorted({r.workers for r in rows if r.kind == "workers"}))
    return _finish(fig, ax, "Throughput vs worker processes", path)


def _throughput_vs_concurrency(rows: Sequence[Any], path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    series = dict.fromkeys((r.store, r.rpc) for r in rows if r.kind == "sweep")
    for store, rpc in series:
        by_level: dict[int, list[float]] = {}
        for r in rows:
            if r.kind == "sweep" and r.store == store and r.rpc == rpc:
                by_level.setdefault(r.concurrency, []).append(r.rps)
        levels = sorted(by_level)
        ax.plot(levels, [max(by_level[c]) for c in levels], marker="o", label=f"{store} {rpc}")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("calls in flight (closed loop)")
    ax.set_ylabel("calls/s")
    return _finish(fig, ax, "Throughput vs concurrency, one server process", path, legend_size=8)
