#!/usr/bin/env bash
# Starts the whole example on this machine: the demo identity provider, the Express API,
# frontgate, and the React app, then prints the URL and the demo user. Ctrl-C stops everything.
#
#   examples/react-node/run.sh        the built app (npm run build), as in production
#   examples/react-node/run.sh dev    the Vite dev server with hot reload, behind frontgate
#
# Needs Node.js 20.19+ with npm, openssl, and frontgate: $FRONTGATE if set, else the
# repository's target/release/frontgate (built here with `cargo build --release` if missing).
# Ports: 8443 (frontgate), 3000 (API), 9400 (IdP), 9901 (frontgate admin), 5173 (Vite, dev).
# State, logs and the generated secrets go to examples/react-node/.run/ (not committed).
set -euo pipefail
cd "$(dirname "$0")"
here="$(pwd)"
mode="${1:-build}"
case "$mode" in build|dev) ;; *) echo "usage: $0 [dev]" >&2; exit 2 ;; esac
run=.run
mkdir -p "$run/data"

# Secrets, made once and kept (sessions and keys survive a restart). In production they come
# from your secret store, into the same environment variables.
if [ ! -f "$run/secrets.env" ]; then
  (umask 077; {
    echo "OIDC_CLIENT_SECRET=$(openssl rand -hex 32)"
    echo "FRONTGATE_SESSION_KEY=$(openssl rand -base64 32)"
    echo "FRONTGATE_KEY_SECRET=$(openssl rand -hex 32)"
    echo "FRONTGATE_POW_SECRET=$(openssl rand -hex 32)"
  } > "$run/secrets.env")
fi
set -a; . "$run/secrets.env"; set +a

# npm ci when a lock file changed since the last install (its SHA-256 is the stamp).
npm_ci() {
  local stamp; stamp="$(sha256sum "$1/package-lock.json" | cut -d' ' -f1)"
  if [ "$(cat "$1/node_modules/.frontgate-installed" 2>/dev/null)" != "$stamp" ]; then
    echo "npm ci in $1"
    (cd "$1" && npm ci --no-audit --no-fund --loglevel=error)
    printf '%s' "$stamp" > "$1/node_modules/.frontgate-installed"
  fi
}
npm_ci .
npm_ci web

frontgate="${FRONTGATE:-}"
if [ -z "$frontgate" ]; then
  target="${CARGO_TARGET_DIR:-$here/../../target}"
  if [ ! -x "$target/release/frontgate" ]; then
    echo "building frontgate (cargo build --release; several minutes the first time)"
    (cd ../.. && cargo build --release -p frontgate)
  fi
  frontgate="$target/release/frontgate"
fi

config=frontgate.toml
if [ "$mode" = dev ]; then
  # The same config with the Vite dev server instead of the built files. It lives in .run/, so
  # its relative paths are rewritten to point back here.
  sed -e 's|^dir = "web/dist".*|dev_server = "http://127.0.0.1:5173"|' \
      -e 's|^data_dir = ".run/data"|data_dir = "data"|' \
      -e 's|^spec = "openapi.yaml"|spec = "../openapi.yaml"|' frontgate.toml > "$run/frontgate.dev.toml"
  config="$run/frontgate.dev.toml"
elif [ ! -f web/dist/index.html ] || [ -n "$(find web/src web/index.html -newer web/dist/index.html 2>/dev/null | head -1)" ]; then
  echo "building the app (npm run build)"
  (cd web && npm run build --silent)
fi
"$frontgate" check -c "$config" >/dev/null

pids=()
stop() { trap - EXIT INT TERM; for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; }
trap stop EXIT INT TERM

API_PORT=3000 node api/server.mjs > "$run/api.log" 2>&1 & pids+=($!)
"$frontgate" serve -c "$config" > "$run/frontgate.log" 2>&1 & pids+=($!)
# frontgate makes its self-signed certificate at start; the IdP trusts it for back-channel logout.
for _ in $(seq 1 100); do [ -f "$run/data/tls/self-signed.crt" ] && break; sleep 0.1; done
NODE_EXTRA_CA_CERTS="$here/$run/data/tls/self-signed.crt" IDP_PORT=9400 APP_ORIGIN=https://localhost:8443 \
  node idp/idp.mjs > "$run/idp.log" 2>&1 & pids+=($!)
if [ "$mode" = dev ]; then
  (cd web && exec npx vite) > "$run/vite.log" 2>&1 & pids+=($!)
fi

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for port in 3000 8443 9400 $([ "$mode" = dev ] && echo 5173); do
  for _ in $(seq 1 100); do up "$port" && break; sleep 0.1; done
  up "$port" || { echo "nothing listens on $port; see $run/*.log" >&2; tail -n 20 "$run"/*.log >&2; exit 1; }
done

cat <<MSG

  The app:    https://localhost:8443
              (a self-signed certificate: accept the browser's warning once; docs/tutorial.md
              shows how to get a trusted local one with mkcert)
  Sign in as: demo / demo-password        (or alice / alice-password)
  Mode:       $mode$([ "$mode" = dev ] && echo " (edit web/src/*.tsx: the page updates in place)")
  Logs:       $here/$run/{frontgate,api,idp$([ "$mode" = dev ] && echo ",vite")}.log

  Ctrl-C stops everything.
MSG
wait -n "${pids[@]}"
echo "a process stopped; see $run/*.log" >&2
