"""Delivery adapters: one small module per kind of execution system, behind :class:`.base.Adapter`."""

from __future__ import annotations

from arbiter.server.outbound.adapters.base import Adapter, Result
from arbiter.server.outbound.config import Destination

__all__ = ["Adapter", "Result", "open_adapter"]


def open_adapter(destination: Destination) -> Adapter:
    """The adapter of ``destination.kind``."""
    if destination.kind == "webhook":
        from arbiter.server.outbound.adapters.webhook import WebhookAdapter

        return WebhookAdapter(destination)
    from arbiter.server.outbound.adapters.smtp import SmtpAdapter

    return SmtpAdapter(destination)
