//! Server-side sessions for browser logins: the browser holds only an opaque random id in the
//! `__Host-frontgate` cookie; the tokens stay here, sealed with AES-GCM, in the SQL store or in
//! Redis. Idle and absolute timeouts, a fresh id at every login, and access-token refresh with
//! exactly one refresh in flight per session (in this process by an async lock, across nodes by
//! a lock in the store).

pub mod cookie;
pub mod crypto;
pub mod store;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::state::Services;

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn now() -> i64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}
use crate::store::StoreError;
use crypto::{CryptoError, Sealer};
use store::{Backend, Row};

/// What a session holds (sealed at rest).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SessionData {
    pub subject: String,
    pub sid: Option<String>,
    /// The ID token claims the SPA may see (`session_claims`).
    pub claims: serde_json::Map<String, serde_json::Value>,
    pub scopes: Vec<String>,
    pub access_token: String,
    /// Unix seconds.
    pub access_expires_at: Option<i64>,
    pub refresh_token: Option<String>,
    /// For the RP-initiated logout's `id_token_hint`.
    pub id_token: Option<String>,
    pub created_at: i64,
}

/// A session found by its cookie.
#[derive(Debug, Clone)]
pub struct Session {
    /// The store key (SHA-256 of the cookie value).
    pub key: String,
    pub data: SessionData,
    pub absolute_expires_at: i64,
    pub idle_expires_at: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("the session record does not decode")]
    Decode,
}

pub struct Sessions {
    backend: Backend,
    sealer: Sealer,
    services: Arc<Services>,
    idle: i64,
    absolute: i64,
    /// Per-session locks for refreshes in this process; entries are removed when unused.
    refreshing: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Sessions {
    pub fn new(
        backend: Backend,
        key: &[u8; 32],
        services: Arc<Services>,
        idle: Duration,
        absolute: Duration,
    ) -> Sessions {
        Sessions {
            backend,
            sealer: Sealer::new(key),
            services,
            idle: idle.as_secs() as i64,
            absolute: absolute.as_secs() as i64,
            refreshing: Mutex::new(HashMap::new()),
        }
    }

    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    pub fn services(&self) -> &Arc<Services> {
        &self.services
    }

    /// Runs a store operation on the state runtime.
    async fn run<T: Send + 'static>(
        &self,
        f: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.services.run(f).await.map_err(|_| StoreError::Stopped)?
    }

    /// Creates a session with a new random id (never one the browser sent: no fixation);
    /// returns the cookie value.
    pub async fn create(&self, data: &SessionData) -> Result<(String, Session), SessionError> {
        let token = crypto::random_token()?;
        let key = crypto::store_key(&token);
        let n = now();
        let absolute_expires_at = n + self.absolute;
        let idle_expires_at = n + self.idle;
        let row = self.seal_row(&key, data, absolute_expires_at, idle_expires_at)?;
        let backend = self.backend.clone();
        self.run(async move { backend.put(&row, n).await }).await?;
        metrics::counter!("frontgate_session_created_total").increment(1);
        Ok((token, Session { key, data: data.clone(), absolute_expires_at, idle_expires_at }))
    }

    fn seal_row(
        &self,
        key: &str,
        data: &SessionData,
        absolute_expires_at: i64,
        idle_expires_at: i64,
    ) -> Result<Row, SessionError> {
        let plain = serde_json::to_vec(data).map_err(|_| SessionError::Decode)?;
        let sealed = self.sealer.seal(key.as_bytes(), &plain)?;
        Ok(Row {
            key: key.to_owned(),
            subject: data.subject.clone(),
            sid: data.sid.clone(),
            absolute_expires_at,
            idle_expires_at,
            sealed,
        })
    }

    /// The live session a cookie value names; an expired one is deleted and reported absent.
    /// Moves the idle deadline when a fair part of it has passed (not on every request).
    pub async fn load(&self, token: &str) -> Result<Option<Session>, SessionError> {
        if !crypto::is_token_shaped(token) {
            return Ok(None);
        }
        self.load_key(&crypto::store_key(token), true).await
    }

