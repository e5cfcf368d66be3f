#!/usr/bin/env bash
# bench/auth_load.sh: gateway throughput with each credential check against the same gateway's
# plain proxying, in one run: one frontgate (one worker, plain HTTP) in front of the demo
# upstream, with two routes to two equally small upstream JSON handlers:
#   plain    GET /api/hello                     no check
#   api_key  GET /api/whoami   X-API-Key        the key cached after the first request
#   jwt      GET /api/whoami   Bearer ES256/RS256 JWT from a static key set, cached after the first
# wrk runs plain, api_key, jwt in turn for ROUNDS rounds, one after the other (so the noise of a
# shared machine hits all of them alike); the summary prints each side's best round, its ratio
# to plain, and the median of the per-round ratios (targets: api_key >= 0.9, jwt >= 0.9).
#
# Usage: bench/auth_load.sh      Environment: DURATION=5s ROUNDS=3 CONNECTIONS=32 PIN=1
#        FRONTGATE_BIN=... (else a release build), JWT_ALG=ES256 (or RS256)
# Everything is on loopback; every process started here is stopped on exit.
set -euo pipefail
NAME=auth_load
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-32}
PIN=${PIN:-1}
JWT_ALG=${JWT_ALG:-ES256}

bench_need wrk:wrk curl:curl openssl:openssl taskset:util-linux
bench_binary
bench_tmp

# wrk and the upstream on CPU 0, the gateway on CPU 1 (as in bench/load.sh).
on_cpu() { if [[ $PIN == 1 && $(nproc) -ge 2 ]]; then taskset -c "$1" "${@:2}"; else "${@:2}"; fi; }
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }

# A signing key, its public JWKS, and one token valid for an hour.
case "$JWT_ALG" in
    ES256) openssl ecparam -name prime256v1 -genkey -noout -out "$TMP/jwt.key" 2>/dev/null ;;
    RS256) openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$TMP/jwt.key" 2>/dev/null ;;
    *) die "JWT_ALG must be ES256 or RS256" ;;
esac
python3 - "$TMP" "$JWT_ALG" <<'PY'
import base64, json, subprocess, sys
tmp, alg = sys.argv[1], sys.argv[2]
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
text = subprocess.run(["openssl", "pkey", "-in", f"{tmp}/jwt.key", "-pubout", "-outform", "DER"], capture_output=True, check=True).stdout
if alg == "ES256":
    point = text[-65:]  # uncompressed P-256 point: 04 || x || y
    jwk = {"kty": "EC", "crv": "P-256", "x": b64(point[1:33]), "y": b64(point[33:])}
else:
    out = subprocess.run(["openssl", "rsa", "-in", f"{tmp}/jwt.key", "-noout", "-modulus"], capture_output=True, check=True, text=True).stdout
    n = bytes.fromhex(out.strip().split("=", 1)[1])
    jwk = {"kty": "RSA", "n": b64(n), "e": "AQAB"}
jwk.update({"kid": "bench", "use": "sig", "alg": alg})
json.dump({"keys": [jwk]}, open(f"{tmp}/jwks.json", "w"))
PY
NOW=$(date +%s)
HEADER=$(printf '{"alg":"%s","typ":"at+jwt","kid":"bench"}' "$JWT_ALG" | b64url)
PAYLOAD=$(printf '{"iss":"https://bench.idp","aud":"api","sub":"bench-user","scope":"bench","iat":%d,"exp":%d}' "$NOW" $((NOW + 3600)) | b64url)
printf '%s.%s' "$HEADER" "$PAYLOAD" >"$TMP/signing-input"
if [[ $JWT_ALG == ES256 ]]; then
    # JWS wants r || s (32 bytes each), openssl gives DER: convert.
    SIG=$(openssl dgst -sha256 -sign "$TMP/jwt.key" "$TMP/signing-input" | python3 -c '
import sys, base64
d = sys.stdin.buffer.read()
i = 2 if d[1] < 0x80 else 3
def int_at(i):
    n = d[i + 1]; v = d[i + 2:i + 2 + n]; return v[-32:].rjust(32, b"\0"), i + 2 + n
r, i = int_at(i); s, _ = int_at(i)
print(base64.urlsafe_b64encode(r + s).rstrip(b"=").decode())')
else
    SIG=$(openssl dgst -sha256 -sign "$TMP/jwt.key" "$TMP/signing-input" | b64url)
fi
TOKEN="$HEADER.$PAYLOAD.$SIG"

UP_PORT=$(bench_free_port); GW_PORT=$(bench_free_port); ADMIN_PORT=$(bench_free_port)
on_cpu 0 "$BIN" demo-upstream --listen "127.0.0.1:$UP_PORT" >"$TMP/upstream.log" 2>&1 &
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
[[jwt.issuers]]
issuer = "https://bench.idp"
audiences = ["api"]
jwks_file = "$TMP/jwks.json"
algorithms = ["$JWT_ALG"]
[[routes]]
match = "GET /api/hello"
[[routes]]
match = "GET /api/whoami"
auth = ["api_key", "jwt"]
scopes = ["bench"]
TOML
KEY=$("$BIN" keys -c "$TMP/frontgate.toml" create --name bench --scopes bench | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
on_cpu 1 "$BIN" serve -c "$TMP/frontgate.toml" >"$TMP/frontgate.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$GW_PORT/api/hello" >/dev/null && break; sleep 0.1; done
check() {
    local code
    code=$(curl -s -o "$TMP/answer" -w '%{http_code}' "$@")
    [[ $code == 200 ]] || die "$* answered $code: $(cat "$TMP/answer")"
}
check -H "X-API-Key: $KEY" "http://127.0.0.1:$GW_PORT/api/whoami"
check -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$GW_PORT/api/whoami"

rps() { on_cpu 0 wrk -t1 -c"$CONNECTIONS" -d"$DURATION" "$@" | awk '/Requests\/sec/ {print $2}'; }
best_plain=0; best_key=0; best_jwt=0; key_ratios=(); jwt_ratios=()
for round in $(seq 1 "$ROUNDS"); do
    p=$(rps "http://127.0.0.1:$GW_PORT/api/hello")
    k=$(rps -H "X-API-Key: $KEY" "http://127.0.0.1:$GW_PORT/api/whoami")
    j=$(rps -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$GW_PORT/api/whoami")
    echo "round $round: plain $p req/s, api key $k req/s, jwt ($JWT_ALG, cached) $j req/s"
    best_plain=$(python3 -c "print(max($best_plain, $p))")
    best_key=$(python3 -c "print(max($best_key, $k))")
    best_jwt=$(python3 -c "print(max($best_jwt, $j))")
    key_ratios+=("$(python3 -c "print($k / $p)")"); jwt_ratios+=("$(python3 -c "print($j / $p)")")
done
python3 -c "
import statistics
p, k, j = $best_plain, $best_key, $best_jwt
kr, jr = [${key_ratios[*]/%/,}], [${jwt_ratios[*]/%/,}]
print(f'best of $ROUNDS: plain {p:.0f} req/s, api key {k:.0f} req/s ({k/p:.3f} x plain), jwt {j:.0f} req/s ({j/p:.3f} x plain)')
print(f'median of the per-round ratios: api key {statistics.median(kr):.3f} x plain, jwt {statistics.median(jr):.3f} x plain (targets >= 0.9)')"
