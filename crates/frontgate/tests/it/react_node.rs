//! The React + Node example (examples/react-node, docs/tutorial.md), end to end: its demo IdP
//! (oidc-provider), its Express backend (which has no security code and records every request
//! it receives) and frontgate with the example's own frontgate.toml (free ports, a temp dir,
//! the secrets filled in), driven by headless Chromium through tests/browser/react_node.mjs:
//! sign-in and the cookie's flags, items, validation beside the fields, forged cross-site
//! requests, curl replays, proof of work and its replay, self-service API keys and their
//! revocation, a rate limit, an undeclared path, logout, back-channel logout, and an expired
//! session recovered without losing what the user typed.
//!
//! Screenshots go to the test's temp dir, or to `$REACT_NODE_SHOTS` when set
//! (examples/react-node/screenshots.sh copies them to docs/images/tutorial/).
use crate::common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use common::Gate;
use common::node::{Node, npm_ci};
use common::sessions::{browser_dir, ensure_browser_installed, free_port, session_key};

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/react-node")
}

fn newest(path: &Path) -> SystemTime {
    let meta = std::fs::metadata(path).expect("stat");
    let mut t = meta.modified().expect("mtime");
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).expect("read dir").flatten() {
            t = t.max(newest(&entry.path()));
        }
    }
    t
}

/// The example's packages installed and its SPA built (again when a source is newer than the
/// build; scripts/test.sh builds it first, so this is usually a stat or two).
fn ensure_example_ready() {
    let web = example().join("web");
    npm_ci(&example());
    npm_ci(&web);
    let built = || {
        std::fs::metadata(web.join("dist/index.html")).and_then(|m| m.modified()).ok().is_some_and(
            |b| {
                let sources = [web.join("src"), web.join("public"), web.join("index.html")];
                sources.iter().all(|p| b >= newest(p))
            },
        )
    };
    if built() {
        return;
    }
    let guard = File::create(std::env::temp_dir().join("frontgate-react-node-build.lock"))
        .expect("build lock file");
    guard.lock().expect("lock build");
    if built() {
        return;
    }
    let status = Command::new("npm")
        .args(["run", "build", "--silent"])
        .current_dir(&web)
        .status()
        .expect("npm run build");
    assert!(status.success(), "npm run build failed in {}", web.display());
}

fn random_hex() -> String {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).expect("random");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The example running: backend, frontgate (the example's config, adapted), IdP.
struct World {
    gate: Gate,
    api: Node,
    idp: Node,
    origin: String,
    issuer: String,
    api_log: PathBuf,
    shots: PathBuf,
    _tmp: tempfile::TempDir,
}

impl World {
    /// `session_idle`: the example's `[oidc] session_idle`, shortened for the expiry test.
    fn start(session_idle: Option<&str>) -> World {
        ensure_example_ready();
        let tmp = tempfile::tempdir().expect("temp dir");
        let (fg_port, api_port, idp_port) = (free_port(), free_port(), free_port());
        let origin = format!("https://127.0.0.1:{fg_port}");
        let issuer = format!("http://127.0.0.1:{idp_port}");
        let client_secret = random_hex();

        let api_log = tmp.path().join("api-requests.jsonl");
        let mut api = Node::start(
            &["api/server.mjs"],
            &example(),
            &[("API_PORT", api_port.to_string()), ("API_LOG", api_log.display().to_string())],
            tmp.path().join("api.log"),
        );
        api.wait_listening(api_port);

        // The example's config as it is, with what differs on a test machine replaced.
        let text = std::fs::read_to_string(example().join("frontgate.toml")).expect("config");
        let mut cfg: toml::Table = text.parse().expect("the example's frontgate.toml parses");
        let set = |cfg: &mut toml::Table, section: &str, key: &str, v: toml::Value| {
            let table = cfg
                .get_mut(section)
                .and_then(|s| s.as_table_mut())
                .unwrap_or_else(|| panic!("the example's config has no [{section}]"));
            assert!(table.contains_key(key), "the example's [{section}] has no {key}");
            table.insert(key.into(), v);
        };
        let s = |v: String| toml::Value::String(v);
        let abs = |p: &str| s(example().join(p).display().to_string());
        cfg.insert("data_dir".into(), s(tmp.path().join("data").display().to_string()));
        set(&mut cfg, "server", "listen", s(format!("127.0.0.1:{fg_port}")));
        set(&mut cfg, "server", "public_url", s(origin.clone()));
        set(&mut cfg, "admin", "listen", s("127.0.0.1:0".into()));
        set(&mut cfg, "upstream", "url", s(format!("http://127.0.0.1:{api_port}")));
        set(&mut cfg, "frontend", "dir", abs("web/dist"));
        set(&mut cfg, "openapi", "spec", abs("openapi.yaml"));
        set(&mut cfg, "oidc", "issuer", s(issuer.clone()));
        set(&mut cfg, "oidc", "client_secret", s(client_secret.clone()));
        set(&mut cfg, "oidc", "session_key", s(session_key()));
        if let Some(idle) = session_idle {
            set(&mut cfg, "oidc", "session_idle", s(idle.into()));
        }
        set(&mut cfg, "pow", "secret", s(random_hex()));
        set(&mut cfg, "api_keys", "hash_secret", s(random_hex()));
        let config_path = tmp.path().join("frontgate.toml");
        std::fs::write(&config_path, toml::to_string(&cfg).expect("config text"))
            .expect("write config");
        let gate_dir = tempfile::tempdir_in(tmp.path()).expect("gate dir");
        let gate = common::spawn(gate_dir, config_path, &["serve", "-c"]);

        // The IdP trusts frontgate's self-signed certificate for back-channel logout calls.
        let cert = tmp.path().join("data/tls/self-signed.crt");
        assert!(cert.exists(), "frontgate made no self-signed certificate");
        let mut idp = Node::start(
            &["idp/idp.mjs"],
            &example(),
            &[
                ("IDP_PORT", idp_port.to_string()),
                ("APP_ORIGIN", origin.clone()),
                ("OIDC_CLIENT_SECRET", client_secret),
                ("NODE_EXTRA_CA_CERTS", cert.display().to_string()),
            ],
            tmp.path().join("idp.log"),
        );
        idp.wait_listening(idp_port);

        let shots = std::env::var_os("REACT_NODE_SHOTS")
            .map(PathBuf::from)
            .unwrap_or_else(|| tmp.path().join("screenshots"));
        World { gate, api, idp, origin, issuer, api_log, shots, _tmp: tmp }
    }

    fn logs(&self) -> String {
        format!(
            "--- frontgate\n{}\n--- api\n{}\n--- idp\n{}\n--- backend requests\n{}",
            self.gate.logs(),
            self.api.log(),
            self.idp.log(),
            std::fs::read_to_string(&self.api_log).unwrap_or_default()
        )
    }

    /// Runs a scenario of tests/browser/react_node.mjs; panics with every log on failure.
    async fn browser(&self, scenario: &str, extra: &[(&str, String)]) -> serde_json::Value {
        ensure_browser_installed();
        let mut cmd = Command::new("node");
        cmd.arg("react_node.mjs")
            .arg(scenario)
            .current_dir(browser_dir())
            .env("FG", &self.origin)
            .env("IDP", &self.issuer)
            .env("API_LOG", &self.api_log)
            .env("TLS_DIR", self._tmp.path().join("data/tls"))
            .env("SHOTS", &self.shots)
            .envs(extra.iter().map(|(k, v)| (*k, v.as_str())));
        let out =
            tokio::task::spawn_blocking(move || cmd.output().expect("run node react_node.mjs"))
                .await
                .expect("browser task");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "scenario {scenario} failed\n--- stdout\n{stdout}\n--- stderr\n{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.logs()
        );
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_str(stdout.lines().last().unwrap_or("{}")).expect("scenario result")
    }

    /// Every request the backend received, as the JSON lines it wrote.
    fn backend_requests(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.api_log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("backend log line"))
            .collect()
    }
}

