"""Run one scenario through the service core, exactly as production answers: the ``DecisionCore`` on a ``MemoryStore``, on the scenario's clock.

Every step is the protobuf request a client would send, handled by
:class:`~arbiter.server.service.DecisionCore` -- the one-pass parse, the
store read with its idempotency lookup, the engine, the atomic commit,
``settle`` -- on a :class:`~arbiter.state.MemoryStore`. So the runner cannot
drift from the server: a repeated ``request_id`` replays the stored
decision, an event stamped ahead of the clock is clamped to it (and one
more than an hour ahead is refused), an event that cannot be applied fails
that step with the status a client would get, a context typo is
``INVALID_ARGUMENT``. The store and the core read one clock, the
scenario's (``at:`` / ``advance:`` move it), so idempotency records and
dedup markers expire on scenario time.

What only a test can do goes around the service, never instead of it:
journey states and cap grants are seeded into the store (no RPC writes
them), ``given.unavailable`` marks parts of every loaded snapshot
unreadable (:class:`.store.ScenarioStore`), ``given.paused`` sets the
operators' kill switch on the registry.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, TypeVar

import msgspec

from arbiter.policies import (
    CompiledPolicy,
    CustomerSnapshot,
    Decision,
    JourneyState,
    decide,
    parse_duration_ms,
    scenarios,
)
from arbiter.server import parse
from arbiter.server.errors import Status, status_for
from arbiter.server.registry import PolicyRegistry
from arbiter.server.scenarios import requests
from arbiter.server.scenarios.expect import Checks, Outcome
from arbiter.server.scenarios.store import ScenarioStore
from arbiter.server.scenarios.trace import describe_check, describe_decision, describe_track
from arbiter.server.service import Call, DecisionCore
from arbiter.v1 import decision_pb2

__all__ = ["ScenarioRun"]

_T = TypeVar("_T")
_GIVEN_SOURCE = "given"


class StepFailed(Exception):
    """A problem of the scenario itself at run time (the step fails, the scenario stops)."""


class ScenarioRun:
    """The world of one scenario: the core, its store, the clock, the last decision."""

    def __init__(self, policy: CompiledPolicy, scenario: scenarios.Scenario) -> None:
        self.policy = policy
        self.scenario = scenario
        self.origin = scenarios.parse_scenario_time(scenario.given.now, 0)
        self.now = self.origin
        self.customer = scenario.given.customer_id
        self.store = ScenarioStore(clock=lambda: self.now / 1000)
        self.registry = PolicyRegistry()
        self.registry.activate(policy, "scenario")
        self.core = DecisionCore(self.registry, self.store, now_ms=lambda: self.now)
        self.decides = 0
        self.last: Decision | None = None
        self.checks = Checks()
        self.log: list[str] = []

    @property
    def failures(self) -> list[str]:
        return self.checks.failures

    def time(self, value: scenarios.TimeText | None, default: int) -> int:
        return default if value is None else scenarios.parse_scenario_time(value, self.origin)

    async def _call(self, method: str, pending: Any) -> tuple[Any, Status | None]:
        """Await a core call; a failure becomes the status a client would get."""
        try:
            return await pending, None
        except Exception as exc:
            status = status_for(exc, method)
            if status.code.name == "INTERNAL":
                status = Status(status.code, f"{status.message}: {type(exc).__name__}: {exc}")
            return None, status

    # -- running ----------------------------------------------------------------------------------
    async def run(self) -> None:
        """Set up ``given``, then run the steps; the first step that cannot run stops the scenario."""
        try:
            await self.setup()
        except (StepFailed, ValueError) as exc:
            self.checks.fail("given", str(exc))
            return
        for index, step in enumerate(self.scenario.steps, 1):
            where = f"step {index}"
            try:
                await self.step(where, step)
            except (StepFailed, ValueError) as exc:
                self.checks.fail(where, str(exc))
                return

    async def setup(self) -> None:
        given = self.scenario.given
        if given.journeys or given.caps:
            self.store.seed(
                CustomerSnapshot(
                    customer_id=self.customer,
                    journeys={jid: self.journey(j) for jid, j in given.journeys.items()},
                    caps={
                        key: sorted(self.time(t, self.origin) for t in times)
                        for key, times in given.caps.items()
                    },
                )
            )
        await self.given_profile(given)
        for index, spec in enumerate(given.events):
            result, status = await self.track(spec, default_id=f"given-{index}")
            if status is not None:
                raise StepFailed(f"events[{index}]: Track failed: {_status(status)}")
            self.log += describe_track(result, self.store.last_effects)
            if result[1] == "rejected":
                raise StepFailed(
                    f"events[{index}]: Track rejected the event: {result[2]}: {result[3]}"
                )
        # The history happened before the store failure / the kill switch under test.
        self.store.unavailable_parts = frozenset(given.unavailable)
        if given.paused:
            self.registry.set_paused(frozenset(given.paused))

    def journey(self, j: scenarios.JourneyGiven) -> JourneyState:
        entered = self.time(j.entered, self.origin)
        return JourneyState(
            status=j.status,
            stage=j.stage,
            entered_ms=entered,
            stage_entered_ms=self.time(j.stage_entered, entered),
            entry_event_id=j.entry_event_id,
            last_event_id=j.entry_event_id,
            entries=j.entries,
        )

    async def given_profile(self, given: scenarios.Given) -> None:
        """Profile, consent and segments, written with UpdateProfile one millisecond before
        ``given.now`` (so any later write wins); consents with their own ``at`` / ``source``
        in writes of their own."""
        at0 = self.origin - 1
        groups: dict[tuple[str, int], dict[str, tuple[str, int | None]]] = defaultdict(dict)
        for purpose, spec in given.consent.items():
            record = spec if not isinstance(spec, str) else scenarios.ConsentGiven(state=spec)
            source = _GIVEN_SOURCE if record.source == "scenario" else record.source
            expires = None if record.expires is None else self.time(record.expires, at0)
            groups[source, self.time(record.at, at0)][purpose] = (record.state, expires)
        first = groups.pop((_GIVEN_SOURCE, at0), {})
        writes: list[tuple[tuple[str, int], Any, Any, tuple[str, ...] | None]] = []
        if given.profile or given.segments or first:
            segments = tuple(given.segments) if given.segments else None
            writes.append(((_GIVEN_SOURCE, at0), first, given.profile, segments))
        writes += [(key, consents, {}, None) for key, consents in groups.items()]
        updates = [
            requests.profile_request(
                self.policy,
                customer_id=self.customer,
                source=source,
                at_ms=at,
                origin_ms=self.origin,
                traits=traits,
                consents=consents,
                segments=segments,
            )
            for (source, at), consents, traits, segments in writes
        ]
        for write in updates:
            _, status = await self._call("UpdateProfile", self.core.update_profile(write, Call()))
            if status is not None:
                raise StepFailed(f"UpdateProfile failed: {_status(status)}")

    async def step(self, where: str, step: scenarios.Step) -> None:
        if step.at is not None:
            self.now = self.time(step.at, self.now)
        elif step.advance is not None:
            self.now += parse_duration_ms(step.advance)
        e = step.expect or scenarios.Expect()
        status: Status | None = None
        outcome = Outcome()
        if step.track is not None:
            result, status = await self.track(
                step.track, default_id=f"{where.replace(' ', '-')}-event"
            )
            if status is None:
                outcome = Outcome(track=result, effects=self.store.last_effects)
                self.log += describe_track(result, self.store.last_effects)
        elif step.update_profile is not None:
            applied, status = await self.update_profile(step.update_profile)
            outcome = Outcome(applied=applied)
        elif step.decide is not None:
            outcome, status = await self.decide(where, step.decide)
        elif step.check is not None:
            outcome, status = await self.check(step.check)
        if self.checks.call_status(where, status, e.error) and status is None:
            self.checks.outcome(where, outcome, e, self.origin)
        self.checks.state(where, self.store.stored(self.customer), e)

    async def track(
        self, spec: scenarios.EventSpec, *, default_id: str
    ) -> tuple[tuple[str, str, str, str], Status | None]:
        decision_id, tracking_id = spec.decision_id, spec.tracking_id
        if spec.on_action is not None:
            if self.last is None:
                raise StepFailed("`on_action` needs an earlier decide step")
            decision_id = self.last.decision_id
            tracking_id = f"{decision_id}.{spec.on_action}"
        message = requests.event_message(
            spec,
            self.policy,
            customer_id=self.customer,
            event_id=spec.id or default_id,
            at_ms=self.time(spec.at, self.now),
            decision_id=decision_id,
            tracking_id=tracking_id,
            origin_ms=self.origin,
        )
        self.store.last_effects = None
        request = decision_pb2.TrackRequest(events=[message])
        results, status = await self._call("Track", self.core.track_results(request, Call()))
        return (results[0] if results else ("", "", "", "")), status

    async def update_profile(
        self, spec: scenarios.ProfileSpec
    ) -> tuple[dict[str, bool], Status | None]:
        at = self.time(spec.at, self.now)
        consents = {}
        for purpose, c in spec.consent.items():
            record = c if not isinstance(c, str) else scenarios.ConsentGiven(state=c)
            expires = None if record.expires is None else self.time(record.expires, at)
            consents[purpose] = (record.state, expires)
        request = requests.profile_request(
            self.policy,
            customer_id=self.customer,
            source=spec.source,
            at_ms=at,
            origin_ms=self.origin,
            traits=spec.traits,
            consents=consents,
            do_not_contact=spec.do_not_contact,
            segments=spec.segments,
        )
        response, status = await self._call(
            "UpdateProfile", self.core.update_profile(request, Call())
        )
        if response is None:
            return {}, status
        return {
            r.name: r.outcome == decision_pb2.PROFILE_WRITE_OUTCOME_APPLIED
            for r in response.results
        }, None

    async def decide(self, where: str, spec: scenarios.DecideSpec) -> tuple[Outcome, Status | None]:
        self.decides += 1
        request = requests.decide_request(
            spec,
            self.policy,
            customer_id=self.customer,
            request_id=spec.request_id or f"scenario-{self.decides}",
            origin_ms=self.origin,
        )
        self.store.last_loaded = self.store.last_commit = None
        answer, status = await self._call("Decide", self.core.decide_answer(request, Call()))
        if answer is None:
            return Outcome(), status
        decision: Decision = answer.decision
        self.last = decision
        if not answer.replayed:
            self.explain_parity(where, request)
        changes = self.store.last_commit.journeys if self.store.last_commit else ()
        self.log += describe_decision(decision, replayed=answer.replayed)
        return Outcome(decision=decision, replayed=answer.replayed, changes=changes), None

    def explain_parity(self, where: str, request: decision_pb2.DecideRequest) -> None:
        """The explain trace must never change the answer: the engine on the snapshot the core
        read, with the trace on and off, chooses the same actions."""
        snapshot = self.store.last_loaded
        active = self.registry.current
        if snapshot is None or active is None:
            return
        domain = parse.decide_request(request, self.policy)
        chosen = []
        for explain in (True, False):
            decision, _ = decide(
                self.policy,
                msgspec.structs.replace(domain, explain=explain),
                snapshot,
                self.now,
                paused_journeys=active.paused_journeys,
            )
            chosen.append([a.action for a in decision.actions])
        if chosen[0] != chosen[1]:
            self.checks.fail(
                where, f"the explain trace changed the chosen actions: {chosen[0]} vs {chosen[1]}"
            )

    async def check(self, spec: scenarios.CheckSpec) -> tuple[Outcome, Status | None]:
        decision_id = spec.decision_id
        if spec.on_last_decision:
            if self.last is None:
                raise StepFailed("`on_last_decision` needs an earlier decide step")
            decision_id = self.last.decision_id
        self.decides += 1
        request = requests.check_request(
            spec,
            self.policy,
            customer_id=self.customer,
            request_id=spec.request_id or f"scenario-check-{self.decides}",
            decision_id=decision_id,
            origin_ms=self.origin,
        )
        answer, status = await self._call("Check", self.core.check_answer(request, Call()))
        if answer is None:
            return Outcome(), status
        self.log += describe_check(answer.decision, recorded=answer.recorded)
        return Outcome(
            check=answer.decision, recorded=answer.recorded, replayed=answer.replayed
        ), None


def _status(status: Status) -> str:
    return f"{status.code.name}: {status.message}"
