"""Escape-and-bomb safety of the CEL compiler (the corpus is ``corpus.py``).

For every corpus case: the outcome is the expected one (``CompileError``,
``EvalError``/``CostLimitError`` or the exact value), no other exception
type escapes (``RecursionError``, ``MemoryError``, ``SyntaxError``,
``AttributeError``, ...), a second run gives the same result, and each
phase -- compiling, and evaluating when it compiles -- stays under a cap of
*steps* (Python call and line events, counted with ``sys.settrace``; see
:func:`count_steps`), not of milliseconds: the count is the same on an idle
laptop and on a loaded 2-core CI box, so the test cannot flake. Wall-clock
time against the 10 ms product budget is measured by
``make bench-cel-safety`` (``benchmarks/cel_safety_bench.py``), which prints
numbers instead of failing on a noisy machine. A CPU-time deadline still
turns a real hang into a failure instead of a stuck run.

Sandbox canaries: while corpus programs evaluate, an audit hook and
sentinels on ``__import__``, ``open``, ``eval``/``exec``/``compile``,
``os.system`` & co., ``subprocess`` and ``socket`` record every call; none
may happen. The generated Python source (``Program.python_source``) is
checked so that no identifier of an expression is ever a Python name or
attribute, and every name the generator uses is an unknown identifier to
expressions.
"""

from __future__ import annotations

import ast as pyast
import builtins
import importlib.util
import io
import math
import os
import re
import signal
import socket
import subprocess
import sys
import types
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest

from arbiter.policies import cel
from arbiter.policies.cel import INT, CompileError, Env, EvalError, Program
from arbiter.policies.cel.values import Duration, Timestamp, TypeValue, UInt


def _load_corpus() -> types.ModuleType:
    """Import corpus.py under a unique name (no package, any import mode)."""
    name = "arbiter_cel_safety_corpus"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("corpus.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before exec: dataclasses resolve their module
    spec.loader.exec_module(module)
    return module


_corpus = _load_corpus()
CASES = _corpus.CASES
CATEGORIES = _corpus.CATEGORIES
HOST_ACCESS_LOG = _corpus.HOST_ACCESS_LOG
NO_VALUE = _corpus.NO_VALUE
Case = _corpus.Case

# Steps (Python call and line events, see count_steps) per phase: about
# twice the corpus's worst case (compile 82k, evaluate 118k steps when the
# cap was set). `make bench-cel-safety` prints each case's time next to its
# steps, against the 10 ms product budget.
STEP_CAP: Final = {"compile": 200_000, "evaluate": 250_000}
# The "limits-raised" cases (inputs up to 600x the default length bound) only
# have to finish: their caps are this many times larger.
RAISED_LIMITS_SCALE: Final = 100
# An attempt that uses this much CPU is a hang, not a slow run.
HANG_CPU_SECONDS: Final = 20.0

# Text that means Python's own attribute/name machinery, or object
# addresses, leaked into a CEL error message.
_PYTHON_FINGERPRINTS: Final = (
    "has no attribute",
    "is not defined",
    "Traceback",
    "<function",
    "<module",
    "<built-in",
    " object at 0x",
)
# Python exceptions that, even when wrapped into an EvalError, show the
# runtime resolved a Python attribute or name for the expression.
_SUSPICIOUS_CAUSES: Final = (AttributeError, NameError, SystemError)


class Hang(BaseException):
    """Raised by the CPU deadline; a BaseException so that no ``except
    Exception`` in the code under test can swallow it."""


@contextmanager
def cpu_deadline(seconds: float) -> Iterator[None]:
    def expire(signum: int, frame: object) -> None:
        raise Hang(f"still running after {seconds:.0f} s of CPU time")

    previous = signal.signal(signal.SIGPROF, expire)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)


# ---------------------------------------------------------------------------
# Running one case


@dataclass
class Result:
    outcome: str  # compile_error | eval_error | value
    value: object = NO_VALUE
    error: BaseException | None = None


