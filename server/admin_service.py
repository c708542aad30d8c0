"""``arbiter.v1.AdminService``: the operator API, behind the guard (admin role; privacy role for export/forget).

Registered on the gRPC port and (through
:class:`~arbiter.server.connect_service.ConnectAdminService`) on the HTTP
port, so operators' calls are authenticated, authorised and audit-logged
like every other call. The servicer only delegates:

- ``ExplainDecision`` -> :func:`arbiter.server.explain.explain_decision` (the decision log);
- ``ExportCustomer`` / ``ForgetCustomer`` -> :mod:`arbiter.server.privacy` (the store);
- policy versions (``GetPolicyStatus``, ``ValidatePolicy``, ``ActivatePolicy``,
  ``RollbackPolicy``) and kill switches (``Pause``/``Resume`` of a journey, an
  action, a channel) -> :mod:`arbiter.server.governance_rpc` on the server's
  :class:`~arbiter.server.governance.Governance`;
- any RPC not built yet answers ``UNIMPLEMENTED`` naming itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

import grpc

from arbiter.server import privacy
from arbiter.server.decision_log import DecisionLog
from arbiter.server.explain import explain_decision
from arbiter.server.governance import Governance
from arbiter.server.governance_rpc import GovernanceRpc
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
        governance: Governance | None = None,
    ) -> None:
        self.decisions = decisions
        self.store: Store = store if store is not None else MemoryStore()
        self.registry = registry if registry is not None else PolicyRegistry()
        self.on_forget = on_forget
        self.governance = governance if governance is not None else Governance(self.registry)
        self._gov = GovernanceRpc(self.governance)

    async def GetPolicyStatus(
        self, request: admin_pb2.GetPolicyStatusRequest, context: Any
    ) -> admin_pb2.GetPolicyStatusResponse:
        return await self._gov.status(request, context)

    async def ValidatePolicy(
        self, request: admin_pb2.ValidatePolicyRequest, context: Any
    ) -> admin_pb2.ValidatePolicyResponse:
        return await self._gov.validate(request, context)

    async def ActivatePolicy(
        self, request: admin_pb2.ActivatePolicyRequest, context: Any
    ) -> admin_pb2.ActivatePolicyResponse:
        return await self._gov.activate(request, context)

    async def RollbackPolicy(
        self, request: admin_pb2.RollbackPolicyRequest, context: Any
    ) -> admin_pb2.RollbackPolicyResponse:
        return await self._gov.rollback(request, context)

    async def PauseJourney(
        self, request: admin_pb2.PauseJourneyRequest, context: Any
    ) -> admin_pb2.PauseJourneyResponse:
        journey = await self._gov.journey(request, context, pause=True)
        return admin_pb2.PauseJourneyResponse(journey=journey)

    async def ResumeJourney(
        self, request: admin_pb2.ResumeJourneyRequest, context: Any
    ) -> admin_pb2.ResumeJourneyResponse:
        journey = await self._gov.journey(request, context, pause=False)
        return admin_pb2.ResumeJourneyResponse(journey=journey)

    async def PauseAction(
        self, request: admin_pb2.PauseActionRequest, context: Any
    ) -> admin_pb2.PauseActionResponse:
        info = await self._gov.pause_info("action", request.action_id, request, context, pause=True)
        return admin_pb2.PauseActionResponse(pause=info)

    async def ResumeAction(
        self, request: admin_pb2.ResumeActionRequest, context: Any
    ) -> admin_pb2.ResumeActionResponse:
        info = await self._gov.pause_info(
            "action", request.action_id, request, context, pause=False
        )
        return admin_pb2.ResumeActionResponse(pause=info)

    async def PauseChannel(
        self, request: admin_pb2.PauseChannelRequest, context: Any
    ) -> admin_pb2.PauseChannelResponse:
        info = await self._gov.pause_info(
            "channel", request.channel_id, request, context, pause=True
        )
        return admin_pb2.PauseChannelResponse(pause=info)

    async def ResumeChannel(
        self, request: admin_pb2.ResumeChannelRequest, context: Any
    ) -> admin_pb2.ResumeChannelResponse:
        info = await self._gov.pause_info(
            "channel", request.channel_id, request, context, pause=False
        )
        return admin_pb2.ResumeChannelResponse(pause=info)

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
