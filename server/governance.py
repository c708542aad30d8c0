"""Policy versions, the activation gate, rollback and kill switches, the same on every replica.

:class:`Governance` is the one place that changes what a server decides
with while it runs. AdminService, ``arbiter serve --watch``, ``SIGHUP`` and
the volume guards call it; nothing else swaps the registry.

- **A bundle** is an immutable policy set: its files (policy and scenario
  files, path -> text), the version it declares, its content digest (of the
  policy files, ``policies.loader.digest_sources``: what every decision
  records), and the gate's result. An **activation** says which bundle, by
  whom, when and why; the history keeps the last ``history`` activations
  (rollback targets).
- **The gate** (:func:`gate`): compile, then run the bundle's scenario
  tests; any error refuses with every error at ``file:line:col`` and
  nothing is written -- the running version is untouched.
- **Where**: in a :class:`~arbiter.state.GovernanceStore` -- in Redis when
  the server runs on Redis (every replica serves the active pointer there),
  else in this process.
- **Propagation**: a change increments an epoch and is published; each
  replica re-reads on the message and also checks the epoch every
  ``poll_s`` (a lost message cannot strand it). A replica that cannot
  compile the active bundle keeps its last-known-good set and reports it
  (``GetPolicyStatus``, the replica's heartbeat, the
  ``arbiter_policy_sync_failed`` gauge, one log line per bundle).
- **Swap**: the registry's reference is replaced whole; a request reads it
  once, so an in-flight decision finishes on the set (and pauses) it
  started with and records that set's version and digest.
- **Kill switches**: :meth:`Governance.pause` / :meth:`Governance.resume` of
  a journey, an action or a channel, optionally ``until`` an instant; stored
  with the bundles (a replica started later starts paused); a paused
  candidate is filtered with reason ``PAUSED`` in Decide and Check.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from arbiter.policies import CompiledPolicy, Diagnostic, Location, PolicyError, load_policy
from arbiter.server.metrics import METRICS
from arbiter.server.registry import Pauses, PolicyRegistry
from arbiter.state import (
    GovernanceState,
    GovernanceStore,
    MemoryGovernanceStore,
    StoreUnavailable,
)

__all__ = [
    "KINDS",
    "Bundle",
    "GateRefused",
    "Governance",
    "Kind",
    "NotFound",
    "bundle_files",
    "gate",
]

_log = logging.getLogger("arbiter.governance")

Kind = Literal["journey", "action", "channel"]
KINDS: Final[tuple[Kind, ...]] = ("journey", "action", "channel")
DEFAULT_HISTORY: Final = 10
# A replica that has not reported for this long is not live any more.
REPLICA_TTL_MS: Final = 5_000
MAX_BUNDLE_BYTES: Final = 16 * 1024 * 1024


class GateRefused(Exception):
    """A bundle did not pass the gate; ``errors`` lists every problem (``file:line:col: ...``)."""

    def __init__(self, errors: list[Diagnostic]) -> None:
        self.errors = errors
        lines = [str(e) for e in errors]
        super().__init__(
            f"refused: {len(errors)} error(s); the running version is unchanged\n"
            + "\n".join(lines)
        )


class NotFound(Exception):
    """A rollback target or a pause target that does not exist (``field`` names the request field)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class Bundle:
    """A gated policy set (see the module docstring) and its compiled plan."""

    files: Mapping[str, str]
    policy: CompiledPolicy
    test_result: str

    @property
    def digest(self) -> str:
        return self.policy.digest

    def doc(self) -> dict[str, Any]:
        return {
            "digest": self.policy.digest,
            "version": self.policy.version,
            "files": dict(self.files),
            "test_result": self.test_result,
        }


