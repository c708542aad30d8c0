"""``arbiter admin``: the AdminService of a running server, from a terminal or a script.

Every subcommand is one (or, for ``export``, one per page) call to
``arbiter.v1.AdminService`` at ``--target HOST:PORT`` (gRPC), with the
credentials of the Python client (:mod:`arbiter_client`): ``--ca`` (TLS,
``--tls`` for the system roots), ``--cert``/``--key`` (mutual TLS),
``--token``/``--token-file`` (``authorization: Bearer``) or ``--api-key``
(``x-api-key``); each has an ``ARBITER_*`` variable.

Output: a human summary on stdout, or with ``--json`` the answer as JSON
(protobuf's JSON mapping, field names as in the proto). Errors go to
stderr as one line (``arbiter admin CMD: CODE: message`` and a hint), never
a traceback; with ``--json`` stdout also gets ``{"error": {"code", "message"}}``.

Exit codes (:data:`EXIT`): 0 done; 1 the server answered and refused or
found nothing (invalid bundle, INVALID_ARGUMENT, FAILED_PRECONDITION,
NOT_FOUND, ...); 2 usage or local error (a directory that cannot be read);
3 the server is unreachable or too slow (UNAVAILABLE, DEADLINE_EXCEEDED:
retry); 4 not allowed (UNAUTHENTICATED, PERMISSION_DENIED); 5 the server
does not implement the RPC (UNIMPLEMENTED); 6 the server failed (INTERNAL
and anything else).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

__all__ = ["EXIT", "register"]

if TYPE_CHECKING:
    import grpc

    _Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]

_PROG: Final = "arbiter admin"
_DEFAULT_TARGET: Final = "127.0.0.1:50051"
# Answers up to 64 MiB (a status with a long history, an explained decision with a big
# trace); export pages stop at 2 MiB on the server anyway.
_CHANNEL: Final = (("grpc.max_receive_message_length", 64 * 1024 * 1024),)
# A policy bundle sent inline is bounded like any request: the server refuses bodies over
# 1 MiB (arbiter.server.parse.MAX_REQUEST_BYTES); leave room for paths and framing.
_MAX_BUNDLE_BYTES: Final = 960 * 1024

EXIT: Final[dict[str, int]] = {
    "OK": 0,
    "INVALID_ARGUMENT": 1,
    "FAILED_PRECONDITION": 1,
    "NOT_FOUND": 1,
    "ALREADY_EXISTS": 1,
    "ABORTED": 1,
    "OUT_OF_RANGE": 1,
    "UNAVAILABLE": 3,
    "DEADLINE_EXCEEDED": 3,
    "RESOURCE_EXHAUSTED": 3,
    "UNAUTHENTICATED": 4,
    "PERMISSION_DENIED": 4,
    "UNIMPLEMENTED": 5,
}
_SERVER_FAILED: Final = 6
_HINTS: Final[dict[str, str]] = {
    "UNAVAILABLE": "is a server listening at {target}? (a TLS server needs --ca or --tls)",
    "DEADLINE_EXCEEDED": "no answer within --timeout {timeout:g}s",
    "UNAUTHENTICATED": "pass --token, --token-file or --api-key (or a client certificate)",
    "PERMISSION_DENIED": "the credential lacks the {role} role for this call",
    "UNIMPLEMENTED": "this server does not implement AdminService.{rpc} (an older version?)",
}


class _Failed(Exception):
    """A local problem (usage, files): exit 2 with this message."""


# --------------------------------------------------------------------------- the parser


def register(subparsers: _Subparsers) -> None:
    """Add ``admin`` and its subcommands to ``arbiter`` (see :class:`arbiter.server.cli.CommandGroup`)."""
    admin = subparsers.add_parser(
        "admin",
        help="operate a running server: policy status and activation, pauses, explain, privacy",
        description=(
            "Calls arbiter.v1.AdminService on a running server (admin role; export and forget "
            "need the privacy role). Exit 0 done, 1 refused or not found, 2 usage error, "
            "3 server unreachable, 4 not allowed, 5 not implemented by the server, 6 server "
            "error. See README 'Operations' and docs/runbook.md."
        ),
    )
    commands = admin.add_subparsers(title="commands", metavar="COMMAND")
    admin.set_defaults(handler=lambda _args: _usage(admin))

    def command(name: str, help_text: str, run: Callable[..., int], rpc: str) -> Any:
        parser = commands.add_parser(name, help=help_text, description=help_text)
        _connection_arguments(parser)
        parser.set_defaults(handler=lambda args: _run(args, name, rpc, run))
        return parser

    command(
        "status", "the active policy set, its history and every journey", _status, "GetPolicyStatus"
    )
    for name, rpc, verb in (
        ("validate", "ValidatePolicy", "compile and test a policy set without activating it"),
        ("activate", "ActivatePolicy", "compile and test a policy set, then make it active"),
    ):
        p = command(name, verb, _validate if name == "validate" else _activate, rpc)
        p.add_argument("directory", metavar="DIR", help="the policy set directory")
        p.add_argument(
            "--server-path",
            action="store_true",
            help="DIR is a directory on the server (default: read it here and send the files)",
        )
        if name == "activate":
            p.add_argument(
                "--expect-digest",
                metavar="DIGEST",
                default="",
                help="activate only if the set compiles to this digest (from `validate`)",
            )
            p.add_argument("--reason", default="", help="why, for the audit log")
    rollback = command("rollback", "return to an earlier policy set", _rollback, "RollbackPolicy")
    rollback.add_argument(
        "--digest", default="", help="the digest to return to (default: the previous set)"
    )
    rollback.add_argument("--reason", default="", help="why, for the audit log")
    for name, rpc in (("pause", "PauseJourney"), ("resume", "ResumeJourney")):
        p = command(
            name,
            f"{name} a journey, an action or a channel on every replica (kill switch)",
            _pause if name == "pause" else _resume,
            rpc,
        )
        p.add_argument("id", metavar="ID", help="the journey id (or action / channel id)")
        kind = p.add_mutually_exclusive_group()
        kind.add_argument(
            "--action", dest="kind", action="store_const", const="action", help="ID is an action"
        )
        kind.add_argument(
            "--channel", dest="kind", action="store_const", const="channel", help="ID is a channel"
        )
        p.set_defaults(kind="journey")
        p.add_argument("--reason", default="", help="why, for the audit log and the status")
        if name == "pause":
            p.add_argument(
                "--until",
                type=_instant,
                metavar="WHEN",
                help="the pause ends by itself then: RFC 3339 (2025-06-01T09:00:00Z) or a "
                "duration from now (30m, 2h)",
            )
    explain = command(
        "explain", "a past decision from the decision log", _explain, "ExplainDecision"
    )
    explain.add_argument("decision_id", metavar="DECISION_ID")
    export = command(
        "export",
        "everything stored about a customer (privacy access request; all pages)",
        _export,
        "ExportCustomer",
    )
    export.add_argument("customer_id", metavar="CUSTOMER")
    export.add_argument(
        "--page-size",
        type=int,
        default=0,
        metavar="N",
        help="history entries per call (server default 100, at most 1000)",
    )
    export.add_argument(
        "--output", metavar="FILE", help="write the complete export as JSON to FILE"
    )
    forget = command(
        "forget",
        "erase everything stored about a customer (privacy erasure request; idempotent)",
        _forget,
        "ForgetCustomer",
    )
    forget.add_argument("customer_id", metavar="CUSTOMER")
    forget.add_argument(
        "--reason", default="", help="e.g. the privacy ticket id, for the audit log"
    )
    forget.add_argument("--yes", action="store_true", help="really erase (required)")


def _connection_arguments(parser: argparse.ArgumentParser) -> None:
    env = os.environ.get
    group = parser.add_argument_group("connection")
    group.add_argument(
        "--target",
        metavar="HOST:PORT",
        default=env("ARBITER_TARGET", _DEFAULT_TARGET),
        help=f"the server's gRPC address [ARBITER_TARGET] (default {_DEFAULT_TARGET})",
    )
    group.add_argument("--tls", action="store_true", help="TLS with the system's root CAs")
    group.add_argument(
        "--ca",
        metavar="FILE",
        default=env("ARBITER_CA", ""),
        help="CA of the server's certificate (PEM); implies TLS [ARBITER_CA]",
    )
    group.add_argument(
        "--cert",
        metavar="FILE",
        default=env("ARBITER_CLIENT_CERT", ""),
        help="client certificate for mutual TLS [ARBITER_CLIENT_CERT]",
    )
    group.add_argument(
        "--key",
        metavar="FILE",
        default=env("ARBITER_CLIENT_KEY", ""),
        help="client private key for mutual TLS [ARBITER_CLIENT_KEY]",
    )
    group.add_argument(
        "--token", default=env("ARBITER_TOKEN", ""), help="bearer token (JWT) [ARBITER_TOKEN]"
    )
    group.add_argument(
        "--token-file",
        metavar="FILE",
        default=env("ARBITER_TOKEN_FILE", ""),
        help="read the bearer token from FILE [ARBITER_TOKEN_FILE]",
    )
    group.add_argument(
        "--api-key", default=env("ARBITER_API_KEY", ""), help="API key [ARBITER_API_KEY]"
    )
    group.add_argument(
        "--timeout", type=_seconds, default=10.0, metavar="SECONDS", help="per call (default 10)"
    )
    parser.add_argument("--json", action="store_true", help="print the answer as JSON")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
    return value


def _instant(text: str) -> datetime:
    """``--until``: an RFC 3339 instant, or a duration from now (``30m``, ``2h``, ``1h30m``)."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        from arbiter.policies import parse_duration_ms

        try:
            return datetime.now(UTC) + timedelta(milliseconds=parse_duration_ms(text))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected an RFC 3339 instant or a duration like 30m, got {text!r}"
            ) from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give a time zone (e.g. Z), got {text!r}")
    return moment


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_usage(sys.stderr)
    return 2


