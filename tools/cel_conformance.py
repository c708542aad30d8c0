"""Runs cases of the CEL specification's conformance suite against Arbiter's compiler.

Test tooling, not part of the installed product: ``arbiter cel conformance``
loads this file from a source checkout (``tools/cel_conformance.py``), and the
conformance and differential tests import it.

Pure logic: callers read the JSON files (format in
``shared/conformance/cel/README.md``) and pass the parsed cases in. The
oracle side — decoding expected values, declarations and types, and comparing
results — deliberately shares no code with the implementation under test
(timestamps and durations are parsed here, not by the runtime), so one bug
cannot hide itself on both sides of a comparison.

Outcome rules, per case:

- ``skipped`` (always with a reason): the case ``requires`` a feature Arbiter
  has no use for (protobuf messages and enums, containers, unknowns), or its
  values, declarations or flags need one (message types, wrapper types,
  functions without an implementation, ``disable_macros`` when the compiler
  cannot turn macros off, an unknown value kind).
- ``{"value": V}``: compile and evaluate; the result must equal V *and* have
  V's CEL type (``1`` is not ``1u`` is not ``1.0``); NaN matches NaN, maps
  compare without order. ``"type"`` additionally compares the checked type.
- ``{"error": [...]}``: evaluation must fail. A :class:`CompileError` also
  counts when the case has no bindings: the expression then fails for every
  input, and rejecting it when the policy is loaded is the stronger outcome a
  decision service wants. With bindings, only an evaluation error counts
  (the failure depends on the input). ``strict_errors=True`` accepts only an
  evaluation error, as the reference runners do. The message is not judged;
  whether it contains an expected substring is recorded in ``note``.
- ``check_only``: compile only; compare the type when ``"type"`` is given.
- Anything else raised (a Python exception other than :class:`CelError`) is a
  failure carrying the traceback; one case never stops a run.
"""

from __future__ import annotations

import base64
import dataclasses
import inspect
import math
import re
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from fractions import Fraction
from typing import Any, Final

from arbiter.policies.cel import compiler as _compiler
from arbiter.policies.cel.env import Env, FunctionDecl, Overload
from arbiter.policies.cel.errors import CelError, CompileError, EvalError
from arbiter.policies.cel.types import (
    ANY,
    BOOL,
    BYTES,
    DOUBLE,
    DURATION,
    DYN,
    ERROR,
    INT,
    NULL,
    STRING,
    TIMESTAMP,
    UINT,
    ListType,
    MapType,
    OpaqueType,
    Type,
    TypeParam,
    TypeType,
)
from arbiter.policies.cel.values import Duration, Timestamp, TypeValue, UInt

__all__ = [
    "SKIPPED_REQUIREMENTS",
    "CaseResult",
    "CaseStatus",
    "FileReport",
    "Unsupported",
    "UnsupportedFeature",
    "case_id",
    "cel_kind",
    "cel_repr",
    "decode_value",
    "parse_decl",
    "parse_type",
    "pass_rate",
    "run_case",
    "run_file",
    "values_equal",
]

# ``requires`` entries that make a case irrelevant to Arbiter, with the reason
# reported for the skip (the first listed here wins). Other entries do not
# skip: the case runs and counts.
SKIPPED_REQUIREMENTS: Final[Mapping[str, str]] = {
    "proto_message": "needs protobuf message types (Arbiter has none)",
    "proto_enum": "needs protobuf enums (Arbiter has none)",
    "proto2": "needs protobuf proto2 messages (Arbiter has none)",
    "proto3": "needs protobuf proto3 messages (Arbiter has none)",
    "container": "needs a container (namespace) for name resolution",
    "unknown": "needs unknown-value (partial evaluation) support",
    "unknowns": "needs unknown-value (partial evaluation) support",
}

# Well-known protobuf message types that are plain CEL types.
_WELL_KNOWN_MESSAGES: Final[Mapping[str, Type]] = {
    "google.protobuf.Timestamp": TIMESTAMP,
    "google.protobuf.Duration": DURATION,
}

_PRIMITIVES: Final[Mapping[str, Type]] = {
    "BOOL": BOOL,
    "INT64": INT,
    "UINT64": UINT,
    "DOUBLE": DOUBLE,
    "STRING": STRING,
    "BYTES": BYTES,
}

_WELL_KNOWN: Final[Mapping[str, Type]] = {
    "TIMESTAMP": TIMESTAMP,
    "DURATION": DURATION,
    "ANY": ANY,
}


