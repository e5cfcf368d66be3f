//! The admin listener: Prometheus metrics, liveness and readiness, and the management API
//! ([`keys`]). It binds to loopback by
//! default and is separate from the public listener, so none of this is reachable from outside
//! unless an operator says so.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::sync::watch;

pub mod config_view;
pub mod console;
pub mod keys;
pub mod sessions;
pub mod traffic;

use crate::config::Config;
use crate::observe;
use crate::state::Services;

/// What the admin listener needs from the server that runs it, and nothing more: the admin
/// API imports nothing from the server, which implements this (`server::Shared`).
pub trait AdminHost: Send + Sync + 'static {
    /// The running config (the last one loaded).
    fn config(&self) -> Arc<Config>;
    /// Process-wide store connections and caches.
    fn services(&self) -> &Arc<Services>;
    /// Whether the server is shutting down (`/ready` then says so).
    fn draining(&self) -> bool;
    /// Re-reads the config file as SIGHUP does (blocking); `None` when this host cannot reload
    /// (no config file).
    fn reload(&self) -> Option<ReloadOutcome> {
        None
    }
    /// The last reload's outcome, by SIGHUP or the admin API, if there was one.
    fn last_reload(&self) -> Option<ReloadOutcome> {
        None
    }
}

/// What a config reload came to.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReloadOutcome {
    /// Unix seconds.
    pub at: i64,
    pub ok: bool,
    /// Why it was refused (the running config keeps serving).
    pub error: Option<String>,
}

/// The admin router's state.
pub type Host = Arc<dyn AdminHost>;

pub async fn serve(
    listener: std::net::TcpListener,
    shared: Host,
    mut shutdown: watch::Receiver<bool>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
    let app = router(shared);
    // The console's sign-in limit is per client address.
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let _ = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = shutdown.changed().await;
        })
        .await;
}

pub fn router(shared: Host) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .merge(keys::routes())
        .merge(console::routes())
        .merge(sessions::routes())
        .merge(traffic::routes())
        .merge(config_view::routes())
        .layer(axum::middleware::from_fn_with_state(shared.clone(), console::csrf_guard))
        .layer(axum::middleware::from_fn_with_state(shared.clone(), console::bearer_guard))
        .layer(axum::middleware::from_fn_with_state(shared.clone(), host_guard))
        .with_state(shared)
}

/// DNS rebinding: a web page at `evil.example` whose name then resolves to 127.0.0.1 is
/// same-origin with it, so a visitor's browser would call this listener for it. Its requests
/// carry `Host: evil.example`: the management API and the console answer only to IP addresses,
/// `localhost` (and names under `.localhost`, which browsers resolve to loopback themselves) and
/// `[admin] allowed_hosts`. `/metrics`, `/health` and `/ready` answer any name, so that scrapers
/// and probes that call the listener by a service name keep working; they hold no secret.
async fn host_guard(
    State(shared): State<Host>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if matches!(req.uri().path(), "/metrics" | "/health" | "/ready") {
        return next.run(req).await;
    }
    let hosts = req.headers().get_all(header::HOST);
    let names: Vec<String> = req
        .uri()
        .host()
        .map(str::to_owned)
        .into_iter()
        .chain(hosts.iter().map(|h| h.to_str().map_or_else(|_| String::new(), host_part)))
        .collect();
    let config = shared.config();
    let mut allowed = config.admin.allowed_hosts.clone();
    // The console's OIDC origin is a name the operator gave for this listener.
    if let Some(o) = &config.admin.oidc {
        allowed.push(host_part(o.origin.host_port()).to_ascii_lowercase());
    }
    let allowed = &allowed;
    // Every name the request gives must be allowed (an absolute target and a `Host`, say), and
    // two `Host` fields could be read either way: refused, as the gateway refuses them. A
    // request without a name (HTTP/1.0) is not a browser's.
    if hosts.iter().count() > 1 || !names.iter().all(|h| host_allowed(h, allowed)) {
        return console::problem(crate::problem::Problem::new(
            crate::problem::Code::HostNotAllowed,
        ));
    }
    next.run(req).await
}

/// The host of a `Host` value: without its port, brackets kept off an IPv6 literal.
fn host_part(value: &str) -> String {
    let v = value.trim();
    if let Some(rest) = v.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("").to_owned();
    }
    v.rsplit_once(':').map_or(v, |(h, _)| h).to_owned()
}

fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']').trim_end_matches('.');
    let lower = host.to_ascii_lowercase();
    host.parse::<std::net::IpAddr>().is_ok()
        || lower == "localhost"
        || lower.ends_with(".localhost")
        || allowed.contains(&lower)
}

async fn metrics() -> impl IntoResponse {
    let body = observe::metrics_handle().map(|h| h.render()).unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body)
}

async fn health() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], "{\"status\":\"ok\"}")
}

async fn ready(State(shared): State<Host>) -> impl IntoResponse {
    if shared.draining() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "application/json")],
            "{\"status\":\"draining\"}",
        );
    }
    // The stores this node needs must answer: a node that cannot verify keys is not ready.
    if let Some(db) = shared.services().db().cloned() {
        let t = shared.services().store_timeout();
        let ok =
            shared.services().run(async move { crate::store::deadline(t, db.ping()).await }).await;
        if !matches!(ok, Ok(Ok(()))) {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CONTENT_TYPE, "application/json")],
                "{\"status\":\"store_unavailable\"}",
            );
        }
    }
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], "{\"status\":\"ready\"}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_addresses_localhost_and_listed_names_are_answered() {
        let allowed = vec!["admin.internal".to_owned()];
        for ok in [
            "127.0.0.1",
            "::1",
            "10.1.2.3",
            "localhost",
            "LOCALHOST",
            "console.localhost",
            "admin.internal",
            "Admin.Internal",
            "admin.internal.",
        ] {
            assert!(host_allowed(ok, &allowed), "{ok}");
        }
        for no in [
            "evil.example",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "admin.internal.evil",
            "",
            "0x7f000001",
        ] {
            assert!(!host_allowed(no, &allowed), "{no}");
        }
        assert_eq!(host_part("localhost:9901"), "localhost");
        assert_eq!(host_part("[::1]:9901"), "::1");
        assert_eq!(host_part("evil.example"), "evil.example");
    }
}
