//! Key records in the SQL store: one set of queries for SQLite and PostgreSQL.

use sqlx::Row;

use super::record::KeyRecord;
use crate::store::sql::with_pool;
use crate::store::{Db, StoreError};

const COLUMNS: &str = "id, digest, hint, name, subject, scopes, origins, cidrs, expires_at, rate_limit, uses_remaining, metadata, created_at, last_used_at, revoked_at, revoked_reason, rotated_from, replaced_by";

/// Decodes a row into a record (a macro: the row type differs per backend).
macro_rules! record_from_row {
    ($r:expr) => {{
        let r = $r;
        let digest: Vec<u8> = r.try_get("digest")?;
        let list = |col: &str| -> Result<Vec<String>, StoreError> {
            let text: String = r.try_get(col)?;
            serde_json::from_str(&text)
                .map_err(|e| StoreError::Corrupt(format!("api_keys.{col}: {e}")))
        };
        let cidrs = list("cidrs")?
            .iter()
            .map(|c| {
                c.parse::<ipnet::IpNet>()
                    .map_err(|e| StoreError::Corrupt(format!("api_keys.cidrs: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let metadata: String = r.try_get("metadata")?;
        KeyRecord {
            id: r.try_get("id")?,
            digest: digest
                .as_slice()
                .try_into()
                .map_err(|_| StoreError::Corrupt("api_keys.digest is not 32 bytes".into()))?,
            hint: r.try_get("hint")?,
            name: r.try_get("name")?,
            subject: r.try_get("subject")?,
            scopes: list("scopes")?,
            origins: list("origins")?,
            cidrs,
            expires_at: r.try_get("expires_at")?,
            rate_limit: r.try_get("rate_limit")?,
            uses_remaining: r.try_get("uses_remaining")?,
            metadata: serde_json::from_str(&metadata)
                .map_err(|e| StoreError::Corrupt(format!("api_keys.metadata: {e}")))?,
            created_at: r.try_get("created_at")?,
            last_used_at: r.try_get("last_used_at")?,
            revoked_at: r.try_get("revoked_at")?,
            revoked_reason: r.try_get("revoked_reason")?,
            rotated_from: r.try_get("rotated_from")?,
            replaced_by: r.try_get("replaced_by")?,
        }
    }};
}

fn json_list(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

pub async fn insert(db: &Db, k: &KeyRecord) -> Result<(), StoreError> {
    let cidrs: Vec<String> = k.cidrs.iter().map(ToString::to_string).collect();
    with_pool!(db, |pool| {
        sqlx::query(
            "INSERT INTO api_keys (id, digest, hint, name, subject, scopes, origins, cidrs, expires_at, rate_limit, uses_remaining, metadata, created_at, rotated_from) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(&k.id)
        .bind(k.digest.as_slice())
        .bind(&k.hint)
        .bind(&k.name)
        .bind(&k.subject)
        .bind(json_list(&k.scopes))
        .bind(json_list(&k.origins))
        .bind(json_list(&cidrs))
        .bind(k.expires_at)
        .bind(&k.rate_limit)
        .bind(k.uses_remaining)
        .bind(k.metadata.to_string())
        .bind(k.created_at)
        .bind(&k.rotated_from)
        .execute(pool)
        .await?;
    });
    Ok(())
}

/// Inserts a key owned by a signed-in user, unless the owner already has `max_live` live
/// (not revoked, not expired at `now`) keys. Counting and inserting are one statement; on
/// PostgreSQL a transaction-scoped advisory lock on the owner also serialises concurrent
/// mints (under READ COMMITTED two statements could otherwise both see room for one more).
/// Returns whether the key was inserted.
pub async fn insert_owned(
    db: &Db,
    k: &KeyRecord,
    owner: &str,
    max_live: i64,
    now: i64,
) -> Result<bool, StoreError> {
    let cidrs: Vec<String> = k.cidrs.iter().map(ToString::to_string).collect();
    let sql = "INSERT INTO api_keys (id, digest, hint, name, subject, scopes, origins, cidrs, expires_at, rate_limit, uses_remaining, metadata, created_at, rotated_from, owner) \
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15 \
         WHERE (SELECT COUNT(*) FROM api_keys WHERE owner = $15 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $16)) < $17";
    macro_rules! bound {
        () => {
            sqlx::query(sql)
                .bind(&k.id)
                .bind(k.digest.as_slice())
                .bind(&k.hint)
                .bind(&k.name)
                .bind(&k.subject)
                .bind(json_list(&k.scopes))
                .bind(json_list(&k.origins))
                .bind(json_list(&cidrs))
                .bind(k.expires_at)
                .bind(&k.rate_limit)
                .bind(k.uses_remaining)
                .bind(k.metadata.to_string())
                .bind(k.created_at)
                .bind(&k.rotated_from)
                .bind(owner)
                .bind(now)
                .bind(max_live)
        };
    }
    let inserted = match db {
        Db::Sqlite(pool) => bound!().execute(pool).await?.rows_affected(),
        Db::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
                .bind(format!("frontgate.api_keys.owner:{owner}"))
                .execute(&mut *tx)
                .await?;
            let n = bound!().execute(&mut *tx).await?.rows_affected();
            tx.commit().await?;
            n
        }
    };
    Ok(inserted == 1)
}

/// The keys a signed-in user owns, newest first (revoked and expired ones too, at most
/// `limit`).
pub async fn list_owned(db: &Db, owner: &str, limit: i64) -> Result<Vec<KeyRecord>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM api_keys WHERE owner = $1 ORDER BY created_at DESC, id LIMIT $2"
    ));
    with_pool!(db, |pool| {
        let rows = sqlx::query(sql).bind(owner).bind(limit).fetch_all(pool).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(record_from_row!(r));
        }
        Ok(out)
    })
}

/// Who owns a key: `None` when there is no such key or no user owns it.
pub async fn owner_of(db: &Db, id: &str) -> Result<Option<String>, StoreError> {
    with_pool!(db, |pool| {
        let row = sqlx::query("SELECT owner FROM api_keys WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?;
        Ok(match row {
            Some(r) => r.try_get::<Option<String>, _>("owner")?,
            None => None,
        })
    })
}

/// The key whose digest this is: the uncached verification path (one indexed lookup).
pub async fn by_digest(db: &Db, digest: &[u8; 32]) -> Result<Option<KeyRecord>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM api_keys WHERE digest = $1"));
    with_pool!(db, |pool| {
        let row = sqlx::query(sql).bind(digest.as_slice()).fetch_optional(pool).await?;
        Ok(match row {
            Some(r) => Some(record_from_row!(&r)),
            None => None,
        })
    })
}

pub async fn by_id(db: &Db, id: &str) -> Result<Option<KeyRecord>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM api_keys WHERE id = $1"));
    with_pool!(db, |pool| {
        let row = sqlx::query(sql).bind(id).fetch_optional(pool).await?;
        Ok(match row {
            Some(r) => Some(record_from_row!(&r)),
            None => None,
        })
    })
}

/// Up to `limit` keys in id order, after the id `after` (a cursor for the next page).
pub async fn list(db: &Db, after: Option<&str>, limit: i64) -> Result<Vec<KeyRecord>, StoreError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM api_keys WHERE id > $1 ORDER BY id LIMIT $2"
    ));
    with_pool!(db, |pool| {
        let rows = sqlx::query(sql).bind(after.unwrap_or("")).bind(limit).fetch_all(pool).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(record_from_row!(r));
        }
        Ok(out)
    })
}

