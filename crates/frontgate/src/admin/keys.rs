//! The key management API on the admin listener (docs/api-keys.md):
//! `POST/GET /admin/v1/keys`, `GET/DELETE /admin/v1/keys/{id}`, `POST /admin/v1/keys/{id}/rotate`,
//! and its OpenAPI description at `/admin/v1/openapi.json`. Every call needs
//! `Authorization: Bearer <[admin] token>`, compared in constant time; every refusal is a
//! problem document; every change is an audit event.

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::{AdminHost, Host};
use crate::keys::{KeyAdmin, ManageError, NewKey};
use crate::problem::{Code, Problem};

pub const OPENAPI: &str = include_str!("openapi.json");

pub fn routes() -> Router<Host> {
    Router::new()
        .route("/admin/v1/openapi.json", get(openapi))
        .route("/admin/v1/keys", post(create).get(list))
        .route("/admin/v1/keys/{id}", get(show).delete(revoke))
        .route("/admin/v1/keys/{id}/rotate", post(rotate))
        .route("/admin/v1/audit", get(audit_log))
}

fn problem(p: Problem) -> Response {
    let status = p.status();
    (status, [(header::CONTENT_TYPE, "application/problem+json")], p.to_json("")).into_response()
}

fn json(status: StatusCode, v: serde_json::Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response()
}

fn invalid(message: impl Into<String>) -> Response {
    problem(Problem::new(Code::ValidationFailed).with_detail(message))
}

/// The admin token check, then a [`KeyAdmin`] over the store. (The error is the response to
/// send; the admin API is not a hot path, so its size does not matter.)
#[allow(clippy::result_large_err)]
fn authorize(shared: &dyn AdminHost, headers: &HeaderMap) -> Result<(KeyAdmin, String), Response> {
    let config = shared.config();
    let actor = super::console::authenticate(shared, headers)?;
    let Some(keys) = &config.api_keys else {
        return Err(problem(
            Problem::new(Code::RouteNotFound)
                .with_detail("API keys are not configured: add an [api_keys] section."),
        ));
    };
    KeyAdmin::new(keys, shared.services())
        .map(|admin| (admin, actor))
        .map_err(|_| problem(Problem::new(Code::StoreUnavailable)))
}

fn managed(e: ManageError) -> Response {
    match e {
        ManageError::Invalid(m) => invalid(m),
        ManageError::NotFound(_) => {
            problem(Problem::new(Code::RouteNotFound).with_detail("No API key has this id."))
        }
        ManageError::Conflict(m) => {
            problem(Problem::new(Code::BadRequest).with_status(StatusCode::CONFLICT).with_detail(m))
        }
        ManageError::Store(e) => {
            tracing::error!(error = %e, "API-key store operation failed");
            problem(Problem::new(Code::StoreUnavailable))
        }
    }
}

/// Runs a management operation on the state runtime, where the store's connections live.
async fn on_state<T, F>(shared: &dyn AdminHost, fut: F) -> Result<T, Response>
where
    F: std::future::Future<Output = Result<T, ManageError>> + Send + 'static,
    T: Send + 'static,
{
    match shared.services().run(fut).await {
        Ok(r) => r.map_err(managed),
        Err(_) => Err(problem(Problem::new(Code::StoreUnavailable))),
    }
}

