"""CEL type conversions: ``int()``, ``uint()``, ``double()``, ``string()``,
``bytes()``, ``bool()``, ``dyn()``, and CEL's text form of doubles.

Numeric text follows Go's ``strconv`` (as cel-go does): no surrounding
whitespace, no hexadecimal, a sign only where the target type has one.
Out-of-range values are range errors, never wrapped or clamped.
"""

from __future__ import annotations

import math
import re
from typing import Final

from .errors import EvalError
from .runtime import no_such_overload
from .timefns import format_duration, format_timestamp
from .values import INT64_MAX, INT64_MIN, UINT64_MAX, Duration, Timestamp, UInt

__all__ = [
    "bool_to_string",
    "bytes_to_string",
    "double_to_int",
    "double_to_string",
    "double_to_uint",
    "duration_to_string",
    "format_double",
    "identity",
    "int_to_double",
    "int_to_string",
    "int_to_uint",
    "string_to_bool",
    "string_to_bytes",
    "string_to_double",
    "string_to_int",
    "string_to_uint",
    "timestamp_to_string",
    "to_bool",
    "to_bytes",
    "to_double",
    "to_int",
    "to_string",
    "to_uint",
    "uint_to_double",
    "uint_to_int",
    "uint_to_string",
]

_F_INT64_MIN: Final = -9.223372036854775808e18  # -2**63, exact as a double
_F_TWO_63: Final = 9.223372036854775808e18  # 2**63
_F_TWO_64: Final = 1.8446744073709551616e19  # 2**64

_INT_RE: Final = re.compile(r"[+-]?[0-9]+")
_UINT_RE: Final = re.compile(r"[0-9]+")
_DOUBLE_RE: Final = re.compile(
    r"[+-]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|(?i:inf|infinity|nan))"
)
_STRING_TO_BOOL: Final = {
    "true": True,
    "TRUE": True,
    "True": True,
    "t": True,
    "1": True,
    "false": False,
    "FALSE": False,
    "False": False,
    "f": False,
    "0": False,
}


def identity(value: object) -> object:
    """``int(int)``, ``string(string)``, ... and ``dyn(x)``."""
    return value


dyn = identity


def double_to_int(d: object) -> int:
    """Truncates toward zero; an error outside (-2**63, 2**63), NaN and ±inf
    included (both int64 extremes are refused, as in cel-spec)."""
    if type(d) is float:
        if _F_INT64_MIN < d < _F_TWO_63:
            return int(d)
        raise EvalError(f"range error: double {format_double(d)} out of int64 range")
    raise no_such_overload("int", d)


def uint_to_int(u: object) -> int:
    if type(u) is UInt:
        if u <= INT64_MAX:
            return int(u)
        raise EvalError(f"range error: uint {int(u)} out of int64 range")
    raise no_such_overload("int", u)


# Longest numeric text converted: beyond this it is out of range (ints) or
# pointless (doubles), and int() on huge text costs quadratic time.
_MAX_NUMBER_TEXT = 64


def _brief(text: str) -> str:
    """Quote user text in an error message without echoing all of it."""
    return repr(text if len(text) <= 32 else text[:29] + "...")


def string_to_int(s: object) -> int:
    """Base-10 integer text with an optional sign (Go's strconv.ParseInt)."""
    if type(s) is str:
        if len(s) > _MAX_NUMBER_TEXT:
            raise EvalError(f"range error: {_brief(s)} out of int64 range")
        if _INT_RE.fullmatch(s) is not None:
            value = int(s)
            if INT64_MIN <= value <= INT64_MAX:
                return value
            raise EvalError(f"range error: {_brief(s)} out of int64 range")
        raise EvalError(f"cannot convert string {_brief(s)} to int")
    raise no_such_overload("int", s)


def to_int(value: object) -> int:
    tv = type(value)
    if tv is int:
        return value  # type: ignore[return-value]
    if tv is float:
        return double_to_int(value)
    if tv is UInt:
        return uint_to_int(value)
    if tv is str:
        return string_to_int(value)
    raise no_such_overload("int", value)


def int_to_uint(i: object) -> UInt:
    if type(i) is int:
        if i >= 0:
            return UInt(i)
        raise EvalError(f"range error: int {i} out of uint64 range")
    raise no_such_overload("uint", i)


def double_to_uint(d: object) -> UInt:
    """Truncates toward zero; an error for negative values, values >= 2**64,
    NaN and ±inf (Go's check: ``-0.5`` is refused, ``-0.0`` is not)."""
    if type(d) is float:
        if 0.0 <= d < _F_TWO_64:
            return UInt(int(d))
        raise EvalError(f"range error: double {format_double(d)} out of uint64 range")
    raise no_such_overload("uint", d)


def string_to_uint(s: object) -> UInt:
    if type(s) is str:
        if len(s) > _MAX_NUMBER_TEXT:
            raise EvalError(f"range error: {_brief(s)} out of uint64 range")
        if _UINT_RE.fullmatch(s) is not None:
            value = int(s)
            if value <= UINT64_MAX:
                return UInt(value)
            raise EvalError(f"range error: {_brief(s)} out of uint64 range")
        raise EvalError(f"cannot convert string {_brief(s)} to uint")
    raise no_such_overload("uint", s)


