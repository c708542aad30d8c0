"""`arbiter worker` (fire due journey steps, deliver the outbox) and `arbiter outbox dlq`."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Any

__all__ = ["register"]


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        required=True,
        metavar="FILE",
        help="outbound deployment file (docs/outbound.md)",
    )
    parser.add_argument(
        "--redis-url",
        metavar="URL",
        default=os.environ.get("ARBITER_REDIS_URL", ""),
        required="ARBITER_REDIS_URL" not in os.environ,
        help="Redis URL (single node) [ARBITER_REDIS_URL]",
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    worker = subparsers.add_parser(
        "worker",
        help="fire due journey steps and deliver the outbox (docs/outbound.md)",
        description=(
            "Claims due wake-ups, decides through the same core as Decide, appends chosen "
            "actions to each destination's outbox and delivers them (retries, rate limits, "
            "circuit breaker, dead letters). Run several; any may be killed."
        ),
    )
    _common(worker)
    worker.add_argument("--policies", required=True, metavar="DIR", help="policy directory")
    worker.add_argument(
        "--metrics-port", type=int, default=0, help="serve Prometheus /metrics on this port"
    )
    worker.add_argument(
        "--reclaim-idle",
        type=float,
        default=30.0,
        metavar="S",
        help="take over outbox entries pending this long on another worker (default 30)",
    )
    worker.set_defaults(handler=_worker)

    outbox = subparsers.add_parser("outbox", help="inspect the outbox: dead letters")
    commands = outbox.add_subparsers(title="commands", metavar="COMMAND")
    dlq = commands.add_parser("dlq", help="dead-lettered entries: list, retry, drop")
    dlq_commands = dlq.add_subparsers(title="commands", metavar="COMMAND")
    for name, helptext in (
        ("list", "list dead letters (JSON lines: id, destination, attempts, last error, entry)"),
        ("retry", "move dead letters back to the outbox with a fresh attempt count"),
        ("drop", "delete dead letters"),
    ):
        command = dlq_commands.add_parser(name, help=helptext)
        _common(command)
        command.add_argument(
            "--destination", metavar="ID", help="only this destination (default: all)"
        )
        if name != "list":
            command.add_argument("ids", nargs="*", metavar="ID", help="entry ids (default: all)")
        command.set_defaults(handler=_dlq, dlq_command=name)
    outbox.set_defaults(handler=lambda _a: _usage(outbox))
    dlq.set_defaults(handler=lambda _a: _usage(dlq))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_usage(sys.stderr)
    return 2


def _load(args: argparse.Namespace) -> Any:
    from arbiter.server.outbound.config import load_config

    return load_config(args.config)


def _worker(args: argparse.Namespace) -> int:
    import logging

    from arbiter.server.outbound.worker import Worker, run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request otherwise
    try:
        config = _load(args)
    except (OSError, ValueError) as exc:
        print(f"arbiter worker: {exc}", file=sys.stderr)
        return 2
    if args.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(args.metrics_port)
    worker = Worker(config, args.policies, args.redis_url, reclaim_idle_s=args.reclaim_idle)
    try:
        import uvloop

        uvloop.run(run_worker(worker))
    except KeyboardInterrupt:
        pass
    return 0


def _dlq(args: argparse.Namespace) -> int:
    try:
        config = _load(args)
    except (OSError, ValueError) as exc:
        print(f"arbiter outbox: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(_dlq_run(args, config))


async def _dlq_run(args: argparse.Namespace, config: Any) -> int:
    import redis.asyncio as redis_asyncio

    from arbiter.server.outbound.redis_ops import decode_entry, encode_entry, outbox_keys

    client: Any = redis_asyncio.Redis.from_url(args.redis_url)
    wanted = set(getattr(args, "ids", []) or [])
    count = 0
    try:
        for dest in config.destinations:
            if args.destination and dest.id != args.destination:
                continue
            keys = outbox_keys(config.prefix, dest.id)
            for raw_id, fields in await client.xrange(keys.dlq):
                entry_id = raw_id.decode()
                if wanted and entry_id not in wanted:
                    continue
                entry = decode_entry(fields[b"e"])
                if args.dlq_command == "list":
                    print(
                        json.dumps(
                            {
                                "id": entry_id,
                                "destination": dest.id,
                                "key": entry.key,
                                "customer_id": entry.customer_id,
                                "action": entry.action,
                                "attempts": entry.attempts,
                                "last_error": entry.last_error,
                            }
                        )
                    )
                elif args.dlq_command == "retry":
                    fresh = encode_entry(
                        type(entry)(
                            **{
                                **{f: getattr(entry, f) for f in entry.__struct_fields__},
                                "attempts": 0,
                            }
                        )
                    )
                    pipe = client.pipeline(transaction=True)
                    pipe.xadd(keys.stream, {"e": fresh})
                    pipe.xdel(keys.dlq, raw_id)
                    await pipe.execute()
                else:
                    await client.xdel(keys.dlq, raw_id)
                count += 1
    finally:
        await client.aclose()
    if args.dlq_command != "list":
        print(f"{args.dlq_command}: {count} entr{'y' if count == 1 else 'ies'}", file=sys.stderr)
    return 0
