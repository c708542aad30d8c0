"""The decision log on a real Redis Stream: bounded, findable by decision id, readable by a consumer group, served by a server on the Redis store."""

from __future__ import annotations

import asyncio
import json
import random
import sys
import uuid
from pathlib import Path

import grpc
import pytest
import redis

from arbiter.policies import decision_log
from arbiter.server.cli import main
from arbiter.state import RedisStreamSink
from arbiter.v1 import admin_pb2, admin_pb2_grpc, decision_pb2_grpc

_HERE = Path(__file__).resolve().parent
for _path in (str(_HERE.parent), str(_HERE)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from conftest import ServerHandle  # noqa: E402
from redis_support import redis_url  # noqa: E402, F401  (session fixture)
from traffic import SURFACES, decide_request, seed  # noqa: E402


def _line(decision_id: str) -> bytes:
    return json.dumps({"decision_id": decision_id}, separators=(",", ":")).encode()


def test_the_stream_is_bounded_indexed_and_consumer_group_friendly(redis_url: str) -> None:  # noqa: F811
    prefix = f"t{uuid.uuid4().hex[:8]}"

    async def run() -> None:
        sink = RedisStreamSink.from_url(redis_url, prefix=prefix, maxlen=100)
        client = redis.Redis.from_url(redis_url)
        try:
            client.xgroup_create(sink.stream, "loader", id="$", mkstream=True)
            for start in range(0, 1000, 50):
                await sink.write([(f"d{i}", _line(f"d{i}")) for i in range(start, start + 50)])
            assert 100 <= await sink.length() < 400  # trimmed: MAXLEN ~ keeps about maxlen
            assert await sink.find("d999") == _line("d999")
            assert await sink.find("d0") is None  # trimmed away (its index may remain)
            kept = [json.loads(r)["decision_id"] async for r in sink.read()]
            assert kept[-1] == "d999" and kept == sorted(kept, key=lambda d: int(d[1:]))
            # A warehouse loader reading with a consumer group sees every record it was given.
            entries = client.xreadgroup("loader", "c1", {sink.stream: ">"}, count=5000)
            fields = [f for _, batch in entries for _, f in batch]
            assert fields[-1][b"decision_id"] == b"d999"
            assert fields[-1][b"record"] == _line("d999")
        finally:
            client.delete(sink.stream)
            for key in client.scan_iter(f"{prefix}:*"):
                client.delete(key)
            client.close()
            await sink.close()

    asyncio.run(run())


def test_follow_sees_records_appended_after_it_started(redis_url: str) -> None:  # noqa: F811
    prefix = f"t{uuid.uuid4().hex[:8]}"

    async def run() -> list[str]:
        sink = RedisStreamSink.from_url(redis_url, prefix=prefix)
        writer = RedisStreamSink.from_url(redis_url, prefix=prefix)
        await writer.write([("before", _line("before"))])
        seen: list[str] = []

        async def reader() -> None:
            async for record in sink.follow(block_ms=100):
                seen.append(json.loads(record)["decision_id"])
                if len(seen) == 2:
                    return

        task = asyncio.create_task(reader())
        await asyncio.sleep(0.2)
        await writer.write([("a", _line("a")), ("b", _line("b"))])
        await asyncio.wait_for(task, 5)
        await writer.close()
        await sink.close()
        return seen

    try:
        assert asyncio.run(run()) == ["a", "b"]
    finally:
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)
        client.close()


@pytest.mark.parametrize("sink", ["redis"])
def test_a_server_on_redis_logs_to_the_stream_and_explains_from_it(
    redis_url: str,  # noqa: F811
    sink: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    handle = ServerHandle(redis_url=redis_url, decision_log=sink)
    try:
        with grpc.insecure_channel(handle.address) as channel:
            stub = decision_pb2_grpc.DecisionServiceStub(channel)
            rng = random.Random(2)
            customer = f"rs-{uuid.uuid4().hex[:8]}"
            seed(stub, rng, customer)
            reply = stub.Decide(decide_request(rng, customer, surface=SURFACES[0]), timeout=5)
            assert handle.server.decisions is not None
            handle.call(handle.server.decisions.flush())
            admin = admin_pb2_grpc.AdminServiceStub(channel)
            found = admin.ExplainDecision(
                admin_pb2.ExplainDecisionRequest(decision_id=reply.decision_id), timeout=5
            ).record
        assert found.decision_id == reply.decision_id and found.committed
        assert decision_log.decode_record(found.record_json).customer_id == customer
    finally:
        handle.close()
    assert main(["decisions", "export", "--log", redis_url, "--customer", customer]) == 0
    exported = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r["decision_id"] for r in exported] == [reply.decision_id]
