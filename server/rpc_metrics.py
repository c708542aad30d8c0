"""Every RPC seen from the outside, on both ports: latency, final status (including calls refused before the handler), the log context and the access line.

- gRPC: :class:`RpcInterceptor`, the outermost server interceptor, wraps the
  unary handlers of ``arbiter.v1`` services; the clock starts when the
  handler is invoked (the body is read and decoded) and stops when the
  response is ready, so it includes the guard, validation, store calls and
  the engine. The status is the call's final code (a guard refusal is
  ``UNAUTHENTICATED`` / ``PERMISSION_DENIED``). It also decodes the body:
  grpc runs a handler's deserializer before any Arbiter code, and a body
  that does not decode (truncated, invalid UTF-8, nested past protobuf's
  recursion limit) used to answer ``UNKNOWN`` with an exception class name
  and a traceback at ERROR, uncounted. The interceptor's deserializer never
  raises (:class:`Malformed` stands in for the message), and the call is
  refused with ``INVALID_ARGUMENT`` naming the message type, counted, one
  DEBUG line -- before the guard and the handler: nothing was decoded, so
  nothing can be authorised or written.
- HTTP (Connect, gRPC-Web): :class:`RpcMiddleware` around the ASGI
  application; the adapters (:mod:`arbiter.server.connect_service`) report
  the outcome with :func:`note_outcome`, and a call connectrpc refused
  before any handler ran (malformed body, wrong content type) is classified
  by its HTTP status.

Each call runs with its :data:`arbiter.server.logs.CALL` context (rpc,
transport, request id) and ends with one access line on ``arbiter.access``:
at INFO for every call when ``--access-log`` is on, else at WARNING only
for server-side failures (``INTERNAL``, ``UNKNOWN``, ``UNAVAILABLE``,
``DEADLINE_EXCEEDED``, ``RESOURCE_EXHAUSTED``), one per RPC and status every
10 s during an outage (the next one says how many were left out:
``repeated``).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

import grpc

from arbiter.server.logs import CALL, CallContext
from arbiter.server.metrics import METRICS

__all__ = ["Malformed", "RpcInterceptor", "RpcMiddleware", "RpcObserver", "note_outcome"]

_access = logging.getLogger("arbiter.access")
_log = logging.getLogger("arbiter.server")

SERVER_FAILURES: Final = frozenset(
    {"INTERNAL", "UNKNOWN", "UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "DATA_LOSS"}
)
_SERVICES: Final = ("/arbiter.v1.DecisionService/", "/arbiter.v1.AdminService/")
# Without --access-log, a failing RPC logs one line per status per interval (with a count).
REPEAT_INTERVAL_S: Final = 10.0
# Connect's HTTP status of each code (connectrpc.com/docs/protocol), for calls refused before
# a handler reported its outcome; ambiguous statuses map to the most common code.
_HTTP_CODES: Final = {
    200: "OK",
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "UNIMPLEMENTED",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    412: "FAILED_PRECONDITION",
    413: "RESOURCE_EXHAUSTED",
    415: "INTERNAL",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


class _Outcome:
    """What an HTTP adapter reports about its call (mutable, shared through a context variable)."""

    __slots__ = ("code", "decision_id")

    def __init__(self) -> None:
        self.code = ""
        self.decision_id = ""


_OUTCOME: Final[contextvars.ContextVar[_Outcome | None]] = contextvars.ContextVar(
    "arbiter_outcome", default=None
)


def note_outcome(code: str, request: Any = None, response: Any = None) -> None:
    """Report the status of the HTTP call being served (and its ids, for the access line)."""
    outcome = _OUTCOME.get()
    if outcome is not None:
        outcome.code = code
        outcome.decision_id = getattr(response, "decision_id", "") or outcome.decision_id
    call = CALL.get()
    if call is not None and request is not None and not call.request_id:
        call.request_id = getattr(request, "request_id", "") or ""


class RpcObserver:
    """Counts, times and logs calls (one per server); ``access_log``: an INFO line per call."""

    def __init__(self, *, access_log: bool = False) -> None:
        self.access_log = access_log
        self._children: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        # (rpc, code) -> (when the last failure line went out, lines dropped since)
        self._repeats: dict[tuple[str, str], tuple[float, int]] = {}

    def begin(self, method: str, transport: str, request: Any) -> contextvars.Token[Any]:
        request_id = getattr(request, "request_id", "")
        return CALL.set(
            CallContext(method, transport, request_id if isinstance(request_id, str) else "")
        )

    def end(
        self,
        token: contextvars.Token[Any],
        code: str,
        seconds: float,
        decision_id: str = "",
    ) -> None:
        call = CALL.get()
        try:
            if call is not None:
                call.decision_id = decision_id or call.decision_id
                self._count(call.rpc, call.transport, code, seconds)
                self._log(call, code, seconds)
        finally:
            CALL.reset(token)

    def _count(self, method: str, transport: str, code: str, seconds: float) -> None:
        key = (method, transport, code)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                METRICS.requests.labels(method, code, transport),
                METRICS.latency.labels(method, transport),
            )
        children[0].inc()
        children[1].observe(seconds)

    def _log(self, call: CallContext, code: str, seconds: float) -> None:
        failed = code in SERVER_FAILURES
        if not (self.access_log or failed):
            return
        level = logging.WARNING if failed else logging.INFO
        if not _access.isEnabledFor(level):
            return
        extra: dict[str, Any] = {"status": code, "duration_ms": round(seconds * 1000, 3)}
        if failed and not self.access_log:
            repeated = self._throttled(call.rpc, code)
            if repeated is None:
                return
            if repeated:
                extra["repeated"] = repeated
        _access.log(level, "%s %s %.2fms", call.rpc, code, seconds * 1000, extra=extra)

    def _throttled(self, rpc: str, code: str) -> int | None:
        """During an outage every call fails alike: one warning per RPC and status per
        :data:`REPEAT_INTERVAL_S`; ``None`` drops this one, else how many were dropped since."""
        now = time.monotonic()
        last, dropped = self._repeats.get((rpc, code), (-REPEAT_INTERVAL_S, 0))
        if now - last < REPEAT_INTERVAL_S:
            self._repeats[(rpc, code)] = (last, dropped + 1)
            return None
        self._repeats[(rpc, code)] = (now, 0)
        return dropped


class Malformed:
    """What the interceptor's deserializer returns for a body that is not a valid message."""

    __slots__ = ("message",)
    request_id = ""  # read by RpcObserver.begin like a request's

    def __init__(self, message: str) -> None:
        self.message = message


