//! `[frontend]`: the single-page app served from the same origin as the API.

use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrontendConfig {
    pub dir: PathBuf,
    #[serde(default = "d_true")]
    pub spa_fallback: bool,
    #[serde(default = "d_index")]
    pub index: String,
    #[serde(default = "d_csp")]
    pub csp: String,
    /// Path prefixes whose files have content hashes in their names and never change.
    #[serde(default = "d_immutable")]
    pub immutable_prefixes: Vec<String>,
    /// Path prefixes the SPA fallback never answers (a navigation to an undeclared API path
    /// gets the 404 problem, not the app's HTML). `None`: the prefixes of the upstream routes.
    pub spa_fallback_exclude: Option<Vec<String>>,
}

fn d_true() -> bool {
    true
}
fn d_index() -> String {
    "index.html".into()
}
pub fn d_csp() -> String {
    "default-src 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'none'".into()
}
fn d_immutable() -> Vec<String> {
    vec!["/assets/".into(), "/static/".into()]
}
