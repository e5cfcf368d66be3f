//! Replay sets: remember a one-time value (a solved challenge's nonce, a CAPTCHA token, a DPoP
//! `jti`) until it expires, and refuse it a second time.
//!
//! Each feature (pow, CAPTCHA, DPoP: [`Feature`]) has its own set. One node keeps them in
//! process ([`MemoryReplaySet`], bounded); many nodes share Redis (`SET key 1 NX PX ttl`, see
//! `RedisReplaySet`). Callers write the entry only after the value has been verified, so a
//! forged value can never burn a real one.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
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

pub type ReplayFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Inserted, ReplayError>> + Send + 'a>>;

/// Insert-once with a time to live.
pub trait ReplaySet: Send + Sync + 'static {
    /// Records `key` for `ttl` unless it is already recorded. `key` should carry a namespace
    /// (`pow:`, `captcha:`, `dpop:`).
    fn insert_once<'a>(&'a self, key: &'a str, ttl: Duration) -> ReplayFuture<'a>;
}

/// The features that spend one-time values. Each has its own set, so one cannot fill (or slow)
/// the set another depends on; the name is the set's identity across reloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Feature {
    /// Solved proof-of-work challenges (`pow:` keys).
    Pow,
    /// Verified CAPTCHA tokens (`captcha:` keys).
    Captcha,
    /// DPoP proof `jti`s (`dpop:` keys).
    Dpop,
}

/// Entries the pow set holds at most (not configurable; docs/bot-defence.md).
pub const POW_CAPACITY: usize = 1_000_000;
/// Entries the CAPTCHA set holds at most (not configurable; docs/bot-defence.md).
pub const CAPTCHA_CAPACITY: usize = 1_000_000;

impl Feature {
    pub fn name(self) -> &'static str {
        match self {
            Feature::Pow => "pow",
            Feature::Captcha => "captcha",
            Feature::Dpop => "dpop",
        }
    }

    /// The set's capacity under `config`: `[jwt] dpop_replay_capacity` for DPoP, fixed otherwise.
    pub fn capacity(self, config: &crate::config::Config) -> usize {
        match self {
            Feature::Pow => POW_CAPACITY,
            Feature::Captcha => CAPTCHA_CAPACITY,
            Feature::Dpop => {
                config.jwt.as_ref().map_or(crate::config::jwt::DEFAULT_DPOP_REPLAY_CAPACITY, |j| {
                    j.dpop_replay_capacity
                })
            }
        }
    }
}

/// An in-process replay set with a cap on entries.
///
/// Expiry costs O(1) amortized per insert: besides the map, every entry sits in a queue by
/// expiry, and each insert first pops the entries that have expired from its front. Each entry
/// is pushed and popped once, and nothing ever scans the map. A feature's TTL is near-constant,
/// so expiries mostly arrive in order and go to the back of a `VecDeque`; one that expires
/// before the last (a shorter TTL) goes to a min-heap instead (O(log n)), so mixed TTLs still
/// expire on time. A set full of live entries refuses rather than forgets.
pub struct MemoryReplaySet {
    entries: Mutex<Entries>,
    cap: AtomicUsize,
}

#[derive(Default)]
struct Entries {
    /// Spent keys and when each expires.
    live: HashMap<Arc<str>, Instant>,
    /// The same entries in expiry order, as inserted (expiries never decrease along it).
    in_order: VecDeque<(Instant, Arc<str>)>,
    /// Entries that expire before the back of `in_order` did when they were inserted.
    early: BinaryHeap<Reverse<(Instant, Arc<str>)>>,
    /// Queue entries the sweeps have popped, in all: the work expiry has cost (for tests).
    examined: u64,
}

impl Entries {
    /// Forgets every entry expired at `now`: pops each queue's front while it is due.
    fn sweep(&mut self, now: Instant) {
        while self.in_order.front().is_some_and(|(at, _)| *at <= now) {
            if let Some((at, key)) = self.in_order.pop_front() {
                self.forget(at, &key);
            }
        }
        while self.early.peek().is_some_and(|Reverse((at, _))| *at <= now) {
            if let Some(Reverse((at, key))) = self.early.pop() {
                self.forget(at, &key);
            }
        }
    }

    fn forget(&mut self, at: Instant, key: &Arc<str>) {
        self.examined += 1;
        // Only if this queue entry is the key's current one (tests may move the clock back).
        if self.live.get(key) == Some(&at) {
            self.live.remove(key);
        }
    }

    fn push(&mut self, at: Instant, key: Arc<str>) {
        if self.in_order.back().is_none_or(|(last, _)| *last <= at) {
            self.in_order.push_back((at, key));
        } else {
            self.early.push(Reverse((at, key)));
        }
    }
}

impl MemoryReplaySet {
    pub fn new(cap: usize) -> Self {
        MemoryReplaySet { entries: Mutex::new(Entries::default()), cap: AtomicUsize::new(cap) }
    }

