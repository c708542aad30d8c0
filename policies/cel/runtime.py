"""CEL runtime semantics: pure functions over CEL values (see :mod:`.values`).

Every function here either returns a CEL value or raises
:class:`~policies.cel.errors.EvalError` carrying the CEL error text
("no such overload", "no such key: 'x'", "division by zero", "return error
for overflow", ...); :class:`~policies.cel.errors.CostLimitError` when a
runtime size bound is exceeded.

Two families of functions:

- *typed* implementations (``int_add``, ``lt_int_double``, ``string_concat``,
  ...) that back one standard overload each. The code generator may call them
  directly when the checker resolved a single overload, which can happen with
  ``dyn`` operands, so each one still verifies the runtime types of its
  arguments (a couple of ``type(x) is T`` tests) and raises "no such
  overload" instead of computing a wrong answer.
- *generic* implementations (``eq``, ``lt``, ``add``, ``index``, ``size``,
  ``to_string``, ...) that accept any CEL values and dispatch on their types.

Numeric semantics follow the current cel-spec: ``1 == 1u == 1.0``;
ordering across int/uint/double; int and uint compare exactly with each
other, while int/uint against double compare after converting the integer to
the nearest double (what cel-go does and what the conformance suite expects,
e.g. ``9223372036854775807 >= 9223372036854775808.0`` is true).

Timestamp/Duration arithmetic and conversions belong to :mod:`.timefns`; the
generic functions here delegate to its ``TIME_FUNCTIONS`` declarations.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

import re2

from .env import FunctionDecl
from .errors import CostLimitError, EvalError
from .timefns import TIME_FUNCTIONS, format_duration, format_timestamp
from .types import ListType, MapType, OpaqueType, PrimitiveType, Type, TypeParam, TypeType
from .values import INT64_MAX, INT64_MIN, UINT64_MAX, Duration, Timestamp, TypeValue, UInt

__all__ = [
    "BOOL_TYPE",
    "BYTES_TYPE",
    "DEFAULT_MAX_REGEX_LENGTH",
    "DEFAULT_MAX_SIZE",
    "DOUBLE_TYPE",
    "DURATION_TYPE",
    "INT_TYPE",
    "LIST_TYPE",
    "MAP_TYPE",
    "NULL_TYPE",
    "STRING_TYPE",
    "TIMESTAMP_TYPE",
    "TYPE_TYPE",
    "UINT_TYPE",
    "add",
    "bool_to_string",
    "bytes_concat",
    "bytes_to_string",
    "conditional",
    "contains",
    "div",
    "double_add",
    "double_div",
    "double_mul",
    "double_neg",
    "double_sub",
    "double_to_int",
    "double_to_string",
    "double_to_uint",
    "dyn",
    "ends_with",
    "eq",
    "format_double",
    "ge",
    "gt",
    "has_field",
    "identity",
    "in_",
    "in_list",
    "in_map",
    "index",
    "index_list",
    "index_map",
    "int_add",
    "int_div",
    "int_mod",
    "int_mul",
    "int_neg",
    "int_sub",
    "int_to_double",
    "int_to_string",
    "int_to_uint",
    "le",
    "list_concat",
    "logical_and",
    "logical_not",
    "logical_or",
    "lt",
    "make_dispatcher",
    "make_map",
    "map_get",
    "matches",
    "mod",
    "mul",
    "ne",
    "neg",
    "no_such_overload",
    "runtime_type_matches",
    "select",
    "size",
    "starts_with",
    "string_concat",
    "string_to_bool",
    "string_to_bytes",
    "string_to_double",
    "string_to_int",
    "string_to_uint",
    "sub",
    "to_bool",
    "to_bytes",
    "to_double",
    "to_int",
    "to_string",
    "to_uint",
    "type_name",
    "type_of",
    "uint_add",
    "uint_div",
    "uint_mod",
    "uint_mul",
    "uint_sub",
    "uint_to_double",
    "uint_to_int",
    "uint_to_string",
]

DEFAULT_MAX_SIZE: Final = 1_000_000  # == Limits.max_value_size
DEFAULT_MAX_REGEX_LENGTH: Final = 1_024  # == Limits.max_regex_length

_NoneType: Final = type(None)
_MISSING: Final[Any] = object()

# Type values, shared so that ``type(x)`` allocates nothing.
INT_TYPE: Final = TypeValue("int")
UINT_TYPE: Final = TypeValue("uint")
DOUBLE_TYPE: Final = TypeValue("double")
BOOL_TYPE: Final = TypeValue("bool")
STRING_TYPE: Final = TypeValue("string")
BYTES_TYPE: Final = TypeValue("bytes")
LIST_TYPE: Final = TypeValue("list")
MAP_TYPE: Final = TypeValue("map")
NULL_TYPE: Final = TypeValue("null_type")
TYPE_TYPE: Final = TypeValue("type")
TIMESTAMP_TYPE: Final = TypeValue("google.protobuf.Timestamp")
DURATION_TYPE: Final = TypeValue("google.protobuf.Duration")

_TYPE_OF: Final[dict[type, TypeValue]] = {
    int: INT_TYPE,
    UInt: UINT_TYPE,
    float: DOUBLE_TYPE,
    bool: BOOL_TYPE,
    str: STRING_TYPE,
    bytes: BYTES_TYPE,
    list: LIST_TYPE,
    tuple: LIST_TYPE,
    dict: MAP_TYPE,
    _NoneType: NULL_TYPE,
    TypeValue: TYPE_TYPE,
    Timestamp: TIMESTAMP_TYPE,
    Duration: DURATION_TYPE,
}

_NUMERIC: Final = frozenset({int, UInt, float})
_ORDERED: Final = frozenset({int, UInt, float, str, bytes, bool, Timestamp, Duration})
_SEQUENCE: Final = frozenset({list, tuple})
_MAP_KEY_TYPES: Final = frozenset({str, int, UInt, bool})

_F_INT64_MIN: Final = -9.223372036854775808e18  # -2**63, exact as a double
_F_TWO_63: Final = 9.223372036854775808e18  # 2**63
_F_TWO_64: Final = 1.8446744073709551616e19  # 2**64


# --------------------------------------------------------------------------
# Errors and type names


def type_name(value: object) -> str:
    """The CEL type name of a runtime value, for error messages."""
    tv = _TYPE_OF.get(type(value))
    return tv.name if tv is not None else type(value).__name__


def no_such_overload(function: str, *args: object) -> EvalError:
    """The error for a call whose argument types match no overload."""
    rendered = ", ".join(type_name(a) for a in args)
    return EvalError(f"no such overload: {function}({rendered})")


def _overflow() -> EvalError:
    return EvalError("return error for overflow")


def _format_key(key: object) -> str:
    if type(key) is str:
        return f"'{key}'"
    if type(key) is bool:
        return "true" if key else "false"
    if type(key) is UInt:
        return f"{int(key)}u"
    return repr(key)


def _no_such_key(key: object) -> EvalError:
    return EvalError(f"no such key: {_format_key(key)}")


# --------------------------------------------------------------------------
# int64


def int_add(a: object, b: object) -> int:
    if type(a) is int and type(b) is int:
        r = a + b
        if INT64_MIN <= r <= INT64_MAX:
            return r
        raise _overflow()
    raise no_such_overload("_+_", a, b)


def int_sub(a: object, b: object) -> int:
    if type(a) is int and type(b) is int:
        r = a - b
        if INT64_MIN <= r <= INT64_MAX:
            return r
        raise _overflow()
    raise no_such_overload("_-_", a, b)


def int_mul(a: object, b: object) -> int:
    if type(a) is int and type(b) is int:
        r = a * b
        if INT64_MIN <= r <= INT64_MAX:
            return r
        raise _overflow()
    raise no_such_overload("_*_", a, b)


def int_div(a: object, b: object) -> int:
    """Truncating division (toward zero), like C and Go."""
    if type(a) is int and type(b) is int:
        if b == 0:
            raise EvalError("divide by zero")
        if b == -1 and a == INT64_MIN:
            raise _overflow()
        q = abs(a) // abs(b)
        return q if (a < 0) == (b < 0) else -q
    raise no_such_overload("_/_", a, b)


def int_mod(a: object, b: object) -> int:
    """Remainder of truncating division: takes the sign of the dividend."""
    if type(a) is int and type(b) is int:
        if b == 0:
            raise EvalError("modulus by zero")
        if b == -1 and a == INT64_MIN:
            raise _overflow()
        r = abs(a) % abs(b)
        return -r if a < 0 else r
    raise no_such_overload("_%_", a, b)


def int_neg(a: object) -> int:
    if type(a) is int:
        if a == INT64_MIN:
            raise _overflow()
        return -a
    raise no_such_overload("-_", a)


# --------------------------------------------------------------------------
# uint64


def uint_add(a: object, b: object) -> UInt:
    if type(a) is UInt and type(b) is UInt:
        r = int.__add__(a, b)
        if r <= UINT64_MAX:
            return UInt(r)
        raise _overflow()
    raise no_such_overload("_+_", a, b)


def uint_sub(a: object, b: object) -> UInt:
    if type(a) is UInt and type(b) is UInt:
        r = int.__sub__(a, b)
        if r >= 0:
            return UInt(r)
        raise _overflow()
    raise no_such_overload("_-_", a, b)


def uint_mul(a: object, b: object) -> UInt:
    if type(a) is UInt and type(b) is UInt:
        r = int.__mul__(a, b)
        if r <= UINT64_MAX:
            return UInt(r)
        raise _overflow()
    raise no_such_overload("_*_", a, b)


def uint_div(a: object, b: object) -> UInt:
    if type(a) is UInt and type(b) is UInt:
        if b == 0:
            raise EvalError("divide by zero")
        return UInt(int.__floordiv__(a, b))
    raise no_such_overload("_/_", a, b)


def uint_mod(a: object, b: object) -> UInt:
    if type(a) is UInt and type(b) is UInt:
        if b == 0:
            raise EvalError("modulus by zero")
        return UInt(int.__mod__(a, b))
    raise no_such_overload("_%_", a, b)


# --------------------------------------------------------------------------
# double (IEEE 754: never an error)


def double_add(a: object, b: object) -> float:
    if type(a) is float and type(b) is float:
        return a + b
    raise no_such_overload("_+_", a, b)


def double_sub(a: object, b: object) -> float:
    if type(a) is float and type(b) is float:
        return a - b
    raise no_such_overload("_-_", a, b)


def double_mul(a: object, b: object) -> float:
    if type(a) is float and type(b) is float:
        return a * b
    raise no_such_overload("_*_", a, b)


def double_div(a: object, b: object) -> float:
    if type(a) is float and type(b) is float:
        try:
            return a / b
        except ZeroDivisionError:
            # Python raises where IEEE 754 answers ±inf or NaN.
            if a == 0.0 or math.isnan(a):
                return math.nan
            return math.copysign(math.inf, a) * math.copysign(1.0, b)
    raise no_such_overload("_/_", a, b)


def double_neg(a: object) -> float:
    if type(a) is float:
        return -a
    raise no_such_overload("-_", a)


# --------------------------------------------------------------------------
# Concatenation (bounded)


def string_concat(a: object, b: object, max_size: int = DEFAULT_MAX_SIZE) -> str:
    if type(a) is str and type(b) is str:
        if len(a) + len(b) > max_size:
            raise CostLimitError(f"string size exceeds the limit of {max_size}")
        return a + b
    raise no_such_overload("_+_", a, b)


def bytes_concat(a: object, b: object, max_size: int = DEFAULT_MAX_SIZE) -> bytes:
    if type(a) is bytes and type(b) is bytes:
        if len(a) + len(b) > max_size:
            raise CostLimitError(f"bytes size exceeds the limit of {max_size}")
        return a + b
    raise no_such_overload("_+_", a, b)


def list_concat(a: object, b: object, max_size: int = DEFAULT_MAX_SIZE) -> list[object]:
    if (type(a) is list or type(a) is tuple) and (type(b) is list or type(b) is tuple):
        if len(a) + len(b) > max_size:
            raise CostLimitError(f"list size exceeds the limit of {max_size}")
        return [*a, *b]
    raise no_such_overload("_+_", a, b)


# --------------------------------------------------------------------------
# Generic arithmetic (dyn operands)

_TIME_DISPATCH: dict[str, Callable[..., object]] = {}


def _time_call(function: str, *args: object) -> object:
    """Call the :mod:`.timefns` overloads of ``function`` on ``args``."""
    dispatch = _TIME_DISPATCH.get(function)
    if dispatch is None:
        overloads = tuple(o for d in TIME_FUNCTIONS if d.name == function for o in d.overloads)
        dispatch = make_dispatcher(FunctionDecl(function, overloads))
        _TIME_DISPATCH[function] = dispatch
    return dispatch(*args)


def add(a: object, b: object) -> object:
    ta = type(a)
    if ta is int:
        return int_add(a, b)
    if ta is float:
        return double_add(a, b)
    if ta is str:
        return string_concat(a, b)
    if ta is UInt:
        return uint_add(a, b)
    if ta is list or ta is tuple:
        return list_concat(a, b)
    if ta is bytes:
        return bytes_concat(a, b)
    if ta is Timestamp or ta is Duration:
        return _time_call("_+_", a, b)
    raise no_such_overload("_+_", a, b)


def sub(a: object, b: object) -> object:
    ta = type(a)
    if ta is int:
        return int_sub(a, b)
    if ta is float:
        return double_sub(a, b)
    if ta is UInt:
        return uint_sub(a, b)
    if ta is Timestamp or ta is Duration:
        return _time_call("_-_", a, b)
    raise no_such_overload("_-_", a, b)


def mul(a: object, b: object) -> object:
    ta = type(a)
    if ta is int:
        return int_mul(a, b)
    if ta is float:
        return double_mul(a, b)
    if ta is UInt:
        return uint_mul(a, b)
    raise no_such_overload("_*_", a, b)


def div(a: object, b: object) -> object:
    ta = type(a)
    if ta is int:
        return int_div(a, b)
    if ta is float:
        return double_div(a, b)
    if ta is UInt:
        return uint_div(a, b)
    raise no_such_overload("_/_", a, b)


def mod(a: object, b: object) -> object:
    ta = type(a)
    if ta is int:
        return int_mod(a, b)
    if ta is UInt:
        return uint_mod(a, b)
    raise no_such_overload("_%_", a, b)


def neg(a: object) -> object:
    ta = type(a)
    if ta is int:
        return int_neg(a)
    if ta is float:
        return -a  # type: ignore[operator]
    raise no_such_overload("-_", a)


# --------------------------------------------------------------------------
# Equality


def eq(a: object, b: object) -> bool:
    """CEL ``==``: heterogeneous numeric equality, deep list/map equality,
    ``false`` (not an error) for values of unrelated types, NaN != NaN."""
    return _eq(a, b, None)


def _eq(a: object, b: object, memo: dict[tuple[int, int], bool] | None) -> bool:
    ta = type(a)
    tb = type(b)
    if ta is tb:
        if ta is list or ta is tuple:
            return _seq_eq(a, b, {} if memo is None else memo)  # type: ignore[arg-type]
        if ta is dict:
            return _map_eq(a, b, {} if memo is None else memo)  # type: ignore[arg-type]
        return a == b
    if ta in _NUMERIC:
        if tb in _NUMERIC:
            # int/uint compare exactly; against a double the integer is
            # converted to the nearest double (cel-go's compareIntDouble).
            if ta is float:
                return a == float(b)  # type: ignore[arg-type]
            if tb is float:
                return float(a) == b  # type: ignore[arg-type]
            return a == b
        return False
    if ta in _SEQUENCE and tb in _SEQUENCE:
        return _seq_eq(a, b, {} if memo is None else memo)  # type: ignore[arg-type]
    return False


def ne(a: object, b: object) -> bool:
    return not eq(a, b)


# Deep equality memoizes container pairs (by identity, for the duration of one
# comparison): values built by comprehensions can share structure, e.g.
# `[x, x]` nested 30 deep, and comparing them naively costs 2**30 steps.


def _seq_eq(a: Sequence[object], b: Sequence[object], memo: dict[tuple[int, int], bool]) -> bool:
    if len(a) != len(b):
        return False
    key = (id(a), id(b))
    known = memo.get(key)
    if known is not None:
        return known
    result = True
    for x, y in zip(a, b, strict=True):
        if not _eq(x, y, memo):
            result = False
            break
    memo[key] = result
    return result


def _map_eq(
    a: dict[object, object], b: dict[object, object], memo: dict[tuple[int, int], bool]
) -> bool:
    if len(a) != len(b):
        return False
    key = (id(a), id(b))
    known = memo.get(key)
    if known is not None:
        return known
    result = True
    for k, v in a.items():
        other = _map_find(b, k)
        if other is _MISSING or not _eq(v, other, memo):
            result = False
            break
    memo[key] = result
    return result


# --------------------------------------------------------------------------
# Ordering


def _order(function: str, a: object, b: object) -> tuple[Any, Any]:
    """Operands ready for a Python comparison with CEL's semantics, or raise
    "no such overload" for types without an order."""
    ta = type(a)
    tb = type(b)
    if ta is tb:
        if ta in _ORDERED:
            return a, b
    elif ta in _NUMERIC and tb in _NUMERIC:
        if ta is float:
            return a, float(b)  # type: ignore[arg-type]
        if tb is float:
            return float(a), b  # type: ignore[arg-type]
        return a, b  # int vs uint: exact
    raise no_such_overload(function, a, b)


def lt(a: object, b: object) -> bool:
    ta = type(a)
    if ta is type(b) and ta in _ORDERED:
        return a < b  # type: ignore[operator, no-any-return]
    x, y = _order("_<_", a, b)
    return x < y  # type: ignore[no-any-return]


def le(a: object, b: object) -> bool:
    ta = type(a)
    if ta is type(b) and ta in _ORDERED:
        return a <= b  # type: ignore[operator, no-any-return]
    x, y = _order("_<=_", a, b)
    return x <= y  # type: ignore[no-any-return]


def gt(a: object, b: object) -> bool:
    ta = type(a)
    if ta is type(b) and ta in _ORDERED:
        return a > b  # type: ignore[operator, no-any-return]
    x, y = _order("_>_", a, b)
    return x > y  # type: ignore[no-any-return]


def ge(a: object, b: object) -> bool:
    ta = type(a)
    if ta is type(b) and ta in _ORDERED:
        return a >= b  # type: ignore[operator, no-any-return]
    x, y = _order("_>=_", a, b)
    return x >= y  # type: ignore[no-any-return]


# --------------------------------------------------------------------------
# Logic


def logical_not(a: object) -> bool:
    if a is True:
        return False
    if a is False:
        return True
    raise no_such_overload("!_", a)


def logical_and(a: object, b: object) -> bool:
    """``&&`` on evaluated operands (generated code short-circuits itself):
    false wins over a non-bool operand, as in CEL's commutative logic."""
    if a is False or b is False:
        return False
    if a is True and b is True:
        return True
    raise no_such_overload("_&&_", a, b)


