"""The CEL math extension (cel-go ``ext.Math``): declarations and implementations.

``math.greatest`` / ``math.least`` take one to any number of numeric
arguments, or one list; the parser rewrites calls with three or more
arguments to the list form (as cel-go's macro does), so the checker sees
fixed arities. Mixed int/uint/double arguments compare exactly as CEL's
ordering does and the chosen argument is returned unchanged (its own type).

Integer results are range-checked like the core's arithmetic: ``math.abs``
of the smallest int64 is an overflow error. Bit shifts follow cel-go: a
negative shift is an error, shifts of 64 or more give 0, ``bitShiftRight``
on an int is a logical shift (the sign bit is not extended).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Final

from . import runtime as rt
from .env import FunctionDecl, Overload
from .errors import EvalError
from .runtime import no_such_overload
from .types import BOOL, DOUBLE, DYN, INT, UINT, ListType, Type
from .values import INT64_MAX, INT64_MIN, UINT64_MAX, UInt

__all__ = ["MATH_FUNCTIONS"]

_NUMBERS: Final = frozenset({int, UInt, float})
_MASK64: Final = UINT64_MAX


def _extreme(name: str, better: Callable[[object, object], bool]) -> Callable[..., object]:
    function = f"math.{name}"

    def pick(*args: object) -> object:
        values: tuple[object, ...] | list[object] = args
        if len(args) == 1 and type(args[0]) in (list, tuple):
            values = args[0]  # type: ignore[assignment]
            if not values:
                raise EvalError(f"{function}(list) argument must not be empty")
        if not values:
            raise no_such_overload(function)
        best = values[0]
        for value in values:
            if type(value) not in _NUMBERS:
                raise no_such_overload(function, *args)
            if better(value, best):
                best = value
        return best

    pick.__name__ = f"math_{name}"
    return pick


greatest = _extreme("greatest", rt.gt)
least = _extreme("least", rt.lt)


def _double(name: str, value: object) -> float:
    if type(value) is not float:
        raise no_such_overload(f"math.{name}", value)
    return value


def ceil(x: object) -> float:
    d = _double("ceil", x)
    return d if not math.isfinite(d) else float(math.ceil(d))


def floor(x: object) -> float:
    d = _double("floor", x)
    return d if not math.isfinite(d) else float(math.floor(d))


def trunc(x: object) -> float:
    d = _double("trunc", x)
    return d if not math.isfinite(d) else float(math.trunc(d))


def round_half_away(x: object) -> float:
    """Round half away from zero (Go's ``math.Round``), not Python's half-even."""
    d = _double("round", x)
    if not math.isfinite(d):
        return d
    whole = math.trunc(d)
    if abs(d - whole) >= 0.5:
        whole += 1 if d > 0 else -1
    return math.copysign(float(whole), d)


def is_nan(x: object) -> bool:
    return math.isnan(_double("isNaN", x))


def is_inf(x: object) -> bool:
    return math.isinf(_double("isInf", x))


def is_finite(x: object) -> bool:
    return math.isfinite(_double("isFinite", x))


def abs_(x: object) -> object:
    kind = type(x)
    if kind is int:
        if x == INT64_MIN:
            raise EvalError("integer overflow in math.abs")
        return abs(x)  # type: ignore[arg-type]
    if kind is UInt:
        return x
    if kind is float:
        return abs(x)  # type: ignore[arg-type]
    raise no_such_overload("math.abs", x)


def sign(x: object) -> object:
    kind = type(x)
    if kind is int:
        return (x > 0) - (x < 0)  # type: ignore[operator]
    if kind is UInt:
        return UInt(1 if x else 0)
    if kind is float:
        if math.isnan(x):  # type: ignore[arg-type]
            return x
        return 1.0 if x > 0 else -1.0 if x < 0 else 0.0  # type: ignore[operator]
    raise no_such_overload("math.sign", x)


def _wrap_int(value: int) -> int:
    value &= _MASK64
    return value - (1 << 64) if value > INT64_MAX else value


def _bitwise(name: str, op: Callable[[int, int], int]) -> Callable[[object, object], object]:
    function = f"math.{name}"

    def apply(a: object, b: object) -> object:
        ta = type(a)
        if ta is type(b):
            if ta is int:
                return op(a, b)  # type: ignore[arg-type]
            if ta is UInt:
                return UInt(op(a, b))  # type: ignore[arg-type]
        raise no_such_overload(function, a, b)

    apply.__name__ = f"math_{name}"
    return apply


bit_and = _bitwise("bitAnd", int.__and__)
bit_or = _bitwise("bitOr", int.__or__)
bit_xor = _bitwise("bitXor", int.__xor__)


def bit_not(a: object) -> object:
    kind = type(a)
    if kind is int:
        return ~a  # type: ignore[operator]
    if kind is UInt:
        return UInt(a ^ _MASK64)  # type: ignore[operator]
    raise no_such_overload("math.bitNot", a)


def _shift_amount(function: str, value: object, n: object) -> int:
    if type(value) not in (int, UInt) or type(n) is not int:
        raise no_such_overload(function, value, n)
    if n < 0:
        raise EvalError(f"{function}() invalid negative shift: {n}")
    return n


def bit_shift_left(value: object, n: object) -> object:
    shift = _shift_amount("math.bitShiftLeft", value, n)
    if shift >= 64:
        return UInt(0) if type(value) is UInt else 0
    if type(value) is UInt:
        return UInt((value << shift) & _MASK64)
    return _wrap_int(value << shift)  # type: ignore[operator]


def bit_shift_right(value: object, n: object) -> object:
    shift = _shift_amount("math.bitShiftRight", value, n)
    if shift >= 64:
        return UInt(0) if type(value) is UInt else 0
    if type(value) is UInt:
        return UInt(value >> shift)
    return _wrap_int((value & _MASK64) >> shift)  # type: ignore[operator]


def _decl(
    name: str, doc: str, *overloads: tuple[str, tuple[Type, ...], Type, Callable[..., object]]
) -> FunctionDecl:
    return FunctionDecl(
        f"math.{name}",
        tuple(Overload(oid, params, result, impl) for oid, params, result, impl in overloads),
        doc,
    )


_NUMERIC_TYPES: Final = ((INT, "int"), (UINT, "uint"), (DOUBLE, "double"))


def _extreme_decl(name: str, impl: Callable[..., object], doc: str) -> FunctionDecl:
    overloads: list[tuple[str, tuple[Type, ...], Type, Callable[..., object]]] = []
    for t, suffix in _NUMERIC_TYPES:
        overloads.append((f"math_{name}_{suffix}", (t,), t, impl))
    for a, sa in _NUMERIC_TYPES:
        for b, sb in _NUMERIC_TYPES:
            overloads.append((f"math_{name}_{sa}_{sb}", (a, b), a if a == b else DYN, impl))
    for t, suffix in _NUMERIC_TYPES:
        overloads.append((f"math_{name}_list_{suffix}", (ListType(t),), t, impl))
    return _decl(name, doc, *overloads)


def _double_fn(name: str, impl: Callable[..., object], result: Type, doc: str) -> FunctionDecl:
    return _decl(name, doc, (f"math_{name}_double", (DOUBLE,), result, impl))


def _int_uint(name: str, impl: Callable[..., object], arity: int, doc: str) -> FunctionDecl:
    if arity == 1:
        return _decl(
            name,
            doc,
            (f"math_{name}_int", (INT,), INT, impl),
            (f"math_{name}_uint", (UINT,), UINT, impl),
        )
    if name.startswith("bitShift"):
        return _decl(
            name,
            doc,
            (f"math_{name}_int_int", (INT, INT), INT, impl),
            (f"math_{name}_uint_int", (UINT, INT), UINT, impl),
        )
    return _decl(
        name,
        doc,
        (f"math_{name}_int_int", (INT, INT), INT, impl),
        (f"math_{name}_uint_uint", (UINT, UINT), UINT, impl),
    )


def _signed(name: str, impl: Callable[..., object], doc: str) -> FunctionDecl:
    return _decl(
        name,
        doc,
        (f"math_{name}_int", (INT,), INT, impl),
        (f"math_{name}_uint", (UINT,), UINT, impl),
        (f"math_{name}_double", (DOUBLE,), DOUBLE, impl),
    )


MATH_FUNCTIONS: Final[tuple[FunctionDecl, ...]] = (
    _extreme_decl("greatest", greatest, "The greatest of numbers (or of a non-empty list)."),
    _extreme_decl("least", least, "The least of numbers (or of a non-empty list)."),
    _double_fn("ceil", ceil, DOUBLE, "Round up to a whole number."),
    _double_fn("floor", floor, DOUBLE, "Round down to a whole number."),
    _double_fn("round", round_half_away, DOUBLE, "Round to the nearest, halves away from zero."),
    _double_fn("trunc", trunc, DOUBLE, "Round toward zero."),
    _signed("abs", abs_, "Absolute value; the smallest int is an overflow error."),
    _signed("sign", sign, "-1, 0 or 1 in the argument's type (NaN stays NaN)."),
    _double_fn("isNaN", is_nan, BOOL, "Whether a double is NaN."),
    _double_fn("isInf", is_inf, BOOL, "Whether a double is infinite."),
    _double_fn("isFinite", is_finite, BOOL, "Whether a double is neither NaN nor infinite."),
    _int_uint("bitAnd", bit_and, 2, "Bitwise and."),
    _int_uint("bitOr", bit_or, 2, "Bitwise or."),
    _int_uint("bitXor", bit_xor, 2, "Bitwise exclusive or."),
    _int_uint("bitNot", bit_not, 1, "Bitwise complement."),
    _int_uint("bitShiftLeft", bit_shift_left, 2, "Left shift (bits past 64 are lost)."),
    _int_uint("bitShiftRight", bit_shift_right, 2, "Logical right shift (no sign extension)."),
)
"""The math extension's functions, all global (``math.name(...)``)."""
