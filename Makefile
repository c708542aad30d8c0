# One front door: what CI does, you can do. Everything runs in .venv.
VENV ?= .venv
PY := $(VENV)/bin/python
SHARED ?= ../shared

.PHONY: venv install test check lint format typecheck bench bench-policy bench-store conformance proto proto-check proto-lint clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml clients/python/pyproject.toml constraints.txt
	test -d $(VENV) || python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -c constraints.txt -e clients/python -e '.[server,dev,tracing]'
	touch $@

# Refresh constraints.txt from what is installed now (after a deliberate upgrade).
.PHONY: lock
lock: venv
	{ sed -n '1,2p' constraints.txt; $(VENV)/bin/pip freeze --exclude-editable; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

install: venv

test: venv node-deps
	$(VENV)/bin/pytest -q

# The hostile suites at full length (tests/reliability): 10,000 mutated requests per RPC and
# the hand-written bad inputs against a real server on Redis, Redis faults, SIGTERM under
# load, two servers 10 minutes apart (20 rounds); prints the tables at the end.
# `make test` runs the short versions.
.PHONY: reliability
reliability: venv
	ARBITER_RELIABILITY_FULL=1 $(VENV)/bin/pytest -q tests/reliability

# The long CEL differential run: 6,000 typed mixed-numeric comparisons (1,000 in `make test`);
# it takes over the suite's 300 s per-test timeout on a loaded 2-core box.
.PHONY: fuzz-cel
fuzz-cel: venv
	ARBITER_CEL_MIXED_EXAMPLES=6000 $(VENV)/bin/pytest -q -o timeout=1800 tests/differential -k typed_mixed

# Node packages of the TypeScript client and the web demo, from their committed
# package-lock.json files (npm ci), re-installed when a lock file changes.
# Without npm this only warns: the edge-client tests then say what is missing.
NODE_PACKAGES := clients/typescript examples/web
# The repository's own Node tools (package.json at the root: buf, which the
# README calls as `npx @bufbuild/buf@VERSION`) install the same way.
.PHONY: node-deps
node-deps: $(addsuffix /node_modules/.installed,$(NODE_PACKAGES)) node_modules/.installed

node_modules/.installed: package-lock.json package.json
	@if command -v npm >/dev/null; then \
		npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed; \
	else echo "make: npm not found: skipping npm ci (install Node.js 20+)" >&2; fi

%/node_modules/.installed: %/package-lock.json %/package.json
	@if command -v npm >/dev/null; then \
		cd $* && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed; \
	else echo "make: npm not found: skipping npm ci in $* (install Node.js 20+)" >&2; fi

# examples/web links the client package: install the client's packages first.
examples/web/node_modules/.installed: clients/typescript/node_modules/.installed

conformance: venv
	$(VENV)/bin/arbiter cel conformance $(SHARED)/conformance/cel --min-rate 0.95 --file-min-rate 0.90

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# mypy cannot follow setuptools' package-dir mapping: link the folders under
# build/typecheck/arbiter/ so it sees them as arbiter.policies, .state, .server.
typecheck: venv
	@mkdir -p build/typecheck/arbiter
	@for p in policies state server; do ln -sfn ../../../$$p build/typecheck/arbiter/$$p; done
	@$(VENV)/bin/mypy > build/typecheck/mypy.out; rc=$$?; sed 's|^build/typecheck/arbiter/||' build/typecheck/mypy.out; exit $$rc
	cd clients/python && ../../$(VENV)/bin/mypy

proto: venv node-deps
	bash scripts/proto.sh

# The JSON Schemas of policy and scenario files (generated from the msgspec models;
# tests/unit/policies/test_schemas.py fails when they are stale).
.PHONY: schemas
schemas: venv
	$(VENV)/bin/arbiter policy schema --write schemas

# Kotlin message types (Java lite + Kotlin DSL) into build/gen/kotlin; needs protoc (Debian: protobuf-compiler).
.PHONY: proto-kotlin
proto-kotlin: node-deps
	clients/typescript/node_modules/.bin/buf generate --template buf.gen.mobile.yaml

proto-check: venv node-deps
	bash scripts/proto.sh --check

# The last released contract that the wire contract must stay compatible with (buf breaking,
# FILE rules): a commit of main before AdminService grew the action/channel kill switches.
PROTO_BASELINE ?= 5a8af9706400f2d7618fd94aeebf1ae3480b2164
proto-lint: venv node-deps
	bash scripts/proto.sh --check --lint --breaking $(PROTO_BASELINE)

check: lint typecheck proto-lint test

bench: venv
	$(PY) -m benchmarks.cel_bench

# Wall-clock time of the CEL safety corpus against the 10 ms budget (the test caps steps).
.PHONY: bench-cel-safety
bench-cel-safety: venv
	$(PY) -m benchmarks.cel_safety_bench

# Decide end to end on Redis (100,000 seeded customers) vs the embedded store, same run.
# Flags: `make bench-decide ARGS="--seconds 3 --levels 1,4,16"`.
.PHONY: bench-decide
bench-decide: venv
	$(PY) -m benchmarks.decide_bench $(ARGS)

bench-policy: venv
	$(VENV)/bin/arbiter policy bench examples/policies
	$(VENV)/bin/arbiter policy bench --synthetic-actions 100 --synthetic-journeys 10

bench-store: venv
	$(PY) -m benchmarks.store_bench

# Outbound journeys end to end (docs/outbound.md): 10,000 customers, two `arbiter worker`
# processes (one SIGKILLed), a flaky webhook provider with an outage, an SMTP server.
# Flags: `make outbound-soak ARGS="--customers 2000 --outage 5"`.
.PHONY: outbound-soak
outbound-soak: venv
	$(PY) -m benchmarks.outbound_soak $(ARGS)

# The performance report (docs/performance.md): h2load against fresh servers, Decide vs Health,
# embedded and Redis, concurrency, offered rate, overload, workers; tables, CSV and PNG plots
# in benchmarks/results/. Installs h2load (Debian nghttp2-client) and matplotlib first.
# Flags: `make bench-grpc ARGS="--seconds 10 --rounds 3"` (see benchmarks/grpc_bench.py).
.PHONY: bench-grpc
bench-grpc: venv
	@command -v h2load >/dev/null || apt-get install -y nghttp2-client || \
		{ echo "make bench-grpc: install h2load (Debian: nghttp2-client)" >&2; exit 2; }
	@$(PY) -c "import matplotlib" 2>/dev/null || $(VENV)/bin/pip install -q -c constraints.txt -e '.[bench]'
	$(PY) -m benchmarks.grpc_bench $(ARGS)

# Redis clients for the request path (redis-py, pipelined, coredis, valkey-glide): client CPU per
# script call, same commands, same run (docs/decisions.md). Installs the optional clients first.
.PHONY: bench-redis-clients
bench-redis-clients: venv
	@$(PY) -c "import coredis, glide" 2>/dev/null || $(VENV)/bin/pip install -q -c constraints.txt -e '.[bench]'
	$(PY) -m benchmarks.redis_client_bench $(ARGS)

# Server CPU of the worst requests the request limits allow (server/parse.py), same-run baseline.
.PHONY: bench-limits
bench-limits: venv
	$(PY) -m benchmarks.limits_bench $(ARGS)

# Decide and Track CPU per call against events of history (10 .. 10,000), embedded and Redis.
.PHONY: bench-history
bench-history: venv
	$(PY) -m benchmarks.history_bench $(ARGS)

# What TLS and authentication cost per Decide, against a no-auth baseline in the same run.
.PHONY: bench-auth
bench-auth: venv
	$(PY) -m benchmarks.auth_bench $(ARGS)
# Decide over Connect JSON (HTTP/1.1) vs gRPC against one server, same run: RPS and p50/p99.
# Flags: `make bench-http ARGS="--seconds 10 --concurrency 16"`.
.PHONY: bench-http
bench-http: venv
	$(PY) -m benchmarks.http_bench $(ARGS)

# The server on the embedded store with the example policies (Ctrl-C stops it gracefully).
# Flags and ARBITER_* variables: `arbiter serve --help`; e.g. `make serve ARGS="--listen 0.0.0.0:50051"`.
.PHONY: serve loadtest
serve: venv
	$(VENV)/bin/arbiter serve --policies examples/policies $(ARGS)

# Locust, headless, one scenario against a fresh server with a seeded Zipf population; writes
# the HTML report and CSV stats to benchmarks/results/loadtest/ (loadtests/run.py).
# SCENARIO: product_surfaces | journey_ingestion | mixed; STORE: memory | redis;
# PROCESSES: Locust generator processes (-1 = one per core); more flags in ARGS.
SCENARIO ?= mixed
USERS ?= 20
DURATION ?= 20s
STORE ?= memory
PROCESSES ?= 1
loadtest: venv
	$(PY) -m loadtests.run --scenario $(SCENARIO) --users $(USERS) --duration $(DURATION) \
		--store $(STORE) --processes $(PROCESSES) $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache node_modules $(addsuffix /node_modules,$(NODE_PACKAGES))

# What the decision log costs a Decide (logging off vs on, same run) and that it loses no record.
# Flags: `make bench-decision-log ARGS="--seconds 10 --rounds 5 --concurrency 32"`.
.PHONY: bench-decision-log
bench-decision-log: venv
	$(PY) -m benchmarks.decision_log_bench $(ARGS)

# The embedded state file (write, event-loop stall, read), privacy export/forget of a long
# history, and the decision log's per-customer index on Redis (same-run baseline).
# Flags: `make bench-privacy ARGS="--customers 10000,50000 --history 1000 --records 40000"`.
.PHONY: bench-privacy
bench-privacy: venv
	$(PY) -m benchmarks.privacy_bench $(ARGS)

# docs/images/dashboard.png: a paced load test scraped by a local Prometheus (Debian's
# `prometheus`), every panel of deploy/grafana/arbiter-dashboard.json rendered (~4 minutes).
.PHONY: dashboard-screenshot
dashboard-screenshot: venv
	@$(PY) -c "import matplotlib" 2>/dev/null || $(VENV)/bin/pip install -q -c constraints.txt -e '.[bench]'
	$(PY) scripts/dashboard_screenshot.py $(ARGS)

# What OpenTelemetry spans cost a Decide, off (the default) and on, in one process.
.PHONY: bench-tracing
bench-tracing: venv
	$(PY) -m benchmarks.tracing_bench $(ARGS)