def logical_or(a: object, b: object) -> bool:
    if a is True or b is True:
        return True
    if a is False and b is False:
        return False
    raise no_such_overload("_||_", a, b)


def conditional(cond: object, if_true: object, if_false: object) -> object:
    if cond is True:
        return if_true
    if cond is False:
        return if_false
    raise no_such_overload("_?_:_", cond, if_true, if_false)


# --------------------------------------------------------------------------
# Maps, lists, membership, size


def _map_find(m: dict[Any, Any], key: object) -> Any:
    """``m[key]`` with CEL key equality, or ``_MISSING``.

    Python already equates 1, 1u and 1.0 (same hash, equal), which is the
    heterogeneous key lookup CEL wants; but it also equates ``true`` with 1,
    which CEL does not, so a hit on a 0/1 key checks the kind of the stored
    key (a dict holds at most one key equal to ``key``)."""
    tk = type(key)
    if tk is str:
        return m.get(key, _MISSING)
    if tk is int or tk is UInt or tk is float or tk is bool:
        value = m.get(key, _MISSING)
        if value is not _MISSING and key in {0, 1}:
            is_bool = tk is bool
            for stored in m:
                if stored == key:
                    return value if (type(stored) is bool) is is_bool else _MISSING
        return value
    return _MISSING  # not a valid key type: never present


