"""Authenticate and authorize one call, for any transport: headers + TLS peer + RPC + parsed request in, identity out.

A transport calls :meth:`Guard.admit` before the handler runs and maps
:class:`~arbiter.server.security.identity.Unauthenticated` /
:class:`~arbiter.server.security.identity.PermissionDenied` to its status:
gRPC UNAUTHENTICATED / PERMISSION_DENIED (``grpc_guard``), Connect
``unauthenticated`` / ``permission_denied`` (the errors' ``code``), plain
HTTP 401 / 403 (``http_status``; ``/metrics`` in ``metrics_http``). The
method is the path gRPC and Connect share (``/arbiter.v1.DecisionService/Decide``);
headers are lower-case (``authorization``, ``x-api-key``); the peer is the
verified client certificate (:func:`peer_from_pem` / :func:`peer_from_der`).
A refused call never reaches the handler, so it writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from arbiter.server.security.credentials import Authenticator
from arbiter.server.security.identity import (
    Identity,
    PeerCertificate,
    PermissionDenied,
)
from arbiter.server.security.roles import Rule, rule_for

__all__ = ["ActionPlacements", "Guard", "authorize"]

# Action id -> the placements it is offered on (empty: none), or None if unknown.
ActionPlacements = Callable[[str], frozenset[str] | None]


def _name(method: str) -> str:
    return method.rpartition("/")[2] or method


def authorize(
    rule: Rule,
    identity: Identity,
    method: str,
    request: Any,
    action_placements: ActionPlacements,
) -> None:
    """Raise :class:`PermissionDenied` unless ``identity`` may make this call."""
    if rule.role is not None and rule.role not in identity.roles:
        raise PermissionDenied(f"`{_name(method)}` needs role `{rule.role}`")
    if identity.customer_id is not None:
        if rule.customers is None:
            raise PermissionDenied(
                f"a credential bound to one customer cannot call `{_name(method)}`"
            )
        if any(c != identity.customer_id for c in rule.customers(request)):
            raise PermissionDenied(
                "this credential is bound to one customer and may only ask about that customer"
            )
    allowed = identity.placements
    if allowed is None:
        return
    if rule.placement is not None:
        placement = rule.placement(request)
        if placement not in allowed:
            raise PermissionDenied(f"placement `{placement}` is not allowed for this credential")
    if rule.action is not None:
        action = rule.action(request)
        offered = action_placements(action)
        if not offered or not offered & allowed:
            raise PermissionDenied(
                f"action `{action}` is not offered on a placement allowed for this credential"
            )


def _unknown_action(_action: str) -> frozenset[str] | None:
    return None


class Guard:
    """The front door of every call: :meth:`admit` or refuse."""

    def __init__(
        self, authenticator: Authenticator, action_placements: ActionPlacements | None = None
    ) -> None:
        self.authenticator = authenticator
        self.action_placements = action_placements or _unknown_action

    @property
    def enabled(self) -> bool:
        return self.authenticator.enabled

    async def admit(
        self,
        method: str,
        headers: Mapping[str, str],
        peer: PeerCertificate | None,
        request: Any,
        rule: Rule | None = None,
    ) -> Identity:
        """The caller's identity when it may call ``method`` with ``request``; raises an ``AuthError``."""
        rule = rule if rule is not None else rule_for(method)
        if rule is None:
            raise PermissionDenied(f"`{method}` is not open to any role")
        if rule.public:
            return Identity("public", "none")
        identity = await self.authenticator.authenticate(headers, peer)
        try:
            authorize(rule, identity, method, request, self.action_placements)
        except PermissionDenied as exc:
            exc.identity = identity
            raise
        return identity
