//! Proof of work against the real JavaScript peers: `altcha-lib` (interop both directions) and
//! the `altcha` web component in headless Chromium. Needs `npm ci` in tests/js/pow and the
//! Debian `chromium` package, which scripts/test.sh installs.

use crate::common;

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
    let out = Command::new("node")
        .arg(script)
        .args(args)
        .current_dir(&dir)
        .output()
        .expect("node is installed");
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
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
    let out =
        tokio::task::spawn_blocking(move || node("interop.mjs", &[&base, SECRET, "/api/signup"]))
            .await
            .unwrap();
    assert!(
        out.contains("\"mode\":\"deterministic\"") && out.contains("all cases passed"),
        "{out}"
    );
}

#[tokio::test]
async fn altcha_lib_interoperates_in_both_directions_probabilistic() {
    let up = Upstream::start().await;
    let gate = pow_gate(&up, "probabilistic");
    let base = format!("http://{}", gate.addr);
    let out =
        tokio::task::spawn_blocking(move || node("interop.mjs", &[&base, SECRET, "/api/signup"]))
            .await
            .unwrap();
    assert!(
        out.contains("\"mode\":\"probabilistic\"") && out.contains("all cases passed"),
        "{out}"
    );
}

#[tokio::test]
async fn the_altcha_widget_and_widget_js_pass_in_headless_chromium() {
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists()
            || std::env::var_os("CHROMIUM").is_some(),
        "headless Chromium is not installed: apt-get install chromium (scripts/test.sh does)"
    );
    let js = js_dir();
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    std::fs::create_dir(&site).unwrap();
    for f in ["index.html", "page.js", "widget.html", "form.html"] {
        std::fs::copy(js.join("site").join(f), site.join(f)).unwrap();
    }
    // The official widget, as published on npm (pinned in package-lock.json).
    std::fs::copy(js.join("node_modules/altcha/dist/main/altcha.js"), site.join("altcha.js"))
        .unwrap();
    let rest = format!(
        "{up}\n[frontend]\ndir = {site:?}\n# The widget starts its workers from blob: URLs and styles its shadow DOM inline.\n\
         csp = \"default-src 'self'; worker-src 'self' blob:; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'\"\n\
         [pow]\nsecret = \"{SECRET}\"\nlevels = [ {{ above_rps = 0, cost = 1000, counter = 50 }} ]\n\
         [[routes]]\nmatch = \"POST /api/signup\"\nchallenge = \"pow\"\n\
         [[routes]]\nmatch = \"POST /api/other\"\nchallenge = \"pow\"\n\
         [[routes]]\nmatch = \"GET /members\"\nchallenge = \"pow\"\n\
         [[routes]]\nmatch = \"POST /echo/signup\"\nchallenge = \"pow\"\n",
        up = up.config(),
        site = site.display().to_string(),
    );
    let gate = start_in(dir, "tls = \"off\"", &rest);
    let base = format!("http://{}", gate.addr);
    let out =
        tokio::task::spawn_blocking(move || node("browser.mjs", &[&base, SECRET])).await.unwrap();
    assert!(out.contains("browser: all cases passed"), "{out}");
    // Signups reached the upstream only with a clearance or a solution: the widget's one,
    // widget.js's one, three parallel ones, the page, the plain form and its FormData twin.
    assert_eq!(up.hits(), 1 + 1 + 3 + 1 + 1 + 1, "{out}");
}

/// `frontgate demo`'s page, as a visitor uses it: its "Send feedback" button solves the proof
/// of work with widget.js under the demo's own CSP, and the feedback reaches the demo upstream.
#[tokio::test]
async fn the_demo_page_solves_its_proof_of_work_in_headless_chromium() {
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists()
            || std::env::var_os("CHROMIUM").is_some(),
        "headless Chromium is not installed: apt-get install chromium (scripts/test.sh does)"
    );
    let demo = common::openapi::start_demo();
    let base = format!("https://{}", demo.addr);
    let out = tokio::task::spawn_blocking(move || node("demo.mjs", &[&base])).await.unwrap();
    assert!(out.contains("demo: all cases passed"), "{out}\n{}", demo.logs());
    let metrics = demo.metrics().await;
    assert!(metrics.lines().any(|l| l.starts_with("frontgate_pow_")), "{metrics}");
}

/// widget.js asks again after a 503 `overloaded` (no derivation slot came free) once the
/// `Retry-After` has passed, at most 5 times, and retries no other refusal (node, stubbed
/// fetch and clock: making a real gateway answer a browser 503 on cue is not cheap).
#[test]
fn widget_js_asks_again_after_a_503_a_bounded_number_of_times() {
    let widget = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../frontgate-core/src/checks/pow/widget.js")
        .canonicalize()
        .unwrap();
    let out = node("widget-retry.cjs", &[widget.to_str().unwrap()]);
    assert!(out.contains("ok"), "{out}");
}
