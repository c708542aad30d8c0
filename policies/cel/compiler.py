"""Compile CEL source to Python code: parse -> check -> generate -> ``compile()``.

Each program is generated twice from one checked AST:

- a **fast** body of plain Python operators (``and``, ``or``, ``==``,
  ``x["field"]``, list comprehensions) used when the checker proved the
  operand types, plus direct calls to the one matching overload;
- a **strict** body that implements CEL's error semantics exactly
  (commutative error absorption in ``&&``/``||``/``all``/``exists``, dynamic
  dispatch, "no such key" errors).

``evaluate`` runs the fast body; if it raises anything, the strict body runs.
Expressions are pure, so re-running is safe, and a fast run that completes
without raising is exactly the CEL result: on the error-free path CEL's
operators coincide with Python's (integer results are range-checked, and
operators whose Python semantics differ — integer division, list indexing,
string concatenation — always call the runtime). The error path pays for
exactness; the common path pays nothing for it.

Safety: CEL identifiers never become Python names. Variables are read with
``activation["name"]`` (a string constant), comprehension variables are
renamed ``_vN``, literals are emitted with ``repr`` or passed as closure
constants, and every function call goes to a callable chosen here from the
declaration tables. Nothing in an expression can name a Python attribute,
builtin or module.
"""

from __future__ import annotations

import builtins
import dataclasses
import functools
import math
from collections.abc import Callable, Mapping
from typing import Literal

from . import ast, evalsupport, regex, runtime
from .checker import Checked, check, resolved
from .dispatch import make_dispatcher
from .env import Env, FunctionDecl, Limits, Overload
from .errors import CelError, CostLimitError, EvalError
from .parser import parse
from .stdlib import STANDARD_DISPATCH, STANDARD_FUNCTIONS
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
    Type,
    TypeParam,
)
from .values import TypeValue, UInt

__all__ = ["Program", "compile"]

_NUMERIC = frozenset({INT, UINT, DOUBLE})
_ORDERED_SAME = frozenset({STRING, BYTES, BOOL, TIMESTAMP, DURATION})
_EQUAL_SAME = _ORDERED_SAME | {NULL}
_RELATIONS = {"_==_": "==", "_!=_": "!=", "_<_": "<", "_<=_": "<=", "_>_": ">", "_>=_": ">="}
_INT_ARITH = {"_+_": "+", "_-_": "-", "_*_": "*"}
_DOUBLE_ARITH = {"_+_": "+", "_-_": "-", "_*_": "*", "_/_": "/"}
_SIZED = (STRING, BYTES)
_EXACT_DOUBLE_INT = 2**53
_NUMERIC_VALUES = frozenset({int, UInt, float})
# Receiver string functions with the same meaning as Python's str methods.
_STRING_METHODS = {"startsWith": "startswith", "endsWith": "endswith", "contains": "__contains__"}
# Operators whose cost does not grow with their operands' size: not charged
# to the cost budget inside loops (the loop's iterations are).
_CONSTANT_COST = frozenset(
    {"_<_", "_<=_", "_>_", "_>=_", "_-_", "_*_", "_/_", "_%_", "-_", "!_", "size", "_[_]"}
)
# Cost units charged for a `matches` call with a non-constant pattern inside a
# loop: compiling a regex costs tens of microseconds (constants are cached).
_REGEX_COMPILE_COST = 64

Mode = Literal["fast", "strict"]


def _concrete(t: Type) -> bool:
    """True when a static type has no dyn or type parameter inside."""
    if t == DYN or isinstance(t, TypeParam):
        return False
    if isinstance(t, ListType):
        return _concrete(t.elem)
    if isinstance(t, MapType):
        return _concrete(t.key) and _concrete(t.value)
    return True


class _Pool:
    """Closure constants shared by both bodies: runtime callables and values
    that have no safe literal spelling."""

    def __init__(self) -> None:
        self.names: dict[int, str] = {}
        self.values: list[object] = []
        # Call node id -> its folded constant's spelling (None: not foldable),
        # so the two bodies fold each call once and share the constant.
        self.folded: dict[int, str | None] = {}

    def ref(self, value: object) -> str:
        key = id(value)
        name = self.names.get(key)
        if name is None:
            name = f"_c{len(self.values)}"
            self.names[key] = name
            self.values.append(value)
        return name


