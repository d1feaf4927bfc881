#!/usr/bin/env bash
# A/B end-to-end throughput of the release server on loopback, same run.
#
#   benches/e2e/ab.sh TARGET "ENV_A" "ENV_B" [ROUNDS]
#
# Starts `oms-cli serve` (1 worker thread) once per variant and round,
# alternating A and B inside each round so both share the machine's noise,
# with the given OMS_ environment overrides and a fresh database, seeds
# product AB-1, and measures requests/s:
#   TARGET a path (`/v1/products/AB-1`): `wrk -t1 -c64 -d8s` on it, pinned
#          to CPU 1;
#   TARGET `mixed`: `oms-cli load --scenario mixed` (get-product=70,
#          create-order=20, get-order=10) with USERS (default 100) for
#          DURATION (default 10s).
# Prints requests/s and peak RSS per run and the median ratio B/A.
#
# Knobs: DATABASE=sqlite|postgres (default sqlite; PostgreSQL gets a fresh
# database per run from OMS_ADMIN_URL, default
# postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable), WORKERS
# (default 1), OMS_BIN. Needs wrk (paths only) and a release build
# (cargo build --release -p oms-cli).
set -euo pipefail
cd "$(dirname "$0")/../.."
target=$1; env_a=$2; env_b=$3; rounds=${4:-3}
bin=${OMS_BIN:-target/release/oms-cli}
port=${PORT:-18181}
database=${DATABASE:-sqlite}
# shellcheck source=benches/e2e/common.sh
. benches/e2e/common.sh

# run "ENV": one server on a fresh database; prints "req/s peak-RSS-kB".
run() {
  # shellcheck disable=SC2086
  start_server "$(fresh_db "$database")" "${WORKERS:-1}" $1
  curl -fs -X POST "http://127.0.0.1:$port/v1/products" -H 'content-type: application/json' \
    -d '{"sku":"AB-1","name":"Bench","price_minor":100,"currency":"EUR","available":1000000000}' >/dev/null
  local rps
  if [ "$target" = mixed ]; then
    "$bin" load --target "http://127.0.0.1:$port" --scenario mixed --users "${USERS:-100}" \
      --duration "${DURATION:-10s}" --warmup 2s --products 100 --orders 100 --quiet --out "$work/mixed.json" >/dev/null
    rps=$(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["totals"]["rps"]))' "$work/mixed.json")
  else
    rps=$(taskset -c 1 wrk -t1 -c64 -d8s "http://127.0.0.1:$port$target" | awk '/Requests\/sec/ {print $2}')
  fi
  stop_server
  echo "$rps $peak_kb"
}

a=(); b=()
for r in $(seq 1 "$rounds"); do
  read -r ra ma < <(run "$env_a"); read -r rb mb < <(run "$env_b")
  echo "round $r: A=$ra req/s (peak RSS ${ma} kB)  B=$rb req/s (peak RSS ${mb} kB)  B/A=$(awk -v a="$ra" -v b="$rb" 'BEGIN {printf "%.3f", b/a}')"
  a+=("$ra"); b+=("$rb")
done
ma=$(median "${a[@]}"); mb=$(median "${b[@]}")
echo "median A=$ma B=$mb ratio B/A=$(awk -v a="$ma" -v b="$mb" 'BEGIN {printf "%.3f", b/a}')"
