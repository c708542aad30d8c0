"""Real ``arbiter serve`` processes for server-level Redis tests and benchmarks.

Used by ``tests/integration/test_server_redis.py`` and
``benchmarks/decide_bench.py``. Import it the way ``tests/redis_support.py``
is imported: put this directory on ``sys.path`` and ``import server_procs``.

- :func:`write_test_policies` copies ``examples/policies`` and adds a
  transactional in-app surface with one always-on action capped at
  ``limit`` per ``window`` (24 h by default; no consent purpose, not held out), plus an optional
  consent default that allows unset ``personalization`` in every region
  (so fresh customers without a profile see the consent-gated banner).
- :class:`ServerProcess` runs ``python -m server.cli serve`` on a free
  127.0.0.1 port (and its HTTP listener on another), logs to a file, waits
  for health ``SERVING`` and stops with SIGTERM (SIGKILL after a grace
  period). On Redis it first runs ``arbiter state init`` (a new
  deployment), unless told not to.
- :func:`state_init` runs ``arbiter state init`` (also what an operator
  does after a loss).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Final

import grpc
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

__all__ = [
    "EXAMPLES",
    "FAKETIME_LIB",
    "ROOT",
    "SERVICE_ACTION",
    "SERVICE_CHANNEL",
    "SERVICE_PLACEMENT",
    "ServerProcess",
    "free_port",
    "health_status",
    "state_init",
    "write_test_policies",
]

ROOT: Final = Path(__file__).resolve().parents[2]
EXAMPLES: Final = ROOT / "examples" / "policies"
HOST: Final = "127.0.0.1"

# libfaketime (Debian package `faketime`): runs a server with its clock shifted.
FAKETIME_LIB: Final = next(
    (str(p) for p in Path("/usr/lib").glob("*/faketime/libfaketimeMT.so.1") if p.exists()),
    "",
)

SERVICE_CHANNEL: Final = "service_in_app"
SERVICE_PLACEMENT: Final = "service_slot"
SERVICE_ACTION: Final = "service_notice"

_SERVICE_YAML: Final = f"""\
# Added by tests/integration/server_procs.py: a transactional in-app surface
# (no consent purpose, no control group) whose one always-on action is capped.
channels:
  - id: {SERVICE_CHANNEL}
    description: Service messages rendered in-app (transactional).
    transactional: true
    placements: [{SERVICE_PLACEMENT}]

actions:
  - id: {SERVICE_ACTION}
    always_on: true
    channel: {SERVICE_CHANNEL}
    placements: [{SERVICE_PLACEMENT}]
    priority: 50
    value: 0.0
    caps:
      - {{id: service_notice_daily, limit: __LIMIT__, window: __WINDOW__, include_transactional: true}}
    payload: {{title: Your box ships tomorrow}}
