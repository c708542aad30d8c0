"""`arbiter auth new-key`: mint a random API key and print the hashed entry for the API key file."""

from __future__ import annotations

import argparse
import secrets

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``auth`` command group to ``arbiter``."""
    auth = subparsers.add_parser("auth", help="credentials for `arbiter serve`")
    commands = auth.add_subparsers(title="commands", metavar="COMMAND")
    new_key = commands.add_parser(
        "new-key",
        help="print a new random API key and its entry for the API key file",
        description=(
            "Prints the key once (give it to the caller; it is not stored) and the YAML entry "
            "with its SHA-256 to append under `keys:` in the file named by --api-keys."
        ),
    )
    new_key.add_argument("--id", required=True, help="a name for logs and audit, e.g. checkout")
    new_key.add_argument(
        "--roles", required=True, help="comma-separated: decide, ingest, admin, privacy, metrics"
    )
    new_key.add_argument("--placements", default="", help="comma-separated; empty = any")
    new_key.set_defaults(handler=_new_key)


def _new_key(args: argparse.Namespace) -> int:
    from arbiter.server.security.credentials import hash_api_key
    from arbiter.server.security.identity import Role

    roles = [r.strip() for r in args.roles.split(",") if r.strip()]
    unknown = [r for r in roles if r not in {role.value for role in Role}]
    if unknown or not roles:
        print(f"arbiter auth new-key: unknown roles: {', '.join(unknown) or '(none given)'}")
        return 2
    key = "arb_" + secrets.token_urlsafe(32)
    placements = [p.strip() for p in args.placements.split(",") if p.strip()]
    print(f"key (shown once): {key}")
    print("entry for the API key file:")
    print(f"  - id: {args.id}")
    print(f"    sha256: {hash_api_key(key)}")
    print(f"    roles: [{', '.join(roles)}]")
    if placements:
        print(f"    placements: [{', '.join(placements)}]")
    return 0
