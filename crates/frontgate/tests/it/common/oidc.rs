//! The real identity provider for tests: `oidc-provider` (npm, pinned in
//! tests/fixtures/oidc/package.json) started from tests/fixtures/oidc/provider.mjs on a free
//! loopback port. `npm ci` runs once per checkout (guarded by a file lock, so parallel tests
//! wait for one install); the process is killed when the handle drops.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;

/// The fixture's test client (confidential, client_secret_basic); `<id>-post` is the same client
/// with client_secret_post.
pub const CLIENT_ID: &str = "frontgate";
pub const CLIENT_SECRET: &str = "frontgate-test-secret-0123456789abcdef";

/// Where the fixture lives.
pub fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/oidc")
}

/// Installs the fixture's npm packages from its lock file, once.
pub fn ensure_installed() {
    super::node::npm_ci(&fixture_dir());
}

/// What the provider should know about the relying party under test.
#[derive(Default, Clone)]
pub struct ProviderOptions {
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub backchannel_logout_uri: Option<String>,
    /// Access token lifetime in seconds (default 300).
    pub access_token_ttl: Option<u64>,
    pub id_token_ttl: Option<u64>,
    pub refresh_token_ttl: Option<u64>,
    /// JSON object: account id -> its `groups` claim (a string or an array), in the ID token.
    pub account_groups: Option<String>,
}

/// A running oidc-provider.
pub struct Provider {
    child: Child,
    /// `http://127.0.0.1:PORT` (no trailing slash), exactly as the provider puts it in `iss`.
    pub issuer: String,
    pub addr: SocketAddr,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Provider {
    pub fn start() -> Provider {
        Provider::start_with(ProviderOptions::default())
    }

    pub fn start_with(opts: ProviderOptions) -> Provider {
        ensure_installed();
        let mut cmd = Command::new("node");
        cmd.arg("provider.mjs")
            .arg("0")
            .current_dir(fixture_dir())
            .env("OIDC_REDIRECT_URIS", opts.redirect_uris.join(","))
            .env("OIDC_POST_LOGOUT_REDIRECT_URIS", opts.post_logout_redirect_uris.join(","))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(groups) = &opts.account_groups {
            cmd.env("OIDC_ACCOUNT_GROUPS", groups);
        }
        if let Some(uri) = &opts.backchannel_logout_uri {
            cmd.env("OIDC_BACKCHANNEL_LOGOUT_URI", uri);
        }
        for (name, v) in [
            ("OIDC_ACCESS_TOKEN_TTL", opts.access_token_ttl),
            ("OIDC_ID_TOKEN_TTL", opts.id_token_ttl),
            ("OIDC_REFRESH_TOKEN_TTL", opts.refresh_token_ttl),
        ] {
            if let Some(v) = v {
                cmd.env(name, v.to_string());
            }
        }
        let mut child = cmd.spawn().expect("start node provider.mjs");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr");
        {
            let logs = logs.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    logs.lock().unwrap().push(line);
                }
            });
        }
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        // The script prints the issuer as soon as it listens; EOF means it died. Bounded, so a
        // provider that never starts fails the test with its logs instead of hanging it.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut first = String::new();
            let _ = stdout.read_line(&mut first);
            let _ = tx.send(first);
            let mut sink = Vec::new();
            let _ = stdout.read_to_end(&mut sink);
        });
        let first = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| "(nothing within 30 s)".into());
        let issuer = first.trim().to_string();
        if !issuer.starts_with("http://127.0.0.1:") {
            let _ = child.kill();
            let _ = child.wait();
            std::thread::sleep(Duration::from_millis(100));
            panic!("oidc-provider did not start: {first:?}\n{}", logs.lock().unwrap().join("\n"));
        }
        let addr: SocketAddr =
            issuer.trim_start_matches("http://").parse().expect("issuer address");
        Provider { child, issuer, addr, logs }
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    pub fn jwks_url(&self) -> String {
        format!("{}/jwks", self.issuer)
    }

    pub fn token_url(&self) -> String {
        format!("{}/token", self.issuer)
    }

    pub fn introspection_url(&self) -> String {
        format!("{}/token/introspection", self.issuer)
    }

    /// POSTs a form to a path on the provider with the test client's basic credentials and
    /// optional extra headers; returns status and JSON body.
    pub async fn post_form(
        &self,
        path: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> (u16, serde_json::Value) {
        let body = form
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect::<Vec<_>>()
            .join("&");
        let basic = base64_std(format!("{CLIENT_ID}:{CLIENT_SECRET}").as_bytes());
        let mut b = http::Request::builder()
            .method("POST")
            .uri(path)
            .header("host", self.addr.to_string())
            .header("content-type", "application/x-www-form-urlencoded")
            .header("authorization", format!("Basic {basic}"));
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let (status, _, body) =
            super::plain_send(self.addr, b.body(Full::new(Bytes::from(body))).unwrap()).await;
        let v = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
        (status.as_u16(), v)
    }

    /// A client_credentials access token for `resource` (see provider.mjs: `/opaque` resources get
    /// opaque tokens, ones containing `rs256` RS256 JWTs, others ES256 JWTs) with `scope`.
    /// `dpop` is a DPoP proof for `POST {issuer}/token`, which binds the token to its key.
    pub async fn client_credentials(
        &self,
        resource: &str,
        scope: &str,
        dpop: Option<&str>,
    ) -> String {
        let headers: Vec<(&str, &str)> = dpop.map(|p| vec![("dpop", p)]).unwrap_or_default();
        let (status, v) = self
            .post_form(
                "/token",
                &[("grant_type", "client_credentials"), ("resource", resource), ("scope", scope)],
                &headers,
            )
            .await;
        assert_eq!(status, 200, "token request failed: {v}\n{}", self.logs());
        v["access_token"].as_str().expect("access_token").to_string()
    }
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn base64_std(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let n =
            chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
