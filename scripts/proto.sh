#!/usr/bin/env bash
# Regenerates, checks and lints the wire contract (proto/arbiter/v1).
#
#   scripts/proto.sh                  regenerate the Python stubs in clients/python/arbiter/v1
#                                     (protobuf, gRPC and Connect) and the TypeScript stubs in
#                                     clients/typescript/src/gen (buf.gen.yaml)
#   scripts/proto.sh --check          fail (exit 1) when the committed stubs are stale
#   scripts/proto.sh --lint           buf lint (STANDARD + COMMENTS, see buf.yaml)
#   scripts/proto.sh --breaking [REF] buf breaking against git REF (default: main)
#
# Flags combine, e.g. `scripts/proto.sh --check --lint`. Generation is pinned:
# the stubs depend on the grpcio-tools (protoc) and protoc-gen-connectrpc
# versions, so this script refuses to generate or compare with any other
# version (exit 2). The TypeScript generator (@bufbuild/protoc-gen-es) and buf
# are pinned by clients/typescript/package-lock.json (`npm ci` there first).
#
# Environment: PYTHON (default: .venv/bin/python, else python3).
set -euo pipefail

GRPCIO_TOOLS_VERSION="1.85.1"   # pinned generator; bump deliberately, then regenerate
CONNECTRPC_GEN_VERSION="0.13.0" # pinned protoc-gen-connectrpc (the Connect server/client stubs)
BUF_VERSION="1.75.0"            # pinned @bufbuild/buf (npm; clients/typescript pins the same)

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PROTO_DIR="proto"
OUT_DIR="clients/python"
GEN_DIR="$OUT_DIR/arbiter/v1"
TS_DIR="clients/typescript"
TS_GEN_DIR="$TS_DIR/src/gen"

if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi

die() { echo "proto.sh: $1" >&2; exit "${2:-1}"; }

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

require_generator() {
  local installed
  installed="$("$PYTHON" -c 'import importlib.metadata as m; print(m.version("grpcio-tools"))' 2>/dev/null)" \
    || die "grpcio-tools is not installed for $PYTHON; run: $PYTHON -m pip install grpcio-tools==$GRPCIO_TOOLS_VERSION" 2
  if [[ "$installed" != "$GRPCIO_TOOLS_VERSION" ]]; then
    die "grpcio-tools $installed is installed, but the stubs are pinned to $GRPCIO_TOOLS_VERSION.
  Install the pinned generator:  $PYTHON -m pip install grpcio-tools==$GRPCIO_TOOLS_VERSION
  (or bump GRPCIO_TOOLS_VERSION in scripts/proto.sh on purpose and regenerate)." 2
  fi
  installed="$("$PYTHON" -c 'import importlib.metadata as m; print(m.version("protoc-gen-connectrpc"))' 2>/dev/null)" \
    || die "protoc-gen-connectrpc is not installed for $PYTHON; run: $PYTHON -m pip install protoc-gen-connectrpc==$CONNECTRPC_GEN_VERSION" 2
  if [[ "$installed" != "$CONNECTRPC_GEN_VERSION" ]]; then
    die "protoc-gen-connectrpc $installed is installed, but the stubs are pinned to $CONNECTRPC_GEN_VERSION." 2
  fi
  CONNECT_PLUGIN="$(dirname "$PYTHON")/protoc-gen-connectrpc"
  [[ -x "$CONNECT_PLUGIN" ]] || die "protoc-gen-connectrpc not found next to $PYTHON" 2
}

