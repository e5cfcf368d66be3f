#!/usr/bin/env bash
# Runs every test frontgate has, on a fresh machine: installs what the tests need, then runs
# the unit and integration suites (real binary, real sockets), then time-boxed fuzzing.
#
#   scripts/test.sh            everything
#   FUZZ_SECONDS=0 scripts/test.sh   skip fuzzing
#
# Environment: CARGO_TARGET_DIR (shared build dir), FUZZ_SECONDS (per fuzz target, default 20).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n== %s\n' "$*"; }

need_apt=()
command -v cc >/dev/null || need_apt+=(build-essential)
command -v curl >/dev/null || need_apt+=(curl)
command -v openssl >/dev/null || need_apt+=(openssl)
if [ ${#need_apt[@]} -gt 0 ]; then
  say "installing Debian packages: ${need_apt[*]}"
  apt-get update -qq && apt-get install -y -qq "${need_apt[@]}"
fi
command -v cargo >/dev/null || { echo "cargo is required (Rust 1.95+)"; exit 1; }

# PostgreSQL and Redis back the multi-node features; start them when present but stopped.
# (The gateway-core suite does not need them yet; later suites do.)
if command -v pg_ctlcluster >/dev/null && ! (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
fi
if command -v redis-server >/dev/null && ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no || true
fi

# Bot defence (docs/bot-defence.md): the JavaScript peers the proof of work is tested against,
# altcha-lib, the altcha widget and playwright-core (pinned in tests/js/pow/package-lock.json),
# and Debian's headless Chromium. Skipped when already installed.
command -v node >/dev/null && command -v npm >/dev/null || { apt-get update -qq && apt-get install -y -qq nodejs npm; }
command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium; }
if [ ! -d tests/js/pow/node_modules/altcha-lib ] || [ tests/js/pow/package-lock.json -nt tests/js/pow/node_modules ]; then
  say "npm ci (tests/js/pow)"
  (cd tests/js/pow && npm ci --no-audit --no-fund --cache /var/tmp/frontgate-npm-cache)
fi

say "build"
cargo build --workspace --tests --locked

say "unit and integration tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi
# Doc tests (nextest does not run them).
cargo test --workspace --doc --locked

if [ "${FUZZ_SECONDS:-20}" != "0" ] && [ -x scripts/fuzz.sh ]; then
  say "fuzzing (${FUZZ_SECONDS:-20}s per target)"
  FUZZ_SECONDS="${FUZZ_SECONDS:-20}" scripts/fuzz.sh
fi
say "all tests passed"