class _Generator:
    def __init__(
        self,
        checked: Checked,
        functions: Mapping[str, FunctionDecl],
        dispatch: Mapping[str, Callable[..., object]],
        pool: _Pool,
        mode: Mode,
        *,
        domain_functions: frozenset[str] = frozenset(),
    ) -> None:
        self.domain_functions = domain_functions
        self.checked = checked
        self.functions = functions
        self.dispatch = dispatch
        self.pool = pool
        self.mode = mode
        self.fast = mode == "fast"
        self.scopes: list[dict[str, str]] = []
        self.loop_depth = 0
        self.no_walrus = 0
        self.uses_budget = False

    @property
    def in_comprehension(self) -> bool:
        """Inside a loop body, calls are charged to the cost budget."""
        return self.loop_depth > 0

    def type_of(self, node: ast.Expr) -> Type:
        return self.checked.types.get(node.id, DYN)

    def const(self, value: object) -> str:
        kind = type(value)
        if value is None or kind in (bool, int, str, bytes):
            return repr(value)
        if kind is float and math.isfinite(value):  # type: ignore[arg-type]
            return repr(value)
        return self.pool.ref(value)

    def fn(self, func: Callable[..., object]) -> str:
        return self.pool.ref(func)

    def gen(self, node: ast.Expr) -> str:
        if isinstance(node, ast.Const):
            return self.const(node.value)
        if isinstance(node, ast.Ident):
            return self.ident(node)
        if isinstance(node, ast.Select):
            return self.select(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.CreateList):
            return "[" + "".join(self.gen(e) + ", " for e in node.elements) + "]"
        if isinstance(node, ast.CreateMap):
            return self.create_map(node)
        if isinstance(node, ast.Comprehension):
            return self.comprehension(node)
        raise CelError(f"cannot generate code for {type(node).__name__}")

    # -- names -----------------------------------------------------------------
    def read_variable(self, name: str) -> str:
        if self.fast:
            return f"_a[{name!r}]"
        return f"{self.fn(evalsupport.variable)}(_a, {name!r})"

    def ident(self, node: ast.Ident) -> str:
        if not node.name.startswith("."):
            for scope in reversed(self.scopes):
                if node.name in scope:
                    return scope[node.name]
        declared = self.checked.names.get(node.id)
        if declared is not None:
            return self.read_variable(declared)
        type_ident = self.checked.type_idents.get(node.id)
        if type_ident is not None:
            return self.pool.ref(TypeValue(type_ident))
        # Only reachable unchecked: an undeclared name fails at run time.
        return self.read_variable(node.name.removeprefix("."))

    def select(self, node: ast.Select) -> str:
        declared = self.checked.names.get(node.id)
        if declared is not None:
            return self.read_variable(declared)
        type_ident = self.checked.type_idents.get(node.id)
        if type_ident is not None:
            return self.pool.ref(TypeValue(type_ident))
        operand = self.gen(node.operand)
        operand_type = self.type_of(node.operand)
        static_map = isinstance(operand_type, MapType) and operand_type.key == STRING
        if node.test_only:
            if self.fast and static_map:
                return f"({node.field!r} in {operand})"
            return f"{self.fn(runtime.has_field)}({operand}, {node.field!r})"
        if self.fast and static_map:
            return f"{operand}[{node.field!r}]"
        return f"{self.fn(runtime.select)}({operand}, {node.field!r})"

    # -- calls -------------------------------------------------------------------
    def call(self, node: ast.Call) -> str:
        qualified = self.checked.functions.get(node.id)
        if qualified is not None:
            node = ast.Call(node.id, node.offset, qualified, node.args)
        name = node.function
        args = list(node.args)
        if node.target is not None:
            args.insert(0, node.target)
        if name in {"_&&_", "_||_"}:
            return self.logical(name, args[0], args[1])
        if name == "!_":
            operand = self.gen(args[0])
            if self.fast and self.type_of(args[0]) == BOOL:
                return f"(not {operand})"
            return f"{self.fn(evalsupport.logical_not)}({operand})"
        if name == "_?_:_":
            return f"({self.gen(args[1])} if {self.boolean(args[0])} else {self.gen(args[2])})"
        folded = self.fold(node, args)
        if folded is not None:
            return folded
        if self.fast:
            inline = self.inline(name, args)
            if inline is not None:
                return inline
        rendered = ", ".join(self.gen(arg) for arg in args)
        if self.in_comprehension and name not in _CONSTANT_COST:
            charged = self.fn(evalsupport.charged_call)
            extra = 0
            if name == "matches" and not isinstance(args[-1], ast.Const):
                extra = _REGEX_COMPILE_COST  # a dynamic pattern may be compiled per call
            return f"{charged}(_b, {extra}, {self.callee(node, args)}, {rendered})"
        return f"{self.callee(node, args)}({rendered})"

    def fold(self, node: ast.Call, args: list[ast.Expr]) -> str | None:
        """Evaluate a standard function of literals once, at compile time
        (``duration("168h")``, ``timestamp("...")``); errors stay run-time."""
        if not args or not all(isinstance(arg, ast.Const) for arg in args):
            return None
        if node.id in self.pool.folded:
            return self.pool.folded[node.id]
        spelling: str | None = None
        dispatcher = self.dispatch.get(node.function)
        if node.function not in self.domain_functions and dispatcher is not None:
            try:
                value = dispatcher(*(arg.value for arg in args if isinstance(arg, ast.Const)))
            except CelError:
                pass
            else:
                spelling = self.const(value)
        self.pool.folded[node.id] = spelling
        return spelling

    def boolean(self, node: ast.Expr) -> str:
        code = self.gen(node)
        if self.fast and self.type_of(node) == BOOL:
            return code
        return f"{self.fn(evalsupport.check_bool)}({code})"

    def logical(self, name: str, left: ast.Expr, right: ast.Expr) -> str:
        if self.fast:
            op = "and" if name == "_&&_" else "or"
            return f"({self.boolean(left)} {op} {self.boolean(right)})"
        helper = evalsupport.logical_and if name == "_&&_" else evalsupport.logical_or
        return f"{self.fn(helper)}(lambda: {self.gen(left)}, lambda: {self.gen(right)})"

    def callee(self, node: ast.Call, args: list[ast.Expr]) -> str:
        """The callable for a call: the single statically matching overload
        when that is safe, else the function's dynamic dispatcher."""
        matches = self.checked.overloads.get(node.id, ())
        if len(matches) == 1 and matches[0].impl is not None:
            static = all(_concrete(self.type_of(arg)) for arg in args)
            if self.fast or static:
                return self.fn(matches[0].impl)
        dispatcher = self.dispatch.get(node.function)
        if dispatcher is None:
            return self.fn(_no_such_function(node.function))
        return self.fn(dispatcher)

    def inline(self, name: str, args: list[ast.Expr]) -> str | None:
        """Plain-Python spellings for operators whose Python semantics equal
        CEL's on the error-free path for these static types."""
        types = [self.type_of(arg) for arg in args]
        if len(args) == 2:
            left, right = types
            both_numeric = left in _NUMERIC and right in _NUMERIC
            op = _RELATIONS.get(name)
            if op is not None and left == right and left in (TIMESTAMP, DURATION):
                # Compare the nanosecond counts: no Python-level __lt__ call.
                return f"({self.gen(args[0])}.nanos {op} {self.gen(args[1])}.nanos)"
            if left == STRING and right == STRING and name in _STRING_METHODS:
                if name == "contains":
                    if self.in_comprehension:
                        return None  # O(n): charged like any call inside a loop
                    return f"({self.gen(args[1])} in {self.gen(args[0])})"
                return f"{self.gen(args[0])}.{_STRING_METHODS[name]}({self.gen(args[1])})"
            if op is not None:
                same = left == right and (
                    left in _EQUAL_SAME if op in "==!=" else left in _ORDERED_SAME
                )
                if both_numeric and left != right and DOUBLE in (left, right):
                    # int/uint against double: CEL converts the integer to the
                    # nearest double first (Python would compare exactly).
                    to_double = self.fn(float)
                    a, b = self.gen(args[0]), self.gen(args[1])
                    a = a if left == DOUBLE else f"{to_double}({a})"
                    b = b if right == DOUBLE else f"{to_double}({b})"
                    return f"({a} {op} {b})"
                if both_numeric or same:
                    return f"({self.gen(args[0])} {op} {self.gen(args[1])})"
                return self.dyn_versus_literal(name, op, args, types)
            if left == INT and right == INT and name in _INT_ARITH:
                check = self.fn(evalsupport.check_int)
                return f"{check}({self.gen(args[0])} {_INT_ARITH[name]} {self.gen(args[1])})"
            if left == DOUBLE and right == DOUBLE and name in _DOUBLE_ARITH:
                return f"({self.gen(args[0])} {_DOUBLE_ARITH[name]} {self.gen(args[1])})"
            if name == "@in":
                if self.in_comprehension:
                    return None  # O(n): charged like any call inside a loop
                # Membership of a string (or bytes) among strings: Python's
                # == is CEL's. (Not for a dyn element: it could be a host object.)
                among_text = left in (STRING, BYTES)
                if (
                    isinstance(right, ListType)
                    and right.elem == left
                    and left in (INT, UINT, STRING, BOOL)
                ) or (
                    among_text
                    and (
                        (isinstance(right, ListType) and right.elem in (STRING, BYTES))
                        or (isinstance(right, MapType) and right.key == STRING)
                    )
                ):
                    return f"({self.gen(args[0])} in {self.gen(args[1])})"
                return None
            if (
                name == "_[_]"
                and isinstance(left, MapType)
                and left.key == STRING
                and right == STRING
            ):
                return f"{self.gen(args[0])}[{self.gen(args[1])}]"
            return None
        if len(args) == 1:
            (only,) = types
            if name == "size" and (only in _SIZED or isinstance(only, ListType | MapType)):
                return f"len({self.gen(args[0])})"
            if name == "-_" and only == INT:
                return f"{self.fn(evalsupport.check_int)}(-{self.gen(args[0])})"
            if name == "-_" and only == DOUBLE:
                return f"(-{self.gen(args[0])})"
        return None

    def dyn_versus_literal(
        self, name: str, op: str, args: list[ast.Expr], types: list[Type]
    ) -> str | None:
        """``dyn <op> literal``, compared inline when the run-time type allows.

        The dyn operand is bound once and its type checked against a set for
        which Python's operator equals CEL's: ints, uints and doubles against
        an int literal of at most 2**53 (exact either way); only doubles
        against a double literal (CEL converts an int to a double first);
        only the literal's own type for ``==``/``!=`` with a string, bytes
        or null literal. Any other value -- including host objects, whose
        Python protocol methods must never run -- goes to dynamic dispatch.
        """
        if self.no_walrus:
            return None
        for dyn_side, const_side in ((0, 1), (1, 0)):
            const = args[const_side]
            if types[dyn_side] != DYN or not isinstance(const, ast.Const):
                continue
            kind = type(const.value)
            if kind is int and abs(const.value) <= _EXACT_DOUBLE_INT:  # type: ignore[arg-type]
                allowed = _NUMERIC_VALUES
            elif kind is float:
                allowed = frozenset({float})
            elif kind in (str, bytes, type(None)) and op in ("==", "!="):
                allowed = frozenset({kind})
            else:
                continue
            temp = f"_t{args[dyn_side].id}"
            operands = [temp, self.const(const.value)]
            if dyn_side == 1:
                operands.reverse()
            dispatcher = self.fn(self.dispatch[name])
            value = self.gen(args[dyn_side])
            return (
                f"({operands[0]} {op} {operands[1]} if {self.fn(type)}({temp} := {value}) "
                f"in {self.pool.ref(allowed)} else {dispatcher}({operands[0]}, {operands[1]}))"
            )
        return None

    # -- literals and macros -----------------------------------------------------
    def create_map(self, node: ast.CreateMap) -> str:
        keys = [key.value for key, _ in node.entries if isinstance(key, ast.Const)]
        if (
            len(keys) == len(node.entries)
            and all(type(k) is str for k in keys)
            and len(set(keys)) == len(keys)
        ):
            body = ", ".join(
                f"{k!r}: {self.gen(v)}" for (_, v), k in zip(node.entries, keys, strict=True)
            )
            return "{" + body + "}"
        pairs = "".join(f"({self.gen(k)}, {self.gen(v)}), " for k, v in node.entries)
        return f"{self.fn(runtime.make_map)}(({pairs}))"

    def comprehension(self, node: ast.Comprehension) -> str:
        if node.macro == "bind":
            return self.bind(node)
        self.uses_budget = True
        var = f"_v{node.id}"
        scope = {node.iter_var: var}
        if node.iter_var2 is None:
            ranger = evalsupport.comprehension_range
            target = var
        else:
            ranger = evalsupport.comprehension_pairs
            var2 = f"_w{node.id}"
            scope[node.iter_var2] = var2
            target = f"({var}, {var2})"
        # Python forbids `:=` in a comprehension's iterable expression.
        self.no_walrus += 1
        try:
            items = f"{self.fn(ranger)}(_b, {self.gen(node.iter_range)})"
        finally:
            self.no_walrus -= 1
        self.scopes.append(scope)
        self.loop_depth += 1
        try:
            predicate = self.boolean(node.predicate) if node.predicate is not None else None
            transform = self.gen(node.transform) if node.transform is not None else None
        finally:
            self.loop_depth -= 1
            self.scopes.pop()
        macro = node.macro
        condition = f" if {predicate}" if predicate is not None else ""
        if self.fast:
            if macro == "all":
                return f"all({predicate} for {target} in {items})"
            if macro == "exists":
                return f"any({predicate} for {target} in {items})"
            if macro == "exists_one":
                return f"(sum(1 for {target} in {items}{condition}) == 1)"
            if macro == "filter":
                return f"[{var} for {target} in {items}{condition}]"
            if macro == "transformMap":
                return f"{{{var}: {transform} for {target} in {items}{condition}}}"
            if macro == "transformMapEntry":
                merge = self.fn(evalsupport.merge_entries)
                return f"{merge}([{transform} for {target} in {items}{condition}])"
            return f"[{transform} for {target} in {items}{condition}]"
        params = f"{var}, {var2}" if node.iter_var2 is not None else var
        pairs = f", pairs={node.iter_var2 is not None}"
        pred_fn = f", predicate=lambda {params}: {predicate}" if predicate is not None else ""
        if macro in ("map", "transformList", "transformMap", "transformMapEntry"):
            transformer: Callable[..., object] = {
                "map": evalsupport.macro_map,
                "transformList": evalsupport.macro_map,
                "transformMap": evalsupport.macro_transform_map,
                "transformMapEntry": evalsupport.macro_transform_map_entry,
            }[macro]
            return f"{self.fn(transformer)}({items}, lambda {params}: {transform}{pred_fn}{pairs})"
        helper: Callable[..., object] = {
            "all": evalsupport.macro_all,
            "exists": evalsupport.macro_exists,
            "exists_one": evalsupport.macro_exists_one,
            "filter": evalsupport.macro_filter,
        }[macro]
        return f"{self.fn(helper)}({items}, lambda {params}: {predicate}{pairs})"

    def bind(self, node: ast.Comprehension) -> str:
        """``cel.bind(x, init, body)``: evaluate init once, then body with x bound."""
        var = f"_v{node.id}"
        init = self.gen(node.iter_range)
        self.scopes.append({node.iter_var: var})
        try:
            assert node.transform is not None
            body = self.gen(node.transform)
        finally:
            self.scopes.pop()
        return f"(lambda {var}: {body})({init})"