class CaseStatus(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class CaseResult:
    """The outcome of one case. ``reason`` says why it was skipped or why it
    failed; ``expected``/``got`` are CEL-literal renderings for reports;
    ``traceback`` is set when a Python exception (not a CEL error) escaped;
    ``note`` records remarks on a pass (e.g. "rejected at compile time")."""

    id: str
    status: CaseStatus
    expr: str = ""
    reason: str = ""
    expected: str = ""
    got: str = ""
    traceback: str = ""
    note: str = ""


@dataclass(slots=True)
class FileReport:
    """Results of one suite file, in case order."""

    name: str
    results: list[CaseResult] = field(default_factory=list)

    def count(self, status: CaseStatus) -> int:
        return sum(1 for result in self.results if result.status is status)

    @property
    def rate(self) -> float | None:
        """``passed / (passed + failed)``; ``None`` when every case was skipped."""
        return pass_rate(self.count(CaseStatus.PASSED), self.count(CaseStatus.FAILED))


def pass_rate(passed: int, failed: int) -> float | None:
    ran = passed + failed
    return passed / ran if ran else None


@dataclass(frozen=True, slots=True, eq=False)
class Unsupported:
    """Stands in for a test value Arbiter cannot represent (protobuf enums and
    messages, unknown value kinds); :func:`values_equal` never matches it."""

    what: str


class UnsupportedFeature(Exception):
    """A declaration or type needs something Arbiter does not have; the case
    is skipped with ``str(exc)`` as the reason."""


# --------------------------------------------------------------------------
# Values


def decode_value(encoded: object) -> object:
    """Decode one JSON-encoded suite value into a CEL runtime value
    (see :mod:`policies.cel.values`).

    Enums, messages (except well-known types that are plain CEL values) and
    unknown kinds decode to :class:`Unsupported`; malformed data raises
    ``ValueError``.
    """
    if not isinstance(encoded, Mapping) or len(encoded) != 1:
        raise ValueError(f"a value must be an object with exactly one key, got {encoded!r}")
    ((kind, raw),) = encoded.items()
    match kind:
        case "null":
            return None
        case "bool":
            if type(raw) is not bool:
                raise ValueError(f"bad bool {raw!r}")
            return raw
        case "int":
            return _decode_integer(raw, -(2**63), 2**63 - 1)
        case "uint":
            return UInt(_decode_integer(raw, 0, 2**64 - 1))
        case "double":
            return _decode_double(raw)
        case "string":
            if not isinstance(raw, str):
                raise ValueError(f"bad string {raw!r}")
            return raw
        case "bytes":
            return _decode_bytes(raw)
        case "list":
            if not isinstance(raw, list):
                raise ValueError(f"bad list {raw!r}")
            return [decode_value(item) for item in raw]
        case "map":
            return _decode_map(raw)
        case "type":
            if not isinstance(raw, str):
                raise ValueError(f"bad type name {raw!r}")
            return TypeValue(raw)
        case "timestamp":
            return _decode_timestamp(raw)
        case "duration":
            return _decode_duration(raw)
        case "enum":
            return Unsupported("protobuf enum value")
        case "object":
            return _decode_object(raw)
        case _:
            return Unsupported(f"value kind {kind!r}")


def _decode_integer(raw: object, low: int, high: int) -> int:
    if type(raw) is int:
        value = raw
    elif isinstance(raw, str) and re.fullmatch(r"-?\d+", raw):
        value = int(raw)
    else:
        raise ValueError(f"bad integer {raw!r}")
    if not low <= value <= high:
        raise ValueError(f"integer {value} out of range")
    return value


def _decode_double(raw: object) -> float:
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return float(raw)
    if isinstance(raw, str):
        try:
            return float(raw)  # also "NaN", "Infinity", "-Infinity"
        except ValueError:
            pass
    raise ValueError(f"bad double {raw!r}")


def _decode_bytes(raw: object) -> bytes:
    if not isinstance(raw, str):
        raise ValueError(f"bad bytes {raw!r}")
    padded = raw + "=" * (-len(raw) % 4)
    try:  # standard or URL-safe alphabet, padding optional
        return base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except ValueError as exc:
        raise ValueError(f"bad base64 bytes {raw!r}") from exc


def _decode_map(raw: object) -> object:
    if isinstance(raw, Mapping):  # tolerate {"key": V} with string keys
        pairs: list[object] = [[{"string": key}, value] for key, value in raw.items()]
    elif isinstance(raw, list):
        pairs = raw
    else:
        raise ValueError(f"bad map {raw!r}")
    result: dict[object, object] = {}
    for pair in pairs:
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise ValueError(f"a map entry must be a [key, value] pair, got {pair!r}")
        key = decode_value(pair[0])
        if isinstance(key, Unsupported):
            return key
        if any(values_equal(key, seen) for seen in result):
            raise ValueError(f"duplicate map key {cel_repr(key)}")
        if key in result:  # e.g. true and 1: distinct in CEL, one key in a dict
            return Unsupported(f"map keys {cel_repr(key)} collide in a Python dict")
        result[key] = decode_value(pair[1])
    return result


def _decode_object(raw: object) -> object:
    """Well-known messages that are plain CEL values (Timestamp, Duration,
    wrappers) decode when their fields are present; the rest is Unsupported."""
    if not isinstance(raw, Mapping):
        return Unsupported("protobuf message")
    type_url = str(raw.get("type_url", raw.get("@type", "")))
    name = type_url.rsplit("/", 1)[-1]
    fields = raw.get("value", raw)
    if isinstance(fields, Mapping) and name in _WELL_KNOWN_MESSAGES:
        seconds = fields.get("seconds", 0)
        nanos = fields.get("nanos", 0)
        if type(seconds) is int and type(nanos) is int:
            total = seconds * 1_000_000_000 + nanos
            return Timestamp(total) if name == "google.protobuf.Timestamp" else Duration(total)
    return Unsupported(f"protobuf message {name or '?'}")


_RFC3339: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})"
)
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()


