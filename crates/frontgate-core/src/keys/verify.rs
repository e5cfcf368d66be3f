//! Verifying a presented key: checksum → in-process cache → store, in that order, so that a
//! malformed key costs a few hundred nanoseconds and no I/O, a known key costs a cache hit, and
//! only a well-formed key not seen within `cache_ttl` reaches the store.
//!
//! Both caches are bounded (quick_cache, S3-FIFO eviction, which does its bookkeeping on insert,
//! so a hit never pays for deferred maintenance) and entries expire after `cache_ttl`. Unknown
//! keys go to their own, smaller cache, so guessing cannot push real keys out. A revocation or
//! rotation published on the event hub (this node at once, other nodes through Redis) drops the
//! key's cache entry; if that event is lost, `cache_ttl` bounds how long it may still pass.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use quick_cache::sync::Cache;
use subtle::ConstantTimeEq;

use super::format::{self, FormatError, Hasher};
use super::record::{Denial, KeyRecord};
use super::repo;
use crate::config::ApiKeysConfig;
use crate::state::Services;
use crate::store::events::{Hook, RESYNC};
use crate::store::{StoreError, now_ms};

/// The event topic for "this key's record changed" (revoked, rotated); payload: the key id.
pub const TOPIC_CHANGED: &str = "api_key.changed";

/// Metric names.
pub const VERIFICATIONS: &str = "frontgate_api_key_verifications_total";
pub const STORE_LOOKUPS: &str = "frontgate_api_key_store_lookups_total";
pub const CACHE_HITS: &str = "frontgate_api_key_cache_hits_total";
pub const LAST_USED_WRITES: &str = "frontgate_api_key_last_used_writes_total";

/// Why a presented key is refused.
#[derive(Debug)]
pub enum Refusal {
    Malformed,
    BadChecksum,
    Unknown,
    /// The key exists and its secret matched, but it may not be used here or now.
    Denied(Denial, Arc<KeyRecord>),
    UsesSpent(Arc<KeyRecord>),
    Store(StoreError),
}

impl Refusal {
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::Malformed => "malformed",
            Refusal::BadChecksum => "bad_checksum",
            Refusal::Unknown => "unknown",
            Refusal::Denied(Denial::Revoked, _) => "revoked",
            Refusal::Denied(Denial::Expired, _) => "expired",
            Refusal::Denied(Denial::ClientAddress, _) => "client_denied",
            Refusal::Denied(Denial::Origin, _) => "origin_denied",
            Refusal::UsesSpent(_) => "uses_spent",
            Refusal::Store(_) => "store_unavailable",
        }
    }
}

enum Cached {
    Known(Arc<KnownKey>),
    Unknown,
}

/// The record's rules for one use. The lookup was by digest; it is compared again in constant
/// time all the same.
fn rules(
    record: &Arc<KeyRecord>,
    digest: &[u8; 32],
    now_ms: i64,
    ip: IpAddr,
    origin: Option<&str>,
) -> Result<(), Refusal> {
    if !bool::from(record.digest.ct_eq(digest)) {
        return Err(Refusal::Unknown);
    }
    record.admits(now_ms, ip, origin).map_err(|d| Refusal::Denied(d, record.clone()))
}

/// How far a verification got without I/O.
enum WithoutIo {
    Done(Result<Arc<KeyRecord>, Refusal>),
    /// The store must be asked: for the record (not cached), or to spend a budgeted use.
    NeedsStore([u8; 32], Option<Arc<KnownKey>>),
}

/// A cached record, with when its last use was last queued for writing.
struct KnownKey {
    record: Arc<KeyRecord>,
    expires: Instant,
    noted_ms: AtomicI64,
}

/// Last-used times are queued at most this often per key: the write is batched anyway, and
/// a cached verification then costs an atomic load, not a map insert.
const NOTE_EVERY_MS: i64 = 1000;

/// Counters of the verification outcomes, made once (not looked up by name per request).
struct Counters {
    results: HashMap<&'static str, metrics::Counter>,
    known_hits: metrics::Counter,
    unknown_hits: metrics::Counter,
}

impl Counters {
    fn new() -> Counters {
        let labels = [
            "ok",
            "malformed",
            "bad_checksum",
            "unknown",
            "revoked",
            "expired",
            "client_denied",
            "origin_denied",
            "uses_spent",
            "store_unavailable",
        ];
        Counters {
            results: labels
                .into_iter()
                .map(|l| (l, metrics::counter!(VERIFICATIONS, "result" => l)))
                .collect(),
            known_hits: metrics::counter!(CACHE_HITS, "kind" => "known"),
            unknown_hits: metrics::counter!(CACHE_HITS, "kind" => "unknown"),
        }
    }
}

