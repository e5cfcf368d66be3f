//! The audit log: who changed what, when. Every change to durable state (an API key created,
//! rotated or revoked; a session revoked by an admin) is one row in `audit_events`, written in
//! the same store as the data it describes.

use serde::Serialize;

use super::{Db, StoreError, now_ms};
use crate::store::sql::with_pool;

/// One audit event. `detail` is free-form JSON and must never hold a secret.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEvent {
    pub at_ms: i64,
    /// `admin-api`, `cli`, or the subject that acted.
    pub actor: String,
    /// A dotted verb, e.g. `api_key.create`.
    pub action: String,
    /// What was acted on, e.g. a key id.
    pub target: String,
    pub detail: serde_json::Value,
}

impl AuditEvent {
    pub fn now(actor: &str, action: &str, target: &str, detail: serde_json::Value) -> AuditEvent {
        AuditEvent {
            at_ms: now_ms(),
            actor: actor.into(),
            action: action.into(),
            target: target.into(),
            detail,
        }
    }
}

/// Appends one event.
pub async fn record(db: &Db, event: &AuditEvent) -> Result<(), StoreError> {
    let detail = event.detail.to_string();
    with_pool!(db, |pool| {
        sqlx::query("INSERT INTO audit_events (at_ms, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)")
            .bind(event.at_ms)
            .bind(&event.actor)
            .bind(&event.action)
            .bind(&event.target)
            .bind(&detail)
            .execute(pool)
            .await?;
    });
    Ok(())
}

/// The most recent events, newest first; only those about `target` when given.
pub async fn recent(
    db: &Db,
    target: Option<&str>,
    limit: i64,
) -> Result<Vec<AuditEvent>, StoreError> {
    use sqlx::Row;
    let mut out = Vec::new();
    with_pool!(db, |pool| {
        let rows = match target {
            Some(t) => {
                sqlx::query("SELECT at_ms, actor, action, target, detail FROM audit_events WHERE target = $1 ORDER BY id DESC LIMIT $2")
                    .bind(t)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?
            }
            None => {
                sqlx::query("SELECT at_ms, actor, action, target, detail FROM audit_events ORDER BY id DESC LIMIT $1")
                    .bind(limit)
                    .fetch_all(pool)
                    .await?
            }
        };
        for r in rows {
            let detail: String = r.try_get("detail")?;
            out.push(AuditEvent {
                at_ms: r.try_get("at_ms")?,
                actor: r.try_get("actor")?,
                action: r.try_get("action")?,
                target: r.try_get("target")?,
                detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
            });
        }
    });
    Ok(out)
}
