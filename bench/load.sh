#!/usr/bin/env bash
# bench/load.sh: one load generator, in one run, against
#   direct     the demo upstream itself (`frontgate demo-upstream`),
#   nginx      nginx as a plain reverse proxy to it, one worker,
#   frontgate  frontgate in front of it, one worker thread,
# over plain HTTP/1.1 keep-alive (throughput, p50, p99, CPU per request), at 256 keep-alive
# connections (resident memory), and over TLS with one new connection per request (full
# handshakes per second, same ECDSA P-256 certificate for both, session resumption off on
# both so that wrk, which resumes whatever it can, pays for a full handshake every time).
# Prints the tables and the
# frontgate/nginx ratios against the targets in docs/performance.md, which explains the method.
#
# Usage: bench/load.sh [--quick]
#   --quick            3 s per measurement, one round (a smoke run for CI)
# Environment:
#   DURATION=6s        length of each measurement (wrk -d)
#   ROUNDS=5           rounds of the plain and TLS comparisons; nginx and frontgate take turns
#                      going first. The targets are judged on the median over rounds of the
#                      frontgate/nginx ratio measured in the same round (the machine's speed
#                      drifts between rounds); the summary also shows each target's best round
#                      and the median CPU per request
#   CONNECTIONS=64     keep-alive connections for the plain comparison
#   RSS_CONNECTIONS=256  connections held while resident memory is sampled
#   TLS_CONNECTIONS=32 concurrent connections in the handshake test
#   TLS_RESUME=0       1 leaves session resumption on in both servers (their defaults): wrk then
#                      resumes TLS 1.3 sessions, and section 3 measures resumed handshakes
#   QUIET_WAIT=60      before each measurement, wait up to this many seconds for the machine to be
#                      idle (other processes below QUIET_MAX % of one CPU); 0 to not wait
#   QUIET_MAX=15
#   PIN=1              pin processes to CPUs (load side on CPU 0, proxy under test on CPU 1)
#   FRONTGATE_BIN=...  use this binary instead of building one
#   KEEP_TMP=1         keep the temp dir (configs, logs) for inspection
# Everything is on loopback; every process started here is stopped on exit.
set -euo pipefail

QUICK=0
for arg in "$@"; do
    case "$arg" in
        --quick) QUICK=1 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "load.sh: unknown argument: $arg (try --help)" >&2; exit 2 ;;
    esac
done
if [[ $QUICK == 1 ]]; then
    DURATION=${DURATION:-3s}
    ROUNDS=${ROUNDS:-1}
    QUIET_WAIT=${QUIET_WAIT:-0}
fi
QUIET_WAIT=${QUIET_WAIT:-60}
QUIET_MAX=${QUIET_MAX:-15}
DURATION=${DURATION:-6s}
ROUNDS=${ROUNDS:-5}
CONNECTIONS=${CONNECTIONS:-64}
RSS_CONNECTIONS=${RSS_CONNECTIONS:-256}
TLS_CONNECTIONS=${TLS_CONNECTIONS:-32}
TLS_RESUME=${TLS_RESUME:-0}
if [[ $TLS_RESUME == 1 ]]; then
    NG_RESUME="" FG_RESUME="" HANDSHAKES="resumed where the client can"
else
    NG_RESUME="ssl_session_tickets off; ssl_session_cache off;" FG_RESUME="tls_session_resumption = false" HANDSHAKES="full"
fi
PIN=${PIN:-1}
WARMUP=${WARMUP:-1s}

NAME=load
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

bench_need nginx:nginx wrk:wrk openssl:openssl curl:curl taskset:util-linux
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
bench_binary
bench_tmp
ulimit -n 65536 2>/dev/null || ulimit -n 4096 2>/dev/null || true

NCPU=$(nproc)
if [[ $PIN == 1 && $NCPU -ge 2 ]]; then
    LOAD_CPU=(taskset -c 0)   # wrk and the upstream
    PROXY_CPU=(taskset -c 1)  # the proxy under test (nginx or frontgate), alone on its core
else
    PIN=0; LOAD_CPU=(); PROXY_CPU=()
fi

# Waits (bounded) until something accepts on 127.0.0.1:$1; $2 = pid that must stay alive, $3 = its log.
wait_port() {
    local port=$1 pid=$2 log=$3
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || { cat "$log" >&2 || true; die "process $pid exited before listening on $port (log above)"; }
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    cat "$log" >&2 || true
    die "nothing listening on 127.0.0.1:$port after 10 s (log above)"
}

