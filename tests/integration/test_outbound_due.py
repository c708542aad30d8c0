"""The due-step loop in process, on a private redis-server: wake-ups are recorded with the journey
change, fire through the service core (so its consent checks and kill switches apply), replay on
a re-run, reschedule a deferral, and skip a step the journey has moved past."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

import redis_support  # noqa: E402

from arbiter.server.outbound.config import load_config  # noqa: E402
from arbiter.server.outbound.due import DueWorker, parse_member  # noqa: E402
from arbiter.server.outbound.redis_ops import decode_entry, outbox_keys  # noqa: E402
from arbiter.server.registry import PolicyRegistry  # noqa: E402
from arbiter.server.service import Call, DecisionCore  # noqa: E402
from arbiter.state import RedisStore, wake_key  # noqa: E402
from arbiter.v1 import decision_pb2  # noqa: E402

POLICIES = ROOT / "examples" / "outbound" / "policies"
CONFIG = ROOT / "examples" / "outbound" / "outbound.yaml"


@pytest.fixture
def redis_url() -> Iterator[str]:
    server = redis_support.RedisServer().start()
    try:
        yield server.url
    finally:
        server.close()


async def _setup(redis_url: str) -> tuple[DecisionCore, DueWorker, Any]:
    import redis.asyncio as redis_asyncio

    registry = PolicyRegistry()
    registry.load(POLICIES)
    store = RedisStore.from_url(redis_url)
    await store.init_state()
    core = DecisionCore(registry, store, store_timeout_s=2.0)
    client = redis_asyncio.Redis.from_url(redis_url)
    return core, DueWorker(core, client, load_config(CONFIG)), client


async def _signup(core: DecisionCore, customer: str, at_ms: int | None = None) -> None:
    event = decision_pb2.Event(event_id=f"s.{customer}", customer_id=customer, type="signed_up")
    if at_ms is None:
        event.timestamp.GetCurrentTime()
    else:
        event.timestamp.FromMilliseconds(at_ms)
    results = await core.track_results(
        decision_pb2.TrackRequest(events=[event]), Call.with_timeout(5)
    )
    assert results[0][1] == "applied", results


async def _now(client: Any) -> int:
    t = await client.time()
    return int(t[0]) * 1000 + int(t[1]) // 1000


async def _claim(due: DueWorker) -> list[tuple[str, int]]:
    """Claim what is due, as the loop does: (member, claim time) pairs."""
    reply = await due.scripts.claim(keys=[due.wake, due.lease], args=[30_000, 100])
    return [(m.decode(), int(reply[0])) for m in reply[1::2]]


async def _wakes(client: Any, customer: str) -> list[tuple[str, int]]:
    members = await client.zrange(wake_key(), 0, -1, withscores=True)
    return [(m.decode(), int(s)) for m, s in members if m.decode().startswith(customer + "|")]


async def _outbox(client: Any, destination: str) -> list[Any]:
    stream = outbox_keys("arb", destination).stream
    return [decode_entry(f[b"e"]) for _, f in await client.xrange(stream)]


def test_signup_records_a_wake_up_that_fires_once_through_the_core(redis_url: str) -> None:
    async def scenario() -> None:
        core, due, client = await _setup(redis_url)
        try:
            await _signup(core, "cust-1", at_ms=await _now(client) - 2100)  # first step due
            [(member, score)] = await _wakes(client, "cust-1")
            _, journey, fire, stage = parse_member(member)
            assert (journey, fire, stage) == ("welcome", score, score)
            [(claimed, now)] = await _claim(due)
            assert claimed == member
            assert await due.fire(member, now) == "sent"
            entries = await _outbox(client, "push_hook")
            assert [(e.customer_id, e.action, e.due_ms) for e in entries] == [
                ("cust-1", "welcome_push", score)
            ]
            # The commit of that decision recorded the next step's wake-up.
            assert [parse_member(m)[2] for m, _ in await _wakes(client, "cust-1")] == [score + 2000]
            # A re-run of the same wake-up (a crash before settling) replays: nothing new.
            assert await due.fire(member, now) == "nothing"
            assert len(await _outbox(client, "push_hook")) == 1
        finally:
            await client.aclose()
            await core.store.close()

    asyncio.run(scenario())


def test_a_paused_journey_or_an_opt_out_stops_the_waiting_step(redis_url: str) -> None:
    async def scenario() -> None:
        core, due, client = await _setup(redis_url)
        try:
            at = await _now(client) - 2100
            await _signup(core, "paused", at_ms=at)
            await _signup(core, "opted", at_ms=at)
            update = decision_pb2.UpdateProfileRequest(
                request_id="u1", customer_id="opted", source="test"
            )
            update.timestamp.GetCurrentTime()
            update.consents.add(purpose="push_marketing", state=decision_pb2.CONSENT_STATE_DENIED)
            await core.update_profile(update, Call.with_timeout(5))
            claimed = dict(await _claim(due))
            [opted] = [m for m in claimed if m.startswith("opted|")]
            assert await due.fire(opted, claimed[opted]) == "nothing"
            core.registry.set_paused(frozenset({"welcome"}))  # the operator's kill switch
            [paused] = [m for m in claimed if m.startswith("paused|")]
            assert await due.fire(paused, claimed[paused]) == "nothing"
            assert await _outbox(client, "push_hook") == []
        finally:
            await client.aclose()
            await core.store.close()

    asyncio.run(scenario())


def test_a_wake_up_claimed_after_the_next_step_was_due_skips_to_it(redis_url: str) -> None:
    async def scenario() -> None:
        core, due, client = await _setup(redis_url)
        try:
            await _signup(core, "late", at_ms=await _now(client) - 4500)  # both steps due
            [(member, at)] = await _wakes(client, "late")
            [(_, now)] = await _claim(due)
            assert await due.fire(member, now) == "skipped"
            [(step, _)] = await _wakes(client, "late")
            assert parse_member(step)[3] == at + 2000  # the email step, due at once
            [(claimed, now)] = await _claim(due)
            assert claimed == step
            assert await due.fire(step, now) == "sent"
            assert [e.action for e in await _outbox(client, "mail")] == ["welcome_email"]
            assert await _outbox(client, "push_hook") == []
        finally:
            await client.aclose()
            await core.store.close()

    asyncio.run(scenario())


def test_a_decision_that_could_not_be_committed_fires_again_instead_of_settling(
    redis_url: str,
) -> None:
    async def scenario() -> None:
        core, due, client = await _setup(redis_url)
        real = core.decide_answer
        try:
            await _signup(core, "flaky", at_ms=await _now(client) - 2100)
            [(member, now)] = await _claim(due)

            async def unreadable(request: Any, call: Any) -> Any:
                answer = await real(
                    decision_pb2.DecideRequest(
                        request_id=request.request_id,
                        customer_id=request.customer_id,
                        channels=request.channels,
                        dry_run=True,  # decided, never committed: as when the store times out
                    ),
                    call,
                )
                assert not answer.recorded
                return answer

            core.decide_answer = unreadable  # type: ignore[method-assign]
            assert await due.fire(member, now) == "retry"
            assert [m for m, _ in await _wakes(client, "flaky")] == [member]  # back, not dropped
            assert await _outbox(client, "push_hook") == []
            core.decide_answer = real  # type: ignore[method-assign]
            await asyncio.sleep(1.1)
            [(claimed, now)] = await _claim(due)
            assert claimed == member
            assert await due.fire(member, now) == "sent"
        finally:
            await client.aclose()
            await core.store.close()

    asyncio.run(scenario())


def test_a_pause_made_through_the_fleet_reaches_a_worker_and_stops_its_step(
    redis_url: str,
) -> None:
    """The kill switch an operator uses on a server (AdminService -> Governance on Redis)
    stops a worker's waiting step: the worker follows the fleet's pauses."""
    from arbiter.server.governance import Governance, bundle_files
    from arbiter.server.outbound.worker import Worker
    from arbiter.state import open_governance_store

    async def scenario() -> None:
        worker = Worker(load_config(CONFIG), POLICIES, redis_url)
        await worker.store.init_state()  # type: ignore[attr-defined]
        await worker.join_fleet()
        # A server of the same fleet: its own registry and governance on the same Redis.
        server_registry = PolicyRegistry()
        server_registry.load(POLICIES)
        server = Governance(server_registry, open_governance_store(redis_url), replica="server-a")
        try:
            await server.bootstrap(bundle_files(POLICIES), str(POLICIES))
            await _signup(worker.core, "paused", at_ms=await _now(worker.client) - 2100)
            await server.pause("journey", "welcome", reason="incident", actor="test")
            loop = asyncio.get_running_loop()
            started = loop.time()
            while "welcome" not in worker.registry.require().paused_journeys:
                assert loop.time() - started < 1.0, "the pause did not reach the worker in 1 s"
                await asyncio.sleep(0.02)
            claimed = dict(await _claim(worker.due))
            [paused] = [m for m in claimed if m.startswith("paused|")]
            assert await worker.due.fire(paused, claimed[paused]) == "nothing"
            assert await _outbox(worker.client, "push_hook") == []
        finally:
            await server.stop()
            await worker.governance.stop()
            await worker.client.aclose()
            await worker.store.close()

    asyncio.run(scenario())
