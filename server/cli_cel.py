"""``arbiter cel ...``: the CEL conformance runner and a one-off expression evaluator.

The conformance harness is test tooling, not part of the installed product: it
lives in ``tools/cel_conformance.py`` of a source checkout and is loaded from
there on demand (:func:`load_harness`); without it ``arbiter cel conformance``
fails with a message saying so. ``arbiter cel eval`` needs nothing but the
compiler.
"""

from __future__ import annotations

import argparse
import base64
import importlib.util
import json
import math
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

from arbiter.policies import cel

__all__ = [
    "HARNESS_PATH",
    "HarnessUnavailable",
    "load_harness",
    "register",
    "run_conformance",
    "run_eval",
]

_Handler = Callable[[argparse.Namespace], int]

# Where the harness sits in a source checkout (server/ is one level below the root).
HARNESS_PATH = Path(__file__).resolve().parents[1] / "tools" / "cel_conformance.py"
_HARNESS_MODULE = "cel_conformance"


class HarnessUnavailable(Exception):
    """The conformance harness is not there (an installed wheel, not a checkout)."""


def load_harness() -> ModuleType:
    """The conformance harness module (imported once, shared with the tests)."""
    loaded = sys.modules.get(_HARNESS_MODULE)
    if loaded is not None:
        return loaded
    path = HARNESS_PATH
    if not path.is_file():
        raise HarnessUnavailable(
            f"the CEL conformance harness is not installed ({path} not found); "
            "run `arbiter cel conformance` from a source checkout of Arbiter"
        )
    spec = importlib.util.spec_from_file_location(_HARNESS_MODULE, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[_HARNESS_MODULE] = module  # before exec: its dataclasses resolve their module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[_HARNESS_MODULE]
        raise
    return module


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = subparsers.add_parser(
        "cel", help="CEL tools: conformance suite, evaluate an expression"
    )
    group.set_defaults(handler=_print_usage(group))
    commands = group.add_subparsers(title="commands", metavar="COMMAND")

    suite = commands.add_parser(
        "conformance",
        help="run CEL conformance cases (JSON files) and report pass rates",
        description=(
            "Runs every *.json file of DIR (format: shared/conformance/cel/README.md). "
            "Prints 'FILE passed=N failed=N skipped=N' per file, then "
            "'TOTAL passed=N failed=N skipped=N rate=R' with R = passed / (passed + failed). "
            "Exit 1 when a rate is below its minimum, 2 on usage errors."
        ),
    )
    suite.add_argument("directory", type=Path, metavar="DIR", help="directory of suite files")
    suite.add_argument(
        "--min-rate", type=_rate, default=0.0, metavar="R", help="minimum total rate"
    )
    suite.add_argument(
        "--file-min-rate", type=_rate, default=0.0, metavar="R", help="minimum rate of each file"
    )
    suite.add_argument(
        "--strict-errors",
        action="store_true",
        help="only an evaluation error satisfies an error expectation (no compile-time rejection)",
    )
    suite.add_argument(
        "-v", "--verbose", action="store_true", help="list every failure and skipped case"
    )
    suite.set_defaults(handler=run_conformance)

    evaluate = commands.add_parser(
        "eval",
        help="compile and evaluate one expression (debugging aid)",
        description=(
            "Variables are declared dyn. A --var value is JSON; a one-key object in the "
            'conformance encoding ({"uint": 3}, {"timestamp": "2024-01-01T00:00:00Z"}) '
            "is decoded as such."
        ),
    )
    evaluate.add_argument("expression")
    evaluate.add_argument(
        "--var", action="append", default=[], metavar="NAME=JSON", help="bind a variable"
    )
    evaluate.add_argument("--unchecked", action="store_true", help="skip the type checker")
    evaluate.set_defaults(handler=run_eval)


def _print_usage(parser: argparse.ArgumentParser) -> _Handler:
    def handler(_args: argparse.Namespace) -> int:
        parser.print_usage(sys.stderr)
        return 2

    return handler


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"a rate is between 0 and 1, got {text}")
    return value


def _error(message: str) -> int:
    print(f"arbiter cel: error: {message}", file=sys.stderr)
    return 2


# --------------------------------------------------------------------------
# conformance


def _load_suite(directory: Path) -> list[tuple[str, list[Mapping[str, object]]]] | str:
    """The parsed files of ``directory``, or an error message."""
    if not directory.is_dir():
        return f"not a directory: {directory}"
    paths = sorted(directory.glob("*.json"))
    if not paths:
        return f"no *.json conformance files in {directory}"
    suite = []
    for path in paths:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            return f"{path}: {exc}"
        tests = document.get("tests") if isinstance(document, dict) else None
        if not isinstance(tests, list) or not all(isinstance(case, dict) for case in tests):
            return f'{path}: expected {{"tests": [case, ...]}}'
        suite.append((path.name, tests))
    return suite


def _format_rate(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:.3f}"


def _indent(text: str, first: str, rest: str | None = None) -> str:
    """``first`` before the first line; ``rest`` (blanks of the same width) before the others."""
    lines = text.rstrip("\n").splitlines() or [""]
    other = " " * len(first) if rest is None else rest
    return "\n".join((first if i == 0 else other) + line for i, line in enumerate(lines))


