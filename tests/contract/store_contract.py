"""The Store contract suite: written once, run against every store (Memory, Redis, Redis Cluster).

Every test takes two fixtures from ``tests/contract/conftest.py``: ``store``
(a :class:`state.store.Store`) and ``store_case`` (a :class:`StoreCase`:
the event loop the store lives in, its clock, unique customer ids). Both
are parametrized over :data:`STORE_FACTORIES`, so a new store runs the whole
suite by registering a factory -- see :func:`register_store_factory`.

The expected values come from the pure functions of :mod:`policies.effects`
(the semantics' single source) wherever a test can phrase them so, and
from the rules of its module docstring otherwise. Tests never depend on a
store's pruning: cap usage is compared with ``cap_count``, not list equality.

Customer ids are unique per test (``store_case.customer(...)``), so the
suite can run against a shared server without flushing anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec
import pytest

from arbiter.policies.effects import (
    CapIncrement,
    CommitResult,
    ConsentUpdate,
    CounterIncrement,
    DecisionCommit,
    EventEffects,
    FeedbackKind,
    FeedbackRecord,
    Grant,
    GrantRejection,
    JourneyChange,
    ProfileUpdate,
    StateConflict,
    apply_commit,
    apply_counter,
    apply_profile_update,
)
from arbiter.policies.snapshot import (
    MONTH_MS,
    PARTS,
    ConsentRecord,
    CustomerSnapshot,
    EventCounter,
    JourneyState,
    ProfileValue,
    SnapshotNeeds,
    cap_count,
    event_count,
)
from arbiter.state.store import (
    MAX_DECISIONS_PER_CUSTOMER,
    CommitOutcome,
    StateLost,
    Store,
    StoredDecision,
)

T = TypeVar("T")

# --------------------------------------------------------------------------- harness


@dataclass
class MadeStore:
    """What a factory yields: the store, and how to move its expiry clock.

    ``advance``: an async callable moving the store's TTL clock forward by
    that many seconds (a ``ManualClock`` for MemoryStore). ``None``: the
    store runs on real time, and the harness sleeps instead.
    ``lose``: an async callable doing to one customer what a restart
    without persistence does (its data and the state epoch gone).
    """

    store: Store
    advance: Callable[[float], Coroutine[Any, Any, None]] | None = None
    lose: Callable[[str], Coroutine[Any, Any, None]] | None = None


# A factory is an async generator function: it receives the pytest request
# (for ``request.getfixturevalue("redis_url")`` and the like), yields one
# MadeStore, and cleans up after the yield. It runs inside the event loop the
# test uses, so clients bound to a loop (redis.asyncio) work.
StoreFactory = Callable[[pytest.FixtureRequest], AsyncIterator[MadeStore]]

STORE_FACTORIES: dict[str, StoreFactory] = {}


def register_store_factory(name: str) -> Callable[[StoreFactory], StoreFactory]:
    """Register a store under ``name`` (the pytest parameter id) for the whole suite.

    Usage, in a new file ``tests/contract/factories_<anything>.py`` (imported
    automatically by the contract conftest) or in any conftest / plugin that
    loads before collection::

        from store_contract import MadeStore, register_store_factory

        @register_store_factory("redis")
        async def redis_store(request):
            store = RedisStore.from_url(request.getfixturevalue("redis_url"))
            try:
                yield MadeStore(store)
            finally:
                await store.close()
    """

    def add(factory: StoreFactory) -> StoreFactory:
        if name in STORE_FACTORIES:
            raise ValueError(f"store factory {name!r} is registered twice")
        STORE_FACTORIES[name] = factory
        return factory

    return add


@dataclass
class StoreCase:
    """The per-test harness around one store: its event loop, its clock, unique ids."""

    name: str
    store: Store
    runner: asyncio.Runner
    made: MadeStore
    token: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    @property
    def fake_time(self) -> bool:
        return self.made.advance is not None

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the store's event loop (the same loop for the whole test)."""
        return self.runner.run(coro)

    def gather(self, coros: Iterable[Coroutine[Any, Any, T]]) -> list[T | BaseException]:
        """Run ``coros`` concurrently; exceptions are returned, not raised."""

        async def both() -> list[T | BaseException]:
            return await asyncio.gather(*coros, return_exceptions=True)

        return self.run(both())

    def advance(self, seconds: float) -> None:
        """Move the store's expiry clock forward (real sleep for real-time stores)."""
        if self.made.advance is not None:
            self.run(self.made.advance(seconds))
        else:
            self.run(asyncio.sleep(seconds))

    def customer(self, label: str = "c") -> str:
        """A customer id unique to this test (valid per ``state.store.validate_id``)."""
        return f"{label}-{self.token}"


@contextlib.contextmanager
def open_case(name: str, request: pytest.FixtureRequest) -> Any:
    """Create the store of factory ``name`` on a fresh event loop; close both afterwards."""
    factory = STORE_FACTORIES[name]
    with asyncio.Runner() as runner:
        gen = factory(request)

        async def step() -> MadeStore:
            return await anext(gen)

        made = runner.run(step())
        try:
            yield StoreCase(name=name, store=made.store, runner=runner, made=made)
        finally:
            with contextlib.suppress(StopAsyncIteration):
                runner.run(step())


# --------------------------------------------------------------------------- builders

T0 = 1_700_000_000_000  # a realistic "now" (2023-11-14), in ms
DAY = 86_400_000
HOUR = 3_600_000


def everything(
    *,
    attributes: Iterable[str] = (),
    purposes: Iterable[str] = (),
    cap_keys: Iterable[str] = (),
) -> SnapshotNeeds:
    """Needs that read every part (all event types; the named attributes, purposes, cap keys)."""
    return SnapshotNeeds(
        parts=frozenset(PARTS),
        profile_attributes=frozenset(attributes),
        consent_purposes=frozenset(purposes),
        event_types=None,
        cap_keys=frozenset(cap_keys),
    )


def cap(key: str = "daily", limit: int = 3, window_ms: int = DAY, cap_id: str = "") -> CapIncrement:
    return CapIncrement(
        cap_id=cap_id or key.split("/", 1)[0], key=key, window_ms=window_ms, limit=limit
    )


def grant(action: str, *caps: CapIncrement, decision: str = "d") -> Grant:
    return Grant(tracking_id=f"{decision}.{action}", action=action, channel="email", caps=caps)


def commit(
    customer_id: str,
    request_id: str,
    now_ms: int,
    *grants: Grant,
    journeys: tuple[JourneyChange, ...] = (),
) -> DecisionCommit:
    return DecisionCommit(
        customer_id=customer_id,
        request_id=request_id,
        decision_id=f"dec-{request_id}",
        now_ms=now_ms,
        policy_version="1+sha256:test",
        grants=grants,
        journeys=journeys,
    )


