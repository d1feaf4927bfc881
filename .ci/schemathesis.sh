#!/usr/bin/env bash
# Contract fuzzing (issue #9): schemathesis generates requests from
# /openapi.json and checks every response against the same document: no 5xx,
# documented status codes, content types, headers and body schemas.
#
# Starts the debug `oms-cli serve` on a free loopback port with a temporary
# SQLite database and an admin API key, runs schemathesis with a bounded
# example count and time, stops the server, prints the counts and exits
# non-zero on any failure.
#
# Knobs: SCHEMATHESIS_MAX_EXAMPLES (default 30 per operation),
# SCHEMATHESIS_MAX_TIME (seconds, default 150), SCHEMATHESIS_SEED.
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
MAX_EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-30}"
MAX_TIME="${SCHEMATHESIS_MAX_TIME:-150}"
SEED="${SCHEMATHESIS_SEED:-1}"
target_dir="$(realpath -m "${CARGO_TARGET_DIR:-target}")"
venv="$target_dir/schemathesis/venv"

# The venv lives under target/ so CI caches it with the build.
if [ ! -x "$venv/bin/schemathesis" ] \
  || ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  echo "== installing schemathesis $SCHEMATHESIS_VERSION into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

echo "== building oms-cli (debug)"
cargo build --quiet -p oms-cli
cli="$target_dir/debug/oms-cli"

work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# An admin key: the token goes to schemathesis, only its digest to the config.
"$cli" keys generate --name schemathesis --roles admin >"$work/key.txt" 2>/dev/null
token=$(head -n 1 "$work/key.txt")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
{
  cat <<EOF
[server]
bind = "127.0.0.1:$port"
workers = 2
log_level = "warn"

[database]
url = "sqlite://$work/oms.db?mode=rwc"

[audit]
spill_dir = "$work/spill"

[auth]
enabled = true
EOF
  tail -n +2 "$work/key.txt"
} >"$work/oms.toml"

echo "== starting oms-cli serve on 127.0.0.1:$port"
"$cli" serve --config "$work/oms.toml" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log"; exit 1; }
  sleep 0.1
done

echo "== schemathesis run: at most $MAX_EXAMPLES examples per operation, $MAX_TIME s"
status=0
# Hypothesis and schemathesis keep their example databases in the working
# directory: run there, under target/, not in the source tree.
mkdir -p "$target_dir/schemathesis/work"
run_schemathesis() {
  (cd "$target_dir/schemathesis/work" && "$venv/bin/schemathesis" run "http://127.0.0.1:$port/openapi.json" \
    --header "Authorization: Bearer $token" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,negative_data_rejection,unsupported_method,allow_header_conformance,missing_required_header \
    --phases examples,coverage,fuzzing,stateful \
    --max-examples "$MAX_EXAMPLES" \
    --max-time "$MAX_TIME" \
    --seed "$SEED" \
    --workers 2 \
    --request-timeout 10 \
    --suppress-health-check too_slow,filter_too_much \
    --report junit --report-junit-path "$target_dir/schemathesis/junit.xml" \
    --no-color) 2>&1 | tee "$work/schemathesis.log"
}
run_schemathesis || status=$?
# CPython 3.11 (seen with 3.11.7, once in three runs here) can raise a
# spurious "SystemError: AST constructor recursion depth mismatch"
# (python/cpython#106905) inside hypothesis' printing of its own strategies; schemathesis reports it as a runtime
# error, not a failed check. Only then, and only once, run again.
if [ "$status" -ne 0 ] && grep -q "AST constructor recursion depth mismatch" "$work/schemathesis.log" \
  && ! grep -qE "^=+ FAILURES =+$" "$work/schemathesis.log"; then
  echo "== schemathesis hit CPython's spurious AST SystemError (no failed check); running once more"
  status=0
  run_schemathesis || status=$?
fi

if grep -qiE "panicked|internal error" "$work/server.log"; then
  echo "== the server logged errors:"
  grep -iE "panicked|internal error" "$work/server.log" | head -20
  status=1
fi
if [ -f "$target_dir/schemathesis/junit.xml" ]; then
  python3 - "$target_dir/schemathesis/junit.xml" <<'EOF'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
t = sum(int(s.get("tests", 0)) for s in suites)
f = sum(int(s.get("failures", 0)) for s in suites)
e = sum(int(s.get("errors", 0)) for s in suites)
k = sum(int(s.get("skipped", 0)) for s in suites)
print(f"schemathesis: {t} operations and scenarios, {f} failed, {e} errors, {k} skipped")
EOF
fi
# The run's own count of generated test cases.
cases=$(grep -E "^ *[0-9]+ generated" "$work/schemathesis.log" | tail -n 1 | sed 's/^ *//')
echo "schemathesis: test cases: ${cases:-unknown}"
exit "$status"
