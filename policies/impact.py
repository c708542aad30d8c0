"""Impact simulation: recorded traffic re-decided under a new policy set, and what would change.

:func:`simulate` takes decision log records (Decides; dry runs included)
and re-evaluates each one's inputs (:func:`arbiter.policies.decision_log.replay`)
under the *after* policy, and under the *before* policy -- or takes the
recorded outcome as *before* when no before policy is given. It reports
(:class:`ImpactReport`):

- decisions changed: the chosen actions (action and channel, in order) differ;
- grants per action and per channel, before and after;
- new suppressions by reason: candidates that passed every filter before
  and are filtered after, by the new reason;
- consent-gated grants that would appear: actions granted after and not
  before, on a channel that requires a consent purpose;
- records that could not be evaluated (a channel or action the after set
  no longer has), and records whose masked personal fields the policy reads
  (their re-evaluation may differ for that reason alone).

:func:`gate` turns a report into CI failures: ``max_change`` (a share of
decisions changed) and :class:`FailOn` rules. Pure.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

from .decision import Decision, Outcome
from .decision_log import DecisionRecord, masked_reads, replay
from .plan import CompiledPolicy

__all__ = ["FailOn", "ImpactReport", "gate", "parse_fail_on", "simulate"]

_FILTERED: Final = Outcome.FILTERED
FailKind = Literal["grant-increase", "channel-increase", "consent-gated-grants", "new-suppressions"]
_FAIL_KINDS: Final[tuple[FailKind, ...]] = (
    "grant-increase",
    "channel-increase",
    "consent-gated-grants",
    "new-suppressions",
)


@dataclass
class ImpactReport:
    """What :func:`simulate` found (see the module docstring); counts are per decision record."""

    decisions: int = 0
    changed: int = 0
    skipped: Counter[str] = field(default_factory=Counter)  # why a record was not evaluated
    masked_reads: int = 0
    grants_before: Counter[str] = field(default_factory=Counter)  # by action
    grants_after: Counter[str] = field(default_factory=Counter)
    channel_before: Counter[str] = field(default_factory=Counter)
    channel_after: Counter[str] = field(default_factory=Counter)
    new_suppressions: Counter[str] = field(default_factory=Counter)  # by reason
    lifted_suppressions: Counter[str] = field(default_factory=Counter)  # by the old reason
    consent_gated_new: Counter[str] = field(default_factory=Counter)  # by action
    examples: list[str] = field(default_factory=list)  # decision ids of changed decisions

    @property
    def changed_share(self) -> float:
        """Decisions changed, as a share of the decisions evaluated (0..1)."""
        return self.changed / self.decisions if self.decisions else 0.0

    def as_dict(self) -> dict[str, object]:
        """The report as plain JSON-ready data."""
        actions = sorted(set(self.grants_before) | set(self.grants_after))
        channels = sorted(set(self.channel_before) | set(self.channel_after))
        return {
            "decisions": self.decisions,
            "changed": self.changed,
            "changed_percent": round(100 * self.changed_share, 3),
            "skipped": dict(self.skipped),
            "masked_reads": self.masked_reads,
            "grants": {
                a: {"before": self.grants_before[a], "after": self.grants_after[a]} for a in actions
            },
            "channels": {
                c: {"before": self.channel_before[c], "after": self.channel_after[c]}
                for c in channels
            },
            "new_suppressions": dict(self.new_suppressions),
            "lifted_suppressions": dict(self.lifted_suppressions),
            "consent_gated_new_grants": dict(self.consent_gated_new),
            "examples": self.examples,
        }


def _chosen(decision: Decision) -> tuple[tuple[str, str], ...]:
    return tuple((a.action, a.channel) for a in decision.actions)


def _consent_gated(policy: CompiledPolicy, channel: str) -> bool:
    spec = policy.channels.get(channel)
    return spec is not None and bool(spec.purposes)


def _compare(
    report: ImpactReport, after_policy: CompiledPolicy, before: Decision, after: Decision
) -> None:
    was, now = _chosen(before), _chosen(after)
    for action, channel in was:
        report.grants_before[action] += 1
        report.channel_before[channel] += 1
    for action, channel in now:
        report.grants_after[action] += 1
        report.channel_after[channel] += 1
    if was != now:
        report.changed += 1
        if len(report.examples) < 20:
            report.examples.append(after.decision_id)
        for action, channel in set(now) - set(was):
            if _consent_gated(after_policy, channel):
                report.consent_gated_new[action] += 1
    old = {c.action: c for c in before.candidates}
    for candidate in after.candidates:
        previous = old.get(candidate.action)
        if previous is None:
            continue
        if candidate.outcome is _FILTERED and previous.outcome is not _FILTERED:
            report.new_suppressions[candidate.reason.value] += 1
        elif previous.outcome is _FILTERED and candidate.outcome is not _FILTERED:
            report.lifted_suppressions[previous.reason.value] += 1


def _unfit(record: DecisionRecord, policy: CompiledPolicy) -> str | None:
    """Why ``record`` cannot be evaluated under ``policy`` (a channel it no longer declares)."""
    request = record.request
    if request is None:
        return "not a Decide"
    for channel in request.channels:
        if channel not in policy.channels:
            return f"channel `{channel}` not in policy {policy.policy_version}"
    return None


def simulate(
    records: Iterable[DecisionRecord],
    after: CompiledPolicy,
    before: CompiledPolicy | None = None,
) -> ImpactReport:
    """Re-decide the Decide ``records`` under ``after`` (and ``before``, else the recorded outcome)."""
    report = ImpactReport()
    for record in records:
        if record.kind != "decide":
            continue
        unfit = _unfit(record, after) or (None if before is None else _unfit(record, before))
        if unfit is not None:
            report.skipped[unfit] += 1
            continue
        try:
            old = record.decision if before is None else replay(record, before)
            new = replay(record, after)
        except (KeyError, ValueError) as exc:
            report.skipped[f"{type(exc).__name__}: {exc}"[:120]] += 1
            continue
        report.decisions += 1
        if masked_reads(record, after):
            report.masked_reads += 1
        _compare(report, after, old, new)
    return report


# --------------------------------------------------------------------------- CI gates


@dataclass(frozen=True)
class FailOn:
    """A ``--fail-on`` rule: ``KIND[:TARGET][>THRESHOLD]``.

    - ``grant-increase[:ACTION][>P%]``: grants (of ACTION, or all) grew by more than P % (default 0);
    - ``channel-increase[:CHANNEL][>P%]``: grants on CHANNEL (or any channel) grew by more than P %;
    - ``consent-gated-grants[>N]``: more than N (default 0) new consent-gated grants;
    - ``new-suppressions[:REASON][>N]``: more than N (default 0) newly filtered candidates.
    """

    kind: FailKind
    target: str = ""
    threshold: float = 0.0
    text: str = ""


_RULE: Final = re.compile(r"^(?P<kind>[a-z-]+)(?::(?P<target>[^>]+))?(?:>(?P<num>[0-9.]+)%?)?$")


def parse_fail_on(text: str) -> FailOn:
    """A :class:`FailOn` from its text; ``ValueError`` naming the problem."""
    match = _RULE.match(text.strip())
    kind = match.group("kind") if match else ""
    if match is None or kind not in _FAIL_KINDS:
        raise ValueError(
            f"invalid --fail-on `{text}`: expected KIND[:TARGET][>THRESHOLD] with KIND one of "
            + ", ".join(_FAIL_KINDS)
        )
    threshold = float(match.group("num") or 0)
    return FailOn(kind, match.group("target") or "", threshold, text)


def _growth(before: int, after: int) -> float:
    """Percent growth; a count appearing from zero is infinite growth."""
    if before == 0:
        return float("inf") if after > 0 else 0.0
    return 100.0 * (after - before) / before


def _failure(report: ImpactReport, rule: FailOn) -> str | None:
    if rule.kind in ("grant-increase", "channel-increase"):
        before, after = (
            (report.grants_before, report.grants_after)
            if rule.kind == "grant-increase"
            else (report.channel_before, report.channel_after)
        )
        keys = [rule.target] if rule.target else sorted(set(before) | set(after))
        for key in keys:
            growth = _growth(before[key], after[key])
            if growth > rule.threshold:
                return f"{rule.text}: `{key}` {before[key]} -> {after[key]} ({growth:+.1f} %)"
        if not rule.target:
            total = _growth(sum(before.values()), sum(after.values()))
            if total > rule.threshold:
                return f"{rule.text}: total {sum(before.values())} -> {sum(after.values())}"
        return None
    counts = (
        report.consent_gated_new if rule.kind == "consent-gated-grants" else report.new_suppressions
    )
    count = counts[rule.target] if rule.target else sum(counts.values())
    return f"{rule.text}: {count}" if count > rule.threshold else None


def gate(
    report: ImpactReport, *, max_change: float | None = None, fail_on: Sequence[FailOn] = ()
) -> list[str]:
    """Why the change fails the gate (empty: it passes). ``max_change`` is a share (0.05 = 5 %)."""
    failures = []
    if max_change is not None and report.changed_share > max_change:
        failures.append(
            f"--max-change {100 * max_change:g}%: {report.changed} of {report.decisions} "
            f"decisions changed ({100 * report.changed_share:.2f} %)"
        )
    failures.extend(f for rule in fail_on if (f := _failure(report, rule)) is not None)
    return failures