def map_get(m: dict[Any, Any], key: object, default: object = None) -> object:
    """``m[key]`` with CEL key equality, or ``default``."""
    value = _map_find(m, key)
    return default if value is _MISSING else value


def index_map(m: object, key: object) -> object:
    if type(m) is dict:
        value = _map_find(m, key)
        if value is _MISSING:
            raise _no_such_key(key)
        return value
    raise no_such_overload("_[_]", m, key)


def index_list(seq: object, i: object) -> object:
    """``list[i]``; ``i`` may be an int, a uint or an integral double."""
    if type(seq) is list or type(seq) is tuple:
        ti = type(i)
        if ti is int or ti is UInt:
            pos: int = i  # type: ignore[assignment]
        elif ti is float:
            if not i.is_integer():  # type: ignore[attr-defined]
                raise EvalError(f"invalid_argument: list index {i!r} is not an integer")
            pos = int(i)  # type: ignore[call-overload]
        else:
            raise no_such_overload("_[_]", seq, i)
        if 0 <= pos < len(seq):
            return seq[pos]
        raise EvalError(f"index out of range: {pos} (size {len(seq)})")
    raise no_such_overload("_[_]", seq, i)


def index(container: object, key: object) -> object:
    """Generic ``_[_]``."""
    tc = type(container)
    if tc is dict:
        return index_map(container, key)
    if tc is list or tc is tuple:
        return index_list(container, key)
    raise no_such_overload("_[_]", container, key)