def _decode_timestamp(raw: object) -> Timestamp:
    if isinstance(raw, Mapping):
        return Timestamp(int(raw.get("seconds", 0)) * 1_000_000_000 + int(raw.get("nanos", 0)))
    if not isinstance(raw, str) or not (match := _RFC3339.fullmatch(raw)):
        raise ValueError(f"bad RFC 3339 timestamp {raw!r}")
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    fraction, zone = match.group(7) or "", match.group(8)
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError(f"bad time of day in {raw!r}")
    days = date(year, month, day).toordinal() - _EPOCH_ORDINAL  # ValueError on a bad date
    seconds = days * 86_400 + hour * 3_600 + minute * 60 + second
    if zone not in ("Z", "z"):
        sign = -1 if zone[0] == "-" else 1
        seconds -= sign * (int(zone[1:3]) * 3_600 + int(zone[4:6]) * 60)
    return Timestamp(seconds * 1_000_000_000 + int(fraction.ljust(9, "0") or 0))


_PROTO_DURATION: Final = re.compile(r"(-)?(\d+)(?:\.(\d{1,9}))?s")
_GO_DURATION_PART: Final = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_NANOS: Final[Mapping[str, int]] = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}


def _decode_duration(raw: object) -> Duration:
    """The protobuf JSON form (``"1.5s"``, ``"-0.000000001s"``), also the
    CEL/Go form (``"1h30m"``) and ``{"seconds": .., "nanos": ..}``."""
    if isinstance(raw, Mapping):
        return Duration(int(raw.get("seconds", 0)) * 1_000_000_000 + int(raw.get("nanos", 0)))
    if not isinstance(raw, str):
        raise ValueError(f"bad duration {raw!r}")
    if match := _PROTO_DURATION.fullmatch(raw):
        nanos = int(match.group(2)) * 1_000_000_000 + int((match.group(3) or "").ljust(9, "0"))
        return Duration(-nanos if match.group(1) else nanos)
    sign, body = (-1, raw[1:]) if raw.startswith("-") else (1, raw.removeprefix("+"))
    parts = _GO_DURATION_PART.findall(body)
    if not body or "".join(number + unit for number, unit in parts) != body:
        raise ValueError(f"bad duration {raw!r}")
    total = sum(Fraction(number) * _UNIT_NANOS[unit] for number, unit in parts)
    return Duration(sign * int(total))


def cel_kind(value: object) -> str:
    """The CEL type name of a runtime value, for comparisons and reports.
    Values outside the runtime representation get ``python:<class>``."""
    kind = type(value)
    if value is None:
        return "null_type"
    if kind is bool:
        return "bool"
    if kind is UInt:
        return "uint"
    if kind is int:
        return "int"
    if kind is float:
        return "double"
    if kind is str:
        return "string"
    if kind is bytes:
        return "bytes"
    if kind is Timestamp:
        return "google.protobuf.Timestamp"
    if kind is Duration:
        return "google.protobuf.Duration"
    if kind is TypeValue:
        return "type"
    if kind is Unsupported:
        return "unsupported"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, Mapping):
        return "map"
    return f"python:{kind.__name__}"