_DEFAULT_LIMITS = Limits()
_SIZE_BOUNDED = {
    runtime.string_concat: "max_value_size",
    runtime.bytes_concat: "max_value_size",
    runtime.list_concat: "max_value_size",
    regex.matches: "max_regex_length",
}


def _apply_size_limits(
    functions: dict[str, FunctionDecl],
    dispatch: dict[str, Callable[..., object]],
    limits: Limits,
) -> None:
    """Bind non-default size limits into the overloads that enforce them
    (concatenation, regex length); the defaults are the runtime's own."""
    if (limits.max_value_size, limits.max_regex_length) == (
        _DEFAULT_LIMITS.max_value_size,
        _DEFAULT_LIMITS.max_regex_length,
    ):
        return
    keyword = {"max_value_size": "max_size", "max_regex_length": "max_length"}
    for name in ("_+_", "matches"):
        decl = functions[name]
        overloads = []
        for overload in decl.overloads:
            field = _SIZE_BOUNDED.get(overload.impl) if overload.impl is not None else None
            if field is None or overload.impl is None:
                overloads.append(overload)
                continue
            bound = functools.partial(overload.impl, **{keyword[field]: getattr(limits, field)})
            overloads.append(dataclasses.replace(overload, impl=bound))
        functions[name] = FunctionDecl(name, tuple(overloads), decl.doc)
        dispatch[name] = make_dispatcher(functions[name])


