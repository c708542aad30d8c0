"""The facts of one decision, computed lazily and at most once: consent per purpose, suppression verdicts, local time, cap usage, buckets.

Every filter asks :class:`Facts` instead of recomputing: a consent verdict
per channel, a suppression rule's verdict per rule (and per rule set), the
quiet-hours verdict per channel, a cap counter's usage per key and a holdout
bucket per salt. Fail-safe answers for unavailable snapshot parts and
failing expressions are decided here, and recorded as degradations.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from arbiter.policies import bucketing
from arbiter.policies.cel import Timestamp, timefns
from arbiter.policies.cel.errors import EvalError
from arbiter.policies.converters import NS_PER_MS
from arbiter.policies.decision import Degradation, PurposeConsent, ReasonCode
from arbiter.policies.plan import CompiledAction, CompiledPolicy, CompiledSuppression
from arbiter.policies.snapshot import CustomerSnapshot, cap_count

from .defer import not_before

__all__ = ["Facts", "names"]

_EMPTY: Final[list[int]] = []
_UNKNOWN: Final = object()
_R = ReasonCode


def names(parts: Iterable[str]) -> str:
    """Snapshot part names for a detail text: sorted, comma-separated."""
    return ", ".join(sorted(parts))


class Facts:
    """Lazily computed facts of one decision (see the module docstring)."""

    __slots__ = (
        "activation",
        "buckets",
        "consent_cache",
        "customer_id",
        "deferred",
        "degradations",
        "local",
        "not_before",
        "now_ms",
        "policy",
        "purposes",
        "quiet_cache",
        "rules",
        "snapshot",
        "suppressed",
        "unavailable",
        "usage",
    )

    def __init__(
        self,
        policy: CompiledPolicy,
        snapshot: CustomerSnapshot,
        activation: dict[str, object],
        now_ms: int,
    ) -> None:
        self.policy = policy
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
        self.deferred: dict[str, int | None] = {}
        self.not_before: int | None = None  # the earliest deferral of the decision

    def degrade(self, reason: ReasonCode, detail: str) -> None:
        """Record that the decision fell back toward not sending (once per reason and detail)."""
        if self.degradations is None:
            self.degradations = []
        entry = Degradation(reason=reason, detail=detail)
        if entry not in self.degradations:
            self.degradations.append(entry)

    # -- consent ------------------------------------------------------------------------------
    def purpose(self, purpose: str) -> PurposeConsent:
        """The raw verdict for one purpose (before do-not-contact), cached."""
        found = self.purposes.get(purpose)
        if found is None:
            if "consent" in self.unavailable:
                found = PurposeConsent(purpose=purpose, allowed=False, reason=_R.STATE_UNAVAILABLE)
            else:
                found = self._recorded_or_default(purpose)
            self.purposes[purpose] = found
        return found

    def _recorded_or_default(self, purpose: str) -> PurposeConsent:
        record = self.snapshot.consent.get(purpose)
        if record is not None and (record.expires_ms is None or record.expires_ms > self.now_ms):
            granted = record.state == "granted"
            return PurposeConsent(
                purpose=purpose,
                state=record.state,
                allowed=granted,
                reason=_R.ELIGIBLE if granted else _R.CONSENT_DENIED,
                source=record.source,
                updated_ms=record.updated_ms,
                expires_ms=record.expires_ms,
            )
        region: str | None = None
        region_known = True
        attr = self.policy.consent.region_attribute
        if attr is not None:
            if "profile" in self.unavailable:
                region_known = False
            else:
                entry = self.snapshot.profile.get(attr)
                if entry is not None and isinstance(entry.value, str):
                    region = entry.value
        allowed = region_known and self.policy.consent.unset_allowed(region, purpose)
        if allowed:
            reason = _R.ELIGIBLE
        elif not region_known:
            # What an unset consent means depends on the region, which could not be read.
            reason = _R.STATE_UNAVAILABLE
        elif record is not None:
            reason = _R.CONSENT_EXPIRED
        else:
            reason = _R.CONSENT_UNKNOWN
        return PurposeConsent(
            purpose=purpose,
            allowed=allowed,
            reason=reason,
            source=record.source if record is not None else "",
            updated_ms=record.updated_ms if record is not None else None,
            expires_ms=record.expires_ms if record is not None else None,
        )

    def do_not_contact(self) -> ReasonCode | None:
        """``DO_NOT_CONTACT`` when set, ``STATE_UNAVAILABLE`` when unknown, else ``None``."""
        attr = self.policy.consent.do_not_contact
        if attr is None:
            return None
        if "profile" in self.unavailable:
            return _R.STATE_UNAVAILABLE
        entry = self.snapshot.profile.get(attr)
        return _R.DO_NOT_CONTACT if entry is not None and entry.value is True else None

    def channel_consent(self, action: CompiledAction) -> tuple[ReasonCode | None, str]:
        """``(None, "")`` when the action's channel may be used, else the reason and a detail."""
        channel = action.channel
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
                    why = _consent_detail(
                        verdict, consent_unavailable="consent" in self.unavailable
                    )
                    result = (verdict.reason, f"purpose `{p}`: {why}")
                    break
        self.consent_cache[channel.id] = result
        return result

    def consent_summary(
        self, purposes: tuple[str, ...], transactional: frozenset[str] = frozenset()
    ) -> tuple[PurposeConsent, ...]:
        """Every purpose of the request's channels (sorted), as enforced: do-not-contact marks
        an allowed purpose only when no transactional channel among them requires it (a
        transactional channel is exempt from do-not-contact, so its purpose was allowed)."""
        dnc = self.do_not_contact() if purposes else None
        out = []
        for name in purposes:
            verdict = self.purpose(name)
            if dnc is not None and verdict.allowed and name not in transactional:
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
        """One rule's verdict and detail; unavailable parts and errors suppress (fail safe)."""
        found = self.rules.get(rule.id)
        if found is not None:
            return found
        missing = rule.when.parts & self.unavailable
        if missing:
            detail = f"rule `{rule.id}` ({rule.reason}): {names(missing)} unavailable"
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

    def suppressed_by(self, action: CompiledAction) -> tuple[bool, str]:
        """The verdict of the rules covering ``action`` (first hit), cached per rule set."""
        key = action.suppression_key
        found = self.suppressed.get(key)
        if found is None:
            found = (False, "")
            for rule in action.suppressions:
                hit = self.suppression(rule)
                if hit[0]:
                    found = hit
                    break
            self.suppressed[key] = found
        return found

    # -- quiet hours ----------------------------------------------------------------------------
    def quiet(self, action: CompiledAction) -> str:
        """``""`` when the action's channel may be used now, else a detail (cached per channel)."""
        channel = action.channel
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
        """(minute of day, weekday 0 = Sunday) in the customer's time zone, now."""
        if self.local is None:
            self.local = self.local_time_at(self.now_ms)
        return self.local

    def local_time_at(self, at_ms: int) -> tuple[int, int]:
        """(minute of day, weekday 0 = Sunday) in the customer's time zone at ``at_ms``."""
        default = self.policy.default_timezone
        tz = getattr(self.activation.get("customer"), "tz", default)
        instant = Timestamp(at_ms * NS_PER_MS)
        try:
            offset = timefns.utc_offset_seconds(instant, tz)
        except EvalError:
            offset = timefns.utc_offset_seconds(instant, default)
        local = at_ms // 1000 + offset
        # 1970-01-01 was a Thursday (4 with 0 = Sunday).
        return ((local // 60) % 1440, (local // 86_400 + 4) % 7)

    # -- deferral -------------------------------------------------------------------------------
    def defer(self, action: CompiledAction) -> int | None:
        """When the action, refused by quiet hours or a full cap, may go (cached per action);
        the earliest such instant of the decision is kept in ``not_before``."""
        found = self.deferred.get(action.id, _UNKNOWN)
        if found is _UNKNOWN:
            found = not_before(self, action)
            self.deferred[action.id] = found
            if found is not None and (self.not_before is None or found < self.not_before):
                self.not_before = found
        return found  # type: ignore[return-value]

    # -- caps, bucketing ------------------------------------------------------------------------
    def used(self, key: str, window_ms: int) -> int:
        """Grants counted by cap ``key`` in its window, as the snapshot shows them."""
        found = self.usage.get(key)
        if found is None:
            found = cap_count(self.snapshot.caps.get(key, _EMPTY), self.now_ms, window_ms)
            self.usage[key] = found
        return found

    def held(self, salt: str, buckets: int) -> bool:
        """Whether the customer falls in the first ``buckets`` buckets of ``salt``."""
        found = self.buckets.get(salt)
        if found is None:
            found = bucketing.in_holdout(salt, self.customer_id, buckets)
            self.buckets[salt] = found
        return found


def _consent_detail(verdict: PurposeConsent, *, consent_unavailable: bool) -> str:
    reason = verdict.reason
    if reason is _R.CONSENT_DENIED:
        return f"denied by {verdict.source or 'unknown source'}"
    if reason is _R.CONSENT_EXPIRED:
        return "expired, and unset consent is denied here"
    if reason is _R.CONSENT_UNKNOWN:
        return "unset, and unset consent is denied here"
    if consent_unavailable:
        return "consent state unavailable"
    return "unset, and the region is unknown (profile unavailable): unset consent is denied"
