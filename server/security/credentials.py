"""Turn what a caller presents into an :class:`Identity`: JWTs (JWKS file or URL), hashed API keys, mTLS peers.

A bearer credential (``authorization: Bearer <token>`` or ``x-api-key``)
wins over the TLS peer: a bad token is refused even on a connection with a
good client certificate. A token with three dot-separated parts is a JWT;
anything else is looked up as an API key. Without a bearer credential, a
verified client certificate listed in the mTLS identities stands in for a
token. Nothing presented -> :class:`Unauthenticated`.

Verified JWTs are cached (by token, until they expire) so the signature is
checked once per token, not once per call. A JWKS URL is fetched with
PyJWT's ``PyJWKClient`` (cached, refreshed on an unknown ``kid``) off the
event loop. JWKS and API key files are re-read by :meth:`Authenticator.reload`
(SIGHUP or a file change, see :mod:`arbiter.server.security.reload`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import jwt
import msgspec
from cachetools import TLRUCache

from arbiter.policies import load_document
from arbiter.server.security.identity import (
    Identity,
    PeerCertificate,
    Role,
    Unauthenticated,
)

__all__ = [
    "DEFAULT_ALGORITHMS",
    "ApiKeyFile",
    "ApiKeys",
    "AuthSettings",
    "Authenticator",
    "CredentialsError",
    "JwtSettings",
    "JwtVerifier",
    "MtlsIdentities",
    "MtlsIdentity",
    "build_authenticator",
    "hash_api_key",
]

_log = logging.getLogger("arbiter.auth")

_TOKEN_CACHE_SIZE: Final = 10_000
DEFAULT_ALGORITHMS: Final = ("RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "EdDSA")


class CredentialsError(Exception):
    """A credentials source (JWKS, API key file) cannot be read; ``diagnostics`` when it is YAML."""

    def __init__(self, message: str, diagnostics: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.diagnostics = tuple(diagnostics)


def hash_api_key(key: str) -> str:
    """The stored form of an API key: hex SHA-256 (keys are random, 128 bits or more)."""
    return hashlib.sha256(key.encode()).hexdigest()


def _roles(names: Sequence[str], where: str) -> frozenset[Role]:
    roles: set[Role] = set()
    for name in names:
        try:
            roles.add(Role(name))
        except ValueError:
            _log.warning("%s: unknown role `%s` ignored", where, name)
    return frozenset(roles)


# --------------------------------------------------------------------------- JWT


@dataclass(frozen=True, slots=True)
class JwtSettings:
    """How JWTs are verified; ``jwks`` is a file path or an ``https://`` URL."""

    jwks: str
    issuer: str
    audience: str
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    leeway_s: float = 30.0
    roles_claim: str = "roles"
    customer_claim: str = "customer_id"
    placements_claim: str = "placements"

    @property
    def is_url(self) -> bool:
        return self.jwks.startswith(("https://", "http://"))


