#!/usr/bin/env bash
# bench/ab.sh: CPU per proxied request of two frontgate builds, A and B, and of nginx (N, the
# anchor, configured as in bench/load.sh), measured in turn in one run (the layout of
# bench/load.sh's plain section: wrk and the demo upstream on CPU 0, the proxy alone on CPU 1),
# so the machine's noise hits them all alike. Prints each round and the medians of CPU
# us/request, split into user and kernel time, of req/s and of wrk's p99 latency, and the
# ratios to nginx. A fourth target, M, is the same nginx worker made to send what frontgate
# sends: its response headers (the security headers, a request id, no Server or X-Powered-By)
# and its forwarding fields to the upstream (X-Forwarded-Host, Forwarded, X-Request-Id). It
# tells how much of a gap is the extra bytes, which wrk and the upstream pay for on their
# shared core, rather than the proxy's own work.
#
# Usage: bench/ab.sh A_BINARY B_BINARY
# Environment: ROUNDS=6, DURATION=5s, CONNECTIONS=64, PORT_BASE=23400 (uses +1..+7 on 127.0.0.1),
#   POST=1 sends POST /api/items with a small JSON body (a browser app's write) instead of GET
set -euo pipefail
NAME=ab
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $# == 2 && -x $1 && -x $2 ]] || die "usage: bench/ab.sh A_BINARY B_BINARY (two frontgate executables)"
bench_need nginx:nginx wrk:wrk curl:curl taskset:util-linux
BIN=$1
bench_tmp
cp "$2" "$TMP/frontgate-b"
A=$TMP/frontgate B=$TMP/frontgate-b
ROUNDS=${ROUNDS:-6}; DURATION=${DURATION:-5s}; CONNECTIONS=${CONNECTIONS:-64}
BASE=${PORT_BASE:-23400}; UP=$((BASE + 1))
TICK=$(getconf CLK_TCK)

"$A" demo-upstream --listen "127.0.0.1:$UP" >/dev/null 2>&1 & PIDS+=($!)
taskset -pc 0 "${PIDS[-1]}" >/dev/null
start() { # name binary port admin
    cat > "$TMP/$1.toml" <<EOC
data_dir = "$TMP/data-$1"
[server]
listen = "127.0.0.1:$3"
tls = "off"
workers = 1
[admin]
listen = "127.0.0.1:$4"
[upstream]
url = "http://127.0.0.1:$UP"
[log]
access_log = false
level = "warn"
[[routes]]
match = "GET /api/items"
[[routes]]
match = "POST /api/items"
EOC
    taskset -c 1 "$2" serve -c "$TMP/$1.toml" >"$TMP/$1.log" 2>&1 & PIDS+=($!)
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$3/api/items" >/dev/null && return; sleep 0.1; done
    die "$1 does not answer; see $TMP/$1.log (KEEP_TMP=1)"
}
start a "$A" $((BASE + 2)) $((BASE + 3)); PID_A=${PIDS[-1]}
start b "$B" $((BASE + 4)) $((BASE + 5)); PID_B=${PIDS[-1]}