def values_equal(expected: object, got: object) -> bool:
    """CEL value equality plus type identity, for checking results.

    Unlike CEL's ``==``, numbers of different types never match (an ``int``
    result where a ``uint`` is expected is wrong). NaN matches NaN; ``-0.0``
    matches ``0.0``; lists compare in order, maps without order, recursively.
    """
    kind = cel_kind(expected)
    if kind != cel_kind(got) or kind == "unsupported" or kind.startswith("python:"):
        return False
    if kind == "double":
        assert isinstance(expected, float) and isinstance(got, float)
        return expected == got or (math.isnan(expected) and math.isnan(got))
    if kind == "list":
        assert isinstance(expected, list | tuple) and isinstance(got, list | tuple)
        return len(expected) == len(got) and all(
            values_equal(left, right) for left, right in zip(expected, got, strict=True)
        )
    if kind == "map":
        assert isinstance(expected, Mapping) and isinstance(got, Mapping)
        if len(expected) != len(got):
            return False
        # Match keys by CEL equality, not dict hashing: 1, 1u, 1.0 and true
        # are distinct keys here but collide as Python dict keys.
        unmatched = list(got.items())
        for key, value in expected.items():
            for index, (other_key, other_value) in enumerate(unmatched):
                if values_equal(key, other_key):
                    if not values_equal(value, other_value):
                        return False
                    del unmatched[index]
                    break
            else:
                return False
        return True
    return expected == got


def cel_repr(value: object) -> str:
    """Render a runtime value as CEL source text, for reports."""
    kind = cel_kind(value)
    if kind == "null_type":
        return "null"
    if kind == "bool":
        return "true" if value else "false"
    if kind == "uint":
        return f"{int(value)}u"  # type: ignore[call-overload]
    if kind == "int":
        return str(value)
    if kind == "double":
        assert isinstance(value, float)
        if math.isnan(value):
            return 'double("NaN")'
        if math.isinf(value):
            return 'double("Infinity")' if value > 0 else 'double("-Infinity")'
        return repr(value)
    if kind == "string":
        return _quote(str(value))
    if kind == "bytes":
        assert isinstance(value, bytes)
        return "b" + _quote(value.decode("latin-1"), bytes_mode=True)
    if kind == "list":
        assert isinstance(value, list | tuple)
        return "[" + ", ".join(cel_repr(item) for item in value) + "]"
    if kind == "map":
        assert isinstance(value, Mapping)
        return "{" + ", ".join(f"{cel_repr(k)}: {cel_repr(v)}" for k, v in value.items()) + "}"
    if isinstance(value, Timestamp):
        return f'timestamp("{_format_timestamp(value.nanos)}")'
    if isinstance(value, Duration):
        return f'duration("{_format_duration(value.nanos)}")'
    if isinstance(value, TypeValue):
        return value.name
    if isinstance(value, Unsupported):
        return f"<unsupported: {value.what}>"
    return f"<{kind} {value!r}>"


def _quote(text: str, *, bytes_mode: bool = False) -> str:
    out = ['"']
    for char in text:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif code < 0x20 or code == 0x7F or (bytes_mode and code > 0x7E):
            out.append(f"\\x{code:02x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _format_timestamp(nanos: int) -> str:
    seconds, fraction = divmod(nanos, 1_000_000_000)
    try:
        moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    except OverflowError:
        return f"<{nanos}ns since the epoch>"
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if fraction:
        text += "." + f"{fraction:09d}".rstrip("0")
    return text + "Z"


def _format_duration(nanos: int) -> str:
    sign = "-" if nanos < 0 else ""
    seconds, fraction = divmod(abs(nanos), 1_000_000_000)
    text = f"{sign}{seconds}"
    if fraction:
        text += "." + f"{fraction:09d}".rstrip("0")
    return text + "s"


# --------------------------------------------------------------------------
# Declarations and types: a small textproto reader


@dataclass(frozen=True, slots=True)
class _Scalar:
    text: str  # unescaped string contents, number or identifier text


_Message = list[tuple[str, "_Scalar | _Message"]]

_TOKEN: Final = re.compile(
    r"""
    (?P<space>\s+|\#[^\n]*)
    |(?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
    |(?P<word>[-+]?[A-Za-z0-9_.]+)
    |(?P<punct>[:{}<>,;\[\]/])
    """,
    re.VERBOSE,
)
_ESCAPE: Final = re.compile(r"\\(x[0-9a-fA-F]{1,2}|[0-7]{1,3}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)")
_SIMPLE_ESCAPES: Final[Mapping[str, str]] = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
}