/// The whole tour: sign-in, items, refusals, proof of work, API keys, logout, back-channel
/// logout.
#[tokio::test]
async fn react_node_example_tour_in_chromium() {
    let world = World::start(None);
    let out = world.browser("tour", &[]).await;
    assert_eq!(out["ok"], true);
    // What the backend received, seen from its side: only what the checks let through, each
    // with the caller frontgate established.
    let seen = world.backend_requests();
    for r in &seen {
        let path = r["path"].as_str().unwrap();
        assert!(!path.starts_with("/api/admin"), "an undeclared path reached the backend: {r}");
        if path.starts_with("/api/items") || path == "/api/live" {
            assert_eq!(r["subject"], "demo", "a session route without the user: {r}");
        }
    }
    let posts = seen.iter().filter(|r| r["method"] == "POST" && r["path"] == "/api/items").count();
    assert_eq!(posts, 3, "only the three items the user added were posted:\n{}", world.logs());
    // The forged WebSocket never reached the backend: every socket it saw was the app's own.
    assert!(seen.iter().filter(|r| r["websocket"] == true).all(|r| r["subject"] == "demo"));
    // frontgate refused them: the preflight of the forged fetch, the simple POST, the
    // WebSocket handshake and the form POST.
    assert!(world.gate.log_count("\"code\":\"origin_denied\"") >= 4, "{}", world.logs());
    // Both logouts were real: RP-initiated from the app, back-channel from the IdP.
    assert!(world.idp.log().contains("backchannel.success demo"), "{}", world.logs());
    let metrics = world.gate.metrics().await;
    assert!(
        metrics.contains("frontgate_session_ended_total{reason=\"backchannel\"} 1"),
        "{metrics}"
    );
}

/// A short session_idle: the session ends while the user types; the app sends them through
/// sign-in and the draft is still there.
#[tokio::test]
async fn react_node_example_expired_session_keeps_the_draft() {
    let world = World::start(Some("4s"));
    let out = world.browser("expiry", &[("IDLE_SECONDS", "4".into())]).await;
    assert_eq!(out["ok"], true);
    let posts = world
        .backend_requests()
        .into_iter()
        .filter(|r| r["method"] == "POST" && r["path"] == "/api/items")
        .count();
    assert_eq!(posts, 2, "{}", world.logs());
}
