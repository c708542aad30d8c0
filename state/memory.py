"""MemoryStore: the embedded, in-process ``Store`` -- the default of ``arbiter serve`` without Redis.

A complete implementation, not a mock (``docs/architecture.md``, "Stores"):
the semantics of every write are those of :mod:`policies.effects`, which
this module calls directly -- :func:`~policies.effects.apply_commit`,
:func:`~policies.effects.apply_effects`,
:func:`~policies.effects.apply_profile_update` -- so the rules live in one
place and the Redis scripts are checked against them by the same contract
suite (``tests/contract/``).

Atomicity. Every operation's critical section is synchronous: it reads,
computes and writes one customer's state without an ``await`` in between,
so on one event loop no other coroutine can interleave -- stronger than a
per-customer ``asyncio.Lock`` and without its cost (a lock would only be
needed around an ``await``, and there is none). A ``threading.Lock`` makes
the same sections safe when the store is shared across threads (e.g. an
admin thread). State is per process: several server processes need Redis.

Expiry follows an injectable clock (seconds, :func:`time.monotonic` by
default; :class:`ManualClock` in tests): idempotency records and event
dedup markers are invisible once expired, and are purged on access and by
an incremental sweep (a few customers per write, O(1) for a customer with
nothing due). Memory is bounded by the live data and by count: at most
``max_decisions_per_customer`` idempotency records
(:data:`~state.store.MAX_DECISIONS_PER_CUSTOMER`) and
``max_events_per_customer`` dedup markers
(:data:`~state.store.MAX_EVENT_MARKERS_PER_CUSTOMER`) per customer, the one
that expires first evicted first (ties: the smallest id), as in Redis. Cap grant lists are
pruned to the key's longest window on every commit and load, counter
buckets by their retention (:func:`~policies.effects.apply_counter`),
feedback to the newest :data:`~state.store.FEEDBACK_LIMIT` per customer.
Profile, consent and journey states live until
:meth:`MemoryStore.forget_customer`, as in Redis. Meant for one process:
tests, demos, the embedded default and small deployments.

Objects returned by :meth:`MemoryStore.load` share immutable structure
with the store (frozen structs, lists that the store never mutates in
place); callers must treat them as read-only, as the engine does.

State epoch: the store's state lives and dies with the process, so a new
``MemoryStore`` holds the state of record from the start.
:meth:`MemoryStore.lose_state` simulates what a Redis restarted empty does
(everything gone, reads raise :class:`~state.store.StateLost` until
:meth:`MemoryStore.init_state`), so the contract suite holds both stores to
the same rules.

Fault injection for fail-safe tests of the server: ``latency_s`` delays
every call (and a ``timeout_s`` shorter than it raises
:class:`~state.store.StoreUnavailable` after ``timeout_s``), and
``unavailable = True`` makes every call raise it (``ping`` returns False).
"""

from __future__ import annotations

import asyncio
import heapq
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import msgspec

from arbiter.policies.effects import (
    CommitResult,
    DecisionCommit,
    EventEffects,
    FeedbackRecord,
    FieldResult,
    ProfileUpdate,
    apply_commit,
    apply_effects,
    apply_profile_update,
)
from arbiter.policies.snapshot import CustomerSnapshot, EventCounter, SnapshotNeeds

from .store import (
    DEFAULT_EVENT_DEDUP_TTL_S,
    DEFAULT_IDEMPOTENCY_TTL_S,
    FEEDBACK_LIMIT,
    MAX_DECISIONS_PER_CUSTOMER,
    MAX_EVENT_MARKERS_PER_CUSTOMER,
    CommitOutcome,
    EventOutcome,
    Loaded,
    StateLost,
    Store,
    StoredDecision,
    StoreUnavailable,
    build_export,
    validate_id,
)

__all__ = ["ManualClock", "MemoryState", "MemoryStore", "StoredCustomer"]

_V = TypeVar("_V")

