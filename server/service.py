"""The DecisionService, independent of any transport: a protobuf request and a :class:`CallContext` in, the protobuf response out.

Every transport -- gRPC (:mod:`arbiter.server.decision_service`), Connect
and gRPC-Web (:mod:`arbiter.server.connect_service`) -- is a thin adapter
over :class:`DecisionCore`: it decodes the request message, admits the
caller (the guard sets ``CALLER``), hands the core a :class:`CallContext`
(the call's remaining deadline and metadata; a grpc.aio context is one as
it is, :class:`Call` is one for anything else), awaits
:meth:`DecisionCore.invoke` and sends the response, or the
:class:`~arbiter.server.errors.Status` of a
:class:`~arbiter.server.errors.CallFailed` (one error table; Connect's codes
mirror gRPC's). ``docs/architecture.md`` ("The service core") describes the
seam.

Each RPC reads ``registry.current`` once and uses that policy to the end, in
the same steps: parse (validate and convert in one pass,
:mod:`arbiter.server.parse`) -> load (one store round trip, with the
idempotency lookup) -> the engine (``decide`` / ``check`` /
``apply_event``) -> commit (one atomic store step, unless ``dry_run``) ->
``settle`` (the fail-safe and the store's re-check folded into the final
answer) -> respond (:mod:`arbiter.server.render`). Store calls get a timeout
derived from the call's remaining deadline, or ``store_timeout_s`` when
the caller set none.

Before any of that, :meth:`DecisionCore.invoke` admits the call
(:mod:`arbiter.server.admission`): a bounded number run at once per
process, later ones wait in line, and one whose deadline cannot be met
behind the line is refused at once with ``RESOURCE_EXHAUSTED``.

One clock: when the store has a clock shared by every server (Redis
``TIME``, returned by the read as ``Loaded.now_ms``), a decision is made at
that time and committed at it plus the server's monotonic time since the
read, so rolling windows are judged by one clock whatever each server's own
clock says; an in-process store shares the server's clock.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

import msgspec

from arbiter.policies import (
    PARTS,
    CheckQuery,
    CustomerSnapshot,
    Decision,
    DecisionCommit,
    Event,
    StateConflict,
    StoreReport,
    apply_event,
    check,
    decide,
    decode_decision,
    encode_decision,
    precheck,
    settle,
    with_wakeups,
)
from arbiter.policies import Request as DomainRequest
from arbiter.server import parse, render
from arbiter.server.admission import Admission, Overloaded
from arbiter.server.decision_log import DecisionLog
from arbiter.server.errors import CallFailed, status_for
from arbiter.server.logs import Throttled
from arbiter.server.metrics import METRICS
from arbiter.server.outcomes import count_answer, count_journeys
from arbiter.server.parse import ValidationError
from arbiter.server.registry import Active, PolicyRegistry
from arbiter.server.tracing import NO_DECIDE, NO_SPANS, DecideSpans, Spans
from arbiter.server.volume_guard import VolumeGuards
from arbiter.state import Loaded, Store, StoredDecision, StoreUnavailable
from arbiter.v1 import decision_pb2

__all__ = ["MAX_CONFLICT_RETRIES", "METHODS", "Answer", "Call", "CallContext", "DecisionCore"]

_log = logging.getLogger("arbiter.server")
# Degraded calls: one warning per reason every 10 s during an outage, not one per call.
_degraded = Throttled(_log)

# Store calls never get less than this; below it the call is answered fail-safe.
_MIN_STORE_S: Final = 0.001
# Reserved out of the deadline for the engine and the response.
_RESERVE_S: Final = 0.002
# Track: how often an event is re-applied after a journey state conflict.
MAX_CONFLICT_RETRIES: Final = 3

# Decide and Check: a commit refused because a consent changed since the read, or because a
# concurrent decision took a cap's last slot, is decided again once on a fresh read (one extra
# read and commit): the caller gets the next best action, and a revocation wins.
_DECIDE_ATTEMPTS: Final = 2
# Reports of a commit the store refused, applying and storing nothing (identity-compared):
# consent changed since the read, or a concurrent decision took a cap's last slot.
_CONSENT_CHANGED: Final = StoreReport(commit_failure="consent changed while deciding")
_RACE_LOST: Final = StoreReport(commit_failure="a concurrent decision used the cap first")
_DECIDE_AGAIN: Final = (_CONSENT_CHANGED, _RACE_LOST)

# Method name -> (request type, response type): what a transport routes and decodes.
METHODS: Final[Mapping[str, tuple[type[Any], type[Any]]]] = {
    "Decide": (decision_pb2.DecideRequest, decision_pb2.DecideResponse),
    "Check": (decision_pb2.CheckRequest, decision_pb2.CheckResponse),
    "Track": (decision_pb2.TrackRequest, decision_pb2.TrackResponse),
    "UpdateProfile": (decision_pb2.UpdateProfileRequest, decision_pb2.UpdateProfileResponse),
}


class CallContext(Protocol):
    """What the core reads from a call, whatever the transport (a grpc.aio servicer context is one).

    The caller's identity is not here: the guard admits the call before the
    core runs and sets :data:`arbiter.server.security.grpc_guard.CALLER` for
    its duration, on every transport.
    """

    def time_remaining(self) -> float | None:
        """Seconds left before the caller's deadline, or ``None`` when it set none."""
        ...

    def invocation_metadata(self) -> Sequence[tuple[str, str]] | None:
        """The call's metadata (gRPC) or headers (HTTP) as ``(key, value)`` pairs, lower-case keys."""
        ...


