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
admin=${OMS_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
work=$(mktemp -d)
databases=()
cleanup() {
  for db in "${databases[@]}"; do psql -q "$admin" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT

fresh_db() {
  if [ "$database" = sqlite ]; then
    echo "sqlite://$work/ab-$RANDOM$RANDOM.db?mode=rwc"
  else
    local name="oms_ab_$RANDOM$RANDOM"
    psql -q "$admin" -c "CREATE DATABASE $name" >/dev/null
    databases+=("$name")
    echo "${admin%/*}/$name?sslmode=disable"
  fi
}

run() {
  local envs=$1 url
  url=$(fresh_db)
  # shellcheck disable=SC2086
  env $envs OMS_AUDIT__SPILL_DIR="$work/spill" "$bin" serve --config oms.toml --bind 127.0.0.1:$port \
    --workers "${WORKERS:-1}" --log-level warn --database-url "$url" >/dev/null 2>"$work/server.log" &
  local pid=$!
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.1; done
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
  local rss
  rss=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
  kill -TERM $pid; wait $pid || true
  echo "$rps $rss"
}

a=(); b=()
for r in $(seq 1 "$rounds"); do
  read -r ra ma < <(run "$env_a"); read -r rb mb < <(run "$env_b")
  echo "round $r: A=$ra req/s (peak RSS ${ma} kB)  B=$rb req/s (peak RSS ${mb} kB)  B/A=$(awk -v a="$ra" -v b="$rb" 'BEGIN {printf "%.3f", b/a}')"
  a+=("$ra"); b+=("$rb")
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
ma=$(median "${a[@]}"); mb=$(median "${b[@]}")
echo "median A=$ma B=$mb ratio B/A=$(awk -v a="$ma" -v b="$mb" 'BEGIN {printf "%.3f", b/a}')"
