"""The one module that converts between ``arbiter.v1`` protobuf messages and the domain types of ``policies``.

Inputs are converted only after :mod:`server.validation` accepted them, so
nothing here re-checks ranges. Conventions (``policies.snapshot``):

- instants and durations are integer milliseconds (timestamps truncate
  their sub-millisecond part, durations truncate toward zero);
- ``arbiter.v1.Value`` maps to JSON-like Python values: ``null`` -> ``None``,
  lists -> ``list``, maps -> ``dict``, ``bytes`` stay ``bytes``;
- where a contract declares a field ``double``, integers are widened to
  ``float`` (also inside lists and maps), so expressions see the declared type;
- domain reason codes map to the proto enums by name (``ReasonCode.CAPPED``
  -> ``REASON_CAPPED``); ``ReasonCode.ERROR`` has no proto value and becomes
  ``REASON_UNSPECIFIED`` (the detail says what failed).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any, Final

from google.protobuf import struct_pb2, timestamp_pb2

from arbiter.policies import (
    CandidateTrace,
    ChosenAction,
    CompiledField,
    ConsentUpdate,
    Decision,
    Degradation,
    Event,
    FeedbackKind,
    FieldResult,
    Outcome,
    ProfileUpdate,
    PurposeConsent,
    ReasonCode,
    Request,
    cel,
)
from arbiter.v1 import decision_pb2, value_pb2

__all__ = [
    "check_response",
    "decide_request",
    "decide_response",
    "event_from_proto",
    "field_results",
    "ms_from_timestamp",
    "profile_update",
    "reason_to_proto",
    "value_from_proto",
    "value_map_from_proto",
    "value_to_proto",
]

_EPOCH: Final = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1


def _enum_table(enum: Any, prefix: str, names: Iterable[str]) -> dict[str, int]:
    """Domain name -> proto number, by name; names without a proto value map to 0 (UNSPECIFIED)."""
    numbers = {str(name): int(number) for name, number in enum.items()}
    return {name: numbers.get(prefix + name, 0) for name in names}


_REASONS: Final[dict[str, int]] = _enum_table(
    decision_pb2.Reason, "REASON_", (r.value for r in ReasonCode)
)
_OUTCOMES: Final[dict[str, int]] = _enum_table(
    decision_pb2.CandidateOutcome, "CANDIDATE_OUTCOME_", (o.value for o in Outcome)
)
_CONSENT_STATES: Final = {
    "granted": decision_pb2.CONSENT_STATE_GRANTED,
    "denied": decision_pb2.CONSENT_STATE_DENIED,
    "": decision_pb2.CONSENT_STATE_UNSPECIFIED,
}
_CONSENT_FROM_PROTO: Final = {
    decision_pb2.CONSENT_STATE_GRANTED: "granted",
    decision_pb2.CONSENT_STATE_DENIED: "denied",
}
_FEEDBACK: Final = {
    decision_pb2.FEEDBACK_KIND_IMPRESSION: FeedbackKind.IMPRESSION,
    decision_pb2.FEEDBACK_KIND_CLICK: FeedbackKind.CLICK,
    decision_pb2.FEEDBACK_KIND_CONVERSION: FeedbackKind.CONVERSION,
    decision_pb2.FEEDBACK_KIND_DISMISS: FeedbackKind.DISMISS,
}
_FIELD_KINDS: Final = {
    "trait": decision_pb2.PROFILE_FIELD_KIND_TRAIT,
    "consent": decision_pb2.PROFILE_FIELD_KIND_CONSENT,
    "do_not_contact": decision_pb2.PROFILE_FIELD_KIND_DO_NOT_CONTACT,
    "segments": decision_pb2.PROFILE_FIELD_KIND_SEGMENTS,
}


def reason_to_proto(reason: ReasonCode) -> int:
    """The ``arbiter.v1.Reason`` number of a domain reason (``ERROR`` -> ``REASON_UNSPECIFIED``)."""
    return _REASONS.get(reason.value, 0)


# --------------------------------------------------------------------------- time


def ms_from_timestamp(stamp: timestamp_pb2.Timestamp) -> int:
    """Epoch milliseconds of a Timestamp (sub-millisecond part truncated toward the past)."""
    return int(stamp.seconds) * 1000 + int(stamp.nanos) // 1_000_000


def _fill_timestamp(target: timestamp_pb2.Timestamp, ms: int) -> None:
    seconds, rest = divmod(ms, 1000)
    target.seconds = seconds
    target.nanos = rest * 1_000_000


# --------------------------------------------------------------------------- values


def value_from_proto(value: value_pb2.Value, declared: cel.Type | None = None) -> Any:
    """A validated ``Value`` as a domain value; ``declared`` widens ints where it says ``double``."""
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return float(value.int_value) if declared == cel.DOUBLE else value.int_value
    if kind == "double_value":
        return value.double_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "null_value" or kind is None:
        return None
    if kind == "timestamp_value":
        return ms_from_timestamp(value.timestamp_value)
    if kind == "duration_value":
        span = value.duration_value
        return span.seconds * 1000 + int(span.nanos / 1_000_000)
    if kind == "bytes_value":
        return value.bytes_value
    if kind == "list_value":
        elem = declared.elem if isinstance(declared, cel.ListType) else None
        return [value_from_proto(v, elem) for v in value.list_value.values]
    # map_value
    inner = declared.value if isinstance(declared, cel.MapType) else None
    return {k: value_from_proto(v, inner) for k, v in value.map_value.fields.items()}


def value_map_from_proto(
    values: Mapping[str, value_pb2.Value],
    declared: Mapping[str, CompiledField] | None = None,
    *,
    drop_null: bool = True,
) -> dict[str, Any]:
    """A ``map<string, Value>`` as a dict; ``null`` entries are dropped unless ``drop_null`` is off."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        spec = declared.get(key) if declared is not None else None
        converted = value_from_proto(value, spec.type if spec is not None else None)
        if converted is None and drop_null:
            continue
        out[key] = converted
    return out