class JwtVerifier:
    """Verifies signature, ``iss``, ``aud``, ``exp`` (and ``nbf``) and maps claims to an :class:`Identity`."""

    def __init__(self, settings: JwtSettings) -> None:
        self.settings = settings
        self._client: jwt.PyJWKClient | None = None
        self._keys: dict[str, jwt.PyJWK] = {}
        self._digest = ""
        self._cache: TLRUCache[str, tuple[Identity, float]] = TLRUCache(
            maxsize=_TOKEN_CACHE_SIZE, ttu=lambda _k, v, _now: v[1], timer=time.time
        )
        if settings.is_url:
            self._client = jwt.PyJWKClient(settings.jwks, cache_keys=True, lifespan=300, timeout=5)
        else:
            self.reload()

    @property
    def files(self) -> tuple[str, ...]:
        return () if self.settings.is_url else (self.settings.jwks,)

    def reload(self) -> bool:
        """Re-read a JWKS file; ``True`` when it changed. Raises :class:`CredentialsError` if unreadable."""
        if self._client is not None:
            return False
        try:
            raw = Path(self.settings.jwks).read_bytes()
            keys = jwt.PyJWKSet.from_dict(json.loads(raw)).keys
        except (OSError, ValueError, jwt.PyJWKSetError) as exc:
            raise CredentialsError(f"cannot read JWKS {self.settings.jwks}: {exc}") from exc
        digest = hashlib.sha256(raw).hexdigest()
        if digest == self._digest:
            return False
        self._keys = {k.key_id or "": k for k in keys}
        self._digest = digest
        self._cache.clear()
        return True

    async def _key(self, token: str) -> jwt.PyJWK:
        try:
            kid = jwt.get_unverified_header(token).get("kid") or ""
        except jwt.DecodeError as exc:
            raise Unauthenticated("invalid token: malformed") from exc
        if self._client is not None:
            try:
                return await asyncio.to_thread(self._client.get_signing_key, kid)
            except jwt.PyJWKClientError as exc:
                raise Unauthenticated("invalid token: no matching signing key") from exc
        key = self._keys.get(kid)
        if key is None and not kid and len(self._keys) == 1:
            key = next(iter(self._keys.values()))
        if key is None:
            raise Unauthenticated("invalid token: no matching signing key")
        return key

    async def verify(self, token: str) -> Identity:
        """The identity of a valid token; :class:`Unauthenticated` naming what failed (never the token)."""
        cached = self._cache.get(token)
        if cached is not None:
            return cached[0]
        key = await self._key(token)
        s = self.settings
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[a for a in s.algorithms if a == key.algorithm_name]
                or list(s.algorithms),
                audience=s.audience,
                issuer=s.issuer,
                leeway=s.leeway_s,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("token expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise Unauthenticated(f"token audience is not `{s.audience}`") from exc
        except jwt.InvalidIssuerError as exc:
            raise Unauthenticated(f"token issuer is not `{s.issuer}`") from exc
        except jwt.ImmatureSignatureError as exc:
            raise Unauthenticated("token not valid yet") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthenticated(f"token lacks the `{exc.claim}` claim") from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated("invalid token: signature or format") from exc
        identity = self._identity(claims)
        self._cache[token] = (identity, float(claims["exp"]))
        return identity

    def _identity(self, claims: Mapping[str, Any]) -> Identity:
        s = self.settings
        raw_roles = claims.get(s.roles_claim, ())
        if isinstance(raw_roles, str):
            raw_roles = raw_roles.split()
        if not isinstance(raw_roles, list | tuple):
            raise Unauthenticated(f"token claim `{s.roles_claim}` must be a list of roles")
        customer = claims.get(s.customer_claim)
        placements = claims.get(s.placements_claim)
        if customer is not None and not isinstance(customer, str):
            raise Unauthenticated(f"token claim `{s.customer_claim}` must be a string")
        if placements is not None and not (
            isinstance(placements, list) and all(isinstance(p, str) for p in placements)
        ):
            raise Unauthenticated(f"token claim `{s.placements_claim}` must be a list of strings")
        return Identity(
            principal=f"jwt:{claims['sub']}",
            method="jwt",
            roles=_roles([str(r) for r in raw_roles], f"token of {claims['sub']}"),
            customer_id=customer,
            placements=None if placements is None else frozenset(placements),
        )


# --------------------------------------------------------------------------- API keys


class ApiKeyEntry(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """One key of the API key file: its id (for logs), the SHA-256 of the key, roles, surfaces."""

    id: str
    sha256: str
    roles: list[str]
    placements: list[str] | None = None


class ApiKeyFile(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """The API key file: ``keys: [{id, sha256, roles, placements?}]``."""

    keys: list[ApiKeyEntry] = []


def _load_key_file(path: str) -> tuple[dict[str, Identity], str]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CredentialsError(f"cannot read API key file {path}: {exc}") from exc
    loaded, diagnostics = load_document(os.path.basename(path), text, ApiKeyFile)
    problems = [str(d) for d in diagnostics]
    by_hash: dict[str, Identity] = {}
    for index, entry in enumerate(loaded.keys if loaded else ()):
        digest = entry.sha256.lower()
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            problems.append(f"{path}: keys[{index}] ({entry.id}): sha256 must be 64 hex digits")
            continue
        by_hash[digest] = Identity(
            principal=f"key:{entry.id}",
            method="api_key",
            roles=_roles(entry.roles, f"API key {entry.id}"),
            placements=None if entry.placements is None else frozenset(entry.placements),
        )
    if problems:
        raise CredentialsError(f"invalid API key file {path}", problems)
    return by_hash, hashlib.sha256(text.encode()).hexdigest()


class ApiKeys:
    """Static API keys from a YAML file, stored hashed; the file is re-read by :meth:`reload`."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._by_hash, self._digest = _load_key_file(path)

    @property
    def files(self) -> tuple[str, ...]:
        return (self.path,)

    def reload(self) -> bool:
        by_hash, digest = _load_key_file(self.path)
        if digest == self._digest:
            return False
        self._by_hash, self._digest = by_hash, digest
        return True

    def verify(self, key: str) -> Identity:
        identity = self._by_hash.get(hash_api_key(key))
        if identity is None:
            raise Unauthenticated("invalid API key")
        return identity


# --------------------------------------------------------------------------- mTLS


@dataclass(frozen=True, slots=True)
class MtlsIdentity:
    """A client certificate identity (SPIFFE id or RFC 4514 subject, e.g. ``CN=ops``) and its roles."""

    identity: str
    roles: frozenset[Role]
    placements: frozenset[str] | None = None


class MtlsIdentities:
    """Maps verified client certificates to identities; unlisted certificates get no role."""

    def __init__(self, entries: Sequence[MtlsIdentity]) -> None:
        self._by_name = {e.identity: e for e in entries}

    def identify(self, peer: PeerCertificate) -> Identity:
        name = peer.spiffe_id or peer.subject
        entry = self._by_name.get(name)
        if entry is None and peer.spiffe_id:
            entry = self._by_name.get(peer.subject)
        if entry is None and peer.common_name:
            entry = self._by_name.get(f"CN={peer.common_name}")
        if entry is None:
            return Identity(f"mtls:{name}", "mtls")
        return Identity(f"mtls:{entry.identity}", "mtls", entry.roles, None, entry.placements)


# --------------------------------------------------------------------------- all of them


def _bearer(headers: Mapping[str, str]) -> str:
    value = headers.get("authorization", "")
    if value:
        scheme, _, credential = value.strip().partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            raise Unauthenticated("unsupported authorization header: use `Bearer <token>`")
        return credential.strip()
    return headers.get("x-api-key", "").strip()


class Authenticator:
    """Every configured credential source; ``enabled`` is false when none is (local use)."""

    def __init__(
        self,
        *,
        jwt_verifier: JwtVerifier | None = None,
        api_keys: ApiKeys | None = None,
        mtls: MtlsIdentities | None = None,
    ) -> None:
        self.jwt = jwt_verifier
        self.api_keys = api_keys
        self.mtls = mtls

    @property
    def enabled(self) -> bool:
        return any(s is not None for s in (self.jwt, self.api_keys, self.mtls))

    @property
    def files(self) -> tuple[str, ...]:
        """The files to watch for :meth:`reload`."""
        return (
            *(self.jwt.files if self.jwt else ()),
            *(self.api_keys.files if self.api_keys else ()),
        )

    def reload(self) -> None:
        """Re-read JWKS and API key files; a file that does not load keeps the last good one."""
        for source in (self.jwt, self.api_keys):
            if source is None:
                continue
            try:
                if source.reload():
                    _log.info("reloaded %s", ", ".join(source.files))
            except CredentialsError as exc:
                _log.error("%s; keeping the last good one %s", exc, "; ".join(exc.diagnostics))

    async def authenticate(
        self, headers: Mapping[str, str], peer: PeerCertificate | None
    ) -> Identity:
        """The caller's identity from lower-case ``headers`` and the verified TLS ``peer``."""
        if not self.enabled:
            return Identity.anonymous()
        credential = _bearer(headers)
        if credential:
            if credential.count(".") == 2:
                if self.jwt is None:
                    raise Unauthenticated("JWTs are not accepted by this server")
                return await self.jwt.verify(credential)
            if self.api_keys is None:
                raise Unauthenticated("API keys are not accepted by this server")
            return self.api_keys.verify(credential)
        if peer is not None and self.mtls is not None:
            return self.mtls.identify(peer)
        raise Unauthenticated("no credentials: send `authorization: Bearer <token>`")


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """Where identities come from; nothing set means authentication is off (local use only)."""

    jwt: JwtSettings | None = None
    api_keys: str = ""
    mtls: tuple[MtlsIdentity, ...] = ()

    @property
    def enabled(self) -> bool:
        return self.jwt is not None or bool(self.api_keys) or bool(self.mtls)


def build_authenticator(settings: AuthSettings) -> Authenticator:
    """The :class:`Authenticator` of ``settings``; :class:`CredentialsError` if a source cannot load."""
    return Authenticator(
        jwt_verifier=JwtVerifier(settings.jwt) if settings.jwt else None,
        api_keys=ApiKeys(settings.api_keys) if settings.api_keys else None,
        mtls=MtlsIdentities(settings.mtls) if settings.mtls else None,
    )
