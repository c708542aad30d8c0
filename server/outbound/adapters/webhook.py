"""HTTP webhook adapter (httpx): JSON body, HMAC-SHA256 signature, idempotency key, timeouts.

Headers: ``Idempotency-Key: <entry key>`` (a provider that honours it turns
a re-delivery after a crash into a no-op), ``X-Arbiter-Timestamp: <unix s>``
and ``X-Arbiter-Signature: sha256=<hex HMAC of "<timestamp>.<body>">`` with
the destination's secret (the timestamp in the MAC lets the receiver refuse
replays). 2xx is delivered; 408, 429 and 5xx are transient (``Retry-After``
honoured, in seconds or as an HTTP date); any other status is a rejection.
"""

from __future__ import annotations

import email.utils
import hashlib
import hmac
import time

import httpx
import msgspec

from arbiter.server.outbound.adapters.base import Result
from arbiter.server.outbound.config import Destination
from arbiter.server.outbound.redis_ops import Entry

__all__ = ["WebhookAdapter", "retry_after_s", "sign"]

_JSON = msgspec.json.Encoder()


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    return (
        "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    )


def retry_after_s(value: str | None) -> float | None:
    """``Retry-After`` as seconds from now (delta-seconds or an HTTP date); ``None`` if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class WebhookAdapter:
    def __init__(self, destination: Destination) -> None:
        self.destination = destination
        self.secret = destination.secret_bytes()
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(destination.timeout_s),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
        )

    async def deliver(self, entry: Entry) -> Result:
        body = _JSON.encode(
            {
                "idempotency_key": entry.key,
                "customer_id": entry.customer_id,
                "action": entry.action,
                "channel": entry.channel,
                "decision_id": entry.decision_id,
                "tracking_id": entry.tracking_id,
                "payload": entry.payload,
                "due_ms": entry.due_ms,
                "fired_ms": entry.fired_ms,
            }
        )
        stamp = str(int(time.time()))
        headers = {
            "content-type": "application/json",
            "idempotency-key": entry.key,
            "x-arbiter-timestamp": stamp,
        }
        if self.secret:
            headers["x-arbiter-signature"] = sign(self.secret, stamp, body)
        try:
            response = await self.client.post(self.destination.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return Result("retry", f"{type(exc).__name__}: {exc}"[:300])
        status = response.status_code
        if 200 <= status < 300:
            return Result("delivered")
        error = f"HTTP {status}: {response.text[:200]}"
        if status in (408, 429) or status >= 500:
            return Result("retry", error, retry_after_s(response.headers.get("retry-after")))
        return Result("rejected", error)

    async def close(self) -> None:
        await self.client.aclose()
