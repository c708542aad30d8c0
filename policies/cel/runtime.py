"""CEL runtime semantics: arithmetic, equality, ordering, logic, containers.

Pure functions over CEL values (see :mod:`.values`). Each one returns a CEL
value or raises :class:`~policies.cel.errors.EvalError` carrying the CEL error
text ("no such overload", "no such key: 'x'", "division by zero", "return
error for overflow", ...); :class:`~policies.cel.errors.CostLimitError` when a
runtime size bound is exceeded.

Most functions implement one standard overload (``int_add``,
``string_concat``, ...). The code generator may call them directly when the
checker resolved a single overload, which can happen with ``dyn`` operands,
so each one still verifies the runtime types of its arguments (a couple of
``type(x) is T`` tests) and raises "no such overload" instead of computing a
wrong answer. ``eq``, ``lt``, ``index``, ``size`` ... accept any CEL values.

Numeric semantics follow the current cel-spec: ``1 == 1u == 1.0``;
ordering across int/uint/double; int and uint compare exactly with each
other, while int/uint against double compare after converting the integer to
the nearest double (what cel-go and cel-cpp do, e.g.
``9223372036854775807 >= 9223372036854775808.0`` is true).

Conversions are in :mod:`.conversions`, dynamic dispatch in :mod:`.dispatch`,
regular expressions in :mod:`.regex`, timestamps and durations in
:mod:`.timefns`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any, Final

from .errors import CostLimitError, EvalError
from .values import (
    BOOL_KEY_FALSE,
    BOOL_KEY_TRUE,
    INT64_MAX,
    INT64_MIN,
    OPTIONAL_NONE,
    UINT64_MAX,
    BoolKey,
    Duration,
    Optional,
    Timestamp,
    TypeValue,
    UInt,
    type_name,
)

__all__ = [
    "DEFAULT_MAX_SIZE",
    "bytes_concat",
    "conditional",
    "contains",
    "double_add",
    "double_div",
    "double_mul",
    "double_neg",
    "double_sub",
    "ends_with",
    "eq",
    "ge",
    "gt",
    "has_field",
    "in_list",
    "in_map",
    "index",
    "index_list",
    "index_map",
    "insert_key",
    "int_add",
    "int_div",
    "int_mod",
    "int_mul",
    "int_neg",
    "int_sub",
    "le",
    "list_concat",
    "logical_and",
    "logical_not",
    "logical_or",
    "lt",
    "make_map",
    "ne",
    "no_such_overload",
    "select",
    "size",
    "starts_with",
    "string_concat",
    "uint_add",
    "uint_div",
    "uint_mod",
    "uint_mul",
    "uint_sub",
]

DEFAULT_MAX_SIZE: Final = 1_000_000  # == Limits.max_value_size

_MISSING: Final[Any] = object()

_NUMERIC: Final = frozenset({int, UInt, float})
_ORDERED: Final = frozenset({int, UInt, float, str, bytes, bool, Timestamp, Duration})
_SEQUENCE: Final = frozenset({list, tuple})
_MAP_KEY_TYPES: Final = frozenset({str, int, UInt, bool})
_BOOL_KEYS: Final = {True: BOOL_KEY_TRUE, False: BOOL_KEY_FALSE}
# Types whose Python equality is CEL's (within the type); any other value is a
# host object, equal only to itself: its __eq__ never runs.
_SCALARS: Final = frozenset(
    {int, UInt, float, bool, str, bytes, type(None), Timestamp, Duration, TypeValue, BoolKey}
)


# --------------------------------------------------------------------------
# Errors and type names


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
        if ta is Optional:
            if a.has_value and b.has_value:  # type: ignore[attr-defined]
                return _eq(a.value, b.value, memo)  # type: ignore[attr-defined]
            return a.has_value is b.has_value  # type: ignore[attr-defined]
        return a == b if ta in _SCALARS else a is b
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
        other = _map_find(b, _unwrap_key(k))
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
    key, and a map holding both keeps the bool one as a :class:`BoolKey`."""
    tk = type(key)
    if tk is str:
        return m.get(key, _MISSING)
    if tk is int or tk is UInt or tk is float or tk is bool:
        value = m.get(key, _MISSING)
        if key in {0, 1}:
            is_bool = tk is bool
            if value is not _MISSING:
                for stored in m:
                    if stored == key:  # a BoolKey equals no number
                        if (type(stored) is bool) is is_bool:
                            return value
                        break
            return m.get(_BOOL_KEYS[bool(key)], _MISSING) if is_bool else _MISSING
        return value
    return _MISSING  # not a valid key type: never present


def _unwrap_key(key: object) -> object:
    return key.value if type(key) is BoolKey else key


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
            # Python's own equality is CEL's for these types (compared only
            # with items of the same type: a host object's __eq__ never runs).
            for item in seq:  # noqa: SIM110 - cheaper than any(genexpr)
                if type(item) is te and item == elem:
                    return True
            return False
        for item in seq:  # noqa: SIM110 - cheaper than any(genexpr)
            if eq(elem, item):
                return True
        return False
    raise no_such_overload("@in", elem, seq)


def in_map(key: object, m: object) -> bool:
    if type(m) is dict:
        return _map_find(m, key) is not _MISSING
    raise no_such_overload("@in", key, m)


def size(value: object) -> int:
    """Size of a string (code points), bytes, list or map."""
    tv = type(value)
    if tv is str or tv is list or tv is dict or tv is bytes or tv is tuple:
        return len(value)  # type: ignore[arg-type]
    raise no_such_overload("size", value)


def select(operand: object, field: str) -> object:
    """``operand.field`` on a map (the only selectable value here), or on an
    optional map (optional chaining: ``a.?b.c`` selects ``c`` optionally too,
    so a missing ``b`` or ``c`` gives none)."""
    if type(operand) is Optional:
        if not operand.has_value:
            return operand
        inner = operand.value
        if type(inner) is dict:
            found = inner.get(field, _MISSING)
            return OPTIONAL_NONE if found is _MISSING else Optional(found)
        return Optional(select(inner, field))
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
    distinct under CEL equality (``{0: 1, 0u: 2}`` repeats a key;
    ``{true: 'a', 1: 'b'}`` does not)."""
    out: dict[object, object] = {}
    for key, value in pairs:
        if type(key) not in _MAP_KEY_TYPES:
            raise EvalError(f"unsupported key type: {type_name(key)}")
        insert_key(out, key, value)
    return out


def insert_key(out: dict[object, object], key: object, value: object) -> None:
    """Add ``key`` to a map being built; a key already there (in CEL's
    equality) is the "repeated key" error."""
    if key in out:
        if _map_find(out, key) is not _MISSING:
            raise EvalError(f"Failed with repeated key: {_format_key(key)}")
        # A bool and the number equal to it: both stay, the bool as a BoolKey.
        if type(key) is bool:
            out[_BOOL_KEYS[key]] = value
            return
        flag = next(stored for stored in out if stored == key and type(stored) is bool)
        out[_BOOL_KEYS[flag]] = out.pop(flag)
    elif type(key) is bool and _BOOL_KEYS[key] in out:
        raise EvalError(f"Failed with repeated key: {_format_key(key)}")
    out[key] = value


# --------------------------------------------------------------------------
# Strings


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
