"""The outbound deployment file: destinations (one adapter each), the channels they serve, limits.

A YAML file read by ``arbiter worker --config`` and ``arbiter outbox``::

    feedback: {delivered: message_delivered, failed: message_failed}
    destinations:
      - id: push_hooks
        kind: webhook
        channels: [push]
        url: https://push.example/v1/send
        secret_env: PUSH_HOOK_SECRET
        rate_per_s: 200
      - id: email
        kind: smtp
        channels: [email]
        host: smtp.example
        port: 587
        sender: journeys@example.com
        to: "{customer_id}@customers.example"

Secrets are named by environment variable, never written in the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import msgspec
import yaml

__all__ = ["Backoff", "Breaker", "Destination", "OutboundConfig", "WorkerSettings", "load_config"]


class Backoff(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Exponential backoff with full jitter: attempt n waits uniform(0, min(max_s, base_s * 2**n))."""

    base_s: float = 0.5
    max_s: float = 30.0


class Breaker(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Open after ``failures`` consecutive failures, for ``open_s``; then one probe at a time."""

    failures: int = 5
    open_s: float = 5.0


class Destination(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One execution system: an adapter, the channels whose actions it delivers, its limits."""

    id: str
    kind: Literal["webhook", "smtp"]
    channels: list[str]
    # Shared by every worker (token bucket in Redis); 0: unlimited.
    rate_per_s: float = 0.0
    burst: int = 1
    max_attempts: int = 5
    timeout_s: float = 5.0
    backoff: Backoff = Backoff()
    breaker: Breaker = Breaker()
    # webhook
    url: str = ""
    secret: str = ""  # for tests only; prefer secret_env
    secret_env: str = ""
    # smtp
    host: str = "localhost"
    port: int = 25
    sender: str = "arbiter@localhost"
    to: str = "{customer_id}@localhost"
    subject: str = "{action}"

    def secret_bytes(self) -> bytes:
        """The webhook signing secret (``secret_env`` wins; empty: unsigned)."""
        if self.secret_env:
            return os.environ.get(self.secret_env, "").encode()
        return self.secret.encode()


class WorkerSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How the due-step loop claims wake-ups."""

    lease_s: float = 30.0  # a claim not settled within this is re-claimed by any worker
    poll_interval_s: float = 0.1
    batch: int = 200
    concurrency: int = 32  # wake-ups decided at once per worker
    decide_timeout_s: float = 2.0
    deliveries_in_flight: int = 32  # per destination per worker


class OutboundConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    destinations: list[Destination]
    worker: WorkerSettings = WorkerSettings()
    # Event types (declared in the policy's contracts) that report outcomes; "" = not reported.
    feedback: dict[str, str] = msgspec.field(default_factory=dict)
    prefix: str = "arb"

    def destination_for(self, channel: str) -> Destination | None:
        for dest in self.destinations:
            if channel in dest.channels:
                return dest
        return None

    def channels(self) -> list[str]:
        return sorted({c for d in self.destinations for c in d.channels})

    def by_id(self, destination_id: str) -> Destination:
        for dest in self.destinations:
            if dest.id == destination_id:
                return dest
        raise KeyError(destination_id)


def load_config(path: str | os.PathLike[str]) -> OutboundConfig:
    """Read and check a deployment file (``ValueError`` naming the problem)."""
    raw = yaml.safe_load(Path(path).read_text())
    try:
        config = msgspec.convert(raw, OutboundConfig)
    except msgspec.ValidationError as exc:
        raise ValueError(f"{path}: {exc}") from exc
    seen: set[str] = set()
    for dest in config.destinations:
        if dest.id in seen:
            raise ValueError(f"{path}: destination {dest.id!r} declared twice")
        seen.add(dest.id)
        if not set(dest.id) <= set(
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-."
        ):
            raise ValueError(f"{path}: destination id {dest.id!r}: letters, digits, _ - . only")
        if dest.kind == "webhook" and not dest.url:
            raise ValueError(f"{path}: destination {dest.id!r}: a webhook needs url")
        if dest.max_attempts < 1:
            raise ValueError(f"{path}: destination {dest.id!r}: max_attempts must be >= 1")
    channels = [c for d in config.destinations for c in d.channels]
    if len(channels) != len(set(channels)):
        raise ValueError(f"{path}: a channel is served by two destinations")
    return config
