//! Real stores for tests: a fresh PostgreSQL database per test (dropped afterwards) on the local
//! server (127.0.0.1:5432, user postgres, trust auth), and a unique Redis key prefix per test.

use std::sync::atomic::{AtomicU64, Ordering};

pub const PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
pub const REDIS_URL: &str = "redis://127.0.0.1:6379";

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name no other test (in this run or a concurrent one) uses.
pub fn unique_name(kind: &str) -> String {
    let mut r = [0u8; 4];
    getrandom::fill(&mut r).expect("random");
    format!(
        "fgtest_{kind}_{}_{}_{:08x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst),
        u32::from_le_bytes(r)
    )
}

/// A Redis prefix for one test: keys and channels never collide with other tests.
pub fn redis_prefix() -> String {
    format!("{}:", unique_name("r"))
}

/// Runs SQL on the admin database, on a throwaway runtime (usable from sync and async code).
fn admin_sql(sql: String) {
    sql_on(PG_ADMIN_URL.to_owned(), sql)
}

/// Runs SQL on the database at `url`, on a throwaway runtime.
fn sql_on(url: String, sql: String) {
    std::thread::spawn(move || {
        let rt =
            tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async move {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&url)
                .await
                .expect("PostgreSQL at 127.0.0.1:5432 (scripts/test.sh starts it)");
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut c).await.expect("admin SQL");
        })
    })
    .join()
    .expect("admin SQL thread");
}

/// A PostgreSQL database that exists for as long as this value does.
pub struct PgDb {
    pub name: String,
}

impl PgDb {
    pub fn create() -> PgDb {
        let name = unique_name("db");
        admin_sql(format!("CREATE DATABASE {name}"));
        PgDb { name }
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }

    /// Runs one SQL statement in this database (as the superuser).
    pub fn sql(&self, sql: &str) {
        sql_on(self.url(), sql.to_owned())
    }

    /// Cuts the connections that are waiting on `LISTEN` (the gateways' event listeners).
    pub fn terminate_listeners(&self) {
        admin_sql(format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}' AND query LIKE 'LISTEN%'",
            self.name
        ));
    }

    /// Drops the database now, cutting off every connection to it (a store outage).
    pub fn drop_now(&self) {
        admin_sql(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        self.drop_now();
    }
}

/// The two backends the same suite runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub const BACKENDS: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];

/// A `[store]` section for `backend`; keep the returned guard alive for the test's length.
pub fn store_section(backend: Backend) -> (String, Option<PgDb>) {
    match backend {
        Backend::Sqlite => ("[store]\nurl = \"sqlite://frontgate.db\"\n".into(), None),
        Backend::Postgres => {
            let db = PgDb::create();
            (format!("[store]\nurl = \"{}\"\n", db.url()), Some(db))
        }
    }
}
