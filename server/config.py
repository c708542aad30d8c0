"""Server settings: command-line flags, each with an ``ARBITER_*`` environment variable as its default.

Precedence: flag > environment variable > built-in default.

=====================  ============================  ====================  ==============================================
flag                   environment variable          default               meaning
=====================  ============================  ====================  ==============================================
``--policies``         ``ARBITER_POLICIES``          (required)            policy set directory
``--listen``           ``ARBITER_LISTEN``            ``127.0.0.1:50051``   gRPC address (``0.0.0.0:50051`` in a container)
``--redis-url``        ``ARBITER_REDIS_URL``         empty                 Redis URL; empty = embedded MemoryStore
``--log-level``        ``ARBITER_LOG_LEVEL``         ``info``              debug, info, warning, error
``--grace-period``     ``ARBITER_GRACE_PERIOD``      ``10s``               time in-flight calls get on SIGTERM/SIGINT
``--idempotency-ttl``  ``ARBITER_IDEMPOTENCY_TTL``   ``24h``               how long Decide/Check results replay
``--metrics-port``     ``ARBITER_METRICS_PORT``      ``0`` (off)           Prometheus ``/metrics`` HTTP port
``--store-timeout``    ``ARBITER_STORE_TIMEOUT``     ``250ms``             store call bound when the caller set no deadline
=====================  ============================  ====================  ==============================================

Durations accept the policy syntax (``250ms``, ``10s``, ``24h``, ``1h30m``)
or a plain number of seconds (``2.5``).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from arbiter.policies.compiled import parse_duration_ms

__all__ = ["DEFAULT_LISTEN", "Settings", "add_arguments", "parse_seconds", "settings_from_args"]

DEFAULT_LISTEN: Final = "127.0.0.1:50051"
_LEVELS: Final = ("debug", "info", "warning", "error", "critical")


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything ``arbiter serve`` needs to run; immutable."""

    policies: str
    listen: str = DEFAULT_LISTEN
    redis_url: str = ""
    log_level: str = "info"
    grace_period_s: float = 10.0
    idempotency_ttl_s: float = 24 * 3600.0
    metrics_port: int = 0
    store_timeout_s: float = 0.25


def parse_seconds(text: str) -> float:
    """``"2.5"`` -> 2.5; ``"250ms"``, ``"10s"``, ``"24h"`` -> seconds. ``ValueError`` if invalid."""
    stripped = text.strip()
    try:
        value = float(stripped)
    except ValueError:
        value = parse_duration_ms(stripped) / 1000.0
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"invalid duration `{text}`")
    return value


def _duration(text: str) -> float:
    try:
        return parse_seconds(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"invalid port `{text}`") from exc
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range: {port}")
    return port


def _listen(text: str) -> str:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got `{text}`")
    return text


def add_arguments(parser: argparse.ArgumentParser, env: Mapping[str, str] | None = None) -> None:
    """Add the server flags to ``parser``, with defaults read from ``env`` (``os.environ``)."""
    env = os.environ if env is None else env

    def default(name: str, fallback: str) -> str:
        return env.get(f"ARBITER_{name}", fallback)

    policies = env.get("ARBITER_POLICIES")
    parser.add_argument(
        "--policies",
        metavar="DIR",
        default=policies,
        required=policies is None,
        help="policy set directory [ARBITER_POLICIES]",
    )
    parser.add_argument(
        "--listen",
        metavar="HOST:PORT",
        type=_listen,
        default=default("LISTEN", DEFAULT_LISTEN),
        help=f"gRPC listen address [ARBITER_LISTEN] (default {DEFAULT_LISTEN})",
    )
    parser.add_argument(
        "--redis-url",
        metavar="URL",
        default=default("REDIS_URL", ""),
        help="Redis URL; empty = embedded in-memory store [ARBITER_REDIS_URL]",
    )
    parser.add_argument(
        "--log-level",
        choices=_LEVELS,
        type=str.lower,
        default=default("LOG_LEVEL", "info").lower(),
        help="log level [ARBITER_LOG_LEVEL] (default info)",
    )
    parser.add_argument(
        "--grace-period",
        metavar="DURATION",
        type=_duration,
        default=default("GRACE_PERIOD", "10s"),
        help="how long in-flight calls may finish on SIGTERM/SIGINT [ARBITER_GRACE_PERIOD] (default 10s)",
    )
    parser.add_argument(
        "--idempotency-ttl",
        metavar="DURATION",
        type=_duration,
        default=default("IDEMPOTENCY_TTL", "24h"),
        help="how long a Decide/Check request_id replays [ARBITER_IDEMPOTENCY_TTL] (default 24h)",
    )
    parser.add_argument(
        "--metrics-port",
        metavar="PORT",
        type=_port,
        default=default("METRICS_PORT", "0"),
        help="serve Prometheus metrics on this HTTP port; 0 = off [ARBITER_METRICS_PORT]",
    )
    parser.add_argument(
        "--store-timeout",
        metavar="DURATION",
        type=_duration,
        default=default("STORE_TIMEOUT", "250ms"),
        help="bound on a store call when the caller set no deadline [ARBITER_STORE_TIMEOUT]",
    )


def settings_from_args(args: argparse.Namespace) -> Settings:
    """The :class:`Settings` of a namespace parsed with :func:`add_arguments`."""
    return Settings(
        policies=args.policies,
        listen=args.listen,
        redis_url=args.redis_url,
        log_level=args.log_level,
        grace_period_s=args.grace_period,
        idempotency_ttl_s=args.idempotency_ttl,
        metrics_port=args.metrics_port,
        store_timeout_s=args.store_timeout,
    )
