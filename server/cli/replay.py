"""``arbiter replay``: re-evaluate recorded decisions and show that they reproduce, byte for byte, or the exact difference.

A record comes from the decision log (``DECISION_ID --log DEST``), from a
file (``--record FILE``: one record, or JSON Lines of records), or every
record of a log (``--all --log DEST``). Each is re-evaluated
(:func:`arbiter.policies.decision_log.replay`) under the ``--policies``
directory whose content digest is the one the record names; with a single
``--policies`` directory of another version, that version is used instead
and the output says so (a swapped version shows what it would change).

Output: ``identical`` per record, or a unified diff of the recorded and the
replayed outcome (JSON, one member per line). Exit 0 when every record
reproduced exactly, 1 when any differs or is missing, 2 on usage errors,
unreadable input or a policy set that does not compile.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, TextIO

import msgspec

from arbiter.policies import CompiledPolicy, PolicyError, decision_log, load_policy
from arbiter.server.cli.decisions import add_log_argument, find_record, records_of

__all__ = ["PolicyChoice", "register"]

if TYPE_CHECKING:
    _Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]

_SHOWN_DIFFS = 3  # with --all: diffs printed in full (the rest are counted)


def register(subparsers: _Subparsers) -> None:
    """Add ``replay`` to ``arbiter``."""
    replay = subparsers.add_parser(
        "replay",
        help="re-evaluate recorded decisions; show they reproduce byte for byte, or the diff",
        description=(
            "Re-evaluates a decision log record's inputs (request, customer state read, pauses, "
            "store outcome) under the policy version it names and compares the outcome byte for "
            "byte. Exit 0 when identical, 1 when any differs or is missing, 2 on errors."
        ),
    )
    replay.add_argument("decision_id", nargs="?", metavar="DECISION_ID")
    add_log_argument(replay, required=False)
    replay.add_argument("--record", metavar="FILE", help="records from FILE (JSON or JSON Lines)")
    replay.add_argument("--all", action="store_true", help="every record of --log / --record")
    replay.add_argument(
        "--policies",
        metavar="DIR",
        action="append",
        required=True,
        help="policy set directory; repeat for several versions (each record uses its own)",
    )
    replay.add_argument("-q", "--quiet", action="store_true", help="print only the summary")
    replay.set_defaults(handler=_replay_command)


class PolicyChoice:
    """The policy each record replays under: the one with its digest, else the only one given."""

    def __init__(self, policies: Iterable[CompiledPolicy]) -> None:
        self.policies = list(policies)
        self.by_digest = {p.digest: p for p in self.policies}

    def for_record(self, record: decision_log.DecisionRecord) -> CompiledPolicy | None:
        policy = self.by_digest.get(record.policy.digest)
        if policy is None and len(self.policies) == 1:
            return self.policies[0]
        return policy


def _load(directories: Iterable[str], out: TextIO) -> PolicyChoice | None:
    policies = []
    for directory in directories:
        try:
            policies.append(load_policy(directory))
        except (PolicyError, OSError) as exc:
            print(f"arbiter replay: policy set {directory} does not load: {exc}", file=out)
            return None
    return PolicyChoice(policies)


def _from_file(path: str) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        text = handle.read().strip()
    if text.startswith(b"{") and b"\n" not in text:
        yield text
        return
    for line in text.splitlines():
        if line.strip():
            yield line.strip()


def _lines(args: argparse.Namespace) -> Iterator[bytes]:
    if args.record:
        for line in _from_file(args.record):
            if args.all or args.decision_id is None or args.decision_id.encode() in line:
                yield line
        return
    if args.all:
        yield from records_of(args.log)
        return
    found = find_record(args.log, args.decision_id)
    if found is None:
        raise LookupError(f"decision `{args.decision_id}` is not in {args.log}")
    yield found


class _Tally:
    def __init__(self) -> None:
        self.identical = self.differ = self.missing_policy = self.masked = 0
        self.shown = 0


def _replay_one(
    record: decision_log.DecisionRecord,
    choice: PolicyChoice,
    tally: _Tally,
    out: TextIO,
    *,
    verbose: bool,
) -> None:
    policy = choice.for_record(record)
    if policy is None:
        tally.missing_policy += 1
        print(f"{record.decision_id}: no --policies directory has {record.policy.digest}", file=out)
        return
    swapped = policy.digest != record.policy.digest
    masked = decision_log.masked_reads(record, policy)
    tally.masked += bool(masked)
    replayed = decision_log.replay(record, policy)
    diff = decision_log.outcome_diff(record.decision, replayed)
    note = (
        f" (recorded under {record.policy.policy_version}, replayed under {policy.policy_version})"
        if swapped
        else ""
    )
    if not diff:
        tally.identical += 1
        if verbose:
            print(f"{record.decision_id}: identical{note}", file=out)
        return
    tally.differ += 1
    if not verbose and tally.shown >= _SHOWN_DIFFS:
        return
    tally.shown += 1
    print(f"{record.decision_id}: differs{note}", file=out)
    if masked:
        print(f"  the policy reads masked personal fields: {', '.join(masked)}", file=out)
    for line in diff:
        print(line, file=out)


def _replay_command(args: argparse.Namespace) -> int:
    out = sys.stdout
    if not (args.record or args.log):
        print("arbiter replay: give --log DEST or --record FILE", file=sys.stderr)
        return 2
    if not (args.all or args.decision_id or args.record):
        print("arbiter replay: give a DECISION_ID, or --all", file=sys.stderr)
        return 2
    choice = _load(args.policies, sys.stderr)
    if choice is None:
        return 2
    tally = _Tally()
    verbose = not (args.quiet or args.all)
    try:
        for line in _lines(args):
            record = decision_log.decode_record(line)
            _replay_one(record, choice, tally, out, verbose=verbose)
    except LookupError as exc:
        print(f"arbiter replay: {exc}", file=sys.stderr)
        return 1
    except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        print(f"arbiter replay: cannot read the record: {exc}", file=sys.stderr)
        return 2
    total = tally.identical + tally.differ + tally.missing_policy
    print(
        f"{total} replayed: {tally.identical} identical, {tally.differ} differ"
        + (f", {tally.missing_policy} without their policy version" if tally.missing_policy else "")
        + (f" ({tally.masked} read masked personal fields)" if tally.masked else ""),
        file=out,
    )
    return 0 if total and tally.identical == total else 1
