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
        .with_state(shared)
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