# --------------------------------------------------------------------------- calling


class _Admin:
    """An AdminService stub on one channel, with the call options of the parsed arguments."""

    def __init__(self, args: argparse.Namespace) -> None:
        import grpc

        from arbiter.v1 import admin_pb2_grpc

        metadata: list[tuple[str, str]] = []
        token = args.token
        if args.token_file:
            token = _read_text(args.token_file, "--token-file").strip()
        if token:
            metadata.append(("authorization", f"Bearer {token}"))
        if args.api_key:
            metadata.append(("x-api-key", args.api_key))
        self.metadata = tuple(metadata)
        self.timeout = args.timeout
        if bool(args.cert) != bool(args.key):
            raise _Failed("--cert and --key go together")
        if args.ca or args.tls or args.cert:
            from arbiter_client import tls_credentials

            try:
                credentials = tls_credentials(
                    args.ca or None,
                    certificate_chain=args.cert or None,
                    private_key=args.key or None,
                )
            except OSError as exc:
                raise _Failed(f"cannot read a TLS file: {exc}") from None
            self.channel = grpc.secure_channel(args.target, credentials, options=_CHANNEL)
        else:
            self.channel = grpc.insecure_channel(args.target, options=_CHANNEL)
        self.stub = admin_pb2_grpc.AdminServiceStub(self.channel)

    def call(self, rpc: str, request: Any) -> Any:
        return getattr(self.stub, rpc)(request, timeout=self.timeout, metadata=self.metadata)

    def close(self) -> None:
        self.channel.close()


