#!/usr/bin/env bash
# Database floors and the release server side by side, same run, with ratios.
#
#   benches/pgbench/run.sh
#
# Knobs (environment): DURATION seconds per measurement (5), ROUNDS (2),
# CONNS connection counts for the server ("64 1000"), FLOOR_CONNS pgbench
# clients (64), BACKENDS ("postgres sqlite"), PG_ADMIN_URL (a database to
# run CREATE/DROP DATABASE from), PORT (18282), OMS_BIN
# (target/release/oms-cli), CONFIG (oms.toml), OUT (a directory to keep the
# raw results in).
#
# What it does, all on 127.0.0.1 and bounded in time:
# 1. creates a fresh PostgreSQL database, migrates it with `oms-cli migrate`
#    and seeds the floor fixtures (seed.sql: 100 products with 1e9 units,
#    100 two-item orders); `oms-cli load` seeds the same for the server
#    through the API (100 products, 100 two-item orders per run);
# 2. per round, alternating: the pgbench floors (`pgbench -n -M prepared
#    -c 64 -j 1 -T DURATION`, create_order.sql, get_order.sql,
#    get_product.sql), then `oms-cli serve` with oms.toml as shipped (only
#    the database URL, the port and the log level are overridden) driven
#    by `oms-cli load` (closed loop, 2-item orders) at each of CONNS
#    connections: health, get-product, get-order, create-order with the
#    cache on, get-product and get-order with it off; then the same server
#    runs on a fresh SQLite file;
# 3. prints every measurement and a table of medians over the rounds with
#    the ratios the issue asks for.
# Needs psql, pgbench (15+: --max-tries, \gset), jq, GNU awk and a release
# build (cargo build --release -p oms-cli). Total time per round is about
# 27 x (DURATION + 2) seconds with the default CONNS and BACKENDS.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=benches/pgbench
bin=${OMS_BIN:-target/release/oms-cli}
duration=${DURATION:-5}
rounds=${ROUNDS:-2}
conns=${CONNS:-64 1000}
floor_conns=${FLOOR_CONNS:-64}
backends=${BACKENDS:-postgres sqlite}
port=${PORT:-18282}
config=${CONFIG:-oms.toml}
admin=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
nproducts=100
norders=100

# 1,000 client connections plus as many accepted by the server, same process tree.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 65536 2>/dev/null || true
if [ "$(ulimit -n)" -lt 4096 ]; then echo "ulimit -n is $(ulimit -n): too low for 1,000 connections" >&2; exit 1; fi

work=$(mktemp -d)
db=oms_floor_$$
dburl=${admin%%/postgres\?*}/$db?sslmode=disable
if [ "$dburl" = "$admin" ]; then echo "PG_ADMIN_URL must end in /postgres?..." >&2; exit 1; fi
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill -TERM "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  psql -q "$admin" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  if [ -n "${OUT:-}" ]; then mkdir -p "$OUT" && cp "$work"/*.tsv "$work"/*.json "$OUT"/ 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
results=$work/results.tsv
: >"$results"

echo "# $(date -u +%FT%TZ) duration=${duration}s rounds=$rounds conns=[$conns] floor_conns=$floor_conns load=$(cut -d' ' -f1-3 /proc/loadavg)"
psql -q "$admin" -c "CREATE DATABASE $db" >/dev/null
OMS_AUDIT__SPILL_DIR=$work/spill "$bin" migrate --config "$config" --database-url "$dburl" \
  --log-level warn >/dev/null 2>"$work/migrate.log" || { cat "$work/migrate.log" >&2; exit 1; }
psql -q -v ON_ERROR_STOP=1 -v nproducts=$nproducts -v norders=$norders -f $here/seed.sql "$dburl" >/dev/null

record() { # backend variant scenario conns round rps errors p99_ms
  echo "$*" | tr ' ' '\t' >>"$results"
  printf '  %-8s %-9s %-12s c=%-5s r%s  %10.1f req/s  errors=%s  p99=%s ms\n' "$@"
}

floor() { # script round
  local out
  out=$(pgbench -n -M prepared -c "$floor_conns" -j 1 -T "$duration" --max-tries=10 \
    -D nproducts=$nproducts -D norders=$norders -f "$here/$1.sql" "$dburl" 2>&1) || {
    echo "$out" >&2; exit 1; }
  local tps failed p99
  tps=$(awk '/^tps = / {print $3}' <<<"$out")
  failed=$(awk '/number of failed transactions/ {print $5}' <<<"$out")
  p99=$(awk '/latency average/ {print $4}' <<<"$out")
  record postgres floor "${1//_/-}" "$floor_conns" "$2" "$tps" "${failed:-0}" "avg:$p99"
}

