"""Requests in: every DecisionService request validated and converted to the domain in one pass, or a field error.

Each function either returns the domain request or raises
:class:`ValidationError` naming the offending field in the request's own
terms (``channels[2]``, ``events[0].timestamp``, ``context.cart.items[3]``);
the transport maps it to ``INVALID_ARGUMENT`` and nothing is written.
Messages never echo the offending value (it may be personal data).

Rules:

- Ids (customer, request, event, decision, source): 1-128 characters of
  ``[A-Za-z0-9._:@+-]``.
- Policy-defined names (channels, placements, actions, consent purposes,
  trait names, request-context fields, event types) must exist in the
  active policy set; an unknown one is ``INVALID_ARGUMENT`` naming it, with
  the closest known name ("did you mean"). Names are not values: they are
  checked printable and bounded before they are quoted. The request context
  accepts undeclared keys only when the policy declares it open
  (``contracts.context_open: true``).
- Enum fields: only the numbers the contract defines.
- Values (``arbiter.v1.Value``): a kind is set; doubles are finite; strings
  and bytes at most :data:`MAX_STRING` long; lists and maps at most
  :data:`MAX_COLLECTION` members and :data:`MAX_DEPTH` levels deep; at most
  :data:`MAX_VALUES` values in one request (a Track batch: all its events),
  and a body of at most :data:`MAX_REQUEST_BYTES` (refused by the transport,
  ``RESOURCE_EXHAUSTED``);
  timestamps and durations inside protobuf's documented ranges. Where a
  contract declares the field, the value must fit the declared type (an int
  fits ``double`` and is widened to a float, also inside lists and maps) and,
  when declared, be one of the allowed values.
- Timestamps of events and profile writes: after the Unix epoch and not
  more than :data:`MAX_FUTURE_MS` ahead of the server clock (a far-future
  profile write would otherwise win over every later write).
- Segment memberships: at most :data:`MAX_SEGMENTS` segment ids, each an
  id as above, none twice.
- Event batches: 1-:data:`MAX_EVENTS` events. An event that is well formed
  but breaks its type's contract is not an error of the call: Track reports
  it ``REJECTED`` on its own (:class:`ParsedEvent`).

A map of values (context, traits, event properties) is walked once: a
structural problem raises at once, while the first contract problem (type,
allowed values, undeclared name) is held until the whole map was walked --
so structure is always reported first, as if checked in two passes.
Conversion conventions: instants and durations become integer milliseconds
(timestamps truncate their sub-millisecond part, durations truncate toward
zero); ``null`` becomes ``None``; lists and maps become ``list`` / ``dict``;
``bytes`` stay ``bytes``.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from google.protobuf import duration_pb2, timestamp_pb2

from arbiter.policies import (
    CheckQuery,
    CompiledField,
    CompiledPolicy,
    ConsentUpdate,
    Event,
    FeedbackKind,
    ProfileUpdate,
    Request,
    cel,
)
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
    "MAX_REQUEST_BYTES",
    "MAX_SEGMENTS",
    "MAX_STRING",
    "MAX_VALUES",
    "ParsedEvent",
    "ValidationError",
    "check_query",
    "decide_request",
    "ms_from_timestamp",
    "profile_update",
    "track_events",
]

MAX_ID_LENGTH: Final = 128
MAX_CHANNELS: Final = 32
MAX_LIMIT: Final = 100
MAX_FIELDS: Final = 128  # entries of a context / properties / traits map
MAX_COLLECTION: Final = 256  # members of a nested list or map
MAX_DEPTH: Final = 8  # nesting levels of lists and maps inside one value
MAX_STRING: Final = 8192  # characters of a string, bytes of a bytes value
# Values (scalars, lists and maps, at every level) in one request, all maps together (a
# Track batch: all its events): each costs a conversion, and 950,000 of them inside the
# other limits held the event loop for 1-2 s. benchmarks/limits_bench.py measures the
# worst request these limits allow.
MAX_VALUES: Final = 4096
# Bytes of one request body, on both ports (grpc.max_receive_message_length, Connect's
# read_max_bytes): decoding is paid before any check runs.
MAX_REQUEST_BYTES: Final = 1024 * 1024
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
_CONSENT_STATES: Final = {
    decision_pb2.CONSENT_STATE_GRANTED: "granted",
    decision_pb2.CONSENT_STATE_DENIED: "denied",
}
_FEEDBACK: Final = {
    decision_pb2.FEEDBACK_KIND_IMPRESSION: FeedbackKind.IMPRESSION,
    decision_pb2.FEEDBACK_KIND_CLICK: FeedbackKind.CLICK,
    decision_pb2.FEEDBACK_KIND_CONVERSION: FeedbackKind.CONVERSION,
    decision_pb2.FEEDBACK_KIND_DISMISS: FeedbackKind.DISMISS,
}
_FEEDBACK_KINDS: Final = frozenset(decision_pb2.FeedbackKind.values())
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


def _hint(name: str, known: Iterable[str]) -> str:
    """``; did you mean `<closest>`?`` when a known name is close to ``name``, else ``""``."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"; did you mean `{close[0]}`?" if close else ""


