//! The admin listener: Prometheus metrics, liveness and readiness, and the management API
//! ([`keys`]). It binds to loopback by
//! default and is separate from the public listener, so none of this is reachable from outside
//! unless an operator says so.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::sync::watch;

pub mod keys;

use crate::observe;
use crate::server::Shared;

pub async fn serve(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
    let app = router(shared);
    let _ = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = shutdown.changed().await;
        })
        .await;
}

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .merge(keys::routes())
        .with_state(shared)
}

async fn metrics() -> impl IntoResponse {
    let body = observe::metrics_handle().render();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body)
}

async fn health() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], "{\"status\":\"ok\"}")
}

async fn ready(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    if shared.draining.load(Ordering::Relaxed) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "application/json")],
            "{\"status\":\"draining\"}",
        );
    }
    // The stores this node needs must answer: a node that cannot verify keys is not ready.
    if let Some(db) = shared.services.db().cloned() {
        let t = shared.services.store_timeout();
        let ok = shared
            .services
            .run(async move { crate::store::sql::deadline(t, db.ping()).await })
            .await;
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
