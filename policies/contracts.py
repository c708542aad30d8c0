"""Contracts -> CEL environments, and the domain functions policy expressions may call.

Variables every policy expression sees (typed from the contracts):

================================  ==========================================
``now``                           timestamp of the decision / event
``profile.<attribute>``           declared profile attributes, typed
``profile.has("attr")``           whether the attribute has a value
``context.<field>``               declared request-context fields, typed
``context.has("field")``          whether the request carried the field
``request.customer_id``           string
``request.placement``             string (``""`` when none)
``request.channels``              list(string): channels the caller allows
``events.count(type, window)``    int: events of ``type`` in ``(now - window, now]``
``events.count(type)``            int: all retained events of ``type``
``events.since(type)``            duration since the last ``type`` event; never
                                  seen: the largest duration (~292 years), so
                                  ``events.since("purchase") > duration("720h")``
                                  is true for a customer who never purchased
``events.seen(type)``             bool: at least one ``type`` event retained
``events.last(type)``             timestamp of the last ``type`` event; error if never seen
``segments.contains(name)``       bool: segment membership
``journeys.active(id)``           bool: the customer is in journey ``id``
``journeys.stage(id)``            string: current stage, ``""`` when not in it
``customer.local_hour()``         int 0-23 in the customer's time zone
``customer.local_weekday()``      int 0-6, 0 = Sunday (CEL ``getDayOfWeek``)
``customer.timezone()``           string: the resolved IANA zone
================================  ==========================================

Expressions reacting to an event (journey triggers, transitions on an event,
exits, dedup keys) also see ``event.type``, ``event.id``, ``event.time``,
``event.version`` and ``event.properties.<name>`` typed by that event type
(plus ``event.properties.has("name")``). The arbitration score also sees
``priority`` (int), ``value`` (double), ``propensity`` (double) and
``action.id`` / ``action.channel`` / ``action.journey`` (strings) /
``action.tags`` (list(string)).

``profile``, ``context``, ``request``, ``event``, ``events``, ``segments``,
``journeys`` and ``customer`` are opaque: selecting an undeclared field is a
compile error (the schema-drift guard), and CEL's ``has()`` macro does not
apply to them -- use ``profile.has("x")``. Reading an attribute that is unset
and has no declared ``default`` is an evaluation error, which the engine
treats fail-safe (not eligible / suppressed).

The domain functions are pure: they read only the views bound into the
activation (:func:`arbiter.policies.activation.build_activation`), never I/O or a clock.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from . import cel
from .cel import timefns
from .cel.errors import EvalError
from .snapshot import EventCounter, JourneyState, ProfileValue, event_count

__all__ = [
    "CONTEXT",
    "CUSTOMER",
    "DOMAIN_FUNCTIONS",
    "EVENT",
    "EVENTS",
    "EVENT_PROPERTIES",
    "JOURNEYS",
    "NEVER",
    "PROFILE",
    "REQUEST",
    "SEGMENTS",
    "CustomerView",
    "EventsView",
    "FieldsView",
    "JourneysView",
    "SegmentsView",
    "base_variables",
    "event_variables",
    "parse_type",
    "score_variables",
]

PROFILE: Final = cel.OpaqueType("arbiter.Profile")
CONTEXT: Final = cel.OpaqueType("arbiter.Context")
REQUEST: Final = cel.OpaqueType("arbiter.Request")
EVENT: Final = cel.OpaqueType("arbiter.Event")
EVENT_PROPERTIES: Final = cel.OpaqueType("arbiter.EventProperties")
EVENTS: Final = cel.OpaqueType("arbiter.Events")
SEGMENTS: Final = cel.OpaqueType("arbiter.Segments")
JOURNEYS: Final = cel.OpaqueType("arbiter.Journeys")
CUSTOMER: Final = cel.OpaqueType("arbiter.Customer")
ACTION: Final = cel.OpaqueType("arbiter.Action")

_NS_PER_MS: Final = 1_000_000
# "Never happened": the largest CEL duration.
NEVER: Final = cel.Duration(2**63 - 1)

# ----------------------------------------------------------------- types


_SCALARS: Final[dict[str, cel.Type]] = {
    "string": cel.STRING,
    "int": cel.INT,
    "uint": cel.UINT,
    "double": cel.DOUBLE,
    "bool": cel.BOOL,
    "bytes": cel.BYTES,
    "timestamp": cel.TIMESTAMP,
    "duration": cel.DURATION,
    "dyn": cel.DYN,
}
_TYPE_TOKEN: Final = re.compile(r"\s*([A-Za-z_]+|\(|\)|,)")


def parse_type(text: str) -> cel.Type:
    """``string``, ``int``, ``uint``, ``double``, ``bool``, ``bytes``, ``timestamp``,
    ``duration``, ``dyn``, ``list(T)``, ``map(K, V)``. Raises ``ValueError``."""
    tokens: list[str] = []
    pos = 0
    stripped = text.rstrip()
    while pos < len(stripped):
        match = _TYPE_TOKEN.match(stripped, pos)
        if match is None:
            raise ValueError(f"invalid type `{text}`")
        tokens.append(match.group(1))
        pos = match.end()

    def parse(i: int) -> tuple[cel.Type, int]:
        if i >= len(tokens):
            raise ValueError(f"invalid type `{text}`")
        name = tokens[i]
        if name in _SCALARS:
            return _SCALARS[name], i + 1
        if name in ("list", "map") and i + 1 < len(tokens) and tokens[i + 1] == "(":
            first, j = parse(i + 2)
            if name == "list":
                if j >= len(tokens) or tokens[j] != ")":
                    raise ValueError(f"invalid type `{text}`: expected `)`")
                return cel.ListType(first), j + 1
            if j >= len(tokens) or tokens[j] != ",":
                raise ValueError(f"invalid type `{text}`: map needs a key and a value type")
            if first not in (cel.STRING, cel.INT, cel.UINT, cel.BOOL, cel.DYN):
                raise ValueError(f"invalid type `{text}`: map keys are string, int, uint or bool")
            second, k = parse(j + 1)
            if k >= len(tokens) or tokens[k] != ")":
                raise ValueError(f"invalid type `{text}`: expected `)`")
            return cel.MapType(first, second), k + 1
        raise ValueError(
            f"unknown type `{text}`; use string, int, uint, double, bool, bytes, "
            "timestamp, duration, dyn, list(T) or map(K, V)"
        )

    result, end = parse(0)
    if end != len(tokens):
        raise ValueError(f"invalid type `{text}`")
    return result


# ----------------------------------------------------------------- runtime views


class FieldsView:
    """The value bound to ``profile`` / ``context`` / ``event.properties``: answers ``has()``."""

    __slots__ = ("present",)

    def __init__(self, present: Mapping[str, object] | frozenset[str]) -> None:
        self.present = present

    def has(self, name: str) -> bool:
        if isinstance(self.present, frozenset):
            return name in self.present
        value = self.present.get(name)
        if isinstance(value, ProfileValue):
            value = value.value  # a removed attribute is a tombstone: not present
        return value is not None


class EventsView:
    """The value bound to ``events``: the snapshot's counters at ``now``."""

    __slots__ = ("counters", "now_ms")

    def __init__(self, counters: Mapping[str, EventCounter], now_ms: int) -> None:
        self.counters = counters
        self.now_ms = now_ms

    def count(self, event_type: str, window: cel.Duration | None = None) -> int:
        counter = self.counters.get(event_type)
        if counter is None:
            return 0
        if window is None:
            return counter.total
        if window.nanos < 0:
            raise EvalError("events.count: negative window")
        return event_count(counter, self.now_ms, window.nanos // _NS_PER_MS)

    def since(self, event_type: str) -> cel.Duration:
        counter = self.counters.get(event_type)
        if counter is None or counter.last_ms is None:
            return NEVER
        return cel.Duration((self.now_ms - counter.last_ms) * _NS_PER_MS)

    def seen(self, event_type: str) -> bool:
        counter = self.counters.get(event_type)
        return counter is not None and counter.last_ms is not None

    def last(self, event_type: str) -> cel.Timestamp:
        counter = self.counters.get(event_type)
        if counter is None or counter.last_ms is None:
            raise EvalError(f"events.last: no '{event_type}' event seen")
        return cel.Timestamp(counter.last_ms * _NS_PER_MS)


class SegmentsView:
    __slots__ = ("segments",)

    def __init__(self, segments: frozenset[str]) -> None:
        self.segments = segments


class JourneysView:
    __slots__ = ("states",)

    def __init__(self, states: Mapping[str, JourneyState]) -> None:
        self.states = states

    def stage(self, journey: str) -> str:
        state = self.states.get(journey)
        return state.stage if state is not None and state.status == "active" else ""


class CustomerView:
    """The value bound to ``customer``: local time in the customer's zone
    (computed on first use; an invalid zone falls back to the set's default)."""

    __slots__ = ("_hour", "_weekday", "default_tz", "now", "tz")

    def __init__(self, now: cel.Timestamp, tz: str, default_tz: str) -> None:
        self.now = now
        self.tz = tz
        self.default_tz = default_tz
        self._hour: int | None = None
        self._weekday: int | None = None

    def _resolve(self) -> None:
        try:
            self._hour = timefns.local_hour(self.now, self.tz)
            self._weekday = timefns.local_weekday(self.now, self.tz)
        except EvalError:
            self.tz = self.default_tz
            self._hour = timefns.local_hour(self.now, self.tz)
            self._weekday = timefns.local_weekday(self.now, self.tz)

    def local_hour(self) -> int:
        if self._hour is None:
            self._resolve()
        assert self._hour is not None
        return self._hour

    def local_weekday(self) -> int:
        if self._weekday is None:
            self._resolve()
        assert self._weekday is not None
        return self._weekday

    def timezone(self) -> str:
        if self._hour is None:
            self._resolve()
        return self.tz


# ----------------------------------------------------------------- functions


def _fields_has(view: FieldsView, name: str) -> bool:
    return name in view.present


def _events_count_window(view: EventsView, event_type: str, window: cel.Duration) -> int:
    return view.count(event_type, window)


def _events_count_all(view: EventsView, event_type: str) -> int:
    return view.count(event_type)


def _segments_contains(view: SegmentsView, name: str) -> bool:
    return name in view.segments


def _journeys_active(view: JourneysView, journey: str) -> bool:
    state = view.states.get(journey)
    return state is not None and state.status == "active"


def _o(overload_id: str, params: tuple[cel.Type, ...], result: cel.Type, impl: Any) -> cel.Overload:
    return cel.Overload(overload_id, params, result, impl, receiver=True)


DOMAIN_FUNCTIONS: Final[tuple[cel.FunctionDecl, ...]] = (
    cel.FunctionDecl(
        "has",
        (
            _o("profile_has_string", (PROFILE, cel.STRING), cel.BOOL, _fields_has),
            _o("context_has_string", (CONTEXT, cel.STRING), cel.BOOL, _fields_has),
            _o(
                "event_properties_has_string", (EVENT_PROPERTIES, cel.STRING), cel.BOOL, _fields_has
            ),
        ),
        'Whether a profile attribute / context field / event property has a value: profile.has("age").',
    ),
    cel.FunctionDecl(
        "count",
        (
            _o(
                "events_count_string_duration",
                (EVENTS, cel.STRING, cel.DURATION),
                cel.INT,
                _events_count_window,
            ),
            _o("events_count_string", (EVENTS, cel.STRING), cel.INT, _events_count_all),
        ),
        'Events of a type in the rolling window ending now: events.count("purchase", duration("168h")).',
    ),
    cel.FunctionDecl(
        "since",
        (_o("events_since_string", (EVENTS, cel.STRING), cel.DURATION, EventsView.since),),
        "Time since the last event of a type; the largest duration when never seen.",
    ),
    cel.FunctionDecl(
        "seen",
        (_o("events_seen_string", (EVENTS, cel.STRING), cel.BOOL, EventsView.seen),),
        "Whether an event of the type was ever seen (within retention).",
    ),
    cel.FunctionDecl(
        "last",
        (_o("events_last_string", (EVENTS, cel.STRING), cel.TIMESTAMP, EventsView.last),),
        "Time of the last event of a type; an error when never seen.",
    ),
    cel.FunctionDecl(
        "contains",
        (_o("segments_contains_string", (SEGMENTS, cel.STRING), cel.BOOL, _segments_contains),),
        'Segment membership: segments.contains("vip").',
    ),
    cel.FunctionDecl(
        "active",
        (_o("journeys_active_string", (JOURNEYS, cel.STRING), cel.BOOL, _journeys_active),),
        "Whether the customer is currently in the journey.",
    ),
    cel.FunctionDecl(
        "stage",
        (_o("journeys_stage_string", (JOURNEYS, cel.STRING), cel.STRING, JourneysView.stage),),
        'The customer\'s current stage in the journey, "" when not in it.',
    ),
    cel.FunctionDecl(
        "local_hour",
        (_o("customer_local_hour", (CUSTOMER,), cel.INT, CustomerView.local_hour),),
        "Hour of day (0-23) in the customer's time zone.",
    ),
    cel.FunctionDecl(
        "local_weekday",
        (_o("customer_local_weekday", (CUSTOMER,), cel.INT, CustomerView.local_weekday),),
        "Day of week (0 = Sunday) in the customer's time zone.",
    ),
    cel.FunctionDecl(
        "timezone",
        (_o("customer_timezone", (CUSTOMER,), cel.STRING, CustomerView.timezone),),
        "The customer's resolved IANA time zone.",
    ),
)


# ----------------------------------------------------------------- variables


def base_variables(
    profile: Mapping[str, cel.Type], context: Mapping[str, cel.Type]
) -> dict[str, cel.Type]:
    """Variables of every policy expression (see the module docstring)."""
    variables: dict[str, cel.Type] = {
        "now": cel.TIMESTAMP,
        "profile": PROFILE,
        "context": CONTEXT,
        "request": REQUEST,
        "request.customer_id": cel.STRING,
        "request.placement": cel.STRING,
        "request.channels": cel.ListType(cel.STRING),
        "events": EVENTS,
        "segments": SEGMENTS,
        "journeys": JOURNEYS,
        "customer": CUSTOMER,
    }
    for name, t in profile.items():
        variables[f"profile.{name}"] = t
    for name, t in context.items():
        variables[f"context.{name}"] = t
    return variables


def event_variables(properties: Mapping[str, cel.Type]) -> dict[str, cel.Type]:
    """Extra variables of expressions reacting to an event with these properties."""
    variables: dict[str, cel.Type] = {
        "event": EVENT,
        "event.type": cel.STRING,
        "event.id": cel.STRING,
        "event.time": cel.TIMESTAMP,
        "event.version": cel.INT,
        "event.properties": EVENT_PROPERTIES,
    }
    for name, t in properties.items():
        variables[f"event.properties.{name}"] = t
    return variables


def score_variables() -> dict[str, cel.Type]:
    """Extra variables of the arbitration score (bound per candidate)."""
    return {
        "priority": cel.INT,
        "journey_priority": cel.INT,
        "value": cel.DOUBLE,
        "propensity": cel.DOUBLE,
        "action": ACTION,
        "action.id": cel.STRING,
        "action.channel": cel.STRING,
        "action.journey": cel.STRING,
        "action.tags": cel.ListType(cel.STRING),
    }
