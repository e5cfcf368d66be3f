#!/usr/bin/env bash
# bench/attacks.sh: runs the standing adversarial suites (crates/frontgate/tests/it/attacks_*.rs:
# slow attacks with slowhttptest, HTTP/2 abuse written frame by frame, floods at the gateway's
# own endpoints) for longer than the test command does, and prints their figures as the tables
# of docs/security.md "Standing adversarial suites".
#
# Usage: bench/attacks.sh [FILTER]
#   FILTER             a nextest name regex, default `^attacks_` (e.g. `^attacks_h2::`)
# Environment:
#   SCALE=5            how many times the test command's volume each attack sends or lasts
#                      (FRONTGATE_ATTACK_SCALE; the test command runs them at 1)
#   POW_N=16384        scrypt N of the challenge floods (FRONTGATE_ATTACK_POW_N; the test command
#                      uses 1024, since a debug build takes over a second per derivation at 16384)
#   PROFILE=debug      `release` measures a release build (slow to build on two cores); the
#                      figures say which they were taken on
#   FRONTGATE_TEST_BIN=path  the gateways under attack run this binary (e.g. one built with
#                      `cargo build --release --bin frontgate`) while the test harness stays a
#                      debug build: release figures without a release build of the tests
#   KEEP=              a file to keep the raw ATTACK-FIGURE lines in
set -euo pipefail
NAME=attacks
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
FILTER=${1:-^attacks_}
SCALE=${SCALE:-5}
PROFILE=${PROFILE:-debug}
LABEL=$PROFILE
[[ -n ${FRONTGATE_TEST_BIN:-} ]] && LABEL="$PROFILE harness, gateway binary $(basename "$(dirname "$FRONTGATE_TEST_BIN")")/$(basename "$FRONTGATE_TEST_BIN")"
command -v slowhttptest >/dev/null || { echo "$NAME: needs slowhttptest (apt-get install slowhttptest)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "$NAME: needs python3" >&2; exit 1; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
profile_args=()
[[ $PROFILE == release ]] && profile_args=(--cargo-profile release)
echo "== $NAME: suites matching '$FILTER', scale $SCALE, $LABEL" >&2
# One test at a time: their CPU and memory figures are the frontgate process's, and a
# neighbour's load would still skew its latency figures.
FRONTGATE_ATTACK_SCALE=$SCALE FRONTGATE_ATTACK_POW_N=${POW_N:-16384} cargo nextest run -p frontgate --test it --locked "${profile_args[@]}" \
    -j 1 --no-capture --no-fail-fast -E "test(/$FILTER/)" 2>&1 | tee /dev/stderr | grep '^ATTACK-FIGURE ' >"$out" || true
[[ -n ${KEEP:-} ]] && cp "$out" "$KEEP"
python3 - "$out" "$SCALE" "$LABEL" <<'EOF'
import json, sys
rows = [json.loads(l.split(' ', 1)[1]) for l in open(sys.argv[1])]
scale, profile = sys.argv[2], sys.argv[3]
print(f"\nFigures from bench/attacks.sh (SCALE={scale}, {profile} build)\n")
def g(d, *ks):
    for k in ks:
        d = (d or {}).get(k) if isinstance(d, dict) else None
    return d
slow = [r for r in rows if r["suite"] == "slow"]
if slow:
    print("| Attack | Normal client p50 / p99 idle (ms), h1 · h2 | Under attack | Errors | Gateway sockets peak / after the bound | slowhttptest's exit | frontgate CPU s | RSS before → after (MiB) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in slow:
        f = r["figures"]; i = f["normal_client_idle"]; a = f["normal_client_under_attack"]
        print(f"| {r['case']} | {i['h1_p50_ms']} / {i['h1_p99_ms']} · {i['h2_p50_ms']} / {i['h2_p99_ms']} "
              f"| {a['h1_p50_ms']} / {a['h1_p99_ms']} · {a['h2_p50_ms']} / {a['h2_p99_ms']} "
              f"(p99 ×{a['h1_p99_ms']/max(i['h1_p99_ms'],1e-9):.1f} · ×{a['h2_p99_ms']/max(i['h2_p99_ms'],1e-9):.1f}) "
              f"| {a['errors']} | {f['gateway_sockets_peak']} / {f['gateway_sockets_after_bound'] if f['gateway_sockets_after_bound'] is not None else 'none left'} "
              f"| {f['slowhttptest_exit']} | {f['cpu_secs']} "
              f"| {f['rss_before_kib']/1024:.1f} → {f['rss_after_kib']/1024:.1f} |")
    print()
h2 = [r for r in rows if r["suite"] == "h2"]
if h2:
    print("| HTTP/2 abuse | What the attacker sent | Outcome | frontgate CPU s | RSS before → after (MiB) | Normal client p99 h1 · h2 (ms), errors |")
    print("|---|---|---|---|---|---|")
    for r in h2:
        f = r["figures"]; a = f["attacker"]; n = f["normal_client"]
        sent = ", ".join(f"{k} {v}" for k, v in a.items() if k in ("streams_sent", "bytes_sent", "frames_sent", "streams_opened", "streams", "attacker_reads"))
        outcome = ", ".join(f"{k} {v}" for k, v in a.items() if k not in ("streams_sent", "bytes_sent", "frames_sent", "streams_opened", "streams", "attacker_reads"))
        print(f"| {r['case']} | {sent} | {outcome} | {f['cpu_secs']} | {f['rss_before_kib']/1024:.1f} → {f['rss_after_kib']/1024:.1f} "
              f"| {n['h1_p99_ms']} · {n['h2_p99_ms']}, {n['errors']} |")
    print()
fl = [r for r in rows if r["suite"] == "floods"]
if fl:
    print("| Flood | Requests | Statuses | CPU s per 10 000 | × baseline | RSS growth KiB per 10 000 | Notes |")
    print("|---|---|---|---|---|---|---|")
    for r in fl:
        f = r["figures"]
        parts = [("", f.get("cost", f))] if "first_half" not in f else [(" (1st half)", f["first_half"]), (" (2nd half)", f["second_half"])]
        for suffix, c in parts:
            notes = "" if r["case"] == "baseline_404" else ", ".join(f"{k} {v}" for k, v in f.items() if k not in ("cost", "statuses", "first_half", "second_half"))
            st = f.get("statuses")
            print(f"| {r['case']}{suffix} | {c['requests']} | {json.dumps(st) if st is not None else ''} | {c['cpu_secs_per_10k']} "
                  f"| {c.get('cpu_ratio_to_baseline') or ''} | {c['rss_growth_kib_per_10k']} | {notes} |")
EOF
