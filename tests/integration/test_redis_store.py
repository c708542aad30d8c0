"""RedisStore against real private Redis servers: TTLs, round trips, concurrency, faults, Cluster.

The behaviour every store shares is in ``tests/contract/``; this module checks
what only Redis has: key TTLs, one command per read and per commit, atomicity
under heavy concurrency (in one process and across two), the script cache,
timeouts, the circuit breaker and recovery after SIGSTOP / kill + restart.
Servers are private (free 127.0.0.1 ports, temporary directories) and
removed afterwards. Tests print their numbers (``pytest -s`` shows them).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pytest

_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from redis_support import (  # noqa: E402
    RedisServer,
    free_port,
    redis_cluster_url,
    redis_url,
)

from arbiter.policies.effects import (  # noqa: E402
    CapIncrement,
    CounterIncrement,
    DecisionCommit,
    EventEffects,
    FeedbackKind,
    FeedbackRecord,
    Grant,
    JourneyChange,
)
from arbiter.policies.snapshot import PARTS, JourneyState, SnapshotNeeds, cap_count  # noqa: E402
from arbiter.state.circuit import CircuitBreaker  # noqa: E402
from arbiter.state.redis_keys import PARTS as KEY_PARTS  # noqa: E402
from arbiter.state.redis_keys import customer_keys  # noqa: E402
from arbiter.state.redis_store import RedisStore  # noqa: E402
from arbiter.state.store import StoreUnavailable  # noqa: E402

__all__ = ["redis_cluster_url", "redis_url"]  # session fixtures, re-exported for pytest

T0 = 1_700_000_000_000
HOUR = 3_600_000
DAY = 24 * HOUR
ROOT = Path(__file__).resolve().parents[2]


def cap(key: str, limit: int, window_ms: int) -> CapIncrement:
    return CapIncrement(cap_id=key.split("/", 1)[0], key=key, window_ms=window_ms, limit=limit)


def commit(cid: str, rid: str, *caps: CapIncrement, now_ms: int = T0) -> DecisionCommit:
    return DecisionCommit(
        customer_id=cid,
        request_id=rid,
        decision_id=f"dec-{rid}",
        now_ms=now_ms,
        policy_version="1+test",
        grants=(Grant(tracking_id=f"{rid}.a", action="a", channel="email", caps=caps),),
    )


def event(cid: str, eid: str, *, journey: bool = False, at_ms: int = T0) -> EventEffects:
    changes: tuple[JourneyChange, ...] = ()
    if journey:
        st = JourneyState(
            status="active",
            stage="s1",
            entered_ms=at_ms,
            stage_entered_ms=at_ms,
            entry_event_id=eid,
            last_event_id=eid,
        )
        changes = (
            JourneyChange(
                journey="welcome", kind="enter", cause_event_id=eid, at_ms=at_ms, state=st
            ),
        )
    return EventEffects(
        customer_id=cid,
        event_id=eid,
        event_type="purchase",
        event_ms=at_ms,
        now_ms=at_ms,
        counters=(
            CounterIncrement(
                event_type="purchase",
                at_ms=at_ms,
                bucket_ms=HOUR,
                bucket_start_ms=at_ms - at_ms % HOUR,
            ),
        ),
        journeys=changes,
        feedback=(
            FeedbackRecord(kind=FeedbackKind.CLICK, decision_id="dec-1", event_id=eid, at_ms=at_ms),
        ),
    )


NEEDS = SnapshotNeeds(
    parts=frozenset(PARTS),
    profile_attributes=frozenset({"email", "country", "tier"}),
    consent_purposes=frozenset({"email_marketing", "push"}),
    event_types=frozenset({"purchase"}),
    cap_keys=frozenset({"daily", "weekly", "channel/email"}),
)


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own (it may be frozen, killed or restarted)."""
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.close()


def _unique(label: str) -> str:
    return f"{label}-{os.getpid()}-{time.monotonic_ns() % 10**9}"


async def _info(store: RedisStore, section: str) -> dict[str, Any]:
    info: dict[str, Any] = await store.client.info(section)  # type: ignore[misc]
    return info


# =========================================================================== keys and TTLs


def test_every_key_of_a_customer_is_in_one_cluster_slot() -> None:
    from redis.crc import key_slot

    for cid in ("c1", "user:42@x.io", "a.b-c+d"):
        keys = customer_keys(cid, "arb")
        assert {k.rsplit(":", 1)[1] for k in keys} == set(KEY_PARTS)
        assert len({key_slot(k.encode()) for k in keys}) == 1
    with pytest.raises(ValueError):
        customer_keys("x}{y")


