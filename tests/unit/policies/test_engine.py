"""The decision pipeline: filters and their order, fail-safe errors, arbitration,
constraints, holdouts, the commit contract and the store's re-check."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from arbiter.policies import CompiledPolicy, compile_policy, load_policy
from arbiter.policies.bucketing import bucket
from arbiter.policies.decision import Outcome, ReasonCode, Request
from arbiter.policies.effects import apply_commit
from arbiter.policies.engine import StoreReport, decide, decision_id, settle
from arbiter.policies.loader import load_sources
from arbiter.policies.snapshot import (
    ConsentRecord,
    CustomerSnapshot,
    EventCounter,
    JourneyState,
    ProfileValue,
)

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "policies"
NOW = 1_748_876_400_000  # 2025-06-02T15:00:00Z, a Monday; 15:00 in UTC
HOUR = 3_600_000
R = ReasonCode

DATA = Path(__file__).parent / "data"
BASE = (DATA / "engine_base.yaml").read_text()


def make_policy(extra: str) -> CompiledPolicy:
    return compile_policy(load_sources({"base.yaml": BASE, "extra.yaml": extra}))


def snap(customer: str = "c-1", **kwargs: object) -> CustomerSnapshot:
    profile = {"region": ProfileValue(value="US")}
    profile.update(kwargs.pop("profile", {}))  # type: ignore[arg-type]
    return CustomerSnapshot(customer_id=customer, profile=profile, **kwargs)  # type: ignore[arg-type]


def run(policy: CompiledPolicy, snapshot: CustomerSnapshot, **request: object):  # type: ignore[no-untyped-def]
    req = Request(customer_id=snapshot.customer_id, request_id="r-1", explain=True, **request)  # type: ignore[arg-type]
    return decide(policy, req, snapshot, NOW)


def reasons(decision) -> dict[str, ReasonCode]:  # type: ignore[no-untyped-def]
    return {c.action: c.reason for c in decision.candidates}


# --------------------------------------------------------------------------- filters


def test_filters_record_the_first_failing_reason_in_order() -> None:
    policy = make_policy(
        """
caps:
  - {id: daily, scope: global, limit: 1, window: 24h}
suppressions:
  - {id: vip_hush, reason: VIP_HUSH, when: profile.vip, scope: {actions: [suppressed_and_capped]}}
actions:
  - {id: expired, channel: email, always_on: true, valid_until: 2025-01-01T00:00:00Z}
  - {id: suppressed_and_capped, channel: email, always_on: true}
  - {id: ineligible_and_capped, channel: email, always_on: true, eligibility: "!profile.vip"}
  - {id: capped, channel: email, always_on: true}
"""
    )
    s = snap(profile={"vip": ProfileValue(value=True)}, caps={"daily": [NOW - HOUR]})
    d, commit = run(policy, s, channels=("email",))
    assert d.actions == ()
    assert reasons(d) == {
        "expired": R.OUTSIDE_VALIDITY,
        "suppressed_and_capped": R.SUPPRESSED,
        "ineligible_and_capped": R.INELIGIBLE,
        "capped": R.CAPPED,
    }
    assert commit.grants == ()


def test_consent_denied_unknown_expired_and_do_not_contact() -> None:
    policy = make_policy(
        """
actions:
  - {id: mail, channel: email, always_on: true}
  - {id: push_it, channel: push, always_on: true}
  - {id: receipt, channel: receipts, always_on: true}
"""
    )
    eu = {"region": ProfileValue(value="EU")}
    d, _ = run(policy, snap(profile=eu))
    assert reasons(d) == {
        "mail": R.CONSENT_UNKNOWN,
        "push_it": R.CONSENT_UNKNOWN,
        "receipt": R.SELECTED,
    }

    expired = {"p_email": ConsentRecord(state="granted", updated_ms=1, expires_ms=NOW - 1)}
    d, _ = run(policy, snap(profile=eu, consent=expired), channels=("email",))
    assert reasons(d) == {"mail": R.CONSENT_EXPIRED}

    denied = {"p_email": ConsentRecord(state="denied", updated_ms=1, source="cmp")}
    d, _ = run(policy, snap(consent=denied), channels=("email",))
    assert reasons(d) == {"mail": R.CONSENT_DENIED}
    assert "cmp" in d.candidates[0].detail

    d, _ = run(policy, snap(profile={"dnc": ProfileValue(value=True)}), limit=3)
    assert reasons(d)["mail"] is R.DO_NOT_CONTACT
    assert reasons(d)["push_it"] is R.DO_NOT_CONTACT
    assert [a.action for a in d.actions] == ["receipt"]  # transactional
    assert {c.purpose: c.reason for c in d.consent} == {
        "p_email": R.DO_NOT_CONTACT,
        "p_push": R.DO_NOT_CONTACT,
    }


ALERTS = """
channels:
  - {id: alerts, transactional: true, purposes: [p_email]}   # a service channel that needs a purpose
