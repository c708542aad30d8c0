"""The server's volume guards: grants counted per guard window, a trip once per window that
alerts (metric + one log line) or pauses the guard's actions for one window, counts kept
when the shared counter fails."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from arbiter.policies import CompiledPolicy, compile_policy
from arbiter.policies.loader import load_sources
from arbiter.server.governance import Governance, bundle_files
from arbiter.server.registry import PolicyRegistry
from arbiter.server.volume_guard import FleetPause, VolumeGuards
from arbiter.state import (
    MemoryGovernanceStore,
    MemoryVolumeCounter,
    StoreUnavailable,
    VolumeCount,
)

BASE = (Path(__file__).parents[1] / "policies" / "data" / "engine_base.yaml").read_text()
POLICY = """
actions:
  - {id: loud, always_on: true, channel: receipts, priority: 9}
  - {id: quiet, always_on: true, channel: receipts, priority: 1}
volume_guards:
  - {id: ut_pause, action: loud, max_grants: 3, window: 10s, on_trip: pause}
  - {id: ut_alert, channel: receipts, max_grants: 5, window: 10s}
"""
WINDOW_MS = 10_000


def _policy() -> CompiledPolicy:
    return compile_policy(load_sources({"base.yaml": BASE, "g.yaml": POLICY}))


class Clock:
    def __init__(self) -> None:
        self.ms = 1_000 * WINDOW_MS  # the start of a window

    def __call__(self) -> int:
        return self.ms


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_pause_guard_trips_once_pauses_its_actions_for_a_window_and_lifts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    policy, clock = _policy(), Clock()
    guards = VolumeGuards(MemoryVolumeCounter(), clock_ms=clock)
    trips = _metric("arbiter_volume_guard_trips_total", guard="ut_pause", on_trip="pause")

    async def scenario() -> None:
        guards.granted(policy, ["loud", "loud", "loud"])  # at the limit: no trip
        await guards.flush()
        assert guards.paused == frozenset()
        assert _metric("arbiter_volume_guard_grants", guard="ut_pause") == 3
        guards.granted(policy, ["loud", "quiet"])  # 4 > 3
        clock.ms += 1_000
        with caplog.at_level(logging.WARNING, "arbiter.volume_guard"):
            await guards.flush()
            guards.granted(policy, ["loud"])
            await guards.flush()  # still over in the same window: no second trip
        assert guards.paused == {"loud"}
        assert _metric("arbiter_volume_guard_paused", guard="ut_pause") == 1
        lines = [r.getMessage() for r in caplog.records if "ut_pause" in r.getMessage()]
        assert len(lines) == 1
        assert "4 grants of action `loud` in this 10s window" in lines[0]
        assert "pausing action `loud` for 10s" in lines[0]
        clock.ms += WINDOW_MS  # one window after the trip: lifted
        await guards.flush()
        assert guards.paused == frozenset()
        assert _metric("arbiter_volume_guard_paused", guard="ut_pause") == 0

    asyncio.run(scenario())
    assert _metric("arbiter_volume_guard_trips_total", guard="ut_pause", on_trip="pause") == (
        trips + 1
    )


def test_an_alert_guard_counts_and_logs_but_pauses_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    policy, clock = _policy(), Clock()
    guards = VolumeGuards(MemoryVolumeCounter(), clock_ms=clock)
    before = _metric("arbiter_volume_guard_trips_total", guard="ut_alert", on_trip="alert")

    async def scenario() -> None:
        guards.granted(policy, ["quiet"] * 6)
        with caplog.at_level(logging.WARNING, "arbiter.volume_guard"):
            await guards.flush()
        assert guards.paused == frozenset()
        assert any(
            "ut_alert" in r.getMessage() and "on_trip: alert" in r.getMessage()
            for r in caplog.records
        )
        clock.ms += WINDOW_MS  # a new window: counted from zero
        guards.granted(policy, ["quiet"])
        await guards.flush()
        assert _metric("arbiter_volume_guard_grants", guard="ut_alert") == 1

    asyncio.run(scenario())
    after = _metric("arbiter_volume_guard_trips_total", guard="ut_alert", on_trip="alert")
    assert after == before + 1


class FlakyCounter(MemoryVolumeCounter):
    def __init__(self) -> None:
        super().__init__()
        self.down = True

    async def add(self, counts: Sequence[VolumeCount]) -> list[int]:
        if self.down:
            raise StoreUnavailable("volume_guard", "connection refused")
        return await super().add(counts)


def test_an_outage_is_logged_once_not_every_flush(caplog: pytest.LogCaptureFixture) -> None:
    policy = _policy()
    counter = FlakyCounter()
    guards = VolumeGuards(counter)

    async def scenario() -> None:
        guards.granted(policy, ["quiet"])
        for _ in range(30):  # three seconds of flushes
            await guards.flush()
        counter.down = False
        await guards.flush()

    with caplog.at_level(logging.WARNING, "arbiter.volume_guard"):
        asyncio.run(scenario())
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines
    assert lines[0].startswith("volume guards: cannot count grants: ")
    assert lines[1] == "volume guards: counting again after 30 failed flushes"


def test_counts_survive_a_counter_outage_and_trip_when_it_answers() -> None:
    policy, clock = _policy(), Clock()
    counter = FlakyCounter()
    guards = VolumeGuards(counter, clock_ms=clock)
    errors = _metric("arbiter_volume_guard_errors_total")

    async def scenario() -> None:
        counter.down = False  # another replica granted 3 in this window
        await counter.add([(policy.id, "ut_pause", clock.ms // WINDOW_MS, 3, WINDOW_MS)])
        counter.down = True
        guards.granted(policy, ["loud"])  # this process knows of 1: no trip yet
        await guards.flush()  # fails: the 1 is kept
        assert guards.paused == frozenset()
        counter.down = False
        await guards.flush()  # 3 + 1 > 3
        assert guards.paused == {"loud"}

    asyncio.run(scenario())
    assert _metric("arbiter_volume_guard_errors_total") == errors + 1


def test_a_process_trips_on_its_own_grants_before_any_flush() -> None:
    policy, clock = _policy(), Clock()
    guards = VolumeGuards(MemoryVolumeCounter(), clock_ms=clock)
    guards.granted(policy, ["loud"] * 3)
    assert guards.paused == frozenset()
    guards.granted(policy, ["loud"])  # 4 here alone: the fleet has at least 4
    assert guards.paused == {"loud"}


def test_a_policy_without_guards_counts_nothing() -> None:
    policy = compile_policy(load_sources({"base.yaml": BASE}))
    guards = VolumeGuards(MemoryVolumeCounter())
    guards.granted(policy, ["anything"])
    asyncio.run(guards.flush())
    assert guards.paused == frozenset()


def test_a_fleet_pause_records_the_kill_switch_until_the_window_ends() -> None:
    """on_trip: pause in the server goes through the operators' kill switch: visible in the
    status, in the registry every replica serves from, lifted at the window's end; an action
    the kill switch refuses stays held in this process for the window."""
    examples = Path(__file__).resolve().parents[3] / "examples" / "policies"

    async def main() -> None:
        governance = Governance(PolicyRegistry(), MemoryGovernanceStore(), replica="r1")
        await governance.bootstrap(bundle_files(examples), str(examples))
        action = next(iter(governance.registry.require().policy.actions))
        pauses = FleetPause(governance)
        until = time.time_ns() // 10**6 + 300
        pauses.pause("storm", frozenset({action, "no_such_action"}), until, "420 > 400")
        await pauses.settle()
        assert action in governance.registry.require().paused_actions
        [recorded] = governance.pauses_now()
        assert (recorded["kind"], recorded["target"]) == ("action", action)
        assert recorded["by"] == "volume-guard@r1"
        # The refused one is still held here for the window.
        assert "no_such_action" in pauses.paused(time.time_ns() // 10**6)
        await asyncio.sleep(0.35)
        await governance.refresh()
        assert action not in governance.registry.require().paused_actions
        assert pauses.paused(time.time_ns() // 10**6) == frozenset()

    asyncio.run(main())