def test_no_windowed_key_without_a_ttl_after_10000_grants(redis_url: str) -> None:
    prefix = _unique("ttl")
    customers, per_customer = 250, 40
    daily, weekly, hourly = cap("daily", 30, DAY), cap("weekly", 100, 7 * DAY), cap("ch/e", 5, HOUR)

    async def main() -> tuple[int, Counter[str], dict[str, int]]:
        store = RedisStore.from_url(redis_url, prefix=prefix, default_timeout_s=5.0)
        try:
            await store.init_state()
            started = time.perf_counter()
            granted = 0
            for batch in range(per_customer):
                outs = await asyncio.gather(
                    *(
                        store.commit_decision(
                            commit(
                                f"c{i}",
                                f"r{batch}",
                                daily,
                                weekly,
                                hourly,
                                now_ms=T0 + batch * 60_000,
                            ),
                            b"{}",
                            ttl_s=600,
                        )
                        for i in range(customers)
                    )
                )
                granted += sum(len(o.result.granted) for o in outs)
            await asyncio.gather(
                *(
                    store.apply_event(event(f"c{i}", f"e{i}", journey=True))
                    for i in range(customers)
                )
            )
            elapsed = time.perf_counter() - started
            types: Counter[str] = Counter()
            least: dict[str, int] = {}
            seen = {k async for k in store.client.scan_iter(match=f"{prefix}:*", count=1000)}
            for key in seen:
                part = key.decode().rsplit(":", 1)[1]
                ttl = await store.client.pttl(key)  # type: ignore[misc]
                types[f"{part}:{'ttl' if ttl > 0 else 'none'}"] += 1
                least[part] = min(least.get(part, ttl), ttl)
            print(
                f"\n10,000 commits ({granted} grants) + {customers} events in {elapsed:.2f}s; "
                f"keys by part/TTL: {dict(sorted(types.items()))}; least PTTL per part: {least}"
            )
            for i in range(customers):
                await store.forget_customer(f"c{i}")
            return granted, types, least
        finally:
            await store.close()

    granted, types, least = asyncio.run(main())
    # 40 commits per customer at one per minute: the hourly cap (5) binds first.
    assert granted == customers * 5
    # Only profile, journeys and the state epoch marker live until deleted.
    assert not [t for t in types if t.endswith(":none") and t[0] not in "pj" and t != "epoch:none"]
    assert types["k:ttl"] == types["e:ttl"] == types["r:ttl"] == types["q:ttl"] == customers
    assert types["d:ttl"] == types["f:ttl"] == types["j:none"] == customers
    assert least["k"] > 7 * DAY - 60_000  # the longest window written
    assert 0 < least["r"] <= 600_000 and 0 < least["q"] <= 600_000


# =========================================================================== round trips


@pytest.mark.parametrize("pipelined", [True, False], ids=["pipelined", "redis-py"])
def test_one_command_per_load_and_per_commit(private_redis: RedisServer, pipelined: bool) -> None:
    """Counted on the server (INFO commandstats) and on the client (commands sent), on the
    pipelined connection and on redis-py's pool."""

    async def main() -> None:
        store = RedisStore.from_url(private_redis.url, prefix="rt", pipelined=pipelined)
        await store.init_state()
        sent: list[str] = []
        real = store.client.execute_command

        async def counting(*args: Any, **kwargs: Any) -> Any:
            if args[0] != "INFO":
                sent.append(str(args[0]))
            return await real(*args, **kwargs)

        store.client.execute_command = counting  # type: ignore[method-assign]
        pipe = store._pipe
        if pipe is not None:
            real_pipe = pipe.execute

            async def counting_pipe(command: bytes) -> Any:
                sent.append(command.split(b"\r\n")[2].decode())  # *N, $len, NAME
                return await real_pipe(command)

            pipe.execute = counting_pipe  # type: ignore[method-assign]
        try:
            n = 50
            await store.load("warm", NEEDS, T0)  # NOSCRIPT -> EVAL once: load the script cache
            await store.commit_decision(commit("warm", "w", cap("daily", 3, DAY)), b"{}")
            sent.clear()
            before = await _info(store, "commandstats")
            for i in range(n):
                loaded = await store.load(f"c{i}", NEEDS, T0, request_id=f"r{i}")
                assert loaded.replay is None
                await store.commit_decision(commit(f"c{i}", f"r{i}", cap("daily", 3, DAY)), b"{}")
                again = await store.load(f"c{i}", NEEDS, T0, request_id=f"r{i}")
                assert (
                    again.replay is not None
                    and cap_count(again.snapshot.caps["daily"], T0, DAY) == 1
                )
            after = await _info(store, "commandstats")
            delta = {
                name: after[name]["calls"] - before.get(name, {"calls": 0})["calls"]
                for name in after
                if name.startswith("cmdstat_")
            }
            print(
                f"\ncommands sent by the client: {Counter(sent)}; server commandstats delta: {delta}"
            )
            assert Counter(sent) == {"EVALSHA": 3 * n}
            assert delta["cmdstat_evalsha"] == 3 * n
            assert "cmdstat_eval" not in delta or delta["cmdstat_eval"] == 0
        finally:
            await store.close()

    asyncio.run(main())


