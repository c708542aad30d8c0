#!/usr/bin/env bash
# Load test: start a local Arbiter (embedded store, example policies) on a free
# port, wait until it reports SERVING, run Locust headless against it, print
# Locust's stats (RPS, p50/p99 per call), stop the server.
#
#   scripts/loadtest.sh                       # 20 users for 20 s
#   USERS=50 SPAWN_RATE=50 DURATION=60s scripts/loadtest.sh
#
# Environment: USERS (20), SPAWN_RATE (= USERS), DURATION (20s), VENV (.venv),
# POLICIES (examples/policies), plus the ARBITER_LOAD_* variables of
# loadtests/locustfile.py (customer population, call mix, deadline).
# Exit status: Locust's (non-zero when any request failed).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PY="$VENV/bin/python"
USERS=${USERS:-20}
SPAWN_RATE=${SPAWN_RATE:-$USERS}
DURATION=${DURATION:-20s}
POLICIES=${POLICIES:-examples/policies}

PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
TARGET="127.0.0.1:$PORT"
LOG=$(mktemp -t arbiter-loadtest.XXXXXX.log)

"$VENV/bin/arbiter" serve --policies "$POLICIES" --listen "$TARGET" --log-level warning >"$LOG" 2>&1 &
SERVER=$!
stop_server() {
    if kill -0 "$SERVER" 2>/dev/null; then
        kill -TERM "$SERVER" 2>/dev/null || true
        wait "$SERVER" 2>/dev/null || true
    fi
}
trap stop_server EXIT

if ! "$PY" scripts/healthcheck.py --target "$TARGET" --wait 30 --quiet; then
    echo "server did not become SERVING; its log:" >&2
    cat "$LOG" >&2
    exit 1
fi
echo "Arbiter serving on $TARGET ($POLICIES, embedded store); Locust: $USERS users for $DURATION"

set +e
"$VENV/bin/locust" -f loadtests/locustfile.py --headless \
    -u "$USERS" -r "$SPAWN_RATE" --run-time "$DURATION" \
    --host "$TARGET" --only-summary --loglevel WARNING
STATUS=$?
set -e

if grep -qE "ERROR|Traceback" "$LOG"; then
    echo "server log has errors:" >&2
    cat "$LOG" >&2
    STATUS=1
fi
rm -f "$LOG"
exit $STATUS
