"""Input validation of every DecisionService RPC: reject bad input with the offending field, before anything runs.

Every check raises :class:`ValidationError` naming the field in the request's
own terms (``channels[2]``, ``events[0].timestamp``, ``context.cart.items[3]``);
the server maps it to ``INVALID_ARGUMENT`` and writes nothing. Messages never
echo the offending value (it may be personal data).

Rules (DESIGN.md §2, §5):

- Ids (customer, request, event, decision, source): 1-128 characters of
  ``[A-Za-z0-9._:@+-]``.
- Policy-defined names (channels, actions, consent purposes, trait names,
  event types) must exist in the active policy set; an unknown one is
  ``INVALID_ARGUMENT`` (a placement is not: asking for a placement that has
  no actions simply gets none, so callers survive a policy rollback).
- Enum fields: only the numbers the contract defines.
- Values (``arbiter.v1.Value``): a kind is set; doubles are finite; strings
  and bytes at most :data:`MAX_STRING` long; lists and maps at most
  :data:`MAX_COLLECTION` members and :data:`MAX_DEPTH` levels deep;
  timestamps and durations inside protobuf's documented ranges.
- Timestamps of events and profile writes: after the Unix epoch and not
  more than :data:`MAX_FUTURE_MS` ahead of the server clock (a far-future
  profile write would otherwise win over every later write).
- Segment memberships: at most :data:`MAX_SEGMENTS` segment ids, each an
  id as above, none twice.
- Event batches: 1-:data:`MAX_EVENTS` events. An event that is well formed
  but breaks its type's contract is not an error of the call: Track reports
  it ``REJECTED`` on its own (:func:`event_contract_violation`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Final

from google.protobuf import duration_pb2, timestamp_pb2

from arbiter.policies import CompiledField, CompiledPolicy, cel
from arbiter.v1 import decision_pb2, value_pb2

__all__ = [
    "MAX_CHANNELS",
    "MAX_COLLECTION",
    "MAX_CONSENTS",
    "MAX_DEPTH",
    "MAX_EVENTS",
    "MAX_FIELDS",
    "MAX_FUTURE_MS",
    "MAX_ID_LENGTH",
    "MAX_LIMIT",
    "MAX_SEGMENTS",
    "MAX_STRING",
    "ValidationError",
    "check_id",
    "check_value",
    "event_contract_violation",
    "validate_check",
    "validate_decide",
    "validate_track",
    "validate_update_profile",
]

MAX_ID_LENGTH: Final = 128
MAX_CHANNELS: Final = 32
MAX_LIMIT: Final = 100
MAX_FIELDS: Final = 128  # entries of a context / properties / traits map
MAX_COLLECTION: Final = 256  # members of a nested list or map
MAX_DEPTH: Final = 8  # nesting levels of lists and maps inside one value
MAX_STRING: Final = 8192  # characters of a string, bytes of a bytes value
MAX_EVENTS: Final = 500  # events in one Track call
MAX_CONSENTS: Final = 64
MAX_SEGMENTS: Final = 256  # segment ids in one UpdateProfile membership
MAX_FUTURE_MS: Final = 3_600_000  # clock skew tolerated on event and profile timestamps

_ID: Final = re.compile(r"[A-Za-z0-9._:@+\-]{1,128}")
# google.protobuf.Timestamp: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999999999Z
_TS_MIN_SECONDS: Final = -62_135_596_800
_TS_MAX_SECONDS: Final = 253_402_300_799
# google.protobuf.Duration: +-10,000 years
_DURATION_MAX_SECONDS: Final = 315_576_000_000
_NANOS: Final = 1_000_000_000

_ENUMERABLE: Final = frozenset(("string_value", "int_value", "double_value", "bool_value"))
_CONSENT_STATES: Final = frozenset(
    (decision_pb2.CONSENT_STATE_GRANTED, decision_pb2.CONSENT_STATE_DENIED)
)
_FEEDBACK_KINDS: Final = frozenset(decision_pb2.FeedbackKind.values())


class ValidationError(ValueError):
    """A request field is missing or malformed; ``field`` names it, ``message`` says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# --------------------------------------------------------------------------- building blocks


def check_id(value: str, field: str, *, required: bool = True) -> None:
    """An id: 1-128 characters of ``[A-Za-z0-9._:@+-]`` (empty allowed when not required)."""
    if not value:
        if required:
            raise ValidationError(field, "required")
        return
    if len(value) > MAX_ID_LENGTH:
        raise ValidationError(field, f"longer than {MAX_ID_LENGTH} characters")
    if _ID.fullmatch(value) is None:
        raise ValidationError(field, "must be 1-128 characters of [A-Za-z0-9._:@+-]")


