//! `[upstream]`: the backend that routes forward to.

use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer};

use super::values::{Dur, EnvString};

/// `[upstream]`: the backend that routes forward to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// The backend: `http://host:port[/base]`; `${VAR}` accepted. Required.
    pub url: UpstreamUrl,
    /// Time to open a TCP connection to the backend (502 `upstream_unavailable` past it).
    /// Default 2 s.
    #[serde(default = "d_connect")]
    pub connect_timeout: Dur,
    /// Time from sending the request to the response head (504 `upstream_timeout`); a route's
    /// `timeout` overrides it. Also bounds a body the gateway reads itself. Default 30 s.
    #[serde(default = "d_timeout")]
    pub timeout: Dur,
    /// Bounds the whole exchange, response body included (not WebSocket tunnels). Off by default,
    /// since it would cut long downloads and server-sent event streams.
    pub total_timeout: Option<Dur>,
    /// Idle keep-alive connections older than this are not reused; zero never reuses one.
    /// Default 60 s.
    #[serde(default = "d_pool_idle")]
    pub pool_idle_timeout: Dur,
    /// Most idle connections kept (the oldest is dropped when full); `0` keeps none. Default 256.
    #[serde(default = "d_pool_max")]
    pub pool_max_idle: usize,
    /// Replaces every upstream 5xx with an `upstream_error` problem, keeping the status and
    /// `Retry-After` and dropping the body and other headers. Default `true`.
    #[serde(default = "d_true")]
    pub mask_5xx: bool,
}

fn d_connect() -> Dur {
    Dur(Duration::from_secs(2))
}
fn d_timeout() -> Dur {
    Dur(Duration::from_secs(30))
}
fn d_pool_idle() -> Dur {
    Dur(Duration::from_secs(60))
}
fn d_pool_max() -> usize {
    256
}
fn d_true() -> bool {
    true
}

/// `http://host:port[/base]`. The base path, if any, is prefixed to every forwarded path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamUrl {
    /// `host:port`, for connecting and for the Host header.
    pub authority: String,
    /// The host, without the brackets of an IPv6 literal.
    pub host: String,
    /// The port; 80 when the URL names none.
    pub port: u16,
    /// Without a trailing slash; empty for none.
    pub base_path: String,
}

impl<'de> Deserialize<'de> for UpstreamUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = EnvString::deserialize(d)?.0;
        parse_upstream_url(&raw).map_err(de::Error::custom)
    }
}

/// Parses an `http://host:port[/base]` URL; the error says what is wrong with it.
pub fn parse_upstream_url(raw: &str) -> Result<UpstreamUrl, String> {
    let uri: http::Uri = raw
        .parse()
        .map_err(|_| format!("`{raw}` is not a URL; write e.g. \"http://127.0.0.1:3000\""))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(
                "https upstreams are not supported yet: run the backend on loopback or a private \
                        network and point frontgate at its http:// address"
                    .into(),
            );
        }
        _ => return Err(format!("`{raw}` must start with http://")),
    }
    let auth = uri.authority().ok_or_else(|| format!("`{raw}` has no host"))?;
    if auth.as_str().contains('@') {
        return Err("credentials in the upstream URL are not supported".into());
    }
    if uri.query().is_some() {
        return Err("the upstream URL cannot have a query string".into());
    }
    let host = auth.host().trim_start_matches('[').trim_end_matches(']').to_owned();
    let port = auth.port_u16().unwrap_or(80);
    let authority =
        if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
    let base_path = uri.path().trim_end_matches('/').to_owned();
    Ok(UpstreamUrl { authority, host, port, base_path })
}