def _run(args: argparse.Namespace, name: str, rpc: str, run: Callable[..., int]) -> int:
    """Run one subcommand; every failure becomes a message and an exit code (no traceback)."""
    import grpc

    admin: _Admin | None = None
    try:
        admin = _Admin(args)
        return run(admin, args)
    except _Failed as exc:
        print(f"{_PROG} {name}: {exc}", file=sys.stderr)
        return 2
    except grpc.RpcError as exc:
        return _rpc_failed(args, name, getattr(args, "rpc", rpc), exc)
    except KeyboardInterrupt:
        print(f"{_PROG} {name}: interrupted", file=sys.stderr)
        return 130
    finally:
        if admin is not None:
            admin.close()


def _rpc_failed(args: argparse.Namespace, name: str, rpc: str, exc: grpc.RpcError) -> int:
    code = exc.code() if hasattr(exc, "code") else None
    code_name = code.name if code is not None else "UNKNOWN"
    message = (exc.details() if hasattr(exc, "details") else "") or ""
    hint = _HINTS.get(code_name, "").format(
        target=args.target,
        timeout=args.timeout,
        rpc=rpc,
        role="privacy" if rpc in ("ExportCustomer", "ForgetCustomer") else "admin",
    )
    line = f"{_PROG} {name}: {code_name}: {message}" if message else f"{_PROG} {name}: {code_name}"
    print(line + (f"\n  hint: {hint}" if hint else ""), file=sys.stderr)
    if args.json:
        print(json.dumps({"error": {"code": code_name, "message": message}}))
    return EXIT.get(code_name, _SERVER_FAILED)


