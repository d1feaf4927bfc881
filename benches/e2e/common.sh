# Sourced by the e2e scripts: a work directory, fresh databases, one
# server at a time, and cleanup on exit (the server stopped, the PostgreSQL
# databases dropped, the directory removed).
#
# Uses: bin (the oms-cli binary), port. Knob: OMS_ADMIN_URL (a PostgreSQL
# database to run CREATE/DROP DATABASE from).
admin=${OMS_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
work=$(mktemp -d)
server_pid=
cleanup() {
  [ -z "$server_pid" ] || { kill -TERM "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; }
  if [ -f "$work/databases" ]; then
    while read -r db; do
      psql -q "$admin" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    done <"$work/databases"
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# fresh_db sqlite|postgres: prints the URL of a new, empty database. The
# names go to a file, not a variable: callers run this in a subshell.
fresh_db() {
  if [ "$1" = sqlite ]; then
    echo "sqlite://$work/oms-$RANDOM$RANDOM.db?mode=rwc"
  else
    local name="oms_e2e_$RANDOM$RANDOM"
    psql -q "$admin" -c "CREATE DATABASE $name" >/dev/null
    echo "$name" >>"$work/databases"
    echo "${admin%/*}/$name?sslmode=disable"
  fi
}

# start_server URL WORKERS [ENV...]: the release server with the shipped
# oms.toml in the background (server_pid), once /health answers.
start_server() {
  local url=$1 workers=$2; shift 2
  env "$@" OMS_AUDIT__SPILL_DIR="$work/spill" "$bin" serve --config oms.toml --bind "127.0.0.1:$port" \
    --workers "$workers" --log-level warn --database-url "$url" >/dev/null 2>"$work/server.log" &
  server_pid=$!
  for _ in $(seq 1 200); do curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && return; sleep 0.1; done
  echo "the server did not start:" >&2; cat "$work/server.log" >&2; exit 1
}

# stop_server: SIGTERM and wait for the exit; the server's peak RSS in kB
# goes to peak_kb. Call it in this shell, not in $(...): a subshell
# cannot wait for the server.
stop_server() {
  peak_kb=$(awk '/VmHWM/ {print $2}' "/proc/$server_pid/status")
  kill -TERM "$server_pid"; wait "$server_pid" || true; server_pid=
}

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
