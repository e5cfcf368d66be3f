//! `[shared]`: state shared between nodes in Redis (sessions, counters, replay sets, revocation
//! events), and what each concern does when Redis is unreachable.

use serde::Deserialize;

use super::values::EnvString;

/// `[shared]`: state shared between nodes in Redis, and what each concern does while Redis is
/// unreachable.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SharedConfig {
    /// `redis://host:port[/db]`; absent: everything stays in this process.
    pub redis: Option<EnvString>,
    /// Prefix for every Redis key and channel frontgate uses, so several deployments (or test
    /// runs) can share one Redis.
    pub prefix: String,
    /// What each concern (rate limits, sessions, replay sets) does while Redis is unreachable.
    pub on_outage: OnOutage,
}

impl Default for SharedConfig {
    fn default() -> Self {
        SharedConfig { redis: None, prefix: "frontgate:".into(), on_outage: OnOutage::default() }
    }
}

/// What a concern does while Redis is unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutageMode {
    /// Let requests through unchecked by this concern.
    Open,
    /// Refuse requests that need it (503 store_unavailable).
    Closed,
    /// Fall back to this process's own state (weaker across nodes, never unchecked).
    Local,
}

impl OutageMode {
    /// The config spelling: `open`, `closed` or `local`.
    pub fn as_str(self) -> &'static str {
        match self {
            OutageMode::Open => "open",
            OutageMode::Closed => "closed",
            OutageMode::Local => "local",
        }
    }
}

/// Per-concern outage modes. Unknown concerns and values are config errors.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OnOutage {
    /// Rate-limit counters: default `local` (in-process GCRA per node).
    pub rate_limits: OutageMode,
    /// Server-side sessions: default `closed` (no session means no login, never a guess).
    pub sessions: OutageMode,
    /// Replay sets (proof-of-work solutions, DPoP `jti`): default `local`.
    pub replay: OutageMode,
}

impl Default for OnOutage {
    fn default() -> Self {
        OnOutage {
            rate_limits: OutageMode::Local,
            sessions: OutageMode::Closed,
            replay: OutageMode::Local,
        }
    }
}

impl SharedConfig {
    pub(super) fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if let Some(r) = &self.redis
            && !(r.0.starts_with("redis://") || r.0.starts_with("rediss://"))
        {
            errors.push("[shared] redis must be a URL like \"redis://127.0.0.1:6379\"".into());
        }
        if self.on_outage.sessions == OutageMode::Open {
            errors.push("[shared] on_outage.sessions = \"open\" would accept any session cookie while Redis is down; use \"closed\" or \"local\"".into());
        }
        if self.prefix.is_empty()
            || self.prefix.len() > 64
            || self.prefix.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            errors.push("[shared] prefix must be 1 to 64 characters without spaces".into());
        }
        errors
    }
}
