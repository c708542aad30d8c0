"""``SIGHUP`` and ``arbiter serve --watch`` reload the policy directory through the activation gate.

A real server process on the embedded store: a bad edit is refused and
logged with its ``file:line:col`` and the old version keeps serving; a good
edit is served.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import uuid
from pathlib import Path

import grpc

from arbiter.v1 import decision_pb2, decision_pb2_grpc

_HERE = Path(__file__).resolve().parent
for _path in (str(_HERE.parent), str(_HERE)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from server_procs import SERVICE_CHANNEL, SERVICE_PLACEMENT, ServerProcess, write_test_policies  # noqa: E402

BROKEN = "actions:\n  - id: broken\n    channel: nowhere\n"


def _version(server: ServerProcess) -> str:
    with grpc.insecure_channel(server.address) as channel:
        reply = decision_pb2_grpc.DecisionServiceStub(channel).Decide(
            decision_pb2.DecideRequest(
                request_id=uuid.uuid4().hex,
                customer_id="reload-1",
                placement=SERVICE_PLACEMENT,
                channels=[SERVICE_CHANNEL],
                dry_run=True,
            ),
            timeout=5,
        )
    return str(reply.policy_version)


def _until(predicate: object, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "not within the timeout"
        time.sleep(0.05)


def _edit_and_reload(tmp_path: Path, *, watch: bool) -> None:
    policies = write_test_policies(tmp_path)
    logs = tmp_path / "logs"
    logs.mkdir()
    server = ServerProcess(policies, logs, extra_args=("--watch",) if watch else ()).start()
    try:
        first = _version(server)
        (policies / "broken.yaml").write_text(BROKEN)
        if not watch:
            os.kill(server.pid, signal.SIGHUP)
        _until(lambda: "refused" in server.log_path.read_text())
        log = server.log_path.read_text()
        assert "broken.yaml:3:" in log  # every error, located
        assert _version(server) == first  # the old version keeps serving

        (policies / "broken.yaml").unlink()
        (policies / "extra.yaml").write_text("# a new comment changes the digest\n")
        if not watch:
            os.kill(server.pid, signal.SIGHUP)
        _until(lambda: _version(server) != first)
        assert server.proc is not None and server.proc.poll() is None
    finally:
        server.stop()


def test_sighup_reloads_the_policy_directory_through_the_gate(tmp_path: Path) -> None:
    _edit_and_reload(tmp_path, watch=False)


def test_watch_reloads_the_policy_directory_through_the_gate(tmp_path: Path) -> None:
    _edit_and_reload(tmp_path, watch=True)
