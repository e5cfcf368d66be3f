//! Listeners and lifecycle: worker threads, TLS, HTTP/1.1 and HTTP/2, connection limits,
//! timeouts, the plain-HTTP redirect listener, reload on SIGHUP and drain on SIGTERM.
//!
//! Each worker thread runs its own single-threaded tokio runtime and accepts from a shared
//! listening socket, so a request is handled start to finish on one thread with no cross-thread
//! wake-ups (the nginx worker model). The main thread runs the admin listener, signals and
//! reloads; the assembled pipeline and TLS config are swapped atomically for all workers.

mod conn;
pub mod h1;
mod linger;
mod stall;
pub mod tls;

use crate::plan::Plan;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use arc_swap::ArcSwap;
use tokio::sync::watch;

use crate::config::Config;
use crate::observe;
use crate::pipeline::Gateway;

/// State shared by every worker and the main thread.
pub struct Shared {
    /// Store connections and caches, kept across reloads.
    pub services: Arc<crate::state::Services>,
    pub gateway: ArcSwap<Gateway>,
    pub tls: ArcSwap<Option<Arc<rustls::ServerConfig>>>,
    pub connections: AtomicUsize,
    pub draining: AtomicBool,
    /// The config file reloads read (none for the demo).
    pub config_path: Option<PathBuf>,
    /// The last reload's outcome (SIGHUP or the admin API).
    pub last_reload: std::sync::Mutex<Option<crate::admin::ReloadOutcome>>,
    /// Held for the whole of a reload, so one runs at a time. `last_reload` is locked only to
    /// read or store an outcome: the admin listener's single-threaded runtime (which also
    /// answers /ready and /metrics) never waits for a reload to finish.
    reloading: std::sync::Mutex<()>,
}