def _unknown(what: str, name: str, known: Iterable[str]) -> str:
    """``unknown <what> `<name>`; did you mean `<closest>`?`` -- for policy-defined names (never
    values: a name is checked printable and bounded by :func:`_check_name` first)."""
    return f"unknown {what} `{name}`{_hint(name, known)}"


def _key_path(path: str, key: str) -> str:
    return f"{path}.{key}" if len(key) <= 64 and key.isprintable() else f"{path}[<key>]"


def ms_from_timestamp(stamp: timestamp_pb2.Timestamp) -> int:
    """Epoch milliseconds of a Timestamp (sub-millisecond part truncated toward the past)."""
    return int(stamp.seconds) * 1000 + int(stamp.nanos) // 1_000_000


def _timestamp_ms(stamp: timestamp_pb2.Timestamp, field: str) -> int:
    """Inside ``google.protobuf.Timestamp``'s documented range, with normalised nanos."""
    if not _TS_MIN_SECONDS <= stamp.seconds <= _TS_MAX_SECONDS:
        raise ValidationError(field, "timestamp outside 0001-01-01..9999-12-31")
    if not 0 <= stamp.nanos < _NANOS:
        raise ValidationError(field, "timestamp nanos must be in [0, 1e9)")
    return ms_from_timestamp(stamp)


def _duration_ms(span: duration_pb2.Duration, field: str) -> int:
    if not -_DURATION_MAX_SECONDS <= span.seconds <= _DURATION_MAX_SECONDS:
        raise ValidationError(field, "duration outside +-10,000 years")
    if not -_NANOS < span.nanos < _NANOS or (span.seconds * span.nanos < 0):
        raise ValidationError(field, "duration nanos out of range or of the wrong sign")
    return int(span.seconds) * 1000 + int(span.nanos / 1_000_000)


def _instant_ms(stamp: timestamp_pb2.Timestamp, field: str, now_ms: int) -> int:
    """An event / write instant: after the epoch, at most :data:`MAX_FUTURE_MS` ahead."""
    ms = _timestamp_ms(stamp, field)
    if stamp.seconds < 0:
        raise ValidationError(field, "timestamp before 1970-01-01")
    if ms > now_ms + MAX_FUTURE_MS:
        raise ValidationError(field, "timestamp more than 1 hour in the future")
    return ms


# --------------------------------------------------------------------------- values


