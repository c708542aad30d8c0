"""Google's CEL runtime (cel-expr-python) as a test oracle, speaking Arbiter's value representation.

Test-only: nothing under ``policies/`` may import this. The wrapper

- declares variables with Arbiter :mod:`policies.cel.types` types, translated
  to ``cel_expr_python.cel.Type``;
- converts an Arbiter activation (``UInt``, ``Timestamp``, ``Duration``, ...)
  to what the oracle accepts, raising :class:`Unsupported` when a value cannot
  be expressed to it (see below);
- converts results back to Arbiter values, exactly: ``int`` vs ``UInt`` vs
  ``float`` kept apart, timestamps and durations with full nanosecond
  precision (parsed from the oracle's own text form, since its
  ``datetime``/``timedelta`` values stop at microseconds);
- turns every failure into :class:`OracleError` (``phase`` is ``"compile"``
  for parse/check errors, ``"eval"`` for CEL error values).

Known limits of the oracle binding (cel-expr-python 0.1.3), all surfaced as
:class:`Unsupported` rather than guessed around:

- timestamps/durations can be passed only as declared ``timestamp``/
  ``duration`` variables (or inside declared lists/maps of them), never
  under ``dyn``, and only with microsecond precision;
- a ``uint`` can be passed only where the declared type says ``uint``
  (a Python ``int`` under ``dyn`` becomes a CEL ``int``);
- type values cannot be passed in an activation;
- strings and bytes are bound as C strings: a NUL truncates them;
- the timestamp 0001-01-01T00:00:00Z cannot be bound (it is read as
  "infinite past"), although the oracle computes it fine; far from 1970 an
  instant just below a whole second is bound one second late (float
  rounding), see :func:`oracle_can_bind_timestamp`.

And one lossy spot in results: map *keys* come back as plain Python values,
so a ``uint`` key is indistinguishable from an ``int`` key
(:func:`cel_equal` compares keys numerically).
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Literal

from cel_expr_python import cel as _cel

from arbiter.policies.cel import types as t
from arbiter.policies.cel.values import Duration, Timestamp, TypeValue, UInt

__all__ = [
    "OracleEnv",
    "OracleError",
    "OracleProgram",
    "Unsupported",
    "cel_equal",
    "describe",
    "evaluate",
    "oracle_can_bind_timestamp",
    "oracle_type",
]

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
_NS_PER_US = 1_000
_NS_PER_S = 1_000_000_000
_MIN_TIMESTAMP_NANOS = -62135596800 * _NS_PER_S


class Unsupported(Exception):
    """The type or value cannot be expressed to the oracle's Python binding."""


class OracleError(Exception):
    """The oracle rejected the expression (``phase="compile"``) or evaluated
    it to a CEL error (``phase="eval"``)."""

    def __init__(self, phase: Literal["compile", "eval"], message: str) -> None:
        super().__init__(f"{phase}: {message}")
        self.phase = phase
        self.message = message


# ---------------------------------------------------------------------------
# Types

_PRIMITIVES: dict[str, _cel.Type] = {
    "int": _cel.Type.INT,
    "uint": _cel.Type.UINT,
    "double": _cel.Type.DOUBLE,
    "bool": _cel.Type.BOOL,
    "string": _cel.Type.STRING,
    "bytes": _cel.Type.BYTES,
    "null_type": _cel.Type.NULL,
    "google.protobuf.Timestamp": _cel.Type.TIMESTAMP,
    "google.protobuf.Duration": _cel.Type.DURATION,
    "dyn": _cel.Type.DYN,
}


def oracle_type(typ: t.Type) -> _cel.Type:
    """The oracle's declaration type for an Arbiter static type."""
    if isinstance(typ, t.PrimitiveType):
        try:
            return _PRIMITIVES[typ.name]
        except KeyError:
            raise Unsupported(f"type {typ}") from None
    if isinstance(typ, t.ListType):
        return _cel.Type.List(oracle_type(typ.elem))
    if isinstance(typ, t.MapType):
        return _cel.Type.Map(oracle_type(typ.key), oracle_type(typ.value))
    if isinstance(typ, t.TypeType):
        return _cel.Type.Type(oracle_type(typ.param))
    if isinstance(typ, t.OpaqueType):
        return _cel.Type.AbstractType(typ.name, [oracle_type(p) for p in typ.params])
    raise Unsupported(f"type {typ}")


