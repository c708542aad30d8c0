"""The CEL activation of one decision or event: every variable policy expressions may read, bound once."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from . import cel
from .contracts import CustomerView, EventsView, FieldsView, JourneysView, SegmentsView
from .converters import NS_PER_MS
from .plan import CompiledPolicy
from .snapshot import CustomerSnapshot

__all__ = ["build_activation", "event_activation"]


def build_activation(
    policy: CompiledPolicy,
    snapshot: CustomerSnapshot,
    request_context: Mapping[str, Any],
    now_ms: int,
    *,
    placement: str = "",
    channels: Iterable[str] = (),
) -> dict[str, object]:
    """The CEL activation of one decision: every variable of the base environment.

    Profile attributes are bound when the snapshot has a value (else their
    declared default; else unbound, so reading them is an evaluation error).
    Context fields likewise from ``request_context`` (undeclared keys are
    ignored). Cheap: one dict, O(declared attributes read by the set).
    The arbitration score's per-candidate variables are bound by the engine;
    add the event variables with :func:`event_activation`.
    """
    now = cel.Timestamp(now_ms * NS_PER_MS)
    activation: dict[str, object] = {
        "now": now,
        "request.customer_id": snapshot.customer_id,
        "request.placement": placement,
        "request.channels": list(channels),
    }
    profile = snapshot.profile
    for name, key, convert, has_default, default in policy.profile_bindings:
        entry = profile.get(name)
        if entry is not None and entry.value is not None:
            activation[key] = entry.value if convert is None else convert(entry.value)
        elif has_default:
            activation[key] = default
    for name, key, convert, has_default, default in policy.context_bindings:
        value = request_context.get(name)
        if value is not None:
            activation[key] = value if convert is None else convert(value)
        elif has_default:
            activation[key] = default
    activation["profile"] = FieldsView(profile)
    activation["context"] = FieldsView(request_context)
    activation["request"] = None
    activation["events"] = EventsView(snapshot.events, now_ms)
    activation["segments"] = SegmentsView(snapshot.segments)
    activation["journeys"] = JourneysView(snapshot.journeys)
    activation["customer"] = CustomerView(
        now, _timezone(policy, snapshot, request_context), policy.default_timezone
    )
    return activation


def _timezone(
    policy: CompiledPolicy, snapshot: CustomerSnapshot, request_context: Mapping[str, Any]
) -> str:
    if policy.timezone_context is not None:
        tz = request_context.get(policy.timezone_context)
        if isinstance(tz, str) and tz:
            return tz
    if policy.timezone_attribute is not None:
        entry = snapshot.profile.get(policy.timezone_attribute)
        if entry is not None and isinstance(entry.value, str) and entry.value:
            return entry.value
    return policy.default_timezone


def event_activation(
    base: Mapping[str, object],
    policy: CompiledPolicy,
    *,
    event_type: str,
    event_id: str,
    time_ms: int,
    properties: Mapping[str, Any],
    version: int = 1,
) -> dict[str, object]:
    """``base`` plus the ``event.*`` variables (properties converted by the event contract)."""
    activation = dict(base)
    activation["event"] = None
    activation["event.type"] = event_type
    activation["event.id"] = event_id
    activation["event.time"] = cel.Timestamp(time_ms * NS_PER_MS)
    activation["event.version"] = version
    activation["event.properties"] = FieldsView(properties)
    contract = policy.events.get(event_type)
    if contract is not None:
        for name, spec in contract.properties.items():
            value = properties.get(name)
            if value is not None:
                activation[f"event.properties.{name}"] = spec.convert(value)
            elif spec.has_default:
                activation[f"event.properties.{name}"] = spec.default
    return activation
