"""arbiter_client against a real gRPC server on a free port, running a fake DecisionService.

The fake implements the generated servicer and behaves by customer id:
"flaky" fails the first attempt of each request_id with UNAVAILABLE, "down"
always does, "slow" never answers in time, "" is INVALID_ARGUMENT. It records
every call, so tests can see retries and what went over the wire.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent import futures
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from arbiter.v1 import decision_pb2, decision_pb2_grpc
from arbiter_client import (
    ArbiterClient,
    AsyncArbiterClient,
    CandidateOutcome,
    ConsentState,
    ConsentUpdate,
    DeadlineExceededError,
    Event,
    EventStatus,
    FallbackReason,
    FeedbackKind,
    InvalidArgumentError,
    ProfileFieldKind,
    ProfileWriteOutcome,
    Reason,
    ResourceExhaustedError,
    RetryPolicy,
    Timeouts,
    UnavailableError,
    from_value_map,
)

WHEN = datetime(2024, 11, 1, 12, 0, tzinfo=UTC)


class FakeDecisionService(decision_pb2_grpc.DecisionServiceServicer):  # type: ignore[misc]
    """Test double for the server side; it tests the client, not Arbiter."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[tuple[str, str]] = []  # (method, request_id or event ids)
        self.attempts: Counter[str] = Counter()
        self.metadata: list[dict[str, str]] = []
        self.seen_events: set[str] = set()

    def _enter(
        self, method: str, key: str, customer_id: str, context: grpc.ServicerContext
    ) -> None:
        with self.lock:
            self.calls.append((method, key))
            self.attempts[key] += 1
            attempt = self.attempts[key]
            self.metadata.append(dict(context.invocation_metadata()))
        if customer_id == "":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "customer_id: required")
        if customer_id == "down" or (customer_id == "flaky" and attempt == 1):
            context.abort(grpc.StatusCode.UNAVAILABLE, "not ready")
        if customer_id == "cancelled" or (customer_id == "stopping" and attempt == 1):
            context.abort(grpc.StatusCode.CANCELLED, "server stopping")  # what a shutdown sends
        if customer_id == "busy":
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "server overloaded")
        if customer_id == "slow":
            stop = time.monotonic() + 5
            while context.is_active() and time.monotonic() < stop:
                time.sleep(0.005)

    def Decide(
        self, request: decision_pb2.DecideRequest, context: grpc.ServicerContext
    ) -> decision_pb2.DecideResponse:
        self._enter("Decide", request.request_id, request.customer_id, context)
        response = decision_pb2.DecideResponse(
            decision_id=f"d-{request.request_id}",
            request_id=request.request_id,
            policy_version="test+sha256:00",
            dry_run=request.dry_run,
        )
        response.decided_at.FromDatetime(WHEN)
        for channel in request.channels or ["in_app"]:
            action = response.actions.add(
                action_id=f"welcome_{channel}",
                journey_id="onboarding",
                stage="day1",
                channel=channel,
                variant="b",
                tracking_id=f"t-{channel}",
                score=1.5,
                tags=["onboarding"],
            )
            # Echo the context, so tests see the typed values round trip.
            for key, value in request.context.items():
                action.payload[key].CopyFrom(value)
        response.consent.add(
            purpose="push",
            state=decision_pb2.CONSENT_STATE_GRANTED,
            allowed=True,
            reason=decision_pb2.REASON_ELIGIBLE,
            source="cmp",
        )
        if request.explain:
            response.candidates.add(
                action_id="welcome_in_app",
                channel="in_app",
                outcome=decision_pb2.CANDIDATE_OUTCOME_SELECTED,
                reason=decision_pb2.REASON_SELECTED,
                score=1.5,
            )
            response.candidates.add(
                action_id="promo_email",
                channel="email",
                outcome=decision_pb2.CANDIDATE_OUTCOME_FILTERED,
                reason=decision_pb2.REASON_CAPPED,
                detail="cap email/day reached (1/1)",
            )
        return response

    def Check(
        self, request: decision_pb2.CheckRequest, context: grpc.ServicerContext
    ) -> decision_pb2.CheckResponse:
        self._enter("Check", request.request_id, request.customer_id, context)
        allowed = request.channel != "sms"
        return decision_pb2.CheckResponse(
            allowed=allowed,
            reason=decision_pb2.REASON_ELIGIBLE if allowed else decision_pb2.REASON_CONSENT_DENIED,
            recorded=allowed and request.record,
            policy_version="test+sha256:00",
        )

    def Track(
        self, request: decision_pb2.TrackRequest, context: grpc.ServicerContext
    ) -> decision_pb2.TrackResponse:
        key = ",".join(e.event_id for e in request.events)
        self._enter("Track", key, request.events[0].customer_id if request.events else "", context)
        response = decision_pb2.TrackResponse()
        for event in request.events:
            if event.type == "unknown_type":
                response.results.add(
                    event_id=event.event_id,
                    status=decision_pb2.EVENT_STATUS_REJECTED,
                    field="type",
                    detail="unknown event type",
                )
            elif event.event_id in self.seen_events:
                response.results.add(
                    event_id=event.event_id, status=decision_pb2.EVENT_STATUS_DUPLICATE
                )
            else:
                self.seen_events.add(event.event_id)
                response.results.add(
                    event_id=event.event_id, status=decision_pb2.EVENT_STATUS_APPLIED
                )
        return response

    def UpdateProfile(
        self, request: decision_pb2.UpdateProfileRequest, context: grpc.ServicerContext
    ) -> decision_pb2.UpdateProfileResponse:
        self._enter("UpdateProfile", request.request_id, request.customer_id, context)
        response = decision_pb2.UpdateProfileResponse()
        stale = request.timestamp.ToDatetime(tzinfo=UTC) < WHEN
        outcome = (
            decision_pb2.PROFILE_WRITE_OUTCOME_IGNORED_STALE
            if stale
            else decision_pb2.PROFILE_WRITE_OUTCOME_APPLIED
        )
        for name in sorted(request.traits):
            result = response.results.add(
                kind=decision_pb2.PROFILE_FIELD_KIND_TRAIT, name=name, outcome=outcome
            )
            result.stored_timestamp.FromDatetime(
                max(WHEN, request.timestamp.ToDatetime(tzinfo=UTC))
            )
        for consent in request.consents:
            response.results.add(
                kind=decision_pb2.PROFILE_FIELD_KIND_CONSENT, name=consent.purpose, outcome=outcome
            )
        if request.HasField("do_not_contact"):
            response.results.add(
                kind=decision_pb2.PROFILE_FIELD_KIND_DO_NOT_CONTACT,
                name="do_not_contact",
                outcome=outcome,
            )
        return response


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, FakeDecisionService]]:
    fake = FakeDecisionService()
    grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    decision_pb2_grpc.add_DecisionServiceServicer_to_server(fake, grpc_server)
    port = grpc_server.add_insecure_port("127.0.0.1:0")
    grpc_server.start()
    yield f"127.0.0.1:{port}", fake
    grpc_server.stop(None).wait()


