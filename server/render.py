"""Responses out: the engine's answers as ``arbiter.v1`` protobuf messages.

Conventions: instants are epoch milliseconds in the domain and
``google.protobuf.Timestamp`` on the wire; payload and trait values become
``arbiter.v1.Value`` (``None`` -> ``null``, lists and maps recursively,
``bytes`` stay bytes, anything else its text); domain reason codes map to
the proto enums by name (``ReasonCode.CAPPED`` -> ``REASON_CAPPED``), and
``ReasonCode.ERROR``, which has no proto value, becomes
``REASON_UNSPECIFIED`` (the detail says what failed). Requests come in
through :mod:`arbiter.server.parse`.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any, Final

from google.protobuf import struct_pb2, timestamp_pb2

from arbiter.policies import (
    CandidateTrace,
    ChosenAction,
    Decision,
    Degradation,
    FieldResult,
    Outcome,
    PurposeConsent,
    ReasonCode,
    decision_log,
)
from arbiter.v1 import admin_pb2, decision_pb2, value_pb2

__all__ = [
    "check_response",
    "decide_response",
    "decision_record",
    "field_results",
    "reason_to_proto",
    "track_response",
    "value_to_proto",
]

_EPOCH: Final = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1


def _enum_table(enum: Any, prefix: str, names: Iterable[str]) -> dict[str, int]:
    """Domain name -> proto number, by name; names without a proto value map to 0 (UNSPECIFIED)."""
    numbers = {str(name): int(number) for name, number in enum.items()}
    return {name: numbers.get(prefix + name, 0) for name in names}


_REASONS: Final[dict[str, int]] = _enum_table(
    decision_pb2.Reason, "REASON_", (r.value for r in ReasonCode)
)
_OUTCOMES: Final[dict[str, int]] = _enum_table(
    decision_pb2.CandidateOutcome, "CANDIDATE_OUTCOME_", (o.value for o in Outcome)
)
_CONSENT_STATES: Final = {
    "granted": decision_pb2.CONSENT_STATE_GRANTED,
    "denied": decision_pb2.CONSENT_STATE_DENIED,
    "": decision_pb2.CONSENT_STATE_UNSPECIFIED,
}
_FIELD_KINDS: Final = {
    "trait": decision_pb2.PROFILE_FIELD_KIND_TRAIT,
    "consent": decision_pb2.PROFILE_FIELD_KIND_CONSENT,
    "do_not_contact": decision_pb2.PROFILE_FIELD_KIND_DO_NOT_CONTACT,
    "segments": decision_pb2.PROFILE_FIELD_KIND_SEGMENTS,
}


def reason_to_proto(reason: ReasonCode) -> int:
    """The ``arbiter.v1.Reason`` number of a domain reason (``ERROR`` -> ``REASON_UNSPECIFIED``)."""
    return _REASONS.get(reason.value, 0)


# --------------------------------------------------------------------------- time


def _fill_timestamp(target: timestamp_pb2.Timestamp, ms: int) -> None:
    seconds, rest = divmod(ms, 1000)
    target.seconds = seconds
    target.nanos = rest * 1_000_000


# --------------------------------------------------------------------------- values


def _fill_value(out: value_pb2.Value, obj: object) -> None:
    # bool before int (a subclass); anything unexpected in a payload becomes its text.
    if obj is None:
        out.null_value = struct_pb2.NULL_VALUE
    elif isinstance(obj, bool):
        out.bool_value = obj
    elif isinstance(obj, int):
        if _INT64_MIN <= obj <= _INT64_MAX:
            out.int_value = obj
        else:
            out.string_value = str(obj)
    elif isinstance(obj, float):
        out.double_value = obj
    elif isinstance(obj, str):
        out.string_value = obj
    elif isinstance(obj, Mapping):
        out.map_value.SetInParent()
        fields = out.map_value.fields
        for key, item in obj.items():
            _fill_value(fields[str(key)], item)
    elif isinstance(obj, list | tuple):
        out.list_value.SetInParent()
        members = out.list_value.values
        for item in obj:
            _fill_value(members.add(), item)
    elif isinstance(obj, bytes | bytearray):
        out.bytes_value = bytes(obj)
    elif isinstance(obj, _dt.datetime):
        moment = obj if obj.tzinfo is not None else obj.replace(tzinfo=_dt.UTC)
        delta = moment - _EPOCH
        out.timestamp_value.seconds = delta.days * 86_400 + delta.seconds
        out.timestamp_value.nanos = delta.microseconds * 1000
    elif isinstance(obj, _dt.date):
        out.string_value = obj.isoformat()
    else:
        out.string_value = str(obj)


def value_to_proto(obj: object) -> value_pb2.Value:
    """A domain value (payloads, traits) as a new ``Value``."""
    out = value_pb2.Value()
    _fill_value(out, obj)
    return out


def _fill_map(target: MutableMapping[str, value_pb2.Value], values: Mapping[str, Any]) -> None:
    for key, item in values.items():
        _fill_value(target[key], item)


# --------------------------------------------------------------------------- Decide


def _fill_action(out: decision_pb2.ChosenAction, action: ChosenAction) -> None:
    out.action_id = action.action
    out.journey_id = action.journey
    out.stage = action.stage
    out.channel = action.channel
    out.variant = action.variant
    out.tracking_id = action.tracking_id
    out.score = action.score
    out.policy_fallback = action.fallback
    if action.tags:
        out.tags.extend(action.tags)
    if action.payload:
        _fill_map(out.payload, action.payload)


def _fill_consent(out: decision_pb2.PurposeConsent, consent: PurposeConsent) -> None:
    out.purpose = consent.purpose
    out.state = _CONSENT_STATES[consent.state]
    out.allowed = consent.allowed
    out.reason = reason_to_proto(consent.reason)
    out.source = consent.source
    if consent.updated_ms is not None:
        _fill_timestamp(out.updated_at, consent.updated_ms)
    if consent.expires_ms is not None:
        _fill_timestamp(out.expires_at, consent.expires_ms)


def _fill_candidate(out: decision_pb2.Candidate, candidate: CandidateTrace) -> None:
    out.action_id = candidate.action
    out.journey_id = candidate.journey
    out.stage = candidate.stage
    out.channel = candidate.channel
    out.outcome = _OUTCOMES.get(candidate.outcome.value, 0)
    out.reason = reason_to_proto(candidate.reason)
    out.detail = candidate.detail
    if candidate.score is not None:
        out.score = candidate.score
    out.variant = candidate.variant
    if candidate.not_before_ms is not None:
        _fill_timestamp(out.not_before, candidate.not_before_ms)


def _fill_degradations(
    target: Any, degradations: Iterable[Degradation]
) -> None:  # RepeatedCompositeFieldContainer[Degradation]
    for d in degradations:
        target.add(reason=reason_to_proto(d.reason), detail=d.detail)


def decide_response(
    decision: Decision, *, replayed: bool = False, dry_run: bool = False
) -> decision_pb2.DecideResponse:
    """A :class:`~policies.decision.Decision` as a DecideResponse (held-out actions are not sent)."""
    response = decision_pb2.DecideResponse(
        decision_id=decision.decision_id,
        request_id=decision.request_id,
        policy_version=decision.policy_version,
        replayed=replayed,
        dry_run=dry_run,
    )
    _fill_timestamp(response.decided_at, decision.decided_ms)
    if decision.not_before_ms is not None:
        _fill_timestamp(response.not_before, decision.not_before_ms)
    for action in decision.actions:
        _fill_action(response.actions.add(), action)
    for consent in decision.consent:
        _fill_consent(response.consent.add(), consent)
    _fill_degradations(response.degradations, decision.degradations)
    for candidate in decision.candidates:
        _fill_candidate(response.candidates.add(), candidate)
    return response


def decision_record(record: decision_log.DecisionRecord, text: str) -> admin_pb2.DecisionRecord:
    """A decision log record (and its JSON ``text``) as ``arbiter.v1.DecisionRecord``."""
    decision = record.decision
    request = record.request
    out = admin_pb2.DecisionRecord(
        decision_id=record.decision_id,
        request_id=record.request_id,
        customer_id=record.customer_id,
        policy_version=record.policy.policy_version,
        kind=record.kind,
        dry_run=record.dry_run,
        committed=record.committed,
        caller=record.caller.principal if record.caller is not None else "",
        policy_digest=record.policy.digest,
        masked_fields=record.masked,
        record_json=text,
    )
    if request is not None:
        out.placement = request.placement
        out.channels.extend(request.channels)
        out.limit = max(request.limit, 0)
        _fill_map(out.context, request.context)
    elif record.query is not None:
        out.channels.append(record.query.channel)
        _fill_map(out.context, record.query.context)
    _fill_timestamp(out.decided_at, decision.decided_ms)
    for action in decision.actions:
        _fill_action(out.actions.add(), action)
    for action in decision.held_out:
        _fill_action(out.held_out_actions.add(), action)
    for candidate in decision.candidates:
        _fill_candidate(out.candidates.add(), candidate)
    for consent in decision.consent:
        _fill_consent(out.consent.add(), consent)
    _fill_degradations(out.degradations, decision.degradations)
    return out


# --------------------------------------------------------------------------- Check


def check_response(
    answer: Decision, *, recorded: bool = False, replayed: bool = False
) -> decision_pb2.CheckResponse:
    """A CheckResponse from a (possibly stored) one-action answer: allowed = it has the action;
    otherwise its one trace entry says why not. ``recorded``: the send was counted."""
    allowed = bool(answer.actions)
    trace = answer.candidates[0] if answer.candidates else None
    if allowed:
        reason, detail = ReasonCode.ELIGIBLE, ""
    elif trace is not None:
        reason, detail = trace.reason, trace.detail
    else:
        reason, detail = ReasonCode.STATE_UNAVAILABLE, "no answer recorded"
    response = decision_pb2.CheckResponse(
        allowed=allowed,
        reason=reason_to_proto(reason),
        detail=detail,
        recorded=allowed and recorded,
        policy_version=answer.policy_version,
        replayed=replayed,
    )
    _fill_degradations(response.degradations, answer.degradations)
    if not allowed and answer.not_before_ms is not None:
        _fill_timestamp(response.not_before, answer.not_before_ms)
    return response


# --------------------------------------------------------------------------- Track

_EVENT_STATUSES: Final = {
    "applied": decision_pb2.EVENT_STATUS_APPLIED,
    "duplicate": decision_pb2.EVENT_STATUS_DUPLICATE,
    "rejected": decision_pb2.EVENT_STATUS_REJECTED,
}


def track_response(results: Iterable[tuple[str, str, str, str]]) -> decision_pb2.TrackResponse:
    """A TrackResponse from (event id, ``applied`` / ``duplicate`` / ``rejected``, field, detail)."""
    response = decision_pb2.TrackResponse()
    for event_id, status, field, detail in results:
        response.results.add(
            event_id=event_id, status=_EVENT_STATUSES[status], field=field, detail=detail
        )
    return response


# --------------------------------------------------------------------------- UpdateProfile


def field_results(results: Iterable[FieldResult]) -> decision_pb2.UpdateProfileResponse:
    """The store's per-field results as an UpdateProfileResponse."""
    response = decision_pb2.UpdateProfileResponse()
    for r in results:
        out = response.results.add(
            kind=_FIELD_KINDS[r.kind],
            name=r.name,
            outcome=(
                decision_pb2.PROFILE_WRITE_OUTCOME_APPLIED
                if r.applied
                else decision_pb2.PROFILE_WRITE_OUTCOME_IGNORED_STALE
            ),
        )
        _fill_timestamp(out.stored_timestamp, r.stored_ms)
    return response
