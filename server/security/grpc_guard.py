"""The gRPC adapter of the guard: a server interceptor that admits or refuses every call before its handler.

It reads the metadata and the verified client certificate (``x509_pem_cert``
of the auth context) of the call, runs :meth:`Guard.admit` with the parsed
request, and answers UNAUTHENTICATED / PERMISSION_DENIED without calling the
handler. The admitted caller of a unary call is available to the handler as
:data:`CALLER` (a context variable, set for the duration of the call).
Admin and privacy calls are audit-logged with their outcome.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import Any, Final

import grpc

from arbiter.server.security.audit import audit
from arbiter.server.security.guard import Guard
from arbiter.server.security.identity import (
    AuthError,
    Identity,
    PeerCertificate,
    peer_from_pem,
)
from arbiter.server.security.roles import Rule, rule_for

__all__ = ["CALLER", "GuardInterceptor", "peer_of"]

_log = logging.getLogger("arbiter.auth")

CALLER: Final[contextvars.ContextVar[Identity | None]] = contextvars.ContextVar(
    "arbiter_caller", default=None
)


def peer_of(context: Any) -> PeerCertificate | None:
    """The verified client certificate of the call's connection, if it presented one."""
    pem = context.auth_context().get("x509_pem_cert")
    return peer_from_pem(pem[0]) if pem else None


_NO_HEADERS: Final[Mapping[str, str]] = MappingProxyType({})


def _headers(context: Any) -> dict[str, str]:
    return {
        m.key: m.value
        for m in context.invocation_metadata() or ()
        if m.key in ("authorization", "x-api-key") and isinstance(m.value, str)
    }


class GuardInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Runs :class:`Guard` before every handler; wrapped handlers are built once per method."""

    def __init__(self, guard: Guard) -> None:
        self._guard = guard
        self._wrapped: dict[str, tuple[Any, Any]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[Any], Awaitable[Any]],
        handler_call_details: Any,
    ) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method: str = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        rule = rule_for(method)
        wrapped = handler if rule is not None and rule.public else self._wrap(method, rule, handler)
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    async def _admit(self, method: str, rule: Rule | None, request: Any, context: Any) -> Identity:
        guard = self._guard
        try:
            if not guard.enabled:  # nothing to read from the call: skip the metadata and TLS peer
                return await guard.admit(method, _NO_HEADERS, None, request, rule)
            return await guard.admit(method, _headers(context), peer_of(context), request, rule)
        except AuthError as exc:
            code = grpc.StatusCode[exc.code.upper()]
            _log.debug("%s refused: %s: %s", method, code.name, exc.message)
            if rule is not None and rule.audit:
                audit(method, exc.identity, code.name, request, context.peer())
            await context.abort(code, exc.message)
            raise AssertionError("unreachable: abort raises") from exc

    def _wrap(self, method: str, rule: Rule | None, handler: Any) -> Any:
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(method, rule, handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._streaming(method, rule, handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_stream is not None:
            return grpc.stream_stream_rpc_method_handler(
                self._streaming(method, rule, handler.stream_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return grpc.stream_unary_rpc_method_handler(
            self._stream_unary(method, rule, handler.stream_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _unary(self, method: str, rule: Rule | None, inner: Any) -> Any:
        audited = rule is not None and rule.audit

        async def guarded(request: Any, context: Any) -> Any:
            identity = await self._admit(method, rule, request, context)
            token = CALLER.set(identity)
            outcome = "UNKNOWN"
            try:
                response = await inner(request, context)
                outcome = "OK"
                return response
            except BaseException:
                code = context.code()
                outcome = code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"
                raise
            finally:
                CALLER.reset(token)
                if audited:
                    audit(method, identity, outcome, request, context.peer())

        return guarded

    def _streaming(self, method: str, rule: Rule | None, inner: Any) -> Any:
        async def guarded(request: Any, context: Any) -> AsyncIterator[Any]:
            await self._admit(method, rule, None, context)
            async for item in inner(request, context):
                yield item

        return guarded

    def _stream_unary(self, method: str, rule: Rule | None, inner: Any) -> Any:
        async def guarded(request_iterator: Any, context: Any) -> Any:
            await self._admit(method, rule, None, context)
            return await inner(request_iterator, context)

        return guarded
