"""``arbiter policy test|explain|bench``: run scenarios, explain one decision, measure the engine.

Wired by :func:`add_commands` into the ``arbiter policy`` group that
:mod:`server.cli_policy` creates. Every command sets ``handler(args) -> int``
(0 ok, 1 the check failed, 2 usage error / unreadable input / the policy
set does not compile).

``bench`` also builds a **synthetic** policy set (``--synthetic-actions``,
``--synthetic-journeys``) through the real loader and compiler, so the
numbers cover exactly the code the server runs.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import msgspec
import yaml

from arbiter.policies import (
    CompiledPolicy,
    ConsentRecord,
    CustomerSnapshot,
    Decision,
    DecisionCommit,
    EventCounter,
    JourneyState,
    PolicyError,
    ProfileValue,
    Report,
    Request,
    ScenarioResult,
    YamlLoader,
    cel,
    compile_policy,
    decide,
    load_policy,
    load_sources,
    parse_instant_ms,
    run_directory,
)

__all__ = [
    "add_commands",
    "bench",
    "explain",
    "run_tests",
    "synthetic_policy",
    "synthetic_snapshots",
]

_Handler = Callable[[argparse.Namespace], int]
_HOUR = 3_600_000
_DAY = 24 * _HOUR
# A fixed instant for synthetic runs: Tuesday 2025-06-03 15:00 UTC.
BENCH_NOW_MS = 1_748_962_800_000


def add_commands(policy_subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``test``, ``explain`` and ``bench`` to the ``arbiter policy`` sub-commands."""
    test_cmd = policy_subparsers.add_parser(
        "test",
        help="run the scenario tests of a policy directory",
        description=(
            "Runs every scenario file of DIR (YAML under a tests/ directory, or named "
            "*_test.yaml / *.test.yaml). Prints each failure, then 'N passed, N failed'. "
            "Exit 0 when all pass, 1 on failures (or no scenarios), 2 when the set does not compile."
        ),
    )
    test_cmd.add_argument("directory", metavar="DIR")
    test_cmd.add_argument("-v", "--verbose", action="store_true", help="list passing scenarios too")
    test_cmd.set_defaults(handler=lambda a: run_tests(a.directory, verbose=a.verbose))

    explain_cmd = policy_subparsers.add_parser(
        "explain",
        help="decide once from a request and a snapshot file; print the decision and its trace",
        description=(
            "REQUEST and SNAPSHOT are JSON or YAML files shaped like policies.decision.Request "
            "and policies.snapshot.CustomerSnapshot (instants in epoch ms). --now is RFC 3339 "
            "or epoch ms (default: the current time)."
        ),
    )
    explain_cmd.add_argument("directory", metavar="DIR")
    explain_cmd.add_argument("--request", required=True, metavar="FILE")
    explain_cmd.add_argument("--snapshot", required=True, metavar="FILE")
    explain_cmd.add_argument("--now", metavar="T")
    explain_cmd.add_argument("--json", action="store_true", help="print only the decision JSON")
    explain_cmd.set_defaults(
        handler=lambda a: explain(a.directory, a.request, a.snapshot, now=a.now, json_only=a.json)
    )

    bench_cmd = policy_subparsers.add_parser(
        "bench",
        help="measure µs per decision on synthetic snapshots",
        description=(
            "Decides for generated customers (seeded, reproducible) and prints the median, "
            "p90 and p99 µs per decision with the explain trace off and on. With "
            "--synthetic-actions the policy set itself is generated (DIR is then optional)."
        ),
    )
    bench_cmd.add_argument("directory", metavar="DIR", nargs="?")
    bench_cmd.add_argument("--synthetic-actions", type=int, metavar="N")
    bench_cmd.add_argument("--synthetic-journeys", type=int, default=10, metavar="N")
    bench_cmd.add_argument("--customers", type=int, default=500, metavar="N")
    bench_cmd.add_argument("--rounds", type=int, default=5, metavar="N")
    bench_cmd.add_argument("--seed", type=int, default=7)
    bench_cmd.set_defaults(handler=_bench_command)


# =========================================================================== test