def in_list(elem: object, seq: object) -> bool:
    if type(seq) is list or type(seq) is tuple:
        te = type(elem)
        if te is str or te is bytes or elem is None:
            # Python's own equality is CEL's for these types.
            return elem in seq
        for item in seq:  # noqa: SIM110 - cheaper than any(genexpr)
            if eq(elem, item):
                return True
        return False
    raise no_such_overload("@in", elem, seq)


def in_map(key: object, m: object) -> bool:
    if type(m) is dict:
        return _map_find(m, key) is not _MISSING
    raise no_such_overload("@in", key, m)


def in_(elem: object, container: object) -> bool:
    """Generic ``@in``."""
    tc = type(container)
    if tc is dict:
        return _map_find(container, elem) is not _MISSING  # type: ignore[arg-type]
    if tc is list or tc is tuple:
        return in_list(elem, container)
    raise no_such_overload("@in", elem, container)


def size(value: object) -> int:
    """Size of a string (code points), bytes, list or map."""
    tv = type(value)
    if tv is str or tv is list or tv is dict or tv is bytes or tv is tuple:
        return len(value)  # type: ignore[arg-type]
    raise no_such_overload("size", value)


def select(operand: object, field: str) -> object:
    """``operand.field`` on a map (the only selectable value here)."""
    if type(operand) is dict:
        value = operand.get(field, _MISSING)
        if value is _MISSING:
            raise _no_such_key(field)
        return value
    raise EvalError(f"type '{type_name(operand)}' does not support field selection")


