"""Hypothesis strategies that generate well-typed CEL expressions (as text) plus an activation.

Expressions are built top-down from a wanted result type with a bounded
depth; every production is one the CEL type checker accepts for the
declared :data:`VARIABLES`, so a rejection by the oracle's checker is a
generator bug (the differential test asserts it). Values are chosen to hit
the edges: int64/uint64 bounds (overflow), division by zero, NaN/infinity,
unicode strings, out-of-range indexes, missing map keys, timestamp range
limits, time zones.

Only the fixed environment :data:`VARIABLES` is used, so each engine builds
its environment once per test module.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from hypothesis import strategies as st

from arbiter.policies.cel import types as t
from arbiter.policies.cel.values import INT64_MAX, INT64_MIN, UINT64_MAX, Duration, Timestamp, UInt

__all__ = [
    "MIXED_BOOL",
    "TIME_BOOL",
    "TIME_INT",
    "TIME_STRING",
    "TYPES",
    "VARIABLES",
    "Case",
    "activations",
    "cases",
    "render_double",
    "render_int",
    "render_string",
]

Draw = Callable[[st.SearchStrategy[Any]], Any]
_T = TypeVar("_T")

# Generator-level type names (a small closed world).
INT, UINT, DOUBLE, BOOL, STRING = "int", "uint", "double", "bool", "string"
LIST_INT, LIST_STRING, MAP_STRING_INT = "list_int", "list_string", "map_string_int"
TIMESTAMP, DURATION = "timestamp", "duration"
TYPES = (
    INT,
    UINT,
    DOUBLE,
    BOOL,
    STRING,
    LIST_INT,
    LIST_STRING,
    MAP_STRING_INT,
    TIMESTAMP,
    DURATION,
)
# Focus types for the time-oriented test: int, bool and string results, but
# only from productions over timestamps and durations.
TIME_INT, TIME_BOOL, TIME_STRING = "time_int", "time_bool", "time_string"
# A bool from a comparison of two differently typed numbers, without dyn():
# int/uint against double (the integer converts to the nearest double) and
# int against uint (exact).
MIXED_BOOL = "mixed_bool"
_FOCUS = (TIME_INT, TIME_BOOL, TIME_STRING, MIXED_BOOL)
_ELEM = {LIST_INT: INT, LIST_STRING: STRING}

# The declared environment, shared by every generated case.
VARIABLES: dict[str, t.Type] = {
    "i": t.INT,
    "j": t.INT,
    "u": t.UINT,
    "f": t.DOUBLE,
    "b": t.BOOL,
    "s": t.STRING,
    "li": t.ListType(t.INT),
    "ls": t.ListType(t.STRING),
    "m": t.MapType(t.STRING, t.INT),
    "ts": t.TIMESTAMP,
    "du": t.DURATION,
    # A loosely typed record, as the decision service sees customer profiles.
    # Its keys may be absent (no-such-key errors, has()).
    "profile": t.MapType(t.STRING, t.DYN),
}
_VARS_OF: dict[str, tuple[str, ...]] = {
    INT: ("i", "j", "profile.age", "profile['age']"),
    UINT: ("u",),
    DOUBLE: ("f", "profile.score"),
    BOOL: ("b", "profile.vip"),
    STRING: ("s", "profile.name"),
    LIST_INT: ("li",),
    LIST_STRING: ("ls", "profile.tags"),
    MAP_STRING_INT: ("m",),
    TIMESTAMP: ("ts",),
    DURATION: ("du",),
}

_TYPE_NAMES = {
    INT: "int",
    UINT: "uint",
    DOUBLE: "double",
    BOOL: "bool",
    STRING: "string",
    LIST_INT: "list",
    LIST_STRING: "list",
    MAP_STRING_INT: "map",
    TIMESTAMP: "google.protobuf.Timestamp",
    DURATION: "google.protobuf.Duration",
}
MAP_KEYS = ("a", "b", "c", "age", "ä")
_MIXED_PAIRS = (
    (INT, DOUBLE),
    (DOUBLE, INT),
    (UINT, DOUBLE),
    (DOUBLE, UINT),
    (INT, UINT),
    (UINT, INT),
)
SELECT_KEYS = ("a", "b", "c")  # usable as `m.key`
TIME_ZONES = (
    "UTC",
    "+00:00",
    "+05:30",
    "-08:00",
    "23:59",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
)
TS_ACCESSORS = (
    "getFullYear",
    "getMonth",
    "getDayOfYear",
    "getDayOfMonth",
    "getDate",
    "getDayOfWeek",
    "getHours",
    "getMinutes",
    "getSeconds",
    "getMilliseconds",
)
DUR_ACCESSORS = ("getHours", "getMinutes", "getSeconds", "getMilliseconds")
# RE2-safe patterns whose meaning does not depend on the regex flavour.
PATTERNS = (
    "^a",
    "b$",
    "[0-9]+",
    "a.c",
    "^[a-z]*$",
    "(ab)+",
    "é",
    "^$",
    "x|y",
    ".*",
    "^.{2,3}$",
    "[^a-c]",
    "\\d",
    "(?i)abc",
)
NUMERIC_STRINGS = (
    "0",
    "-0",
    "12",
    "-7",
    "+5",
    " 1",
    "1.5",
    "1e3",
    ".5",
    "0x10",
    "abc",
    "",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "nan",
    "NaN",
    "inf",
    "-Infinity",
    "1e400",
)
BAD_TIMESTAMPS = (
    "2020-13-01T00:00:00Z",
    "2020-01-01 00:00:00Z",
    "2020-01-01T00:00:00",
    "10000-01-01T00:00:00Z",
    "0000-12-31T23:59:59Z",
)
BAD_DURATIONS = ("1d", "h", "1.5", "--1s", "315576000001s", "1 s")

_INT_EDGES = (
    0,
    1,
    -1,
    2,
    3,
    -2,
    7,
    10,
    100,
    2**31,
    2**32,
    INT64_MAX,
    INT64_MAX - 1,
    INT64_MIN,
    INT64_MIN + 1,
    2**62,
    -(2**62),
    3037000499,
    3037000500,  # ~sqrt(INT64_MAX)
    2**53,  # beyond it, not every integer is a double
    2**53 + 1,
    -(2**53) - 1,
    2**63 - 512,
    2**63 - 513,
)
_UINT_EDGES = (
    0,
    1,
    2,
    3,
    10,
    2**32,
    2**63,
    UINT64_MAX,
    UINT64_MAX - 1,
    4294967296,
    2**53 + 1,
    2**64 - 1024,
    2**64 - 1025,
)
_DOUBLE_EDGES = (
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    1.5,
    2.5,
    -2.5,
    0.1,
    1e300,
    -1e308,
    5e-324,
    9.223372036854775807e18,
    -9.223372036854775808e18,
    1.8446744073709552e19,
    9007199254740992.0,  # 2**53
    -9007199254740992.0,
    9.223372036854774784e18,  # the double below 2**63
    1.8446744073709549568e19,  # the double below 2**64
    math.inf,
    -math.inf,
    math.nan,
)

ints = st.one_of(
    st.sampled_from(_INT_EDGES), st.integers(-100, 100), st.integers(INT64_MIN, INT64_MAX)
)
uints = st.one_of(
    st.sampled_from(_UINT_EDGES), st.integers(0, 100), st.integers(0, UINT64_MAX)
).map(UInt)
doubles = st.one_of(
    st.sampled_from(_DOUBLE_EDGES),
    st.integers(-100, 100).map(float),
    st.floats(allow_nan=True, allow_infinity=True),
)
texts = st.one_of(
    st.sampled_from(("", "a", "abc", "ab", "xyz", "é", "ü", "🙂", "a.c", "DE", "vip")),
    st.text(max_size=6),
    st.text(alphabet="abcxy", max_size=5),
)

# Timestamps in the CEL range (years 1..9999). Bindings are limited to
# microseconds (oracle limit); literals carry nanoseconds.
_TS_MIN = -62135596800 * 10**9
_TS_MAX = 253402300799 * 10**9 + 999_999_999
_NEAR = 1_600_000_000 * 10**9  # around 2020
# Mostly within a few years of each other: a difference of timestamps more
# than ~292 years apart leaves Arbiter's duration range (see the test's
# KNOWN_DIFFERENCES), which would mask everything computed from it.
_near_timestamps = st.integers(_NEAR - 10**17, _NEAR + 10**17)
timestamp_nanos = st.one_of(
    _near_timestamps,
    _near_timestamps,
    _near_timestamps,
    st.integers(_TS_MIN, _TS_MAX),
    st.sampled_from((0, -1, _TS_MIN, _TS_MAX, _TS_MAX - 999_999_999)),
)
duration_nanos = st.one_of(
    st.integers(-(10**15), 10**15),
    st.integers(-(10**9), 10**9),
    st.sampled_from((0, 1, -1, 3_600 * 10**9, 315576000000 * 10**9 + 999_999_999)),
)


# ---------------------------------------------------------------------------
# Rendering literals


def render_int(value: int) -> str:
    """An int literal; negative values in parentheses so they compose."""
    return f"({value})" if value < 0 else str(value)


def render_uint(value: int, hexa: bool = False) -> str:
    value = int(value)  # str(UInt) would already carry the suffix
    return f"{value:#x}u" if hexa else f"{value}u"


def render_double(value: float) -> str:
    """A double literal or, for inf/nan, an expression producing it."""
    if math.isnan(value):
        return "(0.0/0.0)"
    if math.isinf(value):
        return "(1.0/0.0)" if value > 0 else "(-1.0/0.0)"
    text = repr(abs(value))  # "1.5", "1e+300", "5e-324": all CEL float literals
    return f"(-{text})" if math.copysign(1.0, value) < 0 else text


_SIMPLE_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def render_string(value: str, escape_style: int = 0) -> str:
    """A double-quoted CEL string literal. ``escape_style`` 0 writes characters
    as they are; 1 writes non-ASCII as ``\\u``/``\\U`` escapes; 2 writes ASCII
    letters as ``\\x``/octal escapes too (exercises the lexer)."""
    out = []
    for ch in value:
        code = ord(ch)
        if ch in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[ch])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif escape_style >= 1 and code > 0x7F:
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        elif escape_style == 2 and ch.isalpha():
            out.append(f"\\x{code:02X}" if code % 2 else f"\\{code:03o}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _format_timestamp(nanos: int, offset_minutes: int) -> str:
    seconds, frac = divmod(nanos, 10**9)
    try:
        moment = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=seconds + offset_minutes * 60)
    except OverflowError:  # local time outside years 1..9999: write it in UTC
        offset_minutes = 0
        moment = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=seconds)
    text = f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}"
    if frac:
        text += "." + f"{frac:09d}".rstrip("0")
    if offset_minutes == 0:
        return text + "Z"
    sign = "+" if offset_minutes > 0 else "-"
    hh, mm = divmod(abs(offset_minutes), 60)
    return f"{text}{sign}{hh:02d}:{mm:02d}"


def _format_duration(nanos: int, style: int) -> str:
    sign = "-" if nanos < 0 else ""
    rest = abs(nanos)
    if style == 0:  # seconds with fraction
        secs, frac = divmod(rest, 10**9)
        return f"{sign}{secs}" + (f".{frac:09d}".rstrip("0") if frac else "") + "s"
    if style == 1:  # h/m/s units
        hours, rest = divmod(rest, 3600 * 10**9)
        minutes, rest = divmod(rest, 60 * 10**9)
        secs, frac = divmod(rest, 10**9)
        text = ""
        if hours:
            text += f"{hours}h"
        if minutes:
            text += f"{minutes}m"
        if secs or frac or not text:
            text += f"{secs}" + (f".{frac:09d}".rstrip("0") if frac else "") + "s"
        return sign + text
    # sub-second units
    ms, rest = divmod(rest, 10**6)
    us, ns = divmod(rest, 10**3)
    return sign + (f"{ms}ms" if ms else "") + (f"{us}us" if us else "") + f"{ns}ns"


# ---------------------------------------------------------------------------
# Expressions


@dataclass
class _Builder:
    """Draws one expression; ``scope`` holds comprehension variables."""

    draw: Draw
    scope: dict[str, str] = field(default_factory=dict)
    iter_names: tuple[str, ...] = ("x", "y", "z")

    def pick(self, options: Sequence[_T]) -> _T:
        picked: _T = self.draw(st.sampled_from(options))
        return picked

    def leaf(self, typ: str) -> str:
        choices: list[Callable[[], str]] = [lambda: self.literal(typ)]
        if typ in _VARS_OF:
            choices.append(lambda: self.pick(_VARS_OF[typ]))
        local = tuple(name for name, ltyp in self.scope.items() if ltyp == typ)
        if local:
            choices.extend([lambda: self.pick(local)] * 2)
        return self.pick(choices)()

    def literal(self, typ: str) -> str:
        draw = self.draw
        if typ == INT:
            value = draw(ints)
            if value >= 0 and draw(st.integers(0, 9)) == 0:
                return f"{value:#x}"
            return render_int(value)
        if typ == UINT:
            return render_uint(draw(uints), hexa=draw(st.integers(0, 9)) == 0)
        if typ == DOUBLE:
            return render_double(draw(doubles))
        if typ == BOOL:
            return self.pick(("true", "false"))
        if typ == STRING:
            return render_string(draw(texts), draw(st.sampled_from((0, 0, 0, 1, 2))))
        if typ in _ELEM:
            # An empty list of a known element type: a bare `[]` has a free
            # element type, which cel-cpp's checker binds differently from
            # cel-go's (e.g. `[].map(x, (x + s).size())` is rejected there).
            return "[0].filter(e0, false)" if _ELEM[typ] == INT else '[""].filter(e0, false)'
        if typ == MAP_STRING_INT:
            return "{}"
        if typ == TIMESTAMP:
            return self.timestamp_literal()
        if typ == DURATION:
            return self.duration_literal()
        raise AssertionError(typ)

    def timestamp_literal(self) -> str:
        if self.draw(st.integers(0, 19)) == 0:
            return f'timestamp("{self.pick(BAD_TIMESTAMPS)}")'
        nanos = self.draw(timestamp_nanos)
        offset = self.pick((0, 0, 0, 60, -480, 330, 14 * 60 - 1))
        return f'timestamp("{_format_timestamp(nanos, offset)}")'

    def duration_literal(self) -> str:
        if self.draw(st.integers(0, 19)) == 0:
            return f'duration("{self.pick(BAD_DURATIONS)}")'
        nanos = self.draw(duration_nanos)
        return f'duration("{_format_duration(nanos, self.draw(st.integers(0, 2)))}")'

    def productions(self, typ: str, depth: int) -> list[Callable[[], str]]:
        found: list[Callable[[], str]] = getattr(self, f"_{typ}")(depth)
        return found

    def expr(self, typ: str, depth: int) -> str:
        if typ in _FOCUS:  # always a production: the point is its shape
            return self.pick(self.productions(typ, max(depth - 1, 0)))()
        if depth <= 0 or self.draw(st.integers(0, 4)) == 0:
            return self.leaf(typ)
        return self.pick(self.productions(typ, depth - 1))()

    # Each _<type> returns thunks; the picked one draws its sub-expressions.

    def _common(self, typ: str, d: int) -> list[Callable[[], str]]:
        return [
            lambda: f"({self.expr(BOOL, d)} ? {self.expr(typ, d)} : {self.expr(typ, d)})",
            lambda: self.leaf(typ),
        ]

    def _int(self, d: int) -> list[Callable[[], str]]:
        e = self.expr
        arith = lambda: f"({e(INT, d)} {self.pick(('+', '-', '*', '/', '%'))} {e(INT, d)})"  # noqa: E731
        return [
            *self._common(INT, d),
            arith,
            arith,
            arith,
            lambda: f"-{e(INT, d)}",
            lambda: f"size({e(self.pick((STRING, LIST_INT, LIST_STRING, MAP_STRING_INT)), d)})",
            lambda: f"{e(STRING, d)}.size()",
            lambda: f"int({e(UINT, d)})",
            lambda: f"int({e(DOUBLE, d)})",
            lambda: f"int({render_string(self.pick(NUMERIC_STRINGS))})",
            lambda: f"int({e(TIMESTAMP, d)})",
            lambda: self.index(LIST_INT, d),
            lambda: self.map_lookup(d),
            lambda: f"{e(TIMESTAMP, d)}.{self.pick(TS_ACCESSORS)}({self.tz_arg()})",
            lambda: f"{e(DURATION, d)}.{self.pick(DUR_ACCESSORS)}()",
            lambda: f"{self.comprehension(LIST_INT, INT, d)}[0]",
        ]

    def _uint(self, d: int) -> list[Callable[[], str]]:
        e = self.expr
        arith = lambda: f"({e(UINT, d)} {self.pick(('+', '-', '*', '/', '%'))} {e(UINT, d)})"  # noqa: E731
        return [
            *self._common(UINT, d),
            arith,
            arith,
            lambda: f"uint({e(INT, d)})",
            lambda: f"uint({e(DOUBLE, d)})",
            lambda: f"uint({render_string(self.pick(NUMERIC_STRINGS))})",
        ]

    def _double(self, d: int) -> list[Callable[[], str]]:
        e = self.expr
        arith = lambda: f"({e(DOUBLE, d)} {self.pick(('+', '-', '*', '/'))} {e(DOUBLE, d)})"  # noqa: E731
        return [
            *self._common(DOUBLE, d),
            arith,
            arith,
            lambda: f"-{e(DOUBLE, d)}",
            lambda: f"double({e(INT, d)})",
            lambda: f"double({e(UINT, d)})",
            lambda: f"double({render_string(self.pick(NUMERIC_STRINGS))})",
        ]

    def _string(self, d: int) -> list[Callable[[], str]]:
        e = self.expr
        return [
            *self._common(STRING, d),
            lambda: f"({e(STRING, d)} + {e(STRING, d)})",
            lambda: f"string({e(self.pick((INT, UINT, DOUBLE, BOOL, STRING)), d)})",
            lambda: f"string({e(self.pick((TIMESTAMP, DURATION)), d)})",
            lambda: self.index(LIST_STRING, d),
        ]

    def _bool(self, d: int) -> list[Callable[[], str]]:
        e = self.expr
        ordered = (INT, UINT, DOUBLE, STRING, BOOL, TIMESTAMP, DURATION)

        def compare() -> str:
            typ = self.pick(ordered)
            op = self.pick(("==", "!=", "<", "<=", ">", ">="))
            return f"({e(typ, d)} {op} {e(typ, d)})"

        def mixed_numeric() -> str:
            # Heterogeneous numeric equality: the checker needs dyn().
            left, right = self.pick(((INT, UINT), (INT, DOUBLE), (UINT, DOUBLE), (DOUBLE, INT)))
            op = self.pick(("==", "!=", "<", "<=", ">", ">="))
            return f"(dyn({e(left, d)}) {op} {e(right, d)})"

        def aggregate_eq() -> str:
            typ = self.pick((LIST_INT, LIST_STRING, MAP_STRING_INT))
            return f"({e(typ, d)} {self.pick(('==', '!='))} {e(typ, d)})"

        def logic() -> str:
            return f"({e(BOOL, d)} {self.pick(('&&', '||'))} {e(BOOL, d)})"

        def membership() -> str:
            kind = self.pick((LIST_INT, LIST_STRING, MAP_STRING_INT))
            elem = STRING if kind == MAP_STRING_INT else _ELEM[kind]
            return f"({e(elem, d)} in {e(kind, d)})"

        def string_test() -> str:
            fn = self.pick(("contains", "startsWith", "endsWith"))
            return f"{e(STRING, d)}.{fn}({e(STRING, d)})"

        def matches() -> str:
            pattern = render_string(self.pick(PATTERNS))
            if self.draw(st.booleans()):
                return f"{e(STRING, d)}.matches({pattern})"
            return f"matches({e(STRING, d)}, {pattern})"

        def has() -> str:
            if self.draw(st.booleans()):
                return f"has(m.{self.pick(SELECT_KEYS)})"
            return f"has(profile.{self.pick(('age', 'name', 'score', 'vip', 'tags', 'zzz'))})"

        def type_test() -> str:
            typ = self.pick(TYPES)
            name = self.pick(tuple(_TYPE_NAMES.values()))
            return f"(type({e(typ, d)}) {self.pick(('==', '!='))} {name})"

        return [
            *self._common(BOOL, d),
            type_test,
            compare,
            compare,
            compare,
            mixed_numeric,
            aggregate_eq,
            logic,
            logic,
            lambda: f"!{e(BOOL, d)}",
            membership,
            string_test,
            matches,
            has,
            lambda: self.quantifier(d),
            lambda: self.quantifier(d),
        ]

    def _list(self, typ: str, d: int) -> list[Callable[[], str]]:
        e = self.expr
        elem = _ELEM[typ]

        def literal() -> str:
            items = [e(elem, d) for _ in range(self.draw(st.integers(0, 3)))]
            return "[" + ", ".join(items) + "]"

        return [
            *self._common(typ, d),
            literal,
            literal,
            lambda: f"({e(typ, d)} + {e(typ, d)})",
            lambda: self.comprehension(typ, elem, d),
            lambda: self.comprehension(typ, elem, d),
        ]

    def _list_int(self, d: int) -> list[Callable[[], str]]:
        return self._list(LIST_INT, d)

    def _list_string(self, d: int) -> list[Callable[[], str]]:
        return self._list(LIST_STRING, d)

    def _map_string_int(self, d: int) -> list[Callable[[], str]]:
        def literal() -> str:
            keys = self.draw(st.lists(st.sampled_from(MAP_KEYS), max_size=3, unique=True))
            return "{" + ", ".join(f"{render_string(k)}: {self.expr(INT, d)}" for k in keys) + "}"

        return [*self._common(MAP_STRING_INT, d), literal, literal]

    def _timestamp(self, d: int) -> list[Callable[[], str]]:
        e = self.expr
        return [
            *self._common(TIMESTAMP, d),
            lambda: f"({e(TIMESTAMP, d)} + {e(DURATION, d)})",
            lambda: f"({e(DURATION, d)} + {e(TIMESTAMP, d)})",
            lambda: f"({e(TIMESTAMP, d)} - {e(DURATION, d)})",
            lambda: f"timestamp({e(INT, d)})",
            self.timestamp_literal,
        ]

    def _duration(self, d: int) -> list[Callable[[], str]]:
        e = self.expr
        return [
            *self._common(DURATION, d),
            lambda: f"({e(DURATION, d)} {self.pick(('+', '-'))} {e(DURATION, d)})",
            lambda: f"({e(TIMESTAMP, d)} - {e(TIMESTAMP, d)})",
            self.duration_literal,
        ]

    def _time_int(self, d: int) -> list[Callable[[], str]]:
        e = self.expr
        return [
            lambda: f"{e(TIMESTAMP, d)}.{self.pick(TS_ACCESSORS)}({self.tz_arg()})",
            lambda: f"{e(DURATION, d)}.{self.pick(DUR_ACCESSORS)}()",
            lambda: f"int({e(TIMESTAMP, d)})",
        ]

    def _time_bool(self, d: int) -> list[Callable[[], str]]:
        def compare() -> str:
            typ = self.pick((TIMESTAMP, DURATION))
            op = self.pick(("==", "!=", "<", "<=", ">", ">="))
            return f"({self.expr(typ, d)} {op} {self.expr(typ, d)})"

        return [compare]

    def _mixed_bool(self, d: int) -> list[Callable[[], str]]:
        def typed_mixed() -> str:
            left, right = self.pick(_MIXED_PAIRS)
            op = self.pick(("<", "<=", ">", ">="))
            return f"({self.expr(left, d)} {op} {self.expr(right, d)})"

        return [typed_mixed]

    def _time_string(self, d: int) -> list[Callable[[], str]]:
        return [lambda: f"string({self.expr(self.pick((TIMESTAMP, DURATION)), d)})"]

    # -- helpers -------------------------------------------------------

    def tz_arg(self) -> str:
        if self.draw(st.integers(0, 2)) == 0:
            return ""
        return render_string(self.pick(TIME_ZONES))

    def index(self, typ: str, d: int) -> str:
        idx = self.pick((render_int(self.pick((0, 1, 2, 3, -1))), self.expr(INT, d)))
        return f"{self.expr(typ, d)}[{idx}]"

    def map_lookup(self, d: int) -> str:
        target = self.expr(MAP_STRING_INT, d)
        if self.draw(st.booleans()):
            return f"{target}.{self.pick(SELECT_KEYS)}"
        return f"{target}[{self.pick((render_string(self.pick(MAP_KEYS)), self.expr(STRING, d)))}]"

    def _fresh(self) -> str | None:
        for name in self.iter_names:
            if name not in self.scope:
                return name
        return None

    def _with_var(self, name: str, typ: str, fn: Callable[[], str]) -> str:
        self.scope[name] = typ
        try:
            return fn()
        finally:
            del self.scope[name]

    def quantifier(self, d: int) -> str:
        var = self._fresh()
        if var is None:
            return self.leaf(BOOL)
        kind = self.pick((LIST_INT, LIST_STRING))
        target = self.expr(kind, d)
        body = self._with_var(var, _ELEM[kind], lambda: self.expr(BOOL, d))
        macro = self.pick(("all", "exists", "exists_one"))
        return f"{target}.{macro}({var}, {body})"

    def comprehension(self, result: str, elem: str, d: int) -> str:
        """A map/filter whose result is a list of ``elem`` (``result``)."""
        var = self._fresh()
        if var is None:
            return self.leaf(result)
        if self.draw(st.booleans()):  # filter: iterate the result kind itself
            target = self.expr(result, d)
            body = self._with_var(var, elem, lambda: self.expr(BOOL, d))
            return f"{target}.filter({var}, {body})"
        source = self.pick((LIST_INT, LIST_STRING))
        target = self.expr(source, d)
        body = self._with_var(var, _ELEM[source], lambda: self.expr(elem, d))
        if self.draw(st.integers(0, 3)) == 0:  # three-argument map
            pred = self._with_var(var, _ELEM[source], lambda: self.expr(BOOL, d))
            return f"{target}.map({var}, {pred}, {body})"
        return f"{target}.map({var}, {body})"


# ---------------------------------------------------------------------------
# Activations and cases


_binding_texts = texts.map(lambda text: text.replace("\x00", ""))


@st.composite
def _profiles(draw: Draw) -> dict[str, object]:
    fields: dict[str, st.SearchStrategy[Any]] = {
        "age": ints,
        "name": _binding_texts,
        "score": doubles,
        "vip": st.booleans(),
        "tags": st.lists(_binding_texts, max_size=3),
    }
    mostly = st.sampled_from((True, True, True, True, False))
    return {key: draw(strategy) for key, strategy in fields.items() if draw(mostly)}


def _bindable(nanos: int) -> int:
    """The instant, nudged to one the oracle binds faithfully (see
    ``oracle.oracle_can_bind_timestamp``): not the very first instant, and
    whole seconds where the oracle's float conversion would shift it."""
    nanos = max(nanos, _TS_MIN + 1000)
    micros = nanos // 1000
    as_float = dt.timedelta(microseconds=micros).total_seconds()
    if math.floor(as_float) != nanos // 10**9:
        nanos -= nanos % 10**9
    return nanos


