//! `[log]`: logging level, format and the access log.

use serde::Deserialize;

/// `[log]`: the log filter, the line format and the access log.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A tracing filter: "info", "debug", "frontgate=debug,hyper=info".
    pub level: String,
    /// The log line format, written to stderr. Default `json`.
    pub format: LogFormat,
    /// One line per request (method, route, status, code, durations, request id).
    pub access_log: bool,
}

/// `[log] format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable text lines.
    Text,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { level: "info".into(), format: LogFormat::Json, access_log: true }
    }
}
