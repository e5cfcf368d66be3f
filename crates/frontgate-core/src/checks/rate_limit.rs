//! Rate limits (`[rate_limits.NAME]`, route `rate_limit = [...]`): GCRA per key, in process or
//! in Redis for many nodes.
//!
//! GCRA keeps one number per key, the theoretical arrival time (TAT): each request moves it one
//! emission interval (period / rate) into the future, and a request is refused when that would
//! put the TAT more than `burst` intervals ahead of now. No timers, no sliding windows, one
//! read-modify-write per request. Limits keyed by the client (ip, route, header) run before
//! authentication, so floods are refused before any key lookup or signature check; limits keyed
//! by the caller (subject, api_key, session) run after it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{HeaderName, HeaderValue};

use crate::checks::{Feature, FeatureError, FeatureInputs, RouteContext};
use crate::config::{AuthMethod, LimitKey, OutageMode, Rate, RateLimitConfig};
use crate::exchange::{Check, Exchange, Outcome, Stage, Verdict};
use crate::observe;
use crate::problem::{Code, Problem};
use crate::state::Services;
use crate::store::redis::Redis;

/// Most keys one limit remembers in process; past it, keys whose bucket is full again are
/// dropped first (forgetting them changes nothing), then the half closest to full again.
const MAX_KEYS_PER_LIMIT: usize = 100_000;
const SHARDS: usize = 16;

/// Whether one request may pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed { remaining: u32 },
    Limited { retry_after: Duration },
}

/// GCRA buckets of one limit, in this process. Kept across reloads by [`Services::kept`].
pub struct LocalGcra {
    base: Instant,
    shards: Vec<Mutex<HashMap<Box<[u8]>, u64>>>,
    cap_per_shard: usize,
}

impl LocalGcra {
    pub fn new(max_keys: usize) -> LocalGcra {
        LocalGcra {
            base: Instant::now(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            cap_per_shard: (max_keys / SHARDS).max(1),
        }
    }

    fn now_us(&self) -> u64 {
        self.base.elapsed().as_micros() as u64
    }

    /// Takes one request from `key`'s bucket.
    pub fn acquire(&self, key: &[u8], interval: Duration, burst: u32) -> Decision {
        self.acquire_at(key, interval, burst, self.now_us())
    }

    /// [`acquire`](Self::acquire) at a given time in microseconds since this limiter started
    /// (tests drive the clock).
    pub fn acquire_at(&self, key: &[u8], interval: Duration, burst: u32, now: u64) -> Decision {
        let t = interval.as_micros().max(1) as u64;
        let limit = t.saturating_mul(burst as u64);
        let shard = &self.shards[shard_of(key)];
        let mut map = shard.lock().unwrap_or_else(|e| e.into_inner());
        let tat = map.get(key).copied().unwrap_or(now).max(now);
        let new_tat = tat + t;
        let allow_at = new_tat.saturating_sub(limit);
        if now < allow_at {
            return Decision::Limited { retry_after: Duration::from_micros(allow_at - now) };
        }
        if map.len() >= self.cap_per_shard && !map.contains_key(key) {
            // Full buckets (TAT in the past) carry no information: drop them first.
            map.retain(|_, tat| *tat > now);
            if map.len() >= self.cap_per_shard / 2 {
                // Still over half full: forget the half of the keys closest to full again, so
                // a flood of new keys costs amortized O(log n) per key, not a scan each.
                let mut tats: Vec<u64> = map.values().copied().collect();
                let mid = tats.len() / 2;
                let (_, median, _) = tats.select_nth_unstable(mid);
                let median = *median;
                map.retain(|_, tat| *tat > median);
            }
        }
        map.insert(key.into(), new_tat);
        Decision::Allowed { remaining: ((limit - (new_tat - now)) / t) as u32 }
    }

    /// Gives back one request [`acquire`](Self::acquire) allowed `key` (one that was then not
    /// served after all).
    pub fn refund(&self, key: &[u8], interval: Duration) {
        let t = interval.as_micros().max(1) as u64;
        let shard = &self.shards[shard_of(key)];
        let mut map = shard.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tat) = map.get_mut(key) {
            *tat = tat.saturating_sub(t);
        }
    }

