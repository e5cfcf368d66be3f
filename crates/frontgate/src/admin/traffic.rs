//! The traffic API on the admin listener (docs/console.md): what this node's gateway saw over
//! the last hour (`GET /admin/v1/traffic`, from [`crate::observe::traffic`]) and its stores'
//! state as this node sees them (`GET /admin/v1/stores`). Both describe this node only: the
//! console on each node's admin listener shows that node.

use std::time::Instant;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::Host;
use super::console::problem;
use crate::observe::traffic;
use crate::problem::{Code, Problem};

pub fn routes() -> Router<Host> {
    Router::new().route("/admin/v1/traffic", get(overview)).route("/admin/v1/stores", get(stores))
}

fn json(v: serde_json::Value) -> Response {
    (StatusCode::OK, [(axum::http::header::CONTENT_TYPE, "application/json")], v.to_string())
        .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    /// How many ten-second buckets, newest last (1-360, default 360: an hour).
    buckets: Option<i64>,
    /// How many recent refusals and top entries (1-200, default 50).
    limit: Option<i64>,
}

async fn overview(
    State(shared): State<Host>,
    headers: HeaderMap,
    params: Result<Query<Params>, QueryRejection>,
) -> Response {
    if let Err(r) = super::console::authenticate(&*shared, &headers) {
        return r;
    }
    let Ok(Query(p)) = params else {
        return problem(
            Problem::new(Code::ValidationFailed)
                .with_detail("Query parameters: buckets (1-360), limit (1-200)."),
        );
    };
    let buckets = p.buckets.unwrap_or(traffic::BUCKETS as i64);
    let limit = p.limit.unwrap_or(50);
    if !(1..=traffic::BUCKETS as i64).contains(&buckets) || !(1..=200).contains(&limit) {
        return problem(
            Problem::new(Code::ValidationFailed)
                .with_detail("buckets must be 1-360 and limit 1-200."),
        );
    }
    let t = traffic::global();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let series = t.series_at(now);
    let series: Vec<_> = series[series.len() - buckets as usize..]
        .iter()
        .map(|(start, requests, refused)| {
            let refused: serde_json::Map<String, serde_json::Value> =
                refused.iter().map(|(c, n)| ((*c).to_owned(), (*n).into())).collect();
            serde_json::json!({ "start": start, "requests": requests, "refused": refused })
        })
        .collect();
    let top = t.top(limit as usize);
    json(serde_json::json!({
        "bucket_seconds": traffic::BUCKET_SECS,
        "buckets": series,
        "recent_refusals": t.recent(limit as usize).iter().map(|r| serde_json::json!({
            "at": crate::keys::record::rfc3339(r.at_ms as i64),
            "code": r.code,
            "route": r.route,
            "client": r.client.to_string(),
            "subject": r.subject,
            "key_id": r.key_id,
        })).collect::<Vec<_>>(),
        "top_clients": top.clients.iter().map(|(ip, n)| serde_json::json!({"client": ip.to_string(), "refusals": n})).collect::<Vec<_>>(),
        "top_routes": top.routes.iter().map(|(r, n)| serde_json::json!({"route": r, "refusals": n})).collect::<Vec<_>>(),
        "top_keys": top.keys.iter().map(|(k, n)| serde_json::json!({"key_id": k, "refusals": n})).collect::<Vec<_>>(),
        "top_subjects": top.subjects.iter().map(|(s, n)| serde_json::json!({"subject": s, "refusals": n})).collect::<Vec<_>>(),
        "dropped": t.dropped(),
        "pow_routes": traffic::pow_levels(),
    }))
}

async fn stores(State(shared): State<Host>, headers: HeaderMap) -> Response {
    if let Err(r) = super::console::authenticate(&*shared, &headers) {
        return r;
    }
    let services = shared.services().clone();
    let timeout = services.store_timeout();
    let mut out = serde_json::Map::new();
    if let Some(db) = services.db().cloned() {
        let backend = db.backend();
        let started = Instant::now();
        let r = services.run(async move { crate::store::deadline(timeout, db.ping()).await }).await;
        out.insert(
            "sql".into(),
            state(backend, started, r.map_err(|_| ()).and_then(|r| r.map_err(|_| ()))),
        );
    }
    if let Some(redis) = services.redis().cloned() {
        let started = Instant::now();
        let r =
            services.run(async move { crate::store::deadline(timeout, redis.ping()).await }).await;
        let ok = matches!(r, Ok(Ok(())));
        out.insert("redis".into(), state("redis", started, if ok { Ok(()) } else { Err(()) }));
    }
    json(serde_json::json!({ "stores": out }))
}

fn state(backend: &str, started: Instant, r: Result<(), ()>) -> serde_json::Value {
    serde_json::json!({
        "backend": backend,
        "reachable": r.is_ok(),
        "latency_ms": started.elapsed().as_secs_f64() * 1000.0,
    })
}
