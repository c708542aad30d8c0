"""The ``arbiter.v1.DecisionService`` servicer: validate, convert, call the engine and the store, convert back.

Every RPC reads ``registry.current`` once and uses that policy to the end.
Store calls get a timeout derived from the call's remaining deadline
(``context.time_remaining()``), or ``store_timeout_s`` when the caller set
none. Errors go through the one table in :mod:`server.errors`.
:meth:`DecisionService.invoke` is the transport-neutral entry: gRPC
(this servicer) and Connect / gRPC-Web (:mod:`server.connect_service`)
both call it with a :class:`~server.errors.CallContext`.

One clock: when the store has a clock shared by every server (Redis
``TIME``, returned by the read as ``Loaded.now_ms``), a decision is made at
that time and committed at it plus the server's monotonic time since the
read, so rolling windows are judged by one clock whatever each server's own
clock says; an in-process store shares the server's clock.

Decide (DESIGN.md §3): validate -> load (one round trip, with the
idempotency lookup) -> replay a stored decision as it is, or run the engine
-> commit in one atomic step (unless ``dry_run``) -> drop the grants the
store refused (:func:`policies.engine.reconcile`) -> respond.

Fail safe: when the store cannot be read in time, the engine decides on a
snapshot whose every part is unavailable, so nothing consent-gated, capped
or reading customer state is granted, and the response carries a
degradation; nothing is committed. When the commit's outcome is unknown
(timeout), every grant that would have counted against a cap is withheld.

Check: the engine's filters for one action (a decision restricted to the
action's channel and placement, with the trace on); ``record`` commits one
grant against the action's caps, idempotently per ``request_id`` (the
record is stored under a key derived from the request id, so a Check can
never replay a Decide's answer).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

import grpc
import msgspec
from prometheus_client import Counter, Histogram

from arbiter.policies import (
    PARTS,
    CheckQuery,
    CustomerSnapshot,
    Decision,
    DecisionCommit,
    Event,
    ReasonCode,
    StateConflict,
    StoreReport,
    apply_event,
    check,
    decide,
    decode_decision,
    encode_decision,
    precheck,
    settle,
)
from arbiter.server import convert
from arbiter.server.errors import CallContext, CallFailed, status_for
from arbiter.server.registry import Active, PolicyRegistry
from arbiter.server.validation import (
    event_contract_violation,
    validate_check,
    validate_decide,
    validate_track,
    validate_update_profile,
)
from arbiter.state.store import Loaded, Store, StoreUnavailable
from arbiter.v1 import decision_pb2, decision_pb2_grpc

__all__ = ["METRICS", "DecisionService"]

_log = logging.getLogger("arbiter.server")

# Store calls never get less than this; below it the call is answered fail-safe.
_MIN_STORE_S: Final = 0.001
# Reserved out of the deadline for the engine and the response.
_RESERVE_S: Final = 0.002
# Track: how often an event is re-applied after a journey state conflict.
MAX_CONFLICT_RETRIES: Final = 3

_R = ReasonCode


class _Metrics:
    """Prometheus metrics of the service (default registry; scraped by ``--metrics-port``)."""

    def __init__(self) -> None:
        self.requests = Counter(
            "arbiter_requests",
            "DecisionService calls by method and status code",
            ["method", "code"],
        )
        self.latency = Histogram(
            "arbiter_request_seconds",
            "DecisionService handler latency",
            ["method"],
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
        )
        self.degraded = Counter(
            "arbiter_degraded_responses", "Decide/Check answers that fell back toward not sending"
        )
        self.replays = Counter("arbiter_replays", "Idempotent replays", ["method"])
        self.schema_rejections = Counter(
            "arbiter_schema_rejections", "Events rejected by their type's contract", ["event_type"]
        )
        self.events = Counter("arbiter_events", "Tracked events by status", ["status"])


METRICS: Final = _Metrics()


def _remaining(context: Any, default_s: float) -> float:
    """Seconds left for store calls: the call's remaining deadline minus a reserve, or the default."""
    remaining = context.time_remaining()
    if remaining is None:
        return default_s
    return min(float(remaining) - _RESERVE_S, 3600.0)


def _load_budget(context: Any, default_s: float) -> float:
    """The read's share of the deadline: half of what is left (the commit needs the rest)."""
    remaining = context.time_remaining()
    if remaining is None:
        return default_s
    return min(float(remaining) - _RESERVE_S, 3600.0) / 2


