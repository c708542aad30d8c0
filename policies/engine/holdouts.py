"""Holdouts, the last filter: the global control group and journey holdouts, by deterministic bucketing.

A held candidate is still scored and ranked: arbitration runs a second time
with the held candidates included, and what the customer would have
received is returned in ``Decision.held_out`` (for measurement), never sent.
"""

from __future__ import annotations

from arbiter.policies import bucketing
from arbiter.policies.decision import ReasonCode
from arbiter.policies.plan import CompiledPolicy

from .candidates import Passing
from .facts import Facts

__all__ = ["in_control_group", "mark_held"]


def in_control_group(policy: CompiledPolicy, customer_id: str) -> bool:
    """Whether the customer is in the policy's global control group."""
    holdout = policy.holdout
    return holdout is not None and bucketing.in_holdout(holdout.salt, customer_id, holdout.buckets)


def mark_held(facts: Facts, passing: list[Passing], control: bool) -> bool:
    """Set ``held`` on every candidate the control group or its journey's holdout holds out;
    whether any was."""
    policy = facts.policy
    holdouts = policy.journey_holdouts
    if not (control or holdouts):
        return False
    control_transactional = policy.holdout is not None and policy.holdout.include_transactional
    any_held = False
    for c in passing:
        action = c.action
        if control and (control_transactional or not action.transactional):
            c.held = ReasonCode.CONTROL_GROUP
            any_held = True
        elif action.journey in holdouts:
            salt, buckets = holdouts[action.journey]
            if facts.held(salt, buckets):
                c.held = ReasonCode.HOLDOUT
                any_held = True
    return any_held