    pub async fn load_key(&self, key: &str, touch: bool) -> Result<Option<Session>, SessionError> {
        let n = now();
        let backend = self.backend.clone();
        let k = key.to_owned();
        let Some(row) = self.run(async move { backend.get(&k, n).await }).await? else {
            return Ok(None);
        };
        if row.absolute_expires_at < n || row.idle_expires_at < n {
            let backend = self.backend.clone();
            let k = key.to_owned();
            self.run(async move { backend.delete(&k).await }).await?;
            metrics::counter!("frontgate_session_expired_total").increment(1);
            return Ok(None);
        }
        let plain = match self.sealer.open(key.as_bytes(), &row.sealed) {
            Ok(p) => p,
            // Sealed with another key (session_key rotated) or tampered with: not a session.
            Err(_) => return Ok(None),
        };
        let data: SessionData = serde_json::from_slice(&plain).map_err(|_| SessionError::Decode)?;
        let mut idle_expires_at = row.idle_expires_at;
        let touch_after = (self.idle / 10).clamp(1, 60);
        if touch && n + self.idle - row.idle_expires_at >= touch_after {
            idle_expires_at = (n + self.idle).min(row.absolute_expires_at);
            let backend = self.backend.clone();
            let r = row.clone();
            self.run(async move { backend.touch(&r, idle_expires_at, n).await }).await?;
        }
        Ok(Some(Session {
            key: key.to_owned(),
            data,
            absolute_expires_at: row.absolute_expires_at,
            idle_expires_at,
        }))
    }

    /// Replaces a session's data (after a refresh), keeping its deadlines, if the session still
    /// exists; false when it ended meanwhile (a logout that raced the refresh wins).
    pub async fn save(&self, session: &Session) -> Result<bool, SessionError> {
        let row = self.seal_row(
            &session.key,
            &session.data,
            session.absolute_expires_at,
            session.idle_expires_at,
        )?;
        let backend = self.backend.clone();
        Ok(self.run(async move { backend.update(&row).await }).await?)
    }

    pub async fn end(&self, key: &str) -> Result<bool, SessionError> {
        let backend = self.backend.clone();
        let k = key.to_owned();
        let ended = self.run(async move { backend.delete(&k).await }).await?;
        if ended {
            metrics::counter!("frontgate_session_ended_total", "reason" => "logout").increment(1);
        }
        Ok(ended)
    }

    /// Ends every session of a provider session (`sid`), or of a subject.
    pub async fn end_matching(
        &self,
        subject: Option<String>,
        sid: Option<String>,
    ) -> Result<u64, SessionError> {
        let backend = self.backend.clone();
        let n = self
            .run(async move { backend.delete_matching(subject.as_deref(), sid.as_deref()).await })
            .await?;
        metrics::counter!("frontgate_session_ended_total", "reason" => "backchannel").increment(n);
        Ok(n)
    }

    pub async fn list_subject(&self, subject: String) -> Result<Vec<Row>, SessionError> {
        let backend = self.backend.clone();
        let n = now();
        Ok(self.run(async move { backend.list_subject(&subject, n).await }).await?)
    }

    /// Seals and stores a value under `key` until `expires_at`, once (false if it exists).
    pub async fn put_once(
        &self,
        key: String,
        value: &[u8],
        expires_at: i64,
    ) -> Result<bool, SessionError> {
        let sealed = self.sealer.seal(key.as_bytes(), value)?;
        let backend = self.backend.clone();
        let n = now();
        Ok(self.run(async move { backend.put_once(&key, &sealed, expires_at, n).await }).await?)
    }

    /// The in-process lock for refreshing one session.
    pub fn refresh_lock(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.refreshing.lock().unwrap_or_else(|e| e.into_inner());
        // Drop locks nobody holds or waits for, so the map stays small.
        if map.len() > 64 {
            map.retain(|_, l| Arc::strong_count(l) > 1);
        }
        map.entry(key.to_owned()).or_default().clone()
    }

    pub async fn try_store_lock(&self, key: &str) -> Result<bool, SessionError> {
        let backend = self.backend.clone();
        let k = key.to_owned();
        let n = now();
        Ok(self.run(async move { backend.try_lock(&k, n).await }).await?)
    }

    pub async fn store_unlock(&self, key: &str) -> Result<(), SessionError> {
        let backend = self.backend.clone();
        let k = key.to_owned();
        Ok(self.run(async move { backend.unlock(&k).await }).await?)
    }
}