def _unescape(body: str) -> str:
    def replace(match: re.Match[str]) -> str:
        escape = match.group(1)
        if escape[0] in "xuU" and len(escape) > 1:
            return chr(int(escape[1:], 16))
        if escape[0] in "01234567":
            return chr(int(escape, 8))
        return _SIMPLE_ESCAPES.get(escape, escape)

    return _ESCAPE.sub(replace, body)


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match:
            raise ValueError(f"textproto: unexpected {text[position : position + 10]!r}")
        position = match.end()
        kind = match.lastgroup or ""
        if kind == "space":
            continue
        if kind == "string":
            value = _unescape(match.group()[1:-1])
            if tokens and tokens[-1][0] == "string":  # adjacent strings concatenate
                value = tokens.pop()[1] + value
            tokens.append(("string", value))
        else:
            tokens.append((kind, match.group()))
    return tokens


class _TextprotoReader:
    """Reads textproto into ``[(field, _Scalar | nested), ...]`` without a schema."""

    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.index = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (expected is not None and token[1] != expected):
            raise ValueError(f"textproto: expected {expected or 'a token'}, got {token}")
        self.index += 1
        return token

    def message(self, closing: str | None) -> _Message:
        fields: _Message = []
        while (token := self.peek()) is not None and token[1] != closing:
            if token[1] in (",", ";"):
                self.index += 1
                continue
            name = self.field_name()
            has_colon = self.peek() == ("punct", ":")
            if has_colon:
                self.index += 1
            fields.extend((name, value) for value in self.field_values(has_colon=has_colon))
        if closing is not None:
            self.take(closing)
        return fields

    def field_name(self) -> str:
        kind, text = self.take()
        if text == "[":  # extension or Any type URL: [type.googleapis.com/x.Y]
            parts = []
            while (token := self.take())[1] != "]":
                parts.append(token[1])
            return "[" + "".join(parts) + "]"
        if kind != "word":
            raise ValueError(f"textproto: expected a field name, got {text!r}")
        return text

    def field_values(self, *, has_colon: bool) -> list[_Scalar | _Message]:
        kind, text = self.take()
        if text in ("{", "<"):
            return [self.message("}" if text == "{" else ">")]
        if text == "[" and has_colon:  # repeated shorthand: [a, b]
            values: list[_Scalar | _Message] = []
            while self.peek() is not None and self.peek() != ("punct", "]"):
                if self.peek() == ("punct", ","):
                    self.index += 1
                    continue
                values.extend(self.field_values(has_colon=True))
            self.take("]")
            return values
        if kind in ("string", "word") and has_colon:
            return [_Scalar(text)]
        raise ValueError(f"textproto: unexpected {text!r}")


def _read_textproto(text: str) -> _Message:
    return _TextprotoReader(text).message(None)


def _from_json(value: object) -> _Scalar | _Message:
    """The proto3 JSON form of a message, as the textproto reader's output."""
    if isinstance(value, Mapping):
        fields: _Message = []
        for key, item in value.items():
            items = item if isinstance(item, list) else [item]
            fields.extend((str(key), _from_json(element)) for element in items)
        return fields
    if isinstance(value, bool):
        return _Scalar("true" if value else "false")
    return _Scalar("" if value is None else str(value))


def _one(message: _Message, name: str) -> _Scalar | _Message | None:
    found = [value for key, value in message if key == name]
    return found[-1] if found else None


def _all(message: _Message, name: str) -> list[_Scalar | _Message]:
    return [value for key, value in message if key == name]


def _text(node: _Scalar | _Message | None, what: str) -> str:
    if not isinstance(node, _Scalar):
        raise ValueError(f"{what}: expected a scalar")
    return node.text


def _submessage(node: _Scalar | _Message | None, what: str) -> _Message:
    if node is None:
        return []
    if isinstance(node, _Scalar):
        raise ValueError(f"{what}: expected a message")
    return node