def test_script_cache_loss_falls_back_to_eval_once(private_redis: RedisServer) -> None:
    async def main() -> None:
        store = RedisStore.from_url(private_redis.url, prefix="nos")
        try:
            await store.init_state()
            await store.load("c", NEEDS, T0)
            await store.client.script_flush()  # type: ignore[misc]
            base = await _info(store, "commandstats")
            await store.load("c", NEEDS, T0)
            await store.load("c", NEEDS, T0)
            after = await _info(store, "commandstats")
            evals = after["cmdstat_eval"]["calls"] - base.get("cmdstat_eval", {"calls": 0})["calls"]
            shas = after["cmdstat_evalsha"]["calls"] - base["cmdstat_evalsha"]["calls"]
            assert (evals, shas) == (1, 2)  # NOSCRIPT, EVAL (caches it), then EVALSHA again
        finally:
            await store.close()

    asyncio.run(main())


def test_a_commit_is_never_retried_after_a_connection_error() -> None:
    """A fake server that reads one command and hangs up: exactly one EVALSHA arrives."""
    received: list[bytes] = []

    async def main() -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            data = await reader.read(65536)
            received.append(data)
            writer.close()

        port = free_port()
        server = await asyncio.start_server(handle, "127.0.0.1", port)
        store = RedisStore.from_url(f"redis://127.0.0.1:{port}", default_timeout_s=1.0)
        try:
            with pytest.raises(StoreUnavailable):
                await store.commit_decision(commit("c", "r", cap("daily", 3, DAY)), b"{}")
        finally:
            await store.close()
            server.close()
            await server.wait_closed()

    asyncio.run(main())
    assert sum(chunk.count(b"EVALSHA") for chunk in received) == 1, received


# =========================================================================== concurrency


