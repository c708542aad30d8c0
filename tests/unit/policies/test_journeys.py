"""Journey state machine and the effects contract: entry, idempotency, dedup,
re-entry, transitions, exits, timers, counters, feedback, profile precedence."""

from __future__ import annotations

from pathlib import Path

import pytest

from arbiter.policies import CompiledPolicy, compile_policy
from arbiter.policies.effects import (
    ConsentUpdate,
    FeedbackKind,
    ProfileUpdate,
    StateConflict,
    apply_effects,
    apply_profile_update,
    merge_consent,
)
from arbiter.policies.engine import Event, StateUnavailableError, advance_timers, apply_event
from arbiter.policies.loader import load_sources
from arbiter.policies.snapshot import ConsentRecord, CustomerSnapshot, ProfileValue, event_count

NOW = 1_748_876_400_000
HOUR = 3_600_000
DAY = 24 * HOUR

POLICY = (Path(__file__).parent / "data" / "journeys.yaml").read_text()


@pytest.fixture(scope="module")
def policy() -> CompiledPolicy:
    return compile_policy(load_sources({"p.yaml": POLICY}))


def track(
    policy: CompiledPolicy, s: CustomerSnapshot, event_id: str, type_: str, at: int, **props: object
):  # type: ignore[no-untyped-def]
    effects = apply_event(
        policy, s, Event(event_id=event_id, type=type_, time_ms=at, properties=props), at
    )
    return apply_effects(s, effects), effects


def test_entry_records_its_cause_and_counts_the_event(policy: CompiledPolicy) -> None:
    s = CustomerSnapshot(customer_id="c")
    s, fx = track(policy, s, "e1", "cart", NOW, cart_id="k1", items=2)
    state = s.journeys["cart"]
    assert (state.status, state.stage, state.entries) == ("active", "wait", 1)
    assert state.entry_event_id == state.last_event_id == "e1"
    assert state.dedup == {"k1": NOW}
    assert [(c.kind, c.cause_event_id, c.expect_last_event_id) for c in fx.journeys] == [
        ("enter", "e1", None)
    ]
    counter = s.events["cart"]
    assert counter.total == 1 and counter.last_ms == NOW
    assert event_count(counter, NOW, HOUR) == 1


def test_trigger_condition_and_idempotent_entry(policy: CompiledPolicy) -> None:
    s = CustomerSnapshot(customer_id="c")
    s, fx = track(policy, s, "e0", "cart", NOW, cart_id="k1", items=0)
    assert fx.journeys == () and "cart" not in s.journeys
    s, _ = track(policy, s, "e1", "cart", NOW, cart_id="k1", items=2)
    # The store drops a repeated event id; even if it did not, the state remembers it.
    again = apply_event(
        policy,
        s,
        Event(event_id="e1", type="cart", time_ms=NOW, properties={"cart_id": "k1", "items": 2}),
        NOW + 1,
    )
    assert again.journeys == ()