@pytest.fixture
def target(server: tuple[str, FakeDecisionService]) -> str:
    return server[0]


@pytest.fixture
def fake(server: tuple[str, FakeDecisionService]) -> FakeDecisionService:
    return server[1]


@pytest.fixture
def client(target: str) -> Iterator[ArbiterClient]:
    # Generous decide deadline for the happy paths: CI machines stall.
    with ArbiterClient(target, timeouts=Timeouts(decide=2.0, check=2.0)) as arbiter:
        yield arbiter


def _attempts(fake: FakeDecisionService, method: str, key: str) -> int:
    with fake.lock:
        return sum(1 for m, k in fake.calls if (m, k) == (method, key))


# -- sync client -------------------------------------------------------------


def test_decide_happy_path(client: ArbiterClient) -> None:
    context = {
        "cart_value": 59.9,
        "items": 3,
        "vip": True,
        "seen_at": WHEN,
        "tags": ["a", "b"],
        "device": {"os": "ios", "version": 17},
        "coupon": None,
    }
    decision = client.decide(
        "cust-1", "home_banner", channels=["in_app", "push"], context=context, explain=True
    )
    assert not decision.fallback
    assert uuid.UUID(decision.request_id)  # generated
    assert decision.decision_id == f"d-{decision.request_id}"
    assert decision.policy_version == "test+sha256:00"
    assert decision.decided_at == WHEN
    assert [a.channel for a in decision.actions] == ["in_app", "push"]
    action = decision.actions[0]
    assert (action.action_id, action.journey_id, action.stage, action.variant) == (
        "welcome_in_app",
        "onboarding",
        "day1",
        "b",
    )
    assert action.tracking_id == "t-in_app"
    assert action.payload == context  # int stayed int, datetime stayed datetime
    assert decision.consent[0].state is ConsentState.GRANTED
    assert [(c.outcome, c.reason) for c in decision.candidates] == [
        (CandidateOutcome.SELECTED, Reason.SELECTED),
        (CandidateOutcome.FILTERED, Reason.CAPPED),
    ]
    assert decision.candidates[1].score is None
    assert not decision.degraded