start_server() { # url env...
  local url=$1; shift
  env "$@" OMS_AUDIT__SPILL_DIR="$work/spill" "$bin" serve --config "$config" \
    --bind 127.0.0.1:$port --log-level warn --database-url "$url" \
    >/dev/null 2>>"$work/server.log" &
  server_pid=$!
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "the server did not start:" >&2; cat "$work/server.log" >&2; exit 1
}

stop_server() {
  kill -TERM "$server_pid"; wait "$server_pid" || true; server_pid=
}

load() { # backend variant scenario conns round
  local json=$work/$1-$2-$3-$4-r$5.json
  "$bin" load --target "http://127.0.0.1:$port" --scenario "$3" --users "$4" \
    --duration "${duration}s" --warmup 1s --products $nproducts --orders $norders \
    --order-items 2 --quiet --out "$json" >/dev/null 2>"$work/load.log" || {
    cat "$work/load.log" >&2; exit 1; }
  record "$1" "$2" "$3" "$4" "$5" \
    "$(jq '.totals.rps' "$json")" "$(jq '.totals.errors' "$json")" \
    "$(jq '.latency.p99_us / 1000' "$json")"
}

serve_round() { # backend url round
  start_server "$2"
  for c in $conns; do
    for s in health get-product get-order create-order; do load "$1" cache-on $s "$c" "$3"; done
  done
  stop_server
  start_server "$2" OMS_CACHE__ENABLED=false
  for c in $conns; do
    for s in get-product get-order; do load "$1" cache-off $s "$c" "$3"; done
  done
  stop_server
}

for r in $(seq 1 "$rounds"); do
  echo "## round $r"
  for b in $backends; do
    case $b in
      postgres)
        for f in create_order get_order get_product; do floor $f "$r"; done
        serve_round postgres "$dburl" "$r"
        ;;
      sqlite) serve_round sqlite "sqlite://$work/oms-r$r.db?mode=rwc" "$r" ;;
    esac
  done
done

# Medians over the rounds, then the ratios.
awk -F'\t' '
  { k = $1 FS $2 FS $3 FS $4; v[k] = v[k] " " $6; e[k] += $7; if ($8 !~ /avg/ && $8 + 0 > p[k] + 0) p[k] = $8 }
  function med(s,   a, n, i, j, t) {
    n = split(s, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  function m(b, var, s, c,   k) { k = b FS var FS s FS c; return (k in v) ? med(v[k]) : 0 }
  function ratio(x, y) { return y > 0 && x > 0 ? sprintf("%.2fx", x / y) : "-" }
  END {
    printf "\n## medians (req/s; errors summed over rounds; p99 = worst round, ms)\n"
    printf "%-8s %-9s %-12s %6s %10s %7s %9s\n", "backend", "variant", "scenario", "conns", "req/s", "errors", "p99"
    n = asorti(v, keys)
    for (i = 1; i <= n; i++) {
      split(keys[i], f, FS)
      printf "%-8s %-9s %-12s %6s %10.1f %7d %9s\n", f[1], f[2], f[3], f[4], med(v[keys[i]]), e[keys[i]], (keys[i] in p) ? p[keys[i]] : "-"
    }
    fc = "'"$floor_conns"'"
    printf "\n## ratios (target in brackets)\n"
    nc = split("'"$conns"'", cs, " ")
    for (ci = 1; ci <= nc; ci++) {
      c = cs[ci]
      for (bi = 1; bi <= 2; bi++) {
        b = bi == 1 ? "postgres" : "sqlite"
        h = m(b, "cache-on", "health", c)
        if (h == 0) continue
        printf "%s, %s connections:\n", b, c
        printf "  create-order / create-order floor      %s [>= 1.0]\n", ratio(m(b, "cache-on", "create-order", c), m("postgres", "floor", "create-order", fc))
        printf "  get-order cache off / get-order floor  %s [>= 0.7]\n", ratio(m(b, "cache-off", "get-order", c), m("postgres", "floor", "get-order", fc))
        printf "  get-product cache off / its floor      %s [>= 0.7]\n", ratio(m(b, "cache-off", "get-product", c), m("postgres", "floor", "get-product", fc))
        printf "  get-order cache on / health            %s [>= 0.5]\n", ratio(m(b, "cache-on", "get-order", c), h)
        printf "  get-product cache on / health          %s [>= 0.5]\n", ratio(m(b, "cache-on", "get-product", c), h)
        if (c != cs[1]) {
          split("health get-product get-order create-order", ss, " ")
          for (si = 1; si <= 4; si++)
            printf "  %-12s cache on, %s / %s conns   %s [>= 0.9]\n", ss[si], c, cs[1], ratio(m(b, "cache-on", ss[si], c), m(b, "cache-on", ss[si], cs[1]))
          printf "  get-order cache off, %s / %s conns      %s [>= 0.9]\n", c, cs[1], ratio(m(b, "cache-off", "get-order", c), m(b, "cache-off", "get-order", cs[1]))
        }
      }
    }
  }' "$results"