def record(request_id: str, **extra: Any) -> bytes:
    """A decision record as the server stores it: UTF-8 JSON (opaque to the store)."""
    return msgspec.json.encode(
        {"request_id": request_id, "decision_id": f"dec-{request_id}", **extra}
    )


def state(
    stage: str, last_event_id: str, *, entered_ms: int = T0, status: Any = "active"
) -> JourneyState:
    return JourneyState(
        status=status,
        stage=stage,
        entered_ms=entered_ms,
        stage_entered_ms=entered_ms,
        entry_event_id=last_event_id,
        last_event_id=last_event_id,
        entries=1,
        dedup={"k": entered_ms},
    )


def change(
    journey: str, new: JourneyState, expect: str | None, *, kind: Any = "enter"
) -> JourneyChange:
    return JourneyChange(
        journey=journey,
        kind=kind,
        cause_event_id=new.last_event_id,
        at_ms=new.stage_entered_ms,
        to_stage=new.stage,
        expect_last_event_id=expect,
        state=new,
    )


def counted(
    event_type: str, at_ms: int, *, bucket_ms: int = HOUR, retention_ms: int | None = None
) -> CounterIncrement:
    extra = {} if retention_ms is None else {"retention_ms": retention_ms}
    return CounterIncrement(
        event_type=event_type,
        at_ms=at_ms,
        bucket_ms=bucket_ms,
        bucket_start_ms=at_ms - at_ms % bucket_ms,
        **extra,
    )


def event(
    customer_id: str,
    event_id: str,
    *,
    event_type: str = "purchase",
    at_ms: int = T0,
    journeys: tuple[JourneyChange, ...] = (),
    feedback: tuple[FeedbackRecord, ...] = (),
    counters: tuple[CounterIncrement, ...] | None = None,
) -> EventEffects:
    return EventEffects(
        customer_id=customer_id,
        event_id=event_id,
        event_type=event_type,
        event_ms=at_ms,
        now_ms=at_ms,
        counters=(counted(event_type, at_ms),) if counters is None else counters,
        journeys=journeys,
        feedback=feedback,
    )


def profile(customer_id: str, ts: int, *, source: str = "crm", **traits: object) -> ProfileUpdate:
    return ProfileUpdate(customer_id=customer_id, source=source, timestamp_ms=ts, traits=traits)


def consent(
    customer_id: str,
    ts: int,
    purpose: str,
    value: Any,
    *,
    expires_ms: int | None = None,
    source: str = "cmp",
) -> ProfileUpdate:
    return ProfileUpdate(
        customer_id=customer_id,
        source=source,
        timestamp_ms=ts,
        consents=(ConsentUpdate(purpose=purpose, state=value, expires_ms=expires_ms),),
    )


def load(
    case: StoreCase, customer_id: str, needs: SnapshotNeeds | None = None, now_ms: int = T0
) -> CustomerSnapshot:
    return case.run(case.store.load(customer_id, needs or everything(), now_ms)).snapshot


def used(snapshot: CustomerSnapshot, key: str, now_ms: int, window_ms: int = DAY) -> int:
    return cap_count(snapshot.caps.get(key, []), now_ms, window_ms)


# =========================================================================== load


def test_unknown_customer_is_an_empty_snapshot(store: Store, store_case: StoreCase) -> None:
    cid = store_case.customer()
    loaded = store_case.run(
        store.load(
            cid,
            everything(attributes=["email"], purposes=["email_marketing"], cap_keys=["daily"]),
            T0,
            request_id="r1",
        )
    )
    assert loaded.snapshot == CustomerSnapshot(customer_id=cid)
    assert loaded.replay is None


@pytest.mark.parametrize("bad", ["", "a b", "{c}", "x" * 129, "é", "a\n", "a/b"])
def test_invalid_ids_are_refused(store: Store, store_case: StoreCase, bad: str) -> None:
    good = store_case.customer()
    with pytest.raises(ValueError):
        store_case.run(store.load(bad, everything(), T0))
    with pytest.raises(ValueError):
        store_case.run(store.load(good, everything(), T0, request_id=bad))
    with pytest.raises(ValueError):
        store_case.run(store.commit_decision(commit(bad, "r1", T0), record("r1"), ttl_s=60))
    with pytest.raises(ValueError):
        store_case.run(store.commit_decision(commit(good, bad, T0), record("r1"), ttl_s=60))
    with pytest.raises(ValueError):
        store_case.run(store.apply_event(event(good, bad)))
    with pytest.raises(ValueError):
        store_case.run(store.update_profile(profile(bad, T0, email="a@b.c")))
    with pytest.raises(ValueError):
        store_case.run(store.export_customer(bad))
    with pytest.raises(ValueError):
        store_case.run(store.forget_customer(bad))
    assert store_case.run(store.export_customer(good)) == empty_export(good)


def test_load_reads_only_what_is_needed(store: Store, store_case: StoreCase) -> None:
    cid = store_case.customer()
    run = store_case.run
    run(store.update_profile(profile(cid, T0, email="a@b.c", country="DE")))
    run(store.update_profile(consent(cid, T0, "email_marketing", "granted")))
    run(store.update_profile(consent(cid, T0, "push", "denied")))
    run(
        store.apply_event(
            event(
                cid,
                "e1",
                event_type="purchase",
                journeys=(change("welcome", state("s1", "e1"), None),),
            )
        )
    )
    run(store.apply_event(event(cid, "e2", event_type="view")))
    run(
        store.commit_decision(
            commit(cid, "r1", T0, grant("a", cap("daily"), cap("weekly", window_ms=7 * DAY))),
            record("r1"),
            ttl_s=60,
        )
    )

    snap = load(
        store_case,
        cid,
        SnapshotNeeds(
            parts=frozenset({"profile"}), profile_attributes=frozenset({"email", "missing"})
        ),
    )
    assert set(snap.profile) == {"email"}
    assert snap.consent == {} and snap.events == {} and snap.journeys == {} and snap.caps == {}
    assert snap.unavailable == frozenset()

    snap = load(
        store_case,
        cid,
        SnapshotNeeds(
            parts=frozenset({"consent", "events"}),
            consent_purposes=frozenset({"push"}),
            event_types=frozenset({"view"}),
        ),
    )
    assert snap.profile == {}
    assert set(snap.consent) == {"push"}
    assert set(snap.events) == {"view"}

    snap = load(
        store_case,
        cid,
        SnapshotNeeds(
            parts=frozenset({"events", "journeys", "caps"}),
            event_types=None,
            cap_keys=frozenset({"weekly"}),
        ),
    )
    assert set(snap.events) == {"purchase", "view"}
    assert set(snap.journeys) == {"welcome"}
    assert set(snap.caps) == {"weekly"}
    assert used(snap, "weekly", T0) == 1

    # Asking for a part but no names reads nothing of it.
    snap = load(store_case, cid, SnapshotNeeds(parts=frozenset({"profile", "consent", "caps"})))
    assert snap.profile == {} and snap.consent == {} and snap.caps == {}