NGINX=$(command -v nginx || echo /usr/sbin/nginx)
mkdir -p "$TMP/nginx"
cat > "$TMP/nginx/nginx.conf" <<EOC
worker_processes 1;
daemon off;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $TMP/nginx/client_body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    upstream demo { server 127.0.0.1:$UP; keepalive 256; }
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host \$host;
    proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Proto \$scheme;
    server { listen 127.0.0.1:$((BASE + 6)); location / { proxy_pass http://demo; } }
    server {
        listen 127.0.0.1:$((BASE + 7));
        location / {
            proxy_pass http://demo;
            # (proxy_set_header here replaces the http-level list, so it is repeated whole.)
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header X-Forwarded-Host \$host;
            proxy_set_header Forwarded "for=\$remote_addr;host=\$host;proto=\$scheme";
            proxy_set_header X-Request-Id \$request_id;
            proxy_hide_header Server;
            proxy_hide_header X-Powered-By;
            server_tokens off;
            add_header X-Content-Type-Options nosniff always;
            add_header Referrer-Policy strict-origin-when-cross-origin always;
            add_header X-Frame-Options DENY always;
            add_header Permissions-Policy "camera=(), microphone=(), geolocation=(), payment=(), usb=()" always;
            add_header Cross-Origin-Opener-Policy same-origin always;
            add_header Content-Security-Policy "default-src 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'none'" always;
            add_header X-Request-Id \$request_id always;
        }
    }
}
EOC
taskset -c 1 "$NGINX" -p "$TMP/nginx" -e "$TMP/nginx/error.log" -c "$TMP/nginx/nginx.conf" >/dev/null 2>&1 & PIDS+=($!)
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$((BASE + 6))/api/items" >/dev/null && break; sleep 0.1; done
curl -sf -D - -o /dev/null "http://127.0.0.1:$((BASE + 7))/api/items" | grep -qi '^content-security-policy:' \
    || die "the header-matched nginx server (M) does not answer with frontgate's headers"
PID_N=$(ps -o pid= --ppid "${PIDS[-1]}" | tr -d ' ' | awk 'NR == 1')
[[ -n $PID_N ]] || die "nginx did not start; see $TMP/nginx/error.log (KEEP_TMP=1)"

LOAD=()
if [[ ${POST:-0} == 1 ]]; then
    bench_post_script
    LOAD=(-s "$TMP/post.lua")
fi
ticks() { awk '{ print $14, $15 }' "/proc/$1/stat"; } # utime stime
measure() { # name pid port -> appends "us/req user_us kernel_us req/s" to $TMP/name.rows
    local before after out reqs
    read -r u0 s0 < <(ticks "$2")
    out=$(taskset -c 0 wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency "${LOAD[@]}" "http://127.0.0.1:$3/api/items")
    read -r u1 s1 < <(ticks "$2")
    reqs=$(awk '/requests in/ { print $1 }' <<<"$out")
    rps=$(awk '/Requests\/sec/ { print $2 }' <<<"$out")
    p99=$(awk '$1 == "99%" { v = $2; if (v ~ /us$/) v = v / 1000; else if (v ~ /ms$/) v = v + 0; else if (v ~ /s$/) v = v * 1000; print v }' <<<"$out")
    awk -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v n="$reqs" -v t="$TICK" -v r="$rps" -v p="$p99" -v name="$1" \
        'BEGIN { us = 1e6 / t / n; printf "%-2s %9.0f req/s  %6.2f us/req  user %5.2f  kernel %5.2f  p99 %6.2f ms\n", name, r, (u + s) * us, u * us, s * us, p }' \
        | tee -a "$TMP/$1.rows"
}
echo "A: $1"; echo "B: $2"
for i in $(seq 1 "$ROUNDS"); do
    measure A "$PID_A" $((BASE + 2))
    measure B "$PID_B" $((BASE + 4))
    measure N "$PID_N" $((BASE + 6))
    measure M "$PID_N" $((BASE + 7))
done
div() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }
median() { awk -v c="$2" '{ print $c }' "$1" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
for x in A B N M; do
    printf "median %s: %s us/request (user %s, kernel %s), %s req/s, p99 %s ms\n" "$x" "$(median "$TMP/$x.rows" 4)" "$(median "$TMP/$x.rows" 7)" "$(median "$TMP/$x.rows" 9)" "$(median "$TMP/$x.rows" 2)" "$(median "$TMP/$x.rows" 11)"
done
n=$(median "$TMP/N.rows" 4)
for x in A B M; do
    printf "%s/nginx: CPU/request %s, req/s %s, p99 %s\n" "$x" "$(div "$(median "$TMP/$x.rows" 4)" "$n")" "$(div "$(median "$TMP/$x.rows" 2)" "$(median "$TMP/N.rows" 2)")" "$(div "$(median "$TMP/$x.rows" 11)" "$(median "$TMP/N.rows" 11)")"
done
