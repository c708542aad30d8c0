"""The decision log on a bounded Redis Stream: one entry per record, findable by decision id, readable by consumer groups.

Keys (one Cluster hash tag, ``{dlog}``, so a batch is one script on one node):

- ``<prefix>:{dlog}:stream`` -- a STREAM; each entry has the fields
  ``decision_id`` and ``record`` (the record's JSON). Trimmed on every
  write to about ``maxlen`` entries (``XADD ... MAXLEN ~``), so it is
  bounded. A warehouse loader or Kafka Connect reads it with a consumer
  group (``XGROUP CREATE <stream> loader $ MKSTREAM``, then
  ``XREADGROUP``); ``arbiter decisions tail|export`` read it with
  ``XREAD`` / ``XRANGE``.
- ``<prefix>:{dlog}:id:<decision_id>`` -- a STRING holding the entry id of
  the decision's newest record, expiring after ``retention_s``: how
  ``ExplainDecision`` finds a record without scanning. A record trimmed out
  of the stream is not found, whatever its index says.
- ``<prefix>:{dlog}:c:<customer_id>`` -- a ZSET of the entry ids of the
  customer's records (scored by their ms; the newest
  :data:`CUSTOMER_INDEX_MAX` kept), expiring ``retention_s`` after the
  customer's last record: how ``ExportCustomer`` lists and
  ``ForgetCustomer`` deletes (``XDEL``) a customer's records without
  scanning the stream (``decision_log_customer.lua``). Records written
  before the index existed are not in it.

A batch is one ``EVALSHA`` (``decision_log.lua``): every ``XADD`` and index
write of the batch, atomically. Each entry also carries a ``customer_id``
field.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any, Final

from redis import exceptions as rex
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from .decision_log import customer_of
from .redis_errors import unavailable_reason
from .redis_keys import DEFAULT_PREFIX
from .redis_store import Script
from .redis_url import redis_client
from .store import StoreUnavailable

__all__ = ["CUSTOMER_INDEX_MAX", "DEFAULT_RETENTION_S", "DEFAULT_STREAM_MAXLEN", "RedisStreamSink"]

DEFAULT_STREAM_MAXLEN: Final = 1_000_000
DEFAULT_RETENTION_S: Final = 7 * 86_400.0
_TIMEOUT_S: Final = 5.0
# Entry ids indexed per customer (the newest kept): bounds the index of a runaway customer.
CUSTOMER_INDEX_MAX: Final = 100_000
_CUSTOMER_PAGE: Final = 500
_SCRIPT: Final = Script("decision_log")
_CUSTOMER_SCRIPT: Final = Script("decision_log_customer")


class RedisStreamSink:
    """A :class:`~arbiter.state.decision_log.DecisionSink` on a Redis Stream (see the module docstring)."""

    name = "redis"

    def __init__(
        self,
        client: Redis | RedisCluster,
        *,
        prefix: str = DEFAULT_PREFIX,
        maxlen: int = DEFAULT_STREAM_MAXLEN,
        retention_s: float = DEFAULT_RETENTION_S,
        timeout_s: float = _TIMEOUT_S,
    ) -> None:
        self._client = client
        self.stream = f"{prefix}:{{dlog}}:stream"
        self.index_prefix = f"{prefix}:{{dlog}}:id:"
        self.customer_prefix = f"{prefix}:{{dlog}}:c:"
        self.maxlen = maxlen or DEFAULT_STREAM_MAXLEN
        self.retention_s = retention_s or DEFAULT_RETENTION_S
        self._timeout_s = timeout_s

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        maxlen: int = 0,
        retention_s: float = 0.0,
    ) -> RedisStreamSink:
        """A sink on ``url`` (``redis+cluster://`` for Redis Cluster)."""
        options: dict[str, Any] = {
            "socket_timeout": _TIMEOUT_S + 1.0,
            "socket_connect_timeout": _TIMEOUT_S,
            "retry": Retry(NoBackoff(), 0),
            "protocol": 2,
            "driver_info": None,
            "max_connections": 4,
        }
        client = redis_client(url, **options)
        return cls(client, prefix=prefix, maxlen=maxlen, retention_s=retention_s)

    async def _call(self, operation: str, awaitable: Any) -> Any:
        try:
            async with asyncio.timeout(self._timeout_s):
                return await awaitable
        except Exception as exc:
            reason = unavailable_reason(exc)
            if reason is None:
                raise
            raise StoreUnavailable(operation, reason) from exc

    async def write(self, batch: Sequence[tuple[str, bytes]]) -> None:
        if not batch:
            return
        args: list[Any] = [
            self.maxlen,
            max(int(self.retention_s), 1),
            self.index_prefix,
            self.customer_prefix,
            CUSTOMER_INDEX_MAX,
        ]
        for decision_id, record in batch:
            args += [decision_id, customer_of(record), record]
        await self._call("decision_log", self._eval(args))

    async def _eval(self, args: Sequence[Any], script: Script = _SCRIPT) -> Any:
        try:
            return await self._client.evalsha(script.sha, 1, self.stream, *args)
        except rex.NoScriptError:
            return await self._client.eval(script.source, 1, self.stream, *args)

    async def customer_records(self, customer_id: str) -> list[bytes]:
        index = self.customer_prefix + customer_id
        found: list[bytes] = []
        offset = 0
        while True:
            *records, scanned = await self._call(
                "decision_log",
                self._eval((index, "read", offset, _CUSTOMER_PAGE), _CUSTOMER_SCRIPT),
            )
            found += [r if isinstance(r, bytes) else str(r).encode() for r in records]
            offset += _CUSTOMER_PAGE
            if int(scanned) < _CUSTOMER_PAGE:
                return found

    async def forget_customer(self, customer_id: str) -> int:
        index = self.customer_prefix + customer_id
        return int(
            await self._call("decision_log", self._eval((index, "forget"), _CUSTOMER_SCRIPT))
        )

    async def find(self, decision_id: str) -> bytes | None:
        entry = await self._call("decision_log", self._client.get(self.index_prefix + decision_id))
        if entry is None:
            return None
        found = await self._call("decision_log", self._client.xrange(self.stream, entry, entry))
        return _record(found[0][1]) if found else None

    async def read(self, *, start: str = "-", count: int = 1000) -> AsyncIterator[bytes]:
        """Every record from entry ``start`` on (``-``: the oldest kept), oldest first."""
        cursor = start
        while True:
            page = await self._call(
                "decision_log", self._client.xrange(self.stream, cursor, "+", count=count)
            )
            for entry_id, fields in page:
                yield _record(fields)
                cursor = "(" + _text(entry_id)
            if len(page) < count:
                return

    async def follow(
        self, *, from_start: bool = False, block_ms: int = 1000
    ) -> AsyncIterator[bytes]:
        """New records as they are appended (``from_start``: every kept record first)."""
        cursor = "0-0" if from_start else "$"
        if cursor == "$":  # resolve "$" once, so no entry is missed between two reads
            info = await self._call("decision_log", self._client.xrevrange(self.stream, count=1))
            cursor = _text(info[0][0]) if info else "0-0"
        while True:
            reply = await self._call(
                "decision_log",
                self._client.xread({self.stream: cursor}, count=500, block=block_ms),
            )
            for _stream, entries in reply or ():
                for entry_id, fields in entries:
                    cursor = _text(entry_id)
                    yield _record(fields)

    async def length(self) -> int:
        """Entries in the stream now."""
        return int(await self._call("decision_log", self._client.xlen(self.stream)))

    async def close(self) -> None:
        await self._client.aclose()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _record(fields: dict[Any, Any]) -> bytes:
    value = fields.get(b"record", fields.get("record", b""))
    return value if isinstance(value, bytes) else str(value).encode()
