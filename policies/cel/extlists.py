"""The CEL lists and sets extensions (cel-go ``ext.Lists`` and ``ext.Sets``).

Lists: ``slice``, ``flatten`` (with an optional depth), ``sort``,
``distinct``, ``reverse`` (methods) and ``lists.range`` (global). Sets:
``sets.contains``, ``sets.equivalent``, ``sets.intersects`` over lists,
with CEL equality (``1``, ``1u`` and ``1.0`` are the same element; ``true``
is not ``1``).

Membership of scalar elements (numbers, strings, bytes, bools, null) uses a
hash of a key that follows CEL equality, so ``distinct`` and the set
functions take linear time on them; other elements (lists, maps,
timestamps, ...) are compared pairwise with CEL's deep equality. The cost
estimates in :mod:`.cost` follow the same split.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Final

from . import runtime as rt
from .env import FunctionDecl, Overload
from .errors import EvalError
from .runtime import DEFAULT_MAX_SIZE, no_such_overload
from .types import (
    BOOL,
    BYTES,
    DOUBLE,
    DURATION,
    DYN,
    INT,
    STRING,
    TIMESTAMP,
    UINT,
    ListType,
    Type,
    TypeParam,
)
from .values import UInt, type_name

__all__ = ["LIST_FUNCTIONS", "SET_FUNCTIONS", "scalar_key"]

_A: Final = TypeParam("A")
_LIST_A: Final = ListType(_A)
_SEQ: Final = (list, tuple)
_MAX_FLATTEN_DEPTH: Final = 64
_NUMBER_KINDS: Final = frozenset({int, UInt, float})


def scalar_key(value: object) -> object:
    """A hashable key equal exactly when the CEL values are equal, or
    ``None`` for values compared pairwise (containers, timestamps, host
    objects) and for NaN (equal to nothing, itself included)."""
    kind = type(value)
    if kind in _NUMBER_KINDS:
        if kind is float and math.isnan(value):  # type: ignore[arg-type]
            return None
        return ("n", value)  # Python's == and hash agree across int and float
    if kind is str:
        return ("s", value)
    if kind is bytes:
        return ("y", value)
    if kind is bool:
        return ("b", value)
    if value is None:
        return ("z", None)
    return None


def _seq(function: str, value: object, *args: object) -> Sequence[object]:
    if type(value) not in _SEQ:
        raise no_such_overload(function, value, *args)
    return value  # type: ignore[return-value]


def _int(function: str, value: object, *args: object) -> int:
    if type(value) is not int:
        raise no_such_overload(function, *args)
    return value


def list_slice(seq: object, start: object, end: object) -> list[object]:
    items = _seq("slice", seq, start, end)
    first = _int("slice", start, seq, start, end)
    last = _int("slice", end, seq, start, end)
    if first < 0 or last < 0:
        raise EvalError(f"cannot slice({first}, {last}), negative indexes not supported")
    if first > last:
        raise EvalError(
            f"cannot slice({first}, {last}), start index must be less than or equal to end index"
        )
    if last > len(items):
        raise EvalError(f"cannot slice({first}, {last}), list is length {len(items)}")
    return list(items[first:last])


def flatten(seq: object, depth: object = 1) -> list[object]:
    items = _seq("flatten", seq, depth)
    levels = _int("flatten", depth, seq, depth)
    if levels < 0:
        raise EvalError("level must be non-negative")
    levels = min(levels, _MAX_FLATTEN_DEPTH)
    out = list(items)
    for _ in range(levels):
        if not any(type(item) in _SEQ for item in out):
            break
        flat: list[object] = []
        for item in out:
            if type(item) in _SEQ:
                flat.extend(item)  # type: ignore[arg-type]
            else:
                flat.append(item)
            if len(flat) > DEFAULT_MAX_SIZE:
                raise EvalError(f"list too long: over {DEFAULT_MAX_SIZE} elements")
        out = flat
    return out


_SORTABLE: Final = frozenset({int, UInt, float, str, bytes, bool})


def sort(seq: object) -> list[object]:
    items = _seq("sort", seq)
    if not items:
        return []
    kind = type(items[0])
    for item in items:
        if type(item) is not kind:
            raise EvalError(
                f"list elements must have the same type: {type_name(items[0])}, {type_name(item)}"
            )
    if kind not in _SORTABLE:
        rt.lt(items[0], items[0])  # raises "no such overload" for unordered types
    return sorted(items, key=_sort_key(kind))  # type: ignore[arg-type, type-var]


def _sort_key(kind: type) -> Callable[[object], object] | None:
    if kind is float:
        # NaN sorts first, as Go's sort.Float64s orders it.
        return lambda d: (not math.isnan(d), d)  # type: ignore[arg-type]
    return None


def distinct(seq: object) -> list[object]:
    items = _seq("distinct", seq)
    seen: set[object] = set()
    others: list[object] = []
    out: list[object] = []
    for item in items:
        key = scalar_key(item)
        if key is not None:
            if key in seen:
                continue
            seen.add(key)
        elif type(item) is not float:  # a NaN equals nothing: always kept
            if any(rt.eq(item, other) for other in others):
                continue
            others.append(item)
        out.append(item)
    return out


def reverse_list(seq: object) -> list[object]:
    return list(_seq("reverse", seq))[::-1]


def lists_range(n: object) -> list[int]:
    count = _int("lists.range", n, n)
    if count > DEFAULT_MAX_SIZE:
        raise EvalError(f"list too long: {count} elements (limit {DEFAULT_MAX_SIZE})")
    return list(range(max(count, 0)))


# --------------------------------------------------------------------------
# sets


class _Members:
    """The elements of a list, for membership tests by CEL equality."""

    __slots__ = ("keys", "others")

    def __init__(self, items: Sequence[object]) -> None:
        self.keys: set[object] = set()
        self.others: list[object] = []
        for item in items:
            key = scalar_key(item)
            if key is not None:
                self.keys.add(key)
            elif type(item) is not float:  # NaN is a member of nothing
                self.others.append(item)

    def __contains__(self, item: object) -> bool:
        key = scalar_key(item)
        if key is not None:
            return key in self.keys
        return any(rt.eq(item, other) for other in self.others)


def sets_contains(a: object, b: object) -> bool:
    first = _seq("sets.contains", a, b)
    second = _seq("sets.contains", b, a)
    members = _Members(first)
    return all(item in members for item in second)


def sets_equivalent(a: object, b: object) -> bool:
    return sets_contains(a, b) and sets_contains(b, a)


def sets_intersects(a: object, b: object) -> bool:
    first = _seq("sets.intersects", a, b)
    second = _seq("sets.intersects", b, a)
    members = _Members(first)
    return any(item in members for item in second)


def _m(
    overload_id: str, params: tuple[Type, ...], result: Type, impl: Callable[..., object]
) -> Overload:
    return Overload(overload_id, params, result, impl, receiver=True)


_ORDERED_TYPES: Final = (
    ("int", INT),
    ("uint", UINT),
    ("double", DOUBLE),
    ("string", STRING),
    ("bytes", BYTES),
    ("bool", BOOL),
    ("timestamp", TIMESTAMP),
    ("duration", DURATION),
)

LIST_FUNCTIONS: Final[tuple[FunctionDecl, ...]] = (
    FunctionDecl(
        "slice",
        (_m("list_slice", (_LIST_A, INT, INT), _LIST_A, list_slice),),
        "The elements [start, end); negative or out-of-range positions are errors.",
    ),
    FunctionDecl(
        "flatten",
        (
            _m("list_flatten", (ListType(_LIST_A),), _LIST_A, flatten),
            _m("list_flatten_int", (ListType(DYN), INT), ListType(DYN), flatten),
        ),
        "Flatten nested lists one level, or `depth` levels.",
    ),
    FunctionDecl(
        "sort",
        tuple(
            _m(f"list_{suffix}_sort", (ListType(t),), ListType(t), sort)
            for suffix, t in _ORDERED_TYPES
        ),
        "Sort a list of comparable elements of one type.",
    ),
    FunctionDecl(
        "distinct",
        (_m("list_distinct", (_LIST_A,), _LIST_A, distinct),),
        "The list without repeated elements (by CEL equality; the first is kept).",
    ),
    FunctionDecl(
        "reverse",
        (_m("list_reverse", (_LIST_A,), _LIST_A, reverse_list),),
        "The list in reverse order.",
    ),
    FunctionDecl(
        "lists.range",
        (Overload("lists_range", (INT,), ListType(INT), lists_range),),
        "The integers 0 .. n-1 (empty for n <= 0).",
    ),
)
"""The lists extension's functions."""

SET_FUNCTIONS: Final[tuple[FunctionDecl, ...]] = (
    FunctionDecl(
        "sets.contains",
        (Overload("list_sets_contains_list", (_LIST_A, _LIST_A), BOOL, sets_contains),),
        "Whether the first list contains every element of the second.",
    ),
    FunctionDecl(
        "sets.equivalent",
        (Overload("list_sets_equivalent_list", (_LIST_A, _LIST_A), BOOL, sets_equivalent),),
        "Whether the two lists contain the same elements (ignoring order and repeats).",
    ),
    FunctionDecl(
        "sets.intersects",
        (Overload("list_sets_intersects_list", (_LIST_A, _LIST_A), BOOL, sets_intersects),),
        "Whether the two lists share an element.",
    ),
)
"""The sets extension's functions (global)."""
