//! `[cors]`: which other origins may call the API from a browser.

use std::time::Duration;

use serde::Deserialize;

use super::values::{Dur, Origin};

/// `[cors]`: which other origins may call routes from a browser. Without it only same-origin
/// requests and requests without `Origin` are accepted.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsConfig {
    /// Exact origins (canonical form), or `"*"` for any well-formed origin except `null`.
    /// Required; environment variables are not expanded.
    pub allow_origins: toml::Spanned<Vec<CorsOrigin>>,
    /// Sends `Access-Control-Allow-Credentials: true`. Default `false`; not allowed with `"*"`.
    #[serde(default)]
    pub allow_credentials: bool,
    /// Methods a preflight may ask for, also sent as `Access-Control-Allow-Methods`. Default
    /// `GET`, `HEAD`, `POST`, `PUT`, `PATCH`, `DELETE`.
    #[serde(default = "d_methods")]
    pub allow_methods: Vec<String>,
    /// Request headers a preflight may ask for (case-insensitive), also sent as
    /// `Access-Control-Allow-Headers`. Default `content-type`.
    #[serde(default = "d_headers")]
    pub allow_headers: Vec<String>,
    /// Sent as `Access-Control-Expose-Headers` on cross-origin responses. Default empty.
    #[serde(default)]
    pub expose_headers: Vec<String>,
    /// Sent as `Access-Control-Max-Age` (seconds) on preflight responses. Default 10 minutes.
    #[serde(default = "d_max_age")]
    pub max_age: Dur,
}

/// An allowed origin: an exact origin, or `*` (only without credentials).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigin {
    /// `"*"`: any well-formed origin except `null`.
    Any,
    /// One origin, in canonical form.
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