@pytest.mark.parametrize("kind", ["single", "cluster"])
def test_200_concurrent_duplicates_of_one_event_apply_once(
    kind: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("redis_url" if kind == "single" else "redis_cluster_url")

    async def main() -> tuple[Counter[str], int]:
        store = RedisStore.from_url(url, prefix=_unique("dup"), default_timeout_s=5.0)
        try:
            await store.init_state()
            e = event("c", "evt-dup", journey=True)
            outs = await asyncio.gather(*(store.apply_event(e) for _ in range(200)))
            snap = (await store.load("c", NEEDS, T0)).snapshot
            exported = await store.export_customer("c")
            await store.forget_customer("c")
            assert len(exported["feedback"]) == 1
            return Counter(outs), snap.events["purchase"].total
        finally:
            await store.close()

    outcomes, total = asyncio.run(main())
    print(f"\n[{kind}] 200 concurrent duplicates: {dict(outcomes)}, counter total {total}")
    assert outcomes == {"applied": 1, "duplicate": 199}
    assert total == 1


async def _cap_rounds(
    url: str, prefix: str, rounds: int, concurrency: int, limit: int
) -> list[tuple[int, int, float]]:
    """Per round: (grants, cap usage read back, seconds) for ``concurrency`` commits at once."""
    store = RedisStore.from_url(url, prefix=prefix, default_timeout_s=10.0)
    daily = cap("daily", limit, DAY)
    out = []
    try:
        await store.init_state()
        for r in range(rounds):
            cid = f"cap-{r}"
            started = time.perf_counter()
            outs = await asyncio.gather(
                *(
                    store.commit_decision(commit(cid, f"r{i}", daily), b"{}", ttl_s=60)
                    for i in range(concurrency)
                )
            )
            elapsed = time.perf_counter() - started
            grants = sum(len(o.result.granted) for o in outs)
            snap = (await store.load(cid, NEEDS, T0)).snapshot
            out.append((grants, cap_count(snap.caps.get("daily", []), T0, DAY), elapsed))
            await store.forget_customer(cid)
    finally:
        await store.close()
    return out


@pytest.mark.parametrize(("kind", "rounds"), [("single", 20), ("cluster", 5)])
def test_1000_concurrent_commits_against_a_cap_of_3_grant_exactly_3(
    kind: str, rounds: int, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("redis_url" if kind == "single" else "redis_cluster_url")
    results = asyncio.run(_cap_rounds(url, _unique("cap"), rounds, 1000, 3))
    times = sorted(t for _, _, t in results)
    print(
        f"\n[{kind}] {rounds} rounds x 1,000 concurrent commits, cap 3: grants per round "
        f"{[g for g, _, _ in results]}; round time p50 {times[len(times) // 2] * 1000:.0f} ms, "
        f"max {times[-1] * 1000:.0f} ms ({1000 / times[len(times) // 2]:.0f} commits/s)"
    )
    assert all(g == 3 and used == 3 for g, used, _ in results), results


_WORKER = textwrap.dedent(
    """
    import asyncio, json, sys, time
    from arbiter.policies.effects import CapIncrement, DecisionCommit, Grant
    from arbiter.state.redis_store import RedisStore

    url, prefix, tag, limits, n, start = sys.argv[1:7]
    limits, n, start = json.loads(limits), int(n), float(start)

    async def main():
        store = RedisStore.from_url(url, prefix=prefix, default_timeout_s=10.0)
        await store.init_state()
        grants = []
        for r, limit in enumerate(limits):
            daily = CapIncrement(cap_id="daily", key="daily", window_ms=86_400_000, limit=limit)
            # Both processes start round r at the same wall-clock instant.
            await asyncio.sleep(max(0.0, start + r * 0.5 - time.time()))
            outs = await asyncio.gather(*(
                store.commit_decision(DecisionCommit(
                    customer_id=f"mp-{r}", request_id=f"{tag}-{i}", decision_id=f"{tag}-{i}",
                    now_ms=1_700_000_000_000, policy_version="v",
                    grants=(Grant(tracking_id=f"{tag}-{i}", action="a", channel="email",
                                  caps=(daily,)),)), b"{}", ttl_s=60)
                for i in range(n)))
            grants.append(sum(len(o.result.granted) for o in outs))
        await store.close()
        print(json.dumps(grants))

    asyncio.run(main())
    """
)


def test_two_processes_500_concurrent_commits_each_grant_exactly_3(redis_url: str) -> None:
    """Cap 3 (the first three commits to reach Redis win, often all from one process), then
    cap 300 (both processes win some: the re-check interleaves across processes)."""
    limits, per_process = [3] * 10 + [300] * 3, 500
    rounds = len(limits)
    prefix = _unique("mp")
    start = time.time() + 2.0  # both interpreters are up by then
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _WORKER,
                redis_url,
                prefix,
                tag,
                json.dumps(limits),
                str(per_process),
                str(start),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        for tag in ("p1", "p2")
    ]
    outs = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=60)
        assert p.returncode == 0, stderr
        outs.append(json.loads(stdout.strip().splitlines()[-1]))
    per_round = [a + b for a, b in zip(*outs, strict=True)]
    print(
        f"\n2 processes x 500 concurrent commits, caps {limits}: "
        f"p1 {outs[0]}, p2 {outs[1]}, total per round {per_round}"
    )
    assert per_round == limits

    async def cleanup() -> None:
        store = RedisStore.from_url(redis_url, prefix=prefix)
        for r in range(rounds):
            await store.forget_customer(f"mp-{r}")
        await store.close()

    asyncio.run(cleanup())


# =========================================================================== faults


@dataclass
class _Load:
    """A steady load of load+commit pairs, recording every call's outcome and latency."""

    store: RedisStore
    timeout_s: float
    workers: int = 8
    calls: list[tuple[float, float, str]] = field(default_factory=list)  # (start, latency, outcome)
    grants: list[float] = field(default_factory=list)  # when a capped grant was confirmed
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def _call(self, coro: Any) -> Any:
        started = time.monotonic()
        try:
            result = await coro
        except StoreUnavailable as exc:
            self.calls.append((started, time.monotonic() - started, exc.detail.split(" ")[0]))
            return None
        self.calls.append((started, time.monotonic() - started, "ok"))
        return result

    async def worker(self, w: int) -> None:
        i = 0
        while not self.stop.is_set():
            i += 1
            cid = f"f{w}"
            loaded = await self._call(
                self.store.load(cid, NEEDS, T0, request_id=f"r{i}", timeout_s=self.timeout_s)
            )
            if loaded is not None:
                out = await self._call(
                    self.store.commit_decision(
                        commit(cid, f"w{w}-{i}", cap("daily", 10**9, DAY)),
                        b"{}",
                        ttl_s=60,
                        timeout_s=self.timeout_s,
                    )
                )
                if out is not None and out.result.granted:
                    self.grants.append(time.monotonic())
            await asyncio.sleep(0.002)

    def summary(self, since: float, until: float) -> Counter[str]:
        return Counter(o for s, _, o in self.calls if since <= s < until)