def _clock(loaded: Loaded, own_ms: int) -> tuple[int, float]:
    """The decision's time (the store's shared clock if it has one) and the local instant it was read."""
    return (own_ms if loaded.now_ms is None else loaded.now_ms), time.monotonic()


def _stamped(commit: DecisionCommit, loaded: Loaded, read_at: float) -> DecisionCommit:
    """``commit`` at the store's clock now: the read's time plus the monotonic time since."""
    if loaded.now_ms is None:
        return commit
    elapsed_ms = round((time.monotonic() - read_at) * 1000)
    return msgspec.structs.replace(commit, now_ms=loaded.now_ms + elapsed_ms)


class DecisionService(decision_pb2_grpc.DecisionServiceServicer):  # type: ignore[misc]
    """Implements ``arbiter.v1.DecisionService`` on a :class:`PolicyRegistry` and a :class:`Store`."""

    def __init__(
        self,
        registry: PolicyRegistry,
        store: Store,
        *,
        idempotency_ttl_s: float = 24 * 3600.0,
        store_timeout_s: float = 0.25,
        now_ms: Callable[[], int] | None = None,
    ) -> None:
        self.registry = registry
        self.store = store
        self.idempotency_ttl_s = idempotency_ttl_s
        self.store_timeout_s = store_timeout_s
        self._now_ms = now_ms or (lambda: time.time_ns() // 1_000_000)
        self._handlers: dict[str, Callable[[Any, Any], Awaitable[Any]]] = {
            "Decide": self._decide,
            "Check": self._check,
            "Track": self._track,
            "UpdateProfile": self._update_profile,
        }

    # ------------------------------------------------------------------ the guard

    async def invoke(self, method: str, request: Any, call: CallContext) -> Any:
        """Run RPC ``method`` for any transport: the response, or :class:`CallFailed` with its status.

        The transport-neutral entry point: the gRPC methods below and the
        Connect / gRPC-Web adapter (:mod:`server.connect_service`) both call
        it, so validation, engine, store, metrics and the error table are the
        same on every protocol. Any exception is mapped through
        :func:`server.errors.status_for` (never UNKNOWN, never a trace).
        """
        handler = self._handlers[method]
        started = time.perf_counter()
        code = "CANCELLED"  # unless set below: the call was cancelled (client gone, deadline)
        try:
            response = await handler(request, call)
            code = "OK"
            return response
        except grpc.aio.AbortError:
            code = "ABORTED_BY_HANDLER"
            raise
        except Exception as exc:
            status = status_for(exc, method)
            code = status.code.name
            raise CallFailed(status) from exc
        finally:
            METRICS.requests.labels(method, code).inc()
            METRICS.latency.labels(method).observe(time.perf_counter() - started)

    async def _grpc(self, method: str, request: Any, context: Any) -> Any:
        """The gRPC face of :meth:`invoke`: a failure aborts the call with its status."""
        try:
            return await self.invoke(method, request, context)
        except CallFailed as failed:
            await context.abort(failed.status.code, failed.status.message)
            raise AssertionError("unreachable: abort raises") from failed

    async def Decide(
        self, request: decision_pb2.DecideRequest, context: Any
    ) -> decision_pb2.DecideResponse:
        response: decision_pb2.DecideResponse = await self._grpc("Decide", request, context)
        return response

    async def Check(
        self, request: decision_pb2.CheckRequest, context: Any
    ) -> decision_pb2.CheckResponse:
        response: decision_pb2.CheckResponse = await self._grpc("Check", request, context)
        return response

    async def Track(
        self, request: decision_pb2.TrackRequest, context: Any
    ) -> decision_pb2.TrackResponse:
        response: decision_pb2.TrackResponse = await self._grpc("Track", request, context)
        return response

    async def UpdateProfile(
        self, request: decision_pb2.UpdateProfileRequest, context: Any
    ) -> decision_pb2.UpdateProfileResponse:
        response: decision_pb2.UpdateProfileResponse = await self._grpc(
            "UpdateProfile", request, context
        )
        return response

    # ------------------------------------------------------------------ shared steps

    async def _load(
        self,
        active: Active,
        customer_id: str,
        now_ms: int,
        request_id: str | None,
        context: Any,
    ) -> tuple[Loaded, str]:
        """Load for a decision; on a store failure an all-unavailable snapshot and why."""
        budget = _load_budget(context, self.store_timeout_s)
        if budget < _MIN_STORE_S:
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
                _log.warning("customer state unavailable: %s", exc)
                why = "customer state could not be read in time"
        snapshot = CustomerSnapshot(customer_id=customer_id, unavailable=frozenset(PARTS))
        return Loaded(snapshot=snapshot), why

    # ------------------------------------------------------------------ Decide

    async def _decide(
        self, request: decision_pb2.DecideRequest, context: Any
    ) -> decision_pb2.DecideResponse:
        active = self.registry.require()
        policy = active.policy
        validate_decide(request, policy)
        domain = convert.decide_request(request, policy.context)
        now_ms = self._now_ms()
        dry_run = domain.dry_run
        loaded, unavailable = await self._load(
            active, domain.customer_id, now_ms, None if dry_run else domain.request_id, context
        )
        now_ms, read_at = _clock(loaded, now_ms)
        if loaded.replay is not None:
            METRICS.replays.labels("Decide").inc()
            replay = loaded.replay
            answer = settle(decode_decision(replay.record), StoreReport(committed=replay.result))
            return convert.decide_response(answer, replayed=True)
        decision, commit = decide(
            policy, domain, loaded.snapshot, now_ms, paused_journeys=active.paused_journeys
        )
        if dry_run or unavailable:
            decision = settle(decision, StoreReport(read_failure=unavailable))
            if decision.degradations:
                METRICS.degraded.inc()
            return convert.decide_response(decision, dry_run=dry_run)
        report, winner = await self._commit(decision, _stamped(commit, loaded, read_at), context)
        if winner is not None:  # a concurrent duplicate committed first: its answer wins
            METRICS.replays.labels("Decide").inc()
            return convert.decide_response(settle(winner, report), replayed=True)
        decision = settle(decision, report, commit)
        if decision.degradations:
            METRICS.degraded.inc()
        return convert.decide_response(decision)

    async def _commit(
        self, decision: Decision, commit: DecisionCommit, context: Any
    ) -> tuple[StoreReport, Decision | None]:
        """Commit: what the store did, and the stored decision when a duplicate's record won."""
        budget = _remaining(context, self.store_timeout_s)
        try:
            if budget < _MIN_STORE_S:
                raise StoreUnavailable("commit_decision", "no time left in the deadline")
            outcome = await self.store.commit_decision(
                commit, encode_decision(decision), ttl_s=self.idempotency_ttl_s, timeout_s=budget
            )
        except (StoreUnavailable, TimeoutError) as exc:
            _log.warning("decision commit failed: %s", exc)
            return StoreReport(commit_failure=str(exc)), None
        winner = decode_decision(outcome.record) if outcome.replayed else None
        return StoreReport(committed=outcome.result), winner

    # ------------------------------------------------------------------ Check

    async def _check(
        self, request: decision_pb2.CheckRequest, context: Any
    ) -> decision_pb2.CheckResponse:
        active = self.registry.require()
        policy = active.policy
        validate_check(request, policy)
        version = active.version
        query = CheckQuery(
            customer_id=request.customer_id,
            action=request.action_id,
            channel=request.channel,
            context=convert.value_map_from_proto(request.context, policy.context),
            request_id=request.request_id,
            decision_id=request.decision_id,
            record=request.record,
        )
        now_ms = self._now_ms()
        refused = precheck(policy, query, now_ms)
        if refused is not None:
            return self._check_answer(refused, version)
        key = query.record_key
        loaded, unavailable = await self._load(active, request.customer_id, now_ms, key, context)
        now_ms, read_at = _clock(loaded, now_ms)
        if loaded.replay is not None:
            METRICS.replays.labels("Check").inc()
            replay = loaded.replay
            answer = settle(decode_decision(replay.record), StoreReport(committed=replay.result))
            return self._check_answer(answer, version, recorded=True, replayed=True)
        answer, commit = check(
            policy, query, loaded.snapshot, now_ms, paused_journeys=active.paused_journeys
        )
        if key is None or unavailable:
            answer = settle(answer, StoreReport(read_failure=unavailable))
            if answer.degradations:
                METRICS.degraded.inc()
            return self._check_answer(answer, version)
        report, winner = await self._commit(answer, _stamped(commit, loaded, read_at), context)
        if winner is not None:
            METRICS.replays.labels("Check").inc()
            answer = winner
        recorded = not report.commit_failure
        answer = settle(answer, report, commit)
        if answer.degradations and winner is None:
            METRICS.degraded.inc()
        return self._check_answer(answer, version, recorded=recorded, replayed=winner is not None)

    @staticmethod
    def _check_answer(
        answer: Decision, version: str, *, recorded: bool = False, replayed: bool = False
    ) -> decision_pb2.CheckResponse:
        """A CheckResponse from a (possibly stored) one-action decision: allowed = it has the action."""
        allowed = bool(answer.actions)
        trace = answer.candidates[0] if answer.candidates else None
        if allowed:
            reason, detail = _R.ELIGIBLE, ""
        elif trace is not None:
            reason, detail = trace.reason, trace.detail
        else:
            reason, detail = _R.STATE_UNAVAILABLE, "no answer recorded"
        return convert.check_response(
            allowed=allowed,
            reason=reason,
            detail=detail,
            recorded=allowed and recorded,
            policy_version=answer.policy_version or version,
            degradations=answer.degradations,
            replayed=replayed,
        )

    # ------------------------------------------------------------------ Track

    async def _track(
        self, request: decision_pb2.TrackRequest, context: Any
    ) -> decision_pb2.TrackResponse:
        active = self.registry.require()
        policy = active.policy
        now_ms = self._now_ms()
        validate_track(request, now_ms)
        response = decision_pb2.TrackResponse()
        for message in request.events:
            violation = event_contract_violation(message, policy)
            if violation is not None:
                field, detail = violation
                METRICS.schema_rejections.labels(
                    message.type if message.type in policy.events else "<unknown>"
                ).inc()
                METRICS.events.labels("rejected").inc()
                response.results.add(
                    event_id=message.event_id,
                    status=decision_pb2.EVENT_STATUS_REJECTED,
                    field=field,
                    detail=detail,
                )
                continue
            contract = policy.events[message.type]
            event = convert.event_from_proto(message, contract.properties)
            outcome = await self._apply_event(active, message.customer_id, event, now_ms, context)
            METRICS.events.labels(outcome).inc()
            response.results.add(
                event_id=message.event_id,
                status=(
                    decision_pb2.EVENT_STATUS_APPLIED
                    if outcome == "applied"
                    else decision_pb2.EVENT_STATUS_DUPLICATE
                ),
            )
        return response

    async def _apply_event(
        self, active: Active, customer_id: str, event: Event, now_ms: int, context: Any
    ) -> str:
        """Load, compute the event's effects, apply them; re-read and re-apply on a journey conflict."""
        needs = active.track_needs
        if needs.event_types is not None and event.type not in needs.event_types:
            needs = msgspec.structs.replace(needs, event_types=needs.event_types | {event.type})
        for attempt in range(MAX_CONFLICT_RETRIES + 1):
            timeout = max(_remaining(context, self.store_timeout_s), _MIN_STORE_S)
            loaded = await self.store.load(customer_id, needs, now_ms, timeout_s=timeout)
            effects = apply_event(
                active.policy,
                loaded.snapshot,
                event,
                now_ms if loaded.now_ms is None else loaded.now_ms,
                paused_journeys=active.paused_journeys,
            )
            timeout = max(_remaining(context, self.store_timeout_s), _MIN_STORE_S)
            try:
                return await self.store.apply_event(effects, timeout_s=timeout)
            except StateConflict:
                if attempt == MAX_CONFLICT_RETRIES:
                    raise
                _log.debug("event %s: journey state conflict, re-applying", event.event_id)
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ UpdateProfile

    async def _update_profile(
        self, request: decision_pb2.UpdateProfileRequest, context: Any
    ) -> decision_pb2.UpdateProfileResponse:
        active = self.registry.require()
        policy = active.policy
        validate_update_profile(request, policy, self._now_ms())
        update = convert.profile_update(request, policy.profile)
        timeout = max(_remaining(context, self.store_timeout_s), _MIN_STORE_S)
        results = await self.store.update_profile(
            update,
            do_not_contact_attribute=policy.consent.do_not_contact,
            timeout_s=timeout,
        )
        return convert.field_results(results)
