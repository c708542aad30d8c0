"""`arbiter serve`: run the gRPC decision server (flags and ARBITER_* variables in :mod:`server.config`)."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``serve`` command to ``arbiter`` (see :class:`arbiter.server.cli.CommandGroup`)."""
    from arbiter.server.config import add_arguments

    serve = subparsers.add_parser(
        "serve",
        help="run the gRPC decision server",
        description=(
            "Serve arbiter.v1.DecisionService, arbiter.v1.AdminService, grpc.health.v1 and "
            "server reflection. Every flag has an ARBITER_* environment variable (shown in "
            "brackets); both override the --config file. A non-loopback address needs TLS and "
            "authentication, or --insecure. SIGTERM/SIGINT stop gracefully; SIGHUP reloads "
            "certificates, JWKS and API keys (file changes do too). See docs/security.md."
        ),
    )
    add_arguments(serve)
    serve.set_defaults(handler=_serve_command)


def _serve_command(args: argparse.Namespace) -> int:
    import sys

    from arbiter.server.config import ConfigError, settings_from_args

    try:
        settings = settings_from_args(args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"arbiter serve: {problem}", file=sys.stderr)
        return 2
    from arbiter.server.logs import configure

    configure(settings.log_level, "json" if settings.log_format == "json" else "text")
    if settings.workers > 1:
        from arbiter.server.workers import run_workers

        return run_workers(settings)
    from arbiter.server.app import run

    return run(settings)
