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

Because ``bool`` and ``UInt`` are ``int`` subclasses, code that dispatches on
CEL types must use ``type(x) is int`` rather than ``isinstance``.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "UINT64_MAX",
    "Duration",
    "Timestamp",
    "TypeValue",
    "UInt",
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
