//! Replay sets: remember a one-time value (a solved challenge's nonce, a CAPTCHA token, a DPoP
//! `jti`) until it expires, and refuse it a second time.
//!
//! One node keeps them in process ([`MemoryReplaySet`], bounded); many nodes share Redis
//! (`SET key 1 NX PX ttl`, see `RedisReplaySet`). Callers write the entry only after the value
//! has been verified, so a forged value can never burn a real one.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The answer of [`ReplaySet::insert_once`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// First time seen: the value is now spent.
    Fresh,
    /// Already spent.
    Replayed,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The in-process set is full of unexpired entries: refusing is safer than forgetting.
    #[error("the replay set is full")]
    Full,
    #[error("the replay store is unavailable: {0}")]
    Unavailable(String),
}

pub type ReplayFuture<'a> = Pin<Box<dyn Future<Output = Result<Inserted, ReplayError>> + Send + 'a>>;

/// Insert-once with a time to live.
pub trait ReplaySet: Send + Sync + 'static {
    /// Records `key` for `ttl` unless it is already recorded. `key` should carry a namespace
    /// (`pow:`, `captcha:`, `dpop:`).
    fn insert_once<'a>(&'a self, key: &'a str, ttl: Duration) -> ReplayFuture<'a>;
}

/// An in-process replay set with a cap on entries; expired entries are swept when it fills.
pub struct MemoryReplaySet {
    entries: Mutex<HashMap<Box<str>, Instant>>,
    cap: usize,
}

impl MemoryReplaySet {
    pub fn new(cap: usize) -> Self {
        MemoryReplaySet { entries: Mutex::new(HashMap::new()), cap }
    }

    /// The set shared by everything in this process, so that a config reload (which rebuilds the
    /// pipeline) does not forget what was spent.
    pub fn process() -> Arc<MemoryReplaySet> {
        static SET: OnceLock<Arc<MemoryReplaySet>> = OnceLock::new();
        SET.get_or_init(|| Arc::new(MemoryReplaySet::new(1_000_000))).clone()
    }

    /// Synchronous insert-once, at `now` (injectable for tests).
    pub fn insert_at(&self, key: &str, ttl: Duration, now: Instant) -> Result<Inserted, ReplayError> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.get(key).is_some_and(|expiry| *expiry > now) {
            return Ok(Inserted::Replayed);
        }
        if entries.len() >= self.cap && !entries.contains_key(key) {
            entries.retain(|_, expiry| *expiry > now);
            if entries.len() >= self.cap {
                return Err(ReplayError::Full);
            }
        }
        entries.insert(key.into(), now + ttl);
        Ok(Inserted::Fresh)
    }

    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ReplaySet for MemoryReplaySet {
    fn insert_once<'a>(&'a self, key: &'a str, ttl: Duration) -> ReplayFuture<'a> {
        let result = self.insert_at(key, ttl, Instant::now());
        Box::pin(std::future::ready(result))
    }
}

/// A replay set in Redis, shared by every node: `SET <prefix>replay:<key> 1 NX PX <ttl>`, run
/// on the state runtime. While Redis is unreachable it does what `[shared] on_outage.replay`
/// says: refuse (`closed`), fall back to this process's set (`local`: a value could then be
/// spent once per node), or let the value through (`open`).
pub struct RedisReplaySet {
    redis: crate::store::redis::Redis,
    services: Arc<crate::state::Services>,
    outage: crate::config::shared::OutageMode,
    local: Arc<MemoryReplaySet>,
}

impl RedisReplaySet {
    pub fn new(redis: crate::store::redis::Redis, services: Arc<crate::state::Services>, outage: crate::config::shared::OutageMode) -> Self {
        RedisReplaySet { redis, services, outage, local: MemoryReplaySet::process() }
    }

