"""``arbiter decisions tail|export``: read the decision log, from its JSON Lines file or its Redis Stream.

``--log DEST`` names the log as the server's ``--decision-log`` does: a
file path, or a ``redis://`` / ``redis+cluster://`` URL (the stream). Both
commands print one record per line, as written (JSON); ``--customer``,
``--kind``, ``--since`` and ``--until`` filter. ``tail`` follows new records
(Ctrl-C stops it); ``export`` prints what the log holds and stops.
:func:`records_of` and :func:`find_record` are shared with ``arbiter
replay`` and ``arbiter policy impact``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import msgspec

from arbiter.policies import decision_log, parse_instant_ms

__all__ = ["add_log_argument", "find_record", "records_of", "register"]

if TYPE_CHECKING:
    _Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]


def _is_redis(dest: str) -> bool:
    return dest.startswith(("redis://", "rediss://", "redis+"))


def add_log_argument(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    """``--log DEST``: the decision log to read."""
    parser.add_argument(
        "--log",
        metavar="DEST",
        required=required,
        help="the decision log: a JSON Lines file, or a redis:// / redis+cluster:// URL (the stream)",
    )


def _stream(dest: str) -> Any:
    from arbiter.state import RedisStreamSink

    return RedisStreamSink.from_url(dest)


def _drain(agen: AsyncIterator[bytes], loop: asyncio.AbstractEventLoop) -> Iterator[bytes]:
    while True:
        try:
            yield loop.run_until_complete(agen.__anext__())
        except StopAsyncIteration:
            return


def records_of(dest: str) -> Iterator[bytes]:
    """Every record line of the log ``dest``, oldest first."""
    if not _is_redis(dest):
        from arbiter.state import read_file

        yield from read_file(dest)
        return
    loop = asyncio.new_event_loop()
    sink = _stream(dest)
    try:
        yield from _drain(sink.read(), loop)
    finally:
        loop.run_until_complete(sink.close())
        loop.close()


def find_record(dest: str, decision_id: str) -> bytes | None:
    """The newest record of ``decision_id`` in the log ``dest`` (``None``: not there)."""
    if not _is_redis(dest):
        from arbiter.state import find_in_file

        return find_in_file(dest, decision_id)

    async def find() -> bytes | None:
        sink = _stream(dest)
        try:
            found: bytes | None = await sink.find(decision_id)
            return found
        finally:
            await sink.close()

    return asyncio.run(find())


class _Filter:
    """The ``--customer`` / ``--kind`` / ``--since`` / ``--until`` filter of a command."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.customer = args.customer
        self.kind = args.kind
        self.since = None if args.since is None else parse_instant_ms(args.since)
        self.until = None if args.until is None else parse_instant_ms(args.until)
        self.active = any(v is not None for v in (self.customer, self.kind, self.since, self.until))

    def keep(self, line: bytes) -> bool:
        if not self.active:
            return True
        try:
            record = decision_log.decode_record(line)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return False
        return (
            (self.customer is None or record.customer_id == self.customer)
            and (self.kind is None or record.kind == self.kind)
            and (self.since is None or record.now_ms >= self.since)
            and (self.until is None or record.now_ms < self.until)
        )


def _add_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--customer", metavar="ID", help="only this customer's records")
    parser.add_argument("--kind", choices=("decide", "check"), help="only Decides or Checks")
    parser.add_argument(
        "--since", metavar="TIME", help="decided at or after (RFC 3339 or epoch ms)"
    )
    parser.add_argument("--until", metavar="TIME", help="decided before (RFC 3339 or epoch ms)")


def register(subparsers: _Subparsers) -> None:
    """Add ``decisions tail|export`` to ``arbiter``."""
    group = subparsers.add_parser("decisions", help="read the decision log")
    commands = group.add_subparsers(dest="decisions_command", metavar="COMMAND", required=True)
    tail = commands.add_parser(
        "tail",
        help="print new decision log records as they are written (Ctrl-C stops)",
        description="Follows the file (across rotations) or the stream; one JSON record per line.",
    )
    add_log_argument(tail)
    tail.add_argument("--from-start", action="store_true", help="print the kept records first")
    _add_filters(tail)
    tail.set_defaults(handler=_tail_command)
    export = commands.add_parser(
        "export",
        help="print every record the decision log holds (JSON Lines), oldest first",
    )
    add_log_argument(export)
    export.add_argument("--output", metavar="FILE", help="write to FILE instead of stdout")
    _add_filters(export)
    export.set_defaults(handler=_export_command)


def _filter(args: argparse.Namespace) -> _Filter | None:
    try:
        return _Filter(args)
    except ValueError as exc:
        print(f"arbiter decisions: {exc}", file=sys.stderr)
        return None


def _export_command(args: argparse.Namespace) -> int:
    keep = _filter(args)
    if keep is None:
        return 2
    out = open(args.output, "wb") if args.output else sys.stdout.buffer  # noqa: SIM115
    count = 0
    try:
        for line in records_of(args.log):
            if keep.keep(line):
                out.write(line + b"\n")
                count += 1
    except (OSError, Exception) as exc:  # a missing file, an unreachable Redis
        print(f"arbiter decisions export: cannot read {args.log}: {exc}", file=sys.stderr)
        return 2
    finally:
        if args.output:
            out.close()
        else:
            out.flush()
    if args.output:
        print(f"{count} records written to {args.output}", file=sys.stderr)
    return 0


async def _follow(args: argparse.Namespace, keep: _Filter) -> None:
    if _is_redis(args.log):
        sink = _stream(args.log)
        source: AsyncIterator[bytes] = sink.follow(from_start=args.from_start)
    else:
        from arbiter.state import follow_file

        sink, source = None, follow_file(args.log, from_start=args.from_start)
    out = sys.stdout.buffer
    try:
        async for line in source:
            if keep.keep(line):
                out.write(line + b"\n")
                out.flush()
    finally:
        if sink is not None:
            await sink.close()


def _tail_command(args: argparse.Namespace) -> int:
    keep = _filter(args)
    if keep is None:
        return 2
    with contextlib.suppress(KeyboardInterrupt, BrokenPipeError):
        asyncio.run(_follow(args, keep))
    return 0