    /// Keys remembered now (for tests and metrics).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().map(|m| m.len()).unwrap_or(0)).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn shard_of(key: &[u8]) -> usize {
    // FNV-1a: cheap and good enough to spread keys over a few shards.
    let mut h: u32 = 0x811c9dc5;
    for b in key {
        h = (h ^ *b as u32).wrapping_mul(0x01000193);
    }
    h as usize % SHARDS
}

/// The same GCRA as [`LocalGcra::acquire_at`], atomically in Redis, on Redis's clock (so nodes'
/// clocks do not matter). Returns {allowed, retry_after_us, remaining}.
const GCRA_SCRIPT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local limit = interval * tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - limit
if now < allow_at then
  return {0, allow_at - now, 0}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {1, 0, math.floor((limit - (new_tat - now)) / interval)}
"#;

/// Where a limit's buckets live. One per limited route, built at config load and never moved
/// on the request path, so the Redis variant's size costs nothing.
#[allow(clippy::large_enum_variant)]
enum Backend {
    Local(Arc<LocalGcra>),
    Redis {
        redis: Redis,
        script: Arc<redis::Script>,
        services: Arc<Services>,
        fallback: Arc<LocalGcra>,
        on_outage: OutageMode,
    },
}

/// One limit as a route applies it.
struct Limiter {
    name: Arc<str>,
    key: LimitKey,
    /// The configured rate; `None` for the caller's own limit, whose rate comes with the
    /// identity (an API key's `rate_limit`).
    rate: Option<ConfiguredRate>,
    backend: Backend,
    limited: metrics::Counter,
}

struct ConfiguredRate {
    interval: Duration,
    burst: u32,
    /// `RateLimit-Policy` value: `"name";q=burst;w=period-seconds`.
    policy: HeaderValue,
}

/// The name the caller's own limit goes by in problems, headers and metrics.
const CALLER_LIMIT: &str = "api_key_rate_limit";

static RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// One limiter's bucket and parameters for one request.
struct Take {
    bucket: Vec<u8>,
    interval: Duration,
    burst: u32,
}

impl Limiter {
    /// The bucket and rate for this request, or `None` when the limit does not apply to it (an
    /// api_key limit on a request that authenticated otherwise, or on a key with its own limit).
    fn take(&self, ex: &Exchange<'_>) -> Option<Take> {
        let own_rate = ex.identity.as_ref().and_then(|id| id.rate_limit);
        let (interval, burst) = match (&self.rate, own_rate) {
            (None, Some(own)) => (own.interval(), own.count),
            (None, None) => return None,
            // A key's own rate replaces the route's per-key limits for that key.
            (Some(_), Some(_)) if self.key == LimitKey::ApiKey => return None,
            (Some(r), _) => (r.interval, r.burst),
        };
        let mut out = Vec::with_capacity(32);
        match &self.key {
            LimitKey::Ip => ip_bucket(ex.client.ip, &mut out),
            LimitKey::Route => out.extend_from_slice(ex.route.name.as_bytes()),
            LimitKey::Header(name) => {
                // Requests without the header share one bucket: leaving it out is no way around the limit.
                out.extend_from_slice(
                    ex.head.headers.get(name).map_or(&b"\0"[..], |v| v.as_bytes()),
                );
            }
            LimitKey::Subject => out.extend_from_slice(ex.identity.as_ref()?.subject.as_bytes()),
            LimitKey::ApiKey => {
                out.extend_from_slice(ex.identity.as_ref()?.key_id.as_ref()?.as_bytes())
            }
            LimitKey::Session => {
                let id = ex.identity.as_ref()?;
                if id.method != AuthMethod::Session {
                    return None;
                }
                out.extend_from_slice(id.subject.as_bytes());
            }
        }
        Some(Take { bucket: out, interval, burst })
    }