    /// `feature`'s set in this process, with capacity `cap`. Kept by feature name, so that a
    /// config reload (which rebuilds the pipeline) does not forget what was spent; a reload
    /// that changes the capacity changes it in place.
    pub fn process(feature: Feature, cap: usize) -> Arc<MemoryReplaySet> {
        static SETS: OnceLock<Mutex<HashMap<Feature, Arc<MemoryReplaySet>>>> = OnceLock::new();
        let mut sets = SETS.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
        let set = sets.entry(feature).or_insert_with(|| Arc::new(MemoryReplaySet::new(cap)));
        set.cap.store(cap, Ordering::Relaxed);
        set.clone()
    }

    /// Synchronous insert-once, at `now` (injectable for tests).
    pub fn insert_at(
        &self,
        key: &str,
        ttl: Duration,
        now: Instant,
    ) -> Result<Inserted, ReplayError> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.sweep(now);
        if entries.live.get(key).is_some_and(|expiry| *expiry > now) {
            return Ok(Inserted::Replayed);
        }
        if entries.live.len() >= self.cap.load(Ordering::Relaxed) && !entries.live.contains_key(key)
        {
            return Err(ReplayError::Full);
        }
        let key: Arc<str> = Arc::from(key);
        let at = now + ttl;
        entries.live.insert(key.clone(), at);
        entries.push(at, key);
        Ok(Inserted::Fresh)
    }

    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn capacity(&self) -> usize {
        self.cap.load(Ordering::Relaxed)
    }

    /// Queue entries expiry has popped so far: each insert adds at most one, so this bounds
    /// the work expiry costs (tests count it instead of timing it).
    pub fn examined(&self) -> u64 {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).examined
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
/// says: refuse (`closed`), fall back to this process's set of the same feature (`local`: a
/// value could then be spent once per node), or let the value through (`open`).
pub struct RedisReplaySet {
    redis: crate::store::redis::Redis,
    services: Arc<super::Services>,
    outage: crate::config::shared::OutageMode,
    local: Arc<MemoryReplaySet>,
}

impl RedisReplaySet {
    /// `local`: the feature's in-process set, for `on_outage.replay = "local"`.
    pub fn new(
        redis: crate::store::redis::Redis,
        services: Arc<super::Services>,
        outage: crate::config::shared::OutageMode,
        local: Arc<MemoryReplaySet>,
    ) -> Self {
        RedisReplaySet { redis, services, outage, local }
    }
    async fn set_nx(&self, key: &str, ttl: Duration) -> Result<Inserted, ReplayError> {
        let mut conn = self.redis.conn();
        let full = format!("{}replay:{key}", self.redis.prefix());
        let ms = ttl.as_millis().clamp(1, u128::from(u64::MAX)) as u64;
        let answer = self
            .services
            .run(async move {
                redis::cmd("SET")
                    .arg(full)
                    .arg(1)
                    .arg("NX")
                    .arg("PX")
                    .arg(ms)
                    .query_async::<Option<String>>(&mut conn)
                    .await
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
                        crate::config::shared::OutageMode::Closed => {
                            Err(ReplayError::Unavailable(why))
                        }
                        crate::config::shared::OutageMode::Local => {
                            self.local.insert_at(key, ttl, Instant::now())
                        }
                        crate::config::shared::OutageMode::Open => Ok(Inserted::Fresh),
                    }
                }
                other => other,
            }
        })
    }
}

