#!/usr/bin/env bash
# Instructions per request of the release server, counted by valgrind's
# callgrind (stable on a noisy machine, unlike wall time).
#
#   benches/callgrind/run.sh [VARIANT...]      (default: all variants)
#
# Variants (each a fresh server on a fresh SQLite file, `--workers 1`):
#   minimal   metrics.enabled = false, audit.sink = "null", compression off
#   defaults  the shipped oms.toml (metrics on, audit to the database)
#   full      defaults + auth on (bearer token) + rate limit on
#   nomon     defaults with metrics.enabled = false (the A side of ab.sh)
#   noaudit   defaults with audit.sink = "null" (what the database sink costs)
#
# For each variant: start `oms-cli serve` under callgrind with instrumentation
# off, seed product CG-1, warm the cache, switch collection on, send
# cached `GET /v1/products/CG-1` with wrk (8 connections) for
# SECONDS_PER_RUN (default 20; a few thousand requests under callgrind),
# wait for the server to go idle, dump. Prints instructions
# per request (all threads: hyper, tokio, handler, middleware, audit
# workers) and leaves callgrind.out.<variant> in OUT (default
# target/callgrind) for
#
#   callgrind_annotate --inclusive=yes target/callgrind/callgrind.out.full | head -60
#
# With LOAD=mixed the load is `oms-cli load --scenario mixed` (get-product
# 70 %, create-order 20 %, get-order 10 %; 8 users, seeding included)
# instead of wrk, and requests are counted by the server: `X-Request-Count`
# of a `/health` probe before and after (metrics on), or the rows the audit
# sink stored meanwhile (`nomon`, `minimal` has neither).
#
# Needs valgrind, wrk, curl, python3 and `cargo build --release -p oms-cli`.
set -euo pipefail
bin=${OMS_BIN:-target/release/oms-cli}
port=${PORT:-18281}
seconds=${SECONDS_PER_RUN:-20}
out=${OUT:-target/callgrind}
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
token=callgrind-bench-token
digest=$(printf '%s' "$token" | sha256sum | cut -d' ' -f1)
cat >"$work/auth.toml" <<TOML
[auth]
enabled = true
[[auth.keys]]
name = "bench"
sha256 = "$digest"
roles = ["admin"]
[rate_limit]
enabled = true
requests_per_second = 1000000
burst = 1000000
TOML
cp "${OMS_CONFIG:-oms.toml}" "$work/oms.toml"

variant_env() {
  case $1 in
    minimal) echo "OMS_METRICS__ENABLED=false OMS_AUDIT__SINK=null OMS_COMPRESSION__ENABLED=false" ;;
    defaults) echo "" ;;
    nomon) echo "OMS_METRICS__ENABLED=false" ;;
    noaudit) echo "OMS_AUDIT__SINK=null" ;;
    full) echo "" ;;
    *) echo "unknown variant $1" >&2; exit 2 ;;
  esac
}

# audit_rows FILE: rows of audit_events in the SQLite file (WAL: readable
# while the server writes).
audit_rows() {
  python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT COUNT(*) FROM audit_events").fetchone()[0])' "$1"
}

# served VARIANT FILE: requests the server has answered so far.
served() {
  if [ "$1" = nomon ]; then audit_rows "$2"; return; fi
  curl -fs -D - -o /dev/null "${auth[@]+"${auth[@]}"}" "http://127.0.0.1:$port/health" \
    | tr -d '\r' | awk -F': ' 'tolower($1)=="x-request-count" {print $2}'
}

run() {
  local variant=$1 envs config="$work/oms.toml" auth=()
  envs=$(variant_env "$variant")
  if [ "$variant" = full ]; then
    # oms.toml ships [rate_limit] and [auth] with enabled = false: drop those
    # lines and append the enabled tables (TOML forbids repeated tables, so
    # rebuild the file from the shipped one without them).
    awk '/^\[rate_limit\]/{skip=1} /^\[auth\]/{skip=1} /^\[/{if($0!="[rate_limit]" && $0!="[auth]") skip=0} !skip' \
      "$work/oms.toml" >"$work/full.toml"
    cat "$work/auth.toml" >>"$work/full.toml"
    config="$work/full.toml"
    auth=(-H "Authorization: Bearer $token")
  fi
  local db="$work/$variant.db" file="$out/callgrind.out.$variant"
  rm -f "$file"
  # shellcheck disable=SC2086
  env $envs OMS_CACHE__TTL_MS=3600000 OMS_AUDIT__SPILL_DIR="$work/spill" valgrind --tool=callgrind --instr-atstart=no \
    --callgrind-out-file="$file" "$bin" serve --config "$config" --bind 127.0.0.1:$port \
    --workers 1 --log-level warn --database-url "sqlite://$db?mode=rwc" \
    >"$work/$variant.out" 2>"$work/$variant.log" &
  local pid=$!
  for _ in $(seq 1 600); do curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.2; done
  curl -fs -X POST "http://127.0.0.1:$port/v1/products" "${auth[@]+"${auth[@]}"}" -H 'content-type: application/json' \
    -d '{"sku":"CG-1","name":"Bench","price_minor":100,"currency":"EUR","available":1000000000}' >/dev/null
  for _ in $(seq 1 20); do curl -fs "${auth[@]+"${auth[@]}"}" "http://127.0.0.1:$port/v1/products/CG-1" >/dev/null; done
  sleep 1
  local before=0 done
  [ "${LOAD:-}" != mixed ] || before=$(served "$variant" "$db")
  callgrind_control --instr=on "$pid" >/dev/null 2>&1
  if [ "${LOAD:-}" = mixed ]; then
    local token_arg=()
    if [ "$variant" = full ]; then token_arg=(--token "$token"); fi
    "$bin" load --target "http://127.0.0.1:$port" --scenario mixed --users 8 --duration "$seconds"s \
      --warmup 0s --products 20 --orders 20 --quiet --out "$work/$variant.json" \
      "${token_arg[@]+"${token_arg[@]}"}" >/dev/null
  else
    # wrk counts the responses it got (up to 8 in flight at the end are
    # served but not counted: under 1 % of the total).
    done=$(wrk -t1 -c8 -d"$seconds"s "${auth[@]+"${auth[@]}"}" "http://127.0.0.1:$port/v1/products/CG-1" \
      | awk '/requests in/ {print $1}')
  fi
  sleep 2
  [ "${LOAD:-}" != mixed ] || done=$(( $(served "$variant" "$db") - before ))
  callgrind_control --dump="$variant" "$pid" >/dev/null 2>&1
  callgrind_control --instr=off "$pid" >/dev/null 2>&1
  kill -TERM "$pid"; wait "$pid" || true
  local total
  # callgrind_control --dump writes <file>.1; the final dump at exit has
  # nothing after --instr=off.
  total=$(awk '/^summary:|^totals:/ {print $2; exit}' "$file.1" 2>/dev/null || true)
  [ -n "$total" ] || total=$(awk '/^summary:|^totals:/ {print $2; exit}' "$file")
  echo "$variant: $done requests, $total instructions, $((total / done)) instructions/request ($file.1)"
}

variants=("$@")
[ ${#variants[@]} -gt 0 ] || variants=(minimal nomon noaudit defaults full)
for v in "${variants[@]}"; do run "$v"; done
