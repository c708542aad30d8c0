"""Client enums stay in step with the proto enums; responses and requests convert both ways."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

import grpc
import pytest

from arbiter.v1 import decision_pb2
from arbiter_client import (
    ArbiterError,
    CandidateOutcome,
    ConsentState,
    ConsentUpdate,
    DeadlineExceededError,
    Event,
    FeedbackKind,
    InternalError,
    InvalidArgumentError,
    Reason,
    RetryPolicy,
    Timeouts,
    UnavailableError,
    ValueConversionError,
    _convert,
)
from arbiter_client._errors import error_from_code


@pytest.mark.parametrize("py_enum", list(_convert.ENUM_PREFIXES), ids=lambda e: e.__name__)
def test_python_enum_mirrors_proto_enum(py_enum: type[StrEnum]) -> None:
    proto_enum, prefix = _convert.ENUM_PREFIXES[py_enum]
    proto_names = {name.removeprefix(prefix) for name, _ in proto_enum.items()}
    assert set(py_enum.__members__) == proto_names
    for name, number in proto_enum.items():
        member = py_enum[name.removeprefix(prefix)]
        assert _convert.enum_from_proto(py_enum, number) is member
        assert _convert.enum_to_proto(member) == number


def test_unknown_enum_number_reads_as_unspecified() -> None:
    assert _convert.enum_from_proto(Reason, 9_999) is Reason.UNSPECIFIED


def test_decide_request() -> None:
    request = _convert.decide_request(
        request_id="r-1",
        customer_id="c-1",
        placement="home",
        channels="push",
        context={"n": 1},
        limit=2,
        explain=True,
        dry_run=True,
    )
    assert list(request.channels) == ["push"]  # a bare str is one channel
    assert request.context["n"].int_value == 1
    assert (request.limit, request.explain, request.dry_run) == (2, True, True)


def test_track_request_and_feedback() -> None:
    when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    request = _convert.track_request(
        [
            Event("c-1", "purchase", {"amount": 12.5}, event_id="e-1", timestamp=when),
            Event("c-1", "click", event_id="e-2", timestamp=when, feedback=FeedbackKind.CLICK),
        ]
    )
    first, second = request.events
    assert first.timestamp.ToDatetime(tzinfo=UTC) == when
    assert first.properties["amount"].double_value == 12.5
    assert first.feedback == decision_pb2.FEEDBACK_KIND_UNSPECIFIED
    assert second.feedback == decision_pb2.FEEDBACK_KIND_CLICK


def test_track_request_rejects_naive_timestamp() -> None:
    with pytest.raises(ValueConversionError, match=r"events\[0\].timestamp"):
        _convert.track_request([Event("c", "t", timestamp=datetime(2024, 1, 1))])


def test_update_profile_request() -> None:
    when = datetime(2024, 5, 5, tzinfo=UTC)
    request = _convert.update_profile_request(
        request_id="r",
        customer_id="c",
        source="crm",
        timestamp=when,
        traits={"tier": "gold", "gone": None},
        consents=[ConsentUpdate("push", ConsentState.DENIED, expires_at=when)],
        do_not_contact=None,
    )
    assert request.traits["gone"].WhichOneof("kind") == "null_value"
    assert request.consents[0].state == decision_pb2.CONSENT_STATE_DENIED
    assert request.consents[0].HasField("expires_at")
    assert not request.HasField("do_not_contact")
    assert not request.HasField("segments")  # None: unchanged


def test_update_profile_request_segments() -> None:
    def build(segments: object) -> decision_pb2.UpdateProfileRequest:
        return _convert.update_profile_request(
            request_id="r",
            customer_id="c",
            source="cdp",
            timestamp=datetime(2024, 5, 5, tzinfo=UTC),
            traits=None,
            consents=(),
            do_not_contact=None,
            segments=segments,  # type: ignore[arg-type]
        )

    assert list(build(["vip", "eu"]).segments.segments) == ["vip", "eu"]
    assert list(build("vip").segments.segments) == ["vip"]
    empty = build([])  # the empty membership is set, not absent
    assert empty.HasField("segments") and not empty.segments.segments


def test_decision_from_response() -> None:
    response = decision_pb2.DecideResponse(
        decision_id="d-1",
        request_id="r-1",
        policy_version="v1+sha256:ab",
        actions=[
            decision_pb2.ChosenAction(
                action_id="a", channel="push", journey_id="j", tags=["t"], score=2.0
            )
        ],
        candidates=[
            decision_pb2.Candidate(
                action_id="a",
                channel="push",
                outcome=decision_pb2.CANDIDATE_OUTCOME_SELECTED,
                reason=decision_pb2.REASON_SELECTED,
                score=2.0,
            ),
            decision_pb2.Candidate(
                action_id="b",
                channel="email",
                outcome=decision_pb2.CANDIDATE_OUTCOME_FILTERED,
                reason=decision_pb2.REASON_CONSENT_DENIED,
                detail="email_marketing denied",
            ),
        ],
        degradations=[decision_pb2.Degradation(reason=decision_pb2.REASON_STATE_UNAVAILABLE)],
    )
    response.actions[0].payload["template"].string_value = "welcome"
    decision = _convert.decision(response, request_id="ignored")
    assert decision.request_id == "r-1"
    assert decision.decided_at is None
    assert decision.action is not None
    assert decision.action.payload == {"template": "welcome"}
    assert decision.action.tags == ("t",)
    selected, filtered = decision.candidates
    assert (selected.outcome, selected.reason, selected.score) == (
        CandidateOutcome.SELECTED,
        Reason.SELECTED,
        2.0,
    )
    assert (filtered.outcome, filtered.reason, filtered.score) == (
        CandidateOutcome.FILTERED,
        Reason.CONSENT_DENIED,
        None,
    )
    assert decision.degraded
    assert not decision.fallback


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, InvalidArgumentError),
        (grpc.StatusCode.UNAVAILABLE, UnavailableError),
        (grpc.StatusCode.DEADLINE_EXCEEDED, DeadlineExceededError),
        (grpc.StatusCode.UNKNOWN, InternalError),
        (grpc.StatusCode.ABORTED, ArbiterError),
    ],
)
def test_error_classes(code: grpc.StatusCode, cls: type[ArbiterError]) -> None:
    error = error_from_code(code, "customer_id: too long", request_id="r")
    assert type(error) is cls
    assert error.code is code
    assert error.request_id == "r"
    assert "customer_id: too long" in str(error)


def test_settings_validation() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="gRPC's limit"):
        RetryPolicy(max_attempts=6)  # gRPC would silently clamp it to 5
    with pytest.raises(ValueError, match="max_tokens"):
        RetryPolicy(max_tokens=0)
    with pytest.raises(ValueError, match="decide"):
        Timeouts(decide=0)