/// Marks a key revoked (once: a second revocation keeps the first time and reason). Returns
/// whether this call revoked it.
pub async fn revoke(db: &Db, id: &str, at: i64, reason: &str) -> Result<bool, StoreError> {
    with_pool!(db, |pool| {
        let done = sqlx::query("UPDATE api_keys SET revoked_at = $1, revoked_reason = $2 WHERE id = $3 AND revoked_at IS NULL")
            .bind(at)
            .bind(reason)
            .bind(id)
            .execute(pool)
            .await?;
        Ok(done.rows_affected() == 1)
    })
}

/// Ends a rotated key's life at `deadline` (never later than it would have ended) and links
/// it to its successor.
pub async fn retire(db: &Db, id: &str, deadline: i64, replaced_by: &str) -> Result<(), StoreError> {
    with_pool!(db, |pool| {
        sqlx::query(
            "UPDATE api_keys SET expires_at = CASE WHEN expires_at IS NULL OR expires_at > $1 THEN $1 ELSE expires_at END, replaced_by = $2 WHERE id = $3",
        )
        .bind(deadline)
        .bind(replaced_by)
        .bind(id)
        .execute(pool)
        .await?;
    });
    Ok(())
}

/// Takes one use from a key's budget, atomically. `false` when none is left.
pub async fn consume_use(db: &Db, id: &str) -> Result<bool, StoreError> {
    with_pool!(db, |pool| {
        let done = sqlx::query("UPDATE api_keys SET uses_remaining = uses_remaining - 1 WHERE id = $1 AND uses_remaining > 0")
            .bind(id)
            .execute(pool)
            .await?;
        Ok(done.rows_affected() == 1)
    })
}

/// Writes a batch of last-used times in one transaction.
pub async fn touch(db: &Db, batch: &[(String, i64)]) -> Result<(), StoreError> {
    if batch.is_empty() {
        return Ok(());
    }
    with_pool!(db, |pool| {
        let mut tx = pool.begin().await?;
        for (id, at) in batch {
            sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)")
                .bind(*at)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
    });
    Ok(())
}

/// Inserts many records in multi-row statements (benchmark seeding).
pub async fn insert_many(db: &Db, records: &[KeyRecord]) -> Result<(), StoreError> {
    // 14 binds a row; SQLite allows 32766 binds, PostgreSQL 65535.
    for chunk in records.chunks(1000) {
        let mut sql = String::from(
            "INSERT INTO api_keys (id, digest, hint, name, subject, scopes, origins, cidrs, expires_at, rate_limit, uses_remaining, metadata, created_at, rotated_from) VALUES ",
        );
        for i in 0..chunk.len() {
            let b = i * 14;
            if i > 0 {
                sql.push(',');
            }
            sql.push('(');
            for j in 1..=14 {
                if j > 1 {
                    sql.push(',');
                }
                sql.push_str(&format!("${}", b + j));
            }
            sql.push(')');
        }
        with_pool!(db, |pool| {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
            for k in chunk {
                q = q
                    .bind(k.id.clone())
                    .bind(k.digest.to_vec())
                    .bind(k.hint.clone())
                    .bind(k.name.clone())
                    .bind(k.subject.clone())
                    .bind(json_list(&k.scopes))
                    .bind(json_list(&k.origins))
                    .bind("[]")
                    .bind(k.expires_at)
                    .bind(k.rate_limit.clone())
                    .bind(k.uses_remaining)
                    .bind(k.metadata.to_string())
                    .bind(k.created_at)
                    .bind(k.rotated_from.clone());
            }
            q.execute(pool).await?;
        });
    }
    Ok(())
}
