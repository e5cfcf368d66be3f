//! What this node's gateway saw over the last hour, for the admin console's traffic view
//! (docs/console.md): requests and refusals per problem code in fixed ten-second buckets,
//! a bounded ring of recent refusals, and the client addresses, routes, API keys and subjects
//! refused most (keys and subjects only where the refusal's caller is certain: see
//! [`crate::problem::Caller`]).
//!
//! The pipeline calls [`record`] once per request. A request that passes costs a clock read and
//! two relaxed atomic adds, no lock and no allocation. A refusal also takes, with `try_lock`
//! (never waiting), the ring and the top-refused tables; when another thread holds them the
//! refusal is left out of them (it is still counted in its bucket), so a refusal flood never
//! queues request threads behind the console's bookkeeping.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::problem::{Caller, Code};

/// Seconds per bucket.
pub const BUCKET_SECS: u64 = 10;
/// Buckets kept: one hour.
pub const BUCKETS: usize = 360;
/// Recent refusals kept.
pub const RECENT: usize = 200;
/// Client addresses, routes, keys and subjects tracked for the top-refused tables, at most
/// (each).
pub const TOP_TRACKED: usize = 256;
/// The top tables start over after this long, so they describe the last hour or so.
pub const TOP_PERIOD_SECS: u64 = 3600;

const CODES: usize = Code::ALL.len();

struct Bucket {
    /// Which ten-second interval (Unix seconds / BUCKET_SECS) the counts are for.
    epoch: AtomicU64,
    requests: AtomicU64,
    refused: [AtomicU64; CODES],
}

