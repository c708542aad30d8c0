"""The state port: the ``Store`` protocol every customer-state backend implements, and its types.

The engine (:mod:`policies`) never reads or writes state; the server loads a
:class:`~policies.snapshot.CustomerSnapshot` through a :class:`Store`, runs
the pure engine, and hands the resulting effects back to the store. The
*semantics* of every write are defined once, by the pure functions of
:mod:`policies.effects` (read its module docstring: it is the contract);
a store adds what a pure function cannot -- atomicity per customer,
idempotency records, event dedup markers, TTLs, and I/O failure.

Implementations: :class:`state.memory.MemoryStore` (embedded, in-process,
the default of ``arbiter serve`` without ``--redis-url``) and
``state.redis_store.RedisStore`` (shared state for many replicas). One
contract suite, ``tests/contract/store_contract.py``, runs against both.

Exceptions::

    StoreError                   anything the state layer raises on purpose (a bug, if it
    │                            reaches a caller: the store answered, but not as agreed)
    ├── StoreMisconfigured       the store cannot keep state safely (evicting Redis)
    └── StoreUnavailable         timeout, connection error, open circuit breaker, a server
        │                        that says it cannot serve now (full, read-only, down...)
        └── StateLost            the state epoch is missing: the data is gone

plus ``ValueError`` for an invalid customer / request / event id (the
server validates first; the store's check is the second line that keeps a
malformed id out of Redis key space) and
:class:`policies.effects.StateConflict` from :meth:`Store.apply_event`.

Fail-safe mapping for the server (``docs/architecture.md``, "Fail safe"):

- :meth:`Store.load` raising :class:`StoreUnavailable` means *consent and
  caps are unknown*: decide on a snapshot whose ``unavailable`` is every
  needed part (the engine then grants nothing consent-gated or capped and
  says why), do not commit, and store no idempotency record.
- :meth:`Store.commit_decision` raising :class:`StoreUnavailable` means *the
  outcome is unknown* (the script may or may not have run): answer without
  any capped grant (or ``UNAVAILABLE``); never retry the commit blindly. A
  client retry with the same ``request_id`` is safe: if the first commit did
  apply, the retry's load finds its idempotency record and replays it.
- :meth:`Store.apply_event` / :meth:`Store.update_profile` raising
  :class:`StoreUnavailable`: ``UNAVAILABLE``; the caller retries with the
  same event id / source timestamp, which the store applies once.

State epoch. A store that can lose its data underneath a running server
(Redis restarted without persistence, ``FLUSHALL``, a failover to an empty
node) keeps a marker written once by :meth:`Store.init_state` and checked
by every read and decision commit: without it :meth:`Store.load` and
:meth:`Store.commit_decision` raise :class:`StateLost` -- unavailable state,
never "no consent recorded" -- until an operator re-seeds what can be
re-seeded (profile and consent writes still work) and acknowledges with
``arbiter state init``.
"""

from __future__ import annotations

import re
from typing import Any, Final, Literal, Protocol, runtime_checkable

import msgspec

from arbiter.policies.effects import (
    CommitResult,
    DecisionCommit,
    EventEffects,
    FeedbackRecord,
    FieldResult,
    ProfileUpdate,
)
from arbiter.policies.snapshot import CustomerSnapshot, SnapshotNeeds

__all__ = [
    "DEFAULT_EVENT_DEDUP_TTL_S",
    "DEFAULT_IDEMPOTENCY_TTL_S",
    "FEEDBACK_LIMIT",
    "ID_PATTERN",
    "MAX_DECISIONS_PER_CUSTOMER",
    "MAX_EVENT_MARKERS_PER_CUSTOMER",
    "CommitOutcome",
    "EventOutcome",
    "Loaded",
    "StateLost",
    "Store",
    "StoreError",
    "StoreMisconfigured",
    "StoreUnavailable",
    "StoredDecision",
    "build_export",
    "validate_id",
]

# docs/architecture.md ("Ids") and proto/arbiter/v1/decision.proto: customer, request and event
# ids are 1-128 characters of this set. Never `{`, `}` or whitespace: they
# would break Redis Cluster hash tags (`arb:{c:<id>}:...`) and key parsing.
ID_PATTERN: Final = re.compile(r"[A-Za-z0-9._:@+\-]{1,128}")

# How long a decision's idempotency record is kept when the caller does not
# say: long enough for any client retry policy, short enough to bound memory.
DEFAULT_IDEMPOTENCY_TTL_S: Final = 24 * 3600.0
# How long an applied event id is remembered (dedup marker). Journey states
# remember their own trigger dedup keys as a second line of defence, so this
# only has to cover producer retries and replays of recent history.
DEFAULT_EVENT_DEDUP_TTL_S: Final = 7 * 24 * 3600.0
# Feedback records kept per customer (newest win). Feedback is also emitted
# to the decision log; the store's copy is for export and recent lookups.
FEEDBACK_LIMIT: Final = 1000
# Idempotency records and event dedup markers kept per customer; beyond these the
# record / marker that expires first goes (ties: the smallest id). Evicting early only
# matters to a client retrying a request after this many newer ones for the same
# customer; journey states keep their own dedup keys against a re-entry.
MAX_DECISIONS_PER_CUSTOMER: Final = 1_000
MAX_EVENT_MARKERS_PER_CUSTOMER: Final = 10_000

