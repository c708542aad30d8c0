"""Compile suppressions and actions: scope, placements, eligibility, value, inline caps, variants, payloads."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from arbiter.policies import cel
from arbiter.policies.converters import value_matches
from arbiter.policies.effects import CapIncrement
from arbiter.policies.loader import ModelPath
from arbiter.policies.model import Action, InlineCap, SuppressionScope
from arbiter.policies.plan import (
    CompiledCap,
    CompiledChannel,
    CompiledField,
    CompiledSuppression,
    Expression,
)

from .session import Session

__all__ = ["ActionDraft", "compile_actions", "compile_suppressions", "inline_cap"]

_NUMBER = (cel.INT, cel.DOUBLE, cel.UINT)


@dataclass(slots=True)
class ActionDraft:
    """An action between validation and assembly (cap bindings are added by :mod:`.caps`)."""

    action: Action
    index: int  # position in the model's action list
    channel: CompiledChannel
    eligibility: Expression | None
    value: float
    value_expr: Expression | None
    inline: list[CompiledCap]
    suppressions: tuple[CompiledSuppression, ...]
    valid_from: int | None
    valid_until: int | None
    bindings: tuple[CapIncrement, ...] = field(default=())


Suppressions = list[tuple[CompiledSuppression, SuppressionScope]]


def compile_suppressions(
    s: Session, env: cel.Env, channels: Mapping[str, Any], journeys: set[str], actions: set[str]
) -> Suppressions:
    """Every suppression rule with its scope (resolved to actions by :func:`compile_actions`)."""
    s.check_unique([x.id for x in s.model.suppressions], ("suppressions",), "suppression")
    tags = {t for a in s.model.actions for t in a.tags}
    result = []
    for i, rule in enumerate(s.model.suppressions):
        path: ModelPath = ("suppressions", i)
        scope = rule.scope
        for j, c in enumerate(scope.channels):
            s.expect_known(c, channels, "channel", (*path, "scope", "channels", j))
        for j, jn in enumerate(scope.journeys):
            s.expect_known(jn, frozenset(journeys), "journey", (*path, "scope", "journeys", j))
        for j, a in enumerate(scope.actions):
            s.expect_known(a, frozenset(actions), "action", (*path, "scope", "actions", j))
        for j, t in enumerate(scope.tags):
            if t not in tags:
                s.report((*path, "scope", "tags", j), f"no action has tag `{t}`", "warning")
        when = s.expr(rule.when, (*path, "when"), env, (cel.BOOL,), "a suppression condition")
        if when is not None:
            compiled = CompiledSuppression(
                id=rule.id,
                reason=rule.reason,
                when=when,
                exempt_transactional=rule.exempt_transactional,
            )
            result.append((compiled, scope))
    return result


def compile_actions(
    s: Session, env: cel.Env, channels: Mapping[str, CompiledChannel], suppressions: Suppressions
) -> list[ActionDraft]:
    """A draft of every valid action (invalid ones are reported and left out)."""
    drafts = []
    for i, a in enumerate(s.model.actions):
        draft = _action(s, i, a, env=env, channels=channels, suppressions=suppressions)
        if draft is not None:
            drafts.append(draft)
    return drafts


def _action(
    s: Session,
    i: int,
    a: Action,
    *,
    env: cel.Env,
    channels: Mapping[str, CompiledChannel],
    suppressions: Suppressions,
) -> ActionDraft | None:
    path: ModelPath = ("actions", i)
    channel = channels.get(a.channel)
    ok = channel is not None
    if channel is None:
        s.expect_known(a.channel, channels, "channel", (*path, "channel"))
    ok = _check_journey(s, a, path) and ok
    if channel is not None:
        ok = _check_placements(s, a, channel, path) and ok
    eligibility = s.expr(a.eligibility, (*path, "eligibility"), env, (cel.BOOL,), "eligibility")
    ok = ok and (a.eligibility is None or eligibility is not None)
    value, value_expr = 0.0, None
    if isinstance(a.value, str):
        value_expr = s.expr(a.value, (*path, "value"), env, _NUMBER, "value")
        ok = ok and value_expr is not None
    else:
        value = float(a.value)
    inline = []
    for j, c in enumerate(a.caps):
        where = (*path, "caps", j)
        cap = inline_cap(
            s, c, default_id=f"action:{a.id}#{j}", scope="action", target=a.id, path=where
        )
        if cap is not None:
            inline.append(cap)
    ok = _check_variants(s, a, path) and ok
    ok = _check_payloads(s, a, path) and ok
    if channel is not None and channel.payload is not None:
        ok = _check_payload_contract(s, a, channel, path) and ok
    valid_from = int(a.valid_from.timestamp() * 1000) if a.valid_from else None
    valid_until = int(a.valid_until.timestamp() * 1000) if a.valid_until else None
    if valid_from is not None and valid_until is not None and valid_until <= valid_from:
        s.report((*path, "valid_until"), "`valid_until` is not after `valid_from`")
    if a.fallback and not a.always_on:
        s.report(
            (*path, "fallback"),
            "a fallback action should be `always_on` (it is chosen when nothing else is)",
            "warning",
        )
    if not ok or channel is None:
        return None
    return ActionDraft(
        action=a,
        index=i,
        channel=channel,
        eligibility=eligibility,
        value=value,
        value_expr=value_expr,
        inline=inline,
        suppressions=_covering(a, channel, suppressions),
        valid_from=valid_from,
        valid_until=valid_until,
    )


def _check_journey(s: Session, a: Action, path: ModelPath) -> bool:
    """An action is in a journey (at known stages) or always on, never both."""
    ok = True
    if a.journey is None and not a.always_on:
        s.report(path, "an action needs a `journey` (and `stages`) or `always_on: true`")
        ok = False
    if a.journey is not None and a.always_on:
        s.report((*path, "always_on"), "an action is either in a journey or `always_on`, not both")
        ok = False
    if a.journey is None:
        if a.stages:
            s.report((*path, "stages"), "`stages` needs a `journey`")
        return ok
    journeys = {j.id: j for j in s.model.journeys}
    journey = journeys.get(a.journey)
    if journey is None:
        s.expect_known(a.journey, journeys, "journey", (*path, "journey"))
        return False
    stage_ids = frozenset(st.id for st in journey.stages)
    for j, st in enumerate(a.stages):
        where = (*path, "stages", j)
        if not s.expect_known(st, stage_ids, "stage", where, f" in journey `{journey.id}`"):
            ok = False
    return ok


def _check_placements(s: Session, a: Action, channel: CompiledChannel, path: ModelPath) -> bool:
    """Placements are the channel's, and a channel with placements needs them listed."""
    if channel.placements and not a.placements:
        s.report(
            (*path, "channel"),
            f"channel `{channel.id}` has placements: list the action's `placements`",
        )
    ok = True
    for j, pl in enumerate(a.placements):
        where = (*path, "placements", j)
        if not channel.placements:
            s.report(where, f"channel `{channel.id}` declares no placements")
            break
        if not s.expect_known(
            pl, channel.placements, "placement", where, f" on channel `{channel.id}`"
        ):
            ok = False
    return ok


