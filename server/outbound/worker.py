"""``arbiter worker``: the due-step loop and one delivery loop per destination, in one process.

A worker is a replica of the fleet like ``arbiter serve``: it follows the
policy version and the operators' kill switches kept in Redis
(:class:`~arbiter.server.governance.Governance`), so a pause made through any
server's AdminService stops its due steps within the governance poll interval,
and it heartbeats into ``GetPolicyStatus``.

Run as many as needed (each is one consumer per destination, and claims
wake-ups atomically); kill any of them at any time: a claimed wake-up is
re-claimed after its lease, a pending outbox entry after ``reclaim_idle_s``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from pathlib import Path
from typing import Any

from arbiter.server.governance import Governance, bundle_files
from arbiter.server.outbound.config import OutboundConfig
from arbiter.server.outbound.delivery import DeliveryWorker
from arbiter.server.outbound.due import DueWorker
from arbiter.server.outbound.metrics import OUTBOUND
from arbiter.server.outbound.redis_ops import outbox_keys
from arbiter.server.registry import PolicyRegistry
from arbiter.server.service import DecisionCore
from arbiter.state import open_governance_store, open_store, wake_key

__all__ = ["Worker", "run_worker"]

_log = logging.getLogger("arbiter.outbound")


class Worker:
    """Everything one ``arbiter worker`` process runs, on one policy set and one Redis."""

    def __init__(
        self,
        config: OutboundConfig,
        policies: str | Path,
        redis_url: str,
        *,
        reclaim_idle_s: float = 30.0,
        consumer: str | None = None,
    ) -> None:
        import redis.asyncio as redis_asyncio

        self.config = config
        self.policies = Path(policies)
        self.registry = PolicyRegistry()
        self.registry.load(policies)
        self.governance = Governance(
            self.registry,
            open_governance_store(redis_url),
            replica=f"worker@{socket.gethostname()}:{os.getpid()}",
            scenarios=False,
        )
        self.store = open_store(redis_url, default_timeout_s=2.0)
        self.core = DecisionCore(self.registry, self.store, store_timeout_s=2.0)
        self.client: Any = redis_asyncio.Redis.from_url(redis_url)
        self.due = DueWorker(self.core, self.client, config)
        self.deliveries = [
            DeliveryWorker(
                self.core,
                self.client,
                config,
                dest,
                consumer=consumer,
                reclaim_idle_s=reclaim_idle_s,
            )
            for dest in config.destinations
        ]

    def stop(self) -> None:
        self.due.stop()
        for delivery in self.deliveries:
            delivery.stop()

    async def sample(self) -> None:
        """Backlog gauges: wake-ups due now, entries waiting per outbox."""
        wake = wake_key(self.config.prefix)
        while not self.due._stop.is_set():
            try:
                t = await self.client.time()
                now = int(t[0]) * 1000 + int(t[1]) // 1000
                OUTBOUND.due_backlog.set(await self.client.zcount(wake, "-inf", now))
                for dest in self.config.destinations:
                    keys = outbox_keys(self.config.prefix, dest.id)
                    OUTBOUND.outbox_backlog.labels(dest.id).set(
                        await self.client.xlen(keys.stream) + await self.client.zcard(keys.retry)
                    )
            except Exception as exc:
                _log.debug("sampling backlogs failed: %s", exc)
            await asyncio.sleep(1.0)

    async def join_fleet(self) -> None:
        """Serve the fleet's active policy version and pauses, and follow their changes
        (a worker started with files the fleet has never seen makes them its version,
        as a server does)."""
        files = await asyncio.to_thread(bundle_files, self.policies)
        await self.governance.bootstrap(files, str(self.policies))
        await self.governance.start()

    async def run(self) -> None:
        await self.join_fleet()
        tasks = [asyncio.create_task(self.due.run())]
        tasks += [asyncio.create_task(d.run()) for d in self.deliveries]
        sampler = asyncio.create_task(self.sample())
        try:
            await asyncio.gather(*tasks)
        finally:
            sampler.cancel()
            await self.governance.stop()
            await self.client.aclose()
            await self.store.close()


async def run_worker(worker: Worker) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stop)
    _log.info("worker up: destinations %s", ", ".join(d.id for d in worker.config.destinations))
    await worker.run()
