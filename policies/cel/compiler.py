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
exactness; the common path pays nothing for it. Both bodies draw on one
cost budget per evaluation (:mod:`.cost`), so a late error never pays for
the work twice.

Where values are checked against declared types: the fast body trusts the
declared type of every variable it reads, so it first reads them all and
checks each one's class (an ``int`` for ``int``, a ``list`` or ``tuple``
for any ``list(...)``, a ``dict`` for a map; ``dyn`` and opaque types are not
checked). A variable missing or of another type sends the evaluation to the
strict body, which dispatches on the values' run-time types as CEL does
(``!b`` with ``b = 1`` is a "no such overload" error, not ``false``).
Elements of lists and maps are not checked: callers that bind typed
containers (the policy engine converts every attribute by its contract)
must bind elements of the declared type. Overload implementations must
return values of their declared result type.

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
from collections.abc import Callable, Mapping

from . import ast, regex, runtime
from .checker import check, resolved
from .codegen import Generator, Pool
from .dispatch import make_dispatcher
from .env import Env, FunctionDecl, Limits, Overload
from .errors import CelError, CompileError, CostLimitError, EvalError, Issue
from .parser import parse
from .stdlib import STANDARD_DISPATCH, STANDARD_FUNCTIONS
from .types import DYN, Type

__all__ = ["Program", "compile"]

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


def _python_source(
    fast_code: str, strict_code: str, prologue: list[str], budget: int | None, params: str
) -> str:
    """The module text defining ``_factory(params)``, which returns ``evaluate``."""
    reads = prologue[:-1]
    mismatch = prologue[-1]
    lines = [
        f"def _factory({params}):",
        "    def _strict(_a, _b):",
        "        try:",
        f"            return {strict_code}",
        "        except _CelError:",
        "            raise",
        "        except RecursionError as exc:",
        '            raise _EvalError("expression too deep to evaluate") from exc',
        "        except Exception as exc:",
        "            raise _wrap(exc) from exc",
        "    def _evaluate(_a):",
        "        _b = None" if budget is None else f"        _b = [{budget}]",
    ]
    if reads:
        lines += ["        try:", *(f"            {read}" for read in reads)]
        lines += ["        except Exception:", "            return _strict(_a, _b)"]
    if mismatch:
        lines += [f"        if {mismatch}:", "            return _strict(_a, _b)"]
    lines += [
        "        try:",
        f"            return {fast_code}",
        "        except _CostLimitError:",
        "            raise",
        "        except Exception:",
        "            return _strict(_a, _b)",
        "    return _evaluate",
        "",
    ]
    return "\n".join(lines)


def _declarations(env: Env) -> tuple[dict[str, FunctionDecl], dict[str, Callable[..., object]]]:
    """The standard library plus the environment's functions, and their dispatchers."""
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
    return functions, dispatch


def compile(source: str | ast.Source, env: Env | None = None, *, macros: bool = True) -> Program:
    """Parse, type-check and generate code; raises ``CompileError`` with every issue."""
    env = env or Env()
    src = source if isinstance(source, ast.Source) else ast.Source(source)
    tree = parse(src, env.limits, macros=macros)
    functions, dispatch = _declarations(env)
    try:
        return _compile_checked(tree, src, env, functions, dispatch)
    except (RecursionError, MemoryError) as exc:
        # Only with limits raised beyond what the interpreter's stack allows
        # (the parser's own depth bound applies first at the defaults).
        line, column = src.location(0)
        issue = Issue(line, column, "expression nests too deeply to compile", src.description)
        raise CompileError([issue]) from exc


def _compile_checked(
    tree: ast.Expr,
    src: ast.Source,
    env: Env,
    functions: dict[str, FunctionDecl],
    dispatch: dict[str, Callable[..., object]],
) -> Program:
    checked = check(tree, src, env, functions)
    pool = Pool()
    options = {
        "domain_functions": frozenset(env.functions),
        "variables": env.variables,
        "max_cost": env.limits.max_cost,
    }
    fast = Generator(checked, functions, dispatch, pool, "fast", **options)  # type: ignore[arg-type]
    fast_code = fast.gen(tree)
    strict = Generator(checked, functions, dispatch, pool, "strict", **options)  # type: ignore[arg-type]
    strict_code = strict.gen(tree)
    prologue = fast.prologue()  # may add pool constants: before the parameters
    budget = env.limits.max_cost if fast.uses_budget or strict.uses_budget else None
    params = ", ".join(
        ["_CelError", "_EvalError", "_CostLimitError", "_wrap"]
        + [f"_c{i}" for i in range(len(pool.values))]
    )
    python_source = _python_source(fast_code, strict_code, prologue, budget, params)
    namespace: dict[str, object] = {"__builtins__": _SAFE_BUILTINS}
    try:
        code = builtins.compile(python_source, f"<cel {src.description}>", "exec")
    except SyntaxError as exc:  # e.g. too many nested parentheses for Python's parser
        raise RecursionError(str(exc)) from exc
    exec(code, namespace)
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