# =========================================================================== profile and consent


def test_profile_precedence_newer_wins_and_stale_is_ignored(
    store: Store, store_case: StoreCase
) -> None:
    cid = store_case.customer()
    run = store_case.run
    first = run(store.update_profile(profile(cid, T0, email="new@x.io", tier="gold")))
    assert [(r.name, r.applied, r.stored_ms) for r in first] == [
        ("email", True, T0),
        ("tier", True, T0),
    ]

    stale = run(store.update_profile(profile(cid, T0 - 1, email="old@x.io", source="legacy")))
    assert [(r.kind, r.name, r.applied, r.stored_ms) for r in stale] == [
        ("trait", "email", False, T0)
    ]

    same = run(store.update_profile(profile(cid, T0, tier="silver")))  # equal timestamp: applies
    assert [(r.applied, r.stored_ms) for r in same] == [(True, T0)]

    newer = run(store.update_profile(profile(cid, T0 + 5, email="newest@x.io", source="app")))
    assert [(r.applied, r.stored_ms) for r in newer] == [(True, T0 + 5)]

    snap = load(store_case, cid, everything(attributes=["email", "tier"]))
    assert snap.profile == {
        "email": ProfileValue(value="newest@x.io", updated_ms=T0 + 5, source="app"),
        "tier": ProfileValue(value="silver", updated_ms=T0, source="crm"),
    }


def test_profile_values_round_trip_with_their_types(store: Store, store_case: StoreCase) -> None:
    cid = store_case.customer()
    values: dict[str, Any] = {
        "s": "x",
        "i": 2**53 + 1,
        "neg": -7,
        "f": 0.1,
        "b": False,
        "l": [1, "a", None],
        "m": {"k": [True]},
    }
    update = ProfileUpdate(customer_id=cid, source="crm", timestamp_ms=T0, traits=values)
    store_case.run(store.update_profile(update))
    snap = load(store_case, cid, everything(attributes=values))
    assert {k: v.value for k, v in snap.profile.items()} == values
    assert type(snap.profile["f"].value) is float and type(snap.profile["i"].value) is int


def test_trait_tombstone_is_not_resurrected_by_an_older_write(
    store: Store, store_case: StoreCase
) -> None:
    cid = store_case.customer()
    run = store_case.run
    run(store.update_profile(profile(cid, T0, phone="+49")))
    removed = run(store.update_profile(profile(cid, T0 + 10, phone=None)))
    assert removed[0].applied
    late = run(store.update_profile(profile(cid, T0 + 5, phone="+33")))
    assert not late[0].applied and late[0].stored_ms == T0 + 10
    snap = load(store_case, cid, everything(attributes=["phone"]))
    assert snap.profile["phone"] == ProfileValue(value=None, updated_ms=T0 + 10, source="crm")


def test_consent_newer_wins_and_denied_wins_ties(store: Store, store_case: StoreCase) -> None:
    cid = store_case.customer()
    run = store_case.run
    assert run(store.update_profile(consent(cid, T0, "email_marketing", "granted")))[0].applied
    assert run(store.update_profile(consent(cid, T0, "email_marketing", "denied")))[0].applied
    tie = run(store.update_profile(consent(cid, T0, "email_marketing", "granted")))[0]
    assert (tie.kind, tie.applied, tie.stored_ms) == ("consent", False, T0)
    assert not run(store.update_profile(consent(cid, T0 - 1, "email_marketing", "granted")))[
        0
    ].applied
    snap = load(store_case, cid, everything(purposes=["email_marketing"]))
    assert snap.consent["email_marketing"] == ConsentRecord(
        state="denied", updated_ms=T0, source="cmp"
    )
    assert run(store.update_profile(consent(cid, T0 + 1, "email_marketing", "granted")))[0].applied
    snap = load(store_case, cid, everything(purposes=["email_marketing"]))
    assert snap.consent["email_marketing"].state == "granted"


def test_expired_consent_is_returned_as_stored(store: Store, store_case: StoreCase) -> None:
    """The engine, not the store, decides what an expired record means (CONSENT_EXPIRED)."""
    cid = store_case.customer()
    store_case.run(
        store.update_profile(consent(cid, T0 - DAY, "push", "granted", expires_ms=T0 - HOUR))
    )
    snap = load(store_case, cid, everything(purposes=["push"]), now_ms=T0)
    assert snap.consent["push"] == ConsentRecord(
        state="granted", updated_ms=T0 - DAY, source="cmp", expires_ms=T0 - HOUR
    )


def test_do_not_contact_is_written_to_the_named_attribute(
    store: Store, store_case: StoreCase
) -> None:
    cid = store_case.customer()
    update = ProfileUpdate(customer_id=cid, source="support", timestamp_ms=T0, do_not_contact=True)
    with pytest.raises(ValueError):
        store_case.run(store.update_profile(update))
    assert store_case.run(store.export_customer(cid)) == empty_export(cid)
    results = store_case.run(store.update_profile(update, do_not_contact_attribute="dnc"))
    assert [(r.kind, r.name, r.applied) for r in results] == [("do_not_contact", "dnc", True)]
    assert load(store_case, cid, everything(attributes=["dnc"])).profile["dnc"].value is True


def test_profile_update_matches_the_pure_semantics(store: Store, store_case: StoreCase) -> None:
    """A mixed sequence, checked field by field against ``apply_profile_update``."""
    cid = store_case.customer()
    updates = [
        ProfileUpdate(
            customer_id=cid,
            source="a",
            timestamp_ms=T0,
            traits={"x": 1, "y": "b"},
            consents=(
                ConsentUpdate(purpose="sms", state="granted"),
                ConsentUpdate(purpose="push", state="denied", expires_ms=T0 + DAY),
            ),
            do_not_contact=False,
            segments=("vip", "eu"),
        ),
        ProfileUpdate(
            customer_id=cid,
            source="b",
            timestamp_ms=T0 - 1,
            traits={"x": 2, "z": None},
            consents=(ConsentUpdate(purpose="sms", state="denied"),),
            segments=("churn_risk",),
        ),
        ProfileUpdate(
            customer_id=cid,
            source="c",
            timestamp_ms=T0,
            traits={"y": None},
            consents=(
                ConsentUpdate(purpose="sms", state="denied"),
                ConsentUpdate(purpose="push", state="granted"),
            ),
            do_not_contact=True,
            segments=("eu",),
        ),
        ProfileUpdate(
            customer_id=cid,
            source="d",
            timestamp_ms=T0 + 1,
            traits={},
            consents=(ConsentUpdate(purpose="push", state="granted"),),
        ),
    ]
    reference = CustomerSnapshot(customer_id=cid)
    for update in updates:
        reference, expected = apply_profile_update(
            reference, update, do_not_contact_attribute="dnc"
        )
        got = store_case.run(store.update_profile(update, do_not_contact_attribute="dnc"))
        assert got == expected
    snap = load(
        store_case, cid, everything(attributes=["x", "y", "z", "dnc"], purposes=["sms", "push"])
    )
    assert snap.profile == reference.profile
    assert snap.consent == reference.consent
    assert snap.segments == reference.segments == {"eu"}
    assert snap.segments_updated_ms == reference.segments_updated_ms == T0


