"""The synchronous Arbiter client: one reused channel, deadlines, UNAVAILABLE retries, fallbacks."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self

import grpc

from arbiter.v1 import decision_pb2_grpc

from . import _convert
from ._auth import TokenSource
from ._base import ChannelOptions, ClientBase
from ._config import RetryPolicy, Timeouts
from ._errors import ArbiterError, error_from_rpc
from ._types import CheckResult, ConsentUpdate, Decision, Event, ProfileUpdateResult, TrackResult

__all__ = ["ArbiterClient"]


class ArbiterClient(ClientBase):
    """Synchronous client for ``arbiter.v1.DecisionService``; thread-safe, meant to live as long as the process.

    Every method has an overall deadline (``timeouts``, or ``timeout=`` per
    call) that includes retries. Only UNAVAILABLE (and CANCELLED, which a
    stopping server sends for calls it had received) is retried, with the very
    same request (same ``request_id``), so the server's idempotency makes the
    retry safe. When the deadline passes or the server stays unavailable,
    ``decide()`` returns a :class:`Decision` with no actions and
    ``fallback=True``, and ``check()`` returns ``allowed=False`` with
    ``fallback=True`` — unless ``raise_on_error=True`` (per call or for the
    client). Every other failure raises an :class:`ArbiterError` subclass;
    ``track()`` and ``update_profile()`` always raise.

    ``credentials`` makes the channel TLS (see :func:`tls_credentials`, with
    a client certificate for mutual TLS); ``token`` is a bearer token, or a
    callable returning the current one (e.g. :class:`RefreshingToken`), sent
    on every attempt. ``channel`` lets you pass a channel you manage; the
    client then does not close it.
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
        channel: grpc.Channel | None = None,
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
        if channel is None:
            if credentials is None:
                channel = grpc.insecure_channel(target, options=self._channel_options)
            else:
                channel = grpc.secure_channel(target, credentials, options=self._channel_options)
        self._channel: grpc.Channel = channel
        self._stub: Any = decision_pb2_grpc.DecisionServiceStub(channel)

    def close(self) -> None:
        """Close the channel (when the client created it). In-flight calls are cancelled."""
        if self._owns_channel:
            self._channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def decide(
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
        """Ask which actions to show or send to ``customer_id`` on ``placement``.

        ``channels`` limits the channels (empty: all); ``context`` is converted
        to typed values (see :func:`arbiter_client.to_value`); ``limit`` 0
        means 1. ``request_id`` defaults to a fresh UUID.
        """
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
            response = self._invoke(
                self._stub.Decide,
                request,
                timeout=self._timeout(timeout, self.timeouts.decide),
                request_id=request.request_id,
            )
        except ArbiterError as error:
            if self._should_fall_back(error, raise_on_error):
                return self._fallback_decision(request.request_id, error)
            raise
        return _convert.decision(response, request_id=request.request_id)

    def check(
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
        """Ask whether ``action_id`` may go to ``customer_id`` on ``channel`` now.

        With ``record=True`` an allowed send is counted against caps, once per
        ``request_id``.
        """
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
            response = self._invoke(
                self._stub.Check,
                request,
                timeout=self._timeout(timeout, self.timeouts.check),
                request_id=request.request_id,
            )
        except ArbiterError as error:
            if self._should_fall_back(error, raise_on_error):
                return self._fallback_check(request.request_id, error)
            raise
        return _convert.check_result(response, request_id=request.request_id)

    def track(
        self, events: Event | Iterable[Event], *, timeout: float | None = None
    ) -> TrackResult:
        """Ingest one event or a batch; results come back in order."""
        request = self._track_request(events)
        response = self._invoke(
            self._stub.Track,
            request,
            timeout=self._timeout(timeout, self.timeouts.track),
            request_id="",
        )
        return _convert.track_result(response)

    def update_profile(
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
        """Write traits, consent and segments from ``source`` at ``timestamp`` (default: now).

        A ``None`` trait value removes the trait. ``segments`` is the
        customer's complete segment membership (``None`` leaves it unchanged,
        an empty one empties it). Older writes never overwrite newer ones; the
        result says which fields were ignored as stale.
        """
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
        response = self._invoke(
            self._stub.UpdateProfile,
            request,
            timeout=self._timeout(timeout, self.timeouts.update_profile),
            request_id=request.request_id,
        )
        return _convert.update_profile_result(response, request_id=request.request_id)

    def _invoke(
        self, method: Callable[..., Any], request: Any, *, timeout: float, request_id: str
    ) -> Any:
        """Call ``method`` within ``timeout`` seconds overall; gRPC retries UNAVAILABLE
        (the channel's service config, see :class:`RetryPolicy`) within that deadline."""
        try:
            return method(request, timeout=timeout, metadata=self._call_metadata())
        except grpc.RpcError as exc:
            raise error_from_rpc(exc, request_id=request_id) from exc