async def _fault_run(
    server: RedisServer, fault: str, outage_s: float = 1.5
) -> tuple[_Load, dict[str, float]]:
    breaker = CircuitBreaker()
    store = RedisStore.from_url(server.url, prefix="fault", default_timeout_s=0.1, breaker=breaker)
    await store.init_state()
    load = _Load(store, timeout_s=0.1)
    tasks = [asyncio.create_task(load.worker(w)) for w in range(load.workers)]
    marks: dict[str, float] = {}
    try:
        await asyncio.sleep(0.7)
        marks["down"] = time.monotonic()
        if fault == "sigstop":
            server.freeze()
        else:
            server.kill()
        await asyncio.sleep(outage_s)
        health_down = await store.ping()
        marks["up"] = time.monotonic()
        if fault == "sigstop":
            server.thaw()
        else:
            server.start()  # empty: the operator acknowledges the loss (arbiter state init)
            await _init_when_up(store)
        deadline = marks["up"] + 6.0
        while time.monotonic() < deadline:
            if load.grants and load.grants[-1] > marks["up"]:
                break
            await asyncio.sleep(0.01)
        marks["recovered"] = next((g for g in load.grants if g > marks["up"]), float("inf"))
        health_ok = False
        for _ in range(100):
            if await store.ping():
                health_ok = True
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        marks["end"] = time.monotonic()
        marks["health_down"] = float(health_down)
        marks["health_ok"] = float(health_ok)
        marks["opened"] = breaker.opened
        marks["rejected"] = breaker.rejected
    finally:
        load.stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await store.close()
    return load, marks


async def _init_when_up(store: RedisStore) -> None:
    for _ in range(100):
        try:
            await store.init_state()
            return
        except StoreUnavailable:
            await asyncio.sleep(0.02)
    raise AssertionError("could not initialise the restarted Redis")


def _report(fault: str, load: _Load, marks: dict[str, float]) -> None:
    before = load.summary(0, marks["down"])
    during = load.summary(marks["down"], marks["up"])
    after = load.summary(marks["recovered"], marks["end"])
    worst = max(lat for _, lat, _ in load.calls)
    grants_during = sum(1 for g in load.grants if marks["down"] + 0.1 < g < marks["up"])
    print(
        f"\n[{fault}] calls before: {dict(before)}; during outage "
        f"({marks['up'] - marks['down']:.2f}s): {dict(during)}; after recovery: {dict(after)}\n"
        f"[{fault}] slowest call {worst * 1000:.1f} ms (timeout 100 ms); breaker opened "
        f"{marks['opened']:.0f}x, {marks['rejected']:.0f} calls failed fast; grants confirmed "
        f"during the outage: {grants_during}; health during outage: {bool(marks['health_down'])}; "
        f"recovery (first confirmed grant after the server returned): "
        f"{(marks['recovered'] - marks['up']) * 1000:.0f} ms"
    )


@pytest.mark.parametrize("fault", ["sigstop", "kill-restart"])
def test_redis_outage_fails_fast_opens_the_circuit_and_recovers(
    fault: str, private_redis: RedisServer
) -> None:
    load, marks = asyncio.run(
        _fault_run(private_redis, "sigstop" if fault == "sigstop" else "kill")
    )
    _report(fault, load, marks)
    # Every call answered within its deadline (plus scheduling slack on a busy 2-core box).
    assert max(lat for _, lat, _ in load.calls) < 0.1 + 0.15
    # Nothing was confirmed while the server was away (a commit in flight at the freeze may
    # still be applied when it thaws; the caller saw it fail and granted nothing).
    assert not [g for g in load.grants if marks["down"] + 0.1 < g < marks["up"]]
    during = load.summary(marks["down"] + 0.1, marks["up"])
    assert during["ok"] == 0 and during["circuit"] > 0  # failed fast once the breaker opened
    assert marks["opened"] >= 1 and marks["health_down"] == 0.0
    assert marks["recovered"] - marks["up"] < 5.0 and marks["health_ok"] == 1.0
    after = load.summary(marks["recovered"], marks["end"])
    assert after["ok"] > 0 and sum(after.values()) == after["ok"]


# =========================================================================== differential