def has_field(operand: object, field: str) -> bool:
    """``has(operand.field)``: whether a map holds the key ``field``."""
    if type(operand) is dict:
        return field in operand
    raise EvalError(f"no such overload: has() on type '{type_name(operand)}'")


def make_map(pairs: Iterable[tuple[object, object]]) -> dict[object, object]:
    """Build a map literal. Keys must be int, uint, bool or string and
    distinct under CEL equality (``{0: 1, 0u: 2}`` repeats a key).

    Known gap: Python equates ``true`` with ``1`` (and ``false`` with ``0``),
    so a literal mixing those keys is reported as repeating a key."""
    out: dict[object, object] = {}
    for key, value in pairs:
        if type(key) not in _MAP_KEY_TYPES:
            raise EvalError(f"unsupported key type: {type_name(key)}")
        if key in out:
            raise EvalError(f"Failed with repeated key: {_format_key(key)}")
        out[key] = value
    return out


# --------------------------------------------------------------------------
# Strings and regular expressions


def contains(s: object, sub: object) -> bool:
    if type(s) is str and type(sub) is str:
        return sub in s
    raise no_such_overload("contains", s, sub)


def starts_with(s: object, prefix: object) -> bool:
    if type(s) is str and type(prefix) is str:
        return s.startswith(prefix)
    raise no_such_overload("startsWith", s, prefix)


