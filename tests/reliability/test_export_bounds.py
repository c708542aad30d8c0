"""Privacy export and forget for any history size; stored decisions and event markers bounded.

Found: exporting a customer with ~8,000 stored decisions failed (the export
script unpacked every request id at once and hit Lua's limit), and nothing
bounded how many a customer could accumulate in Redis. Export now reads
records and markers in pages; forget unlinks the keys (freed in the
background); both stores keep at most ``MAX_DECISIONS_PER_CUSTOMER``
records and ``MAX_EVENT_MARKERS_PER_CUSTOMER`` markers, evicting the one
that expires first.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from redis_support import redis_url

from arbiter.policies.effects import DecisionCommit, EventEffects
from arbiter.state.memory import MemoryStore
from arbiter.state.redis_store import RedisStore

__all__ = ["redis_url"]  # session fixture, re-exported for pytest

T0 = 1_700_000_000_000


def empty_commit(cid: str, rid: str) -> DecisionCommit:
    return DecisionCommit(
        customer_id=cid, request_id=rid, decision_id=f"d-{rid}", now_ms=T0, policy_version="v"
    )


def bare_event(cid: str, eid: str) -> EventEffects:
    return EventEffects(
        customer_id=cid, event_id=eid, event_type="view", event_ms=T0, now_ms=T0, counters=()
    )


def test_export_and_forget_a_customer_with_10000_stored_decisions(redis_url: str) -> None:
    """A history longer than Lua's unpack limit (a store configured with a higher bound, or
    records written before the bound existed): export pages through it."""
    prefix = f"big-{time.monotonic_ns()}"

    async def main() -> tuple[int, int, int, float]:
        store = RedisStore.from_url(redis_url, prefix=prefix, default_timeout_s=10.0)
        big = RedisStore(
            store.client,
            prefix=prefix,
            default_timeout_s=10.0,
            max_decisions_per_customer=20_000,
            max_events_per_customer=20_000,
        )
        try:
            await store.init_state()
            for batch in range(0, 10_000, 500):
                await asyncio.gather(
                    *(
                        big.commit_decision(empty_commit("long", f"r{i}"), b"{}", ttl_s=600)
                        for i in range(batch, batch + 500)
                    ),
                    *(
                        big.apply_event(bare_event("long", f"e{i}"))
                        for i in range(batch, batch + 500)
                    ),
                )
            started = time.perf_counter()
            doc = await store.export_customer("long")
            took = time.perf_counter() - started
            gone = await store.forget_customer("long")
            after = await store.export_customer("long")
            assert after["decisions"] == [] and after["applied_events"] == []
            return len(doc["decisions"]), len(doc["applied_events"]), gone, took
        finally:
            await store.close()

    decisions, markers, gone, took = asyncio.run(main())
    print(f"\nexport of 10,000 decisions + 10,000 event markers: {took * 1000:.0f} ms")
    assert decisions == 10_000 and markers == 10_000
    assert gone == 3  # the r, q and d keys


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_records_and_markers_are_bounded_the_same_way_in_both_stores(
    kind: str, request: pytest.FixtureRequest
) -> None:
    async def main() -> dict[str, Any]:
        store: Any
        if kind == "memory":
            store = MemoryStore(max_decisions_per_customer=3, max_events_per_customer=2)
        else:
            url = request.getfixturevalue("redis_url")
            plain = RedisStore.from_url(url, prefix=f"bound-{time.monotonic_ns()}")
            await plain.init_state()
            store = RedisStore(
                plain.client,
                prefix=plain.prefix,
                max_decisions_per_customer=3,
                max_events_per_customer=2,
            )
        try:
            # Record i expires before record i + 1 (distinct TTLs, one clock for both stores).
            for i in range(6):
                await store.commit_decision(
                    empty_commit("c", f"r{i}"), b"{}", ttl_s=600 - 60 * (i % 2) + 10 * i
                )
                await store.apply_event(bare_event("c", f"e{i}"), dedup_ttl_s=600 + 10 * i)
            return dict(await store.export_customer("c"))
        finally:
            await store.close()

    doc = asyncio.run(main())
    # TTLs 600, 550, 620, 570, 640, 590: the three that expire last are r0, r2, r4.
    assert sorted(d["request_id"] for d in doc["decisions"]) == ["r0", "r2", "r4"]
    assert doc["applied_events"] == ["e4", "e5"]
