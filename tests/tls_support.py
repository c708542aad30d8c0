"""Certificates and signing keys for tests: a private CA, server and client certificates, JWKS.

Everything is generated with ``cryptography`` at test time (nothing is
checked in): :class:`TestCA` issues server certificates for ``127.0.0.1`` /
``localhost`` (optionally already expired) and client certificates with a
subject common name and an optional SPIFFE URI SAN; :class:`TokenIssuer`
signs JWTs with an RSA key and writes its public half as a JWKS file.
Import it like ``tests/redis_support.py`` (``tests/`` on ``sys.path``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["Issued", "TestCA", "TokenIssuer"]

_DAY = dt.timedelta(days=1)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass(frozen=True)
class Issued:
    """A certificate and its key, PEM, and where they were written."""

    cert_pem: bytes
    key_pem: bytes
    cert_path: Path
    key_path: Path
    not_after: dt.datetime


class TestCA:
    """A self-signed CA in ``directory`` that issues leaf certificates into it."""

    __test__ = False  # not a pytest class

    def __init__(self, directory: Path, name: str = "Arbiter Test CA") -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_now() - _DAY)
            .not_valid_after(_now() + 30 * _DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self.key, hashes.SHA256())
        )
        self.cert_pem = self.cert.public_bytes(serialization.Encoding.PEM)
        self.cert_path = directory / f"{uuid.uuid4().hex[:8]}-ca.pem"
        self.cert_path.write_bytes(self.cert_pem)

    def _issue(
        self,
        name: str,
        common_name: str,
        sans: list[x509.GeneralName],
        usage: x509.ObjectIdentifier,
        *,
        expired: bool = False,
        lifetime: dt.timedelta = 10 * _DAY,
    ) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        if expired:
            not_before, not_after = _now() - 10 * _DAY, _now() - _DAY
        else:
            not_before, not_after = _now() - _DAY, _now() + lifetime
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        key_pem = _pem_key(key)
        cert_path = self.directory / f"{name}.pem"
        key_path = self.directory / f"{name}.key"
        cert_path.write_bytes(cert_pem)
        key_path.write_bytes(key_pem)
        return Issued(cert_pem, key_pem, cert_path, key_path, not_after)

    def server(
        self, name: str = "server", *, expired: bool = False, lifetime: dt.timedelta = 10 * _DAY
    ) -> Issued:
        """A server certificate for ``localhost`` and ``127.0.0.1``, valid for ``lifetime`` from now."""
        sans: list[x509.GeneralName] = [
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ]
        return self._issue(
            name,
            "localhost",
            sans,
            ExtendedKeyUsageOID.SERVER_AUTH,
            expired=expired,
            lifetime=lifetime,
        )

    def client(self, name: str, common_name: str, *, spiffe_id: str = "") -> Issued:
        """A client certificate with ``common_name`` and, optionally, a SPIFFE URI SAN."""
        sans: list[x509.GeneralName] = (
            [x509.UniformResourceIdentifier(spiffe_id)] if spiffe_id else []
        )
        return self._issue(name, common_name, sans, ExtendedKeyUsageOID.CLIENT_AUTH)


class TokenIssuer:
    """Signs RS256 JWTs; ``jwks_path`` holds the public key as a JWKS document."""

    def __init__(
        self, directory: Path, *, issuer: str = "https://issuer.test", audience: str = "arbiter"
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.kid = uuid.uuid4().hex[:8]
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update(kid=self.kid, use="sig", alg="RS256")
        self.jwks: dict[str, Any] = {"keys": [jwk]}
        self.jwks_path = directory / f"jwks-{self.kid}.json"
        self.jwks_path.write_text(json.dumps(self.jwks))

    def token(
        self,
        subject: str = "svc",
        *,
        roles: list[str] | None = None,
        lifetime_s: float = 300.0,
        audience: str | None = None,
        issuer: str | None = None,
        **claims: Any,
    ) -> str:
        """A signed token; ``lifetime_s < 0`` gives an expired one."""
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": issuer or self.issuer,
            "aud": audience or self.audience,
            "sub": subject,
            "iat": now - 60 if lifetime_s >= 0 else now - 3600,
            "exp": now + int(lifetime_s),
            "roles": roles or [],
            **claims,
        }
        return jwt.encode(payload, self.key, algorithm="RS256", headers={"kid": self.kid})
