"""RedisStore: the ``Store`` port on Redis or Redis Cluster -- one script per read, one per write.

Every operation is ONE ``EVALSHA`` of a Lua script in ``state/redis_scripts/``
over the customer's keys (:mod:`state.redis_keys`: one hash tag per
customer, so every script runs in one Cluster slot):

==================  ===============  ==========================================================
method              script           what runs atomically on the server
==================  ===============  ==========================================================
``load``            ``load.lua``     the parts ``needs`` asks for + the idempotency record
``commit_decision`` ``commit.lua``   idempotency, per-grant cap re-check and count, journey CAS,
                                     record + result stored with their TTL
``apply_event``     ``event.lua``    dedup marker, journey compare-and-set (all or nothing),
                                     counters, feedback
``update_profile``  ``profile.lua``  per-field timestamp precedence (consent: denied wins ties;
                                     segments: one whole-set field)
``export_customer`` ``export.lua``   all keys, live records only
``forget_customer`` ``forget.lua``   ``DEL`` of all keys
==================  ===============  ==========================================================

The scripts mirror :mod:`policies.effects` line by line; the store contract
suite (``tests/contract/``) runs the same cases against ``MemoryStore`` and
this store, single node and Cluster.

Calls. Scripts are called by SHA1; only a ``NOSCRIPT`` answer (the server
lost its script cache: restart, failover, ``SCRIPT FLUSH``) falls back to
``EVAL`` of the source -- which also caches it -- since ``NOSCRIPT`` proves
nothing ran. Nothing else is ever retried: the redis-py clients are built
with ``Retry(NoBackoff(), 0)`` (redis-py >= 6 retries 3 times by default,
which would blindly repeat a commit whose outcome is unknown).

Deadlines. Each call runs under ``asyncio.timeout(timeout_s)`` (the
caller's remaining deadline, or the store's default), which also bounds the
wait for a connection; sockets carry the store's default timeout as a
backstop. A timeout, a connection error, or a server saying it is loading /
busy / down raises :class:`~state.store.StoreUnavailable` and counts as a
failure for the :class:`~state.circuit.CircuitBreaker`; while the breaker
is open every call fails at once with ``StoreUnavailable`` and
:meth:`RedisStore.ping` answers ``False``; the first call after the reset
timeout probes the server and closes the breaker again. A timeout that is
this process's own overload is not a failure: one spent waiting for a
connection slot, or one whose expiry the event loop handled well after the
deadline (busy with other work) while the server was answering other calls
within the last second -- an overloaded server must not look like a Redis
outage and answer everyone fail-safe.

Concurrency. redis-py does not pipeline concurrent commands on one
connection, so a semaphore bounds the calls in flight (``max_in_flight``,
also the connection pool size per node); more concurrent callers wait for
a slot within their deadline.

Caching. None of the state is cached: consent and caps must be read fresh
(``docs/architecture.md``, "Fail safe"), and a stale profile would save nothing -- the profile
rides in the same script call as everything else. Only the per-``needs``
argument layout of ``load`` is memoised (a pure function of an immutable
value; measured in ``docs/state-redis.md``).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Final, TypeAlias
from urllib.parse import urlsplit

from redis import exceptions as rex
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from arbiter.policies.effects import (
    COUNTER_DAILY_HORIZON_MS,
    COUNTER_HOURLY_HORIZON_MS,
    CommitResult,
    DecisionCommit,
    EventEffects,
    FieldResult,
    ProfileUpdate,
    StateConflict,
)
from arbiter.policies.snapshot import (
    DAY_MS,
    MONTH_MS,
    ConsentRecord,
    CustomerSnapshot,
    ProfileValue,
    SnapshotNeeds,
)

from . import redis_codec as codec
from .circuit import CircuitBreaker
from .redis_errors import unavailable_reason
from .redis_keys import (
    DEFAULT_PREFIX,
    FEEDBACK_TTL_MS,
    SLOTS,
    customer_keys,
    epoch_key,
    slot_of,
    wake_key,
)
from .redis_pipe import PipelinedConnection, pack
from .redis_url import parse_redis_url, redis_client
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
    StoreError,
    StoreUnavailable,
    build_export,
    validate_id,
)

__all__ = ["DEFAULT_MAX_TIMEOUT_S", "DEFAULT_TIMEOUT_S", "RedisStore", "Script", "operation_error"]

Client: TypeAlias = "Redis | RedisCluster"

DEFAULT_TIMEOUT_S: Final = 0.5
# No store call waits longer than this, whatever the caller's deadline; the sockets'
# own timeout sits just above it as a backstop, never below a caller's deadline.
DEFAULT_MAX_TIMEOUT_S: Final = 10.0
DEFAULT_MAX_IN_FLIGHT: Final = 64
# How event.lua coarsens counter buckets, as policies.effects.apply_counter does.
_COUNTER_TIERS: Final = [COUNTER_HOURLY_HORIZON_MS, COUNTER_DAILY_HORIZON_MS, DAY_MS, MONTH_MS]

# Cap grant lists and counters seeded without a known window keep this TTL.
SEED_TTL_MS: Final = 400 * 86_400_000
# A timeout handled this late after its deadline (or this share of the timeout) means the
# event loop was busy elsewhere; with the server answering other calls within the last
# second, it is this process's overload, not a store failure (see ``_run``).
_LOOP_LAG_S: Final = 0.005
_LOOP_LAG_SHARE: Final = 0.25
_RECENT_ANSWER_S: Final = 1.0
# Idempotency records / dedup markers read per export page (well below Lua's unpack limit).
EXPORT_PAGE: Final = 500

_SCRIPT_DIR: Final = Path(__file__).resolve().parent / "redis_scripts"


class Script:
    """One Lua script of ``state/redis_scripts``: its source and SHA1, for ``EVALSHA``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.source = (_SCRIPT_DIR / f"{name}.lua").read_text("utf-8")
        self.sha = hashlib.sha1(self.source.encode("utf-8"), usedforsecurity=False).hexdigest()


