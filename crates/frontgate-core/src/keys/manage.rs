//! Managing keys: create, list, show, revoke, rotate. Shared by the admin API and the CLI, so
//! both validate the same way, write the same audit events and publish the same invalidations.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::format::{self, Hasher};
use super::record::KeyRecord;
use super::repo;
use super::verify::TOPIC_CHANGED;
use crate::config::ApiKeysConfig;
use crate::state::Services;
use crate::store::audit::{self, AuditEvent};
use crate::store::deadline;
use crate::store::{Db, StoreError, now_ms};

/// What a caller asks for when creating a key. Unknown fields are refused.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    pub name: String,
    /// Who the key belongs to (X-Frontgate-Subject upstream); default: the name.
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub origins: Vec<String>,
    #[serde(default)]
    pub cidrs: Vec<String>,
    /// A duration from now: `"90d"`, `"12h"`.
    #[serde(default)]
    pub expires_in: Option<String>,
    #[serde(default)]
    pub rate_limit: Option<String>,
    /// Requests the key may make in all.
    #[serde(default)]
    pub uses: Option<i64>,
    #[serde(default)]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    #[error("{0}")]
    Invalid(String),
    #[error("no key with id `{0}`")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// A newly made key: the only time the full key exists outside the caller's hands.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Minted {
    pub key: String,
    #[serde(flatten)]
    pub record: KeyRecord,
}

const MAX_TEXT: usize = 200;
const MAX_LIST: usize = 64;
const MAX_METADATA: usize = 4096;
const MAX_LIFETIME: Duration = Duration::from_secs(10 * 366 * 24 * 3600);

fn visible_ascii(s: &str) -> bool {
    s.bytes().all(|b| (0x21..0x7f).contains(&b))
}

impl NewKey {
    fn validate(&self, now: i64) -> Result<Validated, ManageError> {
        let bad = |m: String| Err(ManageError::Invalid(m));
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > MAX_TEXT || name.chars().any(char::is_control)
        {
            return bad(format!(
                "name must be 1 to {MAX_TEXT} characters without control characters"
            ));
        }
        // The subject is sent upstream as a header value, so it is printable ASCII. Left out,
        // it is the name when the name is such text, and otherwise the key's id (see `mint`):
        // a name in any script must not make a request that never mentions a subject fail.
        let header_safe = |s: &str| {
            !s.is_empty()
                && s.len() <= MAX_TEXT
                && s.bytes().all(|b| (0x20..0x7f).contains(&b))
                && s.trim() == s
        };
        let subject = match &self.subject {
            Some(s) if !header_safe(s) => {
                return bad(format!(
                    "subject must be 1 to {MAX_TEXT} printable ASCII characters (it is sent upstream as a header), without leading or trailing spaces"
                ));
            }
            Some(s) => Some(s.clone()),
            None => Some(name.to_owned()).filter(|n| header_safe(n)),
        };
        if self.scopes.len() > MAX_LIST
            || self.origins.len() > MAX_LIST
            || self.cidrs.len() > MAX_LIST
        {
            return bad(format!("at most {MAX_LIST} scopes, origins and cidrs each"));
        }
        for s in &self.scopes {
            if s.is_empty() || s.len() > 128 || !visible_ascii(s) {
                return bad(format!(
                    "scope `{s}` must be 1 to 128 visible ASCII characters without spaces"
                ));
            }
        }
        let mut origins = Vec::new();
        for o in &self.origins {
            let parsed: crate::config::Origin =
                o.parse().map_err(|e: String| ManageError::Invalid(format!("origins: {e}")))?;
            origins.push(parsed.as_str().to_owned());
        }
        let mut cidrs = Vec::new();
        for c in &self.cidrs {
            let net = c
                .parse::<ipnet::IpNet>()
                .map(|n| n.trunc())
                .or_else(|_| c.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    ManageError::Invalid(format!("cidrs: `{c}` is not a CIDR block or IP address"))
                })?;
            cidrs.push(net);
        }
        let expires_at = match &self.expires_in {
            None => None,
            Some(text) => {
                let d = humantime::parse_duration(text.trim()).map_err(|_| {
                    ManageError::Invalid(format!(
                        "expires_in `{text}` is not a duration; write e.g. \"90d\" or \"12h\""
                    ))
                })?;
                if d.is_zero() || d > MAX_LIFETIME {
                    return bad("expires_in must be longer than 0 and at most 10 years".into());
                }
                Some(now + d.as_millis() as i64)
            }
        };
        if let Some(r) = &self.rate_limit
            && !valid_rate(r)
        {
            return bad(format!(
                "rate_limit `{r}` must look like \"10/s\", \"600/min\" or \"5000/h\" (at most 999999 per unit)"
            ));
        }
        if let Some(u) = self.uses
            && !(1..=1_000_000_000_000).contains(&u)
        {
            return bad("uses must be between 1 and 1000000000000".into());
        }
        let metadata = serde_json::Value::Object(self.metadata.clone().unwrap_or_default());
        if metadata.to_string().len() > MAX_METADATA {
            return bad(format!("metadata must be at most {MAX_METADATA} bytes of JSON"));
        }
        Ok(Validated { name: name.to_owned(), subject, origins, cidrs, expires_at, metadata })
    }
}