def _type_of(message: _Message) -> Type:
    """A ``cel.expr.Type`` message as an Arbiter type; its oneof is the first field."""
    if not message:
        return DYN  # an unset Type (e.g. ``type {}``) means any type
    kind, node = message[0]
    match kind:
        case "dyn":
            return DYN
        case "null":
            return NULL
        case "error":
            return ERROR
        case "primitive":
            name = _text(node, kind)
            if name not in _PRIMITIVES:
                raise ValueError(f"unknown primitive type {name!r}")
            return _PRIMITIVES[name]
        case "well_known":
            name = _text(node, kind)
            if name not in _WELL_KNOWN:
                raise ValueError(f"unknown well-known type {name!r}")
            return _WELL_KNOWN[name]
        case "wrapper":
            raise UnsupportedFeature(f"wrapper type {_text(node, kind).lower()} (Arbiter has none)")
        case "list_type":
            return ListType(_type_of(_submessage(_one(_submessage(node, kind), "elem_type"), kind)))
        case "map_type":
            entry = _submessage(node, kind)
            return MapType(
                _type_of(_submessage(_one(entry, "key_type"), kind)),
                _type_of(_submessage(_one(entry, "value_type"), kind)),
            )
        case "type":
            return TypeType(_type_of(_submessage(node, kind)))
        case "message_type":
            name = _text(node, kind)
            if name in _WELL_KNOWN_MESSAGES:
                return _WELL_KNOWN_MESSAGES[name]
            raise UnsupportedFeature(f"message type {name} (Arbiter has no protobuf messages)")
        case "type_param":
            return TypeParam(_text(node, kind))
        case "abstract_type":
            body = _submessage(node, kind)
            return OpaqueType(
                _text(_one(body, "name"), "abstract_type.name"),
                tuple(_type_of(_submessage(p, kind)) for p in _all(body, "parameter_types")),
            )
        case "function":
            raise UnsupportedFeature("function-typed values")
        case _:
            raise ValueError(f"unknown type kind {kind!r}")


def parse_type(encoded: str | Mapping[str, object]) -> Type:
    """A ``cel.expr.Type`` as one-line textproto (``list_type { elem_type {
    primitive: INT64 } }``) or proto3 JSON (``{"primitive": "INT64"}``).

    Raises :class:`UnsupportedFeature` for message and wrapper types, and
    ``ValueError`` when the text is not a Type.
    """
    message = _read_textproto(encoded) if isinstance(encoded, str) else _from_json(encoded)
    return _type_of(_submessage(message, "type"))


def parse_decl(encoded: str | Mapping[str, object]) -> tuple[str, Type | FunctionDecl]:
    """A ``cel.expr.Decl`` (textproto or proto3 JSON) as ``(name, Type)`` for
    an identifier or ``(name, FunctionDecl)`` for a function; function
    overloads carry no implementation (usable for type-checking only).

    Raises :class:`UnsupportedFeature` for message types, ``ValueError`` for
    anything that is not a Decl.
    """
    message = _submessage(
        _read_textproto(encoded) if isinstance(encoded, str) else _from_json(encoded), "decl"
    )
    name = _text(_one(message, "name"), "decl.name")
    ident, function = _one(message, "ident"), _one(message, "function")
    if ident is not None:
        return name, _type_of(_submessage(_one(_submessage(ident, "ident"), "type"), "ident"))
    if function is not None:
        overloads = []
        for overload in _all(_submessage(function, "function"), "overloads"):
            body = _submessage(overload, "overloads")
            instance = _one(body, "is_instance_function")
            overloads.append(
                Overload(
                    id=_text(_one(body, "overload_id"), "overload_id"),
                    params=tuple(_type_of(_submessage(p, "params")) for p in _all(body, "params")),
                    result=_type_of(_submessage(_one(body, "result_type"), "result_type")),
                    receiver=isinstance(instance, _Scalar) and instance.text == "true",
                )
            )
        return name, FunctionDecl(name, tuple(overloads))
    raise ValueError(f"declaration {name!r} is neither an ident nor a function")


def _render_type(type_: Type | str) -> str:
    return re.sub(r"\s+", "", str(type_))


def _expected_type(encoded: object) -> str:
    """The expected deduced type, rendered as a CEL type name. Accepts a Type
    as textproto or JSON, or a CEL type name (``"list(int)"``)."""
    if isinstance(encoded, Mapping):
        return _render_type(parse_type(encoded))
    if not isinstance(encoded, str):
        raise ValueError(f"bad expected type {encoded!r}")
    try:
        return _render_type(parse_type(encoded))
    except ValueError:
        return _render_type(encoded)


