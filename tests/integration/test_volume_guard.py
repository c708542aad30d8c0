"""The message-storm breaker across a fleet: two ``arbiter serve`` processes on one real Redis.

A policy declares a volume guard on an offer (``max_grants`` per window,
``on_trip: pause``). Under the narrow policy nobody is eligible and nothing
trips. Then a policy change -- the offer's eligibility broadened to every
customer, deployed by restarting both replicas -- floods grants; the guard,
counting in Redis across both processes, trips within its window, both
replicas stop granting the offer (reason ``PAUSED``) and both say so in
their logs. Grants beyond ``max_grants`` are bounded by one flush interval
of traffic.
"""

from __future__ import annotations

import shutil
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import redis

from arbiter.v1 import decision_pb2, decision_pb2_grpc

_HERE = Path(__file__).resolve().parent
for _path in (str(_HERE.parent), str(_HERE)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from redis_support import RedisServer  # noqa: E402
from server_procs import ServerProcess, free_port, write_test_policies  # noqa: E402

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None or shutil.which("redis-cli") is None,
    reason="redis-server / redis-cli not on the PATH",
)

MAX_GRANTS = 60
WINDOW = "60s"
STORM_YAML = """
channels:
  - id: storm_in_app
    transactional: true
    placements: [storm_slot]
actions:
  - id: storm_offer
    always_on: true
    channel: storm_in_app
    placements: [storm_slot]
    priority: 10
    eligibility: __ELIGIBILITY__
  - id: storm_fallback
    always_on: true
    channel: storm_in_app
    placements: [storm_slot]
    priority: 1
volume_guards:
  - id: storm_offer_rate
    action: storm_offer
    max_grants: __MAX__
    window: __WINDOW__
    on_trip: pause
"""


def _policies(root: Path, eligibility: str) -> Path:
    target = write_test_policies(root)
    text = (
        STORM_YAML.replace("__ELIGIBILITY__", eligibility)
        .replace("__MAX__", str(MAX_GRANTS))
        .replace("__WINDOW__", WINDOW)
    )
    (target / "storm.yaml").write_text(text)
    return target


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.close()


def _decide(
    stub: decision_pb2_grpc.DecisionServiceStub, customer: str
) -> decision_pb2.DecideResponse:
    request = decision_pb2.DecideRequest(
        request_id=uuid.uuid4().hex,
        customer_id=customer,
        placement="storm_slot",
        channels=["storm_in_app"],
        limit=1,
        explain=True,
    )
    reply: decision_pb2.DecideResponse = stub.Decide(request, timeout=5)
    return reply


def _offer_reason(reply: decision_pb2.DecideResponse) -> int:
    return next(c.reason for c in reply.candidates if c.action_id == "storm_offer")


def _fleet(
    policies: Path, logs: Path, redis_url: str, *, init: bool
) -> tuple[list[ServerProcess], list[int]]:
    metrics = [free_port(), free_port()]
    fleet = [
        ServerProcess(
            policies,
            logs,
            redis_url=redis_url,
            name=f"replica{i}",
            init_state=init and i == 0,
            # One process each (two replicas, not four), /metrics on its own port.
            extra_args=("--workers", "1", "--metrics-port", str(metrics[i])),
        ).start()
        for i in range(2)
    ]
    return fleet, metrics


