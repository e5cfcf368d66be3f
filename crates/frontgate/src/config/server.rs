//! `[server]`: listeners, TLS, connection limits and timeouts.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer};

use super::values::{Cidr, Dur, ListenAddr, Origin, Size};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: ListenAddr,
    pub public_url: Option<toml::Spanned<Origin>>,
    pub tls: TlsSetting,
    pub redirect_http: Option<ListenAddr>,
    pub workers: usize,
    pub trusted_proxies: Vec<Cidr>,
    pub max_connections: usize,
    pub max_header_bytes: Size,
    pub max_header_count: usize,
    pub max_body_bytes: Size,
    pub header_read_timeout: Dur,
    /// How long an HTTP/2 connection may sit with no request before it is closed (HTTP/1.1
    /// keep-alive connections are bounded by header_read_timeout instead).
    pub idle_timeout: Dur,
    pub shutdown_grace: Dur,
    pub hsts: String,
    pub h2_max_concurrent_streams: u32,
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

    pub fn tls_enabled(&self) -> bool {
        !matches!(self.tls, TlsSetting::Off)
    }

    /// The HSTS header value to send, if any (only over TLS, and not when set to "" or "off").
    pub fn hsts_value(&self) -> Option<&str> {
        let v = self.hsts.trim();
        (self.tls_enabled() && !v.is_empty() && v != "off").then_some(v)
    }

    pub fn is_trusted_proxy(&self, ip: std::net::IpAddr) -> bool {
        self.trusted_proxies.iter().any(|c| c.0.contains(&ip))
    }
}

/// `tls = "self-signed" | "off" | { cert = "...", key = "..." }`
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSetting {
    SelfSigned,
    Off,
    Files { cert: PathBuf, key: PathBuf },
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