"""


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def write_test_policies(
    directory: Path,
    *,
    limit: int = 3,
    window: str = "24h",
    allow_unset_personalization: bool = False,
) -> Path:
    """``examples/policies`` plus the capped service action (``limit`` per ``window``),
    written to ``directory``/policies."""
    target = directory / "policies"
    shutil.copytree(EXAMPLES, target, ignore=shutil.ignore_patterns("tests"))
    service = _SERVICE_YAML.replace("__LIMIT__", str(limit)).replace("__WINDOW__", window)
    (target / "service.yaml").write_text(service)
    if allow_unset_personalization:
        path = target / "consent.yaml"
        doc: dict[str, Any] = yaml.safe_load(path.read_text())
        doc["consent"]["defaults"].append(
            {"regions": ["*"], "purposes": ["personalization"], "unset": "allow"}
        )
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return target


def state_init(redis_url: str, timeout_s: float = 30.0) -> str:
    """``arbiter state init --redis-url URL``; its output. Raises if it fails."""
    env = {**os.environ}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    out = subprocess.run(
        [sys.executable, "-m", "arbiter.server.cli", "state", "init", "--redis-url", redis_url],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"arbiter state init failed: {out.stdout}{out.stderr}")
    return out.stdout


def health_status(
    address: str,
    service: str = "",
    timeout_s: float = 1.0,
    credentials: grpc.ChannelCredentials | None = None,
) -> int:
    """The grpc.health.v1 status of ``address`` (``-1`` when it does not answer); TLS with ``credentials``."""
    try:
        channel = (
            grpc.secure_channel(address, credentials)
            if credentials is not None
            else grpc.insecure_channel(address)
        )
        with channel:
            stub = health_pb2_grpc.HealthStub(channel)
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout_s)
            return int(reply.status)
    except grpc.RpcError:
        return -1


class ServerProcess:
    """One ``arbiter serve`` subprocess on a free 127.0.0.1 port (``redis_url=""``: MemoryStore).

    ``channel_credentials`` are used for the health probe of a TLS server.

    ``argv`` replaces the command (after the interpreter) for custom launchers;
    ``{port}`` in it is substituted.
    """

    def __init__(
        self,
        policies: Path,
        log_dir: Path,
        *,
        redis_url: str = "",
        name: str = "arbiter",
        extra_args: tuple[str, ...] = (),
        argv: tuple[str, ...] | None = None,
        env: dict[str, str] | None = None,
        channel_credentials: grpc.ChannelCredentials | None = None,
        init_state: bool = True,
        clock_offset: str = "",
    ) -> None:
        self.policies = policies
        self.channel_credentials = channel_credentials
        self.port = free_port()
        self.http_port = free_port()
        self.redis_url = redis_url
        self.log_path = log_dir / f"{name}-{self.port}.log"
        self.extra_args = extra_args
        self.argv = argv
        self.env = env
        self.init_state = init_state
        if clock_offset:  # e.g. "+10m": this server's wall clock runs 10 minutes ahead
            if not FAKETIME_LIB:
                raise RuntimeError("libfaketime is not installed (apt-get install faketime)")
            self.env = {
                **(env or {}),
                "LD_PRELOAD": FAKETIME_LIB,
                "FAKETIME": clock_offset,
                "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            }
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def http_url(self) -> str:
        """The HTTP listener (Connect, gRPC-Web): ``http://127.0.0.1:PORT``."""
        return f"http://{HOST}:{self.http_port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, *, wait_s: float = 30.0) -> ServerProcess:
        if self.redis_url and self.init_state:
            state_init(self.redis_url)
        if self.argv is not None:
            args = [
                sys.executable,
                *(
                    a.replace("{port}", str(self.port)).replace("{http_port}", str(self.http_port))
                    for a in self.argv
                ),
            ]
        else:
            args = [
                sys.executable,
                "-m",
                "arbiter.server.cli",
                "serve",
                "--policies",
                str(self.policies),
                "--listen",
                self.address,
                "--http-listen",
                f"{HOST}:{self.http_port}",
                "--log-level",
                "warning",
                "--grace-period",
                "2s",
            ]
            if self.redis_url:
                args += ["--redis-url", self.redis_url]
            args += list(self.extra_args)
        env = {**os.environ, **(self.env or {})}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                args,
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self.wait_serving(wait_s)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_serving(self, wait_s: float) -> None:
        deadline = time.monotonic() + wait_s
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"arbiter serve exited with {self.proc.returncode}: {self.log_tail()}"
                )
            status = health_status(self.address, credentials=self.channel_credentials)
            if status == health_pb2.HealthCheckResponse.SERVING:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"arbiter serve never became SERVING: {self.log_tail()}")
            time.sleep(0.05)

    def log_tail(self, chars: int = 3000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-chars:]
        return ""

    def cpu_seconds(self) -> float:
        """User + system CPU seconds the process has used so far (Linux ``/proc``)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def stop(self, grace_s: float = 5.0) -> int | None:
        """SIGTERM, then SIGKILL after ``grace_s``; returns the exit code."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        return proc.returncode
