#!/usr/bin/env bash
# Screenshot an `oms-cli load --report` page in headless Chromium and check
# the picture is not blank.
#
#   bash oms-cli/tests/report_screenshot.sh [REPORT.html] [OUT.png]
#
# Without REPORT.html it makes one: it starts `oms-cli serve` on 127.0.0.1
# (a free port, a temporary SQLite database) and runs a 3 s load against it.
# OMS_CLI names the binary (default: target/debug/oms-cli, built if absent).
# Skips, exit 0, with a message when /usr/bin/chromium is not installed.
set -euo pipefail

chromium=/usr/bin/chromium
if [ ! -x "$chromium" ]; then
  echo "SKIP: $chromium not found; the report screenshot was not checked (apt-get install chromium to check it)"
  exit 0
fi

root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

report=${1:-}
out=${2:-$work/report.png}
if [ -z "$report" ]; then
  oms_cli=${OMS_CLI:-$root/target/debug/oms-cli}
  if [ ! -x "$oms_cli" ]; then
    (cd "$root" && cargo build -p oms-cli)
  fi
  timeout 120 "$oms_cli" serve --config "$root/oms.toml" --bind 127.0.0.1:0 --workers 1 \
    --log-level warn --database-url "sqlite://$work/oms.db?mode=rwc" 2>"$work/serve.log" &
  server_pid=$!
  addr=
  for _ in $(seq 1 300); do
    addr=$(sed -n 's#^listening on .*://\(.*\)$#\1#p' "$work/serve.log" | head -n1)
    [ -n "$addr" ] && break
    sleep 0.1
  done
  [ -n "$addr" ] || { echo "FAIL: the server did not start"; cat "$work/serve.log"; exit 1; }
  report=$work/report.html
  timeout 60 "$oms_cli" load --target "http://$addr" --quiet --mix get-product=80,create-order=20 \
    --rate 200 --duration 3s --products 10 --report "$report" >/dev/null
fi
[ -s "$report" ] || { echo "FAIL: no report at $report"; exit 1; }

timeout 60 "$chromium" --headless --no-sandbox --disable-gpu --disable-background-networking \
  --hide-scrollbars --screenshot="$out" --window-size=1200,1600 "file://$(realpath "$report")" \
  >/dev/null 2>&1 || true
[ -s "$out" ] || { echo "FAIL: chromium wrote no screenshot"; exit 1; }

# A PNG's pixels are the zlib stream of its IDAT chunks; a blank page
# decodes to a handful of distinct byte values, a page with text and charts
# to many.
python3 - "$out" <<'PY'
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
if data[:8] != b"\x89PNG\r\n\x1a\n":
    sys.exit("FAIL: not a PNG")
pos, idat, size = 8, b"", None
while pos < len(data):
    length, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + length]
    if kind == b"IHDR":
        size = struct.unpack(">II", body[:8])
    elif kind == b"IDAT":
        idat += body
    pos += 12 + length
pixels = zlib.decompress(idat)
distinct = len(set(pixels))
if not pixels or distinct < 16:
    sys.exit(f"FAIL: the screenshot looks blank ({distinct} distinct byte values)")
print(f"ok: screenshot {size[0]}x{size[1]}, {len(data)} bytes, {distinct} distinct byte values")
PY
echo "screenshot: $out"
