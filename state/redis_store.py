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
timeout probes the server and closes the breaker again.

Concurrency. redis-py does not pipeline concurrent commands on one
connection, so a semaphore bounds the calls in flight (``max_in_flight``,
also the connection pool size per node); more concurrent callers wait for
a slot within their deadline.

Caching. None of the state is cached: consent and caps must be read fresh
(DESIGN.md §3), and a stale profile would save nothing -- the profile
rides in the same script call as everything else. Only the per-``needs``
argument layout of ``load`` is memoised (a pure function of an immutable
value; measured in ``docs/state-redis.md``).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Final, TypeAlias
from urllib.parse import urlsplit, urlunsplit

import msgspec
from redis import exceptions as rex
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from arbiter.policies.effects import (
    CommitResult,
    DecisionCommit,
    EventEffects,
    FeedbackRecord,
    FieldResult,
    GrantRejection,
    JourneyChange,
    ProfileUpdate,
    StateConflict,
)
from arbiter.policies.snapshot import (
    ConsentRecord,
    CustomerSnapshot,
    EventCounter,
    JourneyState,
    ProfileValue,
    SnapshotNeeds,
)

from .circuit import CircuitBreaker
from .redis_keys import DEFAULT_PREFIX, FEEDBACK_TTL_MS, customer_keys
from .store import (
    DEFAULT_EVENT_DEDUP_TTL_S,
    DEFAULT_IDEMPOTENCY_TTL_S,
    FEEDBACK_LIMIT,
    CommitOutcome,
    EventOutcome,
    Loaded,
    StoredDecision,
    StoreError,
    StoreUnavailable,
    build_export,
    validate_id,
)

__all__ = ["DEFAULT_TIMEOUT_S", "RedisStore", "Script"]

Client: TypeAlias = "Redis | RedisCluster"

DEFAULT_TIMEOUT_S: Final = 0.5
DEFAULT_MAX_IN_FLIGHT: Final = 64
# Cap grant lists and counters seeded without a known window keep this TTL.
SEED_TTL_MS: Final = 400 * 86_400_000

# Server answers that mean "not available now", not "your request is wrong".
_UNAVAILABLE_REPLIES: Final = ("BUSY", "LOADING", "OOM", "READONLY", "MASTERDOWN", "CLUSTERDOWN")
_UNAVAILABLE_ERRORS: Final = (
    TimeoutError,  # asyncio.timeout
    OSError,
    rex.ConnectionError,  # includes BusyLoadingError, MaxConnectionsError
    rex.TimeoutError,
    rex.ClusterDownError,
    rex.TryAgainError,
    rex.MasterDownError,
    rex.SlotNotCoveredError,
    rex.RedisClusterException,  # "cannot connect to the cluster", no node for a slot
)


_SCRIPT_DIR: Final = Path(__file__).resolve().parent / "redis_scripts"