def _check_name(value: str, field: str) -> None:
    """A map key or a policy-defined name: non-empty, bounded, printable."""
    if not value:
        raise ValidationError(field, "empty name")
    if len(value) > MAX_ID_LENGTH:
        raise ValidationError(field, f"name longer than {MAX_ID_LENGTH} characters")
    if not value.isprintable():
        raise ValidationError(field, "name contains control characters")


def _key_path(path: str, key: str) -> str:
    return f"{path}.{key}" if len(key) <= 64 and key.isprintable() else f"{path}[<key>]"


def check_timestamp(stamp: timestamp_pb2.Timestamp, field: str) -> None:
    """Inside ``google.protobuf.Timestamp``'s documented range, with normalised nanos."""
    if not _TS_MIN_SECONDS <= stamp.seconds <= _TS_MAX_SECONDS:
        raise ValidationError(field, "timestamp outside 0001-01-01..9999-12-31")
    if not 0 <= stamp.nanos < _NANOS:
        raise ValidationError(field, "timestamp nanos must be in [0, 1e9)")


def _check_duration(span: duration_pb2.Duration, field: str) -> None:
    if not -_DURATION_MAX_SECONDS <= span.seconds <= _DURATION_MAX_SECONDS:
        raise ValidationError(field, "duration outside +-10,000 years")
    if not -_NANOS < span.nanos < _NANOS or (span.seconds * span.nanos < 0):
        raise ValidationError(field, "duration nanos out of range or of the wrong sign")


def check_value(value: value_pb2.Value, field: str, depth: int = 0) -> None:
    """Structural rules of one ``Value`` (see the module docstring)."""
    kind = value.WhichOneof("kind")
    if kind is None:
        raise ValidationError(field, "Value has no kind set (use null_value for null)")
    if kind == "double_value":
        if not math.isfinite(value.double_value):
            raise ValidationError(field, "NaN and infinite doubles are not allowed")
    elif kind == "string_value":
        if len(value.string_value) > MAX_STRING:
            raise ValidationError(field, f"string longer than {MAX_STRING} characters")
    elif kind == "bytes_value":
        if len(value.bytes_value) > MAX_STRING:
            raise ValidationError(field, f"bytes longer than {MAX_STRING}")
    elif kind == "timestamp_value":
        check_timestamp(value.timestamp_value, field)
    elif kind == "duration_value":
        _check_duration(value.duration_value, field)
    elif kind == "list_value":
        if depth >= MAX_DEPTH:
            raise ValidationError(field, f"nested deeper than {MAX_DEPTH} levels")
        members = value.list_value.values
        if len(members) > MAX_COLLECTION:
            raise ValidationError(field, f"list longer than {MAX_COLLECTION}")
        for index, member in enumerate(members):
            check_value(member, f"{field}[{index}]", depth + 1)
    elif kind == "map_value":
        if depth >= MAX_DEPTH:
            raise ValidationError(field, f"nested deeper than {MAX_DEPTH} levels")
        fields = value.map_value.fields
        if len(fields) > MAX_COLLECTION:
            raise ValidationError(field, f"map larger than {MAX_COLLECTION}")
        for key, member in fields.items():
            path = _key_path(field, key)
            _check_name(key, path)
            check_value(member, path, depth + 1)


def _check_map(values: Mapping[str, value_pb2.Value], field: str) -> None:
    if len(values) > MAX_FIELDS:
        raise ValidationError(field, f"more than {MAX_FIELDS} entries")
    for key, value in values.items():
        path = _key_path(field, key)
        _check_name(key, path)
        check_value(value, path)


_SCALAR_KINDS: Final[dict[cel.Type, frozenset[str]]] = {
    cel.STRING: frozenset({"string_value"}),
    cel.INT: frozenset({"int_value"}),
    cel.UINT: frozenset({"int_value"}),
    cel.DOUBLE: frozenset({"double_value", "int_value"}),
    cel.BOOL: frozenset({"bool_value"}),
    cel.BYTES: frozenset({"bytes_value"}),
    cel.TIMESTAMP: frozenset({"timestamp_value"}),
    cel.DURATION: frozenset({"duration_value"}),
}


