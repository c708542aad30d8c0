"""Customer state: the ``Store`` port, the embedded ``MemoryStore`` and (with ``redis``) ``RedisStore``.

The front door: the server imports from here and nowhere deeper (a layering
test enforces it); :func:`open_store` opens the store a URL names. The
Redis names (``RedisStore`` and the operator checks of ``redis_admin``)
load on first use, so that importing this package needs no ``redis``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .decision_log import (
    DecisionSink,
    JsonlSink,
    find_in_file,
    follow_file,
    open_sink,
    read_file,
)
from .factory import open_store
from .governance import (
    GovernanceState,
    GovernanceStore,
    MemoryGovernanceStore,
    RedisGovernanceStore,
    open_governance_store,
)
from .memory import MemoryState, MemoryStore
from .redis_codec import wake_member
from .redis_keys import wake_key
from .state_file import StateFile, StateFileError
from .store import (
    DEFAULT_EVENT_DEDUP_TTL_S,
    DEFAULT_IDEMPOTENCY_TTL_S,
    FEEDBACK_LIMIT,
    CommitOutcome,
    EventOutcome,
    Loaded,
    StateLost,
    Store,
    StoredDecision,
    StoreError,
    StoreMisconfigured,
    StoreUnavailable,
    build_export,
    validate_id,
)
from .volume_counter import MemoryVolumeCounter, VolumeCount, VolumeCounter, open_volume_counter

if TYPE_CHECKING:
    from .decision_log_redis import RedisStreamSink
    from .redis_admin import EVICTING_POLICIES, check_deployment, describe
    from .redis_store import RedisStore

__all__ = [
    "DEFAULT_EVENT_DEDUP_TTL_S",
    "DEFAULT_IDEMPOTENCY_TTL_S",
    "EVICTING_POLICIES",
    "FEEDBACK_LIMIT",
    "CommitOutcome",
    "DecisionSink",
    "EventOutcome",
    "GovernanceState",
    "GovernanceStore",
    "JsonlSink",
    "Loaded",
    "MemoryGovernanceStore",
    "MemoryState",
    "MemoryStore",
    "MemoryVolumeCounter",
    "RedisGovernanceStore",
    "RedisStore",
    "RedisStreamSink",
    "StateFile",
    "StateFileError",
    "StateLost",
    "Store",
    "StoreError",
    "StoreMisconfigured",
    "StoreUnavailable",
    "StoredDecision",
    "VolumeCount",
    "VolumeCounter",
    "build_export",
    "check_deployment",
    "describe",
    "find_in_file",
    "follow_file",
    "open_governance_store",
    "open_sink",
    "open_store",
    "open_volume_counter",
    "read_file",
    "validate_id",
    "wake_key",
    "wake_member",
]

_REDIS_NAMES = {
    "RedisStore": "redis_store",
    "RedisStreamSink": "decision_log_redis",
    "EVICTING_POLICIES": "redis_admin",
    "check_deployment": "redis_admin",
    "describe": "redis_admin",
}


def __getattr__(name: str) -> Any:
    """The Redis names, imported when first asked for (they need the ``server`` extra)."""
    module = _REDIS_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"{__name__}.{module}"), name)
