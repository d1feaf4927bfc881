#!/usr/bin/env bash
# A/B end-to-end throughput of the release server on loopback, same run.
#
#   benches/e2e/ab.sh PATH "ENV_A" "ENV_B" [ROUNDS]
#
# Starts `oms-cli serve` (1 worker thread) once per variant and round with
# the given OMS_ environment overrides, seeds product AB-1, runs
# `wrk -t1 -c64 -d8s` against PATH, and prints requests/s per run and the
# median ratio B/A. Needs wrk and a release build (cargo build --release -p oms-cli).
set -euo pipefail
path=$1; env_a=$2; env_b=$3; rounds=${4:-3}
bin=${OMS_BIN:-target/release/oms-cli}
port=${PORT:-18181}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

run() {
  local envs=$1 db="$work/ab-$RANDOM.db"
  env $envs OMS_AUDIT__SPILL_DIR="$work/spill" "$bin" serve --config oms.toml --bind 127.0.0.1:$port \
    --workers 1 --log-level warn --database-url "sqlite://$db?mode=rwc" >/dev/null 2>"$work/server.log" &
  local pid=$!
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.1; done
  curl -fs -X POST "http://127.0.0.1:$port/v1/products" -H 'content-type: application/json' \
    -d '{"sku":"AB-1","name":"Bench","price_minor":100,"currency":"EUR","available":1000000000}' >/dev/null
  local rps
  rps=$(taskset -c 1 wrk -t1 -c64 -d8s "http://127.0.0.1:$port$path" | awk '/Requests\/sec/ {print $2}')
  local rss
  rss=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
  kill -TERM $pid; wait $pid || true
  echo "$rps $rss"
}

a=(); b=()
for r in $(seq 1 "$rounds"); do
  read -r ra ma < <(run "$env_a"); read -r rb mb < <(run "$env_b")
  echo "round $r: A=$ra req/s (peak RSS ${ma} kB)  B=$rb req/s (peak RSS ${mb} kB)"
  a+=("$ra"); b+=("$rb")
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
ma=$(median "${a[@]}"); mb=$(median "${b[@]}")
echo "median A=$ma B=$mb ratio B/A=$(awk -v a="$ma" -v b="$mb" 'BEGIN {printf "%.3f", b/a}')"
