"""Conversion between plain Python values and ``arbiter.v1.Value`` (the one place that does it).

======================  ==========================  ===============================
Python                  ``Value`` kind              back to Python
======================  ==========================  ===============================
``None``                ``null_value``              ``None``
``bool``                ``bool_value``              ``bool``
``int`` (int64 range)   ``int_value``               ``int``
``float``               ``double_value``            ``float``
``str``                 ``string_value``            ``str``
``bytes``/``bytearray`` ``bytes_value``             ``bytes``
aware ``datetime``      ``timestamp_value``         ``datetime`` in UTC
``timedelta``           ``duration_value``          ``timedelta``
``list``/``tuple``      ``list_value``              ``list``
``Mapping[str, ...]``   ``map_value``               ``dict``
======================  ==========================  ===============================

``bool`` is tested before ``int`` (it is an ``int`` subclass), so ``True`` stays a
bool on the wire. Naive datetimes are rejected rather than guessed at. Python's
``datetime`` and ``timedelta`` hold microseconds, so nanoseconds on the wire are
truncated toward zero when read back. Non-finite floats are converted faithfully;
the server rejects them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeAlias

from google.protobuf import struct_pb2, timestamp_pb2

from arbiter.v1 import value_pb2

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "PyValue",
    "ValueConversionError",
    "fill_timestamp",
    "fill_value_map",
    "from_value",
    "from_value_map",
    "timestamp_to_datetime",
    "to_value",
    "to_value_map",
]

PyValue: TypeAlias = (
    bool
    | int
    | float
    | str
    | bytes
    | datetime
    | timedelta
    | list["PyValue"]
    | dict[str, "PyValue"]
    | None
)
"""A Python value that converts to and from ``arbiter.v1.Value``."""

DEFAULT_MAX_DEPTH = 32
"""Default nesting limit for lists and maps (it also stops reference cycles)."""

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
# google.protobuf.Duration's documented range: +-10,000 years.
_DURATION_MAX_SECONDS = 315_576_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NULL = struct_pb2.NULL_VALUE


class ValueConversionError(ValueError):
    """A value cannot be converted; ``path`` names where, e.g. ``context.cart[2]``."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


def to_value(obj: object, *, path: str = "", max_depth: int = DEFAULT_MAX_DEPTH) -> value_pb2.Value:
    """Convert a Python value to a new ``Value``; raise :class:`ValueConversionError`."""
    out = value_pb2.Value()
    _fill(out, obj, path, max_depth)
    return out


def to_value_map(
    mapping: Mapping[str, object] | None, *, path: str = "", max_depth: int = DEFAULT_MAX_DEPTH
) -> dict[str, value_pb2.Value]:
    """Convert a ``str``-keyed mapping to a dict of ``Value``."""
    if not mapping:
        return {}
    _check_mapping(mapping, path)
    return {
        key: to_value(item, path=_key_path(path, key), max_depth=max_depth)
        for key, item in mapping.items()
    }


