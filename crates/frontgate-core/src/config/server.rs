//! `[server]`: listeners, TLS, connection limits and timeouts.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer};

use super::values::{Cidr, Dur, ListenAddr, Origin, Size};

/// `[server]`: the public listener. Every key is optional.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// The public listener's address. Default `127.0.0.1:8443`.
    pub listen: ListenAddr,
    /// The origin browsers see: same-origin checks compare `Origin` with it, the redirect
    /// listener sends browsers there, and its host goes into the self-signed certificate. Without
    /// it, same-origin means the request's own scheme and `Host`. Set it in production.
    pub public_url: Option<toml::Spanned<Origin>>,
    /// TLS on the public listener. Default self-signed.
    pub tls: TlsSetting,
    /// An optional plain-HTTP listener that answers every request with 308 to the same path and
    /// query on `public_url`. Needs TLS.
    pub redirect_http: Option<ListenAddr>,
    /// Worker threads, each with its own single-threaded runtime; `0` (the default) means one per
    /// CPU core.
    pub workers: usize,
    /// Peers whose `X-Forwarded-*`, `Forwarded` and `X-Request-Id` headers are believed and
    /// extended; from any other peer they are removed or replaced. Default none.
    pub trusted_proxies: Vec<Cidr>,
    /// Open client connections plus WebSocket tunnels, across all workers; a connection beyond it
    /// is closed at once, with no response. Default 10000.
    pub max_connections: usize,
    /// Request header size; over it, 431. The HTTP/1.1 read buffer is twice this (at least
    /// 8 KiB); on HTTP/2 it is also `SETTINGS_MAX_HEADER_LIST_SIZE`. Default 16 KiB.
    pub max_header_bytes: Size,
    /// Number of request headers; over it, 431. Default 100.
    pub max_header_count: usize,
    /// The default request body limit of routes (413); each route may set its own. Default 1 MiB.
    pub max_body_bytes: Size,
    /// Bounds the TLS handshake and the wait for each HTTP/1.1 request head (so also the
    /// keep-alive idle time), and the first request on HTTP/2. Default 10 s, not zero.
    pub header_read_timeout: Dur,
    /// How long an HTTP/2 connection may sit with no request, or with responses the client
    /// does not take, before it is closed (HTTP/1.1 keep-alive connections are bounded by
    /// header_read_timeout instead).
    pub idle_timeout: Dur,
    /// On SIGTERM/SIGINT, how long in-flight requests may take to finish; zero closes open
    /// connections at once. Default 30 s.
    pub shutdown_grace: Dur,
    /// The `Strict-Transport-Security` value, sent only with TLS; `""` or `"off"` disables it.
    /// Default `max-age=31536000; includeSubDomains`.
    pub hsts: String,
    /// HTTP/2 concurrent streams per connection. Default 100.
    pub h2_max_concurrent_streams: u32,
    /// HTTP/2 streams the client reset before the gateway accepted them (limits "rapid reset"
    /// floods). Default 20.
    pub h2_max_pending_reset_streams: usize,
    /// Whether TLS clients may resume a session (TLS 1.3 tickets, TLS 1.2 session ids).
    pub tls_session_resumption: bool,
    /// Whether request header names with `_` are forwarded (nginx's `underscores_in_headers`).
    /// Off by default: backends that map `-` and `_` to one variable (CGI, Django, older Puma)
    /// would read `X_Api_Key` as `X-Api-Key`, a field the gateway never saw.
    pub underscores_in_headers: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: ListenAddr("127.0.0.1:8443".parse().expect("static address")),
            public_url: None,
            tls: TlsSetting::SelfSigned,
            redirect_http: None,
            workers: 0,
            trusted_proxies: Vec::new(),
            max_connections: 10_000,
            max_header_bytes: Size(16 * 1024),
            max_header_count: 100,
            max_body_bytes: Size(1024 * 1024),
            header_read_timeout: Dur(Duration::from_secs(10)),
            idle_timeout: Dur(Duration::from_secs(60)),
            shutdown_grace: Dur(Duration::from_secs(30)),
            hsts: "max-age=31536000; includeSubDomains".into(),
            h2_max_concurrent_streams: 100,
            h2_max_pending_reset_streams: 20,
            tls_session_resumption: true,
            underscores_in_headers: false,
        }
    }
}

impl ServerConfig {
    /// Worker threads to run: the configured number, or one per core.
    pub fn worker_count(&self) -> usize {
        if self.workers > 0 {
            self.workers
        } else {
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
        }
    }

    /// Whether the public listener speaks TLS (`tls` is not `"off"`).
    pub fn tls_enabled(&self) -> bool {
        !matches!(self.tls, TlsSetting::Off)
    }

    /// The HSTS header value to send, if any (only over TLS, and not when set to "" or "off").
    pub fn hsts_value(&self) -> Option<&str> {
        let v = self.hsts.trim();
        (self.tls_enabled() && !v.is_empty() && v != "off").then_some(v)
    }

    /// Whether `ip` is in `trusted_proxies`.
    pub fn is_trusted_proxy(&self, ip: std::net::IpAddr) -> bool {
        self.trusted_proxies.iter().any(|c| c.0.contains(&ip))
    }
}

/// `tls = "self-signed" | "off" | { cert = "...", key = "..." }`
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSetting {
    /// `"self-signed"`: a certificate made in `data_dir/tls/`, valid 90 days, renewed at start or
    /// reload when fewer than 30 days are left.
    SelfSigned,
    /// `"off"`: plain HTTP (and so no HTTP/2 and no HSTS).
    Off,
    /// `{ cert = "cert.pem", key = "key.pem" }`, relative to the config file's directory.
    Files {
        /// A PEM certificate chain, leaf first.
        cert: PathBuf,
        /// A PEM private key (PKCS#8, PKCS#1 or SEC1).
        key: PathBuf,
    },
}

impl<'de> Deserialize<'de> for TlsSetting {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Files {
            cert: PathBuf,
            key: PathBuf,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Word(String),
            Files(Files),
        }
        const HELP: &str =
            "`tls` must be \"self-signed\", \"off\", or { cert = \"cert.pem\", key = \"key.pem\" }";
        match Raw::deserialize(d).map_err(|_| de::Error::custom(HELP))? {
            Raw::Word(w) if w == "self-signed" => Ok(TlsSetting::SelfSigned),
            Raw::Word(w) if w == "off" => Ok(TlsSetting::Off),
            Raw::Word(w) => Err(de::Error::custom(format!("unknown tls mode `{w}`: {HELP}"))),
            Raw::Files(f) => Ok(TlsSetting::Files { cert: f.cert, key: f.key }),
        }
    }
}