def test_decide_uses_the_given_request_id(client: ArbiterClient) -> None:
    decision = client.decide("cust-1", "home", request_id="req-42", dry_run=True)
    assert decision.request_id == "req-42"
    assert decision.dry_run


def test_retry_on_unavailable_keeps_the_request_id(
    client: ArbiterClient, fake: FakeDecisionService
) -> None:
    decision = client.decide("flaky", "home", request_id="req-flaky")
    assert not decision.fallback
    assert decision.decision_id == "d-req-flaky"
    assert _attempts(fake, "Decide", "req-flaky") == 2


def test_cancelled_by_a_stopping_server_is_retried_like_unavailable(
    client: ArbiterClient, fake: FakeDecisionService
) -> None:
    """A server that stops cancels calls it had received; a retry reaches another one."""
    decision = client.decide("stopping", "home", request_id="req-stopping", timeout=2.0)
    assert not decision.fallback
    assert _attempts(fake, "Decide", "req-stopping") == 2
    fallback = client.decide("cancelled", "home", request_id="req-cancelled")
    assert fallback.fallback
    assert fallback.fallback_reason is FallbackReason.UNAVAILABLE
    checked = client.check("cancelled", "welcome_push", "push", request_id="req-cancelled-c")
    assert checked.fallback and not checked.allowed


def test_async_client_retries_cancelled_like_unavailable(
    target: str, fake: FakeDecisionService
) -> None:
    async def scenario() -> None:
        async with AsyncArbiterClient(target, timeouts=Timeouts(decide=2.0)) as arbiter:
            decision = await arbiter.decide("stopping", "home", request_id="req-stopping-aio")
            assert not decision.fallback
            fallback = await arbiter.decide("cancelled", "home", request_id="req-cancelled-aio")
            assert fallback.fallback_reason is FallbackReason.UNAVAILABLE

    asyncio.run(scenario())
    assert _attempts(fake, "Decide", "req-stopping-aio") == 2


def test_unavailable_after_retries_falls_back(target: str, fake: FakeDecisionService) -> None:
    with ArbiterClient(target, timeouts=Timeouts(decide=2.0)) as arbiter:
        decision = arbiter.decide("down", "home", request_id="req-down")
        assert decision.fallback
        assert decision.fallback_reason is FallbackReason.UNAVAILABLE
        assert decision.actions == ()
        assert decision.action is None
        assert isinstance(decision.error, UnavailableError)
        assert _attempts(fake, "Decide", "req-down") == RetryPolicy().max_attempts

        with pytest.raises(UnavailableError) as caught:
            arbiter.decide("down", "home", request_id="req-down-2", raise_on_error=True)
        assert caught.value.code is grpc.StatusCode.UNAVAILABLE
        assert caught.value.request_id == "req-down-2"


def test_retries_follow_the_retry_policy_given(target: str, fake: FakeDecisionService) -> None:
    """gRPC does the retries, from the service config built from ``RetryPolicy``."""
    timeouts = Timeouts(decide=2.0)
    with ArbiterClient(target, timeouts=timeouts, retry=RetryPolicy(max_attempts=1)) as arbiter:
        assert arbiter.decide("flaky", "home", request_id="req-once").fallback
    assert _attempts(fake, "Decide", "req-once") == 1
    with ArbiterClient(target, timeouts=timeouts, retry=RetryPolicy(max_attempts=5)) as arbiter:
        assert arbiter.decide("down", "home", request_id="req-five").fallback
    assert _attempts(fake, "Decide", "req-five") == 5


def test_retry_throttling_stops_retries_against_a_server_that_keeps_refusing(
    target: str, fake: FakeDecisionService
) -> None:
    """No retry storm: each failed attempt spends a token (10), retries stop at half."""
    with ArbiterClient(target, timeouts=Timeouts(decide=2.0)) as arbiter:
        for i in range(6):
            assert arbiter.decide("down", "home", request_id=f"req-throttle-{i}").fallback
    attempts = [_attempts(fake, "Decide", f"req-throttle-{i}") for i in range(6)]
    assert attempts[0] == 3
    assert attempts[-3:] == [1, 1, 1]
    assert sum(attempts) < 6 * 3