def fill_value_map(
    target: MutableMapping[str, value_pb2.Value],
    mapping: Mapping[str, object] | None,
    *,
    path: str = "",
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> None:
    """Write ``mapping`` into a protobuf ``map<string, Value>`` field in place.

    Cheaper than :func:`to_value_map` for request building: no intermediate
    messages are copied.
    """
    if not mapping:
        return
    _check_mapping(mapping, path)
    for key, item in mapping.items():
        _fill(target[key], item, _key_path(path, key), max_depth)


def from_value(value: value_pb2.Value, *, path: str = "") -> PyValue:
    """Convert a ``Value`` to a Python value; a ``Value`` with no kind is an error."""
    kind = value.WhichOneof("kind")
    if kind is None:
        raise ValueConversionError(path, "Value has no kind set (use null_value for null)")
    return _FROM_KIND[kind](value, path)


def from_value_map(values: Mapping[str, value_pb2.Value], *, path: str = "") -> dict[str, PyValue]:
    """Convert a ``map<string, Value>`` field (or any mapping of ``Value``) to a dict."""
    return {key: from_value(item, path=_key_path(path, key)) for key, item in values.items()}


def _key_path(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _check_mapping(mapping: Mapping[Any, object], path: str) -> None:
    for key in mapping:
        if not isinstance(key, str):
            raise ValueConversionError(path, f"map keys must be str, got {type(key).__name__}")


def _fill(out: value_pb2.Value, obj: object, path: str, depth: int) -> None:
    # Order matters: bool before int, datetime before date.
    if obj is None:
        out.null_value = _NULL
    elif isinstance(obj, bool):
        out.bool_value = obj
    elif isinstance(obj, int):
        if not _INT64_MIN <= obj <= _INT64_MAX:
            raise ValueConversionError(path, f"integer {obj} is outside the int64 range")
        out.int_value = obj
    elif isinstance(obj, float):
        out.double_value = obj
    elif isinstance(obj, str):
        out.string_value = obj
    elif isinstance(obj, bytes | bytearray):
        out.bytes_value = bytes(obj)
    elif isinstance(obj, datetime):
        _fill_timestamp(out, obj, path)
    elif isinstance(obj, timedelta):
        _fill_duration(out, obj, path)
    elif isinstance(obj, Mapping):
        if depth <= 0:
            raise ValueConversionError(path, "value is nested too deeply")
        _check_mapping(obj, path)
        fields = out.map_value.fields  # selecting the kind even when empty
        out.map_value.SetInParent()
        for key, item in obj.items():
            _fill(fields[key], item, _key_path(path, key), depth - 1)
    elif isinstance(obj, list | tuple):
        if depth <= 0:
            raise ValueConversionError(path, "value is nested too deeply")
        members = out.list_value.values
        out.list_value.SetInParent()
        for index, item in enumerate(obj):
            _fill(members.add(), item, f"{path}[{index}]", depth - 1)
    elif isinstance(obj, date):
        raise ValueConversionError(path, "date is not supported; pass an aware datetime")
    else:
        raise ValueConversionError(path, f"unsupported type {type(obj).__name__}")


def fill_timestamp(target: timestamp_pb2.Timestamp, moment: datetime, *, path: str = "") -> None:
    """Write an aware ``datetime`` into a ``google.protobuf.Timestamp`` in place."""
    if not isinstance(moment, datetime):
        raise ValueConversionError(path, f"expected a datetime, got {type(moment).__name__}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueConversionError(path, "naive datetime; pass a timezone-aware datetime")
    delta = moment - _EPOCH
    target.seconds = delta.days * 86_400 + delta.seconds
    target.nanos = delta.microseconds * 1_000


def timestamp_to_datetime(stamp: timestamp_pb2.Timestamp, *, path: str = "") -> datetime:
    """Read a ``google.protobuf.Timestamp`` as an aware UTC ``datetime`` (nanos truncated)."""
    try:
        return _EPOCH + timedelta(seconds=stamp.seconds, microseconds=stamp.nanos // 1_000)
    except OverflowError as exc:
        raise ValueConversionError(path, "timestamp is outside the datetime range") from exc


def _fill_timestamp(out: value_pb2.Value, moment: datetime, path: str) -> None:
    fill_timestamp(out.timestamp_value, moment, path=path)


def _fill_duration(out: value_pb2.Value, span: timedelta, path: str) -> None:
    micros = (span.days * 86_400 + span.seconds) * 1_000_000 + span.microseconds
    seconds, rest = divmod(abs(micros), 1_000_000)
    if seconds > _DURATION_MAX_SECONDS:
        raise ValueConversionError(path, "timedelta is outside the Duration range (10,000 years)")
    sign = -1 if micros < 0 else 1
    # Duration wants seconds and nanos with the same sign.
    out.duration_value.seconds = sign * seconds
    out.duration_value.nanos = sign * rest * 1_000


def _timestamp(value: value_pb2.Value, path: str) -> datetime:
    return timestamp_to_datetime(value.timestamp_value, path=path)


def _duration(value: value_pb2.Value, path: str) -> timedelta:
    span = value.duration_value
    micros = abs(span.nanos) // 1_000
    try:
        return timedelta(seconds=span.seconds, microseconds=-micros if span.nanos < 0 else micros)
    except OverflowError as exc:
        raise ValueConversionError(path, "duration is outside the timedelta range") from exc


_FROM_KIND: dict[str, Callable[[value_pb2.Value, str], PyValue]] = {
    "null_value": lambda v, p: None,
    "bool_value": lambda v, p: v.bool_value,
    "int_value": lambda v, p: v.int_value,
    "double_value": lambda v, p: v.double_value,
    "string_value": lambda v, p: v.string_value,
    "bytes_value": lambda v, p: v.bytes_value,
    "timestamp_value": _timestamp,
    "duration_value": _duration,
    "list_value": lambda v, p: [
        from_value(item, path=f"{p}[{i}]") for i, item in enumerate(v.list_value.values)
    ],
    "map_value": lambda v, p: from_value_map(v.map_value.fields, path=p),
}