def test_dedup_key_and_reentry_after(policy: CompiledPolicy) -> None:
    s = CustomerSnapshot(customer_id="c")
    s, _ = track(policy, s, "e1", "cart", NOW, cart_id="k1", items=2)
    s, _ = track(policy, s, "e2", "order", NOW + HOUR // 2, total=10.0)
    assert s.journeys["cart"].status == "exited"
    assert s.journeys["cart"].exit_reason == "converted"
    # Re-entry is allowed after 3d, but cart k1 is deduplicated for 7d.
    s, fx = track(policy, s, "e3", "cart", NOW + 4 * DAY, cart_id="k1", items=1)
    assert fx.journeys == ()
    # Too early for a new cart (< 3d after the entry):
    _, fx = track(policy, s, "e4", "cart", NOW + 2 * DAY, cart_id="k2", items=1)
    assert fx.journeys == ()
    s, fx = track(policy, s, "e5", "cart", NOW + 4 * DAY, cart_id="k2", items=1)
    assert [c.kind for c in fx.journeys] == ["reenter"]
    assert s.journeys["cart"].entries == 2
    assert set(s.journeys["cart"].dedup) == {"k1", "k2"}


def test_reentry_never_and_always(policy: CompiledPolicy) -> None:
    s = CustomerSnapshot(customer_id="c")
    s, fx = track(policy, s, "o1", "order", NOW, total=1.0)
    assert [c.journey for c in fx.journeys] == ["once"]
    # `reentry` defaults to never (and the trigger sees this order counted: 2 orders now).
    s, fx = track(policy, s, "o2", "order", NOW + 30 * DAY, total=1.0)
    assert fx.journeys == () and s.journeys["once"].entries == 1
    s, fx = track(policy, s, "a1", "open", NOW)
    assert [(c.kind, c.journey) for c in fx.journeys] == [("enter", "always")]  # not "paused"
    s, fx = track(policy, s, "a2", "click", NOW + 1)
    assert s.journeys["always"].status == "completed"
    s, fx = track(policy, s, "a3", "open", NOW + 2)
    assert [(c.kind, c.journey) for c in fx.journeys] == [("reenter", "always")]
    assert s.journeys["always"].entries == 2


def test_timers_then_event_transition_then_exit_order(policy: CompiledPolicy) -> None:
    s = CustomerSnapshot(customer_id="c")
    s, _ = track(policy, s, "e1", "cart", NOW, cart_id="k1", items=2)
    # Two hours later an `open` arrives: the 1h timer moves wait -> remind first,
    # then the event moves remind -> done_stage.
    s, fx = track(policy, s, "e2", "open", NOW + 2 * HOUR)
    assert [(c.kind, c.from_stage, c.to_stage) for c in fx.journeys[:2]] == [
        ("transition", "wait", "remind"),
        ("transition", "remind", "done_stage"),
    ]
    timer, event = fx.journeys[:2]
    assert timer.cause_event_id == f"timer:wait->remind@{NOW + HOUR}"
    assert event.expect_last_event_id == timer.state.last_event_id  # chained preconditions
    assert s.journeys["cart"].stage == "done_stage"


def test_exit_with_condition_and_max_duration(policy: CompiledPolicy) -> None:
    s = CustomerSnapshot(customer_id="c")
    s, _ = track(policy, s, "e1", "cart", NOW, cart_id="k1", items=2)
    t, _ = track(policy, s, "e2", "cart", NOW + 10, cart_id="k1", items=0)
    assert t.journeys["cart"].exit_reason == "emptied"
    s, _ = track(policy, s, "e3", "open", NOW + 2 * HOUR)  # -> done_stage (no timers there)
    states, changes = advance_timers(policy, s.journeys, {}, NOW + 6 * DAY)
    assert [c.kind for c in changes] == ["timeout"]
    assert states["cart"].exit_reason == "max_duration"
    assert states["cart"].exited_ms == NOW + 5 * DAY


def test_stale_effects_conflict(policy: CompiledPolicy) -> None:
    s = CustomerSnapshot(customer_id="c")
    fx1 = apply_event(
        policy,
        s,
        Event(event_id="e1", type="cart", time_ms=NOW, properties={"cart_id": "a", "items": 1}),
        NOW,
    )
    fx2 = apply_event(
        policy,
        s,
        Event(event_id="e2", type="cart", time_ms=NOW, properties={"cart_id": "b", "items": 1}),
        NOW,
    )
    s1 = apply_effects(s, fx1)
    with pytest.raises(StateConflict):
        apply_effects(s1, fx2)  # computed from the snapshot before e1: re-read and re-run


def test_feedback_is_tied_to_the_decision(policy: CompiledPolicy) -> None:
    s = CustomerSnapshot(customer_id="c")
    fx = apply_event(
        policy,
        s,
        Event(
            event_id="f1",
            type="click",
            time_ms=NOW,
            decision_id="d1",
            tracking_id="d1.promo.x",
            feedback=FeedbackKind.CLICK,
        ),
        NOW,
    )
    (record,) = fx.feedback
    assert (record.kind, record.decision_id, record.action, record.event_id) == (
        "click",
        "d1",
        "promo.x",
        "f1",
    )


def test_future_events_are_clamped_and_unavailable_journeys_refuse(policy: CompiledPolicy) -> None:
    s = CustomerSnapshot(customer_id="c")
    fx = apply_event(policy, s, Event(event_id="e", type="open", time_ms=NOW + DAY), NOW)
    assert fx.counters[0].at_ms == NOW
    with pytest.raises(StateUnavailableError):
        apply_event(
            policy,
            CustomerSnapshot(customer_id="c", unavailable=frozenset({"journeys"})),
            Event(event_id="e", type="open", time_ms=NOW),
            NOW,
        )


def test_consent_precedence() -> None:
    denied = ConsentRecord(state="denied", updated_ms=10)
    granted = ConsentRecord(state="granted", updated_ms=10)
    assert merge_consent(None, granted)
    assert not merge_consent(denied, granted)  # equal timestamp: denied wins
    assert merge_consent(granted, denied)
    assert not merge_consent(denied, ConsentRecord(state="granted", updated_ms=9))
    assert merge_consent(denied, ConsentRecord(state="granted", updated_ms=11))


def test_profile_update_precedence_and_tombstones() -> None:
    s = CustomerSnapshot(
        customer_id="c", profile={"plan": ProfileValue(value="premium", updated_ms=100)}
    )
    s, results = apply_profile_update(
        s,
        ProfileUpdate(customer_id="c", source="old", timestamp_ms=50, traits={"plan": "basic"}),
    )
    assert s.profile["plan"].value == "premium"
    assert [(r.name, r.applied, r.stored_ms) for r in results] == [("plan", False, 100)]
    s, _ = apply_profile_update(
        s, ProfileUpdate(customer_id="c", source="crm", timestamp_ms=200, traits={"plan": None})
    )
    assert s.profile["plan"] == ProfileValue(value=None, updated_ms=200, source="crm")
    s, _ = apply_profile_update(
        s, ProfileUpdate(customer_id="c", source="old", timestamp_ms=150, traits={"plan": "basic"})
    )
    assert s.profile["plan"].value is None  # the tombstone keeps the older write out
    s, results = apply_profile_update(
        s,
        ProfileUpdate(
            customer_id="c",
            source="cmp",
            timestamp_ms=300,
            consents=(ConsentUpdate(purpose="email", state="granted", expires_ms=400),),
            do_not_contact=True,
        ),
        do_not_contact_attribute="dnc",
    )
    assert s.consent["email"] == ConsentRecord(
        state="granted", updated_ms=300, source="cmp", expires_ms=400
    )
    assert s.profile["dnc"].value is True
    assert {r.kind for r in results} == {"consent", "do_not_contact"}


def test_segments_update_replaces_the_whole_set_with_trait_precedence() -> None:
    def sync(ts: int, *names: str) -> ProfileUpdate:
        return ProfileUpdate(customer_id="c", source="cdp", timestamp_ms=ts, segments=names)

    s = CustomerSnapshot(customer_id="c", profile={"plan": ProfileValue(value="x", updated_ms=9)})
    s, results = apply_profile_update(s, sync(100, "vip", "eu"))
    assert (s.segments, s.segments_updated_ms) == ({"vip", "eu"}, 100)
    assert [(r.kind, r.name, r.applied, r.stored_ms) for r in results] == [
        ("segments", "segments", True, 100)
    ]
    s, results = apply_profile_update(s, sync(99, "churn_risk"))  # older: ignored as stale
    assert (s.segments, s.segments_updated_ms) == ({"vip", "eu"}, 100)
    assert [(r.applied, r.stored_ms) for r in results] == [(False, 100)]
    s, results = apply_profile_update(s, sync(100, "eu"))  # equal: applies, replaces the set
    assert (s.segments, s.segments_updated_ms) == ({"eu"}, 100)
    assert [(r.applied, r.stored_ms) for r in results] == [(True, 100)]
    s, results = apply_profile_update(s, sync(200))  # the empty set empties the membership
    assert (s.segments, s.segments_updated_ms) == (frozenset(), 200)
    assert results[0].applied
    # None leaves segments unchanged and reports nothing for them.
    s2, results = apply_profile_update(
        s, ProfileUpdate(customer_id="c", source="crm", timestamp_ms=300, traits={"plan": "y"})
    )
    assert (s2.segments, s2.segments_updated_ms) == (frozenset(), 200)
    assert [r.kind for r in results] == ["trait"]
