"""The ``arbiter`` command: dispatches to one module per command group.

``admin`` (:mod:`.admin`: a running server's AdminService), ``serve`` (:mod:`.serve`), ``policy`` (:mod:`.policy`: validate, schema,
test, explain, bench, impact), ``auth`` (:mod:`.auth`), ``state`` (:mod:`.state`:
the shared state in Redis), ``decisions`` (:mod:`.decisions`: tail, export
the decision log), ``replay`` (:mod:`.replay`) and ``cel`` (:mod:`arbiter.server.cli_cel`:
conformance, eval).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import metadata
from typing import Protocol

from arbiter.server import cli_cel
from arbiter.server.cli import admin, auth, decisions, policy, replay, serve, state, worker

__all__ = ["COMMAND_GROUPS", "CommandGroup", "build_parser", "main"]


class CommandGroup(Protocol):
    """A module adding one top-level command (``arbiter cel ...``).

    ``register`` adds a parser to ``subparsers`` and sets a ``handler``
    default on every runnable command: ``handler(args) -> exit code``
    (0 ok, 1 the command's check failed, 2 usage error). Groups import heavy
    dependencies (grpc, redis) inside their handlers, so ``arbiter --help``
    stays fast and works without the server extras.
    """

    def register(self, subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None: ...


# Add a group here: a module of this package with ``register``, imported above.
COMMAND_GROUPS: tuple[CommandGroup, ...] = (
    admin,
    auth,
    cli_cel,
    decisions,
    policy,
    replay,
    serve,
    state,
    worker,
)


def _version() -> str:
    try:
        return metadata.version("arbiter-decisions")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="arbiter", description="Arbiter decision service.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (the console script exits with it)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits: 0 for --help/--version, 2 for usage errors
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_usage(sys.stderr)
        return 2
    return int(handler(args))