# Customers examined by the incremental expiry sweep per write: enough to pass
# over every customer many times per TTL, small enough to be invisible in latency.
_SWEEP_PER_WRITE: Final = 4
# Profile writes that change what a decision may send (see Loaded.consent_version).
_CONSENT_KINDS: Final = frozenset({"consent", "do_not_contact"})


class ManualClock:
    """A clock (seconds) that only moves when told to, for TTL tests."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go back")
        self.now += seconds


class _ExpiryOrder:
    """A min-heap of ``(expiry, id)`` beside a dict of expiring records: beyond the bound, the
    record that expires first (ties: the smallest id) is evicted in O(log n), not by a scan.

    Entries go stale when their record is replaced or purged; they are skipped when they
    reach the top, and the heap is rebuilt when stale entries outnumber live ones.
    """

    __slots__ = ("heap",)

    def __init__(self) -> None:
        self.heap: list[tuple[float, str]] = []

    def add(self, expiry: float, key: str) -> None:
        heapq.heappush(self.heap, (expiry, key))

    def earliest(self) -> float:
        """The earliest expiry in the heap (exact right after :meth:`rebuild`; ``inf`` if empty)."""
        return self.heap[0][0] if self.heap else math.inf

    def rebuild(self, entries: Iterable[tuple[float, str]]) -> None:
        self.heap = list(entries)
        heapq.heapify(self.heap)

    def bound(self, records: dict[str, _V], limit: int, expiry: Callable[[_V], float]) -> None:
        """Evict from ``records`` until at most ``limit`` are left."""
        heap = self.heap
        while len(records) > limit and heap:
            at, key = heapq.heappop(heap)
            live = records.get(key)
            if live is not None and expiry(live) == at:
                del records[key]
        if len(heap) > 2 * len(records) + 16:
            self.rebuild((expiry(v), k) for k, v in records.items())


@dataclass(slots=True)
class _Customer:
    """Everything stored about one customer.

    ``snapshot`` holds the full state (all parts) in the engine's own shape,
    so that the pure ``apply_*`` functions run on it unchanged.
    ``cap_windows``: the longest window seen per cap key, to prune grants.
    ``decisions`` / ``applied``: request id / event id -> (value, expiry).
    ``consent_version``: bumped by every applied consent / do-not-contact write.
    """

    snapshot: CustomerSnapshot
    consent_version: int = 0
    cap_windows: dict[str, int] = field(default_factory=dict)
    decisions: dict[str, tuple[StoredDecision, float]] = field(default_factory=dict)
    applied: dict[str, float] = field(default_factory=dict)
    # (expiry, id) heaps over ``decisions`` / ``applied``, for eviction at the bound.
    decision_order: _ExpiryOrder = field(default_factory=_ExpiryOrder)
    applied_order: _ExpiryOrder = field(default_factory=_ExpiryOrder)
    feedback: deque[FeedbackRecord] = field(default_factory=lambda: deque(maxlen=FEEDBACK_LIMIT))
    # The earliest expiry among ``decisions`` and ``applied``: purging is a no-op before it,
    # so a sweep costs O(1) per customer with nothing due.
    next_expiry: float = math.inf

    def expires(self, at: float) -> None:
        self.next_expiry = min(self.next_expiry, at)

    def purge(self, now: float) -> bool:
        """Drop expired idempotency records and dedup markers; ``True`` if anything was due."""
        if now < self.next_expiry:
            return False
        self.decisions = {r: v for r, v in self.decisions.items() if v[1] > now}
        self.applied = {e: exp for e, exp in self.applied.items() if exp > now}
        self.reorder()
        self.next_expiry = min(self.decision_order.earliest(), self.applied_order.earliest())
        return True

    def reorder(self) -> None:
        """Rebuild the eviction heaps after ``decisions`` / ``applied`` were replaced."""
        self.decision_order.rebuild((exp, r) for r, (_, exp) in self.decisions.items())
        self.applied_order.rebuild((exp, e) for e, exp in self.applied.items())

    def size(self) -> int:
        """Records held (the unit :meth:`MemoryStore.forget_customer` counts)."""
        s = self.snapshot
        return (
            len(s.profile)
            + len(s.consent)
            + len(s.events)
            + len(s.segments)
            + len(s.journeys)
            + len(s.caps)
            + len(self.decisions)
            + len(self.applied)
            + len(self.feedback)
        )


class StoredCustomer(msgspec.Struct, frozen=True, kw_only=True):
    """One customer in a :class:`MemoryState`: the store's ``_Customer`` with expiries made
    relative (``*_ttl_s``: seconds left), since the store's clock does not survive a restart."""

    snapshot: CustomerSnapshot
    consent_version: int = 0
    cap_windows: dict[str, int] = {}
    decisions: list[tuple[str, StoredDecision, float]] = []  # (request id, record, ttl_s)
    applied: list[tuple[str, float]] = []  # (event id, ttl_s)
    feedback: list[FeedbackRecord] = []


