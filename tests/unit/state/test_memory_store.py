"""MemoryStore beyond the shared contract: clock, sweeping, pruning, fault injection, ids, export shape.

The semantics every store shares are tested once, in ``tests/contract/``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import msgspec
import pytest

from arbiter.policies.effects import (
    CapIncrement,
    CommitResult,
    CounterIncrement,
    DecisionCommit,
    EventEffects,
    FeedbackKind,
    FeedbackRecord,
    Grant,
    ProfileUpdate,
)
from arbiter.policies.snapshot import PARTS, CustomerSnapshot, ProfileValue, SnapshotNeeds

# Submodules, not the package: the venv's editable finder may predate state/__init__.py.
from arbiter.state.memory import ManualClock, MemoryStore
from arbiter.state.store import (
    FEEDBACK_LIMIT,
    Store,
    StoredDecision,
    StoreUnavailable,
    build_export,
    validate_id,
)

T = TypeVar("T")
T0 = 1_700_000_000_000
DAY = 86_400_000
ALL = SnapshotNeeds(
    parts=frozenset(PARTS),
    event_types=None,
    cap_keys=frozenset({"k"}),
    profile_attributes=frozenset({"a"}),
)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def commit(
    cid: str, rid: str, now_ms: int, *, window_ms: int = DAY, limit: int = 100
) -> DecisionCommit:
    inc = CapIncrement(cap_id="k", key="k", window_ms=window_ms, limit=limit)
    return DecisionCommit(
        customer_id=cid,
        request_id=rid,
        decision_id=f"d-{rid}",
        now_ms=now_ms,
        policy_version="v",
        grants=(Grant(tracking_id=f"d-{rid}.a", action="a", channel="email", caps=(inc,)),),
    )


def event(cid: str, eid: str, *, feedback: tuple[FeedbackRecord, ...] = ()) -> EventEffects:
    inc = CounterIncrement(
        event_type="view", at_ms=T0, bucket_ms=3_600_000, bucket_start_ms=T0 - T0 % 3_600_000
    )
    return EventEffects(
        customer_id=cid,
        event_id=eid,
        event_type="view",
        event_ms=T0,
        now_ms=T0,
        counters=(inc,),
        feedback=feedback,
    )


def test_memory_store_satisfies_the_protocol() -> None:
    assert isinstance(MemoryStore(), Store)


@pytest.mark.parametrize("good", ["a", "x" * 128, "user:42@eu.example+test-1_2.z"])
def test_valid_ids(good: str) -> None:
    assert validate_id(good) == good


@pytest.mark.parametrize(
    "bad", ["", "x" * 129, "a b", "{a}", "a}", "a\t", "a\n", "ü", "a/b", "a,b"]
)
def test_invalid_ids_name_the_field_without_echoing_the_input(bad: str) -> None:
    with pytest.raises(ValueError) as info:
        validate_id(bad, "event_id")
    assert "event_id" in str(info.value)
    assert bad == "" or bad not in str(info.value)


def test_manual_clock_only_moves_forward() -> None:
    clock = ManualClock(10.0)
    clock.advance(2.5)
    assert clock() == 12.5
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_ttls_must_be_positive() -> None:
    store = MemoryStore()
    with pytest.raises(ValueError):
        run(store.commit_decision(commit("c", "r", T0), b"{}", ttl_s=0))
    with pytest.raises(ValueError):
        run(store.apply_event(event("c", "e"), dedup_ttl_s=-1))
    assert len(store) == 0


def test_expired_records_are_swept_and_empty_customers_dropped() -> None:
    clock = ManualClock()
    store = MemoryStore(clock=clock)
    for i in range(20):
        run(
            store.commit_decision(
                DecisionCommit(
                    customer_id=f"c{i}",
                    request_id="r",
                    decision_id="d",
                    now_ms=T0,
                    policy_version="v",
                ),
                b"{}",
                ttl_s=1,
            )
        )
    run(
        store.update_profile(
            ProfileUpdate(customer_id="kept", source="s", timestamp_ms=T0, traits={"a": 1})
        )
    )
    assert len(store) == 21
    clock.advance(2)
    # Writes sweep a few customers each; enough writes pass over everyone.
    for i in range(20):
        run(
            store.update_profile(
                ProfileUpdate(customer_id="kept", source="s", timestamp_ms=T0 + i, traits={"a": i})
            )
        )
    assert len(store) == 1
    loaded = run(store.load("kept", ALL, T0))
    assert loaded.snapshot.profile["a"] == ProfileValue(value=19, updated_ms=T0 + 19, source="s")


def test_loaded_cap_lists_are_pruned_to_the_longest_window() -> None:
    store = MemoryStore()
    run(store.commit_decision(commit("c", "r1", T0, window_ms=1_000), b"{}"))
    run(store.commit_decision(commit("c", "r2", T0 + 500, window_ms=1_000), b"{}"))
    assert run(store.load("c", ALL, T0 + 600)).snapshot.caps == {"k": [T0, T0 + 500]}
    assert run(store.load("c", ALL, T0 + 1_200)).snapshot.caps == {"k": [T0 + 500]}
    assert run(store.load("c", ALL, T0 + 5_000)).snapshot.caps == {}


def test_a_loaded_snapshot_does_not_change_under_later_writes() -> None:
    store = MemoryStore()
    run(store.commit_decision(commit("c", "r1", T0), b"{}"))
    before = run(store.load("c", ALL, T0)).snapshot
    copy = msgspec.json.encode(before)
    run(store.commit_decision(commit("c", "r2", T0 + 1), b"{}"))
    run(store.apply_event(event("c", "e1")))
    run(
        store.update_profile(
            ProfileUpdate(customer_id="c", source="s", timestamp_ms=T0, traits={"a": 1})
        )
    )
    assert msgspec.json.encode(before) == copy


def test_seed_sets_every_part_including_segments() -> None:
    store = MemoryStore()
    store.seed(
        CustomerSnapshot(
            customer_id="c", segments=frozenset({"vip"}), unavailable=frozenset({"caps"})
        )
    )
    snap = run(store.load("c", ALL, T0)).snapshot
    assert snap.segments == frozenset({"vip"}) and snap.unavailable == frozenset()
    assert (
        run(store.load("c", SnapshotNeeds(parts=frozenset({"profile"})), T0)).snapshot.segments
        == frozenset()
    )
    with pytest.raises(ValueError):
        store.seed(CustomerSnapshot(customer_id="bad id"))


def test_feedback_is_bounded_per_customer() -> None:
    store = MemoryStore()
    fb = FeedbackRecord(kind=FeedbackKind.IMPRESSION, decision_id="d", event_id="x", at_ms=T0)
    for i in range(FEEDBACK_LIMIT + 5):
        run(
            store.apply_event(
                event("c", f"e{i}", feedback=(msgspec.structs.replace(fb, event_id=f"e{i}"),))
            )
        )
    feedback = run(store.export_customer("c"))["feedback"]
    assert len(feedback) == FEEDBACK_LIMIT
    assert feedback[0]["event_id"] == "e5" and feedback[-1]["event_id"] == f"e{FEEDBACK_LIMIT + 4}"


def test_forget_counts_records() -> None:
    store = MemoryStore()
    run(
        store.update_profile(
            ProfileUpdate(customer_id="c", source="s", timestamp_ms=T0, traits={"a": 1, "b": 2})
        )
    )
    run(store.commit_decision(commit("c", "r1", T0), b"{}"))  # a cap key + a record
    run(store.apply_event(event("c", "e1")))  # a counter + a marker
    assert run(store.forget_customer("c")) == 6
    assert len(store) == 0


def test_injected_unavailability_fails_every_call() -> None:
    store = MemoryStore()
    store.unavailable = True
    assert run(store.ping()) is False
    calls: list[Coroutine[Any, Any, object]] = [
        store.load("c", ALL, T0),
        store.commit_decision(commit("c", "r", T0), b"{}"),
        store.apply_event(event("c", "e")),
        store.update_profile(
            ProfileUpdate(customer_id="c", source="s", timestamp_ms=T0, traits={"a": 1})
        ),
        store.export_customer("c"),
        store.forget_customer("c"),
    ]
    for call in calls:
        with pytest.raises(StoreUnavailable):
            run(call)
    assert len(store) == 0
    store.unavailable = False
    assert run(store.ping()) is True


def test_injected_latency_honours_the_timeout() -> None:
    store = MemoryStore(latency_s=0.05)

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(StoreUnavailable) as info:
            await store.load("c", ALL, T0, timeout_s=0.01)
        assert info.value.operation == "load"
        assert loop.time() - start < 0.05
        assert (await store.load("c", ALL, T0, timeout_s=1.0)).replay is None

    run(scenario())


def test_a_closed_store_is_unavailable_and_close_is_idempotent() -> None:
    store = MemoryStore()
    run(store.close())
    run(store.close())
    assert run(store.ping()) is False
    with pytest.raises(StoreUnavailable):
        run(store.load("c", ALL, T0))


def test_replay_survives_until_its_ttl() -> None:
    clock = ManualClock()
    store = MemoryStore(clock=clock)
    out = run(store.commit_decision(commit("c", "r", T0), b'{"x":1}', ttl_s=10))
    clock.advance(9.9)
    assert run(store.load("c", ALL, T0, request_id="r")).replay == StoredDecision(
        record=b'{"x":1}', result=out.result
    )
    clock.advance(0.1)
    assert run(store.load("c", ALL, T0, request_id="r")).replay is None


def test_build_export_is_plain_json_with_a_fixed_shape() -> None:
    snap = CustomerSnapshot(customer_id="c", segments=frozenset({"b", "a"}), caps={"k": [1, 2]})
    doc = build_export(
        snap,
        decisions={"r2": StoredDecision(record=b"\xff", result=CommitResult(granted=("t",)))},
        feedback=[],
        applied_events=["e2", "e1"],
    )
    assert list(doc) == [
        "customer_id",
        "profile",
        "consent",
        "events",
        "segments",
        "segments_updated_ms",
        "journeys",
        "caps",
        "decisions",
        "feedback",
        "applied_events",
    ]
    assert doc["segments"] == ["a", "b"]
    assert doc["applied_events"] == ["e1", "e2"]
    assert doc["decisions"] == [
        {
            "request_id": "r2",
            "record": "\ufffd",
            "result": {"granted": ["t"], "rejected": [], "skipped_journeys": []},
            "fingerprint": "",
        }
    ]


def test_records_per_customer_are_bounded_oldest_first() -> None:
    store = MemoryStore(max_decisions_per_customer=3, max_events_per_customer=2)
    for i in range(5):
        run(store.commit_decision(commit("c", f"r{i}", T0), b"{}"))
        run(store.apply_event(event("c", f"e{i}")))
    doc = run(store.export_customer("c"))
    assert [d["request_id"] for d in doc["decisions"]] == ["r2", "r3", "r4"]
    assert doc["applied_events"] == ["e3", "e4"]
    assert run(store.apply_event(event("c", "e0"))) == "applied"  # evicted: applies again


def test_at_the_bound_the_record_that_expires_first_goes_whatever_the_insertion_order() -> None:
    """Eviction follows expiry, then id -- not insertion order: shorter TTLs written later go
    first, equal expiries go smallest id first, and records purged meanwhile are not counted."""
    clock = ManualClock()
    store = MemoryStore(max_decisions_per_customer=3, clock=clock)
    for rid, ttl in (("r-a", 500), ("r-b", 100), ("r-c", 300)):
        run(store.commit_decision(commit("c", rid, T0), b"{}", ttl_s=ttl))
    run(store.commit_decision(commit("c", "r-d", T0), b"{}", ttl_s=400))  # over: r-b expires first
    kept = [d["request_id"] for d in run(store.export_customer("c"))["decisions"]]
    assert sorted(kept) == ["r-a", "r-c", "r-d"]
    # The same expiry as r-c, the earliest: the smaller id goes, though written last.
    run(store.commit_decision(commit("c", "r-b2", T0), b"{}", ttl_s=300))
    kept = [d["request_id"] for d in run(store.export_customer("c"))["decisions"]]
    assert sorted(kept) == ["r-a", "r-c", "r-d"]
    clock.advance(350)  # r-c expires (purged on access or evicted first: the same outcome)
    for rid in ("r-e", "r-f"):
        run(store.commit_decision(commit("c", rid, T0), b"{}", ttl_s=1000))
    kept = [d["request_id"] for d in run(store.export_customer("c"))["decisions"]]
    assert sorted(kept) == ["r-a", "r-e", "r-f"]


def test_stored_decisions_and_snapshots_stay_out_of_the_garbage_collectors_walks() -> None:
    """What an embedded store keeps per decision and per customer is plain data the collector
    need not walk: full collections walked every record (100-250 ms pauses at 50,000 customers)."""
    import gc

    store = MemoryStore()
    run(store.commit_decision(commit("c", "r1", T0), b"{}"))
    loaded = run(store.load("c", ALL, T0, request_id="r1"))
    assert loaded.replay is not None
    assert not gc.is_tracked(loaded.replay)
    assert not gc.is_tracked(loaded.replay.result)
    assert not gc.is_tracked(loaded.snapshot)
