"""The evaluation cost budget: what each operation charges, so that no expression runs long.

One budget per evaluation (``Limits.max_cost`` units, a one-element list
``[units left]`` threaded through the generated code), shared by the fast and
the strict body: when the fast body fails late and the strict body takes
over, the work already done stays paid for. A charge that overdraws the
budget raises :class:`~policies.cel.errors.CostLimitError`, which stops the
evaluation at once. What is charged:

- every comprehension iteration: the range length times the body's weight
  (one unit plus one per :data:`NODES_PER_UNIT` nodes of the loop body),
  before the loop starts, so nested comprehensions cannot multiply;
- every call whose work grows with its arguments (concatenation, building
  strings and lists, searching, sorting, regexes...): one unit plus one per
  :data:`UNIT_SIZE` elements or characters of its sized arguments, before
  the call, and as much again for the size of its result, after it -- or, for
  functions whose work is not proportional to their arguments (``lists.range``,
  ``flatten``, ``join``, ``sort``, the ``sets`` functions), the estimate of
  :data:`ESTIMATES`, before the call. Outside comprehensions the call is
  charged only when an argument was computed by the expression: work on
  literals is bounded by the expression's size, and work on activation
  values by the service's limits on its inputs;
- regular-expression compilation, per pattern that is not a literal.

A unit is about a microsecond of work on the slowest (strict) path, so the
default budget of 5,000 units bounds an evaluation to a few milliseconds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, Final

from .errors import CostLimitError, EvalError
from .values import BOOL_KEY_FALSE, BOOL_KEY_TRUE, BoolKey, UInt, type_name

__all__ = [
    "ESTIMATES",
    "NODES_PER_UNIT",
    "REGEX_COMPILE_COST",
    "UNIT_SIZE",
    "charged_call",
    "comprehension_pairs",
    "comprehension_range",
    "estimated_call",
    "map_keys",
    "new_budget",
]

UNIT_SIZE: Final = 64  # elements or characters per unit
NODES_PER_UNIT: Final = 8  # loop-body nodes per unit of an iteration's weight
REGEX_COMPILE_COST: Final = 64  # a pattern that is not a literal is compiled per call

Fn = Callable[..., object]
_SIZED: Final = frozenset({str, bytes, list, tuple, dict})


def new_budget(units: int) -> list[int]:
    """The budget of one evaluation."""
    return [units]


def _overdrawn(what: str) -> CostLimitError:
    return CostLimitError(f"evaluation cost limit exceeded ({what})")


def map_keys(value: dict[Any, Any]) -> list[object]:
    """A map's keys as CEL values (see :class:`~policies.cel.values.BoolKey`)."""
    keys = list(value)
    if BOOL_KEY_TRUE in value or BOOL_KEY_FALSE in value:
        return [k.value if type(k) is BoolKey else k for k in keys]
    return keys


def comprehension_range(budget: list[int], value: object, weight: int = 1) -> Iterable[Any]:
    """The items a comprehension iterates (a list, or a map's keys), charged
    ``len * weight`` before the loop starts."""
    kind = type(value)
    if kind is list or kind is tuple:
        items: Any = value
    elif kind is dict:
        items = map_keys(value)  # type: ignore[arg-type]
    else:
        raise EvalError(f"no such overload: cannot iterate over {type_name(value)}")
    budget[0] -= len(items) * weight
    if budget[0] < 0:
        raise _overdrawn("comprehension iterations")
    return items  # type: ignore[no-any-return]


def comprehension_pairs(
    budget: list[int], value: object, weight: int = 1
) -> list[tuple[object, object]]:
    """(index, element) or (key, value) pairs for two-variable comprehensions,
    charged like :func:`comprehension_range`."""
    kind = type(value)
    if kind is list or kind is tuple:
        pairs: list[tuple[object, object]] = list(enumerate(value))  # type: ignore[arg-type]
    elif kind is dict:
        pairs = list(zip(map_keys(value), value.values(), strict=True))  # type: ignore[arg-type, attr-defined]
    else:
        raise EvalError(f"no such overload: cannot iterate over {type_name(value)}")
    budget[0] -= len(pairs) * weight
    if budget[0] < 0:
        raise _overdrawn("comprehension iterations")
    return pairs


