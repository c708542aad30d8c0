"""The decision log writer: every committed decision (and a sample of dry runs and Checks) becomes a record, written off the request path.

On the request path :class:`DecisionLog` does one thing: append an
:class:`Observation` -- references to what the call already holds (policy,
request, snapshot, store report, the settled decision with its trace: the
core always evaluates with the trace on -- and the caller) -- to a bounded
queue; a full queue drops the observation and counts it
(``arbiter_decision_log_dropped_total{reason="queue_full"}``). A background
task takes the queue in batches every ``flush_s``; for each observation it
masks personal data (:func:`~arbiter.policies.decision_log.build_record`)
and encodes the record, yielding to the event loop every few records so
that calls in flight are not held up; then it hands the batch to the sink
(:class:`~arbiter.state.DecisionSink`). A sink that fails keeps the batch
and is retried with backoff (the queue absorbs the meantime); on shutdown
what is queued is written within the grace period, and whatever cannot be
is counted as dropped (``reason="shutdown"``).

Metrics: records written per sink, drops per reason, the queue depth and
the lag (age of the oldest record not yet written), sink errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from arbiter.policies import (
    CheckQuery,
    CompiledPolicy,
    CustomerSnapshot,
    Decision,
    Request,
    StoreReport,
)
from arbiter.policies import decision_log as records
from arbiter.server.metrics import METRICS
from arbiter.server.registry import Active
from arbiter.server.security.grpc_guard import CALLER
from arbiter.state import DecisionSink

__all__ = ["DecisionLog", "Observation", "sampled"]

_log = logging.getLogger("arbiter.decision_log")

DEFAULT_BUFFER: Final = 100_000
DEFAULT_BATCH: Final = 256
DEFAULT_FLUSH_S: Final = 0.05
# Records built between two yields to the event loop (bounds the stall per slice).
_SLICE: Final = 16
_MAX_BACKOFF_S: Final = 5.0
Kind = Literal["decide", "check"]


@dataclass(frozen=True, slots=True)
class Observation:
    """What one answered call hands the log (references only: nothing is copied on the request path)."""

    kind: Kind
    policy: CompiledPolicy
    paused_journeys: frozenset[str]
    paused_actions: frozenset[str]
    request: Request | None
    query: CheckQuery | None
    state: CustomerSnapshot | None
    now_ms: int
    store: StoreReport
    decision: Decision  # settled, with the trace
    caller: records.Caller | None
    queued_at: float  # time.monotonic()


def sampled(request_id: str, rate: float) -> bool:
    """Whether a dry run or Check with ``request_id`` is logged at ``rate`` (0..1); deterministic,
    so every replica makes the same choice for the same request."""
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    return zlib.crc32(request_id.encode()) < rate * 2**32


class DecisionLog:
    """The writer (see the module docstring). :meth:`start` it in the server's event loop."""

    def __init__(
        self,
        sink: DecisionSink,
        *,
        sample_rate: float = 0.01,
        buffer: int = DEFAULT_BUFFER,
        batch: int = DEFAULT_BATCH,
        flush_s: float = DEFAULT_FLUSH_S,
        pii_key: bytes | None = None,
        clock_ms: Callable[[], int] | None = None,
    ) -> None:
        self.sink = sink
        self.sample_rate = sample_rate
        self.buffer = buffer
        self.batch = batch
        self.flush_s = flush_s
        self.pii_key = pii_key
        self._clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self._queue: deque[Observation] = deque()
        self._pending: list[tuple[str, bytes]] = []  # built, not yet written
        self._pending_since = 0.0
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.written = 0
        self.dropped = 0

    # ------------------------------------------------------------------ the request path

    def observe_decide(
        self,
        active: Active,
        request: Request,
        state: CustomerSnapshot,
        store: StoreReport,
        decision: Decision,
        *,
        paused_actions: frozenset[str] = frozenset(),
    ) -> None:
        """A Decide was answered (not replayed): logged if it is not a dry run, else if sampled.
        ``paused_actions``: what tripped volume guards paused when it was decided."""
        if request.dry_run and not sampled(request.request_id, self.sample_rate):
            return
        self._put(active, decision, store, paused_actions, request=request, state=state)

    def observe_check(
        self,
        active: Active,
        query: CheckQuery,
        state: CustomerSnapshot | None,
        store: StoreReport,
        decision: Decision,
        *,
        paused_actions: frozenset[str] = frozenset(),
    ) -> None:
        """A Check was answered (not replayed): logged if sampled."""
        if not sampled(query.request_id, self.sample_rate):
            return
        self._put(active, decision, store, paused_actions, query=query, state=state)

    def _put(
        self,
        active: Active,
        decision: Decision,
        store: StoreReport,
        paused_actions: frozenset[str],
        *,
        request: Request | None = None,
        query: CheckQuery | None = None,
        state: CustomerSnapshot | None,
    ) -> None:
        if len(self._queue) >= self.buffer or self._stopping:
            self.dropped += 1
            METRICS.log_dropped.labels("shutdown" if self._stopping else "queue_full").inc()
            return
        identity = CALLER.get()
        caller = (
            None
            if identity is None
            else records.Caller(principal=identity.principal, auth=identity.method)
        )
        self._queue.append(
            Observation(
                kind="decide" if request is not None else "check",
                policy=active.policy,
                paused_journeys=active.paused_journeys,
                paused_actions=paused_actions,
                request=request,
                query=query,
                state=state,
                now_ms=decision.decided_ms,
                store=store,
                decision=decision,
                caller=caller,
                queued_at=time.monotonic(),
            )
        )

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start the background writer."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="arbiter-decision-log")

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Write what is queued within ``timeout_s``, count the rest as dropped, close the sink."""
        self._stopping = True
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout_s)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None
        left = len(self._queue) + len(self._pending)
        if left:
            _log.error("decision log: %d records could not be written before shutdown", left)
            self.dropped += left
            METRICS.log_dropped.labels("shutdown").inc(left)
            self._queue.clear()
            self._pending.clear()
        self._gauges()
        await self.sink.close()

    async def find(self, decision_id: str) -> bytes | None:
        """The newest record of ``decision_id``: still queued (built now), built and not yet
        written, else in the sink (``None`` when none holds one)."""
        for observation in reversed(self._queue):
            if observation.decision.decision_id == decision_id:
                return self._record(observation)[1]
        for pending_id, record in reversed(self._pending):
            if pending_id == decision_id:
                return record
        return await self.sink.find(decision_id)

    async def flush(self) -> None:
        """Wait until everything observed so far is written (tests, benchmarks)."""
        while self._queue or self._pending:
            await asyncio.sleep(self.flush_s / 2)

    async def customer_records(self, customer_id: str, *, flush_s: float = 10.0) -> list[bytes]:
        """Every record about ``customer_id`` (privacy export): what is queued is written first
        (waiting at most ``flush_s``), then the sink lists them, oldest first."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.flush(), flush_s)
        return await self.sink.customer_records(customer_id)

    async def forget_customer(self, customer_id: str, *, flush_s: float = 10.0) -> int:
        """Erase every record about ``customer_id`` (privacy erasure): what is queued is written
        first (waiting at most ``flush_s``; the writer owns the queue), then the sink deletes
        the customer's records; returns how many went."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.flush(), flush_s)
        return await self.sink.forget_customer(customer_id)

    # ------------------------------------------------------------------ the background writer

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            if not self._pending:
                if not self._queue:
                    self._gauges()
                    if self._stopping:
                        return
                    await asyncio.sleep(self.flush_s)
                    continue
                await self._build()
            try:
                await self.sink.write(self._pending)
            except Exception as exc:  # keep the batch; the queue absorbs the meantime
                METRICS.log_errors.labels(self.sink.name).inc()
                _log.warning("decision log sink %s failed: %s; retrying", self.sink.name, exc)
                if self._stopping:
                    return
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_S)
                continue
            backoff = 0.1
            self.written += len(self._pending)
            METRICS.log_records.labels(self.sink.name).inc(len(self._pending))
            self._pending = []
            self._gauges()
            if len(self._queue) < self.batch and not self._stopping:
                # Let a batch gather: one write per flush interval under steady load, not one
                # per event-loop turn (each write is a thread hop and a sink call).
                await asyncio.sleep(self.flush_s)

    async def _build(self) -> None:
        """Take a batch off the queue and build its records, yielding every few."""
        self._pending_since = self._queue[0].queued_at
        count = min(len(self._queue), self.batch)
        built: list[tuple[str, bytes]] = []
        for i in range(count):
            observation = self._queue.popleft()
            try:
                built.append(self._record(observation))
            except Exception:
                self.dropped += 1
                METRICS.log_dropped.labels("error").inc()
                _log.exception("decision log: cannot build the record of a %s", observation.kind)
            if i % _SLICE == _SLICE - 1:
                await asyncio.sleep(0)
        self._pending = built

    def _record(self, o: Observation) -> tuple[str, bytes]:
        record = records.build_record(
            o.policy,
            o.decision,
            request=o.request,
            query=o.query,
            state=o.state,
            now_ms=o.now_ms,
            logged_ms=self._clock_ms(),
            paused=records.Paused(
                journeys=tuple(sorted(o.paused_journeys)), actions=tuple(sorted(o.paused_actions))
            ),
            store=o.store,
            caller=o.caller,
            pii_key=self.pii_key,
        )
        return o.decision.decision_id, records.encode_record(record)

    def _gauges(self) -> None:
        depth = len(self._queue) + len(self._pending)
        METRICS.log_queue.set(depth)
        if self._pending:
            oldest = self._pending_since
        elif self._queue:
            oldest = self._queue[0].queued_at
        else:
            oldest = None
        METRICS.log_lag.set(0.0 if oldest is None else time.monotonic() - oldest)