class _Walk:
    """One walk over a map of values: a structural problem raises at once; the first contract
    problem (``error``) is held until the walk is over."""

    __slots__ = ("budget", "error", "misfit")

    def __init__(self, budget: list[int] | None = None) -> None:
        self.error: ValidationError | None = None
        self.misfit = ""  # why the current entry does not fit its declared type ("" = it does)
        # Values this request may still hold (shared by the walks of one request).
        self.budget = budget if budget is not None else [MAX_VALUES]

    def hold(self, error: ValidationError) -> None:
        if self.error is None:
            self.error = error

    def entry(self, value: value_pb2.Value, field: str, spec: CompiledField | None) -> Any:
        """One map entry converted; a misfit of its contract field is held (type, then values)."""
        self.misfit = ""
        converted = self.value(value, field, spec.type if spec is not None else None)
        if spec is None:
            return converted
        kind = value.WhichOneof("kind")
        if self.misfit:
            self.hold(ValidationError(field, f"`{spec.name}` {self.misfit}"))
        elif spec.values and kind in _ENUMERABLE and getattr(value, kind) not in spec.values:
            self.hold(ValidationError(field, f"`{spec.name}` is not one of the declared values"))
        return converted

    def value(
        self,
        value: value_pb2.Value,
        field: str,
        declared: cel.Type | None,
        *,
        where: str = "",
        depth: int = 0,
    ) -> Any:
        """A ``Value`` checked and converted; ``where`` is its position inside the entry, for a
        misfit of ``declared`` (``[2]: .key: expected int, got string_value``)."""
        budget = self.budget
        budget[0] -= 1
        if budget[0] < 0:
            raise ValidationError(field, f"more than {MAX_VALUES} values in one request")
        kind = value.WhichOneof("kind")
        if kind is None:
            raise ValidationError(field, "Value has no kind set (use null_value for null)")
        if declared is not None and declared != cel.DYN and kind != "null_value":
            self._fit(value, kind, declared, where)
        if kind == "string_value":
            if len(value.string_value) > MAX_STRING:
                raise ValidationError(field, f"string longer than {MAX_STRING} characters")
            return value.string_value
        if kind == "int_value":
            return float(value.int_value) if declared == cel.DOUBLE else value.int_value
        if kind == "double_value":
            if not math.isfinite(value.double_value):
                raise ValidationError(field, "NaN and infinite doubles are not allowed")
            return value.double_value
        if kind == "bool_value":
            return value.bool_value
        if kind == "null_value":
            return None
        if kind == "timestamp_value":
            return _timestamp_ms(value.timestamp_value, field)
        if kind == "duration_value":
            return _duration_ms(value.duration_value, field)
        if kind == "bytes_value":
            if len(value.bytes_value) > MAX_STRING:
                raise ValidationError(field, f"bytes longer than {MAX_STRING}")
            return value.bytes_value
        if depth >= MAX_DEPTH:
            raise ValidationError(field, f"nested deeper than {MAX_DEPTH} levels")
        if kind == "list_value":
            return self._list(value.list_value.values, field, declared, where, depth)
        return self._map(value.map_value.fields, field, declared, where, depth)

    def _list(
        self, members: Any, field: str, declared: cel.Type | None, where: str, depth: int
    ) -> list[Any]:
        if len(members) > MAX_COLLECTION:
            raise ValidationError(field, f"list longer than {MAX_COLLECTION}")
        elem = declared.elem if isinstance(declared, cel.ListType) else None
        out = []
        for index, member in enumerate(members):
            at = f"{where}[{index}]: "
            if elem is not None and member.WhichOneof("kind") == "null_value" and not self.misfit:
                self.misfit = f"{at}null is not allowed inside a list"
            out.append(self.value(member, f"{field}[{index}]", elem, where=at, depth=depth + 1))
        return out

    def _map(
        self, fields: Any, field: str, declared: cel.Type | None, where: str, depth: int
    ) -> dict[str, Any]:
        if len(fields) > MAX_COLLECTION:
            raise ValidationError(field, f"map larger than {MAX_COLLECTION}")
        inner = declared.value if isinstance(declared, cel.MapType) else None
        out = {}
        for key, member in fields.items():
            path = _key_path(field, key)
            _check_name(key, path)
            at = f"{where}.{key}: " if len(key) <= 64 else f"{where}[<key>]: "
            out[key] = self.value(member, path, inner, where=at, depth=depth + 1)
        return out

    def _fit(self, value: value_pb2.Value, kind: str, t: cel.Type, where: str) -> None:
        """Note why a value of ``kind`` does not fit the declared type ``t`` (members are checked
        as the walk reaches them; ``null`` fits every type: callers decide if it may be)."""
        if self.misfit:
            return
        allowed = _SCALAR_KINDS.get(t)
        if allowed is not None:
            if kind not in allowed:
                self.misfit = f"{where}expected {t}, got {kind}"
            elif t == cel.UINT and value.int_value < 0:
                self.misfit = f"{where}expected uint, got a negative int"
        elif isinstance(t, cel.ListType | cel.MapType):
            if kind != ("list_value" if isinstance(t, cel.ListType) else "map_value"):
                self.misfit = f"{where}expected {t}, got {kind}"
        else:
            self.misfit = f"{where}unsupported declared type {t}"


