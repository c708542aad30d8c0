"""`arbiter policy validate|schema`: check a policy directory from the command line.

Wired into ``arbiter`` by :func:`register` (see ``server.cli.CommandGroup``):
each sub-command sets ``handler(args) -> int`` (0 ok, 1 the check failed,
2 usage / unreadable input) on the parsed namespace.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TextIO

from arbiter.policies import Diagnostic, check_policy, json_schema, load_directory

__all__ = ["main", "register", "validate"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``policy`` command group (``validate``, ``schema``) to ``arbiter``."""
    policy = subparsers.add_parser("policy", help="work with policy sets")
    commands = policy.add_subparsers(dest="policy_command", metavar="COMMAND", required=True)
    # test / explain / bench live with the engine's CLI code.
    from arbiter.server import cli_policy_engine

    cli_policy_engine.add_commands(commands)

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

    schema_cmd = commands.add_parser(
        "schema", help="print the JSON Schema of a policy file (for editors)"
    )
    schema_cmd.set_defaults(handler=_schema_command)


def _validate_command(args: argparse.Namespace) -> int:
    return validate(args.directory, json_lines=args.json, strict=args.strict)


def _schema_command(args: argparse.Namespace) -> int:
    del args
    json.dump(json_schema(), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
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


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (``python -m server.cli_policy policy validate DIR``)."""
    parser = argparse.ArgumentParser(prog="arbiter")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
