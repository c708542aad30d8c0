"""Static CEL types used by the checker and by environment declarations.

Types are immutable and hashable. ``DYN`` is assignable to and from every
type; ``TypeParam`` appears only in function overload signatures.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ANY",
    "BOOL",
    "BYTES",
    "DOUBLE",
    "DURATION",
    "DYN",
    "ERROR",
    "INT",
    "NULL",
    "STRING",
    "TIMESTAMP",
    "UINT",
    "ListType",
    "MapType",
    "OpaqueType",
    "PrimitiveType",
    "Type",
    "TypeParam",
    "TypeType",
]


@dataclass(frozen=True, slots=True)
class Type:
    """Base of static types."""

    def __str__(self) -> str:  # pragma: no cover - overridden
        return type(self).__name__


@dataclass(frozen=True, slots=True)
class PrimitiveType(Type):
    """A named type without parameters: int, uint, double, bool, string,
    bytes, null_type, google.protobuf.Timestamp, google.protobuf.Duration,
    dyn, error."""

    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class ListType(Type):
    elem: Type

    def __str__(self) -> str:
        return f"list({self.elem})"


@dataclass(frozen=True, slots=True)
class MapType(Type):
    key: Type
    value: Type

    def __str__(self) -> str:
        return f"map({self.key}, {self.value})"


@dataclass(frozen=True, slots=True)
class TypeType(Type):
    """The type of a type value; ``param`` is the type it denotes (or DYN)."""

    param: Type

    def __str__(self) -> str:
        return f"type({self.param})"


@dataclass(frozen=True, slots=True)
class TypeParam(Type):
    """A type variable in an overload signature (``A`` in ``list(A)``)."""

    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class OpaqueType(Type):
    """A host type exposed to expressions only through declared functions
    (e.g. ``arbiter.Events`` for event counters). Fields are not selectable."""

    name: str
    params: tuple[Type, ...] = ()

    def __str__(self) -> str:
        if not self.params:
            return self.name
        return f"{self.name}({', '.join(map(str, self.params))})"


INT = PrimitiveType("int")
UINT = PrimitiveType("uint")
DOUBLE = PrimitiveType("double")
BOOL = PrimitiveType("bool")
STRING = PrimitiveType("string")
BYTES = PrimitiveType("bytes")
NULL = PrimitiveType("null_type")
TIMESTAMP = PrimitiveType("google.protobuf.Timestamp")
DURATION = PrimitiveType("google.protobuf.Duration")
DYN = PrimitiveType("dyn")
ANY = PrimitiveType("any")
ERROR = PrimitiveType("*error*")