    async fn set_nx(&self, key: &str, ttl: Duration) -> Result<Inserted, ReplayError> {
        let mut conn = self.redis.conn();
        let full = format!("{}replay:{key}", self.redis.prefix());
        let ms = ttl.as_millis().clamp(1, u128::from(u64::MAX)) as u64;
        let answer = self
            .services
            .run(async move {
                redis::cmd("SET").arg(full).arg(1).arg("NX").arg("PX").arg(ms).query_async::<Option<String>>(&mut conn).await
            })
            .await
            .map_err(|e| ReplayError::Unavailable(e.to_string()))?
            .map_err(|e| ReplayError::Unavailable(e.to_string()))?;
        Ok(if answer.is_some() { Inserted::Fresh } else { Inserted::Replayed })
    }
}

impl ReplaySet for RedisReplaySet {
    fn insert_once<'a>(&'a self, key: &'a str, ttl: Duration) -> ReplayFuture<'a> {
        Box::pin(async move {
            match self.set_nx(key, ttl).await {
                Err(ReplayError::Unavailable(why)) => {
                    metrics::counter!("frontgate_replay_outage_total", "mode" => self.outage.as_str()).increment(1);
                    tracing::warn!(error = %why, mode = self.outage.as_str(), "redis replay set unavailable");
                    match self.outage {
                        crate::config::shared::OutageMode::Closed => Err(ReplayError::Unavailable(why)),
                        crate::config::shared::OutageMode::Local => self.local.insert_at(key, ttl, Instant::now()),
                        crate::config::shared::OutageMode::Open => Ok(Inserted::Fresh),
                    }
                }
                other => other,
            }
        })
    }
}

/// The replay set a config asks for: Redis when `[shared] redis` is set, else this process's.
pub fn for_config(config: &crate::config::Config, services: &Arc<crate::state::Services>) -> Arc<dyn ReplaySet> {
    match services.redis() {
        Some(redis) => Arc::new(RedisReplaySet::new(redis.clone(), services.clone(), config.shared.on_outage.replay)),
        None => MemoryReplaySet::process(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_insert_is_a_replay_until_expiry() {
        let set = MemoryReplaySet::new(10);
        let t0 = Instant::now();
        assert_eq!(set.insert_at("pow:a", Duration::from_secs(5), t0).unwrap(), Inserted::Fresh);
        assert_eq!(set.insert_at("pow:a", Duration::from_secs(5), t0 + Duration::from_secs(4)).unwrap(), Inserted::Replayed);
        assert_eq!(set.insert_at("pow:b", Duration::from_secs(5), t0).unwrap(), Inserted::Fresh);
        // After its expiry the value may be recorded again (its challenge has expired too).
        assert_eq!(set.insert_at("pow:a", Duration::from_secs(5), t0 + Duration::from_secs(6)).unwrap(), Inserted::Fresh);
    }

    #[test]
    fn a_full_set_sweeps_expired_entries_and_otherwise_refuses() {
        let set = MemoryReplaySet::new(2);
        let t0 = Instant::now();
        set.insert_at("a", Duration::from_secs(1), t0).unwrap();
        set.insert_at("b", Duration::from_secs(10), t0).unwrap();
        assert!(matches!(set.insert_at("c", Duration::from_secs(10), t0), Err(ReplayError::Full)));
        // "a" expired: swept, room for "c".
        assert_eq!(set.insert_at("c", Duration::from_secs(10), t0 + Duration::from_secs(2)).unwrap(), Inserted::Fresh);
        assert_eq!(set.len(), 2);
        // A spent value is still reported as spent when the set is full.
        assert_eq!(set.insert_at("b", Duration::from_secs(10), t0 + Duration::from_secs(2)).unwrap(), Inserted::Replayed);
    }

    #[test]
    fn concurrent_inserts_of_one_key_let_exactly_one_through() {
        let set = Arc::new(MemoryReplaySet::new(1000));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let set = set.clone();
                std::thread::spawn(move || set.insert_at("k", Duration::from_secs(60), Instant::now()).unwrap())
            })
            .collect();
        let fresh = handles.into_iter().map(|h| h.join().unwrap()).filter(|r| *r == Inserted::Fresh).count();
        assert_eq!(fresh, 1);
    }
}