def bundle_files(directory: str | os.PathLike[str]) -> dict[str, str]:
    """Every YAML file under ``directory`` (policy and scenario files), path -> text."""
    base = Path(directory)
    if not base.is_dir():
        raise NotADirectoryError(f"not a directory: {directory}")
    files: dict[str, str] = {}
    for path in sorted(base.rglob("*")):
        rel = path.relative_to(base)
        hidden = any(part.startswith(".") for part in rel.parts)
        if path.is_file() and path.suffix in (".yaml", ".yml") and not hidden:
            files[rel.as_posix()] = path.read_text(encoding="utf-8")
    return files


def _safe_path(rel: str) -> bool:
    parts = Path(rel).parts
    return bool(parts) and not Path(rel).is_absolute() and ".." not in parts


def gate(files: Mapping[str, str], *, scenarios: bool = True) -> Bundle:
    """Compile ``files`` and run their scenario tests; :class:`GateRefused` lists every error.

    Blocking (compiles and runs scenarios): call it off the event loop."""
    bad = [p for p in files if not _safe_path(p)]
    if bad:
        raise GateRefused(
            [Diagnostic(Location(p), "error", "a bundle path must be relative") for p in bad]
        )
    with tempfile.TemporaryDirectory(prefix="arbiter-bundle-") as root:
        for rel, text in files.items():
            target = Path(root, rel)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        try:
            policy = load_policy(root)
        except PolicyError as exc:
            raise GateRefused([d for d in exc.diagnostics if d.severity == "error"]) from None
        if not scenarios:
            return Bundle(dict(files), policy, "compiled")
        from arbiter.server.scenarios import run_directory

        server_log = logging.getLogger("arbiter.server")
        level = server_log.level
        server_log.setLevel(logging.CRITICAL)  # a scenario's refused calls are its own business
        try:
            report = run_directory(root, policy=policy)
        finally:
            server_log.setLevel(level)
    errors = [Diagnostic(Location(e.split(":", 1)[0]), "error", e) for e in report.errors]
    for result in report.results:
        if not result.passed:
            for failure in result.failures:
                errors.append(
                    Diagnostic(
                        Location(result.file), "error", f"scenario `{result.name}`: {failure}"
                    )
                )
    if errors:
        raise GateRefused(errors)
    return Bundle(dict(files), policy, f"compiled; {report.passed} scenarios passed")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Governance:
    """The server's policy versions and kill switches (see the module docstring).

    ``replica`` names this process in heartbeats; ``history`` is how many
    activations are kept; ``poll_s`` how often the epoch is checked."""

    def __init__(
        self,
        registry: PolicyRegistry,
        store: GovernanceStore | None = None,
        *,
        replica: str = "",
        history: int = DEFAULT_HISTORY,
        poll_s: float = 0.25,
        heartbeat_s: float = 1.0,
        scenarios: bool = True,
    ) -> None:
        self.registry = registry
        self.store: GovernanceStore = store if store is not None else MemoryGovernanceStore()
        self.replica = replica or f"{socket.gethostname()}:{os.getpid()}"
        self.history = max(2, history)
        self.poll_s = poll_s
        self.heartbeat_s = heartbeat_s
        self.scenarios = scenarios
        self.epoch = -1
        self.state = GovernanceState()
        # Why this replica does not serve the active bundle (empty: it does).
        self.sync_error = ""
        self.sync_errors: list[Diagnostic] = []
        self._failed_digest = ""
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._compiled: dict[str, CompiledPolicy] = {}
        self._reported = ""  # the digest of the last heartbeat (a swap reports at once)
        self._pending: tuple[Bundle, str] | None = None  # started while the store was down
        self._follow_error = ""
        # Called after every change made here (the embedded state file writes it soon).
        self.on_change: Callable[[], None] | None = None

    # ------------------------------------------------------------------ lifecycle

    async def bootstrap(self, files: Mapping[str, str], source: str) -> None:
        """At start: compile ``files`` (the configured directory; :class:`GateRefused` when it
        does not compile). When the fleet has no active version yet, or this set is one the
        history has never seen (a deploy of new files), it becomes the fleet's active
        version; otherwise -- a restart, or a replica added later, with a set the fleet
        already knew -- the fleet's active version is served (so a rollback or an
        activation through AdminService survives restarts)."""
        bundle = await asyncio.to_thread(gate, files, scenarios=False)
        try:
            await self._adopt(bundle, source)
        except StoreUnavailable as exc:
            # Like customer state, the fleet's versions may not answer yet: serve the
            # directory (health stays NOT_SERVING while the store is down) and adopt the
            # fleet's version as soon as it answers (:meth:`_follow`).
            _log.warning(
                "cannot read the fleet's policy versions yet (%s); serving %s until they answer",
                exc,
                source,
            )
            self.registry.activate(bundle.policy, source)
            self._pending = (bundle, source)
            return
        await self.refresh(force=True)
        if self.registry.current is None:
            raise GateRefused(self.sync_errors)

    async def _adopt(self, bundle: Bundle, source: str) -> None:
        self._compiled = {bundle.digest: bundle.policy}  # the fleet's too? then no recompile
        state = await self.store.read()
        known = {a["digest"] for a in state.history}
        if state.active is None or bundle.digest not in known:
            current = self.registry.current
            if current is None or current.policy.digest != bundle.digest:
                self.registry.activate(bundle.policy, source)
            await self._publish(
                bundle, f"startup@{self.replica}", f"started from {source}", if_new=True
            )

    async def start(self) -> None:
        """Follow the fleet: change messages, the periodic epoch check, heartbeats."""
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self.store.listen(self._heard), name="arbiter-gov-listen"),
                asyncio.create_task(self._follow(), name="arbiter-gov-follow"),
            ]

    async def stop(self) -> None:
        """Stop following (bounded: a client library that swallows a cancellation while
        connecting must not hold up the shutdown), then close the store."""
        tasks, self._tasks = self._tasks, []
        with contextlib.suppress(Exception):
            await self.store.close()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=2.0)

    def _heard(self, epoch: int) -> None:
        if epoch != self.epoch:
            self._wake.set()

    async def _follow(self) -> None:
        next_beat = 0.0
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_s)
            self._wake.clear()
            try:
                if self._pending is not None:
                    await self._adopt(*self._pending)
                    self._pending = None
                await self.refresh()
                current = self.registry.current
                serving = current.policy.digest if current is not None else ""
                if time.monotonic() >= next_beat or serving != self._reported:
                    self._reported = serving
                    next_beat = time.monotonic() + self.heartbeat_s
                    await self._heartbeat()
                if self._follow_error:
                    _log.info("the fleet's policy state answers again")
                    self._follow_error = ""
            except Exception as exc:  # keep following; the last good state keeps serving
                if str(exc) != self._follow_error:  # once per change of reason, not 4 a second
                    _log.warning("governance: cannot read the fleet's policy state: %s", exc)
                self._follow_error = str(exc)

    # ------------------------------------------------------------------ following

    async def refresh(self, *, force: bool = False) -> None:
        """Re-read when the epoch moved (or ``force``); apply expired pauses either way."""
        async with self._lock:
            if force or await self.store.epoch() != self.epoch:
                self.state = await self.store.read()
                self.epoch = self.state.epoch
                await self._serve_active()
            self._apply_pauses()

    async def _serve_active(self) -> None:
        active = self.state.active
        current = self.registry.current
        if active is None or (current is not None and current.policy.digest == active["digest"]):
            self._synced()
            return
        digest = active["digest"]
        policy = self._compiled.get(digest)
        if policy is None:
            doc = await self.store.bundle(digest)
            try:
                if doc is None:
                    raise GateRefused(
                        [Diagnostic(Location(""), "error", f"bundle {digest} is not stored")]
                    )
                bundle = await asyncio.to_thread(gate, doc["files"], scenarios=False)
                policy = bundle.policy
            except GateRefused as exc:
                self._failed(digest, exc.errors)
                return
        self._compiled = {digest: policy}
        self.registry.activate(policy, f"{active.get('version', '')} ({digest})")
        _log.info(
            "policy set %s now served (activated by %s)",
            policy.policy_version,
            active.get("by", ""),
        )
        self._synced()

    def _synced(self) -> None:
        if self.sync_error:
            _log.info("policy set in sync with the fleet again")
        self.sync_error, self.sync_errors, self._failed_digest = "", [], ""
        METRICS.policy_sync_failed.set(0)

    def _failed(self, digest: str, errors: list[Diagnostic]) -> None:
        current = self.registry.current
        keeping = current.version if current is not None else "nothing"
        self.sync_error = f"cannot load the active set {digest}; serving {keeping}"
        self.sync_errors = errors
        METRICS.policy_sync_failed.set(1)
        if digest != self._failed_digest:  # one line per bundle, not per check
            self._failed_digest = digest
            first = str(errors[0]) if errors else ""
            _log.error("%s: %d error(s), first: %s", self.sync_error, len(errors), first)

    def _apply_pauses(self) -> None:
        if self.registry.current is None:
            return
        now = _now_ms()
        found: dict[str, set[str]] = {k: set() for k in KINDS}
        for pause in self.state.pauses.values():
            until = pause.get("until_ms")
            if until is None or until > now:
                found[pause["kind"]].add(pause["target"])
        self.registry.set_pauses(
            Pauses(
                journeys=frozenset(found["journey"]),
                actions=frozenset(found["action"]),
                channels=frozenset(found["channel"]),
            )
        )

    async def _heartbeat(self) -> None:
        current = self.registry.current
        now = _now_ms()
        doc = {
            "version": current.policy.version if current else "",
            "digest": current.policy.digest if current else "",
            "seen_ms": now,
            "error": self.sync_error,
        }
        await self.store.heartbeat(self.replica, doc, forget_before_ms=now - 6 * REPLICA_TTL_MS)

    # ------------------------------------------------------------------ changing

    async def validate(self, files: Mapping[str, str]) -> Bundle:
        """Gate ``files`` without activating (:class:`GateRefused` lists every error)."""
        return await asyncio.to_thread(gate, files, scenarios=self.scenarios)

    async def activate(
        self,
        files: Mapping[str, str],
        *,
        actor: str,
        reason: str = "",
        expected_digest: str = "",
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Gate ``files`` and make them the fleet's active version; returns (activation,
        previous). Refused (:class:`GateRefused`, or ``ValueError`` on a digest mismatch)
        with nothing written."""
        if sum(len(t) for t in files.values()) > MAX_BUNDLE_BYTES:
            raise ValueError(f"bundle: larger than {MAX_BUNDLE_BYTES} bytes")
        bundle = await self.validate(files)
        if expected_digest and bundle.digest != expected_digest:
            raise ValueError(
                f"expected_digest: the set compiles to {bundle.digest}, not {expected_digest}"
            )
        previous = self.state.active
        activation = await self._publish(bundle, actor, reason)
        await self.refresh(force=True)
        return activation, previous

    async def _publish(
        self, bundle: Bundle, actor: str, reason: str, *, if_new: bool = False
    ) -> dict[str, Any]:
        activation = {
            "digest": bundle.digest,
            "version": bundle.policy.version,
            "by": actor,
            "at_ms": _now_ms(),
            "reason": reason,
            "test_result": bundle.test_result,
        }
        stored = await self.store.bundle(bundle.digest)
        await self.store.activate(
            None if stored else bundle.doc(), activation, self.history, if_new=if_new
        )
        self._compiled = {bundle.digest: bundle.policy}
        self._changed()
        _log.warning(
            "policy set %s (%s) activated by %s%s",
            bundle.policy.version,
            bundle.digest,
            actor,
            f": {reason}" if reason else "",
        )
        return activation

    async def rollback(
        self, digest: str = "", *, actor: str, reason: str = ""
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Re-activate one of the kept versions (``""``: the one before the active one)."""
        state = await self.store.read()
        active = state.active
        if not digest:
            older = [a for a in state.history if active is None or a["digest"] != active["digest"]]
            if not older:
                raise NotFound("digest", "no earlier version to roll back to")
            digest = older[0]["digest"]
        known = next((a for a in state.history if a["digest"] == digest), None)
        doc = await self.store.bundle(digest) if known is not None else None
        if doc is None:
            kept = ", ".join(dict.fromkeys(a["digest"] for a in state.history))
            raise NotFound("digest", f"digest: {digest} is not a kept version (kept: {kept})")
        bundle = await asyncio.to_thread(gate, doc["files"], scenarios=False)
        bundle = Bundle(bundle.files, bundle.policy, doc.get("test_result", "compiled"))
        activation = await self._publish(bundle, actor, reason or f"rollback to {digest}")
        await self.refresh(force=True)
        return activation, active

    async def pause(
        self,
        kind: Kind,
        name: str,
        *,
        until_ms: int | None = None,
        reason: str = "",
        actor: str = "",
    ) -> dict[str, Any]:
        """Pause ``name`` (a journey, action or channel id) on every replica, until resumed or
        ``until_ms``. Takes effect here before it returns, elsewhere within ``poll_s``."""
        self._check_target(kind, name)
        if until_ms is not None and until_ms <= _now_ms():
            raise ValueError("until: must be in the future")
        pause = {
            "kind": kind,
            "target": name,
            "reason": reason,
            "by": actor,
            "at_ms": _now_ms(),
            "until_ms": until_ms,
        }
        await self.store.set_pause(f"{kind}:{name}", pause)
        self._changed()
        _log.warning(
            "%s %s paused by %s%s%s",
            kind,
            name,
            actor or "?",
            f" until {until_ms} ms" if until_ms else "",
            f": {reason}" if reason else "",
        )
        await self.refresh(force=True)
        return {**pause, "paused": True}

    async def resume(
        self, kind: Kind, name: str, *, reason: str = "", actor: str = ""
    ) -> dict[str, Any]:
        """Undo :meth:`pause` (resuming what is not paused changes nothing)."""
        self._check_target(kind, name)
        await self.store.set_pause(f"{kind}:{name}", None)
        self._changed()
        _log.warning(
            "%s %s resumed by %s%s", kind, name, actor or "?", f": {reason}" if reason else ""
        )
        await self.refresh(force=True)
        return {
            "kind": kind,
            "target": name,
            "paused": False,
            "reason": reason,
            "by": actor,
            "at_ms": _now_ms(),
        }

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def _check_target(self, kind: Kind, name: str) -> None:
        field = f"{kind}_id"
        if not name:
            raise ValueError(f"{field}: required")
        active = self.registry.require()
        policy = active.policy
        known: Mapping[str, Any] = {
            "journey": policy.journeys,
            "action": policy.actions,
            "channel": policy.channels,
        }[kind]
        if name not in known:
            raise NotFound(field, f"{field}: no {kind} `{name}` in the active policy set")

    # ------------------------------------------------------------------ reading

    def pauses_now(self) -> list[dict[str, Any]]:
        now = _now_ms()
        return [
            {**p, "paused": True}
            for p in sorted(self.state.pauses.values(), key=lambda p: (p["kind"], p["target"]))
            if p.get("until_ms") is None or p["until_ms"] > now
        ]

    async def replicas(self) -> dict[str, dict[str, Any]]:
        """Every replica that reported within :data:`REPLICA_TTL_MS` (this one always)."""
        await self._heartbeat()
        since = _now_ms() - REPLICA_TTL_MS
        return {
            r: doc for r, doc in (await self.store.replicas()).items() if doc["seen_ms"] >= since
        }
