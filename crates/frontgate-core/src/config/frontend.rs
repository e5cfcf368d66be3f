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
    /// The directory of built files, relative to the config file's directory; it must exist.
    pub dir: Option<PathBuf>,
    /// A running dev server (Vite: `http://127.0.0.1:5173`) that front-end routes are forwarded
    /// to instead of being served from `dir`. For development only.
    pub dev_server: Option<UpstreamUrl>,
    /// When no file matches a navigation (`Accept` has `text/html`, the last segment has no
    /// `.`), serve `index` instead. `None`: `true`. Only with `dir`.
    pub spa_fallback: Option<bool>,
    /// The file served for paths ending in `/` and for the SPA fallback. `None`: `index.html`.
    /// Only with `dir`.
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
    /// `spa_fallback`, default `true`.
    pub fn spa_fallback(&self) -> bool {
        self.spa_fallback.unwrap_or(true)
    }
    /// `index`, default `index.html`.
    pub fn index(&self) -> &str {
        self.index.as_deref().unwrap_or("index.html")
    }
    /// The default `Content-Security-Policy` of every gateway response that has none: `csp`, else
    /// [`d_dev_csp`] with a dev server, else [`d_csp`].
    pub fn csp(&self) -> String {
        match &self.csp {
            Some(c) => c.clone(),
            None if self.dev_server.is_some() => d_dev_csp(),
            None => d_csp(),
        }
    }
    /// `immutable_prefixes`, default `/assets/` and `/static/`.
    pub fn immutable_prefixes(&self) -> Vec<String> {
        self.immutable_prefixes.clone().unwrap_or_else(d_immutable)
    }
}

/// The default `Content-Security-Policy`, also used without `[frontend]`.
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