# generate OUT: writes the stubs for every proto/arbiter/v1/*.proto under OUT/arbiter/v1.
generate() {
  local out="$1"
  local protos
  mapfile -t protos < <(find "$PROTO_DIR/arbiter/v1" -name '*.proto' | LC_ALL=C sort)
  [[ ${#protos[@]} -gt 0 ]] || die "no .proto files under $PROTO_DIR/arbiter/v1"
  mkdir -p "$out"
  "$PYTHON" -m grpc_tools.protoc -I "$PROTO_DIR" \
    --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" \
    --plugin=protoc-gen-connectrpc="$CONNECT_PLUGIN" \
    --connectrpc_out="$out" --connectrpc_opt=protobuf=google "${protos[@]}"
}

# The generated files in DIR, one per line (hand-written __init__.py excluded).
generated_files() {
  (cd "$1" && find . -maxdepth 1 -type f \( -name '*_pb2.py' -o -name '*_pb2.pyi' -o -name '*_pb2_grpc.py' -o -name '*_connect.py' \) \
    | sed 's|^\./||' | LC_ALL=C sort)
}

do_generate() {
  set -- gen
  require_generator
  local tmp="$WORK/$1"
  generate "$tmp"
  mkdir -p "$GEN_DIR"
  # Remove stubs of deleted .proto files, then copy the fresh set.
  generated_files "$GEN_DIR" | while read -r f; do rm -f "$GEN_DIR/$f"; done
  generated_files "$tmp/arbiter/v1" | while read -r f; do cp "$tmp/arbiter/v1/$f" "$GEN_DIR/$f"; done
  echo "proto.sh: regenerated $(generated_files "$GEN_DIR" | wc -l) files in $GEN_DIR (grpcio-tools $GRPCIO_TOOLS_VERSION)"
}

do_check() {
  set -- check
  require_generator
  local tmp="$WORK/$1"
  generate "$tmp"
  local stale=0
  if ! diff <(generated_files "$tmp/arbiter/v1") <(generated_files "$GEN_DIR" 2>/dev/null || true) >/dev/null; then
    echo "proto.sh: the set of generated files differs (want < > have):" >&2
    diff <(generated_files "$tmp/arbiter/v1") <(generated_files "$GEN_DIR" 2>/dev/null || true) >&2 || true
    stale=1
  fi
  while read -r f; do
    if [[ -f "$GEN_DIR/$f" ]] && ! diff -u "$GEN_DIR/$f" "$tmp/arbiter/v1/$f" >/dev/null; then
      echo "proto.sh: stale: $GEN_DIR/$f" >&2
      diff -u "$GEN_DIR/$f" "$tmp/arbiter/v1/$f" | head -20 | cut -c1-160 >&2 || true
      stale=1
    fi
  done < <(generated_files "$tmp/arbiter/v1")
  if [[ $stale -ne 0 ]]; then
    die "generated stubs are stale; run scripts/proto.sh (make proto) and commit the result" 1
  fi
  echo "proto.sh: generated stubs are up to date"
}

buf() {
  if [[ -x "$TS_DIR/node_modules/.bin/buf" ]]; then
    "$TS_DIR/node_modules/.bin/buf" "$@"
    return
  fi
  command -v npx >/dev/null || die "npx (Node.js) is required for buf; install Node.js >= 20" 2
  npx --yes "@bufbuild/buf@$BUF_VERSION" "$@"
}

require_ts_generator() {
  [[ -x "$TS_DIR/node_modules/.bin/protoc-gen-es" && -x "$TS_DIR/node_modules/.bin/buf" ]] \
    || die "the TypeScript generator is not installed; run: (cd $TS_DIR && npm ci)  (or: make node-deps)" 2
}

# generate_ts BASE: buf generate (buf.gen.yaml) with every output under BASE.
generate_ts() {
  "$TS_DIR/node_modules/.bin/buf" generate --template buf.gen.yaml -o "$1"
}

do_generate_ts() {
  require_ts_generator
  generate_ts .
  echo "proto.sh: regenerated $(find "$TS_GEN_DIR" -type f | wc -l) files in $TS_GEN_DIR (buf.gen.yaml)"
}

do_check_ts() {
  require_ts_generator
  local tmp="$WORK/ts"
  mkdir -p "$tmp"
  generate_ts "$tmp"
  if ! diff -ru "$TS_GEN_DIR" "$tmp/$TS_GEN_DIR" >"$WORK/ts.diff" 2>&1; then
    head -40 "$WORK/ts.diff" | cut -c1-160 >&2
    die "generated TypeScript stubs are stale; run scripts/proto.sh (make proto) and commit the result" 1
  fi
  echo "proto.sh: generated TypeScript stubs are up to date"
}

do_lint() {
  buf lint
  echo "proto.sh: buf lint passed"
}

do_breaking() {
  local ref="$1"
  if ! git rev-parse --verify --quiet "$ref^{commit}" >/dev/null; then
    echo "proto.sh: git ref '$ref' has no commit yet; skipping buf breaking" >&2
    return 0
  fi
  if ! git cat-file -e "$ref:$PROTO_DIR" 2>/dev/null; then
    echo "proto.sh: '$ref' has no $PROTO_DIR directory yet; skipping buf breaking" >&2
    return 0
  fi
  buf breaking --against ".git#ref=$ref"
  echo "proto.sh: buf breaking against $ref passed"
}

if [[ $# -eq 0 ]]; then
  do_generate
  do_generate_ts
  exit 0
fi
while [[ $# -gt 0 ]]; do
  case "$1" in
    --generate) do_generate; do_generate_ts ;;
    --check) do_check; do_check_ts ;;
    --lint) do_lint ;;
    --breaking)
      ref="main"
      if [[ $# -gt 1 && "$2" != --* ]]; then ref="$2"; shift; fi
      do_breaking "$ref"
      ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" 2 ;;
  esac
  shift
done