def _metric(port: int, name: str, labels: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    line = next((x for x in text.splitlines() if x.startswith(f"{name}{{{labels}}} ")), None)
    return float(line.rsplit(" ", 1)[1]) if line else 0.0


def test_a_policy_change_making_everyone_eligible_trips_the_guard_on_both_replicas(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    narrow = _policies(
        tmp_path / "narrow", '\'context.has("device") && context.device == "kiosk"\''
    )
    broad = _policies(tmp_path / "broad", "'true'")
    logs = tmp_path / "logs"
    logs.mkdir()

    # Before: nobody is eligible for the offer; the guard counts nothing and never trips.
    fleet, _ = _fleet(narrow, logs, redis_server.url, init=True)
    try:
        for i in range(2 * MAX_GRANTS):
            with grpc.insecure_channel(fleet[i % 2].address) as channel:
                reply = _decide(decision_pb2_grpc.DecisionServiceStub(channel), f"n-{i}")
            assert [a.action_id for a in reply.actions] == ["storm_fallback"]
    finally:
        for server in fleet:
            server.stop()
    assert all("tripped" not in s.log_path.read_text() for s in fleet)

    # The change: every customer eligible, both replicas restarted with it.
    fleet, metrics = _fleet(broad, logs, redis_server.url, init=False)
    channels = [grpc.insecure_channel(s.address) for s in fleet]
    stubs = [decision_pb2_grpc.DecisionServiceStub(c) for c in channels]
    granted = [0, 0]
    paused_on: set[int] = set()
    started = time.monotonic()
    try:
        i = 0
        while len(paused_on) < 2 and time.monotonic() - started < 60:
            replica = i % 2
            reply = _decide(stubs[replica], f"b-{i}")
            i += 1
            chosen = [a.action_id for a in reply.actions]
            if chosen == ["storm_offer"]:
                granted[replica] += 1
            else:
                assert chosen == ["storm_fallback"]
                assert _offer_reason(reply) == decision_pb2.REASON_PAUSED
                paused_on.add(replica)
        elapsed = time.monotonic() - started
        assert paused_on == {0, 1}, f"not paused on both replicas after {elapsed:.1f}s"
        # One fleet-wide count: each replica granted well under max_grants itself, yet both
        # paused once the two together passed it (plus what the other replica granted
        # within one flush interval, 100 ms).
        assert all(n < MAX_GRANTS for n in granted), granted
        assert sum(granted) > MAX_GRANTS
        # Paused for the window: more calls, on both replicas, grant only the fallback.
        for j in range(20):
            reply = _decide(stubs[j % 2], f"after-{j}")
            assert [a.action_id for a in reply.actions] == ["storm_fallback"]
            assert _offer_reason(reply) == decision_pb2.REASON_PAUSED
        # The alert's metrics. A replica that tripped records the operators' kill switch,
        # which reaches the other through the fleet's pauses -- possibly before that one
        # trips on its own count: at least one trip, at most one per replica.
        guard = 'guard="storm_offer_rate"'
        trips = [
            _metric(port, "arbiter_volume_guard_trips_total", f'{guard},on_trip="pause"')
            for port in metrics
        ]
        assert sum(trips) >= 1 and all(t <= 1 for t in trips), trips
        for port, tripped in zip(metrics, trips, strict=True):
            assert _metric(port, "arbiter_volume_guard_paused", guard) == tripped
            assert _metric(port, "arbiter_volume_guard_limit", guard) == MAX_GRANTS
            assert _metric(port, "arbiter_rejections_total", 'method="Decide",reason="PAUSED"') > 0
        assert max(_metric(p, "arbiter_volume_guard_grants", guard) for p in metrics) > MAX_GRANTS
    finally:
        for channel in channels:
            channel.close()
        for server in fleet:
            server.stop()
    for server in fleet:
        log = server.log_path.read_text()
        assert "volume guard `storm_offer_rate` tripped" in log, server.log_tail()
        assert "pausing action `storm_offer` for 1m" in log
    # The fleet's count is a plain Redis integer per guard window.
    client = redis.Redis.from_url(redis_server.url)
    keys = client.keys("*{vg:*storm_offer_rate}*")
    assert keys and sum(int(client.get(k) or 0) for k in keys) == sum(granted)
    client.close()
    print(
        f"\nstorm guard (max_grants {MAX_GRANTS}): paused on both replicas after "
        f"{sum(granted)} grants {granted} in {elapsed:.2f}s"
    )