def segments(customer_id: str, ts: int, *names: str) -> ProfileUpdate:
    return ProfileUpdate(customer_id=customer_id, source="cdp", timestamp_ms=ts, segments=names)


def test_segments_are_replaced_as_a_whole_set_with_precedence(
    store: Store, store_case: StoreCase
) -> None:
    cid = store_case.customer()
    run = store_case.run
    first = run(store.update_profile(segments(cid, T0, "vip", "eu")))
    assert [(r.kind, r.name, r.applied, r.stored_ms) for r in first] == [
        ("segments", "segments", True, T0)
    ]
    newer = run(store.update_profile(segments(cid, T0 + 10, "eu", "churn_risk")))
    assert [(r.applied, r.stored_ms) for r in newer] == [(True, T0 + 10)]
    stale = run(store.update_profile(segments(cid, T0 + 5, "vip")))
    assert [(r.kind, r.applied, r.stored_ms) for r in stale] == [("segments", False, T0 + 10)]
    snap = load(store_case, cid, SnapshotNeeds(parts=frozenset({"segments"})))
    assert snap.segments == {"eu", "churn_risk"}  # replaced, not merged; the stale set ignored
    assert snap.segments_updated_ms == T0 + 10

    equal = run(store.update_profile(segments(cid, T0 + 10, "vip")))  # equal timestamp: applies
    assert [(r.applied, r.stored_ms) for r in equal] == [(True, T0 + 10)]
    assert load(store_case, cid).segments == {"vip"}
    # Segments are not read when the policy does not need them.
    unread = load(store_case, cid, SnapshotNeeds(parts=frozenset({"profile"})))
    assert unread.segments == frozenset() and unread.segments_updated_ms == 0

    doc = run(store.export_customer(cid))
    assert (doc["segments"], doc["segments_updated_ms"]) == (["vip"], T0 + 10)

    emptied = run(store.update_profile(segments(cid, T0 + 20)))  # the empty set is a membership
    assert [(r.applied, r.stored_ms) for r in emptied] == [(True, T0 + 20)]
    assert not run(store.update_profile(segments(cid, T0 + 15, "vip")))[0].applied
    snap = load(store_case, cid)
    assert (snap.segments, snap.segments_updated_ms) == (frozenset(), T0 + 20)
    doc = run(store.export_customer(cid))
    assert (doc["segments"], doc["segments_updated_ms"]) == ([], T0 + 20)


# =========================================================================== decision commits


def test_commit_is_idempotent_per_request_id(store: Store, store_case: StoreCase) -> None:
    cid = store_case.customer()
    run = store_case.run
    c = commit(cid, "r1", T0, grant("a", cap("daily", limit=3)))
    first = run(store.commit_decision(c, record("r1"), ttl_s=60))
    assert first == CommitOutcome(
        record=record("r1"), result=CommitResult(granted=("d.a",)), replayed=False
    )

    again = run(store.commit_decision(c, record("r1", attempt=2), ttl_s=60))
    assert again.replayed
    assert again.record == record("r1") and again.result == first.result

    loaded = run(store.load(cid, everything(cap_keys=["daily"]), T0, request_id="r1"))
    assert loaded.replay == StoredDecision(record=record("r1"), result=first.result)
    assert used(loaded.snapshot, "daily", T0) == 1  # counted once

    # The record belongs to this customer only.
    other = store_case.customer("other")
    assert run(store.load(other, everything(), T0, request_id="r1")).replay is None


def test_empty_commit_still_stores_the_record(store: Store, store_case: StoreCase) -> None:
    cid = store_case.customer()
    out = store_case.run(
        store.commit_decision(commit(cid, "r-empty", T0), record("r-empty"), ttl_s=60)
    )
    assert out.result == CommitResult() and not out.replayed
    loaded = store_case.run(store.load(cid, everything(), T0, request_id="r-empty"))
    assert loaded.replay == StoredDecision(record=record("r-empty"), result=CommitResult())


def test_caps_are_rechecked_across_commits(store: Store, store_case: StoreCase) -> None:
    cid = store_case.customer()
    outs = [
        store_case.run(
            store.commit_decision(
                commit(cid, f"r{i}", T0 + i, grant("a", cap("daily", limit=3))),
                record(f"r{i}"),
                ttl_s=60,
            )
        )
        for i in range(5)
    ]
    assert [o.result.granted for o in outs] == [("d.a",)] * 3 + [()] * 2
    assert outs[4].result.rejected == (
        GrantRejection(tracking_id="d.a", action="a", cap_id="daily", key="daily"),
    )
    assert used(load(store_case, cid, everything(cap_keys=["daily"]), T0 + 5), "daily", T0 + 5) == 3


def test_cap_recheck_counts_grants_stamped_after_the_commits_own_now(
    store: Store, store_case: StoreCase
) -> None:
    """Servers stamp ``now`` when a request arrives, so commits can reach the
    store out of order: one stamped T0 may land after three stamped T0+1. The
    re-check must still count those later grants, or the cap is overshot."""
    cid = store_case.customer()
    daily = cap("daily", limit=3)
    outs = [
        store_case.run(
            store.commit_decision(
                commit(cid, f"r{i}", now, grant("a", daily)), record(f"r{i}"), ttl_s=60
            )
        )
        for i, now in enumerate([T0 + 1, T0 + 1, T0 + 1, T0])
    ]
    assert [o.result.granted for o in outs] == [("d.a",)] * 3 + [()]


def test_caps_are_rechecked_within_one_commit(store: Store, store_case: StoreCase) -> None:
    cid = store_case.customer()
    daily = cap("daily", limit=3)
    grants = [grant(f"a{i}", daily) for i in range(5)]
    out = store_case.run(
        store.commit_decision(commit(cid, "r1", T0, *grants), record("r1"), ttl_s=60)
    )
    assert out.result.granted == ("d.a0", "d.a1", "d.a2")
    assert [r.tracking_id for r in out.result.rejected] == ["d.a3", "d.a4"]


