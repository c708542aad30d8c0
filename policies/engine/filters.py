"""Filters, first failure wins, recorded per candidate: validity -> journey status / kill switch -> consent
-> suppression -> quiet hours -> eligibility -> caps. (The holdout is the last filter: :mod:`.holdouts`.)"""

from __future__ import annotations

from arbiter.policies.decision import CandidateTrace, Outcome, ReasonCode
from arbiter.policies.plan import CompiledAction

from .candidates import Passing
from .facts import Facts, names

__all__ = ["filter_candidates", "filtered_trace"]

_R = ReasonCode


def filtered_trace(
    action: CompiledAction,
    stage: str,
    reason: ReasonCode,
    detail: str,
    not_before_ms: int | None = None,
) -> CandidateTrace:
    """The explain-trace entry of a candidate a filter (or a failed score) removed."""
    return CandidateTrace(
        action=action.id,
        journey=action.journey,
        stage=stage,
        channel=action.channel_id,
        outcome=Outcome.FILTERED,
        reason=reason,
        detail=detail,
        not_before_ms=not_before_ms,
    )


def filter_candidates(
    facts: Facts,
    candidates: list[tuple[CompiledAction, str]],
    paused_journeys: frozenset[str],
    trace: dict[str, CandidateTrace] | None,
    paused_actions: frozenset[str] = frozenset(),
) -> list[Passing]:
    """The candidates that pass every filter; the others go into ``trace`` (when explaining).
    One loop, cheapest filters first; every verdict a filter shares is cached in ``facts``."""
    explain = trace is not None
    now = facts.now_ms
    inactive = facts.policy.inactive_journeys
    consent_cache = facts.consent_cache
    activation = facts.activation
    unavailable = facts.unavailable
    caps_unavailable = "caps" in unavailable
    passing: list[Passing] = []
    for action, stage in candidates:
        jid = action.journey
        reason: ReasonCode | None = None
        detail = ""
        if (action.valid_from_ms is not None and now < action.valid_from_ms) or (
            action.valid_until_ms is not None and now >= action.valid_until_ms
        ):
            reason = _R.OUTSIDE_VALIDITY
            if explain:
                detail = f"valid [{action.valid_from_ms}, {action.valid_until_ms}) ms, now {now}"
        elif jid and (jid in inactive or jid in paused_journeys):
            reason = _R.PAUSED
            if explain:
                detail = inactive.get(jid) or f"journey `{jid}` paused by an operator"
        elif paused_actions and action.id in paused_actions:
            reason = _R.PAUSED
            if explain:
                detail = f"action `{action.id}` paused (an operator's kill switch or a tripped volume guard)"
        elif (verdict := consent_cache.get(action.channel_id) or facts.channel_consent(action))[0]:
            reason, detail = verdict
        elif action.suppressions and (hit := facts.suppressed_by(action))[0]:
            reason, detail = _R.SUPPRESSED, hit[1]
        elif (
            action.channel.quiet_hours
            and not action.transactional
            and (quiet := facts.quiet(action))
        ):
            reason, detail = _R.QUIET_HOURS, quiet
        else:
            eligibility = action.eligibility
            if eligibility is not None:
                missing = eligibility.parts & unavailable if unavailable else None
                if missing:
                    reason = _R.STATE_UNAVAILABLE
                    detail = f"eligibility reads {names(missing)}, unavailable"
                else:
                    try:
                        if eligibility.program.evaluate(activation) is not True:
                            reason = _R.INELIGIBLE
                            if explain:
                                detail = f"`{eligibility.compact}` is false"
                    except Exception as exc:  # fail safe: not eligible
                        reason = _R.INELIGIBLE
                        detail = f"eligibility failed: {exc}"
                        facts.degrade(_R.ERROR, f"action `{action.id}`: {detail}")
            if reason is None and action.caps:
                if caps_unavailable:
                    reason, detail = _R.STATE_UNAVAILABLE, "caps unavailable"
                else:
                    for b in action.caps:
                        used = facts.used(b.key, b.window_ms)
                        if used >= b.limit:
                            reason = _R.CAPPED
                            if explain:
                                detail = f"cap `{b.cap_id}` ({b.key}): {used}/{b.limit}"
                            break
        if reason is None:
            passing.append(Passing(action, stage))
            continue
        # Refused only by time (quiet hours, a full cap): when it may go.
        later = facts.defer(action) if reason is _R.QUIET_HOURS or reason is _R.CAPPED else None
        if trace is not None:
            trace[action.id] = filtered_trace(action, stage, reason, detail, later)
    return passing
