//! `[admin]`: the separate listener for metrics, health and (later) management.

use serde::Deserialize;

use super::values::{EnvString, ListenAddr};

/// `[admin]`: the admin listener (`/metrics`, `/health`, `/ready`, the management API).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Where the admin listener binds; set `enabled = false` to run without one.
    pub listen: ListenAddr,
    /// `false` runs without an admin listener. Default `true`.
    pub enabled: bool,
    /// The bearer token for the management API under `/admin/v1/`, compared in constant time;
    /// without it that API answers 401 to everything. `/metrics`, `/health` and `/ready` never
    /// require it.
    pub token: Option<EnvString>,
    /// Host names (without port) the admin listener answers to, besides IP addresses,
    /// `localhost` and names under `.localhost`: any other `Host` is refused (421), so that a
    /// web page whose DNS name was rebound to this address cannot reach the admin API or the
    /// console from a visitor's browser.
    pub allowed_hosts: Vec<String>,
}

/// An admin token shorter than this is refused: it could be guessed.
pub const MIN_TOKEN_CHARS: usize = 24;

/// Whether `name` is a DNS host name as `allowed_hosts` takes it: lowercase letters, digits,
/// `-` and `.`, labels of 1-63 characters, no port, no scheme, no wildcard.
pub fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: ListenAddr("127.0.0.1:9901".parse().expect("static")),
            enabled: true,
            token: None,
            allowed_hosts: Vec::new(),
        }
    }
}
