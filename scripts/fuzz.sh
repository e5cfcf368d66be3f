#!/usr/bin/env bash
# Time-boxed fuzzing of every cargo-fuzz target in fuzz/ (`cargo fuzz list`: normalize_path,
# config_parse, pow_payload, openapi_body, h1_request_head, multipart, upstream_response_head,
# cookies, jwt_dpop, api_key, openapi_spec).
#
#   scripts/fuzz.sh                       every target, 30 s each
#   FUZZ_SECONDS=300 scripts/fuzz.sh      longer runs
#   FUZZ_SECONDS=0 scripts/fuzz.sh        build the targets only
#   scripts/fuzz.sh config_parse          one target
#
# Only a stable toolchain is needed: cargo-fuzz passes nightly-only rustc flags
# (-Zsanitizer=address, sanitizer coverage), which RUSTC_BOOTSTRAP=1 unlocks on stable.
# Builds go to ${CARGO_TARGET_DIR:-target}/fuzz, and the corpus and crash artifacts live beside
# them, so the checkout stays clean. Corpora start from the committed seeds in fuzz/seeds/<target>/
# and keep growing between runs. Exits non-zero if any target finds a crash; the crashing input
# is printed, with the command that reproduces it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

secs="${FUZZ_SECONDS:-30}"
case "$secs" in ''|*[!0-9]*) echo "FUZZ_SECONDS must be a whole number of seconds, not '$secs'" >&2; exit 2;; esac
base="${CARGO_TARGET_DIR:-target}"
case "$base" in /*) ;; *) base="$root/$base";; esac
work="$base/fuzz"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cd fuzz && cargo fuzz list)
fi

echo "== building fuzz targets: ${targets[*]}"
for t in "${targets[@]}"; do
  cargo fuzz build --target-dir "$work" "$t"
done
[ "$secs" = 0 ] && exit 0

failed=()
for t in "${targets[@]}"; do
  corpus="$work/corpus/$t"
  artifacts="$work/artifacts/$t"
  mkdir -p "$corpus" "$artifacts"
  # Seed the corpus (never overwrite what earlier runs found).
  if [ -d "fuzz/seeds/$t" ]; then
    cp -n "fuzz/seeds/$t"/* "$corpus"/ 2>/dev/null || true
  fi
  args=(-max_total_time="$secs" -timeout=10 -print_final_stats=1 -artifact_prefix="$artifacts/")
  [ -f "fuzz/$t.dict" ] && args+=(-dict="fuzz/$t.dict")
  log="$work/$t.log"
  echo "== fuzzing $t for ${secs}s (corpus $corpus)"
  if cargo fuzz run --target-dir "$work" "$t" "$corpus" -- "${args[@]}" >"$log" 2>&1; then
    runs=$(grep -Eo '^Done [0-9]+ runs in [0-9]+ second' "$log" | tail -1 || true)
    rate=$(grep -Eo 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -Eo '[0-9]+$' | tail -1 || true)
    echo "   $t: ok — ${runs:-?} (${rate:-?} exec/s), corpus $(ls "$corpus" | wc -l) inputs"
  else
    failed+=("$t")
    echo "   $t: FAILED — full output in $log; the failure:" >&2
    # The panic message (or sanitizer report) and libFuzzer's summary.
    grep -A3 -E "panicked at|^==[0-9]+==ERROR|ERROR: libFuzzer|^SUMMARY:" "$log" | head -40 >&2 || tail -40 "$log" >&2
    for a in "$artifacts"/*; do
      [ -f "$a" ] || continue
      echo "   reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run --target-dir $work $t $a" >&2
    done
  fi
  # cargo-fuzz always creates fuzz/artifacts/<target>; ours go to $artifacts, so drop it if empty.
  rmdir "fuzz/artifacts/$t" fuzz/artifacts 2>/dev/null || true
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing found crashes in: ${failed[*]}" >&2
  exit 1
fi
echo "== fuzzing: no crashes"
