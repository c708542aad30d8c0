"""``arbiter serve --workers N``: processes sharing one port, one metrics endpoint, supervision, stop.

Real ``arbiter serve`` processes on free ports over a private Redis. The
cap under concurrency against a multi-worker server is in
``test_server_redis.py`` (parametrised over both deployments).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from arbiter.v1 import decision_pb2, decision_pb2_grpc

_HERE = Path(__file__).resolve().parent
for _path in (str(_HERE.parent), str(_HERE)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from redis_support import RedisServer  # noqa: E402
from server_procs import ROOT, ServerProcess, free_port, write_test_policies  # noqa: E402

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="redis-server not on the PATH"
)


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.close()


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _decides(address: str, calls: int, connections: int = 8) -> list[grpc.StatusCode]:
    """``calls`` Decides over ``connections`` separate TCP connections (round robin)."""
    channels = [
        grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(connections)
    ]
    stubs = [decision_pb2_grpc.DecisionServiceStub(c) for c in channels]
    codes = []
    try:
        for i in range(calls):
            request = decision_pb2.DecideRequest(
                request_id=uuid.uuid4().hex,
                customer_id=f"w-{i % 50}",
                placement="home_banner",
                channels=["in_app"],
            )
            try:
                stubs[i % connections].Decide(request, timeout=10)
                codes.append(grpc.StatusCode.OK)
            except grpc.RpcError as exc:
                codes.append(exc.code())
    finally:
        for c in channels:
            c.close()
    return codes


def _requests_total(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith('arbiter_requests_total{code="OK",method="Decide",')
    )


def test_two_workers_share_the_port_one_metrics_endpoint_and_a_dead_one_is_replaced(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    policies = write_test_policies(tmp_path)
    metrics_port = free_port()
    server = ServerProcess(
        policies,
        tmp_path,
        redis_url=redis_server.url,
        name="workers",
        extra_args=("--workers", "2", "--metrics-port", str(metrics_port)),
    ).start()
    try:
        workers = _children(server.pid)
        assert len(workers) == 2, server.log_tail()
        before = {w: _cpu(w) for w in workers}
        assert set(_decides(server.address, 200)) == {grpc.StatusCode.OK}
        # The kernel spread the connections: both workers did work.
        used = {w: _cpu(w) - before[w] for w in workers}
        assert all(v > 0 for v in used.values()), used
        # One endpoint counts the calls of every worker.
        assert _requests_total(metrics_port) == 200
        # A worker killed is replaced; service goes on; its calls stay counted.
        os.kill(workers[0], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            now = _children(server.pid)
            if len(now) == 2 and workers[0] not in now:
                break
            time.sleep(0.1)
        replaced = _children(server.pid)
        assert len(replaced) == 2 and workers[0] not in replaced, server.log_tail()
        server.wait_serving(30)
        time.sleep(1.0)  # the new worker has loaded its policy set
        assert set(_decides(server.address, 100)) == {grpc.StatusCode.OK}
        assert _requests_total(metrics_port) == 300
        assert "worker 0 exited with -9; restarting" in server.log_tail(20_000)
    finally:
        remaining = _children(server.pid) if server.proc is not None else []
        code = server.stop(grace_s=15)
    assert code == 0, server.log_tail()
    for pid in remaining:  # every worker stopped with the supervisor
        assert (
            not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
        )


def _serve(*args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "arbiter.server.cli", "serve", "--http-listen", "off", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def test_workers_that_cannot_serve_stop_the_supervisor_with_their_exit_code(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "actions.yaml").write_text("actions: [{id: x, channel: nowhere}]\n")
    out = _serve(
        "--policies", str(broken), "--redis-url", redis_server.url, "--workers", "2",
        "--listen", f"127.0.0.1:{free_port()}",
    )  # fmt: skip
    assert out.returncode == 1, out.stderr
    assert "before serving; stopping" in out.stderr


def test_a_busy_port_is_refused_even_with_workers(redis_server: RedisServer) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = _serve(
            "--policies", str(ROOT / "examples" / "policies"), "--redis-url", redis_server.url,
            "--workers", "2", "--listen", f"127.0.0.1:{port}",
        )  # fmt: skip
    assert out.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port} (gRPC)" in out.stderr