def _no_such_function(name: str) -> Callable[..., object]:
    def fail(*_args: object) -> object:
        raise EvalError(f"no such overload: unknown function '{name}'")

    return fail


def _wrap_internal(exc: Exception) -> EvalError:
    return EvalError(f"evaluation failed: {type(exc).__name__}")


class Program:
    """A compiled, immutable, thread-safe expression.

    - ``source``: the expression text.
    - ``result_type``: the checked static type (``DYN`` when unchecked).
    - ``references``: frozenset of the variables and attribute paths the
      expression reads, e.g. ``{"profile.age", "events"}``; the decision
      service uses it to fetch only what is needed.
    - ``evaluate(activation)``: returns the CEL value; raises
      :class:`~policies.cel.errors.EvalError` when the result is a CEL error
      (:class:`~policies.cel.errors.CostLimitError` for exceeded bounds).
      Missing variables are an ``EvalError`` too.
    - ``python_source``: the generated code, for review and debugging.
    """

    __slots__ = ("evaluate", "python_source", "references", "result_type", "source")

    evaluate: Callable[[Mapping[str, object]], object]

    def __init__(
        self,
        source: str,
        result_type: Type,
        references: frozenset[str],
        evaluate: Callable[[Mapping[str, object]], object],
        python_source: str,
    ) -> None:
        self.source = source
        self.result_type = result_type
        self.references = references
        self.evaluate = evaluate
        self.python_source = python_source

    def __repr__(self) -> str:
        return f"Program({self.source!r}, result_type={self.result_type})"