    fn refuse(&self, ex: &mut Exchange<'_>, take: &Take, retry_after: Duration) -> Verdict {
        self.limited.increment(1);
        let secs = (retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0)).max(1);
        let policy = match &self.rate {
            Some(r) => r.policy.clone(),
            None => policy_header(&self.name, take.burst, take.interval * take.burst),
        };
        ex.response_headers.push((http::header::RETRY_AFTER, HeaderValue::from(secs)));
        ex.response_headers.push((RATELIMIT_POLICY.clone(), policy));
        if let Ok(v) = HeaderValue::from_str(&format!("\"{}\";r=0;t={secs}", self.name)) {
            ex.response_headers.push((RATELIMIT.clone(), v));
        }
        let detail = match &self.rate {
            Some(_) => format!("Rate limit `{}` exceeded; retry after {secs} s.", self.name),
            None => format!("This API key's own rate limit is exceeded; retry after {secs} s."),
        };
        Verdict::Deny(Problem::new(Code::RateLimited).with_detail(detail))
    }

    /// Takes one request from this limiter's bucket, in Redis when shared.
    async fn acquire(&self, take: &Take) -> Result<Decision, Verdict> {
        match &self.backend {
            Backend::Local(gcra) => Ok(gcra.acquire(&take.bucket, take.interval, take.burst)),
            Backend::Redis { redis, script, services, fallback, on_outage } => {
                match remote_acquire(redis, script, services, &self.name, take).await {
                    Ok(d) => Ok(d),
                    Err(e) => {
                        metrics::counter!(observe::RATE_LIMIT_OUTAGES, "limit" => self.name.to_string()).increment(1);
                        tracing::warn!(limit = %self.name, error = %e, mode = on_outage.as_str(), "rate-limit store unavailable");
                        match on_outage {
                            OutageMode::Local => {
                                Ok(fallback.acquire(&take.bucket, take.interval, take.burst))
                            }
                            OutageMode::Open => Ok(Decision::Allowed { remaining: take.burst }),
                            OutageMode::Closed => {
                                Err(Verdict::Deny(Problem::new(Code::StoreUnavailable)))
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The key a client address counts under in every per-client limit and counter: `key = "ip"`
/// rate limits, the login limit, the pow challenge and verify limits, pow failures. The IPv4
/// address, or the /64 of an IPv6 one: one client usually holds a whole /64, so counting
/// addresses would let it start afresh 2^64 times. An IPv4-mapped IPv6 address is its IPv4
/// address. On the stack: no allocation per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey {
    len: u8,
    bytes: [u8; 8],
}

impl ClientKey {
    pub fn of(ip: IpAddr) -> ClientKey {
        let mut bytes = [0u8; 8];
        let v4 = match ip {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(v6) => v6.to_ipv4_mapped(),
        };
        match (v4, ip) {
            (Some(v4), _) => {
                bytes[..4].copy_from_slice(&v4.octets());
                ClientKey { len: 4, bytes }
            }
            (None, IpAddr::V6(v6)) => {
                bytes.copy_from_slice(&v6.octets()[..8]);
                ClientKey { len: 8, bytes }
            }
            (None, IpAddr::V4(_)) => unreachable!("an IPv4 address is its own key"),
        }
    }

    /// 4 bytes (IPv4) or 8 (an IPv6 /64): the bucket key, as `[rate_limits]` always used.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// A client address's bucket.
fn ip_bucket(ip: IpAddr, out: &mut Vec<u8>) {
    out.extend_from_slice(ClientKey::of(ip).as_bytes());
}

/// A per-address limit on one of the gateway's own endpoints (login), in this process.
pub struct AddressLimit {
    name: &'static str,
    rate: Rate,
    gcra: Arc<LocalGcra>,
    limited: metrics::Counter,
}

impl AddressLimit {
    pub fn new(name: &'static str, rate: Rate, services: &Services) -> AddressLimit {
        let state_key = format!("rate_limit:{name}:{}:{}", rate.interval().as_micros(), rate.count);
        AddressLimit {
            name,
            rate,
            gcra: services.kept(&state_key, || LocalGcra::new(MAX_KEYS_PER_LIMIT)),
            limited: metrics::counter!(observe::RATE_LIMITED, "limit" => name),
        }
    }

    /// `Ok` when `ip` may go on; otherwise the 429 problem and its `Retry-After` seconds.
    #[allow(clippy::result_large_err)] // refusals are the rare path; no allocation to save
    pub fn admit(&self, ip: IpAddr) -> Result<(), (Problem, u64)> {
        match self.gcra.acquire(ClientKey::of(ip).as_bytes(), self.rate.interval(), self.rate.count)
        {
            Decision::Allowed { .. } => Ok(()),
            Decision::Limited { retry_after } => {
                self.limited.increment(1);
                let secs =
                    (retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0)).max(1);
                let detail = format!(
                    "Rate limit `{}` exceeded: too many from this address; retry after {secs} s.",
                    self.name
                );
                Err((Problem::new(Code::RateLimited).with_detail(detail), secs))
            }
        }
    }
}

fn policy_header(name: &str, burst: u32, window: Duration) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{name}\";q={burst};w={}", window.as_secs().max(1)))
        .unwrap_or(HeaderValue::from_static("\"limit\""))
}

/// The rate-limit check of one route at one place in the pipeline (before or after auth).
pub struct RateLimit {
    limiters: Vec<Limiter>,
    /// [`Stage::ClientLimit`] for limits keyed by address, [`Stage::CallerLimit`] for those
    /// keyed by the authenticated caller.
    stage: Stage,
}

/// Builds the route's two rate-limit checks: (before authentication, after it). With
/// `key_limits` (the route accepts API keys), the after-check also applies each key's own
/// `rate_limit`.
pub fn for_route(
    names: &[String],
    limits: &std::collections::BTreeMap<String, RateLimitConfig>,
    key_limits: bool,
    on_outage: OutageMode,
    services: &Arc<Services>,
) -> (Option<RateLimit>, Option<RateLimit>) {
    let backend = |state_key: &str| {
        let local = services.kept(state_key, || LocalGcra::new(MAX_KEYS_PER_LIMIT));
        match services.redis() {
            Some(redis) => Backend::Redis {
                redis: redis.clone(),
                script: services.kept("rate_limit:script", || redis::Script::new(GCRA_SCRIPT)),
                services: services.clone(),
                fallback: local,
                on_outage,
            },
            None => Backend::Local(local),
        }
    };
    let (mut before, mut after) = (Vec::new(), Vec::new());
    for name in names {
        let Some(cfg) = limits.get(name) else { continue };
        let interval = cfg.rate.interval();
        let burst = cfg.burst();
        // The same limit (name, key, rate, burst) keeps its buckets across reloads.
        let state_key = format!("rate_limit:{name}:{:?}:{}:{burst}", cfg.key, interval.as_micros());
        let limiter = Limiter {
            name: Arc::from(name.as_str()),
            key: cfg.key.clone(),
            rate: Some(ConfiguredRate {
                interval,
                burst,
                policy: policy_header(name, burst, cfg.rate.period),
            }),
            backend: backend(&state_key),
            limited: metrics::counter!(observe::RATE_LIMITED, "limit" => name.clone()),
        };
        if cfg.key.before_auth() { before.push(limiter) } else { after.push(limiter) }
    }
    if key_limits {
        after.push(Limiter {
            name: Arc::from(CALLER_LIMIT),
            key: LimitKey::ApiKey,
            rate: None,
            backend: backend("rate_limit:api_key_own"),
            limited: metrics::counter!(observe::RATE_LIMITED, "limit" => CALLER_LIMIT),
        });
    }
    let make = |limiters: Vec<Limiter>, stage| {
        (!limiters.is_empty()).then_some(RateLimit { limiters, stage })
    };
    (make(before, Stage::ClientLimit), make(after, Stage::CallerLimit))
}

impl Check for RateLimit {
    fn name(&self) -> &'static str {
        "rate_limit"
    }

    fn stage(&self) -> Stage {
        self.stage
    }

    fn check<'a>(&'a self, ex: &'a mut Exchange<'_>) -> Outcome<'a> {
        // In-process buckets answer at once; only a limit that applies and lives in Redis
        // makes the check wait.
        let mut takes: Vec<(&Limiter, Take)> = Vec::new();
        for l in &self.limiters {
            let Some(take) = l.take(ex) else { continue };
            match &l.backend {
                Backend::Local(gcra) => {
                    if let Decision::Limited { retry_after } =
                        gcra.acquire(&take.bucket, take.interval, take.burst)
                    {
                        return Outcome::Ready(l.refuse(ex, &take, retry_after));
                    }
                }
                Backend::Redis { .. } => takes.push((l, take)),
            }
        }
        if takes.is_empty() {
            return Outcome::Ready(Verdict::Continue);
        }
        Outcome::Pending(Box::pin(async move {
            for (l, take) in &takes {
                match l.acquire(take).await {
                    Ok(Decision::Allowed { .. }) => {}
                    Ok(Decision::Limited { retry_after }) => {
                        return l.refuse(ex, take, retry_after);
                    }
                    Err(verdict) => return verdict,
                }
            }
            Verdict::Continue
        }))
    }
}