# Checks that a URL answers 200 with the demo's item list.
check_url() {
    local url=$1 body
    body=$(curl -sS -k --max-time 5 -w '\n%{http_code}' "$url") || die "curl $url failed"
    [[ ${body##*$'\n'} == 200 && $body == *'"items"'* ]] || die "$url did not answer 200 with the item list: $body"
}

# ---------------------------------------------------------------- start the upstream
UP_PORT=$(bench_free_port)
"${LOAD_CPU[@]}" "$BIN" demo-upstream --listen "127.0.0.1:$UP_PORT" >"$TMP/upstream.log" 2>&1 &
UP_PID=$!; PIDS+=("$UP_PID")
wait_port "$UP_PORT" "$UP_PID" "$TMP/upstream.log"
UP=127.0.0.1:$UP_PORT

# ---------------------------------------------------------------- certificate (shared by both)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$TMP/key.pem" -out "$TMP/cert.pem" >/dev/null 2>&1 || die "openssl could not make a certificate"

# ---------------------------------------------------------------- nginx
NG_PORT=$(bench_free_port); NG_TLS_PORT=$(bench_free_port); NG_STATUS_PORT=$(bench_free_port)
mkdir -p "$TMP/nginx/logs"
cat >"$TMP/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/logs/error.log warn;
worker_rlimit_nofile 65536;
events { worker_connections 4096; }
http {
    access_log off;
    # hyper (frontgate) puts no limit on requests per client connection; nginx's default is 1000.
    keepalive_requests 1000000;
    keepalive_timeout 65s;
    client_body_temp_path $TMP/nginx/client_body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    upstream demo {
        server $UP;
        keepalive 256;
    }
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host \$host;
    proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Proto \$scheme;
    server {
        listen 127.0.0.1:$NG_PORT;
        location / { proxy_pass http://demo; }
    }
    server {
        listen 127.0.0.1:$NG_TLS_PORT ssl;
        ssl_certificate $TMP/cert.pem;
        ssl_certificate_key $TMP/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        $NG_RESUME
        location / { proxy_pass http://demo; }
    }
    server {
        listen 127.0.0.1:$NG_STATUS_PORT;
        location / { stub_status; }
    }
}
EOF
"$NGINX" -t -q -p "$TMP/nginx" -e "$TMP/nginx/logs/error.log" -c "$TMP/nginx/nginx.conf" >"$TMP/nginx/logs/test.log" 2>&1 \
    || { cat "$TMP/nginx/logs/test.log" >&2; die "nginx rejected its config"; }
"${PROXY_CPU[@]}" "$NGINX" -p "$TMP/nginx" -e "$TMP/nginx/logs/error.log" -c "$TMP/nginx/nginx.conf" >"$TMP/nginx/logs/stdout.log" 2>&1 &
NG_PID=$!; PIDS+=("$NG_PID")
wait_port "$NG_PORT" "$NG_PID" "$TMP/nginx/logs/error.log"
wait_port "$NG_TLS_PORT" "$NG_PID" "$TMP/nginx/logs/error.log"
NG_WORKER=""
for _ in $(seq 1 50); do
    NG_WORKER=$(ps -o pid= --ppid "$NG_PID" | tr -d ' ' | awk 'NR == 1')
    [[ -n $NG_WORKER ]] && break
    sleep 0.1
done
[[ -n $NG_WORKER ]] || die "cannot find the nginx worker process"

# ---------------------------------------------------------------- frontgate (plain, and TLS)
start_frontgate() { # name port admin_port tls_line [server_line]
    local name=$1 port=$2 admin=$3 tls=$4 extra=${5:-} dir=$TMP/$1
    mkdir -p "$dir"
    cat >"$dir/frontgate.toml" <<EOF
data_dir = "$dir/data"

[server]
listen = "127.0.0.1:$port"
tls = $tls
workers = 1
$extra

[upstream]
url = "http://$UP"

[admin]
listen = "127.0.0.1:$admin"

[log]
level = "warn"
access_log = false

[[routes]]
match = "GET /api/items"
EOF
    "$BIN" check -c "$dir/frontgate.toml" >"$dir/check.log" 2>&1 || { cat "$dir/check.log" >&2; die "frontgate rejected $dir/frontgate.toml"; }
    "${PROXY_CPU[@]}" "$BIN" serve -c "$dir/frontgate.toml" >"$dir/frontgate.log" 2>&1 &
    STARTED_PID=$!
    PIDS+=("$STARTED_PID")
    wait_port "$port" "$STARTED_PID" "$dir/frontgate.log"
}
FG_PORT=$(bench_free_port); FG_ADMIN=$(bench_free_port)
start_frontgate fg-plain "$FG_PORT" "$FG_ADMIN" '"off"'
FG_PID=$STARTED_PID
FG_TLS_PORT=$(bench_free_port); FG_TLS_ADMIN=$(bench_free_port)
start_frontgate fg-tls "$FG_TLS_PORT" "$FG_TLS_ADMIN" "{ cert = \"$TMP/cert.pem\", key = \"$TMP/key.pem\" }" "$FG_RESUME"
FG_TLS_PID=$STARTED_PID

check_url "http://$UP/api/items"
check_url "http://127.0.0.1:$NG_PORT/api/items"
check_url "http://127.0.0.1:$FG_PORT/api/items"
check_url "https://127.0.0.1:$NG_TLS_PORT/api/items"
check_url "https://127.0.0.1:$FG_TLS_PORT/api/items"

# ---------------------------------------------------------------- measuring helpers
CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() { # utime+stime of the given pids, in clock ticks
    local total=0 pid line rest
    for pid in "$@"; do
        line=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        rest=${line##*) }
        # fields after "(comm) ": state is field 3; utime, stime are fields 14, 15
        read -r -a f <<<"$rest"
        total=$((total + f[11] + f[12]))
    done
    echo "$total"
}
sys_ticks() { # stime alone of the given pids, in clock ticks (the kernel's share of cpu_ticks)
    local total=0 pid line rest
    for pid in "$@"; do
        line=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        rest=${line##*) }
        read -r -a f <<<"$rest"
        total=$((total + f[12]))
    done
    echo "$total"
}
core_busy() { # "busy total" jiffies of cpu$1 from /proc/stat
    awk -v c="cpu$1" '$1 == c { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t }' /proc/stat
}
machine_busy() { # "busy total" jiffies over all CPUs
    awk '$1 == "cpu" { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t }' /proc/stat
}
# Waits (bounded by QUIET_WAIT) until the machine's CPUs are idle but for QUIET_MAX % of one CPU:
# the machine is shared, and a compile running beside a measurement skews it.
NOISY_STARTS=0
wait_quiet() {
    local a b busy deadline=$((SECONDS + QUIET_WAIT))
    while :; do
        read -r -a a <<<"$(machine_busy)"; sleep 0.5; read -r -a b <<<"$(machine_busy)"
        busy=$(( (b[0] - a[0]) * 100 * NCPU / (b[1] - a[1] + 1) ))
        ((busy <= QUIET_MAX)) && return 0
        if ((SECONDS >= deadline)); then
            ((QUIET_WAIT == 0)) || echo "   (machine still busy at ${busy}% of a CPU after ${QUIET_WAIT}s; measuring anyway)" >&2
            NOISY_STARTS=$((NOISY_STARTS + 1))
            return 0
        fi
        sleep 2
    done
}
children_ms() { # CPU time (user+sys, ms) of this shell's finished children (call it in this shell)
    times >"$TMP/times"
    tail -n1 "$TMP/times" | awk '{ t = 0; for (i = 1; i <= 2; i++) { split($i, p, "m"); sub(/s$/, "", p[2]); t += p[1] * 60000 + p[2] * 1000 } printf "%d", t }'
}
rss_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
to_ms() { # wrk duration ("812.00us", "1.23ms", "1.05s", "2.00m") -> ms
    awk -v d="$1" 'BEGIN {
        if (d ~ /us$/) { sub(/us$/, "", d); printf "%.3f", d / 1000 }
        else if (d ~ /ms$/) { sub(/ms$/, "", d); printf "%.3f", d }
        else if (d ~ /m$/) { sub(/m$/, "", d); printf "%.3f", d * 60000 }
        else if (d ~ /s$/) { sub(/s$/, "", d); printf "%.3f", d * 1000 }
        else printf "nan" }'
}
div() { awk -v a="$1" -v b="$2" -v f="${3:-%.2f}" 'BEGIN { if (b == 0) print "nan"; else printf f, a / b }'; }

# run_wrk NAME URL CONNS "PROXY PIDS" [extra wrk args...]
# If COUNTER names a command printing a server-side connection count, R_CONNS is its increase
# over the measured run (the warm-up excluded).
COUNTER=""
# Sets: R_RPS R_P50 R_P99 R_REQS R_ERR R_PCPU (proxy CPU %) R_PUS (proxy CPU us/request, of
#       which R_PSYS in the kernel)
#       R_UCPU (upstream CPU %) R_C0 R_C1 (per-core busy %, whole machine)
run_wrk() {
    local name=$1 url=$2 conns=$3 ppids=$4
    shift 4
    local out=$TMP/wrk-$name-$RANDOM.txt
    wait_quiet
    "${LOAD_CPU[@]}" wrk -t1 -c"$conns" -d"$WARMUP" "$@" "$url" >/dev/null 2>&1 || true
    local p0 u0 s0 c0a c1a t0 t1 p1 u1 s1 c0b c1b secs w0 w1 m0 m1
    local k0=0 k1=0
    [[ -z $COUNTER ]] || k0=$($COUNTER)
    p0=$(cpu_ticks $ppids); u0=$(cpu_ticks "$UP_PID"); s0=$(sys_ticks $ppids)
    read -r -a c0a <<<"$(core_busy 0)"; read -r -a c1a <<<"$(core_busy 1)"
    read -r -a m0 <<<"$(machine_busy)"
    children_ms >"$TMP/w0"
    t0=$(date +%s%N)
    "${LOAD_CPU[@]}" wrk -t1 -c"$conns" -d"$DURATION" --latency "$@" "$url" >"$out" 2>&1 || { cat "$out" >&2; die "wrk failed against $url"; }
    t1=$(date +%s%N)
    children_ms >"$TMP/w1"
    w0=$(cat "$TMP/w0"); w1=$(cat "$TMP/w1")
    read -r -a m1 <<<"$(machine_busy)"
    p1=$(cpu_ticks $ppids); u1=$(cpu_ticks "$UP_PID"); s1=$(sys_ticks $ppids)
    [[ -z $COUNTER ]] || k1=$($COUNTER)
    R_CONNS=$((k1 - k0))
    read -r -a c0b <<<"$(core_busy 0)"; read -r -a c1b <<<"$(core_busy 1)"
    secs=$(div $((t1 - t0)) 1000000000 %.3f)
    R_RPS=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$out")
    R_REQS=$(awk '/requests in/ { print $1 }' "$out")
    R_P50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$out")")
    R_P99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")
    R_ERR=$(awk '/Non-2xx/ { n += $NF } /Socket errors/ { gsub(/,/, ""); n += $4 + $6 + $8 + $10 } END { print n + 0 }' "$out")
    [[ -n $R_RPS && -n $R_REQS ]] || { cat "$out" >&2; die "could not read wrk's output for $name"; }
    R_PCPU=$(div "$(( (p1 - p0) * 100 ))" "$(awk -v s="$secs" -v t="$CLK_TCK" 'BEGIN { print s * t }')" %.0f)
    R_PUS=$(div "$(( (p1 - p0) * 1000000 / CLK_TCK ))" "$R_REQS" %.1f)
    R_PSYS=$(div "$(( (s1 - s0) * 1000000 / CLK_TCK ))" "$R_REQS" %.1f)
    R_UCPU=$(div "$(( (u1 - u0) * 100 ))" "$(awk -v s="$secs" -v t="$CLK_TCK" 'BEGIN { print s * t }')" %.0f)
    R_C0=$(div "$(( (c0b[0] - c0a[0]) * 100 ))" "$(( c0b[1] - c0a[1] ))" %.0f)
    R_C1=$(div "$(( (c1b[0] - c1a[0]) * 100 ))" "$(( c1b[1] - c1a[1] ))" %.0f)
    [[ -n ${c1a[1]:-} ]] || R_C1=-
    R_WCPU=$(div "$(( (w1 - w0) * 100 ))" "$(awk -v s="$secs" 'BEGIN { print s * 1000 }')" %.0f)
    # Everything else the machine ran meanwhile, in % of one CPU (our proxy counts unless it is
    # the upstream itself, which is already in upstr%).
    local proxy_pct=$R_PCPU
    [[ $ppids == "$UP_PID" ]] && proxy_pct=0
    R_OTHER=$(awk -v b="$(( m1[0] - m0[0] ))" -v t="$(( m1[1] - m0[1] ))" -v n="$NCPU" -v p="$proxy_pct" -v u="$R_UCPU" -v w="$R_WCPU" \
        'BEGIN { o = b * 100 * n / t - p - u - w; if (o < 0) o = 0; printf "%.0f", o }')
}

ROW_FMT="%-10s %9s %8s %8s %7s %10s %7s %6s %6s %6s %6s %7s\n"
row_header() { printf "$ROW_FMT" target "req/s" "p50 ms" "p99 ms" "proxy%" "proxy us/r" "upstr%" "wrk%" "other%" "cpu0%" "cpu1%" "errors"; }
row() { printf "$ROW_FMT" "$1" "$R_RPS" "$R_P50" "$R_P99" "${2:-$R_PCPU}" "${3:-$R_PUS}" "$R_UCPU" "$R_WCPU" "$R_OTHER" "$R_C0" "$R_C1" "$R_ERR"; }

# The best round of a target (highest req/s: the one least disturbed by other work on a shared
# machine): prints its "rps p50 p99 pus err".
best_of() { sort -nr -k1,1 "$1" | awk 'NR == 1'; }
# The machine's speed drifts from one minute to the next, so the two proxies take turns going
# first (odd rounds nginx, even rounds frontgate) and are compared round by round.
in_turn() { # round first_command second_command
    if (($1 % 2)); then "$2"; "$3"; else "$3"; "$2"; fi
}
# Same-round ratios frontgate/nginx of column $3 (files $1 = frontgate, $2 = nginx, one line per
# round): prints "median min max held rounds", held = rounds whose ratio meets "$5 $4" (>= or <=).
paired() {
    paste -d' ' "$1" "$2" | awk -v c="$3" -v t="$4" -v op="$5" -v n="$(awk 'END { print NF }' "$1")" '{
        r = $c / $(n + c); print r, ((op == ">=") ? (r >= t) : (r <= t)) }' |
        sort -n | awk '{ a[NR] = $1; h += $2 } END {
            m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
            printf "%.2f %.2f %.2f %d %d", m, a[1], a[NR], h, NR }'
}
# "1.01x (0.93-1.09x, target held in 3 of 5 rounds)" from paired's output.
paired_text() {
    local m lo hi held n
    read -r m lo hi held n <<<"$1"
    echo "${m}x (${lo}-${hi}x, target held in $held of $n rounds)"
}
# A target's verdict from the median same-round ratio; "within noise" when the rounds disagree.
verdict() { # "paired output" target op
    local m lo hi held n
    read -r m lo hi held n <<<"$1"
    local v
    v=$(awk -v v="$m" -v t="$2" -v op="$3" 'BEGIN { ok = (op == ">=") ? (v >= t) : (v <= t); print ok ? "met" : "NOT met" }')
    if ((held > 0 && held < n)); then v="$v (by the median; the rounds disagree: within this run's noise)"; fi
    echo "$v"
}
# The median of the proxy's CPU per request over all rounds (column 4).
median_pus() { awk -v c="${2:-4}" '{ print $c }' "$1" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

echo
echo "frontgate load comparison  $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "machine: $NCPU CPUs ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "versions: $("$BIN" --version), $("$NGINX" -v 2>&1 | sed 's/^nginx version: //'), $(wrk -v 2>&1 | awk 'NR == 1' | awk '{ print "wrk " $2 }'), $(openssl version | awk '{ print $1 " " $2 }')"
if [[ $PIN == 1 ]]; then
    echo "pinning: wrk + upstream on CPU 0, the proxy under test (nginx worker / frontgate) on CPU 1"
else
    echo "pinning: none"
fi
echo "columns: proxy%, upstr%, wrk% = CPU used by the proxy under test, the upstream and wrk, in % of one CPU;"
echo "         proxy us/r = the proxy's CPU time per request; other% = CPU used by anything else on the"
echo "         machine meanwhile (noise); cpu0%, cpu1% = how busy each core was; errors = wrk's non-2xx + socket errors"
echo "upstream: frontgate demo-upstream at $UP (GET /api/items, $(curl -s "http://$UP/api/items" | wc -c) byte JSON body)"

# ---------------------------------------------------------------- 1. plain HTTP/1.1 keep-alive
echo
echo "1) plain HTTP/1.1 keep-alive: wrk -t1 -c$CONNECTIONS -d$DURATION --latency, GET /api/items, $ROUNDS round(s)"
row_header
: >"$TMP/r-direct"; : >"$TMP/r-nginx"; : >"$TMP/r-frontgate"
plain_nginx() {
    run_wrk nginx "http://127.0.0.1:$NG_PORT/api/items" "$CONNECTIONS" "$NG_PID $NG_WORKER"
    row "nginx"
    echo "$R_RPS $R_P50 $R_P99 $R_PUS $R_ERR $R_PSYS" >>"$TMP/r-nginx"
}
plain_frontgate() {
    run_wrk frontgate "http://127.0.0.1:$FG_PORT/api/items" "$CONNECTIONS" "$FG_PID"
    row "frontgate"
    echo "$R_RPS $R_P50 $R_P99 $R_PUS $R_ERR $R_PSYS" >>"$TMP/r-frontgate"
}
for round in $(seq 1 "$ROUNDS"); do
    run_wrk direct "http://$UP/api/items" "$CONNECTIONS" "$UP_PID"
    row "direct" "-" "-"
    echo "$R_RPS $R_P50 $R_P99 - $R_ERR" >>"$TMP/r-direct"
    in_turn "$round" plain_nginx plain_frontgate
done
read -r D_RPS D_P50 D_P99 _ _ <<<"$(best_of "$TMP/r-direct")"
read -r N_RPS N_P50 N_P99 _ _ <<<"$(best_of "$TMP/r-nginx")"
read -r F_RPS F_P50 F_P99 _ _ <<<"$(best_of "$TMP/r-frontgate")"
N_PUS=$(median_pus "$TMP/r-nginx"); F_PUS=$(median_pus "$TMP/r-frontgate")
echo
echo "summary (req/s, p50, p99: best round; CPU/request: median over rounds; capacity = 1 s / CPU per request,"
echo "the rate the proxy could serve with its core to itself):"
printf "  %-10s %9s %9s %9s %14s %10s\n" "" "req/s" "p50 ms" "p99 ms" "CPU us/request" "capacity"
printf "  %-10s %9s %9s %9s %14s %10s\n" direct "$D_RPS" "$D_P50" "$D_P99" "-" "-"
printf "  %-10s %9s %9s %9s %14s %10s\n" nginx "$N_RPS" "$N_P50" "$N_P99" "$N_PUS" "$(div 1000000 "$N_PUS" %.0f)"
printf "  %-10s %9s %9s %9s %14s %10s\n" frontgate "$F_RPS" "$F_P50" "$F_P99" "$F_PUS" "$(div 1000000 "$F_PUS" %.0f)"
echo "ratios:"
echo "  frontgate/nginx, best rounds: throughput $(div "$F_RPS" "$N_RPS")x (target >= 1.00)   p99 $(div "$F_P99" "$N_P99")x (target <= 1.20)   p50 $(div "$F_P50" "$N_P50")x   CPU/request $(div "$F_PUS" "$N_PUS")x   capacity $(div "$N_PUS" "$F_PUS")x"
P_RPS=$(paired "$TMP/r-frontgate" "$TMP/r-nginx" 1 1.0 ">=")
P_P99=$(paired "$TMP/r-frontgate" "$TMP/r-nginx" 3 1.2 "<=")
echo "  same round, median (range):  throughput $(paired_text "$P_RPS")"
echo "                               p99 $(paired_text "$P_P99")"
echo "  frontgate/direct  throughput $(div "$F_RPS" "$D_RPS")x   p99 $(div "$F_P99" "$D_P99")x"
echo "  nginx/direct      throughput $(div "$N_RPS" "$D_RPS")x   p99 $(div "$N_P99" "$D_P99")x"
N_SYS=$(median_pus "$TMP/r-nginx" 6); F_SYS=$(median_pus "$TMP/r-frontgate" 6)
echo "where the CPU goes (us/request, median; kernel = the process's system time: loopback TCP both ways):"
echo "  nginx      kernel $N_SYS   user $(awk -v a="$N_PUS" -v b="$N_SYS" 'BEGIN { printf "%.1f", a - b }')"
echo "  frontgate  kernel $F_SYS   user $(awk -v a="$F_PUS" -v b="$F_SYS" 'BEGIN { printf "%.1f", a - b }')"

# ---------------------------------------------------------------- 2. memory at 256 connections
# run_rss NAME URL "PIDS": holds RSS_CONNECTIONS keep-alive connections for DURATION and samples
# the summed VmRSS of PIDS every 0.25 s; sets S_MAX (KiB) and the run_wrk figures.
run_rss() {
    local name=$1 url=$2 pids=$3 cur pid sampler
    (
        m=0
        while :; do
            cur=0
            for pid in $pids; do cur=$((cur + $(rss_kib "$pid" VmRSS || echo 0))); done
            ((cur > m)) && m=$cur && echo "$m" >"$TMP/rss-$name"
            sleep 0.25
        done
    ) &
    sampler=$!
    run_wrk "$name" "$url" "$RSS_CONNECTIONS" "$pids"
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
    S_MAX=$(cat "$TMP/rss-$name" 2>/dev/null || echo 0)
}
echo
echo "2) resident memory while wrk holds $RSS_CONNECTIONS keep-alive connections (wrk -t1 -c$RSS_CONNECTIONS -d$DURATION)"
printf "%-10s %9s %8s %8s %7s %10s %7s %6s %6s %7s %10s\n" target "req/s" "p50 ms" "p99 ms" "proxy%" "proxy us/r" "upstr%" "wrk%" "other%" "errors" "max VmRSS"
rss_row() { printf "%-10s %9s %8s %8s %7s %10s %7s %6s %6s %7s %6.1f MiB\n" "$1" "$R_RPS" "$R_P50" "$R_P99" "$R_PCPU" "$R_PUS" "$R_UCPU" "$R_WCPU" "$R_OTHER" "$R_ERR" "$(div "$2" 1024 %.1f)"; }
FG_IDLE=$(rss_kib "$FG_PID" VmRSS)
run_rss nginx-rss "http://127.0.0.1:$NG_PORT/api/items" "$NG_WORKER"
NG_W_RSS=$S_MAX
rss_row nginx "$NG_W_RSS"
NG_M_RSS=$(rss_kib "$NG_PID" VmRSS)
run_rss frontgate-rss "http://127.0.0.1:$FG_PORT/api/items" "$FG_PID"
FG_RSS=$S_MAX
rss_row frontgate "$FG_RSS"
echo "  nginx: VmRSS of the worker; the master process holds another $(div "$NG_M_RSS" 1024 %.1f) MiB"
echo "  frontgate VmRSS before the run $(div "$FG_IDLE" 1024 %.1f) MiB, peak since start (VmHWM) $(div "$(rss_kib "$FG_PID" VmHWM)" 1024 %.1f) MiB"
echo "  frontgate max VmRSS $(div "$FG_RSS" 1024 %.1f) MiB (target <= 30 MiB): $(awk -v r="$FG_RSS" 'BEGIN { print (r <= 30 * 1024) ? "met" : "NOT met" }')"

# ---------------------------------------------------------------- 3. TLS, one new connection per request
nginx_accepts() { curl -s "http://127.0.0.1:$NG_STATUS_PORT/" | awk 'NR == 3 { print $1 }'; }
fg_connections() { curl -s "http://127.0.0.1:$FG_TLS_ADMIN/metrics" | awk '$1 == "frontgate_connections_total" { printf "%d", $2 }'; }
echo
# How many of five reconnections each server lets a client resume (openssl s_client keeps its
# session between them, as wrk does): 0 of 5 when resumption is off.
resumed() { openssl s_client -connect "127.0.0.1:$1" -reconnect </dev/null 2>/dev/null | grep -c '^Reused' || true; }
echo "3) TLS $HANDSHAKES handshakes: wrk -t1 -c$TLS_CONNECTIONS -d$DURATION -H 'Connection: close' over https (a new TLS connection per request; same ECDSA P-256 certificate), $ROUNDS round(s)"
echo "   reconnections resumed (openssl s_client -reconnect): nginx $(resumed "$NG_TLS_PORT") of 5, frontgate $(resumed "$FG_TLS_PORT") of 5"
TLS_FMT="%-10s %11s %8s %8s %7s %11s %7s %6s %6s %6s %6s %9s\n"
printf "$TLS_FMT" target "handshake/s" "p50 ms" "p99 ms" "proxy%" "proxy us/hs" "upstr%" "wrk%" "other%" "cpu0%" "cpu1%" "conns/req"
: >"$TMP/t-nginx"; : >"$TMP/t-frontgate"
tls_nginx() {
    COUNTER=nginx_accepts
    run_wrk nginx-tls "https://127.0.0.1:$NG_TLS_PORT/api/items" "$TLS_CONNECTIONS" "$NG_PID $NG_WORKER" -H "Connection: close"
    printf "$TLS_FMT" nginx "$R_RPS" "$R_P50" "$R_P99" "$R_PCPU" "$R_PUS" "$R_UCPU" "$R_WCPU" "$R_OTHER" "$R_C0" "$R_C1" "$(div "$R_CONNS" "$R_REQS")"
    echo "$R_RPS $R_P50 $R_P99 $R_PUS $R_ERR" >>"$TMP/t-nginx"
    COUNTER=""
}
tls_frontgate() {
    COUNTER=fg_connections
    run_wrk frontgate-tls "https://127.0.0.1:$FG_TLS_PORT/api/items" "$TLS_CONNECTIONS" "$FG_TLS_PID" -H "Connection: close"
    printf "$TLS_FMT" frontgate "$R_RPS" "$R_P50" "$R_P99" "$R_PCPU" "$R_PUS" "$R_UCPU" "$R_WCPU" "$R_OTHER" "$R_C0" "$R_C1" "$(div "$R_CONNS" "$R_REQS")"
    echo "$R_RPS $R_P50 $R_P99 $R_PUS $R_ERR" >>"$TMP/t-frontgate"
    COUNTER=""
}
for round in $(seq 1 "$ROUNDS"); do
    in_turn "$round" tls_nginx tls_frontgate
done
echo "  (conns/req: connections the server accepted during the measured run over the requests wrk"
echo "   completed; 1.00 means every request paid for a handshake of its own, $HANDSHAKES)"
read -r TN_RPS _ TN_P99 _ _ <<<"$(best_of "$TMP/t-nginx")"
read -r TF_RPS _ TF_P99 _ _ <<<"$(best_of "$TMP/t-frontgate")"
TN_PUS=$(median_pus "$TMP/t-nginx"); TF_PUS=$(median_pus "$TMP/t-frontgate")
echo "summary: best round nginx $TN_RPS handshakes/s, frontgate $TF_RPS handshakes/s;"
echo "         median CPU per handshake (incl. the proxied request) nginx $TN_PUS us, frontgate $TF_PUS us"
echo "ratios:"
P_TLS=$(paired "$TMP/t-frontgate" "$TMP/t-nginx" 1 1.0 ">=")
echo "  same round, median (range):  handshake rate $(paired_text "$P_TLS")"
echo "  frontgate/nginx, best rounds: handshake rate $(div "$TF_RPS" "$TN_RPS")x (target >= 1.00)   p99 $(div "$TF_P99" "$TN_P99")x   CPU/handshake $(div "$TF_PUS" "$TN_PUS")x   capacity $(div "$TN_PUS" "$TF_PUS")x"
echo "  (when wrk's core is saturated, cpu0% = 100, the rate measures the client as much as the server:"
echo "   the capacity ratio, from each server's own CPU per handshake, is the comparison that holds then)"

# ---------------------------------------------------------------- summary
echo
echo "targets (issue):"
pass() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN { ok = (op == ">=") ? (v >= t) : (v <= t); print ok ? "met" : "NOT met" }'; }
echo "  (ratios: the median over rounds of frontgate/nginx measured in the same round)"
T3=$(div "$FG_RSS" 1024 %.1f)
printf "  %-44s %10s  %s\n" "plain throughput frontgate/nginx >= 1.0" "${P_RPS%% *}x" "$(verdict "$P_RPS" 1.0 ">=")"
printf "  %-44s %10s  %s\n" "plain p99 frontgate/nginx <= 1.2" "${P_P99%% *}x" "$(verdict "$P_P99" 1.2 "<=")"
printf "  %-44s %10s  %s\n" "RSS at $RSS_CONNECTIONS keep-alive connections <= 30 MiB" "${T3} MiB" "$(pass "$T3" 30 "<=")"
printf "  %-44s %10s  %s\n" "TLS new-handshake rate frontgate/nginx >= 1.0" "${P_TLS%% *}x" "$(verdict "$P_TLS" 1.0 ">=")"
((NOISY_STARTS == 0)) || echo "note: $NOISY_STARTS measurement(s) started while other processes were busy (see other%)"
echo "(benchmarks report, they do not gate: this script exits 0 whatever the figures)"
