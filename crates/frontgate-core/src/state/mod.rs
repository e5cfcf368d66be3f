//! Process-wide state that outlives config reloads: connections to the stores (SQLite or
//! PostgreSQL, Redis) and the caches in front of them.
//!
//! Worker threads each run their own single-threaded runtime, and I/O objects belong to the
//! runtime that created them. So store connections live on one dedicated state runtime, and
//! workers run store operations there with [`Services::run`]: a hop across threads on the
//! uncached path only (cached answers never leave the worker).

pub mod replay;

use std::future::Future;
use std::sync::Arc;

use crate::config::{Config, SharedConfig, StoreConfig};
#[cfg(feature = "sql")]
use crate::store::Db;
use crate::store::redis::Redis;
use crate::store::{Events, StoreError};

pub use crate::store::Opening;

/// Shared state for every [`crate::admission::Admission`] built in this process (each gateway and embedded layer).
pub struct Services {
    runtime: tokio::runtime::Handle,
    /// The SQL store, when a feature in the config needs one.
    #[cfg(feature = "sql")]
    db: Option<Db>,
    /// The effective `[store]` and `[shared]` this was started with (a reload cannot change them).
    store_config: StoreConfig,
    shared_config: SharedConfig,
    redis: Option<Redis>,
    events: Arc<Events>,
    /// In-process state that must survive reloads (rate-limit buckets), by owner-chosen key.
    kept: std::sync::Mutex<std::collections::HashMap<String, Arc<dyn std::any::Any + Send + Sync>>>,
    /// Keeps the dedicated runtime alive (absent when borrowing the caller's runtime).
    /// Declared last: dropped after the pools, so they close on a live runtime.
    _owned: Option<OwnedRuntime>,
}

