"""gRPC request parsing that cannot fail: an unparseable body is INVALID_ARGUMENT, counted and logged once.

grpc.aio parses a request with the handler's deserializer before any
handler or interceptor behaviour runs. When that raises (truncated bytes,
invalid UTF-8 in a string, a value nested past protobuf's recursion limit),
gRPC answers ``UNKNOWN`` with the exception's class name and logs a
multi-line traceback at ERROR, and the call never reaches the code that
counts it. :class:`RequestParseInterceptor` -- the outermost interceptor --
gives every unary handler a deserializer that never raises: it returns a
:class:`Malformed` marker instead, which the wrapped behaviour answers with
``INVALID_ARGUMENT`` (``request: not a valid <type> message``), one log line
at debug level (like every other invalid argument) and a count in
``arbiter_requests_total{code="INVALID_ARGUMENT"}`` -- before any other
layer (authentication included) sees the request.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

import grpc

__all__ = ["MALFORMED", "Malformed", "RequestParseInterceptor"]

_log = logging.getLogger("arbiter.server")

MALFORMED: Final = "not a valid {} message (malformed protobuf)"


class Malformed:
    """What the tolerant deserializer returns for bytes that do not parse as ``message_type``."""

    __slots__ = ("message_type",)

    def __init__(self, message_type: str) -> None:
        self.message_type = message_type

    @property
    def detail(self) -> str:
        return "request: " + MALFORMED.format(self.message_type)


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None
    owner = getattr(deserializer, "__self__", None)  # Message.FromString is a bound classmethod
    name = getattr(getattr(owner, "DESCRIPTOR", None), "full_name", "request")

    def parse(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception:  # DecodeError, RecursionError...: the bytes, not the server, are wrong
            return Malformed(name)

    return parse


class RequestParseInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Answers unparseable unary requests with INVALID_ARGUMENT (see the module docstring).

    ``count(method, code)`` records the refusal (``method`` is the RPC's
    short name, e.g. ``Decide``); it is called only for services whose full
    name starts with ``counted_prefix``.
    """

    def __init__(
        self, count: Callable[[str, str], None], *, counted_prefix: str = "/arbiter.v1."
    ) -> None:
        self._count = count
        self._prefix = counted_prefix
        self._wrapped: dict[str, tuple[Any, Any]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[Any], Awaitable[Any]],
        handler_call_details: Any,
    ) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None or (handler.unary_unary is None and handler.unary_stream is None):
            return handler  # streaming requests (reflection) parse per message: gRPC's own
        method: str = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._wrap(method, handler)
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    def _wrap(self, method: str, handler: Any) -> Any:
        short = method.rsplit("/", 1)[-1]
        counted = method.startswith(self._prefix)

        async def refuse(request: Malformed, context: Any) -> None:
            _log.debug("%s: invalid argument: %s", short, request.detail)
            if counted:
                self._count(short, "INVALID_ARGUMENT")
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.detail)

        if handler.unary_unary is not None:
            inner = handler.unary_unary

            async def unary(request: Any, context: Any) -> Any:
                if isinstance(request, Malformed):
                    await refuse(request, context)
                return await inner(request, context)

            return grpc.unary_unary_rpc_method_handler(
                unary,
                request_deserializer=_tolerant(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        streaming = handler.unary_stream

        async def unary_stream(request: Any, context: Any) -> Any:
            if isinstance(request, Malformed):
                await refuse(request, context)
            result = streaming(request, context)
            if hasattr(result, "__aiter__"):
                async for response in result:
                    yield response
            else:  # a behaviour that writes through context.write (health Watch)
                await result

        return grpc.unary_stream_rpc_method_handler(
            unary_stream,
            request_deserializer=_tolerant(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )
