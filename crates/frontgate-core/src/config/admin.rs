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
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: ListenAddr("127.0.0.1:9901".parse().expect("static")),
            enabled: true,
            token: None,
        }
    }
}