struct Validated {
    name: String,
    /// `None`: the key's id.
    subject: Option<String>,
    origins: Vec<String>,
    cidrs: Vec<ipnet::IpNet>,
    expires_at: Option<i64>,
    metadata: serde_json::Value,
}

fn valid_rate(r: &str) -> bool {
    // Exactly the admin API's pattern `^[1-9][0-9]{0,5}/(s|min|h)$`.
    let Some((n, unit)) = r.split_once('/') else { return false };
    (1..=6).contains(&n.len())
        && n.bytes().all(|b| b.is_ascii_digit())
        && !n.starts_with('0')
        && matches!(unit, "s" | "min" | "h")
}

/// Key management over one store. Cheap to clone; its methods must run on the state runtime
/// (`services.run(..)` or `services.block_on(..)`).
#[derive(Clone)]
pub struct KeyAdmin {
    services: Arc<Services>,
    db: Db,
    prefix: String,
    hasher: Hasher,
}

impl KeyAdmin {
    pub fn new(config: &ApiKeysConfig, services: &Arc<Services>) -> Result<KeyAdmin, StoreError> {
        let db = services.db().cloned().ok_or(StoreError::Stopped)?;
        Ok(KeyAdmin {
            services: services.clone(),
            db,
            prefix: config.prefix.clone(),
            hasher: Hasher::new(config.hash_secret.0.as_bytes()),
        })
    }

    fn timeout(&self) -> Duration {
        self.services.store_timeout()
    }

    fn mint(&self, v: Validated, req: &NewKey, now: i64, rotated_from: Option<String>) -> Minted {
        let key = format::generate(&self.prefix);
        let id = format::new_id();
        let record = KeyRecord {
            subject: v.subject.unwrap_or_else(|| id.clone()),
            id,
            digest: self.hasher.digest(&key),
            hint: format::hint(&self.prefix, &key),
            name: v.name,
            scopes: req.scopes.clone(),
            origins: v.origins,
            cidrs: v.cidrs,
            expires_at: v.expires_at,
            rate_limit: req.rate_limit.clone(),
            uses_remaining: req.uses,
            metadata: v.metadata,
            created_at: now,
            last_used_at: None,
            revoked_at: None,
            revoked_reason: None,
            rotated_from,
            replaced_by: None,
        };
        Minted { key, record }
    }