def ends_with(s: object, suffix: object) -> bool:
    if type(s) is str and type(suffix) is str:
        return s.endswith(suffix)
    raise no_such_overload("endsWith", s, suffix)


_RE2_OPTIONS: Final = re2.Options()
_RE2_OPTIONS.log_errors = False  # errors become EvalError, not stderr noise
_RE2_OPTIONS.never_capture = True  # only "is there a match" is asked
_RE2_UNANCHORED: Final[Any] = getattr(getattr(re2, "_Anchor", None), "UNANCHORED", None)
_RE2_NO_MATCH: Final[Any] = getattr(re2, "_NULL_SPAN", None)


@functools.lru_cache(maxsize=512)
def _compile_regex(pattern: str) -> Callable[[str], bool]:
    """A search predicate for ``pattern``; bounded LRU of compiled patterns.
    Compile errors are not cached (lru_cache does not cache exceptions)."""
    try:
        compiled = re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        detail = exc.args[0] if exc.args else ""
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        raise EvalError(f"invalid regular expression: {detail}") from exc
    match = getattr(getattr(compiled, "_regexp", None), "Match", None)
    if match is None or _RE2_UNANCHORED is None or _RE2_NO_MATCH is None:
        # The public API: about ten times slower (it builds match objects
        # and maps byte offsets back to characters).
        search = compiled.search
        return lambda text: search(text) is not None

    # google-re2's binding under the public API: one C call per search.
    def predicate(text: str) -> bool:
        encoded = text.encode("utf-8")
        spans = match(_RE2_UNANCHORED, encoded, 0, len(encoded))
        return bool(spans[0] != _RE2_NO_MATCH)

    return predicate