def _type_error(value: value_pb2.Value, t: cel.Type, field: str) -> str | None:
    """Why a structurally valid ``value`` does not fit the declared type, or ``None``.

    ``null_value`` fits every type (it means "absent"; callers decide if
    that is allowed). ``int_value`` fits ``double`` (the wire keeps what the
    caller sent; widening an integer loses nothing the contract cares about).
    """
    kind = value.WhichOneof("kind")
    if kind == "null_value" or t == cel.DYN:
        return None
    allowed = _SCALAR_KINDS.get(t)
    if allowed is not None:
        if kind not in allowed:
            return f"expected {t}, got {kind}"
        if t == cel.UINT and value.int_value < 0:
            return "expected uint, got a negative int"
        return None
    if isinstance(t, cel.ListType):
        if kind != "list_value":
            return f"expected {t}, got {kind}"
        for index, member in enumerate(value.list_value.values):
            if member.WhichOneof("kind") == "null_value":
                return f"[{index}]: null is not allowed inside a list"
            why = _type_error(member, t.elem, field)
            if why is not None:
                return f"[{index}]: {why}"
        return None
    if isinstance(t, cel.MapType):
        if kind != "map_value":
            return f"expected {t}, got {kind}"
        for key, member in value.map_value.fields.items():
            why = _type_error(member, t.value, field)
            if why is not None:
                return f".{key}: {why}" if len(key) <= 64 else f"[<key>]: {why}"
        return None
    return f"unsupported declared type {t}"


def check_field(value: value_pb2.Value, spec: CompiledField, field: str) -> None:
    """A value against a contract field: declared type and, when declared, allowed values."""
    why = _type_error(value, spec.type, field)
    if why is not None:
        raise ValidationError(field, f"`{spec.name}` {why}")
    kind = value.WhichOneof("kind")
    if spec.values and kind in _ENUMERABLE and getattr(value, kind) not in spec.values:
        raise ValidationError(field, f"`{spec.name}` is not one of the declared values")


def _check_instant_ms(stamp: timestamp_pb2.Timestamp, field: str, now_ms: int) -> None:
    check_timestamp(stamp, field)
    if stamp.seconds < 0:
        raise ValidationError(field, "timestamp before 1970-01-01")
    ms = stamp.seconds * 1000 + stamp.nanos // 1_000_000
    if ms > now_ms + MAX_FUTURE_MS:
        raise ValidationError(field, "timestamp more than 1 hour in the future")


def _check_context(values: Mapping[str, value_pb2.Value], policy: CompiledPolicy) -> None:
    """Structure of every entry; declared fields also by type. Undeclared keys are ignored
    by the engine (a caller may send a field before the policy uses it)."""
    _check_map(values, "context")
    declared = policy.context
    for key, value in values.items():
        spec = declared.get(key)
        if spec is not None:
            check_field(value, spec, _key_path("context", key))


# --------------------------------------------------------------------------- per RPC


def validate_decide(request: decision_pb2.DecideRequest, policy: CompiledPolicy) -> None:
    """A DecideRequest against the wire rules and the active policy set."""
    check_id(request.request_id, "request_id")
    check_id(request.customer_id, "customer_id")
    if request.placement:
        _check_name(request.placement, "placement")
    channels = request.channels
    if len(channels) > MAX_CHANNELS:
        raise ValidationError("channels", f"more than {MAX_CHANNELS} channels")
    for index, channel in enumerate(channels):
        field = f"channels[{index}]"
        _check_name(channel, field)
        if channel not in policy.channels:
            raise ValidationError(field, "unknown channel")
    if request.limit > MAX_LIMIT:
        raise ValidationError("limit", f"at most {MAX_LIMIT}")
    _check_context(request.context, policy)


def validate_check(request: decision_pb2.CheckRequest, policy: CompiledPolicy) -> None:
    """A CheckRequest against the wire rules and the active policy set."""
    check_id(request.request_id, "request_id")
    check_id(request.customer_id, "customer_id")
    if not request.action_id:
        raise ValidationError("action_id", "required")
    _check_name(request.action_id, "action_id")
    if request.action_id not in policy.actions:
        raise ValidationError("action_id", "unknown action")
    if not request.channel:
        raise ValidationError("channel", "required")
    _check_name(request.channel, "channel")
    if request.channel not in policy.channels:
        raise ValidationError("channel", "unknown channel")
    check_id(request.decision_id, "decision_id", required=False)
    _check_context(request.context, policy)


