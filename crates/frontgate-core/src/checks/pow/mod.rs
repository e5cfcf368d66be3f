//! The built-in proof of work (`challenge = "pow"` on a route): ALTCHA v2 challenges, the
//! clearance that a solved one earns, and the check that asks for it.
//!
//! A folder rather than one file, because the pieces are separately testable: the wire
//! protocol ([`protocol`]), clearances ([`clearance`]), adaptive levels ([`adaptive`]), the
//! gateway's own endpoints ([`endpoints`]: challenge, verify, widget.js) and the interstitial
//! page ([`page`]). This file holds the state they share and the route check.
//!
//! What it buys: each request to a protected route costs the client a few seconds of CPU (or
//! memory, at the scrypt tier) per clearance period. It does not prove a human; see
//! docs/bot-defence.md.

pub mod adaptive;
pub mod clearance;
pub mod endpoints;
pub mod issuing;
pub mod levels;
pub mod page;
pub mod protocol;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use http::header::{self, HeaderName, HeaderValue};
use http::request::Parts;

use super::rate_limit::{AddressLimit, ClientKey, Decision, LocalGcra};
use crate::checks::{Feature, FeatureError, FeatureInputs, RouteContext};
use crate::config::Config;
use crate::config::pow::{PowConfig, PowLevel};
use crate::exchange::{Check, Exchange, Outcome, Stage, Verdict};
use crate::problem::{Code, Problem};
use crate::route::RouteTable;
use crate::state::Services;
use crate::state::replay::{Inserted, ReplayError, ReplaySet};
use adaptive::{Failures, RateWindow};
use clearance::Clearances;
use protocol::{PowError, Protocol, Verified};

/// The header a client sends a clearance in (instead of the cookie).
pub static CLEARANCE_HEADER: HeaderName = HeaderName::from_static("x-frontgate-clearance");
/// The header a client may send an `altcha` solution in, inline with the protected request.
pub static SOLUTION_HEADER: HeaderName = HeaderName::from_static("x-frontgate-pow");

/// Where time comes from: seconds since the epoch. Replaceable in tests.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    })
}

/// Client IPs the challenge limiter remembers at most (then it forgets those closest to a full
/// bucket, as route rate limits do: docs/rate-limits.md).
const LIMITER_MAX_KEYS: usize = 100_000;

/// Everything the pow check and endpoints share, built once per config load.
pub struct Pow {
    pub protocol: Protocol,
    pub clearances: Clearances,
    levels: Vec<PowLevel>,
    failures_per_level: u32,
    /// Request rate per protected route, by route name (`RouteEntry::name`): also the set of
    /// routes the challenge endpoint issues for.
    rates: HashMap<Arc<str>, RateWindow>,
    failures: Failures,
    replay: Arc<dyn ReplaySet>,
    /// How long a spent nonce is kept at least: the challenges' lifetime (`[pow] expires`).
    replay_ttl: Duration,
    /// Challenges per client IP: the same GCRA buckets as `[rate_limits]`.
    limiter: LocalGcra,
    challenge_interval: Duration,
    challenge_burst: u32,
    /// `/.frontgate/verify` calls per client (`[pow] verify_rate_limit`).
    pub verify_limit: AddressLimit,
    /// To find the route a `?route=PATH` names.
    table: Arc<RouteTable>,
    secure_cookies: bool,
    clock: Clock,
    #[allow(dead_code)]
    services: Arc<Services>,
}

impl Pow {
    /// `None` when the config has no `[pow]` section.
    pub fn from_config(
        config: &Config,
        table: &Arc<RouteTable>,
        services: &Arc<Services>,
    ) -> Option<Arc<Pow>> {
        let pc = config.pow.as_ref()?;
        let replay =
            crate::state::replay::for_config(config, services, crate::state::replay::Feature::Pow);
        let pow = Arc::new(Pow::new(config, table, pc, services.clone(), replay, system_clock()));
        let weak = Arc::downgrade(&pow);
        levels::publish_pow(weak);
        Some(pow)
    }