#[allow(clippy::result_large_err)]
fn body_json<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: &Bytes,
    empty_ok: bool,
) -> Result<Option<T>, Response> {
    if body.is_empty() && empty_ok {
        return Ok(None);
    }
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("application/json") {
        return Err(problem(
            Problem::new(Code::UnsupportedMediaType)
                .with_detail("Send a JSON body with Content-Type: application/json."),
        ));
    }
    serde_json::from_slice(body)
        .map(Some)
        .map_err(|e| invalid(format!("The body is not valid here: {e}")))
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn create(State(shared): State<Host>, headers: HeaderMap, body: Bytes) -> Response {
    let (admin, actor) = match authorize(&*shared, &headers) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let req: NewKey = match body_json(&headers, &body, false) {
        Ok(Some(r)) => r,
        Ok(None) => return invalid("A body is required."),
        Err(r) => return r,
    };
    match on_state(&*shared, async move { admin.create(req, &actor).await }).await {
        Ok(minted) => json(StatusCode::CREATED, serde_json::to_value(&minted).unwrap_or_default()),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    limit: Option<i64>,
    after: Option<String>,
}

async fn list(
    State(shared): State<Host>,
    headers: HeaderMap,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Response {
    let (admin, _) = match authorize(&*shared, &headers) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let Ok(Query(params)) = params else {
        return invalid("Query parameters: limit (1-1000) and after (a key id).");
    };
    let limit = params.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return invalid("limit must be between 1 and 1000.");
    }
    let after = params.after;
    match on_state(&*shared, async move { admin.list(after.as_deref(), limit).await }).await {
        Ok(keys) => {
            let next =
                if keys.len() as i64 == limit { keys.last().map(|k| k.id.clone()) } else { None };
            json(StatusCode::OK, serde_json::json!({ "keys": keys, "next_after": next }))
        }
        Err(r) => r,
    }
}

async fn show(State(shared): State<Host>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let (admin, _) = match authorize(&*shared, &headers) {
        Ok(a) => a,
        Err(r) => return r,
    };
    match on_state(&*shared, async move { admin.get(&id).await }).await {
        Ok(k) => json(StatusCode::OK, serde_json::to_value(&k).unwrap_or_default()),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeParams {
    reason: Option<String>,
}

async fn revoke(
    State(shared): State<Host>,
    headers: HeaderMap,
    Path(id): Path<String>,
    params: Result<Query<RevokeParams>, QueryRejection>,
) -> Response {
    let (admin, actor) = match authorize(&*shared, &headers) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let Ok(Query(params)) = params else { return invalid("Query parameters: reason.") };
    match on_state(
        &*shared,
        async move { admin.revoke(&id, params.reason.as_deref(), &actor).await },
    )
    .await
    {
        Ok(k) => json(StatusCode::OK, serde_json::to_value(&k).unwrap_or_default()),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateRequest {
    /// How long the old key keeps working: `"1h"`, `"0s"`. Default 24h.
    grace: Option<String>,
}

async fn rotate(
    State(shared): State<Host>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (admin, actor) = match authorize(&*shared, &headers) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let req: Option<RotateRequest> = match body_json(&headers, &body, true) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let grace = match req.and_then(|r| r.grace) {
        None => Duration::from_secs(24 * 3600),
        Some(g) => match humantime::parse_duration(g.trim()) {
            Ok(d) => d,
            Err(_) => {
                return invalid(format!(
                    "grace `{g}` is not a duration; write e.g. \"1h\" or \"0s\""
                ));
            }
        },
    };
    match on_state(&*shared, async move { admin.rotate(&id, grace, &actor).await }).await {
        Ok((minted, old)) => {
            let mut v = serde_json::to_value(&minted).unwrap_or_default();
            v["previous"] = serde_json::to_value(&old).unwrap_or_default();
            json(StatusCode::CREATED, v)
        }
        Err(r) => r,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditParams {
    target: Option<String>,
    limit: Option<i64>,
}

/// The most recent audit events, newest first (optionally about one target).
async fn audit_log(
    State(shared): State<Host>,
    headers: HeaderMap,
    params: Result<Query<AuditParams>, QueryRejection>,
) -> Response {
    if let Err(r) = authorize(&*shared, &headers) {
        return r;
    }
    let Ok(Query(params)) = params else {
        return invalid("Query parameters: target, limit (1-1000).");
    };
    let limit = params.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return invalid("limit must be between 1 and 1000.");
    }
    let Some(db) = shared.services().db().cloned() else {
        return problem(Problem::new(Code::StoreUnavailable));
    };
    let t = shared.services().store_timeout();
    let fut = async move {
        crate::store::deadline(t, crate::store::audit::recent(&db, params.target.as_deref(), limit))
            .await
            .map_err(ManageError::Store)
    };
    match on_state(&*shared, fut).await {
        Ok(events) => json(StatusCode::OK, serde_json::json!({ "events": events })),
        Err(r) => r,
    }
}