async fn remote_acquire(
    redis: &Redis,
    script: &Arc<redis::Script>,
    services: &Services,
    name: &str,
    take: &Take,
) -> Result<Decision, String> {
    let (key, interval, burst) = (&take.bucket[..], take.interval, take.burst);
    let mut redis_key = format!("{}rl:{name}:", redis.prefix()).into_bytes();
    // Long or binary keys (header values) are hashed: bounded key size, nothing readable stored.
    if key.len() > 64 || key.iter().any(|b| !b.is_ascii_graphic()) {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(key);
        for b in &digest[..16] {
            redis_key.extend_from_slice(format!("{b:02x}").as_bytes());
        }
    } else {
        redis_key.extend_from_slice(key);
    }
    let mut conn = redis.conn();
    let script = script.clone();
    let interval_us = interval.as_micros().max(1) as u64;
    let timeout = services.store_timeout();
    let call = async move {
        let mut inv = script.key(redis_key);
        inv.arg(interval_us).arg(burst);
        tokio::time::timeout(timeout, inv.invoke_async::<(i64, i64, i64)>(&mut conn)).await
    };
    match services.run(call).await {
        Err(e) => Err(e.to_string()),
        Ok(Err(_)) => Err(format!("no answer within {timeout:?}")),
        Ok(Ok(Err(e))) => Err(e.to_string()),
        Ok(Ok(Ok((allowed, retry_us, remaining)))) => Ok(if allowed == 1 {
            Decision::Allowed { remaining: remaining.max(0) as u32 }
        } else {
            Decision::Limited { retry_after: Duration::from_micros(retry_us.max(1) as u64) }
        }),
    }
}

