#!/usr/bin/env bash
# bench/api_keys_load.sh: gateway throughput with the API-key check against the same gateway's
# plain proxying, in one run: one frontgate (one worker, plain HTTP) in front of the demo
# upstream, with an open route (GET /api/hello) and an API-key route (GET /api/whoami, the key
# cached after the first request). wrk alternates between the two for ROUNDS rounds; the
# summary prints each side's best round and the ratio (target: keyed >= 0.9 x plain).
#
# Usage: bench/api_keys_load.sh      Environment: DURATION=5s ROUNDS=3 CONNECTIONS=32
#        FRONTGATE_BIN=... (else a release build)
set -euo pipefail
NAME=api_keys_load
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-32}

bench_need wrk:wrk curl:curl
bench_binary
bench_tmp

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
UP_PORT=$(free_port); GW_PORT=$(free_port); ADMIN_PORT=$(free_port)
"$BIN" demo-upstream --listen "127.0.0.1:$UP_PORT" >"$TMP/upstream.log" 2>&1 &
PIDS+=($!)
cat >"$TMP/frontgate.toml" <<TOML
data_dir = "$TMP/data"
[server]
listen = "127.0.0.1:$GW_PORT"
tls = "off"
workers = 1
[admin]
listen = "127.0.0.1:$ADMIN_PORT"
[log]
level = "warn"
[upstream]
url = "http://127.0.0.1:$UP_PORT"
[api_keys]
hash_secret = "bench-secret-0123456789abcdef0123456789"
cache_ttl = "5m"
[[routes]]
match = "GET /api/hello"
[[routes]]
match = "GET /api/whoami"
auth = "api_key"
scopes = ["bench"]
TOML
KEY=$("$BIN" keys -c "$TMP/frontgate.toml" create --name bench --scopes bench | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
"$BIN" serve -c "$TMP/frontgate.toml" >"$TMP/frontgate.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$GW_PORT/api/hello" >/dev/null && break; sleep 0.1; done
[[ $(curl -s -o /dev/null -w '%{http_code}' -H "X-API-Key: $KEY" "http://127.0.0.1:$GW_PORT/api/whoami") == 200 ]] || die "the keyed route refused the key"

rps() { wrk -t1 -c"$CONNECTIONS" -d"$DURATION" "$@" | awk '/Requests\/sec/ {print $2}'; }
best_plain=0; best_keyed=0
for round in $(seq 1 "$ROUNDS"); do
    p=$(rps "http://127.0.0.1:$GW_PORT/api/hello")
    k=$(rps -H "X-API-Key: $KEY" "http://127.0.0.1:$GW_PORT/api/whoami")
    echo "round $round: plain $p req/s, api key $k req/s"
    best_plain=$(python3 -c "print(max($best_plain, $p))"); best_keyed=$(python3 -c "print(max($best_keyed, $k))")
done
python3 -c "print(f'best: plain $best_plain req/s, api key $best_keyed req/s, ratio {$best_keyed/$best_plain:.3f} (target >= 0.9)')"
