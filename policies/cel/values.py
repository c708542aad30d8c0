"""Runtime representation of CEL values in Python.

| CEL        | Python                                   |
|------------|------------------------------------------|
| null_type  | ``None``                                 |
| bool       | ``bool``                                 |
| int        | ``int`` (never ``bool``: test ``type(x) is int``) |
| uint       | :class:`UInt` (an ``int`` subclass)      |
| double     | ``float``                                |
| string     | ``str``                                  |
| bytes      | ``bytes``                                |
| list       | ``list`` or ``tuple``                    |
| map        | ``dict``                                 |
| timestamp  | :class:`Timestamp` (ns since the epoch)  |
| duration   | :class:`Duration` (ns)                   |
| type       | :class:`TypeValue`                       |

A map whose keys include both ``true`` and ``1`` (or ``false`` and ``0``),
distinct keys in CEL but one key to a Python dict, stores the bool key as
:class:`BoolKey` (only such a map does).

Because ``bool`` and ``UInt`` are ``int`` subclasses, code that dispatches on
CEL types must use ``type(x) is int`` rather than ``isinstance``.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "BOOL_KEY_FALSE",
    "BOOL_KEY_TRUE",
    "BOOL_TYPE",
    "BYTES_TYPE",
    "DOUBLE_TYPE",
    "DURATION_TYPE",
    "INT64_MAX",
    "INT64_MIN",
    "INT_TYPE",
    "LIST_TYPE",
    "MAP_TYPE",
    "NULL_TYPE",
    "OPTIONAL_NONE",
    "OPTIONAL_TYPE",
    "STRING_TYPE",
    "TIMESTAMP_TYPE",
    "TYPE_TYPE",
    "UINT64_MAX",
    "UINT_TYPE",
    "BoolKey",
    "Duration",
    "Optional",
    "Timestamp",
    "TypeValue",
    "UInt",
    "type_name",
    "type_of",
]

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
UINT64_MAX: Final = 2**64 - 1


class UInt(int):
    """A CEL ``uint``. Arithmetic on it yields plain ``int``; the runtime
    re-wraps results and checks the range."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"{int(self)}u"


class Timestamp:
    """A point in time with nanosecond precision (``nanos`` since the Unix
    epoch, UTC). Valid range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z."""

    __slots__ = ("nanos",)

    def __init__(self, nanos: int) -> None:
        self.nanos = nanos

    def __eq__(self, other: object) -> bool:
        return type(other) is Timestamp and other.nanos == self.nanos

    def __hash__(self) -> int:
        return hash(("ts", self.nanos))

    def __lt__(self, other: Timestamp) -> bool:
        return self.nanos < other.nanos

    def __le__(self, other: Timestamp) -> bool:
        return self.nanos <= other.nanos

    def __gt__(self, other: Timestamp) -> bool:
        return self.nanos > other.nanos

    def __ge__(self, other: Timestamp) -> bool:
        return self.nanos >= other.nanos

    def __repr__(self) -> str:
        return f"Timestamp({self.nanos})"


class Duration:
    """A signed span of time in nanoseconds."""

    __slots__ = ("nanos",)

    def __init__(self, nanos: int) -> None:
        self.nanos = nanos

    def __eq__(self, other: object) -> bool:
        return type(other) is Duration and other.nanos == self.nanos

    def __hash__(self) -> int:
        return hash(("dur", self.nanos))

    def __lt__(self, other: Duration) -> bool:
        return self.nanos < other.nanos

    def __le__(self, other: Duration) -> bool:
        return self.nanos <= other.nanos

    def __gt__(self, other: Duration) -> bool:
        return self.nanos > other.nanos

    def __ge__(self, other: Duration) -> bool:
        return self.nanos >= other.nanos

    def __repr__(self) -> str:
        return f"Duration({self.nanos})"


class TypeValue:
    """A CEL type as a runtime value (the result of ``type(x)``, or the
    identifiers ``int``, ``string``, ...). Equal when the names are equal;
    ``type(type(x))`` is ``type``."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __eq__(self, other: object) -> bool:
        return type(other) is TypeValue and other.name == self.name

    def __hash__(self) -> int:
        return hash(("type", self.name))

    def __repr__(self) -> str:
        return f"TypeValue({self.name!r})"


class BoolKey:
    """The bool key of a map that also has the number equal to it as a key
    (``{true: 'a', 1: 'b'}``): Python equates ``True`` with ``1``, CEL does not.
    Map operations unwrap it; ``value`` is the bool."""

    __slots__ = ("value",)

    def __init__(self, value: bool) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return type(other) is BoolKey and other.value is self.value

    def __hash__(self) -> int:
        return hash(("bool-key", self.value))

    def __repr__(self) -> str:
        return f"BoolKey({self.value})"


BOOL_KEY_TRUE: Final = BoolKey(True)
BOOL_KEY_FALSE: Final = BoolKey(False)


class Optional:
    """A CEL ``optional_type(T)`` value (the optional-types extension):
    ``optional.of(v)`` holds ``v``; ``optional.none()`` holds nothing
    (:data:`OPTIONAL_NONE`). Equal when both are empty or both hold equal
    values (see :func:`policies.cel.runtime.eq`)."""

    __slots__ = ("has_value", "value")

    def __init__(self, value: object = None, *, has_value: bool = True) -> None:
        self.value = value
        self.has_value = has_value

    def __repr__(self) -> str:
        return f"optional.of({self.value!r})" if self.has_value else "optional.none()"


OPTIONAL_NONE: Final = Optional(None, has_value=False)


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
OPTIONAL_TYPE: Final = TypeValue("optional_type")

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
    type(None): NULL_TYPE,
    TypeValue: TYPE_TYPE,
    Timestamp: TIMESTAMP_TYPE,
    Duration: DURATION_TYPE,
    BoolKey: BOOL_TYPE,
    Optional: OPTIONAL_TYPE,
}


def type_name(value: object) -> str:
    """The CEL type name of a runtime value, for error messages."""
    tv = _TYPE_OF.get(type(value))
    return tv.name if tv is not None else type(value).__name__


def type_of(value: object) -> TypeValue:
    """``type(x)``. Host values outside the CEL value set (opaque domain
    objects) report their Python class name."""
    tv = _TYPE_OF.get(type(value))
    return tv if tv is not None else TypeValue(type(value).__name__)
