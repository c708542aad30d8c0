"""``arbiter policy explain``: decide once from a request and a snapshot file; print the decision, its trace and the commit."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import msgspec
import yaml

from arbiter.policies import (
    CustomerSnapshot,
    Decision,
    DecisionCommit,
    PolicyError,
    Request,
    YamlLoader,
    cel,
    decide,
    load_policy,
    parse_instant_ms,
)

__all__ = ["explain"]


def _read_data(path: str) -> Any:
    text = Path(path).read_text(encoding="utf-8")
    if path.endswith(".json"):
        return json.loads(text)
    return yaml.load(text, Loader=YamlLoader)  # a SafeLoader subclass (YAML 1.2 scalars)


def _parse_now(text: str | None) -> int:
    return time.time_ns() // 1_000_000 if text is None else parse_instant_ms(text)


def explain(
    directory: str,
    request_file: str,
    snapshot_file: str,
    *,
    now: str | None = None,
    json_only: bool = False,
    out: TextIO | None = None,
) -> int:
    """Decide once and print the decision, the trace and the commit."""
    out = out or sys.stdout
    try:
        policy = load_policy(directory)
        request = msgspec.convert(_read_data(request_file), Request, strict=False)
        snapshot = msgspec.convert(_read_data(snapshot_file), CustomerSnapshot, strict=False)
        now_ms = _parse_now(now)
    except PolicyError as exc:
        out.write(f"{exc}\n")
        return 2
    except (OSError, ValueError, yaml.YAMLError, msgspec.ValidationError, cel.CelError) as exc:
        out.write(f"arbiter policy explain: {exc}\n")
        return 2
    request = msgspec.structs.replace(request, explain=True)
    decision, commit = decide(policy, request, snapshot, now_ms)
    if json_only:
        out.write(msgspec.json.format(msgspec.json.encode(decision)).decode() + "\n")
        return 0
    out.write(_render(decision, commit))
    return 0


def _render(decision: Decision, commit: DecisionCommit) -> str:
    lines = [
        f"decision {decision.decision_id}  policy {decision.policy_version}",
        f"customer {decision.customer_id}  at {decision.decided_ms} ms"
        + ("  [control group]" if decision.control_group else ""),
        "",
        "chosen:" if decision.actions else "chosen: nothing",
    ]
    for a in decision.actions:
        variant = f" variant={a.variant}" if a.variant else ""
        lines.append(
            f"  {a.action} ({a.channel}{', ' + a.journey + '/' + a.stage if a.journey else ''})"
            f" score={a.score:g}{variant} tracking_id={a.tracking_id}"
        )
    if decision.held_out:
        lines.append("held out (would have received):")
        lines.extend(f"  {a.action} ({a.channel}) score={a.score:g}" for a in decision.held_out)
    lines.append("")
    lines.append("candidates:")
    width = max((len(c.action) for c in decision.candidates), default=10)
    for c in decision.candidates:
        score = "" if c.score is None else f" score={c.score:g}"
        detail = f"  {c.detail}" if c.detail else ""
        lines.append(
            f"  {c.action:<{width}}  {c.outcome.value:<12} {c.reason.value:<18}{score}{detail}"
        )
    if decision.consent:
        lines.append("")
        lines.append("consent:")
        for p in decision.consent:
            state = p.state or "unset"
            lines.append(
                f"  {p.purpose}: {state} -> {'allowed' if p.allowed else 'denied'} ({p.reason.value})"
            )
    if decision.degradations:
        lines.append("")
        lines.append("degraded:")
        lines.extend(f"  {d.reason.value}: {d.detail}" for d in decision.degradations)
    lines.append("")
    lines.append("commit:")
    lines.append(msgspec.json.format(msgspec.json.encode(commit), indent=2).decode())
    return "\n".join(lines) + "\n"
