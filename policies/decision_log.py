"""The decision log record: what one decision saw and answered, with personal data masked, so that it can be explained and replayed.

A record (:class:`DecisionRecord`) holds the *inputs* of a decision -- the
request (or Check query), the snapshot parts the policy read, the decision
instant, the operators' pauses, what the store did (:class:`StoreReport`)
and the policy version -- and its *outcome*: the settled
:class:`~arbiter.policies.decision.Decision` with every candidate's outcome
and reason (the trace is always on in a record), the consent summary (the
consent proof) and the degradations.

:func:`evaluate` turns inputs into the outcome; the server calls it on the
real inputs off the hot path (the served answer is the same decision
without the trace), and :func:`replay` calls it on a record's inputs, so a
replay with the recorded policy version reproduces the recorded outcome byte
for byte (:func:`outcome_bytes`, :func:`outcome_diff`).

Personal data: contract fields marked ``pii: true`` (profile attributes and
request-context fields), and request-context keys the contracts do not
declare, are replaced before the record is written (:func:`mask_value`):
by an HMAC-SHA256 of the value when a key is configured (a stable
pseudonym, joinable across records), else by ``"***"``. The paths are
listed in ``masked``. A policy that *reads* a masked field cannot be
replayed exactly; :func:`masked_reads` names such fields.

Pure: no I/O, no clock (the caller passes ``logged_ms``).
"""

from __future__ import annotations

import difflib
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any, Final, Literal

import msgspec

from .decision import CheckQuery, Decision, Request
from .engine import StoreReport, check, decide, precheck, settle
from .plan import CompiledField, CompiledPolicy
from .snapshot import CustomerSnapshot, ProfileValue

__all__ = [
    "MASK",
    "RECORD_SCHEMA",
    "Caller",
    "DecisionRecord",
    "Paused",
    "PolicyRef",
    "build_record",
    "decode_record",
    "encode_record",
    "evaluate",
    "mask_value",
    "masked_reads",
    "outcome_bytes",
    "outcome_diff",
    "replay",
]

RECORD_SCHEMA: Final = 1
MASK: Final = "***"
RecordKind = Literal["decide", "check"]


class _Part(msgspec.Struct, frozen=True, kw_only=True):
    """Base: immutable, keyword-only, every field encoded (stable bytes)."""


class Caller(_Part, frozen=True, kw_only=True):
    """Who asked, as the guard admitted them (``principal`` is never a secret)."""

    principal: str
    auth: str  # "jwt" | "api_key" | "mtls" | "none"


class PolicyRef(_Part, frozen=True, kw_only=True):
    """The policy version that decided."""

    id: str
    version: str
    digest: str
    policy_version: str  # "<version>+<digest>", as on every answer
    compiler_version: str

    @classmethod
    def of(cls, policy: CompiledPolicy) -> PolicyRef:
        return cls(
            id=policy.id,
            version=policy.version,
            digest=policy.digest,
            policy_version=policy.policy_version,
            compiler_version=policy.compiler_version,
        )


class Paused(_Part, frozen=True, kw_only=True):
    """Operator pauses (kill switches) in force when the decision was made, sorted."""

    journeys: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()  # paused by a tripped volume guard


class DecisionRecord(_Part, frozen=True, kw_only=True):
    """One entry of the decision log (``docs/observability.md`` lists every field).

    Inputs: ``request`` (Decide) or ``query`` (Check), ``state`` (the
    snapshot parts the policy read; ``None`` when no state was needed),
    ``now_ms``, ``paused``, ``store``, ``policy``. Outcome: ``decision``.
    """

    schema: int = RECORD_SCHEMA
    kind: RecordKind
    decision_id: str
    request_id: str
    customer_id: str
    dry_run: bool = False
    committed: bool = False  # the store committed it (a counted, idempotent decision)
    time: str  # the decision instant, RFC 3339 UTC with milliseconds
    now_ms: int
    logged_ms: int
    caller: Caller | None = None
    policy: PolicyRef
    paused: Paused = Paused()
    request: Request | None = None
    query: CheckQuery | None = None
    masked: tuple[str, ...] = ()
    state: CustomerSnapshot | None = None
    store: StoreReport = StoreReport()
    decision: Decision