EventOutcome = Literal["applied", "duplicate"]


class StoreError(Exception):
    """Base of the errors the state layer raises on purpose."""


class StoreMisconfigured(StoreError):
    """The store is set up so that it could silently lose state (e.g. an evicting Redis)."""


class StoreUnavailable(StoreError):
    """The store could not answer in time (timeout, connection error, open circuit).

    See the module docstring for what the server does with it on each path.
    ``operation`` names the store method, for logs and metrics.
    """

    def __init__(self, operation: str, detail: str = "") -> None:
        self.operation = operation
        self.detail = detail
        super().__init__(
            f"store unavailable during {operation}" + (f": {detail}" if detail else "")
        )


class StateLost(StoreUnavailable):
    """The state epoch marker is missing: the store's data was lost (see the module docstring)."""

    HINT: Final = (
        "state epoch missing: the store lost its data (restart without persistence, "
        "flush, failover to an empty node); re-seed profiles and consent, then run "
        "`arbiter state init`"
    )

    def __init__(self, operation: str, where: str = "") -> None:
        super().__init__(operation, self.HINT + (f" ({where})" if where else ""))


def validate_id(value: str, field: str = "customer_id") -> str:
    """Return ``value`` if it is a valid id (1-128 chars of ``[A-Za-z0-9._:@+-]``), else raise ``ValueError``.

    ``field`` names the argument in the message (``customer_id``,
    ``request_id``, ``event_id``) without echoing the raw input, which may
    be arbitrarily long or hostile.
    """
    if not isinstance(value, str) or ID_PATTERN.fullmatch(value) is None:
        raise ValueError(f"invalid {field}: expected 1-128 characters of [A-Za-z0-9._:@+-]")
    return value