def _preview(text: str, limit: int = 120) -> str:
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text):,} chars)"


def _describe(result: Result) -> str:
    if result.outcome == "value":
        return f"value {_short(result.value)}"
    return f"{type(result.error).__name__}: {str(result.error)[:300]}"


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 200 else f"{text[:200]}... ({len(text):,} chars of repr)"


class _StepLimit(BaseException):
    """Raised by the step counter past :data:`STEP_CAP` (a runaway, not a slow run)."""


def count_steps(action: Callable[[], Result], cap: int) -> tuple[Result, int]:
    """Run ``action`` once under ``sys.settrace`` and count its steps: every
    Python call and line event (a loop's back edge is a line event), in the
    compiler, the generated code and the runtime alike. Deterministic,
    unlike a clock; work inside one C call (``sorted``, ``str.replace``) is
    one step, which is what the cost estimates bound (the corpus expects
    their cost-limit errors)."""
    steps = 0

    def tracer(frame: object, event: str, arg: object) -> Any:
        nonlocal steps
        steps += 1
        if steps > cap:
            raise _StepLimit
        return tracer

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        result = action()
    finally:
        sys.settrace(previous)
    return result, steps


def _measured(action: Callable[[], Result], phase: str, cap: int) -> tuple[Result, int, list[str]]:
    """Run ``action`` once counting steps and once more untraced; return the
    result, the step count and any problems (escaped exceptions, more steps
    than ``cap``, or a second run that disagrees with the first)."""
    problems: list[str] = []
    results: list[Result] = []
    steps = 0
    for traced in (True, False):
        try:
            with cpu_deadline(HANG_CPU_SECONDS):
                if traced:
                    result, steps = count_steps(action, cap)
                else:
                    result = action()
        except _StepLimit:
            problems.append(f"{phase}: more than {cap:,} steps")
            return Result("hang"), cap + 1, problems
        except Hang as exc:
            problems.append(f"{phase}: hang ({exc})")
            return Result("hang"), cap + 1, problems
        except RecursionError as exc:  # named for the report: a listed failure mode
            problems.append(f"{phase}: RecursionError escaped: {exc}")
            return Result("crash", error=exc), steps, problems
        except Exception as exc:
            problems.append(f"{phase}: {type(exc).__name__} escaped: {str(exc)[:300]}")
            return Result("crash", error=exc), steps, problems
        results.append(result)
    first, second = results
    if second.outcome != first.outcome or (
        second.outcome == "value" and not cel_same(second.value, first.value)
    ):
        problems.append(f"{phase}: nondeterministic: {_describe(first)} then {_describe(second)}")
    return first, steps, problems


def _compile_action(source: str, env: Env, box: list[Program]) -> Callable[[], Result]:
    def action() -> Result:
        try:
            program = cel.compile(source, env)
        except CompileError as exc:
            return Result("compile_error", error=exc)
        box[:] = [program]
        return Result("value")

    return action


def _eval_action(program: Program, activation: Mapping[str, object]) -> Callable[[], Result]:
    def action() -> Result:
        try:
            value = program.evaluate(activation)
        except EvalError as exc:
            return Result("eval_error", error=exc)
        return Result("value", value)

    return action


def _error_problems(error: BaseException) -> list[str]:
    """A bounded-cost error must be a clear CEL error, not leaked Python."""
    problems = []
    message = str(error)
    if not message.strip():
        problems.append(f"{type(error).__name__} has an empty message")
    if isinstance(error, CompileError) and not error.issues:
        problems.append("CompileError without issues")
    for fingerprint in _PYTHON_FINGERPRINTS:
        if fingerprint in message:
            problems.append(
                f"error message leaks Python internals ({fingerprint!r}): {message[:200]}"
            )
    cause: BaseException | None = error.__cause__ or error.__context__
    seen = 0
    while cause is not None and seen < 20:
        if isinstance(cause, _SUSPICIOUS_CAUSES):
            problems.append(
                f"the CEL error wraps a Python {type(cause).__name__}: {str(cause)[:200]}"
            )
        cause = cause.__cause__ or cause.__context__
        seen += 1
    return problems