def _safe(deserializer: Any) -> Any:
    """``deserializer`` that returns :class:`Malformed` instead of raising (see the module docstring)."""
    if deserializer is None:
        return None
    name = getattr(getattr(deserializer, "__self__", None), "DESCRIPTOR", None)
    type_name = name.full_name if name is not None else "request"

    def deserialize(body: bytes) -> Any:
        try:
            return deserializer(body)
        except Exception:  # DecodeError, RecursionError, ...: the client sent garbage
            return Malformed(f"request body is not a valid {type_name} message")

    return deserialize


def _grpc_code(context: Any) -> str:
    code = context.code()
    return code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"


class RpcInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """The gRPC side of :class:`RpcObserver` (outermost interceptor; unary ``arbiter.v1`` RPCs)."""

    def __init__(self, observer: RpcObserver) -> None:
        self._observer = observer
        self._wrapped: dict[str, tuple[Any, Any]] = {}

    async def intercept_service(
        self, continuation: Callable[[Any], Awaitable[Any]], handler_call_details: Any
    ) -> Any:
        handler = await continuation(handler_call_details)
        path: str = handler_call_details.method
        if handler is None or handler.unary_unary is None or not path.startswith(_SERVICES):
            return handler
        cached = self._wrapped.get(path)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = grpc.unary_unary_rpc_method_handler(
            self._observed(path.rpartition("/")[2], handler.unary_unary),
            request_deserializer=_safe(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )
        self._wrapped[path] = (handler, wrapped)
        return wrapped

    def _observed(self, method: str, inner: Any) -> Any:
        observer = self._observer

        async def observed(request: Any, context: Any) -> Any:
            started = time.perf_counter()
            token = observer.begin(method, "grpc", request)
            code, decision_id = "UNKNOWN", ""
            try:
                if isinstance(request, Malformed):
                    code = "INVALID_ARGUMENT"
                    _log.debug("%s: INVALID_ARGUMENT: %s", method, request.message)
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.message)
                response = await inner(request, context)
                code, decision_id = "OK", getattr(response, "decision_id", "")
                return response
            except asyncio.CancelledError:  # the client went away, or its deadline passed
                expired = (context.time_remaining() or 1.0) <= 0
                code = "DEADLINE_EXCEEDED" if expired else "CANCELLED"
                raise
            except BaseException:
                code = _grpc_code(context)
                raise
            finally:
                observer.end(token, code, time.perf_counter() - started, decision_id)

        return observed


class RpcMiddleware:
    """The HTTP side of :class:`RpcObserver`: ASGI middleware around the Connect / gRPC-Web app."""

    def __init__(self, app: Any, observer: RpcObserver) -> None:
        self._app = app
        self._observer = observer

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path: str = scope.get("path", "") if scope["type"] == "http" else ""
        if not path.startswith(_SERVICES):
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        transport = "connect"
        for name, value in scope.get("headers", ()):
            if name == b"content-type" and value.startswith(b"application/grpc-web"):
                transport = "grpc-web"
        outcome = _Outcome()
        reset = _OUTCOME.set(outcome)
        token = self._observer.begin(path.rpartition("/")[2], transport, None)
        status = 0

        async def sending(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._app(scope, receive, sending)
        except asyncio.CancelledError:
            outcome.code = outcome.code or "CANCELLED"
            raise
        finally:
            _OUTCOME.reset(reset)
            code = outcome.code or _HTTP_CODES.get(status, "UNKNOWN")
            self._observer.end(token, code, time.perf_counter() - started, outcome.decision_id)
