"""The CEL abstract syntax tree: small immutable nodes with source offsets.

Operators are calls with the function names of the CEL specification
(``_+_``, ``_&&_``, ``_?_:_``, ``_[_]``, ``!_``, ``-_``, ``@in``, ...), so the
checker and the code generator resolve operators and functions through one
overload table. Macros (``has``, ``all``, ``exists``, ``exists_one``, ``map``,
``filter``) are expanded by the parser into :class:`Select` with ``test_only``
and :class:`Comprehension` nodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "Call",
    "Comprehension",
    "Const",
    "CreateList",
    "CreateMap",
    "CreateStruct",
    "Expr",
    "Ident",
    "MacroKind",
    "Select",
    "Source",
]


@dataclass(frozen=True, slots=True)
class Source:
    """The text of one expression and where it came from, for error positions.

    ``line_offset``/``column_offset`` shift reported positions when the
    expression is embedded in a larger file (a YAML policy), so errors point
    at the file, not at the expression string.
    """

    text: str
    description: str = "<expr>"
    line_offset: int = 0
    column_offset: int = 0
    _line_starts: tuple[int, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        starts = [0]
        find = self.text.find
        index = find("\n")
        while index != -1:
            starts.append(index + 1)
            index = find("\n", index + 1)
        object.__setattr__(self, "_line_starts", tuple(starts))

    def location(self, offset: int) -> tuple[int, int]:
        """Return the 1-based ``(line, column)`` of a character offset."""
        starts = self._line_starts
        low, high = 0, len(starts) - 1
        while low < high:
            mid = (low + high + 1) // 2
            if starts[mid] <= offset:
                low = mid
            else:
                high = mid - 1
        line = low + 1
        column = offset - starts[low] + 1
        if line == 1:
            column += self.column_offset
        return line + self.line_offset, column


@dataclass(frozen=True, slots=True)
class Expr:
    """Base of every node. ``id`` is unique within one parse; ``offset`` is
    the character offset of the node's first significant token."""

    id: int
    offset: int


@dataclass(frozen=True, slots=True)
class Const(Expr):
    """A literal. ``value`` is a CEL runtime value: None, bool, int,
    :class:`policies.cel.values.UInt`, float, str or bytes."""

    value: object


@dataclass(frozen=True, slots=True)
class Ident(Expr):
    """A (possibly dotted, after checking) identifier reference."""

    name: str


@dataclass(frozen=True, slots=True)
class Select(Expr):
    """``operand.field``; with ``test_only`` it is the ``has(operand.field)`` macro."""

    operand: Expr
    field: str
    test_only: bool = False


@dataclass(frozen=True, slots=True)
class Call(Expr):
    """A function or operator call; ``target`` is the receiver of ``x.f(...)``."""

    function: str
    args: tuple[Expr, ...]
    target: Expr | None = None


@dataclass(frozen=True, slots=True)
class CreateList(Expr):
    """A list literal; ``optional_indices`` are the positions written
    ``[?e]`` (optional elements: present values are added, none is skipped)."""

    elements: tuple[Expr, ...]
    optional_indices: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class CreateMap(Expr):
    """A map literal; ``entries`` keep source order (duplicate keys are an
    evaluation error, as in the specification)."""

    entries: tuple[tuple[Expr, Expr], ...]
    optional_indices: tuple[int, ...] = ()  # entries written ``{?k: v}``


@dataclass(frozen=True, slots=True)
class CreateStruct(Expr):
    """``Message{field: value}``. Parsed so errors are precise; Arbiter has no
    protobuf message types in its environment, so the checker rejects it."""

    message_name: str
    fields: tuple[tuple[str, Expr], ...]


MacroKind = Literal[
    "all",
    "exists",
    "exists_one",
    "map",
    "filter",
    "transformList",
    "transformMap",
    "transformMapEntry",
    "bind",
]


@dataclass(frozen=True, slots=True)
class Comprehension(Expr):
    """A comprehension macro over ``iter_range`` (a list, or a map's keys).

    - ``all``/``exists``/``exists_one``/``filter``: ``predicate`` is set.
    - ``map``: ``transform`` is set; ``predicate`` is the optional filter of
      the three-argument form ``l.map(x, p, t)``.
    - two-variable forms (``iter_var2`` set): ``l.all(i, v, p)``,
      ``exists``, ``exists_one``, and ``transformList``/``transformMap``/
      ``transformMapEntry`` with an optional filter: the first variable is
      the list index or map key, the second the element or map value.
    - ``bind`` (``cel.bind(x, init, body)``): ``iter_range`` is the value
      bound to ``iter_var`` while ``transform`` is evaluated; no iteration.
    """

    macro: MacroKind
    iter_var: str
    iter_range: Expr
    predicate: Expr | None = None
    transform: Expr | None = None
    iter_var2: str | None = None
