# syntax=docker/dockerfile:1
# Arbiter decision server: multi-stage, slim, non-root, with a gRPC health check.
#
# The container listens on 0.0.0.0, so `arbiter serve` refuses to start without
# TLS and authentication (docs/security.md). A local trial on your own machine:
#
#   docker build -t arbiter .
#   docker run --rm -p 127.0.0.1:50051:50051 -e ARBITER_INSECURE=true arbiter
#
# Production: mount the certificates, keys and credentials read-only and point
# the ARBITER_* variables (or a config file, examples/arbiter.yaml) at them.
# Replacing the mounted files (or `docker kill -s HUP`) reloads them without a restart.
#
#   docker run --rm -p 50051:50051 \
#       -v "$PWD/my-policies:/policies:ro"  -e ARBITER_POLICIES=/policies \
#       -v "$PWD/tls:/etc/arbiter/tls:ro"   -e ARBITER_TLS_CERT=/etc/arbiter/tls/tls.crt \
#                                           -e ARBITER_TLS_KEY=/etc/arbiter/tls/tls.key \
#                                           -e ARBITER_TLS_CLIENT_CA=/etc/arbiter/tls/client-ca.crt \
#       -v "$PWD/auth:/etc/arbiter/auth:ro" -e ARBITER_API_KEYS=/etc/arbiter/auth/api-keys.yaml \
#                                           -e ARBITER_JWKS=https://auth.example.com/.well-known/jwks.json \
#                                           -e ARBITER_JWT_ISSUER=https://auth.example.com/ \
#                                           -e ARBITER_JWT_AUDIENCE=arbiter \
#       -e ARBITER_HEALTHCHECK_CA=/etc/arbiter/tls/ca.crt -e ARBITER_HEALTHCHECK_SERVER_NAME=arbiter.internal \
#       -e ARBITER_HEALTHCHECK_CERT=/etc/arbiter/tls/probe.crt -e ARBITER_HEALTHCHECK_KEY=/etc/arbiter/tls/probe.key \
#       -e ARBITER_REDIS_URL=redis://redis:6379/0 arbiter
#
# (The HEALTHCHECK_CERT/KEY pair is only needed with a client CA: mutual TLS.)
# Configuration is by ARBITER_* environment variables (README "Run the server").

ARG PYTHON_VERSION=3.11

# ---------------------------------------------------------------- build: the project in a venv
FROM python:${PYTHON_VERSION}-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
# constraints.txt pins every dependency to the versions the test suite passed with.
COPY constraints.txt ./
# The generated stubs and client first: they change less often than the server.
COPY clients/python/ clients/python/
RUN /opt/venv/bin/pip install -c constraints.txt ./clients/python
COPY pyproject.toml README.md ./
COPY policies/ policies/
COPY state/ state/
COPY server/ server/
# Installs the `arbiter` import package (arbiter.policies, .state, .server, with
# the Redis Lua scripts as package data) and the `arbiter` console script.
RUN /opt/venv/bin/pip install -c constraints.txt '.[server]'

# ---------------------------------------------------------------- runtime
FROM python:${PYTHON_VERSION}-slim AS runtime
RUN groupadd --system --gid 10001 arbiter \
 && useradd --system --uid 10001 --gid arbiter --no-create-home --shell /usr/sbin/nologin arbiter
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --chown=root:root examples/policies/ /etc/arbiter/policies/
COPY --chown=root:root scripts/healthcheck.py /app/scripts/healthcheck.py
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ARBITER_POLICIES=/etc/arbiter/policies \
    ARBITER_LISTEN=0.0.0.0:50051 \
    ARBITER_LOG_LEVEL=info
USER arbiter:arbiter
EXPOSE 50051
# NOT_SERVING until the policy set is compiled and the store answers.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD ["python", "/app/scripts/healthcheck.py", "--quiet"]
# SIGTERM: stop accepting calls, finish in-flight ones (ARBITER_GRACE_PERIOD, 10s).
STOPSIGNAL SIGTERM
ENTRYPOINT ["arbiter", "serve"]