class StoredDecision(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The idempotency record of one committed decision.

    Not tracked by the garbage collector (``gc=False``; it holds bytes and a
    :class:`~policies.effects.CommitResult`, so it can be part of no cycle): an embedded
    store holds up to 1,000 per customer, and full collections walked every one of them
    (docs/decisions.md, "Garbage collection").

    ``record`` is what the server passed to :meth:`Store.commit_decision`:
    the encoded :class:`~policies.decision.Decision` as the engine returned
    it, *before* reconciliation (the commit is one atomic step, so the
    server cannot know the rejected grants when it hands over the record).
    ``result`` is the commit's :class:`~policies.effects.CommitResult`. The
    answer to send is therefore always
    ``settle(decode_decision(record), StoreReport(committed=result))``
    (:mod:`arbiter.policies.engine.settle`)
    -- deterministic, byte for byte the same on the first call and on every
    replay. The store treats ``record`` as opaque bytes (by convention
    UTF-8 JSON from ``msgspec.json.encode``; :meth:`Store.export_customer`
    shows it as text).

    ``fingerprint`` identifies the request the record answers (the server's
    digest of the request body, :func:`arbiter.server.service.fingerprint`;
    opaque to the store): a request that reuses the id with a different body
    is refused, not replayed. Records without one (older) replay.
    """

    record: bytes
    result: CommitResult
    fingerprint: bytes = b""


class Loaded(msgspec.Struct, frozen=True, kw_only=True):
    """What :meth:`Store.load` returns: the snapshot, and the stored decision if ``request_id`` has one.

    When ``replay`` is set the server answers from it and does not run the
    engine or commit (``docs/architecture.md``, "One Decide"); ``snapshot`` is still filled so
    that a store does not need a second code path.

    ``now_ms`` is the store's own clock at the read when the store is shared
    by several servers (Redis ``TIME``): cap windows must be judged by one
    clock, so the server decides and commits at this time instead of its
    own. ``None`` for an in-process store (its clock is the server's).
    ``consent_version`` changes whenever a consent (or the do-not-contact
    attribute) of the customer changes; pass it back to
    :meth:`Store.commit_decision` so that a revocation landing between the
    read and the commit wins.
    """

    snapshot: CustomerSnapshot
    replay: StoredDecision | None = None
    now_ms: int | None = None
    consent_version: int = 0


class CommitOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What :meth:`Store.commit_decision` did.

    ``replayed`` is ``True`` when ``request_id`` already had a record (a
    concurrent or earlier duplicate won): nothing was applied, and
    ``record`` / ``result`` are the *stored* ones, which the server must
    answer with instead of its own. Otherwise ``record`` is the record just
    stored and ``result`` says which grants were accepted / rejected.

    ``consent_changed`` is ``True`` when the customer's consent version was
    no longer the one the decision was made on: nothing was applied and no
    record stored (``record`` is the caller's, ``result`` empty); decide
    again on a fresh read.
    """

    record: bytes
    result: CommitResult
    replayed: bool = False
    fingerprint: bytes = b""
    consent_changed: bool = False
    aborted: bool = False  # abort_on_rejection and a grant was rejected: nothing applied

    @property
    def stored(self) -> StoredDecision:
        return StoredDecision(record=self.record, result=self.result, fingerprint=self.fingerprint)


@runtime_checkable
class Store(Protocol):
    """Customer state behind one port. Every method is atomic per customer.

    Conventions for every implementation:

    - Ids are validated with :func:`validate_id`; an invalid one raises
      ``ValueError`` and touches nothing.
    - ``timeout_s`` bounds the call (the server derives it from the
      request's remaining deadline); ``None`` uses the store's default.
      Exceeding it, losing the connection, or an open circuit breaker raises
      :class:`StoreUnavailable`. An in-process store may ignore it.
    - Store-side expiry (idempotency records, event dedup markers, counter
      keys) follows the store's own clock (wall clock for Redis, an
      injectable clock for ``MemoryStore``). The ``now_ms`` carried by the
      effects is the *logical* time of the engine and is what cap windows,
      counter buckets and precedence use, exactly as in
      :mod:`policies.effects`.
    - Nothing a store writes lives forever unless it is meant to (profile,
      consent, journey states); windowed data carries a TTL.
    """

    async def load(
        self,
        customer_id: str,
        needs: SnapshotNeeds,
        now_ms: int,
        *,
        request_id: str | None = None,
        timeout_s: float | None = None,
    ) -> Loaded:
        """Read what a decision needs, and the idempotency record of ``request_id``, in one round trip.

        Only the parts in ``needs.parts`` are read; the others are left
        empty (and are *not* marked unavailable -- the policy does not read
        them). Within a part:

        - ``profile``: the attributes in ``needs.profile_attributes``;
        - ``consent``: the purposes in ``needs.consent_purposes``, returned
          as stored -- also expired records (the engine decides what an
          expired record means: ``CONSENT_EXPIRED``);
        - ``events``: the counters of ``needs.event_types`` (``None``: all);
        - ``segments``, ``journeys``: all of them;
        - ``caps``: the keys in ``needs.cap_keys``; grant instants ascending,
          entries older than the key's longest window may be absent.

        An unknown customer is an empty snapshot, not an error. A store may
        mark parts it could not read in ``snapshot.unavailable``; a store
        that can read nothing raises :class:`StoreUnavailable`.
        """
        ...

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
        """Commit a decision in ONE atomic step (``policies.effects``, "Decision commit").

        0. No state epoch: raise :class:`StateLost`, nothing applied.
        1. If ``commit.request_id`` already has a record for this customer:
           apply nothing, return it with ``replayed=True`` (and its
           ``fingerprint``: the caller compares).
        2. If ``consent_version`` is given and the customer's is no longer
           it: apply nothing, store nothing, ``consent_changed=True``.
        3. Re-check and count every grant in order, exactly as
           :func:`policies.effects.apply_commit` (caps are never overshot,
           also under concurrent commits from many processes). With
           ``abort_on_rejection``, a grant the re-check rejects (a concurrent
           decision took the cap's last slot) aborts the commit: nothing
           applied, nothing stored, ``aborted=True`` (decide again on a
           fresh read).
        4. Journey changes, each only if its precondition holds (skipped
           otherwise, reported in ``result.skipped_journeys``).
        5. Store ``(record, result, fingerprint)`` under the request id for
           ``ttl_s``; beyond :data:`MAX_DECISIONS_PER_CUSTOMER` records the
           one that expires first is evicted.

        An empty commit still stores the record (a retry must replay).
        Never retried by the store: a retry could double-count.
        """
        ...

    async def apply_event(
        self,
        effects: EventEffects,
        *,
        dedup_ttl_s: float = DEFAULT_EVENT_DEDUP_TTL_S,
        timeout_s: float | None = None,
    ) -> EventOutcome:
        """Apply one event's effects in ONE atomic step (``policies.effects``, "Event effects").

        ``"duplicate"``: ``effects.event_id`` was applied before (within
        ``dedup_ttl_s``); nothing changed. ``"applied"``: journey changes,
        counters and feedback were written, as
        :func:`policies.effects.apply_effects`, and the event id is
        remembered for ``dedup_ttl_s`` (at most
        :data:`MAX_EVENT_MARKERS_PER_CUSTOMER` markers; the one that
        expires first is evicted).

        Raises :class:`policies.effects.StateConflict` when a journey
        change's precondition fails: nothing is written and the event is
        *not* marked applied, so the caller re-loads, re-runs
        ``journeys.apply_event`` and calls again.
        """
        ...

    async def update_profile(
        self,
        update: ProfileUpdate,
        *,
        do_not_contact_attribute: str | None = None,
        timeout_s: float | None = None,
    ) -> tuple[FieldResult, ...]:
        """Write traits, consent and segments with source-timestamp precedence, atomically.

        Exactly :func:`policies.effects.apply_profile_update`: newer wins,
        a trait at an equal timestamp applies, a consent at an equal
        timestamp applies only if it is a denial, a trait set to ``None``
        is stored as a tombstone (a ``ProfileValue`` whose value is
        ``None``), ``update.segments`` replaces the whole stored set like a
        trait (:meth:`load` returns it with ``segments_updated_ms``).
        ``update.do_not_contact`` is written to the profile attribute
        ``do_not_contact_attribute`` (``ValueError`` if it is ``None``
        then). One :class:`FieldResult` per field, in the order of
        :func:`~policies.effects.apply_profile_update`.
        """
        ...

    async def export_customer(self, customer_id: str) -> dict[str, Any]:
        """Everything stored about one customer, as JSON-able builtins (privacy export).

        The shape is :func:`build_export`'s, identical for every store.
        Records and markers past their TTL are not included. Works for any
        history size (a store reads long histories in pages; the pages of a
        customer written to meanwhile need not be one snapshot).
        """
        ...

    async def forget_customer(self, customer_id: str) -> int:
        """Delete everything stored about one customer; return how many keys / records went.

        The count is informational (a store counts its own units: Redis
        keys, MemoryStore records); ``0`` means nothing was stored.
        After it, :meth:`load` returns an empty snapshot and
        :meth:`export_customer` an empty export.
        """
        ...

    async def ping(self) -> bool:
        """Whether the store can serve now (for the health service); never raises.

        ``False`` also when it answers but cannot take writes (full, read-only,
        cluster down) or its state epoch is missing; :attr:`health_detail` says why.
        """
        ...

    @property
    def health_detail(self) -> str:
        """Why the last :meth:`ping` answered ``False`` (``""`` after a ``True``)."""
        ...

    async def init_state(self) -> int:
        """Write the state epoch where it is missing; return how many markers were written.

        Run once for a new deployment, and after a loss once the state has
        been re-seeded (``arbiter state init``): it declares the store's
        current contents the state of record.
        """
        ...

    async def close(self) -> None:
        """Release connections; the store is unusable afterwards. Idempotent."""
        ...


class _DecisionExport(msgspec.Struct, frozen=True, kw_only=True):
    request_id: str
    record: str
    result: CommitResult
    fingerprint: str


class _Export(msgspec.Struct, frozen=True, kw_only=True):
    customer_id: str
    snapshot: CustomerSnapshot
    decisions: list[_DecisionExport]
    feedback: list[FeedbackRecord]
    applied_events: list[str]


def build_export(
    snapshot: CustomerSnapshot,
    *,
    decisions: dict[str, StoredDecision],
    feedback: list[FeedbackRecord],
    applied_events: list[str],
) -> dict[str, Any]:
    """The privacy export every store returns, so that stores agree on its shape.

    ``snapshot`` is the *full* stored state (all parts); ``decisions`` maps
    live request ids to their records; ``feedback`` is in append order;
    ``applied_events`` are the live dedup markers. The result::

        {"customer_id": ..., "profile": {...}, "consent": {...}, "events": {...},
         "segments": [...], "segments_updated_ms": ..., "journeys": {...}, "caps": {...},
         "decisions": [{"request_id", "record" (text), "result", "fingerprint" (hex)}],
         sorted by request id,
         "feedback": [...], "applied_events": [...] (sorted)}
    """
    # Through JSON and back: plain dicts, lists, str keys -- what a store that keeps
    # JSON (Redis) would produce, so exports compare equal across stores.
    doc = msgspec.json.decode(
        msgspec.json.encode(
            _Export(
                customer_id=snapshot.customer_id,
                snapshot=snapshot,
                decisions=[
                    _DecisionExport(
                        request_id=rid,
                        record=d.record.decode("utf-8", errors="replace"),
                        result=d.result,
                        fingerprint=d.fingerprint.hex(),
                    )
                    for rid, d in sorted(decisions.items())
                ],
                feedback=list(feedback),
                applied_events=sorted(applied_events),
            ),
        )
    )
    assert isinstance(doc, dict)
    snap = doc.pop("snapshot")
    del snap["customer_id"], snap["unavailable"]
    snap["segments"] = sorted(snap["segments"])
    customer_id = doc.pop("customer_id")
    return {"customer_id": customer_id, **snap, **doc}