actions:
  - {id: mail, channel: email, always_on: true}
  - {id: alert, channel: alerts, always_on: true}
"""


def test_the_consent_record_says_what_do_not_contact_enforced() -> None:
    # Issue 10, item 12: the transactional alert needs p_email and is sent under do-not-contact,
    # so the record must not say p_email was blocked by it.
    policy = make_policy(ALERTS)
    dnc = snap(profile={"dnc": ProfileValue(value=True)})
    d, _ = run(policy, dnc, channels=("email", "alerts"), limit=2)
    assert [a.action for a in d.actions] == ["alert"]
    assert reasons(d)["mail"] is R.DO_NOT_CONTACT
    assert [(c.purpose, c.allowed, c.reason) for c in d.consent] == [("p_email", True, R.ELIGIBLE)]
    d, _ = run(policy, dnc, channels=("email",))
    assert [(c.purpose, c.allowed, c.reason) for c in d.consent] == [
        ("p_email", False, R.DO_NOT_CONTACT)
    ]


def test_an_unreadable_profile_makes_unset_consent_state_unavailable() -> None:
    # Issue 10, item 15: the region decides what unset means; unread, it is STATE_UNAVAILABLE
    # (code, detail and docs agree), never CONSENT_UNKNOWN.
    policy = make_policy(ALERTS)
    d, _ = run(policy, snap(unavailable=frozenset({"profile"})), channels=("email", "alerts"))
    assert d.actions == ()
    assert reasons(d) == {"mail": R.STATE_UNAVAILABLE, "alert": R.STATE_UNAVAILABLE}
    alert = d.candidate("alert")
    assert alert is not None
    assert alert.detail == (
        "purpose `p_email`: unset, and the region is unknown (profile unavailable): "
        "unset consent is denied"
    )
    assert [(c.purpose, c.reason) for c in d.consent] == [("p_email", R.STATE_UNAVAILABLE)]
    # A recorded grant does not depend on the region.
    granted = {"p_email": ConsentRecord(state="granted", updated_ms=1)}
    d, _ = run(
        policy, snap(unavailable=frozenset({"profile"}), consent=granted), channels=("alerts",)
    )
    assert [a.action for a in d.actions] == ["alert"]


def test_unavailable_consent_and_caps_fail_safe_and_degrade() -> None:
    policy = make_policy(
        """
caps:
  - {id: daily, scope: global, limit: 5, window: 24h}
actions:
  - {id: mail, channel: email, always_on: true}
  - {id: receipt, channel: receipts, always_on: true, caps: [{limit: 1, window: 1h, include_transactional: true}]}
"""
    )
    d, commit = run(policy, snap(unavailable=frozenset({"consent"})), limit=2)
    assert reasons(d) == {"mail": R.STATE_UNAVAILABLE, "receipt": R.SELECTED}
    assert d.degraded
    d, commit = run(policy, snap(unavailable=frozenset({"caps"})), limit=2)
    assert reasons(d) == {"mail": R.STATE_UNAVAILABLE, "receipt": R.STATE_UNAVAILABLE}
    assert commit.grants == ()


def test_expression_errors_fall_toward_not_sending() -> None:
    policy = make_policy(
        """
suppressions:
  - {id: broken, reason: BROKEN, when: profile.n > 3, scope: {actions: [suppressed]}}
arbitration:
  score: double(priority) + value / double(profile.n)
actions:
  - {id: ineligible, channel: email, always_on: true, eligibility: profile.n > 1}
  - {id: suppressed, channel: email, always_on: true}
  - {id: unscored, channel: email, always_on: true, priority: 5}
