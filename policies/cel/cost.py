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
# Calibration (measured with the worst expressions we could construct, see
# docs/cel.md "Bounds"): work done by one C call (copying, joining,
# replacing) is about UNIT_SIZE elements or characters per unit; a Python
# loop over elements (flatten, distinct, sets, greatest/least, format's
# clauses) is about one element per unit, one CEL equality of containers
# two to four; allocating fresh int objects (lists.range) RANGE_PER_UNIT per
# unit.
RANGE_PER_UNIT: Final = 8
LOOP_PER_UNIT: Final = 1

Fn = Callable[..., object]
_SIZED: Final = frozenset({str, bytes, list, tuple, dict})
_CONTAINERS: Final = frozenset({list, tuple, dict})


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
    functions whose work does not follow the size of their arguments).

    Some estimates look at every element (the sizes of a list's strings,
    whether its elements are scalars), so that scan is paid for first: one
    unit per :data:`RANGE_PER_UNIT` elements of the list and map arguments;
    a list too long to afford fails before it is scanned."""
    scan = 1
    for arg in args:
        if type(arg) in _CONTAINERS:
            scan += len(arg) // RANGE_PER_UNIT  # type: ignore[arg-type]
    budget[0] -= scan
    if budget[0] < 0:
        raise _overdrawn("work on large values")
    budget[0] -= int(estimate(*args))  # type: ignore[call-overload]
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
    return n // RANGE_PER_UNIT if type(n) is int and n > 0 else 0


def _flatten_cost(seq: object = (), depth: object = 1, *_rest: object) -> int:
    # Each level visits every element once in Python; depth is capped by the runtime.
    levels = depth if type(depth) is int and 0 < depth < 64 else 1
    return (_len(seq) + _inner_sizes(seq)) * levels // LOOP_PER_UNIT


def _join_cost(seq: object = (), sep: object = "", *_rest: object) -> int:
    return (_inner_sizes(seq) + _len(seq) * _len(sep)) // UNIT_SIZE


def _sort_cost(seq: object = (), *_rest: object) -> int:
    n = _len(seq)
    # Type check of every element in Python, then C comparisons.
    return n // LOOP_PER_UNIT + n * max(1, math.ceil(math.log2(n + 1))) // UNIT_SIZE


_HASHED: Final = frozenset({int, float, str, bytes, bool, type(None)}) | {UInt}


def _quadratic(value: object) -> bool:
    """Whether membership among a list's elements is tested pairwise (some
    element is not a hashed scalar, see :func:`policies.cel.extlists.scalar_key`)."""
    if type(value) not in (list, tuple):
        return False
    return any(type(item) not in _HASHED for item in value)  # type: ignore[attr-defined]


def _pairwise_cost(a: object = (), b: object = (), *_rest: object) -> int:
    # Lists of scalars are hashed (one Python step per element); others
    # compare pairwise (a CEL equality of containers is about two units).
    linear = (_len(a) + _len(b)) // LOOP_PER_UNIT
    if _quadratic(a) or _quadratic(b):
        return 2 * _len(a) * _len(b) + linear
    return linear


def _distinct_cost(seq: object = (), *_rest: object) -> int:
    n = _len(seq)
    # Pairwise: n * n / 2 equalities of about four units each (measured).
    return 2 * n * n + n if _quadratic(seq) else n // LOOP_PER_UNIT


def _extreme_cost(first: object = (), *rest: object) -> int:
    # math.greatest / math.least: one comparison per element of a list.
    return _len(first) // LOOP_PER_UNIT if not rest else 0


def _replace_cost(s: object = "", old: object = "", new: object = "", *rest: object) -> int:
    # The result is at most len(s) * len(new) + len(s) characters (old == "").
    return (_len(s) * (1 + _len(new))) // UNIT_SIZE


_RENDER_SCAN_LIMIT: Final = 25_000  # nodes; a value this big costs more than any budget
_RENDER_TOO_BIG: Final = 10**9


def _render_cost(value: object) -> int:
    """Units to render a value with ``%s``: measured at about 3 us per list or
    map node (6 per map entry) and 1 us per scalar, plus string lengths.
    Scans at most :data:`_RENDER_SCAN_LIMIT` nodes."""
    units = 0
    scalars = 0
    stack = [value]
    visited = 0
    while stack:
        item = stack.pop()
        visited += 1
        if visited > _RENDER_SCAN_LIMIT:
            return _RENDER_TOO_BIG
        kind = type(item)
        if kind is list or kind is tuple:
            units += 4
            stack.extend(item)  # type: ignore[arg-type]
        elif kind is dict:
            units += 4 + 2 * len(item)  # type: ignore[arg-type]
            stack.extend(item)  # type: ignore[arg-type]
            stack.extend(item.values())  # type: ignore[attr-defined]
        else:
            scalars += 1
            if kind is str or kind is bytes:
                units += len(item) // UNIT_SIZE  # type: ignore[arg-type]
    return units + scalars


def _format_cost(fmt: object = "", args: object = (), *_rest: object) -> int:
    # At most one clause per two characters of the format, each a few Python
    # steps; %s renders lists and maps node by node.
    rendered = 0
    if type(args) in (list, tuple):
        for arg in args:  # type: ignore[attr-defined]
            if type(arg) in _CONTAINERS:
                rendered += _render_cost(arg)
                if rendered >= _RENDER_TOO_BIG:
                    return rendered
            else:
                rendered += _len(arg) // UNIT_SIZE
    return _len(fmt) + rendered


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
    "math.greatest": _extreme_cost,
    "math.least": _extreme_cost,
}
"""Per function name: the estimated units of a call, from its arguments."""
