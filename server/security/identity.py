"""Who is calling: roles, the caller's identity, the verified TLS peer, and the two ways a call is refused."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from cryptography import x509
from cryptography.x509.oid import NameOID

__all__ = [
    "ALL_ROLES",
    "AuthError",
    "Identity",
    "PeerCertificate",
    "PermissionDenied",
    "Role",
    "Unauthenticated",
    "peer_from_der",
    "peer_from_pem",
]


class Role(StrEnum):
    """What a caller may do. The RPC of each role is in :mod:`arbiter.server.security.roles`."""

    DECIDE = "decide"  # Decide, Check
    INGEST = "ingest"  # Track, UpdateProfile
    ADMIN = "admin"  # AdminService (policy lifecycle, kill switch, explain)
    PRIVACY = "privacy"  # ExportCustomer, ForgetCustomer
    METRICS = "metrics"  # GET /metrics


ALL_ROLES: Final = frozenset(Role)


class AuthError(Exception):
    """A refused call. ``code`` is the Connect error code (gRPC: the same name upper-cased),
    ``http_status`` the plain-HTTP status; each transport answers with its own."""

    code = ""
    http_status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.identity: Identity | None = None  # who was refused, when known (for the audit log)


class Unauthenticated(AuthError):
    """No credentials, or credentials that do not verify (gRPC UNAUTHENTICATED, HTTP 401)."""

    code = "unauthenticated"
    http_status = 401


class PermissionDenied(AuthError):
    """A known caller without the role, or outside its restrictions (PERMISSION_DENIED, HTTP 403)."""

    code = "permission_denied"
    http_status = 403


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated caller.

    ``principal`` names the caller for logs and audit (never a secret):
    ``jwt:<sub>``, ``key:<id>``, ``mtls:<spiffe id or subject>`` or
    ``anonymous`` (authentication off). ``customer_id`` binds the caller to
    one customer (an in-app SDK's token); ``placements`` limits the surfaces
    it may ask about (``None``: any).
    """

    principal: str
    method: str  # "jwt" | "api_key" | "mtls" | "none"
    roles: frozenset[Role] = field(default_factory=frozenset)
    customer_id: str | None = None
    placements: frozenset[str] | None = None

    @classmethod
    def anonymous(cls) -> Identity:
        """The caller when authentication is off (local use): every role, no restriction."""
        return cls("anonymous", "none", ALL_ROLES)


@dataclass(frozen=True, slots=True)
class PeerCertificate:
    """The verified client certificate of a TLS peer, reduced to what identifies it."""

    subject: str  # RFC 4514, e.g. "CN=checkout,O=Shop"
    common_name: str
    uris: tuple[str, ...] = ()

    @property
    def spiffe_id(self) -> str:
        """The SPIFFE id (URI SAN ``spiffe://...``), or ``""``."""
        return next((u for u in self.uris if u.startswith("spiffe://")), "")


def _peer(cert: x509.Certificate) -> PeerCertificate:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    common_name = str(names[0].value) if names else ""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = tuple(san.get_values_for_type(x509.UniformResourceIdentifier))
    except x509.ExtensionNotFound:
        uris = ()
    return PeerCertificate(cert.subject.rfc4514_string(), common_name, uris)


@functools.lru_cache(maxsize=1024)
def peer_from_pem(pem: bytes) -> PeerCertificate:
    """The :class:`PeerCertificate` of a PEM certificate (cached: peers reconnect with the same one)."""
    return _peer(x509.load_pem_x509_certificate(pem))


@functools.lru_cache(maxsize=1024)
def peer_from_der(der: bytes) -> PeerCertificate:
    """The :class:`PeerCertificate` of a DER certificate (what Python's ``ssl`` hands out)."""
    return _peer(x509.load_der_x509_certificate(der))