def test_a_rejected_grant_counts_against_none_of_its_caps(
    store: Store, store_case: StoreCase
) -> None:
    cid = store_case.customer()
    run = store_case.run
    email = cap("channel/email", limit=10, cap_id="channel")
    promo = cap("tag/promo", limit=1, cap_id="tag")
    out = run(
        store.commit_decision(
            commit(
                cid, "r1", T0, grant("a", email, promo), grant("b", email, promo), grant("c", email)
            ),
            record("r1"),
            ttl_s=60,
        )
    )
    assert out.result.granted == ("d.a", "d.c")
    assert out.result.rejected == (
        GrantRejection(tracking_id="d.b", action="b", cap_id="tag", key="tag/promo"),
    )
    snap = load(store_case, cid, everything(cap_keys=["channel/email", "tag/promo"]))
    assert used(snap, "channel/email", T0) == 2
    assert used(snap, "tag/promo", T0) == 1


def test_caps_roll_over_their_window(store: Store, store_case: StoreCase) -> None:
    cid = store_case.customer()
    window = 60_000
    hourly = cap("hourly", limit=2, window_ms=window)

    def at(i: int, now: int) -> tuple[str, ...]:
        c = commit(cid, f"r{i}", now, grant("a", hourly))
        return store_case.run(store.commit_decision(c, record(f"r{i}"), ttl_s=60)).result.granted

    assert at(1, T0) == ("d.a",)
    assert at(2, T0 + 30_000) == ("d.a",)
    assert at(3, T0 + 59_999) == ()  # both still inside (now - window, now]
    assert at(4, T0 + 60_000) == ("d.a",)  # the first fell out exactly at the window's edge
    assert at(5, T0 + 60_001) == ()
    snap = load(store_case, cid, everything(cap_keys=["hourly"]), now_ms=T0 + 60_001)
    assert used(snap, "hourly", T0 + 60_001, window) == 2
    assert used(snap, "hourly", T0 + 200_000, window) == 0


def test_commits_match_the_pure_semantics(store: Store, store_case: StoreCase) -> None:
    """A sequence of mixed commits, checked against ``apply_commit`` step by step."""
    cid = store_case.customer()
    a = cap("global", limit=4, window_ms=10_000)
    b = cap("channel/push", limit=2, window_ms=3_000, cap_id="channel")
    c = cap("action/x", limit=1, window_ms=5_000, cap_id="action")
    plan = [
        (T0, [grant("x", a, c), grant("y", a, b)]),
        (T0 + 1_000, [grant("y", a, b), grant("z", a, b)]),
        (T0 + 2_000, [grant("x", a, c), grant("w")]),
        (T0 + 3_500, [grant("y", a, b), grant("z", a, b)]),
        (T0 + 5_500, [grant("x", a, c), grant("y", a, b)]),
        (T0 + 12_000, [grant("y", a, b), grant("y2", a, b), grant("y3", a, b)]),
    ]
    reference = CustomerSnapshot(customer_id=cid)
    for i, (now, grants) in enumerate(plan):
        dc = commit(cid, f"r{i}", now, *grants)
        reference, expected = apply_commit(reference, dc)
        got = store_case.run(store.commit_decision(dc, record(f"r{i}"), ttl_s=60))
        assert got.result == expected, f"commit {i}"
        snap = load(store_case, cid, everything(cap_keys=[a.key, b.key, c.key]), now_ms=now)
        for inc in (a, b, c):
            assert used(snap, inc.key, now, inc.window_ms) == used(
                reference, inc.key, now, inc.window_ms
            )


def test_commit_journey_changes_need_their_precondition(
    store: Store, store_case: StoreCase
) -> None:
    cid = store_case.customer()
    run = store_case.run
    run(
        store.apply_event(
            event(cid, "e1", journeys=(change("onboarding", state("s1", "e1"), None),))
        )
    )
    moved = state("s2", "timer:after:s1@1")
    ok = run(
        store.commit_decision(
            commit(
                cid,
                "r1",
                T0,
                grant("a"),
                journeys=(change("onboarding", moved, "e1", kind="transition"),),
            ),
            record("r1"),
            ttl_s=60,
        )
    )
    assert ok.result == CommitResult(granted=("d.a",))
    stale = run(
        store.commit_decision(
            commit(
                cid,
                "r2",
                T0,
                grant("b"),
                journeys=(
                    change("onboarding", state("s3", "timer:x"), "e1", kind="transition"),
                    change("other", state("o1", "timer:y"), None),
                ),
            ),
            record("r2"),
            ttl_s=60,
        )
    )
    assert stale.result == CommitResult(granted=("d.b",), skipped_journeys=("onboarding",))
    journeys = load(store_case, cid).journeys
    assert journeys["onboarding"] == moved
    assert journeys["other"] == state("o1", "timer:y")


# =========================================================================== events


def test_events_apply_once_per_event_id(store: Store, store_case: StoreCase) -> None:
    cid = store_case.customer()
    run = store_case.run
    e = event(cid, "evt-1")
    assert run(store.apply_event(e)) == "applied"
    assert run(store.apply_event(e)) == "duplicate"
    # A different payload under the same id is still a duplicate.
    assert run(store.apply_event(event(cid, "evt-1", event_type="view"))) == "duplicate"
    snap = load(store_case, cid)
    assert set(snap.events) == {"purchase"}
    assert snap.events["purchase"].total == 1
    # Event ids are per customer.
    assert run(store.apply_event(event(store_case.customer("other"), "evt-1"))) == "applied"


def test_counters_total_buckets_first_and_last(store: Store, store_case: StoreCase) -> None:
    cid = store_case.customer()
    run = store_case.run
    base = T0 - T0 % HOUR
    times = [base + 10, base + 20, base + HOUR + 5, base - 3 * HOUR]
    reference: EventCounter | None = None
    for i, at in enumerate(times):
        inc = counted("purchase", at)
        reference = apply_counter(reference, inc)
        run(store.apply_event(event(cid, f"e{i}", at_ms=at, counters=(inc,))))
    snap = load(store_case, cid)
    assert snap.events["purchase"] == reference
    assert snap.events["purchase"] == EventCounter(
        total=4,
        first_ms=base - 3 * HOUR,
        last_ms=base + HOUR + 5,
        bucket_ms=HOUR,
        buckets={base - 3 * HOUR: 1, base: 2, base + HOUR: 1},
    )