    pub fn new(
        config: &Config,
        table: &Arc<RouteTable>,
        pc: &PowConfig,
        services: Arc<Services>,
        replay: Arc<dyn ReplaySet>,
        clock: Clock,
    ) -> Pow {
        let site = config.public_origin().to_string();
        // Keyed by the route's name as the pipeline sees it (`RouteEntry::name`): an OpenAPI
        // operation a `[[routes]]` entry merges into goes by the operation's name, not the
        // entry's `match` text, and so must its challenges, clearances and request rate.
        let rates = table
            .entries()
            .iter()
            .filter(|e| {
                e.config_index
                    .and_then(|i| config.routes.get(i))
                    .is_some_and(|r| r.challenge.as_deref() == Some("pow"))
            })
            .map(|e| (e.name.clone(), RateWindow::default()))
            .collect();
        let per_minute = pc.challenge_rate.max(1);
        Pow {
            protocol: Protocol::new(&pc.secret.0, pc.expires.0, pc.mode, pc.algorithm, &site),
            clearances: Clearances::new(&pc.secret.0, pc.clearance.0),
            levels: pc.levels.clone(),
            failures_per_level: pc.failures_per_level,
            rates,
            failures: Failures::default(),
            replay,
            replay_ttl: pc.expires.0,
            limiter: LocalGcra::new(LIMITER_MAX_KEYS),
            challenge_interval: Duration::from_secs(60) / per_minute,
            challenge_burst: (per_minute / 3).max(5),
            verify_limit: AddressLimit::new("pow_verify", pc.verify_rate_limit, &services),
            table: table.clone(),
            secure_cookies: config.public_origin().is_https(),
            clock,
            services,
        }
    }

    pub fn now(&self) -> u64 {
        (self.clock)()
    }

    pub fn levels(&self) -> &[PowLevel] {
        &self.levels
    }

    /// The level a challenge for `route` issued to `ip` gets now.
    pub fn level_for(&self, route: &str, ip: IpAddr) -> usize {
        let now = self.now();
        let rps = self.rates.get(route).map_or(0.0, |w| w.rate(now));
        adaptive::choose_level(
            &self.levels,
            rps,
            self.failures.count(ip, now),
            self.failures_per_level,
        )
    }

    /// The level the route's load alone asks for (0 when quiet).
    pub(crate) fn load_level(&self, route: &str) -> usize {
        let now = self.now();
        let rps = self.rates.get(route).map_or(0.0, |w| w.rate(now));
        adaptive::choose_level(&self.levels, rps, 0, self.failures_per_level)
    }

    fn record_request(&self, route: &str) {
        if let Some(w) = self.rates.get(route) {
            w.record(self.now());
        }
    }

    pub fn record_failure(&self, ip: IpAddr, reason: &'static str) {
        self.failures.record(ip, self.now());
        metrics::counter!("frontgate_pow_failures_total", "reason" => reason).increment(1);
    }