"""
    )
    d, commit = run(policy, snap(), limit=3)  # profile.n is unset and has no default
    r = reasons(d)
    assert r == {"ineligible": R.INELIGIBLE, "suppressed": R.SUPPRESSED, "unscored": R.ERROR}
    assert d.actions == () and commit.grants == ()
    assert d.degraded
    assert all(c.outcome is Outcome.FILTERED for c in d.candidates)


def test_events_unavailable_skips_expressions_that_read_them() -> None:
    policy = make_policy(
        """
suppressions:
  - {id: recent, reason: RECENT, when: 'events.since("ping") < duration("1h")'}
actions:
  - {id: mail, channel: email, always_on: true}
"""
    )
    d, _ = run(policy, snap(unavailable=frozenset({"events"})))
    assert reasons(d) == {"mail": R.SUPPRESSED}
    assert d.degraded


def test_quiet_hours_apply_in_local_time_and_spare_transactional() -> None:
    policy = make_policy(
        """
actions:
  - {id: push_it, channel: push, always_on: true}
  - {id: receipt, channel: receipts, always_on: true}
"""
    )
    night = NOW + 8 * HOUR  # 23:00 in the default zone (UTC)
    req = Request(customer_id="c-1", request_id="r", explain=True, limit=2)
    d, _ = decide(policy, req, snap(), night)
    assert reasons(d) == {"push_it": R.QUIET_HOURS, "receipt": R.SELECTED}
    d, _ = decide(policy, req, snap(), NOW)
    assert reasons(d)["push_it"] is R.SELECTED


# --------------------------------------------------------------------------- arbitration


ARBITRATION = (DATA / "arbitration.yaml").read_text()


def journeys(**stages: str) -> dict[str, JourneyState]:
    return {
        j: JourneyState(
            status="active", stage=s, entered_ms=NOW - HOUR, stage_entered_ms=NOW - HOUR
        )
        for j, s in stages.items()
    }


def test_candidates_are_active_stage_actions_plus_always_on() -> None:
    policy = make_policy(ARBITRATION)
    d, _ = run(policy, snap(journeys=journeys(j1="s1", j3="s1")), limit=1)
    assert set(reasons(d)) == {"j1_a", "j1_b", "j3_x", "ao_push", "ao_mail"}
    assert reasons(d)["j3_x"] is R.PAUSED
    assert [c.action for c in d.candidates] == ["j1_a", "j1_b", "j3_x", "ao_push", "ao_mail"]


def test_constraints_journey_channel_caps_and_limit() -> None:
    policy = make_policy(ARBITRATION)
    s = snap(journeys=journeys(j1="s1", j2="s1"))
    d, commit = run(policy, s, limit=3)
    # Ranked: j1_a (9000), j1_b (8000), j2_push (7000), ao_push (6000), ao_mail (5010).
    assert [a.action for a in d.actions] == ["j1_a", "j2_push"]
    r = reasons(d)
    assert r["j1_b"] is R.JOURNEY_CONSTRAINT
    assert r["ao_push"] is R.CHANNEL_LIMIT
    assert r["ao_mail"] is R.CAPPED  # daily: 2 granted in this very decision
    assert [g.action for g in commit.grants] == ["j1_a", "j2_push"]
    assert commit.grants[0].caps[0].key == "daily"

    d, _ = run(policy, s, limit=1)
    assert [a.action for a in d.actions] == ["j1_a"]
    assert reasons(d)["j2_push"] is R.LOST_ARBITRATION

    d, _ = run(policy, s, limit=10)  # max_actions 3 < 10, but the cap allows 2 anyway
    assert len(d.actions) == 2


def test_limit_reached_when_max_actions_clamps_the_request() -> None:
    policy = make_policy(ARBITRATION.replace("max_actions: 3", "max_actions: 1"))
    d, _ = run(policy, snap(journeys=journeys(j1="s1", j2="s1")), limit=5)
    assert [a.action for a in d.actions] == ["j1_a"]
    assert reasons(d)["j2_push"] is R.LIMIT_REACHED


def test_ties_break_by_priority_then_action_id() -> None:
    policy = make_policy(ARBITRATION)
    d, _ = run(policy, snap(), placement="home")
    # ao_tie_a and ao_tie_b score and rank equally: the action id decides.
    assert [a.action for a in d.actions] == ["ao_tie_a"]
    assert reasons(d)["ao_tie_b"] is R.LOST_ARBITRATION
    assert reasons(d)["fb"] is R.LOST_ARBITRATION  # a fallback is only used when nothing else is
    assert d.actions[0].fallback is False


JOURNEY_PRIORITY = """
journeys:
  - {id: low, owner: t, status: active, priority: 10, triggers: [{event: ping}], stages: [{id: s}]}
  - {id: high, owner: t, status: active, priority: 20, triggers: [{event: ping}], stages: [{id: s}]}
