//! Where sessions live: the SQL store (SQLite by default, PostgreSQL) or Redis when
//! `[shared] redis` is set, so that every node sees the same sessions. Records are keyed by the
//! SHA-256 of the cookie value and hold the session sealed (AES-GCM); subject and `sid` are kept
//! in the clear beside it so that a back-channel logout can find every session of a user.
//!
//! Also here: the single-use markers of completed logins and the replay set of logout-token
//! `jti`s (table `oidc_pending`, whose name is from when started logins were stored), and the
//! per-session refresh lock that keeps two nodes from refreshing at once.

use redis::AsyncCommands;

use crate::store::StoreError;
use crate::store::redis::Redis;
#[cfg(feature = "sql")]
use crate::store::sql::{Db, with_pool};

/// A stored session, still sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub key: String,
    pub subject: String,
    pub sid: Option<String>,
    /// Unix seconds.
    pub absolute_expires_at: i64,
    pub idle_expires_at: i64,
    pub sealed: Vec<u8>,
}

#[derive(Clone)]
pub enum Backend {
    #[cfg(feature = "sql")]
    Sql(Db),
    Redis(Redis),
}

/// How long a refresh lock is held at most (a crashed node's lock expires).
pub const LOCK_SECONDS: i64 = 15;

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            #[cfg(feature = "sql")]
            Backend::Sql(db) => db.backend(),
            Backend::Redis(_) => "redis",
        }
    }

    pub async fn get(&self, key: &str, now: i64) -> Result<Option<Row>, StoreError> {
        match self {
            #[cfg(feature = "sql")]
            Backend::Sql(db) => {
                let row: Option<SqlRow> = with_pool!(db, |pool| {
                    sqlx::query_as("SELECT subject, sid, absolute_expires_at, idle_expires_at, sealed FROM sessions WHERE id_hash = $1")
                        .bind(key)
                        .fetch_optional(pool)
                        .await?
                });
                Ok(row.map(|(subject, sid, absolute_expires_at, idle_expires_at, sealed)| Row {
                    key: key.to_owned(),
                    subject,
                    sid,
                    absolute_expires_at,
                    idle_expires_at,
                    sealed,
                }))
            }
            Backend::Redis(r) => {
                let mut c = r.conn();
                let k = format!("{}session:{key}", r.prefix());
                let (value, pttl): (Option<Vec<u8>>, i64) =
                    redis::pipe().get(&k).pttl(&k).query_async(&mut c).await.map_err(redis_err)?;
                let Some(value) = value else { return Ok(None) };
                let mut row = decode_redis_row(key, &value)?;
                // The key's TTL is the idle deadline.
                row.idle_expires_at = if pttl > 0 { now + pttl / 1000 } else { now };
                Ok(Some(row))
            }
        }
    }

    /// Inserts or replaces a session.
    pub async fn put(&self, row: &Row, now: i64) -> Result<(), StoreError> {
        match self {
            #[cfg(feature = "sql")]
            Backend::Sql(db) => {
                with_pool!(db, |pool| {
                    sqlx::query(
                        "INSERT INTO sessions (id_hash, subject, sid, absolute_expires_at, idle_expires_at, sealed, refresh_lock_until) \
                         VALUES ($1, $2, $3, $4, $5, $6, 0) ON CONFLICT (id_hash) DO UPDATE SET subject = $2, sid = $3, \
                         absolute_expires_at = $4, idle_expires_at = $5, sealed = $6",
                    )
                    .bind(&row.key)
                    .bind(&row.subject)
                    .bind(&row.sid)
                    .bind(row.absolute_expires_at)
                    .bind(row.idle_expires_at)
                    .bind(&row.sealed)
                    .execute(pool)
                    .await?;
                });
                // Expired rows go away as new ones arrive: bounded work, no background task.
                with_pool!(db, |pool| {
                    sqlx::query(
                        "DELETE FROM sessions WHERE id_hash IN (SELECT id_hash FROM sessions WHERE absolute_expires_at < $1 OR idle_expires_at < $1 LIMIT 20)",
                    )
                    .bind(now)
                    .execute(pool)
                    .await?;
                });
                Ok(())
            }
            Backend::Redis(r) => {
                let mut c = r.conn();
                let p = r.prefix();
                let k = format!("{p}session:{}", row.key);
                let ttl = (row.idle_expires_at.min(row.absolute_expires_at) - now).max(1);
                let index_ttl = (row.absolute_expires_at - now).max(1);
                let mut pipe = redis::pipe();
                pipe.atomic().set_ex(&k, encode_redis_row(row), ttl as u64).ignore();
                let sub_key = format!("{p}session-sub:{}", row.subject);
                pipe.sadd(&sub_key, &row.key).ignore().expire(&sub_key, index_ttl).ignore();
                if let Some(sid) = &row.sid {
                    let sid_key = format!("{p}session-sid:{sid}");
                    pipe.sadd(&sid_key, &row.key).ignore().expire(&sid_key, index_ttl).ignore();
                }
                let () = pipe.query_async(&mut c).await.map_err(redis_err)?;
                Ok(())
            }
        }
    }

    /// Replaces a session's record only if it still exists: a refresh writing back what it got
    /// from the IdP. False, and nothing written, when the session was deleted meanwhile (a
    /// logout or back-channel logout raced the refresh and wins: an upsert here would bring
    /// the session back). Subject and `sid` do not change on refresh, so the Redis indexes
    /// stay as they are.
    pub async fn update(&self, row: &Row) -> Result<bool, StoreError> {
        match self {
            #[cfg(feature = "sql")]
            Backend::Sql(db) => {
                let n = with_pool!(db, |pool| {
                    sqlx::query(
                        "UPDATE sessions SET subject = $2, sid = $3, absolute_expires_at = $4, idle_expires_at = $5, sealed = $6 \
                         WHERE id_hash = $1",
                    )
                    .bind(&row.key)
                    .bind(&row.subject)
                    .bind(&row.sid)
                    .bind(row.absolute_expires_at)
                    .bind(row.idle_expires_at)
                    .bind(&row.sealed)
                    .execute(pool)
                    .await?
                    .rows_affected()
                });
                Ok(n == 1)
            }
            Backend::Redis(r) => {
                let mut c = r.conn();
                // XX: only if the key exists; KEEPTTL: the idle deadline stays the key's TTL.
                let set: Option<String> = redis::cmd("SET")
                    .arg(format!("{}session:{}", r.prefix(), row.key))
                    .arg(encode_redis_row(row))
                    .arg("XX")
                    .arg("KEEPTTL")
                    .query_async(&mut c)
                    .await
                    .map_err(redis_err)?;
                Ok(set.is_some())
            }
        }
    }

    /// Moves the idle deadline.
    pub async fn touch(&self, row: &Row, idle_expires_at: i64, now: i64) -> Result<(), StoreError> {
        match self {
            #[cfg(feature = "sql")]
            Backend::Sql(db) => {
                with_pool!(db, |pool| {
                    sqlx::query("UPDATE sessions SET idle_expires_at = $2 WHERE id_hash = $1")
                        .bind(&row.key)
                        .bind(idle_expires_at)
                        .execute(pool)
                        .await?;
                });
                Ok(())
            }
            Backend::Redis(r) => {
                let mut c = r.conn();
                let ttl = (idle_expires_at.min(row.absolute_expires_at) - now).max(1);
                let _: bool = c
                    .expire(format!("{}session:{}", r.prefix(), row.key), ttl)
                    .await
                    .map_err(redis_err)?;
                Ok(())
            }
        }
    }

    pub async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        match self {
            #[cfg(feature = "sql")]
            Backend::Sql(db) => {
                let n = with_pool!(db, |pool| {
                    sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
                        .bind(key)
                        .execute(pool)
                        .await?
                        .rows_affected()
                });
                Ok(n > 0)
            }
            Backend::Redis(r) => {
                let mut c = r.conn();
                let n: i64 =
                    c.del(format!("{}session:{key}", r.prefix())).await.map_err(redis_err)?;
                Ok(n > 0)
            }
        }
    }

    /// Ends every session of a provider session (`sid`) or, without one, of a subject.
    pub async fn delete_matching(
        &self,
        subject: Option<&str>,
        sid: Option<&str>,
    ) -> Result<u64, StoreError> {
        match self {
            #[cfg(feature = "sql")]
            Backend::Sql(db) => {
                let n = match (sid, subject) {
                    (Some(sid), _) => with_pool!(db, |pool| {
                        sqlx::query("DELETE FROM sessions WHERE sid = $1")
                            .bind(sid)
                            .execute(pool)
                            .await?
                            .rows_affected()
                    }),
                    (None, Some(sub)) => with_pool!(db, |pool| {
                        sqlx::query("DELETE FROM sessions WHERE subject = $1")
                            .bind(sub)
                            .execute(pool)
                            .await?
                            .rows_affected()
                    }),
                    (None, None) => 0,
                };
                Ok(n)
            }
            Backend::Redis(r) => {
                let mut c = r.conn();
                let p = r.prefix();
                let index = match (sid, subject) {
                    (Some(sid), _) => format!("{p}session-sid:{sid}"),
                    (None, Some(sub)) => format!("{p}session-sub:{sub}"),
                    (None, None) => return Ok(0),
                };
                let members: Vec<String> = c.smembers(&index).await.map_err(redis_err)?;
                let mut n = 0u64;
                for m in &members {
                    let d: i64 = c.del(format!("{p}session:{m}")).await.map_err(redis_err)?;
                    n += d as u64;
                }
                let _: i64 = c.del(&index).await.map_err(redis_err)?;
                Ok(n)
            }
        }
    }

    /// Every live session of a subject (for the admin API).
    pub async fn list_subject(&self, subject: &str, now: i64) -> Result<Vec<Row>, StoreError> {
        match self {
            #[cfg(feature = "sql")]
            Backend::Sql(db) => {
                let rows: Vec<(String, Option<String>, i64, i64)> = with_pool!(db, |pool| {
                    sqlx::query_as(
                        "SELECT id_hash, sid, absolute_expires_at, idle_expires_at FROM sessions \
                         WHERE subject = $1 AND absolute_expires_at >= $2 AND idle_expires_at >= $2 ORDER BY absolute_expires_at",
                    )
                    .bind(subject)
                    .bind(now)
                    .fetch_all(pool)
                    .await?
                });
                Ok(rows
                    .into_iter()
                    .map(|(key, sid, a, i)| Row {
                        key,
                        subject: subject.to_owned(),
                        sid,
                        absolute_expires_at: a,
                        idle_expires_at: i,
                        sealed: Vec::new(),
                    })
                    .collect())
            }
            Backend::Redis(r) => {
                let mut c = r.conn();
                let members: Vec<String> = c
                    .smembers(format!("{}session-sub:{subject}", r.prefix()))
                    .await
                    .map_err(redis_err)?;
                let mut out = Vec::new();
                for m in members {
                    if let Some(mut row) = Box::pin(self.get(&m, now)).await? {
                        row.sealed.clear();
                        out.push(row);
                    }
                }
                Ok(out)
            }
        }
    }

    /// Takes the session's refresh lock for [`LOCK_SECONDS`]; false when another holds it.
    pub async fn try_lock(&self, key: &str, now: i64) -> Result<bool, StoreError> {
        match self {
            #[cfg(feature = "sql")]
            Backend::Sql(db) => {
                let n = with_pool!(db, |pool| {
                    sqlx::query("UPDATE sessions SET refresh_lock_until = $2 WHERE id_hash = $1 AND refresh_lock_until < $3")
                        .bind(key)
                        .bind(now + LOCK_SECONDS)
                        .bind(now)
                        .execute(pool)
                        .await?
                        .rows_affected()
                });
                Ok(n == 1)
            }
            Backend::Redis(r) => {
                let mut c = r.conn();
                let set: Option<String> = redis::cmd("SET")
                    .arg(format!("{}session-lock:{key}", r.prefix()))
                    .arg(now)
                    .arg("NX")
                    .arg("EX")
                    .arg(LOCK_SECONDS)
                    .query_async(&mut c)
                    .await
                    .map_err(redis_err)?;
                Ok(set.is_some())
            }
        }
    }

    pub async fn unlock(&self, key: &str) -> Result<(), StoreError> {
        match self {
            #[cfg(feature = "sql")]
            Backend::Sql(db) => {
                with_pool!(db, |pool| {
                    sqlx::query("UPDATE sessions SET refresh_lock_until = 0 WHERE id_hash = $1")
                        .bind(key)
                        .execute(pool)
                        .await?;
                });
                Ok(())
            }
            Backend::Redis(r) => {
                let mut c = r.conn();
                let _: i64 =
                    c.del(format!("{}session-lock:{key}", r.prefix())).await.map_err(redis_err)?;
                Ok(())
            }
        }
    }

    /// Stores a single-use marker until `expires_at`; false if the key exists.
    pub async fn put_once(
        &self,
        key: &str,
        sealed: &[u8],
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        match self {
            #[cfg(feature = "sql")]
            Backend::Sql(db) => {
                with_pool!(db, |pool| {
                    sqlx::query("DELETE FROM oidc_pending WHERE expires_at < $1")
                        .bind(now)
                        .execute(pool)
                        .await?;
                });
                let n = with_pool!(db, |pool| {
                    sqlx::query("INSERT INTO oidc_pending (key, expires_at, sealed) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING")
                        .bind(key)
                        .bind(expires_at)
                        .bind(sealed)
                        .execute(pool)
                        .await?
                        .rows_affected()
                });
                Ok(n == 1)
            }
            Backend::Redis(r) => {
                let mut c = r.conn();
                let set: Option<String> = redis::cmd("SET")
                    .arg(format!("{}oidc:{key}", r.prefix()))
                    .arg(sealed)
                    .arg("NX")
                    .arg("EX")
                    .arg((expires_at - now).max(1))
                    .query_async(&mut c)
                    .await
                    .map_err(redis_err)?;
                Ok(set.is_some())
            }
        }
    }
}