    /// Whether `ip` (its IPv6 /64) may fetch another challenge now; else the seconds to wait.
    pub fn allow_challenge(&self, ip: IpAddr) -> Result<(), u64> {
        match self.limiter.acquire(
            ClientKey::of(ip).as_bytes(),
            self.challenge_interval,
            self.challenge_burst,
        ) {
            Decision::Allowed { .. } => Ok(()),
            Decision::Limited { retry_after } => {
                Err((retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0)).max(1))
            }
        }
    }

    /// Gives back the challenge [`allow_challenge`](Self::allow_challenge) counted for `ip`
    /// when none was issued after all (no derivation slot came free: 503 `overloaded`).
    pub fn refund_challenge(&self, ip: IpAddr) {
        self.limiter.refund(ClientKey::of(ip).as_bytes(), self.challenge_interval);
    }

    /// The name (`RouteEntry::name`, as the pipeline keys it) of the pow-protected route at
    /// `path`: tried with `method`, or with each common method.
    pub fn protected_route(&self, path: &str, method: Option<&http::Method>) -> Option<Arc<str>> {
        let normalized = crate::route::normalize_path(path).ok()?;
        let methods: Vec<http::Method> = match method {
            Some(m) => vec![m.clone()],
            None => vec![
                http::Method::POST,
                http::Method::GET,
                http::Method::PUT,
                http::Method::PATCH,
                http::Method::DELETE,
            ],
        };
        methods.iter().find_map(|m| match self.table.lookup(m, &normalized) {
            crate::route::Lookup::Found(_, entry) if self.rates.contains_key(&*entry.name) => {
                Some(entry.name.clone())
            }
            _ => None,
        })
    }

    /// The URL a client fetches a challenge for `path` from.
    pub fn challenge_url(path: &str) -> String {
        let encoded: String =
            percent_encoding::utf8_percent_encode(path, percent_encoding::NON_ALPHANUMERIC)
                .collect();
        format!("/.frontgate/challenge?route={encoded}")
    }

    /// Verifies an `altcha` payload and spends it. `route`: the route it must be for, if known.
    pub async fn redeem(
        self: &Arc<Self>,
        payload: &str,
        route: Option<&str>,
        ip: IpAddr,
    ) -> Result<Verified, Problem> {
        let refuse = |e: PowError| {
            self.record_failure(ip, e.reason());
            let p = Problem::new(Code::ChallengeFailed)
                .with_detail(format!("The proof of work was refused: {e}."));
            if matches!(e, PowError::Malformed(_)) {
                p.with_status(http::StatusCode::BAD_REQUEST)
            } else {
                p
            }
        };
        let decoded = Protocol::decode(payload).map_err(refuse)?;
        let now = self.now();
        // The deterministic fast path is two HMACs; anything that re-derives a key (probabilistic
        // mode) runs off the worker thread.
        let verified = if decoded.challenge.parameters.key_signature.is_some() {
            self.protocol.verify(&decoded, route, now)
        } else {
            let (me, owned_route) = (self.clone(), route.map(str::to_owned));
            tokio::task::spawn_blocking(move || {
                me.protocol.verify(&decoded, owned_route.as_deref(), now)
            })
            .await
            .unwrap_or(Err(PowError::WrongSolution))
        };
        let verified = verified.map_err(refuse)?;
        // Only now, with signature and solution verified, is the nonce spent: until its
        // challenge expires, and at least for a challenge's lifetime, so that the entries'
        // expiries (nearly) only grow and the replay set expires them in order.
        let remaining =
            Duration::from_secs((verified.expires_at as u64).saturating_sub(self.now()).max(1));
        let ttl = remaining.max(self.replay_ttl);
        let key = format!("pow:{}", verified.nonce);
        match self.replay.insert_once(&key, ttl).await {
            Ok(Inserted::Fresh) => {
                metrics::counter!("frontgate_pow_solutions_total", "result" => "accepted")
                    .increment(1);
                Ok(verified)
            }
            Ok(Inserted::Replayed) => {
                self.record_failure(ip, "replayed");
                Err(Problem::new(Code::ChallengeFailed)
                    .with_detail("This solution was already used; fetch a new challenge."))
            }
            Err(e @ (ReplayError::Full | ReplayError::Unavailable(_))) => {
                tracing::warn!(error = %e, "pow replay set refused a write");
                Err(Problem::new(Code::StoreUnavailable))
            }
        }
    }

    /// The `Set-Cookie` value for a clearance.
    pub fn clearance_cookie(&self, route: &str, token: &str) -> Option<HeaderValue> {
        let name = clearance::cookie_name(route, self.secure_cookies);
        let secure = if self.secure_cookies { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{name}={token}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict{secure}",
            self.clearances.lifetime()
        ))
        .ok()
    }

    fn binding(&self, head: &Parts, ip: IpAddr) -> String {
        let ua = head.headers.get(header::USER_AGENT).map_or(&b""[..], |v| v.as_bytes());
        self.clearances.binding(&ip, ua)
    }

    /// The clearance the request carries for `route`: the header, else the route's cookie.
    fn presented_clearance<'h>(&self, head: &'h Parts, route: &str) -> Option<&'h str> {
        if let Some(v) = head.headers.get(&CLEARANCE_HEADER).and_then(|v| v.to_str().ok()) {
            return Some(v.trim());
        }
        let name = clearance::cookie_name(route, self.secure_cookies);
        head.headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|pair| {
                let (k, v) = pair.trim().split_once('=')?;
                (k == name).then_some(v)
            })
    }
}

