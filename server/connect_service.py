"""DecisionService over Connect and gRPC-Web: a thin adapter from connectrpc's handler API to :meth:`DecisionService.invoke`.

Nothing here decides anything: each call first passes the same
:class:`~arbiter.server.security.guard.Guard` as on the gRPC port (bearer
token or API key from the HTTP headers; a refusal is ``unauthenticated`` /
``permission_denied`` and never reaches the handler), then hands the
protobuf request and a :class:`~server.errors.CallContext` built from the
HTTP request to the same ``invoke`` the gRPC servicer uses, and turns a
:class:`~server.errors.CallFailed` into a ``ConnectError`` with the same code
and message (:func:`server.errors.connect_code`). connectrpc answers in the
protocol the caller spoke: Connect (JSON or binary, unary over HTTP/1.1 or
HTTP/2) or gRPC-Web.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connectrpc.code import Code
from connectrpc.errors import ConnectError
from connectrpc.request import RequestContext

from arbiter.server.decision_service import DecisionService
from arbiter.server.errors import CallFailed, connect_code
from arbiter.server.security.guard import Guard
from arbiter.server.security.identity import AuthError
from arbiter.v1 import decision_pb2

__all__ = ["ConnectCall", "ConnectDecisionService"]

_SERVICE = decision_pb2.DESCRIPTOR.services_by_name["DecisionService"].full_name


class ConnectCall:
    """A :class:`~server.errors.CallContext` over a connectrpc ``RequestContext``.

    The deadline is the caller's ``connect-timeout-ms`` (Connect) or
    ``grpc-timeout`` (gRPC-Web) header, as connectrpc parsed it.
    """

    __slots__ = ("_ctx",)

    def __init__(self, ctx: RequestContext[Any, Any]) -> None:
        self._ctx = ctx

    def time_remaining(self) -> float | None:
        remaining_ms = self._ctx.timeout_ms
        return None if remaining_ms is None else max(remaining_ms, 0.0) / 1000.0

    def invocation_metadata(self) -> Sequence[tuple[str, str]]:
        return tuple(self._ctx.request_headers.allitems())


class ConnectDecisionService:
    """``arbiter.v1.DecisionService`` for connectrpc (the generated ``DecisionService`` protocol)."""

    def __init__(self, service: DecisionService, guard: Guard | None = None) -> None:
        self._service = service
        self._guard = guard

    async def _admit(self, method: str, request: Any, ctx: RequestContext[Any, Any]) -> None:
        """The guard, as the gRPC interceptor runs it (no client-certificate identity over HTTP)."""
        if self._guard is None:
            return
        headers = {
            k: v for k, v in ctx.request_headers.allitems() if k in ("authorization", "x-api-key")
        }
        try:
            await self._guard.admit(f"/{_SERVICE}/{method}", headers, None, request)
        except AuthError as exc:
            raise ConnectError(Code(exc.code), exc.message) from None

    async def _call(self, method: str, request: Any, ctx: RequestContext[Any, Any]) -> Any:
        await self._admit(method, request, ctx)
        try:
            return await self._service.invoke(method, request, ConnectCall(ctx))
        except CallFailed as failed:
            status = failed.status
            raise ConnectError(connect_code(status.code), status.message) from None

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
