"""The one table of who may call what: every RPC's role, the customers it is about and its surface.

Keys are the full method paths (``/package.Service/Method``), which gRPC and
the Connect/HTTP mapping share. An RPC missing from :data:`RULES` is refused
(a test walks the service descriptors so a new RPC cannot be forgotten).

Restrictions beyond the role:

- a credential bound to a customer (``Identity.customer_id``) may only call
  RPCs whose request names customers, and only about that customer (every
  event of a Track batch included);
- a credential limited to placements may only Decide for those placements
  and Check actions offered on at least one of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from arbiter.server.security.identity import Role

__all__ = ["PUBLIC", "RULES", "Rule", "rule_for"]

Extract = Callable[[Any], Sequence[str]]


@dataclass(frozen=True, slots=True)
class Rule:
    """What a call needs. ``role=None``: any authenticated caller; ``public``: no credentials at all."""

    role: Role | None
    customers: Extract | None = None  # the customer ids the request is about
    placement: Callable[[Any], str] | None = None  # the placement asked about (Decide)
    action: Callable[[Any], str] | None = None  # the action whose placements count (Check)
    audit: bool = False  # logged with the caller's identity (arbiter.audit)
    public: bool = False


PUBLIC: Final = Rule(None, public=True)


def _customer(request: Any) -> Sequence[str]:
    return (request.customer_id,)


def _event_customers(request: Any) -> Sequence[str]:
    return [event.customer_id for event in request.events]


_DECISION = "/arbiter.v1.DecisionService/"
_ADMIN = "/arbiter.v1.AdminService/"
_ADMIN_RULE: Final = Rule(Role.ADMIN, audit=True)
_PRIVACY_RULE: Final = Rule(Role.PRIVACY, customers=_customer, audit=True)

RULES: Final[dict[str, Rule]] = {
    _DECISION + "Decide": Rule(Role.DECIDE, _customer, placement=lambda r: r.placement),
    _DECISION + "Check": Rule(Role.DECIDE, _customer, action=lambda r: r.action_id),
    _DECISION + "Track": Rule(Role.INGEST, _event_customers),
    _DECISION + "UpdateProfile": Rule(Role.INGEST, _customer),
    _ADMIN + "GetPolicyStatus": _ADMIN_RULE,
    _ADMIN + "ValidatePolicy": _ADMIN_RULE,
    _ADMIN + "ActivatePolicy": _ADMIN_RULE,
    _ADMIN + "RollbackPolicy": _ADMIN_RULE,
    _ADMIN + "PauseJourney": _ADMIN_RULE,
    _ADMIN + "ResumeJourney": _ADMIN_RULE,
    _ADMIN + "PauseAction": _ADMIN_RULE,
    _ADMIN + "ResumeAction": _ADMIN_RULE,
    _ADMIN + "PauseChannel": _ADMIN_RULE,
    _ADMIN + "ResumeChannel": _ADMIN_RULE,
    _ADMIN + "ExplainDecision": _ADMIN_RULE,
    _ADMIN + "ExportCustomer": _PRIVACY_RULE,
    _ADMIN + "ForgetCustomer": _PRIVACY_RULE,
    # Load balancers and orchestrators probe health without credentials.
    "/grpc.health.v1.Health/Check": PUBLIC,
    "/grpc.health.v1.Health/Watch": PUBLIC,
    # The schema is not secret, but it is no one's business but the callers'.
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": Rule(None),
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo": Rule(None),
    # Prometheus scrapes (HTTP GET, see arbiter.server.metrics_http).
    "/metrics": Rule(Role.METRICS),
}


def rule_for(method: str) -> Rule | None:
    """The rule of a full method path, or ``None`` (refused: unknown RPCs get no default)."""
    return RULES.get(method)
