#!/usr/bin/env bash
# bench/instructions.sh: user-space instructions per proxied request, counted by valgrind's
# callgrind. Unlike req/s on a shared machine, the count barely moves with load from other
# processes, so it compares two builds reliably (docs/performance.md).
#
# Usage: bench/instructions.sh
# Environment: FRONTGATE_BIN=... (skip the build), PORT_BASE=23100 (uses PORT_BASE+1..3 on
#   127.0.0.1), SECONDS_LOAD=10, KEEP_TMP=1 keeps the callgrind output for callgrind_annotate.
set -euo pipefail
NAME=instructions
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bench_need valgrind:valgrind wrk:wrk curl:curl
bench_binary
bench_tmp
BASE=${PORT_BASE:-23100}; UP=$((BASE + 1)); GW=$((BASE + 2)); ADMIN=$((BASE + 3))
cat > "$TMP/fg.toml" <<EOC
data_dir = "$TMP/data"
[server]
listen = "127.0.0.1:$GW"
tls = "off"
workers = 1
[admin]
listen = "127.0.0.1:$ADMIN"
[upstream]
url = "http://127.0.0.1:$UP"
[log]
access_log = false
[[routes]]
match = "GET /api/items"
EOC
"$BIN" demo-upstream --listen "127.0.0.1:$UP" >/dev/null 2>&1 & PIDS+=($!)
# Counting starts with the load (callgrind_control below), so start-up is not in the figure.
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$TMP/callgrind.out" "$BIN" serve -c "$TMP/fg.toml" >"$TMP/vg.log" 2>&1 & VG=$!
PIDS+=("$VG")
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$ADMIN/health" >/dev/null && break; sleep 0.2; done
# One request first, so one-time work (the first upstream connection, lazy statics) is not
# counted either.
curl -sf "http://127.0.0.1:$GW/api/items" >/dev/null || die "the gateway does not answer; see $TMP/vg.log (KEEP_TMP=1)"
callgrind_control -i on "$VG" >/dev/null
wrk -t1 -c8 -d"${SECONDS_LOAD:-10}s" "http://127.0.0.1:$GW/api/items" >/dev/null
callgrind_control -i off "$VG" >/dev/null
N=$(curl -s "http://127.0.0.1:$ADMIN/metrics" | grep 'frontgate_requests_total{route="GET /api/items",decision="forwarded"' | awk '{print $NF}')
kill -INT "$VG"; wait "$VG" 2>/dev/null || true
IR=$(callgrind_annotate "$TMP/callgrind.out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",","",$1); print $1}')
[[ -n $N && $N -gt 0 && -n $IR ]] || die "no measurement (requests=${N:-?}); see $TMP/vg.log (KEEP_TMP=1)"
N=$((N - 1))  # the uncounted first request
echo "requests=$N instructions=$IR instructions/request=$((IR / N))"
[[ ${KEEP_TMP:-0} == 1 ]] && echo "callgrind output: $TMP/callgrind.out" >&2
exit 0