actions:
  - {id: a_low, channel: receipts, journey: low, priority: 5}
  - {id: b_high, channel: receipts, journey: high, priority: 5}
"""


def test_journey_priority_arbitrates_across_journeys() -> None:
    # Issue 10, item 14: equal scores and action priorities; the journey's priority decides
    # (not the action id, which would choose a_low).
    policy = make_policy(JOURNEY_PRIORITY)
    d, _ = run(policy, snap(journeys=journeys(low="s", high="s")), channels=("receipts",))
    assert [a.action for a in d.actions] == ["b_high"]
    assert reasons(d)["a_low"] is R.LOST_ARBITRATION


def test_journey_priority_is_readable_in_the_score() -> None:
    policy = make_policy(
        JOURNEY_PRIORITY + "arbitration: {score: double(100 - journey_priority)}\n"
    )
    d, _ = run(policy, snap(journeys=journeys(low="s", high="s")), channels=("receipts",))
    assert [(a.action, a.score) for a in d.actions] == [("a_low", 90.0)]
    assert policy.actions["b_high"].journey_priority == 20


def test_fallback_when_nothing_else_qualifies() -> None:
    policy = make_policy(
        """
actions:
  - {id: banner, channel: in_app, always_on: true, placements: [home], eligibility: profile.vip}
  - {id: fb, channel: in_app, always_on: true, fallback: true, placements: [home]}
  - {id: mail, channel: email, always_on: true}
"""
    )
    d, _ = run(policy, snap(), placement="home")
    assert [(a.action, a.fallback) for a in d.actions] == [("fb", True)]
    assert set(reasons(d)) == {"banner", "fb"}  # a placement selects only its actions


def test_propensity_and_value_expressions_feed_the_score() -> None:
    policy = make_policy(
        """
actions:
  - {id: a, channel: email, always_on: true, value: 1.0}
  - {id: b, channel: email, always_on: true, value: profile.ltv * 0.1}
"""
    )
    s = snap(profile={"ltv": ProfileValue(value=50.0)})
    d, _ = run(policy, s)
    assert [a.action for a in d.actions] == ["b"]
    assert d.actions[0].score == pytest.approx(5.0)
    d, _ = run(policy, s, propensities={"a": 10.0, "b": 0.1})
    assert [a.action for a in d.actions] == ["a"]


def test_variants_payload_and_tracking_id() -> None:
    policy = make_policy(
        """
actions:
  - id: mail
    channel: email
    always_on: true
    payload: {template: base, utm: x}
    variants:
      - {id: A, weight: 1, payload: {template: a}}
      - {id: B, weight: 1, payload: {template: b}}
"""
    )
    d, _ = run(policy, snap("alice"))
    chosen = d.actions[0]
    expected = "A" if bucket("variant:mail", "alice") < 5000 else "B"
    assert chosen.variant == expected
    assert chosen.payload == {"template": expected.lower(), "utm": "x"}
    assert chosen.tracking_id == f"{d.decision_id}.mail"
    assert d.decision_id == decision_id(policy, "alice", "r-1", NOW)


# --------------------------------------------------------------------------- holdouts


def _customer(predicate) -> str:  # type: ignore[no-untyped-def]
    return next(c for c in (f"c{i}" for i in range(10_000)) if predicate(c))


def test_control_group_records_what_it_would_have_received() -> None:
    policy = make_policy(
        """
holdouts:
  global: {percent: 50, salt: cg}
actions:
  - {id: mail, channel: email, always_on: true}
  - {id: receipt, channel: receipts, always_on: true, priority: -1}
