//! `[cors]`: which other origins may call the API from a browser.

use std::time::Duration;

use serde::Deserialize;

use super::values::{Dur, Origin};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsConfig {
    pub allow_origins: toml::Spanned<Vec<CorsOrigin>>,
    #[serde(default)]
    pub allow_credentials: bool,
    #[serde(default = "d_methods")]
    pub allow_methods: Vec<String>,
    #[serde(default = "d_headers")]
    pub allow_headers: Vec<String>,
    #[serde(default)]
    pub expose_headers: Vec<String>,
    #[serde(default = "d_max_age")]
    pub max_age: Dur,
}

/// An allowed origin: an exact origin, or `*` (only without credentials).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigin {
    Any,
    Exact(Origin),
}

impl<'de> Deserialize<'de> for CorsOrigin {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        if raw == "*" {
            return Ok(CorsOrigin::Any);
        }
        if raw.contains('*') {
            return Err(serde::de::Error::custom(format!(
                "`{raw}`: partial wildcards are not supported; list each origin exactly"
            )));
        }
        raw.parse().map(CorsOrigin::Exact).map_err(serde::de::Error::custom)
    }
}

fn d_methods() -> Vec<String> {
    ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"].map(String::from).to_vec()
}
fn d_headers() -> Vec<String> {
    vec!["content-type".into()]
}
fn d_max_age() -> Dur {
    Dur(Duration::from_secs(600))
}
