"""The gRPC transport of ``arbiter.v1.DecisionService``: a thin adapter over :class:`~arbiter.server.service.DecisionCore`.

A grpc.aio servicer context is a :class:`~arbiter.server.service.CallContext`
as it is (its ``time_remaining`` and ``invocation_metadata``; the caller the
auth interceptor admitted is in ``CALLER``), so each method hands it to the
core and aborts with the status of a :class:`~arbiter.server.errors.CallFailed`.
Nothing else happens here.
"""

from __future__ import annotations

from typing import Any

from arbiter.server.errors import CallFailed
from arbiter.server.service import DecisionCore
from arbiter.v1 import decision_pb2, decision_pb2_grpc

__all__ = ["DecisionService"]


class DecisionService(decision_pb2_grpc.DecisionServiceServicer):  # type: ignore[misc]
    """Implements ``arbiter.v1.DecisionService`` over gRPC on a :class:`DecisionCore`."""

    def __init__(self, core: DecisionCore) -> None:
        self.core = core

    async def _call(self, method: str, request: Any, context: Any) -> Any:
        try:
            return await self.core.invoke(method, request, context)
        except CallFailed as failed:
            await context.abort(failed.status.code, failed.status.message)
            raise AssertionError("unreachable: abort raises") from failed

    async def Decide(
        self, request: decision_pb2.DecideRequest, context: Any
    ) -> decision_pb2.DecideResponse:
        response: decision_pb2.DecideResponse = await self._call("Decide", request, context)
        return response

    async def Check(
        self, request: decision_pb2.CheckRequest, context: Any
    ) -> decision_pb2.CheckResponse:
        response: decision_pb2.CheckResponse = await self._call("Check", request, context)
        return response

    async def Track(
        self, request: decision_pb2.TrackRequest, context: Any
    ) -> decision_pb2.TrackResponse:
        response: decision_pb2.TrackResponse = await self._call("Track", request, context)
        return response

    async def UpdateProfile(
        self, request: decision_pb2.UpdateProfileRequest, context: Any
    ) -> decision_pb2.UpdateProfileResponse:
        response: decision_pb2.UpdateProfileResponse = await self._call(
            "UpdateProfile", request, context
        )
        return response