def _values(
    values: Mapping[str, value_pb2.Value],
    field: str,
    specs: Mapping[str, CompiledField],
    walk: _Walk,
    *,
    keep_null: bool = False,
    undeclared: str = "",
    problems: dict[str, ValidationError] | None = None,
) -> dict[str, Any]:
    """A ``map<string, Value>`` as a dict (``null`` entries dropped unless ``keep_null``);
    a key the contract does not declare is held as an error when ``undeclared`` says why.
    With ``problems``, each entry's contract problem goes there instead (by key)."""
    if len(values) > MAX_FIELDS:
        raise ValidationError(field, f"more than {MAX_FIELDS} entries")
    out: dict[str, Any] = {}
    for key, value in values.items():
        path = _key_path(field, key)
        _check_name(key, path)
        spec = specs.get(key)
        if spec is None and undeclared:
            walk.hold(ValidationError(path, undeclared))
        converted = walk.entry(value, path, spec)
        if problems is not None and walk.error is not None:
            problems[key], walk.error = walk.error, None
        if converted is not None or keep_null:
            out[key] = converted
    return out


def _context(values: Mapping[str, value_pb2.Value], policy: CompiledPolicy) -> dict[str, Any]:
    """The request context: declared fields typed; an undeclared key is an error naming it
    (with the closest declared field), unless the policy declares its context open
    (``contracts.context_open``: undeclared keys are kept, unchecked and unread)."""
    if not values:
        return {}
    walk = _Walk()
    context = _values(values, "context", policy.context, walk)
    if not policy.context_open:
        for key in values:
            if key not in policy.context:
                walk.hold(
                    ValidationError(
                        _key_path("context", key),
                        _unknown("context field", key, policy.context)
                        + " (not in contracts.context)",
                    )
                )
    if walk.error is not None:
        raise walk.error
    return context


# --------------------------------------------------------------------------- Decide, Check


def decide_request(request: decision_pb2.DecideRequest, policy: CompiledPolicy) -> Request:
    """A DecideRequest as the engine's :class:`Request`. Duplicate channels are dropped (first
    occurrence wins), so equal requests share the plan's memoised candidate indexes."""
    check_id(request.request_id, "request_id")
    check_id(request.customer_id, "customer_id")
    if request.placement:
        _check_name(request.placement, "placement")
        if request.placement not in policy.candidates and request.placement not in _placements(
            policy
        ):
            raise ValidationError(
                "placement", _unknown("placement", request.placement, _placements(policy))
            )
    channels = request.channels
    if len(channels) > MAX_CHANNELS:
        raise ValidationError("channels", f"more than {MAX_CHANNELS} channels")
    for index, channel in enumerate(channels):
        field = f"channels[{index}]"
        _check_name(channel, field)
        if channel not in policy.channels:
            raise ValidationError(field, "unknown channel" + _hint(channel, policy.channel_ids))
    if request.limit > MAX_LIMIT:
        raise ValidationError("limit", f"at most {MAX_LIMIT}")
    return Request(
        customer_id=request.customer_id,
        placement=request.placement,
        channels=tuple(dict.fromkeys(channels)),
        context=_context(request.context, policy),
        limit=request.limit or 1,
        explain=request.explain,
        request_id=request.request_id,
        propensities=_propensities(request.propensities, policy),
        dry_run=request.dry_run,
    )


