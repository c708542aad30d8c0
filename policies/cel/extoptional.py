"""The CEL optional types extension (cel-go ``ext``/``cel.OptionalTypes``).

Values: :class:`~policies.cel.values.Optional` (``optional.of(v)``) and
:data:`~policies.cel.values.OPTIONAL_NONE` (``optional.none()``); static type
``optional_type(T)`` (an :class:`~policies.cel.types.OpaqueType` with one
parameter). Syntax (parsed by :mod:`.parser`):

- ``m.?f`` is the call ``_?._(m, "f")``: ``optional.of(m.f)`` when the map
  has the key, else ``optional.none()``;
- ``c[?k]`` is ``_[?_](c, k)``: the same for a map key or a list index
  (an index out of range gives none);
- on an optional operand both chain: a plain ``.f`` or ``[k]`` on an
  optional is optional too (``m.?a.b`` is none when ``a`` or ``b`` is
  missing; ``m.?a[1]`` likewise), as in cel-go;
- ``[?e, ...]`` adds ``e``'s value to a list literal only when present,
  ``{?k: e, ...}`` adds the entry only when ``e`` is present.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Final

from . import runtime as rt
from .env import FunctionDecl, Overload
from .errors import EvalError
from .runtime import no_such_overload
from .types import BOOL, DYN, INT, STRING, ListType, MapType, OpaqueType, Type, TypeParam
from .values import OPTIONAL_NONE, Duration, Optional, Timestamp, UInt, type_name

__all__ = [
    "OPTIONAL_FUNCTIONS",
    "OPTIONAL_INDEX_OVERLOADS",
    "optional_index",
    "optional_list",
    "optional_map_pairs",
    "optional_of",
    "optional_type",
]

_A: Final = TypeParam("A")
_K: Final = TypeParam("K")
_V: Final = TypeParam("V")
_MISSING: Final = object()


def optional_type(t: Type) -> OpaqueType:
    """The static type ``optional_type(t)``."""
    return OpaqueType("optional_type", (t,))


def optional_of(value: object) -> Optional:
    return Optional(value)


def optional_none() -> Optional:
    return OPTIONAL_NONE


def _is_zero(value: object) -> bool:
    kind = type(value)
    if value is None or value is False:
        return True
    if kind in (int, UInt, float):
        return value == 0
    if kind in (str, bytes, list, tuple, dict):
        return len(value) == 0  # type: ignore[arg-type]
    if kind in (Timestamp, Duration):
        return value.nanos == 0  # type: ignore[attr-defined, no-any-return]
    return False


def optional_of_non_zero_value(value: object) -> Optional:
    return OPTIONAL_NONE if _is_zero(value) else Optional(value)


def _optional(function: str, value: object, *args: object) -> Optional:
    if type(value) is not Optional:
        raise no_such_overload(function, value, *args)
    return value


def has_value(opt: object) -> bool:
    return _optional("hasValue", opt).has_value


def value(opt: object) -> object:
    o = _optional("value", opt)
    if not o.has_value:
        raise EvalError("optional.none() dereference")
    return o.value


def or_value(opt: object, default: object) -> object:
    o = _optional("orValue", opt, default)
    return o.value if o.has_value else default


def or_optional(opt: object, other: object) -> Optional:
    o = _optional("or", opt, other)
    if o.has_value:
        return o
    return _optional("or", other, opt)


def _lookup(container: object, key: object) -> object:
    """``container[key]``, or ``_MISSING`` when absent (map key, list index)."""
    kind = type(container)
    if kind is dict:
        try:
            return rt.index_map(container, key)
        except EvalError:
            return _MISSING
    if kind is list or kind is tuple:
        try:
            return rt.index_list(container, key)
        except EvalError as exc:
            if "index out of range" in str(exc):
                return _MISSING
            raise
    raise no_such_overload("_[?_]", container, key)


def optional_select(operand: object, field: object) -> Optional:
    """``operand.?field``."""
    if type(operand) is Optional:
        if not operand.has_value:
            return OPTIONAL_NONE
        operand = operand.value
    if type(operand) is not dict:
        raise EvalError(f"type '{type_name(operand)}' does not support field selection")
    found = operand.get(field, _MISSING)
    return OPTIONAL_NONE if found is _MISSING else Optional(found)


def optional_index(container: object, key: object) -> Optional:
    """``container[?key]``, and ``container[key]`` on an optional container."""
    if type(container) is Optional:
        if not container.has_value:
            return OPTIONAL_NONE
        container = container.value
    found = _lookup(container, key)
    return OPTIONAL_NONE if found is _MISSING else Optional(found)


def optional_list(items: Sequence[object], optional: frozenset[int]) -> list[object]:
    """A list literal with optional elements at the ``optional`` positions."""
    out: list[object] = []
    for i, item in enumerate(items):
        if i in optional:
            o = _optional("optional list element", item)
            if o.has_value:
                out.append(o.value)
        else:
            out.append(item)
    return out


def optional_map_pairs(
    pairs: Sequence[tuple[object, object]], optional: frozenset[int]
) -> list[tuple[object, object]]:
    """A map literal's entries with the optional ones resolved (absent
    ones dropped), for :func:`policies.cel.runtime.make_map`."""
    out: list[tuple[object, object]] = []
    for i, (key, item) in enumerate(pairs):
        if i in optional:
            o = _optional("optional map entry", item)
            if o.has_value:
                out.append((key, o.value))
        else:
            out.append((key, item))
    return out


def _ov(
    overload_id: str,
    params: tuple[Type, ...],
    result: Type,
    impl: Callable[..., object],
    *,
    receiver: bool = False,
) -> Overload:
    return Overload(overload_id, params, result, impl, receiver)


_OPT_A: Final = optional_type(_A)

OPTIONAL_INDEX_OVERLOADS: Final = (
    _ov("optional_list_index_int", (optional_type(ListType(_A)), INT), _OPT_A, optional_index),
    _ov(
        "optional_map_index_value",
        (optional_type(MapType(_K, _V)), _K),
        optional_type(_V),
        optional_index,
    ),
)
"""``_[_]`` on an optional list or map (chaining), merged into the core's ``_[_]``."""

