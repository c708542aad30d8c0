"""Private Redis servers for tests: one node or a 3-master Redis Cluster, on free 127.0.0.1 ports.

Nothing here ever talks to a Redis the tests did not start, except the one
``REDIS_URL`` / ``REDIS_CLUSTER_URL`` name explicitly (then tests isolate
themselves by key prefix and never flush). Servers run from the
``redis-server`` binary on the PATH, in a temporary directory, without
persistence, and are killed (and the directory removed) when the session
ends -- also on interpreter exit, so an aborted run leaves nothing behind.

With ``tests/`` on ``sys.path``: import the session fixtures
(``redis_url``, ``redis_cluster_url``) into a test module, call
:func:`shared_redis_url` / :func:`shared_redis_cluster_url` with the pytest
config (store factories do), or use the classes directly for tests that
stop, freeze or restart a server of their own (:class:`RedisServer`).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

__all__ = [
    "RedisClusterServers",
    "RedisServer",
    "free_port",
    "redis_cluster_url",
    "redis_url",
    "shared_redis_cluster_url",
    "shared_redis_url",
]

HOST = "127.0.0.1"
_LIVE: list[RedisServer | RedisClusterServers] = []


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"`{name}` is not on the PATH")
    return path


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port(*, cluster_bus: bool = False) -> int:
    """A free TCP port on 127.0.0.1 (with ``cluster_bus``: ``port + 10000`` is free too)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((HOST, 0))
            port = int(s.getsockname()[1])
        if not cluster_bus:
            return port
        if port + 10000 < 65536 and _port_free(port + 10000):
            return port
    raise RuntimeError("no free port pair found")


def _ping(port: int, timeout: float = 0.2) -> bytes:
    """A raw RESP ``PING`` (no client library, so a frozen server simply times out)."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(b"*1\r\n$4\r\nPING\r\n")
        return s.recv(64)


def _command(port: int, *args: str, timeout: float = 2.0) -> str:
    out = subprocess.run(
        [_binary("redis-cli"), "-h", HOST, "-p", str(port), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return out.stdout


class RedisServer:
    """One private ``redis-server`` process: start, stop, freeze (SIGSTOP), thaw, kill, restart."""

    def __init__(
        self,
        port: int | None = None,
        *,
        cluster: bool = False,
        args: tuple[str, ...] = (),
        node_timeout_ms: int = 5000,
    ) -> None:
        self.cluster = cluster
        self.extra_args = args  # more redis-server options, e.g. ("--enable-debug-command", "yes")
        self.node_timeout_ms = node_timeout_ms
        self.port = port if port is not None else free_port(cluster_bus=cluster)
        self.dir = Path(tempfile.mkdtemp(prefix=f"arbiter-redis-{self.port}-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}"

    def start(self, *, wait_s: float = 10.0) -> RedisServer:
        args = [
            _binary("redis-server"),
            "--port",
            str(self.port),
            "--bind",
            HOST,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.dir),
            "--logfile",
            str(self.dir / "redis.log"),
            "--daemonize",
            "no",
        ]
        if self.cluster:
            args += [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                str(self.dir / "nodes.conf"),
                "--cluster-node-timeout",
                str(self.node_timeout_ms),
            ]
        args += list(self.extra_args)
        self.proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited: {self._log_tail()}")
            with contextlib.suppress(OSError):
                if _ping(self.port).startswith(b"+PONG"):
                    if self not in _LIVE:
                        _LIVE.append(self)
                    return self
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"redis-server on port {self.port} did not answer PING")

    def _log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return (self.dir / "redis.log").read_text()[-2000:]
        return ""

    def freeze(self) -> None:
        """SIGSTOP: the port still accepts TCP connections, nothing is answered."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL the process (thawing it first, so it dies at once); the directory is kept."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
        proc.wait(timeout=10)

    def restart(self) -> RedisServer:
        """Start again on the same port (empty: no persistence)."""
        self.kill()
        return self.start()

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)
        if self in _LIVE:
            _LIVE.remove(self)


class RedisClusterServers:
    """A real local Redis Cluster: ``masters`` masters with ``replicas`` replicas each, all 16384
    slots covered; ``node_timeout_ms`` is how long a silent master takes to be failed over."""

    def __init__(self, masters: int = 3, *, replicas: int = 0, node_timeout_ms: int = 5000) -> None:
        self.replicas = replicas
        self.nodes = [
            RedisServer(cluster=True, node_timeout_ms=node_timeout_ms)
            for _ in range(masters * (1 + replicas))
        ]

    @property
    def url(self) -> str:
        return f"redis+cluster://{HOST}:{self.nodes[0].port}"

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        return [(HOST, n.port) for n in self.nodes]

    def start(self, *, wait_s: float = 30.0) -> RedisClusterServers:
        _LIVE.append(self)
        try:
            for node in self.nodes:
                node.start()
            out = subprocess.run(
                [
                    _binary("redis-cli"),
                    "--cluster",
                    "create",
                    *(f"{HOST}:{n.port}" for n in self.nodes),
                    "--cluster-replicas",
                    str(self.replicas),
                    "--cluster-yes",
                ],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            if out.returncode != 0:
                raise RuntimeError(f"redis-cli --cluster create failed: {out.stdout}{out.stderr}")
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline:
                if all(
                    "cluster_state:ok" in _command(n.port, "CLUSTER", "INFO") for n in self.nodes
                ):
                    return self
                time.sleep(0.1)
            raise RuntimeError("the cluster did not reach cluster_state:ok")
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        for node in self.nodes:
            node.close()
        if self in _LIVE:
            _LIVE.remove(self)


@atexit.register
def _cleanup() -> None:
    for item in list(_LIVE):
        item.close()


_SHARED: dict[str, str] = {}


def shared_redis_url(config: pytest.Config) -> str:
    """The session's single-node Redis: ``REDIS_URL`` when set, else a private server
    started on first use and closed when the session ends (``config.add_cleanup``)."""
    return _shared(config, "single", "REDIS_URL", lambda: RedisServer().start())


def shared_redis_cluster_url(config: pytest.Config) -> str:
    """The session's 3-master Redis Cluster: ``REDIS_CLUSTER_URL`` when set, else a private one."""
    return _shared(config, "cluster", "REDIS_CLUSTER_URL", lambda: RedisClusterServers().start())


def _shared(
    config: pytest.Config,
    name: str,
    env: str,
    start: Callable[[], RedisServer | RedisClusterServers],
) -> str:
    if name in _SHARED:
        return _SHARED[name]
    url = os.environ.get(env)
    if not url:
        server = start()
        url = server.url

        def stop() -> None:
            server.close()
            _SHARED.pop(name, None)

        config.add_cleanup(stop)
    _SHARED[name] = url
    return url


@pytest.fixture(scope="session")
def redis_url(pytestconfig: pytest.Config) -> str:
    """A single-node Redis URL for the session (see :func:`shared_redis_url`)."""
    return shared_redis_url(pytestconfig)


@pytest.fixture(scope="session")
def redis_cluster_url(pytestconfig: pytest.Config) -> str:
    """A ``redis+cluster://`` URL for the session (see :func:`shared_redis_cluster_url`)."""
    return shared_redis_cluster_url(pytestconfig)
