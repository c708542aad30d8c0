"""One Redis connection shared by every concurrent caller: commands written back to back, replies matched in order.

The request path of :class:`~arbiter.state.redis_store.RedisStore` on a
single Redis node. redis-py's asyncio client costs ~100 µs of client CPU
per script call: a pool checkout with a fork check, ``asyncio.wait_for``
around every socket read and write, argument encoding in Python, one
socket write per command. Here (measured in ``docs/decisions.md``):

- commands arrive packed (``hiredis.pack_command``, C) and are appended
  to a buffer that is written once per event-loop turn: concurrent calls
  share one ``write`` (automatic pipelining);
- replies are parsed by ``hiredis.Reader`` (C) and resolve the callers'
  futures in order (Redis answers in order on a connection);
- no timeout of its own: the caller's deadline (``asyncio.timeout_at`` in
  the store) bounds the wait, and a caller that gives up leaves its reply
  to be read and dropped, so the order stays aligned;
- error replies become redis-py's exception classes
  (``BaseParser.parse_error``), so the store classifies them exactly as it
  classifies redis-py's (``state/redis_errors.py``); a lost connection
  fails every pending call with ``redis.exceptions.ConnectionError`` and the
  next call reconnects.

RESP2, like the store's redis-py clients: nothing is sent before the first
command except ``AUTH`` / ``SELECT`` when the URL asks for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import deque
from typing import Any, cast
from urllib.parse import unquote, urlparse

import hiredis
from redis import exceptions as rex
from redis._parsers.base import BaseParser

__all__ = ["PipelinedConnection", "pack"]


def pack(*args: str | bytes | int) -> bytes:
    """One command in the Redis protocol (C)."""
    return bytes(hiredis.pack_command(args))  # type: ignore[arg-type]  # stub: a 1-tuple


class PipelinedConnection(asyncio.Protocol):
    """A pipelined connection to ``redis://[user:password@]host[:port][/db]`` (see the module docstring)."""

    def __init__(self, url: str) -> None:
        parsed = urlparse(url)
        if parsed.scheme != "redis":
            raise ValueError(f"PipelinedConnection: only redis:// URLs, not {parsed.scheme}://")
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or 6379
        self._db = int(parsed.path.strip("/") or 0)
        self._username = unquote(parsed.username) if parsed.username else None
        self._password = unquote(parsed.password) if parsed.password else None
        self._transport: asyncio.Transport | None = None
        self._reader = hiredis.Reader(replyError=rex.ResponseError)
        self._pending: deque[asyncio.Future[Any]] = deque()
        self._outgoing: list[bytes] = []
        self._connecting: asyncio.Future[None] | None = None

    # ------------------------------------------------------------------ callers

    async def execute(self, command: bytes) -> Any:
        """Send one packed command (:func:`pack`) and return its reply; error replies raise."""
        if self._transport is None:
            await self._connect()
        assert self._transport is not None
        loop = asyncio.get_running_loop()
        reply: asyncio.Future[Any] = loop.create_future()
        if not self._outgoing:
            loop.call_soon(self._flush)
        self._outgoing.append(command)
        self._pending.append(reply)
        return await reply

    def close(self) -> None:
        """Close the connection; pending calls fail with ``ConnectionError``."""
        if self._transport is not None:
            self._transport.close()
            self._lost(rex.ConnectionError("connection closed by the client"))

    # ------------------------------------------------------------------ connection

    async def _connect(self) -> None:
        if self._connecting is not None:  # another caller is connecting: wait for it
            await asyncio.shield(self._connecting)
            return
        loop = asyncio.get_running_loop()
        self._connecting = loop.create_future()
        try:
            try:
                await loop.create_connection(lambda: self, self.host, self.port)
            except OSError as exc:
                raise rex.ConnectionError(f"connecting to {self.host}:{self.port}: {exc}") from exc
            if self._password is not None:
                auth = (self._username, self._password) if self._username else (self._password,)
                await self.execute(pack("AUTH", *auth))
            if self._db:
                await self.execute(pack("SELECT", self._db))
            self._connecting.set_result(None)
        except BaseException as exc:
            self._connecting.set_exception(exc)
            self._connecting.exception()  # retrieved: waiters re-raise it from shield
            self.close()
            raise
        finally:
            self._connecting = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost(rex.ConnectionError(f"connection to {self.host}:{self.port} lost: {exc}"))

    def _lost(self, error: Exception) -> None:
        self._transport = None
        self._outgoing.clear()
        self._reader = hiredis.Reader(replyError=rex.ResponseError)
        pending, self._pending = self._pending, deque()
        for reply in pending:
            if not reply.done():
                reply.set_exception(error)

    def _flush(self) -> None:
        if self._transport is None or not self._outgoing:
            return
        data = b"".join(self._outgoing)
        self._outgoing.clear()
        self._transport.write(data)

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        while True:
            try:
                reply = self._reader.gets()
            except hiredis.ProtocolError as exc:
                assert self._transport is not None
                self._transport.close()
                self._lost(rex.ConnectionError(f"protocol error: {exc}"))
                return
            if reply is False:
                return
            waiter = self._pending.popleft()
            if waiter.done():  # its caller gave up (timeout, cancelled): drop the reply
                continue
            if isinstance(reply, rex.ResponseError):
                waiter.set_exception(BaseParser.parse_error(str(reply)))  # type: ignore[no-untyped-call]
            else:
                waiter.set_result(reply)
