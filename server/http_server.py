"""The HTTP listener: DecisionService and AdminService over Connect (JSON and binary) and gRPC-Web, for browsers, edge runtimes and curl.

The ASGI application is connectrpc's generated
``DecisionServiceASGIApplication`` around :class:`ConnectDecisionService`
(one more face of the same :class:`~arbiter.server.service.DecisionCore`
the gRPC port serves), wrapped in Starlette's CORS middleware when browser
origins are allowed. It is served by Hypercorn (HTTP/1.1 and cleartext
HTTP/2) **inside the server's own event loop**, so both ports share the
policy registry, the store, the metrics and the shutdown.

Every call passes the same guard as the gRPC port (bearer tokens and API
keys; client-certificate identities are a gRPC-port feature, because
Hypercorn does not hand the peer certificate to the application). With TLS
configured the listener serves HTTPS with the same certificates, reloaded
with them (each handshake takes the current context).

Routes: ``POST /arbiter.v1.DecisionService/<Method>`` and
``/arbiter.v1.AdminService/<Method>`` (Connect unary, ``application/json``
or ``application/proto``; gRPC-Web with ``application/grpc-web[+proto]``).
Anything else is 404.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Sequence
from typing import Any, Final

from connectrpc.compat import google_protobuf_binary_codec
from connectrpc.compat._codec import ProtoJSONCodec
from google.protobuf import json_format
from google.protobuf.message import Message
from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config

from arbiter.server.connect_service import ConnectAdminService, ConnectDecisionService
from arbiter.server.parse import MAX_REQUEST_BYTES
from arbiter.server.rpc_metrics import RpcMiddleware, RpcObserver
from arbiter.server.security.guard import Guard
from arbiter.server.security.tls import ServerCertificates
from arbiter.server.service import DecisionCore
from arbiter.v1.admin_connect import AdminServiceASGIApplication
from arbiter.v1.decision_connect import DecisionServiceASGIApplication

__all__ = ["CORS_ALLOW_HEADERS", "CORS_EXPOSE_HEADERS", "HttpListener", "build_app"]

_log = logging.getLogger("arbiter.server")

# What Connect-Web and gRPC-Web clients send and must be allowed to read
# (the lists connectrpc.com/cors publishes for Go servers).
CORS_ALLOW_HEADERS: Final = (
    "content-type",
    "connect-protocol-version",
    "connect-timeout-ms",
    "connect-accept-encoding",
    "connect-content-encoding",
    "grpc-timeout",
    "grpc-accept-encoding",
    "x-grpc-web",
    "x-user-agent",
    "authorization",
)
CORS_EXPOSE_HEADERS: Final = (
    "grpc-status",
    "grpc-message",
    "grpc-status-details-bin",
    "connect-content-encoding",
)
_MAX_REQUEST_BYTES: Final = MAX_REQUEST_BYTES  # as the gRPC port's max_receive_message_length


class _CompactJSONCodec(ProtoJSONCodec[Any]):
    """Connect's ``json`` codec for google.protobuf messages, without pretty-printing."""

    def encode(self, message: Message) -> bytes:
        text: str = json_format.MessageToJson(message, indent=None)
        return text.encode()


class _Router:
    """Routes ``/<service>/<method>`` to that service's connectrpc application (404 otherwise)."""

    def __init__(self, apps: Sequence[Any]) -> None:
        self._apps = {f"{app.path}/": app for app in apps}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":  # the services need no start-up or shutdown here
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        path: str = scope.get("path", "")
        app = self._apps.get(path[: path.rfind("/") + 1])
        if app is None:
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await app(scope, receive, send)


