"""The CEL standard library as declarations: every standard function and
operator with its typed overloads (cel-spec overload ids) and the runtime
implementation of each, plus one dynamic dispatcher per function name.

Function names are the spec's operator names (``_+_``, ``_[_]``, ``@in``,
...). The timestamp/duration overloads come from
:data:`policies.cel.timefns.TIME_FUNCTIONS` and are merged in by name.
``_&&_``, ``_||_`` and ``_?_:_`` are declared for the checker; generated code
short-circuits them itself, their impls only serve dynamic calls.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable
from typing import Final

from . import conversions as conv
from . import regex, values
from . import runtime as rt
from .dispatch import make_dispatcher
from .env import FunctionDecl, Overload
from .errors import EvalError
from .extlists import LIST_FUNCTIONS, SET_FUNCTIONS
from .extmath import MATH_FUNCTIONS
from .extoptional import OPTIONAL_FUNCTIONS, OPTIONAL_INDEX_OVERLOADS, optional_index
from .extstrings import STRING_FUNCTIONS
from .timefns import TIME_FUNCTIONS
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
    MapType,
    Type,
    TypeParam,
    TypeType,
)

__all__ = ["STANDARD_DISPATCH", "STANDARD_FUNCTIONS", "TYPE_IDENTIFIERS"]

_A: Final = TypeParam("A")
_B: Final = TypeParam("B")
_LIST_A: Final = ListType(_A)
_MAP_AB: Final = MapType(_A, _B)

Impl = Callable[..., object]
_ABSENT: Final = object()


def _o(
    overload_id: str,
    params: tuple[Type, ...],
    result: Type,
    impl: Impl,
    *,
    receiver: bool = False,
) -> Overload:
    return Overload(overload_id, params, result, impl, receiver)


# --------------------------------------------------------------------------
# Operators

_ARITHMETIC: Final[tuple[FunctionDecl, ...]] = (
    FunctionDecl(
        "_+_",
        (
            _o("add_int64", (INT, INT), INT, rt.int_add),
            _o("add_uint64", (UINT, UINT), UINT, rt.uint_add),
            _o("add_double", (DOUBLE, DOUBLE), DOUBLE, rt.double_add),
            _o("add_string", (STRING, STRING), STRING, rt.string_concat),
            _o("add_bytes", (BYTES, BYTES), BYTES, rt.bytes_concat),
            _o("add_list", (_LIST_A, _LIST_A), _LIST_A, rt.list_concat),
        ),
        "Addition; concatenation of strings, bytes and lists.",
    ),
    FunctionDecl(
        "_-_",
        (
            _o("subtract_int64", (INT, INT), INT, rt.int_sub),
            _o("subtract_uint64", (UINT, UINT), UINT, rt.uint_sub),
            _o("subtract_double", (DOUBLE, DOUBLE), DOUBLE, rt.double_sub),
        ),
        "Subtraction.",
    ),
    FunctionDecl(
        "_*_",
        (
            _o("multiply_int64", (INT, INT), INT, rt.int_mul),
            _o("multiply_uint64", (UINT, UINT), UINT, rt.uint_mul),
            _o("multiply_double", (DOUBLE, DOUBLE), DOUBLE, rt.double_mul),
        ),
        "Multiplication.",
    ),
    FunctionDecl(
        "_/_",
        (
            _o("divide_int64", (INT, INT), INT, rt.int_div),
            _o("divide_uint64", (UINT, UINT), UINT, rt.uint_div),
            _o("divide_double", (DOUBLE, DOUBLE), DOUBLE, rt.double_div),
        ),
        "Division; integer division truncates toward zero.",
    ),
    FunctionDecl(
        "_%_",
        (
            _o("modulo_int64", (INT, INT), INT, rt.int_mod),
            _o("modulo_uint64", (UINT, UINT), UINT, rt.uint_mod),
        ),
        "Remainder of truncating division (sign of the dividend).",
    ),
    FunctionDecl(
        "-_",
        (
            _o("negate_int64", (INT,), INT, rt.int_neg),
            _o("negate_double", (DOUBLE,), DOUBLE, rt.double_neg),
        ),
        "Arithmetic negation.",
    ),
)


_GENERIC_ORDER: Final[dict[str, Callable[[object, object], bool]]] = {
    "_<_": rt.lt,
    "_<=_": rt.le,
    "_>_": rt.gt,
    "_>=_": rt.ge,
}

# Ordered types, by overload-id suffix. Same-type comparisons and int/uint
# cross comparisons are exact; all of them go through the generic functions,
# which verify the runtime types (the code generator may call an impl with
# `dyn` operands) and raise "no such overload" for mismatches.
_SAME_TYPE_ORDER: Final[tuple[tuple[str, Type], ...]] = (
    ("bool", BOOL),
    ("int64", INT),
    ("uint64", UINT),
    ("double", DOUBLE),
    ("string", STRING),
    ("bytes", BYTES),
    ("timestamp", TIMESTAMP),
    ("duration", DURATION),
)
_CROSS_NUMERIC: Final[tuple[tuple[str, Type, Type], ...]] = (
    ("int64_uint64", INT, UINT),
    ("int64_double", INT, DOUBLE),
    ("uint64_int64", UINT, INT),
    ("uint64_double", UINT, DOUBLE),
    ("double_int64", DOUBLE, INT),
    ("double_uint64", DOUBLE, UINT),
)


def _ordering(name: str, id_prefix: str, doc: str) -> FunctionDecl:
    generic = _GENERIC_ORDER[name]
    overloads = [
        _o(f"{id_prefix}_{suffix}", (t, t), BOOL, generic) for suffix, t in _SAME_TYPE_ORDER
    ]
    overloads.extend(
        _o(f"{id_prefix}_{suffix}", (left, right), BOOL, generic)
        for suffix, left, right in _CROSS_NUMERIC
    )
    return FunctionDecl(name, tuple(overloads), doc)


_COMPARISONS: Final[tuple[FunctionDecl, ...]] = (
    FunctionDecl(
        "_==_",
        (_o("equals", (_A, _A), BOOL, rt.eq),),
        "Equality: heterogeneous across int, uint and double; false across unrelated types.",
    ),
    FunctionDecl("_!=_", (_o("not_equals", (_A, _A), BOOL, rt.ne),), "Inequality."),
    _ordering("_<_", "less", "Less than."),
    _ordering("_<=_", "less_equals", "Less than or equal."),
    _ordering("_>_", "greater", "Greater than."),
    _ordering("_>=_", "greater_equals", "Greater than or equal."),
)

_LOGIC: Final[tuple[FunctionDecl, ...]] = (
    FunctionDecl("!_", (_o("logical_not", (BOOL,), BOOL, rt.logical_not),), "Logical not."),
    FunctionDecl(
        "_&&_",
        (_o("logical_and", (BOOL, BOOL), BOOL, rt.logical_and),),
        "Logical and (short-circuit and commutative over errors in generated code).",
    ),
    FunctionDecl(
        "_||_",
        (_o("logical_or", (BOOL, BOOL), BOOL, rt.logical_or),),
        "Logical or (short-circuit and commutative over errors in generated code).",
    ),
    FunctionDecl(
        "_?_:_",
        (_o("conditional", (BOOL, _A, _A), _A, rt.conditional),),
        "Conditional; only the selected branch is evaluated in generated code.",
    ),
)

_CONTAINERS: Final[tuple[FunctionDecl, ...]] = (
    FunctionDecl(
        "_[_]",
        (
            _o("index_list", (_LIST_A, INT), _A, rt.index_list),
            _o("index_map", (_MAP_AB, _A), _B, rt.index_map),
        ),
        "List element by position, map value by key.",
    ),
    FunctionDecl(
        "@in",
        (
            _o("in_list", (_A, _LIST_A), BOOL, rt.in_list),
            _o("in_map", (_A, _MAP_AB), BOOL, rt.in_map),
        ),
        "List membership (by equality), map key membership.",
    ),
    FunctionDecl(
        "size",
        (
            _o("size_string", (STRING,), INT, rt.size),
            _o("size_bytes", (BYTES,), INT, rt.size),
            _o("size_list", (_LIST_A,), INT, rt.size),
            _o("size_map", (_MAP_AB,), INT, rt.size),
            _o("string_size", (STRING,), INT, rt.size, receiver=True),
            _o("bytes_size", (BYTES,), INT, rt.size, receiver=True),
            _o("list_size", (_LIST_A,), INT, rt.size, receiver=True),
            _o("map_size", (_MAP_AB,), INT, rt.size, receiver=True),
        ),
        "Code points of a string, bytes of bytes, elements of a list, entries of a map.",
    ),
)

# --------------------------------------------------------------------------
# Conversions

_CONVERSIONS: Final[tuple[FunctionDecl, ...]] = (
    FunctionDecl(
        "int",
        (
            _o("int64_to_int64", (INT,), INT, conv.to_int),
            _o("uint64_to_int64", (UINT,), INT, conv.uint_to_int),
            _o("double_to_int64", (DOUBLE,), INT, conv.double_to_int),
            _o("string_to_int64", (STRING,), INT, conv.string_to_int),
        ),
        "Conversion to int; doubles truncate toward zero; out of range is an error.",
    ),
    FunctionDecl(
        "uint",
        (
            _o("uint64_to_uint64", (UINT,), UINT, conv.to_uint),
            _o("int64_to_uint64", (INT,), UINT, conv.int_to_uint),
            _o("double_to_uint64", (DOUBLE,), UINT, conv.double_to_uint),
            _o("string_to_uint64", (STRING,), UINT, conv.string_to_uint),
        ),
        "Conversion to uint; out of range is an error.",
    ),
    FunctionDecl(
        "double",
        (
            _o("double_to_double", (DOUBLE,), DOUBLE, conv.to_double),
            _o("int64_to_double", (INT,), DOUBLE, conv.int_to_double),
            _o("uint64_to_double", (UINT,), DOUBLE, conv.uint_to_double),
            _o("string_to_double", (STRING,), DOUBLE, conv.string_to_double),
        ),
        "Conversion to double.",
    ),
    FunctionDecl(
        "string",
        (
            _o("string_to_string", (STRING,), STRING, conv.to_string),
            _o("int64_to_string", (INT,), STRING, conv.int_to_string),
            _o("uint64_to_string", (UINT,), STRING, conv.uint_to_string),
            _o("double_to_string", (DOUBLE,), STRING, conv.double_to_string),
            _o("bool_to_string", (BOOL,), STRING, conv.bool_to_string),
            _o("bytes_to_string", (BYTES,), STRING, conv.bytes_to_string),
            _o("timestamp_to_string", (TIMESTAMP,), STRING, conv.timestamp_to_string),
            _o("duration_to_string", (DURATION,), STRING, conv.duration_to_string),
        ),
        "Conversion to string; bytes must be valid UTF-8.",
    ),
    FunctionDecl(
        "bytes",
        (
            _o("bytes_to_bytes", (BYTES,), BYTES, conv.to_bytes),
            _o("string_to_bytes", (STRING,), BYTES, conv.string_to_bytes),
        ),
        "Conversion to bytes (UTF-8 encoding of a string).",
    ),
    FunctionDecl(
        "bool",
        (
            _o("bool_to_bool", (BOOL,), BOOL, conv.to_bool),
            _o("string_to_bool", (STRING,), BOOL, conv.string_to_bool),
        ),
        "Conversion to bool from true/false (any case form), t/f, 1/0.",
    ),
    FunctionDecl("dyn", (_o("to_dyn", (_A,), DYN, conv.dyn),), "Erase the static type."),
    FunctionDecl(
        "type", (_o("type", (_A,), TypeType(_A), values.type_of),), "The type of a value."
    ),
)

# --------------------------------------------------------------------------
# Strings

_STRINGS: Final[tuple[FunctionDecl, ...]] = (
    FunctionDecl(
        "contains",
        (_o("contains_string", (STRING, STRING), BOOL, rt.contains, receiver=True),),
        "Substring test.",
    ),
    FunctionDecl(
        "startsWith",
        (_o("starts_with_string", (STRING, STRING), BOOL, rt.starts_with, receiver=True),),
        "Prefix test.",
    ),
    FunctionDecl(
        "endsWith",
        (_o("ends_with_string", (STRING, STRING), BOOL, rt.ends_with, receiver=True),),
        "Suffix test.",
    ),
    FunctionDecl(
        "matches",
        (
            _o("matches", (STRING, STRING), BOOL, regex.matches),
            _o("matches_string", (STRING, STRING), BOOL, regex.matches, receiver=True),
        ),
        "RE2 regular expression search (partial match).",
    ),
)


def _merge(groups: Iterable[Iterable[FunctionDecl]]) -> dict[str, FunctionDecl]:
    """Merge declarations by name; an overload whose id or signature is
    already declared is dropped (the first declaration wins)."""
    merged: dict[str, FunctionDecl] = {}
    for group in groups:
        for decl in group:
            old = merged.get(decl.name)
            if old is None:
                merged[decl.name] = decl
                continue
            ids = {o.id for o in old.overloads}
            signatures = {(o.params, o.receiver) for o in old.overloads}
            extra = tuple(
                o
                for o in decl.overloads
                if o.id not in ids and (o.params, o.receiver) not in signatures
            )
            merged[decl.name] = FunctionDecl(decl.name, old.overloads + extra, old.doc or decl.doc)
    return merged


def _base64_encode(value: object) -> str:
    if type(value) is not bytes:
        raise rt.no_such_overload("base64.encode", value)
    return binascii.b2a_base64(value, newline=False).decode("ascii")


def _base64_decode(value: object) -> bytes:
    if type(value) is not str:
        raise rt.no_such_overload("base64.decode", value)
    text = value + "=" * (-len(value) % 4)  # padding is optional, as in cel-go
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EvalError(f"base64.decode: invalid input: {exc}") from None


# The encoders extension of cel-go / cel-spec (``base64.encode``/``decode``):
# small, pure, and handy for opaque payload ids.
_ENCODERS: Final = (
    FunctionDecl(
        "base64.encode",
        (Overload("base64_encode_bytes", (BYTES,), STRING, _base64_encode),),
    ),
    FunctionDecl(
        "base64.decode",
        (Overload("base64_decode_string", (STRING,), BYTES, _base64_decode),),
    ),
)

STANDARD_FUNCTIONS: Final[dict[str, FunctionDecl]] = _merge(
    (
        _ARITHMETIC,
        _COMPARISONS,
        _LOGIC,
        _CONTAINERS,
        _CONVERSIONS,
        _STRINGS,
        TIME_FUNCTIONS,
        _ENCODERS,
        STRING_FUNCTIONS,
        MATH_FUNCTIONS,
        LIST_FUNCTIONS,
        SET_FUNCTIONS,
        OPTIONAL_FUNCTIONS,
        (FunctionDecl("_[_]", OPTIONAL_INDEX_OVERLOADS),),
    )
)
"""Every standard function and operator by name."""


def _index_dispatch(container: object = _ABSENT, key: object = _ABSENT, *rest: object) -> object:
    """``_[_]`` for dynamic calls. Overload matching would refuse a uint or
    integral double list index (index_list declares int), which CEL's
    dynamic dispatch accepts: ``[7, 8][dyn(0u)]``, ``[7, 8][dyn(0.0)]``."""
    if rest or key is _ABSENT:
        raise rt.no_such_overload("_[_]", *(a for a in (container, key, *rest) if a is not _ABSENT))
    if type(container) is values.Optional:
        return optional_index(container, key)
    return rt.index(container, key)


def _dispatchers() -> dict[str, Impl]:
    table: dict[str, Impl] = {
        name: make_dispatcher(decl) for name, decl in STANDARD_FUNCTIONS.items()
    }
    table["_[_]"] = _index_dispatch
    return table


STANDARD_DISPATCH: Final[dict[str, Impl]] = _dispatchers()
"""One dynamic dispatcher per standard function name: call it with the
evaluated arguments (receiver first); it picks the overload by the runtime
types or raises ``EvalError("no such overload: ...")``."""

TYPE_IDENTIFIERS: Final[dict[str, values.TypeValue]] = {
    "int": values.INT_TYPE,
    "uint": values.UINT_TYPE,
    "double": values.DOUBLE_TYPE,
    "bool": values.BOOL_TYPE,
    "string": values.STRING_TYPE,
    "bytes": values.BYTES_TYPE,
    "list": values.LIST_TYPE,
    "map": values.MAP_TYPE,
    "null_type": values.NULL_TYPE,
    "type": values.TYPE_TYPE,
    "google.protobuf.Timestamp": values.TIMESTAMP_TYPE,
    "google.protobuf.Duration": values.DURATION_TYPE,
}
"""Type denotations usable as values in expressions (``type(x) == int``)."""
