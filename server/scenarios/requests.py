"""Scenario steps as the protobuf requests a client would send: values typed by the policy's contracts, times on the scenario clock."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from arbiter.policies import (
    CompiledField,
    CompiledPolicy,
    FeedbackKind,
    cel,
    parse_duration_ms,
    scenarios,
)
from arbiter.v1 import decision_pb2
from arbiter_client import fill_timestamp, to_value

__all__ = [
    "check_request",
    "decide_request",
    "event_message",
    "profile_request",
    "timestamp_of",
]

_FEEDBACK = {
    FeedbackKind.IMPRESSION: decision_pb2.FEEDBACK_KIND_IMPRESSION,
    FeedbackKind.CLICK: decision_pb2.FEEDBACK_KIND_CLICK,
    FeedbackKind.CONVERSION: decision_pb2.FEEDBACK_KIND_CONVERSION,
    FeedbackKind.DISMISS: decision_pb2.FEEDBACK_KIND_DISMISS,
}
_CONSENT = {
    "granted": decision_pb2.CONSENT_STATE_GRANTED,
    "denied": decision_pb2.CONSENT_STATE_DENIED,
}


def timestamp_of(ms: int) -> datetime:
    """Epoch milliseconds as an aware datetime."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _typed(value: Any, declared: cel.Type | None, origin_ms: int) -> Any:
    """A scenario value as the Python value a client would send for the declared type: times
    (``-2h``, RFC 3339) for timestamps, policy durations (``2h``) for durations."""
    if isinstance(value, str) and declared == cel.TIMESTAMP:
        return timestamp_of(scenarios.parse_scenario_time(value, origin_ms))
    if isinstance(value, str) and declared == cel.DURATION:
        return timedelta(milliseconds=parse_duration_ms(value))
    if isinstance(value, str) and declared == cel.BYTES:
        return value.encode()
    if isinstance(value, list):
        elem = declared.elem if isinstance(declared, cel.ListType) else None
        return [_typed(v, elem, origin_ms) for v in value]
    if isinstance(value, dict):
        inner = declared.value if isinstance(declared, cel.MapType) else None
        return {k: _typed(v, inner, origin_ms) for k, v in value.items()}
    return value


def _fill(
    target: Any, values: Mapping[str, Any], specs: Mapping[str, CompiledField], origin_ms: int
) -> None:
    for name, value in values.items():
        spec = specs.get(name)
        target[name].CopyFrom(to_value(_typed(value, spec.type if spec else None, origin_ms)))


def decide_request(
    spec: scenarios.DecideSpec,
    policy: CompiledPolicy,
    *,
    customer_id: str,
    request_id: str,
    origin_ms: int,
) -> decision_pb2.DecideRequest:
    """A DecideRequest with the explain trace on."""
    request = decision_pb2.DecideRequest(
        request_id=request_id,
        customer_id=customer_id,
        placement=spec.placement,
        channels=list(spec.channels),
        limit=spec.limit,
        explain=True,
        dry_run=spec.dry_run,
    )
    _fill(request.context, spec.context, policy.context, origin_ms)
    for action, propensity in spec.propensities.items():
        request.propensities[action] = propensity
    return request


def check_request(
    spec: scenarios.CheckSpec,
    policy: CompiledPolicy,
    *,
    customer_id: str,
    request_id: str,
    decision_id: str,
    origin_ms: int,
) -> decision_pb2.CheckRequest:
    """A CheckRequest (the channel defaults to the action's)."""
    channel = spec.channel
    if channel is None:
        action = policy.actions.get(spec.action)
        channel = action.channel_id if action is not None else ""
    request = decision_pb2.CheckRequest(
        request_id=request_id,
        customer_id=customer_id,
        action_id=spec.action,
        channel=channel,
        record=spec.record,
        decision_id=decision_id,
    )
    _fill(request.context, spec.context, policy.context, origin_ms)
    return request


def event_message(
    spec: scenarios.EventSpec,
    policy: CompiledPolicy,
    *,
    customer_id: str,
    event_id: str,
    at_ms: int,
    decision_id: str,
    tracking_id: str,
    origin_ms: int,
) -> decision_pb2.Event:
    """One Track event."""
    event = decision_pb2.Event(
        event_id=event_id,
        customer_id=customer_id,
        type=spec.type,
        version=max(spec.version, 0),
        decision_id=decision_id,
        tracking_id=tracking_id,
        feedback=_FEEDBACK.get(spec.feedback, decision_pb2.FEEDBACK_KIND_UNSPECIFIED)
        if spec.feedback is not None
        else decision_pb2.FEEDBACK_KIND_UNSPECIFIED,
    )
    fill_timestamp(event.timestamp, timestamp_of(at_ms))
    contract = policy.events.get(spec.type)
    _fill(event.properties, spec.properties, contract.properties if contract else {}, origin_ms)
    return event


def profile_request(
    policy: CompiledPolicy,
    *,
    customer_id: str,
    source: str,
    at_ms: int,
    origin_ms: int,
    traits: Mapping[str, Any] | None = None,
    consents: Mapping[str, tuple[str, int | None]] | None = None,
    do_not_contact: bool | None = None,
    segments: tuple[str, ...] | None = None,
) -> decision_pb2.UpdateProfileRequest:
    """An UpdateProfileRequest; ``consents``: purpose -> (state, expiry ms or ``None``)."""
    request = decision_pb2.UpdateProfileRequest(customer_id=customer_id, source=source)
    fill_timestamp(request.timestamp, timestamp_of(at_ms))
    _fill(request.traits, traits or {}, policy.profile, origin_ms)
    for purpose, (state, expires_ms) in (consents or {}).items():
        update = request.consents.add(purpose=purpose, state=_CONSENT[state])
        if expires_ms is not None:
            fill_timestamp(update.expires_at, timestamp_of(expires_ms))
    if do_not_contact is not None:
        request.do_not_contact = do_not_contact
    if segments is not None:
        request.segments.segments.extend(segments)
    return request