/// The route check for `challenge = "pow"`.
pub struct PowCheck {
    pow: Arc<Pow>,
}

impl PowCheck {
    pub fn new(pow: Arc<Pow>) -> PowCheck {
        PowCheck { pow }
    }
}

/// Whether a request is a browser navigation (which gets a page, not a JSON problem).
pub fn is_navigation(head: &Parts) -> bool {
    match head.headers.get("sec-fetch-mode") {
        Some(mode) => mode.as_bytes() == b"navigate",
        None => head
            .headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.starts_with("text/html")),
    }
}

impl Check for PowCheck {
    fn name(&self) -> &'static str {
        "pow"
    }

    fn stage(&self) -> Stage {
        Stage::Bot
    }

    fn check<'a>(&'a self, ex: &'a mut Exchange<'_>) -> Outcome<'a> {
        let pow = &self.pow;
        let route: &str = &ex.route.name;
        let ip = ex.client.ip;
        let binding = pow.binding(ex.head, ip);
        let clearance = pow
            .presented_clearance(ex.head, route)
            .map(|token| pow.clearances.verify(token, route, &binding, pow.now()));
        let header = ex.head.headers.get(&SOLUTION_HEADER);
        // With no valid clearance and no solution in the header, the solution may be the body's
        // `altcha` field. Asked before any counting, as the check then runs again with the body.
        if !matches!(clearance, Some(Ok(())))
            && header.is_none()
            && ex.body.is_none()
            && ex.body_readable
            && may_carry_field(ex.head, ex.route.max_body_bytes)
        {
            return Outcome::Ready(Verdict::NeedsBody);
        }
        pow.record_request(route);
        match clearance {
            Some(Ok(())) => return Outcome::Ready(Verdict::Continue),
            Some(Err(e)) => metrics::counter!("frontgate_pow_clearances_refused_total", "reason" => clearance_reason(e)).increment(1),
            None => {}
        }
        let payload = match header.map(|v| v.to_str()) {
            Some(Ok(p)) => p.to_owned(),
            Some(Err(_)) => {
                pow.record_failure(ip, "malformed");
                return Outcome::Ready(Verdict::Deny(
                    Problem::new(Code::ChallengeFailed).with_status(http::StatusCode::BAD_REQUEST),
                ));
            }
            None => match ex.body.as_deref().map(|body| body_field(ex.head, body)) {
                Some(Ok(Some(p))) => p,
                // A body readable more than one way is refused, not taken as "no solution".
                Some(Err(detail)) => {
                    return Outcome::Ready(Verdict::Deny(
                        Problem::new(Code::InvalidBody).with_detail(format!(
                            "The body's solution field cannot be read one way only: {detail}."
                        )),
                    ));
                }
                _ => return Outcome::Ready(self.absent(ex)),
            },
        };
        Outcome::Pending(Box::pin(async move {
            match pow.redeem(&payload, Some(route), ip).await {
                Ok(v) => {
                    let (token, _) = pow.clearances.issue(&v.route, &binding, pow.now());
                    if let Some(cookie) = pow.clearance_cookie(&v.route, &token) {
                        ex.response_headers.push((header::SET_COOKIE, cookie));
                    }
                    Verdict::Continue
                }
                Err(p) => Verdict::Deny(
                    p.with_extension("challenge", Pow::challenge_url(ex.head.uri.path())),
                ),
            }
        }))
    }
}

/// The most body read for its `altcha` field. A form holding the widget is small; a larger body
/// is refused unread (send its solution in the header), so a client with no solution cannot
/// make the gateway hold `max_body_bytes` per request.
pub const MAX_FIELD_BODY: u64 = 64 * 1024;

/// Whether the request may carry an `altcha` field in a body worth reading: a form (urlencoded
/// or multipart) or JSON body of a declared length, at most [`MAX_FIELD_BODY`] and the route's limit.
fn may_carry_field(head: &Parts, route_limit: u64) -> bool {
    let length = head
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    length.is_some_and(|n| n > 0 && n <= MAX_FIELD_BODY.min(route_limit))
        && endpoints::FieldMedia::of(head.headers.get(header::CONTENT_TYPE)).is_some()
}

