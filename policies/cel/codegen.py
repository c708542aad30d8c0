"""Code generation: one checked CEL AST to the Python source of a fast or a strict body.

See :mod:`policies.cel.compiler` for how the two bodies are used. The
generator never turns a CEL identifier into a Python name: variables are read
from the activation by string key (the fast body binds each one to a local
``_rN`` in a prologue that also checks its type, see :meth:`Generator.prologue`),
comprehension variables are renamed ``_vN``/``_wN``, literals are written with
``repr`` or passed as closure constants (``_cN``), and every call goes to a
callable chosen here from the declaration tables.

Cost: calls whose work grows with their arguments are routed through
:mod:`policies.cel.cost` when an argument may be a value the expression built
(or inside a loop); loops charge their range length times the loop body's
weight.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Literal

from . import ast, cost, evalsupport, extoptional, runtime
from .checker import Checked
from .dispatch import python_types
from .env import FunctionDecl
from .errors import CelError, CostLimitError, EvalError
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
    Type,
    TypeParam,
)
from .values import TypeValue, UInt

__all__ = ["Generator", "Pool"]

_NUMERIC = frozenset({INT, UINT, DOUBLE})
_ORDERED_SAME = frozenset({STRING, BYTES, BOOL, TIMESTAMP, DURATION})
_EQUAL_SAME = _ORDERED_SAME | {NULL}
_RELATIONS = {"_==_": "==", "_!=_": "!=", "_<_": "<", "_<=_": "<=", "_>_": ">", "_>=_": ">="}
_INT_ARITH = {"_+_": "+", "_-_": "-", "_*_": "*"}
_DOUBLE_ARITH = {"_+_": "+", "_-_": "-", "_*_": "*", "_/_": "/"}
_SIZED = (STRING, BYTES)
_UNSIZED = frozenset({INT, UINT, DOUBLE, BOOL, NULL, TIMESTAMP, DURATION})
_EXACT_DOUBLE_INT = 2**53
_NUMERIC_VALUES = frozenset({int, UInt, float})
# Receiver string functions with the same meaning as Python's str methods.
_STRING_METHODS = {"startsWith": "startswith", "endsWith": "endswith", "contains": "__contains__"}
# Functions whose work does not grow with their operands' size: never
# charged (a loop's iterations are). Ordering of strings and bytes is O(n)
# but charged only through its operands' construction.
_CONSTANT_COST = frozenset(
    {"_-_", "_*_", "_/_", "_%_", "-_", "!_", "size", "_[_]", "type", "dyn"}
    | {"int", "uint", "double", "bool", "has"}
    # The optional types extension: wrapping, unwrapping and one lookup.
    | {"_?._", "_[?_]", "hasValue", "value", "orValue", "or"}
    | {"optional.of", "optional.none", "optional.ofNonZeroValue"}
)

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


class Pool:
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


class Generator:
    def __init__(
        self,
        checked: Checked,
        functions: Mapping[str, FunctionDecl],
        dispatch: Mapping[str, Callable[..., object]],
        pool: Pool,
        mode: Mode,
        *,
        domain_functions: frozenset[str] = frozenset(),
        variables: Mapping[str, Type] | None = None,
        max_cost: int = 0,
    ) -> None:
        self.domain_functions = domain_functions
        self.variables = variables or {}
        self.max_cost = max_cost
        # Fast body: variable name -> the local its prologue binds it to.
        self.reads: dict[str, str] = {}
        # Locals (comprehension and bind variables) holding activation values.
        self.external_locals: set[str] = set()
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
            items = "".join(self.gen(e) + ", " for e in node.elements)
            if node.optional_indices:
                indices = self.pool.ref(frozenset(node.optional_indices))
                return f"{self.fn(extoptional.optional_list)}(({items}), {indices})"
            return "[" + items + "]"
        if isinstance(node, ast.CreateMap):
            return self.create_map(node)
        if isinstance(node, ast.Comprehension):
            return self.comprehension(node)
        raise CelError(f"cannot generate code for {type(node).__name__}")

    # -- names -----------------------------------------------------------------
    def read_variable(self, name: str) -> str:
        if self.fast:
            local = self.reads.get(name)
            if local is None:
                local = self.reads[name] = f"_r{len(self.reads)}"
            return local
        return f"{self.fn(evalsupport.variable)}(_a, {name!r})"

    def prologue(self) -> list[str]:
        """Fast body: statements reading every variable into its local, then
        the condition (a Python expression) under which a value does not have
        its declared type, so the strict body must run instead ("" if none).

        Only the value's class is checked (``list`` for a ``list(int)``, not
        the elements): what the fast body's Python operators rely on."""
        reads = [f"{local} = _a[{name!r}]" for name, local in self.reads.items()]
        checks = []
        for name, local in self.reads.items():
            check = self.type_check(local, self.variables.get(name, DYN))
            if check:
                checks.append(check)
        return [*reads, " or ".join(checks)]

    def type_check(self, local: str, declared: Type) -> str:
        """A Python condition true when ``local`` is not of type ``declared``."""
        if declared == NULL:
            return f"{local} is not None"
        if declared == BOOL:  # identity tests: cheaper than a type() call
            return f"({local} is not True and {local} is not False)"
        classes = python_types(declared)
        if classes is None:
            return ""  # dyn, type parameters, opaque host types
        if len(classes) == 1:
            (only,) = classes
            return f"{self.fn(type)}({local}) is not {self.pool.ref(only)}"
        return f"{self.fn(type)}({local}) not in {self.pool.ref(classes)}"

    def external(self, node: ast.Expr) -> bool:
        """Whether a node's value is a literal or part of the activation, as
        opposed to a value the expression built: work on the former is
        bounded by the expression's size and the service's input limits, so
        it is not charged outside loops."""
        while True:
            if isinstance(node, ast.Const):
                return True
            if isinstance(node, ast.Ident):
                local = self.local(node.name)
                return local is None or local in self.external_locals
            if isinstance(node, ast.Select):
                if node.id in self.checked.names:
                    return True
                node = node.operand
                continue
            if isinstance(node, ast.Call) and node.function in ("_[_]", "dyn") and node.args:
                node = node.args[0]
                continue
            if isinstance(node, ast.CreateList):
                return all(map(self.external, node.elements))
            if isinstance(node, ast.CreateMap):
                return all(self.external(k) and self.external(v) for k, v in node.entries)
            return False

    def local(self, name: str) -> str | None:
        if name.startswith("."):
            return None
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        return None

    def ident(self, node: ast.Ident) -> str:
        local = self.local(node.name)
        if local is not None:
            return local
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
        charged = self.charged(name, args)
        if self.fast and not charged:
            inline = self.inline(name, args)
            if inline is not None:
                return inline
        rendered = ", ".join(self.gen(arg) for arg in args)
        callee = self.callee(node, args)
        estimate = cost.ESTIMATES.get(name)
        if estimate is not None:
            self.uses_budget = True
            return f"{self.fn(cost.estimated_call)}(_b, {self.fn(estimate)}, {callee}, {rendered})"
        if charged:
            self.uses_budget = True
            extra = 0
            if name == "matches" and not isinstance(args[-1], ast.Const):
                extra = cost.REGEX_COMPILE_COST  # a dynamic pattern may be compiled per call
            return f"{self.fn(cost.charged_call)}(_b, {extra}, {callee}, {rendered})"
        return f"{callee}({rendered})"

    def charged(self, name: str, args: list[ast.Expr]) -> bool:
        """Whether a call is charged to the budget: its work may grow with the
        size of an argument that is not a literal, and it runs in a loop or on
        a value the expression built. A comparison with a literal or a number
        is bounded by that operand; ``startsWith``/``endsWith`` by their argument."""
        if name in _CONSTANT_COST:
            return False
        if name in _RELATIONS and any(
            isinstance(arg, ast.Const) or not self.may_be_sized(arg) for arg in args
        ):
            return False
        drivers = args[1:2] if name in ("startsWith", "endsWith") else args
        sized = [a for a in drivers if not isinstance(a, ast.Const) and self.may_be_sized(a)]
        if not sized:
            return False
        return self.in_comprehension or not all(map(self.external, sized))

    def may_be_sized(self, node: ast.Expr) -> bool:
        t = self.type_of(node)
        return not (t in _UNSIZED or isinstance(t, OpaqueType))

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
            values = [arg.value for arg in args if isinstance(arg, ast.Const)]
            estimate = cost.ESTIMATES.get(node.function)
            budget = cost.new_budget(self.max_cost)
            try:
                if estimate is not None:
                    value = cost.estimated_call(budget, estimate, dispatcher, *values)
                else:
                    value = cost.charged_call(budget, 0, dispatcher, *values)
            except CostLimitError:
                pass  # too costly to fold: the run-time call reports it
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
            return self.fn(no_such_function(node.function))
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
        if node.optional_indices:
            pairs = "".join(f"({self.gen(k)}, {self.gen(v)}), " for k, v in node.entries)
            resolve = self.fn(extoptional.optional_map_pairs)
            indices = self.pool.ref(frozenset(node.optional_indices))
            return f"{self.fn(runtime.make_map)}({resolve}(({pairs}), {indices}))"
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
            ranger = cost.comprehension_range
            target = var
        else:
            ranger = cost.comprehension_pairs
            var2 = f"_w{node.id}"
            scope[node.iter_var2] = var2
            target = f"({var}, {var2})"
        if self.external(node.iter_range):
            self.external_locals.update(scope.values())
        weight = 1 + (_count_nodes(node.predicate) + _count_nodes(node.transform)) // (
            cost.NODES_PER_UNIT
        )
        # Python forbids `:=` in a comprehension's iterable expression.
        self.no_walrus += 1
        try:
            items = f"{self.fn(ranger)}(_b, {self.gen(node.iter_range)}, {weight})"
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
                make_map = self.fn(runtime.make_map)
                return f"{make_map}(({var}, {transform}) for {target} in {items}{condition})"
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
        if self.external(node.iter_range):
            self.external_locals.add(var)
        self.scopes.append({node.iter_var: var})
        try:
            assert node.transform is not None
            body = self.gen(node.transform)
        finally:
            self.scopes.pop()
        return f"(lambda {var}: {body})({init})"


def no_such_function(name: str) -> Callable[..., object]:
    def fail(*_args: object) -> object:
        raise EvalError(f"no such overload: unknown function '{name}'")

    return fail


def _count_nodes(node: ast.Expr | None) -> int:
    """Nodes in a subtree (iteratively: trees may be deep)."""
    count = 0
    stack = [node] if node is not None else []
    while stack:
        current = stack.pop()
        count += 1
        if isinstance(current, ast.Select):
            stack.append(current.operand)
        elif isinstance(current, ast.Call):
            stack.extend(current.args)
            if current.target is not None:
                stack.append(current.target)
        elif isinstance(current, ast.CreateList):
            stack.extend(current.elements)
        elif isinstance(current, ast.CreateMap):
            for key, value in current.entries:
                stack.extend((key, value))
        elif isinstance(current, ast.Comprehension):
            stack.append(current.iter_range)
            stack.extend(n for n in (current.predicate, current.transform) if n is not None)
    return count
