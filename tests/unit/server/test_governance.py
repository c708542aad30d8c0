"""Governance on the in-process store: the gate, versions, rollback, last-known-good, kill switches.

The fleet behaviour (Redis, pub/sub, several processes, timings) is
``tests/integration/test_governance_fleet.py``; these tests pin the logic.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from arbiter.server.governance import GateRefused, Governance, NotFound, bundle_files
from arbiter.server.registry import PolicyRegistry
from arbiter.state import MemoryGovernanceStore

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "policies"


def _files() -> dict[str, str]:
    return bundle_files(EXAMPLES)


def _variant(files: dict[str, str], n: int) -> dict[str, str]:
    """The example set with a different digest (a comment changes the content)."""
    return {**files, "policy.yaml": files["policy.yaml"] + f"\n# variant {n}\n"}


async def _started(history: int = 10) -> Governance:
    governance = Governance(PolicyRegistry(), MemoryGovernanceStore(), history=history)
    await governance.bootstrap(_files(), str(EXAMPLES))
    return governance


def test_the_directory_becomes_the_first_version_with_its_scenario_files() -> None:
    async def main() -> None:
        governance = await _started()
        active = governance.state.active
        assert active is not None
        assert active["digest"] == governance.registry.require().policy.digest
        assert active["by"].startswith("startup@")
        assert any(p.startswith("tests/") for p in _files())  # scenarios travel with the bundle

    asyncio.run(main())


def test_a_bad_bundle_is_refused_with_every_error_located_and_nothing_changes() -> None:
    async def main() -> None:
        governance = await _started()
        before = governance.registry.require()
        epoch = governance.epoch
        bad = {**_files(), "broken.yaml": "actions:\n  - id: x\n    channel: nowhere\n"}
        with pytest.raises(GateRefused) as refused:
            await governance.activate(bad, actor="test")
        assert refused.value.errors
        assert all(str(e).startswith("broken.yaml:") for e in refused.value.errors)
        assert "broken.yaml:3:" in str(refused.value)
        assert governance.registry.require() is before
        assert await governance.store.epoch() == epoch

    asyncio.run(main())


def test_a_failing_scenario_refuses_activation() -> None:
    async def main() -> None:
        governance = await _started()
        files = _files()
        name = "tests/caps.yaml"
        broken = files[name].replace("caps: {outbound_daily: 2}", "caps: {outbound_daily: 5}", 1)
        assert broken != files[name]
        with pytest.raises(GateRefused) as refused:
            await governance.activate({**files, name: broken}, actor="test")
        assert any("scenario" in e.message for e in refused.value.errors)

    asyncio.run(main())


def test_activate_then_rollback_restores_the_previous_digest_and_history_is_bounded() -> None:
    async def main() -> None:
        governance = await _started(history=3)
        first = governance.registry.require().policy.digest
        active, previous = await governance.activate(_variant(_files(), 1), actor="alice")
        assert previous is not None and previous["digest"] == first
        assert governance.registry.require().policy.digest == active["digest"] != first
        rolled, _ = await governance.rollback(actor="bob")
        assert rolled["digest"] == first
        assert governance.registry.require().policy.digest == first
        for n in range(2, 6):
            await governance.activate(_variant(_files(), n), actor="alice")
        assert len(governance.state.history) == 3
        with pytest.raises(NotFound):
            await governance.rollback(first, actor="bob")  # no longer kept

    asyncio.run(main())


def test_a_replica_that_cannot_load_the_active_bundle_keeps_its_last_good_set() -> None:
    async def main() -> None:
        store = MemoryGovernanceStore()
        a = Governance(PolicyRegistry(), store, replica="a")
        await a.bootstrap(_files(), "dir")
        b = Governance(PolicyRegistry(), store, replica="b")
        await b.bootstrap(_files(), "dir")
        good = b.registry.require()
        # A bundle stored by a newer compiler that this replica cannot load.
        broken = {"digest": "sha256:x", "version": "9", "files": {"policy.yaml": "nope: ["}}
        await store.activate(broken, {"digest": "sha256:x", "version": "9", "by": "t"}, 10)
        await b.refresh()
        assert b.registry.require() is good
        assert "cannot load the active set sha256:x" in b.sync_error
        assert b.sync_errors
        await b._heartbeat()
        assert (await store.replicas())["b"]["error"] == b.sync_error

    asyncio.run(main())


def test_pauses_of_journeys_actions_and_channels_reach_the_registry_and_until_expires() -> None:
    async def main() -> None:
        governance = await _started()
        policy = governance.registry.require().policy
        journey = next(iter(policy.journeys))
        action = next(iter(policy.actions))
        channel = next(iter(policy.channels))
        await governance.pause("journey", journey, reason="storm", actor="ops")
        await governance.pause("action", action, actor="ops")
        await governance.pause("channel", channel, until_ms=time.time_ns() // 10**6 + 300)
        active = governance.registry.require()
        assert active.paused_journeys == {journey}
        on_channel = {a.id for a in policy.actions.values() if a.channel_id == channel}
        assert active.paused_actions == {action} | on_channel
        await asyncio.sleep(0.35)
        await governance.refresh()  # the channel pause ended by itself
        assert governance.registry.require().paused_actions == {action}
        await governance.resume("journey", journey)
        assert governance.registry.require().paused_journeys == frozenset()
        # A swap keeps the pauses in force.
        await governance.activate(_variant(_files(), 1), actor="alice")
        assert governance.registry.require().paused_actions == {action}
        with pytest.raises(NotFound):
            await governance.pause("channel", "no_such_channel")
        with pytest.raises(ValueError, match="until"):
            await governance.pause("action", action, until_ms=1)

    asyncio.run(main())


def test_a_replica_started_later_serves_the_fleet_version_and_its_pauses() -> None:
    async def main() -> None:
        store = MemoryGovernanceStore()
        a = Governance(PolicyRegistry(), store, replica="a")
        await a.bootstrap(_files(), "dir")
        await a.activate(_variant(_files(), 1), actor="alice")
        journey = next(iter(a.registry.require().policy.journeys))
        await a.pause("journey", journey)
        late = Governance(PolicyRegistry(), store, replica="late")
        await late.bootstrap(_files(), "dir")  # files the fleet already knew: not re-activated
        assert late.registry.require().policy.digest == a.registry.require().policy.digest
        assert late.registry.require().paused_journeys == {journey}

    asyncio.run(main())


def test_a_paused_channel_or_action_is_refused_by_check_and_decide_with_reason_paused() -> None:
    from arbiter.server.service import Call, DecisionCore
    from arbiter.state import MemoryStore
    from arbiter.v1 import decision_pb2

    async def main() -> None:
        governance = await _started()
        core = DecisionCore(governance.registry, MemoryStore())
        check = decision_pb2.CheckRequest(
            request_id="k-1",
            customer_id="c-1",
            action_id="order_receipt_email",
            channel="transactional_email",
        )
        await governance.pause("channel", "transactional_email", reason="provider down")
        answer = await core.invoke("Check", check, Call())
        assert not answer.allowed and answer.reason == decision_pb2.REASON_PAUSED
        await governance.resume("channel", "transactional_email")
        answer = await core.invoke("Check", check, Call())
        assert answer.reason != decision_pb2.REASON_PAUSED
        await governance.pause("action", "order_receipt_email")
        answer = await core.invoke("Check", check, Call())
        assert not answer.allowed and answer.reason == decision_pb2.REASON_PAUSED
        await governance.pause("channel", "in_app")
        decide = decision_pb2.DecideRequest(
            request_id="d-1", customer_id="c-1", placement="home_banner", dry_run=True, explain=True
        )
        reply = await core.invoke("Decide", decide, Call())
        on_app = [c for c in reply.candidates if c.channel == "in_app"]
        assert on_app and all(c.reason == decision_pb2.REASON_PAUSED for c in on_app)
        assert not any(a.channel == "in_app" for a in reply.actions)

    asyncio.run(main())


def test_a_server_started_while_the_store_is_down_serves_its_directory_then_joins_the_fleet() -> (
    None
):
    from arbiter.state import StoreUnavailable

    class Down(MemoryGovernanceStore):
        down = True

        async def read(self):  # type: ignore[no-untyped-def]
            if self.down:
                raise StoreUnavailable("governance.read", "connection refused")
            return await super().read()

    async def main() -> None:
        store = Down()
        governance = Governance(PolicyRegistry(), store, replica="r", poll_s=0.01)
        await governance.bootstrap(_files(), "dir")  # does not raise
        assert governance.registry.require().policy.digest
        assert store._active is None  # nothing published yet
        await governance.start()
        try:
            await asyncio.sleep(0.05)
            store.down = False
            for _ in range(200):
                if store._active is not None:
                    break
                await asyncio.sleep(0.01)
            assert store._active is not None
            assert store._active["digest"] == governance.registry.require().policy.digest
        finally:
            await governance.stop()

    asyncio.run(main())
