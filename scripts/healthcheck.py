#!/usr/bin/env python3
"""gRPC health probe: exit 0 when the server reports SERVING, 1 otherwise (Docker HEALTHCHECK, scripts).

    python scripts/healthcheck.py [--target HOST:PORT] [--service NAME] [--timeout S] [--wait S]
                                  [--ca PEM [--cert PEM --key PEM] [--server-name NAME]]

The target defaults to ``ARBITER_LISTEN`` (a wildcard host is probed on
127.0.0.1), else ``127.0.0.1:50051``. ``--wait`` keeps probing until
SERVING or the time is up (for scripts that start a server).

TLS: when the server has a certificate (``ARBITER_TLS_CERT`` is set, or
``--ca`` is given) the probe uses TLS, trusting ``--ca``
(``ARBITER_HEALTHCHECK_CA``; default: the system roots) and checking the
certificate against ``--server-name`` (``ARBITER_HEALTHCHECK_SERVER_NAME``)
instead of the probed address. A server that requires client certificates
needs ``--cert``/``--key`` (``ARBITER_HEALTHCHECK_CERT``/``_KEY``). Health
needs no token.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def _default_target() -> str:
    listen = os.environ.get("ARBITER_LISTEN", "127.0.0.1:50051")
    host, _, port = listen.rpartition(":")
    if host in ("", "0.0.0.0", "[::]", "::"):
        host = "127.0.0.1"
    return f"{host}:{port}"


def _channel(target: str, args: argparse.Namespace) -> grpc.Channel:
    if not (args.ca or os.environ.get("ARBITER_TLS_CERT")):
        return grpc.insecure_channel(target)

    def read(path: str | None) -> bytes | None:
        if not path:
            return None
        with open(path, "rb") as handle:
            return handle.read()

    credentials = grpc.ssl_channel_credentials(read(args.ca), read(args.key), read(args.cert))
    options = [("grpc.ssl_target_name_override", args.server_name)] if args.server_name else []
    return grpc.secure_channel(target, credentials, options=options)


def probe(target: str, service: str, timeout: float, args: argparse.Namespace) -> str:
    """The health status name, or the error code name when the call fails."""
    with _channel(target, args) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as exc:
            return str(exc.code().name)
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="gRPC health probe for Arbiter")
    parser.add_argument("--target", default=_default_target())
    parser.add_argument("--service", default="arbiter.v1.DecisionService")
    parser.add_argument("--timeout", type=float, default=2.0, help="per probe, seconds")
    parser.add_argument("--wait", type=float, default=0.0, help="keep probing this long, seconds")
    parser.add_argument("--quiet", action="store_true")
    env = os.environ.get
    parser.add_argument("--ca", default=env("ARBITER_HEALTHCHECK_CA"), help="server CA (PEM)")
    parser.add_argument("--cert", default=env("ARBITER_HEALTHCHECK_CERT"), help="client cert")
    parser.add_argument("--key", default=env("ARBITER_HEALTHCHECK_KEY"), help="client key")
    parser.add_argument(
        "--server-name",
        default=env("ARBITER_HEALTHCHECK_SERVER_NAME"),
        help="name the server certificate is checked against",
    )
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.wait
    while True:
        status = probe(args.target, args.service, args.timeout, args)
        if status == "SERVING" or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    if not args.quiet:
        print(f"{args.target} {args.service or '(server)'}: {status}")
    return 0 if status == "SERVING" else 1


if __name__ == "__main__":
    sys.exit(main())