/// Why the stores could not be opened at start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot start the state runtime: {0}")]
    Runtime(#[from] std::io::Error),
    #[error("{0}")]
    Store(#[from] StoreError),
}

struct OwnedRuntime {
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Services {
    /// Starts the state runtime and opens what `config` needs: the SQL store (migrated) when a
    /// feature keeps durable state, Redis when `[shared] redis` is set, with its event
    /// subscriber. An unreachable store is an error here, never a server that fails later.
    pub fn start(config: &Config) -> Result<Services, StartError> {
        let mut services = Services::runtime_only()?;
        services.connect(config, Opening::Serve)?;
        Ok(services)
    }

    /// What `frontgate check` opens: the same stores, reached the same way, but nothing is
    /// created or changed: no SQLite file made (a missing one is stood in for by an empty
    /// in-memory database), no migration applied, no event listener started.
    pub fn probe(config: &Config) -> Result<Services, StartError> {
        let mut services = Services::runtime_only()?;
        services.connect(config, Opening::Check)?;
        Ok(services)
    }

    /// Uses the current runtime when there is one and the config needs no store (embedding
    /// as a tower layer), or starts a dedicated one and connects.
    pub fn current_or_start(config: &Config) -> Result<Services, StartError> {
        if !config.needs_store()
            && config.shared.redis.is_none()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            return Ok(Services::bare(runtime, None));
        }
        Services::start(config)
    }

    fn bare(runtime: tokio::runtime::Handle, owned: Option<OwnedRuntime>) -> Services {
        Services {
            runtime,
            #[cfg(feature = "sql")]
            db: None,
            store_config: StoreConfig::default(),
            shared_config: SharedConfig::default(),
            redis: None,
            events: Events::new(),
            kept: Default::default(),
            _owned: owned,
        }
    }

    fn connect(&mut self, config: &Config, opening: Opening) -> Result<(), StartError> {
        self.store_config = config.store_config();
        self.shared_config = config.shared.clone();
        #[cfg(feature = "sql")]
        if config.needs_store() {
            let (store, dir) = (self.store_config.clone(), config.data_dir.clone());
            let db = self
                .block_on(async move { Db::open_for(&store, &dir, opening).await })
                .map_err(|_| StoreError::Stopped)??;
            tracing::info!(backend = db.backend(), "store open");
            self.db = Some(db);
        }
        if opening == Opening::Check {
            if let Some(url) = &config.shared.redis {
                let (url, prefix, timeout) =
                    (url.0.clone(), config.shared.prefix.clone(), self.store_config.timeout.0);
                let redis = self
                    .block_on(async move { Redis::connect(&url, &prefix, timeout).await })
                    .map_err(|_| StoreError::Stopped)??;
                self.redis = Some(redis);
            }
            return Ok(());
        }
        #[cfg(feature = "sql")]
        if config.shared.redis.is_none()
            && let Some(db @ Db::Postgres(_)) = &self.db
        {
            // No Redis: nodes sharing the PostgreSQL store hear each other's events there.
            let _on_state_runtime = self.runtime.enter();
            db.spawn_listener(self.event_channel(), self.events.clone());
        }
        if let Some(url) = &config.shared.redis {
            let (url, prefix, timeout) =
                (url.0.clone(), config.shared.prefix.clone(), self.store_config.timeout.0);
            let events = self.events.clone();
            let redis = self
                .block_on(async move {
                    let r = Redis::connect(&url, &prefix, timeout).await?;
                    r.spawn_subscriber(events);
                    Ok::<_, StoreError>(r)
                })
                .map_err(|_| StoreError::Stopped)??;
            tracing::info!(channel = redis.channel(), "redis connected");
            self.redis = Some(redis);
        }
        Ok(())
    }

    /// The SQL store; `None` when no feature in the config asked for one at start.
    #[cfg(feature = "sql")]
    pub fn db(&self) -> Option<&Db> {
        self.db.as_ref()
    }

    /// How long a store operation may take before it counts as an outage (`[store] timeout`).
    pub fn store_timeout(&self) -> std::time::Duration {
        self.store_config.timeout.0
    }

    /// The in-process state kept under `key` across reloads, made by `make` the first time. A
    /// config change that should reset the state changes the key.
    pub fn kept<T: Send + Sync + 'static>(&self, key: &str, make: impl FnOnce() -> T) -> Arc<T> {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = kept.get(key).and_then(|v| v.clone().downcast::<T>().ok()) {
            return v;
        }
        let v = Arc::new(make());
        kept.insert(key.to_owned(), v.clone());
        v
    }

    /// Redis, when `[shared] redis` is set.
    pub fn redis(&self) -> Option<&Redis> {
        self.redis.as_ref()
    }

    /// The process's event hub (invalidation messages from this node and, via Redis, others).
    pub fn events(&self) -> &Arc<Events> {
        &self.events
    }

    /// Delivers an event to this process's subscribers at once, then to other nodes through
    /// Redis when configured, else through a PostgreSQL store's `NOTIFY`. A failed publish is
    /// returned: other nodes then catch up within their cache TTL.
    pub async fn publish(&self, topic: &str, payload: &str) -> Result<(), StoreError> {
        self.events.deliver(topic, payload);
        let (t, p) = (topic.to_owned(), payload.to_owned());
        if let Some(redis) = self.redis.clone() {
            return self
                .run(async move { redis.publish(&t, &p).await })
                .await
                .map_err(|_| StoreError::Stopped)?;
        }
        #[cfg(feature = "sql")]
        if let Some(db @ Db::Postgres(_)) = self.db.clone() {
            let channel = self.event_channel();
            return self
                .run(async move { db.notify(&channel, &t, &p).await })
                .await
                .map_err(|_| StoreError::Stopped)?;
        }
        Ok(())
    }

    /// Whether the SQL store is open.
    fn has_db(&self) -> bool {
        #[cfg(feature = "sql")]
        return self.db.is_some();
        #[cfg(not(feature = "sql"))]
        false
    }

    /// The PostgreSQL channel events travel on: `<[shared] prefix>events`, like Redis's.
    #[cfg(feature = "sql")]
    fn event_channel(&self) -> String {
        format!("{}events", self.shared_config.prefix)
    }

    /// What a reload with `config` cannot change: returns a warning per section that differs.
    pub fn restart_needed(&self, config: &Config) -> Vec<&'static str> {
        let mut w = Vec::new();
        if config.store_config() != self.store_config || (config.needs_store() && !self.has_db()) {
            w.push("[store] changed (or is newly needed): it takes effect only after a restart");
        }
        if config.shared != self.shared_config {
            w.push("[shared] changed: it takes effect only after a restart");
        }
        w
    }

    /// The dedicated state runtime alone, with no store (tests, benchmarks, the CLI before it
    /// connects).
    pub fn runtime_only() -> std::io::Result<Services> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("frontgate-state")
            .enable_all()
            .build()?;
        let handle = rt.handle().clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread =
            std::thread::Builder::new().name("frontgate-state-main".into()).spawn(move || {
                rt.block_on(async move {
                    let _ = rx.await;
                });
                rt.shutdown_timeout(std::time::Duration::from_secs(1));
            })?;
        Ok(Services::bare(handle, Some(OwnedRuntime { shutdown: Some(tx), thread: Some(thread) })))
    }

    /// The state runtime, to create store connections on.
    pub fn runtime(&self) -> &tokio::runtime::Handle {
        &self.runtime
    }

    /// Runs a store operation on the state runtime and waits for it from any runtime.
    pub async fn run<F, T>(&self, fut: F) -> Result<T, StateError>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        self.runtime.spawn(fut).await.map_err(|_| StateError::Stopped)
    }

    /// Blocks the calling (non-async) thread on a store operation: startup and the CLI.
    pub fn block_on<F, T>(&self, fut: F) -> Result<T, StateError>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::channel();
        self.runtime.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv().map_err(|_| StateError::Stopped)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("the state runtime has stopped")]
    Stopped,
}