def validate_track(request: decision_pb2.TrackRequest, now_ms: int) -> None:
    """The batch's shape: everything that fails the whole call (contracts are per event)."""
    events = request.events
    if not events:
        raise ValidationError("events", "at least one event is required")
    if len(events) > MAX_EVENTS:
        raise ValidationError("events", f"more than {MAX_EVENTS} events")
    for index, event in enumerate(events):
        path = f"events[{index}]"
        check_id(event.event_id, f"{path}.event_id")
        check_id(event.customer_id, f"{path}.customer_id")
        if not event.type:
            raise ValidationError(f"{path}.type", "required")
        _check_name(event.type, f"{path}.type")
        if not event.HasField("timestamp"):
            raise ValidationError(f"{path}.timestamp", "required")
        _check_instant_ms(event.timestamp, f"{path}.timestamp", now_ms)
        _check_map(event.properties, f"{path}.properties")
        if event.feedback not in _FEEDBACK_KINDS:
            raise ValidationError(f"{path}.feedback", "unknown FeedbackKind value")
        check_id(event.decision_id, f"{path}.decision_id", required=False)
        if event.tracking_id:
            _check_name(event.tracking_id, f"{path}.tracking_id")
        if event.feedback != decision_pb2.FEEDBACK_KIND_UNSPECIFIED and not event.decision_id:
            raise ValidationError(f"{path}.decision_id", "required for feedback events")


def event_contract_violation(
    event: decision_pb2.Event, policy: CompiledPolicy
) -> tuple[str, str] | None:
    """``(field, detail)`` when a well-formed event breaks its type's contract, else ``None``.

    Field names are relative to the event (``type``, ``properties.amount``),
    as ``EventResult.field`` reports them.
    """
    contract = policy.events.get(event.type)
    if contract is None:
        return "type", "unknown event type"
    if event.version and event.version != contract.version:
        return "version", f"version {event.version} is not declared (current: {contract.version})"
    props = event.properties
    for name, spec in contract.properties.items():
        value = props.get(name)
        if value is None or value.WhichOneof("kind") == "null_value":
            if spec.required:
                return f"properties.{name}", "required property is missing"
            continue
        try:
            check_field(value, spec, f"properties.{name}")
        except ValidationError as exc:
            return exc.field, exc.message
    for name in props:
        if name not in contract.properties:
            return _key_path("properties", name), "undeclared property"
    return None


def validate_update_profile(
    request: decision_pb2.UpdateProfileRequest, policy: CompiledPolicy, now_ms: int
) -> None:
    """An UpdateProfileRequest: traits against the profile contract, purposes against the policy,
    segment ids well formed (any id: segments come from the CDP, not the policy set)."""
    check_id(request.request_id, "request_id", required=False)
    check_id(request.customer_id, "customer_id")
    check_id(request.source, "source")
    if not request.HasField("timestamp"):
        raise ValidationError("timestamp", "required")
    _check_instant_ms(request.timestamp, "timestamp", now_ms)
    _check_map(request.traits, "traits")
    for name, value in request.traits.items():
        spec = policy.profile.get(name)
        path = _key_path("traits", name)
        if spec is None:
            raise ValidationError(path, "undeclared profile attribute")
        check_field(value, spec, path)
    consents = request.consents
    if len(consents) > MAX_CONSENTS:
        raise ValidationError("consents", f"more than {MAX_CONSENTS} entries")
    seen: set[str] = set()
    for index, consent in enumerate(consents):
        path = f"consents[{index}]"
        if not consent.purpose:
            raise ValidationError(f"{path}.purpose", "required")
        _check_name(consent.purpose, f"{path}.purpose")
        if consent.purpose not in policy.consent.purposes:
            raise ValidationError(f"{path}.purpose", "unknown consent purpose")
        if consent.purpose in seen:
            raise ValidationError(f"{path}.purpose", "purpose listed twice")
        seen.add(consent.purpose)
        if consent.state not in _CONSENT_STATES:
            raise ValidationError(f"{path}.state", "must be GRANTED or DENIED")
        if consent.HasField("expires_at"):
            check_timestamp(consent.expires_at, f"{path}.expires_at")
    if request.HasField("do_not_contact"):
        attribute = policy.consent.do_not_contact
        if attribute is None:
            raise ValidationError("do_not_contact", "the policy set declares no do-not-contact")
        if attribute in request.traits:
            raise ValidationError(
                f"traits.{attribute}", "written twice (also set by do_not_contact)"
            )
    if request.HasField("segments"):
        segments = request.segments.segments
        if len(segments) > MAX_SEGMENTS:
            raise ValidationError("segments.segments", f"more than {MAX_SEGMENTS} entries")
        listed: set[str] = set()
        for index, segment in enumerate(segments):
            path = f"segments.segments[{index}]"
            check_id(segment, path)
            if segment in listed:
                raise ValidationError(path, "segment listed twice")
            listed.add(segment)
