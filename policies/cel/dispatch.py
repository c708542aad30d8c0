"""Dynamic dispatch: pick a function's overload from the runtime types of its arguments.

Used where the checker could not resolve one overload statically (``dyn``
operands, unchecked programs). Matching looks only at each argument's Python
class (see :mod:`.values` for the mapping), never inside a value, and the
choice is memoised per tuple of classes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Final

from .env import FunctionDecl
from .runtime import no_such_overload
from .types import ListType, MapType, OpaqueType, PrimitiveType, Type, TypeParam, TypeType
from .values import Duration, Timestamp, TypeValue, UInt

__all__ = ["make_dispatcher", "python_types"]

_NoneType: Final = type(None)
_MISSING: Final[Any] = object()

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
def python_types(t: Type) -> frozenset[type] | None:
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


_DISPATCH_CACHE_SIZE: Final = 1_024


def make_dispatcher(decl: FunctionDecl) -> Callable[..., object]:
    """A callable that runs the first overload of ``decl`` whose parameters
    match the runtime argument values (receiver first for method overloads),
    or raises ``EvalError("no such overload: name(types)")``.

    Matching depends only on the arguments' Python classes, so the chosen
    implementation is memoised per tuple of classes (bounded)."""
    name = decl.name
    table = tuple(
        (len(o.params), tuple(python_types(p) for p in o.params), o.impl)
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