# --------------------------------------------------------------------------
# Running cases


class _Skip(Exception):
    pass


class _BadData(Exception):
    pass


def case_id(case: Mapping[str, object]) -> str:
    """The stable ``file/section/name`` id of a case."""
    return f"{case.get('file', '?')}/{case.get('section', '?')}/{case.get('name', '?')}"


def _contains_unsupported(value: object) -> Unsupported | None:
    if isinstance(value, Unsupported):
        return value
    if isinstance(value, list | tuple):
        for item in value:
            if found := _contains_unsupported(item):
                return found
    if isinstance(value, Mapping):
        for pair in value.items():
            if found := _contains_unsupported(list(pair)):
                return found
    return None


def _decode_for_case(encoded: object, what: str) -> object:
    try:
        value = decode_value(encoded)
    except (ValueError, TypeError, KeyError) as exc:
        raise _BadData(f"cannot decode {what}: {exc}") from exc
    if unsupported := _contains_unsupported(value):
        raise _Skip(f"{what} needs {unsupported.what}")
    return value


def _compile_accepts(keyword: str) -> bool:
    try:
        return keyword in inspect.signature(_compiler.compile).parameters
    except (TypeError, ValueError):  # pragma: no cover - not introspectable
        return False


def _any_kwargs(**options: Any) -> dict[str, Any]:
    # Env fields added after this runner was written (container, disable_macros)
    # are set by name; their types are the compiler's business.
    return options


def _build_env(
    case: Mapping[str, object], bindings: Mapping[str, object], *, check_only: bool
) -> tuple[Env, dict[str, bool]]:
    variables: dict[str, Type] = {}
    functions: dict[str, FunctionDecl] = {}
    type_env = case.get("type_env") or []
    if not isinstance(type_env, list):
        raise _BadData("type_env must be a list")
    for entry in type_env:
        decl = entry.get("decl", entry) if isinstance(entry, Mapping) else entry
        try:
            name, declared = parse_decl(decl)
        except UnsupportedFeature as exc:
            raise _Skip(f"declaration needs {exc}") from exc
        except ValueError as exc:
            raise _BadData(f"cannot read declaration {decl!r}: {exc}") from exc
        if isinstance(declared, FunctionDecl):
            if name in functions:
                declared = FunctionDecl(name, functions[name].overloads + declared.overloads)
            functions[name] = declared
        else:
            variables[name] = declared
    if functions and not check_only:
        raise _Skip(f"declares function(s) without an implementation: {', '.join(functions)}")
    disable_check = bool(case.get("disable_check", False))
    if disable_check:
        # Unchecked means everything is dyn: bound names need no declaration.
        for name in bindings:
            variables.setdefault(name, DYN)
    env = Env(variables=variables, functions=functions, disable_check=disable_check)
    env_fields = {f.name for f in dataclasses.fields(Env)}
    options: dict[str, bool] = {}
    if case.get("disable_macros"):
        if "disable_macros" in env_fields:
            env = dataclasses.replace(env, **_any_kwargs(disable_macros=True))
        elif _compile_accepts("macros"):
            options["macros"] = False
        else:
            raise _Skip("disable_macros is not supported by the compiler")
    if container := case.get("container"):
        if "container" not in env_fields:
            raise _Skip(f"container {container!r} (namespaces) is not supported by the compiler")
        env = dataclasses.replace(env, **_any_kwargs(container=container))
    return env, options


def run_case(case: Mapping[str, object], *, strict_errors: bool = False) -> CaseResult:
    """Run one suite case; never raises (see the module docstring for the rules)."""
    ident, expr = case_id(case), str(case.get("expr", ""))
    try:
        return _run_case(case, ident, expr, strict_errors=strict_errors)
    except _Skip as skip:
        return CaseResult(ident, CaseStatus.SKIPPED, expr, reason=str(skip))
    except _BadData as bad:
        return CaseResult(ident, CaseStatus.FAILED, expr, reason=f"bad test data: {bad}")
    except Exception as exc:
        return CaseResult(
            ident,
            CaseStatus.FAILED,
            expr,
            reason=f"crash: {type(exc).__name__}: {exc}",
            traceback=traceback.format_exc(),
        )