def _check_variants(s: Session, a: Action, path: ModelPath) -> bool:
    s.check_unique([v.id for v in a.variants], (*path, "variants"), "variant")
    ok = True
    if a.variants and sum(v.weight for v in a.variants) == 0:
        s.report((*path, "variants"), "variant weights sum to 0")
        ok = False
    for j, v in enumerate(a.variants):
        if v.weight == 0:
            s.report(
                (*path, "variants", j, "weight"),
                f"variant `{v.id}` has weight 0 and is never chosen",
                "warning",
            )
    return ok


def _check_payloads(s: Session, a: Action, path: ModelPath) -> bool:
    """Payloads are returned to callers as JSON-like values: they must encode."""
    ok = True
    payloads = [(a.payload, (*path, "payload"))]
    payloads += [(v.payload, (*path, "variants", j, "payload")) for j, v in enumerate(a.variants)]
    for payload, where in payloads:
        try:
            msgspec.json.encode(payload)
        except (TypeError, ValueError, OverflowError) as exc:
            s.report(where, f"payload is not JSON-serialisable: {exc}")
            ok = False
    return ok


def _check_payload_contract(
    s: Session, a: Action, channel: CompiledChannel, path: ModelPath
) -> bool:
    """Every payload the action can return -- its own, or each variant's merged over it --
    against the channel's declared payload fields: declared names, declared types, no null,
    required fields present. Each problem is reported once, where the offending key was written."""
    fields = channel.payload
    assert fields is not None
    own: ModelPath = (*path, "payload")
    # (what, where its own keys are, its keys): the action alone, or each variant over it.
    shapes: list[tuple[str, ModelPath, dict[str, Any]]] = [
        (f"variant `{v.id}`", (*path, "variants", j, "payload"), v.payload)
        for j, v in enumerate(a.variants)
    ] or [("the payload", own, {})]
    problems: dict[tuple[ModelPath, str], bool] = {}  # (where, message) -> at the key
    for what, where, extra in shapes:
        written = dict.fromkeys(a.payload, own) | dict.fromkeys(extra, where)
        merged = {**a.payload, **extra}
        for name, value in merged.items():
            problem = _payload_problem(name, value, fields, channel.id)
            if problem:
                problems[(*written[name], name), problem] = problem.startswith("unknown")
        for name, spec in fields.items():
            if spec.required and name not in merged:
                message = f"{what} lacks required payload field `{name}` (channel `{channel.id}`)"
                problems[where, message] = False
    for (where, message), at_key in problems.items():
        s.report(where, message, key=at_key)
    return not problems