def _propensities(values: Mapping[str, float], policy: CompiledPolicy) -> dict[str, float]:
    """Per-action propensities: known actions, finite numbers."""
    if not values:
        return {}
    if len(values) > MAX_FIELDS:
        raise ValidationError("propensities", f"more than {MAX_FIELDS} entries")
    out = {}
    for action, value in values.items():
        field = _key_path("propensities", action)
        _check_name(action, field)
        if action not in policy.actions:
            raise ValidationError(field, _unknown("action", action, policy.actions))
        if not math.isfinite(value):
            raise ValidationError(field, "NaN and infinite doubles are not allowed")
        out[action] = float(value)
    return out


def _placements(policy: CompiledPolicy) -> list[str]:
    """Every placement a channel declares (an action's placements are among them)."""
    return sorted({p for channel in policy.channels.values() for p in channel.placements})


def check_query(request: decision_pb2.CheckRequest, policy: CompiledPolicy) -> CheckQuery:
    """A CheckRequest as the engine's :class:`CheckQuery`."""
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
    return CheckQuery(
        customer_id=request.customer_id,
        action=request.action_id,
        channel=request.channel,
        context=_context(request.context, policy),
        request_id=request.request_id,
        decision_id=request.decision_id,
        record=request.record,
    )


# --------------------------------------------------------------------------- Track


@dataclass(frozen=True, slots=True)
class ParsedEvent:
    """One well-formed event of a Track batch: the domain event, or why its type's contract
    rejects it (``field`` relative to the event, as ``EventResult.field`` reports it)."""

    customer_id: str
    event_id: str
    type: str
    event: Event | None
    field: str = ""
    detail: str = ""


def track_events(
    request: decision_pb2.TrackRequest, policy: CompiledPolicy, now_ms: int
) -> list[ParsedEvent]:
    """The batch, each event well formed (or the call fails: nothing is applied) and checked
    against its type's contract (a contract violation rejects that event alone)."""
    events = request.events
    if not events:
        raise ValidationError("events", "at least one event is required")
    if len(events) > MAX_EVENTS:
        raise ValidationError("events", f"more than {MAX_EVENTS} events")
    budget = [MAX_VALUES]  # all the batch's properties together
    return [
        _event(event, f"events[{index}]", policy, now_ms, budget)
        for index, event in enumerate(events)
    ]


def _event(
    event: decision_pb2.Event,
    path: str,
    policy: CompiledPolicy,
    now_ms: int,
    budget: list[int] | None = None,
) -> ParsedEvent:
    check_id(event.event_id, f"{path}.event_id")
    check_id(event.customer_id, f"{path}.customer_id")
    if not event.type:
        raise ValidationError(f"{path}.type", "required")
    _check_name(event.type, f"{path}.type")
    if not event.HasField("timestamp"):
        raise ValidationError(f"{path}.timestamp", "required")
    time_ms = _instant_ms(event.timestamp, f"{path}.timestamp", now_ms)
    contract = policy.events.get(event.type)
    declared = contract.properties if contract is not None else {}
    per_property: dict[str, ValidationError] = {}
    properties = _values(
        event.properties, f"{path}.properties", declared, _Walk(budget), problems=per_property
    )
    if event.feedback not in _FEEDBACK_KINDS:
        raise ValidationError(f"{path}.feedback", "unknown FeedbackKind value")
    check_id(event.decision_id, f"{path}.decision_id", required=False)
    if event.tracking_id:
        _check_name(event.tracking_id, f"{path}.tracking_id")
    if event.feedback != decision_pb2.FEEDBACK_KIND_UNSPECIFIED and not event.decision_id:
        raise ValidationError(f"{path}.decision_id", "required for feedback events")
    parsed = ParsedEvent(
        customer_id=event.customer_id, event_id=event.event_id, type=event.type, event=None
    )
    if contract is None:
        return _rejected(parsed, "type", "unknown event type")
    if event.version and event.version != contract.version:
        detail = f"version {event.version} is not declared (current: {contract.version})"
        return _rejected(parsed, "version", detail)
    for name, spec in contract.properties.items():
        if properties.get(name) is None:
            if spec.required:
                return _rejected(parsed, f"properties.{name}", "required property is missing")
        elif name in per_property:
            error = per_property[name]
            return _rejected(parsed, f"properties.{name}", error.message)
    for name in event.properties:
        if name not in contract.properties:
            return _rejected(parsed, _key_path("properties", name), "undeclared property")
    domain = Event(
        event_id=event.event_id,
        type=event.type,
        time_ms=time_ms,
        properties=properties,
        version=event.version,
        decision_id=event.decision_id,
        tracking_id=event.tracking_id,
        feedback=_FEEDBACK.get(event.feedback),
    )
    return ParsedEvent(
        customer_id=event.customer_id, event_id=event.event_id, type=event.type, event=domain
    )