# ---------------------------------------------------------------------------
# Activation values: Arbiter -> oracle


def _to_oracle(value: object, typ: t.Type) -> object:
    """Convert one Arbiter value declared as ``typ`` for the oracle's activation."""
    is_dyn = typ == t.DYN
    if isinstance(value, str | bytes):
        has_nul = b"\x00" in value if isinstance(value, bytes) else "\x00" in value
        if has_nul:
            raise Unsupported("string or bytes with NUL as a binding")
        return value
    if value is None or type(value) in (bool, int, float):
        return value
    if type(value) is UInt:
        if typ != t.UINT:
            # Under dyn the binding would turn it into a CEL int.
            raise Unsupported("uint value not declared as uint")
        return int(value)
    if type(value) is Timestamp:
        if is_dyn:
            raise Unsupported("timestamp under dyn")
        if value.nanos % _NS_PER_US:
            raise Unsupported("timestamp with sub-microsecond precision")
        if value.nanos == _MIN_TIMESTAMP_NANOS:
            # The binding converts datetime(1, 1, 1) to absl's InfinitePast
            # and then rejects it ("infinite-past below minimum").
            raise Unsupported("timestamp 0001-01-01T00:00:00Z as a binding")
        moment = _EPOCH + _dt.timedelta(microseconds=value.nanos // _NS_PER_US)
        if not oracle_can_bind_timestamp(value.nanos):
            raise Unsupported("timestamp the binding would shift by a second")
        return moment
    if type(value) is Duration:
        if is_dyn:
            raise Unsupported("duration under dyn")
        if value.nanos % _NS_PER_US:
            raise Unsupported("duration with sub-microsecond precision")
        return _dt.timedelta(microseconds=value.nanos // _NS_PER_US)
    if isinstance(value, list | tuple):
        elem = typ.elem if isinstance(typ, t.ListType) else t.DYN
        return [_to_oracle(v, elem) for v in value]
    if isinstance(value, dict):
        key_t, val_t = (typ.key, typ.value) if isinstance(typ, t.MapType) else (t.DYN, t.DYN)
        return {_to_oracle(k, key_t): _to_oracle(v, val_t) for k, v in value.items()}
    raise Unsupported(f"value of Python type {type(value).__name__}")


def oracle_can_bind_timestamp(nanos: int) -> bool:
    """Whether the oracle binds this instant faithfully.

    The binding takes whole seconds from the datetime as a float
    (``floor(timestamp())``): when the microseconds round that float up to
    the next second (far from 1970, e.g. 9999-12-31T23:59:59.999985Z), the
    bound instant is one second late. Verified empirically on 20,000 random
    instants: the mismatch happens exactly when this predicate is false.
    Sub-microsecond instants and 0001-01-01T00:00:00Z cannot be bound at all.
    """
    if nanos % _NS_PER_US or nanos == _MIN_TIMESTAMP_NANOS:
        return False
    micros = nanos // _NS_PER_US
    as_float = _dt.timedelta(microseconds=micros).total_seconds()
    return math.floor(as_float) == nanos // _NS_PER_S


# ---------------------------------------------------------------------------
# Results: oracle -> Arbiter

_TYPE_NAMES = {
    "INT": "int",
    "UINT": "uint",
    "DOUBLE": "double",
    "BOOL": "bool",
    "STRING": "string",
    "BYTES": "bytes",
    "NULL": "null_type",
    "TIMESTAMP": "google.protobuf.Timestamp",
    "DURATION": "google.protobuf.Duration",
    "TYPE": "type",
    "DYN": "dyn",
}

# absl::FormatDuration, which the oracle's text form uses: "-25h1m1.25s",
# "1h30m", "900ns", "1.5ms", "0".
_DURATION_TEXT = re.compile(
    r"(?P<sign>-)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m(?![s]))?(?:(?P<n>\d+(?:\.\d+)?)(?P<unit>s|ms|us|ns))?"
)
_UNIT_NS = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}
_TIMESTAMP_FRACTION = re.compile(r":\d\d(?:\.(\d{1,9}))?Z$")


def _type_value(typ: _cel.Type) -> TypeValue:
    name = typ.name()
    base = name.split("<", 1)[0]
    if base in ("LIST", "MAP"):
        return TypeValue(base.lower())
    if base in _TYPE_NAMES:
        return TypeValue(_TYPE_NAMES[base])
    return TypeValue(name)  # a message or abstract type: its full name


def _duration_nanos(text: str, approx: _dt.timedelta) -> int:
    if text == "0":
        nanos = 0
    else:
        match = _DURATION_TEXT.fullmatch(text)
        if match is None:
            raise AssertionError(f"unparsable oracle duration {text!r}")
        total = Decimal(0)
        if match["h"]:
            total += int(match["h"]) * 3600 * _NS_PER_S
        if match["m"]:
            total += int(match["m"]) * 60 * _NS_PER_S
        if match["n"]:
            total += Decimal(match["n"]) * _UNIT_NS[match["unit"]]
        nanos = int(total) * (-1 if match["sign"] else 1)
    # Guard against a misparse: the timedelta is the same value truncated to µs.
    micros = approx // _dt.timedelta(microseconds=1)
    if abs(nanos - micros * _NS_PER_US) >= _NS_PER_US:
        raise AssertionError(f"oracle duration {text!r} disagrees with {approx!r}")
    return nanos


def _timestamp_nanos(text: str, approx: _dt.datetime) -> int:
    match = _TIMESTAMP_FRACTION.search(text)
    if match is None:
        raise AssertionError(f"unparsable oracle timestamp {text!r}")
    seconds = (approx.replace(microsecond=0) - _EPOCH) // _dt.timedelta(seconds=1)
    fraction = int((match[1] or "").ljust(9, "0"))
    if fraction // _NS_PER_US != approx.microsecond:
        raise AssertionError(f"oracle timestamp {text!r} disagrees with {approx!r}")
    return seconds * _NS_PER_S + fraction


def _from_oracle(value: _cel.Value) -> object:
    kind = value.type().name()
    raw = value.value()
    if kind == "ERROR":
        raise OracleError("eval", str(raw))
    if kind == "UINT":
        return UInt(raw)
    if kind == "INT":
        return int(raw)
    if kind in ("BOOL", "DOUBLE", "STRING", "NULL"):
        return raw
    if kind == "BYTES":
        return bytes(raw)
    if kind == "TIMESTAMP":
        return Timestamp(_timestamp_nanos(repr(value), raw))
    if kind == "DURATION":
        return Duration(_duration_nanos(repr(value), raw))
    if kind == "TYPE":
        return _type_value(raw)
    if kind.startswith("LIST"):
        return [_from_oracle(v) for v in raw]
    if kind.startswith("MAP"):
        return {_key_from_oracle(k): _from_oracle(v) for k, v in raw.items()}
    raise Unsupported(f"oracle result of type {kind}")


def _key_from_oracle(key: object) -> object:
    # Keys arrive as plain Python values; a uint key is an int here (lossy).
    return bytes(key) if isinstance(key, bytearray) else key


# ---------------------------------------------------------------------------
# Compile / evaluate


def _extensions() -> list[object]:
    from cel_expr_python.ext import ext_math, ext_optional, ext_strings

    return [ext_strings.ExtStrings(), ext_math.ExtMath(), ext_optional.ExtOptional()]


class OracleEnv:
    """Declared variables for the oracle; compile many expressions against it."""

    def __init__(
        self, variables: Mapping[str, t.Type] | None = None, *, extensions: bool = False
    ) -> None:
        """``extensions=True`` enables the reference's strings, math and
        optional extensions (the ones cel-expr-python ships; it has no lists
        or sets extension)."""
        self.variables = dict(variables or {})
        self.env = _cel.NewEnv(
            variables={name: oracle_type(typ) for name, typ in self.variables.items()},
            extensions=_extensions() if extensions else None,
        )

    def compile(self, source: str, *, disable_check: bool = False) -> OracleProgram:
        """Parse and (unless ``disable_check``) type-check; :class:`OracleError` on failure."""
        try:
            expression = self.env.compile(source, disable_check=disable_check)
        except RuntimeError as exc:
            raise OracleError("compile", str(exc)) from exc
        return OracleProgram(self, source, expression)

    def convert_activation(self, activation: Mapping[str, object]) -> dict[str, object]:
        """The activation as the oracle's plain Python data (undeclared names are dyn)."""
        return {
            name: _to_oracle(value, self.variables.get(name, t.DYN))
            for name, value in activation.items()
        }

    def activation(self, activation: Mapping[str, object]) -> _cel.Activation:
        """A prebuilt oracle activation; reuse it to keep conversion out of timings."""
        return self.env.Activation(self.convert_activation(activation))


class OracleProgram:
    """An expression compiled by the oracle."""

    def __init__(self, env: OracleEnv, source: str, expression: _cel.Expression) -> None:
        self.env = env
        self.source = source
        self.expression = expression

    def evaluate_raw(self, activation: _cel.Activation) -> _cel.Value:
        """One evaluation on a prebuilt activation, result left in oracle form."""
        return self.expression.eval(activation)

    def evaluate(self, activation: Mapping[str, object] | _cel.Activation) -> object:
        """Evaluate and convert the result to Arbiter's value representation."""
        if not isinstance(activation, _cel.Activation):
            activation = self.env.activation(activation)
        try:
            result = self.expression.eval(activation)
        except RuntimeError as exc:  # a few errors are raised rather than returned
            raise OracleError("eval", str(exc)) from exc
        return _from_oracle(result)


def evaluate(
    source: str,
    variables: Mapping[str, t.Type] | None = None,
    activation: Mapping[str, object] | None = None,
    *,
    disable_check: bool = False,
) -> object:
    """Compile and evaluate in one go; raises :class:`OracleError` or :class:`Unsupported`."""
    program = OracleEnv(variables).compile(source, disable_check=disable_check)
    return program.evaluate(activation or {})


# ---------------------------------------------------------------------------
# Comparison


def _key(value: object) -> tuple[str, object]:
    """A map key normalised so that ``True`` and ``1`` differ but ``1`` and ``1u`` do not."""
    if type(value) is bool:
        return ("bool", value)
    if isinstance(value, int):
        return ("num", int(value))
    return (type(value).__name__, value)


def cel_equal(left: object, right: object) -> bool:
    """CEL equality *including the type*: ``1``, ``1u`` and ``1.0`` all differ,
    NaN equals NaN, lists and tuples are the same kind, map order is ignored
    (map keys compare numerically across int/uint; see module docstring)."""
    lt, rt = type(left), type(right)
    if isinstance(left, list | tuple) and isinstance(right, list | tuple):
        return len(left) == len(right) and all(map(cel_equal, left, right))
    if isinstance(left, dict) and isinstance(right, dict):
        if len(left) != len(right):
            return False
        right_items = {_key(k): v for k, v in right.items()}
        for k, v in left.items():
            nk = _key(k)
            if nk not in right_items or not cel_equal(v, right_items[nk]):
                return False
        return True
    if lt is not rt:
        return False
    if lt is float:
        assert isinstance(left, float) and isinstance(right, float)
        return left == right or (math.isnan(left) and math.isnan(right))
    return left == right


def describe(value: object) -> str:
    """A type-revealing rendering for failure messages."""
    if type(value) is UInt:
        return f"{int(value)}u"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(map(describe, value)) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{describe(k)}: {describe(v)}" for k, v in value.items()) + "}"
    if type(value) is float:
        return f"{value!r}(double)"
    if type(value) is int:
        return f"{value}(int)"
    return repr(value)
