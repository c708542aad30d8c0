"""Helpers the generated code calls: range checks, error-absorbing logic,
comprehension loops and the iteration budget.

The generated code has two bodies (see :mod:`policies.cel.compiler`): a fast
one made of plain Python operators, and a strict one that implements CEL's
error semantics exactly. The ``_and``/``_or``/``_all``/``_exists`` helpers
here are the strict forms: in CEL, ``false && error`` is ``false`` and
``error || true`` is ``true`` in either operand order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .cost import map_keys
from .errors import CelError, EvalError
from .runtime import insert_key, make_map
from .values import INT64_MAX, INT64_MIN

__all__ = [
    "check_bool",
    "check_int",
    "logical_and",
    "logical_not",
    "logical_or",
    "macro_all",
    "macro_exists",
    "macro_exists_one",
    "macro_filter",
    "macro_map",
    "variable",
]


def check_int(value: int) -> int:
    """Return ``value`` if it fits in int64, else raise the CEL overflow error."""
    if INT64_MIN <= value <= INT64_MAX:
        return value
    raise EvalError("return error for overflow")


def check_bool(value: object) -> bool:
    """Logical operators and conditions accept only bool."""
    if value is True or value is False:
        return value
    raise EvalError(f"no such overload: expected bool, found {_type_label(value)}")


def _type_label(value: object) -> str:
    return type(value).__name__


def variable(activation: Mapping[str, object], name: str) -> object:
    """Read a variable; a missing one is a CEL error, not a KeyError."""
    try:
        return activation[name]
    except KeyError:
        raise EvalError(f"no such attribute: '{name}' is not bound in the activation") from None
    except TypeError:
        raise EvalError("the activation must be a mapping of variable names") from None


def logical_not(value: object) -> bool:
    if value is True:
        return False
    if value is False:
        return True
    raise EvalError(f"no such overload: !_ applied to {_type_label(value)}")


def _absorbing(
    left: Callable[[], object], right: Callable[[], object], absorbing: bool, name: str
) -> bool:
    """``&&`` (absorbing=False) and ``||`` (absorbing=True) as the spec
    defines them: the absorbing value wins over errors on either side;
    otherwise the first error is the result."""
    error: CelError | None = None
    try:
        lvalue = left()
    except CelError as exc:
        error = exc
    else:
        if lvalue is absorbing:
            return absorbing
        if lvalue is not (not absorbing):
            error = EvalError(f"no such overload: {name} applied to {_type_label(lvalue)}")
    try:
        rvalue = right()
    except CelError as exc:
        if error is None:
            error = exc
    else:
        if rvalue is absorbing:
            return absorbing
        if rvalue is not (not absorbing) and error is None:
            error = EvalError(f"no such overload: {name} applied to {_type_label(rvalue)}")
    if error is not None:
        raise error
    return not absorbing


def logical_and(left: Callable[[], object], right: Callable[[], object]) -> bool:
    return _absorbing(left, right, False, "_&&_")


def logical_or(left: Callable[[], object], right: Callable[[], object]) -> bool:
    return _absorbing(left, right, True, "_||_")


Fn = Callable[..., object]


def _call(fn: Fn, item: Any, pairs: bool) -> object:
    return fn(*item) if pairs else fn(item)


def macro_all(items: Iterable[Any], predicate: Fn, pairs: bool = False) -> bool:
    error: CelError | None = None
    for item in items:
        try:
            result = _call(predicate, item, pairs)
        except CelError as exc:
            error = error or exc
            continue
        if result is False:
            return False
        if result is not True:
            error = error or EvalError("no such overload: all() predicate is not bool")
    if error is not None:
        raise error
    return True


def macro_exists(items: Iterable[Any], predicate: Fn, pairs: bool = False) -> bool:
    error: CelError | None = None
    for item in items:
        try:
            result = _call(predicate, item, pairs)
        except CelError as exc:
            error = error or exc
            continue
        if result is True:
            return True
        if result is not False:
            error = error or EvalError("no such overload: exists() predicate is not bool")
    if error is not None:
        raise error
    return False


def macro_exists_one(items: Iterable[Any], predicate: Fn, pairs: bool = False) -> bool:
    count = 0
    for item in items:
        if check_bool(_call(predicate, item, pairs)):
            count += 1
    return count == 1


def macro_map(
    items: Iterable[Any], transform: Fn, predicate: Fn | None = None, pairs: bool = False
) -> list[object]:
    return [
        _call(transform, item, pairs)
        for item in items
        if predicate is None or check_bool(_call(predicate, item, pairs))
    ]


def macro_filter(items: Iterable[Any], predicate: Fn, pairs: bool = False) -> list[object]:
    return [item for item in items if check_bool(_call(predicate, item, pairs))]


def macro_transform_map(
    items: Iterable[Any], transform: Fn, predicate: Fn | None = None, pairs: bool = True
) -> dict[object, object]:
    """``transformMap``: same keys (indices for a list), transformed values."""
    return make_map(
        (item[0], _call(transform, item, pairs))
        for item in items
        if predicate is None or check_bool(_call(predicate, item, pairs))
    )


def macro_transform_map_entry(
    items: Iterable[Any], transform: Fn, predicate: Fn | None = None, pairs: bool = True
) -> dict[object, object]:
    """``transformMapEntry``: each transform yields a map; keys must not repeat."""
    return merge_entries(
        [
            _call(transform, item, pairs)
            for item in items
            if predicate is None or check_bool(_call(predicate, item, pairs))
        ]
    )


def merge_entries(entries: list[object]) -> dict[object, object]:
    merged: dict[object, object] = {}
    for entry in entries:
        if type(entry) is not dict:
            raise EvalError("no such overload: transformMapEntry must produce a map")
        for key, value in zip(map_keys(entry), entry.values(), strict=True):
            try:
                insert_key(merged, key, value)
            except EvalError:
                raise EvalError(f"insert failed: key {key!r} already exists") from None
    return merged
