"""``AdminService.ExplainDecision``: a past decision's record, found in the decision log by its id.

Kept apart from the rest of AdminService (policy lifecycle, kill switches,
privacy) so that the servicer only delegates: :func:`explain_decision`
validates the id, asks the decision log (the records not yet written, then
the sink), and renders the record (:func:`arbiter.server.render.decision_record`),
including the complete record as JSON for ``arbiter replay``.

Statuses: ``INVALID_ARGUMENT`` for a malformed id, ``FAILED_PRECONDITION``
when the server runs without a decision log, ``NOT_FOUND`` when the log
holds no record of the id (never logged -- a sampled-out dry run or Check,
a replay -- or trimmed), ``UNAVAILABLE`` when the sink does not answer.
"""

from __future__ import annotations

from typing import Any, NoReturn

import grpc
import msgspec

from arbiter.policies import decision_log
from arbiter.server import render
from arbiter.server.decision_log import DecisionLog
from arbiter.server.parse import ValidationError, check_id
from arbiter.state import StoreUnavailable
from arbiter.v1 import admin_pb2

__all__ = ["LOG_OFF", "explain_decision"]

LOG_OFF = "the decision log is off on this server (start it with --decision-log)"


async def _abort(context: Any, code: grpc.StatusCode, message: str) -> NoReturn:
    await context.abort(code, message)
    raise AssertionError("unreachable: abort raises")


async def explain_decision(
    decisions: DecisionLog | None, request: admin_pb2.ExplainDecisionRequest, context: Any
) -> admin_pb2.ExplainDecisionResponse:
    """The ExplainDecision answer, or an abort with the status the module docstring lists."""
    try:
        check_id(request.decision_id, "decision_id")
    except ValidationError as exc:
        await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(exc))
    if decisions is None:
        await _abort(context, grpc.StatusCode.FAILED_PRECONDITION, LOG_OFF)
    try:
        data = await decisions.find(request.decision_id)
    except (StoreUnavailable, OSError) as exc:
        await _abort(context, grpc.StatusCode.UNAVAILABLE, f"decision log unavailable: {exc}")
    if data is None:
        await _abort(
            context,
            grpc.StatusCode.NOT_FOUND,
            f"decision `{request.decision_id}` is not in the decision log "
            "(not logged, or older than the log keeps)",
        )
    try:
        record = decision_log.decode_record(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        await _abort(context, grpc.StatusCode.DATA_LOSS, f"unreadable decision log record: {exc}")
    text = data.decode("utf-8")
    return admin_pb2.ExplainDecisionResponse(record=render.decision_record(record, text))
