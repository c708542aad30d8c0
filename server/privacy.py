"""``AdminService.ExportCustomer`` and ``ForgetCustomer``: privacy access and erasure requests, on any store.

Kept apart from the servicer (like :mod:`arbiter.server.explain`), which
only delegates. Both read and write through the server's
:class:`~arbiter.state.Store`, so they see exactly what decisions see:
profile traits, consent records, event counters, segments, journey states,
cap grants, stored decisions (idempotency records), feedback and the ids of
applied events (:meth:`Store.export_customer`, shape of
:func:`arbiter.state.build_export`).

With the decision log on, the customer's records in it are exported too
(``state.decision_log``: each record as an object, oldest first) and erased
by ``ForgetCustomer`` (:meth:`DecisionLog.forget_customer`: the file sink
blanks them in place, the Redis sink deletes the entries its
per-customer index names).

Paging. A customer's history -- stored decisions (up to
``MAX_DECISIONS_PER_CUSTOMER``, each a whole traced decision), feedback,
applied event ids (up to ``MAX_EVENT_MARKERS_PER_CUSTOMER``) and decision
log records -- can exceed a gRPC message. The history keys of the export (:data:`HISTORY`) are one
sequence, served ``page_size`` entries at a time (fewer when they would
exceed :data:`MAX_PAGE_BYTES`); the first page also
carries everything else (traits, consent, counters, journeys, caps). The
page token is opaque to callers: the offset into that sequence and the
customer it belongs to. Each page re-reads the store (which reads long
histories in pages itself), so a customer written to between two pages may
show an entry twice or miss one that arrived meanwhile, exactly as the
store's own export documents.

Forget deletes every key / record of the customer in the store, then the
customer's decision log records, and is idempotent: a second call answers
``existed=false``. Copies made downstream of the log (a warehouse reading
the stream) are out of reach (``docs/operations.md``, "Privacy requests").

Statuses: ``INVALID_ARGUMENT`` naming the field (``customer_id``,
``page_size``, ``page_token``), nothing read or written; ``UNAVAILABLE``
when the store does not answer (retry: both calls are safe to repeat);
anything unexpected is ``INTERNAL`` with a reference id
(:func:`arbiter.server.errors.status_for`).
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

import msgspec

from arbiter.server import render
from arbiter.server.decision_log import DecisionLog
from arbiter.server.errors import status_for
from arbiter.server.parse import ValidationError, check_id
from arbiter.server.registry import PolicyRegistry
from arbiter.state import Store
from arbiter.v1 import admin_pb2, decision_pb2

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "HISTORY",
    "MAX_PAGE_BYTES",
    "MAX_PAGE_SIZE",
    "export_customer",
    "forget_customer",
    "page_token",
]

_log = logging.getLogger("arbiter.server")

DEFAULT_PAGE_SIZE: Final = 100
MAX_PAGE_SIZE: Final = 1000
# A page stops early past this many bytes of history (JSON): gRPC clients refuse answers
# over 4 MiB by default, and a stored decision or a decision log record can be tens of KB.
MAX_PAGE_BYTES: Final = 2 * 1024 * 1024
# The export keys that grow with a customer's history, paged in this order.
HISTORY: Final = ("decisions", "feedback", "applied_events", "decision_log")
_TOKEN_VERSION: Final = "p1"
_CONSENT_STATES: Final = {
    "granted": decision_pb2.CONSENT_STATE_GRANTED,
    "denied": decision_pb2.CONSENT_STATE_DENIED,
}

T = TypeVar("T")


def page_token(customer_id: str, offset: int) -> str:
    """The opaque token of the page starting at history entry ``offset``."""
    raw = f"{_TOKEN_VERSION}:{offset}:{customer_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _offset(token: str, customer_id: str) -> int:
    """The history offset a token names; ``ValidationError`` on ``page_token`` otherwise."""
    if not token:
        return 0
    bad = ValidationError(
        "page_token", "not a page token of this customer's export (start again without one)"
    )
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise bad from None
    version, _, rest = raw.partition(":")
    offset, _, owner = rest.partition(":")
    if version != _TOKEN_VERSION or owner != customer_id or not offset.isdigit():
        raise bad
    return int(offset)


def _page(history: list[tuple[str, Any]], offset: int, size: int) -> list[tuple[str, Any]]:
    """At most ``size`` entries from ``offset``, and no more than :data:`MAX_PAGE_BYTES` of them
    (at least one): a page of big records must still fit a client's 4 MiB message limit."""
    page: list[tuple[str, Any]] = []
    total = 0
    for key, item in history[offset : offset + size]:
        total += len(msgspec.json.encode(item))
        if page and total > MAX_PAGE_BYTES:
            break
        page.append((key, item))
    return page