def test_counter_buckets_past_retention_are_dropped(store: Store, store_case: StoreCase) -> None:
    cid = store_case.customer()
    run = store_case.run
    base = T0 - T0 % HOUR
    first = counted("view", base - 10 * HOUR, retention_ms=5 * HOUR)
    second = counted("view", base, retention_ms=5 * HOUR)
    run(store.apply_event(event(cid, "e1", event_type="view", counters=(first,))))
    run(store.apply_event(event(cid, "e2", event_type="view", counters=(second,))))
    got = load(store_case, cid).events["view"]
    assert got == apply_counter(apply_counter(None, first), second)
    assert got.buckets == {base: 1} and got.total == 2 and got.first_ms == base - 10 * HOUR


def test_counter_buckets_coarsen_with_age(store: Store, store_case: StoreCase) -> None:
    """Hourly buckets older than two days become whole UTC days, days older than 30 days
    30-day periods: the stored counter equals ``apply_counter`` bucket for bucket."""
    cid = store_case.customer()
    run = store_case.run
    base = T0 - T0 % DAY
    times = [base - 70 * DAY + 5, base - 3 * DAY + HOUR, base - 3 * DAY + 2 * HOUR, base - HOUR]
    times += [base + 7, base - 5 * DAY]  # the last one is late: it lands in a day directly
    reference: EventCounter | None = None
    for i, at in enumerate(times):
        inc = counted("view", at)
        reference = apply_counter(reference, inc)
        run(store.apply_event(event(cid, f"c{i}", event_type="view", at_ms=at, counters=(inc,))))
    got = load(store_case, cid).events["view"]
    assert got == reference
    month = (base - 70 * DAY) - (base - 70 * DAY) % MONTH_MS
    assert got.months == {month: 1}
    assert got.days == {base - 3 * DAY: 2, base - 5 * DAY: 1}
    assert got.buckets == {base - HOUR: 1, base: 1}
    assert got.total == 6 and got.first_ms == base - 70 * DAY + 5 and got.last_ms == base + 7
    assert event_count(got, base + HOUR, 2 * DAY) == 2
    assert event_count(got, base + HOUR, 400 * DAY) == 6


def test_counter_size_is_bounded_whatever_the_history(store: Store, store_case: StoreCase) -> None:
    """A year of events every 7 hours keeps at most ~145 buckets (hourly, daily, 30-day), not 1,250."""
    cid = store_case.customer()
    run = store_case.run
    start = T0 - T0 % HOUR - 365 * DAY
    reference: EventCounter | None = None
    for i, at in enumerate(range(start, T0, 7 * HOUR)):
        inc = counted("view", at)
        reference = apply_counter(reference, inc)
        run(store.apply_event(event(cid, f"b{i}", event_type="view", at_ms=at, counters=(inc,))))
    got = load(store_case, cid).events["view"]
    assert got == reference
    assert len(got.buckets) <= 72 and len(got.days) <= 60 and len(got.months) <= 14
    assert got.total == len(range(start, T0, 7 * HOUR))


def test_counter_equals_apply_counter_for_events_in_any_order(
    store: Store, store_case: StoreCase
) -> None:
    """Random event times over 15 months, mostly in order, some late by hours to months, some
    in the same hour: after each batch the stored counter equals ``apply_counter``'s."""
    import random

    rng = random.Random(7)
    cid = store_case.customer()
    run = store_case.run
    at = T0 - 450 * DAY
    reference: EventCounter | None = None
    for i in range(300):
        at += rng.choice((0, 60_000, HOUR, 7 * HOUR, DAY, 3 * DAY))
        when = at - rng.choice((0, 0, 0, HOUR, 2 * DAY, 40 * DAY)) if i % 5 == 0 else at
        inc = counted("view", when)
        reference = apply_counter(reference, inc)
        run(store.apply_event(event(cid, f"o{i}", event_type="view", at_ms=when, counters=(inc,))))
        if i % 50 == 49:
            assert load(store_case, cid).events["view"] == reference, f"after event {i}"


def test_event_journey_changes_compare_and_set(store: Store, store_case: StoreCase) -> None:
    cid = store_case.customer()
    run = store_case.run
    entered = state("s1", "e1")
    assert (
        run(store.apply_event(event(cid, "e1", journeys=(change("j", entered, None),))))
        == "applied"
    )
    moved = state("s2", "e2")
    assert (
        run(
            store.apply_event(
                event(cid, "e2", journeys=(change("j", moved, "e1", kind="transition"),))
            )
        )
        == "applied"
    )
    assert load(store_case, cid).journeys == {"j": moved}


def test_state_conflict_writes_nothing_and_leaves_the_event_unapplied(
    store: Store, store_case: StoreCase
) -> None:
    cid = store_case.customer()
    run = store_case.run
    run(store.apply_event(event(cid, "e1", journeys=(change("j", state("s1", "e1"), None),))))
    before = run(store.export_customer(cid))

    fb = FeedbackRecord(
        kind=FeedbackKind.CLICK,
        decision_id="dec-1",
        tracking_id="dec-1.a",
        action="a",
        event_id="e2",
        at_ms=T0,
    )
    bad = event(
        cid,
        "e2",
        event_type="click",
        feedback=(fb,),
        journeys=(
            change("k", state("k1", "e2"), None),
            change("j", state("s2", "e2"), "stale", kind="transition"),
        ),
    )
    with pytest.raises(StateConflict) as info:
        run(store.apply_event(bad))
    assert (info.value.journey, info.value.expected, info.value.found) == ("j", "stale", "e1")
    assert (
        run(store.export_customer(cid)) == before
    )  # no journey k, no counter, no feedback, no marker

    # Re-computed from a fresh read, the same event id applies.
    good = event(
        cid,
        "e2",
        event_type="click",
        feedback=(fb,),
        journeys=(change("j", state("s2", "e2"), "e1", kind="transition"),),
    )
    assert run(store.apply_event(good)) == "applied"
    assert load(store_case, cid).journeys["j"].stage == "s2"


def test_feedback_is_stored_and_exported(store: Store, store_case: StoreCase) -> None:
    cid = store_case.customer()
    fbs = (
        FeedbackRecord(
            kind=FeedbackKind.IMPRESSION,
            decision_id="dec-9",
            tracking_id="dec-9.a",
            action="a",
            event_id="f1",
            at_ms=T0,
        ),
        FeedbackRecord(kind=FeedbackKind.CONVERSION, decision_id="dec-9", event_id="f1", at_ms=T0),
    )
    store_case.run(store.apply_event(event(cid, "f1", event_type="impression", feedback=fbs)))
    store_case.run(
        store.apply_event(event(cid, "f1", event_type="impression", feedback=fbs))
    )  # duplicate
    exported = store_case.run(store.export_customer(cid))
    assert exported["feedback"] == msgspec.json.decode(msgspec.json.encode(list(fbs)))
    # Feedback does not change the snapshot.
    assert set(load(store_case, cid).events) == {"impression"}


# =========================================================================== privacy


