//! API-key test helpers: a gateway with `[api_keys]`, a store and an admin token in front of a
//! real upstream, and small clients for the admin API and for keyed requests.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use http_body_util::Full;

use super::stores::{self, Backend, PgDb};
use super::{Gate, TlsClient, Upstream, req};

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
pub const HASH_SECRET: &str = "test-hash-secret-0123456789abcdef0123";

/// A gateway with API keys, and what it depends on (dropped together).
pub struct KeyGate {
    pub gate: Gate,
    pub upstream: Upstream,
    pub backend: Backend,
    pub _pg: Option<std::sync::Arc<PgDb>>,
}

/// The config for a keyed gateway on `store` (a `[store]` section), with `extra` appended.
pub fn keyed_config(upstream: &Upstream, store: &str, extra: &str) -> String {
    format!(
        r#"{up}
{store}
[api_keys]
hash_secret = "{HASH_SECRET}"
{extra}

[cors]
allow_origins = ["https://app.example.com", "https://other.example.com"]

[[routes]]
match = "/echo/**"
auth = "api_key"
scopes = ["items:read"]

[[routes]]
match = "GET /status/{{code}}"
auth = "api_key"
scopes = ["admin"]

[[routes]]
match = "GET /open"
"#,
        up = upstream.config(),
    )
}

impl KeyGate {
    /// `api_keys_extra` goes into `[api_keys]`; `rest` after the routes (e.g. `[shared]`).
    pub async fn start(backend: Backend, api_keys_extra: &str, rest: &str) -> KeyGate {
        let (store, pg) = stores::store_section(backend);
        Self::start_on(backend, &store, pg.map(std::sync::Arc::new), api_keys_extra, rest).await
    }

    pub async fn start_on(
        backend: Backend,
        store: &str,
        pg: Option<std::sync::Arc<PgDb>>,
        api_keys_extra: &str,
        rest: &str,
    ) -> KeyGate {
        let upstream = Upstream::start().await;
        let config = format!("{}\n{rest}\n", keyed_config(&upstream, store, api_keys_extra));
        let gate = start_with_token(&config);
        KeyGate { gate, upstream, backend, _pg: pg }
    }

    pub fn admin(&self) -> SocketAddr {
        self.gate.admin.expect("admin listener")
    }

    pub fn tls(&self) -> TlsClient {
        self.gate.tls()
    }

    /// An admin API call with the right token.
    pub async fn admin_call(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (StatusCode, serde_json::Value) {
        admin_call(self.admin(), Some(ADMIN_TOKEN), method, path, body).await
    }

    /// Creates a key through the admin API; returns (key, id).
    pub async fn create_key(&self, spec: serde_json::Value) -> (String, String) {
        let (status, v) = self.admin_call("POST", "/admin/v1/keys", Some(spec)).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        (v["key"].as_str().expect("key").to_owned(), v["id"].as_str().expect("id").to_owned())
    }

    /// GET `path` with `headers`.
    pub async fn get(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, serde_json::Value) {
        keyed_get(&self.tls(), path, headers).await
    }

    /// A counter's value from /metrics (the sum over label sets matching `labels`).
    pub async fn counter(&self, name: &str, labels: &str) -> f64 {
        let text = self.gate.metrics().await;
        text.lines()
            .filter(|l| {
                l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']) && l.contains(labels)
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

/// Starts `frontgate serve` like the harness does, with an admin token.
pub fn start_with_token(rest: &str) -> Gate {
    start_with_admin("", rest)
}

/// [`start_with_token`], with `admin_extra` added to `[admin]`.
pub fn start_with_admin(admin_extra: &str, rest: &str) -> Gate {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = format!(
        "data_dir = {data:?}\n\n[server]\nlisten = \"127.0.0.1:0\"\n\n[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"{ADMIN_TOKEN}\"\n{admin_extra}\n\n[log]\nlevel = \"info\"\n\n{rest}\n",
        data = dir.path().join("data").display().to_string(),
    );
    let path = dir.path().join("frontgate.toml");
    std::fs::write(&path, text).expect("write config");
    super::spawn(dir, path, &["serve", "-c"])
}

pub async fn admin_call(
    admin: SocketAddr,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> (StatusCode, serde_json::Value) {
    admin_call_from(None, admin, token, method, path, body).await
}

/// [`admin_call`] from the source address `from` (wrong tokens are limited per address).
pub async fn admin_call_from(
    from: Option<std::net::IpAddr>,
    admin: SocketAddr,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> (StatusCode, serde_json::Value) {
    let mut r = req(method, path);
    if let Some(t) = token {
        r = r.header("authorization", format!("Bearer {t}"));
    }
    let body = match body {
        Some(b) => {
            r = r.header("content-type", "application/json");
            Full::new(Bytes::from(b.to_string()))
        }
        None => Full::default(),
    };
    let (status, _, bytes) = super::plain_send_from(from, admin, r.body(body).unwrap()).await;
    let v = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
        serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned())
    });
    (status, v)
}

pub async fn keyed_get(
    client: &TlsClient,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, serde_json::Value) {
    let mut r = req("GET", path);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let (status, h, body) = client.send(r.body(Full::default()).unwrap()).await;
    let v = serde_json::from_slice(&body)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&body).into_owned()));
    (status, h, v)
}