def to_uint(value: object) -> UInt:
    tv = type(value)
    if tv is UInt:
        return value  # type: ignore[return-value]
    if tv is int:
        return int_to_uint(value)
    if tv is float:
        return double_to_uint(value)
    if tv is str:
        return string_to_uint(value)
    raise no_such_overload("uint", value)


def int_to_double(i: object) -> float:
    if type(i) is int:
        return float(i)
    raise no_such_overload("double", i)


def uint_to_double(u: object) -> float:
    if type(u) is UInt:
        return float(u)
    raise no_such_overload("double", u)


def string_to_double(s: object) -> float:
    """Decimal or exponent notation, ``inf``/``infinity``/``nan`` in any case."""
    if type(s) is str:
        if len(s) <= _MAX_NUMBER_TEXT * 16 and _DOUBLE_RE.fullmatch(s) is not None:
            return float(s)
        raise EvalError(f"cannot convert string {_brief(s)} to double")
    raise no_such_overload("double", s)


def to_double(value: object) -> float:
    tv = type(value)
    if tv is float:
        return value  # type: ignore[return-value]
    if tv is int or tv is UInt:
        return float(value)  # type: ignore[arg-type]
    if tv is str:
        return string_to_double(value)
    raise no_such_overload("double", value)


def format_double(d: float) -> str:
    """Format a double as CEL does (Go's ``%g`` with the shortest exact
    digits): ``1.0`` -> ``1``, ``1e6`` -> ``1e+06``, ``123456.0`` ->
    ``123456``, ``-4.5e-3`` -> ``-0.0045``, ``1.5e20`` -> ``1.5e+20``;
    ``NaN``, ``+Inf``, ``-Inf``."""
    if math.isnan(d):
        return "NaN"
    if d == math.inf:
        return "+Inf"
    if d == -math.inf:
        return "-Inf"
    text = repr(d)  # shortest digits that round-trip
    sign = ""
    if text[0] == "-":
        sign = "-"
        text = text[1:]
    mantissa, _, exp_text = text.partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = whole + frac
    point = len(whole) + (int(exp_text) if exp_text else 0)  # decimal point position
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    if not digits:
        return sign + "0"
    exp = point - 1
    if exp < -4 or exp >= 6:  # Go: %e when exp < -4 || exp >= 6 (shortest)
        head = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{head}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


def int_to_string(i: object) -> str:
    if type(i) is int:
        return str(i)
    raise no_such_overload("string", i)


def uint_to_string(u: object) -> str:
    if type(u) is UInt:
        return int.__repr__(u)
    raise no_such_overload("string", u)


def double_to_string(d: object) -> str:
    if type(d) is float:
        return format_double(d)
    raise no_such_overload("string", d)


def bool_to_string(b: object) -> str:
    if b is True:
        return "true"
    if b is False:
        return "false"
    raise no_such_overload("string", b)


def bytes_to_string(b: object) -> str:
    if type(b) is bytes:
        try:
            return b.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EvalError("invalid UTF-8 in bytes, cannot convert to string") from exc
    raise no_such_overload("string", b)


def timestamp_to_string(ts: object) -> str:
    if type(ts) is Timestamp:
        return format_timestamp(ts)
    raise no_such_overload("string", ts)


def duration_to_string(d: object) -> str:
    if type(d) is Duration:
        return format_duration(d)
    raise no_such_overload("string", d)


def to_string(value: object) -> str:
    tv = type(value)
    if tv is str:
        return value  # type: ignore[return-value]
    if tv is int:
        return str(value)
    if tv is float:
        return format_double(value)  # type: ignore[arg-type]
    if tv is UInt:
        return int.__repr__(value)
    if tv is bool:
        return "true" if value else "false"
    if tv is bytes:
        return bytes_to_string(value)
    if tv is Timestamp:
        return timestamp_to_string(value)
    if tv is Duration:
        return duration_to_string(value)
    raise no_such_overload("string", value)


def string_to_bytes(s: object) -> bytes:
    if type(s) is str:
        try:
            return s.encode("utf-8")
        except UnicodeEncodeError as exc:  # lone surrogates
            raise EvalError("invalid UTF-8 in string, cannot convert to bytes") from exc
    raise no_such_overload("bytes", s)


def to_bytes(value: object) -> bytes:
    if type(value) is bytes:
        return value
    return string_to_bytes(value)


def string_to_bool(s: object) -> bool:
    """``true``/``false`` in lower, upper or title case, ``t``/``f``, ``1``/``0``."""
    if type(s) is str:
        result = _STRING_TO_BOOL.get(s)
        if result is None:
            raise EvalError(f"cannot convert string '{s}' to bool")
        return result
    raise no_such_overload("bool", s)


def to_bool(value: object) -> bool:
    if value is True or value is False:
        return value
    return string_to_bool(value)
