//! The session management API on the admin listener (docs/console.md): find a subject's
//! browser sessions (`GET /admin/v1/sessions?subject=`), end one
//! (`DELETE /admin/v1/sessions/{id}`) or all of a subject's (`DELETE
//! /admin/v1/sessions?subject=`). Sessions live in the shared store (SQL or Redis) and every
//! node reads them from there on each request (no node keeps a copy), so a session ended here
//! is refused on its next request on every node. Each end is an audit event with its actor.

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{delete, get};
use serde::Deserialize;

use super::console::problem;
use super::{AdminHost, Host};
use crate::problem::{Code, Problem};
use crate::session::Sessions;
use crate::session::store::Backend;
use crate::store::audit::{self, AuditEvent};
use crate::store::deadline;

/// At most this many sessions are listed for one subject.
const MAX_LISTED: usize = 1000;

pub fn routes() -> Router<Host> {
    Router::new()
        .route("/admin/v1/sessions", get(list).delete(end_subject))
        .route("/admin/v1/sessions/{id}", delete(end_one))
}

fn json(status: StatusCode, v: serde_json::Value) -> Response {
    use axum::response::IntoResponse;
    (status, [(axum::http::header::CONTENT_TYPE, "application/json")], v.to_string())
        .into_response()
}

fn invalid(message: impl Into<String>) -> Response {
    problem(Problem::new(Code::ValidationFailed).with_detail(message))
}

fn unavailable() -> Response {
    problem(Problem::new(Code::StoreUnavailable))
}

/// The admin check, then the sessions of the running config (`[oidc]`).
#[allow(clippy::result_large_err)]
fn authorize(shared: &dyn AdminHost, headers: &HeaderMap) -> Result<(Sessions, String), Response> {
    let actor = super::console::authenticate(shared, headers)?;
    let config = shared.config();
    let Some(oidc) = &config.oidc else {
        return Err(problem(
            Problem::new(Code::RouteNotFound)
                .with_detail("Browser sessions are not configured: add an [oidc] section."),
        ));
    };
    let services = shared.services();
    let backend = match (services.redis(), services.db()) {
        (Some(r), _) => Backend::Redis(r.clone()),
        (None, Some(db)) => Backend::Sql(db.clone()),
        (None, None) => return Err(unavailable()),
    };
    let sessions = Sessions::new(
        backend,
        &oidc.session_key.0,
        Arc::clone(services),
        oidc.session_idle.0,
        oidc.session_absolute.0,
    );
    Ok((sessions, actor))
}

fn rfc3339(secs: i64) -> String {
    crate::keys::record::rfc3339(secs.saturating_mul(1000))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubjectParams {
    subject: Option<String>,
}

#[allow(clippy::result_large_err)]
fn subject_of(params: Result<Query<SubjectParams>, QueryRejection>) -> Result<String, Response> {
    let Ok(Query(SubjectParams { subject: Some(subject) })) = params else {
        return Err(invalid("Query parameter: subject (required)."));
    };
    if subject.is_empty() || subject.len() > 512 {
        return Err(invalid("subject must be 1 to 512 characters."));
    }
    Ok(subject)
}

/// Writes the audit event (when there is an SQL store to write it to; it is logged always).
async fn record(shared: &dyn AdminHost, event: AuditEvent) -> Result<(), Response> {
    tracing::info!(actor = %event.actor, action = %event.action, target = %event.target, "admin action");
    let Some(db) = shared.services().db().cloned() else { return Ok(()) };
    let t = shared.services().store_timeout();
    match shared.services().run(async move { deadline(t, audit::record(&db, &event)).await }).await
    {
        Ok(Ok(())) => Ok(()),
        _ => Err(unavailable()),
    }
}

async fn list(
    State(shared): State<Host>,
    headers: HeaderMap,
    params: Result<Query<SubjectParams>, QueryRejection>,
) -> Response {
    let (sessions, _) = match authorize(&*shared, &headers) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let subject = match subject_of(params) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let t = shared.services().store_timeout();
    let idle =
        shared.config().oidc.as_ref().map(|o| o.session_idle.0.as_secs() as i64).unwrap_or(0);
    let rows = match tokio::time::timeout(t, sessions.list_subject(subject.clone())).await {
        Ok(Ok(rows)) => rows,
        _ => return unavailable(),
    };
    let mut out = Vec::new();
    for row in rows.into_iter().take(MAX_LISTED) {
        // Opened without touching it: looking at a session is not using it.
        let Ok(Ok(Some(s))) = tokio::time::timeout(t, sessions.load_key(&row.key, false)).await
        else {
            continue;
        };
        out.push(serde_json::json!({
            "id": s.key,
            "subject": s.data.subject,
            "sid": s.data.sid,
            "created_at": rfc3339(s.data.created_at),
            "last_seen_at": rfc3339((s.idle_expires_at - idle).max(s.data.created_at)),
            "access_expires_at": s.data.access_expires_at.map(rfc3339),
            "idle_expires_at": rfc3339(s.idle_expires_at),
            "absolute_expires_at": rfc3339(s.absolute_expires_at),
        }));
    }
    json(StatusCode::OK, serde_json::json!({ "subject": subject, "sessions": out }))
}

async fn end_one(
    State(shared): State<Host>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let (sessions, actor) = match authorize(&*shared, &headers) {
        Ok(a) => a,
        Err(r) => return r,
    };
    if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return problem(Problem::new(Code::RouteNotFound).with_detail("No session has this id."));
    }
    let t = shared.services().store_timeout();
    let backend = sessions.backend().clone();
    let key = id.clone();
    let ended =
        match shared.services().run(async move { deadline(t, backend.delete(&key)).await }).await {
            Ok(Ok(e)) => e,
            _ => return unavailable(),
        };
    if !ended {
        return problem(Problem::new(Code::RouteNotFound).with_detail("No session has this id."));
    }
    metrics::counter!("frontgate_session_ended_total", "reason" => "admin").increment(1);
    let event = AuditEvent::now(&actor, "session.end", &id, serde_json::json!({}));
    if let Err(r) = record(&*shared, event).await {
        return r;
    }
    json(StatusCode::OK, serde_json::json!({ "ended": 1 }))
}

async fn end_subject(
    State(shared): State<Host>,
    headers: HeaderMap,
    params: Result<Query<SubjectParams>, QueryRejection>,
) -> Response {
    let (sessions, actor) = match authorize(&*shared, &headers) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let subject = match subject_of(params) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let t = shared.services().store_timeout();
    let backend = sessions.backend().clone();
    let s = subject.clone();
    let n = match shared
        .services()
        .run(async move { deadline(t, backend.delete_matching(Some(&s), None)).await })
        .await
    {
        Ok(Ok(n)) => n,
        _ => return unavailable(),
    };
    metrics::counter!("frontgate_session_ended_total", "reason" => "admin").increment(n);
    let event =
        AuditEvent::now(&actor, "session.end_subject", &subject, serde_json::json!({ "ended": n }));
    if let Err(r) = record(&*shared, event).await {
        return r;
    }
    json(StatusCode::OK, serde_json::json!({ "ended": n }))
}