def _page_size(value: int) -> int:
    if value > MAX_PAGE_SIZE:
        raise ValidationError("page_size", f"at most {MAX_PAGE_SIZE}")
    return value or DEFAULT_PAGE_SIZE


async def _guarded(context: Any, method: str, work: Callable[[], Awaitable[T]]) -> T:
    """``work()``, or an abort with the status :func:`status_for` maps its exception to (the
    abort is outside the ``try``: it raises the transport's own exception)."""
    try:
        return await work()
    except Exception as exc:
        status = status_for(exc, f"AdminService.{method}")
    await context.abort(status.code, status.message)
    raise AssertionError("unreachable: abort raises")


def _fill_consent(out: decision_pb2.PurposeConsent, purpose: str, record: dict[str, Any]) -> None:
    """A stored consent record as recorded: ``allowed`` / ``reason`` are a decision's evaluation
    (regional rules, do-not-contact) and stay unset; an expired record keeps its state here
    and its ``expires_at`` says so."""
    out.purpose = purpose
    out.state = _CONSENT_STATES.get(record.get("state", ""), decision_pb2.CONSENT_STATE_UNSPECIFIED)
    out.source = record.get("source") or ""
    if record.get("updated_ms") is not None:
        out.updated_at.FromMilliseconds(int(record["updated_ms"]))
    if record.get("expires_ms") is not None:
        out.expires_at.FromMilliseconds(int(record["expires_ms"]))


async def export_customer(
    store: Store,
    registry: PolicyRegistry,
    request: admin_pb2.ExportCustomerRequest,
    context: Any,
    *,
    decisions: DecisionLog | None = None,
) -> admin_pb2.ExportCustomerResponse:
    """One page of the customer's export (see the module docstring)."""

    async def work() -> admin_pb2.ExportCustomerResponse:
        customer_id = request.customer_id
        check_id(customer_id, "customer_id")
        size = _page_size(request.page_size)
        offset = _offset(request.page_token, customer_id)
        doc = await store.export_customer(customer_id)
        if decisions is not None:
            doc["decision_log"] = [
                msgspec.json.decode(record)
                for record in await decisions.customer_records(customer_id)
            ]
        history = [(key, item) for key in HISTORY for item in doc.get(key, ())]
        page = _page(history, offset, size)
        # Only the history this server keeps: no ``decision_log`` key without a decision log.
        state: dict[str, Any] = {key: [] for key in HISTORY if key in doc}
        for key, item in page:
            state[key].append(item)
        response = admin_pb2.ExportCustomerResponse(customer_id=customer_id)
        response.exported_at.FromMilliseconds(time.time_ns() // 1_000_000)
        if offset + len(page) < len(history):
            response.next_page_token = page_token(customer_id, offset + len(page))
        if offset == 0:
            profile: dict[str, Any] = doc.get("profile", {})
            for name, stored in sorted(profile.items()):
                if stored.get("value") is not None:  # a tombstone is a removed trait
                    response.traits[name].CopyFrom(render.value_to_proto(stored["value"]))
            for purpose, record in sorted(doc.get("consent", {}).items()):
                _fill_consent(response.consent.add(), purpose, record)
            active = registry.current
            attribute = active.policy.consent.do_not_contact if active is not None else None
            if attribute:
                flag = profile.get(attribute, {}).get("value")
                response.do_not_contact = flag is True
            state = {
                **{k: v for k, v in doc.items() if k != "customer_id" and k not in HISTORY},
                **state,
            }
        response.state.CopyFrom(render.value_to_proto(state))
        return response

    return await _guarded(context, "ExportCustomer", work)


async def forget_customer(
    store: Store,
    request: admin_pb2.ForgetCustomerRequest,
    context: Any,
    *,
    decisions: DecisionLog | None = None,
    after: Callable[[], None] | None = None,
) -> admin_pb2.ForgetCustomerResponse:
    """Erase the customer from the store; ``after`` runs once something was erased (the
    embedded store's state file is rewritten at once, so a restart cannot bring it back)."""

    async def work() -> admin_pb2.ForgetCustomerResponse:
        customer_id = request.customer_id
        check_id(customer_id, "customer_id")
        removed = await store.forget_customer(customer_id)
        if removed and after is not None:
            after()
        logged = 0 if decisions is None else await decisions.forget_customer(customer_id)
        _log.info(
            "forgot customer %s: %d stored records, %d decision log records removed",
            customer_id,
            removed,
            logged,
        )
        response = admin_pb2.ForgetCustomerResponse(existed=removed + logged > 0)
        response.forgotten_at.FromMilliseconds(time.time_ns() // 1_000_000)
        return response

    return await _guarded(context, "ForgetCustomer", work)
