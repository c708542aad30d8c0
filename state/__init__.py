"""Customer state: the ``Store`` port, the embedded ``MemoryStore`` and (with ``redis``) ``RedisStore``."""

from __future__ import annotations

from .memory import MemoryStore
from .store import (
    DEFAULT_EVENT_DEDUP_TTL_S,
    DEFAULT_IDEMPOTENCY_TTL_S,
    FEEDBACK_LIMIT,
    CommitOutcome,
    EventOutcome,
    Loaded,
    Store,
    StoredDecision,
    StoreError,
    StoreUnavailable,
    build_export,
    validate_id,
)

__all__ = [
    "DEFAULT_EVENT_DEDUP_TTL_S",
    "DEFAULT_IDEMPOTENCY_TTL_S",
    "FEEDBACK_LIMIT",
    "CommitOutcome",
    "EventOutcome",
    "Loaded",
    "MemoryStore",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "StoredDecision",
    "build_export",
    "validate_id",
]
