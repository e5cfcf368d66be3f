//! Harness for the browser-session suites: frontgate with `[oidc]` against the real
//! oidc-provider fixture, a second loopback origin for attack pages, and the Chromium driver
//! (tests/browser/sessions.mjs, playwright-core pinned in its own package-lock.json).
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

use base64::Engine;

use super::oidc::{Provider, ProviderOptions};
use super::{Gate, Upstream};

pub fn browser_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// `npm ci` for the browser driver, once per lock file.
pub fn ensure_browser_installed() {
    super::node::npm_ci(&browser_dir());
}

/// Runs one scenario of tests/browser/sessions.mjs; panics with everyone's output on failure.
/// Returns the JSON line the script printed.
pub async fn browser(
    scenario: &str,
    env: Vec<(String, String)>,
    context: impl Fn() -> String,
) -> serde_json::Value {
    ensure_browser_installed();
    let scenario = scenario.to_owned();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("sessions.mjs")
            .arg(&scenario)
            .current_dir(browser_dir())
            .envs(env)
            .output()
            .expect("run node sessions.mjs")
    })
    .await
    .expect("browser task");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "browser scenario failed\n--- stdout\n{stdout}\n--- stderr\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        context()
    );
    serde_json::from_str(stdout.lines().last().unwrap_or("{}")).unwrap_or(serde_json::Value::Null)
}

/// A free loopback port (bound and released; the caller binds it next, seconds later, once the
/// IdP knows it). Taken below the kernel's ephemeral range: a port from that range (what
/// binding port 0 gives) can be handed to another test's listener or outgoing connection in
/// the meantime, and was ("Address already in use" in a CI run).
pub fn free_port() -> u16 {
    let ephemeral_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (low, high) = (10_000u16, ephemeral_start.max(10_001));
    for _ in 0..1000 {
        let mut r = [0u8; 2];
        getrandom::fill(&mut r).expect("random");
        let port = low + u16::from_le_bytes(r) % (high - low);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {low}..{high}");
}

/// A random 32-byte session key, base64.
pub fn session_key() -> String {
    let mut k = [0u8; 32];
    getrandom::fill(&mut k).expect("random");
    base64::engine::general_purpose::STANDARD.encode(k)
}

/// A page on another loopback origin: serves the same small HTML for any path.
pub struct OtherOrigin {
    pub origin: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for OtherOrigin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl OtherOrigin {
    pub async fn start() -> OtherOrigin {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let origin = format!("http://{}", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(|_req| async {
                        let mut r = http::Response::new(http_body_util::Full::new(
                            bytes::Bytes::from_static(
                                b"<!doctype html><title>elsewhere</title><p>another site",
                            ),
                        ));
                        r.headers_mut()
                            .insert("content-type", http::HeaderValue::from_static("text/html"));
                        Ok::<_, std::convert::Infallible>(r)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        OtherOrigin { origin, task }
    }
}

/// What a gateway under test is configured with.
pub struct GateOptions<'a> {
    pub port: u16,
    pub public_origin: &'a str,
    pub issuer: &'a str,
    pub session_key: &'a str,
    pub upstream: &'a Upstream,
    /// `[shared]` with this Redis prefix, so sessions live in Redis.
    pub redis_prefix: Option<&'a str>,
    pub cors_origin: Option<&'a str>,
    pub refresh_before: &'a str,
    /// Config sections added as they are (e.g. `[store]` on PostgreSQL).
    pub extra: &'a str,
    /// Keys added to `[oidc]`.
    pub oidc_extra: &'a str,
}

impl<'a> GateOptions<'a> {
    /// Sessions in the default SQL store (SQLite), no CORS, refresh 60 s before expiry.
    pub fn new(
        port: u16,
        public_origin: &'a str,
        issuer: &'a str,
        session_key: &'a str,
        upstream: &'a Upstream,
    ) -> Self {
        GateOptions {
            port,
            public_origin,
            issuer,
            session_key,
            upstream,
            redis_prefix: None,
            cors_origin: None,
            refresh_before: "60s",
            extra: "",
            oidc_extra: "",
        }
    }
}

/// Starts frontgate with `[oidc]` (plain http on a loopback public origin).
pub fn start_gate(o: &GateOptions<'_>) -> Gate {
    let dir = tempfile::tempdir().expect("temp dir");
    let shared = o
        .redis_prefix
        .map(|p| format!("[shared]\nredis = \"{}\"\nprefix = \"{p}\"\n", super::stores::REDIS_URL))
        .unwrap_or_default();
    let cors = o
        .cors_origin
        .map(|c| format!("[cors]\nallow_origins = [\"{c}\"]\nallow_credentials = true\nallow_headers = [\"content-type\", \"x-frontgate-csrf\"]\n"))
        .unwrap_or_default();
    let text = format!(
        r#"data_dir = {data:?}

[server]
listen = "127.0.0.1:{port}"
tls = "off"
public_url = "{public}"

[admin]
listen = "127.0.0.1:0"

[log]
level = "info"

{upstream}
{shared}
{cors}
{extra}
[oidc]
issuer = "{issuer}"
client_id = "{client_id}"
client_secret = "{secret}"
scopes = ["openid", "profile", "email", "offline_access"]
session_key = "{key}"
refresh_before = "{refresh_before}"
{oidc_extra}

[[routes]]
match = "/echo/**"
auth = "session"
"#,
        data = dir.path().join("data").display().to_string(),
        port = o.port,
        public = o.public_origin,
        upstream = o.upstream.config(),
        issuer = o.issuer,
        client_id = super::oidc::CLIENT_ID,
        secret = super::oidc::CLIENT_SECRET,
        key = o.session_key,
        refresh_before = o.refresh_before,
        extra = o.extra,
        oidc_extra = o.oidc_extra,
    );
    let path = dir.path().join("frontgate.toml");
    std::fs::write(&path, text).expect("write config");
    super::spawn(dir, path, &["serve", "-c"])
}

/// What every session test starts with: a free port for the gateway and its origin, the IdP
/// told about that origin, an upstream, and a session key.
pub struct World {
    pub port: u16,
    pub origin: String,
    pub idp: Provider,
    pub upstream: Upstream,
    pub key: String,
}

impl World {
    /// `access_token_ttl`: how long the IdP's access tokens live (`None`: its default).
    pub async fn start(access_token_ttl: Option<u64>) -> World {
        let port = free_port();
        let origin = format!("http://127.0.0.1:{port}");
        let idp = start_idp(&origin, access_token_ttl);
        World { port, origin, idp, upstream: Upstream::start().await, key: session_key() }
    }
}

/// The provider, told about a relying party at `public_origin`.
pub fn start_idp(public_origin: &str, access_token_ttl: Option<u64>) -> Provider {
    Provider::start_with(ProviderOptions {
        redirect_uris: vec![format!("{public_origin}/.frontgate/callback")],
        post_logout_redirect_uris: vec![format!("{public_origin}/")],
        backchannel_logout_uri: Some(format!("{public_origin}/.frontgate/backchannel-logout")),
        access_token_ttl,
        ..Default::default()
    })
}
