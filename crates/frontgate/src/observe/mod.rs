//! The binary's logs and metrics exporter: JSON logs on stderr, Prometheus metrics for the
//! admin listener. The metric names are frontgate-core's ([`frontgate_core::observe`], re-exported
//! here), recorded through the `metrics` facade.

mod histogram;
pub mod traffic;

use std::sync::OnceLock;

use metrics_exporter_prometheus::PrometheusBuilder;
use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};
pub use frontgate_core::observe::*;
pub use histogram::MetricsHandle;

const LATENCY_BUCKETS: &[f64] = &[
    0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static METRICS: OnceLock<MetricsHandle> = OnceLock::new();

/// Installs frontgate's Prometheus recorder as the process's global metrics recorder, once;
/// later calls return the same handle. Every histogram gets the latency buckets (all of them
/// are latencies, in seconds). The `frontgate` binary calls this first thing; the library never
/// does, so an application embedding the layer keeps its own recorder (frontgate's metrics
/// then go to it).
pub fn install_metrics_recorder() -> MetricsHandle {
    METRICS
        .get_or_init(|| {
            let recorder = histogram::Recorder::new(
                PrometheusBuilder::new().build_recorder(),
                LATENCY_BUCKETS,
            );
            let handle = recorder.handle();
            // Another recorder may already be installed; ours then renders nothing.
            let _ = metrics::set_global_recorder(recorder);
            frontgate_core::observe::describe();
            handle
        })
        .clone()
}

/// The handle of the recorder [`install_metrics_recorder`] installed, if it did.
pub fn metrics_handle() -> Option<MetricsHandle> {
    METRICS.get().cloned()
}

/// Sets up logging from `[log]`. Safe to call more than once (later calls do nothing).
pub fn init_logging(config: &LogConfig) {
    let filter = std::env::var("FRONTGATE_LOG")
        .ok()
        .and_then(|spec| log_filter(&spec))
        .or_else(|| log_filter(&config.level))
        .unwrap_or_else(|| EnvFilter::new("info,rustls=error"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match config.format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// The log filter for `spec` (a `[log] level` or `FRONTGATE_LOG`; `None` when it does not
/// parse), with rustls held to errors unless `spec` names it: rustls warns about what a peer
/// sends (an IP address as SNI, which wrk and OpenSSL clients send for `https://127.0.0.1`, a
/// malformed message), one line per handshake that any client can trigger at will. Failed
/// handshakes are counted in `frontgate_tls_handshake_failures_total` instead.
fn log_filter(spec: &str) -> Option<EnvFilter> {
    let spec =
        if spec.contains("rustls") { spec.to_owned() } else { format!("{spec},rustls=error") };
    EnvFilter::try_new(spec).ok()
}
