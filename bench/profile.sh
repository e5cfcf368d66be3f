#!/usr/bin/env bash
# bench/profile.sh: where frontgate's CPU goes on the plain-proxy path. Starts the demo upstream
# and frontgate (one worker, tls off, no access log, route GET /api/items) pinned as in
# bench/load.sh, drives them with wrk, samples frontgate with `perf record` (call graphs from
# DWARF), and prints: the user/kernel split, the top self-time symbols, inclusive shares of the
# main stages, who calls the allocator and memmove, and syscalls per request (strace -c).
#
# Usage: bench/profile.sh
# Environment: DURATION=8 (seconds sampled), CONNECTIONS=64, FREQ=999 (samples/s),
#   TOP=15, FRONTGATE_BIN=... (skip the build), KEEP_TMP=1 (keep perf.data and friends).
set -euo pipefail

DURATION=${DURATION:-8}
CONNECTIONS=${CONNECTIONS:-64}
FREQ=${FREQ:-999}
TOP=${TOP:-15}
NAME=profile
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

bench_need wrk:wrk perf:linux-perf strace:strace python3:python3
bench_binary
bench_tmp

LOAD_CPU=(); PROXY_CPU=()
if [[ $(nproc) -ge 2 ]] && command -v taskset >/dev/null; then LOAD_CPU=(taskset -c 0); PROXY_CPU=(taskset -c 1); fi

wait_port() {
    for _ in $(seq 1 100); do
        kill -0 "$2" 2>/dev/null || { cat "$3" >&2; die "process exited before listening on $1"; }
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    cat "$3" >&2; die "nothing listening on 127.0.0.1:$1 after 10 s"
}

UP_PORT=$(bench_free_port); FG_PORT=$(bench_free_port); FG_ADMIN=$(bench_free_port)
"${LOAD_CPU[@]}" "$BIN" demo-upstream --listen "127.0.0.1:$UP_PORT" >"$TMP/upstream.log" 2>&1 &
UP_PID=$!; PIDS+=("$UP_PID")
wait_port "$UP_PORT" "$UP_PID" "$TMP/upstream.log"
cat >"$TMP/frontgate.toml" <<EOF
data_dir = "$TMP/data"
[server]
listen = "127.0.0.1:$FG_PORT"
tls = "off"
workers = 1
[upstream]
url = "http://127.0.0.1:$UP_PORT"
[admin]
listen = "127.0.0.1:$FG_ADMIN"
[log]
level = "warn"
access_log = false
[[routes]]
match = "GET /api/items"
EOF
"${PROXY_CPU[@]}" "$BIN" serve -c "$TMP/frontgate.toml" >"$TMP/frontgate.log" 2>&1 &
FG_PID=$!; PIDS+=("$FG_PID")
wait_port "$FG_PORT" "$FG_PID" "$TMP/frontgate.log"
URL=http://127.0.0.1:$FG_PORT/api/items
curl -sf "$URL" >/dev/null || die "frontgate does not answer $URL"

wrk_bg() { # seconds -> starts wrk in the background, sets WRK_PID
    "${LOAD_CPU[@]}" wrk -t1 -c"$CONNECTIONS" -d"$1"s --latency "$URL" >"$TMP/wrk.txt" 2>&1 &
    WRK_PID=$!; PIDS+=("$WRK_PID")
}
"${LOAD_CPU[@]}" wrk -t1 -c"$CONNECTIONS" -d1s "$URL" >/dev/null 2>&1 || true

echo "frontgate profile: $("$BIN" --version), wrk -t1 -c$CONNECTIONS, GET /api/items, perf -F $FREQ for ${DURATION}s"
echo "load average $(cut -d' ' -f1-3 /proc/loadavg) (a busy machine skews absolute figures, less so the shares)"

# 1. perf samples with call graphs.
wrk_bg $((DURATION + 2))
sleep 1
t0=$(awk '{ print $14 + $15 }' "/proc/$FG_PID/stat"); w0=$(date +%s%N)
perf record -q -F "$FREQ" --call-graph dwarf,16384 -p "$FG_PID" -o "$TMP/perf.data" -- sleep "$DURATION" >/dev/null 2>&1 \
    || die "perf record failed (perf_event_paranoid? run as root)"
t1=$(awk '{ print $14 + $15 }' "/proc/$FG_PID/stat"); w1=$(date +%s%N)
wait "$WRK_PID" || true
echo "wrk (while sampled): $(awk '/Requests\/sec/ { print $2 " req/s" }' "$TMP/wrk.txt"), p99 $(awk '$1 == "99%" { print $2 }' "$TMP/wrk.txt"); frontgate used $(awk -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v d="$(( (w1 - w0) / 1000000 ))" 'BEGIN { printf "%.0f", t * 100000 / hz / d }')% of a CPU"

