"""DecisionService and AdminService over Connect and gRPC-Web: thin adapters from connectrpc's handler API to the gRPC port's services.

Nothing here decides anything. Each call first passes the same
:class:`~arbiter.server.security.guard.Guard` as on the gRPC port (bearer
token or API key from the HTTP headers; a refusal is ``unauthenticated`` /
``permission_denied`` and never reaches the handler; admin and privacy
calls are audit-logged with their outcome, as by the gRPC interceptor).
Then:

- DecisionService: the protobuf request and a :class:`ConnectCall` go to
  :meth:`~arbiter.server.service.DecisionCore.invoke`, the entry the gRPC
  servicer uses; a :class:`~arbiter.server.errors.CallFailed` becomes a
  ``ConnectError`` with the same code and message
  (:func:`arbiter.server.errors.connect_code`).
- AdminService: the very servicer the gRPC port registers is called with a
  context whose ``abort`` raises the matching ``ConnectError``.

connectrpc answers in the protocol the caller spoke: Connect (JSON or
binary, unary over HTTP/1.1 or HTTP/2) or gRPC-Web.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NoReturn

import grpc
from connectrpc.code import Code
from connectrpc.errors import ConnectError
from connectrpc.request import RequestContext

from arbiter.server.errors import CallFailed, connect_code
from arbiter.server.rpc_metrics import note_outcome
from arbiter.server.security.audit import audit
from arbiter.server.security.grpc_guard import CALLER
from arbiter.server.security.guard import Guard
from arbiter.server.security.identity import AuthError, Identity
from arbiter.server.security.roles import rule_for
from arbiter.server.service import DecisionCore
from arbiter.v1 import admin_pb2, decision_pb2

__all__ = ["ConnectAdminService", "ConnectCall", "ConnectDecisionService"]

_DECISION = decision_pb2.DESCRIPTOR.services_by_name["DecisionService"]
_ADMIN = admin_pb2.DESCRIPTOR.services_by_name["AdminService"]
_AUTH_HEADERS = ("authorization", "x-api-key")


class ConnectCall:
    """A :class:`~arbiter.server.service.CallContext` over a connectrpc ``RequestContext``.

    The deadline is the caller's ``connect-timeout-ms`` (Connect) or
    ``grpc-timeout`` (gRPC-Web) header, as connectrpc parsed it. ``abort``
    makes it usable as a servicer context too (raises the ``ConnectError``).
    """

    __slots__ = ("_ctx",)

    def __init__(self, ctx: RequestContext[Any, Any]) -> None:
        self._ctx = ctx

    def time_remaining(self) -> float | None:
        remaining_ms = self._ctx.timeout_ms
        return None if remaining_ms is None else max(remaining_ms, 0.0) / 1000.0

    def invocation_metadata(self) -> Sequence[tuple[str, str]]:
        return tuple(self._ctx.request_headers.allitems())

    def peer(self) -> str:
        return self._ctx.client_address or ""

    async def abort(self, code: grpc.StatusCode, details: str) -> NoReturn:
        raise ConnectError(connect_code(code), details)


async def _observed(
    guard: Guard | None,
    path: str,
    request: Any,
    ctx: RequestContext[Any, Any],
    handler: Callable[[], Awaitable[Any]],
) -> Any:
    """:func:`_guarded`, reporting the call's status to the RPC metrics and access log."""
    try:
        response = await _guarded(guard, path, request, ctx, handler)
    except ConnectError as exc:
        name = exc.code.name
        note_outcome("CANCELLED" if name == "CANCELED" else name, request)
        raise
    note_outcome("OK", request, response)
    return response


