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

# Identity-provider fixture (tests/jwt.rs, OIDC suites): Node.js 20.19+ and the pinned
# oidc-provider from crates/frontgate/tests/fixtures/oidc/package-lock.json. `npm ci` only runs
# when the lock file changed since the last install (the stamp is its SHA-256, which the test
# harness in tests/common/oidc.rs checks too).
if ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a==20&&b>=19)?0:1)' 2>/dev/null; then
  say "installing Node.js"
  apt-get update -qq && apt-get install -y -qq nodejs npm
fi
oidc_fixture=crates/frontgate/tests/fixtures/oidc
oidc_stamp="$(sha256sum "$oidc_fixture/package-lock.json" | cut -d' ' -f1)"
if [ "$(cat "$oidc_fixture/node_modules/.frontgate-installed" 2>/dev/null)" != "$oidc_stamp" ]; then
  say "npm ci (oidc-provider fixture)"
  (cd "$oidc_fixture" && npm ci --no-audit --no-fund --loglevel=error)
  printf '%s' "$oidc_stamp" > "$oidc_fixture/node_modules/.frontgate-installed"
fi

# Browser-session suite (tests/sessions.rs): headless Chromium from Debian and the pinned
# playwright-core from crates/frontgate/tests/browser/package-lock.json (npm ci only when the
# lock file changed; same stamp as tests/common/sessions.rs checks).
if ! command -v chromium >/dev/null; then
  say "installing chromium"
  apt-get update -qq && apt-get install -y -qq chromium
fi
browser_dir=crates/frontgate/tests/browser
browser_stamp="$(sha256sum "$browser_dir/package-lock.json" | cut -d' ' -f1)"
if [ "$(cat "$browser_dir/node_modules/.frontgate-installed" 2>/dev/null)" != "$browser_stamp" ]; then
  say "npm ci (browser driver)"
  (cd "$browser_dir" && npm ci --no-audit --no-fund --loglevel=error)
  printf '%s' "$browser_stamp" > "$browser_dir/node_modules/.frontgate-installed"
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
