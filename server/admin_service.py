"""``arbiter.v1.AdminService``: the operator API, behind the guard (admin role; privacy role for export/forget).

Registered on the gRPC port and (through
:class:`~arbiter.server.connect_service.ConnectAdminService`) on the HTTP
port, so operators' calls are authenticated, authorised and audit-logged
like every other call. The servicer only delegates:

- ``ExplainDecision`` -> :func:`arbiter.server.explain.explain_decision` (the decision log);
- ``ExportCustomer`` / ``ForgetCustomer`` -> :mod:`arbiter.server.privacy` (the store);
- every other RPC answers ``UNIMPLEMENTED`` naming itself until it is built.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

import grpc

from arbiter.server import privacy
from arbiter.server.decision_log import DecisionLog
from arbiter.server.explain import explain_decision
from arbiter.server.registry import PolicyRegistry
from arbiter.state import MemoryStore, Store
from arbiter.v1 import admin_pb2, admin_pb2_grpc

__all__ = ["AdminService"]


class AdminService(admin_pb2_grpc.AdminServiceServicer):  # type: ignore[misc]
    """The servicer (see the module docstring). ``decisions`` is the server's decision log
    (``None``: off); ``store`` and ``registry`` are the server's (an empty embedded store and
    registry by default, for tests); ``on_forget`` runs after a ForgetCustomer erased
    something (the embedded store's state file is rewritten at once)."""

    def __init__(
        self,
        decisions: DecisionLog | None = None,
        *,
        store: Store | None = None,
        registry: PolicyRegistry | None = None,
        on_forget: Callable[[], None] | None = None,
    ) -> None:
        self.decisions = decisions
        self.store: Store = store if store is not None else MemoryStore()
        self.registry = registry if registry is not None else PolicyRegistry()
        self.on_forget = on_forget

    async def ExplainDecision(
        self, request: admin_pb2.ExplainDecisionRequest, context: Any
    ) -> admin_pb2.ExplainDecisionResponse:
        return await explain_decision(self.decisions, request, context)

    async def ExportCustomer(
        self, request: admin_pb2.ExportCustomerRequest, context: Any
    ) -> admin_pb2.ExportCustomerResponse:
        return await privacy.export_customer(
            self.store, self.registry, request, context, decisions=self.decisions
        )

    async def ForgetCustomer(
        self, request: admin_pb2.ForgetCustomerRequest, context: Any
    ) -> admin_pb2.ForgetCustomerResponse:
        return await privacy.forget_customer(
            self.store, request, context, decisions=self.decisions, after=self.on_forget
        )


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