    async fn audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        detail: serde_json::Value,
    ) -> Result<(), StoreError> {
        deadline(
            self.timeout(),
            audit::record(&self.db, &AuditEvent::now(actor, action, target, detail)),
        )
        .await
    }

    /// Tells every node the record changed; a failed publish is logged (the TTL bounds it).
    async fn announce(&self, id: &str) {
        if let Err(e) = self.services.publish(TOPIC_CHANGED, id).await {
            metrics::counter!("frontgate_api_key_publish_failures_total").increment(1);
            tracing::warn!(error = %e, key_id = id, "could not publish the key change to other nodes; they see it within [api_keys] cache_ttl");
        }
    }

    pub async fn create(&self, req: NewKey, actor: &str) -> Result<Minted, ManageError> {
        let now = now_ms();
        let v = req.validate(now)?;
        let minted = self.mint(v, &req, now, None);
        deadline(self.timeout(), repo::insert(&self.db, &minted.record)).await?;
        let r = &minted.record;
        self.audit(
            actor,
            "api_key.create",
            &r.id,
            serde_json::json!({"name": r.name, "subject": r.subject, "scopes": r.scopes}),
        )
        .await?;
        Ok(minted)
    }

    /// Creates a key for a signed-in user (`[api_keys.self_service]`), owned by `owner`; refused
    /// (`Conflict`) when the owner already has `max_live` live keys. Counted and inserted in
    /// one step, so concurrent requests cannot pass the limit together.
    pub async fn create_owned(
        &self,
        req: NewKey,
        owner: &str,
        max_live: u32,
        actor: &str,
    ) -> Result<Minted, ManageError> {
        let now = now_ms();
        let v = req.validate(now)?;
        let minted = self.mint(v, &req, now, None);
        let inserted = deadline(
            self.timeout(),
            repo::insert_owned(&self.db, &minted.record, owner, i64::from(max_live), now),
        )
        .await?;
        if !inserted {
            return Err(ManageError::Conflict(format!(
                "You already have {max_live} live API keys, the most allowed: revoke one first."
            )));
        }
        let r = &minted.record;
        self.audit(
            actor,
            "api_key.create",
            &r.id,
            serde_json::json!({"name": r.name, "subject": r.subject, "scopes": r.scopes, "owner": owner}),
        )
        .await?;
        Ok(minted)
    }

    /// The keys `owner` minted for themselves, newest first.
    pub async fn list_owned(&self, owner: &str) -> Result<Vec<KeyRecord>, ManageError> {
        Ok(deadline(self.timeout(), repo::list_owned(&self.db, owner, 1000)).await?)
    }

    /// Revokes a key `owner` minted for themselves. Any other id, known or not, is `NotFound`:
    /// a user cannot learn whether someone else's key exists.
    pub async fn revoke_owned(
        &self,
        id: &str,
        owner: &str,
        actor: &str,
    ) -> Result<KeyRecord, ManageError> {
        let owned = deadline(self.timeout(), repo::owner_of(&self.db, id)).await?;
        if owned.as_deref() != Some(owner) {
            return Err(ManageError::NotFound(id.to_owned()));
        }
        self.revoke(id, Some("revoked by its owner"), actor).await
    }

    pub async fn get(&self, id: &str) -> Result<KeyRecord, ManageError> {
        deadline(self.timeout(), repo::by_id(&self.db, id))
            .await?
            .ok_or_else(|| ManageError::NotFound(id.to_owned()))
    }

    pub async fn list(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<KeyRecord>, ManageError> {
        Ok(deadline(self.timeout(), repo::list(&self.db, after, limit.clamp(1, 1000))).await?)
    }

    /// Revokes a key; revoking a revoked key changes nothing and is not an error.
    pub async fn revoke(
        &self,
        id: &str,
        reason: Option<&str>,
        actor: &str,
    ) -> Result<KeyRecord, ManageError> {
        let reason = reason.unwrap_or("revoked").trim();
        if reason.chars().count() > MAX_TEXT || reason.chars().any(char::is_control) {
            return Err(ManageError::Invalid(format!(
                "reason must be at most {MAX_TEXT} characters without control characters"
            )));
        }
        let changed =
            deadline(self.timeout(), repo::revoke(&self.db, id, now_ms(), reason)).await?;
        let record = self.get(id).await?;
        if changed {
            self.audit(actor, "api_key.revoke", id, serde_json::json!({"reason": reason})).await?;
            self.announce(id).await;
        }
        Ok(record)
    }

    /// Issues a new key with the old one's attributes; the old one stays valid for `grace`
    /// (zero: it ends now). Returns the new key and the old record.
    pub async fn rotate(
        &self,
        id: &str,
        grace: Duration,
        actor: &str,
    ) -> Result<(Minted, KeyRecord), ManageError> {
        if grace > MAX_LIFETIME {
            return Err(ManageError::Invalid("grace must be at most 10 years".into()));
        }
        let old = self.get(id).await?;
        let now = now_ms();
        if old.revoked_at.is_some() {
            return Err(ManageError::Conflict(format!(
                "key `{id}` is revoked; create a new key instead"
            )));
        }
        if old.replaced_by.is_some() {
            return Err(ManageError::Conflict(format!(
                "key `{id}` was already rotated; rotate its successor"
            )));
        }
        if old.expires_at.is_some_and(|e| e <= now) {
            return Err(ManageError::Conflict(format!(
                "key `{id}` has expired; create a new key instead"
            )));
        }
        let req = NewKey {
            name: old.name.clone(),
            subject: Some(old.subject.clone()),
            scopes: old.scopes.clone(),
            rate_limit: old.rate_limit.clone(),
            uses: old.uses_remaining,
            ..NewKey::default()
        };
        let v = Validated {
            name: old.name.clone(),
            subject: Some(old.subject.clone()),
            origins: old.origins.clone(),
            cidrs: old.cidrs.clone(),
            expires_at: old.expires_at.map(|e| now + (e - old.created_at).max(1)),
            metadata: old.metadata.clone(),
        };
        let minted = self.mint(v, &req, now, Some(old.id.clone()));
        let grace_end = now + grace.as_millis() as i64;
        deadline(self.timeout(), repo::insert(&self.db, &minted.record)).await?;
        deadline(self.timeout(), repo::retire(&self.db, id, grace_end, &minted.record.id)).await?;
        self.audit(
            actor,
            "api_key.rotate",
            id,
            serde_json::json!({"new_id": minted.record.id, "grace_ms": grace.as_millis() as u64}),
        )
        .await?;
        self.announce(id).await;
        let old = self.get(id).await?;
        Ok((minted, old))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_validated() {
        let ok = NewKey {
            name: "ci".into(),
            scopes: vec!["items:read".into()],
            expires_in: Some("90d".into()),
            ..Default::default()
        };
        let v = ok.validate(0).unwrap();
        assert_eq!(v.subject.as_deref(), Some("ci"));
        assert_eq!(v.expires_at, Some(90 * 24 * 3600 * 1000));
        // A name that is not header text still makes a key; its subject is then the key's id.
        let v =
            NewKey { name: "Café ☕ dashboard".into(), ..Default::default() }.validate(0).unwrap();
        assert_eq!((v.name.as_str(), v.subject), ("Café ☕ dashboard", None));
        let v = NewKey { name: "Café".into(), subject: Some("cafe".into()), ..Default::default() }
            .validate(0)
            .unwrap();
        assert_eq!(v.subject.as_deref(), Some("cafe"));
        let cases: Vec<(NewKey, &str)> = vec![
            (NewKey { name: " ".into(), ..Default::default() }, "name"),
            (
                NewKey { name: "a".into(), scopes: vec!["a b".into()], ..Default::default() },
                "scope",
            ),
            (
                NewKey { name: "a".into(), origins: vec!["null".into()], ..Default::default() },
                "origins",
            ),
            (
                NewKey {
                    name: "a".into(),
                    cidrs: vec!["10.0.0.0/33".into()],
                    ..Default::default()
                },
                "cidrs",
            ),
            (
                NewKey { name: "a".into(), expires_in: Some("soon".into()), ..Default::default() },
                "expires_in",
            ),
            (
                NewKey { name: "a".into(), expires_in: Some("0s".into()), ..Default::default() },
                "expires_in",
            ),
            (
                NewKey { name: "a".into(), rate_limit: Some("fast".into()), ..Default::default() },
                "rate_limit",
            ),
            (NewKey { name: "a".into(), uses: Some(0), ..Default::default() }, "uses"),
            (
                NewKey { name: "a".into(), subject: Some("é".into()), ..Default::default() },
                "subject",
            ),
            (
                NewKey { name: "a".into(), subject: Some(" a".into()), ..Default::default() },
                "subject",
            ),
            (
                NewKey { name: "a".into(), subject: Some(String::new()), ..Default::default() },
                "subject",
            ),
            (
                NewKey { name: "a".into(), uses: Some(1_000_000_000_001), ..Default::default() },
                "uses",
            ),
        ];
        for (req, field) in cases {
            match req.validate(0) {
                Err(ManageError::Invalid(m)) => assert!(m.contains(field), "{m}"),
                other => panic!("{field}: {:?}", other.map(|_| ())),
            }
        }
        assert!(
            valid_rate("10/s")
                && valid_rate("600/min")
                && !valid_rate("0/s")
                && !valid_rate("1/day")
        );
    }
}
