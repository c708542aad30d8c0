"""The ``arbiter.v1.DecisionService`` servicer: validate, convert, call the engine and the store, convert back.

Every RPC reads ``registry.current`` once and uses that policy to the end.
Store calls get a timeout derived from the call's remaining deadline
(``context.time_remaining()``), or ``store_timeout_s`` when the caller set
none. Errors go through the one table in :mod:`server.errors`.

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

import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Final, TypeVar

import grpc
import msgspec
from prometheus_client import Counter, Histogram

from arbiter.policies import journeys
from arbiter.policies.decision import (
    CandidateTrace,
    ChosenAction,
    Decision,
    Degradation,
    Outcome,
    ReasonCode,
    Request,
)
from arbiter.policies.effects import CapIncrement, DecisionCommit, Grant, StateConflict
from arbiter.policies.engine import decide, reconcile
from arbiter.policies.snapshot import PARTS, CustomerSnapshot
from arbiter.server import convert
from arbiter.server.errors import status_for
from arbiter.server.registry import Active, PolicyRegistry
from arbiter.server.validation import (
    event_contract_violation,
    validate_check,
    validate_decide,
    validate_track,
    validate_update_profile,
)
from arbiter.state.store import Loaded, Store, StoredDecision, StoreUnavailable
from arbiter.v1 import decision_pb2, decision_pb2_grpc

__all__ = ["METRICS", "DecisionService"]

_log = logging.getLogger("arbiter.server")

Req = TypeVar("Req")
Resp = TypeVar("Resp")

# Store calls never get less than this; below it the call is answered fail-safe.
_MIN_STORE_S: Final = 0.001
# Reserved out of the deadline for the engine and the response.
_RESERVE_S: Final = 0.002
# Track: how often an event is re-applied after a journey state conflict.
MAX_CONFLICT_RETRIES: Final = 3

_DECISION: Final = msgspec.json.Decoder(Decision)
_ENCODE: Final = msgspec.json.Encoder().encode
_R = ReasonCode
_NOT_IN_STAGE: Final = ReasonCode.NOT_IN_STAGE
_CHANNEL_NOT_ALLOWED: Final = ReasonCode.CHANNEL_NOT_ALLOWED


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


def _check_key(request_id: str) -> str:
    """The idempotency key of a Check (a valid store id, disjoint from Decide's request ids)."""
    return "check:" + hashlib.sha256(request_id.encode()).hexdigest()[:40]


def _decode(stored: StoredDecision) -> Decision:
    """The answer a stored decision stands for: its record minus the grants the store refused."""
    decision = _DECISION.decode(stored.record)
    return reconcile(decision, [r.action for r in stored.result.rejected])


def _withhold(decision: Decision, actions: Iterable[str], detail: str) -> Decision:
    """``decision`` without ``actions`` (their grants could not be recorded), saying so."""
    gone = set(actions)
    if not gone:
        return decision
    candidates = tuple(
        msgspec.structs.replace(
            c, outcome=Outcome.FILTERED, reason=_R.STATE_UNAVAILABLE, detail=detail
        )
        if c.action in gone
        else c
        for c in decision.candidates
    )
    return msgspec.structs.replace(
        decision,
        actions=tuple(a for a in decision.actions if a.action not in gone),
        candidates=candidates,
        degradations=(
            *decision.degradations,
            Degradation(reason=_R.STATE_UNAVAILABLE, detail=detail),
        ),
    )


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

    # ------------------------------------------------------------------ the guard

    async def _run(
        self,
        method: str,
        handler: Callable[[Req, Any], Awaitable[Resp]],
        request: Req,
        context: Any,
    ) -> Resp:
        """Run a handler; map any exception through the error table (never UNKNOWN, never a trace)."""
        started = time.perf_counter()
        code = "CANCELLED"  # unless set below: the call was cancelled (client gone, deadline)
        try:
            response = await handler(request, context)
            code = "OK"
            return response
        except grpc.aio.AbortError:
            code = "ABORTED_BY_HANDLER"
            raise
        except Exception as exc:
            status = status_for(exc, method)
            code = status.code.name
            await context.abort(status.code, status.message)
            raise AssertionError("unreachable: abort raises") from exc
        finally:
            METRICS.requests.labels(method, code).inc()
            METRICS.latency.labels(method).observe(time.perf_counter() - started)

    async def Decide(
        self, request: decision_pb2.DecideRequest, context: Any
    ) -> decision_pb2.DecideResponse:
        return await self._run("Decide", self._decide, request, context)

    async def Check(
        self, request: decision_pb2.CheckRequest, context: Any
    ) -> decision_pb2.CheckResponse:
        return await self._run("Check", self._check, request, context)

    async def Track(
        self, request: decision_pb2.TrackRequest, context: Any
    ) -> decision_pb2.TrackResponse:
        return await self._run("Track", self._track, request, context)

    async def UpdateProfile(
        self, request: decision_pb2.UpdateProfileRequest, context: Any
    ) -> decision_pb2.UpdateProfileResponse:
        return await self._run("UpdateProfile", self._update_profile, request, context)

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
        if loaded.replay is not None:
            METRICS.replays.labels("Decide").inc()
            return convert.decide_response(_decode(loaded.replay), replayed=True)

        decision, commit = decide(
            policy, domain, loaded.snapshot, now_ms, paused_journeys=active.paused_journeys
        )
        if unavailable:
            decision = msgspec.structs.replace(
                decision,
                degradations=(
                    Degradation(
                        reason=_R.STATE_UNAVAILABLE,
                        detail=f"{unavailable}: nothing consent-gated or capped was granted",
                    ),
                    *decision.degradations,
                ),
            )
        if dry_run or unavailable:
            if decision.degradations:
                METRICS.degraded.inc()
            return convert.decide_response(decision, dry_run=dry_run)

        budget = _remaining(context, self.store_timeout_s)
        try:
            if budget < _MIN_STORE_S:
                raise StoreUnavailable("commit_decision", "no time left in the deadline")
            outcome = await self.store.commit_decision(
                commit, _ENCODE(decision), ttl_s=self.idempotency_ttl_s, timeout_s=budget
            )
        except (StoreUnavailable, TimeoutError) as exc:
            # The outcome is unknown: withhold every grant that counts against a cap.
            _log.warning("decision commit failed: %s", exc)
            METRICS.degraded.inc()
            counted = [g.action for g in commit.grants if g.caps]
            decision = _withhold(
                decision, counted, "the grant could not be recorded against its caps"
            )
            if not counted:
                decision = msgspec.structs.replace(
                    decision,
                    degradations=(
                        *decision.degradations,
                        Degradation(
                            reason=_R.STATE_UNAVAILABLE, detail="the decision could not be stored"
                        ),
                    ),
                )
            return convert.decide_response(decision)
        if outcome.replayed:  # a concurrent duplicate committed first: its answer wins
            METRICS.replays.labels("Decide").inc()
            return convert.decide_response(_decode(outcome.stored), replayed=True)
        rejected = outcome.result.rejected
        if rejected:
            decision = reconcile(decision, [r.action for r in rejected])
        if decision.degradations:
            METRICS.degraded.inc()
        return convert.decide_response(decision)

    # ------------------------------------------------------------------ Check

    async def _check(
        self, request: decision_pb2.CheckRequest, context: Any
    ) -> decision_pb2.CheckResponse:
        active = self.registry.require()
        policy = active.policy
        validate_check(request, policy)
        version = active.version
        action = policy.actions[request.action_id]
        if action.channel.id != request.channel:
            return convert.check_response(
                allowed=False,
                reason=_CHANNEL_NOT_ALLOWED,
                detail=f"action `{action.id}` is offered on `{action.channel.id}`",
                recorded=False,
                policy_version=version,
            )
        now_ms = self._now_ms()
        key = _check_key(request.request_id) if request.record else None
        loaded, unavailable = await self._load(active, request.customer_id, now_ms, key, context)
        if loaded.replay is not None:
            METRICS.replays.labels("Check").inc()
            return self._check_answer(_decode(loaded.replay), version, recorded=True, replayed=True)

        placement = min(action.placements) if action.placements else ""
        domain = Request(
            customer_id=request.customer_id,
            placement=placement,
            channels=(action.channel.id,),
            context=convert.value_map_from_proto(request.context, policy.context),
            limit=1,
            explain=True,
            request_id=key or request.request_id,
        )
        evaluated, _ = decide(
            policy, domain, loaded.snapshot, now_ms, paused_journeys=active.paused_journeys
        )
        trace = evaluated.candidate(action.id)
        if trace is None:
            trace = CandidateTrace(
                action=action.id,
                journey=action.journey or "",
                channel=action.channel.id,
                outcome=Outcome.FILTERED,
                reason=_R.STATE_UNAVAILABLE if unavailable else _NOT_IN_STAGE,
                detail=(
                    unavailable
                    if unavailable
                    else f"the customer is not in a stage of journey `{action.journey}` offering it"
                ),
            )
        allowed = trace.outcome is not Outcome.FILTERED
        degradations = evaluated.degradations
        if unavailable:
            degradations = (
                Degradation(reason=_R.STATE_UNAVAILABLE, detail=unavailable),
                *degradations,
            )
        decision_id = request.decision_id or evaluated.decision_id
        chosen: tuple[ChosenAction, ...] = ()
        if allowed:
            chosen = (
                ChosenAction(
                    action=action.id,
                    journey=trace.journey,
                    stage=trace.stage,
                    channel=action.channel.id,
                    variant=trace.variant,
                    tracking_id=f"{decision_id}.{action.id}",
                    score=trace.score or 0.0,
                    tags=tuple(sorted(action.tags)),
                ),
            )
        answer = Decision(
            decision_id=decision_id,
            request_id=request.request_id,
            customer_id=request.customer_id,
            policy_version=version,
            decided_ms=now_ms,
            actions=chosen,
            degradations=degradations,
            candidates=(trace,),
        )
        if key is None or unavailable:
            if degradations:
                METRICS.degraded.inc()
            return self._check_answer(answer, version)

        grants: tuple[Grant, ...] = ()
        if allowed:
            grants = (
                Grant(
                    tracking_id=chosen[0].tracking_id,
                    action=action.id,
                    channel=action.channel.id,
                    journey=trace.journey,
                    stage=trace.stage,
                    caps=tuple(
                        CapIncrement(
                            cap_id=b.cap_id, key=b.key, window_ms=b.window_ms, limit=b.limit
                        )
                        for b in action.caps
                    ),
                ),
            )
        commit = DecisionCommit(
            customer_id=request.customer_id,
            request_id=key,
            decision_id=decision_id,
            now_ms=now_ms,
            policy_version=version,
            grants=grants,
        )
        budget = _remaining(context, self.store_timeout_s)
        try:
            if budget < _MIN_STORE_S:
                raise StoreUnavailable("commit_decision", "no time left in the deadline")
            outcome = await self.store.commit_decision(
                commit, _ENCODE(answer), ttl_s=self.idempotency_ttl_s, timeout_s=budget
            )
        except (StoreUnavailable, TimeoutError) as exc:
            _log.warning("check commit failed: %s", exc)
            METRICS.degraded.inc()
            if allowed and action.caps:
                answer = _withhold(
                    answer, [action.id], "the send could not be recorded against its caps"
                )
            return self._check_answer(answer, version)
        if outcome.replayed:
            METRICS.replays.labels("Check").inc()
        return self._check_answer(
            _decode(outcome.stored), version, recorded=True, replayed=outcome.replayed
        )

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
        self, active: Active, customer_id: str, event: journeys.Event, now_ms: int, context: Any
    ) -> str:
        """Load, compute the event's effects, apply them; re-read and re-apply on a journey conflict."""
        needs = active.track_needs
        if needs.event_types is not None and event.type not in needs.event_types:
            needs = msgspec.structs.replace(needs, event_types=needs.event_types | {event.type})
        for attempt in range(MAX_CONFLICT_RETRIES + 1):
            timeout = max(_remaining(context, self.store_timeout_s), _MIN_STORE_S)
            loaded = await self.store.load(customer_id, needs, now_ms, timeout_s=timeout)
            effects = journeys.apply_event(
                active.policy,
                loaded.snapshot,
                event,
                now_ms,
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
