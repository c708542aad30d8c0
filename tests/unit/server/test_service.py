"""The transport-neutral service core: DecisionCore answers protobuf requests without grpc, and its failures
carry one status for every transport (the gRPC code; Connect's mirrors it)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
from google.protobuf import timestamp_pb2

from arbiter.policies import load_policy
from arbiter.server.errors import CallFailed, connect_code
from arbiter.server.registry import PolicyRegistry
from arbiter.server.service import METHODS, Call, DecisionCore
from arbiter.state import MemoryStore
from arbiter.v1 import decision_pb2, value_pb2

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "policies"
NOW = 1_748_962_800_000  # Tuesday 2025-06-03 15:00 UTC
T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def registry() -> PolicyRegistry:
    registry = PolicyRegistry()
    registry.activate(load_policy(EXAMPLES))
    return registry


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def core(registry: PolicyRegistry, store: MemoryStore) -> DecisionCore:
    core = DecisionCore(registry, store, now_ms=lambda: NOW)
    consent = decision_pb2.UpdateProfileRequest(
        customer_id="c-core",
        source="cmp",
        timestamp=timestamp_pb2.Timestamp(seconds=NOW // 1000 - 60),
        consents=[
            decision_pb2.ConsentUpdate(
                purpose="personalization", state=decision_pb2.CONSENT_STATE_GRANTED
            )
        ],
    )
    run(core.invoke("UpdateProfile", consent, Call()))
    return core


def banner_request(request_id: str = "r-1") -> decision_pb2.DecideRequest:
    return decision_pb2.DecideRequest(
        request_id=request_id,
        customer_id="c-core",
        placement="home_banner",
        channels=["in_app"],
        explain=True,
    )


def test_decide_runs_without_any_transport_and_replays(core: DecisionCore) -> None:
    first = run(core.invoke("Decide", banner_request(), Call()))
    assert isinstance(first, decision_pb2.DecideResponse)
    assert first.actions and not first.replayed and first.candidates
    again = run(core.invoke("Decide", banner_request(), Call()))
    assert again.replayed
    assert [a.tracking_id for a in again.actions] == [a.tracking_id for a in first.actions]


def test_a_field_error_is_one_status_for_every_transport(
    core: DecisionCore, store: MemoryStore
) -> None:
    bad = decision_pb2.DecideRequest(
        request_id="r-bad", customer_id="c-bad", channels=["in_app", "pigeon"]
    )
    with pytest.raises(CallFailed) as failed:
        run(core.invoke("Decide", bad, Call()))
    status = failed.value.status
    assert status.code is grpc.StatusCode.INVALID_ARGUMENT
    assert status.message == "channels[1]: unknown channel"
    assert connect_code(status.code).value == "invalid_argument"
    assert run(store.export_customer("c-bad"))["decisions"] == []


def test_no_time_left_answers_fail_safe_and_commits_nothing(
    core: DecisionCore, store: MemoryStore
) -> None:
    expired = Call.with_timeout(0.0)
    response = run(core.invoke("Decide", banner_request("r-late"), expired))
    assert response.degradations[0].detail == (
        "no time left in the deadline to read customer state: "
        "nothing consent-gated or capped was granted"
    )
    assert all(a.channel != "email" for a in response.actions)
    assert run(store.export_customer("c-core"))["decisions"] == []


def test_check_and_track_and_update_profile_through_the_core(core: DecisionCore) -> None:
    stamp = timestamp_pb2.Timestamp(seconds=NOW // 1000)
    check = decision_pb2.CheckRequest(
        request_id="k-1", customer_id="c-k", action_id="order_receipt_email", channel="sms"
    )
    answer = run(core.invoke("Check", check, Call()))
    assert not answer.allowed and answer.reason == decision_pb2.REASON_CHANNEL_NOT_ALLOWED
    track = decision_pb2.TrackRequest(
        events=[
            decision_pb2.Event(event_id="e-1", customer_id="c-k", type="nope", timestamp=stamp),
            decision_pb2.Event(
                event_id="e-2",
                customer_id="c-k",
                type="app_opened",
                timestamp=stamp,
            ),
        ]
    )
    results = run(core.invoke("Track", track, Call())).results
    assert [(r.status, r.field) for r in results] == [
        (decision_pb2.EVENT_STATUS_REJECTED, "type"),
        (decision_pb2.EVENT_STATUS_APPLIED, ""),
    ]
    profile = decision_pb2.UpdateProfileRequest(
        customer_id="c-k",
        source="crm",
        timestamp=stamp,
        traits={"lifetime_value": value_pb2.Value(int_value=12)},
    )
    written = run(core.invoke("UpdateProfile", profile, Call())).results
    assert [(r.name, r.outcome) for r in written] == [
        ("lifetime_value", decision_pb2.PROFILE_WRITE_OUTCOME_APPLIED)
    ]


def test_every_method_is_routed_with_its_message_types(core: DecisionCore) -> None:
    for method, (request_type, response_type) in METHODS.items():
        assert request_type.DESCRIPTOR.full_name == f"arbiter.v1.{method}Request"
        assert response_type.DESCRIPTOR.full_name == f"arbiter.v1.{method}Response"
        with pytest.raises(CallFailed):  # an empty request is refused, not crashed on
            run(core.invoke(method, request_type(), Call()))


def test_a_deferred_candidate_says_when_in_the_response(registry: PolicyRegistry) -> None:
    # Issue 10, item 17: 23:30 in New York (the example's default zone): push is quiet until
    # 08:00 local, 12:00 UTC; the answer and the trace say so, and so does a Check.
    night = 1_748_921_400_000  # 2025-06-03T03:30:00Z
    core = DecisionCore(registry, MemoryStore(), now_ms=lambda: night)
    profile = decision_pb2.UpdateProfileRequest(
        customer_id="c-night",
        source="crm",
        timestamp=timestamp_pb2.Timestamp(seconds=night // 1000 - 60),
        traits={"region": value_pb2.Value(string_value="US")},
    )
    run(core.invoke("UpdateProfile", profile, Call()))
    track = decision_pb2.TrackRequest(
        events=[
            decision_pb2.Event(
                event_id="e-cart",
                customer_id="c-night",
                type="cart_updated",
                timestamp=timestamp_pb2.Timestamp(seconds=night // 1000 - 7200),
                properties={
                    "cart_id": value_pb2.Value(string_value="k1"),
                    "item_count": value_pb2.Value(int_value=2),
                    "cart_value": value_pb2.Value(double_value=40.0),
                },
            )
        ]
    )
    run(core.invoke("Track", track, Call()))
    decide = decision_pb2.DecideRequest(
        request_id="r-night", customer_id="c-night", channels=["push"], explain=True
    )
    response = run(core.invoke("Decide", decide, Call()))
    assert list(response.actions) == []
    assert response.not_before.ToJsonString() == "2025-06-03T12:00:00Z"
    (candidate,) = response.candidates
    assert candidate.reason == decision_pb2.REASON_QUIET_HOURS
    assert candidate.not_before.ToJsonString() == "2025-06-03T12:00:00Z"
    check = decision_pb2.CheckRequest(
        request_id="r-check", customer_id="c-night", action_id="cart_reminder_push", channel="push"
    )
    answer = run(core.invoke("Check", check, Call()))
    assert not answer.allowed and answer.not_before.ToJsonString() == "2025-06-03T12:00:00Z"