def _payload_problem(
    name: str, value: object, fields: Mapping[str, CompiledField], channel: str
) -> str:
    spec = fields.get(name)
    if spec is None:
        close = difflib.get_close_matches(name, list(fields), n=1)
        hint = f"; did you mean `{close[0]}`?" if close else ""
        return f"unknown payload field `{name}` (not declared by channel `{channel}`){hint}"
    if value is None:
        return (
            f"payload field `{name}` is null (in a flow mapping an unquoted comma ends the "
            "value: quote strings that contain commas)"
        )
    if not value_matches(spec.type, value):
        return f"payload field `{name}`: expected {spec.type_text}"
    if spec.values and isinstance(value, str | int | float | bool) and value not in spec.values:
        allowed = ", ".join(sorted(str(v) for v in spec.values))
        return f"payload field `{name}`: `{value}` is not one of: {allowed}"
    return ""


def _covering(
    a: Action, channel: CompiledChannel, suppressions: Suppressions
) -> tuple[CompiledSuppression, ...]:
    """The rules whose scope covers the action (transactional ones skip exempting rules)."""
    tags = set(a.tags)
    return tuple(
        rule
        for rule, scope in suppressions
        if not (channel.transactional and rule.exempt_transactional)
        and (
            not (scope.channels or scope.tags or scope.journeys or scope.actions)
            or a.channel in scope.channels
            or a.id in scope.actions
            or (a.journey is not None and a.journey in scope.journeys)
            or bool(tags & set(scope.tags))
        )
    )


def inline_cap(
    s: Session, c: InlineCap, *, default_id: str, scope: str, target: str, path: ModelPath
) -> CompiledCap | None:
    """A cap written on a channel or an action (it counts only that channel / action)."""
    window = s.duration(c.window, (*path, "window"))
    if window is None:
        return None
    if window == 0:
        s.report((*path, "window"), "a cap window must be longer than 0")
        return None
    if c.limit == 0:
        s.report((*path, "limit"), "cap limit 0: it never grants anything", "warning")
    return CompiledCap(
        id=c.id or default_id,
        scope=scope,
        targets=frozenset({target}),
        per_target=False,
        channels=frozenset(),
        limit=c.limit,
        window_ms=window,
        include_transactional=c.include_transactional,
        location=s.locator.locate(path),
    )
