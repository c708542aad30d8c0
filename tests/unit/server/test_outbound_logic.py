"""Outbound logic without Redis: wake-up instants, backoff, the circuit breaker, webhook
signatures and Retry-After, the deployment file's checks, wake-up members."""

from __future__ import annotations

import hashlib
import hmac
import random
from pathlib import Path

import msgspec
import pytest

from arbiter.policies import JourneyState, load_policy, next_wake_ms, with_wakeups
from arbiter.policies.effects import DecisionCommit, JourneyChange
from arbiter.server.outbound.adapters.webhook import retry_after_s, sign
from arbiter.server.outbound.config import Destination, load_config
from arbiter.server.outbound.delivery import Breaker, backoff_s
from arbiter.server.outbound.due import parse_member
from arbiter.state import wake_key, wake_member

ROOT = Path(__file__).resolve().parents[3]
POLICY = load_policy(ROOT / "examples" / "outbound" / "policies")
T = 1_700_000_000_000


def _state(stage: str, entered: int, status: str = "active") -> JourneyState:
    return JourneyState(
        status=status, stage=stage, entered_ms=T, stage_entered_ms=entered, last_event_id="x"
    )


def test_wake_up_is_the_stage_shortest_after_or_none_when_not_active() -> None:
    journey = POLICY.journeys["welcome"]
    assert next_wake_ms(journey, _state("waiting", T)) == T + 2000
    assert next_wake_ms(journey, _state("nudge", T + 2000)) == T + 4000
    assert next_wake_ms(journey, _state("mail", T + 4000)) == T + 4000 + 3_600_000
    assert next_wake_ms(journey, _state("mail", T, status="completed")) is None


def test_with_wakeups_sets_each_change_and_leaves_a_commit_without_changes_alone() -> None:
    empty = DecisionCommit(
        customer_id="c", request_id="r", decision_id="d", now_ms=T, policy_version="v"
    )
    assert with_wakeups(POLICY, empty) is empty
    change = JourneyChange(
        journey="welcome", kind="enter", cause_event_id="e", at_ms=T, state=_state("waiting", T)
    )
    commit = msgspec.structs.replace(empty, journeys=(change,))
    assert with_wakeups(POLICY, commit).journeys[0].wake_ms == T + 2000


def test_wake_member_round_trips_and_the_single_node_key_is_hash_tagged() -> None:
    member = wake_member("cust-1", "welcome", T + 5, T)
    assert parse_member(member) == ("cust-1", "welcome", T + 5, T)
    assert parse_member(wake_member("c", "j", T)) == ("c", "j", T, T)
    assert wake_key("arb") == "arb:{w}:wake"
    assert wake_key("arb", 0) != wake_key("arb", 1)


def test_backoff_is_full_jitter_under_an_exponential_cap() -> None:
    dest = msgspec.convert(
        {
            "id": "d",
            "kind": "webhook",
            "channels": ["push"],
            "url": "http://x",
            "backoff": {"base_s": 1.0, "max_s": 8.0},
        },
        Destination,
    )
    rng = random.Random(3)
    for attempts, cap in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)):
        draws = [backoff_s(dest, attempts, rng) for _ in range(200)]
        assert min(draws) >= 0 and max(draws) <= cap
        assert max(draws) > cap * 0.8  # spread over the whole range


def test_breaker_opens_after_consecutive_failures_then_lets_one_probe_through() -> None:
    breaker = Breaker(failures=3, open_s=5.0)
    for _ in range(2):
        breaker.failure(100.0)
    assert breaker.allow(100.0)
    breaker.failure(100.0)
    assert not breaker.allow(101.0)  # open
    assert breaker.allow(106.0)  # half-open: one probe
    assert not breaker.allow(106.0)  # a second one waits
    breaker.success()
    assert breaker.allow(106.0) and breaker.allow(106.0)


def test_signature_is_hmac_sha256_of_timestamp_and_body() -> None:
    expected = hmac.new(b"k", b"123.{}", hashlib.sha256).hexdigest()
    assert sign(b"k", "123", b"{}") == "sha256=" + expected


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after_s("7") == 7.0
    assert retry_after_s(None) is None
    assert retry_after_s("soon") is None
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past


def test_deployment_file_is_checked(tmp_path: Path) -> None:
    config = load_config(ROOT / "examples" / "outbound" / "outbound.yaml")
    assert config.destination_for("push").id == "push_hook"  # type: ignore[union-attr]
    assert config.channels() == ["email", "push"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "destinations:\n"
        "  - {id: a, kind: webhook, channels: [push], url: 'http://x'}\n"
        "  - {id: b, kind: smtp, channels: [push]}\n"
    )
    with pytest.raises(ValueError, match="two destinations"):
        load_config(bad)
    bad.write_text("destinations:\n  - {id: a, kind: webhook, channels: [push]}\n")
    with pytest.raises(ValueError, match="needs url"):
        load_config(bad)
    bad.write_text("destinations:\n  - {id: a, kind: fax, channels: [push]}\n")
    with pytest.raises(ValueError):
        load_config(bad)
