"""Arbiter's policy language -- model, CEL, compiler, engine -- behind one front door. Pure: no I/O but reading policy files, no clock.

The transport (``arbiter.server``) imports from here and nowhere deeper (a
layering test enforces it). The flow of one call::

    policy = load_policy("examples/policies")          # compile once (CompiledPolicy)
    decision, commit = decide(policy, request, snapshot, now_ms)
    # ... the store commits ``commit`` atomically and returns a CommitResult ...
    final = settle(decision, StoreReport(committed=result), commit)

``check`` / ``precheck`` answer a Check, ``apply_event`` a tracked event;
:mod:`arbiter.policies.cel` is the CEL toolchain's own front door, and
:mod:`arbiter.policies.scenarios` the scenario-file format's, and
:mod:`arbiter.policies.decision_log` the decision log record's (build,
mask, replay) with :mod:`arbiter.policies.impact` (recorded traffic
re-decided under a new set). What each
name means is documented where it is defined; ``docs/architecture.md`` maps
the whole house.
"""

from __future__ import annotations

from . import cel, decision_log, impact, scenarios
from .compiler import COMPILER_VERSION, check_policy, compile_policy, load_policy
from .decision import (
    CandidateTrace,
    CheckQuery,
    ChosenAction,
    Decision,
    Degradation,
    Outcome,
    PurposeConsent,
    ReasonCode,
    Request,
)
from .diagnostics import Diagnostic, Location, PolicyError
from .effects import (
    CommitResult,
    ConsentUpdate,
    DecisionCommit,
    EventEffects,
    FeedbackKind,
    FieldResult,
    JourneyChange,
    ProfileUpdate,
    StateConflict,
)
from .engine import (
    Event,
    StateUnavailableError,
    StoreReport,
    advance_timers,
    apply_event,
    check,
    decide,
    decision_id,
    decode_decision,
    encode_decision,
    next_wake_ms,
    precheck,
    settle,
    with_wakeups,
)
from .loader import YamlLoader, load_directory, load_document, load_sources
from .model import json_schema
from .plan import CompiledField, CompiledPolicy, CompiledVolumeGuard
from .snapshot import (
    PARTS,
    ConsentRecord,
    CustomerSnapshot,
    EventCounter,
    JourneyState,
    ProfileValue,
    SnapshotNeeds,
)
from .times import parse_duration_ms, parse_instant_ms

__all__ = [
    "COMPILER_VERSION",
    "PARTS",
    "CandidateTrace",
    "CheckQuery",
    "ChosenAction",
    "CommitResult",
    "CompiledField",
    "CompiledPolicy",
    "CompiledVolumeGuard",
    "ConsentRecord",
    "ConsentUpdate",
    "CustomerSnapshot",
    "Decision",
    "DecisionCommit",
    "Degradation",
    "Diagnostic",
    "Event",
    "EventCounter",
    "EventEffects",
    "FeedbackKind",
    "FieldResult",
    "JourneyChange",
    "JourneyState",
    "Location",
    "Outcome",
    "PolicyError",
    "ProfileUpdate",
    "ProfileValue",
    "PurposeConsent",
    "ReasonCode",
    "Request",
    "SnapshotNeeds",
    "StateConflict",
    "StateUnavailableError",
    "StoreReport",
    "YamlLoader",
    "advance_timers",
    "apply_event",
    "cel",
    "check",
    "check_policy",
    "compile_policy",
    "decide",
    "decision_id",
    "decision_log",
    "decode_decision",
    "encode_decision",
    "impact",
    "json_schema",
    "load_directory",
    "load_document",
    "load_policy",
    "load_sources",
    "next_wake_ms",
    "parse_duration_ms",
    "parse_instant_ms",
    "precheck",
    "scenarios",
    "settle",
    "with_wakeups",
]
