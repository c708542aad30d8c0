"""``arbiter serve --workers N``: N serving processes on the same ports, and a supervisor that keeps them.

One Python process serves at most about one core (the GIL), so the way to
use a machine is more processes. The supervisor (this module, the process
``arbiter serve`` starts as) never creates a gRPC object, a Redis client or
a metric: it forks the workers first, each of which then builds its own
server exactly as a single-process ``arbiter serve`` does (gRPC's rule: no
gRPC object may exist across a fork).

- **Ports.** Every worker binds the gRPC and HTTP ports with
  ``SO_REUSEPORT``; the kernel spreads new connections across them. The
  supervisor first checks that each port is free (a second ``arbiter serve``
  on a busy port fails loudly) and keeps it reserved with a bound,
  never-listening socket; port 0 is resolved to a concrete free port once.
- **Metrics.** ``prometheus_client`` multiprocess mode: every worker writes
  its samples to files in one private directory; worker 0 serves
  ``/metrics`` (with the guard and TLS like any worker) and sums all of
  them, including those of workers that have died and been replaced.
- **Supervision.** A worker that dies is restarted (after 1 s if it had
  run for less than 10 s), as long as its slot served once. A worker that
  exits before it ever served (a policy set that does not compile, a port
  taken, a store that refuses to serve) stops them all, and its exit code
  is the supervisor's.
- **Signals.** SIGTERM / SIGINT go to every worker (graceful stop; a second
  one stops them at once); SIGHUP too (certificates and credentials are
  reloaded in every worker; file changes are noticed by each on its own).
  Workers get SIGTERM when the supervisor dies (``PR_SET_PDEATHSIG``).
- **State.** Only with Redis: the embedded store would hold one customer's
  caps, consent and idempotency records in N places
  (:func:`arbiter.server.config.settings_from_args` refuses it).
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import logging
import os
import select
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Final

from arbiter.server.config import Settings

__all__ = ["MULTIPROC_ENV", "Supervisor", "run_workers"]

_log = logging.getLogger("arbiter.server")

MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
_RESTART_PAUSE_S: Final = 1.0
_FAST_RESTART_S: Final = 10.0
_POLL_S: Final = 0.05
_PR_SET_PDEATHSIG: Final = 1

# Runs one worker to completion (its exit code); calls ``on_ready()`` once it serves.
ServeOne = Callable[[Settings, Callable[[], None]], int]


def _reserve(address: str, what: str) -> tuple[str, socket.socket]:
    """Check that ``HOST:PORT`` is free, resolve port 0, and hold it with a ``SO_REUSEPORT``
    socket that never listens (the workers' sockets join it); ``OSError`` if taken."""
    host, _, port = address.rpartition(":")
    bare = host.strip("[]") or "0.0.0.0"
    family, kind, proto, _, sockaddr = socket.getaddrinfo(bare, int(port), type=socket.SOCK_STREAM)[
        0
    ]
    with socket.socket(family, kind, proto) as probe:  # without SO_REUSEPORT: fails if held
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(sockaddr)
        except OSError as exc:
            raise OSError(f"cannot listen on {address} ({what}): {exc}") from exc
        resolved = int(probe.getsockname()[1])
    holder = socket.socket(family, kind, proto)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        holder.bind((sockaddr[0], resolved, *sockaddr[2:]))
    except OSError as exc:
        holder.close()
        raise OSError(f"cannot listen on {address} ({what}): {exc}") from exc
    return f"{host}:{resolved}", holder


@dataclass(slots=True)
class _Slot:
    """One worker position: its current process, whether it was ever ready, its last start."""

    index: int
    pid: int = 0
    ready: bool = False
    served: bool = False  # this slot's worker was ready at least once
    started: float = 0.0
    restart_at: float = 0.0


class Supervisor:
    """Forks and keeps ``settings.workers`` worker processes (see the module docstring);
    ``serve_one`` (default: :func:`arbiter.server.app.run`) is what each worker runs."""

    def __init__(self, settings: Settings, serve_one: ServeOne | None = None) -> None:
        self.settings = settings
        self._serve_one = serve_one or _serve_one
        self._slots = [_Slot(i) for i in range(settings.workers)]
        self._holders: list[socket.socket] = []
        self._stopping = 0  # signals received
        self._ready_r, self._ready_w = -1, -1
        self._metrics_dir = ""
        self.exit_code = 0

    def run(self) -> int:
        """Supervise until every worker has stopped; the exit code."""
        try:
            self._prepare()
        except OSError as exc:
            _log.error("%s", exc)
            return 2
        previous = {
            sig: signal.signal(sig, self._on_signal)
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        }
        try:
            for slot in self._slots:
                self._spawn(slot)
            _log.info(
                "%d workers serving %s (SO_REUSEPORT)", len(self._slots), self.settings.listen
            )
            self._loop()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._cleanup()
        return self.exit_code

    # ------------------------------------------------------------------ set-up

    def _prepare(self) -> None:
        listen, holder = _reserve(self.settings.listen, "gRPC")
        self._holders.append(holder)
        http = self.settings.http_listen
        if http:
            http, holder = _reserve(http, "HTTP")
            self._holders.append(holder)
        self.settings = dataclasses.replace(self.settings, listen=listen, http_listen=http)
        self._metrics_dir = tempfile.mkdtemp(prefix="arbiter-metrics-")
        os.environ[MULTIPROC_ENV] = self._metrics_dir  # inherited by every worker
        self._ready_r, self._ready_w = os.pipe()
        os.set_blocking(self._ready_r, False)

    def _worker_settings(self, index: int) -> Settings:
        if index == 0:
            return self.settings
        return dataclasses.replace(self.settings, metrics_port=0, metrics_listen="")

    def _spawn(self, slot: _Slot) -> None:
        slot.started = time.monotonic()
        slot.ready = False
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                code = self._become_worker(slot.index)
            finally:
                os._exit(code)
        slot.pid = pid

    def _become_worker(self, index: int) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        for holder in self._holders:
            holder.close()
        os.close(self._ready_r)
        ready_w = self._ready_w
        from arbiter.server.metrics import count_across_processes

        count_across_processes()

        def on_ready() -> None:
            os.write(ready_w, bytes([index]))

        return self._serve_one(self._worker_settings(index), on_ready)

    # ------------------------------------------------------------------ the loop

    def _on_signal(self, sig: int, _frame: FrameType | None) -> None:
        if sig == signal.SIGHUP:
            self._forward(signal.SIGHUP)
            return
        self._stopping += 1
        self._forward(signal.SIGTERM)

    def _forward(self, sig: int) -> None:
        for slot in self._slots:
            if slot.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(slot.pid, sig)

    def _loop(self) -> None:
        while any(slot.pid for slot in self._slots) or self._pending_restarts():
            self._read_ready()
            self._reap()
            now = time.monotonic()
            for slot in self._slots:
                if not slot.pid and slot.restart_at and now >= slot.restart_at:
                    slot.restart_at = 0.0
                    if not self._stopping:
                        self._spawn(slot)
            self._wait(_POLL_S)

    def _wait(self, timeout_s: float) -> None:
        """Sleep until a worker reports ready or ``timeout_s`` passes (a signal ends it too).
        ``poll``, not ``time.sleep``: the latter fails under libfaketime, which tests use."""
        poller = select.poll()
        poller.register(self._ready_r, select.POLLIN)
        with contextlib.suppress(InterruptedError):
            poller.poll(timeout_s * 1000)

    def _pending_restarts(self) -> bool:
        return not self._stopping and any(slot.restart_at for slot in self._slots)

    def _read_ready(self) -> None:
        with contextlib.suppress(BlockingIOError):
            for index in os.read(self._ready_r, 256):
                if index < len(self._slots):
                    self._slots[index].ready = self._slots[index].served = True

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            slot = next((s for s in self._slots if s.pid == pid), None)
            if slot is not None:
                self._read_ready()  # a worker may have become ready just before it died
                self._exited(slot, os.waitstatus_to_exitcode(status))

    def _exited(self, slot: _Slot, code: int) -> None:
        _mark_dead(slot.pid)
        slot.pid = 0
        if self._stopping:
            self.exit_code = max(self.exit_code, code if code > 0 else 0)
            return
        if not slot.served:  # it never started: a policy set, a port, the store; the same for all
            _log.error("worker %d exited with %d before serving; stopping", slot.index, code)
            self.exit_code = code if code > 0 else 1
            self._stopping += 1
            self._forward(signal.SIGTERM)
            return
        quick = time.monotonic() - slot.started < _FAST_RESTART_S
        pause = _RESTART_PAUSE_S if quick else 0.0
        _log.error("worker %d exited with %d; restarting in %.0f s", slot.index, code, pause)
        slot.restart_at = time.monotonic() + pause

    def _cleanup(self) -> None:
        for holder in self._holders:
            holder.close()
        for fd in (self._ready_r, self._ready_w):
            if fd >= 0:
                os.close(fd)
        if self._metrics_dir:
            shutil.rmtree(self._metrics_dir, ignore_errors=True)
            os.environ.pop(MULTIPROC_ENV, None)


def _mark_dead(pid: int) -> None:
    """Drop a dead worker's live gauges (its counters and histograms keep counting in the sum)."""
    from prometheus_client import multiprocess

    with contextlib.suppress(OSError):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def _serve_one(settings: Settings, on_ready: Callable[[], None]) -> int:
    from arbiter.server.app import run

    return run(settings, on_ready)


def run_workers(settings: Settings, serve_one: ServeOne | None = None) -> int:
    """Run ``settings.workers`` workers under a :class:`Supervisor`; the exit code."""
    return Supervisor(settings, serve_one).run()
