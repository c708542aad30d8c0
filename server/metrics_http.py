"""Prometheus ``/metrics`` over HTTP(S): only that path, behind the same TLS and guard as the gRPC port.

With TLS configured the endpoint serves the server's (reloadable)
certificate and, with a client CA, requires client certificates. With
authentication configured a scrape needs the ``metrics`` role (a bearer
token, an API key or a mapped client certificate). Any other path is 404.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
import threading
from collections.abc import Callable, Iterable
from http import HTTPStatus
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import REGISTRY, CollectorRegistry, make_wsgi_app, multiprocess

from arbiter.server.security.guard import Guard
from arbiter.server.security.identity import AuthError, Unauthenticated, peer_from_der
from arbiter.server.security.tls import ServerCertificates

__all__ = ["MetricsServer"]

_log = logging.getLogger("arbiter.server")
_PEER = "arbiter.peer_der"
_HANDSHAKE_TIMEOUT_S = 10.0

StartResponse = Callable[..., Any]


class _Handler(WSGIRequestHandler):
    def get_environ(self) -> dict[str, Any]:
        environ: dict[str, Any] = super().get_environ()
        if isinstance(self.connection, ssl.SSLSocket):
            der = self.connection.getpeercert(binary_form=True)
            if der:
                environ[_PEER] = der
        return environ

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("metrics: " + format, *args)


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    certificates: ServerCertificates | None = None

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.certificates is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(_HANDSHAKE_TIMEOUT_S)
        try:
            tls = self.certificates.ssl_context().wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            _log.debug("metrics: TLS handshake with %s failed: %s", client_address, exc)
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            tls.close()


def _registry() -> CollectorRegistry:
    """The default registry, or with ``--workers N`` (``PROMETHEUS_MULTIPROC_DIR`` set) one that
    sums the samples every worker process wrote."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


class MetricsServer:
    """``/metrics`` on ``address`` (``HOST:PORT``) in a background thread."""

    def __init__(
        self,
        address: str,
        guard: Guard,
        loop: asyncio.AbstractEventLoop,
        certificates: ServerCertificates | None = None,
    ) -> None:
        self.address = address
        self._guard = guard
        self._loop = loop
        self._metrics = make_wsgi_app(_registry())
        host, _, port = address.rpartition(":")
        _Server.address_family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
        self._server = make_server(
            host.strip("[]"), int(port), self._app, server_class=_Server, handler_class=_Handler
        )
        self._server.certificates = certificates
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="arbiter-metrics", daemon=True
        )

    @property
    def scheme(self) -> str:
        return "https" if self._server.certificates is not None else "http"

    def start(self) -> None:
        self._thread.start()
        host = self.address.rpartition(":")[0]
        _log.info("metrics on %s://%s:%d/metrics", self.scheme, host, self.port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found: the only path is /metrics\n"]
        headers = {
            "authorization": environ.get("HTTP_AUTHORIZATION", ""),
            "x-api-key": environ.get("HTTP_X_API_KEY", ""),
        }
        der = environ.get(_PEER)
        peer = peer_from_der(der) if der else None
        admit = self._guard.admit("/metrics", headers, peer, None)
        try:
            asyncio.run_coroutine_threadsafe(admit, self._loop).result(_HANDSHAKE_TIMEOUT_S)
        except AuthError as exc:
            unauthenticated = isinstance(exc, Unauthenticated)
            status = f"{exc.http_status} {HTTPStatus(exc.http_status).phrase}"
            extra = [("WWW-Authenticate", "Bearer")] if unauthenticated else []
            start_response(status, [("Content-Type", "text/plain"), *extra])
            return [exc.message.encode() + b"\n"]
        result: Iterable[bytes] = self._metrics(environ, start_response)
        return result