def _to_json(message: Any) -> dict[str, Any]:
    """A message as plain JSON-able data: field names as in the proto, enums by name,
    timestamps as ISO 8601, ``arbiter.v1.Value`` as the value itself (not its wrapper), unset
    fields left out."""
    from google.protobuf.descriptor import FieldDescriptor

    from arbiter_client import from_value

    def single(field: Any, value: Any) -> Any:
        if field.type == FieldDescriptor.TYPE_ENUM:
            return (
                field.enum_type.values_by_number[value].name
                if value in (field.enum_type.values_by_number)
                else value
            )
        if field.type == FieldDescriptor.TYPE_BYTES:
            return base64.b64encode(value).decode()
        if field.type != FieldDescriptor.TYPE_MESSAGE:
            return value
        name = field.message_type.full_name
        if name == "arbiter.v1.Value":
            return from_value(value)
        if name == "google.protobuf.Timestamp":
            return _stamp(value)
        return _to_json(value)

    out: dict[str, Any] = {}
    for field, value in message.ListFields():
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            item = field.message_type.fields_by_name["value"]
            out[field.name] = {key: single(item, v) for key, v in value.items()}
        elif field.is_repeated:
            out[field.name] = [single(field, v) for v in value]
        else:
            out[field.name] = single(field, value)
    return out


def _json_default(obj: Any) -> Any:
    if isinstance(obj, datetime):
        return obj.isoformat()
    if isinstance(obj, bytes):
        return base64.b64encode(obj).decode()
    return str(obj)


def _dumps(doc: Any) -> str:
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False, default=_json_default)


def _print_json(doc: Any) -> None:
    print(_dumps(doc))