def empty_export(customer_id: str) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "profile": {},
        "consent": {},
        "events": {},
        "segments": [],
        "segments_updated_ms": 0,
        "journeys": {},
        "caps": {},
        "decisions": [],
        "feedback": [],
        "applied_events": [],
    }


def test_export_and_forget_one_customer(store: Store, store_case: StoreCase) -> None:
    cid, other = store_case.customer("a"), store_case.customer("b")
    run = store_case.run
    for who in (cid, other):
        run(store.update_profile(profile(who, T0, email=f"{who}@x.io")))
        run(
            store.update_profile(
                consent(who, T0, "email_marketing", "granted", expires_ms=T0 + DAY)
            )
        )
        fb = FeedbackRecord(
            kind=FeedbackKind.CLICK,
            decision_id="dec-r1",
            tracking_id="d.a",
            action="a",
            event_id="e1",
            at_ms=T0,
        )
        run(
            store.apply_event(
                event(who, "e1", feedback=(fb,), journeys=(change("j", state("s1", "e1"), None),))
            )
        )
        run(
            store.commit_decision(
                commit(who, "r1", T0, grant("a", cap("daily"))), record("r1", who=who), ttl_s=60
            )
        )

    doc = run(store.export_customer(cid))
    json.dumps(doc)  # JSON-able as it is
    assert doc["customer_id"] == cid
    assert doc["profile"] == {"email": {"value": f"{cid}@x.io", "updated_ms": T0, "source": "crm"}}
    assert doc["consent"]["email_marketing"]["state"] == "granted"
    assert doc["events"]["purchase"]["total"] == 1
    assert doc["journeys"]["j"]["stage"] == "s1"
    assert cap_count(doc["caps"]["daily"], T0, DAY) == 1
    assert doc["decisions"] == [
        {
            "request_id": "r1",
            "record": record("r1", who=cid).decode(),
            "result": {"granted": ["d.a"], "rejected": [], "skipped_journeys": []},
            "fingerprint": "",
        }
    ]
    assert [f["event_id"] for f in doc["feedback"]] == ["e1"]
    assert doc["applied_events"] == ["e1"]
    assert set(doc) == set(empty_export(cid))

    assert run(store.forget_customer(cid)) > 0
    assert run(store.export_customer(cid)) == empty_export(cid)
    loaded = run(
        store.load(
            cid,
            everything(attributes=["email"], purposes=["email_marketing"], cap_keys=["daily"]),
            T0,
            request_id="r1",
        )
    )
    assert loaded.snapshot == CustomerSnapshot(customer_id=cid) and loaded.replay is None
    assert run(store.forget_customer(cid)) == 0
    # The event id and request id are forgotten too: they apply again.
    assert run(store.apply_event(event(cid, "e1"))) == "applied"

    # The other customer is untouched.
    assert (
        run(store.export_customer(other))["decisions"][0]["record"]
        == record("r1", who=other).decode()
    )


# =========================================================================== concurrency


def test_concurrent_commits_never_overshoot_a_cap(store: Store, store_case: StoreCase) -> None:
    cid = store_case.customer()
    daily = cap("daily", limit=3)
    outs = store_case.gather(
        store.commit_decision(
            commit(cid, f"r{i}", T0, grant("a", daily)), record(f"r{i}"), ttl_s=60
        )
        for i in range(200)
    )
    results = [o for o in outs if isinstance(o, CommitOutcome)]
    assert len(results) == 200, [o for o in outs if not isinstance(o, CommitOutcome)][:3]
    assert sum(len(o.result.granted) for o in results) == 3
    assert sum(len(o.result.rejected) for o in results) == 197
    assert used(load(store_case, cid, everything(cap_keys=["daily"])), "daily", T0) == 3


def test_concurrent_duplicate_commits_apply_once(store: Store, store_case: StoreCase) -> None:
    cid = store_case.customer()
    c = commit(cid, "same", T0, grant("a", cap("daily", limit=100)))
    outs = store_case.gather(
        store.commit_decision(c, record("same", n=i), ttl_s=60) for i in range(50)
    )
    results = [o for o in outs if isinstance(o, CommitOutcome)]
    assert len(results) == 50
    assert sum(not o.replayed for o in results) == 1
    assert len({o.record for o in results}) == 1  # everyone answers with the winner's record
    assert used(load(store_case, cid, everything(cap_keys=["daily"])), "daily", T0) == 1


def test_concurrent_duplicate_events_apply_once(store: Store, store_case: StoreCase) -> None:
    cid = store_case.customer()
    e = event(cid, "dup", journeys=(change("j", state("s1", "dup"), None),))
    outs = store_case.gather(store.apply_event(e) for _ in range(100))
    assert sorted(map(str, outs)) == ["applied"] + ["duplicate"] * 99
    snap = load(store_case, cid)
    assert snap.events["purchase"].total == 1
    assert snap.journeys["j"] == state("s1", "dup")


def test_concurrent_entries_race_on_the_journey_precondition(
    store: Store, store_case: StoreCase
) -> None:
    """Two different events computed from the same (empty) state: one enters, the other conflicts."""
    cid = store_case.customer()
    outs = store_case.gather(
        store.apply_event(event(cid, f"e{i}", journeys=(change("j", state("s1", f"e{i}"), None),)))
        for i in range(20)
    )
    assert sum(o == "applied" for o in outs) == 1
    assert all(isinstance(o, StateConflict) for o in outs if o != "applied")
    assert load(store_case, cid).events["purchase"].total == 1


# =========================================================================== expiry


def test_idempotency_records_and_dedup_markers_expire(store: Store, store_case: StoreCase) -> None:
    """The suite's only wait: 1.1 s of real time for real-time stores, none for fake clocks."""
    cid = store_case.customer()
    run = store_case.run
    daily = cap("daily", limit=5)
    run(store.commit_decision(commit(cid, "r1", T0, grant("a", daily)), record("r1"), ttl_s=1))
    run(
        store.commit_decision(
            commit(cid, "r-long", T0, grant("b", daily)), record("r-long"), ttl_s=600
        )
    )
    assert run(store.apply_event(event(cid, "e1"), dedup_ttl_s=1)) == "applied"
    assert run(store.apply_event(event(cid, "e-long"), dedup_ttl_s=600)) == "applied"
    assert run(store.load(cid, everything(), T0, request_id="r1")).replay is not None

    store_case.advance(1.1)

    assert run(store.load(cid, everything(), T0, request_id="r1")).replay is None
    assert run(store.load(cid, everything(), T0, request_id="r-long")).replay is not None
    again = run(
        store.commit_decision(commit(cid, "r1", T0, grant("a", daily)), record("r1"), ttl_s=60)
    )
    assert not again.replayed and again.result.granted == ("d.a",)
    assert run(store.apply_event(event(cid, "e1"))) == "applied"
    assert run(store.apply_event(event(cid, "e-long"))) == "duplicate"
    snap = load(store_case, cid, everything(cap_keys=["daily"]))
    assert used(snap, "daily", T0) == 3
    assert snap.events["purchase"].total == 3
    assert "r1" in [d["request_id"] for d in run(store.export_customer(cid))["decisions"]]