echo
echo "== CPU by binary (self time)"
perf report -i "$TMP/perf.data" --no-children --sort dso --stdio -g none 2>/dev/null | grep -E '^ +[0-9]' | awk -v n=6 'NR <= n' || true
echo
echo "== top $TOP symbols by self time"
perf report -i "$TMP/perf.data" --no-children --sort dso,symbol --stdio -g none 2>/dev/null | grep -E '^ +[0-9]' | awk -v n="$TOP" 'NR <= n' | cut -c1-160 || true
perf script -i "$TMP/perf.data" -F ip,sym --no-inline 2>/dev/null >"$TMP/stacks.txt"
python3 - "$TMP/stacks.txt" <<'EOF'
import collections, sys
samples = []
for block in open(sys.argv[1]).read().split('\n\n'):
    frames = [l.strip().split(None, 1)[-1] for l in block.strip().split('\n') if l.strip()]
    if frames:
        samples.append(frames)
n = len(samples) or 1
print("\n== inclusive share of stages (a sample counts for every stage on its stack)")
stages = [
    ("all syscalls", "entry_SYSCALL"),
    ("  sendto/writev (loopback send: also runs the receiver's TCP path)", ("sendto", "writev")),
    ("  recvfrom", "recvfrom"),
    ("  epoll_wait", "epoll_wait"),
    ("frontgate pipeline (Gateway::handle)", "frontgate::pipeline::Gateway::handle"),
    ("  proxy::headers::prepare_request_headers", "prepare_request_headers"),
    ("  RequestIds::next", "RequestIds::next"),
    ("  metrics recording", "metrics::"),
    ("  UpstreamClient (checkout etc.)", "UpstreamClient"),
    ("server::h1: read request head", "server::h1::read_head"),
    ("server::h1: encode response head", "server::h1::encode_head"),
    ("hyper HTTP/1 server (connections handed over)", "hyper::proto::h1"),
    ("upstream: parse response head", "proxy::h1::parse_head"),
    ("tokio timers", "tokio::runtime::time"),
    ("malloc/free/realloc", ("malloc", "_int_free", "cfree", "realloc", "mi_free")),
    ("memmove/memcpy", ("__memmove", "__memcpy")),
]
for label, pat in stages:
    pats = pat if isinstance(pat, tuple) else (pat,)
    k = sum(1 for f in samples if any(p in x for x in f for p in pats))
    print(f"  {100 * k / n:5.1f}%  {label}")
skip = ('__memmove', '__memcpy', '_int_', 'malloc', 'cfree', 'realloc', '_realloc', '__GI', '__libc',
        'alloc::', 'core::', '<alloc', '<core::', '__rust', 'unlink_chunk', 'bytes::bytes_mut::BytesMut::reserve_inner')
for title, leaf in [("allocator (malloc/free)", ("malloc", "_int_malloc", "_int_free", "cfree", "malloc_consolidate", "unlink_chunk", "realloc")),
                    ("memmove", ("__memmove",))]:
    c = collections.Counter()
    total = 0
    for f in samples:
        if not f[0].startswith(leaf):
            continue
        total += 1
        callers = [x for x in f[1:] if not x.startswith(skip)][:2]
        c[' <- '.join(callers) or '?'] += 1
    print(f"\n== who calls the {title}: {100 * total / n:.1f}% of samples, top callers")
    for k, v in c.most_common(8):
        print(f"  {100 * v / n:5.1f}%  {k[:200]}")
EOF

# 2. syscalls per request (strace slows the process down; only the counts matter here).
if command -v strace >/dev/null; then
    reqs() { curl -s "http://127.0.0.1:$FG_ADMIN/metrics" | awk '/^frontgate_requests_total/ { s += $NF } END { printf "%d", s }'; }
    wrk_bg 6
    sleep 1
    r0=$(reqs)
    timeout -s INT 3 strace -c -f -p "$FG_PID" -o "$TMP/strace.txt" >/dev/null 2>&1 || true
    r1=$(reqs)
    wait "$WRK_PID" || true
    echo
    echo "== syscalls per request under strace ($((r1 - r0)) requests counted by frontgate's metrics)"
    awk -v r="$((r1 - r0))" '$NF ~ /^[a-z_0-9]+$/ && $4 ~ /^[0-9]+$/ && r > 0 { printf "  %-14s %6.2f per request\n", $NF, $4 / r }' "$TMP/strace.txt" | sort -k2 -nr | awk -v n=8 'NR <= n'
fi
