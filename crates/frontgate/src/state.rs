//! Process-wide state that outlives config reloads: connections to the stores (SQLite or
//! PostgreSQL, Redis) and the caches in front of them.
//!
//! Worker threads each run their own single-threaded runtime, and I/O objects belong to the
//! runtime that created them. So store connections live on one dedicated state runtime, and
//! workers run store operations there with [`Services::run`]: a hop across threads on the
//! uncached path only (cached answers never leave the worker).

use std::future::Future;

/// Shared state for every [`crate::pipeline::Gateway`] built in this process.
pub struct Services {
    runtime: tokio::runtime::Handle,
    /// Keeps the dedicated runtime alive (absent when borrowing the caller's runtime).
    _owned: Option<OwnedRuntime>,
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
    /// Starts the dedicated state runtime on its own thread (the server's case).
    pub fn start() -> std::io::Result<Services> {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).thread_name("frontgate-state").enable_all().build()?;
        let handle = rt.handle().clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new().name("frontgate-state-main".into()).spawn(move || {
            rt.block_on(async move {
                let _ = rx.await;
            });
            rt.shutdown_timeout(std::time::Duration::from_secs(1));
        })?;
        Ok(Services { runtime: handle, _owned: Some(OwnedRuntime { shutdown: Some(tx), thread: Some(thread) }) })
    }

    /// Uses the current runtime when there is one (embedding as a tower layer, tests), or
    /// starts a dedicated one.
    pub fn current_or_start() -> std::io::Result<Services> {
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => Ok(Services { runtime, _owned: None }),
            Err(_) => Services::start(),
        }
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
