"""A decision that loses the race for a cap's last slot answers the next best action, not nothing.

Found: when the commit's re-check rejected a grant because a concurrent
decision had just used the cap's last slot, the caller got an empty answer
(up to 697 of 1,000 in one burst) although another eligible action existed.
Now the first commit aborts when a grant is rejected (nothing applied,
nothing stored) and the server decides once more on a fresh read: one extra
read and commit, after which it commits what the re-check allows.

The placement has two always-on actions: ``service_notice`` (capped at 1
a day) ranks above ``service_backup`` (uncapped). 100 concurrent Decides
for one customer against a real Redis: exactly one gets the notice, every
other one gets the backup.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from pathlib import Path

import grpc
from hostile import record_row
from inproc import ServerHandle
from redis_support import RedisServer
from server_procs import SERVICE_ACTION, SERVICE_CHANNEL, SERVICE_PLACEMENT, write_test_policies

from arbiter.v1 import decision_pb2, decision_pb2_grpc

BACKUP = f"""\
actions:
  - id: service_backup
    always_on: true
    channel: {SERVICE_CHANNEL}
    placements: [{SERVICE_PLACEMENT}]
    priority: 10
    value: 0.0
    payload: {{title: See what is new}}
"""
CALLS = 100


async def _burst(address: str, customer: str) -> Counter[str]:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = decision_pb2_grpc.DecisionServiceStub(channel)

        async def one() -> str:
            answer = await stub.Decide(
                decision_pb2.DecideRequest(
                    request_id=uuid.uuid4().hex,
                    customer_id=customer,
                    placement=SERVICE_PLACEMENT,
                    channels=[SERVICE_CHANNEL],
                    limit=1,
                ),
                timeout=20,
            )
            return answer.actions[0].action_id if answer.actions else "(nothing)"

        return Counter(await asyncio.gather(*(one() for _ in range(CALLS))))


def test_a_lost_race_answers_the_next_best_action(tmp_path: Path) -> None:
    policies = write_test_policies(tmp_path, limit=1)
    (policies / "service_backup.yaml").write_text(BACKUP)
    redis = RedisServer().start()
    try:
        server = ServerHandle(redis_url=redis.url, policies=str(policies))
        try:
            answers = asyncio.run(_burst(server.address, f"race-{uuid.uuid4().hex[:10]}"))
        finally:
            server.close()
    finally:
        redis.close()
    record_row("lost race (cap 1, 100 concurrent Decides, one customer)", dict(answers))
    assert answers[SERVICE_ACTION] == 1, answers
    assert answers["service_backup"] == CALLS - 1, answers