def run_case(case: Case) -> tuple[Result, dict[str, int], list[str]]:
    """Compile and (if it compiles) evaluate one case; returns the final
    result, the steps per phase and every problem found."""
    source = case.source()
    env = case.env()
    activation = case.make_activation()
    scale = RAISED_LIMITS_SCALE if case.budget_ms is not None else 1
    steps: dict[str, int] = {}
    box: list[Program] = []
    result, steps["compile"], problems = _measured(
        _compile_action(source, env, box), "compile", STEP_CAP["compile"] * scale
    )
    if result.outcome == "value":  # compiled
        result, steps["evaluate"], more = _measured(
            _eval_action(box[0], activation), "evaluate", STEP_CAP["evaluate"] * scale
        )
        problems += more
    return result, steps, problems


# ---------------------------------------------------------------------------
# CEL value identity: type and value, lists/tuples alike, NaN equal to NaN


def _key(value: object) -> tuple[str, object]:
    return (type(value).__name__, value)


def cel_same(left: object, right: object) -> bool:
    if left is NO_VALUE or right is NO_VALUE:
        return left is right
    if type(left) in (list, tuple) and type(right) in (list, tuple):
        return len(left) == len(right) and all(  # type: ignore[arg-type]
            cel_same(a, b)
            for a, b in zip(left, right, strict=True)  # type: ignore[call-overload]
        )
    if type(left) is dict and type(right) is dict:
        lkeys = {_key(k): k for k in left}
        rkeys = {_key(k): k for k in right}
        return lkeys.keys() == rkeys.keys() and all(
            cel_same(left[lkeys[k]], right[rkeys[k]]) for k in lkeys
        )
    if type(left) is not type(right):
        return False
    if type(left) is float and math.isnan(left) and math.isnan(right):  # type: ignore[arg-type]
        return True
    if type(left) in (Timestamp, Duration, TypeValue, UInt, int, bool, float, str, bytes) or (
        left is None
    ):
        return bool(left == right)
    return False


# ---------------------------------------------------------------------------
# The corpus test


def _case_param(case: Case) -> Any:
    return pytest.param(case, id=case.id)


@pytest.mark.parametrize("case", [_case_param(case) for case in CASES])
def test_corpus_case(case: Case) -> None:
    HOST_ACCESS_LOG.clear()
    result, _steps, problems = run_case(case)

    if result.outcome in ("hang", "crash"):
        pass  # already in problems
    elif result.outcome not in case.expect:
        problems.append(f"expected {' or '.join(case.expect)}, got {_describe(result)}")
    elif result.outcome == "value" and not cel_same(result.value, case.value):
        problems.append(f"expected value {_short(case.value)}, got {_short(result.value)}")
    if result.error is not None and result.outcome in ("compile_error", "eval_error"):
        problems += _error_problems(result.error)
    if HOST_ACCESS_LOG:
        problems.append(f"host object protocol was used: {HOST_ACCESS_LOG[:10]}")
    if problems:
        pytest.fail(
            f"[{case.category}] {case.id}: {_preview(case.source())}\n  - "
            + "\n  - ".join(problems),
            pytrace=False,
        )


