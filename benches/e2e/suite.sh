#!/usr/bin/env bash
# The end-to-end table of BENCHMARKS.md, made with `oms-cli load` against
# the release server with the shipped oms.toml.
#
#   benches/e2e/suite.sh [sqlite|postgres]...      (default: both)
#
# For each backend: `--scenario mixed` (get-product=70, create-order=20,
# get-order=10) at 100, 1,000 and 5,000 concurrent users; the audit sink
# `database` (shipped) vs `null`, and `server.workers` 1 vs 2, at 100 users;
# the statements each route runs (`X-DB-Queries`); the server's peak RSS
# (VmHWM). Each figure is the median of ROUNDS runs (default 3), variants
# alternating inside a round so they share the machine's noise.
#
# Knobs: ROUNDS, DURATION (default 10s), WARMUP (2s), PORT (18281),
# OMS_BIN (target/release/oms-cli), OMS_ADMIN_URL (PostgreSQL admin URL,
# default postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable).
# Needs a release build: cargo build --release -p oms-cli.
set -euo pipefail
cd "$(dirname "$0")/../.."

bin=${OMS_BIN:-target/release/oms-cli}
port=${PORT:-18281}
rounds=${ROUNDS:-3}
duration=${DURATION:-10s}
warmup=${WARMUP:-2s}
backends=("$@")
[ ${#backends[@]} -gt 0 ] || backends=(sqlite postgres)
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# shellcheck source=benches/e2e/common.sh
. benches/e2e/common.sh

# start URL WORKERS [ENV...]; stop (peak RSS in MB to peak_mb).
start() { start_server "$@"; }
stop() { stop_server; peak_mb=$(( (peak_kb + 512) / 1024 )); }

# load USERS OUT: the mixed scenario; results JSON in OUT.
load() {
  "$bin" load --target "http://127.0.0.1:$port" --scenario mixed --users "$1" \
    --duration "$duration" --warmup "$warmup" --products 100 --orders 100 --quiet --out "$2" >/dev/null
}

# field FILE: "rps mean_ms p99_ms error_rate" from a results file.
fields() {
  python3 - "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
t, l = r["totals"], r["latency"]
print(f'{t["rps"]:.0f} {l["mean_us"]/1e3:.2f} {l["p99_us"]/1e3:.2f} {t["error_rate"]:.4f}')
PY
}

col() { local n=$1; shift; for f in "$@"; do echo "$f" | cut -d' ' -f"$n"; done; }

# queries ROUTE-LABEL METHOD PATH [BODY]: X-DB-Queries of one request.
queries() {
  local args=(-s -o /dev/null -D - -X "$2" "http://127.0.0.1:$port$3")
  [ -z "${4:-}" ] || args+=(-H 'content-type: application/json' -d "$4")
  printf '| %s | %s |\n' "$1" "$(curl "${args[@]}" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-db-queries" {print $2}')"
}

for backend in "${backends[@]}"; do
  echo "## $backend ($(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at start)"
  echo
  declare -A res=()
  declare -A rss=()
  for r in $(seq 1 "$rounds"); do
    for users in 100 1000 5000; do
      start "$(fresh_db "$backend")" 2
      load "$users" "$work/u$users.json"
      stop; rss[u$users]+="$peak_mb "
      res[u$users]+="$(fields "$work/u$users.json" | tr ' ' ,) "
    done
    for variant in null w1; do
      if [ $variant = null ]; then start "$(fresh_db "$backend")" 2 OMS_AUDIT__SINK=null
      else start "$(fresh_db "$backend")" 1; fi
      load 100 "$work/$variant.json"
      stop; rss[$variant]+="$peak_mb "
      res[$variant]+="$(fields "$work/$variant.json" | tr ' ' ,) "
    done
  done
  summary() { # KEY -> "rps mean p99 errors rss" medians
    local runs=(${res[$1]//,/ }) rs=(${rss[$1]})
    local n=${#rs[@]} rps=() mean=() p99=() err=() i
    for ((i = 0; i < n; i++)); do
      rps+=("${runs[4*i]}"); mean+=("${runs[4*i+1]}"); p99+=("${runs[4*i+2]}"); err+=("${runs[4*i+3]}")
    done
    echo "$(median "${rps[@]}") $(median "${mean[@]}") $(median "${p99[@]}") $(median "${err[@]}") $(median "${rs[@]}")"
  }
  echo "| users | req/s | mean | p99 | error rate | peak RSS |"
  echo "|---|---|---|---|---|---|"
  for users in 100 1000 5000; do
    read -r a b c d e < <(summary "u$users")
    echo "| $users | $a | $b ms | $c ms | $d | $e MB |"
  done
  echo
  read -r base _ _ _ _ < <(summary u100)
  read -r nul _ _ _ _ < <(summary null)
  read -r one _ _ _ _ < <(summary w1)
  echo "| 100 users | req/s | ratio |"
  echo "|---|---|---|"
  echo "| audit \`null\` | $nul | 1.00 |"
  echo "| audit \`database\` (shipped) | $base | $(awk -v a="$nul" -v b="$base" 'BEGIN {printf "%.2f", b/a}') |"
  echo "| \`server.workers = 1\` | $one | 1.00 |"
  echo "| \`server.workers = 2\` | $base | $(awk -v a="$one" -v b="$base" 'BEGIN {printf "%.2f", b/a}') |"
  echo
  echo "Statements per request (\`X-DB-Queries\`), cache on as shipped:"
  echo
  echo "| route | statements |"
  echo "|---|---|"
  start "$(fresh_db "$backend")" 2
  queries 'POST /v1/products' POST /v1/products \
    '{"sku":"Q-1","name":"Q","price_minor":100,"currency":"EUR","available":100}'
  curl -fs -X POST "http://127.0.0.1:$port/v1/products" -H 'content-type: application/json' \
    -d '{"sku":"Q-2","name":"Q","price_minor":100,"currency":"EUR","available":100}' >/dev/null
  queries 'GET /v1/products/{sku} (miss)' GET /v1/products/Q-1
  queries 'GET /v1/products/{sku} (hit)' GET /v1/products/Q-1
  queries 'GET /v1/products' GET '/v1/products?limit=50'
  order=$(curl -fs -X POST "http://127.0.0.1:$port/v1/orders" -H 'content-type: application/json' \
    -d '{"customer_id":"c-0","currency":"EUR","items":[{"sku":"Q-1","quantity":1},{"sku":"Q-2","quantity":1}]}' \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  queries 'POST /v1/orders (2 items)' POST /v1/orders \
    '{"customer_id":"c-1","currency":"EUR","items":[{"sku":"Q-1","quantity":1},{"sku":"Q-2","quantity":1}]}'
  queries 'GET /v1/orders/{id} (miss)' GET "/v1/orders/$order"
  queries 'GET /v1/orders/{id} (hit)' GET "/v1/orders/$order"
  queries 'GET /v1/orders' GET '/v1/orders?limit=50'
  queries 'POST /v1/orders/{id}/confirm' POST "/v1/orders/$order/confirm"
  queries 'GET /health' GET /health
  stop
  echo
  unset res rss
done