def charged_call(budget: list[int], extra: int, fn: Fn, *args: object) -> object:
    """``fn(*args)``, charged one unit plus ``extra`` plus one per
    :data:`UNIT_SIZE` elements or characters of its sized arguments before the
    call, and one per :data:`UNIT_SIZE` of a sized result after it."""
    cost = 1 + extra
    for arg in args:
        if type(arg) in _SIZED:
            cost += len(arg) // UNIT_SIZE  # type: ignore[arg-type]
    budget[0] -= cost
    if budget[0] < 0:
        raise _overdrawn("work on large values")
    result = fn(*args)
    if type(result) in _SIZED:
        budget[0] -= len(result) // UNIT_SIZE  # type: ignore[arg-type]
        if budget[0] < 0:
            raise _overdrawn("size of the values built")
    return result


def estimated_call(budget: list[int], estimate: Fn, fn: Fn, *args: object) -> object:
    """``fn(*args)``, charged ``estimate(*args)`` units before the call (for
    functions whose work does not follow the size of their arguments)."""
    budget[0] -= 1 + int(estimate(*args))  # type: ignore[call-overload]
    if budget[0] < 0:
        raise _overdrawn("work on large values")
    return fn(*args)


# --------------------------------------------------------------------------
# Estimates: units of work before the call, from the arguments alone. Each
# takes the call's arguments (receiver first) and never raises: a wrong
# argument type estimates 0 and the function itself reports the error.


def _len(value: object) -> int:
    return len(value) if type(value) in _SIZED else 0  # type: ignore[arg-type]


def _inner_sizes(value: object) -> int:
    """Total size of a list's elements (strings, lists, ...)."""
    if type(value) not in (list, tuple):
        return 0
    return sum(map(_len, value))  # type: ignore[call-overload]


def _range_cost(n: object = 0, *_rest: object) -> int:
    return n // UNIT_SIZE if type(n) is int and n > 0 else 0


def _flatten_cost(seq: object = (), depth: object = 1, *_rest: object) -> int:
    # Each level copies at most every element once; depth is capped by the runtime.
    levels = depth if type(depth) is int and 0 < depth < 64 else 1
    return (_len(seq) + _inner_sizes(seq)) * levels // UNIT_SIZE


def _join_cost(seq: object = (), sep: object = "", *_rest: object) -> int:
    return (_inner_sizes(seq) + _len(seq) * _len(sep)) // UNIT_SIZE


def _sort_cost(seq: object = (), *_rest: object) -> int:
    n = _len(seq)
    return n * max(1, math.ceil(math.log2(n + 1))) // UNIT_SIZE


_HASHED: Final = frozenset({int, float, str, bytes, bool, type(None)}) | {UInt}


def _quadratic(value: object) -> bool:
    """Whether membership among a list's elements is tested pairwise (some
    element is not a hashed scalar, see :func:`policies.cel.extlists.scalar_key`)."""
    if type(value) not in (list, tuple):
        return False
    return any(type(item) not in _HASHED for item in value)  # type: ignore[attr-defined]


def _pairwise_cost(a: object = (), b: object = (), *_rest: object) -> int:
    # Lists of scalars are hashed (linear time); others compare pairwise.
    linear = (_len(a) + _len(b)) // UNIT_SIZE
    if _quadratic(a) or _quadratic(b):
        return _len(a) * _len(b) // UNIT_SIZE + linear
    return linear


def _distinct_cost(seq: object = (), *_rest: object) -> int:
    n = _len(seq)
    return n * n // UNIT_SIZE if _quadratic(seq) else n // UNIT_SIZE


def _replace_cost(s: object = "", old: object = "", new: object = "", *rest: object) -> int:
    # The result is at most len(s) * len(new) + len(s) characters (old == "").
    return (_len(s) * (1 + _len(new))) // UNIT_SIZE


def _format_cost(fmt: object = "", args: object = (), *_rest: object) -> int:
    return (_len(fmt) + _inner_sizes(args) + 16 * _len(args)) // UNIT_SIZE


ESTIMATES: Final[dict[str, Fn]] = {
    "lists.range": _range_cost,
    "flatten": _flatten_cost,
    "join": _join_cost,
    "sort": _sort_cost,
    "distinct": _distinct_cost,
    "sets.contains": _pairwise_cost,
    "sets.equivalent": _pairwise_cost,
    "sets.intersects": _pairwise_cost,
    "replace": _replace_cost,
    "format": _format_cost,
}
"""Per function name: the estimated units of a call, from its arguments."""