def test_corpus_shape() -> None:
    """The corpus covers every category with the minimum size the issue sets."""
    assert len(CASES) >= 60
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))
    counts = dict.fromkeys(CATEGORIES, 0)
    for case in CASES:
        counts[case.category] += 1
    assert all(counts.values()), counts
    sources = {case.id: case.source() for case in CASES}
    required = {
        "10 MB string literal": any(len(s) >= 10_000_000 and s[0] == '"' for s in sources.values()),
        "10,000-element list": "huge-literal-10k-list" in sources,
        "10^7-digit int": "huge-literal-1e7-digit-int" in sources,
        "1e999999": "1e999999" in sources.values(),
        "10,000 nested parens": "deep-parens-10k" in sources,
        "100,000 !": "deep-not-100k" in sources,
        "100,000 -": "deep-neg-100k" in sources,
        "100,000-term ||": "chain-or-100k" in sources,
        "100,000-term +": "chain-plus-100k" in sources,
        "a.b.c x 10,000": "deep-select-10k" in sources,
    }
    assert all(required.values()), required


# ---------------------------------------------------------------------------
# Sandbox canaries

_CALLS: list[str] = []
_WINDOW: list[str] = []  # "" when closed, else "compile" / "evaluate"


_IN_SENTINEL: list[bool] = [False]


def _caller() -> str:
    frame = sys._getframe(2)
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


def _sentinel(
    name: str, original: Callable[..., Any], *, refuse: bool, windows: frozenset[str]
) -> Callable[..., Any]:
    def sentinel(*args: Any, **kwargs: Any) -> Any:
        window = _WINDOW[0] if _WINDOW else ""
        if window in windows and not _IN_SENTINEL[0]:
            _IN_SENTINEL[0] = True  # the bookkeeping below raises audit events of its own
            try:
                _CALLS.append(f"{window}: {name}{_short(args)[:120]} from {_caller()}")
            finally:
                _IN_SENTINEL[0] = False
            if refuse:
                raise PermissionError(f"sandbox canary: {name} refused")
        return original(*args, **kwargs)

    return sentinel


_AUDIT_EVENTS: list[str] = []
# Events the compile window may legitimately raise: the compiler turns the
# generated source into a code object and executes the module body once.
_COMPILE_ALLOWED: Final = frozenset({"compile", "exec"})
# Harmless anywhere: id() is audited because it exposes addresses, and the
# compiler keys its constant pool by id().
_ALWAYS_ALLOWED: Final = frozenset({"builtins.id"})


def _audit(event: str, args: tuple[object, ...]) -> None:
    if not _WINDOW or not _WINDOW[0] or _IN_SENTINEL[0] or event in _ALWAYS_ALLOWED:
        return
    if _WINDOW[0] == "compile" and event in _COMPILE_ALLOWED:
        return
    _AUDIT_EVENTS.append(f"{_WINDOW[0]}: audit {event} {_short(args)[:160]}")


_AUDIT_INSTALLED: list[bool] = []


def _install_audit_hook() -> None:
    # Audit hooks cannot be removed; this one is inert outside a window.
    if not _AUDIT_INSTALLED:
        sys.addaudithook(_audit)
        _AUDIT_INSTALLED.append(True)


@contextmanager
def _window(name: str) -> Iterator[None]:
    _WINDOW[:] = [name]
    try:
        yield
    finally:
        _WINDOW[:] = [""]