def _rejected(parsed: ParsedEvent, field: str, detail: str) -> ParsedEvent:
    return ParsedEvent(
        customer_id=parsed.customer_id,
        event_id=parsed.event_id,
        type=parsed.type,
        event=None,
        field=field,
        detail=detail,
    )


# --------------------------------------------------------------------------- UpdateProfile


def profile_update(
    request: decision_pb2.UpdateProfileRequest, policy: CompiledPolicy, now_ms: int
) -> ProfileUpdate:
    """An UpdateProfileRequest as a :class:`ProfileUpdate`: traits against the profile contract
    (``null`` removes a trait), purposes against the policy, segment ids well formed (any id:
    segments come from the CDP, not the policy set); ``segments`` unset -> ``None``."""
    check_id(request.request_id, "request_id", required=False)
    check_id(request.customer_id, "customer_id")
    check_id(request.source, "source")
    if not request.HasField("timestamp"):
        raise ValidationError("timestamp", "required")
    timestamp_ms = _instant_ms(request.timestamp, "timestamp", now_ms)
    traits = _traits(request.traits, policy)
    consents = _consents(request, policy)
    do_not_contact = None
    if request.HasField("do_not_contact"):
        attribute = policy.consent.do_not_contact
        if attribute is None:
            raise ValidationError("do_not_contact", "the policy set declares no do-not-contact")
        if attribute in request.traits:
            raise ValidationError(
                f"traits.{attribute}", "written twice (also set by do_not_contact)"
            )
        do_not_contact = request.do_not_contact
    return ProfileUpdate(
        customer_id=request.customer_id,
        source=request.source,
        timestamp_ms=timestamp_ms,
        traits=traits,
        consents=consents,
        do_not_contact=do_not_contact,
        segments=_segments(request) if request.HasField("segments") else None,
    )


def _traits(values: Mapping[str, value_pb2.Value], policy: CompiledPolicy) -> dict[str, Any]:
    walk = _Walk()
    traits = _values(
        values,
        "traits",
        policy.profile,
        walk,
        keep_null=True,
        undeclared="undeclared profile attribute",
    )
    if walk.error is not None:
        raise walk.error
    return traits


def _consents(
    request: decision_pb2.UpdateProfileRequest, policy: CompiledPolicy
) -> tuple[ConsentUpdate, ...]:
    consents = request.consents
    if len(consents) > MAX_CONSENTS:
        raise ValidationError("consents", f"more than {MAX_CONSENTS} entries")
    seen: set[str] = set()
    out = []
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
        state = _CONSENT_STATES.get(consent.state)
        if state is None:
            raise ValidationError(f"{path}.state", "must be GRANTED or DENIED")
        expires_ms = None
        if consent.HasField("expires_at"):
            expires_ms = _timestamp_ms(consent.expires_at, f"{path}.expires_at")
        out.append(ConsentUpdate(purpose=consent.purpose, state=state, expires_ms=expires_ms))  # type: ignore[arg-type]
    return tuple(out)


def _segments(request: decision_pb2.UpdateProfileRequest) -> tuple[str, ...]:
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
    return tuple(segments)