def test_random_operations_match_memory_store(redis_url: str) -> None:
    """The Lua scripts against MemoryStore (which calls policies.effects directly) as the oracle:
    a seeded random mix of commits, events (with conflicts and duplicates) and profile writes,
    comparing every result and, at the end, the full export of every customer."""
    import random

    from arbiter.policies.effects import ConsentUpdate, ProfileUpdate, StateConflict
    from arbiter.state.memory import MemoryStore

    rng = random.Random(20240611)
    customers = ["d1", "d2", "d3"]
    journeys = ["j1", "j2"]
    caps = [cap("a", 2, 5_000), cap("b", 3, 60_000), cap("ch/x", 1, 2_000), cap("z", 10, 1)]

    async def main() -> int:
        memory = MemoryStore()
        redis = RedisStore.from_url(redis_url, prefix=_unique("diff"), default_timeout_s=5.0)
        await redis.init_state()
        last: dict[tuple[str, str], str | None] = {}
        now = T0
        checked = 0
        try:
            for step in range(400):
                now += rng.choice([0, 1, 500, 1_500, 4_000, 30_000, HOUR])
                cid = rng.choice(customers)
                kind = rng.random()
                if kind < 0.4:
                    grants = tuple(
                        Grant(
                            tracking_id=f"t{step}.{g}",
                            action=f"x{g}",
                            channel="email",
                            caps=tuple(rng.sample(caps, rng.randint(0, 3))),
                        )
                        for g in range(rng.randint(0, 3))
                    )
                    changes = tuple(_random_change(rng, last, cid, j, now) for j in journeys[:1])
                    dc = DecisionCommit(
                        customer_id=cid,
                        request_id=f"r{rng.randrange(60)}",
                        decision_id=f"d{step}",
                        now_ms=now,
                        policy_version="v",
                        grants=grants,
                        journeys=changes if rng.random() < 0.5 else (),
                    )
                    a = await memory.commit_decision(dc, b'{"s":%d}' % step, ttl_s=600)
                    b = await redis.commit_decision(dc, b'{"s":%d}' % step, ttl_s=600)
                    assert a == b, (step, a, b)
                    if not a.replayed:
                        for ch in dc.journeys:
                            if ch.journey not in a.result.skipped_journeys:
                                last[(cid, ch.journey)] = ch.state.last_event_id
                elif kind < 0.75:
                    eid = f"e{rng.randrange(80)}"
                    changes = tuple(
                        _random_change(rng, last, cid, j, now)
                        for j in rng.sample(journeys, rng.randint(0, 2))
                    )
                    at = now - rng.choice([0, 10, HOUR, 3 * HOUR])
                    fx = EventEffects(
                        customer_id=cid,
                        event_id=eid,
                        event_type="view",
                        event_ms=at,
                        now_ms=now,
                        counters=tuple(
                            CounterIncrement(
                                event_type=t,
                                at_ms=at,
                                bucket_ms=HOUR,
                                bucket_start_ms=at - at % HOUR,
                                count=rng.randint(1, 3),
                                retention_ms=rng.choice([2 * HOUR, DAY]),
                            )
                            for t in rng.sample(["view", "buy"], rng.randint(0, 2))
                        ),
                        journeys=changes,
                        feedback=(
                            FeedbackRecord(
                                kind=FeedbackKind.IMPRESSION,
                                decision_id=f"d{step}",
                                event_id=eid,
                                at_ms=at,
                            ),
                        )
                        if rng.random() < 0.3
                        else (),
                    )
                    outs: list[Any] = []
                    for store in (memory, redis):
                        try:
                            outs.append(await store.apply_event(fx))
                        except StateConflict as exc:
                            outs.append((exc.journey, exc.expected, exc.found))
                    assert outs[0] == outs[1], (step, outs)
                    if outs[0] == "applied":
                        for ch in changes:
                            last[(cid, ch.journey)] = ch.state.last_event_id
                else:
                    ts = T0 + rng.randrange(20) * 1000
                    up = ProfileUpdate(
                        customer_id=cid,
                        source=f"s{step}",
                        timestamp_ms=ts,
                        traits={
                            k: rng.choice([None, 1, "v", 2.5, [1], {"a": True}])
                            for k in rng.sample(["x", "y", "z"], rng.randint(0, 3))
                        },
                        consents=tuple(
                            ConsentUpdate(
                                purpose=rng.choice(["sms", "push"]),
                                state=rng.choice(["granted", "denied"]),
                                expires_ms=rng.choice([None, ts + DAY]),
                            )
                            for _ in range(rng.randint(0, 2))
                        ),
                        do_not_contact=rng.choice([None, True, False]),
                    )
                    a2 = await memory.update_profile(up, do_not_contact_attribute="dnc")
                    b2 = await redis.update_profile(up, do_not_contact_attribute="dnc")
                    assert a2 == b2, (step, a2, b2)
                checked += 1
            for cid in customers:
                assert await memory.export_customer(cid) == await redis.export_customer(cid), cid
                needs = SnapshotNeeds(
                    parts=frozenset(PARTS),
                    profile_attributes=frozenset({"x", "y", "z", "dnc"}),
                    consent_purposes=frozenset({"sms", "push"}),
                    event_types=None,
                    cap_keys=frozenset(c.key for c in caps),
                )
                ma = await memory.load(cid, needs, now, request_id="r1")
                rb = await redis.load(cid, needs, now, request_id="r1")
                assert ma == msgspec.structs.replace(rb, now_ms=None), cid  # Redis: its clock
                await redis.forget_customer(cid)
        finally:
            await redis.close()
        return checked

    steps = asyncio.run(main())
    print(f"\ndifferential: {steps} random operations, MemoryStore == RedisStore throughout")


