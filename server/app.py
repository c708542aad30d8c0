"""Server wiring: the grpc.aio server and the HTTP (Connect / gRPC-Web) listener with DecisionService, health, reflection, metrics and graceful shutdown.

Lifecycle of :class:`ArbiterServer`:

1. :meth:`~ArbiterServer.start` checks the store's deployment (a Redis
   whose ``maxmemory-policy`` evicts keys is refused: ``StoreMisconfigured``,
   unless ``--redis-allow-eviction``; a Redis that does not answer yet is
   checked again before health first turns ``SERVING``), binds the port and
   starts serving with the
   health service at ``NOT_SERVING`` (load balancers and the Docker health
   check keep traffic away), then watches readiness. With ``http_listen``
   set, the HTTP listener (:mod:`arbiter.server.http_server`) starts in the
   same event loop, on the same :class:`~arbiter.server.service.DecisionCore`.
2. :meth:`~ArbiterServer.load_policy` compiles the policy set off the event
   loop and publishes it (:mod:`arbiter.server.registry`).
3. Health turns ``SERVING`` once a policy is active **and** the store
   answers ``ping`` (for Redis: every master takes writes and holds its
   state epoch); it is re-checked every ``readiness_interval_s`` and drops
   back to ``NOT_SERVING`` while the store cannot serve, logging why.
Every call passes the guard first (:mod:`arbiter.server.security`): TLS
(mutual with a client CA) on the gRPC port and ``/metrics``, caller
identity, roles. Certificates, JWKS and API key files are reloaded on
``SIGHUP`` or when they change, without a restart. ``AdminService`` is
registered so that its callers are authenticated and authorised like every
other (:mod:`arbiter.server.admin_service`).

With ``--state-file`` (embedded store only) :meth:`~ArbiterServer.start`
first reads the state file (:mod:`arbiter.state.state_file`; a file that
cannot be used stops the start with ``StateFileError``), then writes it
every ``--state-file-interval``; :meth:`~ArbiterServer.stop` writes it a
last time after in-flight calls finished.

4. :meth:`~ArbiterServer.stop` (SIGTERM / SIGINT in :func:`serve`) sets
   health to ``NOT_SERVING``, keeps serving for ``--drain-delay`` (default
   0: a balancer that probes health over a connection sees ``NOT_SERVING``
   and stops sending, instead of finding the port closed and the calls it
   had just sent refused), then stops accepting calls on both ports, gives
   in-flight calls the grace period to finish, then closes the store. A second signal
   during the grace period stops at once.

:func:`run` is the process entry: it runs :func:`serve` on uvloop.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import threading
from collections.abc import Callable
from typing import Any, Final

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from arbiter.policies import PolicyError
from arbiter.server.admin_service import AdminService
from arbiter.server.config import Settings, exposure_problems
from arbiter.server.decision_log import DecisionLog
from arbiter.server.decision_service import DecisionService
from arbiter.server.governance import GateRefused, Governance, bundle_files
from arbiter.server.http_server import HttpListener, build_app
from arbiter.server.metrics import METRICS
from arbiter.server.metrics_http import MetricsServer
from arbiter.server.parse import MAX_REQUEST_BYTES
from arbiter.server.registry import PolicyRegistry
from arbiter.server.rpc_metrics import RpcInterceptor, RpcObserver
from arbiter.server.security.credentials import CredentialsError, build_authenticator
from arbiter.server.security.grpc_guard import GuardInterceptor
from arbiter.server.security.guard import Guard
from arbiter.server.security.reload import Reloader
from arbiter.server.security.tls import ServerCertificates, TlsError
from arbiter.server.service import DecisionCore
from arbiter.server.store_metrics import CircuitSampler, metered
from arbiter.server.tracing import tracing_from_endpoint
from arbiter.server.volume_guard import FleetPause, VolumeGuards
from arbiter.state import (
    MemoryGovernanceStore,
    MemoryStore,
    StateFile,
    StateFileError,
    Store,
    StoreMisconfigured,
    StoreUnavailable,
    open_governance_store,
    open_sink,
    open_store,
    open_volume_counter,
)
from arbiter.v1 import admin_pb2, admin_pb2_grpc, decision_pb2, decision_pb2_grpc

__all__ = ["DECISION_SERVICE", "ArbiterServer", "make_store", "run", "serve"]

_log = logging.getLogger("arbiter.server")

DECISION_SERVICE: Final[str] = decision_pb2.DESCRIPTOR.services_by_name["DecisionService"].full_name
ADMIN_SERVICE: Final[str] = admin_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name
_SERVING: Final = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING: Final = health_pb2.HealthCheckResponse.NOT_SERVING

_SERVER_OPTIONS: Final = (
    # The request size limit (arbiter.server.parse.MAX_REQUEST_BYTES; Connect's is the same).
    ("grpc.max_receive_message_length", MAX_REQUEST_BYTES),
    # Clients keep channels open for the process lifetime; let idle ones be.
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
)


def grpc_server_options(settings: Settings, *, shared: bool) -> tuple[tuple[str, int], ...]:
    """The grpc.aio server's channel arguments.

    Calls the event loop has not taken yet wait in gRPC's core, where admission control
    (``server/admission.py``) cannot see them. Past ``max_pending_calls / 3`` of them the
    core refuses some new calls at once (random early drop) and past ``max_pending_calls``
    all, before any Python work. The default, 3,000, is gRPC's own (1,000 / 3,000): a lower
    limit refuses load fast, but gRPC (1.85) ends those calls ``CANCELLED`` -- which the
    clients retry -- and it also cuts a burst that admission control would have queued
    within its deadlines (a 1,000-call burst across two servers failed at 64; measured in
    docs/performance.md). ``grpc.aio``'s ``maximum_concurrent_rpcs`` is not used: it stops
    taking calls from the core, so they wait there until their deadline, unrefused.
    """
    return (
        *_SERVER_OPTIONS,
        ("grpc.so_reuseport", int(shared)),
        ("grpc.server.max_pending_requests", max(1, settings.max_pending_calls // 3)),
        ("grpc.server.max_pending_requests_hard_limit", settings.max_pending_calls),
    )


def make_store(settings: Settings) -> Store:
    """The store the settings ask for: embedded ``MemoryStore``, or Redis when a URL is given."""
    return open_store(settings.redis_url, default_timeout_s=settings.store_timeout_s)


def make_state_file(settings: Settings, store: Store) -> StateFile | None:
    """The embedded store's state file when ``--state-file`` is set (``None``: off).

    Other components persist with the store by registering a section on the
    returned :class:`StateFile` (``add_section(name, dump, load)``) before
    :meth:`ArbiterServer.start` reads the file: operator pauses and policy
    versions belong there on the embedded store."""
    if not settings.state_file:
        return None
    if not isinstance(store, MemoryStore):
        raise ValueError("--state-file needs the embedded store (not --redis-url)")
    return StateFile(settings.state_file, store, interval_s=settings.state_file_interval_s)


def make_decision_log(settings: Settings) -> DecisionLog | None:
    """The decision log the settings ask for (``None``: off). ``OSError`` when the file sink or
    the personal-data key file cannot be opened."""
    if not settings.decision_log:
        return None
    key = None
    if settings.decision_log_pii_key:
        with open(settings.decision_log_pii_key, "rb") as handle:
            key = handle.read().strip()
        if not key:
            raise OSError(f"decision log key file {settings.decision_log_pii_key} is empty")
    sink = open_sink(
        settings.decision_log,
        redis_url=settings.redis_url,
        max_bytes=settings.decision_log_max_bytes,
        stream_maxlen=settings.decision_log_max_entries,
    )
    return DecisionLog(
        sink,
        sample_rate=settings.decision_log_sample,
        buffer=settings.decision_log_buffer,
        pii_key=key,
    )


class ArbiterServer:
    """One gRPC server process' worth of Arbiter (see the module docstring).

    Raises :class:`TlsError` / :class:`CredentialsError` when certificates or
    credential files cannot be loaded.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        store: Store | None = None,
        registry: PolicyRegistry | None = None,
        readiness_interval_s: float = 1.0,
    ) -> None:
        self.settings = settings
        self.store: Store = store if store is not None else make_store(settings)
        self.registry = registry if registry is not None else PolicyRegistry()
        # The transport-neutral service; the gRPC servicer and the HTTP listener adapt it.
        self.core = DecisionCore(
            self.registry,
            metered(self.store),
            idempotency_ttl_s=settings.idempotency_ttl_s,
            store_timeout_s=settings.store_timeout_s,
            max_concurrent_calls=settings.max_concurrent_calls,
        )
        self.decisions = make_decision_log(settings)
        self.core.decision_log = self.decisions
        # Fleet-wide grant counts of the policy's volume guards: in Redis when the server
        # runs on Redis, else in this process (idle when the policy declares none).
        self.volume_guards = VolumeGuards(open_volume_counter(settings.redis_url))
        self.core.volume_guards = self.volume_guards
        # OpenTelemetry spans of Decide, only with --otlp-endpoint (ImportError without the SDK).
        self.core.spans, self._tracer_provider = tracing_from_endpoint(settings.otlp_endpoint)
        self.observer = RpcObserver(access_log=settings.access_log)
        self._circuit = CircuitSampler()
        self._policy_labels: tuple[str, str, str] | None = None
        self.service = DecisionService(self.core)
        # Hook: state that must survive a restart with the store (operator pauses, policy
        # versions) registers here, before start() reads the file:
        # ``self.state_file.add_section(name, dump, load)`` when state_file is not None.
        self.state_file = make_state_file(settings, self.store)
        # Policy versions and kill switches, shared by every replica on Redis (server/governance.py).
        self.governance = Governance(
            self.registry,
            open_governance_store(settings.redis_url),
            history=settings.policy_history,
        )
        self.volume_guards.pauses = FleetPause(self.governance)  # trips use the kill switch
        if self.state_file is not None and isinstance(
            self.governance.store, MemoryGovernanceStore
        ):  # the embedded fleet's versions and pauses survive a restart with its customers
            self.state_file.add_section(
                "governance", self.governance.store.dump, self.governance.store.restore
            )
            self.governance.on_change = self.state_file.save_soon  # written soon, not in 30 s
        self._policy_reload: asyncio.Task[None] | None = None
        self._policy_watcher: asyncio.Task[None] | None = None
        self.admin = AdminService(
            self.decisions,
            store=self.core.store,
            registry=self.registry,
            on_forget=self.state_file.save_soon if self.state_file is not None else None,
            governance=self.governance,
        )
        self.health = health.aio.HealthServicer()
        self.certificates = ServerCertificates(settings.tls) if settings.tls else None
        self.authenticator = build_authenticator(settings.auth)
        self.guard = Guard(self.authenticator, self._action_placements)
        self.reloader = Reloader()
        if self.certificates is not None:
            self.reloader.add(settings.tls.paths if settings.tls else (), self.certificates.reload)
        self.reloader.add(self.authenticator.files, self.authenticator.reload)
        self.readiness_interval_s = readiness_interval_s
        self.port = 0
        self._server: Any = None
        self._listeners_pending = False  # --workers: listen once the policy is loaded
        self._ready = asyncio.Event()
        self._readiness: asyncio.Task[None] | None = None
        self._stopping = False
        self._metrics_server: MetricsServer | None = None
        self._deployment_checked = not settings.redis_url
        self._not_ready_detail = ""
        self._watch_stop = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None
        self._state_writer: asyncio.Task[None] | None = None
        self.http: HttpListener | None = None

    @property
    def address(self) -> str:
        host = self.settings.listen.rpartition(":")[0]
        return f"{host}:{self.port}"

    async def start(self) -> None:
        """Bind and start serving (health ``NOT_SERVING`` until ready). ``OSError`` if the port is taken,
        ``StoreMisconfigured`` if the store could lose state silently (see the module docstring),
        ``StateFileError`` if the state file cannot be read (nothing is served then)."""
        if self.state_file is not None:
            await self._restore_state()
        try:
            await self._check_deployment()
        except StoreUnavailable as exc:
            _log.warning(
                "cannot check the store's deployment yet (%s); checking when it answers", exc
            )
        # One process per port unless it is one of --workers N (server/workers.py, which
        # checked that the port was free): a second server on a busy port fails loudly.
        shared = self.settings.workers > 1
        server = grpc.aio.server(
            # Outermost first: every call is timed and counted, refused ones included.
            interceptors=(RpcInterceptor(self.observer), GuardInterceptor(self.guard)),
            options=grpc_server_options(self.settings, shared=shared),
        )
        decision_pb2_grpc.add_DecisionServiceServicer_to_server(self.service, server)
        admin_pb2_grpc.add_AdminServiceServicer_to_server(self.admin, server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            (DECISION_SERVICE, ADMIN_SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
        try:
            if self.certificates is not None:
                port = server.add_secure_port(
                    self.settings.listen, self.certificates.grpc_credentials()
                )
            else:
                port = server.add_insecure_port(self.settings.listen)
        except RuntimeError as exc:
            raise OSError(f"cannot listen on {self.settings.listen}: {exc}") from exc
        if port == 0:
            raise OSError(f"cannot listen on {self.settings.listen}")
        self.port = int(port)
        self.governance.replica = f"{self.governance.replica}:{self.port}"
        self._server = server
        await self._set_health(_NOT_SERVING)
        if self.settings.http_listen:
            self.http = HttpListener(
                build_app(
                    self.core, self.settings.cors_origins, self.guard, self.admin, self.observer
                ),
                self.settings.http_listen,
                grace_period_s=self.settings.grace_period_s,
                log_level=logging.getLogger("arbiter").getEffectiveLevel(),
                certificates=self.certificates,
                reuse_port=shared,
            )
        if shared:
            # One of --workers N: the kernel spreads connections over every worker
            # listening on the port, so this one listens only once its policy is loaded
            # (load_policy): a worker still loading would answer UNAVAILABLE to calls
            # that the ready one would have served.
            self._listeners_pending = True
        else:
            await self._open_listeners()
        if self.decisions is not None:
            await self.decisions.start()
        await self.volume_guards.start()
        if self.settings.metrics_address:
            self._metrics_server = MetricsServer(
                self.settings.metrics_address,
                self.guard,
                asyncio.get_running_loop(),
                self.certificates,
            )
            self._metrics_server.start()
        self._readiness = asyncio.create_task(self._watch_readiness(), name="arbiter-readiness")
        if self.state_file is not None:
            self._state_writer = asyncio.create_task(
                self.state_file.run(), name="arbiter-state-file"
            )
        self._watcher = asyncio.create_task(
            self.reloader.watch(self._watch_stop), name="arbiter-reload-watch"
        )
        _log.info(
            "listening on %s with %s, %s (health NOT_SERVING until ready)",
            self.address,
            ("mutual TLS" if self.certificates.mutual else "TLS")
            if self.certificates
            else "plaintext",
            "authentication on" if self.guard.enabled else "authentication off",
        )
        if self.http is not None:
            _log.info("HTTP (Connect, gRPC-Web) on %s", self.http.url)

    async def _open_listeners(self) -> None:
        """Start accepting calls: the HTTP listener (``OSError`` when its address is
        taken, before gRPC serves), then the gRPC port."""
        self._listeners_pending = False
        if self.http is not None:
            await self.http.start()
        await self._server.start()

    async def _restore_state(self) -> None:
        assert self.state_file is not None
        path = self.state_file.path
        if await asyncio.to_thread(self.state_file.load):
            count = len(self.store) if isinstance(self.store, MemoryStore) else 0
            _log.info("state file %s: %d customers restored", path, count)
        else:
            _log.info("state file %s does not exist yet: starting empty, writing it", path)
            await self.state_file.save(force=True)  # fail now, not at shutdown, if unwritable

    async def _save_state(self) -> None:
        """The last write of the state file, once no call can change the store any more."""
        if self._state_writer is not None:
            self._state_writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._state_writer
        if self.state_file is None:
            return
        try:
            if await self.state_file.save():
                _log.info("state file %s written", self.state_file.path)
        except StateFileError as exc:
            _log.error("%s: the state since the last write is lost", exc)

    def reload(self) -> None:
        """Re-read certificates, JWKS and API key files now (SIGHUP does this and
        :meth:`reload_policy`)."""
        self.reloader.reload()

    async def reload_policy(self, why: str) -> bool:
        """Re-read the policy directory and activate it through the gate when its content
        changed (SIGHUP, ``--watch``). A set that fails the gate is refused and logged; the
        running version keeps serving. Returns whether a new version was activated."""
        directory = self.settings.policies
        try:
            files = await asyncio.to_thread(bundle_files, directory)
            bundle = await self.governance.validate(files)
        except GateRefused as exc:
            _log.error(
                "%s: policy set %s refused, the running version keeps serving", why, directory
            )
            for error in exc.errors:
                _log.error("%s/%s", directory, error)
            return False
        except OSError as exc:
            _log.error("%s: cannot read policy set %s: %s", why, directory, exc)
            return False
        active = self.registry.current
        if active is not None and active.policy.digest == bundle.digest:
            _log.info("%s: policy set %s unchanged (%s)", why, directory, bundle.digest)
            return False
        await self.governance.activate(files, actor=f"{why}@{self.governance.replica}", reason=why)
        return True

    async def _watch_policies(self) -> None:
        """``--watch``: reload the policy directory when a file in it changes."""
        import watchfiles

        _log.info("watching %s for policy changes", self.settings.policies)
        async for _ in watchfiles.awatch(
            self.settings.policies, stop_event=self._watch_stop, debounce=200, step=50
        ):
            try:
                await self.reload_policy("watch")
            except Exception:  # keep watching; the running version keeps serving
                _log.exception("policy reload failed")

    def _action_placements(self, action_id: str) -> frozenset[str] | None:
        active = self.registry.current
        action = active.policy.actions.get(action_id) if active is not None else None
        return None if action is None else frozenset(action.placements)

    async def load_policy(self) -> None:
        """Compile the configured policy set off the loop and publish it. Raises ``PolicyError``/``OSError``."""
        directory = self.settings.policies
        files = await asyncio.to_thread(bundle_files, directory)
        try:
            await self.governance.bootstrap(files, directory)
        except GateRefused as exc:
            raise PolicyError(exc.errors) from None
        active = self.registry.require()
        if self._listeners_pending:
            await self._open_listeners()
        _log.info("policy set %s serving (configured: %s)", active.version, directory)
        await self.governance.start()
        if self.settings.watch and self._policy_watcher is None:
            self._policy_watcher = asyncio.create_task(
                self._watch_policies(), name="arbiter-policy-watch"
            )
        await self._check_ready()

    async def wait_ready(self, timeout_s: float | None = None) -> None:
        """Wait until health first reports ``SERVING``."""
        await asyncio.wait_for(self._ready.wait(), timeout_s)

    async def stop(self, grace_s: float | None = None) -> None:
        """Graceful stop: NOT_SERVING, refuse new calls, let in-flight ones finish within the grace period."""
        if self._stopping:
            return
        self._stopping = True
        grace = self.settings.grace_period_s if grace_s is None else grace_s
        _log.info("shutting down: finishing in-flight calls (grace %.1fs)", grace)
        if self._readiness is not None:
            self._readiness.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._readiness
        self._watch_stop.set()
        if self._policy_watcher is not None:
            self._policy_watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._policy_watcher
        await self.governance.stop()
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        await self.health.enter_graceful_shutdown()
        if self.settings.drain_delay_s > 0 and grace_s is None:
            _log.info("health NOT_SERVING; still serving for %.1fs", self.settings.drain_delay_s)
            await asyncio.sleep(self.settings.drain_delay_s)
        stopping = []
        if self._server is not None:
            stopping.append(self._server.stop(grace))
        if self.http is not None:
            stopping.append(self.http.stop())
        await asyncio.gather(*stopping)
        self.core.admission.close()
        if self.decisions is not None:  # what the calls observed is written before closing
            await self.decisions.stop(max(grace, 1.0))
        await self._save_state()
        await self.volume_guards.stop()
        if self._tracer_provider is not None:  # export what is batched
            await asyncio.to_thread(self._tracer_provider.shutdown)
        await self.store.close()
        if self._metrics_server is not None:
            self._metrics_server.stop()
        _log.info("stopped")

    async def wait_for_termination(self) -> None:
        if self._server is not None:
            await self._server.wait_for_termination()

    # ------------------------------------------------------------------ internals

    async def _set_health(self, status: Any) -> None:
        await self.health.set("", status)
        await self.health.set(DECISION_SERVICE, status)

    async def _check_deployment(self) -> None:
        """A Redis must not evict keys (unless allowed); checked once, when it first answers."""
        if self._deployment_checked:
            return
        from arbiter.state import EVICTING_POLICIES, RedisStore, check_deployment

        if isinstance(self.store, RedisStore):
            allowed = self.settings.redis_allow_eviction
            policies = await check_deployment(self.store, allow_eviction=allowed)
            if evicting := {n: p for n, p in policies.items() if p in EVICTING_POLICIES}:
                _log.warning("serving on an evicting Redis (--redis-allow-eviction): %s", evicting)
        self._deployment_checked = True

    def _sample(self) -> None:
        """Gauges read once per readiness check: circuit breaker state, active policy version."""
        self._circuit(self.store)
        active = self.registry.current
        if active is None:
            return
        policy = active.policy
        labels = (policy.id, policy.version, policy.digest)
        if labels != self._policy_labels:
            if self._policy_labels is not None:  # 0, not removed: multiprocess files keep it
                METRICS.policy_info.labels(*self._policy_labels).set(0)
            METRICS.policy_info.labels(*labels).set(1)
            self._policy_labels = labels

    async def _check_ready(self) -> bool:
        self._sample()
        ready = self.registry.current is not None and await self.store.ping()
        if ready and not self._deployment_checked:
            try:
                await self._check_deployment()
            except (StoreMisconfigured, StoreUnavailable) as exc:
                _log.error("not serving: %s", exc)
                ready = False
        if self._stopping:
            return False
        await self._set_health(_SERVING if ready else _NOT_SERVING)
        if ready and not self._ready.is_set():
            _log.info("ready: health SERVING")
            self._ready.set()
        elif not ready and self.registry.current is not None:
            # Once per change of reason, not once per second.
            detail = self.store.health_detail or "the store does not answer"
            if self._ready.is_set() or detail != self._not_ready_detail:
                _log.warning("not ready: %s; health NOT_SERVING", detail)
            self._ready.clear()
            self._not_ready_detail = detail
        if ready:
            self._not_ready_detail = ""
        return ready

    async def _watch_readiness(self) -> None:
        while True:
            try:
                await self._check_ready()
            except Exception:  # never let the watcher die; the next round retries
                _log.exception("readiness check failed")
            await asyncio.sleep(self.readiness_interval_s)


async def serve(
    settings: Settings,
    *,
    store: Store | None = None,
    on_ready: Callable[[], None] | None = None,
) -> int:
    """Run a server until SIGTERM/SIGINT (SIGHUP reloads certificates and credentials); returns the
    exit code. ``on_ready`` is called once the policy set is loaded and the ports serve."""
    problems = exposure_problems(settings)
    for problem in problems:
        if not settings.insecure:
            _log.error(
                "%s: refusing to start (configure TLS and authentication, or pass --insecure)",
                problem,
            )
        else:
            _log.warning("INSECURE: %s (--insecure): anyone who can reach it can call it", problem)
    if problems and not settings.insecure:
        return 2
    try:
        server = ArbiterServer(settings, store=store)
        await server.start()
    except (OSError, TlsError, CredentialsError, StateFileError, ImportError) as exc:
        _log.error("%s", exc)
        if isinstance(exc, StateFileError):
            _log.error("refusing to start: the state file cannot be used")
        for line in getattr(exc, "diagnostics", ()):
            _log.error("%s", line)
        return 2
    except StoreMisconfigured as exc:
        _log.error("refusing to serve: %s (or start with --redis-allow-eviction)", exc)
        await server.store.close()
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    if threading.current_thread() is threading.main_thread():
        for sig in signals:
            loop.add_signal_handler(sig, stop.set)
        reloads: set[asyncio.Task[None]] = set()

        async def reload_all() -> None:
            await asyncio.to_thread(server.reload)
            if server.registry.current is not None:  # not before the first load
                await server.reload_policy("sighup")

        def on_sighup() -> None:
            _log.info("SIGHUP: reloading certificates, credentials and the policy directory")
            task = loop.create_task(reload_all())
            reloads.add(task)
            task.add_done_callback(reloads.discard)

        loop.add_signal_handler(signal.SIGHUP, on_sighup)
    try:
        await server.load_policy()
    except PolicyError as exc:
        for diagnostic in exc.diagnostics:
            _log.error("%s/%s", settings.policies, diagnostic)
        _log.error("policy set %s does not compile; not serving", settings.policies)
        await server.stop(0)
        return 1
    except OSError as exc:
        _log.error("cannot read policy set %s: %s", settings.policies, exc)
        await server.stop(0)
        return 1
    settle_heap()
    if on_ready is not None:
        on_ready()
    await stop.wait()
    stop.clear()
    # A second signal during the grace period stops at once.
    stopping = asyncio.create_task(server.stop())
    waiter = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({stopping, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if waiter in done and not stopping.done():
        _log.warning("second signal: stopping now")
        if server.http is not None:
            server.http.stop_now()
        await server._server.stop(0)
    await stopping
    waiter.cancel()
    return 0


def settle_heap() -> None:
    """Once serving: move every object that exists now (the compiled policy set, a restored or
    seeded embedded store, imported modules) out of the garbage collector's sight.

    A full collection walks every tracked object; with 20,000 customers in the embedded
    store that was a 100-130 ms pause every few seconds, the p99 of Decide at 1,000 calls/s
    (docs/decisions.md, "Garbage collection"). Frozen objects are never walked again; the
    cost is that cyclic garbage among them (the startup policy set's, after a reload) is not
    reclaimed -- once, bounded."""
    gc.collect()
    gc.freeze()


def run(settings: Settings, on_ready: Callable[[], None] | None = None) -> int:
    """Process entry of one serving process: :func:`serve` on uvloop (plain asyncio if uvloop is
    missing). ``arbiter serve --workers N`` runs this in each worker (:mod:`arbiter.server.workers`)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a server dependency
        return asyncio.run(serve(settings, on_ready=on_ready))
    return uvloop.run(serve(settings, on_ready=on_ready))