NOT_PAUSED: Final = Paused()
NOTHING_STORED: Final = StoreReport()
_ENCODER: Final = msgspec.json.Encoder()
_RECORD_DECODER: Final = msgspec.json.Decoder(DecisionRecord)


def encode_record(record: DecisionRecord) -> bytes:
    """The record as one line of JSON (no newline)."""
    return _ENCODER.encode(record)


def decode_record(data: bytes | str) -> DecisionRecord:
    """A record back from its JSON (``msgspec.ValidationError`` / ``DecodeError`` if malformed)."""
    return _RECORD_DECODER.decode(data)


def outcome_bytes(decision: Decision) -> bytes:
    """The bytes a replay is compared on: the outcome, canonically encoded."""
    return _ENCODER.encode(decision)


def outcome_diff(recorded: Decision, replayed: Decision) -> list[str]:
    """A unified diff of two outcomes, one JSON member per line (empty when byte-for-byte equal)."""
    if outcome_bytes(recorded) == outcome_bytes(replayed):
        return []

    def lines(decision: Decision) -> list[str]:
        return json.dumps(msgspec.to_builtins(decision), indent=1, sort_keys=False).splitlines()

    return list(
        difflib.unified_diff(lines(recorded), lines(replayed), "recorded", "replayed", lineterm="")
    )


# --------------------------------------------------------------------------- evaluation


def evaluate(
    policy: CompiledPolicy,
    *,
    request: Request | None = None,
    query: CheckQuery | None = None,
    state: CustomerSnapshot | None,
    now_ms: int,
    paused: Paused = NOT_PAUSED,
    store: StoreReport = NOTHING_STORED,
) -> Decision:
    """The traced, settled outcome of a Decide (``request``) or a Check (``query``) on these inputs.

    ``state`` ``None``: a Check answered without reading state (``precheck``).
    """
    journeys = frozenset(paused.journeys)
    actions = frozenset(paused.actions)
    if request is not None:
        traced = request if request.explain else msgspec.structs.replace(request, explain=True)
        if state is None:
            raise ValueError("a Decide record needs its state")
        decision, commit = decide(
            policy, traced, state, now_ms, paused_journeys=journeys, paused_actions=actions
        )
        return settle(decision, store, commit)
    if query is None:
        raise ValueError("a record needs a request or a query")
    if state is None:
        refused = precheck(policy, query, now_ms)
        if refused is None:
            raise ValueError("a Check record without state must be one precheck answers")
        return refused
    answer, commit = check(
        policy, query, state, now_ms, paused_journeys=journeys, paused_actions=actions
    )
    return settle(answer, store, commit)


def replay(record: DecisionRecord, policy: CompiledPolicy) -> Decision:
    """Re-evaluate a record's inputs under ``policy`` (the recorded version reproduces
    ``record.decision`` byte for byte; see :func:`outcome_diff`)."""
    return evaluate(
        policy,
        request=_restored(record.request, policy),
        query=record.query,
        state=record.state,
        now_ms=record.now_ms,
        paused=record.paused,
        store=record.store,
    )


def _restored(request: Request | None, policy: CompiledPolicy) -> Request | None:
    """JSON has no bytes: a context field the contracts type ``bytes`` comes back as base64 text."""
    if request is None:
        return None
    context = dict(request.context)
    changed = False
    for name, value in request.context.items():
        spec = policy.context.get(name)
        if spec is not None and spec.type_text == "bytes" and isinstance(value, str):
            try:
                context[name] = msgspec.json.decode(f'"{value}"'.encode(), type=bytes)
                changed = True
            except msgspec.DecodeError:
                continue
    return msgspec.structs.replace(request, context=context) if changed else request