def test_a_load_shedding_refusal_falls_back_at_once_without_a_retry(
    target: str, fake: FakeDecisionService
) -> None:
    with ArbiterClient(target, timeouts=Timeouts(decide=2.0)) as arbiter:
        decision = arbiter.decide("busy", "home", request_id="req-busy")
        assert decision.fallback
        assert decision.fallback_reason is FallbackReason.OVERLOADED
        assert decision.actions == ()
        assert _attempts(fake, "Decide", "req-busy") == 1  # no retry storm on an overloaded server
        checked = arbiter.check("busy", "a", "email", request_id="req-busy-check")
        assert checked.fallback and not checked.allowed
        with pytest.raises(ResourceExhaustedError):
            arbiter.decide("busy", "home", request_id="req-busy-2", raise_on_error=True)


def test_deadline_fallback_is_fast(target: str, fake: FakeDecisionService) -> None:
    with ArbiterClient(target) as arbiter:  # default decide deadline: 50 ms
        started = time.monotonic()
        decision = arbiter.decide("slow", "home", request_id="req-slow")
        elapsed = time.monotonic() - started
    assert decision.fallback
    assert decision.fallback_reason is FallbackReason.DEADLINE_EXCEEDED
    assert decision.actions == ()
    assert isinstance(decision.error, DeadlineExceededError)
    assert elapsed < 1.0  # the server would take 5 s
    assert _attempts(fake, "Decide", "req-slow") == 1  # DEADLINE_EXCEEDED is not retried


def test_deadline_raises_when_asked(target: str) -> None:
    with ArbiterClient(target, raise_on_error=True) as arbiter:
        with pytest.raises(DeadlineExceededError):
            arbiter.decide("slow", "home")
        # A per-call flag overrides the client's.
        assert arbiter.decide("slow", "home", raise_on_error=False).fallback


def test_invalid_argument_raises(client: ArbiterClient, fake: FakeDecisionService) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        client.decide("", "home", request_id="req-bad")
    assert caught.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details == "customer_id: required"
    assert _attempts(fake, "Decide", "req-bad") == 1


def test_unreachable_server_falls_back() -> None:
    with socket.socket() as sock:  # a port with nothing listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with ArbiterClient(f"127.0.0.1:{port}", timeouts=Timeouts(decide=1.0)) as arbiter:
        decision = arbiter.decide("cust-1", "home")
    assert decision.fallback
    assert decision.fallback_reason in {
        FallbackReason.UNAVAILABLE,
        FallbackReason.DEADLINE_EXCEEDED,
    }


def test_check(client: ArbiterClient) -> None:
    result = client.check("cust-1", "welcome_push", "push", record=True, request_id="chk-1")
    assert (result.allowed, result.reason, result.recorded) == (True, Reason.ELIGIBLE, True)
    assert result.request_id == "chk-1"
    refused = client.check("cust-1", "welcome_sms", "sms", record=True)
    assert (refused.allowed, refused.reason, refused.recorded) == (
        False,
        Reason.CONSENT_DENIED,
        False,
    )


def test_check_falls_back_to_not_allowed(target: str) -> None:
    with ArbiterClient(target) as arbiter:
        result = arbiter.check("slow", "welcome_push", "push", record=True)
    assert result.fallback
    assert not result.allowed
    assert result.reason is Reason.STATE_UNAVAILABLE


def test_track(client: ArbiterClient) -> None:
    purchase = Event("cust-1", "purchase", {"amount": 12.5, "sku": "A-1"}, timestamp=WHEN)
    click = Event(
        "cust-1",
        "message_click",
        decision_id="d-1",
        tracking_id="t-push",
        feedback=FeedbackKind.CLICK,
    )
    bad = Event("cust-1", "unknown_type")
    result = client.track([purchase, click, bad])
    assert [r.event_id for r in result.results] == [purchase.event_id, click.event_id, bad.event_id]
    assert [r.status for r in result.results] == [
        EventStatus.APPLIED,
        EventStatus.APPLIED,
        EventStatus.REJECTED,
    ]
    assert result.rejected[0].field == "type"
    again = client.track(purchase)  # one event, same event_id
    assert again.duplicates[0].event_id == purchase.event_id


