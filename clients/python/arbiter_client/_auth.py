"""Credentials for the clients: TLS roots and client certificates, and bearer tokens that refresh themselves.

A token is sent as ``authorization: Bearer <token>`` on every call. Give the
client a fixed string, or a callable returning the current token (called
before every attempt, so keep it cheap): :class:`RefreshingToken` wraps a
fetch function and calls it again only shortly before the token expires.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from os import PathLike
from pathlib import Path

import grpc

__all__ = ["RefreshingToken", "TokenSource", "tls_credentials"]

TokenSource = str | Callable[[], str]
PemSource = bytes | str | PathLike[str]


def _pem(source: PemSource | None) -> bytes | None:
    """PEM bytes as given, or read from a path."""
    if source is None or isinstance(source, bytes):
        return source
    return Path(source).read_bytes()


def tls_credentials(
    root_certificates: PemSource | None = None,
    *,
    certificate_chain: PemSource | None = None,
    private_key: PemSource | None = None,
) -> grpc.ChannelCredentials:
    """TLS channel credentials from PEM bytes or file paths.

    ``root_certificates``: the CA that signed the server's certificate (None:
    the system roots). ``certificate_chain`` and ``private_key``: this
    client's certificate for servers that require mutual TLS.
    """
    if (certificate_chain is None) != (private_key is None):
        raise ValueError("certificate_chain and private_key go together")
    return grpc.ssl_channel_credentials(
        root_certificates=_pem(root_certificates),
        private_key=_pem(private_key),
        certificate_chain=_pem(certificate_chain),
    )


class RefreshingToken:
    """A token source that caches ``fetch()``'s token until ``refresh_margin_s`` before it expires.

    ``fetch`` returns ``(token, expires_at)``, ``expires_at`` in seconds since
    the epoch (a JWT's ``exp``). Thread-safe: concurrent calls during a
    refresh wait for the one fetch. A failed fetch raises to the caller of the
    RPC (and is tried again on the next call).
    """

    def __init__(
        self,
        fetch: Callable[[], tuple[str, float]],
        *,
        refresh_margin_s: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._fetch = fetch
        self._margin = refresh_margin_s
        self._clock = clock
        self._lock = threading.Lock()
        self._token = ""
        self._expires_at = 0.0

    def __call__(self) -> str:
        if self._clock() < self._expires_at - self._margin:
            return self._token
        with self._lock:
            if self._clock() >= self._expires_at - self._margin:
                self._token, self._expires_at = self._fetch()
            return self._token
