"""Declarations an expression is compiled against: variables, functions, limits.

The policy's contracts (profile attributes, event types, request context)
become an :class:`Env`; domain functions (event counts, segment membership,
local hour, ...) are registered here through :class:`Overload` — the one
extension mechanism. An overload names its argument types, its result type
and the Python callable that implements it. Implementations receive CEL
runtime values (see :mod:`policies.cel.values`) and must be pure: their data
comes from the activation (the customer snapshot), never from I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from .types import Type

__all__ = ["Env", "FunctionDecl", "Limits", "Overload"]


@dataclass(frozen=True, slots=True)
class Limits:
    """Cost bounds. Exceeding one is a compile error (static bounds) or an
    :class:`~policies.cel.errors.CostLimitError` (runtime bounds)."""

    max_expression_length: int = 4_096  # characters of source text
    max_nesting_depth: int = 64  # parenthesis / call / literal nesting while parsing
    max_ast_nodes: int = 1_024
    max_literal_elements: int = 512  # per list or map literal
    max_comprehension_depth: int = 12  # macros nested inside macros (each level multiplies cost)
    max_regex_length: int = 1_024  # characters of a regex pattern (checked at run time)
    # Cost units per evaluation: one per comprehension iteration (charged
    # with the range length before each loop) plus, for function calls
    # inside a comprehension, one per call and one per 64 elements or
    # characters of its arguments. About 1-2 ms of work on this hardware.
    max_cost: int = 5_000
    max_value_size: int = (
        1_000_000  # elements/characters of a string, bytes or list built at run time
    )


@dataclass(frozen=True, slots=True)
class Overload:
    """One signature of a function.

    ``receiver`` means the function is called as a method: ``target.name(args)``;
    ``params`` then starts with the receiver type. ``impl`` takes the
    evaluated arguments (receiver first) and returns a CEL value or raises
    :class:`~policies.cel.errors.EvalError`.
    """

    id: str
    params: tuple[Type, ...]
    result: Type
    impl: Callable[..., object] | None = None
    receiver: bool = False


@dataclass(frozen=True, slots=True)
class FunctionDecl:
    name: str
    overloads: tuple[Overload, ...]
    doc: str = ""


@dataclass(frozen=True, slots=True)
class Env:
    """An immutable declaration environment.

    ``variables`` maps top-level identifiers to their static types. Dotted
    names (``request.channel``) are allowed and resolved the way the CEL
    specification resolves qualified identifiers. ``functions`` adds domain
    functions on top of the CEL standard library, which is always present.
    """

    variables: Mapping[str, Type] = field(default_factory=dict)
    functions: Mapping[str, FunctionDecl] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    # Compile without the type checker (everything is dyn); used by the
    # conformance runner for cases marked ``disable_check``.
    disable_check: bool = False

    def with_variables(self, **variables: Type) -> Env:
        merged = dict(self.variables)
        merged.update(variables)
        return replace(self, variables=merged)

    def with_functions(self, *decls: FunctionDecl) -> Env:
        merged = dict(self.functions)
        for decl in decls:
            old = merged.get(decl.name)
            merged[decl.name] = (
                decl
                if old is None
                else FunctionDecl(decl.name, old.overloads + decl.overloads, decl.doc or old.doc)
            )
        return replace(self, functions=merged)