# --------------------------------------------------------------------------- building records


def mask_value(value: Any, key: bytes | None) -> str:
    """What a personal value becomes in a record: ``hmac-sha256:<32 hex>`` with ``key``, else ``***``."""
    if key is None:
        return MASK
    data = _ENCODER.encode(value)
    return "hmac-sha256:" + hmac.new(key, data, hashlib.sha256).hexdigest()[:32]


def _personal(spec: CompiledField | None) -> bool:
    """Masked in a record: a field marked ``pii``, or one the contracts do not declare."""
    return spec is None or spec.pii


def _mask_context(
    context: Mapping[str, Any], fields: Mapping[str, CompiledField], key: bytes | None
) -> tuple[dict[str, Any], list[str]]:
    masked: list[str] = []
    out: dict[str, Any] = {}
    for name, value in context.items():
        if _personal(fields.get(name)):
            out[name] = mask_value(value, key)
            masked.append(f"context.{name}")
        else:
            out[name] = value
    return out, masked


def _mask_profile(
    snapshot: CustomerSnapshot, fields: Mapping[str, CompiledField], key: bytes | None
) -> tuple[CustomerSnapshot, list[str]]:
    masked = [name for name in snapshot.profile if _personal(fields.get(name))]
    if not masked:
        return snapshot, []
    profile = dict(snapshot.profile)
    for name in masked:
        entry = profile[name]
        profile[name] = ProfileValue(
            value=mask_value(entry.value, key), updated_ms=entry.updated_ms, source=entry.source
        )
    return msgspec.structs.replace(snapshot, profile=profile), [
        f"state.profile.{n}" for n in masked
    ]


def _instant(ms: int) -> str:
    """RFC 3339 UTC with milliseconds (``time.strftime``: a third of ``datetime``'s cost)."""
    seconds, millis = divmod(ms, 1000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds))}.{millis:03d}Z"


def build_record(
    policy: CompiledPolicy,
    decision: Decision,
    *,
    request: Request | None = None,
    query: CheckQuery | None = None,
    state: CustomerSnapshot | None,
    now_ms: int,
    logged_ms: int,
    paused: Paused = NOT_PAUSED,
    store: StoreReport = NOTHING_STORED,
    caller: Caller | None = None,
    pii_key: bytes | None = None,
) -> DecisionRecord:
    """The record of ``decision`` (the outcome :func:`evaluate` gave on these inputs), with
    personal data masked (see the module docstring)."""
    masked: list[str] = []
    if request is not None:
        context, masked = _mask_context(request.context, policy.context, pii_key)
        if masked:
            request = msgspec.structs.replace(request, context=context)
    if query is not None:
        context, masked = _mask_context(query.context, policy.context, pii_key)
        if masked:
            query = msgspec.structs.replace(query, context=context)
    if state is not None:
        state, profile_masked = _mask_profile(state, policy.profile, pii_key)
        masked += profile_masked
    dry_run = request is not None and request.dry_run
    return DecisionRecord(
        kind="decide" if request is not None else "check",
        decision_id=decision.decision_id,
        request_id=decision.request_id,
        customer_id=decision.customer_id,
        dry_run=dry_run,
        committed=store.committed is not None,
        time=_instant(now_ms),
        now_ms=now_ms,
        logged_ms=logged_ms,
        caller=caller,
        policy=PolicyRef.of(policy),
        paused=paused,
        request=request,
        query=query,
        masked=tuple(masked),
        state=state,
        store=store,
        decision=decision,
    )


def masked_reads(record: DecisionRecord, policy: CompiledPolicy) -> list[str]:
    """The masked fields of ``record`` that ``policy`` reads: why a replay may differ."""
    reads = {f"state.profile.{n}" for n in policy.needs.profile_attributes}
    reads |= {f"context.{n}" for n in policy.needs.context_fields}
    return sorted(p for p in record.masked if p in reads)