def run_tests(directory: str, *, verbose: bool = False, out: TextIO | None = None) -> int:
    """Run the scenarios of ``directory``; print failures and the summary line."""
    out = out or sys.stdout
    try:
        policy = load_policy(directory)
    except PolicyError as exc:
        out.write(f"{exc}\n")
        return 2
    except OSError as exc:
        out.write(f"arbiter policy test: cannot read {directory}: {exc}\n")
        return 2

    def show(result: ScenarioResult) -> None:
        if result.passed:
            if verbose:
                out.write(f"PASS {result.file}: {result.name}\n")
            return
        out.write(f"FAIL {result.file}: {result.name}\n")
        for failure in result.failures:
            out.write(f"    {failure}\n")

    report: Report = run_directory(directory, policy=policy, on_result=show)
    for error in report.errors:
        out.write(f"ERROR {error}\n")
    if not report.results and not report.errors:
        out.write(f"no scenarios found in {directory} (tests/*.yaml, *_test.yaml)\n")
    out.write(report.summary() + "\n")
    return 0 if report.ok else 1


# =========================================================================== explain


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


# =========================================================================== synthetic sets


_CHANNELS = ("email", "push", "sms", "in_app", "web")
_PLACEMENTS = {"in_app": ("home_banner", "cart_drawer"), "web": ("web_home_hero",)}