/// `feature`'s replay set under `config`: Redis when `[shared] redis` is set, else this
/// process's set for the feature.
pub fn for_config(
    config: &crate::config::Config,
    services: &Arc<super::Services>,
    feature: Feature,
) -> Arc<dyn ReplaySet> {
    let local = MemoryReplaySet::process(feature, feature.capacity(config));
    match services.redis() {
        Some(redis) => Arc::new(RedisReplaySet::new(
            redis.clone(),
            services.clone(),
            config.shared.on_outage.replay,
            local,
        )),
        None => local,
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
        assert_eq!(
            set.insert_at("pow:a", Duration::from_secs(5), t0 + Duration::from_secs(4)).unwrap(),
            Inserted::Replayed
        );
        assert_eq!(set.insert_at("pow:b", Duration::from_secs(5), t0).unwrap(), Inserted::Fresh);
        // After its expiry the value may be recorded again (its challenge has expired too).
        assert_eq!(
            set.insert_at("pow:a", Duration::from_secs(5), t0 + Duration::from_secs(6)).unwrap(),
            Inserted::Fresh
        );
    }

    #[test]
    fn a_full_set_sweeps_expired_entries_and_otherwise_refuses() {
        let set = MemoryReplaySet::new(2);
        let t0 = Instant::now();
        set.insert_at("a", Duration::from_secs(1), t0).unwrap();
        set.insert_at("b", Duration::from_secs(10), t0).unwrap();
        assert!(matches!(set.insert_at("c", Duration::from_secs(10), t0), Err(ReplayError::Full)));
        // "a" expired: swept, room for "c".
        assert_eq!(
            set.insert_at("c", Duration::from_secs(10), t0 + Duration::from_secs(2)).unwrap(),
            Inserted::Fresh
        );
        assert_eq!(set.len(), 2);
        // A spent value is still reported as spent when the set is full.
        assert_eq!(
            set.insert_at("b", Duration::from_secs(10), t0 + Duration::from_secs(2)).unwrap(),
            Inserted::Replayed
        );
    }

    #[test]
    fn each_feature_has_its_own_set_and_filling_one_refuses_no_other() {
        let pow = MemoryReplaySet::process(Feature::Pow, 3);
        let dpop = MemoryReplaySet::process(Feature::Dpop, 2);
        let captcha = MemoryReplaySet::process(Feature::Captcha, 2);
        let t0 = Instant::now();
        for i in 0..3 {
            pow.insert_at(&format!("pow:{i}"), Duration::from_secs(60), t0).unwrap();
        }
        assert!(matches!(
            pow.insert_at("pow:x", Duration::from_secs(60), t0),
            Err(ReplayError::Full)
        ));
        assert_eq!(dpop.insert_at("dpop:a", Duration::from_secs(60), t0).unwrap(), Inserted::Fresh);
        assert_eq!(
            captcha.insert_at("captcha:a", Duration::from_secs(60), t0).unwrap(),
            Inserted::Fresh
        );
        // The same feature's set again (a reload): what was spent is remembered, and a new
        // capacity takes effect in place.
        let again = MemoryReplaySet::process(Feature::Pow, 4);
        assert!(Arc::ptr_eq(&again, &pow));
        assert_eq!(
            again.insert_at("pow:0", Duration::from_secs(60), t0).unwrap(),
            Inserted::Replayed
        );
        assert_eq!(again.insert_at("pow:x", Duration::from_secs(60), t0).unwrap(), Inserted::Fresh);
        assert_eq!(pow.capacity(), 4);
    }

    #[test]
    fn mixed_ttls_expire_on_time() {
        let set = MemoryReplaySet::new(2);
        let t0 = Instant::now();
        let s = Duration::from_secs;
        set.insert_at("long", s(100), t0).unwrap();
        // Expires before the last entry: out of order.
        set.insert_at("short", s(1), t0).unwrap();
        assert!(matches!(set.insert_at("c", s(100), t0), Err(ReplayError::Full)));
        // "short" has expired though "long", inserted first, has not.
        assert_eq!(set.insert_at("c", s(100), t0 + s(2)).unwrap(), Inserted::Fresh);
        assert_eq!(
            set.insert_at("short", s(100), t0 + s(2)).unwrap_err().to_string(),
            ReplayError::Full.to_string()
        );
        assert_eq!(set.insert_at("long", s(1), t0 + s(50)).unwrap(), Inserted::Replayed);
        assert_eq!(
            set.insert_at("long", s(1), t0 + s(100)).unwrap(),
            Inserted::Fresh,
            "expired at t0 + 100"
        );
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn a_full_set_of_expired_entries_costs_one_look_per_entry_not_a_scan_per_insert() {
        let cap = 1000;
        let set = MemoryReplaySet::new(cap);
        let t0 = Instant::now();
        for i in 0..cap {
            set.insert_at(&format!("old:{i}"), Duration::from_secs(1), t0).unwrap();
        }
        assert_eq!(set.examined(), 0);
        // Full of expired entries: each new insert finds room, and every old entry is looked
        // at once in all (the old set scanned all entries on every insert once full).
        for i in 0..cap {
            assert_eq!(
                set.insert_at(
                    &format!("new:{i}"),
                    Duration::from_secs(60),
                    t0 + Duration::from_secs(2)
                )
                .unwrap(),
                Inserted::Fresh
            );
        }
        assert_eq!(set.examined(), cap as u64);
        assert_eq!(set.len(), cap);
        // Full of live entries: refused, and still no scan.
        assert!(matches!(
            set.insert_at("one-more", Duration::from_secs(60), t0 + Duration::from_secs(3)),
            Err(ReplayError::Full)
        ));
        assert_eq!(set.examined(), cap as u64);
    }

    #[test]
    fn concurrent_inserts_of_one_key_let_exactly_one_through() {
        let set = Arc::new(MemoryReplaySet::new(1000));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let set = set.clone();
                std::thread::spawn(move || {
                    set.insert_at("k", Duration::from_secs(60), Instant::now()).unwrap()
                })
            })
            .collect();
        let fresh = handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|r| *r == Inserted::Fresh)
            .count();
        assert_eq!(fresh, 1);
    }
}
