"""h2load as a gRPC load generator: framed request bodies, a fresh request id per call, latency percentiles.

h2load (Debian ``nghttp2-client``) is a C HTTP/2 load generator: it costs a
fraction of what the server under test does per call, so on a small machine
the generator is not what limits the numbers. gRPC over HTTP/2 is a POST
with ``content-type: application/grpc``, ``te: trailers`` and a body framed
as 1 flag byte + 4-byte big-endian length + the protobuf message.

h2load posts one body file for every request; :func:`write_bodies` writes
many (one per customer draw) and ``h2load_bodies.c``, built by
:func:`build_shim` and loaded with ``LD_PRELOAD``, hands each request the
next one with a unique sequence number stamped into its ``request_id``.

Note what h2load cannot see: a gRPC error is an HTTP 200 whose status is in
the trailers, so h2load counts it as a success. The caller takes the gRPC
status codes from the server's ``/metrics`` (:func:`scrape`).
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import secrets
import shutil
import struct
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

__all__ = ["H2Result", "build_shim", "frame", "run_h2load", "scrape", "tree_cpu_seconds"]

ROOT: Final = Path(__file__).resolve().parents[1]
SHIM_SOURCE: Final = ROOT / "benchmarks" / "h2load_bodies.c"
GRPC_HEADERS: Final = ("content-type: application/grpc", "te: trailers")
SEQ_DIGITS: Final = 16


def frame(message: Any) -> bytes:
    """A protobuf message as one gRPC length-prefixed frame (uncompressed)."""
    payload: bytes = message.SerializeToString()
    return b"\x00" + struct.pack(">I", len(payload)) + payload


def build_shim(out_dir: Path) -> Path:
    """Compile ``h2load_bodies.c`` into ``out_dir`` (once per source change); the ``.so`` path."""
    target = out_dir / "h2load_bodies.so"
    if target.exists() and target.stat().st_mtime >= SHIM_SOURCE.stat().st_mtime:
        return target
    out_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["gcc", "-O2", "-shared", "-fPIC", "-o", str(target), str(SHIM_SOURCE), "-ldl"],
        check=True,
    )
    return target


@dataclass(frozen=True, slots=True)
class Bodies:
    """Request bodies for one h2load run: the ``-d`` file and, when they vary, the shim's inputs."""

    first: Path
    env: dict[str, str] = field(default_factory=dict)


def write_bodies(directory: Path, name: str, messages: Sequence[Any], shim: Path | None) -> Bodies:
    """Frame ``messages`` into ``directory``; they must share one length and carry the
    sequence placeholder (``"0" * 16``) at the same place of their ``request_id``."""
    frames = [frame(m) for m in messages]
    if len({len(f) for f in frames}) != 1:
        raise ValueError(f"{name}: bodies differ in length")
    first = directory / f"{name}.bin"
    first.write_bytes(frames[0])
    if len(frames) == 1 or shim is None:
        return Bodies(first)
    seq_at = frames[0].find(b"0" * SEQ_DIGITS)
    if seq_at < 0 or any(f.find(b"0" * SEQ_DIGITS) != seq_at for f in frames):
        raise ValueError(f"{name}: the sequence placeholder is not at one offset")
    every = directory / f"{name}.all.bin"
    every.write_bytes(b"".join(frames))
    env = {
        "LD_PRELOAD": str(shim),
        "H2LOAD_BODIES": str(every),
        "H2LOAD_BODY_LEN": str(len(frames[0])),
        "H2LOAD_SEQ_AT": str(seq_at),
    }
    return Bodies(first, env)


@dataclass(slots=True)
class H2Result:
    """One h2load run: what completed, the latencies (seconds, sorted), the generator's CPU."""

    seconds: float
    done: int
    failed: int
    latencies: list[float]
    cpu_s: float

    @property
    def rps(self) -> float:
        return self.done / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        """Latency quantile ``q`` in milliseconds (NaN when nothing completed)."""
        if not self.latencies:
            return float("nan")
        return 1000 * self.latencies[min(len(self.latencies) - 1, int(q * len(self.latencies)))]


