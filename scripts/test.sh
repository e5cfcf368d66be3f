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
# tests/it/tls.rs audits the default TLS settings with testssl.sh (Debian installs it as `testssl`).
command -v testssl >/dev/null || need_apt+=(testssl.sh)
# tests/it/attacks_slow.rs runs slowloris, slow body, slow read and range attacks with slowhttptest.
command -v slowhttptest >/dev/null || need_apt+=(slowhttptest)
# Shared state (API keys, issue 3): a real PostgreSQL and Redis on loopback, and python3-venv
# for schemathesis against the admin API.
command -v pg_ctlcluster >/dev/null || need_apt+=(postgresql)
command -v redis-server >/dev/null || need_apt+=(redis-server)
python3 -m venv --help >/dev/null 2>&1 || need_apt+=(python3 python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  say "installing Debian packages: ${need_apt[*]}"
  apt-get update -qq && apt-get install -y -qq "${need_apt[@]}"
fi
command -v cargo >/dev/null || { echo "cargo is required (Rust 1.95+)"; exit 1; }

# PostgreSQL and Redis back the store and multi-node tests: start them when stopped. Tests
# connect as user postgres over loopback without a password, so allow exactly that.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if ! port_open 5432; then
  pg_version="$(ls /etc/postgresql | sort -V | tail -1)"
  hba="/etc/postgresql/$pg_version/main/pg_hba.conf"
  if ! grep -q '^host all postgres 127.0.0.1/32 trust' "$hba"; then
    sed -i '1i host all postgres 127.0.0.1/32 trust\nhost all postgres ::1/128 trust' "$hba"
  fi
  pg_ctlcluster --skip-systemctl-redirect "$pg_version" main start
fi
port_open 6379 || redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
for _ in $(seq 1 60); do port_open 5432 && port_open 6379 && break; sleep 0.5; done
port_open 5432 || { echo "PostgreSQL did not start on 127.0.0.1:5432"; exit 1; }
port_open 6379 || { echo "Redis did not start on 127.0.0.1:6379"; exit 1; }

# Identity-provider fixture (tests/it/jwt.rs, OIDC suites): Node.js 20.19+ and the pinned
# oidc-provider from crates/frontgate/tests/fixtures/oidc/package-lock.json. `npm ci` only runs
# when the lock file changed since the last install (the stamp is its SHA-256, which the test
# harness in tests/it/common/node.rs checks too).
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

# schemathesis (PyPI, every package pinned in scripts/schemathesis-requirements.txt) fuzzes the
# demo API through frontgate (tests/it/openapi.rs) and the admin API (tests/it/admin_api.rs). A venv under /var/tmp, reused while the pins
# are unchanged.
ST_VENV=/var/tmp/frontgate-schemathesis
if ! cmp -s scripts/schemathesis-requirements.txt "$ST_VENV/requirements.txt" 2>/dev/null; then
  say "installing schemathesis into $ST_VENV"
  python3 -m venv --help >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq python3-venv python3-pip; }
  rm -rf "$ST_VENV"
  python3 -m venv "$ST_VENV"
  "$ST_VENV/bin/pip" install -q --disable-pip-version-check -r scripts/schemathesis-requirements.txt
  cp scripts/schemathesis-requirements.txt "$ST_VENV/requirements.txt"
fi
export FRONTGATE_SCHEMATHESIS="$ST_VENV/bin/st"

# Stock Python HTTP clients for the refusal matrix (tests/it/refusals.rs): requests (HTTP/1.1)
# and httpx with http2=True (HTTP/2), pinned in scripts/http-clients-requirements.txt. A venv
# under /var/tmp, reused while the pins are unchanged.
HC_VENV=/var/tmp/frontgate-http-clients
if ! cmp -s scripts/http-clients-requirements.txt "$HC_VENV/requirements.txt" 2>/dev/null; then
  say "installing requests and httpx into $HC_VENV"
  python3 -m venv --help >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq python3-venv python3-pip; }
  rm -rf "$HC_VENV"
  python3 -m venv "$HC_VENV"
  "$HC_VENV/bin/pip" install -q --disable-pip-version-check -r scripts/http-clients-requirements.txt
  cp scripts/http-clients-requirements.txt "$HC_VENV/requirements.txt"
