#!/usr/bin/env bash
# Cached reads at 64 vs 1,000 connections with wrk (a C client, lighter than
# `oms-cli load` on the same 2 cores), same server, alternating.
#
#   benches/e2e/connections.sh [sqlite|postgres]...     (default: both)
#
# Starts the release server with the shipped oms.toml on a fresh database,
# seeds product AB-1 and one 1-item order, then per round and path runs
# `wrk -t2 -c64` and `wrk -t2 -c1000 --latency` for DURATION (default 6s)
# on GET /health, GET /v1/products/AB-1 and GET /v1/orders/{id} (cache on,
# as shipped). Prints req/s and p99 per run, the medians over ROUNDS
# (default 3) and the 1,000/64 ratio (issue #10: at least 0.9x, p99 under
# 50 ms). Needs wrk, curl, psql (PostgreSQL) and a release build.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${OMS_BIN:-target/release/oms-cli}
port=${PORT:-18183}
rounds=${ROUNDS:-3}
duration=${DURATION:-6s}
backends=("$@")
[ ${#backends[@]} -gt 0 ] || backends=(sqlite postgres)
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
# shellcheck source=benches/e2e/common.sh
. benches/e2e/common.sh

for backend in "${backends[@]}"; do
  start_server "$(fresh_db "$backend")" "$(nproc)"
  base="http://127.0.0.1:$port"
  curl -fs -X POST "$base/v1/products" -H 'content-type: application/json' \
    -d '{"sku":"AB-1","name":"Bench","price_minor":100,"currency":"EUR","available":1000000000}' >/dev/null
  order=$(curl -fs -X POST "$base/v1/orders" -H 'content-type: application/json' \
    -d '{"customer_id":"c-1","currency":"EUR","items":[{"sku":"AB-1","quantity":1}]}' \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  paths=(/health /v1/products/AB-1 "/v1/orders/$order")
  declare -A rps=() p99=()
  echo "## $backend ($(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg))"
  for r in $(seq 1 "$rounds"); do
    for path in "${paths[@]}"; do
      for c in 64 1000; do
        out=$(wrk -t2 -c"$c" -d"$duration" --latency "$base$path")
        rate=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
        tail=$(echo "$out" | awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; print v}')
        bad=$(echo "$out" | awk '/Non-2xx|Socket errors/ {print}' | tr '\n' ' ')
        echo "  r$r $path c=$c: $rate req/s, p99 $tail ms ${bad}"
        rps[$path,$c]+="$rate "; p99[$path,$c]+="$tail "
      done
    done
  done
  echo "| route | 64 conns req/s | 1,000 conns req/s | 1,000/64 | p99 at 1,000 |"
  echo "|---|---|---|---|---|"
  for path in "${paths[@]}"; do
    a=$(median ${rps[$path,64]}); b=$(median ${rps[$path,1000]}); t=$(median ${p99[$path,1000]})
    label=$path; [ "$path" = "/v1/orders/$order" ] && label='/v1/orders/{id}'
    echo "| GET $label | $a | $b | $(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2f", b/a}') | $t ms |"
  done
  unset rps p99
  stop_server
  echo
done
