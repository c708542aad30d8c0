"""``arbiter.v1.AdminService`` until it is built: every RPC but ExplainDecision answers UNIMPLEMENTED, after the guard.

It is registered so that operators' calls are authenticated, authorised and
audit-logged like every other call already. ``ExplainDecision`` delegates to
:func:`arbiter.server.explain.explain_decision` (the decision log).
"""

from __future__ import annotations

from typing import Any, NoReturn

import grpc

from arbiter.server.decision_log import DecisionLog
from arbiter.server.explain import explain_decision
from arbiter.v1 import admin_pb2, admin_pb2_grpc

__all__ = ["AdminService"]


class AdminService(admin_pb2_grpc.AdminServiceServicer):  # type: ignore[misc]
    """Every method but ExplainDecision aborts with UNIMPLEMENTED naming itself (no traceback
    in the log). ``decisions`` is the server's decision log (``None``: off)."""

    def __init__(self, decisions: DecisionLog | None = None) -> None:
        self.decisions = decisions

    async def ExplainDecision(
        self, request: admin_pb2.ExplainDecisionRequest, context: Any
    ) -> admin_pb2.ExplainDecisionResponse:
        return await explain_decision(self.decisions, request, context)


def _unimplemented(name: str) -> Any:
    async def method(self: AdminService, request: Any, context: Any) -> NoReturn:
        await context.abort(
            grpc.StatusCode.UNIMPLEMENTED, f"AdminService.{name} is not implemented yet"
        )
        raise AssertionError("unreachable: abort raises")

    method.__name__ = name
    return method


for _method in admin_pb2.DESCRIPTOR.services_by_name["AdminService"].methods:
    if _method.name not in AdminService.__dict__:
        setattr(AdminService, _method.name, _unimplemented(_method.name))