class Script:
    """One Lua script of ``state/redis_scripts``: its source and SHA1, for ``EVALSHA``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.source = (_SCRIPT_DIR / f"{name}.lua").read_text("utf-8")
        self.sha = hashlib.sha1(self.source.encode("utf-8"), usedforsecurity=False).hexdigest()


_SCRIPTS: Final = {
    name: Script(name)
    for name in ("load", "commit", "event", "profile", "export", "forget", "seed")
}

_encode = msgspec.msgpack.Encoder().encode
_decode_profile = msgspec.msgpack.Decoder(ProfileValue).decode
_decode_consent = msgspec.msgpack.Decoder(ConsentRecord).decode
_decode_journey = msgspec.msgpack.Decoder(JourneyState).decode
_decode_feedback = msgspec.msgpack.Decoder(FeedbackRecord).decode
_decode_list = msgspec.msgpack.Decoder(list[Any]).decode
_decode_segments = msgspec.msgpack.Decoder(list[str]).decode
_decode_result = msgspec.msgpack.Decoder(
    tuple[list[str], list[tuple[str, str, str, str]], list[str]]
).decode


class _LoadPlan(msgspec.Struct, frozen=True):
    """The ``load.lua`` plan for one ``SnapshotNeeds`` and how to read the reply."""

    blob: bytes  # msgpack {want_journeys, {p fields}, all_events, {event types}, {cap keys}}
    fields: tuple[tuple[str, str], ...]  # (kind "t"/"c"/"g", name) per requested p field
    event_types: tuple[str, ...] | None  # None: all counters were read
    cap_keys: tuple[str, ...]


def _load_plan(needs: SnapshotNeeds) -> _LoadPlan:
    parts = needs.parts
    fields: list[tuple[str, str]] = []
    if "profile" in parts:
        fields += [("t", name) for name in sorted(needs.profile_attributes)]
    if "consent" in parts:
        fields += [("c", name) for name in sorted(needs.consent_purposes)]
    if "segments" in parts:
        fields.append(("g", ""))
    event_types: tuple[str, ...] | None = ()
    if "events" in parts:
        event_types = None if needs.event_types is None else tuple(sorted(needs.event_types))
    cap_keys = tuple(sorted(needs.cap_keys)) if "caps" in parts else ()
    blob = _encode(
        [
            1 if "journeys" in parts else 0,
            [_field(kind, name) for kind, name in fields],
            1 if event_types is None else 0,
            list(event_types or ()),
            list(cap_keys),
        ]
    )
    return _LoadPlan(blob, tuple(fields), event_types, cap_keys)


def _field(kind: str, name: str) -> str:
    return "g" if kind == "g" else f"{kind}:{name}"


def _split_header(raw: bytes, sep: bytes) -> tuple[bytes, int]:
    """``<head><sep>rest`` -> (head, index of rest)."""
    at = raw.index(sep)
    return raw[:at], at + 1


def _journey_value(state: JourneyState) -> bytes:
    token = state.last_event_id.encode("utf-8")
    return b"%d:%b%b" % (len(token), token, _encode(state))


def _decode_journey_value(raw: bytes) -> JourneyState:
    head, at = _split_header(raw, b":")
    return _decode_journey(memoryview(raw)[at + int(head) :])


def _trait_value(value: ProfileValue) -> bytes:
    return b"%d|-%b" % (value.updated_ms, _encode(value))


def _consent_value(record: ConsentRecord) -> bytes:
    flag = b"d" if record.state == "denied" else b"g"
    return b"%d|%b%b" % (record.updated_ms, flag, _encode(record))


def _segments_value(segments: frozenset[str], updated_ms: int) -> bytes:
    return b"%d|-%b" % (updated_ms, _encode(sorted(segments)))


def _decode_segments_value(raw: bytes) -> tuple[frozenset[str], int]:
    """The ``g`` field: (segments, updated_ms)."""
    head, at = _split_header(raw, b"|")
    return frozenset(_decode_segments(memoryview(raw)[at + 1 :])), int(head)


def _p_body(raw: bytes) -> memoryview:
    _, at = _split_header(raw, b"|")
    return memoryview(raw)[at + 1 :]


def _decode_counter(raw: bytes) -> EventCounter:
    arr = _decode_list(raw)
    first, last = arr[1], arr[2]
    return EventCounter(
        total=arr[0],
        first_ms=None if first is False else first,
        last_ms=None if last is False else last,
        bucket_ms=arr[3],
        buckets={arr[i]: arr[i + 1] for i in range(4, len(arr), 2)},
    )


def _counter_value(counter: EventCounter) -> bytes:
    flat: list[Any] = [
        counter.total,
        False if counter.first_ms is None else counter.first_ms,
        False if counter.last_ms is None else counter.last_ms,
        counter.bucket_ms,
    ]
    for start, n in sorted(counter.buckets.items()):
        flat += [start, n]
    return _encode(flat)


def _decode_caps(raw: bytes, now_ms: int | None) -> list[int]:
    """Grant instants of one cap key; with ``now_ms``, without those past its longest window."""
    arr = _decode_list(raw)
    window = arr[0]
    if now_ms is None or window <= 0:
        return arr[1:]
    since = now_ms - window
    return [t for t in arr[1:] if t > since]


def _decode_stored(raw: bytes) -> StoredDecision:
    head, at = _split_header(raw, b":")
    end = at + int(head)
    return StoredDecision(record=raw[end:], result=_decode_commit_result(raw[at:end]))


def _decode_commit_result(raw: bytes) -> CommitResult:
    granted, rejected, skipped = _decode_result(raw)
    return CommitResult(
        granted=tuple(granted),
        rejected=tuple(
            GrantRejection(tracking_id=t, action=a, cap_id=c, key=k) for t, a, c, k in rejected
        ),
        skipped_journeys=tuple(skipped),
    )


def _journey_plan(changes: Sequence[JourneyChange]) -> list[list[str | int]]:
    """``{journey, has_expect, expect}`` per change (the new states travel as separate ARGV)."""
    plan: list[list[str | int]] = []
    for ch in changes:
        expect = ch.expect_last_event_id
        plan.append([ch.journey, 0 if expect is None else 1, expect or ""])
    return plan


def _ms(seconds: float, name: str) -> int:
    if not seconds > 0 or math.isinf(seconds):
        raise ValueError(f"{name} must be > 0")
    return max(1, math.ceil(seconds * 1000))


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _pairs(flat: Sequence[Any]) -> list[tuple[str, bytes]]:
    return [(_text(flat[i]), flat[i + 1]) for i in range(0, len(flat), 2)]


def _no_retry() -> Retry:
    return Retry(NoBackoff(), 0)


class RedisStore:
    """The Redis implementation of :class:`state.store.Store` (see the module docstring).

    Build it with :meth:`from_url` (``redis://``, ``rediss://``, ``unix://``;
    ``redis+cluster://host:port`` or ``cluster=True`` for Redis Cluster) or
    around an existing client. ``prefix`` namespaces every key
    (``<prefix>:{c:<id>}:<part>``). ``default_timeout_s`` bounds calls made
    without a ``timeout_s`` and is the sockets' backstop timeout.
    """

    def __init__(
        self,
        client: Client,
        *,
        prefix: str = DEFAULT_PREFIX,
        default_timeout_s: float = DEFAULT_TIMEOUT_S,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        breaker: CircuitBreaker | None = None,
        feedback_limit: int = FEEDBACK_LIMIT,
    ) -> None:
        if not prefix or "{" in prefix or "}" in prefix:
            raise ValueError("prefix must be non-empty and contain no '{' or '}'")
        self._client: Client = client
        self.prefix = prefix
        self.default_timeout_s = default_timeout_s
        self.breaker = breaker if breaker is not None else CircuitBreaker()
        self.cluster = isinstance(client, RedisCluster)
        self._slots = asyncio.Semaphore(max_in_flight)
        self._init_lock = asyncio.Lock()
        self._feedback_limit = feedback_limit
        self._plans: dict[SnapshotNeeds, _LoadPlan] = {}
        self._closed = False

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        cluster: bool | None = None,
        prefix: str = DEFAULT_PREFIX,
        default_timeout_s: float = DEFAULT_TIMEOUT_S,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        breaker: CircuitBreaker | None = None,
    ) -> RedisStore:
        """A store on ``url``; ``redis+cluster://`` (or ``cluster=True``) selects Redis Cluster."""
        parts = urlsplit(url)
        scheme = parts.scheme
        if scheme.endswith("+cluster"):
            scheme = scheme.removesuffix("+cluster")
            cluster = True if cluster is None else cluster
        plain = urlunsplit((scheme, *parts[1:]))
        options: dict[str, Any] = {
            "socket_timeout": default_timeout_s,
            "socket_connect_timeout": default_timeout_s,
            "retry": _no_retry(),
            # A new connection sends nothing before the first command: RESP2 needs
            # no HELLO, and no CLIENT SETINFO (redis-py 8 sends both by default).
            "protocol": 2,
            "driver_info": None,
            "max_connections": max_in_flight,
        }
        client: Client
        if cluster:
            client = RedisCluster.from_url(plain, **options)
        else:
            client = Redis.from_url(plain, health_check_interval=0, **options)
        return cls(
            client,
            prefix=prefix,
            default_timeout_s=default_timeout_s,
            max_in_flight=max_in_flight,
            breaker=breaker,
        )

    @property
    def client(self) -> Client:
        """The underlying redis-py client (for tests and tools; not for state access)."""
        return self._client

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
        keys = customer_keys(customer_id, self.prefix)
        if request_id is not None:
            validate_id(request_id, "request_id")
        plan = self._plans.get(needs)
        if plan is None:
            if len(self._plans) >= 64:
                self._plans.clear()
            plan = self._plans[needs] = _load_plan(needs)
        reply = await self._run(
            "load",
            _SCRIPTS["load"],
            keys[:6],
            (request_id or "", plan.blob),
            timeout_s,
        )
        record, pvals, jflat, evals, kvals = reply
        profile: dict[str, ProfileValue] = {}
        consent: dict[str, ConsentRecord] = {}
        segments: frozenset[str] = frozenset()
        segments_ms = 0
        for (kind, name), raw in zip(plan.fields, pvals, strict=True):
            if raw is None:
                continue
            if kind == "t":
                profile[name] = _decode_profile(_p_body(raw))
            elif kind == "c":
                consent[name] = _decode_consent(_p_body(raw))
            else:
                segments, segments_ms = _decode_segments_value(raw)
        journeys = {name: _decode_journey_value(raw) for name, raw in _pairs(jflat)}
        if plan.event_types is None:
            events = {name: _decode_counter(raw) for name, raw in _pairs(evals)}
        else:
            events = {
                name: _decode_counter(raw)
                for name, raw in zip(plan.event_types, evals, strict=True)
                if raw is not None
            }
        caps: dict[str, list[int]] = {}
        for key, raw in zip(plan.cap_keys, kvals, strict=True):
            if raw is not None:
                grants = _decode_caps(raw, now_ms)
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
        replay = None if record is None else _decode_stored(record)
        return Loaded(snapshot=snapshot, replay=replay)

    async def commit_decision(
        self,
        commit: DecisionCommit,
        record: bytes,
        *,
        ttl_s: float = DEFAULT_IDEMPOTENCY_TTL_S,
        timeout_s: float | None = None,
    ) -> CommitOutcome:
        keys = customer_keys(commit.customer_id, self.prefix)
        validate_id(commit.request_id, "request_id")
        plan = [
            commit.now_ms,
            commit.request_id,
            _ms(ttl_s, "ttl_s"),
            [
                [g.tracking_id, g.action, [[c.cap_id, c.key, c.window_ms, c.limit] for c in g.caps]]
                for g in commit.grants
            ],
            _journey_plan(commit.journeys),
        ]
        args = [_encode(plan), bytes(record), *(_journey_value(c.state) for c in commit.journeys)]
        replayed, raw = await self._run(
            "commit_decision",
            _SCRIPTS["commit"],
            (keys.journeys, keys.caps, keys.records, keys.record_expiry),
            args,
            timeout_s,
        )
        if replayed:
            stored = _decode_stored(raw)
            return CommitOutcome(record=stored.record, result=stored.result, replayed=True)
        return CommitOutcome(record=bytes(record), result=_decode_commit_result(raw))

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
            _ms(dedup_ttl_s, "dedup_ttl_s"),
            self._feedback_limit,
            FEEDBACK_TTL_MS,
            _journey_plan(effects.journeys),
            [
                [c.event_type, c.at_ms, c.bucket_ms, c.bucket_start_ms, c.count, c.retention_ms]
                for c in effects.counters
            ],
        ]
        args = [
            _encode(plan),
            *(_journey_value(c.state) for c in effects.journeys),
            *(_encode(fb) for fb in effects.feedback),
        ]
        reply = await self._run(
            "apply_event",
            _SCRIPTS["event"],
            (keys.journeys, keys.events, keys.dedup, keys.feedback),
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
            _text(journey),
            _text(expect) if has_expect == 1 else None,
            _text(found) if has_found == 1 else None,
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
        plan: list[list[str | int]] = []
        values: list[bytes] = []
        for name in sorted(update.traits):
            value = ProfileValue(value=update.traits[name], updated_ms=ts, source=source)
            fields.append(("trait", name))
            plan.append(["t:" + name, "t", ts, "-"])
            values.append(_trait_value(value))
        if update.do_not_contact is not None:
            assert do_not_contact_attribute is not None
            value = ProfileValue(value=update.do_not_contact, updated_ms=ts, source=source)
            fields.append(("do_not_contact", do_not_contact_attribute))
            plan.append(["t:" + do_not_contact_attribute, "t", ts, "-"])
            values.append(_trait_value(value))
        for c in update.consents:
            rec = ConsentRecord(
                state=c.state, updated_ms=ts, source=source, expires_ms=c.expires_ms
            )
            fields.append(("consent", c.purpose))
            plan.append(["c:" + c.purpose, "c", ts, "d" if c.state == "denied" else "g"])
            values.append(_consent_value(rec))
        if update.segments is not None:
            fields.append(("segments", "segments"))
            plan.append(["g", "g", ts, "-"])
            values.append(_segments_value(frozenset(update.segments), ts))
        if not fields:
            return ()
        reply = await self._run(
            "update_profile", _SCRIPTS["profile"], keys[:1], [_encode(plan), *values], timeout_s
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
        p, j, k, e, r, d, f = await self._run("export_customer", _SCRIPTS["export"], keys, (), None)
        profile: dict[str, ProfileValue] = {}
        consent: dict[str, ConsentRecord] = {}
        segments: frozenset[str] = frozenset()
        segments_ms = 0
        for field, raw in _pairs(p):
            if field.startswith("t:"):
                profile[field[2:]] = _decode_profile(_p_body(raw))
            elif field.startswith("c:"):
                consent[field[2:]] = _decode_consent(_p_body(raw))
            elif field == "g":
                segments, segments_ms = _decode_segments_value(raw)
        snapshot = CustomerSnapshot(
            customer_id=customer_id,
            profile=profile,
            consent=consent,
            events={name: _decode_counter(raw) for name, raw in _pairs(e)},
            segments=segments,
            segments_updated_ms=segments_ms,
            journeys={name: _decode_journey_value(raw) for name, raw in _pairs(j)},
            caps={name: _decode_caps(raw, None) for name, raw in _pairs(k)},
        )
        return build_export(
            snapshot,
            decisions={rid: _decode_stored(raw) for rid, raw in _pairs(r)},
            feedback=[_decode_feedback(raw) for raw in f],
            applied_events=[_text(eid) for eid in d],
        )

    async def forget_customer(self, customer_id: str) -> int:
        keys = customer_keys(customer_id, self.prefix)
        return int(await self._run("forget_customer", _SCRIPTS["forget"], keys, (), None))

    async def ping(self) -> bool:
        if self._closed or not self.breaker.allow():
            return False
        try:
            async with asyncio.timeout(min(self.default_timeout_s, 1.0)), self._slots:
                # Under the same semaphore as every other call: the pool has
                # exactly max_in_flight connections, and a health ping must
                # never take one a decision is waiting for.
                await self._client.ping()
        except rex.ResponseError:
            pass  # it answered
        except Exception:  # never raises: any failure is "not serving"
            self.breaker.record_failure()
            return False
        except BaseException:
            self.breaker.release()
            raise
        self.breaker.record_success()
        return True

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._client.aclose()

    # ------------------------------------------------------------------ extras

    async def seed(self, snapshot: CustomerSnapshot, *, timeout_s: float | None = None) -> None:
        """Replace a customer's profile, consent, segments, journeys, counters and caps
        with ``snapshot`` (tests, scenario runs and benchmarks; like ``MemoryStore.seed``).
        Idempotency records, dedup markers and feedback are kept. Seeded cap lists
        have no known window: they are not pruned on load, and live 400 days."""
        keys = customer_keys(snapshot.customer_id, self.prefix)
        p: list[str | bytes] = []
        for name, value in snapshot.profile.items():
            p += ["t:" + name, _trait_value(value)]
        for name, rec in snapshot.consent.items():
            p += ["c:" + name, _consent_value(rec)]
        if snapshot.segments or snapshot.segments_updated_ms:
            p += ["g", _segments_value(snapshot.segments, snapshot.segments_updated_ms)]
        j: list[str | bytes] = []
        for name, state in snapshot.journeys.items():
            j += [name, _journey_value(state)]
        k: list[str | bytes] = []
        for key, grants in snapshot.caps.items():
            k += [key, _encode([0, *sorted(grants)])]
        e: list[str | bytes] = []
        for name, counter in snapshot.events.items():
            e += [name, _counter_value(counter)]
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
    ) -> Any:
        """One script call under the deadline, the in-flight bound and the circuit breaker."""
        if self._closed:
            raise StoreUnavailable(operation, "store closed")
        timeout = self.default_timeout_s if timeout_s is None else timeout_s
        if timeout <= 0:
            # The caller's deadline has passed: not the server's fault, not a breaker failure.
            raise StoreUnavailable(operation, "deadline already passed")
        if not self.breaker.allow():
            raise StoreUnavailable(operation, "circuit open")
        try:
            async with asyncio.timeout(timeout):
                if self.cluster and getattr(self._client, "_initialize", False):
                    await self._initialize_cluster()
                async with self._slots:
                    reply = await self._eval(script, keys, args)
        except rex.ResponseError as exc:
            message = str(exc)
            if message.startswith(_UNAVAILABLE_REPLIES):
                self.breaker.record_failure()
                raise StoreUnavailable(operation, message.split(" ", 1)[0]) from exc
            self.breaker.record_success()  # the server answered
            raise StoreError(f"{operation}: {script.name}.lua failed: {message}") from exc
        except _UNAVAILABLE_ERRORS as exc:
            self.breaker.record_failure()
            detail = (
                f"timed out after {timeout:.3f}s"
                if isinstance(exc, TimeoutError)
                else type(exc).__name__
            )
            raise StoreUnavailable(operation, detail) from exc
        except BaseException:
            self.breaker.release()  # cancelled: no verdict on the server
            raise
        self.breaker.record_success()
        return reply

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
        call: Callable[..., Awaitable[Any]] = self._client.execute_command
        try:
            return await call("EVALSHA", script.sha, len(keys), *keys, *args)
        except rex.NoScriptError:
            # The server has not got the script (restart, failover, SCRIPT FLUSH): nothing ran.
            return await call("EVAL", script.source, len(keys), *keys, *args)