"""
    )
    held = _customer(lambda c: bucket("cg", c) < 5000)
    free = _customer(lambda c: bucket("cg", c) >= 5000)
    d, commit = run(policy, snap(held), limit=2)
    assert d.control_group
    assert [a.action for a in d.actions] == ["receipt"]
    assert [a.action for a in d.held_out] == ["mail"]
    assert reasons(d)["mail"] is R.CONTROL_GROUP
    assert [g.action for g in commit.grants] == ["receipt"]
    d, _ = run(policy, snap(free), limit=2)
    assert not d.control_group
    assert [a.action for a in d.actions] == ["mail", "receipt"]


def test_journey_holdout_lets_other_journeys_win() -> None:
    policy = make_policy(
        ARBITRATION.replace(
            "  - id: j2\n    owner: t\n    status: active\n",
            "  - id: j2\n    owner: t\n    status: active\n    holdout: {percent: 50, salt: h2}\n",
        )
    )
    held = _customer(lambda c: bucket("h2", c) < 5000)
    d, _ = run(policy, snap(held, journeys=journeys(j2="s1")), channels=("push",))
    assert [a.action for a in d.actions] == ["ao_push"]
    assert [a.action for a in d.held_out] == ["j2_push"]
    assert reasons(d)["j2_push"] is R.HOLDOUT


# --------------------------------------------------------------------------- commit


def test_store_recheck_rejects_grants_over_the_cap_and_settle_removes_them() -> None:
    policy = make_policy(
        """
caps:
  - {id: daily, scope: global, limit: 1, window: 24h}
actions:
  - {id: mail, channel: email, always_on: true}
"""
    )
    s = snap()
    first, c1 = run(policy, s)
    second, c2 = decide(policy, Request(customer_id="c-1", request_id="r-2", explain=True), s, NOW)
    assert first.actions and second.actions  # both computed from the same (stale) snapshot
    s, r1 = apply_commit(s, c1)
    s, r2 = apply_commit(s, c2)
    assert r1.granted == (c1.grants[0].tracking_id,) and not r1.rejected
    assert not r2.granted and r2.rejected[0].cap_id == "daily"
    assert s.caps["daily"] == [NOW]
    fixed = settle(second, StoreReport(committed=r2), c2)
    assert fixed.actions == ()
    assert fixed.candidate("mail").reason is R.CAPPED  # type: ignore[union-attr]


def test_journey_timers_ride_along_in_the_commit() -> None:
    policy = make_policy(
        """
journeys:
  - id: j
    owner: t
    status: active
    stages:
      - {id: a, transitions: [{after: 1h, to: b}]}
      - {id: b}
actions:
  - {id: in_b, channel: email, journey: j, stages: [b]}
"""
    )
    s = snap(
        journeys={
            "j": JourneyState(
                status="active",
                stage="a",
                entered_ms=NOW - 2 * HOUR,
                stage_entered_ms=NOW - 2 * HOUR,
                last_event_id="e1",
            )
        }
    )
    d, commit = run(policy, s)
    assert [a.action for a in d.actions] == ["in_b"]
    assert d.actions[0].stage == "b"
    (change,) = commit.journeys
    assert change.kind == "transition" and change.expect_last_event_id == "e1"
    assert change.state.stage_entered_ms == NOW - HOUR
    s2, result = apply_commit(s, commit)
    assert s2.journeys["j"].stage == "b" and result.skipped_journeys == ()
    _, again = apply_commit(s2, commit)  # precondition no longer holds: skipped
    assert again.skipped_journeys == ("j",)


# --------------------------------------------------------------------------- the example set


@pytest.fixture(scope="module")
def example() -> CompiledPolicy:
    return load_policy(EXAMPLES)


def test_example_trace_off_is_empty_and_answers_the_same(example: CompiledPolicy) -> None:
    s = CustomerSnapshot(
        customer_id="alice",
        profile={"region": ProfileValue(value="US"), "app_installed": ProfileValue(value=True)},
        consent={"push_marketing": ConsentRecord(state="granted", updated_ms=1)},
        events={"cart_updated": EventCounter(total=1, last_ms=NOW - 2 * HOUR)},
        journeys=journeys(cart_abandonment="reminder"),
    )
    loud, c1 = decide(example, Request(customer_id="alice", request_id="r", explain=True), s, NOW)
    quiet, c2 = decide(example, Request(customer_id="alice", request_id="r"), s, NOW)
    assert quiet.candidates == ()
    assert loud.candidates
    assert msgspec.structs.replace(loud, candidates=()) == quiet
    assert c1 == c2
