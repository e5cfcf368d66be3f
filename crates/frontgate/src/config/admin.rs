//! `[admin]`: the separate listener for metrics, health and (later) management.

use serde::Deserialize;

use super::values::{EnvString, ListenAddr};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Where the admin listener binds; set `enabled = false` to run without one.
    pub listen: ListenAddr,
    pub enabled: bool,
    /// Bearer token reserved for the management API (`/admin/v1/*`, with API keys); nothing
    /// on the admin listener requires it yet.
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
