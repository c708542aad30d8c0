"""`arbiter state`: operator commands for the shared state in Redis (status, init after a loss)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``state status`` and ``state init`` to ``arbiter`` (see :class:`arbiter.server.cli.CommandGroup`)."""
    state = subparsers.add_parser(
        "state",
        help="inspect or initialise the shared state in Redis",
        description=(
            "Arbiter refuses to read customer state from a Redis without its state epoch "
            "marker (a Redis restarted empty, flushed, or a new deployment): decisions are "
            "answered fail-safe and health is NOT_SERVING until `arbiter state init`. "
            "See docs/runbook.md."
        ),
    )
    commands = state.add_subparsers(title="commands", metavar="COMMAND")
    status = commands.add_parser(
        "status",
        help="per master: role, maxmemory-policy, persistence, state epoch markers",
        description="Exit status 0 when every master holds its epoch markers and does not evict.",
    )
    init = commands.add_parser(
        "init",
        help="write the state epoch where it is missing (new deployment, or after a loss)",
        description=(
            "Declare the current contents of Redis the state of record: writes the missing "
            "epoch markers (existing ones are kept). After a data loss, re-seed profiles and "
            "consent first (UpdateProfile works without the epoch): consent denials that are "
            "not re-seeded are forgotten once this runs."
        ),
    )
    for command in (status, init):
        command.add_argument(
            "--redis-url",
            metavar="URL",
            default=os.environ.get("ARBITER_REDIS_URL", ""),
            required="ARBITER_REDIS_URL" not in os.environ,
            help="Redis URL, as for `arbiter serve` [ARBITER_REDIS_URL]",
        )
        command.add_argument(
            "--key-prefix", metavar="PREFIX", default="arb", help="key prefix (default arb)"
        )
    status.set_defaults(handler=_status)
    init.set_defaults(handler=_init)
    state.set_defaults(handler=lambda _args: _usage(state))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_usage(sys.stderr)
    return 2


def _run(args: argparse.Namespace, action: Any) -> int:
    from arbiter.state import RedisStore, StoreError

    async def main() -> int:
        store = RedisStore.from_url(args.redis_url, prefix=args.key_prefix, default_timeout_s=5.0)
        try:
            return int(await action(store))
        finally:
            await store.close()

    try:
        return asyncio.run(main())
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _status(args: argparse.Namespace) -> int:
    from arbiter.state import EVICTING_POLICIES, describe

    async def action(store: Any) -> int:
        healthy = True
        for node in await describe(store):
            have, want = node["epoch_markers"]
            epoch = "present" if have == want else ("missing" if have == 0 else "partial")
            policy = node["maxmemory_policy"]
            if have != want or policy in EVICTING_POLICIES:
                healthy = False
            print(
                f"{node['node']}: role {node['role']}, maxmemory-policy {policy}"
                f"{' (EVICTS: refused by arbiter serve)' if policy in EVICTING_POLICIES else ''}, "
                f"maxmemory {node['maxmemory']}, aof {'on' if node['aof_enabled'] == 1 else 'off'}, "
                f"epoch: {epoch} ({have}/{want} markers)"
            )
        return 0 if healthy else 1

    return _run(args, action)


def _init(args: argparse.Namespace) -> int:
    async def action(store: Any) -> int:
        written = await store.init_state()
        noun = "marker" if written == 1 else "markers"
        print(f"{written} epoch {noun} written (existing markers kept)")
        return 0

    return _run(args, action)