def activations() -> st.SearchStrategy[dict[str, object]]:
    """Values for every variable in :data:`VARIABLES`, within what the
    oracle's binding passes faithfully: timestamps/durations at microsecond
    precision, strings without NUL (literals in expressions may have both)."""

    def micros(nanos: int) -> int:
        return nanos - nanos % 1000

    texts = _binding_texts
    return st.fixed_dictionaries(
        {
            "i": ints,
            "j": ints,
            "u": uints,
            "f": doubles,
            "b": st.booleans(),
            "s": texts,
            "li": st.lists(ints, max_size=4),
            "ls": st.lists(texts, max_size=4),
            "m": st.dictionaries(st.sampled_from(MAP_KEYS), ints, max_size=3),
            "ts": timestamp_nanos.map(lambda n: Timestamp(_bindable(micros(n)))),
            # Within Arbiter's duration range (int64 nanoseconds; larger ones
            # are not valid input and cel-cpp's arithmetic on them wraps).
            "du": duration_nanos.map(
                lambda n: Duration(micros(min(max(n, INT64_MIN + 1000), INT64_MAX)))
            ),
            "profile": _profiles(),
        }
    )


@dataclass(frozen=True)
class Case:
    expr: str
    result_type: str
    activation: dict[str, object]


@st.composite
def cases(draw: Draw, types: tuple[str, ...] = TYPES, max_depth: int = 3) -> Case:
    """One expression of a type drawn from ``types`` plus an activation."""
    typ = draw(st.sampled_from(types))
    expr = _Builder(draw).expr(typ, draw(st.integers(1, max_depth)))
    return Case(expr, typ, draw(activations()))