def _fill_value(out: value_pb2.Value, obj: object) -> None:
    # bool before int (a subclass); anything unexpected in a payload becomes its text.
    if obj is None:
        out.null_value = struct_pb2.NULL_VALUE
    elif isinstance(obj, bool):
        out.bool_value = obj
    elif isinstance(obj, int):
        if _INT64_MIN <= obj <= _INT64_MAX:
            out.int_value = obj
        else:
            out.string_value = str(obj)
    elif isinstance(obj, float):
        out.double_value = obj
    elif isinstance(obj, str):
        out.string_value = obj
    elif isinstance(obj, Mapping):
        out.map_value.SetInParent()
        fields = out.map_value.fields
        for key, item in obj.items():
            _fill_value(fields[str(key)], item)
    elif isinstance(obj, list | tuple):
        out.list_value.SetInParent()
        members = out.list_value.values
        for item in obj:
            _fill_value(members.add(), item)
    elif isinstance(obj, bytes | bytearray):
        out.bytes_value = bytes(obj)
    elif isinstance(obj, _dt.datetime):
        moment = obj if obj.tzinfo is not None else obj.replace(tzinfo=_dt.UTC)
        delta = moment - _EPOCH
        out.timestamp_value.seconds = delta.days * 86_400 + delta.seconds
        out.timestamp_value.nanos = delta.microseconds * 1000
    elif isinstance(obj, _dt.date):
        out.string_value = obj.isoformat()
    else:
        out.string_value = str(obj)


def value_to_proto(obj: object) -> value_pb2.Value:
    """A domain value (payloads, traits) as a new ``Value``."""
    out = value_pb2.Value()
    _fill_value(out, obj)
    return out


def _fill_map(target: MutableMapping[str, value_pb2.Value], values: Mapping[str, Any]) -> None:
    for key, item in values.items():
        _fill_value(target[key], item)


# --------------------------------------------------------------------------- Decide


def decide_request(
    request: decision_pb2.DecideRequest, context_fields: Mapping[str, CompiledField]
) -> Request:
    """A validated DecideRequest as the engine's :class:`~policies.decision.Request`.

    Duplicate channels are dropped (first occurrence wins), so equal
    requests share the engine's memoised candidate lists.
    """
    channels = tuple(dict.fromkeys(request.channels))
    return Request(
        customer_id=request.customer_id,
        placement=request.placement,
        channels=channels,
        context=value_map_from_proto(request.context, context_fields) if request.context else {},
        limit=request.limit or 1,
        explain=request.explain,
        request_id=request.request_id,
        dry_run=request.dry_run,
    )


def _fill_action(out: decision_pb2.ChosenAction, action: ChosenAction) -> None:
    out.action_id = action.action
    out.journey_id = action.journey
    out.stage = action.stage
    out.channel = action.channel
    out.variant = action.variant
    out.tracking_id = action.tracking_id
    out.score = action.score
    out.policy_fallback = action.fallback
    if action.tags:
        out.tags.extend(action.tags)
    if action.payload:
        _fill_map(out.payload, action.payload)


def _fill_consent(out: decision_pb2.PurposeConsent, consent: PurposeConsent) -> None:
    out.purpose = consent.purpose
    out.state = _CONSENT_STATES[consent.state]
    out.allowed = consent.allowed
    out.reason = reason_to_proto(consent.reason)
    out.source = consent.source
    if consent.updated_ms is not None:
        _fill_timestamp(out.updated_at, consent.updated_ms)
    if consent.expires_ms is not None:
        _fill_timestamp(out.expires_at, consent.expires_ms)


