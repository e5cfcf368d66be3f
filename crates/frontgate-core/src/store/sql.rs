//! The SQL store: one handle over SQLite (the default, a WAL-mode file in the data dir) or
//! PostgreSQL (for several nodes), with the embedded migrations run at open.
//!
//! Queries are written once in the dialect both accept (`$1` placeholders, integers for times,
//! text for JSON) and run on either pool with `with_pool!`.

use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use std::sync::Arc;

use sqlx::postgres::PgListener;

use super::events::{self, Events, RESYNC};
use super::{StoreError, redact_url};

/// Times the PostgreSQL event listener was (re-)established.
pub const LISTENS: &str = "frontgate_postgres_event_listens_total";
use crate::config::{StoreConfig, StoreUrl};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/migrations.rs"));
}

/// A pool on one of the two backends. Cheap to clone.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same block with `$pool` bound to whichever pool `$db` holds: write a query once,
/// run it on both backends.
macro_rules! with_pool {
    ($db:expr, |$pool:ident| $body:block) => {
        match $db {
            $crate::store::sql::Db::Sqlite($pool) => $body,
            $crate::store::sql::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

impl Db {
    /// Opens the store a config names (creating the SQLite file and its directory on first
    /// start) and brings its schema up to date.
    pub async fn open(config: &StoreConfig, data_dir: &std::path::Path) -> Result<Db, StoreError> {
        Db::open_for(config, data_dir, crate::store::Opening::Serve).await
    }

    /// [`Db::open`], or for `frontgate check` ([`crate::store::Opening::Check`]): the same
    /// connection, but no file created and no migration applied. A SQLite file that does not
    /// exist yet is stood in for by an empty in-memory database (its directory must be
    /// creatable); an existing one is opened read-only.
    pub async fn open_for(
        config: &StoreConfig,
        data_dir: &std::path::Path,
        opening: crate::store::Opening,
    ) -> Result<Db, StoreError> {
        let check = opening == crate::store::Opening::Check;
        let url = config
            .resolve(data_dir)
            .map_err(|m| StoreError::Connect { url: redact_url(&config.url.0), message: m })?;
        let db = match &url {
            StoreUrl::Sqlite(path) if check => {
                let shown = format!("sqlite://{}", path.display());
                let opts = if path.exists() {
                    SqliteConnectOptions::new().filename(path).read_only(true)
                } else {
                    if let Some(dir) = path.parent() {
                        // A relative path (`-c frontgate.toml` with a relative data_dir)
                        // ends in the empty path, which is the current directory.
                        let existing = dir
                            .ancestors()
                            .map(|a| {
                                if a.as_os_str().is_empty() { std::path::Path::new(".") } else { a }
                            })
                            .find(|a| a.exists())
                            .unwrap_or(dir);
                        let meta = std::fs::metadata(existing).map_err(|e| {
                            StoreError::Connect { url: shown.clone(), message: e.to_string() }
                        })?;
                        if !meta.is_dir() || meta.permissions().readonly() {
                            return Err(StoreError::Connect {
                                url: shown,
                                message: format!("{} cannot hold the database", existing.display()),
                            });
                        }
                    }
                    SqliteConnectOptions::from_str("sqlite::memory:").map_err(|e| {
                        StoreError::Connect { url: shown.clone(), message: e.to_string() }
                    })?
                };
                let pool = SqlitePoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(config.timeout.0)
                    .connect_with(opts)
                    .await
                    .map_err(|e| StoreError::Connect { url: shown, message: e.to_string() })?;
                return Ok(Db::Sqlite(pool));
            }
            StoreUrl::Sqlite(path) => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| StoreError::Connect {
                        url: path.display().to_string(),
                        message: e.to_string(),
                    })?;
                }
                let opts = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(config.busy_timeout.0)
                    .foreign_keys(true);
                let pool = SqlitePoolOptions::new()
                    .max_connections(config.max_connections)
                    .acquire_timeout(config.timeout.0)
                    .connect_with(opts)
                    .await
                    .map_err(|e| StoreError::Connect {
                        url: format!("sqlite://{}", path.display()),
                        message: e.to_string(),
                    })?;
                Db::Sqlite(pool)
            }
            StoreUrl::Postgres(u) => {
                let shown = redact_url(u);
                let opts = PgConnectOptions::from_str(u).map_err(|e| StoreError::Connect {
                    url: shown.clone(),
                    message: e.to_string(),
                })?;
                let pool = PgPoolOptions::new()
                    .max_connections(config.max_connections)
                    .acquire_timeout(config.timeout.0)
                    .connect_with(opts)
                    .await
                    .map_err(|e| StoreError::Connect { url: shown, message: e.to_string() })?;
                Db::Postgres(pool)
            }
        };
        if !check {
            db.migrate().await?;
        }
        Ok(db)
    }

    /// Sends an invalidation event to every node listening on this PostgreSQL database
    /// (`NOTIFY` reaches the sessions connected to the same database); nothing on SQLite, which
    /// one node has to itself.
    pub async fn notify(
        &self,
        channel: &str,
        topic: &str,
        payload: &str,
    ) -> Result<(), StoreError> {
        let Db::Postgres(pool) = self else { return Ok(()) };
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(channel)
            .bind(events::encode(topic, payload))
            .execute(pool)
            .await?;
        Ok(())
    }

    /// On PostgreSQL, listens on `channel` on the current runtime, forever, and hands each
    /// event to `hub`; after every (re-)connection `hub` gets [`RESYNC`], since events sent
    /// while no listener was connected are lost. The Redis subscriber's twin, for clusters that
    /// share a PostgreSQL store and no Redis.
    pub fn spawn_listener(&self, channel: String, hub: Arc<Events>) {
        let Db::Postgres(pool) = self else { return };
        // A pool of its own: a listener holds its connection for good, which must not starve
        // the store's pool (nor keep it from closing).
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect_lazy_with((*pool.connect_options()).clone());
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                let listening = async {
                    let mut l = PgListener::connect_with(&pool).await?;
                    l.listen(&channel).await?;
                    Ok::<_, sqlx::Error>(l)
                };
                match listening.await {
                    Ok(mut listener) => {
                        backoff = Duration::from_millis(100);
                        metrics::counter!(LISTENS).increment(1);
                        hub.deliver(RESYNC, "");
                        // `try_recv` gives None when the connection is lost: then listen anew
                        // (and resync) rather than let it reconnect silently.
                        while let Ok(Some(n)) = listener.try_recv().await {
                            if let Some((topic, payload)) = events::decode(n.payload()) {
                                hub.deliver(topic, payload);
                            }
                        }
                        tracing::warn!(channel = %channel, "postgres event listener lost its connection; reconnecting");
                    }
                    Err(e) => tracing::warn!(error = %e, "postgres LISTEN failed; retrying"),
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        });
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// Applies the embedded migrations not yet applied (PostgreSQL: under an advisory lock, so
    /// nodes starting together take turns).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let list = match self {
            Db::Sqlite(_) => embedded::SQLITE,
            Db::Postgres(_) => embedded::POSTGRES,
        };
        let migrations = list
            .iter()
            .map(|(version, description, sql)| {
                Migration::new(
                    *version,
                    (*description).into(),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect();
        let migrator = Migrator::with_migrations(migrations);
        let result = match self {
            Db::Sqlite(p) => migrator.run(p).await,
            Db::Postgres(p) => migrator.run(p).await,
        };
        result.map_err(|e| StoreError::Migrate(e.to_string()))
    }

    /// A cheap round trip, for readiness.
    pub async fn ping(&self) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    pub async fn close(&self) {
        with_pool!(self, |pool| { pool.close().await })
    }
}
