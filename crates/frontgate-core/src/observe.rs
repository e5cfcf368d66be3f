//! The names of the metrics frontgate records, and their descriptions. Metrics go through the
//! `metrics` facade to whatever recorder the process installed: the `frontgate` binary installs
//! its Prometheus exporter; an application embedding the layer keeps its own.
//!
//! Request logs never include headers or query strings, so credentials (Authorization,
//! Cookie, API keys, tokens in URLs) cannot reach a log line.

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

/// Registers the descriptions of the metrics above with the installed recorder.
pub fn describe() {
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