class MemoryState(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a :class:`MemoryStore` holds, for its state file (:mod:`arbiter.state.state_file`)."""

    customers: list[StoredCustomer] = []


def _prune(grants: list[int], since: int) -> list[int]:
    """``grants`` without instants ``<= since`` (a new list only when something goes)."""
    if not grants or grants[0] > since:
        return grants
    return [t for t in grants if t > since]


class MemoryStore:
    """The in-process :class:`~state.store.Store` (see the module docstring)."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        latency_s: float = 0.0,
        max_decisions_per_customer: int = MAX_DECISIONS_PER_CUSTOMER,
        max_events_per_customer: int = MAX_EVENT_MARKERS_PER_CUSTOMER,
    ) -> None:
        self._clock = clock
        self._max_decisions = max_decisions_per_customer
        self._max_events = max_events_per_customer
        self._customers: dict[str, _Customer] = {}
        self._lock = threading.Lock()
        self._sweep_keys: list[str] = []
        self._closed = False
        self._state_ok = True
        self.latency_s = latency_s
        self.unavailable = False
        # Bumped by every write: the state file skips a write when nothing changed.
        self.changes = 0

    # ------------------------------------------------------------------ port

    async def load(
        self,
        customer_id: str,
        needs: SnapshotNeeds,
        now_ms: int,
        *,
        request_id: str | None = None,
        timeout_s: float | None = None,
    ) -> Loaded:
        validate_id(customer_id)
        if request_id is not None:
            validate_id(request_id, "request_id")
        await self._io("load", timeout_s)
        with self._lock:
            self._require_state("load")
            c = self._customers.get(customer_id)
            if c is None:
                return Loaded(snapshot=CustomerSnapshot(customer_id=customer_id))
            replay = None
            if request_id is not None:
                hit = c.decisions.get(request_id)
                if hit is not None and hit[1] > self._clock():
                    replay = hit[0]
            return Loaded(
                snapshot=self._view(c, needs, now_ms),
                replay=replay,
                consent_version=c.consent_version,
            )

    async def commit_decision(
        self,
        commit: DecisionCommit,
        record: bytes,
        *,
        ttl_s: float = DEFAULT_IDEMPOTENCY_TTL_S,
        timeout_s: float | None = None,
        consent_version: int | None = None,
        fingerprint: bytes = b"",
        abort_on_rejection: bool = False,
    ) -> CommitOutcome:
        validate_id(commit.customer_id)
        validate_id(commit.request_id, "request_id")
        _positive(ttl_s, "ttl_s")
        await self._io("commit_decision", timeout_s)
        with self._lock:
            self._require_state("commit_decision")
            now = self._clock()
            c = self._customer(commit.customer_id)
            hit = c.decisions.get(commit.request_id)
            if hit is not None and hit[1] > now:
                stored = hit[0]
                return CommitOutcome(
                    record=stored.record,
                    result=stored.result,
                    fingerprint=stored.fingerprint,
                    replayed=True,
                )
            if consent_version is not None and consent_version != c.consent_version:
                return CommitOutcome(
                    record=record,
                    result=CommitResult(),
                    fingerprint=fingerprint,
                    consent_changed=True,
                )
            snapshot, result = apply_commit(c.snapshot, commit)
            if abort_on_rejection and result.rejected:
                return CommitOutcome(
                    record=record, result=result, fingerprint=fingerprint, aborted=True
                )
            windows = c.cap_windows
            for grant in commit.grants:
                for inc in grant.caps:
                    if inc.window_ms > windows.get(inc.key, 0):
                        windows[inc.key] = inc.window_ms
            c.snapshot = snapshot
            expiry = now + ttl_s
            c.decisions[commit.request_id] = (
                StoredDecision(record=record, result=result, fingerprint=fingerprint),
                expiry,
            )
            c.expires(expiry)
            c.decision_order.add(expiry, commit.request_id)
            c.decision_order.bound(c.decisions, self._max_decisions, _decision_expiry)
            self.changes += 1
            self._swept(now)
            return CommitOutcome(record=record, result=result, fingerprint=fingerprint)

    async def apply_event(
        self,
        effects: EventEffects,
        *,
        dedup_ttl_s: float = DEFAULT_EVENT_DEDUP_TTL_S,
        timeout_s: float | None = None,
    ) -> EventOutcome:
        validate_id(effects.customer_id)
        validate_id(effects.event_id, "event_id")
        _positive(dedup_ttl_s, "dedup_ttl_s")
        await self._io("apply_event", timeout_s)
        with self._lock:
            now = self._clock()
            c = self._customers.get(effects.customer_id)
            if c is not None:
                seen = c.applied.get(effects.event_id)
                if seen is not None and seen > now:
                    return "duplicate"
            base = (
                c.snapshot if c is not None else CustomerSnapshot(customer_id=effects.customer_id)
            )
            # Raises StateConflict before anything below is written.
            snapshot = apply_effects(base, effects)
            c = self._customer(effects.customer_id)
            c.snapshot = snapshot
            c.applied[effects.event_id] = expiry = now + dedup_ttl_s
            c.expires(expiry)
            c.applied_order.add(expiry, effects.event_id)
            c.applied_order.bound(c.applied, self._max_events, _marker_expiry)
            c.feedback.extend(effects.feedback)
            self.changes += 1
            self._swept(now)
            return "applied"

    async def update_profile(
        self,
        update: ProfileUpdate,
        *,
        do_not_contact_attribute: str | None = None,
        timeout_s: float | None = None,
    ) -> tuple[FieldResult, ...]:
        validate_id(update.customer_id)
        await self._io("update_profile", timeout_s)
        with self._lock:
            current = self._customers.get(update.customer_id)
            base = (
                current.snapshot
                if current is not None
                else CustomerSnapshot(customer_id=update.customer_id)
            )
            # Raises ValueError (do_not_contact without an attribute) before writing.
            snapshot, results = apply_profile_update(
                base, update, do_not_contact_attribute=do_not_contact_attribute
            )
            if results:
                c = self._customer(update.customer_id)
                c.snapshot = snapshot
                if any(
                    r.applied
                    and (
                        r.kind in _CONSENT_KINDS
                        or (r.kind == "trait" and r.name == do_not_contact_attribute)
                    )
                    for r in results
                ):
                    c.consent_version += 1
                self.changes += 1
                self._swept(self._clock())
            return results

    async def export_customer(self, customer_id: str) -> dict[str, Any]:
        validate_id(customer_id)
        await self._io("export_customer", None)
        with self._lock:
            c = self._customers.get(customer_id)
            if c is None:
                return build_export(
                    CustomerSnapshot(customer_id=customer_id),
                    decisions={},
                    feedback=[],
                    applied_events=[],
                )
            c.purge(self._clock())
            return build_export(
                c.snapshot,
                decisions={rid: d for rid, (d, _) in c.decisions.items()},
                feedback=list(c.feedback),
                applied_events=list(c.applied),
            )

    async def forget_customer(self, customer_id: str) -> int:
        validate_id(customer_id)
        await self._io("forget_customer", None)
        with self._lock:
            c = self._customers.pop(customer_id, None)
            if c is None:
                return 0
            c.purge(self._clock())
            self.changes += 1
            return c.size()

    async def ping(self) -> bool:
        return not (self._closed or self.unavailable or not self._state_ok)

    @property
    def health_detail(self) -> str:
        if self._closed:
            return "store closed"
        if self.unavailable:
            return "injected fault"
        return "" if self._state_ok else StateLost.HINT

    async def init_state(self) -> int:
        with self._lock:
            written = 0 if self._state_ok else 1
            self._state_ok = True
            return written

    async def close(self) -> None:
        self._closed = True

    # ------------------------------------------------------------------ embedded extras

    def seed(self, snapshot: CustomerSnapshot) -> None:
        """Replace a customer's stored state with ``snapshot`` (all parts), for tests,
        scenario runs and benchmarks (``update_profile`` is the write path of
        segments; ``segments_updated_ms`` is seeded as given)."""
        validate_id(snapshot.customer_id)
        with self._lock:
            c = self._customer(snapshot.customer_id)
            c.snapshot = msgspec.structs.replace(snapshot, unavailable=frozenset())
            c.consent_version += 1
            self.changes += 1

    def stored(self, customer_id: str) -> CustomerSnapshot:
        """Everything stored about a customer (all parts; empty for an unknown one) -- an
        embedded extra for scenario runs and tests; read-only, like :meth:`load`'s result."""
        with self._lock:
            c = self._customers.get(customer_id)
            return c.snapshot if c is not None else CustomerSnapshot(customer_id=customer_id)

    def dump_chunks(self, *, chunk: int = 500) -> Iterator[list[StoredCustomer]]:
        """Everything held, ``chunk`` customers at a time, for the state file: live records
        only, expiries as time left.

        Shallow copies (snapshots are immutable), each chunk taken under one hold of the lock,
        so that consumed in a worker thread it never holds up the event loop's calls for long
        (``benchmarks/privacy_bench.py`` measures it). Each customer is copied whole; two
        customers may be copied a moment apart, as if the writes between them came later."""
        with self._lock:
            ids = list(self._customers)
        for start in range(0, len(ids), chunk):
            out = []
            with self._lock:
                now = self._clock()
                for cid in ids[start : start + chunk]:
                    c = self._customers.get(cid)
                    if c is None:  # forgotten meanwhile
                        continue
                    c.purge(now)
                    out.append(
                        StoredCustomer(
                            snapshot=c.snapshot,
                            consent_version=c.consent_version,
                            cap_windows=dict(c.cap_windows),
                            decisions=[(r, d, exp - now) for r, (d, exp) in c.decisions.items()],
                            applied=[(e, exp - now) for e, exp in c.applied.items()],
                            feedback=list(c.feedback),
                        )
                    )
            yield out

    def dump_state(self) -> MemoryState:
        """Everything held at once (:meth:`dump_chunks` gathered)."""
        return MemoryState(customers=[c for part in self.dump_chunks() for c in part])

    def restore_state(self, state: MemoryState | Iterable[StoredCustomer]) -> None:
        """Replace everything held with ``state`` (from :meth:`dump_state` / :meth:`dump_chunks`,
        possibly of another process); records and markers get their remaining lifetime from
        now."""
        customers = state.customers if isinstance(state, MemoryState) else state
        with self._lock:
            now = self._clock()
            self._customers.clear()
            self._sweep_keys.clear()
            for stored in customers:
                validate_id(stored.snapshot.customer_id)
                c = self._customer(stored.snapshot.customer_id)
                c.snapshot = stored.snapshot
                c.consent_version = stored.consent_version
                c.cap_windows = dict(stored.cap_windows)
                c.decisions = {r: (d, now + ttl) for r, d, ttl in stored.decisions if ttl > 0}
                c.applied = {e: now + ttl for e, ttl in stored.applied if ttl > 0}
                c.feedback.extend(stored.feedback)
                for _, exp in c.decisions.values():
                    c.expires(exp)
                for exp in c.applied.values():
                    c.expires(exp)
                c.reorder()
            self._state_ok = True
            self.changes += 1

    def lose_state(self) -> None:
        """Fault injection: forget every customer and the state epoch, as a Redis restarted
        without persistence would; reads raise ``StateLost`` until :meth:`init_state`."""
        with self._lock:
            self._customers.clear()
            self._sweep_keys.clear()
            self._state_ok = False

    def __len__(self) -> int:
        """Customers currently held (live or not yet swept)."""
        return len(self._customers)

    # ------------------------------------------------------------------ internals

    def _require_state(self, operation: str) -> None:
        if not self._state_ok:
            raise StateLost(operation)

    async def _io(self, operation: str, timeout_s: float | None) -> None:
        """Where a networked store would do I/O: injected latency and faults (no await otherwise)."""
        if self._closed:
            raise StoreUnavailable(operation, "store closed")
        if self.latency_s > 0:
            if timeout_s is not None and timeout_s < self.latency_s:
                await asyncio.sleep(max(timeout_s, 0.0))
                raise StoreUnavailable(operation, f"timed out after {timeout_s:.3f}s")
            await asyncio.sleep(self.latency_s)
        if self.unavailable:
            raise StoreUnavailable(operation, "injected fault")

    def _customer(self, customer_id: str) -> _Customer:
        c = self._customers.get(customer_id)
        if c is None:
            c = self._customers[customer_id] = _Customer(
                snapshot=CustomerSnapshot(customer_id=customer_id)
            )
        return c

    def _view(self, c: _Customer, needs: SnapshotNeeds, now_ms: int) -> CustomerSnapshot:
        """The parts of ``c`` that ``needs`` asks for (see ``Store.load``)."""
        s = c.snapshot
        parts = needs.parts
        profile = _pick(s.profile, needs.profile_attributes) if "profile" in parts else {}
        consent = _pick(s.consent, needs.consent_purposes) if "consent" in parts else {}
        events: dict[str, EventCounter] = {}
        if "events" in parts:
            events = (
                dict(s.events) if needs.event_types is None else _pick(s.events, needs.event_types)
            )
        caps: dict[str, list[int]] = {}
        if "caps" in parts and s.caps:
            windows = c.cap_windows
            for key in needs.cap_keys:
                grants = s.caps.get(key)
                if grants:
                    kept = (
                        _prune(grants, now_ms - windows.get(key, 0)) if key in windows else grants
                    )
                    if kept:
                        caps[key] = kept
        return CustomerSnapshot(
            customer_id=s.customer_id,
            profile=profile,
            consent=consent,
            events=events,
            segments=s.segments if "segments" in parts else frozenset(),
            segments_updated_ms=s.segments_updated_ms if "segments" in parts else 0,
            journeys=dict(s.journeys) if "journeys" in parts else {},
            caps=caps,
        )

    def _swept(self, now: float) -> None:
        """Purge expired records of a few customers (amortised O(1) per write); drop empty ones."""
        keys = self._sweep_keys
        if not keys:
            keys.extend(self._customers)
        for _ in range(min(_SWEEP_PER_WRITE, len(keys))):
            c = self._customers.get(keys.pop())
            if c is None:
                continue
            if c.purge(now) and c.size() == 0:
                del self._customers[c.snapshot.customer_id]


def _pick(source: dict[str, _V], names: Iterable[str]) -> dict[str, _V]:
    return {n: source[n] for n in names if n in source}


def _decision_expiry(entry: tuple[StoredDecision, float]) -> float:
    return entry[1]


def _marker_expiry(expiry: float) -> float:
    return expiry


def _positive(value: float, name: str) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be > 0")


def _conforms(store: MemoryStore) -> Store:
    """Static check (mypy): MemoryStore implements the Store protocol."""
    return store