def _random_change(
    rng: Any, last: dict[tuple[str, str], str | None], cid: str, journey: str, now: int
) -> JourneyChange:
    """A journey change whose precondition is usually right and sometimes stale."""
    current = last.get((cid, journey))
    expect = current if rng.random() < 0.7 else rng.choice([None, "stale", "e1"])
    eid = f"ev{rng.randrange(10**6)}"
    st = JourneyState(
        status="active",
        stage=rng.choice(["s1", "s2"]),
        entered_ms=now,
        stage_entered_ms=now,
        entry_event_id=eid,
        last_event_id=eid if rng.random() < 0.9 else "",
        dedup={"k": now},
    )
    return JourneyChange(
        journey=journey,
        kind="enter",
        cause_event_id=eid,
        at_ms=now,
        expect_last_event_id=expect,
        state=st,
    )


# =========================================================================== circuit breaker


def test_circuit_breaker_states() -> None:
    now = [0.0]
    b = CircuitBreaker(
        failure_threshold=3, reset_timeout_s=1.0, max_reset_timeout_s=4.0, clock=lambda: now[0]
    )
    assert b.allow() and b.state == "closed"
    for _ in range(2):
        b.record_failure()
    b.record_success()  # consecutive failures only
    for _ in range(3):
        b.record_failure()
    assert b.state == "open" and not b.allow() and b.opened == 1
    now[0] = 1.0
    assert b.state == "half_open"
    assert b.allow() and not b.allow()  # exactly one probe
    b.record_failure()  # probe failed: open again for twice as long
    now[0] = 2.5
    assert not b.allow()
    now[0] = 3.0
    assert b.allow()
    b.release()  # probe cancelled: the next caller probes
    assert b.allow()
    b.record_failure()  # 4 s now (the cap)
    now[0] = 6.9
    assert not b.allow()
    now[0] = 7.0
    assert b.allow()
    b.record_success()
    assert b.state == "closed" and b.allow() and b.allow()
    for _ in range(3):
        b.record_failure()
    now[0] = 8.0  # back to the initial reset timeout after a success
    assert b.allow()


def test_an_expired_deadline_fails_without_io_or_breaker_effect(redis_url: str) -> None:
    async def main() -> None:
        store = RedisStore.from_url(redis_url, prefix=_unique("dl"))
        try:
            await store.init_state()
            for _ in range(10):
                with pytest.raises(StoreUnavailable, match="deadline already passed"):
                    await store.load("c", NEEDS, T0, timeout_s=0.0)
            assert store.breaker.state == "closed" and store.breaker.opened == 0
            assert (await store.load("c", NEEDS, T0, timeout_s=1.0)).replay is None
            await store.close()
            with pytest.raises(StoreUnavailable, match="closed"):
                await store.load("c", NEEDS, T0)
            assert await store.ping() is False
        finally:
            await store.close()

    asyncio.run(main())


def test_seed_matches_memory_store_seed(redis_url: str) -> None:
    """``seed`` (tests, scenario runs, benchmarks) stores what MemoryStore.seed stores."""
    from arbiter.policies.snapshot import (
        ConsentRecord,
        CustomerSnapshot,
        EventCounter,
        ProfileValue,
    )
    from arbiter.state.memory import MemoryStore

    snap = CustomerSnapshot(
        customer_id="seeded",
        profile={"tier": ProfileValue(value="gold", updated_ms=T0, source="crm")},
        consent={"push": ConsentRecord(state="denied", updated_ms=T0, expires_ms=T0 + DAY)},
        events={"buy": EventCounter(total=2, first_ms=T0 - HOUR, last_ms=T0, buckets={T0: 2})},
        segments=frozenset({"vip", "eu"}),
        journeys={
            "j": JourneyState(
                status="active", stage="s", entered_ms=T0, stage_entered_ms=T0, last_event_id="e"
            )
        },
        caps={"daily": [T0 - 10, T0]},
    )
    needs = SnapshotNeeds(
        parts=frozenset(PARTS),
        profile_attributes=frozenset({"tier"}),
        consent_purposes=frozenset({"push"}),
        event_types=None,
        cap_keys=frozenset({"daily"}),
    )

    async def main() -> None:
        memory = MemoryStore()
        memory.seed(snap)
        store = RedisStore.from_url(redis_url, prefix=_unique("seed"))
        try:
            await store.init_state()
            await store.seed(snap)
            got = await store.load("seeded", needs, T0)
            expected = await memory.load("seeded", needs, T0)
            assert (got.snapshot, got.replay) == (expected.snapshot, expected.replay)
            assert got.consent_version == expected.consent_version == 1
            assert got.snapshot.segments == {"vip", "eu"}
            assert await store.export_customer("seeded") == await memory.export_customer("seeded")
            assert await store.forget_customer("seeded") == 4  # p, j, k, e
        finally:
            await store.close()

    asyncio.run(main())


