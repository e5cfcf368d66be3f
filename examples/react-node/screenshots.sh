#!/usr/bin/env bash
# Runs the example's end-to-end suite (crates/frontgate/tests/it/react_node.rs) in headless
# Chromium and copies the screenshots it takes to docs/images/tutorial/, where the tutorial
# shows them. Needs what scripts/test.sh installs (Rust, Node, chromium, cargo-nextest or not).
set -euo pipefail
cd "$(dirname "$0")/../.."
shots="$(mktemp -d)"
trap 'rm -rf "$shots"' EXIT
if cargo nextest --version >/dev/null 2>&1; then
  REACT_NODE_SHOTS="$shots" cargo nextest run -p frontgate --test it 'react_node::'
else
  REACT_NODE_SHOTS="$shots" cargo test -p frontgate --test it react_node::
fi
mkdir -p docs/images/tutorial
rm -f docs/images/tutorial/*.png
cp "$shots"/[0-9]*.png docs/images/tutorial/
ls -l docs/images/tutorial
