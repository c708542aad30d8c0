"""Client settings shared by the sync and asyncio clients: deadlines, retry policy (as a gRPC service config), channel options."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_CHANNEL_OPTIONS",
    "MAX_GRPC_ATTEMPTS",
    "USER_AGENT",
    "RetryPolicy",
    "Timeouts",
    "service_config",
    "service_config_json",
]

USER_AGENT = "arbiter-client-python/0.1.0"

DEFAULT_CHANNEL_OPTIONS: tuple[tuple[str, int | str], ...] = (
    # Keepalive pings only while calls are in flight, at most once a minute:
    # gRPC servers by default answer more frequent or idle pings with GOAWAY
    # ("too_many_pings"). Detects dead connections behind load balancers.
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 0),
    # Reconnect quickly after a server restart. gRPC's default backoff grows
    # to 120 s, during which every call fails fast with UNAVAILABLE (and
    # decide() would answer with fallbacks).
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 5_000),
    ("grpc.primary_user_agent", USER_AGENT),
    # Retries are gRPC's, from the service config (see RetryPolicy); on by default, said anyway.
    ("grpc.enable_retries", 1),
)
"""Channel arguments the clients use unless overridden (see ``channel_options``)."""


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Default overall deadline per method, in seconds, retries included."""

    decide: float = 0.05
    check: float = 0.05
    track: float = 1.0
    update_profile: float = 1.0

    def __post_init__(self) -> None:
        for name in ("decide", "check", "track", "update_profile"):
            if not getattr(self, name) > 0:
                raise ValueError(f"Timeouts.{name} must be > 0")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries of UNAVAILABLE (and server-sent CANCELLED) calls, done by gRPC from the channel's service config.

    The client passes :func:`service_config` as the channel's
    ``grpc.service_config``: gRPC retries an attempt that failed with
    UNAVAILABLE, or CANCELLED sent by a stopping server (the very same
    request, so the same ``request_id``) up to
    ``max_attempts`` in all, after a pause drawn uniformly from ``[0, b]``
    where ``b = min(max_backoff, initial_backoff * multiplier ** (n - 1))``,
    never past the call's deadline. ``max_tokens`` / ``token_ratio`` are
    gRPC's retry throttling (a retry budget per channel): every failed
    attempt costs a token, every success earns back ``token_ratio``, and
    no retry is made while half of ``max_tokens`` or fewer are left -- so a
    server that keeps refusing is not hit with a retry storm. No other
    status code is retried (RESOURCE_EXHAUSTED, a load-shedding refusal,
    falls back at once).

    ``min_attempt_time`` is kept for compatibility and no longer used: gRPC
    stops retrying at the deadline.
    """

    max_attempts: int = 3
    initial_backoff: float = 0.005
    max_backoff: float = 0.1
    multiplier: float = 2.0
    min_attempt_time: float = 0.002
    max_tokens: int = 10
    token_ratio: float = 0.1

    def __post_init__(self) -> None:
        if not 1 <= self.max_attempts <= MAX_GRPC_ATTEMPTS:
            raise ValueError(
                f"RetryPolicy.max_attempts must be 1..{MAX_GRPC_ATTEMPTS} (gRPC's limit)"
            )
        if self.initial_backoff <= 0 or self.max_backoff <= 0 or self.multiplier <= 0:
            raise ValueError("RetryPolicy backoffs and multiplier must be > 0")
        if not 0 < self.max_tokens <= 1000 or not self.token_ratio > 0:
            raise ValueError("RetryPolicy.max_tokens must be 1..1000 and token_ratio > 0")


# What gRPC retries: UNAVAILABLE, and CANCELLED as a stopping server sends it for calls it had
# received (the client's own cancellations never arrive as a status; see _base.RETRYABLE).
RETRIED_CODES: tuple[str, ...] = ("UNAVAILABLE", "CANCELLED")
# gRPC clamps a retry policy's maxAttempts to 5.
MAX_GRPC_ATTEMPTS = 5
SERVICE = "arbiter.v1.DecisionService"
# Method groups of the published service config, with the Timeouts field of each.
_GROUPS: tuple[tuple[tuple[str, str], ...], ...] = (
    (("Decide", "decide"), ("Check", "check")),
    (("Track", "track"), ("UpdateProfile", "update_profile")),
)


def _duration(seconds: float) -> str:
    return f"{seconds:.9f}".rstrip("0").rstrip(".") + "s"


def service_config(
    retry: RetryPolicy | None = None, timeouts: Timeouts | None = None
) -> dict[str, Any]:
    """The gRPC service config of ``retry`` (and, when given, the ``timeouts`` as method deadlines).

    ``clients/service-config.json`` is ``service_config(RetryPolicy(),
    Timeouts())``, for clients in other languages. The Python client passes
    it without timeouts: it sets every call's deadline itself (a service
    config timeout would cap a per-call ``timeout=`` longer than the default).
    """
    retry = retry or RetryPolicy()
    methods: list[dict[str, Any]] = []
    for group in _GROUPS:
        fields = dict(group)
        deadlines = {getattr(timeouts, f) for f in fields.values()} if timeouts else {None}
        for deadline in sorted(deadlines, key=lambda d: d or 0.0):
            entry: dict[str, Any] = {
                "name": [
                    {"service": SERVICE, "method": name}
                    for name, field in group
                    if timeouts is None or getattr(timeouts, field) == deadline
                ]
            }
            if deadline is not None:
                entry["timeout"] = _duration(deadline)
            if retry.max_attempts > 1:
                entry["retryPolicy"] = {
                    "maxAttempts": retry.max_attempts,
                    "initialBackoff": _duration(retry.initial_backoff),
                    "maxBackoff": _duration(retry.max_backoff),
                    "backoffMultiplier": retry.multiplier,
                    "retryableStatusCodes": list(RETRIED_CODES),
                }
            methods.append(entry)
    return {
        "methodConfig": methods,
        "retryThrottling": {"maxTokens": retry.max_tokens, "tokenRatio": retry.token_ratio},
    }


def service_config_json(retry: RetryPolicy | None = None, timeouts: Timeouts | None = None) -> str:
    """:func:`service_config` as the JSON text gRPC's ``grpc.service_config`` option takes."""
    return json.dumps(service_config(retry, timeouts), indent=2) + "\n"
