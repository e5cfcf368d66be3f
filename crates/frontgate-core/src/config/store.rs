//! `[store]`: where durable state lives (API keys, the audit log, and sessions when there is no
//! Redis). SQLite in the data dir by default; PostgreSQL when several nodes share it.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::Config;
use super::values::{Dur, EnvString};

/// `[store]`: durable state (API keys, the audit log, and sessions without Redis).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `sqlite://frontgate.db` (relative to data_dir), `sqlite:///abs/path.db`, or
    /// `postgres://user@host/db`.
    pub url: EnvString,
    /// Connections in the pool.
    pub max_connections: u32,
    /// How long a query may wait for a connection (and for the database) before the request is
    /// answered with 503 store_unavailable.
    pub timeout: Dur,
    /// SQLite only: how long a writer waits for the file lock.
    pub busy_timeout: Dur,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: EnvString("sqlite://frontgate.db".into()),
            max_connections: 8,
            timeout: Dur(std::time::Duration::from_secs(2)),
            busy_timeout: Dur(std::time::Duration::from_secs(5)),
        }
    }
}

/// The store a URL names, resolved against the data dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// A SQLite file, its path resolved against `data_dir`.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL.
    Postgres(String),
}

impl StoreConfig {
    /// Parses `url`; relative SQLite paths are inside `data_dir`.
    pub fn resolve(&self, data_dir: &Path) -> Result<StoreUrl, String> {
        let url = self.url.0.trim();
        if let Some(rest) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            let path = rest.split('?').next().unwrap_or("");
            if path.is_empty() || path == ":memory:" {
                return Err("[store] url: write a file, e.g. \"sqlite://frontgate.db\" (in-memory SQLite would lose keys at restart and is one database per connection)".into());
            }
            let p = PathBuf::from(path);
            return Ok(StoreUrl::Sqlite(if p.is_relative() { data_dir.join(p) } else { p }));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(StoreUrl::Postgres(url.to_owned()));
        }
        Err("[store] url must start with sqlite:// or postgres://".into())
    }

    pub(super) fn validate(&self, data_dir: &Path) -> Vec<String> {
        let mut errors = Vec::new();
        if let Err(e) = self.resolve(data_dir) {
            errors.push(e);
        }
        if self.max_connections == 0 {
            errors.push("[store] max_connections must be at least 1".into());
        }
        if self.timeout.0.is_zero() {
            errors.push("[store] timeout must be longer than 0".into());
        }
        errors
    }
}

impl Config {
    /// The effective `[store]`: the section, or the default SQLite file.
    pub fn store_config(&self) -> StoreConfig {
        self.store.clone().unwrap_or_default()
    }

    /// Whether a feature in this config keeps durable state, so the store is opened at start.
    pub fn needs_store(&self) -> bool {
        // OIDC sessions live in the SQL store unless Redis holds them.
        self.store.is_some()
            || self.api_keys.is_some()
            || (self.oidc.is_some() && self.shared.redis.is_none())
    }
}
