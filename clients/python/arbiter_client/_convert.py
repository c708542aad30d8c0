"""Builds ``arbiter.v1`` requests from plain arguments and reads responses into the client's dataclasses."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from google.protobuf import timestamp_pb2

from arbiter.v1 import decision_pb2

from ._types import (
    Action,
    Candidate,
    CandidateOutcome,
    CheckResult,
    ConsentState,
    ConsentUpdate,
    Decision,
    Degradation,
    Event,
    EventResult,
    EventStatus,
    FeedbackKind,
    ProfileFieldKind,
    ProfileFieldResult,
    ProfileUpdateResult,
    ProfileWriteOutcome,
    PurposeConsent,
    Reason,
    TrackResult,
)
from ._values import fill_timestamp, fill_value_map, from_value_map, timestamp_to_datetime

__all__ = [
    "ENUM_PREFIXES",
    "check_request",
    "check_result",
    "decide_request",
    "decision",
    "enum_from_proto",
    "enum_to_proto",
    "track_request",
    "track_result",
    "update_profile_request",
    "update_profile_result",
]

E = TypeVar("E", bound=StrEnum)

# Python enum -> (proto enum, value prefix). Python members are the proto
# value names without the prefix.
ENUM_PREFIXES: dict[type[StrEnum], tuple[Any, str]] = {
    Reason: (decision_pb2.Reason, "REASON_"),
    CandidateOutcome: (decision_pb2.CandidateOutcome, "CANDIDATE_OUTCOME_"),
    ConsentState: (decision_pb2.ConsentState, "CONSENT_STATE_"),
    FeedbackKind: (decision_pb2.FeedbackKind, "FEEDBACK_KIND_"),
    EventStatus: (decision_pb2.EventStatus, "EVENT_STATUS_"),
    ProfileWriteOutcome: (decision_pb2.ProfileWriteOutcome, "PROFILE_WRITE_OUTCOME_"),
    ProfileFieldKind: (decision_pb2.ProfileFieldKind, "PROFILE_FIELD_KIND_"),
}


def _tables() -> tuple[dict[type[StrEnum], dict[int, StrEnum]], dict[tuple[type, str], int]]:
    from_proto: dict[type[StrEnum], dict[int, StrEnum]] = {}
    # Keyed by (enum class, value): members of different StrEnums with the
    # same value compare and hash equal (Reason.DO_NOT_CONTACT ==
    # ProfileFieldKind.DO_NOT_CONTACT == "DO_NOT_CONTACT").
    to_proto: dict[tuple[type, str], int] = {}
    for py_enum, (proto_enum, prefix) in ENUM_PREFIXES.items():
        by_number: dict[int, StrEnum] = {}
        for name, number in proto_enum.items():
            member = py_enum.__members__.get(name.removeprefix(prefix))
            if member is not None:
                by_number[number] = member
                to_proto[py_enum, member.value] = number
        from_proto[py_enum] = by_number
    return from_proto, to_proto


_FROM_PROTO, _TO_PROTO = _tables()


def enum_from_proto(py_enum: type[E], number: int) -> E:
    """The Python member for a proto enum number; unknown numbers read as UNSPECIFIED."""
    member = _FROM_PROTO[py_enum].get(number)
    if member is None:
        return py_enum["UNSPECIFIED"]
    return member  # type: ignore[return-value]  # the table for py_enum holds only its members


def enum_to_proto(member: StrEnum) -> int:
    """The proto enum number of a Python member."""
    return _TO_PROTO[type(member), member.value]


def _timestamp(message: Any, field: str) -> datetime | None:
    if not message.HasField(field):
        return None
    stamp: timestamp_pb2.Timestamp = getattr(message, field)
    return timestamp_to_datetime(stamp, path=field)


def _channels(channels: Sequence[str] | str) -> Sequence[str]:
    # A bare string is one channel, not a sequence of one-letter channels.
    return (channels,) if isinstance(channels, str) else channels


def decide_request(
    *,
    request_id: str,
    customer_id: str,
    placement: str,
    channels: Sequence[str] | str,
    context: Mapping[str, object] | None,
    limit: int,
    explain: bool,
    dry_run: bool,
) -> decision_pb2.DecideRequest:
    """Build a ``DecideRequest``; raises ``ValueConversionError`` for bad context values."""
    request = decision_pb2.DecideRequest(
        request_id=request_id,
        customer_id=customer_id,
        placement=placement,
        channels=_channels(channels),
        limit=limit,
        explain=explain,
        dry_run=dry_run,
    )
    fill_value_map(request.context, context, path="context")
    return request


def check_request(
    *,
    request_id: str,
    customer_id: str,
    action_id: str,
    channel: str,
    record: bool,
    context: Mapping[str, object] | None,
    decision_id: str,
) -> decision_pb2.CheckRequest:
    """Build a ``CheckRequest``."""
    request = decision_pb2.CheckRequest(
        request_id=request_id,
        customer_id=customer_id,
        action_id=action_id,
        channel=channel,
        record=record,
        decision_id=decision_id,
    )
    fill_value_map(request.context, context, path="context")
    return request


def track_request(events: Iterable[Event]) -> decision_pb2.TrackRequest:
    """Build a ``TrackRequest`` from events, in order."""
    request = decision_pb2.TrackRequest()
    for index, event in enumerate(events):
        path = f"events[{index}]"
        message = request.events.add(
            event_id=event.event_id,
            customer_id=event.customer_id,
            type=event.type,
            version=event.version,
            decision_id=event.decision_id,
            tracking_id=event.tracking_id,
        )
        if event.feedback is not None:
            message.feedback = enum_to_proto(FeedbackKind(event.feedback))
        fill_timestamp(message.timestamp, event.timestamp, path=f"{path}.timestamp")
        fill_value_map(message.properties, event.properties, path=f"{path}.properties")
    return request


def update_profile_request(
    *,
    request_id: str,
    customer_id: str,
    source: str,
    timestamp: datetime,
    traits: Mapping[str, object] | None,
    consents: Iterable[ConsentUpdate],
    do_not_contact: bool | None,
    segments: Iterable[str] | None = None,
) -> decision_pb2.UpdateProfileRequest:
    """Build an ``UpdateProfileRequest`` (``segments``: ``None`` leaves them unchanged)."""
    request = decision_pb2.UpdateProfileRequest(
        request_id=request_id, customer_id=customer_id, source=source
    )
    fill_timestamp(request.timestamp, timestamp, path="timestamp")
    fill_value_map(request.traits, traits, path="traits")
    for index, consent in enumerate(consents):
        message = request.consents.add(
            purpose=consent.purpose,
            state=enum_to_proto(ConsentState(consent.state)),
        )
        if consent.expires_at is not None:
            fill_timestamp(
                message.expires_at, consent.expires_at, path=f"consents[{index}].expires_at"
            )
    if do_not_contact is not None:
        request.do_not_contact = do_not_contact
    if segments is not None:
        # A bare string is one segment, not a set of one-letter segments.
        names = (segments,) if isinstance(segments, str) else segments
        request.segments.SetInParent()  # set, even when empty: the empty membership
        request.segments.segments.extend(names)
    return request


def _degradations(messages: Iterable[decision_pb2.Degradation]) -> tuple[Degradation, ...]:
    return tuple(
        Degradation(reason=enum_from_proto(Reason, d.reason), detail=d.detail) for d in messages
    )


def decision(response: decision_pb2.DecideResponse, *, request_id: str) -> Decision:
    """Read a ``DecideResponse``."""
    return Decision(
        request_id=response.request_id or request_id,
        decision_id=response.decision_id,
        policy_version=response.policy_version,
        decided_at=_timestamp(response, "decided_at"),
        actions=tuple(
            Action(
                action_id=a.action_id,
                channel=a.channel,
                journey_id=a.journey_id,
                stage=a.stage,
                variant=a.variant,
                payload=from_value_map(a.payload, path=f"actions[{i}].payload"),
                tracking_id=a.tracking_id,
                score=a.score,
                tags=tuple(a.tags),
                policy_fallback=a.policy_fallback,
            )
            for i, a in enumerate(response.actions)
        ),
        consent=tuple(
            PurposeConsent(
                purpose=c.purpose,
                state=enum_from_proto(ConsentState, c.state),
                allowed=c.allowed,
                reason=enum_from_proto(Reason, c.reason),
                source=c.source,
                updated_at=_timestamp(c, "updated_at"),
                expires_at=_timestamp(c, "expires_at"),
            )
            for c in response.consent
        ),
        degradations=_degradations(response.degradations),
        candidates=tuple(
            Candidate(
                action_id=c.action_id,
                channel=c.channel,
                outcome=enum_from_proto(CandidateOutcome, c.outcome),
                reason=enum_from_proto(Reason, c.reason),
                detail=c.detail,
                journey_id=c.journey_id,
                stage=c.stage,
                score=c.score if c.HasField("score") else None,
                variant=c.variant,
            )
            for c in response.candidates
        ),
        replayed=response.replayed,
        dry_run=response.dry_run,
    )


def check_result(response: decision_pb2.CheckResponse, *, request_id: str) -> CheckResult:
    """Read a ``CheckResponse``."""
    return CheckResult(
        request_id=request_id,
        allowed=response.allowed,
        reason=enum_from_proto(Reason, response.reason),
        detail=response.detail,
        recorded=response.recorded,
        policy_version=response.policy_version,
        degradations=_degradations(response.degradations),
        replayed=response.replayed,
    )


def track_result(response: decision_pb2.TrackResponse) -> TrackResult:
    """Read a ``TrackResponse``."""
    return TrackResult(
        results=tuple(
            EventResult(
                event_id=r.event_id,
                status=enum_from_proto(EventStatus, r.status),
                field=r.field,
                detail=r.detail,
            )
            for r in response.results
        )
    )


def update_profile_result(
    response: decision_pb2.UpdateProfileResponse, *, request_id: str
) -> ProfileUpdateResult:
    """Read an ``UpdateProfileResponse``."""
    return ProfileUpdateResult(
        request_id=request_id,
        results=tuple(
            ProfileFieldResult(
                kind=enum_from_proto(ProfileFieldKind, r.kind),
                name=r.name,
                outcome=enum_from_proto(ProfileWriteOutcome, r.outcome),
                stored_timestamp=_timestamp(r, "stored_timestamp"),
            )
            for r in response.results
        ),
    )