def run_h2load(
    url: str,
    bodies: Bodies,
    *,
    connections: int,
    streams: int,
    seconds: float,
    warmup_s: float = 1.0,
    rps_per_connection: float | None = None,
    headers: Sequence[str] = (),
) -> H2Result:
    """Run h2load for ``seconds`` (after ``warmup_s``) against ``url``; closed loop unless
    ``rps_per_connection`` sets an offered rate.

    An offered rate runs one h2load process per connection, started at random points of
    one send period: h2load paces ``--rps`` with a timer per connection, at least 10 ms
    apart, so the connections of one process send in step -- every tick, all of them at
    once -- and a queue forms at the server that independent clients would not make
    (docs/performance.md, "Offered rate")."""
    h2load = shutil.which("h2load")
    if h2load is None:
        raise RuntimeError("h2load is not installed (apt-get install -y nghttp2-client)")
    argv = [h2load, "-t", "1", "-m", str(streams), "-D", f"{round(seconds * 1000)}ms"]
    if warmup_s:
        argv.append(f"--warm-up-time={round(warmup_s * 1000)}ms")
    if rps_per_connection is not None:
        argv.append(f"--rps={max(rps_per_connection, 0.1):g}")
    for header in (*GRPC_HEADERS, *headers):
        argv += ["-H", header]
    argv += ["-d", str(bodies.first), url]
    if rps_per_connection is None:
        runs = [(connections, 0.0)]
    else:
        period = max(0.01, 1.0 / max(rps_per_connection, 0.1))
        runs = [(1, d) for d in sorted(random.uniform(0, period) for _ in range(connections))]
    logs: list[Path] = []
    procs: list[subprocess.Popen[str]] = []
    started = time.monotonic()
    try:
        for clients, delay in runs:
            with tempfile.NamedTemporaryFile(prefix="h2load-", suffix=".log", delete=False) as log:
                logs.append(Path(log.name))
            time.sleep(max(0.0, started + delay - time.monotonic()))
            procs.append(
                subprocess.Popen(
                    [*argv[:3], "-c", str(clients), f"--log-file={logs[-1]}", *argv[3:]],
                    env={**os.environ, **bodies.env, "H2LOAD_SEQ_START": str(_fresh_sequence())},
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        outputs = [proc.communicate(timeout=seconds + warmup_s + 60) for proc in procs]
        for proc, (_, err) in zip(procs, outputs, strict=True):
            if proc.returncode != 0:
                raise RuntimeError(f"h2load failed ({proc.returncode}): {err[-800:]}")
        return _parse([out for out, _ in outputs], logs, seconds)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for log_path in logs:
            with contextlib.suppress(OSError):
                log_path.unlink()


def _fresh_sequence() -> int:
    """A first sequence number for the body shim that no other run uses: each h2load process
    would otherwise count from 0, and a run would replay the request ids of the run before it
    on the same server (idempotent replays, far cheaper than decisions)."""
    return secrets.randbits(56) << 4


_DONE = re.compile(r"requests: \d+ total, \d+ started, (\d+) done, \d+ succeeded, (\d+) failed")


def _parse(stdouts: Sequence[str], log_paths: Sequence[Path], seconds: float) -> H2Result:
    done = failed = 0
    for stdout in stdouts:
        match = _DONE.search(stdout)
        if match:
            done, failed = done + int(match.group(1)), failed + int(match.group(2))
    latencies = []
    for log_path in log_paths:
        for line in log_path.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) >= 3 and parts[1] != "-1":
                latencies.append(int(parts[2]) / 1e6)
    latencies.sort()
    # h2load's own CPU: the children's rusage of this process, before and after.
    return H2Result(seconds, done, failed, latencies, _children_cpu.take())


class _ChildrenCpu:
    """CPU seconds used by finished child processes since the last :meth:`take`."""

    def __init__(self) -> None:
        self._last = self._now()

    @staticmethod
    def _now() -> float:
        times = os.times()
        return times.children_user + times.children_system

    def take(self) -> float:
        now = self._now()
        used, self._last = now - self._last, now
        return used


_children_cpu = _ChildrenCpu()


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its live descendants (Linux ``/proc``)."""
    total = 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    stack = [pid]
    while stack:
        current = stack.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
        stack.extend(int(c) for c in children)
    return total


def scrape(
    port: int, name: str, timeout_s: float = 5.0
) -> dict[tuple[tuple[str, str], ...], float]:
    """Samples of metric ``name`` (e.g. ``arbiter_requests_total``) at ``127.0.0.1:port/metrics``,
    keyed by their sorted labels; empty when the endpoint does not answer."""
    from prometheus_client.parser import text_string_to_metric_families

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as reply:
                text = reply.read().decode()
            break
        except OSError:
            if time.monotonic() > deadline:
                return {}
            time.sleep(0.1)
    samples: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                key = tuple(sorted(sample.labels.items()))
                samples[key] = samples.get(key, 0.0) + sample.value
    return samples