impl Bucket {
    fn new() -> Bucket {
        Bucket {
            epoch: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            refused: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// One refused request.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Refusal {
    /// Unix milliseconds.
    pub at_ms: u64,
    pub code: &'static str,
    pub route: String,
    pub client: IpAddr,
    /// Who was refused, when certain.
    pub subject: Option<String>,
    pub key_id: Option<String>,
}

/// One bucket of the series: its start (Unix seconds), requests, and refusals per code.
pub type BucketCounts = (u64, u64, Vec<(&'static str, u64)>);

/// What was refused most in the current period, with the counts.
#[derive(Debug, Default)]
pub struct TopRefused {
    pub clients: Vec<(IpAddr, u64)>,
    pub routes: Vec<(String, u64)>,
    /// API key ids (of keys that exist).
    pub keys: Vec<(String, u64)>,
    /// Subjects: keys' owners, tokens' and sessions' `sub`.
    pub subjects: Vec<(String, u64)>,
}

/// Space-saving counts: at most [`TOP_TRACKED`] keys; a new key when full replaces the
/// smallest, inheriting its count (so counts are upper bounds, and heavy hitters stay).
struct Top<K> {
    since: u64,
    counts: HashMap<K, u64>,
    /// New keys seen while full; only every [`ADMIT_EVERY`]th replaces the smallest, so a
    /// flood of distinct keys (a botnet's addresses) costs one table scan per 16 refusals.
    /// Heavy hitters, which come back, still get in.
    knocked: u64,
}

const ADMIT_EVERY: u64 = 16;

impl<K: std::hash::Hash + Eq + Clone> Top<K> {
    fn new() -> Self {
        Top { since: 0, counts: HashMap::new(), knocked: 0 }
    }

    fn add(&mut self, key: &K, now: u64) {
        if now >= self.since + TOP_PERIOD_SECS {
            self.counts.clear();
            self.since = now;
        }
        if let Some(c) = self.counts.get_mut(key) {
            *c += 1;
            return;
        }
        let mut floor = 0;
        if self.counts.len() >= TOP_TRACKED {
            self.knocked += 1;
            if !self.knocked.is_multiple_of(ADMIT_EVERY) {
                return;
            }
        }
        if self.counts.len() >= TOP_TRACKED
            && let Some((k, c)) =
                self.counts.iter().min_by_key(|(_, c)| **c).map(|(k, c)| (k.clone(), *c))
        {
            self.counts.remove(&k);
            floor = c;
        }
        self.counts.insert(key.clone(), floor + 1);
    }

    fn top(&self, n: usize) -> Vec<(K, u64)> {
        let mut v: Vec<_> = self.counts.iter().map(|(k, c)| (k.clone(), *c)).collect();
        v.sort_by_key(|e| std::cmp::Reverse(e.1));
        v.truncate(n);
        v
    }
}

struct Details {
    recent: VecDeque<Refusal>,
    clients: Top<IpAddr>,
    routes: Top<String>,
    keys: Top<String>,
    subjects: Top<String>,
}

pub struct Traffic {
    buckets: Box<[Bucket]>,
    details: Mutex<Details>,
    /// Refusals left out of the ring and tables because they were busy.
    dropped: AtomicU64,
}

impl Default for Traffic {
    fn default() -> Self {
        Traffic::new()
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl Traffic {
    pub fn new() -> Traffic {
        Traffic {
            buckets: (0..BUCKETS).map(|_| Bucket::new()).collect(),
            details: Mutex::new(Details {
                recent: VecDeque::with_capacity(RECENT),
                clients: Top::new(),
                routes: Top::new(),
                keys: Top::new(),
                subjects: Top::new(),
            }),
            dropped: AtomicU64::new(0),
        }
    }

    /// Counts one request at `now_ms`; `refused` is its problem code when it was refused, and
    /// `caller` who it was refused for, when certain.
    pub fn record_at(
        &self,
        now_ms: u64,
        refused: Option<Code>,
        route: &str,
        client: IpAddr,
        caller: Option<&Caller>,
    ) {
        let epoch = now_ms / 1000 / BUCKET_SECS;
        let b = &self.buckets[(epoch % BUCKETS as u64) as usize];
        let seen = b.epoch.load(Ordering::Acquire);
        if seen != epoch
            && b.epoch.compare_exchange(seen, epoch, Ordering::AcqRel, Ordering::Acquire).is_ok()
        {
            // This thread moved the bucket to a new interval: clear the hour-old counts. (A
            // count another thread adds in between may be lost: the charts are approximate
            // at bucket edges, never wrong by more than the requests of that instant.)
            b.requests.store(0, Ordering::Relaxed);
            for c in &b.refused {
                c.store(0, Ordering::Relaxed);
            }
        }
        b.requests.fetch_add(1, Ordering::Relaxed);
        let Some(code) = refused else { return };
        b.refused[code as usize].fetch_add(1, Ordering::Relaxed);
        let Ok(mut d) = self.details.try_lock() else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if d.recent.len() >= RECENT {
            d.recent.pop_front();
        }
        d.recent.push_back(Refusal {
            at_ms: now_ms,
            code: code.as_str(),
            route: route.to_owned(),
            client,
            subject: caller.map(|c| c.subject.clone()),
            key_id: caller.and_then(|c| c.key_id.clone()),
        });
        let now = now_ms / 1000;
        d.clients.add(&client, now);
        d.routes.add(&route.to_owned(), now);
        if let Some(c) = caller {
            d.subjects.add(&c.subject, now);
            if let Some(id) = &c.key_id {
                d.keys.add(id, now);
            }
        }
    }

    /// The last hour, oldest bucket first: `(bucket start in Unix seconds, requests,
    /// refusals per code)` for every bucket (zeros where nothing happened).
    pub fn series_at(&self, now_ms: u64) -> Vec<BucketCounts> {
        let current = now_ms / 1000 / BUCKET_SECS;
        let first = current + 1 - BUCKETS as u64;
        (first..=current)
            .map(|epoch| {
                let b = &self.buckets[(epoch % BUCKETS as u64) as usize];
                let start = epoch * BUCKET_SECS;
                if b.epoch.load(Ordering::Acquire) != epoch {
                    return (start, 0, Vec::new());
                }
                let refused = Code::ALL
                    .iter()
                    .filter_map(|c| {
                        let n = b.refused[*c as usize].load(Ordering::Relaxed);
                        (n > 0).then(|| (c.as_str(), n))
                    })
                    .collect();
                (start, b.requests.load(Ordering::Relaxed), refused)
            })
            .collect()
    }

    /// The most recent refusals, newest first.
    pub fn recent(&self, limit: usize) -> Vec<Refusal> {
        let d = self.details.lock().unwrap_or_else(|e| e.into_inner());
        d.recent.iter().rev().take(limit).cloned().collect()
    }

    /// The client addresses, routes, keys and subjects refused most in the current period.
    pub fn top(&self, n: usize) -> TopRefused {
        let d = self.details.lock().unwrap_or_else(|e| e.into_inner());
        TopRefused {
            clients: d.clients.top(n),
            routes: d.routes.top(n),
            keys: d.keys.top(n),
            subjects: d.subjects.top(n),
        }
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

pub use crate::checks::pow::levels::{PowRouteLevel, pow_levels};

static TRAFFIC: std::sync::LazyLock<Traffic> = std::sync::LazyLock::new(Traffic::new);

/// This process's traffic record.
pub fn global() -> &'static Traffic {
    &TRAFFIC
}

/// A wall-clock anchor taken once, so that a request's time comes from the `Instant` the
/// pipeline already read at its start, without reading a clock again per request.
static ANCHOR: std::sync::LazyLock<(std::time::Instant, u64)> =
    std::sync::LazyLock::new(|| (std::time::Instant::now(), now_ms()));

/// The pipeline's one call per request (`Gateway::record`); `started` is when the request
/// arrived (the bucket it counts in).
#[inline]
pub fn record(
    refused: Option<Code>,
    route: &str,
    client: IpAddr,
    caller: Option<&Caller>,
    started: std::time::Instant,
) {
    let (at, ms) = *ANCHOR;
    let now = ms + started.saturating_duration_since(at).as_millis() as u64;
    TRAFFIC.record_at(now, refused, route, client, caller);
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn counts_land_in_their_bucket_and_age_out_after_an_hour() {
        let t = Traffic::new();
        let t0 = 1_700_000_000_000u64;
        for _ in 0..5 {
            t.record_at(t0, None, "r", A, None);
        }
        t.record_at(t0, Some(Code::ApiKeyRevoked), "r", A, None);
        t.record_at(t0 + 10_000, Some(Code::RateLimited), "r", B, None);
        let s = t.series_at(t0 + 10_000);
        assert_eq!(s.len(), BUCKETS);
        let (start, req, refused) = &s[BUCKETS - 2];
        assert_eq!(*start, t0 / 1000 / 10 * 10);
        assert_eq!(*req, 6);
        assert_eq!(refused, &vec![("api_key_revoked", 1)]);
        assert_eq!(s[BUCKETS - 1].1, 1);
        assert_eq!(s[BUCKETS - 1].2, vec![("rate_limited", 1)]);
        // An hour later the same slots hold new intervals: the old counts are gone.
        let later = t0 + 3_620_000;
        t.record_at(later, None, "r", A, None);
        // The slot of t0 now holds a new interval: its old counts were cleared, not added to.
        t.record_at(t0 + 3_600_000, None, "r", A, None);
        let s = t.series_at(later);
        assert_eq!(s.iter().map(|b| b.1).sum::<u64>(), 2, "only the new requests");
        assert!(s.iter().all(|b| b.2.is_empty()));
    }

    #[test]
    fn the_ring_is_bounded_and_newest_first() {
        let t = Traffic::new();
        for i in 0..(RECENT as u64 + 50) {
            t.record_at(1_000_000 + i, Some(Code::Unauthenticated), &format!("route{i}"), A, None);
        }
        let r = t.recent(1000);
        assert_eq!(r.len(), RECENT);
        assert_eq!(r[0].route, format!("route{}", RECENT + 49));
        assert_eq!(r[0].code, "unauthenticated");
        assert!(r.windows(2).all(|w| w[0].at_ms >= w[1].at_ms));
    }

    #[test]
    fn passes_touch_no_detail_and_tops_are_bounded() {
        let t = Traffic::new();
        for _ in 0..100 {
            t.record_at(5_000_000, None, "ok", A, None);
        }
        assert!(t.recent(10).is_empty());
        for i in 0..(TOP_TRACKED as u32 * 3) {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            t.record_at(5_000_000, Some(Code::RateLimited), "r", ip, None);
        }
        for _ in 0..50 {
            t.record_at(5_000_000, Some(Code::RateLimited), "r", B, None);
        }
        let TopRefused { clients, routes, .. } = t.top(5);
        assert_eq!(clients[0].0, B, "the heavy hitter leads: {clients:?}");
        assert!(clients[0].1 >= 50 - ADMIT_EVERY, "{clients:?}");
        assert_eq!(routes, vec![("r".to_owned(), TOP_TRACKED as u64 * 3 + 50)]);
        assert!(t.details.lock().unwrap().clients.counts.len() <= TOP_TRACKED);
    }

    #[test]
    fn keys_and_subjects_are_counted_only_for_a_certain_caller() {
        let t = Traffic::new();
        let key = Caller { subject: "acme".into(), key_id: Some("k_1".into()) };
        let person = Caller { subject: "alice".into(), key_id: None };
        for _ in 0..3 {
            t.record_at(7_000_000, Some(Code::ApiKeyRevoked), "r", A, Some(&key));
        }
        t.record_at(7_000_000, Some(Code::InsufficientScope), "r", A, Some(&person));
        t.record_at(7_000_000, Some(Code::ApiKeyInvalid), "r", B, None);
        // A pass names no one in the tables, whoever it was.
        t.record_at(7_000_000, None, "r", A, Some(&person));
        let top = t.top(10);
        assert_eq!(top.keys, vec![("k_1".to_owned(), 3)]);
        assert_eq!(top.subjects, vec![("acme".to_owned(), 3), ("alice".to_owned(), 1)]);
        let recent = t.recent(10);
        assert_eq!(recent[0].subject, None);
        assert_eq!(recent[1].subject.as_deref(), Some("alice"));
        assert_eq!(recent[2].key_id.as_deref(), Some("k_1"));
    }

    #[test]
    fn a_busy_detail_lock_drops_the_detail_not_the_count() {
        let t = Traffic::new();
        let guard = t.details.lock().unwrap();
        t.record_at(9_000_000, Some(Code::CsrfFailed), "r", A, None);
        drop(guard);
        assert_eq!(t.dropped(), 1);
        assert!(t.recent(10).is_empty());
        let s = t.series_at(9_000_000);
        assert_eq!(s[BUCKETS - 1].2, vec![("csrf_failed", 1)]);
    }

    #[test]
    fn every_code_has_its_own_counter() {
        for (i, c) in Code::ALL.iter().enumerate() {
            assert!((*c as usize) < CODES, "{c:?} at {i}");
        }
    }
}