pub struct Verifier {
    prefix: String,
    hasher: Hasher,
    known: Arc<Cache<[u8; 32], Arc<KnownKey>>>,
    /// Digests no key has, until when.
    unknown: Arc<Cache<[u8; 32], Instant>>,
    ttl: Duration,
    counters: Counters,
    services: Arc<Services>,
    timeout: Duration,
    /// Last-used times not yet written: key id → ms.
    last_used: Arc<Mutex<HashMap<String, i64>>>,
    _hook: Arc<Hook>,
}

impl Verifier {
    /// A verifier over the store in `services` (which must have one). Starts the last-used
    /// flusher on the state runtime; it stops when the verifier is dropped.
    pub fn new(config: &ApiKeysConfig, services: &Arc<Services>) -> Arc<Verifier> {
        let ttl = config.cache_ttl.0;
        let known: Arc<Cache<[u8; 32], Arc<KnownKey>>> =
            Arc::new(Cache::new(config.cache_capacity as usize));
        let unknown: Arc<Cache<[u8; 32], Instant>> =
            Arc::new(Cache::new(config.negative_cache_capacity as usize));
        let (k, u) = (known.clone(), unknown.clone());
        let hook: Arc<Hook> = Arc::new(move |topic: &str, payload: &str| {
            if topic == RESYNC {
                k.clear();
                u.clear();
            } else if topic == TOPIC_CHANGED {
                k.retain(|_, known| known.record.id != payload);
            }
        });
        services.events().subscribe(&hook);
        let v = Arc::new(Verifier {
            prefix: config.prefix.clone(),
            hasher: Hasher::new(config.hash_secret.0.as_bytes()),
            known,
            unknown,
            ttl,
            counters: Counters::new(),
            services: services.clone(),
            timeout: services.store_timeout(),
            last_used: Arc::new(Mutex::new(HashMap::new())),
            _hook: hook,
        });
        spawn_flusher(Arc::downgrade(&v), config.last_used_flush.0);
        v
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Verifies `key` presented from `ip` with the request's `Origin`.
    pub async fn verify(
        &self,
        key: &str,
        ip: IpAddr,
        origin: Option<&str>,
    ) -> Result<Arc<KeyRecord>, Refusal> {
        let result = match self.without_io(key, ip, origin) {
            WithoutIo::Done(result) => result,
            WithoutIo::NeedsStore(digest, known) => {
                self.with_store(digest, known, ip, origin).await
            }
        };
        self.count(&result);
        result
    }

    /// [`verify`](Self::verify) when it can be answered from the caches alone (the steady
    /// state); `None` when it needs the store (a key not cached, or one with a budget).
    pub fn verify_cached(
        &self,
        key: &str,
        ip: IpAddr,
        origin: Option<&str>,
    ) -> Option<Result<Arc<KeyRecord>, Refusal>> {
        match self.without_io(key, ip, origin) {
            WithoutIo::Done(result) => {
                self.count(&result);
                Some(result)
            }
            WithoutIo::NeedsStore(..) => None,
        }
    }

    fn count(&self, result: &Result<Arc<KeyRecord>, Refusal>) {
        let label = match result {
            Ok(_) => "ok",
            Err(r) => r.label(),
        };
        if let Some(c) = self.counters.results.get(label) {
            c.increment(1);
        }
    }

    /// Checksum, digest, caches and the record's rules: everything that needs no I/O.
    fn without_io(&self, key: &str, ip: IpAddr, origin: Option<&str>) -> WithoutIo {
        match format::check(&self.prefix, key) {
            Ok(()) => {}
            Err(FormatError::Malformed) => return WithoutIo::Done(Err(Refusal::Malformed)),
            Err(FormatError::Checksum) => return WithoutIo::Done(Err(Refusal::BadChecksum)),
        }
        let digest = self.hasher.digest(key);
        match self.cached(&digest) {
            Some(Cached::Known(k)) if k.record.uses_remaining.is_some() => {
                WithoutIo::NeedsStore(digest, Some(k))
            }
            Some(Cached::Known(k)) => WithoutIo::Done(self.admit(&k, &digest, ip, origin)),
            Some(Cached::Unknown) => WithoutIo::Done(Err(Refusal::Unknown)),
            None => WithoutIo::NeedsStore(digest, None),
        }
    }

    /// The rest of a verification that needs the store: the record, or a budgeted use.
    async fn with_store(
        &self,
        digest: [u8; 32],
        known: Option<Arc<KnownKey>>,
        ip: IpAddr,
        origin: Option<&str>,
    ) -> Result<Arc<KeyRecord>, Refusal> {
        let known = match known {
            Some(k) => k,
            None => self.load(digest).await?,
        };
        let record = &known.record;
        if record.uses_remaining.is_some() {
            // Rules first, so a refused use spends nothing of the budget.
            rules(record, &digest, now_ms(), ip, origin)?;
            // A budget is shared state: every use is one atomic decrement in the store.
            let (db, id) = (self.db().map_err(Refusal::Store)?, record.id.clone());
            let t = self.timeout;
            let left = self
                .services
                .run(async move { crate::store::deadline(t, repo::consume_use(&db, &id)).await })
                .await
                .map_err(|_| Refusal::Store(StoreError::Stopped))?
                .map_err(Refusal::Store)?;
            if !left {
                return Err(Refusal::UsesSpent(record.clone()));
            }
        }
        self.admit(&known, &digest, ip, origin)
    }

    /// The record's rules for this use, and its last-used time queued.
    fn admit(
        &self,
        known: &KnownKey,
        digest: &[u8; 32],
        ip: IpAddr,
        origin: Option<&str>,
    ) -> Result<Arc<KeyRecord>, Refusal> {
        let record = &known.record;
        let now = now_ms();
        rules(record, digest, now, ip, origin)?;
        if now - known.noted_ms.load(Ordering::Relaxed) >= NOTE_EVERY_MS {
            known.noted_ms.store(now, Ordering::Relaxed);
            self.last_used.lock().unwrap_or_else(|e| e.into_inner()).insert(record.id.clone(), now);
        }
        Ok(record.clone())
    }

    fn cached(&self, digest: &[u8; 32]) -> Option<Cached> {
        let now = Instant::now();
        if let Some(k) = self.known.get(digest) {
            if k.expires > now {
                self.counters.known_hits.increment(1);
                return Some(Cached::Known(k));
            }
            self.known.remove(digest);
        }
        if let Some(until) = self.unknown.get(digest) {
            if until > now {
                self.counters.unknown_hits.increment(1);
                return Some(Cached::Unknown);
            }
            self.unknown.remove(digest);
        }
        None
    }

    fn db(&self) -> Result<crate::store::Db, StoreError> {
        self.services.db().cloned().ok_or(StoreError::Stopped)
    }

    async fn load(&self, digest: [u8; 32]) -> Result<Arc<KnownKey>, Refusal> {
        metrics::counter!(STORE_LOOKUPS).increment(1);
        let db = self.db().map_err(Refusal::Store)?;
        let t = self.timeout;
        let found = self
            .services
            .run(async move { crate::store::deadline(t, repo::by_digest(&db, &digest)).await })
            .await
            .map_err(|_| Refusal::Store(StoreError::Stopped))?
            .map_err(Refusal::Store)?;
        match found {
            Some(r) => {
                let k = Arc::new(KnownKey {
                    record: Arc::new(r),
                    expires: Instant::now() + self.ttl,
                    noted_ms: AtomicI64::new(i64::MIN / 2),
                });
                self.known.insert(digest, k.clone());
                Ok(k)
            }
            None => {
                self.unknown.insert(digest, Instant::now() + self.ttl);
                Err(Refusal::Unknown)
            }
        }
    }

    /// Writes pending last-used times now (also done every `last_used_flush`).
    pub async fn flush_last_used(&self) -> Result<usize, StoreError> {
        let batch: Vec<(String, i64)> =
            std::mem::take(&mut *self.last_used.lock().unwrap_or_else(|e| e.into_inner()))
                .into_iter()
                .collect();
        let n = batch.len();
        if n == 0 {
            return Ok(0);
        }
        let db = self.db()?;
        let t = self.timeout;
        let pending = batch.clone();
        let written = self
            .services
            .run(async move { crate::store::deadline(t, repo::touch(&db, &batch)).await })
            .await;
        if !matches!(written, Ok(Ok(()))) {
            // Keep the times for the next flush, unless a newer use replaced them meanwhile.
            let mut map = self.last_used.lock().unwrap_or_else(|e| e.into_inner());
            for (id, at) in pending {
                map.entry(id).or_insert(at);
            }
        }
        written.map_err(|_| StoreError::Stopped)??;
        metrics::counter!(LAST_USED_WRITES).increment(1);
        Ok(n)
    }

    /// Entries in the caches (known, unknown), for tests and metrics.
    pub fn cache_sizes(&self) -> (u64, u64) {
        (self.known.len() as u64, self.unknown.len() as u64)
    }
}

impl Drop for Verifier {
    /// A reload replaces the verifier: write what it still holds, in the background.
    fn drop(&mut self) {
        let batch: Vec<(String, i64)> =
            std::mem::take(&mut *self.last_used.lock().unwrap_or_else(|e| e.into_inner()))
                .into_iter()
                .collect();
        if let (false, Ok(db)) = (batch.is_empty(), self.db()) {
            let t = self.timeout;
            self.services.runtime().spawn(async move {
                let _ = crate::store::deadline(t, repo::touch(&db, &batch)).await;
            });
        }
    }
}

fn spawn_flusher(verifier: Weak<Verifier>, every: Duration) {
    let Some(v) = verifier.upgrade() else { return };
    let runtime = v.services.runtime().clone();
    drop(v);
    runtime.spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(v) = verifier.upgrade() else { return };
            if let Err(e) = v.flush_last_used().await {
                tracing::warn!(error = %e, "writing API-key last-used times failed; will retry");
            }
        }
    });
}
