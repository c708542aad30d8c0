"""AdminService's policy and kill-switch RPCs on :class:`~arbiter.server.governance.Governance`.

Statuses: a bundle that fails the gate is ``FAILED_PRECONDITION`` with every
error (``file:line:col: ...``, one per line) in the message and nothing
changed; a bad request field ``INVALID_ARGUMENT`` naming it; an unknown
journey, action, channel or rollback digest ``NOT_FOUND`` naming the field;
the fleet's store not answering ``UNAVAILABLE``.
"""

from __future__ import annotations

import os
from typing import Any, NoReturn

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from arbiter.server.governance import GateRefused, Governance, Kind, NotFound, bundle_files
from arbiter.server.security.grpc_guard import CALLER
from arbiter.state import StoreUnavailable
from arbiter.v1 import admin_pb2

__all__ = ["GovernanceRpc"]


async def _abort(context: Any, code: grpc.StatusCode, message: str) -> NoReturn:
    await context.abort(code, message)
    raise AssertionError("unreachable: abort raises")


def _actor() -> str:
    identity = CALLER.get()
    return identity.principal if identity is not None else "anonymous"


def _stamp(ms: int | None) -> Timestamp | None:
    if not ms:
        return None
    stamp = Timestamp()
    stamp.FromMilliseconds(int(ms))
    return stamp


def _info(activation: dict[str, Any] | None) -> admin_pb2.PolicyInfo:
    if not activation:
        return admin_pb2.PolicyInfo()
    return admin_pb2.PolicyInfo(
        version=activation.get("version", ""),
        digest=activation.get("digest", ""),
        activated_at=_stamp(activation.get("at_ms")),
        activated_by=activation.get("by", ""),
        test_result=activation.get("test_result", ""),
        reason=activation.get("reason", ""),
    )


def _errors(exc: GateRefused) -> list[admin_pb2.PolicyError]:
    return [
        admin_pb2.PolicyError(
            file=d.location.file,
            line=d.location.line,
            column=d.location.column,
            code="scenario_failed" if d.message.startswith("scenario") else "invalid",
            message=d.message,
        )
        for d in exc.errors
    ]


def _pause_info(doc: dict[str, Any]) -> admin_pb2.PauseInfo:
    return admin_pb2.PauseInfo(
        kind=doc["kind"],
        target=doc["target"],
        paused=bool(doc.get("paused")),
        reason=doc.get("reason", ""),
        changed_by=doc.get("by", ""),
        changed_at=_stamp(doc.get("at_ms")),
        until=_stamp(doc.get("until_ms")),
    )