@pytest.fixture
def sentinels(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    _install_audit_hook()
    _CALLS.clear()
    _AUDIT_EVENTS.clear()
    both = frozenset({"compile", "evaluate"})
    evaluate = frozenset({"evaluate"})  # compiling legitimately compiles and execs
    observed = [
        (builtins, "__import__", False, both),
        (builtins, "open", False, both),
        (io, "open", False, both),
        (builtins, "eval", False, both),
        (builtins, "exec", False, evaluate),
        (builtins, "compile", False, evaluate),
        (builtins, "input", True, both),
        (builtins, "breakpoint", True, both),
        (os, "system", True, both),
        (os, "popen", True, both),
        (os, "open", True, both),
        (os, "execv", True, both),
        (os, "execve", True, both),
        (os, "execvp", True, both),
        (os, "fork", True, both),
        (os, "posix_spawn", True, both),
        (os, "spawnv", True, both),
        (os, "listdir", True, both),
        (os, "scandir", True, both),
        (os, "remove", True, both),
        (subprocess, "Popen", True, both),
        (subprocess, "run", True, both),
        (subprocess, "check_output", True, both),
        (socket, "socket", True, both),
        (socket, "create_connection", True, both),
        (socket, "getaddrinfo", True, both),
    ]
    for module, name, refuse, windows in observed:
        original = getattr(module, name)
        label = f"{getattr(module, '__name__', module)}.{name}"
        monkeypatch.setattr(
            module, name, _sentinel(label, original, refuse=refuse, windows=windows)
        )
    _WINDOW[:] = [""]
    yield
    _WINDOW[:] = [""]


def _quiet_run(case: Case, *, canary: bool) -> Program | None:
    """Compile and evaluate once, ignoring the outcome (test_corpus_case
    judges it); with ``canary`` the calls are inside the observed windows."""
    source = case.source()
    env = case.env()
    activation = case.make_activation()
    try:
        with cpu_deadline(2.0):
            if canary:
                with _window("compile"):
                    program = cel.compile(source, env)
            else:
                program = cel.compile(source, env)
    except (Exception, Hang):
        return None
    try:
        with cpu_deadline(2.0):
            if canary:
                with _window("evaluate"):
                    program.evaluate(activation)
            else:
                program.evaluate(activation)
    except (Exception, Hang):
        pass
    return program


def test_sandbox_canary(sentinels: None) -> None:
    """No corpus case imports, opens, executes, spawns or connects anything
    while compiling or evaluating, nor touches a host object's protocol."""
    HOST_ACCESS_LOG.clear()
    for case in CASES:  # warm-up: lazy imports and caches (time zones) load here
        _quiet_run(case, canary=False)
    HOST_ACCESS_LOG.clear()
    per_case: dict[str, list[str]] = {}
    for case in CASES:
        before = (len(_CALLS), len(_AUDIT_EVENTS), len(HOST_ACCESS_LOG))
        _quiet_run(case, canary=True)
        found = _CALLS[before[0] :] + _AUDIT_EVENTS[before[1] :] + HOST_ACCESS_LOG[before[2] :]
        if found:
            per_case[case.id] = found
    assert not per_case, "\n".join(
        f"{case_id}: {found[:5]}" for case_id, found in sorted(per_case.items())
    )


def test_sentinels_detect_a_call(sentinels: None) -> None:
    """The canary itself works: a call inside a window is recorded."""
    with _window("evaluate"):
        with suppress(PermissionError):
            os.system("true")
        with open(os.devnull, "rb"):
            pass
    assert any("os.system" in call for call in _CALLS)
    assert any("open" in event for event in _AUDIT_EVENTS)


# ---------------------------------------------------------------------------
# Generated source: expression identifiers never become Python names

_CEL_STRING: Final = re.compile(
    r"""(?:[bB][rR]?|[rR][bB]?)?(?:\"\"\"[\s\S]*?\"\"\"|'''[\s\S]*?'''"""
    r"""|"(?:\\.|[^"\\\n\r])*"|'(?:\\.|[^'\\\n\r])*')"""
)
_CEL_COMMENT: Final = re.compile(r"//[^\n]*")
_CEL_IDENT: Final = re.compile(r"(?<![0-9A-Za-z_])[A-Za-z_][A-Za-z0-9_]*")
_CEL_WORDS: Final = frozenset({"true", "false", "null", "in"})
# Names the generated code must never contain, whatever the expression.
_FORBIDDEN_PY_NAMES: Final = frozenset(
    {
        "eval",
        "exec",
        "compile",
        "open",
        "getattr",
        "setattr",
        "delattr",
        "globals",
        "locals",
        "vars",
        "dir",
        "__import__",
        "__builtins__",
        "breakpoint",
        "input",
        "print",
        "type",
        "object",
        "super",
        "memoryview",
        "help",
        "exit",
        "quit",
    }
)
# Harmless expressions whose generated code shows the generator's own names.
# Their identifiers (zq_*) are subtracted, so a generator that leaked them
# would not whitelist its own leak.
_BASELINE: Final = (
    ("1", {}),
    ("zq_x", {"zq_x": INT}),
    ("zq_x + 1", {"zq_x": INT}),
    ("zq_x.zq_y", {"zq_x": cel.MapType(cel.STRING, INT)}),
    ("has(zq_x.zq_y)", {"zq_x": cel.DYN}),
    ("zq_x || zq_y", {"zq_x": cel.DYN, "zq_y": cel.DYN}),
    ("zq_x && zq_y", {"zq_x": cel.BOOL, "zq_y": cel.BOOL}),
    ("!zq_x", {"zq_x": cel.DYN}),
    ("-zq_x", {"zq_x": cel.DYN}),
    ("zq_x ? 1 : 2", {"zq_x": cel.DYN}),
    ("[1, 2].map(zq_q, zq_q * 2)", {}),
    ("[1, 2].map(zq_q, zq_q > 1, zq_q)", {}),
    ("[1, 2].all(zq_q, zq_q > 0)", {}),
    ("[1, 2].exists(zq_q, zq_q > 0)", {}),
    ("[1, 2].exists_one(zq_q, zq_q > 0)", {}),
    ("[1, 2].filter(zq_q, zq_q > 0)", {}),
    ("zq_x.map(zq_q, zq_x.map(zq_r, zq_q + zq_r))", {"zq_x": cel.DYN}),
    ('{"a": 1, zq_x: 2}', {"zq_x": cel.STRING}),
    ("size(zq_x)", {"zq_x": cel.DYN}),
    ("zq_x[0]", {"zq_x": cel.DYN}),
    ('zq_x.matches("a")', {"zq_x": cel.STRING}),
    ("1.5 / 0.0", {}),
    ("1u", {}),
    ('timestamp("2000-01-01T00:00:00Z")', {}),
)


def _cel_identifiers(source: str) -> set[str]:
    code = _CEL_COMMENT.sub(" ", _CEL_STRING.sub(" ", source))
    return {name for name in _CEL_IDENT.findall(code) if name not in _CEL_WORDS}


def _python_names(python_source: str) -> tuple[set[str], set[str]]:
    """(names, attributes) of generated code: Name ids, argument names and
    defined function names; attribute names of every ``x.attr``."""
    tree = pyast.parse(python_source)
    names: set[str] = set()
    attributes: set[str] = set()
    for node in pyast.walk(tree):
        if isinstance(node, pyast.Name):
            names.add(node.id)
        elif isinstance(node, pyast.arg):
            names.add(node.arg)
        elif isinstance(node, pyast.FunctionDef | pyast.AsyncFunctionDef | pyast.ClassDef):
            names.add(node.name)
        elif isinstance(node, pyast.Attribute):
            attributes.add(node.attr)
        elif isinstance(node, pyast.ExceptHandler) and node.name:
            names.add(node.name)
    return names, attributes


def _shape(name: str) -> str:
    """Generator names differ only in a numeric suffix (_c3, _v17)."""
    return re.sub(r"\d+$", "#", name)


def _python_source(program: Program) -> str | None:
    return getattr(program, "python_source", None)


def _compiled_programs() -> Iterator[tuple[Case, Program]]:
    for case in CASES:
        source = case.source()
        if len(source) > 100_000:
            continue  # every such case is rejected; judged by test_corpus_case
        try:
            with cpu_deadline(2.0):
                program = cel.compile(source, case.env())
        except (Exception, Hang):
            continue
        yield case, program


def _baseline_names() -> tuple[set[str], set[str]]:
    names: set[str] = set()
    attributes: set[str] = set()
    for source, variables in _BASELINE:
        python_source = _python_source(cel.compile(source, Env(variables=variables)))
        if python_source is None:
            pytest.skip("Program does not expose python_source")
        more_names, more_attributes = _python_names(python_source)
        own = {name for name in _cel_identifiers(source) if name.startswith("zq_")}
        names |= more_names - own
        attributes |= more_attributes - own
    return names, attributes


def test_generated_source_never_names_expression_identifiers() -> None:
    baseline_names, baseline_attributes = _baseline_names()
    baseline_shapes = {_shape(name) for name in baseline_names}
    problems: list[str] = []
    for case, program in _compiled_programs():
        python_source = _python_source(program)
        assert python_source is not None
        names, attributes = _python_names(python_source)
        identifiers = _cel_identifiers(case.source())
        forbidden = names & _FORBIDDEN_PY_NAMES
        if forbidden:
            problems.append(f"{case.id}: generated code names {sorted(forbidden)}")
        leaked = {
            name
            for name in identifiers & names
            if _shape(name) not in baseline_shapes  # same-named helpers: see helper-names cases
        }
        if leaked:
            problems.append(f"{case.id}: identifiers emitted as Python names: {sorted(leaked)}")
        leaked_attributes = (identifiers & attributes) - baseline_attributes
        dunders = {a for a in attributes if a.startswith("__")} - baseline_attributes
        if leaked_attributes or dunders:
            problems.append(
                f"{case.id}: generated attribute access .{sorted(leaked_attributes | dunders)}"
            )
    assert not problems, "\n".join(problems)


_CEL_IDENTIFIER: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_CEL_RESERVED: Final = frozenset(
    {
        "true",
        "false",
        "null",
        "in",
        "as",
        "break",
        "const",
        "continue",
        "else",
        "for",
        "function",
        "if",
        "import",
        "let",
        "loop",
        "package",
        "namespace",
        "return",
        "var",
        "void",
        "while",
    }
)
# Type identifiers are values in CEL (``int`` is ``type(1)``).
_CEL_TYPE_NAMES: Final = frozenset(
    {"int", "uint", "double", "bool", "string", "bytes", "list", "map", "type", "null_type", "dyn"}
)


def test_generator_names_are_not_reachable() -> None:
    """Every Python name the generator emitted for any corpus program is, to
    an expression, an unknown identifier -- and a declared variable or
    comprehension variable of that name behaves as an ordinary CEL name."""
    names: set[str] = set()
    baseline_names, _ = _baseline_names()
    names |= baseline_names
    for _case, program in _compiled_programs():
        python_source = _python_source(program)
        assert python_source is not None
        names |= _python_names(python_source)[0]
    candidates = sorted(
        name
        for name in names
        if _CEL_IDENTIFIER.match(name) and name not in _CEL_RESERVED | _CEL_TYPE_NAMES
    )
    assert candidates
    problems: list[str] = []
    for name in candidates:
        try:
            cel.compile(name)
            problems.append(f"{name}: compiles as an undeclared identifier")
        except CompileError:
            pass
        try:
            unchecked = cel.compile(name, Env(disable_check=True))
            value = unchecked.evaluate({})
            problems.append(f"{name}: unchecked evaluates to {_short(value)}")
        except (CompileError, EvalError):
            pass
        except Exception as exc:
            problems.append(f"{name}: unchecked raised {type(exc).__name__}: {exc}")
        try:
            declared = cel.compile(f"{name} + 1", Env(variables={name: INT}))
            value = declared.evaluate({name: 41})
            if not cel_same(value, 42):
                problems.append(f"{name}: declared variable evaluates to {_short(value)}")
            comprehension = cel.compile(f"[1, 2].map({name}, {name} + 1)").evaluate({})
            if not cel_same(comprehension, [2, 3]):
                problems.append(f"{name}: comprehension variable gives {_short(comprehension)}")
        except Exception as exc:
            problems.append(f"{name}: as a declared name raised {type(exc).__name__}: {exc}")
    assert not problems, "\n".join(problems)
