"""``arbiter policy ...``: validate, schema, test, explain, bench, impact -- a policy set from the command line.

Wired into ``arbiter`` by :func:`register` (see
:class:`arbiter.server.cli.CommandGroup`): each sub-command sets
``handler(args) -> int`` (0 ok, 1 the check failed, 2 usage error /
unreadable input / the policy set does not compile). ``test``, ``explain``,
``bench`` and ``impact`` live in :mod:`.scenarios`, :mod:`.explain`, :mod:`.bench`
and :mod:`.impact`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING, Final, TextIO

from arbiter.policies import Diagnostic, check_policy, json_schema, load_directory, scenarios
from arbiter.server.cli.bench import bench_command
from arbiter.server.cli.explain import explain
from arbiter.server.cli.impact import add_impact
from arbiter.server.cli.scenarios import run_tests

__all__ = ["register", "validate"]

if TYPE_CHECKING:
    _Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]


def register(subparsers: _Subparsers) -> None:
    """Add the ``policy`` command group to ``arbiter``."""
    policy = subparsers.add_parser("policy", help="work with policy sets")
    commands = policy.add_subparsers(dest="policy_command", metavar="COMMAND", required=True)
    _add_validate(commands)
    schema_cmd = commands.add_parser(
        "schema",
        help="print the JSON Schema of a policy file (or a scenario file), or write both",
        description=(
            "Print the JSON Schema of a policy file (--scenarios: of a scenario file), or "
            "write both into DIR (--write DIR; `make schemas` writes schemas/)."
        ),
    )
    schema_cmd.add_argument(
        "--scenarios", action="store_true", help="the schema of a scenario file"
    )
    schema_cmd.add_argument("--write", metavar="DIR", help="write every schema file into DIR")
    schema_cmd.set_defaults(handler=_schema_command)
    _add_test(commands)
    _add_explain(commands)
    _add_bench(commands)
    add_impact(commands)


def _add_validate(commands: _Subparsers) -> None:
    validate_cmd = commands.add_parser(
        "validate",
        help="load and compile a policy directory; list every error and warning",
        description=(
            "Exit 0 when the set compiles (warnings are printed), 1 when it has errors, "
            "2 when the directory cannot be read."
        ),
    )
    validate_cmd.add_argument("directory", metavar="DIR")
    validate_cmd.add_argument("--json", action="store_true", help="print diagnostics as JSON lines")
    validate_cmd.add_argument("--strict", action="store_true", help="treat warnings as errors")
    validate_cmd.set_defaults(handler=_validate_command)


def _add_test(commands: _Subparsers) -> None:
    test_cmd = commands.add_parser(
        "test",
        help="run the scenario tests of a policy directory",
        description=(
            "Runs every scenario file of DIR (YAML under a tests/ directory, or named "
            "*_test.yaml / *.test.yaml). Prints each failure, then 'N passed, N failed'. "
            "Exit 0 when all pass, 1 on failures (or no scenarios), 2 when the set does not compile."
        ),
    )
    test_cmd.add_argument("directory", metavar="DIR")
    test_cmd.add_argument("-v", "--verbose", action="store_true", help="list passing scenarios too")
    test_cmd.set_defaults(handler=lambda a: run_tests(a.directory, verbose=a.verbose))


def _add_explain(commands: _Subparsers) -> None:
    explain_cmd = commands.add_parser(
        "explain",
        help="decide once from a request and a snapshot file; print the decision and its trace",
        description=(
            "REQUEST and SNAPSHOT are JSON or YAML files shaped like arbiter.policies.Request "
            "and arbiter.policies.CustomerSnapshot (instants in epoch ms). --now is RFC 3339 "
            "or epoch ms (default: the current time)."
        ),
    )
    explain_cmd.add_argument("directory", metavar="DIR")
    explain_cmd.add_argument("--request", required=True, metavar="FILE")
    explain_cmd.add_argument("--snapshot", required=True, metavar="FILE")
    explain_cmd.add_argument("--now", metavar="T")
    explain_cmd.add_argument("--json", action="store_true", help="print only the decision JSON")
    explain_cmd.set_defaults(
        handler=lambda a: explain(a.directory, a.request, a.snapshot, now=a.now, json_only=a.json)
    )


def _add_bench(commands: _Subparsers) -> None:
    bench_cmd = commands.add_parser(
        "bench",
        help="measure µs per decision on synthetic snapshots",
        description=(
            "Decides for generated customers (seeded, reproducible) and prints the median, "
            "p90 and p99 µs per decision with the explain trace off and on. With "
            "--synthetic-actions the policy set itself is generated (DIR is then optional)."
        ),
    )
    bench_cmd.add_argument("directory", metavar="DIR", nargs="?")
    bench_cmd.add_argument("--synthetic-actions", type=int, metavar="N")
    bench_cmd.add_argument("--synthetic-journeys", type=int, default=10, metavar="N")
    bench_cmd.add_argument("--customers", type=int, default=500, metavar="N")
    bench_cmd.add_argument("--rounds", type=int, default=5, metavar="N")
    bench_cmd.add_argument("--seed", type=int, default=7)
    bench_cmd.set_defaults(handler=bench_command)


def _validate_command(args: argparse.Namespace) -> int:
    return validate(args.directory, json_lines=args.json, strict=args.strict)


SCHEMA_FILES: Final = {
    "policy-file.schema.json": json_schema,
    "scenario-file.schema.json": scenarios.json_schema,
}


def schema_text(name: str) -> str:
    """The published text of schema file ``name`` (a key of :data:`SCHEMA_FILES`)."""
    return json.dumps(SCHEMA_FILES[name](), indent=2, sort_keys=True) + "\n"


def _schema_command(args: argparse.Namespace) -> int:
    if args.write:
        os.makedirs(args.write, exist_ok=True)
        for name in SCHEMA_FILES:
            with open(os.path.join(args.write, name), "w", encoding="utf-8") as out:
                out.write(schema_text(name))
        return 0
    sys.stdout.write(
        schema_text("scenario-file.schema.json" if args.scenarios else "policy-file.schema.json")
    )
    return 0


def _format(directory: str, diagnostic: Diagnostic, json_lines: bool) -> str:
    loc = diagnostic.location
    path = os.path.join(directory, loc.file)
    if json_lines:
        return json.dumps(
            {
                "file": path,
                "line": loc.line,
                "column": loc.column,
                "severity": diagnostic.severity,
                "message": diagnostic.message,
            }
        )
    return f"{path}:{loc.line}:{loc.column}: {diagnostic.severity}: {diagnostic.message}"


def validate(
    directory: str,
    *,
    json_lines: bool = False,
    strict: bool = False,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Validate ``directory``; print ``file:line:col: severity: message`` lines sorted
    by position to ``out`` and a summary to ``err``. Returns the exit code."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        loaded = load_directory(directory)
    except (OSError, UnicodeDecodeError) as exc:
        err.write(f"arbiter policy validate: cannot read {directory}: {exc}\n")
        return 2
    if not loaded.files:
        err.write(f"arbiter policy validate: no policy files (*.yaml) in {directory}\n")
        return 2
    policy, diagnostics = check_policy(loaded)
    for diagnostic in diagnostics:
        out.write(_format(directory, diagnostic, json_lines) + "\n")
    errors = sum(1 for d in diagnostics if d.severity == "error")
    warnings = len(diagnostics) - errors
    if policy is not None:
        err.write(
            f"{directory}: policy set {policy.id} version {policy.version} ({policy.digest}) "
            f"OK: {len(policy.journeys)} journeys, {len(policy.actions)} actions, "
            f"{len(loaded.files)} files; {warnings} warning(s)\n"
        )
    else:
        err.write(f"{directory}: {errors} error(s), {warnings} warning(s)\n")
    if errors or (strict and warnings):
        return 1
    return 0