OPTIONAL_FUNCTIONS: Final[tuple[FunctionDecl, ...]] = (
    FunctionDecl(
        "optional.of",
        (_ov("optional_of", (_A,), _OPT_A, optional_of),),
        "An optional holding a value.",
    ),
    FunctionDecl(
        "optional.none",
        (_ov("optional_none", (), optional_type(DYN), optional_none),),
        "The empty optional.",
    ),
    FunctionDecl(
        "optional.ofNonZeroValue",
        (_ov("optional_of_non_zero_value", (_A,), _OPT_A, optional_of_non_zero_value),),
        "An optional holding the value, or none for a zero value (0, '', [], {}, false, null...).",
    ),
    FunctionDecl(
        "hasValue",
        (_ov("optional_has_value", (_OPT_A,), BOOL, has_value, receiver=True),),
        "Whether the optional holds a value.",
    ),
    FunctionDecl(
        "value",
        (_ov("optional_value", (_OPT_A,), _A, value, receiver=True),),
        "The value; an error on none.",
    ),
    FunctionDecl(
        "orValue",
        (_ov("optional_or_value_value", (_OPT_A, _A), _A, or_value, receiver=True),),
        "The value, or the argument on none.",
    ),
    FunctionDecl(
        "or",
        (_ov("optional_or_optional", (_OPT_A, _OPT_A), _OPT_A, or_optional, receiver=True),),
        "This optional if it holds a value, else the argument.",
    ),
    FunctionDecl(
        "_?._",
        (
            _ov(
                "select_optional_field",
                (MapType(_K, _V), STRING),
                optional_type(_V),
                optional_select,
            ),
            _ov(
                "select_optional_field_optional",
                (optional_type(MapType(_K, _V)), STRING),
                optional_type(_V),
                optional_select,
            ),
        ),
        "m.?f: the field as an optional.",
    ),
    FunctionDecl(
        "_[?_]",
        (
            _ov("list_optindex_optional_int", (ListType(_A), INT), _OPT_A, optional_index),
            _ov(
                "map_optindex_optional_value",
                (MapType(_K, _V), _K),
                optional_type(_V),
                optional_index,
            ),
            # c[?k] on an optional container (chaining), like c[k] on one.
            *(
                dataclasses.replace(o, id=o.id.replace("_index_", "_optindex_"))
                for o in OPTIONAL_INDEX_OVERLOADS
            ),
        ),
        "c[?k]: the element or entry as an optional.",
    ),
)
"""The optional types extension's functions (``_?._`` and ``_[?_]`` are the syntax's)."""
