"""Delivery: read a destination's outbox in a consumer group, deliver, acknowledge.

Per destination, each ``arbiter worker`` is one consumer of group
``delivery`` (its name: host and pid). An entry is removed only after the
provider accepted it (``XACK`` + ``XDEL`` in one step), so delivery is
at-least-once; the entry's idempotency key, sent to the provider, is what
turns a re-delivery into a no-op there. Pending entries of a dead consumer
are taken over with ``XAUTOCLAIM`` once idle for ``reclaim_idle_s``.

Failures: an attempt that fails (timeout, 5xx, 429, a rejection) moves the
entry to the destination's retry set, due after exponential backoff with
full jitter, or after the provider's ``Retry-After`` when later; after
``max_attempts`` it goes to the dead-letter stream with its last error
(``arbiter outbox dlq``). Before each attempt the worker takes a token from
the destination's bucket in Redis (shared by every worker) and asks its own
circuit breaker: while open (a provider outage) entries wait in the retry
set without spending attempts, and one probe at a time tests the provider.
Each outcome is reported as an event on the customer through ``Track``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
from typing import Any

from arbiter.server.outbound.adapters import Adapter, open_adapter
from arbiter.server.outbound.config import Destination, OutboundConfig
from arbiter.server.outbound.metrics import OUTBOUND
from arbiter.server.outbound.redis_ops import (
    GROUP,
    Entry,
    Scripts,
    decode_entry,
    encode_entry,
    outbox_keys,
)
from arbiter.server.service import Call, DecisionCore
from arbiter.v1 import decision_pb2

__all__ = ["Breaker", "DeliveryWorker", "backoff_s"]

_log = logging.getLogger("arbiter.outbound")


def backoff_s(destination: Destination, attempts: int, rng: random.Random) -> float:
    """Full jitter: uniform over [0, min(max, base * 2**(attempts - 1))]."""
    cap = min(destination.backoff.max_s, destination.backoff.base_s * 2 ** max(0, attempts - 1))
    return rng.uniform(0, cap)


class Breaker:
    """A per-destination circuit breaker of one worker: ``failures`` consecutive failures open it
    for ``open_s``; then it is half-open: one probe at a time, closed again by a success."""

    def __init__(self, failures: int, open_s: float) -> None:
        self.threshold = failures
        self.open_s = open_s
        self.failures = 0
        self.open_until = 0.0
        self.probing = False

    def allow(self, now: float) -> bool:
        if now < self.open_until:
            return False
        if self.failures >= self.threshold:  # half-open: one probe at a time
            if self.probing:
                return False
            self.probing = True
        return True

    def success(self) -> None:
        self.failures, self.probing, self.open_until = 0, False, 0.0

    def failure(self, now: float) -> None:
        self.failures += 1
        self.probing = False
        if self.failures >= self.threshold:
            self.open_until = now + self.open_s

    @property
    def is_open(self) -> bool:
        return time.monotonic() < self.open_until


class DeliveryWorker:
    """One destination's delivery loop in one ``arbiter worker`` (see the module docstring)."""

    def __init__(
        self,
        core: DecisionCore | None,
        client: Any,
        config: OutboundConfig,
        destination: Destination,
        *,
        adapter: Adapter | None = None,
        consumer: str | None = None,
        reclaim_idle_s: float = 30.0,
    ) -> None:
        self.core = core
        self.client = client
        self.config = config
        self.destination = destination
        self.adapter = adapter if adapter is not None else open_adapter(destination)
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.keys = outbox_keys(config.prefix, destination.id)
        self.scripts = Scripts(client)
        self.breaker = Breaker(destination.breaker.failures, destination.breaker.open_s)
        self.reclaim_idle_ms = round(reclaim_idle_s * 1000)
        self.rng = random.Random()
        self._stop = asyncio.Event()
        self._slots = asyncio.Semaphore(config.worker.deliveries_in_flight)

    def stop(self) -> None:
        self._stop.set()

    async def ensure_group(self) -> None:
        try:
            await self.client.xgroup_create(self.keys.stream, GROUP, id="0", mkstream=True)
        except Exception as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def run(self) -> None:
        await self.ensure_group()
        tasks: set[asyncio.Task[None]] = set()
        last_reclaim = 0.0
        while not self._stop.is_set():
            try:
                await self.scripts.promote(keys=[self.keys.retry, self.keys.stream], args=[500])
                batch: list[tuple[bytes, dict[bytes, bytes]]] = []
                now = time.monotonic()
                if now - last_reclaim > max(1.0, self.reclaim_idle_ms / 4000):
                    last_reclaim = now
                    batch.extend(await self._reclaim())
                free = self.config.worker.deliveries_in_flight - len(tasks)
                if free > 0:
                    reply = await self.client.xreadgroup(
                        GROUP, self.consumer, {self.keys.stream: ">"}, count=free, block=100
                    )
                    for _, entries in reply or ():
                        batch.extend(entries)
                else:
                    await asyncio.sleep(0.01)
            except Exception as exc:
                _log.warning("outbox %s: reading failed: %s", self.destination.id, exc)
                await self._sleep(1.0)
                continue
            for entry_id, fields in batch:
                if not fields:  # deleted while pending
                    await self.client.xack(self.keys.stream, GROUP, entry_id)
                    continue
                await self._slots.acquire()
                task = asyncio.create_task(self._handle(entry_id, fields[b"e"]))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                task.add_done_callback(lambda _t: self._slots.release())
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await self.adapter.close()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def _reclaim(self) -> list[tuple[bytes, dict[bytes, bytes]]]:
        """Pending entries of consumers idle for ``reclaim_idle_s`` (a dead worker's)."""
        out: list[tuple[bytes, dict[bytes, bytes]]] = []
        start = "0-0"
        for _ in range(10):
            reply = await self.client.xautoclaim(
                self.keys.stream, GROUP, self.consumer, self.reclaim_idle_ms, start, count=100
            )
            start, claimed = reply[0], reply[1]
            out.extend(claimed)
            if start in (b"0-0", "0-0"):
                break
        return out

    async def _handle(self, entry_id: bytes, raw: bytes) -> None:
        try:
            await self.deliver(entry_id, decode_entry(raw))
        except Exception:
            # Left pending: XAUTOCLAIM hands it out again after reclaim_idle_s.
            _log.exception("outbox %s: entry %r failed", self.destination.id, entry_id)

    async def deliver(self, entry_id: bytes, entry: Entry) -> str:
        """One attempt at ``entry``; returns ``delivered``, ``retry``, ``dead_lettered`` or
        ``held`` (the breaker is open: back to the retry set, no attempt spent)."""
        dest = self.destination
        if not self.breaker.allow(time.monotonic()):
            wait = max(0.1, self.breaker.open_until - time.monotonic()) + self.rng.uniform(0, 1)
            await self._move(entry_id, entry, "retry", wait)
            return "held"
        if dest.rate_per_s > 0:
            while True:
                wait_us = int(
                    await self.scripts.take(
                        keys=[self.keys.bucket], args=[dest.rate_per_s, dest.burst]
                    )
                )
                if wait_us <= 0:
                    break
                OUTBOUND.rate_waits.labels(dest.id).inc()
                await asyncio.sleep(wait_us / 1e6)
        result = await self.adapter.deliver(entry)
        if result.outcome == "delivered":
            self.breaker.success()
            OUTBOUND.breaker_open.labels(dest.id).set(0)
            await self.scripts.ack(keys=[self.keys.stream], args=[GROUP, entry_id])
            OUTBOUND.deliveries.labels(dest.id, "delivered").inc()
            await self._feedback("delivered", entry)
            return "delivered"
        self.breaker.failure(time.monotonic())
        OUTBOUND.breaker_open.labels(dest.id).set(1 if self.breaker.is_open else 0)
        failed = Entry(
            **{**_fields(entry), "attempts": entry.attempts + 1, "last_error": result.error}
        )
        if failed.attempts >= dest.max_attempts:
            await self._move(entry_id, failed, "dlq")
            OUTBOUND.deliveries.labels(dest.id, "dead_lettered").inc()
            OUTBOUND.dlq.labels(dest.id).inc()
            await self._feedback("failed", failed)
            return "dead_lettered"
        delay = backoff_s(dest, failed.attempts, self.rng)
        if result.retry_after_s is not None:
            delay = max(delay, result.retry_after_s)
        await self._move(entry_id, failed, "retry", delay)
        OUTBOUND.deliveries.labels(dest.id, "retry").inc()
        OUTBOUND.retries.labels(dest.id).inc()
        if result.retry_after_s is not None or "429" in result.error:
            await self._feedback("rate_limited", failed)
        return "retry"

    async def _move(self, entry_id: bytes, entry: Entry, mode: str, delay_s: float = 0.0) -> None:
        target = self.keys.retry if mode == "retry" else self.keys.dlq
        due = str(int(time.time() * 1000 + delay_s * 1000))
        await self.scripts.move(
            keys=[self.keys.stream, target],
            args=[GROUP, entry_id, encode_entry(entry), mode, due],
        )

    async def _feedback(self, outcome: str, entry: Entry) -> None:
        """The outcome as an event on the customer, through Track (caps, journeys, the log see it)."""
        event_type = self.config.feedback.get(outcome, "")
        if not event_type or self.core is None:
            return
        event = decision_pb2.Event(
            event_id=f"{outcome}.{entry.key}.{entry.attempts}",
            customer_id=entry.customer_id,
            type=event_type,
            decision_id=entry.decision_id,
            tracking_id=entry.tracking_id,
        )
        event.timestamp.GetCurrentTime()
        active = self.core.registry.current
        contract = active.policy.events.get(event_type) if active is not None else None
        if contract is not None:
            for name, value in (("destination", entry.destination), ("action", entry.action)):
                if name in contract.properties:
                    event.properties[name].string_value = value
        try:
            results = await self.core.track_results(
                decision_pb2.TrackRequest(events=[event]), Call.with_timeout(2.0)
            )
        except Exception as exc:
            _log.warning("feedback %s for %s not recorded: %s", outcome, entry.key, exc)
            return
        for _, status, field, detail in results:
            if status == "rejected":
                _log.warning("feedback event %s rejected: %s %s", event_type, field, detail)


def _fields(entry: Entry) -> dict[str, Any]:
    return {f: getattr(entry, f) for f in entry.__struct_fields__}