_TEMPLATE = """\
def _factory({params}):
    def _strict(_a):
{strict_budget}        try:
            return {strict}
        except _CelError:
            raise
        except RecursionError as exc:
            raise _EvalError("expression too deep to evaluate") from exc
        except Exception as exc:
            raise _wrap(exc) from exc
    def _evaluate(_a):
{fast_budget}        try:
            return {fast}
        except _CostLimitError:
            raise
        except Exception:
            return _strict(_a)
    return _evaluate
"""


def compile(source: str | ast.Source, env: Env | None = None, *, macros: bool = True) -> Program:
    """Parse, type-check and generate code; raises ``CompileError`` with every issue."""
    env = env or Env()
    src = source if isinstance(source, ast.Source) else ast.Source(source)
    tree = parse(src, env.limits, macros=macros)
    functions: dict[str, FunctionDecl] = dict(STANDARD_FUNCTIONS)
    dispatch: dict[str, Callable[..., object]] = dict(STANDARD_DISPATCH)
    _apply_size_limits(functions, dispatch, env.limits)
    for name, decl in env.functions.items():
        if name in functions:
            merged: tuple[Overload, ...] = functions[name].overloads + decl.overloads
            functions[name] = FunctionDecl(name, merged, decl.doc)
        else:
            functions[name] = decl
        dispatch[name] = make_dispatcher(functions[name])
    checked = check(tree, src, env, functions)

    pool = _Pool()
    domain = frozenset(env.functions)
    fast_gen = _Generator(checked, functions, dispatch, pool, "fast", domain_functions=domain)
    fast = fast_gen.gen(tree)
    strict_gen = _Generator(checked, functions, dispatch, pool, "strict", domain_functions=domain)
    strict = strict_gen.gen(tree)
    budget = f"        _b = [{env.limits.max_cost}]\n"
    params = ", ".join(
        [
            "_CelError",
            "_EvalError",
            "_CostLimitError",
            "_wrap",
            *(f"_c{i}" for i in range(len(pool.values))),
        ]
    )
    python_source = _TEMPLATE.format(
        params=params,
        strict=strict,
        fast=fast,
        strict_budget=budget if strict_gen.uses_budget else "",
        fast_budget=budget if fast_gen.uses_budget else "",
    )
    namespace: dict[str, object] = {"__builtins__": _SAFE_BUILTINS}
    exec(builtins.compile(python_source, f"<cel {src.description}>", "exec"), namespace)
    factory = namespace["_factory"]
    evaluate = factory(CelError, EvalError, CostLimitError, _wrap_internal, *pool.values)  # type: ignore[operator]
    result_type = DYN if env.disable_check else resolved(checked.types.get(tree.id, DYN))
    return Program(src.text, result_type, frozenset(checked.references), evaluate, python_source)


# The generated code needs only these builtins; nothing else is reachable
# from it even by a bug in the generator.
_SAFE_BUILTINS = {
    "all": all,
    "any": any,
    "sum": sum,
    "len": len,
    "Exception": Exception,
    "RecursionError": RecursionError,
}
