"""End to end: a real Arbiter server on a real port, real gRPC clients, the example policy set.

The store is the embedded ``MemoryStore`` (a complete implementation);
"nothing written" is proven by exporting the customer before and after.
"""

from __future__ import annotations

import math
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import timestamp_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from arbiter.policies.effects import StateConflict
from arbiter.state.store import StoreUnavailable
from arbiter.v1 import decision_pb2, decision_pb2_grpc, value_pb2
from arbiter_client import (
    ArbiterClient,
    CandidateOutcome,
    ConsentState,
    ConsentUpdate,
    Event,
    EventStatus,
    ProfileFieldKind,
    ProfileWriteOutcome,
    Reason,
    Timeouts,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = str(ROOT / "examples" / "policies")
ServerHandle = Any  # tests/integration/conftest.py: a server on a private event loop

TIMEOUTS = Timeouts(decide=5.0, check=5.0, track=5.0, update_profile=5.0)


def _stamp(moment: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture(scope="module")
def channel(arbiter_server: ServerHandle) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(arbiter_server.address) as ch:
        yield ch


@pytest.fixture(scope="module")
def stub(channel: grpc.Channel) -> Any:
    return decision_pb2_grpc.DecisionServiceStub(channel)


@pytest.fixture(scope="module")
def client(arbiter_server: ServerHandle) -> Iterator[ArbiterClient]:
    with ArbiterClient(arbiter_server.address, timeouts=TIMEOUTS, raise_on_error=True) as c:
        yield c


def _us_customer(client: ArbiterClient, customer: str, *purposes: str) -> None:
    """A US customer with the given purposes granted a minute ago."""
    client.update_profile(
        customer,
        source="crm",
        timestamp=_now() - timedelta(minutes=1),
        traits={"region": "US", "plan": "basic"},
        consents=[ConsentUpdate(p, ConsentState.GRANTED) for p in purposes],
    )


def _decide(stub: Any, customer: str, **fields: Any) -> Any:
    fields.setdefault("request_id", uuid.uuid4().hex)
    fields.setdefault("placement", "home_banner")
    fields.setdefault("channels", ["in_app"])
    return stub.Decide(decision_pb2.DecideRequest(customer_id=customer, **fields), timeout=5)


# =========================================================================== health, reflection


def test_health_reports_serving_and_reflection_lists_the_services(
    arbiter_server: ServerHandle, channel: grpc.Channel
) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "arbiter.v1.DecisionService"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING

    reflect = reflection_pb2_grpc.ServerReflectionStub(channel)
    replies = list(
        reflect.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
        )
    )
    names = {s.name for s in replies[0].list_services_response.service}
    assert {
        "arbiter.v1.DecisionService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    } <= names


def test_not_serving_until_a_policy_is_loaded_and_the_store_answers(
    start_server: Callable[..., ServerHandle],
) -> None:
    handle = start_server(load_policy=False)
    handle.store.unavailable = True
    with grpc.insecure_channel(handle.address) as ch:
        health = health_pb2_grpc.HealthStub(ch)

        def status() -> int:
            request = health_pb2.HealthCheckRequest(service="arbiter.v1.DecisionService")
            return int(health.Check(request, timeout=5).status)

        assert status() == health_pb2.HealthCheckResponse.NOT_SERVING
        with pytest.raises(grpc.RpcError) as err:
            _decide(decision_pb2_grpc.DecisionServiceStub(ch), "c-1")
        assert err.value.code() is grpc.StatusCode.UNAVAILABLE
        assert "no policy" in (err.value.details() or "")

        handle.call(handle.server.load_policy())
        assert status() == health_pb2.HealthCheckResponse.NOT_SERVING  # store still down
        handle.store.unavailable = False
        deadline = time.monotonic() + 5
        while status() != health_pb2.HealthCheckResponse.SERVING:
            assert time.monotonic() < deadline, "never became SERVING"
            time.sleep(0.02)


# =========================================================================== happy paths


def test_update_profile_track_decide_check(
    client: ArbiterClient, arbiter_server: ServerHandle, customer: str
) -> None:
    now = _now()
    profile = client.update_profile(
        customer,
        source="crm",
        timestamp=now - timedelta(minutes=2),
        traits={"region": "US", "plan": "basic", "lifetime_value": 12, "favorite_categories": []},
        consents=[
            ConsentUpdate("email_marketing", ConsentState.GRANTED),
            ConsentUpdate("personalization", ConsentState.GRANTED),
        ],
        do_not_contact=False,
    )
    assert {r.outcome for r in profile.results} == {ProfileWriteOutcome.APPLIED}
    assert len(profile.results) == 7  # 4 traits, do-not-contact, 2 purposes

    tracked = client.track([Event(customer, "signed_up", {"channel": "web"}, timestamp=now)])
    assert [r.status for r in tracked.results] == [EventStatus.APPLIED]

    decision = client.decide(customer, "", channels=["email"], explain=True)
    assert [a.action_id for a in decision.actions] == ["welcome_email"]
    action = decision.actions[0]
    assert (action.journey_id, action.stage, action.channel) == ("onboarding", "welcome", "email")
    assert action.payload["template"] == "onboarding_welcome_v4"
    assert action.tracking_id == f"{decision.decision_id}.welcome_email"
    assert decision.policy_version.startswith("2025.06.1+sha256:")
    assert decision.candidates and decision.candidates[0].outcome is CandidateOutcome.SELECTED
    assert not decision.degradations and not decision.replayed
    assert {c.purpose: c.allowed for c in decision.consent} == {"email_marketing": True}

    check = client.check(customer, "welcome_email", "email", decision_id=decision.decision_id)
    assert check.allowed and check.reason is Reason.ELIGIBLE and not check.recorded
    banner = client.check(customer, "first_box_tips_push", "push")
    assert not banner.allowed  # the customer is in stage `welcome`, not `first_box`
    wrong = client.check(customer, "welcome_email", "push")
    assert not wrong.allowed


def test_check_record_is_idempotent_per_request_id(
    client: ArbiterClient, arbiter_server: ServerHandle, customer: str
) -> None:
    _us_customer(client, customer, "email_marketing")
    client.track([Event(customer, "signed_up", {"channel": "ios"}, timestamp=_now())])
    request_id = uuid.uuid4().hex
    first = client.check(customer, "welcome_email", "email", record=True, request_id=request_id)
    again = client.check(customer, "welcome_email", "email", record=True, request_id=request_id)
    assert first.allowed and first.recorded and not first.replayed
    assert again.allowed and again.recorded and again.replayed
    caps = arbiter_server.export(customer)["caps"]
    assert len(caps["email_weekly"]) == 1
    assert len(caps["per_journey_daily/onboarding"]) == 1


# =========================================================================== idempotency, dry run


def test_decide_retries_replay_the_same_decision_and_count_caps_once(
    stub: Any, client: ArbiterClient, arbiter_server: ServerHandle, customer: str
) -> None:
    _us_customer(client, customer, "personalization")
    request_id = uuid.uuid4().hex
    first = _decide(stub, customer, request_id=request_id, explain=True)
    retry = _decide(stub, customer, request_id=request_id, explain=True)
    assert [a.action_id for a in first.actions] == ["default_home_banner"]
    assert not first.replayed and retry.replayed
    assert retry.decision_id == first.decision_id
    assert list(retry.actions) == list(first.actions)
    key = "in_app_per_message/default_home_banner"
    assert len(arbiter_server.export(customer)["caps"][key]) == 1

    # The cap (3 a day) holds across distinct requests, and the 4th is refused.
    for _ in range(2):
        assert _decide(stub, customer).actions
    fourth = _decide(stub, customer, explain=True)
    assert not fourth.actions
    trace = {c.action_id: c for c in fourth.candidates}
    assert trace["default_home_banner"].reason == decision_pb2.REASON_CAPPED
    assert len(arbiter_server.export(customer)["caps"][key]) == 3


def test_dry_run_writes_nothing(
    stub: Any, client: ArbiterClient, arbiter_server: ServerHandle, customer: str
) -> None:
    _us_customer(client, customer, "personalization")
    before = arbiter_server.export(customer)
    request_id = uuid.uuid4().hex
    dry = _decide(stub, customer, request_id=request_id, dry_run=True, explain=True)
    assert dry.dry_run and [a.action_id for a in dry.actions] == ["default_home_banner"]
    assert arbiter_server.export(customer) == before  # no caps, no idempotency record
    real = _decide(stub, customer, request_id=request_id)
    assert not real.replayed and not real.dry_run and real.actions


# =========================================================================== events


def test_duplicate_event_ids_apply_once(
    client: ArbiterClient, arbiter_server: ServerHandle, customer: str
) -> None:
    order = {"order_id": "o-1", "total": 42.5, "currency": "EUR", "items": 2}
    event = Event(customer, "order_placed", order, event_id=f"ev-{uuid.uuid4().hex}")
    batch = client.track([event, event])
    assert [r.status for r in batch.results] == [EventStatus.APPLIED, EventStatus.DUPLICATE]
    later = client.track([event])
    assert [r.status for r in later.results] == [EventStatus.DUPLICATE]
    assert arbiter_server.export(customer)["events"]["order_placed"]["total"] == 1


def test_event_contract_violations_are_rejected_per_event(
    client: ArbiterClient, arbiter_server: ServerHandle, customer: str
) -> None:
    now = _now()
    result = client.track(
        [
            Event(customer, "teleported", {}, timestamp=now),
            Event(customer, "order_placed", {"order_id": "o-2", "total": "lots"}, timestamp=now),
            Event(customer, "order_placed", {"total": 3.0}, timestamp=now),
            Event(customer, "order_placed", {"order_id": "o", "total": 1.0, "x": 1}, timestamp=now),
            Event(customer, "cart_updated", {"cart_id": "c"}, timestamp=now, version=7),
            Event(customer, "order_placed", {"order_id": "o-3", "total": 9}, timestamp=now),
        ]
    )
    rows = [(r.status, r.field) for r in result.results]
    assert rows == [
        (EventStatus.REJECTED, "type"),
        (EventStatus.REJECTED, "properties.total"),
        (EventStatus.REJECTED, "properties.order_id"),
        (EventStatus.REJECTED, "properties.x"),
        (EventStatus.REJECTED, "version"),
        (EventStatus.APPLIED, ""),  # an int is a fine double
    ]
    assert all(r.detail for r in result.results[:5])
    assert arbiter_server.export(customer)["events"]["order_placed"]["total"] == 1


# =========================================================================== consent


def test_consent_precedence_and_denial_removes_the_channel(
    stub: Any, client: ArbiterClient, arbiter_server: ServerHandle, customer: str
) -> None:
    t1 = _now() - timedelta(minutes=10)
    t0 = t1 - timedelta(minutes=10)

    def write(state: ConsentState, at: datetime) -> ProfileWriteOutcome:
        result = client.update_profile(
            customer,
            source="cmp",
            timestamp=at,
            traits={"region": "US"} if at == t0 else None,
            consents=[ConsentUpdate("personalization", state)],
        )
        return next(r.outcome for r in result.results if r.name == "personalization")

    assert write(ConsentState.GRANTED, t1) is ProfileWriteOutcome.APPLIED
    assert _decide(stub, customer).actions  # granted: the in-app banner is shown
    assert write(ConsentState.DENIED, t0) is ProfileWriteOutcome.IGNORED_STALE  # older
    assert _decide(stub, customer).actions
    assert write(ConsentState.DENIED, t1) is ProfileWriteOutcome.APPLIED  # equal: denied wins
    assert write(ConsentState.GRANTED, t1) is ProfileWriteOutcome.IGNORED_STALE

    denied = _decide(stub, customer, explain=True)
    assert not denied.actions
    assert {c.action_id: c.reason for c in denied.candidates}["default_home_banner"] == (
        decision_pb2.REASON_CONSENT_DENIED
    )
    [summary] = [c for c in denied.consent if c.purpose == "personalization"]
    assert summary.state == decision_pb2.CONSENT_STATE_DENIED and not summary.allowed
    assert arbiter_server.export(customer)["consent"]["personalization"]["state"] == "denied"


# =========================================================================== segments


def test_segments_written_by_update_profile_are_read_by_policies(
    stub: Any, client: ArbiterClient, arbiter_server: ServerHandle, customer: str
) -> None:
    """A CDP sync writes the whole membership; `segments.contains("vip")` sees it."""
    t1 = (_now() - timedelta(minutes=1)).replace(microsecond=0)
    t0 = t1 - timedelta(minutes=10)
    client.update_profile(
        customer,
        source="crm",
        timestamp=t0,
        traits={"region": "US", "subscription_status": "active"},
        consents=[ConsentUpdate("personalization", ConsentState.GRANTED)],
    )

    def sync(at: datetime, *segments: str) -> tuple[ProfileFieldKind, ProfileWriteOutcome]:
        result = client.update_profile(customer, source="cdp", timestamp=at, segments=segments)
        [only] = result.results
        assert only.name == "segments"
        return only.kind, only.outcome

    def banner() -> list[str]:
        return [a.action_id for a in _decide(stub, customer).actions]

    assert banner() == ["default_home_banner"]  # no segments yet
    assert sync(t1, "vip", "eu") == (ProfileFieldKind.SEGMENTS, ProfileWriteOutcome.APPLIED)
    assert banner() == ["vip_referral_banner"]
    stale = sync(t0, "eu")  # older than the stored membership
    assert stale == (ProfileFieldKind.SEGMENTS, ProfileWriteOutcome.IGNORED_STALE)
    assert banner() == ["vip_referral_banner"]
    exported = arbiter_server.export(customer)
    assert exported["segments"] == ["eu", "vip"]
    assert exported["segments_updated_ms"] == int(t1.timestamp() * 1000)

    # The raw wire form: an empty SegmentMembership empties the set (equal timestamp applies).
    request = _profile_req(customer, timestamp=_stamp(t1))
    request.ClearField("traits")
    request.segments.SetInParent()
    reply = stub.UpdateProfile(request, timeout=5)
    assert [(r.kind, r.name, r.outcome) for r in reply.results] == [
        (
            decision_pb2.PROFILE_FIELD_KIND_SEGMENTS,
            "segments",
            decision_pb2.PROFILE_WRITE_OUTCOME_APPLIED,
        )
    ]
    assert banner() == ["default_home_banner"]
    assert arbiter_server.export(customer)["segments"] == []


# =========================================================================== validation


def _deep(levels: int) -> value_pb2.Value:
    value = value_pb2.Value(string_value="leaf")
    for _ in range(levels):
        value = value_pb2.Value(list_value=value_pb2.ListValue(values=[value]))
    return value


def _value(**kind: Any) -> value_pb2.Value:
    return value_pb2.Value(**kind)


def _decide_req(customer: str, **changes: Any) -> decision_pb2.DecideRequest:
    request = decision_pb2.DecideRequest(
        request_id=uuid.uuid4().hex,
        customer_id=customer,
        placement="home_banner",
        channels=["in_app"],
    )
    context = changes.pop("context", {})
    for name, value in changes.items():
        if name == "channels":
            del request.channels[:]
            request.channels.extend(value)
        else:
            setattr(request, name, value)
    for key, value in context.items():
        request.context[key].CopyFrom(value)
    return request


def _event(customer: str, **changes: Any) -> decision_pb2.Event:
    event = decision_pb2.Event(
        event_id=uuid.uuid4().hex,
        customer_id=customer,
        type="order_placed",
        timestamp=_stamp(_now()),
    )
    event.properties["order_id"].string_value = "o-9"
    event.properties["total"].double_value = 5.0
    for name, value in changes.items():
        if name == "timestamp":
            event.ClearField("timestamp")
            if value is not None:
                event.timestamp.CopyFrom(value)
        elif name == "total":
            event.properties["total"].CopyFrom(value)
        else:
            setattr(event, name, value)
    return event


def _profile_req(customer: str, **changes: Any) -> decision_pb2.UpdateProfileRequest:
    request = decision_pb2.UpdateProfileRequest(
        request_id=uuid.uuid4().hex,
        customer_id=customer,
        source="crm",
        timestamp=_stamp(_now()),
    )
    request.traits["plan"].string_value = "premium"
    for name, value in changes.items():
        if name == "timestamp":
            request.ClearField("timestamp")
            if value is not None:
                request.timestamp.CopyFrom(value)
        elif name == "traits":
            for key, item in value.items():
                request.traits[key].CopyFrom(item)
        elif name == "consents":
            request.consents.extend(value)
        elif name == "segments":
            request.segments.segments.extend(value)
        else:
            setattr(request, name, value)
    return request


def _consent(purpose: str, state: int) -> decision_pb2.ConsentUpdate:
    return decision_pb2.ConsentUpdate(purpose=purpose, state=state)


GRANTED = decision_pb2.CONSENT_STATE_GRANTED
LONG = "x" * 10_000
BadCase = tuple[str, Callable[[str], Any], str]

INVALID: list[BadCase] = [
    # Decide
    ("Decide", lambda c: _decide_req(c, request_id=""), "request_id"),
    ("Decide", lambda c: _decide_req(c, customer_id="has space"), "customer_id"),
    ("Decide", lambda c: _decide_req(c, customer_id="{slot}"), "customer_id"),
    ("Decide", lambda c: _decide_req(c, customer_id="c" * 129), "customer_id"),
    ("Decide", lambda c: _decide_req(c, channels=["in_app", "pigeon"]), "channels[1]"),
    ("Decide", lambda c: _decide_req(c, channels=["in_app"] * 33), "channels"),
    ("Decide", lambda c: _decide_req(c, limit=1000), "limit"),
    ("Decide", lambda c: _decide_req(c, placement="x" * 200), "placement"),
    (
        "Decide",
        lambda c: _decide_req(c, context={"cart_value": _value(double_value=math.nan)}),
        "context.cart_value",
    ),
    (
        "Decide",
        lambda c: _decide_req(c, context={"cart_value": _value(double_value=math.inf)}),
        "context.cart_value",
    ),
    (
        "Decide",
        lambda c: _decide_req(c, context={"cart_value": _value(string_value="12")}),
        "context.cart_value",
    ),
    ("Decide", lambda c: _decide_req(c, context={"device": _value()}), "context.device"),
    ("Decide", lambda c: _decide_req(c, context={"blob": _deep(9)}), "context.blob"),
    (
        "Decide",
        lambda c: _decide_req(c, context={"device": _value(string_value=LONG)}),
        "context.device",
    ),
    (
        "Decide",
        lambda c: _decide_req(
            c, context={"at": _value(timestamp_value=timestamp_pb2.Timestamp(seconds=10**12))}
        ),
        "context.at",
    ),
    (
        "Decide",
        lambda c: _decide_req(c, context={f"k{i}": _value(bool_value=True) for i in range(129)}),
        "context",
    ),
    # Check
    (
        "Check",
        lambda c: decision_pb2.CheckRequest(
            request_id="r", customer_id=c, action_id="nope", channel="email"
        ),
        "action_id",
    ),
    (
        "Check",
        lambda c: decision_pb2.CheckRequest(
            request_id="r", customer_id=c, action_id="welcome_email", channel="fax"
        ),
        "channel",
    ),
    (
        "Check",
        lambda c: decision_pb2.CheckRequest(
            customer_id=c, action_id="welcome_email", channel="email", record=True
        ),
        "request_id",
    ),
    (
        "Check",
        lambda c: decision_pb2.CheckRequest(
            request_id="r",
            customer_id=c,
            action_id="welcome_email",
            channel="email",
            decision_id="bad id",
        ),
        "decision_id",
    ),
    # Track: one good event first -- a malformed batch writes nothing at all
    ("Track", lambda c: decision_pb2.TrackRequest(), "events"),
    (
        "Track",
        lambda c: decision_pb2.TrackRequest(events=[_event(c), _event(c, event_id="a b")]),
        "events[1].event_id",
    ),
    (
        "Track",
        lambda c: decision_pb2.TrackRequest(events=[_event(c), _event(c, customer_id="")]),
        "events[1].customer_id",
    ),
    (
        "Track",
        lambda c: decision_pb2.TrackRequest(events=[_event(c), _event(c, timestamp=None)]),
        "events[1].timestamp",
    ),
    (
        "Track",
        lambda c: decision_pb2.TrackRequest(
            events=[_event(c), _event(c, timestamp=_stamp(_now() + timedelta(hours=3)))]
        ),
        "events[1].timestamp",
    ),
    (
        "Track",
        lambda c: decision_pb2.TrackRequest(
            events=[_event(c), _event(c, timestamp=timestamp_pb2.Timestamp(seconds=-5))]
        ),
        "events[1].timestamp",
    ),
    (
        "Track",
        lambda c: decision_pb2.TrackRequest(events=[_event(c), _event(c, feedback=99)]),
        "events[1].feedback",
    ),
    (
        "Track",
        lambda c: decision_pb2.TrackRequest(
            events=[_event(c), _event(c, total=_value(double_value=math.nan))]
        ),
        "events[1].properties.total",
    ),
    (
        "Track",
        lambda c: decision_pb2.TrackRequest(
            events=[_event(c), _event(c, feedback=decision_pb2.FEEDBACK_KIND_CLICK)]
        ),
        "events[1].decision_id",
    ),
    ("Track", lambda c: decision_pb2.TrackRequest(events=[_event(c)] * 501), "events"),
    # UpdateProfile
    ("UpdateProfile", lambda c: _profile_req(c, source=""), "source"),
    ("UpdateProfile", lambda c: _profile_req(c, customer_id="x\ny"), "customer_id"),
    ("UpdateProfile", lambda c: _profile_req(c, timestamp=None), "timestamp"),
    (
        "UpdateProfile",
        lambda c: _profile_req(c, timestamp=_stamp(_now() + timedelta(days=30))),
        "timestamp",
    ),
    (
        "UpdateProfile",
        lambda c: _profile_req(c, traits={"shoe_size": _value(int_value=44)}),
        "traits.shoe_size",
    ),
    (
        "UpdateProfile",
        lambda c: _profile_req(c, traits={"orders_count": _value(string_value="3")}),
        "traits.orders_count",
    ),
    (
        "UpdateProfile",
        lambda c: _profile_req(c, traits={"plan": _value(string_value="platinum")}),
        "traits.plan",
    ),
    (
        "UpdateProfile",
        lambda c: _profile_req(c, traits={"lifetime_value": _value(double_value=-math.inf)}),
        "traits.lifetime_value",
    ),
    (
        "UpdateProfile",
        lambda c: _profile_req(c, consents=[_consent("telepathy", GRANTED)]),
        "consents[0].purpose",
    ),
    (
        "UpdateProfile",
        lambda c: _profile_req(
            c, consents=[_consent("push_marketing", decision_pb2.CONSENT_STATE_UNSPECIFIED)]
        ),
        "consents[0].state",
    ),
    (
        "UpdateProfile",
        lambda c: _profile_req(c, consents=[_consent("push_marketing", 7)]),
        "consents[0].state",
    ),
    (
        "UpdateProfile",
        lambda c: _profile_req(
            c, consents=[_consent("push_marketing", GRANTED), _consent("push_marketing", GRANTED)]
        ),
        "consents[1].purpose",
    ),
    ("UpdateProfile", lambda c: _profile_req(c, segments=["vip", "a b"]), "segments.segments[1]"),
    ("UpdateProfile", lambda c: _profile_req(c, segments=["vip", ""]), "segments.segments[1]"),
    ("UpdateProfile", lambda c: _profile_req(c, segments=["x" * 129]), "segments.segments[0]"),
    ("UpdateProfile", lambda c: _profile_req(c, segments=["vip", "vip"]), "segments.segments[1]"),
    (
        "UpdateProfile",
        lambda c: _profile_req(c, segments=[f"s{i}" for i in range(257)]),
        "segments.segments",
    ),
]


@pytest.mark.parametrize(
    ("method", "build", "field"),
    INVALID,
    ids=[f"{m}-{f}-{i}" for i, (m, _, f) in enumerate(INVALID)],
)
def test_invalid_input_is_rejected_naming_the_field_and_writes_nothing(
    *,
    stub: Any,
    client: ArbiterClient,
    arbiter_server: ServerHandle,
    customer: str,
    method: str,
    build: Callable[[str], Any],
    field: str,
) -> None:
    _us_customer(client, customer, "personalization")
    before = arbiter_server.export(customer)
    with pytest.raises(grpc.RpcError) as err:
        getattr(stub, method)(build(customer), timeout=5)
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    details = err.value.details() or ""
    # The field, or a path inside it (``context.blob[0][0]...: nested deeper than ...``).
    assert details.startswith(field) and details[len(field)] in ":.[", details
    assert LONG not in details
    assert arbiter_server.export(customer) == before


# =========================================================================== fail safe, errors


def test_store_timeout_answers_within_the_deadline_granting_nothing(
    stub: Any, client: ArbiterClient, arbiter_server: ServerHandle, customer: str
) -> None:
    _us_customer(client, customer, "personalization", "email_marketing")
    client.track([Event(customer, "signed_up", {"channel": "web"}, timestamp=_now())])
    before = arbiter_server.export(customer)
    arbiter_server.store.latency_s = 2.0
    try:
        started = time.monotonic()
        reply = stub.Decide(
            _decide_req(customer, placement="", channels=["email", "in_app"], explain=True),
            timeout=0.5,
        )
        elapsed = time.monotonic() - started
    finally:
        arbiter_server.store.latency_s = 0.0
    assert elapsed < 0.5
    assert not reply.actions
    assert reply.degradations
    assert {d.reason for d in reply.degradations} == {decision_pb2.REASON_STATE_UNAVAILABLE}
    assert arbiter_server.export(customer) == before


def test_unknown_commit_outcome_withholds_capped_grants(
    stub: Any, client: ArbiterClient, arbiter_server: ServerHandle, customer: str
) -> None:
    _us_customer(client, customer, "personalization")

    async def failing(*args: Any, **kwargs: Any) -> Any:
        raise StoreUnavailable("commit_decision", "injected")

    arbiter_server.store.commit_decision = failing  # type: ignore[method-assign]
    try:
        reply = _decide(stub, customer, explain=True)
    finally:
        del arbiter_server.store.commit_decision
    assert not reply.actions
    assert any(d.reason == decision_pb2.REASON_STATE_UNAVAILABLE for d in reply.degradations)
    assert {c.action_id: c.reason for c in reply.candidates}["default_home_banner"] == (
        decision_pb2.REASON_STATE_UNAVAILABLE
    )


def test_unexpected_errors_are_internal_without_details(
    stub: Any, arbiter_server: ServerHandle, customer: str
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals /etc/passwd")

    arbiter_server.store.update_profile = broken  # type: ignore[method-assign]
    try:
        with pytest.raises(grpc.RpcError) as err:
            stub.UpdateProfile(_profile_req(customer), timeout=5)
    finally:
        del arbiter_server.store.update_profile
    assert err.value.code() is grpc.StatusCode.INTERNAL
    details = err.value.details() or ""
    assert details.startswith("internal error (ref ")
    assert "secret" not in details and "Traceback" not in details


def test_track_reapplies_after_a_journey_state_conflict_then_aborts(
    stub: Any, arbiter_server: ServerHandle, customer: str
) -> None:
    store = arbiter_server.store
    original = store.apply_event
    conflicts = {"left": 1}

    async def racing(effects: Any, **kwargs: Any) -> Any:
        if conflicts["left"] > 0:
            conflicts["left"] -= 1
            raise StateConflict("onboarding", None, "someone-else")
        return await original(effects, **kwargs)

    store.apply_event = racing  # type: ignore[method-assign]
    try:
        first = stub.Track(decision_pb2.TrackRequest(events=[_event(customer)]), timeout=5)
        assert [r.status for r in first.results] == [decision_pb2.EVENT_STATUS_APPLIED]
        conflicts["left"] = 100  # never settles: bounded retries, then ABORTED
        with pytest.raises(grpc.RpcError) as err:
            stub.Track(decision_pb2.TrackRequest(events=[_event(customer)]), timeout=5)
    finally:
        del store.apply_event
    assert err.value.code() is grpc.StatusCode.ABORTED
    assert arbiter_server.export(customer)["events"]["order_placed"]["total"] == 1


def test_writes_are_unavailable_while_the_store_is_down(
    stub: Any, arbiter_server: ServerHandle, customer: str
) -> None:
    arbiter_server.store.unavailable = True
    try:
        for method, request in (
            ("Track", decision_pb2.TrackRequest(events=[_event(customer)])),
            ("UpdateProfile", _profile_req(customer)),
        ):
            with pytest.raises(grpc.RpcError) as err:
                getattr(stub, method)(request, timeout=5)
            assert err.value.code() is grpc.StatusCode.UNAVAILABLE, method
        check = stub.Check(
            decision_pb2.CheckRequest(
                request_id=uuid.uuid4().hex,
                customer_id=customer,
                action_id="default_home_banner",
                channel="in_app",
                record=True,
            ),
            timeout=5,
        )
    finally:
        arbiter_server.store.unavailable = False
    assert not check.allowed and not check.recorded
    assert check.reason == decision_pb2.REASON_STATE_UNAVAILABLE
    assert check.degradations


# =========================================================================== shutdown


def test_graceful_shutdown_finishes_in_flight_calls_and_refuses_new_ones(
    start_server: Callable[..., ServerHandle], new_customer: Callable[[Any], str]
) -> None:
    handle = start_server(grace_period_s=5.0)
    try:
        customer = new_customer(handle.policy)
        with grpc.insecure_channel(handle.address) as ch:
            stub = decision_pb2_grpc.DecisionServiceStub(ch)
            profile = _profile_req(customer, traits={"region": _value(string_value="US")})
            profile.consents.append(_consent("personalization", GRANTED))
            stub.UpdateProfile(profile, timeout=5)
            handle.store.latency_s = 0.4  # every store call now takes a while
            in_flight = [stub.Decide.future(_decide_req(customer), timeout=10) for _ in range(4)]
            time.sleep(0.2)
            stopping = handle.submit(handle.server.stop())
            time.sleep(0.1)
            with pytest.raises(grpc.RpcError) as err:
                stub.Decide(_decide_req(customer), timeout=5)
            assert err.value.code() is grpc.StatusCode.UNAVAILABLE
            replies = [f.result() for f in in_flight]
            stopping.result(10)
        # All four finished OK; the banner's cap (3 a day) was re-checked at commit,
        # so the one that lost the race answers without it rather than overshooting.
        assert not any(r.degradations for r in replies)
        assert sorted(len(r.actions) for r in replies) == [0, 1, 1, 1]
        assert len({r.decision_id for r in replies}) == 4
    finally:
        handle.store.latency_s = 0.0


def test_sigterm_stops_a_served_process_cleanly() -> None:
    env = {**os.environ, "ARBITER_POLICIES": EXAMPLES, "ARBITER_LOG_LEVEL": "info"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "arbiter.server.cli",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stderr is not None
    reader = threading.Thread(target=lambda: [lines.put(x) for x in proc.stderr], daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        port = None
        deadline = time.monotonic() + 20
        while port is None:
            line = lines.get(timeout=max(deadline - time.monotonic(), 0.1))
            match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
            port = int(match.group(1)) if match else None
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            health = health_pb2_grpc.HealthStub(ch)
            while True:
                status = health.Check(health_pb2.HealthCheckRequest(), timeout=5).status
                if status == health_pb2.HealthCheckResponse.SERVING:
                    break
                assert time.monotonic() < deadline
                time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    reader.join(5)
    proc.stderr.close()
    rest = []
    while not lines.empty():
        rest.append(lines.get())
    assert any("stopped" in line for line in rest)