def test_an_overloaded_event_loop_does_not_open_the_breaker_on_a_healthy_redis(
    private_redis: RedisServer,
) -> None:
    """A process too busy to read Redis's replies in time is not a Redis outage.

    50 loads with a 20 ms timeout are in flight when the event loop is blocked
    for 150 ms (what a burst of CPU work does to a saturated server): they time
    out, but the breaker must stay closed, and the next call must be served.
    A frozen Redis with an idle loop still opens it (the fault tests).
    """

    async def main() -> tuple[int, int, str]:
        store = RedisStore.from_url(private_redis.url, prefix=_unique("lag"))
        await store.init_state()
        await store.load("warm", NEEDS, 0, timeout_s=1.0)
        calls = [
            asyncio.create_task(store.load(f"c{i}", NEEDS, 0, timeout_s=0.020)) for i in range(50)
        ]
        await asyncio.sleep(0)  # the calls are sent
        time.sleep(0.150)  # the event loop is stuck in CPU work
        results = await asyncio.gather(*calls, return_exceptions=True)
        timed_out = sum(isinstance(r, StoreUnavailable) for r in results)
        loaded = await store.load("after", NEEDS, 0, timeout_s=1.0)
        await store.close()
        return timed_out, store.breaker.opened, loaded.snapshot.customer_id

    timed_out, opened, after = asyncio.run(main())
    assert timed_out > 5  # the stall made calls miss their deadline ...
    assert opened == 0  # ... and that was not taken for an outage
    assert after == "after"


def test_concurrent_calls_on_the_pipelined_connection_get_their_own_replies(
    private_redis: RedisServer,
) -> None:
    """300 loads in flight on one connection, every third abandoned by its caller (cancelled):
    the others get exactly their own customer's state; then a lost connection fails the
    calls in flight (unavailable) and the next call reconnects."""

    from arbiter.policies.effects import ProfileUpdate
    from arbiter.state import Loaded

    async def main() -> None:
        store = RedisStore.from_url(
            private_redis.url, prefix=_unique("pipe"), default_timeout_s=5.0
        )
        assert store._pipe is not None
        await store.init_state()
        for i in range(30):
            await store.update_profile(
                ProfileUpdate(
                    customer_id=f"p{i}",
                    source="t",
                    timestamp_ms=T0,
                    traits={"tier": f"tier-{i}"},
                )
            )
        calls = [
            asyncio.create_task(store.load(f"p{i % 30}", NEEDS, T0, request_id=f"q{i}"))
            for i in range(300)
        ]
        await asyncio.sleep(0)
        for task in calls[::3]:
            task.cancel()
        results = await asyncio.gather(*calls, return_exceptions=True)
        for i, result in enumerate(results):
            if i % 3 == 0:
                assert isinstance(result, asyncio.CancelledError | Loaded)
                continue
            assert isinstance(result, Loaded), result
            assert result.snapshot.customer_id == f"p{i % 30}"
            assert result.snapshot.profile["tier"].value == f"tier-{i % 30}"
        # The connection drops with calls in flight: they fail as unavailable, the next works.
        private_redis.freeze()
        stuck = [
            asyncio.create_task(store.load("p1", NEEDS, T0, timeout_s=2.0)) for _ in range(3)
        ]  # under the breaker threshold
        await asyncio.sleep(0.05)
        store._pipe._transport.abort()  # type: ignore[union-attr]
        for outcome in await asyncio.gather(*stuck, return_exceptions=True):
            assert isinstance(outcome, StoreUnavailable), outcome
        private_redis.thaw()
        again = await store.load("p2", NEEDS, T0, timeout_s=2.0)
        assert again.snapshot.profile["tier"].value == "tier-2"
        await store.close()

    asyncio.run(main())