_SCRIPTS: Final = {
    name: Script(name)
    for name in (
        "load",
        "commit",
        "event",
        "profile",
        "export",
        "export_page",
        "forget",
        "seed",
        "health",
    )
}


def _no_retry() -> Retry:
    return Retry(NoBackoff(), 0)


class RedisStore:
    """The Redis implementation of :class:`state.store.Store` (see the module docstring).

    Build it with :meth:`from_url` (``redis://``, ``rediss://``, ``unix://``;
    ``redis+cluster://host:port`` or ``cluster=True`` for Redis Cluster) or
    around an existing client. ``prefix`` namespaces every key
    (``<prefix>:{c:<id>}:<part>``). ``default_timeout_s`` bounds calls made
    without a ``timeout_s``; ``max_timeout_s`` bounds every call (a caller's
    longer deadline is honoured up to it).
    """

    def __init__(
        self,
        client: Client,
        *,
        prefix: str = DEFAULT_PREFIX,
        default_timeout_s: float = DEFAULT_TIMEOUT_S,
        max_timeout_s: float = DEFAULT_MAX_TIMEOUT_S,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        breaker: CircuitBreaker | None = None,
        feedback_limit: int = FEEDBACK_LIMIT,
        max_decisions_per_customer: int = MAX_DECISIONS_PER_CUSTOMER,
        max_events_per_customer: int = MAX_EVENT_MARKERS_PER_CUSTOMER,
        pipeline: PipelinedConnection | None = None,
    ) -> None:
        if not prefix or "{" in prefix or "}" in prefix:
            raise ValueError("prefix must be non-empty and contain no '{' or '}'")
        self._client: Client = client
        # Single node: request-path scripts go through one pipelined connection (redis_pipe.py);
        # operator commands, health and the Cluster keep redis-py.
        self._pipe = pipeline
        self.prefix = prefix
        self.default_timeout_s = default_timeout_s
        self.max_timeout_s = max(max_timeout_s, default_timeout_s)
        self.breaker = breaker if breaker is not None else CircuitBreaker()
        self._answered_at = -_RECENT_ANSWER_S  # loop time of the last reply (none yet)
        self.cluster = isinstance(client, RedisCluster)
        self._slots = asyncio.Semaphore(max_in_flight)
        self._init_lock = asyncio.Lock()
        self._feedback_limit = feedback_limit
        self._max_decisions = max_decisions_per_customer
        self._max_markers = max_events_per_customer
        self._plans: dict[SnapshotNeeds, codec.LoadPlan] = {}
        self._closed = False
        self._health_detail = ""

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        cluster: bool | None = None,
        prefix: str = DEFAULT_PREFIX,
        default_timeout_s: float = DEFAULT_TIMEOUT_S,
        max_timeout_s: float = DEFAULT_MAX_TIMEOUT_S,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        breaker: CircuitBreaker | None = None,
        pipelined: bool = True,
    ) -> RedisStore:
        """A store on ``url``; ``redis+cluster://`` (or ``cluster=True``) selects Redis Cluster.

        ``pipelined``: on a single ``redis://`` node, the request-path scripts share one
        pipelined connection (:mod:`arbiter.state.redis_pipe`) instead of redis-py's pool."""
        plain, named = parse_redis_url(url)
        cluster = named if cluster is None else cluster
        # Deadlines are enforced per call (asyncio.timeout_at in _run, always set); a socket
        # timeout would only add an asyncio.wait_for around every read and write.
        backstop = max(max_timeout_s, default_timeout_s) + 1.0
        options: dict[str, Any] = {
            "socket_timeout": None,
            "socket_connect_timeout": backstop,
            "retry": _no_retry(),
            # A new connection sends nothing before the first command: RESP2 needs
            # no HELLO, and no CLIENT SETINFO (redis-py 8 sends both by default).
            "protocol": 2,
            "driver_info": None,
            "max_connections": max_in_flight,
        }
        client: Client = redis_client(plain, cluster=cluster, **options)
        pipe = None
        if pipelined and not cluster and urlsplit(plain).scheme == "redis":
            pipe = PipelinedConnection(plain)
        return cls(
            client,
            prefix=prefix,
            default_timeout_s=default_timeout_s,
            max_timeout_s=max_timeout_s,
            max_in_flight=max_in_flight,
            breaker=breaker,
            pipeline=pipe,
        )

    @property
    def client(self) -> Client:
        """The underlying redis-py client (for tests and tools; not for state access)."""
        return self._client

    @property
    def health_detail(self) -> str:
        """Why the last :meth:`ping` answered ``False`` (``""`` after a ``True``)."""
        return self._health_detail

    def _epoch(self, customer_id: str) -> str:
        """The state epoch marker a script of ``customer_id`` checks (same slot on a Cluster)."""
        return epoch_key(self.prefix, slot_of(customer_id) if self.cluster else None)

    # ------------------------------------------------------------------ port

    def _wake(self, customer_id: str) -> str:
        """The wake-up set the scripts of ``customer_id`` write (same slot on a Cluster)."""
        return wake_key(self.prefix, slot_of(customer_id) if self.cluster else None)

    async def load(
        self,
        customer_id: str,
        needs: SnapshotNeeds,
        now_ms: int,
        *,
        request_id: str | None = None,
        timeout_s: float | None = None,
    ) -> Loaded:
        keys = customer_keys(customer_id, self.prefix)
        if request_id is not None:
            validate_id(request_id, "request_id")
        plan = self._plans.get(needs)
        if plan is None:
            if len(self._plans) >= 64:
                self._plans.clear()
            plan = self._plans[needs] = codec.load_plan(needs)
        reply = await self._run(
            "load",
            _SCRIPTS["load"],
            (*keys[:6], self._epoch(customer_id)),
            (request_id or "", plan.blob),
            timeout_s,
            lost=0,
        )
        _, clock_ms, version, record, pvals, jflat, evals, kvals = reply
        profile: dict[str, ProfileValue] = {}
        consent: dict[str, ConsentRecord] = {}
        segments: frozenset[str] = frozenset()
        segments_ms = 0
        for (kind, name), raw in zip(plan.fields, pvals, strict=True):
            if raw is None:
                continue
            if kind == "t":
                profile[name] = codec.decode_profile(raw)
            elif kind == "c":
                consent[name] = codec.decode_consent(raw)
            else:
                segments, segments_ms = codec.decode_segments_value(raw)
        journeys = {name: codec.decode_journey_value(raw) for name, raw in codec.pairs(jflat)}
        if plan.event_types is None:
            events = {name: codec.decode_counter(raw) for name, raw in codec.pairs(evals)}
        else:
            events = {
                name: codec.decode_counter(raw)
                for name, raw in zip(plan.event_types, evals, strict=True)
                if raw is not None
            }
        caps: dict[str, list[int]] = {}
        # Prune by the earlier of the two clocks: a caller whose clock runs ahead of Redis
        # must not drop grants that are still inside their window by Redis's clock.
        prune_ms = min(now_ms, int(clock_ms))
        for key, raw in zip(plan.cap_keys, kvals, strict=True):
            if raw is not None:
                grants = codec.decode_caps(raw, prune_ms)
                if grants:
                    caps[key] = grants
        snapshot = CustomerSnapshot(
            customer_id=customer_id,
            profile=profile,
            consent=consent,
            events=events,
            segments=segments,
            segments_updated_ms=segments_ms,
            journeys=journeys,
            caps=caps,
        )
        replay = None if record is None else codec.decode_stored(record)
        return Loaded(
            snapshot=snapshot, replay=replay, now_ms=int(clock_ms), consent_version=int(version)
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
        keys = customer_keys(commit.customer_id, self.prefix)
        validate_id(commit.request_id, "request_id")
        plan = [
            commit.now_ms,
            commit.request_id,
            codec.milliseconds(ttl_s, "ttl_s"),
            [
                [g.tracking_id, g.action, [[c.cap_id, c.key, c.window_ms, c.limit] for c in g.caps]]
                for g in commit.grants
            ],
            codec.journey_plan(commit.journeys, commit.customer_id),
            -1 if consent_version is None else consent_version,
            self._max_decisions,
            1 if abort_on_rejection else 0,
        ]
        args = [
            codec.encode(plan),
            bytes(record),
            bytes(fingerprint),
            *(codec.journey_value(c.state) for c in commit.journeys),
        ]
        reply = await self._run(
            "commit_decision",
            _SCRIPTS["commit"],
            (
                keys.journeys,
                keys.caps,
                keys.records,
                keys.record_expiry,
                keys.profile,
                self._epoch(commit.customer_id),
                self._wake(commit.customer_id),
            ),
            args,
            timeout_s,
            lost=2,
        )
        status = reply[0]
        if status == 1:
            stored = codec.decode_stored(reply[1])
            return CommitOutcome(
                record=stored.record,
                result=stored.result,
                fingerprint=stored.fingerprint,
                replayed=True,
            )
        if status == 4:
            return CommitOutcome(
                record=bytes(record),
                result=CommitResult(),
                fingerprint=bytes(fingerprint),
                aborted=True,
            )
        if status == 3:
            return CommitOutcome(
                record=bytes(record),
                result=CommitResult(),
                fingerprint=bytes(fingerprint),
                consent_changed=True,
            )
        return CommitOutcome(
            record=bytes(record),
            result=codec.decode_commit_result(reply[1]),
            fingerprint=bytes(fingerprint),
        )

    async def apply_event(
        self,
        effects: EventEffects,
        *,
        dedup_ttl_s: float = DEFAULT_EVENT_DEDUP_TTL_S,
        timeout_s: float | None = None,
    ) -> EventOutcome:
        keys = customer_keys(effects.customer_id, self.prefix)
        validate_id(effects.event_id, "event_id")
        plan = [
            effects.event_id,
            codec.milliseconds(dedup_ttl_s, "dedup_ttl_s"),
            self._feedback_limit,
            FEEDBACK_TTL_MS,
            codec.journey_plan(effects.journeys, effects.customer_id),
            [
                [
                    c.event_type,
                    c.at_ms,
                    c.bucket_ms,
                    c.bucket_start_ms,
                    c.count,
                    c.retention_ms,
                    *_COUNTER_TIERS,
                ]
                for c in effects.counters
            ],
            self._max_markers,
        ]
        args = [
            codec.encode(plan),
            *(codec.journey_value(c.state) for c in effects.journeys),
            *(codec.encode(fb) for fb in effects.feedback),
        ]
        reply = await self._run(
            "apply_event",
            _SCRIPTS["event"],
            (
                keys.journeys,
                keys.events,
                keys.dedup,
                keys.feedback,
                self._wake(effects.customer_id),
            ),
            args,
            timeout_s,
        )
        status = reply[0]
        if status == 1:
            return "applied"
        if status == 0:
            return "duplicate"
        _, journey, has_expect, expect, has_found, found = reply
        raise StateConflict(
            codec.text(journey),
            codec.text(expect) if has_expect == 1 else None,
            codec.text(found) if has_found == 1 else None,
        )

    async def update_profile(
        self,
        update: ProfileUpdate,
        *,
        do_not_contact_attribute: str | None = None,
        timeout_s: float | None = None,
    ) -> tuple[FieldResult, ...]:
        keys = customer_keys(update.customer_id, self.prefix)
        if update.do_not_contact is not None and do_not_contact_attribute is None:
            raise ValueError("the policy declares no do-not-contact attribute")
        ts, source = update.timestamp_ms, update.source
        # (FieldResult kind, name), in the order of apply_profile_update
        fields: list[tuple[str, str]] = []
        # {field, kind, timestamp, flag, bumps the consent version}
        plan: list[list[str | int]] = []
        values: list[bytes] = []
        for name in sorted(update.traits):
            value = ProfileValue(value=update.traits[name], updated_ms=ts, source=source)
            fields.append(("trait", name))
            plan.append(["t:" + name, "t", ts, "-", int(name == do_not_contact_attribute)])
            values.append(codec.trait_value(value))
        if update.do_not_contact is not None:
            assert do_not_contact_attribute is not None
            value = ProfileValue(value=update.do_not_contact, updated_ms=ts, source=source)
            fields.append(("do_not_contact", do_not_contact_attribute))
            plan.append(["t:" + do_not_contact_attribute, "t", ts, "-", 1])
            values.append(codec.trait_value(value))
        for c in update.consents:
            rec = ConsentRecord(
                state=c.state, updated_ms=ts, source=source, expires_ms=c.expires_ms
            )
            fields.append(("consent", c.purpose))
            plan.append(["c:" + c.purpose, "c", ts, "d" if c.state == "denied" else "g", 1])
            values.append(codec.consent_value(rec))
        if update.segments is not None:
            fields.append(("segments", "segments"))
            plan.append(["g", "g", ts, "-", 0])
            values.append(codec.segments_value(frozenset(update.segments), ts))
        if not fields:
            return ()
        reply = await self._run(
            "update_profile",
            _SCRIPTS["profile"],
            keys[:1],
            [codec.encode(plan), *values],
            timeout_s,
        )
        return tuple(
            FieldResult(
                kind=kind,  # type: ignore[arg-type]
                name=name,
                applied=reply[2 * i] == 1,
                stored_ms=int(reply[2 * i + 1]),
            )
            for i, (kind, name) in enumerate(fields)
        )

    async def export_customer(self, customer_id: str) -> dict[str, Any]:
        keys = customer_keys(customer_id, self.prefix)
        clock, p, j, k, e, f = await self._run(
            "export_customer",
            _SCRIPTS["export"],
            (keys.profile, keys.journeys, keys.caps, keys.events, keys.feedback),
            (),
            None,
        )
        profile: dict[str, ProfileValue] = {}
        consent: dict[str, ConsentRecord] = {}
        segments: frozenset[str] = frozenset()
        segments_ms = 0
        for field, raw in codec.pairs(p):
            if field.startswith("t:"):
                profile[field[2:]] = codec.decode_profile(raw)
            elif field.startswith("c:"):
                consent[field[2:]] = codec.decode_consent(raw)
            elif field == "g":
                segments, segments_ms = codec.decode_segments_value(raw)
        snapshot = CustomerSnapshot(
            customer_id=customer_id,
            profile=profile,
            consent=consent,
            events={name: codec.decode_counter(raw) for name, raw in codec.pairs(e)},
            segments=segments,
            segments_updated_ms=segments_ms,
            journeys={name: codec.decode_journey_value(raw) for name, raw in codec.pairs(j)},
            caps={name: codec.decode_caps(raw, None) for name, raw in codec.pairs(k)},
        )
        records = await self._pages((keys.record_expiry, keys.records), clock)
        markers = await self._pages((keys.dedup,), clock)
        return build_export(
            snapshot,
            decisions={rid: codec.decode_stored(raw) for rid, raw in codec.pairs(records)},
            feedback=[codec.decode_feedback(raw) for raw in f],
            applied_events=[codec.text(eid) for eid in markers],
        )

    async def _pages(self, keys: tuple[str, ...], clock: int) -> list[Any]:
        """Every live entry of an expiry ZSET (with its hash values), read page by page."""
        out: list[Any] = []
        offset = 0
        while True:
            scanned, *entries = await self._run(
                "export_customer",
                _SCRIPTS["export_page"],
                keys,
                (int(clock), offset, EXPORT_PAGE),
                None,
            )
            out += entries
            offset += EXPORT_PAGE
            if scanned < EXPORT_PAGE:
                return out

    async def forget_customer(self, customer_id: str) -> int:
        keys = customer_keys(customer_id, self.prefix)
        return int(await self._run("forget_customer", _SCRIPTS["forget"], keys, (), None))

    async def ping(self) -> bool:
        """Health: every master can take a commit now and holds its state epoch marker.

        One ``health.lua`` call per master (a script Redis refuses wherever it
        would refuse a commit: full, read-only, failing persistence, loading,
        busy, cluster down). Also the circuit breaker's half-open probe.
        """
        if self._closed:
            self._health_detail = "store closed"
            return False
        if not self.breaker.allow():
            self._health_detail = self._health_detail or "circuit open"
            return False
        try:
            async with asyncio.timeout(min(self.default_timeout_s, 1.0)):
                if self.cluster and getattr(self._client, "_initialize", False):
                    await self._initialize_cluster()
                # Under the same semaphore as every other call: the pool has exactly
                # max_in_flight connections, and a health check must never take one a
                # decision is waiting for.
                async with self._slots:
                    missing = await self._probe()
        except Exception as exc:  # never raises: any failure is "not serving"
            self.breaker.record_failure()
            reason = unavailable_reason(exc) or "unexpected reply"
            self._health_detail = f"{reason}: {str(exc)[:160] or type(exc).__name__}"
            return False
        except BaseException:
            self.breaker.release()
            raise
        self.breaker.record_success()  # it answered: the breaker is about reachability
        if missing:
            self._health_detail = f"{StateLost.HINT} ({missing})"
            return False
        self._health_detail = ""
        return True

    async def _probe(self) -> str:
        """``health.lua`` on every master; the masters missing their epoch marker ("" if none)."""
        script = _SCRIPTS["health"]
        if not self.cluster:
            found = await self._eval(script, (epoch_key(self.prefix),), ())
            return "" if found == 1 else "this Redis"
        first: dict[str, int] = {}
        for slot, nodes in self._client.nodes_manager.slots_cache.items():  # type: ignore[union-attr]
            first.setdefault(nodes[0].name, slot)
        found = await asyncio.gather(
            *(self._eval(script, (epoch_key(self.prefix, slot),), ()) for slot in first.values())
        )
        return ", ".join(name for name, n in zip(first, found, strict=True) if n != 1)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._pipe is not None:
            self._pipe.close()
        await self._client.aclose()

    # ------------------------------------------------------------------ operations

    async def init_state(self) -> int:
        """Write the state epoch marker(s) where missing (``SET NX``); return how many were written.

        One marker on a single node, one per slot (16,384) on a Cluster. Run by
        ``arbiter state init``: for a new deployment, and after a loss once
        profiles and consent have been re-seeded.
        """
        value = f"{uuid.uuid4().hex} {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}"
        try:
            async with asyncio.timeout(max(self.max_timeout_s, 10.0)):
                if not self.cluster:
                    written = await self._client.set(epoch_key(self.prefix), value, nx=True)
                    return 1 if written else 0
                await self._initialize_cluster()
                pipe = self._client.pipeline()
                for slot in range(SLOTS):
                    pipe.set(epoch_key(self.prefix, slot), value, nx=True)
                return sum(1 for written in await pipe.execute() if written)
        except Exception as exc:
            raise operation_error("init_state", exc) from exc

    # ------------------------------------------------------------------ extras

    async def seed(self, snapshot: CustomerSnapshot, *, timeout_s: float | None = None) -> None:
        """Replace a customer's profile, consent, segments, journeys, counters and caps
        with ``snapshot`` (tests, scenario runs and benchmarks; like ``MemoryStore.seed``).
        Idempotency records, dedup markers and feedback are kept; the consent version
        is bumped. Seeded cap lists have no known window: they are not pruned on load,
        and live 400 days."""
        keys = customer_keys(snapshot.customer_id, self.prefix)
        p: list[str | bytes] = []
        for name, value in snapshot.profile.items():
            p += ["t:" + name, codec.trait_value(value)]
        for name, rec in snapshot.consent.items():
            p += ["c:" + name, codec.consent_value(rec)]
        if snapshot.segments or snapshot.segments_updated_ms:
            p += ["g", codec.segments_value(snapshot.segments, snapshot.segments_updated_ms)]
        j: list[str | bytes] = []
        for name, state in snapshot.journeys.items():
            j += [name, codec.journey_value(state)]
        k: list[str | bytes] = []
        for key, grants in snapshot.caps.items():
            k += [key, codec.encode([0, *sorted(grants)])]
        e: list[str | bytes] = []
        for name, counter in snapshot.events.items():
            e += [name, codec.counter_value(counter)]
        args: list[str | int | bytes] = [SEED_TTL_MS, SEED_TTL_MS]
        args += [len(p) // 2, len(j) // 2, len(k) // 2, len(e) // 2, *p, *j, *k, *e]
        await self._run("seed", _SCRIPTS["seed"], keys, args, timeout_s)

    # ------------------------------------------------------------------ internals

    async def _run(
        self,
        operation: str,
        script: Script,
        keys: Sequence[str],
        args: Sequence[str | int | bytes],
        timeout_s: float | None,
        *,
        lost: int | None = None,
    ) -> Any:
        """One script call under the deadline, the in-flight bound and the circuit breaker.

        ``lost``: the reply status by which the script says the state epoch is
        missing -- raised as :class:`StateLost`. Not a breaker failure: the
        server answers at once, and each call must say why it fails.
        """
        if self._closed:
            raise StoreUnavailable(operation, "store closed")
        timeout = (
            self.default_timeout_s if timeout_s is None else min(timeout_s, self.max_timeout_s)
        )
        if timeout <= 0:
            # The caller's deadline has passed: not the server's fault, not a breaker failure.
            raise StoreUnavailable(operation, "deadline already passed")
        if not self.breaker.allow():
            raise StoreUnavailable(operation, "circuit open")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        sent = False
        try:
            async with asyncio.timeout_at(deadline):
                if self.cluster and getattr(self._client, "_initialize", False):
                    await self._initialize_cluster()
                async with self._slots:
                    sent = True
                    reply = await self._eval(script, keys, args)
        except Exception as exc:
            reason = unavailable_reason(exc)
            if reason is None:
                if isinstance(exc, rex.ResponseError):
                    self.breaker.record_success()  # the server answered: it is there
                else:
                    self.breaker.release()  # refused before sending: no verdict on the server
                raise StoreError(f"{operation}: {script.name}.lua failed: {exc}") from exc
            if reason == "timeout":
                late = loop.time() - deadline
                if not sent or self._overloaded_here(late, timeout, loop.time()):
                    self.breaker.release()  # this process was late, not the server
                    raise StoreUnavailable(operation, _local_timeout(sent, timeout, late)) from exc
                reason = f"timed out after {timeout:.3f}s"
            self.breaker.record_failure()
            raise StoreUnavailable(operation, reason) from exc
        except BaseException:
            self.breaker.release()  # cancelled: no verdict on the server
            raise
        self._answered_at = loop.time()
        self.breaker.record_success()
        if lost is not None and reply[0] == lost:
            raise StateLost(operation)
        return reply

    def _overloaded_here(self, late_s: float, timeout_s: float, now: float) -> bool:
        """Whether a timeout was this process's fault: its event loop handled the expiry well
        after the deadline (busy with other work: the reply may have been waiting unread) while
        the server was answering other calls until recently."""
        lagging = late_s > max(_LOOP_LAG_S, _LOOP_LAG_SHARE * timeout_s)
        return lagging and now - self._answered_at < _RECENT_ANSWER_S

    async def _initialize_cluster(self) -> None:
        """Load the slot map once, before commands race for it.

        redis-py lets concurrent first commands of a fresh (or just reset)
        ``RedisCluster`` run into its initialisation; some of them then fail
        with "Connection closed by server". Serialising it here costs one
        attribute check per call once initialised.
        """
        async with self._init_lock:
            if getattr(self._client, "_initialize", False):
                await self._client.initialize()

    async def _eval(
        self, script: Script, keys: Sequence[str], args: Sequence[str | int | bytes]
    ) -> Any:
        if self._pipe is not None:
            try:
                return await self._pipe.execute(
                    pack("EVALSHA", script.sha, len(keys), *keys, *args)
                )
            except rex.NoScriptError:  # as below
                return await self._pipe.execute(
                    pack("EVAL", script.source, len(keys), *keys, *args)
                )
        call: Callable[..., Awaitable[Any]] = self._client.execute_command
        try:
            return await call("EVALSHA", script.sha, len(keys), *keys, *args)
        except rex.NoScriptError:
            # The server has not got the script (restart, failover, SCRIPT FLUSH): nothing
            # ran. EVAL caches it; a NOSCRIPT to EVAL too (a proxy without scripting) is
            # classified as unavailable by the caller.
            return await call("EVAL", script.source, len(keys), *keys, *args)


def _local_timeout(sent: bool, timeout_s: float, late_s: float) -> str:
    if not sent:
        return f"timed out after {timeout_s:.3f}s waiting for a connection slot (overloaded here)"
    return (
        f"timed out after {timeout_s:.3f}s with the event loop {late_s * 1000:.0f} ms behind "
        "(overloaded here, not a store failure)"
    )


def operation_error(operation: str, exc: Exception) -> StoreError:
    """An operator command's failure, classified like a script call's."""
    reason = unavailable_reason(exc)
    if reason is None:
        return StoreError(f"{operation}: {exc}")
    return StoreUnavailable(operation, f"{reason}: {exc}")
