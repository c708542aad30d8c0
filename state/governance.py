"""Where the fleet keeps its policy versions and operator pauses: in this process, or in Redis.

The server's :class:`arbiter.server.governance.Governance` decides *what*
to store (bundles, the active pointer, pauses, replica heartbeats, all as
JSON-able dicts); this module only keeps them, atomically, and tells every
replica that something changed.

- :class:`MemoryGovernanceStore` -- the embedded store: this process is the
  whole fleet; nothing survives a restart (the policy directory is
  re-activated at start) unless the server runs with ``--state-file``,
  which keeps it in the file (:meth:`MemoryGovernanceStore.dump` /
  :meth:`~MemoryGovernanceStore.restore`).
- :class:`RedisGovernanceStore` -- every key under one Cluster hash tag,
  ``<prefix>:{gov}:...``, so a change is one ``MULTI``/``EXEC`` on one node:

  ==============  ======  ====================================================
  key             type    content
  ==============  ======  ====================================================
  ``bundle:<d>``  STRING  one bundle (files, version, digest, test result), JSON
  ``history``     LIST    activations, newest first (JSON), trimmed to N
  ``active``      STRING  the active activation (JSON): digest, version, by, at
  ``pauses``      HASH    ``<kind>:<name>`` -> pause (JSON)
  ``epoch``       STRING  incremented by every change (the periodic check)
  ``replicas``    HASH    replica id -> heartbeat (JSON, with ``seen_ms``)
  ``changed``     PUBSUB  the new epoch, published after every change
  ==============  ======  ====================================================

  A bundle no longer in the history is deleted with the change that dropped it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from .redis_keys import DEFAULT_PREFIX
from .redis_url import parse_redis_url, redis_client
from .store import StoreUnavailable

__all__ = [
    "GovernanceState",
    "GovernanceStore",
    "MemoryGovernanceStore",
    "RedisGovernanceStore",
    "open_governance_store",
]

_log = logging.getLogger("arbiter.governance")
_TIMEOUT_S: Final = 2.0

Doc = dict[str, Any]


@dataclass(frozen=True, slots=True)
class GovernanceState:
    """One consistent read: the change counter, the active activation, history, pauses."""

    epoch: int = 0
    active: Doc | None = None
    history: tuple[Doc, ...] = ()
    pauses: dict[str, Doc] = field(default_factory=dict)


class GovernanceStore(Protocol):
    """What :class:`arbiter.server.governance.Governance` needs (see the module docstring)."""

    name: str

    async def read(self) -> GovernanceState: ...

    async def epoch(self) -> int: ...

    async def bundle(self, digest: str) -> Doc | None: ...

    async def activate(
        self, bundle: Doc | None, activation: Doc, keep: int, *, if_new: bool = False
    ) -> int:
        """Store ``bundle`` (``None``: already stored), push ``activation`` to the history
        (at most ``keep`` kept) and make it the active one; returns the new epoch. With
        ``if_new``, do nothing when the history already holds that digest (replicas
        starting together with the same new files activate it once)."""
        ...

    async def set_pause(self, key: str, pause: Doc | None) -> int:
        """Set (``None``: remove) the pause ``key``; returns the new epoch."""
        ...

    async def heartbeat(self, replica: str, doc: Doc, *, forget_before_ms: int) -> None: ...

    async def replicas(self) -> dict[str, Doc]: ...

    async def listen(self, on_change: Callable[[int], None]) -> None:
        """Call ``on_change(epoch)`` for every change published by any replica, until
        cancelled (returns at once when there is no one else to hear from)."""
        ...

    async def close(self) -> None: ...


class MemoryGovernanceStore:
    """In-process (see the module docstring)."""

    name = "memory"

    def __init__(self) -> None:
        self._epoch = 0
        self._active: Doc | None = None
        self._history: list[Doc] = []
        self._bundles: dict[str, Doc] = {}
        self._pauses: dict[str, Doc] = {}
        self._replicas: dict[str, Doc] = {}

    async def read(self) -> GovernanceState:
        return GovernanceState(self._epoch, self._active, tuple(self._history), dict(self._pauses))

    async def epoch(self) -> int:
        return self._epoch

    async def bundle(self, digest: str) -> Doc | None:
        return self._bundles.get(digest)

    async def activate(
        self, bundle: Doc | None, activation: Doc, keep: int, *, if_new: bool = False
    ) -> int:
        if if_new and any(a["digest"] == activation["digest"] for a in self._history):
            return self._epoch
        if bundle is not None:
            self._bundles[bundle["digest"]] = bundle
        self._history.insert(0, activation)
        del self._history[keep:]
        kept = {a["digest"] for a in self._history}
        for digest in list(self._bundles):
            if digest not in kept:
                del self._bundles[digest]
        self._active = activation
        self._epoch += 1
        return self._epoch

    async def set_pause(self, key: str, pause: Doc | None) -> int:
        if pause is None:
            self._pauses.pop(key, None)
        else:
            self._pauses[key] = pause
        self._epoch += 1
        return self._epoch

    async def heartbeat(self, replica: str, doc: Doc, *, forget_before_ms: int) -> None:
        self._replicas[replica] = doc

    async def replicas(self) -> dict[str, Doc]:
        return dict(self._replicas)

    async def listen(self, on_change: Callable[[int], None]) -> None:
        return None

    async def close(self) -> None:
        return None

    def dump(self) -> bytes:
        """Versions, bundles and pauses as JSON, for the embedded state file
        (:class:`arbiter.state.StateFile` section ``governance``); replicas are not kept."""
        return json.dumps(
            {
                "epoch": self._epoch,
                "active": self._active,
                "history": self._history,
                "bundles": self._bundles,
                "pauses": self._pauses,
            },
            sort_keys=True,
        ).encode()

    def restore(self, data: bytes) -> None:
        """Replace versions, bundles and pauses with a :meth:`dump` (at start, before the
        server bootstraps: a restart then serves the version that was active, with its
        pauses). ``ValueError`` when ``data`` is not one."""
        doc = json.loads(data)
        if not isinstance(doc, dict) or not isinstance(doc.get("history"), list):
            raise ValueError("not a governance dump")
        self._epoch = int(doc.get("epoch", 0))
        self._active = doc.get("active")
        self._history = list(doc["history"])
        self._bundles = dict(doc.get("bundles", {}))
        self._pauses = dict(doc.get("pauses", {}))


class RedisGovernanceStore:
    """In Redis (see the module docstring)."""

    name = "redis"

    def __init__(self, client: Any, url: str = "", *, prefix: str = DEFAULT_PREFIX) -> None:
        self._client = client
        self._url = url
        base = f"{prefix}:{{gov}}:"
        self.k_active = base + "active"
        self.k_history = base + "history"
        self.k_pauses = base + "pauses"
        self.k_epoch = base + "epoch"
        self.k_replicas = base + "replicas"
        self.channel = base + "changed"
        self._closed = False
        self._bundle_prefix = base + "bundle:"

    @classmethod
    def from_url(cls, url: str, *, prefix: str = DEFAULT_PREFIX) -> RedisGovernanceStore:
        """A store on ``url`` (``redis+cluster://`` for Redis Cluster)."""
        client = redis_client(
            url,
            socket_timeout=_TIMEOUT_S + 1.0,
            socket_connect_timeout=_TIMEOUT_S,
            protocol=2,
            max_connections=4,
        )
        return cls(client, url, prefix=prefix)

    def _bundle_key(self, digest: str) -> str:
        return self._bundle_prefix + digest

    async def _run(self, what: str, coro: Any) -> Any:
        try:
            async with asyncio.timeout(_TIMEOUT_S):
                return await coro
        except Exception as exc:
            raise StoreUnavailable(f"governance.{what}", f"{type(exc).__name__}: {exc}") from exc

    async def read(self) -> GovernanceState:
        pipe = self._client.pipeline(transaction=True)
        pipe.get(self.k_epoch)
        pipe.get(self.k_active)
        pipe.lrange(self.k_history, 0, -1)
        pipe.hgetall(self.k_pauses)
        epoch, active, history, pauses = await self._run("read", pipe.execute())
        return GovernanceState(
            int(epoch or 0),
            json.loads(active) if active else None,
            tuple(json.loads(h) for h in history),
            {_text(k): json.loads(v) for k, v in pauses.items()},
        )

    async def epoch(self) -> int:
        return int(await self._run("epoch", self._client.get(self.k_epoch)) or 0)

    async def bundle(self, digest: str) -> Doc | None:
        raw = await self._run("bundle", self._client.get(self._bundle_key(digest)))
        return json.loads(raw) if raw else None

    async def activate(
        self, bundle: Doc | None, activation: Doc, keep: int, *, if_new: bool = False
    ) -> int:
        epoch, changed = await self._run(
            "activate", self._activate(bundle, activation, keep, if_new)
        )
        return await self._changed(epoch) if changed else int(epoch)

    async def _activate(
        self, bundle: Doc | None, activation: Doc, keep: int, if_new: bool
    ) -> tuple[int, bool]:
        """Optimistic: WATCH the history, so two activations at once never drop each
        other's bundle (the loser reads again)."""
        from redis.exceptions import WatchError

        while True:
            async with self._client.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(self.k_history)
                    history = [json.loads(h) for h in await pipe.lrange(self.k_history, 0, -1)]
                    if if_new and any(h["digest"] == activation["digest"] for h in history):
                        return int(await pipe.get(self.k_epoch) or 0), False
                    kept = {h["digest"] for h in history[: keep - 1]} | {activation["digest"]}
                    dropped = {h["digest"] for h in history} - kept
                    pipe.multi()
                    if bundle is not None:
                        pipe.set(self._bundle_key(bundle["digest"]), json.dumps(bundle))
                    pipe.lpush(self.k_history, json.dumps(activation))
                    pipe.ltrim(self.k_history, 0, keep - 1)
                    for digest in dropped:
                        pipe.delete(self._bundle_key(digest))
                    pipe.set(self.k_active, json.dumps(activation))
                    pipe.incr(self.k_epoch)
                    replies = await pipe.execute()
                except WatchError:
                    continue
            return int(replies[-1]), True

    async def set_pause(self, key: str, pause: Doc | None) -> int:
        pipe = self._client.pipeline(transaction=True)
        if pause is None:
            pipe.hdel(self.k_pauses, key)
        else:
            pipe.hset(self.k_pauses, key, json.dumps(pause))
        pipe.incr(self.k_epoch)
        replies = await self._run("pause", pipe.execute())
        return await self._changed(int(replies[-1]))

    async def _changed(self, epoch: int) -> int:
        # The periodic epoch check covers a lost message: a failed publish is only logged.
        try:
            await self._run("publish", self._client.publish(self.channel, str(epoch)))
        except StoreUnavailable as exc:
            _log.warning("cannot announce governance change %d: %s", epoch, exc)
        return epoch

    async def heartbeat(self, replica: str, doc: Doc, *, forget_before_ms: int) -> None:
        known = await self._run("heartbeat", self._client.hgetall(self.k_replicas))
        stale = [k for k, v in known.items() if json.loads(v).get("seen_ms", 0) < forget_before_ms]
        pipe = self._client.pipeline(transaction=True)
        pipe.hset(self.k_replicas, replica, json.dumps(doc))
        if stale:
            pipe.hdel(self.k_replicas, *stale)
        await self._run("heartbeat", pipe.execute())

    async def replicas(self) -> dict[str, Doc]:
        known = await self._run("replicas", self._client.hgetall(self.k_replicas))
        return {_text(k): json.loads(v) for k, v in known.items()}

    async def listen(self, on_change: Callable[[int], None]) -> None:
        """Subscribe on a connection of its own; reconnect (after a pause) when it drops."""
        from redis.asyncio import Redis

        last_error = ""
        while not self._closed:
            client = Redis.from_url(
                parse_redis_url(self._url)[0], socket_connect_timeout=_TIMEOUT_S, protocol=2
            )
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            with contextlib.suppress(ValueError):
                                on_change(int(message["data"]))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the periodic check carries on meanwhile
                if self._closed:
                    return
                if str(exc) != last_error:  # once per reason, not once a second
                    _log.warning("governance change channel lost (%s); resubscribing", exc)
                last_error = str(exc)
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    await client.aclose()

    async def close(self) -> None:
        self._closed = True  # ends listen() even if a cancellation was swallowed on connect
        await self._client.aclose()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def open_governance_store(redis_url: str = "") -> GovernanceStore:
    """Redis when the server runs on Redis (``redis_url``), else in-process."""
    if redis_url:
        return RedisGovernanceStore.from_url(redis_url)
    return MemoryGovernanceStore()
