"""Server certificates for gRPC and HTTP, swapped on reload without a restart and without dropping calls.

gRPC: :meth:`ServerCertificates.grpc_credentials` uses gRPC's dynamic
certificate configuration: gRPC asks the fetcher before every new TLS
handshake, and the fetcher hands over the new key pair once after a reload.
Established connections (and the calls in flight on them) keep the session
they negotiated. HTTP surfaces take :meth:`ServerCertificates.ssl_context`
for each new connection. With a client CA, client certificates are required
and verified (mutual TLS) on every surface.

A replacement that does not load (unreadable, key not matching, expired)
is refused with an error in the log; the current certificate keeps serving.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

__all__ = ["ServerCertificates", "TlsError", "TlsFiles"]

_log = logging.getLogger("arbiter.tls")


class TlsError(Exception):
    """Certificate material that cannot be used (the message names the file and why)."""


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """PEM files: certificate chain, private key, and the CA that signs client certificates (mTLS)."""

    cert: str
    key: str
    client_ca: str = ""

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(p for p in (self.cert, self.key, self.client_ca) if p)


@dataclass(frozen=True, slots=True)
class _Material:
    cert_pem: bytes
    key_pem: bytes
    ca_pem: bytes | None
    not_after: dt.datetime
    serial: int
    digest: str


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise TlsError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc


def _public(key: Any) -> bytes:
    return bytes(
        key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def _load(files: TlsFiles) -> _Material:
    cert_pem = _read(files.cert, "certificate")
    key_pem = _read(files.key, "private key")
    ca_pem = _read(files.client_ca, "client CA") if files.client_ca else None
    try:
        chain = x509.load_pem_x509_certificates(cert_pem)
    except ValueError as exc:
        raise TlsError(f"{files.cert}: not a PEM certificate") from exc
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise TlsError(f"{files.key}: not an unencrypted PEM private key") from exc
    if _public(key.public_key()) != _public(chain[0].public_key()):
        raise TlsError(f"{files.key} does not match the certificate {files.cert}")
    if ca_pem is not None:
        try:
            x509.load_pem_x509_certificates(ca_pem)
        except ValueError as exc:
            raise TlsError(f"{files.client_ca}: not a PEM certificate") from exc
    digest = hashlib.sha256(cert_pem + b"\0" + key_pem + b"\0" + (ca_pem or b"")).hexdigest()
    leaf = chain[0]
    return _Material(
        cert_pem, key_pem, ca_pem, leaf.not_valid_after_utc, leaf.serial_number, digest
    )


class ServerCertificates:
    """The current certificate material of the server; :meth:`reload` swaps it atomically."""

    def __init__(self, files: TlsFiles) -> None:
        self.files = files
        material = _load(files)
        self._check_not_expired(material)
        self._lock = threading.Lock()
        self._material = material
        self._fetched = material  # what gRPC was last handed
        self._context = self._ssl_context(material)
        _log.info(
            "TLS certificate %s (serial %x) valid until %s%s",
            files.cert,
            material.serial,
            material.not_after.isoformat(),
            "; client certificates required" if self.mutual else "",
        )

    @property
    def mutual(self) -> bool:
        """Whether clients must present a certificate signed by the client CA."""
        return bool(self.files.client_ca)

    @property
    def not_after(self) -> dt.datetime:
        return self._material.not_after

    @staticmethod
    def _check_not_expired(material: _Material) -> None:
        if material.not_after <= dt.datetime.now(dt.UTC):
            raise TlsError(f"the certificate expired at {material.not_after.isoformat()}")

    def _grpc_config(self, material: _Material) -> Any:
        return grpc.ssl_server_certificate_configuration(
            [(material.key_pem, material.cert_pem)], root_certificates=material.ca_pem
        )

    def grpc_credentials(self) -> grpc.ServerCredentials:
        """Credentials for ``add_secure_port`` that pick up every reload for new connections."""
        return grpc.dynamic_ssl_server_credentials(
            self._grpc_config(self._material),
            self._fetch,
            require_client_authentication=self.mutual,
        )

    def _fetch(self) -> Any:
        """Called by gRPC before each handshake: the new configuration once after a reload, else None."""
        with self._lock:
            if self._fetched is self._material:
                return None
            self._fetched = material = self._material
        return self._grpc_config(material)

    def _ssl_context(self, material: _Material) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.files.cert, self.files.key)
        if material.ca_pem is not None:
            context.load_verify_locations(cadata=material.ca_pem.decode())
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    def ssl_context(self) -> ssl.SSLContext:
        """The context for a new HTTP connection (replaced on reload)."""
        return self._context

    def reload(self) -> bool:
        """Re-read the files; ``True`` when new material now serves. Never raises: errors are logged."""
        try:
            material = _load(self.files)
            if material.digest == self._material.digest:
                return False
            self._check_not_expired(material)
            context = self._ssl_context(material)
        except (TlsError, ssl.SSLError, OSError) as exc:
            _log.error("TLS reload refused, the current certificate keeps serving: %s", exc)
            return False
        with self._lock:
            self._material = material
            self._context = context
        _log.info(
            "TLS certificate reloaded: serial %x valid until %s",
            material.serial,
            material.not_after.isoformat(),
        )
        return True
