//! Logs and metrics: JSON logs on stderr, Prometheus metrics for the admin listener.
//!
//! Request logs never include headers or query strings, so credentials (Authorization,
//! Cookie, API keys, tokens in URLs) cannot reach a log line.

mod histogram;
pub mod traffic;

use std::sync::OnceLock;

use metrics_exporter_prometheus::PrometheusBuilder;
use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};
pub use histogram::MetricsHandle;

pub const REQUESTS: &str = "frontgate_requests_total";
pub const DURATION: &str = "frontgate_request_duration_seconds";
pub const OVERHEAD: &str = "frontgate_overhead_seconds";
pub const CONNECTIONS_ACTIVE: &str = "frontgate_connections_active";
pub const CONNECTIONS: &str = "frontgate_connections_total";
pub const TLS_HANDSHAKE_FAILURES: &str = "frontgate_tls_handshake_failures_total";
pub const CONNECTIONS_REFUSED: &str = "frontgate_connections_refused_total";
pub const TUNNELS_ACTIVE: &str = "frontgate_websocket_tunnels_active";
pub const RELOADS: &str = "frontgate_config_reloads_total";
pub const RATE_LIMITED: &str = "frontgate_rate_limited_total";
pub const RATE_LIMIT_OUTAGES: &str = "frontgate_rate_limit_store_errors_total";
pub const FIELDS_DROPPED: &str = "frontgate_request_fields_dropped_total";

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
            describe();
            handle
        })
        .clone()
}

/// The handle of the recorder [`install_metrics_recorder`] installed, if it did.
pub fn metrics_handle() -> Option<MetricsHandle> {
    METRICS.get().cloned()
}

fn describe() {
    metrics::describe_counter!(
        REQUESTS,
        "Requests by route, decision (forwarded, served, denied) and problem code"
    );
    metrics::describe_histogram!(
        DURATION,
        metrics::Unit::Seconds,
        "Time from request head to response head"
    );
    metrics::describe_histogram!(
        OVERHEAD,
        metrics::Unit::Seconds,
        "Gateway time excluding the upstream's time to response head"
    );
    metrics::describe_gauge!(CONNECTIONS_ACTIVE, "Open client connections");
    metrics::describe_counter!(CONNECTIONS, "Accepted client connections");
    metrics::describe_counter!(
        CONNECTIONS_REFUSED,
        "Connections closed at once because max_connections was reached"
    );
    metrics::describe_counter!(TLS_HANDSHAKE_FAILURES, "TLS handshakes that failed or timed out");
    metrics::describe_gauge!(
        TUNNELS_ACTIVE,
        "Open WebSocket tunnels (counted against max_connections)"
    );
    metrics::describe_counter!(RELOADS, "Configuration reloads by result");
    metrics::describe_counter!(
        FIELDS_DROPPED,
        "Request header fields removed before routing, by reason (underscore)"
    );
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
