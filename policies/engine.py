"""The decision pipeline: ``decide(policy, request, snapshot, now)`` -> a decision and its commit.

DESIGN.md §3 steps 4-6 and 8, as a pure function (no clock, no I/O):

4. **Candidates**: actions for the request's placement and allowed channels
   (precomputed per (placement, channels) in a per-policy plan) that are
   always-on, or whose journey the customer is active in at a stage the
   action offers. Journey timers (``after`` transitions, ``max_duration``)
   are applied first, so a customer whose stage timed out sees the next
   stage's actions; the resulting journey changes ride along in the commit.
5. **Filters**, first failure wins, recorded per candidate: validity window
   -> journey status / kill switch -> consent -> suppression -> quiet hours
   -> eligibility -> caps -> holdout (global control group, journey holdout).
6. **Scoring** by the policy's arbitration formula (the default formula
   is computed without the CEL call, with identical arithmetic);
   ranking by score desc, priority desc, action id asc; constraints in
   rank order: at most ``max_per_journey`` per journey, ``max_per_channel``,
   caps counting grants chosen earlier in the same decision, ``limit``.
   Nothing chosen: the best fallback that passed the filters.
8. **Result**: a :class:`~policies.decision.Decision` (with the explain
   trace when asked) and the :class:`~policies.effects.DecisionCommit`.

Fail safe: consent or caps that cannot be read deny; an expression reading
a part of the snapshot that could not be read is not evaluated and fails
toward not sending; an eligibility error is ``INELIGIBLE``, a suppression
error ``SUPPRESSED``, a value/score error ``ERROR``; each such case is also a
degradation on the decision.

Held-out customers (control group, journey holdout) get no action from the
held candidates, but arbitration is run a second time with them included
and what they would have received is returned in ``Decision.held_out``.

Performance: per policy a plan (candidate lists, thawed payloads, cap
increments, expression part-sets) is built once and cached by identity;
per decision one activation is built and reused for every expression,
every suppression rule and every bucket is computed at most once, and with
``explain`` off no per-candidate trace objects are built.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from typing import Any, Final

import msgspec

from . import bucketing
from .cel import Timestamp, timefns
from .cel.errors import EvalError
from .compiled import CompiledAction, CompiledPolicy, CompiledSuppression, build_activation
from .contracts import JourneysView
from .decision import (
    CandidateTrace,
    ChosenAction,
    Decision,
    Degradation,
    Outcome,
    PurposeConsent,
    ReasonCode,
    Request,
)
from .effects import CapIncrement, DecisionCommit, Grant, JourneyChange
from .journeys import advance_timers
from .model import DEFAULT_SCORE
from .snapshot import CustomerSnapshot, JourneyState, SnapshotPart, cap_count

__all__ = ["decide", "decision_id", "policy_version", "reconcile"]

_NS_PER_MS: Final = 1_000_000
_EMPTY: Final[list[int]] = []
_R = ReasonCode


def policy_version(policy: CompiledPolicy) -> str:
    """``<declared version>+<content digest>``, as reported on every decision."""
    return f"{policy.version}+{policy.digest}"


def decision_id(policy: CompiledPolicy, customer_id: str, request_id: str, now_ms: int) -> str:
    """Deterministic decision id: the first 32 hex digits of
    SHA-256(``digest \\n customer_id \\n request_id \\n now_ms``).

    Unique as long as request ids are (the server requires one per call).
    """
    text = f"{policy.digest}\n{customer_id}\n{request_id}\n{now_ms}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


# =========================================================================== per-policy plan


def _parts(references: Iterable[str]) -> frozenset[SnapshotPart]:
    """The snapshot parts an expression reads (for fail-safe on unavailable parts)."""
    parts: set[SnapshotPart] = set()
    for ref in references:
        head = ref.split(".", 1)[0]
        if head == "profile":
            parts.add("profile")
        elif head == "events":
            parts.add("events")
        elif head == "segments":
            parts.add("segments")
        elif head == "journeys":
            parts.add("journeys")
    return frozenset(parts)


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_thaw(v) for v in value]
    return value


class _ActionPlan:
    """Everything about one action the hot path reads, as plain attributes."""

    __slots__ = (
        "action",
        "always_on",
        "cap_increments",
        "caps",
        "channel",
        "channel_id",
        "elig",
        "elig_parts",
        "elig_text",
        "fallback",
        "id",
        "journey",
        "order",
        "payload",
        "priority",
        "stages",
        "suppression_key",
        "suppressions",
        "tags",
        "tags_list",
        "transactional",
        "valid_from",
        "valid_until",
        "value",
        "value_expr",
        "value_parts",
        "variant_ids",
        "variant_payloads",
        "weights",
    )

    def __init__(self, a: CompiledAction) -> None:
        self.action = a
        self.id = a.id
        self.journey = a.journey or ""
        self.order = a.order
        self.stages = a.stages
        self.always_on = a.always_on
        self.channel = a.channel
        self.channel_id = a.channel.id
        self.transactional = a.transactional
        self.elig = a.eligibility.program if a.eligibility is not None else None
        self.elig_parts = _parts(a.eligibility.references) if a.eligibility else frozenset()
        self.elig_text = " ".join(a.eligibility.text.split()) if a.eligibility else ""
        self.value = float(a.value)
        self.value_expr = a.value_expr.program if a.value_expr is not None else None
        self.value_parts = _parts(a.value_expr.references) if a.value_expr else frozenset()
        self.priority = a.priority
        self.caps = a.caps
        self.cap_increments = tuple(
            CapIncrement(cap_id=b.cap_id, key=b.key, window_ms=b.window_ms, limit=b.limit)
            for b in a.caps
        )
        self.suppressions: tuple[CompiledSuppression, ...] = a.suppressions
        # Actions covered by the same rules share one verdict per decision.
        self.suppression_key = "\x00".join(r.id for r in a.suppressions)
        self.tags = tuple(sorted(a.tags))
        self.tags_list = list(self.tags)
        self.payload: dict[str, Any] = _thaw(a.payload)
        self.variant_ids = tuple(v.id for v in a.variants)
        self.variant_payloads: tuple[dict[str, Any], ...] = tuple(
            _thaw(v.payload) for v in a.variants
        )
        self.weights = tuple(v.weight for v in a.variants)
        self.valid_from = a.valid_from_ms
        self.valid_until = a.valid_until_ms
        self.fallback = a.fallback


class _Plan:
    """Per-policy precomputation, built on first use and cached by policy identity."""

    def __init__(self, policy: CompiledPolicy) -> None:
        self.policy = policy
        self.actions = {a.id: _ActionPlan(a) for a in policy.actions.values()}
        self.channel_ids = tuple(policy.channels)
        self.version = policy_version(policy)
        arb = policy.arbitration
        self.score = arb.score.program
        self.score_parts = _parts(arb.score.references)
        self.default_score = arb.score.text.strip() == DEFAULT_SCORE
        self.default_propensity = float(arb.default_propensity)
        self.max_per_journey = arb.max_per_journey
        self.max_per_channel = dict(arb.max_per_channel)
        self.max_actions = arb.max_actions
        self.suppression_parts = {s.id: _parts(s.when.references) for s in policy.suppressions}
        for a in self.actions.values():
            for s in a.suppressions:
                self.suppression_parts.setdefault(s.id, _parts(s.when.references))
        self.journey_block: dict[str, str] = {
            j.id: ("" if j.status == "active" else f"journey `{j.id}` is {j.status}")
            for j in policy.journeys.values()
        }
        self.holdouts: dict[str, tuple[str, int]] = {
            j.id: (j.holdout_salt, j.holdout_buckets)
            for j in policy.journeys.values()
            if j.holdout_buckets
        }
        refs = arb.score.references
        self.score_vars = tuple(
            name
            for name in (
                "priority",
                "value",
                "propensity",
                "action",
                "action.id",
                "action.channel",
                "action.journey",
                "action.tags",
            )
            if name in refs or (name.startswith("action.") and "action" in refs)
        )
        self.has_timers = any(
            j.max_duration_ms is not None
            or any(t.after_ms is not None for s in j.stages.values() for t in s.transitions)
            for j in policy.journeys.values()
        )
        consent = policy.consent
        self.dnc_attribute = consent.do_not_contact
        self.region_attribute = consent.region_attribute
        self._candidates: dict[tuple[str, tuple[str, ...]], _Index] = {}
        self._purposes: dict[tuple[str, ...], tuple[str, ...]] = {}

    def purposes(self, channels: tuple[str, ...]) -> tuple[str, ...]:
        """The consent purposes the channels require, sorted (memoised)."""
        found = self._purposes.get(channels)
        if found is None:
            names = channels or self.channel_ids
            found = tuple(
                sorted(
                    {
                        p
                        for c in names
                        if c in self.policy.channels
                        for p in self.policy.channels[c].purposes
                    }
                )
            )
            if len(self._purposes) < 4096:
                self._purposes[channels] = found
        return found

    def candidates(self, placement: str, channels: tuple[str, ...]) -> _Index:
        """The candidate index for a placement and channel list (memoised).

        ``always``: always-on actions; ``journeys``: per journey (declaration
        order) its stage -> actions map, so a decision only touches the
        actions of the stages its customer is in.
        """
        key = (placement, channels)
        found = self._candidates.get(key)
        if found is not None:
            return found
        allowed = set(channels) if channels else None
        matching = [
            ap
            for ap in self.actions.values()
            if (allowed is None or ap.channel_id in allowed)
            and (placement in ap.action.placements if placement else not ap.action.placements)
        ]
        always = tuple(ap for ap in matching if ap.always_on or not ap.journey)
        journeys: list[tuple[str, dict[str, tuple[_ActionPlan, ...]]]] = []
        for jid, journey in self.policy.journeys.items():
            by_stage = {
                stage: tuple(
                    ap
                    for ap in matching
                    if ap.journey == jid
                    and not ap.always_on
                    and (not ap.stages or stage in ap.stages)
                )
                for stage in journey.stages
            }
            by_stage = {stage: acts for stage, acts in by_stage.items() if acts}
            if by_stage:
                journeys.append((jid, by_stage))
        result = _Index(always, tuple(journeys))
        if len(self._candidates) < 4096:  # bounded: channel lists come from callers
            self._candidates[key] = result
        return result


class _Index:
    __slots__ = ("always", "journeys")

    def __init__(
        self,
        always: tuple[_ActionPlan, ...],
        journeys: tuple[tuple[str, dict[str, tuple[_ActionPlan, ...]]], ...],
    ) -> None:
        self.always = always
        self.journeys = journeys


_PLANS: dict[int, tuple[CompiledPolicy, _Plan]] = {}


def _plan(policy: CompiledPolicy) -> _Plan:
    entry = _PLANS.get(id(policy))
    if entry is not None and entry[0] is policy:
        return entry[1]
    plan = _Plan(policy)
    if len(_PLANS) >= 8:  # a few policies live at once (active, previous, under test)
        _PLANS.pop(next(iter(_PLANS)))
    _PLANS[id(policy)] = (policy, plan)
    return plan


# =========================================================================== per-decision state


class _Passing:
    """A candidate that passed the filters (or only failed the holdout)."""

    __slots__ = ("ap", "held", "score", "stage")

    def __init__(self, ap: _ActionPlan, stage: str, score: float, held: ReasonCode | None) -> None:
        self.ap = ap
        self.stage = stage
        self.score = score
        self.held = held


def _rank_key(c: _Passing) -> tuple[float, int, str]:
    return (-c.score, -c.ap.priority, c.ap.id)


def _degradation_key(d: Degradation) -> tuple[str, str]:
    return (d.reason.value, d.detail)


def _order_key(entry: tuple[_ActionPlan, str]) -> int:
    return entry[0].order


class _Context:
    """Lazily computed facts of one decision (consent per purpose, suppressions, local time)."""

    __slots__ = (
        "activation",
        "buckets",
        "consent_cache",
        "customer_id",
        "degradations",
        "local",
        "now_ms",
        "plan",
        "purposes",
        "quiet_cache",
        "rules",
        "snapshot",
        "suppressed",
        "unavailable",
        "usage",
    )

    def __init__(
        self, plan: _Plan, snapshot: CustomerSnapshot, activation: dict[str, object], now_ms: int
    ) -> None:
        self.plan = plan
        self.snapshot = snapshot
        self.customer_id = snapshot.customer_id
        self.activation = activation
        self.now_ms = now_ms
        self.unavailable = snapshot.unavailable
        self.consent_cache: dict[str, tuple[ReasonCode | None, str]] = {}
        self.purposes: dict[str, PurposeConsent] = {}
        self.rules: dict[str, tuple[bool, str]] = {}
        self.suppressed: dict[str, tuple[bool, str]] = {}
        self.quiet_cache: dict[str, str] = {}  # channel -> detail, "" = not quiet
        self.usage: dict[str, int] = {}
        self.buckets: dict[str, bool] = {}
        self.local: tuple[int, int] | None = None
        self.degradations: list[Degradation] | None = None

    def degrade(self, reason: ReasonCode, detail: str) -> None:
        if self.degradations is None:
            self.degradations = []
        entry = Degradation(reason=reason, detail=detail)
        if entry not in self.degradations:
            self.degradations.append(entry)

    # -- consent ------------------------------------------------------------------------------
    def purpose(self, purpose: str) -> PurposeConsent:
        """The raw verdict for one purpose (before do-not-contact), cached."""
        found = self.purposes.get(purpose)
        if found is not None:
            return found
        policy = self.plan.policy
        if "consent" in self.unavailable:
            result = PurposeConsent(
                purpose=purpose,
                allowed=False,
                reason=_R.STATE_UNAVAILABLE,
            )
            self.purposes[purpose] = result
            return result
        record = self.snapshot.consent.get(purpose)
        now = self.now_ms
        if record is not None and (record.expires_ms is None or record.expires_ms > now):
            granted = record.state == "granted"
            result = PurposeConsent(
                purpose=purpose,
                state=record.state,
                allowed=granted,
                reason=_R.ELIGIBLE if granted else _R.CONSENT_DENIED,
                source=record.source,
                updated_ms=record.updated_ms,
                expires_ms=record.expires_ms,
            )
        else:
            region: str | None = None
            region_known = True
            attr = self.plan.region_attribute
            if attr is not None:
                if "profile" in self.unavailable:
                    region_known = False
                else:
                    entry = self.snapshot.profile.get(attr)
                    if entry is not None and isinstance(entry.value, str):
                        region = entry.value
            allowed = region_known and policy.consent.unset_allowed(region, purpose)
            if allowed:
                reason = _R.ELIGIBLE
            elif record is not None:
                reason = _R.CONSENT_EXPIRED
            else:
                reason = _R.CONSENT_UNKNOWN
            result = PurposeConsent(
                purpose=purpose,
                allowed=allowed,
                reason=reason,
                source=record.source if record is not None else "",
                updated_ms=record.updated_ms if record is not None else None,
                expires_ms=record.expires_ms if record is not None else None,
            )
        self.purposes[purpose] = result
        return result

    def do_not_contact(self) -> ReasonCode | None:
        attr = self.plan.dnc_attribute
        if attr is None:
            return None
        if "profile" in self.unavailable:
            return _R.STATE_UNAVAILABLE
        entry = self.snapshot.profile.get(attr)
        return _R.DO_NOT_CONTACT if entry is not None and entry.value is True else None

    def channel_consent(self, ap: _ActionPlan) -> tuple[ReasonCode | None, str]:
        """``(None, "")`` when the channel may be used, else the reason and a detail."""
        channel = ap.channel
        found = self.consent_cache.get(channel.id)
        if found is not None:
            return found
        result: tuple[ReasonCode | None, str] = (None, "")
        if not channel.transactional:
            dnc = self.do_not_contact()
            if dnc is not None:
                result = (
                    dnc,
                    "do-not-contact is set"
                    if dnc is _R.DO_NOT_CONTACT
                    else "profile unavailable: do-not-contact unknown",
                )
        if result[0] is None:
            for p in channel.purposes:
                verdict = self.purpose(p)
                if not verdict.allowed:
                    result = (verdict.reason, f"purpose `{p}`: {_consent_detail(verdict)}")
                    break
        self.consent_cache[channel.id] = result
        return result

    def consent_summary(self, purposes: tuple[str, ...]) -> tuple[PurposeConsent, ...]:
        """Every purpose of the request's channels (sorted), after do-not-contact."""
        dnc = self.do_not_contact() if purposes else None
        out = []
        for name in purposes:
            self.purpose(name)
        for name in purposes:
            verdict = self.purposes[name]
            if dnc is not None and verdict.allowed:
                verdict = PurposeConsent(
                    purpose=verdict.purpose,
                    state=verdict.state,
                    allowed=False,
                    reason=dnc,
                    source=verdict.source,
                    updated_ms=verdict.updated_ms,
                    expires_ms=verdict.expires_ms,
                )
            out.append(verdict)
        return tuple(out)

    # -- suppression ----------------------------------------------------------------------------
    def suppression(self, rule: CompiledSuppression) -> tuple[bool, str]:
        found = self.rules.get(rule.id)
        if found is not None:
            return found
        missing = self.plan.suppression_parts.get(rule.id, frozenset()) & self.unavailable
        if missing:
            detail = f"rule `{rule.id}` ({rule.reason}): {_names(missing)} unavailable"
            result = (True, detail)
            self.degrade(_R.STATE_UNAVAILABLE, detail)
        else:
            try:
                hit = rule.when.program.evaluate(self.activation) is True
                result = (hit, f"rule `{rule.id}` ({rule.reason})" if hit else "")
            except Exception as exc:  # fail safe: a failing suppression suppresses
                detail = f"rule `{rule.id}` ({rule.reason}) failed: {exc}"
                result = (True, detail)
                self.degrade(_R.ERROR, detail)
        self.rules[rule.id] = result
        return result

    def suppressed_by(self, ap: _ActionPlan) -> tuple[bool, str]:
        """The verdict of the suppression rules covering ``ap`` (first hit), cached per rule set."""
        key = ap.suppression_key
        found = self.suppressed.get(key)
        if found is None:
            found = (False, "")
            for rule in ap.suppressions:
                hit = self.suppression(rule)
                if hit[0]:
                    found = hit
                    break
            self.suppressed[key] = found
        return found

    # -- quiet hours ----------------------------------------------------------------------------
    def quiet(self, ap: _ActionPlan) -> str:
        """``""`` when the channel may be used now, else a detail (cached per channel)."""
        channel = ap.channel
        found = self.quiet_cache.get(channel.id)
        if found is None:
            minute, weekday = self.local_time()
            found = (
                f"channel `{channel.id}` quiet at local {minute // 60:02d}:{minute % 60:02d}"
                if channel.quiet_at(minute, weekday)
                else ""
            )
            self.quiet_cache[channel.id] = found
        return found

    def local_time(self) -> tuple[int, int]:
        """(minute of day, weekday 0 = Sunday) in the customer's time zone."""
        if self.local is None:
            customer = self.activation.get("customer")
            tz = getattr(customer, "tz", self.plan.policy.default_timezone)
            now = Timestamp(self.now_ms * _NS_PER_MS)
            try:
                offset = timefns.utc_offset_seconds(now, tz)
            except EvalError:
                offset = timefns.utc_offset_seconds(now, self.plan.policy.default_timezone)
            local = self.now_ms // 1000 + offset
            # 1970-01-01 was a Thursday (4 with 0 = Sunday).
            self.local = ((local // 60) % 1440, (local // 86_400 + 4) % 7)
        return self.local

    # -- caps, bucketing ------------------------------------------------------------------------
    def used(self, key: str, window_ms: int) -> int:
        found = self.usage.get(key)
        if found is None:
            found = cap_count(self.snapshot.caps.get(key, _EMPTY), self.now_ms, window_ms)
            self.usage[key] = found
        return found

    def held(self, salt: str, buckets: int) -> bool:
        found = self.buckets.get(salt)
        if found is None:
            found = bucketing.in_holdout(salt, self.customer_id, buckets)
            self.buckets[salt] = found
        return found


def _names(parts: Iterable[str]) -> str:
    return ", ".join(sorted(parts))


def _consent_detail(verdict: PurposeConsent) -> str:
    reason = verdict.reason
    if reason is _R.CONSENT_DENIED:
        return f"denied by {verdict.source or 'unknown source'}"
    if reason is _R.CONSENT_EXPIRED:
        return "expired, and unset consent is denied here"
    if reason is _R.CONSENT_UNKNOWN:
        return "unset, and unset consent is denied here"
    return "consent state unavailable"


# =========================================================================== decide


def _filtered(
    ap: _ActionPlan, journey: str, stage: str, reason: ReasonCode, detail: str
) -> CandidateTrace:
    """The explain-trace entry of a candidate a filter (or a failed score) removed."""
    return CandidateTrace(
        action=ap.id,
        journey=journey,
        stage=stage,
        channel=ap.channel_id,
        outcome=Outcome.FILTERED,
        reason=reason,
        detail=detail,
    )


def decide(
    policy: CompiledPolicy,
    request: Request,
    snapshot: CustomerSnapshot,
    now_ms: int,
    *,
    paused_journeys: frozenset[str] = frozenset(),
) -> tuple[Decision, DecisionCommit]:
    """Decide for one request (see the module docstring). Pure and deterministic.

    ``now_ms`` is the decision instant (epoch ms). ``paused_journeys`` is the
    operators' kill switch (AdminService ``PauseJourney``), on top of the
    statuses the policy declares. Returns the decision and what the store
    must commit (nothing is written here; a dry run simply drops the commit).
    """
    plan = _plan(policy)
    explain = request.explain
    customer_id = snapshot.customer_id
    did = decision_id(policy, customer_id, request.request_id, now_ms)
    channels = request.channels
    activation = build_activation(
        policy,
        snapshot,
        request.context,
        now_ms,
        placement=request.placement,
        channels=channels or plan.channel_ids,
    )
    ctx = _Context(plan, snapshot, activation, now_ms)
    unavailable = snapshot.unavailable
    if unavailable:
        for part in sorted(unavailable & policy.needs.parts):
            ctx.degrade(_R.STATE_UNAVAILABLE, f"{part} unavailable")

    # -- journey states at `now` (timers) ------------------------------------------------------
    states: Mapping[str, JourneyState] = snapshot.journeys
    journey_changes: tuple[JourneyChange, ...] = ()
    if "journeys" in unavailable:
        states = {}
    elif plan.has_timers and states:
        advanced, changes = advance_timers(policy, states, activation, now_ms)
        if changes:
            states = advanced
            journey_changes = tuple(changes)
            # Expressions see the same journey states the candidates come from.
            activation["journeys"] = JourneysView(states)

    # -- control group ---------------------------------------------------------------------------
    holdout = policy.holdout
    control = holdout is not None and bucketing.in_holdout(
        holdout.salt, customer_id, holdout.buckets
    )
    control_transactional = holdout is not None and holdout.include_transactional

    # -- candidates and filters ------------------------------------------------------------------
    trace: dict[str, CandidateTrace] | None = {} if explain else None
    passing: list[_Passing] = []
    any_held = False
    now = now_ms
    caps_unavailable = "caps" in unavailable
    index = plan.candidates(request.placement, channels)
    candidates_in: list[tuple[_ActionPlan, str]] = []
    for ap in index.always:
        stage = ""
        if ap.journey:
            state = states.get(ap.journey)
            if state is not None and state.status == "active":
                stage = state.stage
        candidates_in.append((ap, stage))
    for jid, by_stage in index.journeys:
        state = states.get(jid)
        if state is not None and state.status == "active":
            acts = by_stage.get(state.stage)
            if acts:
                candidates_in.extend((ap, state.stage) for ap in acts)
    if explain:
        candidates_in.sort(key=_order_key)  # the trace lists candidates in declaration order
    consent_cache = ctx.consent_cache
    journey_block = plan.journey_block
    holdouts = plan.holdouts
    for ap, stage in candidates_in:
        jid = ap.journey
        reason: ReasonCode | None = None
        detail = ""
        if (ap.valid_from is not None and now < ap.valid_from) or (
            ap.valid_until is not None and now >= ap.valid_until
        ):
            reason = _R.OUTSIDE_VALIDITY
            if explain:
                detail = f"valid [{ap.valid_from}, {ap.valid_until}) ms, now {now}"
        elif jid and (journey_block.get(jid) or jid in paused_journeys):
            reason = _R.PAUSED
            if explain:
                detail = journey_block.get(jid) or f"journey `{jid}` paused by an operator"
        else:
            verdict = consent_cache.get(ap.channel_id) or ctx.channel_consent(ap)
            if verdict[0] is not None:
                reason, detail = verdict
            elif ap.suppressions and (hit := ctx.suppressed_by(ap))[0]:
                reason, detail = _R.SUPPRESSED, hit[1]
            elif ap.channel.quiet_hours and not ap.transactional and (quiet := ctx.quiet(ap)):
                reason, detail = _R.QUIET_HOURS, quiet
            else:
                if ap.elig is not None:
                    missing = ap.elig_parts & unavailable if unavailable else None
                    if missing:
                        reason = _R.STATE_UNAVAILABLE
                        detail = f"eligibility reads {_names(missing)}, unavailable"
                    else:
                        try:
                            if ap.elig.evaluate(activation) is not True:
                                reason = _R.INELIGIBLE
                                if explain:
                                    detail = f"`{ap.elig_text}` is false"
                        except Exception as exc:  # fail safe: not eligible
                            reason = _R.INELIGIBLE
                            detail = f"eligibility failed: {exc}"
                            ctx.degrade(_R.ERROR, f"action `{ap.id}`: {detail}")
                if reason is None and ap.caps:
                    if caps_unavailable:
                        reason = _R.STATE_UNAVAILABLE
                        detail = "caps unavailable"
                    else:
                        for b in ap.caps:
                            used = ctx.used(b.key, b.window_ms)
                            if used >= b.limit:
                                reason = _R.CAPPED
                                if explain:
                                    detail = f"cap `{b.cap_id}` ({b.key}): {used}/{b.limit}"
                                break
        if reason is not None:
            if trace is not None:
                trace[ap.id] = _filtered(ap, jid, stage, reason, detail)
            continue

        # holdout: the candidate is still scored and ranked, for the counterfactual
        held: ReasonCode | None = None
        if control and (control_transactional or not ap.transactional):
            held = _R.CONTROL_GROUP
        elif jid and jid in holdouts:
            salt, buckets = holdouts[jid]
            if ctx.held(salt, buckets):
                held = _R.HOLDOUT

        try:
            score = _score(plan, ctx, ap, request.propensities, activation)
        except Exception as exc:  # fail safe: an unscorable action is not sent
            why = f"value or score failed: {exc}"
            ctx.degrade(_R.ERROR, f"action `{ap.id}`: {why}")
            if trace is not None:
                trace[ap.id] = _filtered(ap, jid, stage, _R.ERROR, why)
            continue
        if held is not None:
            any_held = True
        passing.append(_Passing(ap, stage, score, held))

    # -- arbitration ---------------------------------------------------------------------------
    requested = request.limit if request.limit > 0 else 1
    limit = requested
    if plan.max_actions is not None and plan.max_actions < limit:
        limit = plan.max_actions
    full_reason = _R.LIMIT_REACHED if limit < requested else _R.LOST_ARBITRATION
    passing.sort(key=_rank_key)
    notes: dict[str, tuple[ReasonCode, str]] | None = {} if explain else None
    live = [c for c in passing if c.held is None] if any_held else passing
    chosen = _select(plan, ctx, live, limit, full_reason=full_reason, notes=notes)
    held_out: list[_Passing] = []
    if any_held:
        would = _select(plan, ctx, passing, limit, full_reason=full_reason, notes=None)
        held_out = [c for c in would if c.held is not None]

    actions = tuple(_chosen(plan, ctx, c, did) for c in chosen)
    grants = tuple(
        Grant(
            tracking_id=a.tracking_id,
            action=a.action,
            channel=a.channel,
            journey=a.journey,
            stage=a.stage,
            caps=c.ap.cap_increments,
        )
        for a, c in zip(actions, chosen, strict=True)
    )

    candidates: tuple[CandidateTrace, ...] = ()
    if trace is not None and notes is not None:
        chosen_ids = {c.ap.id for c in chosen}
        would_ids = {c.ap.id for c in held_out}
        for c in passing:
            variant = _variant(ctx, c.ap)[0]
            if c.ap.id in chosen_ids:
                outcome, reason, detail = Outcome.SELECTED, _R.SELECTED, ""
                if c.ap.fallback:
                    detail = "fallback: nothing else qualified"
            elif c.held is not None:
                outcome, reason = Outcome.FILTERED, c.held
                detail = ("would have been selected" if c.ap.id in would_ids else "held out") + (
                    " (global control group)" if c.held is _R.CONTROL_GROUP else ""
                )
            else:
                outcome = Outcome.NOT_SELECTED
                reason, detail = notes.get(c.ap.id, (_R.LOST_ARBITRATION, "outranked"))
            trace[c.ap.id] = CandidateTrace(
                action=c.ap.id,
                journey=c.ap.journey,
                stage=c.stage,
                channel=c.ap.channel_id,
                outcome=outcome,
                reason=reason,
                detail=detail,
                score=c.score,
                variant=variant,
            )
        candidates = tuple(trace[ap.id] for ap, _ in candidates_in)

    decision = Decision(
        decision_id=did,
        request_id=request.request_id,
        customer_id=customer_id,
        policy_version=plan.version,
        decided_ms=now_ms,
        actions=actions,
        held_out=tuple(_chosen(plan, ctx, c, did) for c in held_out),
        control_group=control,
        consent=ctx.consent_summary(plan.purposes(channels)),
        # Sorted: the order of discovery depends on the candidate order (trace on/off).
        degradations=tuple(sorted(ctx.degradations, key=_degradation_key))
        if ctx.degradations
        else (),
        candidates=candidates,
    )
    commit = DecisionCommit(
        customer_id=customer_id,
        request_id=request.request_id,
        decision_id=did,
        now_ms=now_ms,
        policy_version=plan.version,
        grants=grants,
        journeys=journey_changes,
    )
    return decision, commit


def _score(
    plan: _Plan,
    ctx: _Context,
    ap: _ActionPlan,
    propensities: Mapping[str, float],
    activation: dict[str, object],
) -> float:
    if ap.value_expr is None:
        value = ap.value
    else:
        missing = ap.value_parts & ctx.unavailable
        if missing:
            raise EvalError(f"value reads {_names(missing)}, unavailable")
        value = float(ap.value_expr.evaluate(activation))  # type: ignore[arg-type]
    propensity = (
        propensities.get(ap.id, plan.default_propensity)
        if propensities
        else plan.default_propensity
    )
    if plan.default_score:
        score = float(ap.priority) * 1000.0 + value * float(propensity)
    else:
        missing = plan.score_parts & ctx.unavailable
        if missing:
            raise EvalError(f"score reads {_names(missing)}, unavailable")
        for name in plan.score_vars:
            if name == "priority":
                activation[name] = ap.priority
            elif name == "value":
                activation[name] = value
            elif name == "propensity":
                activation[name] = float(propensity)
            elif name == "action":
                activation[name] = None
            elif name == "action.id":
                activation[name] = ap.id
            elif name == "action.channel":
                activation[name] = ap.channel_id
            elif name == "action.journey":
                activation[name] = ap.journey
            else:
                activation[name] = ap.tags_list
        score = float(plan.score.evaluate(activation))  # type: ignore[arg-type]
    if math.isnan(score):
        raise EvalError("score is NaN")
    return score


class _Selector:
    """Constraint bookkeeping of one arbitration pass (journey, channel, in-decision caps)."""

    __slots__ = (
        "chosen",
        "ctx",
        "max_channel",
        "max_journey",
        "pending",
        "per_channel",
        "per_journey",
    )

    def __init__(self, plan: _Plan, ctx: _Context) -> None:
        self.ctx = ctx
        self.max_journey = plan.max_per_journey
        self.max_channel = plan.max_per_channel
        self.chosen: list[_Passing] = []
        self.per_journey: dict[str, int] = {}
        self.per_channel: dict[str, int] = {}
        self.pending: dict[str, int] = {}

    def blocked(self, c: _Passing) -> tuple[ReasonCode, str] | None:
        """Why ``c`` cannot join the actions chosen so far, or ``None``."""
        ap = c.ap
        if ap.journey and self.per_journey.get(ap.journey, 0) >= self.max_journey:
            return (
                _R.JOURNEY_CONSTRAINT,
                f"journey `{ap.journey}` already has {self.max_journey} action(s)",
            )
        channel_limit = self.max_channel.get(ap.channel_id)
        if channel_limit is not None and self.per_channel.get(ap.channel_id, 0) >= channel_limit:
            return _R.CHANNEL_LIMIT, f"channel `{ap.channel_id}` limit {channel_limit} reached"
        if self.pending:
            for b in ap.caps:
                extra = self.pending.get(b.key, 0)
                if extra and self.ctx.used(b.key, b.window_ms) + extra >= b.limit:
                    return (
                        _R.CAPPED,
                        f"cap `{b.cap_id}` ({b.key}) reached by actions chosen in this decision",
                    )
        return None

    def take(self, c: _Passing) -> None:
        ap = c.ap
        self.chosen.append(c)
        if ap.journey:
            self.per_journey[ap.journey] = self.per_journey.get(ap.journey, 0) + 1
        self.per_channel[ap.channel_id] = self.per_channel.get(ap.channel_id, 0) + 1
        for b in ap.caps:
            self.pending[b.key] = self.pending.get(b.key, 0) + 1


def _select(
    plan: _Plan,
    ctx: _Context,
    ranked: list[_Passing],
    limit: int,
    *,
    full_reason: ReasonCode,
    notes: dict[str, tuple[ReasonCode, str]] | None,
) -> list[_Passing]:
    """Apply the constraints in rank order; regular actions first, else the best fallback.

    ``notes`` (explain only) receives the reason of every candidate not chosen.
    """
    selector = _Selector(plan, ctx)
    chosen = selector.chosen
    fallbacks: list[_Passing] = []
    for c in ranked:
        if c.ap.fallback:
            fallbacks.append(c)
            continue
        if len(chosen) >= limit:
            if notes is None:
                break
            notes[c.ap.id] = (full_reason, f"limit {limit} filled by higher-ranked actions")
            continue
        why = selector.blocked(c)
        if why is None:
            selector.take(c)
        elif notes is not None:
            notes[c.ap.id] = why
    if chosen:
        if notes is not None:
            for c in fallbacks:
                notes[c.ap.id] = (_R.LOST_ARBITRATION, "fallback not needed")
        return chosen
    for c in fallbacks:
        if chosen:
            if notes is not None:
                notes[c.ap.id] = (_R.LOST_ARBITRATION, "a better fallback was chosen")
            continue
        why = selector.blocked(c)
        if why is None:
            selector.take(c)
        elif notes is not None:
            notes[c.ap.id] = why
    return chosen


def _variant(ctx: _Context, ap: _ActionPlan) -> tuple[str, dict[str, Any]]:
    if not ap.variant_ids:
        return "", ap.payload
    index = bucketing.pick_weighted(ap.weights, bucketing.variant_bucket(ap.id, ctx.customer_id))
    if index is None:
        return "", ap.payload
    return ap.variant_ids[index], ap.variant_payloads[index]


def _chosen(plan: _Plan, ctx: _Context, c: _Passing, did: str) -> ChosenAction:
    ap = c.ap
    variant, payload = _variant(ctx, ap)
    return ChosenAction(
        action=ap.id,
        journey=ap.journey,
        stage=c.stage,
        channel=ap.channel_id,
        variant=variant,
        payload=payload,
        tracking_id=f"{did}.{ap.id}",
        score=c.score,
        tags=ap.tags,
        fallback=ap.fallback,
    )


# =========================================================================== after the commit


def reconcile(decision: Decision, rejected_actions: Iterable[str], detail: str = "") -> Decision:
    """The decision without the actions the store refused to grant (a cap was
    reached concurrently): they become ``CAPPED`` in the trace. The store
    re-checks caps atomically, so this is the only way a stale snapshot can
    show -- as fewer actions, never as an overshoot."""
    refused = set(rejected_actions)
    if not refused:
        return decision
    why = detail or "cap reached concurrently (store re-check)"
    return msgspec.structs.replace(
        decision,
        actions=tuple(a for a in decision.actions if a.action not in refused),
        candidates=tuple(
            msgspec.structs.replace(c, outcome=Outcome.FILTERED, reason=_R.CAPPED, detail=why)
            if c.action in refused
            else c
            for c in decision.candidates
        ),
    )
