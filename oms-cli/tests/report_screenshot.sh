#!/usr/bin/env bash
# Screenshot an `oms-cli load --report` page in headless Chromium and check
# that every chart drew its series.
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

timeout 60 "$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$work/chromium-profile" --hide-scrollbars --screenshot="$out" --window-size=1200,1600 "file://$(realpath "$report")" \
  >/dev/null 2>&1 || true
[ -s "$out" ] || { echo "FAIL: chromium wrote no screenshot"; exit 1; }

# Every chart must have drawn its series: count the pixels of each series
# colour in the screenshot (a legend swatch alone is a few dozen pixels).
python3 - "$out" <<'PY'
"""Check an `oms-cli load --report` screenshot: every chart drew its lines.

Decodes the PNG (8-bit RGB/RGBA, not interlaced: what Chromium writes) with
the standard library only and counts the pixels of each series colour. A
legend swatch is a few dozen pixels; a drawn series is hundreds.
"""
import struct, sys, zlib

SERIES = {  # colour -> series drawn in it (oms-cli/src/commands/load/report.rs)
    (0x25, 0x63, 0xeb): "p50 / requests/s / client",
    (0x16, 0xa3, 0x4a): "p90",
    (0xea, 0x58, 0x0c): "p99",
    (0xdc, 0x26, 0x26): "max / errors/s",
    (0x93, 0x33, 0xea): "server (X-Response-Time)",
}
MIN_PIXELS = 250

data = open(sys.argv[1], "rb").read()
if data[:8] != b"\x89PNG\r\n\x1a\n":
    sys.exit("FAIL: not a PNG")
pos, idat = 8, bytearray()
while pos < len(data):
    length, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + length]
    if kind == b"IHDR":
        width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
    elif kind == b"IDAT":
        idat += body
    pos += 12 + length
if depth != 8 or ctype not in (2, 6) or interlace:
    sys.exit(f"FAIL: unexpected PNG format depth={depth} colour type={ctype}")
bpp = 3 if ctype == 2 else 4
raw = zlib.decompress(bytes(idat))
stride = width * bpp
prev = bytearray(stride)
counts = dict.fromkeys(SERIES, 0)
for y in range(height):
    f = raw[y * (stride + 1)]
    line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    if f == 1:
        for i in range(bpp, stride):
            line[i] = (line[i] + line[i - bpp]) & 0xFF
    elif f == 2:
        for i in range(stride):
            line[i] = (line[i] + prev[i]) & 0xFF
    elif f == 3:
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
    elif f == 4:
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            pr = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            line[i] = (line[i] + pr) & 0xFF
    for x in range(0, stride, bpp):
        px = (line[x], line[x + 1], line[x + 2])
        if px in counts:
            counts[px] += 1
    prev = line
print(f"screenshot {width}x{height}")
bad = False
for colour, n in counts.items():
    ok = n >= MIN_PIXELS
    bad |= not ok
    print(f"  #{bytes(colour).hex()} {SERIES[colour]:<28} {n:>6} px {'ok' if ok else 'MISSING'}")
if bad:
    sys.exit(f"FAIL: a chart series drew fewer than {MIN_PIXELS} pixels")
PY
echo "screenshot: $out"
