"""Compile the contracts: typed profile attributes, context fields and event types, and the CEL environments they make."""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

import msgspec

from arbiter.policies import cel
from arbiter.policies.cel import timefns
from arbiter.policies.contracts import (
    DOMAIN_FUNCTIONS,
    base_variables,
    event_variables,
    parse_type,
    score_variables,
)
from arbiter.policies.converters import converter, freeze, value_matches
from arbiter.policies.loader import ModelPath
from arbiter.policies.model import FieldSpec
from arbiter.policies.plan import CompiledField, EventTypeContract

from .session import Session

__all__ = ["Contracts", "Environments", "compile_contracts", "compile_fields", "environments"]

_FIELD_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Contracts(msgspec.Struct, frozen=True, kw_only=True):
    """The compiled contracts of a set."""

    profile: dict[str, CompiledField]
    context: dict[str, CompiledField]
    events: dict[str, EventTypeContract]


class Environments(msgspec.Struct, frozen=True, kw_only=True):
    """The CEL environments expressions compile in: the base one, one per event type, the score's."""

    base: cel.Env
    events: dict[str, cel.Env]
    score: cel.Env


def compile_contracts(s: Session) -> Contracts:
    """Every contract field, typed; also tells the session the names (for "did you mean")."""
    model = s.model
    profile = compile_fields(s, model.contracts.profile, ("contracts", "profile"))
    context = compile_fields(s, model.contracts.context, ("contracts", "context"))
    events: dict[str, EventTypeContract] = {}
    for name, event in model.contracts.events.items():
        props = compile_fields(s, event.properties, ("contracts", "events", name, "properties"))
        events[name] = EventTypeContract(
            name=name, version=event.version, properties=MappingProxyType(props)
        )
    s.event_names = frozenset(events)
    s.profile_names = frozenset(profile)
    s.context_names = frozenset(context)
    _check_timezone(s, profile, context)
    return Contracts(profile=profile, context=context, events=events)


def environments(contracts: Contracts) -> Environments:
    """The CEL environments typed by the contracts, with the domain functions."""
    base = cel.Env(
        variables=base_variables(
            {n: f.type for n, f in contracts.profile.items()},
            {n: f.type for n, f in contracts.context.items()},
        )
    ).with_functions(*DOMAIN_FUNCTIONS)
    events = {
        name: base.with_variables(**event_variables({n: f.type for n, f in e.properties.items()}))
        for name, e in contracts.events.items()
    }
    return Environments(base=base, events=events, score=base.with_variables(**score_variables()))


def compile_fields(
    s: Session, specs: Mapping[str, FieldSpec | str], path: ModelPath
) -> dict[str, CompiledField]:
    """Typed fields (profile, context, event properties, channel payloads); problems reported."""
    result: dict[str, CompiledField] = {}
    for name, raw in specs.items():
        spec = FieldSpec(type=raw) if isinstance(raw, str) else raw
        where = (*path, name) if isinstance(raw, str) else (*path, name, "type")
        if not _FIELD_NAME.fullmatch(name):
            s.report(
                (*path, name), f"invalid field name `{name}`: use letters, digits and '_'", key=True
            )
            continue
        try:
            t = parse_type(spec.type)
        except ValueError as exc:
            s.report(where, str(exc))
            continue
        compiled = _field(s, name, spec, t, (*path, name))
        if compiled is not None:
            result[name] = compiled
    return result


def _field(
    s: Session, name: str, spec: FieldSpec, t: cel.Type, path: ModelPath
) -> CompiledField | None:
    convert = converter(t)
    has_default = spec.default is not None
    default: Any = None
    if has_default:
        if not value_matches(t, spec.default):
            s.report((*path, "default"), f"default does not match type {spec.type}")
            return None
        try:
            default = convert(
                freeze(spec.default) if isinstance(spec.default, dict) else spec.default
            )
        except (cel.EvalError, ValueError) as exc:
            s.report((*path, "default"), f"invalid default: {exc}")
            return None
    for index, allowed in enumerate(spec.values):
        if not value_matches(t, allowed):
            s.report((*path, "values", index), f"value does not match type {spec.type}")
    return CompiledField(
        name=name,
        type=t,
        type_text=spec.type,
        required=spec.required,
        pii=spec.pii,
        has_default=has_default,
        default=default,
        values=frozenset(v for v in spec.values if not isinstance(v, list | dict)),
        convert=convert,
    )


def _check_timezone(
    s: Session, profile: Mapping[str, CompiledField], context: Mapping[str, CompiledField]
) -> None:
    tz = s.model.policy_set.timezone
    if tz.context is not None:
        s.expect_known(tz.context, context, "context field", ("policy_set", "timezone", "context"))
    if tz.attribute is not None:
        s.expect_known(
            tz.attribute, profile, "profile attribute", ("policy_set", "timezone", "attribute")
        )
    try:
        timefns.local_hour(cel.Timestamp(0), tz.default)
    except cel.EvalError:
        s.report(("policy_set", "timezone", "default"), f"unknown time zone `{tz.default}`")