@dataclass(frozen=True, slots=True)
class Call:
    """A :class:`CallContext` for callers without a context object of their own (tests, tools,
    a transport that carries a timeout): a deadline on the monotonic clock, and metadata."""

    deadline: float | None = None  # time.monotonic() value; None: no deadline
    metadata: tuple[tuple[str, str], ...] = ()

    @classmethod
    def with_timeout(
        cls, timeout_s: float | None, metadata: Sequence[tuple[str, str]] = ()
    ) -> Call:
        """A call whose deadline is ``timeout_s`` from now (``None``: no deadline)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        return cls(deadline, tuple(metadata))

    def time_remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def invocation_metadata(self) -> Sequence[tuple[str, str]]:
        return self.metadata


@dataclass(frozen=True, slots=True)
class Answer:
    """The domain answer of a Decide or Check, before rendering, and how it came about:
    ``replayed`` from a stored decision, ``recorded`` by a commit, a ``dry_run``."""

    decision: Decision
    replayed: bool = False
    recorded: bool = False
    dry_run: bool = False


def _span_attributes(answer: Answer) -> dict[str, Any]:
    """What a Decide span says: what happened, never about whom (no customer id, no context)."""
    decision = answer.decision
    return {
        "arbiter.decision_id": decision.decision_id,
        "arbiter.policy_version": decision.policy_version,
        "arbiter.actions": len(decision.actions),
        "arbiter.replayed": answer.replayed,
        "arbiter.dry_run": answer.dry_run,
        "arbiter.recorded": answer.recorded,
        "arbiter.degraded": bool(decision.degradations),
    }


def fingerprint(method: str, request: Any) -> bytes:
    """What identifies a request body for idempotency: a digest of its deterministic encoding.

    Stored with the idempotency record (the store treats it as opaque). The
    request id is part of the body, equal by construction on a reuse, so it
    changes nothing. Every field counts, ``explain`` included: a reuse of
    an id must be the same request, as payment APIs require of an
    idempotency key."""
    digest = hashlib.blake2b(method.encode(), digest_size=16)
    digest.update(request.SerializeToString(deterministic=True))
    return digest.digest()


def _same_request(stored: StoredDecision, expected: bytes) -> None:
    """Refuse a stored answer to another body (``ValidationError`` on ``request_id``).

    Records written before fingerprints were stored have none: they replay."""
    if stored.fingerprint and stored.fingerprint != expected:
        raise ValidationError(
            "request_id",
            "already used for a different request (an id may only be reused to retry the "
            "same request); use a new request_id",
        )


def _clock(loaded: Loaded, own_ms: int) -> tuple[int, float]:
    """The decision's time (the store's shared clock if it has one) and the local instant it was read."""
    return (own_ms if loaded.now_ms is None else loaded.now_ms), time.monotonic()


def _traced(request: DomainRequest) -> DomainRequest:
    """The request as the engine evaluates it: always with the trace (the metrics count every
    candidate's reason and the decision log records it); the client gets the trace only when
    it asked for ``explain`` (:func:`_shown`)."""
    return request if request.explain else msgspec.structs.replace(request, explain=True)


def _shown(decision: Decision, explain: bool) -> Decision:
    """What the client gets (and an idempotent replay returns): the trace only on ``explain``."""
    if explain or not decision.candidates:
        return decision
    return msgspec.structs.replace(decision, candidates=())


def _stamped(commit: DecisionCommit, loaded: Loaded, read_at: float) -> DecisionCommit:
    """``commit`` at the store's clock now: the read's time plus the monotonic time since."""
    if loaded.now_ms is None:
        return commit
    elapsed_ms = round((time.monotonic() - read_at) * 1000)
    return msgspec.structs.replace(commit, now_ms=loaded.now_ms + elapsed_ms)


class DecisionCore:
    """``arbiter.v1.DecisionService`` on a :class:`PolicyRegistry` and a :class:`Store` (see the module docstring)."""

    def __init__(
        self,
        registry: PolicyRegistry,
        store: Store,
        *,
        idempotency_ttl_s: float = 24 * 3600.0,
        store_timeout_s: float = 0.25,
        now_ms: Callable[[], int] | None = None,
        max_concurrent_calls: int = 16,
    ) -> None:
        self.registry = registry
        self.admission = Admission(max_concurrent_calls)
        self.store = store
        self.idempotency_ttl_s = idempotency_ttl_s
        self.store_timeout_s = store_timeout_s
        self._now_ms = now_ms or (lambda: time.time_ns() // 1_000_000)
        # Set by the server when the decision log is on (``--decision-log``).
        self.decision_log: DecisionLog | None = None
        # Set by the server: counts grants fleet-wide, pauses what a tripped guard names.
        self.volume_guards: VolumeGuards | None = None
        # Set by the server when an OTLP endpoint is configured (``--otlp-endpoint``).
        self.spans: Spans = NO_SPANS
        self._handlers: dict[str, Callable[[Any, CallContext], Awaitable[Any]]] = {
            "Decide": self.decide,
            "Check": self.check,
            "Track": self.track,
            "UpdateProfile": self.update_profile,
        }

    async def invoke(self, method: str, request: Any, call: CallContext) -> Any:
        """Run RPC ``method`` (a key of :data:`METHODS`) once admission control lets it in;
        raises any failure as :class:`CallFailed` carrying its status (never UNKNOWN, never a
        trace). The transports count and time the call (:mod:`arbiter.server.rpc_metrics`)."""
        handler = self._handlers[method]
        entered: float | None = None
        answered = False
        try:
            entered = await self.admission.enter(call.time_remaining())
            response = await handler(request, call)
            answered = True
            return response
        except Exception as exc:
            if isinstance(exc, Overloaded):
                METRICS.shed.labels(method, exc.reason).inc()
            raise CallFailed(status_for(exc, method)) from exc
        finally:
            if entered is not None:
                self.admission.leave(entered, sample=answered)

    # ------------------------------------------------------------------ the RPCs

    async def decide(
        self, request: decision_pb2.DecideRequest, call: CallContext
    ) -> decision_pb2.DecideResponse:
        """Decide: parse, load, decide, commit, settle, respond (raises domain errors)."""
        answer = await self.decide_answer(request, call)
        return render.decide_response(
            answer.decision, replayed=answer.replayed, dry_run=answer.dry_run
        )

    async def decide_answer(self, request: decision_pb2.DecideRequest, call: CallContext) -> Answer:
        """Decide up to the domain answer, before rendering (the scenario runner reads it)."""
        tracing = self.spans
        if not tracing.enabled:  # the default: no span object, four no-op phases
            return await self._decide_answer(request, call, NO_DECIDE)
        with tracing.decide(call) as spans:
            answer = await self._decide_answer(request, call, spans)
            spans.attributes(_span_attributes(answer))
            return answer

    async def _decide_answer(
        self, request: decision_pb2.DecideRequest, call: CallContext, spans: DecideSpans
    ) -> Answer:
        active = self.registry.require()
        with spans.phase("validate"):
            domain = parse.decide_request(request, active.policy)
        request_id = None if domain.dry_run else domain.request_id
        body = fingerprint("Decide", request) if request_id else b""
        for attempt in range(_DECIDE_ATTEMPTS):
            now_ms = self._now_ms()
            with spans.phase("load"):
                loaded, failure = await self._load(
                    active, domain.customer_id, now_ms, request_id, call
                )
            if loaded.replay is not None:
                _same_request(loaded.replay, body)
                return Answer(self._replay("Decide", loaded.replay), replayed=True)
            now_ms, read_at = _clock(loaded, now_ms)
            paused_actions = self._paused_actions(active)
            with spans.phase("decide"):
                decision, commit = decide(
                    active.policy,
                    _traced(domain),
                    loaded.snapshot,
                    now_ms,
                    paused_journeys=active.paused_journeys,
                    paused_actions=paused_actions,
                )
            # Journey changes carry their next wake-up: the store records it with them.
            commit = with_wakeups(active.policy, commit)
            report, winner = StoreReport(read_failure=failure), None
            if not (domain.dry_run or failure):
                shown = _shown(decision, domain.explain)
                with spans.phase("commit"):
                    report, winner = await self._commit(
                        shown,
                        _stamped(commit, loaded, read_at),
                        call,
                        loaded=loaded,
                        fingerprint=body,
                        last=attempt == _DECIDE_ATTEMPTS - 1,
                    )
                if any(report is again for again in _DECIDE_AGAIN):
                    continue  # decide again on a fresh read
            break
        if winner is not None:  # a concurrent duplicate committed first: its answer wins
            _same_request(winner, body)
            return Answer(self._replay("Decide", winner), replayed=True)
        decision = settle(decision, report, commit)
        self._decided(
            active,
            domain,
            snapshot=loaded.snapshot,
            report=report,
            decision=decision,
            commit=commit,
            paused_actions=paused_actions,
        )
        return Answer(
            _shown(decision, domain.explain),
            recorded=report.committed is not None,
            dry_run=domain.dry_run,
        )

    async def check(
        self, request: decision_pb2.CheckRequest, call: CallContext
    ) -> decision_pb2.CheckResponse:
        """Check: parse, (load, check, commit when recording, settle), respond."""
        answer = await self.check_answer(request, call)
        return render.check_response(
            answer.decision, recorded=answer.recorded, replayed=answer.replayed
        )

    async def check_answer(self, request: decision_pb2.CheckRequest, call: CallContext) -> Answer:
        """Check up to the domain answer (a one-action decision), before rendering."""
        active = self.registry.require()
        query = parse.check_query(request, active.policy)
        now_ms = self._now_ms()
        refused = precheck(active.policy, query, now_ms)
        if refused is not None:
            self._checked(active, query, None, StoreReport(), refused)
            return Answer(refused)
        key = query.record_key
        body = fingerprint("Check", request) if key is not None else b""
        for attempt in range(_DECIDE_ATTEMPTS):
            loaded, failure = await self._load(active, query.customer_id, now_ms, key, call)
            if loaded.replay is not None:
                _same_request(loaded.replay, body)
                return Answer(self._replay("Check", loaded.replay), recorded=True, replayed=True)
            at_ms, read_at = _clock(loaded, now_ms)
            paused_actions = self._paused_actions(active)
            answer, commit = check(
                active.policy,
                query,
                loaded.snapshot,
                at_ms,
                paused_journeys=active.paused_journeys,
                paused_actions=paused_actions,
            )
            commit = with_wakeups(active.policy, commit)
            report, winner = StoreReport(read_failure=failure), None
            if key is not None and not failure:
                report, winner = await self._commit(
                    answer,
                    _stamped(commit, loaded, read_at),
                    call,
                    loaded=loaded,
                    fingerprint=body,
                    last=attempt == _DECIDE_ATTEMPTS - 1,
                )
                if any(report is again for again in _DECIDE_AGAIN):
                    now_ms = self._now_ms()
                    continue
            break
        if winner is not None:
            _same_request(winner, body)
            return Answer(self._replay("Check", winner), recorded=True, replayed=True)
        answer = settle(answer, report, commit)
        self._checked(active, query, loaded.snapshot, report, answer, paused_actions=paused_actions)
        return Answer(answer, recorded=report.committed is not None)

    async def track(
        self, request: decision_pb2.TrackRequest, call: CallContext
    ) -> decision_pb2.TrackResponse:
        """Track: the batch parsed (a malformed one fails whole); each event applied on its own."""
        return render.track_response(await self.track_results(request, call))

    async def track_results(
        self, request: decision_pb2.TrackRequest, call: CallContext
    ) -> list[tuple[str, str, str, str]]:
        """Track up to the results: (event id, ``applied`` / ``duplicate`` / ``rejected``,
        field, detail) per event, before rendering."""
        active = self.registry.require()
        now_ms = self._now_ms()
        results = []
        for parsed in parse.track_events(request, active.policy, now_ms):
            if parsed.event is None:
                known = parsed.type in active.policy.events
                METRICS.schema_rejections.labels(parsed.type if known else "<unknown>").inc()
                METRICS.events.labels("rejected").inc()
                results.append((parsed.event_id, "rejected", parsed.field, parsed.detail))
                continue
            outcome = await self._apply_event(
                active, parsed.customer_id, parsed.event, now_ms, call
            )
            METRICS.events.labels(outcome).inc()
            results.append((parsed.event_id, outcome, "", ""))
        return results

    async def update_profile(
        self, request: decision_pb2.UpdateProfileRequest, call: CallContext
    ) -> decision_pb2.UpdateProfileResponse:
        """UpdateProfile: parse, write (per field: newer source timestamp wins), respond."""
        active = self.registry.require()
        update = parse.profile_update(request, active.policy, self._now_ms())
        results = await self.store.update_profile(
            update,
            do_not_contact_attribute=active.policy.consent.do_not_contact,
            timeout_s=self._timeout(call),
        )
        return render.field_results(results)

    # ------------------------------------------------------------------ shared steps

    def _remaining(self, call: CallContext) -> float:
        """Seconds left for store calls: the call's remaining deadline minus a reserve, or the default."""
        remaining = call.time_remaining()
        if remaining is None:
            return self.store_timeout_s
        return min(float(remaining) - _RESERVE_S, 3600.0)

    def _timeout(self, call: CallContext) -> float:
        """A store call's timeout (never below the minimum: it fails on its own when late)."""
        return max(self._remaining(call), _MIN_STORE_S)

    async def _load(
        self,
        active: Active,
        customer_id: str,
        now_ms: int,
        request_id: str | None,
        call: CallContext,
    ) -> tuple[Loaded, str]:
        """Load for a decision; on a store failure an all-unavailable snapshot and why.

        The read gets half of what is left of the deadline (the commit needs the rest)."""
        remaining = call.time_remaining()
        budget = (
            self.store_timeout_s
            if remaining is None
            else min(float(remaining) - _RESERVE_S, 3600.0) / 2
        )
        if budget < _MIN_STORE_S:
            if self.admission.overloaded:  # the time went in the queue: refuse, don't degrade
                raise Overloaded("deadline", "server overloaded: no time left to read state")
            why = "no time left in the deadline to read customer state"
        else:
            try:
                loaded = await self.store.load(
                    customer_id,
                    active.policy.needs,
                    now_ms,
                    request_id=request_id,
                    timeout_s=budget,
                )
                return loaded, ""
            except (StoreUnavailable, TimeoutError) as exc:
                _degraded.warning(
                    "load:" + type(exc).__name__, "customer state unavailable: %s", exc
                )
                why = "customer state could not be read in time"
        snapshot = CustomerSnapshot(customer_id=customer_id, unavailable=frozenset(PARTS))
        return Loaded(snapshot=snapshot), why

    async def _commit(
        self,
        decision: Decision,
        commit: DecisionCommit,
        call: CallContext,
        *,
        loaded: Loaded,
        fingerprint: bytes,
        last: bool = True,
    ) -> tuple[StoreReport, StoredDecision | None]:
        """Commit in one atomic step (never retried blindly): what the store did, and the
        stored decision when a duplicate of the request committed first.

        The commit carries the consent version the decision was made on: when a consent
        changed since the read, the store applies and stores nothing, and this returns
        :data:`_CONSENT_CHANGED` (the caller decides again on a fresh read) or, on the
        ``last`` attempt, a commit failure (nothing gated or capped is granted). Before the
        last attempt a grant the store's re-check rejects (a concurrent decision used the
        cap's last slot) aborts the commit too (:data:`_RACE_LOST`): deciding again on the
        fresh state gives the next best action instead of an empty answer. The last attempt
        commits what the re-check allows, as before."""
        budget = self._remaining(call)
        try:
            if budget < _MIN_STORE_S:
                raise StoreUnavailable("commit_decision", "no time left in the deadline")
            outcome = await self.store.commit_decision(
                commit,
                encode_decision(decision),
                ttl_s=self.idempotency_ttl_s,
                timeout_s=budget,
                consent_version=loaded.consent_version,
                fingerprint=fingerprint,
                abort_on_rejection=not last,
            )
        except (StoreUnavailable, TimeoutError) as exc:
            _degraded.warning("commit:" + type(exc).__name__, "decision commit failed: %s", exc)
            return StoreReport(commit_failure=str(exc)), None
        if outcome.consent_changed:
            if not last:
                return _CONSENT_CHANGED, None
            return StoreReport(commit_failure="consent changed while deciding, twice"), None
        if outcome.aborted:  # only when not last: the last attempt commits what it can
            return _RACE_LOST, None
        return StoreReport(committed=outcome.result), outcome.stored if outcome.replayed else None

    @staticmethod
    def _replay(method: str, stored: StoredDecision) -> Decision:
        """The answer a stored decision stands for (the same on the first call and every replay)."""
        METRICS.replays.labels(method).inc()
        return settle(decode_decision(stored.record), StoreReport(committed=stored.result))

    def _paused_actions(self, active: Active) -> frozenset[str]:
        """Actions paused now (read once per call): by a tripped volume guard, and by an
        operator's kill switch on the action or its channel (``active.paused_actions``)."""
        guards = self.volume_guards
        tripped = guards.paused if guards is not None else frozenset()
        if not active.paused_actions:
            return tripped
        return active.paused_actions | tripped if tripped else active.paused_actions

    def _decided(
        self,
        active: Active,
        request: DomainRequest,
        *,
        snapshot: CustomerSnapshot,
        report: StoreReport,
        decision: Decision,
        commit: DecisionCommit,
        paused_actions: frozenset[str] = frozenset(),
    ) -> None:
        """A Decide was answered (not replayed): count it (volume guards included), hand it
        to the decision log."""
        count_answer("Decide", decision, dry_run=request.dry_run)
        if report.committed is not None:
            if commit.journeys:  # timers that fired
                skipped = report.committed.skipped_journeys
                count_journeys(c for c in commit.journeys if c.journey not in skipped)
            if self.volume_guards is not None and decision.actions:
                self.volume_guards.granted(active.policy, (a.action for a in decision.actions))
        if self.decision_log is not None:
            self.decision_log.observe_decide(
                active, request, snapshot, report, decision, paused_actions=paused_actions
            )

    def _checked(
        self,
        active: Active,
        query: CheckQuery,
        snapshot: CustomerSnapshot | None,
        report: StoreReport,
        answer: Decision,
        *,
        paused_actions: frozenset[str] = frozenset(),
    ) -> None:
        """A Check was answered (not replayed): count it (a recorded grant toward the volume
        guards), hand it to the decision log."""
        count_answer("Check", answer, dry_run=not query.record)
        if report.committed is not None and self.volume_guards is not None and answer.actions:
            self.volume_guards.granted(active.policy, (a.action for a in answer.actions))
        if self.decision_log is not None:
            self.decision_log.observe_check(
                active, query, snapshot, report, answer, paused_actions=paused_actions
            )

    async def _apply_event(
        self, active: Active, customer_id: str, event: Event, now_ms: int, call: CallContext
    ) -> str:
        """Load, compute the event's effects, apply them; re-read and re-apply on a journey conflict."""
        needs = active.track_needs
        if needs.event_types is not None and event.type not in needs.event_types:
            needs = msgspec.structs.replace(needs, event_types=needs.event_types | {event.type})
        for attempt in range(MAX_CONFLICT_RETRIES + 1):
            loaded = await self.store.load(
                customer_id, needs, now_ms, timeout_s=self._timeout(call)
            )
            effects = apply_event(
                active.policy,
                loaded.snapshot,
                event,
                now_ms if loaded.now_ms is None else loaded.now_ms,
                paused_journeys=active.paused_journeys,
            )
            effects = with_wakeups(active.policy, effects)
            try:
                outcome = await self.store.apply_event(effects, timeout_s=self._timeout(call))
            except StateConflict:
                if attempt == MAX_CONFLICT_RETRIES:
                    raise
                _log.debug("event %s: journey state conflict, re-applying", event.event_id)
                continue
            if outcome == "applied":
                count_journeys(effects.journeys)
            return outcome
        raise AssertionError("unreachable")
