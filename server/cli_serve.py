"""`arbiter serve`: run the gRPC decision server (flags and ARBITER_* variables in :mod:`server.config`)."""

from __future__ import annotations

import argparse
import logging

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``serve`` command to ``arbiter`` (see ``server.cli.CommandGroup``)."""
    from arbiter.server.config import add_arguments

    serve = subparsers.add_parser(
        "serve",
        help="run the gRPC decision server",
        description=(
            "Serve arbiter.v1.DecisionService, grpc.health.v1 and server reflection. "
            "Every flag has an ARBITER_* environment variable (shown in brackets). "
            "SIGTERM/SIGINT stop gracefully."
        ),
    )
    add_arguments(serve)
    serve.set_defaults(handler=_serve_command)


def _serve_command(args: argparse.Namespace) -> int:
    from arbiter.server.config import settings_from_args

    settings = settings_from_args(args)
    level = getattr(logging, settings.log_level.upper(), None)
    if not isinstance(level, int):
        logging.getLogger("arbiter").error("invalid log level %r", settings.log_level)
        return 2
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # gRPC's own debug chatter (one line per call) is not ours to show.
    logging.getLogger("grpc").setLevel(max(level, logging.INFO))
    from arbiter.server.app import run

    return run(settings)
