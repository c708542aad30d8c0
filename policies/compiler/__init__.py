"""Compile a loaded policy set into the immutable, evaluation-shaped plan (:class:`~arbiter.policies.plan.CompiledPolicy`).

Compilation validates every cross-reference, parses every duration and
compiles every CEL expression against the contract-derived environment (so
an expression error points into the YAML file), then precomputes what the
decision hot path needs (:mod:`.assemble`). All problems are reported at
once as :class:`~arbiter.policies.diagnostics.Diagnostic` values sorted by
file, line, column.

One module per section, in pipeline order: :mod:`.contracts` (fields,
event types, CEL environments), :mod:`.channels` (consent, channels, quiet
hours), :mod:`.actions` (suppressions, actions), :mod:`.caps` (caps and
their binding to actions), :mod:`.journeys`, :mod:`.arbitration` (global
holdout, score, constraints), :mod:`.guards` (volume guards), :mod:`.needs` (what the set reads from a
snapshot), :mod:`.assemble`; they share one :class:`~.session.Session`.

Errors make the set unusable; warnings (unreachable stages, caps that can
never bind, journeys nobody can enter, ...) are kept on the compiled policy.
Decisions documented in ``docs/policy-language.md``:

- A non-transactional channel that requires no consent purpose is an
  **error**, unless it says so explicitly with ``purposes: []`` (a warning).
- Evaluation-time errors are the engine's to treat fail-safe; compile time
  only rejects what can be known statically.

Nothing here reads a clock or does I/O (except :func:`load_policy`, which
reads the directory through :mod:`arbiter.policies.loader`).
"""

from __future__ import annotations

import os

from arbiter.policies.diagnostics import Diagnostic, PolicyError
from arbiter.policies.loader import LoadedPolicySet, load_directory
from arbiter.policies.model import PolicySet
from arbiter.policies.plan import CompiledPolicy

from .actions import compile_actions, compile_suppressions
from .arbitration import compile_arbitration, compile_holdout
from .assemble import COMPILER_VERSION, Sections, assemble
from .caps import compile_caps, warn_unreachable_caps
from .channels import check_channel_consent, compile_channels, compile_consent
from .contracts import compile_contracts, environments
from .guards import compile_volume_guards
from .journeys import compile_journeys
from .session import Session

__all__ = ["COMPILER_VERSION", "check_policy", "compile_policy", "load_policy"]


def _compile(loaded: LoadedPolicySet, model: PolicySet) -> tuple[CompiledPolicy | None, Session]:
    """Every section in order; the plan when nothing was an error."""
    s = Session(loaded, model)
    contracts = compile_contracts(s)
    envs = environments(contracts)
    purposes = s.check_unique(
        [p.id for p in model.consent.purposes], ("consent", "purposes"), "purpose"
    )
    consent = compile_consent(s, contracts.profile, purposes)
    channels = compile_channels(s, purposes)
    journey_ids = s.check_unique([j.id for j in model.journeys], ("journeys",), "journey")
    action_ids = s.check_unique([a.id for a in model.actions], ("actions",), "action")
    suppressions = compile_suppressions(s, envs.base, channels, journey_ids, action_ids)
    drafts = compile_actions(s, envs.base, channels, suppressions)
    caps = compile_caps(s, channels, journey_ids, drafts)
    warn_unreachable_caps(s, caps, drafts)
    journeys = compile_journeys(s, envs, drafts)
    holdout = compile_holdout(s)
    arbitration = compile_arbitration(s, envs.score, channels)
    check_channel_consent(s, {d.action.channel for d in drafts})
    guards = compile_volume_guards(s, channels, journey_ids, drafts)
    if s.failed or arbitration is None:
        return None, s
    sections = Sections(
        contracts=contracts,
        channels=channels,
        consent=consent,
        caps=caps,
        suppressions=suppressions,
        journeys=journeys,
        drafts=drafts,
        holdout=holdout,
        arbitration=arbitration,
        volume_guards=guards,
    )
    return assemble(s, sections), s


def check_policy(loaded: LoadedPolicySet) -> tuple[CompiledPolicy | None, tuple[Diagnostic, ...]]:
    """Compile a loaded set; returns the policy (``None`` on any error) and every diagnostic, sorted."""
    if loaded.model is None:
        return None, loaded.diagnostics
    policy, session = _compile(loaded, loaded.model)
    diagnostics = tuple(sorted([*loaded.diagnostics, *session.diags]))
    if any(d.severity == "error" for d in diagnostics):
        return None, diagnostics
    return policy, diagnostics


def compile_policy(loaded: LoadedPolicySet) -> CompiledPolicy:
    """Compile a loaded set or raise :class:`~arbiter.policies.diagnostics.PolicyError` listing every error."""
    policy, diagnostics = check_policy(loaded)
    if policy is None:
        raise PolicyError(diagnostics)
    return policy


def load_policy(root: str | os.PathLike[str]) -> CompiledPolicy:
    """Read, load and compile a policy directory (raises ``PolicyError`` / ``OSError``)."""
    return compile_policy(load_directory(root))
