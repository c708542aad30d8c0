"""The asyncio Arbiter client (``grpc.aio``), with the same semantics as the sync client."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self

import grpc
import grpc.aio

from arbiter.v1 import decision_pb2_grpc

from . import _convert
from ._auth import TokenSource
from ._base import ChannelOptions, ClientBase
from ._config import RetryPolicy, Timeouts
from ._errors import ArbiterError, error_from_rpc
from ._types import CheckResult, ConsentUpdate, Decision, Event, ProfileUpdateResult, TrackResult

__all__ = ["AsyncArbiterClient"]


class AsyncArbiterClient(ClientBase):
    """asyncio client for ``arbiter.v1.DecisionService``; see :class:`ArbiterClient` for the semantics.

    The channel is created on first use, inside the running event loop, and
    belongs to that loop. Close it with ``await client.close()`` or
    ``async with AsyncArbiterClient(...) as client``.
    """

    def __init__(
        self,
        target: str,
        *,
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        metadata: Sequence[tuple[str, str]] = (),
        channel_options: ChannelOptions = (),
        raise_on_error: bool = False,
        token: TokenSource | None = None,
        channel: grpc.aio.Channel | None = None,
    ) -> None:
        super().__init__(
            target,
            timeouts=timeouts,
            retry=retry,
            credentials=credentials,
            metadata=metadata,
            channel_options=channel_options,
            raise_on_error=raise_on_error,
            token=token,
        )
        self._owns_channel = channel is None
        self._closed = False
        self._channel: grpc.aio.Channel | None = channel
        self._stub: Any = (
            None if channel is None else decision_pb2_grpc.DecisionServiceStub(channel)
        )

    def _get_stub(self) -> Any:
        if self._closed:
            raise ValueError("AsyncArbiterClient is closed")
        if self._stub is None:
            if self._credentials is None:
                self._channel = grpc.aio.insecure_channel(
                    self.target, options=self._channel_options
                )
            else:
                self._channel = grpc.aio.secure_channel(
                    self.target, self._credentials, options=self._channel_options
                )
            self._stub = decision_pb2_grpc.DecisionServiceStub(self._channel)
        return self._stub

    async def close(self, grace: float | None = None) -> None:
        """Close the channel (when the client created it), letting calls finish within ``grace`` seconds."""
        self._closed = True
        if self._owns_channel and self._channel is not None:
            channel, self._channel, self._stub = self._channel, None, None
            await channel.close(grace)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def decide(
        self,
        customer_id: str,
        placement: str = "",
        *,
        channels: Sequence[str] | str = (),
        context: Mapping[str, object] | None = None,
        limit: int = 0,
        explain: bool = False,
        dry_run: bool = False,
        request_id: str | None = None,
        timeout: float | None = None,
        raise_on_error: bool | None = None,
    ) -> Decision:
        """See :meth:`ArbiterClient.decide`."""
        request = self._decide_request(
            customer_id=customer_id,
            placement=placement,
            channels=channels,
            context=context,
            limit=limit,
            explain=explain,
            dry_run=dry_run,
            request_id=request_id,
        )
        try:
            response = await self._invoke(
                self._get_stub().Decide,
                request,
                timeout=self._timeout(timeout, self.timeouts.decide),
                request_id=request.request_id,
            )
        except ArbiterError as error:
            if self._should_fall_back(error, raise_on_error):
                return self._fallback_decision(request.request_id, error)
            raise
        return _convert.decision(response, request_id=request.request_id)

    async def check(
        self,
        customer_id: str,
        action_id: str,
        channel: str,
        *,
        record: bool = False,
        context: Mapping[str, object] | None = None,
        decision_id: str = "",
        request_id: str | None = None,
        timeout: float | None = None,
        raise_on_error: bool | None = None,
    ) -> CheckResult:
        """See :meth:`ArbiterClient.check`."""
        request = self._check_request(
            customer_id=customer_id,
            action_id=action_id,
            channel=channel,
            record=record,
            context=context,
            decision_id=decision_id,
            request_id=request_id,
        )
        try:
            response = await self._invoke(
                self._get_stub().Check,
                request,
                timeout=self._timeout(timeout, self.timeouts.check),
                request_id=request.request_id,
            )
        except ArbiterError as error:
            if self._should_fall_back(error, raise_on_error):
                return self._fallback_check(request.request_id, error)
            raise
        return _convert.check_result(response, request_id=request.request_id)

    async def track(
        self, events: Event | Iterable[Event], *, timeout: float | None = None
    ) -> TrackResult:
        """See :meth:`ArbiterClient.track`."""
        request = self._track_request(events)
        response = await self._invoke(
            self._get_stub().Track,
            request,
            timeout=self._timeout(timeout, self.timeouts.track),
            request_id="",
        )
        return _convert.track_result(response)

    async def update_profile(
        self,
        customer_id: str,
        *,
        source: str,
        timestamp: datetime | None = None,
        traits: Mapping[str, object] | None = None,
        consents: Iterable[ConsentUpdate] = (),
        do_not_contact: bool | None = None,
        segments: Iterable[str] | None = None,
        request_id: str | None = None,
        timeout: float | None = None,
    ) -> ProfileUpdateResult:
        """See :meth:`ArbiterClient.update_profile`."""
        request = self._update_profile_request(
            customer_id=customer_id,
            source=source,
            timestamp=timestamp,
            traits=traits,
            consents=consents,
            do_not_contact=do_not_contact,
            segments=segments,
            request_id=request_id,
        )
        response = await self._invoke(
            self._get_stub().UpdateProfile,
            request,
            timeout=self._timeout(timeout, self.timeouts.update_profile),
            request_id=request.request_id,
        )
        return _convert.update_profile_result(response, request_id=request.request_id)

    async def _invoke(
        self, method: Callable[..., Any], request: Any, *, timeout: float, request_id: str
    ) -> Any:
        """Call ``method`` within ``timeout`` seconds overall; gRPC retries UNAVAILABLE
        (the channel's service config, see :class:`RetryPolicy`) within that deadline."""
        try:
            return await method(request, timeout=timeout, metadata=self._call_metadata())
        except grpc.RpcError as exc:  # grpc.aio.AioRpcError is a grpc.RpcError
            raise error_from_rpc(exc, request_id=request_id) from exc