class GovernanceRpc:
    """The RPC bodies; AdminService delegates to them."""

    def __init__(self, governance: Governance) -> None:
        self.governance = governance

    async def _files(self, request: Any, context: Any) -> dict[str, str]:
        source = request.WhichOneof("source")
        if source == "directory":
            try:
                return bundle_files(os.path.expanduser(request.directory))
            except (OSError, UnicodeDecodeError) as exc:
                await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, f"directory: {exc}")
        if source == "bundle":
            files: dict[str, str] = {}
            for f in request.bundle.files:
                try:
                    files[f.path] = f.content.decode("utf-8")
                except UnicodeDecodeError:
                    await _abort(
                        context,
                        grpc.StatusCode.INVALID_ARGUMENT,
                        f"bundle.files: {f.path} is not UTF-8",
                    )
            if not files:
                await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "bundle.files: empty")
            return files
        await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "source: directory or bundle")
        raise AssertionError("unreachable")

    async def validate(
        self, request: admin_pb2.ValidatePolicyRequest, context: Any
    ) -> admin_pb2.ValidatePolicyResponse:
        files = await self._files(request, context)
        try:
            bundle = await self.governance.validate(files)
        except GateRefused as exc:
            return admin_pb2.ValidatePolicyResponse(valid=False, errors=_errors(exc))
        return admin_pb2.ValidatePolicyResponse(
            valid=True,
            policy=admin_pb2.PolicyInfo(
                version=bundle.policy.version, digest=bundle.digest, test_result=bundle.test_result
            ),
        )

    async def activate(
        self, request: admin_pb2.ActivatePolicyRequest, context: Any
    ) -> admin_pb2.ActivatePolicyResponse:
        files = await self._files(request, context)
        try:
            active, previous = await self.governance.activate(
                files,
                actor=_actor(),
                reason=request.reason,
                expected_digest=request.expected_digest,
            )
        except GateRefused as exc:
            await _abort(context, grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        except ValueError as exc:
            code = (
                grpc.StatusCode.FAILED_PRECONDITION
                if str(exc).startswith("expected_digest")
                else grpc.StatusCode.INVALID_ARGUMENT
            )
            await _abort(context, code, str(exc))
        except StoreUnavailable as exc:
            await _abort(context, grpc.StatusCode.UNAVAILABLE, str(exc))
        return admin_pb2.ActivatePolicyResponse(active=_info(active), previous=_info(previous))

    async def rollback(
        self, request: admin_pb2.RollbackPolicyRequest, context: Any
    ) -> admin_pb2.RollbackPolicyResponse:
        try:
            active, previous = await self.governance.rollback(
                request.digest, actor=_actor(), reason=request.reason
            )
        except NotFound as exc:
            await _abort(context, grpc.StatusCode.NOT_FOUND, str(exc))
        except GateRefused as exc:
            await _abort(context, grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        except StoreUnavailable as exc:
            await _abort(context, grpc.StatusCode.UNAVAILABLE, str(exc))
        return admin_pb2.RollbackPolicyResponse(active=_info(active), previous=_info(previous))

    async def change(
        self, kind: Kind, name: str, request: Any, context: Any, *, pause: bool
    ) -> dict[str, Any]:
        """Pause or resume; aborts with the status the module docstring lists."""
        until = request.until.ToMilliseconds() if pause and request.HasField("until") else None
        try:
            if pause:
                return await self.governance.pause(
                    kind, name, until_ms=until, reason=request.reason, actor=_actor()
                )
            return await self.governance.resume(kind, name, reason=request.reason, actor=_actor())
        except NotFound as exc:
            await _abort(context, grpc.StatusCode.NOT_FOUND, str(exc))
        except ValueError as exc:
            await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except StoreUnavailable as exc:
            await _abort(context, grpc.StatusCode.UNAVAILABLE, str(exc))

    async def journey(self, request: Any, context: Any, *, pause: bool) -> admin_pb2.JourneyInfo:
        doc = await self.change("journey", request.journey_id, request, context, pause=pause)
        return self._journey(request.journey_id, doc)

    def _journey(self, journey_id: str, doc: dict[str, Any] | None) -> admin_pb2.JourneyInfo:
        active = self.governance.registry.require()
        journey = active.policy.journeys.get(journey_id)
        declared = journey.status if journey is not None else "active"
        if doc is not None and doc.get("paused"):
            status = admin_pb2.JOURNEY_STATUS_PAUSED
        else:
            status = {
                "paused": admin_pb2.JOURNEY_STATUS_PAUSED,
                "retired": admin_pb2.JOURNEY_STATUS_RETIRED,
            }.get(declared, admin_pb2.JOURNEY_STATUS_ACTIVE)
        return admin_pb2.JourneyInfo(
            journey_id=journey_id,
            status=status,
            paused_by_operator=bool(doc and doc.get("paused")),
            reason=(doc or {}).get("reason", ""),
            changed_at=_stamp((doc or {}).get("at_ms")),
            until=_stamp((doc or {}).get("until_ms")),
            paused_by=(doc or {}).get("by", "") if doc and doc.get("paused") else "",
        )

    async def pause_info(
        self, kind: Kind, name: str, request: Any, context: Any, *, pause: bool
    ) -> admin_pb2.PauseInfo:
        return _pause_info(await self.change(kind, name, request, context, pause=pause))

    async def status(
        self, request: admin_pb2.GetPolicyStatusRequest, context: Any
    ) -> admin_pb2.GetPolicyStatusResponse:
        governance = self.governance
        try:
            await governance.refresh()
            replicas = await governance.replicas()
        except StoreUnavailable as exc:
            await _abort(context, grpc.StatusCode.UNAVAILABLE, str(exc))
        state = governance.state
        pauses = governance.pauses_now()
        journey_pauses = {p["target"]: p for p in pauses if p["kind"] == "journey"}
        active = governance.registry.current
        journeys = list(active.policy.journeys) if active is not None else []
        errors = _errors(GateRefused(governance.sync_errors)) if governance.sync_errors else []
        return admin_pb2.GetPolicyStatusResponse(
            active=_info(state.active),
            history=[_info(a) for a in state.history],
            journeys=[self._journey(j, journey_pauses.get(j)) for j in sorted(journeys)],
            last_errors=errors,
            pauses=[_pause_info(p) for p in pauses],
            replicas=[
                admin_pb2.ReplicaInfo(
                    replica_id=r,
                    version=doc.get("version", ""),
                    digest=doc.get("digest", ""),
                    seen_at=_stamp(doc.get("seen_ms")),
                    error=doc.get("error", ""),
                )
                for r, doc in sorted(replicas.items())
            ],
        )