def _run_case(
    case: Mapping[str, object], ident: str, expr: str, *, strict_errors: bool
) -> CaseResult:
    def result(status: CaseStatus, reason: str = "", **extra: str) -> CaseResult:
        return CaseResult(ident, status, expr, reason=reason, **extra)

    requires = set(_as_list(case.get("requires")))
    for requirement, why in SKIPPED_REQUIREMENTS.items():  # most fundamental reason first
        if requirement in requires:
            raise _Skip(f"requires {requirement}: {why}")

    expect = case.get("expect")
    if not isinstance(expect, Mapping):
        raise _BadData("missing 'expect'")
    unknown_keys = set(expect) - {"value", "type", "error"}
    if unknown_keys or not expect:
        raise _Skip(f"expectation kind {', '.join(sorted(unknown_keys)) or '(none)'} unsupported")
    wants_error = "error" in expect
    expected_value = (
        _decode_for_case(expect["value"], "expected value") if "value" in expect else None
    )
    try:
        expected_type = _expected_type(expect["type"]) if "type" in expect else None
    except UnsupportedFeature as exc:
        raise _Skip(f"expected type needs {exc}") from exc
    except ValueError as exc:
        raise _BadData(f"cannot read expected type: {exc}") from exc
    expected_text = (
        cel_repr(expected_value) if "value" in expect else ("<error>" if wants_error else "")
    )
    if expected_type is not None:
        expected_text += f" : {expected_type}" if expected_text else expected_type

    raw_bindings = case.get("bindings") or {}
    if not isinstance(raw_bindings, Mapping):
        raise _BadData("bindings must be an object")
    activation = {
        str(name): _decode_for_case(value, f"binding {name!r}")
        for name, value in raw_bindings.items()
    }
    check_only = bool(case.get("check_only", False))
    env, options = _build_env(case, activation, check_only=check_only)

    try:
        program = _compiler.compile(expr, env, **options)
    except CompileError as exc:
        got = f"compile error: {exc}"
        if wants_error and not check_only and (strict_errors or activation):
            return result(
                CaseStatus.FAILED,
                "expected an evaluation error, got a compile error",
                expected=expected_text,
                got=got,
            )
        if wants_error:
            return result(
                CaseStatus.PASSED, note="rejected at compile time" + _message_note(exc, expect)
            )
        return result(CaseStatus.FAILED, "compile error", expected=expected_text, got=got)

    if expected_type is not None:
        got_type = _render_type(program.result_type)
        if got_type != expected_type:
            return result(
                CaseStatus.FAILED,
                "wrong deduced type",
                expected=expected_type,
                got=got_type,
            )
    if check_only:
        if wants_error:
            return result(
                CaseStatus.FAILED,
                "expected a compile error",
                expected=expected_text,
                got=f"compiled: {_render_type(program.result_type)}",
            )
        return result(CaseStatus.PASSED)

    try:
        value = program.evaluate(activation)
    except EvalError as exc:
        if wants_error:
            return result(CaseStatus.PASSED, note=_message_note(exc, expect).lstrip("; "))
        return result(
            CaseStatus.FAILED,
            "evaluation error",
            expected=expected_text,
            got=f"error: {type(exc).__name__}: {exc}",
        )
    except CelError as exc:  # a CelError that is neither compile nor eval: a contract breach
        return result(
            CaseStatus.FAILED,
            f"unexpected {type(exc).__name__} from evaluate()",
            expected=expected_text,
            got=str(exc),
        )
    got_text = cel_repr(value)
    if wants_error:
        return result(CaseStatus.FAILED, "expected an error", expected=expected_text, got=got_text)
    if "value" in expect and not values_equal(expected_value, value):
        return result(
            CaseStatus.FAILED,
            "wrong value",
            expected=expected_text,
            got=f"{got_text} ({cel_kind(value)})",
        )
    return result(CaseStatus.PASSED)


def _as_list(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Iterable):
        return [str(item) for item in value]
    return [str(value)]


def _message_note(exc: Exception, expect: Mapping[str, object]) -> str:
    wanted = _as_list(expect.get("error"))
    if not wanted:
        return ""
    message = str(exc).lower()
    if any(part.lower() in message for part in wanted):
        return "; message matches"
    return f"; message differs from {wanted}"


def run_file(
    name: str,
    cases: Sequence[Mapping[str, object]],
    *,
    strict_errors: bool = False,
    on_result: Callable[[CaseResult], None] | None = None,
) -> FileReport:
    """Run every case of one suite file (already parsed)."""
    report = FileReport(name)
    for case in cases:
        outcome = run_case(case, strict_errors=strict_errors)
        report.results.append(outcome)
        if on_result is not None:
            on_result(outcome)
    return report