async def _guarded(
    guard: Guard | None,
    path: str,
    request: Any,
    ctx: RequestContext[Any, Any],
    handler: Callable[[], Awaitable[Any]],
) -> Any:
    """Admit the call as the gRPC interceptor does, run ``handler`` as the caller, audit if the rule says so."""
    if guard is None:
        return await handler()
    rule = rule_for(path)
    audited = rule is not None and rule.audit
    peer = ctx.client_address or ""
    headers = {k: v for k, v in ctx.request_headers.allitems() if k in _AUTH_HEADERS}
    try:
        identity: Identity = await guard.admit(path, headers, None, request, rule)
    except AuthError as exc:
        if audited:
            audit(path, exc.identity, exc.code.upper(), request, peer)
        raise ConnectError(Code(exc.code), exc.message) from None
    token = CALLER.set(identity)
    outcome = "UNKNOWN"
    try:
        response = await handler()
        outcome = "OK"
        return response
    except ConnectError as exc:
        outcome = exc.code.name
        raise
    finally:
        CALLER.reset(token)
        if audited:
            audit(path, identity, outcome, request, peer)


class ConnectDecisionService:
    """``arbiter.v1.DecisionService`` for connectrpc (the generated ``DecisionService`` protocol)."""

    def __init__(self, service: DecisionCore, guard: Guard | None = None) -> None:
        self._service = service
        self._guard = guard

    async def _call(self, method: str, request: Any, ctx: RequestContext[Any, Any]) -> Any:
        async def handler() -> Any:
            try:
                return await self._service.invoke(method, request, ConnectCall(ctx))
            except CallFailed as failed:
                status = failed.status
                raise ConnectError(connect_code(status.code), status.message) from None

        return await _observed(
            self._guard, f"/{_DECISION.full_name}/{method}", request, ctx, handler
        )

    async def decide(
        self,
        request: decision_pb2.DecideRequest,
        ctx: RequestContext[decision_pb2.DecideRequest, decision_pb2.DecideResponse],
    ) -> decision_pb2.DecideResponse:
        response: decision_pb2.DecideResponse = await self._call("Decide", request, ctx)
        return response

    async def check(
        self,
        request: decision_pb2.CheckRequest,
        ctx: RequestContext[decision_pb2.CheckRequest, decision_pb2.CheckResponse],
    ) -> decision_pb2.CheckResponse:
        response: decision_pb2.CheckResponse = await self._call("Check", request, ctx)
        return response

    async def track(
        self,
        request: decision_pb2.TrackRequest,
        ctx: RequestContext[decision_pb2.TrackRequest, decision_pb2.TrackResponse],
    ) -> decision_pb2.TrackResponse:
        response: decision_pb2.TrackResponse = await self._call("Track", request, ctx)
        return response

    async def update_profile(
        self,
        request: decision_pb2.UpdateProfileRequest,
        ctx: RequestContext[decision_pb2.UpdateProfileRequest, decision_pb2.UpdateProfileResponse],
    ) -> decision_pb2.UpdateProfileResponse:
        response: decision_pb2.UpdateProfileResponse = await self._call(
            "UpdateProfile", request, ctx
        )
        return response


def _snake(name: str) -> str:
    """``GetPolicyStatus`` -> ``get_policy_status`` (the generated protocol's method names)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class ConnectAdminService:
    """``arbiter.v1.AdminService`` for connectrpc: every RPC calls the gRPC servicer's method of that name.

    The methods are made from the service descriptor, so an RPC added to
    ``admin.proto`` and implemented in the servicer is served here too.
    """

    def __init__(self, servicer: Any, guard: Guard | None = None) -> None:
        self._servicer = servicer
        self._guard = guard
        for method in _ADMIN.methods:
            setattr(self, _snake(method.name), self._method(method.name))

    def _method(self, name: str) -> Callable[[Any, RequestContext[Any, Any]], Awaitable[Any]]:
        path = f"/{_ADMIN.full_name}/{name}"

        async def call(request: Any, ctx: RequestContext[Any, Any]) -> Any:
            async def handler() -> Any:
                return await getattr(self._servicer, name)(request, ConnectCall(ctx))

            return await _observed(self._guard, path, request, ctx, handler)

        return call
