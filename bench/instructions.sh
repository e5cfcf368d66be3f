#!/usr/bin/env bash
# bench/instructions.sh: user-space instructions per proxied request, counted by valgrind's
# callgrind. Unlike req/s on a shared machine, the count barely moves with load from other
# processes, so it compares two builds reliably (docs/performance.md).
#
# Usage: bench/instructions.sh
# Environment: FRONTGATE_BIN=... (skip the build), PORT_BASE=23100 (uses PORT_BASE+1..3 on
#   127.0.0.1), SECONDS_LOAD=10, KEEP_TMP=1 keeps the callgrind output for callgrind_annotate,
#   BROWSER=1 sends the fields Chromium sends with a same-origin fetch() (wrk alone sends one),
#   POST=1 sends POST /api/items with a small JSON body instead of GET /api/items.
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
[[routes]]
match = "POST /api/items"
EOC
"$BIN" demo-upstream --listen "127.0.0.1:$UP" >/dev/null 2>&1 & PIDS+=($!)
# Counting starts with the load (callgrind_control below), so start-up is not in the figure.
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$TMP/callgrind.out" "$BIN" serve -c "$TMP/fg.toml" >"$TMP/vg.log" 2>&1 & VG=$!
PIDS+=("$VG")
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$ADMIN/health" >/dev/null && break; sleep 0.2; done
# One request first, so one-time work (the first upstream connection, lazy statics) is not
# counted either.
METHOD=GET LOAD=() FIRST=()
if [[ ${POST:-0} == 1 ]]; then
    METHOD=POST FIRST=(-H 'content-type: application/json' --data-binary '{"name":"bench item"}')
    bench_post_script
    LOAD=(-s "$TMP/post.lua")
fi
curl -sf "${FIRST[@]}" "http://127.0.0.1:$GW/api/items" >/dev/null || die "the gateway does not answer; see $TMP/vg.log (KEEP_TMP=1)"
FIELDS=()
if [[ ${BROWSER:-0} == 1 ]]; then
    # As Chromium 131 sends them for fetch("/api/items") from a page on the same origin.
    for f in 'sec-ch-ua-platform: "Linux"' \
        'user-agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36' \
        'sec-ch-ua: "Chromium";v="131", "Not_A Brand";v="24"' 'sec-ch-ua-mobile: ?0' 'accept: */*' \
        'sec-fetch-site: same-origin' 'sec-fetch-mode: cors' 'sec-fetch-dest: empty' \
        "referer: http://127.0.0.1:$GW/" 'accept-encoding: gzip, deflate, br, zstd' \
        'accept-language: en-US,en;q=0.9' 'priority: u=1, i'; do
        FIELDS+=(-H "$f")
    done
fi
callgrind_control -i on "$VG" >/dev/null
wrk -t1 -c8 -d"${SECONDS_LOAD:-10}s" "${LOAD[@]}" "${FIELDS[@]}" "http://127.0.0.1:$GW/api/items" >/dev/null
callgrind_control -i off "$VG" >/dev/null
N=$(curl -s "http://127.0.0.1:$ADMIN/metrics" | grep "frontgate_requests_total{route=\"$METHOD /api/items\",decision=\"forwarded\"" | awk '{print $NF}')
kill -INT "$VG"; wait "$VG" 2>/dev/null || true
IR=$(callgrind_annotate "$TMP/callgrind.out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",","",$1); print $1}')
[[ -n $N && $N -gt 0 && -n $IR ]] || die "no measurement (requests=${N:-?}); see $TMP/vg.log (KEEP_TMP=1)"
N=$((N - 1))  # the uncounted first request
echo "requests=$N instructions=$IR instructions/request=$((IR / N))"
[[ ${KEEP_TMP:-0} == 1 ]] && echo "callgrind output: $TMP/callgrind.out" >&2
exit 0
