"""The CEL type checker: resolves names and overloads, deduces a type per node.

The policy's contracts become the declaration environment, so an unknown
attribute or an ill-typed comparison is a compile error with a position —
the schema-drift guard of the product. ``dyn`` defers checks to run time.

The checker also records, for every call, the overloads that can match the
static argument types; the code generator calls an overload's implementation
directly when exactly one matches and falls back to dynamic dispatch
otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from . import ast
from .env import Env, FunctionDecl, Overload
from .errors import CompileError, Issue
from .types import (
    BOOL,
    BYTES,
    DOUBLE,
    DURATION,
    DYN,
    INT,
    NULL,
    STRING,
    TIMESTAMP,
    UINT,
    ListType,
    MapType,
    OpaqueType,
    PrimitiveType,
    Type,
    TypeParam,
    TypeType,
)
from .values import Duration, Timestamp, UInt

__all__ = ["Checked", "check", "resolved", "type_name"]

# Type identifiers usable as values in expressions: `type(x) == int`.
TYPE_DENOTATIONS: Mapping[str, Type] = {
    "int": INT,
    "uint": UINT,
    "double": DOUBLE,
    "bool": BOOL,
    "string": STRING,
    "bytes": BYTES,
    "null_type": NULL,
    "list": ListType(DYN),
    "map": MapType(DYN, DYN),
    "type": TypeType(DYN),
    "google.protobuf.Timestamp": TIMESTAMP,
    "google.protobuf.Duration": DURATION,
}


# A key no CEL identifier can be: marks the scopes that are loop bodies.
_LOOP_MARK = " loop"
_FREE_ELEM = TypeParam("_elem")
_FREE_KEY = TypeParam("_key")
_FREE_VALUE = TypeParam("_value")


def resolved(t: Type) -> Type:
    """``t`` with free type parameters (of empty literals) read as dyn."""
    return _substitute(t, {})


def type_name(t: Type) -> str:
    """The CEL spelling of a static type, as the conformance suite writes it."""
    return str(t)


@dataclass(slots=True)
class Checked:
    """What the checker learned about one AST.

    - ``types``: node id -> deduced type.
    - ``overloads``: call node id -> the overloads that may match.
    - ``names``: node id -> the declared variable a Select chain or Ident
      resolves to (``a.b.c`` resolved as the variable ``a.b``, say, marks the
      ``a.b`` Select node).
    - ``type_idents``: node id -> type identifier name used as a value.
    - ``functions``: call node id -> qualified global function name, for
      calls written as ``namespace.fn(x)``.
    - ``references``: variables and attribute paths read.
    """

    types: dict[int, Type] = field(default_factory=dict)
    overloads: dict[int, tuple[Overload, ...]] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)
    type_idents: dict[int, str] = field(default_factory=dict)
    functions: dict[int, str] = field(default_factory=dict)
    references: set[str] = field(default_factory=set)


def _const_type(value: object) -> Type:
    if value is None:
        return NULL
    kind = type(value)
    if kind is bool:
        return BOOL
    if kind is int:
        return INT
    if kind is UInt:
        return UINT
    if kind is float:
        return DOUBLE
    if kind is str:
        return STRING
    if kind is bytes:
        return BYTES
    if kind is Timestamp:
        return TIMESTAMP
    if kind is Duration:
        return DURATION
    return DYN


def _is_dyn(t: Type) -> bool:
    return t == DYN or isinstance(t, TypeParam)


def _substitute(t: Type, bindings: Mapping[str, Type]) -> Type:
    if isinstance(t, TypeParam):
        return _substitute(bindings[t.name], bindings) if t.name in bindings else DYN
    if isinstance(t, ListType):
        return ListType(_substitute(t.elem, bindings))
    if isinstance(t, MapType):
        return MapType(_substitute(t.key, bindings), _substitute(t.value, bindings))
    if isinstance(t, TypeType):
        return TypeType(_substitute(t.param, bindings))
    if isinstance(t, OpaqueType) and t.params:
        return OpaqueType(t.name, tuple(_substitute(p, bindings) for p in t.params))
    return t


def _unify(param: Type, arg: Type, bindings: dict[str, Type]) -> bool:
    """Can a value of static type ``arg`` be passed where ``param`` is
    expected? Binds type parameters as a side effect."""
    if isinstance(param, TypeParam):
        bound = bindings.get(param.name)
        if bound is None:
            bindings[param.name] = arg
            return True
        if _is_dyn(bound):
            return True
        if isinstance(bound, TypeType) and isinstance(arg, TypeType):
            # Type values of different types still compare: widen.
            if bound != arg:
                bindings[param.name] = TypeType(DYN)
            return True
        if _compatible(bound, arg):
            # As cel-go: types that agree (dyn matching anything, at any
            # depth) bind the parameter to the more general of the two;
            # list(int) against list(string) does not agree.
            bindings[param.name] = _join2(bound, arg)
            return True
        return False
    if DYN in (arg, param):
        return True
    if isinstance(arg, TypeParam):
        return True
    if isinstance(param, PrimitiveType):
        return isinstance(arg, PrimitiveType) and param.name == arg.name
    if isinstance(param, ListType):
        return isinstance(arg, ListType) and _unify(param.elem, arg.elem, bindings)
    if isinstance(param, MapType):
        return (
            isinstance(arg, MapType)
            and _unify(param.key, arg.key, bindings)
            and _unify(param.value, arg.value, bindings)
        )
    if isinstance(param, TypeType):
        # Any type value is a value of type `type`.
        return isinstance(arg, TypeType)
    if isinstance(param, OpaqueType):
        return (
            isinstance(arg, OpaqueType)
            and param.name == arg.name
            and len(param.params) == len(arg.params)
            and all(_unify(p, a, bindings) for p, a in zip(param.params, arg.params, strict=True))
        )
    return False


def _compatible(a: Type, b: Type) -> bool:
    """Whether ``a`` and ``b`` can denote the same values: equal, with dyn
    (or a free type parameter) standing for any type at any depth."""
    if _is_dyn(a) or _is_dyn(b):
        return True
    if isinstance(a, ListType):
        return isinstance(b, ListType) and _compatible(a.elem, b.elem)
    if isinstance(a, MapType):
        return (
            isinstance(b, MapType) and _compatible(a.key, b.key) and _compatible(a.value, b.value)
        )
    if isinstance(a, TypeType):
        return isinstance(b, TypeType)
    if isinstance(a, OpaqueType):
        return (
            isinstance(b, OpaqueType)
            and a.name == b.name
            and len(a.params) == len(b.params)
            and all(_compatible(x, y) for x, y in zip(a.params, b.params, strict=True))
        )
    return a == b


def _join(types: list[Type]) -> Type:
    """The common type of list elements, map keys or branches: equal types
    stay, lists and maps join element-wise, anything else widens to dyn."""
    if not types:
        return DYN
    result = types[0]
    for t in types[1:]:
        result = _join2(result, t)
    return result


def _join2(a: Type, b: Type) -> Type:
    if a == b:
        return a
    if isinstance(a, TypeParam):
        return b
    if isinstance(b, TypeParam):
        return a
    if isinstance(a, ListType) and isinstance(b, ListType):
        return ListType(_join2(a.elem, b.elem))
    if isinstance(a, MapType) and isinstance(b, MapType):
        return MapType(_join2(a.key, b.key), _join2(a.value, b.value))
    if isinstance(a, TypeType) and isinstance(b, TypeType):
        return TypeType(_join2(a.param, b.param))
    if (
        isinstance(a, OpaqueType)
        and isinstance(b, OpaqueType)
        and a.name == b.name
        and len(a.params) == len(b.params)
    ):
        return OpaqueType(
            a.name, tuple(_join2(x, y) for x, y in zip(a.params, b.params, strict=True))
        )
    return DYN


def _qualified_name(expr: ast.Expr) -> str | None:
    """``a.b.c`` for a Select chain over an Ident, else None."""
    parts: list[str] = []
    while isinstance(expr, ast.Select) and not expr.test_only:
        parts.append(expr.field)
        expr = expr.operand
    if isinstance(expr, ast.Ident):
        parts.append(expr.name)
        return ".".join(reversed(parts))
    return None


class _Checker:
    def __init__(self, env: Env, functions: Mapping[str, FunctionDecl], source: ast.Source) -> None:
        self.env = env
        self.functions = functions
        self.source = source
        self.out = Checked()
        self.issues: list[Issue] = []
        self.scopes: list[dict[str, Type]] = []
        self.unchecked = env.disable_check

    # -- reporting -----------------------------------------------------------
    def error(self, node: ast.Expr, message: str) -> Type:
        line, column = self.source.location(node.offset)
        self.issues.append(Issue(line, column, message, self.source.description))
        return DYN

    def record(self, node: ast.Expr, t: Type) -> Type:
        self.out.types[node.id] = t
        return t

    # -- names -----------------------------------------------------------------
    def lookup_local(self, name: str) -> Type | None:
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        return None

    def lookup_global(self, name: str) -> Type | None:
        name = name.removeprefix(".")
        declared = self.env.variables.get(name)
        if declared is not None:
            return declared
        if self.unchecked and name in self.env.variables:
            return DYN
        return None

    def resolve_qualified(self, expr: ast.Select) -> Type | None:
        """Resolve the longest declared prefix of a dotted name; the rest is
        field selection. Returns None when nothing resolves."""
        qualified = _qualified_name(expr)
        if qualified is None:
            return None
        root = qualified.split(".", 1)[0]
        if not qualified.startswith(".") and self.lookup_local(root) is not None:
            return None  # a comprehension variable shadows globals
        # Walk from the longest candidate (this node) to shorter prefixes.
        node: ast.Expr = expr
        chain: list[ast.Select] = []
        while isinstance(node, ast.Select):
            candidate = _qualified_name(node)
            if candidate is not None:
                declared = self.lookup_global(candidate)
                if declared is not None:
                    self.out.names[node.id] = candidate.removeprefix(".")
                    self.out.references.add(candidate.removeprefix("."))
                    self.record(node, declared)
                    result = declared
                    for outer in reversed(chain):
                        result = self.select_type(outer, result)
                        self.record(outer, result)
                    self.add_attribute_reference(expr)
                    return result
            chain.append(node)
            node = node.operand
        return None

    def add_attribute_reference(self, expr: ast.Expr) -> None:
        """Record ``var.field.field`` paths so a store fetches only those."""
        parts: list[str] = []
        node = expr
        while isinstance(node, ast.Select):
            if node.id in self.out.names:
                parts.append(self.out.names[node.id])
                self.out.references.add(".".join(reversed(parts)))
                return
            parts.append(node.field)
            node = node.operand
        if isinstance(node, ast.Ident) and node.id in self.out.names:
            parts.append(self.out.names[node.id])
            self.out.references.add(".".join(reversed(parts)))

    # -- expressions -------------------------------------------------------------
    def visit(self, node: ast.Expr) -> Type:
        if isinstance(node, ast.Const):
            return self.record(node, _const_type(node.value))
        if isinstance(node, ast.Ident):
            return self.record(node, self.visit_ident(node))
        if isinstance(node, ast.Select):
            return self.visit_select(node)
        if isinstance(node, ast.Call):
            return self.record(node, self.visit_call(node))
        if isinstance(node, ast.CreateList):
            elems = [self.visit(e) for e in node.elements]
            for i in node.optional_indices:
                elems[i] = self.optional_element(node.elements[i], elems[i])
            # An empty literal's element type is free until joined with others.
            return self.record(node, ListType(_join(elems) if elems else _FREE_ELEM))
        if isinstance(node, ast.CreateMap):
            keys = []
            values = []
            for i, (key, value) in enumerate(node.entries):
                key_type = self.visit(key)
                if not _is_dyn(key_type) and key_type not in (INT, UINT, BOOL, STRING):
                    self.error(key, f"unsupported map key type: {key_type}")
                keys.append(key_type)
                value_type = self.visit(value)
                if i in node.optional_indices:
                    value_type = self.optional_element(value, value_type)
                values.append(value_type)
            if not keys:
                return self.record(node, MapType(_FREE_KEY, _FREE_VALUE))
            return self.record(node, MapType(_join(keys), _join(values)))
        if isinstance(node, ast.CreateStruct):
            for _, value in node.fields:
                self.visit(value)
            return self.record(
                node,
                self.error(
                    node,
                    f"message construction is not supported: '{node.message_name}' "
                    "is not a declared type",
                ),
            )
        if isinstance(node, ast.Comprehension):
            return self.record(node, self.visit_comprehension(node))
        raise TypeError(f"unknown node {type(node).__name__}")  # pragma: no cover

    def optional_element(self, node: ast.Expr, t: Type) -> Type:
        """The element type behind ``[?e]`` / ``{?k: e}``: ``e`` must be an
        ``optional_type(T)`` (or dyn); the literal holds T."""
        if _is_dyn(t):
            return DYN
        if isinstance(t, OpaqueType) and t.name == "optional_type" and len(t.params) == 1:
            return t.params[0]
        if self.unchecked:
            return DYN
        return self.error(node, f"expected type 'optional_type' but found '{t}'")

    def visit_ident(self, node: ast.Ident) -> Type:
        local = None if node.name.startswith(".") else self.lookup_local(node.name)
        if local is not None:
            return local
        declared = self.lookup_global(node.name)
        if declared is not None:
            name = node.name.removeprefix(".")
            self.out.names[node.id] = name
            self.out.references.add(name)
            return declared
        denoted = TYPE_DENOTATIONS.get(node.name.removeprefix("."))
        if denoted is not None:
            self.out.type_idents[node.id] = node.name.removeprefix(".")
            return TypeType(denoted)
        if self.unchecked:
            # Unchecked programs resolve names at run time, as the spec's
            # unchecked evaluation does: `x || true` is true with x unbound.
            self.out.references.add(node.name.removeprefix("."))
            return DYN
        return self.error(node, f"undeclared reference to '{node.name}'")

    def visit_select(self, node: ast.Select) -> Type:
        if not node.test_only:
            resolved = self.resolve_qualified(node)
            if resolved is not None:
                return resolved
            qualified = _qualified_name(node)
            if qualified is not None and qualified.removeprefix(".") in TYPE_DENOTATIONS:
                self.out.type_idents[node.id] = qualified.removeprefix(".")
                return self.record(node, TypeType(TYPE_DENOTATIONS[qualified.removeprefix(".")]))
        operand_type = self.visit(node.operand)
        result = self.select_type(node, operand_type)
        if node.test_only:
            result = BOOL
        self.add_attribute_reference(node)
        return self.record(node, result)

    def select_type(self, node: ast.Select, operand: Type) -> Type:
        if (
            isinstance(operand, OpaqueType)
            and operand.name == "optional_type"
            and len(operand.params) == 1
        ):
            # Optional chaining: a field of an optional map is optional.
            inner = self._select_type(node, operand.params[0])
            return OpaqueType("optional_type", (inner,))
        return self._select_type(node, operand)

    def _select_type(self, node: ast.Select, operand: Type) -> Type:
        if _is_dyn(operand) or self.unchecked:
            return DYN
        if isinstance(operand, MapType):
            if not (_is_dyn(operand.key) or operand.key == STRING):
                return self.error(node, f"type '{operand}' does not support field selection")
            return operand.value
        return self.error(node, f"type '{operand}' does not support field selection")

    def qualified_function(self, node: ast.Call) -> str | None:
        """``base64.encode(x)`` names the global function ``base64.encode``
        when its target is a dotted name that is not a variable."""
        if node.target is None:
            return None
        prefix = _qualified_name(node.target)
        if prefix is None:
            return None
        name = f"{prefix.removeprefix('.')}.{node.function}"
        if name not in self.functions:
            return None
        root = prefix.removeprefix(".").split(".", 1)[0]
        if self.lookup_local(root) is not None or self.lookup_global(prefix) is not None:
            return None
        return name

    def visit_call(self, node: ast.Call) -> Type:
        qualified = self.qualified_function(node)
        if qualified is not None:
            self.out.functions[node.id] = qualified
            node = ast.Call(node.id, node.offset, qualified, node.args)
        target_type = self.visit(node.target) if node.target is not None else None
        arg_types = [self.visit(arg) for arg in node.args]
        decl = self.functions.get(node.function)
        if decl is None:
            if self.unchecked:
                return DYN
            return self.error(node, f"undeclared reference to '{node.function}'")
        receiver = node.target is not None
        actual = ([target_type] if target_type is not None else []) + arg_types
        matches: list[Overload] = []
        results: list[Type] = []
        for overload in decl.overloads:
            if overload.receiver != receiver or len(overload.params) != len(actual):
                continue
            bindings: dict[str, Type] = {}
            if all(_unify(p, a, bindings) for p, a in zip(overload.params, actual, strict=True)):
                matches.append(overload)
                results.append(_substitute(overload.result, bindings))
        if not matches:
            if self.unchecked:
                self.out.overloads[node.id] = ()
                return DYN
            rendered = ", ".join(str(t) for t in actual)
            return self.error(
                node,
                f"found no matching overload for '{node.function}' applied to '({rendered})'",
            )
        self.out.overloads[node.id] = tuple(matches)
        if self.unchecked:
            return DYN
        return _join(results) if len(results) > 1 else results[0]

    def visit_comprehension(self, node: ast.Comprehension) -> Type:
        loops = sum(1 for scope in self.scopes if scope.get(_LOOP_MARK) is not None) + 1
        if node.macro != "bind" and loops > self.env.limits.max_comprehension_depth:
            self.error(
                node,
                f"comprehensions nest {loops} deep; the limit is "
                f"{self.env.limits.max_comprehension_depth}",
            )
        range_type = self.visit(node.iter_range)
        if node.macro == "bind":
            self.scopes.append({node.iter_var: range_type})
            try:
                assert node.transform is not None
                return self.visit(node.transform)
            finally:
                self.scopes.pop()
        key_type, value_type = self.range_types(node, range_type)
        if node.iter_var2 is None:
            scope = {node.iter_var: key_type if isinstance(range_type, MapType) else value_type}
        else:
            scope = {node.iter_var: key_type, node.iter_var2: value_type}
        scope[_LOOP_MARK] = DYN  # marks a loop scope (bind scopes are not loops)
        self.scopes.append(scope)
        try:
            if node.predicate is not None:
                pred = self.visit(node.predicate)
                if not _is_dyn(pred) and pred != BOOL and not self.unchecked:
                    self.error(node.predicate, f"expected type 'bool' but found '{pred}'")
            transform = self.visit(node.transform) if node.transform is not None else None
        finally:
            self.scopes.pop()
        if self.unchecked:
            return DYN
        if node.macro in ("all", "exists", "exists_one"):
            return BOOL
        if node.macro == "filter":
            return ListType(scope[node.iter_var])
        if node.macro == "transformMap":
            return MapType(key_type, transform if transform is not None else DYN)
        if node.macro == "transformMapEntry":
            return transform if isinstance(transform, MapType) else MapType(DYN, DYN)
        return ListType(transform if transform is not None else DYN)

    def range_types(self, node: ast.Comprehension, range_type: Type) -> tuple[Type, Type]:
        """(index or key type, element or value type) of a comprehension range."""
        if isinstance(range_type, ListType):
            return INT, range_type.elem
        if isinstance(range_type, MapType):
            return range_type.key, range_type.value
        if not _is_dyn(range_type):
            self.error(
                node.iter_range,
                f"expression of type '{range_type}' cannot be the range of a comprehension",
            )
        return DYN, DYN


def check(
    expr: ast.Expr, source: ast.Source, env: Env, functions: Mapping[str, FunctionDecl]
) -> Checked:
    """Type-check ``expr``; raise :class:`CompileError` with every issue."""
    checker = _Checker(env, functions, source)
    checker.visit(expr)
    if checker.issues:
        raise CompileError(checker.issues)
    return checker.out
