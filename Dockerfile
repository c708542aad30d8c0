# syntax=docker/dockerfile:1
# Arbiter decision server: multi-stage, slim, non-root, with a gRPC health check.
#
#   docker build -t arbiter .
#   docker run --rm -p 50051:50051 arbiter                      # example policies, embedded store
#   docker run --rm -p 50051:50051 -v "$PWD/my-policies:/policies:ro" \
#       -e ARBITER_POLICIES=/policies -e ARBITER_REDIS_URL=redis://redis:6379/0 arbiter
#
# Configuration is by ARBITER_* environment variables (README "Run the server").

ARG PYTHON_VERSION=3.11

# ---------------------------------------------------------------- build: dependencies in a venv
FROM python:${PYTHON_VERSION}-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
# The generated stubs and client first: they change less often than the server.
COPY clients/python/ clients/python/
RUN /opt/venv/bin/pip install ./clients/python
COPY pyproject.toml README.md ./
COPY policies/ policies/
COPY state/ state/
COPY server/ server/
# Install the project with its server extra (pulls every runtime dependency),
# then drop the installed copy: the runtime stage runs the source tree, so
# non-Python files (e.g. Redis Lua scripts under state/) are always present.
RUN /opt/venv/bin/pip install '.[server]' \
 && /opt/venv/bin/pip uninstall --yes arbiter

# ---------------------------------------------------------------- runtime
FROM python:${PYTHON_VERSION}-slim AS runtime
RUN groupadd --system --gid 10001 arbiter \
 && useradd --system --uid 10001 --gid arbiter --no-create-home --shell /usr/sbin/nologin arbiter
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --chown=root:root policies/ policies/
COPY --chown=root:root state/ state/
COPY --chown=root:root server/ server/
COPY --chown=root:root examples/policies/ /etc/arbiter/policies/
COPY --chown=root:root scripts/healthcheck.py /app/scripts/healthcheck.py
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
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
ENTRYPOINT ["python", "-m", "server.cli", "serve"]