def _read_text(path: str, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise _Failed(f"{what} {path}: {exc.strerror or exc}") from None


def _stamp(ts: Any) -> str:
    """A protobuf Timestamp as ISO 8601 UTC, ``-`` when unset."""
    if not ts.seconds and not ts.nanos:
        return "-"
    moment = datetime.fromtimestamp(ts.seconds + ts.nanos / 1e9, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --------------------------------------------------------------------------- policy


def _policy_files(directory: str) -> Iterator[tuple[str, bytes]]:
    """Every file of a policy set directory (hidden files and directories skipped), by path."""
    root = Path(directory)
    if not root.is_dir():
        raise _Failed(f"{directory}: not a directory")
    total = 0
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts) or not path.is_file():
            continue
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise _Failed(f"{path}: {exc.strerror or exc}") from None
        total += len(content)
        if total > _MAX_BUNDLE_BYTES:
            raise _Failed(
                f"{directory}: more than {_MAX_BUNDLE_BYTES // 1024} KiB, over what a server "
                "accepts in one request; put it on the server and pass --server-path"
            )
        yield relative.as_posix(), content


def _source(request: Any, args: argparse.Namespace) -> None:
    """Fill a Validate/ActivatePolicyRequest's ``source`` from DIR."""
    if args.server_path:
        request.directory = args.directory
        return
    bundle = request.bundle
    bundle.SetInParent()
    for path, content in _policy_files(args.directory):
        bundle.files.add(path=path, content=content)
    if not bundle.files:
        raise _Failed(f"{args.directory}: no files")


def _policy_line(info: Any) -> str:
    if not info.version and not info.digest:
        return "-"
    text = f"{info.version} ({info.digest})"
    if info.activated_at.seconds:
        text += f", activated {_stamp(info.activated_at)}"
        if info.activated_by:
            text += f" by {info.activated_by}"
    # Fields of newer contracts, when the server sends them.
    if getattr(info, "reason", ""):
        text += f" ({info.reason})"
    if getattr(info, "test_result", ""):
        text += f"; gate: {info.test_result}"
    return text


def _print_errors(errors: Any) -> None:
    for error in errors:
        where = error.file
        if error.line:
            where += f":{error.line}" + (f":{error.column}" if error.column else "")
        code = f" [{error.code}]" if error.code else ""
        print(f"  {where}: {error.message}{code}")


def _status(admin: _Admin, args: argparse.Namespace) -> int:
    from arbiter.v1 import admin_pb2

    reply = admin.call("GetPolicyStatus", admin_pb2.GetPolicyStatusRequest())
    if args.json:
        _print_json(_to_json(reply))
        return 0
    print(f"active:  {_policy_line(reply.active)}")
    for info in reply.history:
        print(f"history: {_policy_line(info)}")
    if reply.journeys:
        print("journeys:")
        for journey in reply.journeys:
            status = admin_pb2.JourneyStatus.Name(journey.status).removeprefix("JOURNEY_STATUS_")
            extra = " (operator)" if journey.paused_by_operator else ""
            if journey.reason:
                extra += f": {journey.reason}"
            print(f"  {journey.journey_id}: {status.lower()}{extra}")
    pauses = [p for p in getattr(reply, "pauses", ()) if p.paused]
    if pauses:
        print("operator pauses:")
        for pause in pauses:
            print(f"  {_pause_info_line(pause)}")
    replicas = getattr(reply, "replicas", ())
    if replicas:
        print("replicas:")
        for replica in replicas:
            line = f"  {replica.replica_id}: {replica.version} ({replica.digest})"
            line += f", seen {_stamp(replica.seen_at)}"
            if replica.error:
                line += f"; last good set kept: {replica.error}"
            print(line)
    if reply.last_errors:
        print("last failed load or activation:")
        _print_errors(reply.last_errors)
    return 0


def _validate(admin: _Admin, args: argparse.Namespace) -> int:
    from arbiter.v1 import admin_pb2

    request = admin_pb2.ValidatePolicyRequest()
    _source(request, args)
    reply = admin.call("ValidatePolicy", request)
    if args.json:
        _print_json(_to_json(reply))
    elif reply.valid:
        print(f"valid: {_policy_line(reply.policy)}")
    else:
        print(f"invalid: {len(reply.errors)} error(s)")
        _print_errors(reply.errors)
    return 0 if reply.valid else 1


def _activate(admin: _Admin, args: argparse.Namespace) -> int:
    from arbiter.v1 import admin_pb2

    request = admin_pb2.ActivatePolicyRequest(
        expected_digest=args.expect_digest, reason=args.reason
    )
    _source(request, args)
    reply = admin.call("ActivatePolicy", request)
    if args.json:
        _print_json(_to_json(reply))
    else:
        print(f"active:   {_policy_line(reply.active)}")
        print(f"previous: {_policy_line(reply.previous)}")
    return 0


def _rollback(admin: _Admin, args: argparse.Namespace) -> int:
    from arbiter.v1 import admin_pb2

    reply = admin.call(
        "RollbackPolicy", admin_pb2.RollbackPolicyRequest(digest=args.digest, reason=args.reason)
    )
    if args.json:
        _print_json(_to_json(reply))
    else:
        print(f"active:   {_policy_line(reply.active)}")
        print(f"previous: {_policy_line(reply.previous)}")
    return 0


_PAUSE_RPCS: Final = {
    ("pause", "journey"): ("PauseJourney", "PauseJourneyRequest", "journey_id"),
    ("pause", "action"): ("PauseAction", "PauseActionRequest", "action_id"),
    ("pause", "channel"): ("PauseChannel", "PauseChannelRequest", "channel_id"),
    ("resume", "journey"): ("ResumeJourney", "ResumeJourneyRequest", "journey_id"),
    ("resume", "action"): ("ResumeAction", "ResumeActionRequest", "action_id"),
    ("resume", "channel"): ("ResumeChannel", "ResumeChannelRequest", "channel_id"),
}


def _pause_info_line(info: Any) -> str:
    """One PauseInfo (or JourneyInfo) as ``kind id: paused until ... by ...: reason``."""
    from arbiter.v1 import admin_pb2

    if isinstance(info, admin_pb2.JourneyInfo):
        status = admin_pb2.JourneyStatus.Name(info.status).removeprefix("JOURNEY_STATUS_").lower()
        text = f"journey {info.journey_id}: {status}"
        by = getattr(info, "paused_by", "")
    else:
        text = f"{info.kind} {info.target}: {'paused' if info.paused else 'resumed'}"
        by = info.changed_by
    until = getattr(info, "until", None)
    if until is not None and (until.seconds or until.nanos):
        text += f" until {_stamp(until)}"
    if by:
        text += f" by {by}"
    if info.reason:
        text += f": {info.reason}"
    return text


def _pause_or_resume(admin: _Admin, args: argparse.Namespace, verb: str) -> int:
    from arbiter.v1 import admin_pb2

    rpc, message, field = _PAUSE_RPCS[(verb, args.kind)]
    args.rpc = rpc  # for the error hint
    until = getattr(args, "until", None)
    kind = getattr(admin_pb2, message, None)
    if kind is None or (until is not None and "until" not in kind.DESCRIPTOR.fields_by_name):
        raise _Failed(
            f"this arbiter's contract has no AdminService.{rpc}"
            + (" with --until" if kind is not None else "")
            + " (upgrade the arbiter package)"
        )
    request = kind(reason=args.reason, **{field: args.id})
    if until is not None:
        request.until.FromDatetime(until)
    reply = admin.call(rpc, request)
    if args.json:
        _print_json(_to_json(reply))
        return 0
    print(_pause_info_line(reply.journey if args.kind == "journey" else reply.pause))
    return 0


def _pause(admin: _Admin, args: argparse.Namespace) -> int:
    return _pause_or_resume(admin, args, "pause")


def _resume(admin: _Admin, args: argparse.Namespace) -> int:
    return _pause_or_resume(admin, args, "resume")


# --------------------------------------------------------------------------- decisions


def _explain(admin: _Admin, args: argparse.Namespace) -> int:
    from arbiter.v1 import admin_pb2, decision_pb2

    reply = admin.call(
        "ExplainDecision", admin_pb2.ExplainDecisionRequest(decision_id=args.decision_id)
    )
    record = reply.record
    if args.json:
        doc = _to_json(reply)
        if record.record_json:  # the complete record, as an object rather than a string
            doc["record"]["record_json"] = json.loads(record.record_json)
        _print_json(doc)
        return 0
    print(f"decision {record.decision_id} ({record.kind}) at {_stamp(record.decided_at)}")
    print(f"  customer {record.customer_id}, placement {record.placement or '-'}")
    print(f"  policy {record.policy_version} ({record.policy_digest})")
    print(f"  caller {record.caller or '-'}, committed {str(record.committed).lower()}")
    chosen = ", ".join(f"{a.action_id} on {a.channel}" for a in record.actions) or "nothing"
    print(f"  chose: {chosen}")
    for candidate in record.candidates:
        outcome = decision_pb2.CandidateOutcome.Name(candidate.outcome).removeprefix(
            "CANDIDATE_OUTCOME_"
        )
        reason = decision_pb2.Reason.Name(candidate.reason).removeprefix("REASON_")
        detail = f" ({candidate.detail})" if candidate.detail else ""
        print(f"    {candidate.action_id}: {outcome.lower()}, {reason.lower()}{detail}")
    for degradation in record.degradations:
        print(f"  degraded: {degradation.detail}")
    if record.masked_fields:
        print(f"  masked: {', '.join(record.masked_fields)}")
    return 0


# --------------------------------------------------------------------------- privacy

# The paged history keys of an export (arbiter.server.privacy.HISTORY; not imported: the
# CLI must not need the server's modules to call one).
_HISTORY: Final = ("decisions", "feedback", "applied_events", "decision_log")


def _export(admin: _Admin, args: argparse.Namespace) -> int:
    from arbiter.v1 import admin_pb2

    if args.page_size < 0:
        raise _Failed("--page-size must be >= 0")
    doc: dict[str, Any] | None = None
    token = ""
    pages = 0
    while True:
        reply = admin.call(
            "ExportCustomer",
            admin_pb2.ExportCustomerRequest(
                customer_id=args.customer_id, page_size=args.page_size, page_token=token
            ),
        )
        pages += 1
        page = _to_json(reply)
        if doc is None:
            doc = page
            doc.setdefault("state", {})
        else:
            for key, items in page.get("state", {}).items():
                if key in _HISTORY:
                    doc["state"].setdefault(key, []).extend(items)
        token = reply.next_page_token
        if not token:
            break
    doc.pop("next_page_token", None)
    if args.output:
        try:
            Path(args.output).write_text(_dumps(doc) + "\n", "utf-8")
        except OSError as exc:
            raise _Failed(f"--output {args.output}: {exc.strerror or exc}") from None
    if args.json:
        _print_json(doc)
        return 0
    state = doc.get("state", {})
    print(f"customer {args.customer_id} (exported {doc.get('exported_at', '-')}, {pages} page(s))")
    traits = doc.get("traits", {})
    print(f"  traits: {', '.join(sorted(traits)) or '-'}")
    for consent in doc.get("consent", []):
        recorded = consent.get("state", "CONSENT_STATE_UNSPECIFIED").removeprefix("CONSENT_STATE_")
        print(f"  consent {consent.get('purpose')}: {recorded.lower()}")
    print(f"  do not contact: {str(doc.get('do_not_contact', False)).lower()}")
    print(f"  segments: {', '.join(state.get('segments', [])) or '-'}")
    print(f"  journeys: {', '.join(sorted(state.get('journeys', {}))) or '-'}")
    print(f"  event counters: {', '.join(sorted(state.get('events', {}))) or '-'}")
    print(f"  caps: {len(state.get('caps', {}))} key(s)")
    counts = ", ".join(
        f"{len(state[key])} {key.replace('_', ' ')}" for key in _HISTORY if key in state
    )
    print(f"  history: {counts}")
    if args.output:
        print(f"  written to {args.output}")
    else:
        print("  (--json or --output FILE for everything)")
    return 0


def _forget(admin: _Admin, args: argparse.Namespace) -> int:
    from arbiter.v1 import admin_pb2

    if not args.yes:
        raise _Failed(
            f"erasing customer {args.customer_id} cannot be undone: pass --yes (and --reason)"
        )
    reply = admin.call(
        "ForgetCustomer",
        admin_pb2.ForgetCustomerRequest(customer_id=args.customer_id, reason=args.reason),
    )
    if args.json:
        _print_json(_to_json(reply))
    elif reply.existed:
        print(f"customer {args.customer_id}: erased at {_stamp(reply.forgotten_at)}")
    else:
        print(f"customer {args.customer_id}: nothing was stored (already erased?)")
    return 0
