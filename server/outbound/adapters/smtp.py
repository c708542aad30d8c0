"""Email adapter over SMTP (aiosmtplib): one message per entry.

The idempotency key travels as the ``Message-ID`` (``<key@arbiter>``) and an
``X-Idempotency-Key`` header: SMTP has no idempotent submit, so an ESP or
relay that deduplicates by Message-ID turns a re-delivery into a no-op.
The recipient comes from the destination's ``to`` template
(``{customer_id}``) or the payload's ``to``; the body is the payload as
JSON (the ESP renders the template it names). 4xx replies and connection
failures are transient, 5xx replies a rejection.
"""

from __future__ import annotations

import json
from email.message import EmailMessage

import aiosmtplib

from arbiter.server.outbound.adapters.base import Result
from arbiter.server.outbound.config import Destination
from arbiter.server.outbound.redis_ops import Entry

__all__ = ["SmtpAdapter", "message_for"]


def message_for(destination: Destination, entry: Entry) -> EmailMessage:
    message = EmailMessage()
    message["From"] = destination.sender
    to = entry.payload.get("to")
    message["To"] = str(to) if to else destination.to.format(customer_id=entry.customer_id)
    message["Subject"] = destination.subject.format(action=entry.action, channel=entry.channel)
    message["Message-ID"] = f"<{entry.key}@arbiter>"
    message["X-Idempotency-Key"] = entry.key
    message["X-Arbiter-Decision"] = entry.decision_id
    message["X-Arbiter-Due"] = str(entry.due_ms)
    message["X-Arbiter-Fired"] = str(entry.fired_ms)
    message.set_content(json.dumps(entry.payload, sort_keys=True, default=str))
    return message


class SmtpAdapter:
    def __init__(self, destination: Destination) -> None:
        self.destination = destination

    async def deliver(self, entry: Entry) -> Result:
        message = message_for(self.destination, entry)
        try:
            await aiosmtplib.send(
                message,
                hostname=self.destination.host,
                port=self.destination.port,
                timeout=self.destination.timeout_s,
            )
        except aiosmtplib.SMTPResponseException as exc:
            error = f"SMTP {exc.code}: {exc.message}"[:300]
            return Result("rejected" if exc.code >= 500 else "retry", error)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return Result("retry", f"{type(exc).__name__}: {exc}"[:300])
        return Result("delivered")

    async def close(self) -> None:
        return None
