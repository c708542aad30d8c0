"""Whose clock? Two servers whose clocks differ by 10 minutes must keep a cap exact.

Found: each server judged rolling windows by its own clock and a commit
pruned with the caller's clock, so two servers 10 minutes apart granted 6
against a cap of 3 per window. Windows are now judged by one clock, Redis
``TIME``: the read script returns it, the server decides at it and commits
at it plus its own monotonic time since the read.

The servers run under libfaketime (``FAKETIME=+10m``: the whole process's
wall clock is 10 minutes ahead); the cap's window (5 minutes) is shorter than
the skew, which is what broke it. 1,000 concurrent Decides per round for one
fresh customer, split across the servers; ``ARBITER_RELIABILITY_FULL=1``
runs 20 rounds (``make reliability``), the default 3.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import grpc
import pytest
from hostile import FULL, record_row
from redis_support import RedisServer
from server_procs import (
    FAKETIME_LIB,
    SERVICE_ACTION,
    SERVICE_CHANNEL,
    SERVICE_PLACEMENT,
    ServerProcess,
    write_test_policies,
)

from arbiter.v1 import decision_pb2, decision_pb2_grpc

pytestmark = pytest.mark.skipif(not FAKETIME_LIB, reason="libfaketime not installed")

ROUNDS = 20 if FULL else 3
CALLS = 1000
LIMIT = 3


async def _rounds(addresses: list[str]) -> list[tuple[int, Counter[str]]]:
    channels = [grpc.aio.insecure_channel(a) for a in addresses]
    stubs = [decision_pb2_grpc.DecisionServiceStub(c) for c in channels]
    out = []
    try:
        for _ in range(ROUNDS):
            customer = f"skew-{uuid.uuid4().hex[:12]}"

            async def one(i: int, customer: str = customer) -> tuple[int, Any]:
                request = decision_pb2.DecideRequest(
                    request_id=uuid.uuid4().hex,
                    customer_id=customer,
                    placement=SERVICE_PLACEMENT,
                    channels=[SERVICE_CHANNEL],
                )
                try:
                    return i % 2, await stubs[i % 2].Decide(request, timeout=30)
                except grpc.aio.AioRpcError as exc:
                    return i % 2, exc.code()

            replies = await asyncio.gather(*(one(i) for i in range(CALLS)))
            per_server: Counter[str] = Counter()
            for server, reply in replies:
                assert not isinstance(reply, grpc.StatusCode), reply
                assert not reply.degradations, reply.degradations
                if [a.action_id for a in reply.actions] == [SERVICE_ACTION]:
                    per_server["ahead" if server else "on time"] += 1
            out.append((sum(per_server.values()), per_server))
    finally:
        for channel in channels:
            await channel.close()
    return out


def test_two_servers_10_minutes_apart_keep_a_cap_of_3_exact(tmp_path: Path) -> None:
    policies = write_test_policies(tmp_path, limit=LIMIT, window="5m")
    redis = RedisServer().start()
    servers = [
        ServerProcess(policies, tmp_path, redis_url=redis.url, name="on-time"),
        ServerProcess(policies, tmp_path, redis_url=redis.url, name="ahead", clock_offset="+10m"),
    ]
    try:
        for server in servers:
            server.start()
        results = asyncio.run(_rounds([s.address for s in servers]))
    finally:
        for server in servers:
            server.stop()
        redis.close()
    grants = [g for g, _ in results]
    split = Counter()
    for _, per in results:
        split.update(per)
    print(f"\n{ROUNDS} rounds x {CALLS} Decides, cap {LIMIT}/5m, clocks 10 min apart: {grants}")
    record_row(
        "clock skew (cap 3 per 5 minutes, two servers 10 minutes apart)",
        {
            "rounds": ROUNDS,
            "Decides per round": CALLS,
            "grants per round": sorted(set(grants)),
            "grants by server": dict(split),
        },
    )
    assert grants == [LIMIT] * ROUNDS
