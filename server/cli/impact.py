"""``arbiter policy impact``: re-decide recorded traffic under a new policy set and report what changes; a CI gate with ``--max-change`` / ``--fail-on``.

``--decisions LOG`` is the decision log (file or Redis URL); ``--to DIR``
the new policy set; ``--from`` either a directory (both versions
re-evaluated) or a version -- ``2025.06.1``, ``2025.06.1+sha256:...`` or a
digest -- selecting the records decided under it, whose recorded outcomes
are the baseline. The report (:class:`arbiter.policies.impact.ImpactReport`)
prints as text, or JSON with ``--json``. Exit 0 when the gate passes, 1
when it fails (each failure printed), 2 on errors.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, TextIO

import msgspec

from arbiter.policies import CompiledPolicy, PolicyError, decision_log, impact, load_policy
from arbiter.server.cli.decisions import records_of

__all__ = ["add_impact"]

if TYPE_CHECKING:
    _Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]


def add_impact(commands: _Subparsers) -> None:
    """Add ``policy impact`` to the ``policy`` group."""
    cmd = commands.add_parser(
        "impact",
        help="re-decide recorded traffic under a new policy set; report changes; gate CI",
        description=(
            "Re-evaluates the Decide records of --decisions under --to (and --from when it is a "
            "directory; else the recorded outcomes of --from's version are the baseline). "
            "Reports decisions changed, grants per action and channel, new suppressions by "
            "reason and new consent-gated grants. Exit 1 when --max-change or a --fail-on rule "
            "fails."
        ),
    )
    cmd.add_argument("--from", dest="source", metavar="VERSION_OR_DIR", required=True)
    cmd.add_argument("--to", metavar="DIR", required=True)
    cmd.add_argument("--decisions", metavar="LOG", required=True, help="decision log (file or URL)")
    cmd.add_argument(
        "--max-change", metavar="PERCENT", help="fail when more decisions than this change (5%%)"
    )
    cmd.add_argument(
        "--fail-on",
        metavar="RULE",
        action="append",
        default=[],
        help="KIND[:TARGET][>THRESHOLD]; KIND: grant-increase, channel-increase, "
        "consent-gated-grants, new-suppressions (repeatable)",
    )
    cmd.add_argument("--json", action="store_true", help="print the report as JSON")
    cmd.set_defaults(handler=_impact_command)


def _percent(text: str) -> float:
    value = float(text.strip().removesuffix("%"))
    if not 0 <= value <= 100:
        raise ValueError(f"--max-change must be between 0% and 100%, got `{text}`")
    return value / 100


def _matches(record: decision_log.DecisionRecord, version: str) -> bool:
    ref = record.policy
    return version in (ref.version, ref.policy_version, ref.digest)


def _records(log: str, version: str | None) -> Iterator[decision_log.DecisionRecord]:
    for line in records_of(log):
        record = decision_log.decode_record(line)
        if version is None or _matches(record, version):
            yield record


def _table(title: str, before: dict[str, int], after: dict[str, int], out: TextIO) -> None:
    keys = sorted(set(before) | set(after))
    if not keys:
        return
    print(f"{title}:", file=out)
    width = max(len(k) for k in keys)
    for key in keys:
        b, a = before.get(key, 0), after.get(key, 0)
        change = f"{100 * (a - b) / b:+.1f} %" if b else ("new" if a else "")
        print(f"  {key:<{width}}  {b:>7} -> {a:>7}  {change}", file=out)


def _print(report: impact.ImpactReport, out: TextIO) -> None:
    print(
        f"decisions: {report.decisions}, changed: {report.changed} "
        f"({100 * report.changed_share:.2f} %)",
        file=out,
    )
    _table("grants by action", report.grants_before, report.grants_after, out)
    _table("grants by channel", report.channel_before, report.channel_after, out)
    for title, counts in (
        ("new suppressions by reason", report.new_suppressions),
        ("lifted suppressions by former reason", report.lifted_suppressions),
        ("consent-gated grants that would appear, by action", report.consent_gated_new),
    ):
        if counts:
            print(f"{title}:", file=out)
            for key, n in counts.most_common():
                print(f"  {key}: {n}", file=out)
    for why, n in report.skipped.items():
        print(f"skipped {n}: {why}", file=out)
    if report.masked_reads:
        print(f"{report.masked_reads} decisions read masked personal fields", file=out)


def _impact_command(args: argparse.Namespace) -> int:
    try:
        max_change = None if args.max_change is None else _percent(args.max_change)
        rules = [impact.parse_fail_on(text) for text in args.fail_on]
        after = load_policy(args.to)
        before: CompiledPolicy | None = None
        version = None
        if os.path.isdir(args.source):
            before = load_policy(args.source)
        else:
            version = args.source
        report = impact.simulate(_records(args.decisions, version), after, before)
    except (ValueError, PolicyError, OSError, msgspec.DecodeError) as exc:
        print(f"arbiter policy impact: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        _print(report, sys.stdout)
    if report.decisions == 0:
        print("arbiter policy impact: no Decide records to evaluate", file=sys.stderr)
        return 2
    failures = impact.gate(report, max_change=max_change, fail_on=rules)
    for failure in failures:
        print(f"FAIL {failure}", file=sys.stderr)
    return 1 if failures else 0