def _print_details(harness: ModuleType, results: list[Any], out: TextIO) -> None:
    status = harness.CaseStatus
    for result in results:
        if result.status is status.FAILED:
            print(f"  FAILED {result.id}: {result.reason}", file=out)
            print(_indent(result.expr, "    expr:     "), file=out)
            if result.expected:
                print(_indent(result.expected, "    expected: "), file=out)
            if result.got:
                print(_indent(result.got, "    got:      "), file=out)
            if result.traceback:
                print(_indent(result.traceback, "    | ", "    | "), file=out)
        elif result.status is status.SKIPPED:
            print(f"  SKIPPED {result.id}: {result.reason}", file=out)
        elif result.note.startswith("rejected at compile time"):
            print(f"  NOTE {result.id}: {result.note}", file=out)


def run_conformance(args: argparse.Namespace) -> int:
    try:
        harness = load_harness()
    except HarnessUnavailable as exc:
        return _error(str(exc))
    CaseStatus = harness.CaseStatus
    suite = _load_suite(args.directory)
    if isinstance(suite, str):
        return _error(suite)
    out = sys.stdout
    reports: list[Any] = []
    for name, cases in suite:
        report = harness.run_file(name, cases, strict_errors=args.strict_errors)
        reports.append(report)
        counts = " ".join(f"{status}={report.count(status)}" for status in CaseStatus)
        print(f"{name} {counts}", file=out)
        if args.verbose:
            _print_details(harness, report.results, out)
        out.flush()

    totals = {status: sum(report.count(status) for report in reports) for status in CaseStatus}
    total_rate = harness.pass_rate(totals[CaseStatus.PASSED], totals[CaseStatus.FAILED])
    counts = " ".join(f"{status}={count}" for status, count in totals.items())
    print(f"TOTAL {counts} rate={_format_rate(total_rate)}", file=out)

    problems = []
    if (total_rate or 0.0) < args.min_rate:
        problems.append(f"total rate {_format_rate(total_rate)} < {args.min_rate:.3f}")
    for report in reports:
        rate = report.rate
        if rate is not None and rate < args.file_min_rate:
            problems.append(f"{report.name} rate {rate:.3f} < {args.file_min_rate:.3f}")
    for problem in problems:
        print(f"arbiter cel conformance: {problem}", file=sys.stderr)
    return 1 if problems else 0


# --------------------------------------------------------------------------
# eval


def _decode(kind: str, raw: Any) -> object:
    """One value in the conformance encoding: ``{"uint": 3}``, ``{"timestamp": "..."}``."""
    if kind == "null":
        return None
    if kind in ("bool", "string"):
        return raw
    if kind == "int":
        return int(raw)
    if kind == "uint":
        return cel.UInt(int(raw))
    if kind == "double":
        return float(raw)  # also "NaN", "Infinity", "-Infinity"
    if kind == "bytes":
        return base64.b64decode(raw)
    if kind == "list":
        return [_from_json(item) for item in raw]
    if kind == "map":
        return {_from_json(key): _from_json(value) for key, value in raw}
    if kind in ("timestamp", "duration"):
        return _convert(kind, raw)  # parsed by CEL's own timestamp() / duration()
    return cel.TypeValue(raw)  # "type"


def _convert(function: str, value: object) -> object:
    """``function(value)`` evaluated by CEL (``timestamp("...")``, ``string(ts)``)."""
    env = cel.Env(variables={"v": cel.DYN})
    return cel.compile(f"{function}(v)", env).evaluate({"v": value})


_ENCODED_KINDS = frozenset(
    {"null", "bool", "int", "uint", "double", "string", "bytes", "list", "map", "type"}
    | {"timestamp", "duration"}
)


def _from_json(value: object) -> object:
    """Plain JSON as CEL values; a one-key object in the conformance encoding is decoded."""
    if isinstance(value, dict):
        if len(value) == 1:
            ((kind, raw),) = value.items()
            if kind in _ENCODED_KINDS:
                return _decode(kind, raw)
        return {key: _from_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_from_json(item) for item in value]
    return value


def render(value: object) -> str:
    """A CEL value as CEL source text (``1u``, ``b"\\x00"``, ``timestamp("...")``)."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if type(value) is cel.UInt:
        return f"{int(value)}u"
    if type(value) is float:
        if math.isfinite(value):
            return repr(value)
        return f'double("{"NaN" if math.isnan(value) else value}")'.replace("inf", "Infinity")
    if type(value) is str:
        return json.dumps(value, ensure_ascii=False)
    if type(value) is bytes:
        printable = (
            chr(c) if 0x20 <= c < 0x7F and c not in b'"\\' else f"\\x{c:02x}" for c in value
        )
        return 'b"' + "".join(printable) + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(map(render, value)) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{render(k)}: {render(v)}" for k, v in value.items()) + "}"
    if type(value) is cel.Timestamp:
        return f'timestamp("{_convert("string", value)}")'
    if type(value) is cel.Duration:
        return f'duration("{_convert("string", value)}")'
    if type(value) is cel.TypeValue:
        return value.name
    return repr(value)


def run_eval(args: argparse.Namespace) -> int:
    activation: dict[str, object] = {}
    for binding in args.var:
        name, sep, text = binding.partition("=")
        if not sep or not name:
            return _error(f"--var expects NAME=JSON, got {binding!r}")
        try:
            activation[name] = _from_json(json.loads(text))
        except (ValueError, TypeError, cel.EvalError) as exc:
            return _error(f"--var {name}: {exc}")
    env = cel.Env(variables=dict.fromkeys(activation, cel.DYN), disable_check=args.unchecked)
    try:
        program = cel.compile(args.expression, env)
        value = program.evaluate(activation)
    except cel.CompileError as exc:
        print(exc, file=sys.stderr)
        return 1
    except cel.EvalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{render(value)}  # {program.result_type}")
    return 0
