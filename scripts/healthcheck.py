#!/usr/bin/env python3
"""gRPC health probe: exit 0 when the server reports SERVING, 1 otherwise (Docker HEALTHCHECK, scripts).

    python scripts/healthcheck.py [--target HOST:PORT] [--service NAME] [--timeout S] [--wait S]

The target defaults to ``ARBITER_LISTEN`` (a wildcard host is probed on
127.0.0.1), else ``127.0.0.1:50051``. ``--wait`` keeps probing until
SERVING or the time is up (for scripts that start a server).
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


def probe(target: str, service: str, timeout: float) -> str:
    """The health status name, or the error code name when the call fails."""
    with grpc.insecure_channel(target) as channel:
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
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.wait
    while True:
        status = probe(args.target, args.service, args.timeout)
        if status == "SERVING" or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    if not args.quiet:
        print(f"{args.target} {args.service or '(server)'}: {status}")
    return 0 if status == "SERVING" else 1


if __name__ == "__main__":
    sys.exit(main())