/// The rate-limit feature: each route's `rate_limit` names, split by stage (limits keyed by
/// address before authentication, by caller after), and each API key's own rate.
pub struct RateLimits {
    services: Arc<Services>,
}

/// Always built; a route without `rate_limit` (and without keys) gets no check.
pub fn feature(inputs: &FeatureInputs<'_>) -> Result<Option<Arc<dyn Feature>>, FeatureError> {
    Ok(Some(Arc::new(RateLimits { services: inputs.services.clone() })))
}

impl Feature for RateLimits {
    fn route_checks(&self, route: &RouteContext<'_>, checks: &mut Vec<Arc<dyn Check>>) {
        let config = route.config;
        let names = route.policy.map_or(&[][..], |r| r.rate_limit.as_slice());
        let key_limits = config.api_keys.is_some() && route.auth.accepts(AuthMethod::ApiKey);
        let (client, caller) = for_route(
            names,
            &config.rate_limits,
            key_limits,
            config.shared.on_outage.rate_limits,
            &self.services,
        );
        checks.extend(client.into_iter().chain(caller).map(|l| Arc::new(l) as Arc<dyn Check>));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000;

    #[test]
    fn clients_are_keyed_by_ipv4_address_or_ipv6_64() {
        let key = |s: &str| ClientKey::of(s.parse().unwrap());
        assert_eq!(key("192.0.2.1").as_bytes(), &[192, 0, 2, 1]);
        assert_eq!(
            key("::ffff:192.0.2.1"),
            key("192.0.2.1"),
            "an IPv4-mapped address is its IPv4 address"
        );
        assert_ne!(key("192.0.2.1"), key("192.0.2.2"));
        // One /64, any interface id: one client.
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff:ffff:ffff:ffff"));
        assert_eq!(key("2001:db8:1:2::1").as_bytes(), &[0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2]);
        // The next /64 is another client.
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        // An IPv6 /64 never collides with an IPv4 address (different lengths).
        assert_ne!(key("c000:0201::").as_bytes(), key("192.0.2.1").as_bytes());
    }

    #[test]
    fn gcra_allows_the_burst_then_the_rate() {
        let g = LocalGcra::new(1000);
        let interval = Duration::from_secs(1); // 1/s
        for i in 0..3 {
            assert_eq!(
                g.acquire_at(b"a", interval, 3, 0),
                Decision::Allowed { remaining: 2 - i },
                "request {i}"
            );
        }
        assert_eq!(
            g.acquire_at(b"a", interval, 3, 0),
            Decision::Limited { retry_after: Duration::from_secs(1) }
        );
        // Another key has its own bucket.
        assert!(matches!(g.acquire_at(b"b", interval, 3, 0), Decision::Allowed { .. }));
        // One interval later, one more request passes, and only one.
        assert!(matches!(g.acquire_at(b"a", interval, 3, S), Decision::Allowed { remaining: 0 }));
        assert!(matches!(g.acquire_at(b"a", interval, 3, S), Decision::Limited { .. }));
        // After a long pause the bucket is full again, never fuller.
        assert_eq!(g.acquire_at(b"a", interval, 3, 100 * S), Decision::Allowed { remaining: 2 });
    }

    #[test]
    fn refused_requests_do_not_consume() {
        let g = LocalGcra::new(1000);
        let interval = Duration::from_secs(10);
        assert!(matches!(g.acquire_at(b"k", interval, 1, 0), Decision::Allowed { .. }));
        for _ in 0..100 {
            assert!(matches!(g.acquire_at(b"k", interval, 1, 5 * S), Decision::Limited { .. }));
        }
        // Hammering while limited did not push the next slot further out.
        assert!(matches!(g.acquire_at(b"k", interval, 1, 10 * S), Decision::Allowed { .. }));
    }

    #[test]
    fn a_refunded_request_is_not_counted() {
        let g = LocalGcra::new(1000);
        let interval = Duration::from_secs(10);
        assert!(matches!(g.acquire_at(b"k", interval, 1, 0), Decision::Allowed { .. }));
        assert!(matches!(g.acquire_at(b"k", interval, 1, S), Decision::Limited { .. }));
        g.refund(b"k", interval);
        assert!(matches!(g.acquire_at(b"k", interval, 1, S), Decision::Allowed { .. }));
        assert!(matches!(g.acquire_at(b"k", interval, 1, 2 * S), Decision::Limited { .. }));
        // A key never seen: nothing to give back, and no credit beyond the burst.
        g.refund(b"other", interval);
        assert!(matches!(g.acquire_at(b"other", interval, 1, 2 * S), Decision::Allowed { .. }));
        assert!(matches!(g.acquire_at(b"other", interval, 1, 2 * S), Decision::Limited { .. }));
    }

    #[test]
    fn memory_is_bounded_under_a_flood_of_keys() {
        let g = LocalGcra::new(SHARDS * 10);
        for i in 0u32..10_000 {
            let _ = g.acquire_at(&i.to_be_bytes(), Duration::from_secs(60), 5, 0);
        }
        assert!(g.len() <= SHARDS * 10, "{} keys kept", g.len());
    }
}