/// The body's `altcha` field (what the ALTCHA widget adds to the form it sits in, urlencoded
/// or multipart), or its top-level JSON member `altcha`. `Ok(None)` when there is none or the
/// body is malformed (the request then needs a challenge like any other); `Err` with a detail
/// when the body is ambiguous ([`endpoints::FieldError::Ambiguous`]).
fn body_field(head: &Parts, body: &[u8]) -> Result<Option<String>, String> {
    let Some(media) = endpoints::FieldMedia::of(head.headers.get(header::CONTENT_TYPE)) else {
        return Ok(None);
    };
    match media.field(body, "altcha") {
        Ok(found) => Ok(found),
        Err(endpoints::FieldError::Malformed(_)) => Ok(None),
        Err(e) => Err(e.detail()),
    }
}

fn clearance_reason(e: clearance::ClearanceError) -> &'static str {
    match e {
        clearance::ClearanceError::Invalid => "invalid",
        clearance::ClearanceError::Expired => "expired",
        clearance::ClearanceError::WrongRoute => "wrong_route",
        clearance::ClearanceError::WrongClient => "wrong_client",
    }
}

impl PowCheck {
    /// No (valid) clearance: a page for a browser navigation, a problem for an API call.
    fn absent(&self, ex: &mut Exchange<'_>) -> Verdict {
        let path = ex.head.uri.path();
        let url = Pow::challenge_url(path);
        metrics::counter!("frontgate_pow_challenges_required_total").increment(1);
        if is_navigation(ex.head) {
            return Verdict::Respond(page::interstitial(
                &url,
                ex.head.method == http::Method::GET || ex.head.method == http::Method::HEAD,
            ));
        }
        let loaded = self.pow.load_level(&ex.route.name) > 0;
        let mut p = Problem::new(Code::ChallengeRequired).with_extension("challenge", url.clone());
        if loaded {
            // Under load, tell well-behaved clients to slow down as well as to solve.
            p = p.with_status(http::StatusCode::TOO_MANY_REQUESTS);
            ex.response_headers.push((header::RETRY_AFTER, HeaderValue::from_static("1")));
        }
        if let Ok(link) = HeaderValue::from_str(&format!("<{url}>; rel=\"challenge\"")) {
            ex.response_headers.push((header::LINK, link));
        }
        Verdict::Deny(p)
    }
}

/// The proof-of-work feature: its endpoints, and the check on routes with
/// `challenge = "pow"`.
pub struct PowFeature(Arc<Pow>);

/// `[pow]`.
pub fn feature(inputs: &FeatureInputs<'_>) -> Result<Option<Arc<dyn Feature>>, FeatureError> {
    Ok(Pow::from_config(inputs.config, inputs.table, inputs.services)
        .map(|p| Arc::new(PowFeature(p)) as Arc<dyn Feature>))
}

impl Feature for PowFeature {
    fn endpoints(&self) -> Vec<Arc<dyn crate::exchange::Endpoint>> {
        endpoints::all(&self.0)
    }

    fn route_checks(&self, route: &RouteContext<'_>, checks: &mut Vec<Arc<dyn Check>>) {
        if route.policy.and_then(|r| r.challenge.as_deref()) == Some("pow") {
            checks.push(Arc::new(PowCheck::new(self.0.clone())));
        }
    }
}

/// For the admin console's traffic view: each protected route's load and level now.
impl levels::PowLevels for Pow {
    fn pow_levels(&self) -> Vec<levels::PowRouteLevel> {
        let now = self.now();
        let mut out: Vec<_> = self
            .rates
            .iter()
            .map(|(route, w)| {
                let rps = w.rate(now);
                let level = adaptive::choose_level(&self.levels, rps, 0, self.failures_per_level);
                let l = self.levels.get(level);
                levels::PowRouteLevel {
                    route: route.to_string(),
                    rps,
                    level,
                    levels: self.levels.len(),
                    cost: l.map_or(0, |l| l.cost),
                    counter: l.map_or(0, |l| l.counter),
                }
            })
            .collect();
        out.sort_by(|a, b| a.route.cmp(&b.route));
        out
    }
}