impl crate::admin::AdminHost for Shared {
    fn config(&self) -> Arc<crate::config::Config> {
        self.gateway.load().config().clone()
    }
    fn services(&self) -> &Arc<crate::state::Services> {
        &self.services
    }
    fn reload(&self) -> Option<crate::admin::ReloadOutcome> {
        self.config_path.as_ref()?;
        reload(self, self.config_path.as_deref());
        self.last_reload()
    }
    fn last_reload(&self) -> Option<crate::admin::ReloadOutcome> {
        self.last_reload.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
    fn draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr} ({key}): {source}")]
    Bind { addr: SocketAddr, key: &'static str, source: std::io::Error },
    #[error("TLS: {0}")]
    Tls(#[from] tls::TlsError),
    #[error("{0}")]
    Build(#[from] crate::pipeline::BuildError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    State(#[from] crate::state::StartError),
}

/// The addresses actually bound (ports may have been 0 in the config).
#[derive(Debug, Clone)]
pub struct Bound {
    pub main: SocketAddr,
    pub redirect: Option<SocketAddr>,
    pub admin: Option<SocketAddr>,
}

/// Binds one listener; `key` names the config key it comes from, for the error.
fn bind(addr: SocketAddr, key: &'static str) -> Result<std::net::TcpListener, ServeError> {
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        let _ = socket.set_only_v6(false);
    }
    socket.bind(&addr.into()).map_err(|e| ServeError::Bind { addr, key, source: e })?;
    socket.listen(1024).map_err(|e| ServeError::Bind { addr, key, source: e })?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// What `serve` makes of a plan before it listens: the TLS settings (certificate and key files
/// read, or the self-signed certificate made), the stores opened, and the pipeline built (key
/// sets, OIDC and JWT settings, every route's checks). `frontgate check` runs exactly this
/// ([`check`]), so the two cannot disagree on a config.
pub struct Prepared {
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub services: Arc<crate::state::Services>,
    pub gateway: Gateway,
}

pub fn prepare(plan: Plan) -> Result<Prepared, ServeError> {
    let config = &plan.config;
    let tls = tls::server_config(config)?;
    // Stores first: an unreachable database stops the start with its reason, before listening.
    let services = Arc::new(crate::state::Services::start(config)?);
    let gateway = Gateway::build(plan, &services)?;
    Ok(Prepared { tls, services, gateway })
}

/// [`prepare`] as `frontgate check` runs it: the same steps and the same refusals, with no side
/// effect. Certificate and key files are read; a self-signed certificate is made in memory, not
/// written; the stores are reached but nothing is created or migrated
/// ([`crate::state::Services::probe`]).
pub fn check(plan: Plan) -> Result<(), ServeError> {
    tls::server_config_unsaved(&plan.config)?;
    let services = Arc::new(crate::state::Services::probe(&plan.config)?);
    Gateway::build(plan, &services)?;
    Ok(())
}

/// Runs the gateway until SIGTERM/SIGINT, then drains. `config_path` is re-read on SIGHUP.
/// `on_bound` is called once the listeners are bound (the demo prints its banner there).
pub fn serve(
    plan: Plan,
    config_path: Option<PathBuf>,
    on_bound: impl FnOnce(&Bound, &Config),
) -> Result<(), ServeError> {
    let Prepared { tls: tls_config, services, gateway } = prepare(plan)?;
    let config = gateway.config().clone();
    let workers = config.server.worker_count();
    let main_listener = bind(config.server.listen.0, "[server] listen")?;
    let redirect_listener =
        config.server.redirect_http.map(|a| bind(a.0, "[server] redirect_http")).transpose()?;
    let admin_listener = if config.admin.enabled {
        Some(bind(config.admin.listen.0, "[admin] listen")?)
    } else {
        None
    };
    let bound = Bound {
        main: main_listener.local_addr()?,
        redirect: redirect_listener.as_ref().map(|l| l.local_addr()).transpose()?,
        admin: admin_listener.as_ref().map(|l| l.local_addr()).transpose()?,
    };
    let scheme = if tls_config.is_some() { "https" } else { "http" };
    tracing::info!(addr = %bound.main, scheme, workers, "listening");
    if let Some(a) = bound.redirect {
        tracing::info!(addr = %a, scheme = "http-redirect", "listening");
    }
    if let Some(a) = bound.admin {
        tracing::info!(addr = %a, scheme = "admin", "listening");
    }
    for w in config.warnings() {
        tracing::warn!("{w}");
    }

    let shared = Arc::new(Shared {
        services,
        gateway: ArcSwap::from_pointee(gateway),
        tls: ArcSwap::from_pointee(tls_config),
        connections: AtomicUsize::new(0),
        draining: AtomicBool::new(false),
        config_path: config_path.clone(),
        last_reload: std::sync::Mutex::new(None),
        reloading: std::sync::Mutex::new(()),
    });
    on_bound(&bound, &config);

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut threads = Vec::new();
    for i in 0..workers {
        let listener = main_listener.try_clone()?;
        let shared = shared.clone();
        let rx = shutdown_rx.clone();
        let grace = config.server.shutdown_grace.0;
        threads.push(std::thread::Builder::new().name(format!("frontgate-worker-{i}")).spawn(
            move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("worker runtime");
                rt.block_on(conn::accept_loop(listener, shared, rx, grace));
            },
        )?);
    }
    drop(main_listener);

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async move {
        if let Some(l) = redirect_listener {
            let shared = shared.clone();
            let rx = shutdown_rx.clone();
            tokio::spawn(conn::redirect_loop(l, shared, rx));
        }
        // The admin listener outlives the drain, so /ready answers 503 while it runs.
        let (admin_stop_tx, admin_stop_rx) = watch::channel(false);
        if let Some(l) = admin_listener {
            let shared = shared.clone();
            tokio::spawn(crate::admin::serve(l, shared, admin_stop_rx));
        }
        wait_for_signals(&shared, config_path).await;
        shared.draining.store(true, Ordering::SeqCst);
        tracing::info!(connections = shared.connections.load(Ordering::Relaxed), "draining");
        let _ = shutdown_tx.send(true);
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
        let _ = admin_stop_tx.send(true);
    });
    tracing::info!("stopped");
    Ok(())
}

#[cfg(unix)]
async fn wait_for_signals(shared: &Arc<Shared>, config_path: Option<PathBuf>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    let reloads = spawn_reloader(shared.clone(), config_path);
    loop {
        tokio::select! {
            _ = term.recv() => return,
            _ = int.recv() => return,
            _ = hup.recv() => {
                // Full: a reload is already queued, and it reads the files as they are then.
                if let Err(std::sync::mpsc::TrySendError::Disconnected(())) = reloads.try_send(()) {
                    tracing::error!("the reload thread is gone; restart to apply configuration changes");
                }
            }
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signals(_shared: &Arc<Shared>, _config_path: Option<PathBuf>) {
    let _ = tokio::signal::ctrl_c().await;
}

/// Reloads run on a thread of their own. Reading a large OpenAPI spec (or a file that blocks)
/// must not stall the admin listener, which shares the main thread's runtime, nor the handling
/// of SIGTERM. A SIGHUP during a reload queues one more; further ones while that one waits add
/// nothing, since it reads the newest files. The thread is not joined: a reload that never
/// ends does not hold up a shutdown.
#[cfg(unix)]
fn spawn_reloader(
    shared: Arc<Shared>,
    config_path: Option<PathBuf>,
) -> std::sync::mpsc::SyncSender<()> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<()>(1);
    // Entered, so that whatever building a pipeline spawns on the current runtime lands on the
    // main one, as when reloads ran there.
    let runtime = tokio::runtime::Handle::current();
    let spawned = std::thread::Builder::new().name("frontgate-reload".into()).spawn(move || {
        let _runtime = runtime.enter();
        while rx.recv().is_ok() {
            reload(&shared, config_path.as_deref());
        }
    });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the reload thread; SIGHUP will not reload");
    }
    tx
}

/// Re-reads the config and certificates. An invalid config is refused, with its errors logged,
/// and the running one keeps serving.
pub fn reload(shared: &Shared, config_path: Option<&std::path::Path>) {
    let Some(path) = config_path else {
        tracing::warn!(
            "reload requested, but this instance has no config file (demo); nothing to reload"
        );
        return;
    };
    let _one_at_a_time = shared.reloading.lock().unwrap_or_else(|e| e.into_inner());
    let outcome = (|| -> Result<(), String> {
        let plan = Plan::load(path).map_err(|e| e.to_string())?;
        let config = &plan.config;
        let old = shared.gateway.load();
        let old_cfg = old.config();
        if config.server.listen != old_cfg.server.listen
            || config.server.redirect_http != old_cfg.server.redirect_http
            || config.admin.listen != old_cfg.admin.listen
            || config.server.workers != old_cfg.server.workers
        {
            tracing::warn!("listen addresses and worker count take effect only after a restart");
        }
        if config.log.level != old_cfg.log.level
            || config.log.format != old_cfg.log.format
            || config.admin.enabled != old_cfg.admin.enabled
        {
            tracing::warn!(
                "[log] level/format and [admin] enabled take effect only after a restart"
            );
        }
        for w in shared.services.restart_needed(config) {
            tracing::warn!("{w}");
        }
        let tls = tls::server_config(config).map_err(|e| e.to_string())?;
        if tls.is_some() != old_cfg.server.tls_enabled() {
            return Err("switching TLS on or off needs a restart".into());
        }
        let gateway = Gateway::build(plan, &shared.services).map_err(|e| e.to_string())?;
        shared.tls.store(Arc::new(tls));
        shared.gateway.store(Arc::new(gateway));
        Ok(())
    })();
    *shared.last_reload.lock().unwrap_or_else(|e| e.into_inner()) =
        Some(crate::admin::ReloadOutcome {
            at: crate::session::now(),
            ok: outcome.is_ok(),
            error: outcome.as_ref().err().cloned(),
        });
    match outcome {
        Ok(()) => {
            metrics::counter!(observe::RELOADS, "result" => "ok").increment(1);
            tracing::info!(path = %path.display(), "configuration reloaded");
        }
        Err(e) => {
            metrics::counter!(observe::RELOADS, "result" => "refused").increment(1);
            tracing::error!(path = %path.display(), errors = %e, "reload refused; the previous configuration keeps serving");
        }
    }
}