def matches(s: object, pattern: object, max_length: int = DEFAULT_MAX_REGEX_LENGTH) -> bool:
    """RE2 partial match (``'hubba'.matches('ubb')`` is true); linear time.
    Patterns longer than ``max_length`` raise :class:`CostLimitError`."""
    if type(s) is str and type(pattern) is str:
        if len(pattern) > max_length:
            raise CostLimitError(f"regular expression longer than {max_length} characters")
        search = _compile_regex(pattern)
        try:
            return search(s)
        except UnicodeEncodeError as exc:  # lone surrogates: not valid text
            raise EvalError("invalid UTF-8 in matches() argument") from exc
    raise no_such_overload("matches", s, pattern)


# --------------------------------------------------------------------------
# Conversions

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
    if tv is Timestamp or tv is Duration:
        result = _time_call("int", value)
        if type(result) is int:
            return result
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


def type_of(value: object) -> TypeValue:
    """``type(x)``. Host values outside the CEL value set (opaque domain
    objects) report their Python class name."""
    tv = _TYPE_OF.get(type(value))
    return tv if tv is not None else TypeValue(type(value).__name__)


# --------------------------------------------------------------------------
# Dynamic dispatch

_PY_TYPES: Final[dict[str, frozenset[type] | None]] = {
    "int": frozenset({int}),
    "uint": frozenset({UInt}),
    "double": frozenset({float}),
    "bool": frozenset({bool}),
    "string": frozenset({str}),
    "bytes": frozenset({bytes}),
    "null_type": frozenset({_NoneType}),
    "google.protobuf.Timestamp": frozenset({Timestamp}),
    "google.protobuf.Duration": frozenset({Duration}),
    "dyn": None,
    "any": None,
    "*error*": frozenset(),
}
_LIST_PY_TYPES: Final = frozenset({list, tuple})
_MAP_PY_TYPES: Final = frozenset({dict})
_TYPE_PY_TYPES: Final = frozenset({TypeValue})