def synthetic_policy(
    n_actions: int = 100, n_journeys: int = 10, *, seed: int = 7
) -> CompiledPolicy:
    """A realistic generated policy set: every feature the engine evaluates, at scale.

    ``n_journeys`` journeys of 3 stages; 80 % of the actions are journey
    stage actions (spread over journeys, stages and channels), the rest
    always-on, plus one fallback per placement; eligibility, value and
    suppression expressions of the shapes the example set uses; channel,
    journey, tag and global caps; quiet hours; a global control group and
    journey holdouts; the example's CEL score formula.
    """
    rng = random.Random(seed)
    events = {f"e{i}": {"properties": {"sku": "string", "amount": "double"}} for i in range(12)}
    events["complaint_opened"] = {"properties": {"ticket_id": "string"}}
    events["complaint_resolved"] = {"properties": {"ticket_id": "string"}}
    events["order_placed"] = {"properties": {"total": "double"}}
    policy: dict[str, Any] = {
        "policy_set": {
            "id": "synthetic",
            "version": f"{n_actions}a-{n_journeys}j",
            "timezone": {"context": "timezone", "attribute": "timezone", "default": "UTC"},
        },
        "contracts": {
            "profile": {
                "region": "string",
                "timezone": "string",
                "tier": {"type": "string", "default": "basic"},
                "ltv": {"type": "double", "default": 0.0},
                "orders": {"type": "int", "default": 0},
                "app_installed": {"type": "bool", "default": False},
                "email_verified": {"type": "bool", "default": False},
                "do_not_contact": {"type": "bool", "default": False},
                "deceased": {"type": "bool", "default": False},
            },
            "events": events,
            "context": {"timezone": "string", "page": "string", "cart_value": "double"},
        },
        "consent": {
            "purposes": [
                {"id": p}
                for p in ("email_marketing", "push_marketing", "sms_marketing", "personalization")
            ],
            "region_attribute": "region",
            "defaults": [
                {"regions": ["EU"], "unset": "deny"},
                {
                    "regions": ["US"],
                    "purposes": ["email_marketing", "push_marketing", "personalization"],
                    "unset": "allow",
                },
            ],
            "unset": "deny",
            "do_not_contact": "do_not_contact",
        },
        "channels": [
            {
                "id": "email",
                "purposes": ["email_marketing"],
                "caps": [{"limit": 4, "window": "7d"}],
            },
            {
                "id": "push",
                "purposes": ["push_marketing"],
                "quiet_hours": [{"start": "21:00", "end": "08:00"}],
                "caps": [{"limit": 2, "window": "24h"}],
            },
            {
                "id": "sms",
                "purposes": ["sms_marketing"],
                "quiet_hours": [{"start": "20:00", "end": "09:00"}],
            },
            {
                "id": "in_app",
                "purposes": ["personalization"],
                "placements": list(_PLACEMENTS["in_app"]),
            },
            {"id": "web", "purposes": ["personalization"], "placements": list(_PLACEMENTS["web"])},
            {"id": "receipts", "transactional": True},
        ],
        "caps": [
            {
                "id": "outbound_daily",
                "scope": "channel",
                "targets": ["email", "push", "sms"],
                "limit": 3,
                "window": "24h",
            },
            {"id": "marketing_monthly", "scope": "global", "limit": 40, "window": "4w"},
            {"id": "per_journey_daily", "scope": "journey", "limit": 2, "window": "24h"},
            {
                "id": "promotions_weekly",
                "scope": "tag",
                "targets": ["promo"],
                "limit": 2,
                "window": "7d",
            },
        ],
        "suppressions": [
            {
                "id": "service_recovery",
                "reason": "OPEN_COMPLAINT",
                "when": 'events.seen("complaint_opened") && events.since("complaint_opened") < events.since("complaint_resolved")',
                "exempt_transactional": True,
            },
            {
                "id": "recent_purchase",
                "reason": "RECENT_PURCHASE",
                "when": 'events.since("order_placed") < duration("48h")',
                "scope": {"tags": ["promo"]},
            },
            {"id": "deceased", "reason": "DECEASED", "when": "profile.deceased"},
        ],
        "holdouts": {"global": {"percent": 5, "salt": "synthetic-cg"}},
        "arbitration": {
            "score": "double(priority) * 10.0 + value * propensity",
            "default_propensity": 0.5,
            "constraints": {
                "max_per_journey": 1,
                "max_per_channel": {"email": 1, "push": 1, "sms": 1},
                "max_actions": 3,
            },
        },
    }
    journeys = []
    for j in range(n_journeys):
        journeys.append(
            {
                "id": f"j{j}",
                "owner": "bench",
                "status": "active" if j % 7 != 6 else "paused",
                "priority": rng.randint(10, 90),
                "triggers": [{"event": f"e{j % 12}", "when": "event.properties.amount > 10.0"}],
                "reentry": "after 7d",
                "stages": [
                    {"id": "s0", "transitions": [{"after": "1h", "to": "s1"}]},
                    {
                        "id": "s1",
                        "transitions": [
                            {"after": "2d", "to": "s2"},
                            {"on": f"e{(j + 1) % 12}", "to": "s2"},
                        ],
                    },
                    {"id": "s2", "transitions": [{"after": "3d", "to": "exit"}]},
                ],
                "exits": [{"on": "order_placed", "reason": "converted"}],
                "max_duration": "14d",
                **({"holdout": {"percent": 10}} if j % 3 == 0 else {}),
            }
        )
    policy["journeys"] = journeys
    eligibility = [
        None,
        "profile.ltv > 50.0",
        'events.count("e{e}", duration("168h")) >= 1',
        'profile.tier == "gold" || profile.orders > 3',
        "profile.app_installed",
        'segments.contains("s{s}") && profile.email_verified',
        'events.since("e{e}") > duration("24h")',
        "customer.local_hour() >= 9 && customer.local_hour() < 20",
        '!segments.contains("price_sensitive")',
        'context.has("cart_value") && context.cart_value > 30.0',
    ]
    actions: list[dict[str, Any]] = []
    n_always = max(1, n_actions // 5)
    for i in range(n_actions):
        channel = _CHANNELS[i % len(_CHANNELS)]
        action: dict[str, Any] = {
            "id": f"a{i}",
            "channel": channel,
            "priority": rng.randint(0, 90),
            "value": round(rng.uniform(0.5, 10.0), 2)
            if i % 4
            else f"1.0 + profile.ltv * 0.0{rng.randint(1, 9)}",
            "payload": {"template": f"t{i}", "campaign": f"c{i % 7}"},
        }
        if i < n_actions - n_always:
            action["journey"] = f"j{i % n_journeys}"
            action["stages"] = [f"s{(i // n_journeys) % 3}"]
        else:
            action["always_on"] = True
        if channel in _PLACEMENTS:
            places = _PLACEMENTS[channel]
            action["placements"] = [places[i % len(places)]]
        cond = eligibility[i % len(eligibility)]
        if cond is not None:
            action["eligibility"] = cond.format(e=rng.randint(0, 11), s=rng.randint(0, 4))
        if i % 6 == 0:
            action["tags"] = ["promo"]
        if i % 9 == 0:
            action["variants"] = [
                {"id": "A", "weight": 50, "payload": {"template": f"t{i}a"}},
                {"id": "B", "weight": 50, "payload": {"template": f"t{i}b"}},
            ]
        if i % 11 == 0:
            action["caps"] = [{"limit": 1, "window": "3d"}]
        actions.append(action)
    for channel, places in _PLACEMENTS.items():
        for place in places:
            actions.append(
                {
                    "id": f"fallback_{place}",
                    "channel": channel,
                    "always_on": True,
                    "fallback": True,
                    "placements": [place],
                    "payload": {"template": "default"},
                }
            )
    actions.append(
        {
            "id": "receipt",
            "channel": "receipts",
            "always_on": True,
            "eligibility": 'events.since("order_placed") < duration("1h")',
            "priority": 100,
            "caps": [{"limit": 1, "window": "1h", "include_transactional": True}],
        }
    )
    policy["actions"] = actions
    text = yaml.safe_dump(policy, sort_keys=False)
    return compile_policy(load_sources({"synthetic.yaml": text}))


def synthetic_snapshots(
    policy: CompiledPolicy, count: int, *, now_ms: int = BENCH_NOW_MS, seed: int = 11
) -> list[CustomerSnapshot]:
    """Generated customers for ``policy``: profiles, consent, counters, journey states, cap usage."""
    rng = random.Random(seed)
    attributes = policy.profile
    event_types = sorted(policy.events)
    journeys = sorted(policy.journeys)
    cap_keys = sorted(policy.needs.cap_keys)
    purposes = sorted(policy.consent.purposes)
    snapshots = []
    for n in range(count):
        profile: dict[str, ProfileValue] = {}
        for name, spec in attributes.items():
            value: Any
            t = spec.type_text
            if name == "region":
                value = rng.choice(["US", "US", "US", "EU", "OTHER"])
            elif name == "timezone":
                value = rng.choice(
                    ["America/New_York", "Europe/Berlin", "America/Los_Angeles", "UTC"]
                )
            elif name in ("do_not_contact", "deceased"):
                value = rng.random() < 0.02
            elif t == "bool":
                value = rng.random() < 0.6
            elif t == "double":
                value = round(rng.uniform(0, 400), 2)
            elif t == "int":
                value = rng.randint(0, 12)
            elif t == "string" and spec.values:
                value = rng.choice(sorted(spec.values))
            elif t == "string":
                value = rng.choice(["basic", "gold", "silver"])
            else:
                continue
            profile[name] = ProfileValue(value=value, updated_ms=now_ms - _DAY, source="bench")
        consent = {
            p: ConsentRecord(
                state="granted" if rng.random() < 0.7 else "denied",
                updated_ms=now_ms - 30 * _DAY,
                source="cmp",
            )
            for p in purposes
            if rng.random() < 0.6
        }
        events: dict[str, EventCounter] = {}
        for e in event_types:
            if rng.random() < 0.5:
                buckets: dict[int, int] = {}
                for _ in range(rng.randint(1, 6)):
                    at = now_ms - rng.randint(0, 40 * _DAY)
                    start = at - at % _HOUR
                    buckets[start] = buckets.get(start, 0) + 1
                starts = sorted(buckets)
                events[e] = EventCounter(
                    total=sum(buckets.values()),
                    first_ms=starts[0],
                    last_ms=starts[-1] + rng.randint(0, _HOUR - 1),
                    buckets=buckets,
                )
        states: dict[str, JourneyState] = {}
        for jid in journeys:
            if rng.random() < 0.5:
                stages = list(policy.journeys[jid].stages)
                entered = now_ms - rng.randint(0, 3 * _DAY)
                states[jid] = JourneyState(
                    status="active",
                    stage=rng.choice(stages),
                    entered_ms=entered,
                    stage_entered_ms=now_ms - rng.randint(0, 20 * 60_000),
                    entry_event_id=f"ev-{n}-{jid}",
                    last_event_id=f"ev-{n}-{jid}",
                )
        caps = {
            key: sorted(now_ms - rng.randint(0, 6 * _DAY) for _ in range(rng.randint(0, 2)))
            for key in cap_keys
            if rng.random() < 0.3
        }
        snapshots.append(
            CustomerSnapshot(
                customer_id=f"cust-{n}",
                profile=profile,
                consent=consent,
                events=events,
                segments=frozenset(
                    s for s in ("s0", "s1", "s2", "s3", "price_sensitive") if rng.random() < 0.3
                ),
                journeys=states,
                caps=caps,
            )
        )
    return snapshots


# =========================================================================== bench


class BenchResult(msgspec.Struct, frozen=True, kw_only=True):
    label: str
    decisions: int
    candidates: float  # mean candidates per decision (from the explain runs)
    chosen: float
    off_median_us: float
    off_p90_us: float
    off_p99_us: float
    on_median_us: float
    on_p90_us: float
    on_p99_us: float

    @property
    def ratio(self) -> float:
        return self.on_median_us / self.off_median_us if self.off_median_us else 0.0


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def bench(
    policy: CompiledPolicy,
    snapshots: Sequence[CustomerSnapshot],
    requests: Sequence[tuple[str, Request]],
    *,
    now_ms: int = BENCH_NOW_MS,
    rounds: int = 5,
) -> list[BenchResult]:
    """µs per decision for each request shape, explain off and on, over every snapshot."""
    results = []
    clock = time.perf_counter_ns
    for label, base in requests:
        quiet = msgspec.structs.replace(base, explain=False)
        loud = msgspec.structs.replace(base, explain=True)
        bound = [
            (
                msgspec.structs.replace(quiet, customer_id=s.customer_id, request_id=f"b{i}"),
                msgspec.structs.replace(loud, customer_id=s.customer_id, request_id=f"b{i}"),
                s,
            )
            for i, s in enumerate(snapshots)
        ]
        candidates = chosen = 0
        for _, req, snap in bound:  # warm-up (plans, zone caches) + candidate counts
            d, _ = decide(policy, req, snap, now_ms)
            candidates += len(d.candidates)
            chosen += len(d.actions)
        off: list[float] = []
        on: list[float] = []
        gc.collect()
        gc.disable()
        try:
            for _ in range(rounds):
                for q, loud_req, snap in bound:
                    t0 = clock()
                    decide(policy, q, snap, now_ms)
                    t1 = clock()
                    decide(policy, loud_req, snap, now_ms)
                    t2 = clock()
                    off.append((t1 - t0) / 1000)
                    on.append((t2 - t1) / 1000)
        finally:
            gc.enable()
        off.sort()
        on.sort()
        n = len(bound)
        results.append(
            BenchResult(
                label=label,
                decisions=len(off),
                candidates=candidates / n if n else 0.0,
                chosen=chosen / n if n else 0.0,
                off_median_us=statistics.median(off),
                off_p90_us=_percentile(off, 0.9),
                off_p99_us=_percentile(off, 0.99),
                on_median_us=statistics.median(on),
                on_p90_us=_percentile(on, 0.9),
                on_p99_us=_percentile(on, 0.99),
            )
        )
    return results


def _bench_requests(policy: CompiledPolicy) -> list[tuple[str, Request]]:
    requests: list[tuple[str, Request]] = [
        ("outbound: all channels, no placement, limit 3", Request(customer_id="x", limit=3)),
    ]
    placements = sorted({p for c in policy.channels.values() for p in c.placements})
    if placements:
        requests.append(
            (
                f"placement {placements[0]}, limit 1",
                Request(customer_id="x", placement=placements[0], context={"cart_value": 42.0}),
            )
        )
    return requests


def _bench_command(args: argparse.Namespace) -> int:
    out = sys.stdout
    try:
        if args.synthetic_actions is not None:
            policy = synthetic_policy(
                args.synthetic_actions, args.synthetic_journeys, seed=args.seed
            )
        elif args.directory is not None:
            policy = load_policy(args.directory)
        else:
            out.write("arbiter policy bench: give DIR or --synthetic-actions N\n")
            return 2
    except PolicyError as exc:
        out.write(f"{exc}\n")
        return 2
    except OSError as exc:
        out.write(f"arbiter policy bench: {exc}\n")
        return 2
    snapshots = synthetic_snapshots(policy, args.customers, seed=args.seed + 4)
    out.write(
        f"policy {policy.id} {policy.version} ({policy.digest[:19]}...): "
        f"{len(policy.actions)} actions, {len(policy.journeys)} journeys; "
        f"{len(snapshots)} synthetic customers x {args.rounds} rounds\n"
    )
    for r in bench(policy, snapshots, _bench_requests(policy), rounds=args.rounds):
        out.write(
            f"{r.label}: {r.candidates:.1f} candidates, {r.chosen:.2f} chosen per decision\n"
            f"  explain off: median {r.off_median_us:7.1f} µs  p90 {r.off_p90_us:7.1f} µs  "
            f"p99 {r.off_p99_us:7.1f} µs  ({1e6 / r.off_median_us:,.0f} decisions/s)\n"
            f"  explain on:  median {r.on_median_us:7.1f} µs  p90 {r.on_p90_us:7.1f} µs  "
            f"p99 {r.on_p99_us:7.1f} µs  (x{r.ratio:.2f})\n"
        )
    return 0
