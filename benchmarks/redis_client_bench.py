"""Redis clients for the request path: client CPU per script call, same commands, same run.

Run from the repository root (``make bench-redis-clients``, which installs the optional clients)::

    .venv/bin/python -m benchmarks.redis_client_bench [--seconds 3] [--concurrency 1,16,64]
        [--rounds 2] [--customers 500]

A private ``redis-server`` is seeded with ``--customers`` customers through
``RedisStore``; the exact ``EVALSHA`` commands of one ``load`` and one
``commit_decision`` per customer are captured, and every client then sends
those same commands -- an *op* is one load followed by one commit, as a
Decide does -- from ``concurrency`` coroutines on one uvloop loop for
``--seconds``. Reported per client and level: ops/s, client CPU per script
call (this process's CPU time, every thread -- valkey-glide runs its own --
over calls made), p50 / p99 of an op. Clients, interleaved in ``--rounds``:

- ``redis-py``: redis-py asyncio with hiredis, as ``RedisStore`` used it
  (pool, ``socket_timeout`` backstop, Python argument encoding);
- ``redis-py, no socket timeout``: the same without the per-read/write
  ``wait_for``;
- ``pipelined``: :mod:`arbiter.state.redis_pipe` (one connection,
  ``hiredis.pack_command``, writes coalesced per loop turn, ``hiredis.Reader``);
- ``coredis`` and ``valkey-glide`` when installed (``pip install coredis
  valkey-glide``; both support Redis Cluster).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import platform
import random
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))

from benchmarks.store_bench import CAPS, NEEDS, T0, snapshot  # noqa: E402

Command = tuple[Any, ...]
Send = Callable[[Command], Awaitable[Any]]


async def capture(url: str, customers: int) -> list[tuple[Command, Command]]:
    """Seed customers; the (load, commit) EVALSHA commands RedisStore sends for each."""
    from arbiter.state.redis_store import RedisStore

    store = RedisStore.from_url(url, prefix="bench", default_timeout_s=5.0, pipelined=False)
    await store.init_state()
    captured: list[Command] = []
    original = store._eval

    async def recording(script: Any, keys: Sequence[str], args: Sequence[Any]) -> Any:
        captured.append(("EVALSHA", script.sha, len(keys), *keys, *args))
        return await original(script, keys, args)

    from arbiter.policies.effects import DecisionCommit, Grant

    pairs = []
    for i in range(customers):
        cid, rid = f"c{i}", f"r-{i}"
        await store.seed(snapshot(cid))
        store._eval = recording  # type: ignore[method-assign]
        await store.load(cid, NEEDS, T0, request_id=rid)
        grant = Grant(tracking_id=rid + ".a", action="welcome", channel="email", caps=CAPS)
        commit = DecisionCommit(
            customer_id=cid, request_id=rid, decision_id=rid, now_ms=T0,
            policy_version="bench", grants=(grant,),
        )  # fmt: skip
        await store.commit_decision(commit, b'{"actions":[]}', ttl_s=120)
        store._eval = original  # type: ignore[method-assign]
        pairs.append((captured[-2], captured[-1]))
    await store.close()
    return pairs


async def clients(
    url: str, host: str, port: int
) -> dict[str, tuple[Send, Callable[[], Awaitable[None]]]]:
    """Each available client: (send one command, close)."""
    from redis.asyncio import Redis

    from arbiter.state.redis_pipe import PipelinedConnection, pack

    out: dict[str, tuple[Send, Callable[[], Awaitable[None]]]] = {}
    for name, timeout in (("redis-py", 11.0), ("redis-py, no socket timeout", None)):
        r = Redis.from_url(
            url, protocol=2, driver_info=None, socket_timeout=timeout, max_connections=64
        )
        out[name] = (lambda c, r=r: r.execute_command(*c), r.aclose)
    pipe = PipelinedConnection(url)

    async def close_pipe() -> None:
        pipe.close()

    out["pipelined"] = (lambda c: pipe.execute(pack(*c)), close_pipe)
    if importlib.util.find_spec("coredis"):
        import coredis

        co = coredis.Redis(host=host, port=port, decode_responses=False)
        await co.__aenter__()  # coredis 6: the pool lives inside the client's context

        async def co_send(c: Command) -> Any:
            _, sha, n, *rest = c
            return await co.evalsha(sha, keys=rest[:n], args=rest[n:])

        async def co_close() -> None:
            await co.__aexit__(None, None, None)

        out["coredis"] = (co_send, co_close)
    if importlib.util.find_spec("glide"):
        from glide import GlideClient, GlideClientConfiguration, NodeAddress

        glide = await GlideClient.create(GlideClientConfiguration([NodeAddress(host, port)]))

        async def glide_send(c: Command) -> Any:
            return await glide.custom_command([str(x) if isinstance(x, int) else x for x in c])

        out["valkey-glide"] = (glide_send, glide.close)
    return out


async def drive(
    send: Send, pairs: list[tuple[Command, Command]], concurrency: int, seconds: float
) -> dict[str, float]:
    latencies: list[float] = []
    calls = 0
    perf = time.perf_counter
    end = perf() + seconds

    async def worker(w: int) -> None:
        nonlocal calls
        rng = random.Random(w)
        while perf() < end:
            load, commit = pairs[rng.randrange(len(pairs))]
            t0 = perf()
            await send(load)
            await send(commit)
            latencies.append(perf() - t0)
            calls += 2

    for _ in range(2):  # warm: connections, script cache
        await send(pairs[0][0])
    cpu0, t0 = time.process_time(), perf()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    cpu, elapsed = time.process_time() - cpu0, perf() - t0
    latencies.sort()
    pct = lambda q: 1e6 * latencies[min(len(latencies) - 1, int(q * len(latencies)))]  # noqa: E731
    return {
        "ops_s": len(latencies) / elapsed,
        "cpu_us_per_call": 1e6 * cpu / calls,
        "p50_us": pct(0.5),
        "p99_us": pct(0.99),
    }


async def main_async(args: argparse.Namespace) -> None:
    import redis_support

    server = redis_support.RedisServer().start()
    try:
        pairs = await capture(server.url, args.customers)
        available = await clients(server.url, "127.0.0.1", server.port)
        print(f"{'client':30} {'conc':>4} {'ops/s':>7} {'CPU/call':>9} {'op p50':>8} {'op p99':>8}")
        results: dict[tuple[str, int], list[dict[str, float]]] = {}
        for _ in range(args.rounds):
            for level in args.concurrency:
                for name, (send, _close) in available.items():
                    r = await drive(send, pairs, level, args.seconds)
                    results.setdefault((name, level), []).append(r)
                    print(
                        f"{name:30} {level:>4} {r['ops_s']:>7.0f} {r['cpu_us_per_call']:>7.1f}us "
                        f"{r['p50_us']:>6.0f}us {r['p99_us']:>6.0f}us",
                        flush=True,
                    )
        print("\nmedian over rounds (client CPU per script call, µs):")
        for level in args.concurrency:
            row = []
            for name in available:
                values = sorted(r["cpu_us_per_call"] for r in results[(name, level)])
                row.append(f"{name} {values[len(values) // 2]:.0f}")
            print(f"  concurrency {level}: " + ", ".join(row))
        for _send, close in available.values():
            await close()
    finally:
        server.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument(
        "--concurrency", type=lambda t: [int(x) for x in t.split(",")], default=[1, 16, 64]
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--customers", type=int, default=500)
    args = parser.parse_args(argv)
    print(f"redis client bench: Python {platform.python_version()}, {args.seconds:g}s per run")
    import uvloop

    uvloop.run(main_async(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