def build_app(
    service: DecisionCore,
    cors_origins: Sequence[str] = (),
    guard: Guard | None = None,
    admin: Any = None,
    observer: RpcObserver | None = None,
) -> Any:
    """The ASGI application: Connect + gRPC-Web for ``service`` (and the ``admin`` servicer) behind
    ``guard``, each call timed and counted by ``observer``; CORS for ``cors_origins`` (``*`` = any)."""
    codecs = [google_protobuf_binary_codec(), _CompactJSONCodec()]
    apps: list[Any] = [
        DecisionServiceASGIApplication(
            ConnectDecisionService(service, guard),
            read_max_bytes=_MAX_REQUEST_BYTES,
            codecs=codecs,
        )
    ]
    if admin is not None:
        apps.append(
            AdminServiceASGIApplication(
                ConnectAdminService(admin, guard), read_max_bytes=_MAX_REQUEST_BYTES, codecs=codecs
            )
        )
    app: Any = _Router(apps)
    if observer is not None:
        app = RpcMiddleware(app, observer)
    if cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        app = CORSMiddleware(
            app,
            allow_origins=list(cors_origins),
            allow_methods=["POST", "GET", "OPTIONS"],
            allow_headers=list(CORS_ALLOW_HEADERS),
            expose_headers=list(CORS_EXPOSE_HEADERS),
            max_age=7200,
        )
    return app


def _bind(address: str, *, reuse_port: bool = False) -> socket.socket:
    """A listening-ready TCP socket on ``HOST:PORT`` (port 0 = any free one). ``OSError`` if taken.

    ``reuse_port``: share the port with the other worker processes (``SO_REUSEPORT``)."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
    family, kind, proto, _, sockaddr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(sockaddr)
        sock.listen(1024)  # queue connections until Hypercorn's accept loop runs
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {address} (HTTP): {exc}") from exc
    return sock


class _Config(Config):
    """Hypercorn's config, with TLS from :class:`ServerCertificates` (reloaded per handshake)."""

    def __init__(self, certificates: ServerCertificates | None) -> None:
        super().__init__()
        self._certificates = certificates

    @property
    def ssl_enabled(self) -> bool:
        return self._certificates is not None

    def create_ssl_context(self) -> ssl.SSLContext | None:
        certificates = self._certificates
        if certificates is None:
            return None
        context = certificates.ssl_context()
        context.set_alpn_protocols(["h2", "http/1.1"])

        def current(conn: ssl.SSLObject, _name: str | None, _ctx: ssl.SSLContext) -> None:
            fresh = certificates.ssl_context()  # replaced on reload
            if fresh is not conn.context:
                fresh.set_alpn_protocols(["h2", "http/1.1"])
                conn.context = fresh

        context.sni_callback = current
        return context


class HttpListener:
    """Hypercorn serving :func:`build_app` on one address, as a task of the running event loop."""

    def __init__(
        self,
        app: Any,
        address: str,
        *,
        grace_period_s: float,
        log_level: int = logging.WARNING,
        certificates: ServerCertificates | None = None,
        reuse_port: bool = False,
    ) -> None:
        self.address = address
        self._reuse_port = reuse_port
        self._certificates = certificates
        self._app = app
        self._grace = grace_period_s
        self._log_level = log_level
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        host = self.address.rpartition(":")[0]
        scheme = "https" if self._certificates is not None else "http"
        return f"{scheme}://{host}:{self.port}"

    async def start(self) -> None:
        """Bind (``OSError`` if the address is taken) and start serving in the background."""
        sock = _bind(self.address, reuse_port=self._reuse_port)
        self.port = int(sock.getsockname()[1])
        config = _Config(self._certificates)
        config.bind = [f"fd://{sock.detach()}"]  # hypercorn owns the descriptor from here on
        config.graceful_timeout = self._grace
        config.keep_alive_timeout = 75.0  # longer than common proxies' idle timeouts
        # Hypercorn closes a connection after 1,000 requests by default; over
        # HTTP/2 that GOAWAY strands in-flight streams (clients time out).
        # Clients keep connections for their lifetime, as on the gRPC port.
        config.keep_alive_max_requests = 2**62
        config.accesslog = None
        config.include_server_header = False
        hypercorn_log = logging.getLogger("hypercorn.error")
        hypercorn_log.setLevel(max(self._log_level, logging.WARNING))
        config.errorlog = hypercorn_log
        self._task = asyncio.create_task(
            hypercorn_serve(self._app, config, shutdown_trigger=self._stop.wait, mode="asgi"),
            name="arbiter-http",
        )

    async def stop(self) -> None:
        """Stop accepting; in-flight requests get the grace period (Hypercorn's graceful_timeout)."""
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def stop_now(self) -> None:
        """Cancel serving at once (second signal)."""
        if self._task is not None:
            self._task.cancel()
