"""The audit record of admin and privacy calls: who (never the token), what, about whom, and the outcome.

One JSON object per call on the ``arbiter.audit`` logger at INFO, also
attached to the log record as ``record.audit`` for structured handlers.
Refused calls are recorded too (``principal`` is ``unauthenticated`` when no
identity could be established).
"""

from __future__ import annotations

import json
import logging
from typing import Any, Final

from arbiter.server.security.identity import Identity

__all__ = ["AUDIT_LOGGER", "audit"]

AUDIT_LOGGER: Final = "arbiter.audit"
_log = logging.getLogger(AUDIT_LOGGER)

# Request fields worth keeping: who was affected and why (never payloads or policy bundles).
_FIELDS: Final = ("customer_id", "journey_id", "decision_id", "digest", "expected_digest", "reason")


def audit(
    method: str, identity: Identity | None, outcome: str, request: Any, peer: str = ""
) -> dict[str, Any]:
    """Log one audit record and return it."""
    record: dict[str, Any] = {
        "event": "audit",
        "rpc": method,
        "principal": identity.principal if identity else "unauthenticated",
        "auth": identity.method if identity else "",
        "roles": sorted(identity.roles) if identity else [],
        "outcome": outcome,
        "peer": peer,
    }
    for name in _FIELDS:
        value = getattr(request, name, None)
        if isinstance(value, str) and value:
            record[name] = value
    directory = getattr(request, "directory", None)
    if isinstance(directory, str) and directory:
        record["directory"] = directory
    _log.info("%s", json.dumps(record, sort_keys=True), extra={"audit": record})
    return record
