//! Proof of work against the real JavaScript peers: `altcha-lib` (interop both directions) and
//! the `altcha` web component in headless Chromium. Needs `npm ci` in tests/js/pow and the
//! Debian `chromium` package, which scripts/test.sh installs.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;

const SECRET: &str = "integration-test-pow-secret-0123456789";

fn js_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/js/pow");
    assert!(
        dir.join("node_modules/altcha-lib").is_dir(),
        "the JavaScript peers are not installed: run `npm ci` in {} (scripts/test.sh does)",
        dir.display()
    );
    dir
}

/// Runs a node script in tests/js/pow; panics with its output unless it succeeds.
fn node(script: &str, args: &[&str]) -> String {
    let dir = js_dir();
    let out = Command::new("node").arg(script).args(args).current_dir(&dir).output().expect("node is installed");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{script} failed:\n{text}");
    text
}

fn pow_gate(up: &Upstream, mode: &str) -> Gate {
    start(
        "tls = \"off\"",
        &format!(
            "{}\n[pow]\nsecret = \"{SECRET}\"\nmode = \"{mode}\"\nlevels = [ {{ above_rps = 0, cost = 100, counter = 30 }} ]\n[[routes]]\nmatch = \"POST /api/signup\"\nchallenge = \"pow\"\n",
            up.config()
        ),
    )
}

#[tokio::test]
async fn altcha_lib_interoperates_in_both_directions_deterministic() {
    let up = Upstream::start().await;
    let gate = pow_gate(&up, "deterministic");
    let base = format!("http://{}", gate.addr);
    let out = tokio::task::spawn_blocking(move || node("interop.mjs", &[&base, SECRET, "/api/signup"])).await.unwrap();
    assert!(out.contains("\"mode\":\"deterministic\"") && out.contains("all cases passed"), "{out}");
}

#[tokio::test]
async fn altcha_lib_interoperates_in_both_directions_probabilistic() {
    let up = Upstream::start().await;
    let gate = pow_gate(&up, "probabilistic");
    let base = format!("http://{}", gate.addr);
    let out = tokio::task::spawn_blocking(move || node("interop.mjs", &[&base, SECRET, "/api/signup"])).await.unwrap();
    assert!(out.contains("\"mode\":\"probabilistic\"") && out.contains("all cases passed"), "{out}");
}
