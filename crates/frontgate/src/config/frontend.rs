//! `[frontend]`: the single-page app served from the same origin as the API.

use std::path::PathBuf;

use serde::Deserialize;

use super::upstream::UpstreamUrl;

/// Exactly one of `dir` (built files) and `dev_server` (a running dev server such as Vite,
/// reached through the same proxy as `[upstream]`); `config::validate` refuses both or neither.
/// The file-serving keys are `Option` so that setting one beside `dev_server`, where it would
/// have no effect, can be refused.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrontendConfig {
    pub dir: Option<PathBuf>,
    pub dev_server: Option<UpstreamUrl>,
    pub spa_fallback: Option<bool>,
    pub index: Option<String>,
    /// `None`: [`d_csp`], or [`d_dev_csp`] with a dev server.
    pub csp: Option<String>,
    /// Path prefixes whose files have content hashes in their names and never change.
    pub immutable_prefixes: Option<Vec<String>>,
    /// Path prefixes the SPA fallback never answers (a navigation to an undeclared API path
    /// gets the 404 problem, not the app's HTML). `None`: the prefixes of the upstream routes.
    pub spa_fallback_exclude: Option<Vec<String>>,
}

impl FrontendConfig {
    pub fn spa_fallback(&self) -> bool {
        self.spa_fallback.unwrap_or(true)
    }
    pub fn index(&self) -> &str {
        self.index.as_deref().unwrap_or("index.html")
    }
    pub fn csp(&self) -> String {
        match &self.csp {
            Some(c) => c.clone(),
            None if self.dev_server.is_some() => d_dev_csp(),
            None => d_csp(),
        }
    }
    pub fn immutable_prefixes(&self) -> Vec<String> {
        self.immutable_prefixes.clone().unwrap_or_else(d_immutable)
    }
}

pub fn d_csp() -> String {
    "default-src 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'none'".into()
}
/// The default with a dev server: Vite's dev client applies CSS imports as inline `<style>`
/// elements, and @vitejs/plugin-react puts an inline preamble script into the page. Its HMR
/// WebSocket to the page's origin is already allowed by `'self'`. Never the production default.
pub fn d_dev_csp() -> String {
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; object-src 'none'; base-uri 'none'".into()
}
fn d_immutable() -> Vec<String> {
    vec!["/assets/".into(), "/static/".into()]
}
