//! `[frontend] dev_server`: frontgate in front of a real Vite dev server (pinned in
//! examples/local-dev/web/package-lock.json) and the example's Node API, driven by headless
//! Chromium: the page loads through frontgate, Vite's HMR WebSocket connects through it, an
//! edit hot-updates the page, API calls pass the checks and undeclared or cross-origin ones are
//! refused. The config is examples/local-dev/frontgate.toml itself, with free ports.
use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::Bytes;
use common::node::Node;
use common::sessions::{ensure_browser_installed, free_port};
use common::{Gate, json, plain_get, plain_send};
use http_body_util::Full;

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/local-dev")
}

/// `npm ci` for the example's Vite app, once per lock file.
fn ensure_vite_installed() {
    common::node::npm_ci(&example().join("web"));
}

/// A copy of the example's Vite app in `dir` (the test edits its sources) with its installed
/// node_modules; returns Vite's CLI.
fn copy_app(dir: &Path) -> PathBuf {
    ensure_vite_installed();
    let web = example().join("web");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    for f in ["index.html", "vite.config.js", "src/main.js", "src/greeting.js", "src/style.css"] {
        std::fs::copy(web.join(f), dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
    }
    // Only the package is linked: Vite's cache (node_modules/.vite) stays in this copy, not
    // shared with tests running at the same time.
    std::fs::create_dir(dir.join("node_modules")).unwrap();
    std::os::unix::fs::symlink(web.join("node_modules/vite"), dir.join("node_modules/vite"))
        .expect("link vite");
    web.join("node_modules/vite/bin/vite.js")
}

/// The example's Vite app, served by Vite's dev server on `port`.
fn start_vite(dir: &Path, port: u16) -> Node {
    let vite = copy_app(dir);
    let port_s = port.to_string();
    let args = [
        vite.as_path(),
        Path::new("--port"),
        Path::new(&port_s),
        Path::new("--strictPort"),
        Path::new("--host"),
        Path::new("127.0.0.1"),
    ];
    let mut node = Node::start(&args, dir, &[], dir.join("vite.log"));
    node.wait_listening(port);
    node
}

fn start_api(dir: &Path, port: u16) -> Node {
    let mut node = Node::start(
        &[&example().join("api/server.mjs")],
        dir,
        &[("PORT", port.to_string())],
        dir.join("api.log"),
    );
    node.wait_listening(port);
    node
}

/// examples/local-dev/frontgate.toml with free ports, a temp data_dir and an admin listener on
/// a free port, after `edit`.
fn start_gate(port: u16, vite: u16, api: u16) -> Gate {
    start_gate_edited(port, vite, api, |t| t)
}

fn start_gate_edited(port: u16, vite: u16, api: u16, edit: impl Fn(String) -> String) -> Gate {
    let text = std::fs::read_to_string(example().join("frontgate.toml")).expect("example config");
    let text = edit(text)
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
        .replace("localhost:8080", &format!("localhost:{port}"))
        .replace("127.0.0.1:5173", &format!("127.0.0.1:{vite}"))
        .replace("127.0.0.1:3000", &format!("127.0.0.1:{api}"));
    let dir = tempfile::tempdir().expect("temp dir");
    let text = format!(
        "data_dir = {:?}\n{text}\n[admin]\nlisten = \"127.0.0.1:0\"\n",
        dir.path().join("data").display().to_string()
    );
    let path = dir.path().join("frontgate.toml");
    std::fs::write(&path, text).unwrap();
    common::spawn(dir, path, &["serve", "-c"])
}

#[tokio::test]
async fn vite_page_hmr_socket_hot_update_and_api_calls_through_frontgate_in_chromium() {
    ensure_browser_installed();
    let tmp = tempfile::tempdir().unwrap();
    let (vite_port, api_port, port) = (free_port(), free_port(), free_port());
    let vite = start_vite(&tmp.path().join("web"), vite_port);
    let api = start_api(tmp.path(), api_port);
    let gate = start_gate(port, vite_port, api_port);

    let env = [
        ("FG", format!("http://localhost:{port}")),
        ("OTHER", format!("http://127.0.0.1:{vite_port}")),
        ("SRC", tmp.path().join("web/src/greeting.js").display().to_string()),
    ];
    let dir = common::sessions::browser_dir();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("dev_server.mjs")
            .current_dir(dir)
            .envs(env)
            .output()
            .expect("run node")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "browser failed\n--- stdout\n{stdout}\n--- stderr\n{}\n--- frontgate\n{}\n--- vite\n{}\n--- api\n{}",
        String::from_utf8_lossy(&out.stderr),
        gate.logs(),
        vite.log(),
        api.log()
    );
    eprintln!("{stdout}");
    // No CSP violation in the browser under the dev default, which is not the production one.
    let (_, headers, _) = plain_get(gate.addr, "/").await;
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("style-src 'self' 'unsafe-inline'")
    );
    // Vite's error (an unresolvable import) reaches the developer as Vite wrote it, not masked
    // as upstream_error.
    std::fs::write(tmp.path().join("web/src/broken.js"), "import './missing.js';\n").unwrap();
    let (status, headers, body) = plain_get(gate.addr, "/src/broken.js").await;
    assert_eq!(status, 500);
    assert_ne!(
        headers.get("content-type").map(|v| v.as_bytes()),
        Some(&b"application/problem+json"[..])
    );
    assert!(
        String::from_utf8_lossy(&body).contains("broken.js"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    // The cross-origin POST's 403 was frontgate's refusal, not the API's.
    let logs = gate.logs();
    assert!(logs.contains("origin_denied"), "{logs}");
}

#[tokio::test]
async fn a_dev_server_that_is_down_is_a_502_problem_for_pages_and_for_the_hmr_socket() {
    let down = free_port();
    let gate = common::start(
        "tls = \"off\"",
        &format!("[frontend]\ndev_server = \"http://127.0.0.1:{down}\"\n"),
    );
    let (status, headers, body) = plain_get(gate.addr, "/").await;
    assert_eq!(status, 502);
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(json(&body)["code"], "upstream_unavailable", "{}", String::from_utf8_lossy(&body));
    let upgrade = http::Request::builder()
        .uri("/")
        .header("host", gate.addr.to_string())
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-protocol", "vite-hmr")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (status, _, body) = plain_send(gate.addr, upgrade).await;
    assert_eq!(status, 502);
    assert_eq!(json(&body)["code"], "upstream_unavailable");
}

/// docs/local-dev.md's move to production: the example config with only the listen address,
/// TLS, public URL, upstream URL and dev_server → dir changed serves the `vite build` output with
/// the strict default CSP, and the API as before.
#[tokio::test]
async fn the_example_config_moved_to_production_serves_the_built_app_with_the_strict_csp() {
    let tmp = tempfile::tempdir().unwrap();
    let web = tmp.path().join("web");
    let vite = copy_app(&web);
    let dist = tmp.path().join("dist");
    let build = Command::new("node")
        .arg(&vite)
        .args(["build", "--outDir"])
        .arg(&dist)
        .current_dir(&web)
        .output()
        .expect("vite build");
    assert!(
        build.status.success(),
        "vite build: {}{}",
        String::from_utf8_lossy(&build.stdout),
        String::from_utf8_lossy(&build.stderr)
    );
    let (api_port, port) = (free_port(), free_port());
    let _api = start_api(tmp.path(), api_port);
    // Self-signed stands in for the certificate files (the same TLS path, a cert the test reads).
    let gate = start_gate_edited(port, 0, api_port, |t| {
        let prod = t
            .replace("tls = \"off\"", "tls = \"self-signed\"")
            .replace(
                "public_url = \"http://localhost:8080\"",
                "public_url = \"https://localhost:8080\"",
            )
            .replace(
                "dev_server = \"http://127.0.0.1:5173\"",
                &format!("dir = {:?}", dist.display().to_string()),
            );
        assert_ne!(prod, t);
        prod
    });
    let tls = gate.tls();
    let (status, headers, body) = tls.get("/").await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-security-policy"], frontgate::config::frontend::d_csp().as_str());
    let html = String::from_utf8_lossy(&body);
    assert!(!html.contains("/@vite/client"), "{html}");
    let script = html
        .split("src=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a script in the built index.html");
    let (status, headers, _) = tls.get(script).await;
    assert_eq!(status, 200, "{script}");
    assert!(headers["cache-control"].to_str().unwrap().contains("immutable"), "{script}");
    let (status, _, body) = tls.get("/api/hello").await;
    assert_eq!(status, 200);
    assert_eq!(json(&body)["message"], "Hello from the API");
}

/// `check` goes through the same plan as `serve`: it accepts the example as written and refuses
/// a [frontend] with both dir and dev_server, or neither, saying which.
#[test]
fn check_accepts_the_example_and_refuses_both_or_neither_of_dir_and_dev_server() {
    let ok = Command::new(common::BIN)
        .args(["check", "-c"])
        .arg(example().join("frontgate.toml"))
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let dir = tempfile::tempdir().unwrap();
    for (frontend, message) in [
        (
            "dir = \".\"\ndev_server = \"http://127.0.0.1:5173\"",
            "[frontend] has both dir and dev_server",
        ),
        (
            "spa_fallback_exclude = []",
            "[frontend] needs dir = \"./dist\" (the built files) or dev_server",
        ),
        (
            "dev_server = \"http://127.0.0.1:5173\"\nindex = \"app.html\"",
            "[frontend] index applies to files in dir and has no effect with dev_server",
        ),
    ] {
        let path = dir.path().join("frontgate.toml");
        std::fs::write(&path, format!("[server]\ntls = \"off\"\n[frontend]\n{frontend}\n"))
            .unwrap();
        let out = Command::new(common::BIN).args(["check", "-c"]).arg(&path).output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success() && text.contains(message), "{frontend}: {text}");
    }
}