@functools.lru_cache(maxsize=256)
def _python_types(t: Type) -> frozenset[type] | None:
    """The Python classes whose values have static type ``t``; ``None`` means
    any value. Matching looks only at a value's class, never inside it (a
    list matches ``list(int)`` whatever its elements)."""
    if isinstance(t, PrimitiveType):
        return _PY_TYPES.get(t.name)
    if isinstance(t, ListType):
        return _LIST_PY_TYPES
    if isinstance(t, MapType):
        return _MAP_PY_TYPES
    if isinstance(t, TypeType):
        return _TYPE_PY_TYPES
    if isinstance(t, TypeParam | OpaqueType):
        return None  # type variables; opaque host values have no fixed class
    return None


def runtime_type_matches(value: object, t: Type) -> bool:
    """Whether a runtime value may be passed where static type ``t`` is
    expected (``dyn`` and type parameters accept anything)."""
    classes = _python_types(t)
    return classes is None or type(value) in classes


_DISPATCH_CACHE_SIZE: Final = 1_024


def make_dispatcher(decl: FunctionDecl) -> Callable[..., object]:
    """A callable that runs the first overload of ``decl`` whose parameters
    match the runtime argument values (receiver first for method overloads),
    or raises ``EvalError("no such overload: name(types)")``.

    Matching depends only on the arguments' Python classes, so the chosen
    implementation is memoised per tuple of classes (bounded)."""
    name = decl.name
    table = tuple(
        (len(o.params), tuple(_python_types(p) for p in o.params), o.impl)
        for o in decl.overloads
        if o.impl is not None
    )
    cache: dict[tuple[type, ...], Callable[..., object]] = {}

    def resolve(key: tuple[type, ...]) -> Callable[..., object]:
        arity = len(key)
        for n, matchers, impl in table:
            if n == arity and all(m is None or k in m for m, k in zip(matchers, key, strict=True)):
                assert impl is not None
                found = impl
                break
        else:

            def found(*args: object) -> object:
                raise no_such_overload(name, *args)

        if len(cache) < _DISPATCH_CACHE_SIZE:
            cache[key] = found
        return found

    def dispatch(*args: object) -> object:
        key = tuple(map(type, args))
        impl = cache.get(key) or resolve(key)
        return impl(*args)

    # Fixed-arity fast paths (most standard functions are unary or binary);
    # a call with another number of arguments takes the general path.
    arities = {n for n, _, _ in table}
    if arities == {1}:

        def dispatch1(a: object = _MISSING, *rest: object) -> object:
            if rest or a is _MISSING:
                return dispatch(*(x for x in (a, *rest) if x is not _MISSING))
            key = (type(a),)
            impl = cache.get(key) or resolve(key)
            return impl(a)

        return dispatch1
    if arities == {2}:

        def dispatch2(a: object = _MISSING, b: object = _MISSING, *rest: object) -> object:
            if rest or b is _MISSING:
                return dispatch(*(x for x in (a, b, *rest) if x is not _MISSING))
            key = (type(a), type(b))
            impl = cache.get(key) or resolve(key)
            return impl(a, b)

        return dispatch2
    return dispatch