def _fill_candidate(out: decision_pb2.Candidate, candidate: CandidateTrace) -> None:
    out.action_id = candidate.action
    out.journey_id = candidate.journey
    out.stage = candidate.stage
    out.channel = candidate.channel
    out.outcome = _OUTCOMES.get(candidate.outcome.value, 0)
    out.reason = reason_to_proto(candidate.reason)
    out.detail = candidate.detail
    if candidate.score is not None:
        out.score = candidate.score
    out.variant = candidate.variant


def _fill_degradations(
    target: Any, degradations: Iterable[Degradation]
) -> None:  # RepeatedCompositeFieldContainer[Degradation]
    for d in degradations:
        target.add(reason=reason_to_proto(d.reason), detail=d.detail)


def decide_response(
    decision: Decision, *, replayed: bool = False, dry_run: bool = False
) -> decision_pb2.DecideResponse:
    """A :class:`~policies.decision.Decision` as a DecideResponse (held-out actions are not sent)."""
    response = decision_pb2.DecideResponse(
        decision_id=decision.decision_id,
        request_id=decision.request_id,
        policy_version=decision.policy_version,
        replayed=replayed,
        dry_run=dry_run,
    )
    _fill_timestamp(response.decided_at, decision.decided_ms)
    for action in decision.actions:
        _fill_action(response.actions.add(), action)
    for consent in decision.consent:
        _fill_consent(response.consent.add(), consent)
    _fill_degradations(response.degradations, decision.degradations)
    for candidate in decision.candidates:
        _fill_candidate(response.candidates.add(), candidate)
    return response


# --------------------------------------------------------------------------- Check


def check_response(
    *,
    allowed: bool,
    reason: ReasonCode,
    detail: str,
    recorded: bool,
    policy_version: str,
    degradations: Iterable[Degradation] = (),
    replayed: bool = False,
) -> decision_pb2.CheckResponse:
    """A CheckResponse from the answer's parts."""
    response = decision_pb2.CheckResponse(
        allowed=allowed,
        reason=reason_to_proto(reason),
        detail=detail,
        recorded=recorded,
        policy_version=policy_version,
        replayed=replayed,
    )
    _fill_degradations(response.degradations, degradations)
    return response


# --------------------------------------------------------------------------- Track


def event_from_proto(
    event: decision_pb2.Event, properties: Mapping[str, CompiledField] | None
) -> Event:
    """A validated, contract-checked ``Event`` as the journey engine's :class:`~policies.journeys.Event`."""
    return Event(
        event_id=event.event_id,
        type=event.type,
        time_ms=ms_from_timestamp(event.timestamp),
        properties=value_map_from_proto(event.properties, properties),
        version=event.version,
        decision_id=event.decision_id,
        tracking_id=event.tracking_id,
        feedback=_FEEDBACK.get(event.feedback),
    )


# --------------------------------------------------------------------------- UpdateProfile


def profile_update(
    request: decision_pb2.UpdateProfileRequest, profile: Mapping[str, CompiledField]
) -> ProfileUpdate:
    """A validated UpdateProfileRequest as a :class:`~policies.effects.ProfileUpdate`
    (null removes a trait; ``segments`` unset -> ``None``, set -> the whole membership)."""
    return ProfileUpdate(
        customer_id=request.customer_id,
        source=request.source,
        timestamp_ms=ms_from_timestamp(request.timestamp),
        traits=value_map_from_proto(request.traits, profile, drop_null=False),
        consents=tuple(
            ConsentUpdate(
                purpose=c.purpose,
                state=_CONSENT_FROM_PROTO[c.state],  # type: ignore[arg-type]
                expires_ms=ms_from_timestamp(c.expires_at) if c.HasField("expires_at") else None,
            )
            for c in request.consents
        ),
        do_not_contact=request.do_not_contact if request.HasField("do_not_contact") else None,
        segments=tuple(request.segments.segments) if request.HasField("segments") else None,
    )


def field_results(results: Iterable[FieldResult]) -> decision_pb2.UpdateProfileResponse:
    """The store's per-field results as an UpdateProfileResponse."""
    response = decision_pb2.UpdateProfileResponse()
    for r in results:
        out = response.results.add(
            kind=_FIELD_KINDS[r.kind],
            name=r.name,
            outcome=(
                decision_pb2.PROFILE_WRITE_OUTCOME_APPLIED
                if r.applied
                else decision_pb2.PROFILE_WRITE_OUTCOME_IGNORED_STALE
            ),
        )
        _fill_timestamp(out.stored_timestamp, r.stored_ms)
    return response
