//! Durable and shared state: the SQL store ([`sql::Db`]: SQLite or PostgreSQL, with embedded
//! migrations), the audit log written into it ([`audit`]), Redis for what nodes share
//! ([`redis`]), and the in-process event hub that invalidation messages are delivered through
//! ([`events`]).
//!
//! Connections are made on the state runtime ([`crate::state::Services`]); request handlers
//! reach them with `services.run(..)`.

#[cfg(feature = "sql")]
pub mod audit;
pub mod events;
pub mod redis;
#[cfg(feature = "sql")]
pub mod sql;

pub use events::Events;
#[cfg(feature = "sql")]
pub use sql::Db;

/// Everything that can go wrong talking to a store. Messages never include passwords.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the store at {url}: {message}")]
    Connect { url: String, message: String },
    #[error("store migrations failed: {0}")]
    Migrate(String),
    #[cfg(feature = "sql")]
    #[error("store query failed: {0}")]
    Query(#[from] sqlx::Error),
    #[error("the store did not answer within {0:?}")]
    Timeout(std::time::Duration),
    #[error("redis: {0}")]
    Redis(String),
    #[error("stored data is malformed: {0}")]
    Corrupt(String),
    #[error("the state runtime has stopped")]
    Stopped,
}

impl StoreError {
    /// Whether this is the store being unreachable (503), rather than a bug or bad data.
    pub fn is_outage(&self) -> bool {
        match self {
            StoreError::Timeout(_)
            | StoreError::Connect { .. }
            | StoreError::Stopped
            | StoreError::Redis(_) => true,
            #[cfg(feature = "sql")]
            StoreError::Query(e) => matches!(
                e,
                sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::Io(_)
                    | sqlx::Error::Tls(_)
                    | sqlx::Error::WorkerCrashed
                    | sqlx::Error::Database(_)
                    | sqlx::Error::Protocol(_)
            ),
            StoreError::Migrate(_) | StoreError::Corrupt(_) => false,
        }
    }
}

/// Runs `fut` with the store's deadline: a store that hangs is an outage, not a stuck request.
pub async fn deadline<T>(
    limit: std::time::Duration,
    fut: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r,
        Err(_) => Err(StoreError::Timeout(limit)),
    }
}

/// `scheme://user:password@host/...` with the password replaced, for messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let (auth, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match auth.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            let masked =
                if userinfo.contains(':') { format!("{user}:***") } else { user.to_owned() };
            format!("{scheme}://{masked}@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

/// Milliseconds since the Unix epoch: how times are stored.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            super::redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(super::redact_url("redis://:pw@h/0"), "redis://:***@h/0");
        assert_eq!(super::redact_url("postgres://h/db"), "postgres://h/db");
    }
}

/// How the stores are opened: to serve (created and migrated as needed) or to check a config
/// (reached, never changed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    Serve,
    Check,
}