fi
export FRONTGATE_HTTP_CLIENTS_PYTHON="$HC_VENV/bin/python"

# Bot defence (docs/bot-defence.md): the JavaScript peers the proof of work is tested against,
# altcha-lib, the altcha widget and playwright-core (pinned in tests/js/pow/package-lock.json),
# and Debian's headless Chromium. Skipped when already installed.
command -v node >/dev/null && command -v npm >/dev/null || { apt-get update -qq && apt-get install -y -qq nodejs npm; }
command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium; }
if [ ! -d tests/js/pow/node_modules/altcha-lib ] || [ tests/js/pow/package-lock.json -nt tests/js/pow/node_modules ]; then
  say "npm ci (tests/js/pow)"
  (cd tests/js/pow && npm ci --no-audit --no-fund --cache /var/tmp/frontgate-npm-cache)
fi

# Browser suites (tests/it/sessions.rs, console.rs, ...): headless Chromium from Debian and the
# pinned playwright-core and axe-core from crates/frontgate/tests/browser/package-lock.json
# (npm ci only when the lock file changed; same stamp as tests/it/common/node.rs checks).
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

# Local-development suite (tests/it/dev_server.rs): the example's pinned Vite dev server from
# examples/local-dev/web/package-lock.json (npm ci only when the lock file changed; same stamp
# as the test checks).
vite_dir=examples/local-dev/web
vite_stamp="$(sha256sum "$vite_dir/package-lock.json" | cut -d' ' -f1)"
if [ "$(cat "$vite_dir/node_modules/.frontgate-installed" 2>/dev/null)" != "$vite_stamp" ]; then
  say "npm ci (Vite, local-dev example)"
  (cd "$vite_dir" && npm ci --no-audit --no-fund --loglevel=error)
  printf '%s' "$vite_stamp" > "$vite_dir/node_modules/.frontgate-installed"
fi

# React + Node example (tests/it/react_node.rs, docs/tutorial.md): its Express backend and
# demo IdP (examples/react-node/package-lock.json) and its React app
# (examples/react-node/web/package-lock.json), npm ci only when a lock file changed (same stamp
# as the test checks), then the app's production build, which frontgate serves in the test.
for dir in examples/react-node examples/react-node/web; do
  stamp="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
  if [ "$(cat "$dir/node_modules/.frontgate-installed" 2>/dev/null)" != "$stamp" ]; then
    say "npm ci ($dir)"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    printf '%s' "$stamp" > "$dir/node_modules/.frontgate-installed"
  fi
done
say "build the React app (examples/react-node/web)"
(cd examples/react-node/web && npm run build --silent)

say "format"
cargo fmt --all --check
(cd fuzz && cargo fmt --check)

say "build"
cargo build --workspace --tests --locked

say "lints"
# Lints: clippy with warnings as errors (its check of the dependencies takes a minute or two once).
cargo clippy --workspace --all-targets --locked -- -D warnings
# frontgate-core as an embedder without the SQL store compiles it (cargo unifies features across
# the workspace, so the build above always has `sql`).
cargo clippy -p frontgate-core --no-default-features --all-targets --locked -- -D warnings

say "unit and integration tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
  cargo nextest run -p frontgate-core --no-default-features --lib --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
  cargo test -p frontgate-core --no-default-features --lib --locked --no-fail-fast
fi
# Doc tests (nextest does not run them), and the API docs build without a broken link.
cargo test --workspace --doc --locked
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked

if [ "${FUZZ_SECONDS:-20}" != "0" ] && [ -x scripts/fuzz.sh ]; then
  say "fuzzing (${FUZZ_SECONDS:-20}s per target)"
  FUZZ_SECONDS="${FUZZ_SECONDS:-20}" scripts/fuzz.sh
fi
say "all tests passed"
