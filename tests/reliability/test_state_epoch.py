"""Lost state must look like unavailable state, never like a new customer.

Found: deny consent, ``kill -9`` Redis, restart it empty -- the next Decide
granted the consent-gated action (50 of 50 customers); ``allkeys-lru``
eviction of a consent key did the same, and ``volatile-lru`` eviction of a
cap key gave extra grants. The store now checks a *state epoch* marker
inside every read and commit script (on a Cluster one marker per slot, so
the check stays inside the customer's slot): no marker means the data is
gone, and reads raise ``StateLost`` until an operator re-seeds and runs
``arbiter state init``. A start-up check refuses an evicting
``maxmemory-policy`` unless explicitly allowed.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest
from redis_support import RedisClusterServers, RedisServer

from arbiter.policies.effects import (
    CapIncrement,
    ConsentUpdate,
    DecisionCommit,
    Grant,
    ProfileUpdate,
)
from arbiter.policies.snapshot import PARTS, SnapshotNeeds
from arbiter.state import redis_admin
from arbiter.state.redis_store import RedisStore
from arbiter.state.store import StateLost, StoreMisconfigured, StoreUnavailable

T0 = 1_700_000_000_000
NEEDS = SnapshotNeeds(
    parts=frozenset(PARTS),
    profile_attributes=frozenset(),
    consent_purposes=frozenset({"email_marketing"}),
    event_types=None,
    cap_keys=frozenset({"daily"}),
)
EVICTING = (
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
)


def deny(cid: str) -> ProfileUpdate:
    return ProfileUpdate(
        customer_id=cid,
        source="cmp",
        timestamp_ms=T0,
        consents=(ConsentUpdate(purpose="email_marketing", state="denied"),),
    )


def grant_commit(cid: str, rid: str) -> DecisionCommit:
    cap = CapIncrement(cap_id="daily", key="daily", window_ms=86_400_000, limit=3)
    return DecisionCommit(
        customer_id=cid,
        request_id=rid,
        decision_id=f"dec-{rid}",
        now_ms=T0,
        policy_version="1+test",
        grants=(Grant(tracking_id=f"{rid}.a", action="a", channel="email", caps=(cap,)),),
    )


def test_a_redis_restarted_empty_is_lost_state_until_initialised(
    private_redis: RedisServer,
) -> None:
    customers = [f"c{i}" for i in range(50)]

    async def main() -> None:
        store = RedisStore.from_url(private_redis.url, prefix="ep", default_timeout_s=1.0)
        try:
            assert await store.init_state() == 1
            assert await store.init_state() == 0  # already there: kept
            for cid in customers:
                await store.update_profile(deny(cid))
            assert (await store.load("c0", NEEDS, T0)).snapshot.consent["email_marketing"]
            assert await store.ping() is True

            private_redis.kill()
            await asyncio.to_thread(private_redis.start)  # empty: no persistence

            for cid in customers:
                with pytest.raises(StateLost) as caught:
                    await store.load(cid, NEEDS, T0)
                assert isinstance(caught.value, StoreUnavailable)
                assert "arbiter state init" in str(caught.value)
            with pytest.raises(StateLost):
                await store.commit_decision(grant_commit("c0", "r1"), b"{}")
            assert await store.ping() is False
            assert "epoch" in store.health_detail

            # The operator re-seeds (writes work without the epoch), then acknowledges.
            await store.update_profile(deny("c0"))
            assert await store.init_state() == 1
            assert await store.ping() is True and store.health_detail == ""
            assert (await store.load("c0", NEEDS, T0)).snapshot.consent["email_marketing"]
            assert "email_marketing" not in (await store.load("c1", NEEDS, T0)).snapshot.consent
        finally:
            await store.close()

    asyncio.run(main())


def test_a_cluster_master_restarted_empty_loses_only_its_slots() -> None:
    cluster = RedisClusterServers().start()

    async def main() -> None:
        store = RedisStore.from_url(cluster.url, prefix="epc", default_timeout_s=1.0)
        try:
            assert await store.init_state() == 16384
            for i in range(60):
                await store.update_profile(deny(f"c{i}"))
            victim = cluster.nodes[1]
            slots = {int(s) for s in await _owned_slots(store, victim.port)}
            victim.kill()
            await asyncio.to_thread(victim.start)  # same nodes.conf: same slots, no data
            from redis.crc import key_slot

            lost = kept = 0
            for i in range(60):
                cid = f"c{i}"
                slot = key_slot(f"epc:{{c:{cid}}}:p".encode())
                for _ in range(100):
                    try:
                        loaded = await store.load(cid, NEEDS, T0)
                    except StateLost:
                        assert slot in slots
                        lost += 1
                        break
                    except StoreUnavailable:
                        await asyncio.sleep(0.05)  # the node is still rejoining
                        store.breaker.record_success()
                        continue
                    assert slot not in slots
                    assert loaded.snapshot.consent["email_marketing"].state == "denied"
                    kept += 1
                    break
            assert lost > 0 and kept > 0 and lost + kept == 60
            for _ in range(40):  # the breaker may still hold the restart's connection errors
                if not await store.ping() and "epoch" in store.health_detail:
                    break
                await asyncio.sleep(0.05)
            assert "epoch" in store.health_detail, store.health_detail
            assert await store.init_state() == len(slots)
            assert await store.ping() is True
        finally:
            await store.close()

    try:
        asyncio.run(main())
    finally:
        cluster.close()


async def _owned_slots(store: RedisStore, port: int) -> list[int]:
    cache = store.client.nodes_manager.slots_cache  # type: ignore[union-attr]
    return [slot for slot, nodes in cache.items() if nodes[0].port == port]


@pytest.mark.parametrize("policy", EVICTING)
def test_an_evicting_maxmemory_policy_is_refused_unless_allowed(
    private_redis: RedisServer, policy: str
) -> None:
    async def main() -> None:
        store = RedisStore.from_url(private_redis.url, prefix="ev")
        try:
            await redis_admin.check_deployment(store)  # noeviction (the default): fine
            await store.client.config_set("maxmemory-policy", policy)
            with pytest.raises(StoreMisconfigured, match=policy):
                await redis_admin.check_deployment(store)
            await redis_admin.check_deployment(store, allow_eviction=True)  # explicitly allowed
        finally:
            await store.close()

    asyncio.run(main())


def test_serve_refuses_an_evicting_redis_and_state_init_works_from_the_cli(
    private_redis: RedisServer, tmp_path: object
) -> None:
    from server_procs import EXAMPLES, free_port

    cli = [sys.executable, "-m", "arbiter.server.cli"]
    subprocess.run(
        [*cli_redis(private_redis), "CONFIG", "SET", "maxmemory-policy", "allkeys-lru"],
        check=True,
        capture_output=True,
    )
    out = subprocess.run(
        [
            *cli,
            "serve",
            "--policies",
            str(EXAMPLES),
            "--listen",
            f"127.0.0.1:{free_port()}",
            "--redis-url",
            private_redis.url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 2, out.stderr
    assert "allkeys-lru" in out.stderr and "--redis-allow-eviction" in out.stderr

    status = subprocess.run(
        [*cli, "state", "status", "--redis-url", private_redis.url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert status.returncode == 1, status.stdout  # no epoch yet, and an evicting policy
    assert "epoch: missing" in status.stdout and "allkeys-lru" in status.stdout
    init = subprocess.run(
        [*cli, "state", "init", "--redis-url", private_redis.url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert init.returncode == 0, init.stderr
    assert "1 epoch marker written" in init.stdout


def cli_redis(server: RedisServer) -> list[str]:
    return ["redis-cli", "-h", "127.0.0.1", "-p", str(server.port)]