/// subject, sid, absolute_expires_at, idle_expires_at, sealed.
#[cfg(feature = "sql")]
type SqlRow = (String, Option<String>, i64, i64, Vec<u8>);

fn redis_err(e: redis::RedisError) -> StoreError {
    StoreError::Redis(e.to_string())
}

/// Redis value: `subject \n sid \n absolute \n sealed-bytes`.
fn encode_redis_row(row: &Row) -> Vec<u8> {
    let mut v = Vec::with_capacity(row.sealed.len() + 128);
    v.extend_from_slice(row.subject.as_bytes());
    v.push(b'\n');
    v.extend_from_slice(row.sid.as_deref().unwrap_or("").as_bytes());
    v.push(b'\n');
    v.extend_from_slice(row.absolute_expires_at.to_string().as_bytes());
    v.push(b'\n');
    v.extend_from_slice(&row.sealed);
    v
}

fn decode_redis_row(key: &str, v: &[u8]) -> Result<Row, StoreError> {
    let bad = || StoreError::Corrupt("session record".into());
    let mut parts = v.splitn(4, |&b| b == b'\n');
    let subject = String::from_utf8(parts.next().ok_or_else(bad)?.to_vec()).map_err(|_| bad())?;
    let sid = String::from_utf8(parts.next().ok_or_else(bad)?.to_vec()).map_err(|_| bad())?;
    let abs = std::str::from_utf8(parts.next().ok_or_else(bad)?)
        .map_err(|_| bad())?
        .parse()
        .map_err(|_| bad())?;
    let sealed = parts.next().ok_or_else(bad)?.to_vec();
    Ok(Row {
        key: key.to_owned(),
        subject,
        sid: (!sid.is_empty()).then_some(sid),
        absolute_expires_at: abs,
        idle_expires_at: 0,
        sealed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_rows_round_trip() {
        let row = Row {
            key: "k".into(),
            subject: "alice".into(),
            sid: Some("s1".into()),
            absolute_expires_at: 42,
            idle_expires_at: 0,
            sealed: b"a\nb\x00c".to_vec(),
        };
        assert_eq!(decode_redis_row("k", &encode_redis_row(&row)).unwrap(), row);
        assert!(decode_redis_row("k", b"only").is_err());
    }
}