def test_ping_answers(store: Store, store_case: StoreCase) -> None:
    assert store_case.run(store.ping()) is True


# =========================================================================== idempotency fingerprints


def test_a_replay_carries_the_fingerprint_of_the_request_it_answers(
    store: Store, store_case: StoreCase
) -> None:
    """The store keeps the request's fingerprint with its record, so that the server can refuse
    a request id reused for a different request instead of replaying a foreign answer."""
    cid = store_case.customer()
    run = store_case.run
    c = commit(cid, "r1", T0, grant("a", cap("daily", limit=3)))
    first = run(store.commit_decision(c, record("r1"), ttl_s=60, fingerprint=b"body-A"))
    assert first.fingerprint == b"body-A" and not first.replayed
    other = commit(cid, "r1", T0, grant("b", cap("daily", limit=3)))
    again = run(store.commit_decision(other, record("r1", b=1), ttl_s=60, fingerprint=b"body-B"))
    assert again.replayed and again.fingerprint == b"body-A" and again.record == record("r1")
    loaded = run(store.load(cid, everything(cap_keys=["daily"]), T0, request_id="r1"))
    assert loaded.replay is not None and loaded.replay.fingerprint == b"body-A"
    assert used(loaded.snapshot, "daily", T0) == 1
    [exported] = run(store.export_customer(cid))["decisions"]
    assert exported["fingerprint"] == b"body-A".hex()


# =========================================================================== consent version


def test_a_consent_change_between_read_and_commit_wins(store: Store, store_case: StoreCase) -> None:
    cid = store_case.customer()
    run = store_case.run
    needs = everything(purposes=["email_marketing"], cap_keys=["daily"])
    run(store.update_profile(consent(cid, T0, "email_marketing", "granted")))
    read = run(store.load(cid, needs, T0))
    # A trait write is not a consent change.
    run(store.update_profile(profile(cid, T0 + 1, tier="gold")))
    assert run(store.load(cid, needs, T0)).consent_version == read.consent_version

    # The revocation lands between the decision's read and its commit.
    run(store.update_profile(consent(cid, T0 + 2, "email_marketing", "denied")))
    c = commit(cid, "r1", T0, grant("a", cap("daily", limit=3)))
    out = run(
        store.commit_decision(c, record("r1"), ttl_s=60, consent_version=read.consent_version)
    )
    assert out.consent_changed and not out.replayed and out.result == CommitResult()
    fresh = run(store.load(cid, needs, T0, request_id="r1"))
    assert fresh.replay is None  # nothing stored: the retry decides again
    assert used(fresh.snapshot, "daily", T0) == 0  # nothing counted
    assert fresh.consent_version != read.consent_version

    # Decided again on the fresh read, the commit goes through.
    out = run(
        store.commit_decision(c, record("r1"), ttl_s=60, consent_version=fresh.consent_version)
    )
    assert out.result.granted == ("d.a",) and not out.consent_changed
    # A stale (ignored) consent write changes nothing, so it is not a change either.
    run(store.update_profile(consent(cid, T0, "email_marketing", "granted")))
    assert run(store.load(cid, needs, T0)).consent_version == fresh.consent_version


def test_a_do_not_contact_write_changes_the_consent_version(
    store: Store, store_case: StoreCase
) -> None:
    cid = store_case.customer()
    run = store_case.run
    before = run(store.load(cid, everything(), T0)).consent_version
    update = ProfileUpdate(customer_id=cid, source="crm", timestamp_ms=T0, do_not_contact=True)
    run(store.update_profile(update, do_not_contact_attribute="dnc"))
    after = run(store.load(cid, everything(), T0)).consent_version
    assert after != before


# =========================================================================== bounds


def test_idempotency_records_are_bounded_per_customer(store: Store, store_case: StoreCase) -> None:
    """At most MAX_DECISIONS_PER_CUSTOMER records: the ones that expire first go."""
    cid = store_case.customer()
    n = MAX_DECISIONS_PER_CUSTOMER + 5
    # Distinct TTLs: record i expires before record i + 1 in both stores' clocks.
    for batch in range(0, n, 100):
        store_case.gather(
            store.commit_decision(
                commit(cid, f"r{i:05d}", T0), record(f"r{i:05d}"), ttl_s=600 + 2 * i
            )
            for i in range(batch, min(n, batch + 100))
        )
    doc = store_case.run(store.export_customer(cid))
    kept = [d["request_id"] for d in doc["decisions"]]
    assert len(kept) == MAX_DECISIONS_PER_CUSTOMER
    assert kept == [f"r{i:05d}" for i in range(5, n)]


# =========================================================================== state epoch


def test_lost_state_is_unavailable_until_initialised(store: Store, store_case: StoreCase) -> None:
    """After a loss (a restart without persistence), reads and commits raise StateLost --
    never an empty snapshot, which would read as "no consent recorded" -- until init_state;
    profile writes (re-seeding) work meanwhile."""
    lose = store_case.made.lose
    assert lose is not None
    cid = store_case.customer()
    run = store_case.run
    run(store.update_profile(consent(cid, T0, "email_marketing", "denied")))
    run(lose(cid))
    with pytest.raises(StateLost):
        run(store.load(cid, everything(purposes=["email_marketing"]), T0))
    with pytest.raises(StateLost):
        run(store.commit_decision(commit(cid, "r1", T0, grant("a")), record("r1"), ttl_s=60))
    # (Health is checked per node -- one slot per Cluster master -- so it is not asserted for a
    # single customer's slot here; tests/reliability/test_state_epoch.py checks whole nodes.)
    run(store.update_profile(consent(cid, T0, "email_marketing", "denied")))  # re-seed
    assert run(store.init_state()) >= 1
    snap = load(store_case, cid, everything(purposes=["email_marketing"]))
    assert snap.consent["email_marketing"].state == "denied"
    assert run(store.init_state()) == 0  # already initialised: nothing written


def test_load_reports_the_shared_clock_if_the_store_has_one(
    store: Store, store_case: StoreCase
) -> None:
    """``now_ms``: the clock every server sharing the store decides at (None: in-process)."""
    import time

    loaded = store_case.run(store.load(store_case.customer(), everything(), T0))
    if loaded.now_ms is not None:
        assert abs(loaded.now_ms - time.time() * 1000) < 5_000