def test_update_profile(client: ArbiterClient) -> None:
    later = WHEN + timedelta(hours=1)
    result = client.update_profile(
        "cust-1",
        source="crm",
        timestamp=later,
        traits={"tier": "gold", "lifetime_value": 1234, "nickname": None},
        consents=[
            ConsentUpdate("push", ConsentState.GRANTED, expires_at=later + timedelta(days=365))
        ],
        do_not_contact=False,
    )
    assert [(r.kind, r.name) for r in result.results] == [
        (ProfileFieldKind.TRAIT, "lifetime_value"),
        (ProfileFieldKind.TRAIT, "nickname"),
        (ProfileFieldKind.TRAIT, "tier"),
        (ProfileFieldKind.CONSENT, "push"),
        (ProfileFieldKind.DO_NOT_CONTACT, "do_not_contact"),
    ]
    assert len(result.applied) == 5
    assert result.results[0].stored_timestamp == later
    stale = client.update_profile(
        "cust-1", source="crm", timestamp=WHEN - timedelta(days=1), traits={"tier": "x"}
    )
    assert stale.results[0].outcome is ProfileWriteOutcome.IGNORED_STALE
    assert stale.stale == stale.results


def test_metadata_is_sent(target: str, fake: FakeDecisionService) -> None:
    with ArbiterClient(
        target, metadata=[("authorization", "Bearer t0k")], timeouts=Timeouts(decide=2.0)
    ) as arbiter:
        arbiter.decide("cust-1", "home", request_id="req-meta")
    with fake.lock:
        index = fake.calls.index(("Decide", "req-meta"))
        assert fake.metadata[index]["authorization"] == "Bearer t0k"


def test_closed_client_refuses_calls(target: str) -> None:
    arbiter = ArbiterClient(target)
    arbiter.close()
    with pytest.raises(ValueError, match="closed"):
        arbiter.decide("cust-1", "home")


# -- asyncio client ---------------------------------------------------------------


def test_async_client(target: str, fake: FakeDecisionService) -> None:
    async def scenario() -> None:
        async with AsyncArbiterClient(target, timeouts=Timeouts(decide=2.0)) as arbiter:
            decision = await arbiter.decide(
                "cust-1", "home", channels="push", context={"n": 7}, explain=True
            )
            assert not decision.fallback
            assert decision.actions[0].channel == "push"
            assert decision.actions[0].payload == {"n": 7}
            assert len(decision.candidates) == 2

            flaky = await arbiter.decide("flaky", "home", request_id="aio-flaky")
            assert not flaky.fallback
            assert _attempts(fake, "Decide", "aio-flaky") == 2

            with pytest.raises(InvalidArgumentError):
                await arbiter.decide("", "home")

            result = await arbiter.check("cust-1", "welcome_push", "push")
            assert result.allowed
            tracked = await arbiter.track(Event("cust-1", "purchase", timestamp=WHEN))
            assert tracked.applied
            profile = await arbiter.update_profile(
                "cust-1", source="crm", timestamp=WHEN, traits={"tier": "gold"}
            )
            assert profile.applied

        # Default 50 ms deadline: the fallback, quickly.
        async with AsyncArbiterClient(target) as arbiter:
            started = time.monotonic()
            slow = await arbiter.decide("slow", "home")
            assert time.monotonic() - started < 1.0
            assert slow.fallback
            assert slow.fallback_reason is FallbackReason.DEADLINE_EXCEEDED
            with pytest.raises(DeadlineExceededError):
                await arbiter.decide("slow", "home", raise_on_error=True)

            down = await arbiter.decide("down", "home", timeout=2.0)
            assert down.fallback_reason is FallbackReason.UNAVAILABLE

    asyncio.run(scenario())


def test_async_closed_client_refuses_calls(target: str) -> None:
    async def scenario() -> None:
        arbiter = AsyncArbiterClient(target)
        await arbiter.close()
        with pytest.raises(ValueError, match="closed"):
            await arbiter.decide("cust-1", "home")

    asyncio.run(scenario())


def test_async_client_with_its_data_in_typed_values(target: str) -> None:
    async def scenario() -> dict[str, object]:
        async with AsyncArbiterClient(target, timeouts=Timeouts(decide=2.0)) as arbiter:
            decision = await arbiter.decide("cust-1", "home", context={"when": WHEN, "big": 2**62})
            return dict(decision.actions[0].payload)

    assert asyncio.run(scenario()) == {"when": WHEN, "big": 2**62}


def test_generated_stub_works_directly(target: str) -> None:
    # The server and other tools use the generated modules directly.
    with grpc.insecure_channel(target) as channel:
        stub = decision_pb2_grpc.DecisionServiceStub(channel)
        response = stub.Decide(
            decision_pb2.DecideRequest(request_id="raw-1", customer_id="c", channels=["push"]),
            timeout=2.0,
        )
    assert from_value_map(response.actions[0].payload) == {}
