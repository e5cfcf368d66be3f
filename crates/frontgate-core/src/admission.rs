//! Admission: everything frontgate decides about a request before it reaches its target.
//! Assembled once per config load from a [`Plan`]: every feature builds from its section, each
//! route gets its checks in [`Stage`](crate::exchange::Stage) order, and the features' own
//! endpoints are collected. A request is then screened (limits, head hygiene), normalized,
//! routed and checked; it passes (with the caller's identity), is answered by the gateway
//! itself, or is refused with a problem. The gateway (the `frontgate` crate's pipeline) and the
//! embedded tower layer ([`crate::layer`]) both run this, so they cannot disagree; they differ
//! only in where an admitted request goes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Response};

use crate::body::{Body, ClientBody};
use crate::checks::cors::is_preflight;
use crate::checks::{BuildFeature, Feature, FeatureError, FeatureInputs, RouteContext};
use crate::config::{Config, RouteTarget};
use crate::exchange::{
    Check, Client, Endpoint, Exchange, Identity, Outcome, ResponseHook, Verdict,
};
use crate::headers as hygiene;
use crate::observe;
use crate::plan::Plan;
use crate::problem::{Code, Problem};
use crate::response_fields::{self, FieldPolicy};
use crate::route::{Lookup, RouteEntry, RouteTable, normalize_path};
use crate::state::Services;

/// The outcome of a request, for metrics and logs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Forwarded,
    Served,
    Denied,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Forwarded => "forwarded",
            Decision::Served => "served",
            Decision::Denied => "denied",
        }
    }
}

struct RouteMetrics {
    /// Requests that got through: forwarded (upstream routes) or served (frontend routes).
    passed: metrics::Counter,
    duration: metrics::Histogram,
    overhead: metrics::Histogram,
}

impl RouteMetrics {
    fn new(route: &RouteEntry) -> Self {
        let decision = match route.target {
            RouteTarget::Upstream => Decision::Forwarded,
            RouteTarget::Frontend => Decision::Served,
        };
        let route = route.name.to_string();
        RouteMetrics {
            passed: metrics::counter!(observe::REQUESTS, "route" => route.clone(), "decision" => decision.as_str(), "code" => "none"),
            duration: metrics::histogram!(observe::DURATION, "route" => route.clone()),
            overhead: metrics::histogram!(observe::OVERHEAD, "route" => route),
        }
    }
}

/// Request ids: a random per-process prefix and a counter. Unique, cheap, and not a secret.
pub struct RequestIds {
    prefix: String,
    next: AtomicU64,
}

impl RequestIds {
    fn new() -> Self {
        let mut seed = [0u8; 6];
        let _ = getrandom::fill(&mut seed);
        let prefix = seed.iter().map(|b| format!("{b:02x}")).collect();
        RequestIds { prefix, next: AtomicU64::new(1) }
    }

    pub fn next(&self) -> HeaderValue {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        // prefix, '-', up to 16 hex digits: formatted on the stack, one allocation.
        let mut buf = [0u8; 48];
        let p = self.prefix.as_bytes();
        buf[..p.len()].copy_from_slice(p);
        buf[p.len()] = b'-';
        let digits = if n == 0 { 1 } else { (16 - n.leading_zeros() as usize / 4).max(1) };
        let start = p.len() + 1;
        for i in 0..digits {
            let nibble = ((n >> (4 * (digits - 1 - i))) & 0xf) as usize;
            buf[start + i] = b"0123456789abcdef"[nibble];
        }
        HeaderValue::from_maybe_shared(Bytes::copy_from_slice(&buf[..start + digits]))
            .unwrap_or(HeaderValue::from_static("0"))
    }
}

/// The admission engine for one config load: every route's checks and response hooks, the
/// features' endpoints, the response fields and metrics of each route.
pub struct Admission {
    config: Arc<Config>,
    table: Arc<RouteTable>,
    /// The checks for each route, by route index, in stage order.
    checks: Vec<Vec<Arc<dyn Check>>>,
    /// The work on the backend's responses for each route, by route index (most have none).
    response_hooks: Vec<Vec<Arc<dyn ResponseHook>>>,
    /// How long a body a check reads may take to arrive, where the route sets no timeout.
    body_timeout: Duration,
    /// The response fields of each route, then of no route; for plain HTTP and for HTTPS.
    fields: Vec<[FieldPolicy; 2]>,
    route_metrics: Vec<RouteMetrics>,
    /// The gateway's own endpoints under `/.frontgate/`, from the modules that own them.
    endpoints: Vec<Arc<dyn Endpoint>>,
    pub request_ids: RequestIds,
}

/// Why a planned config could not be assembled into a pipeline.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A feature could not be built from its section.
    #[error(transparent)]
    Feature(#[from] FeatureError),
    /// The process state the embedded layer needs could not be started.
    #[error("{0}")]
    State(#[from] crate::state::StartError),
}

/// The features of the request path, in the order they are built: those that provide
/// authenticators (API keys, JWT, sessions) before the authenticate stage. The order of their
/// checks on a route is not this order but their [`Stage`]s. A new feature is its module and
/// one line here.
const FEATURES: &[BuildFeature] = &[
    crate::checks::cors::feature,
    api_keys,
    crate::checks::jwt::feature,
    crate::oidc::feature,
    crate::checks::rate_limit::feature,
    crate::checks::auth::feature,
    crate::checks::pow::feature,
    crate::checks::captcha::feature,
    crate::checks::openapi::feature,
    crate::checks::gateway_cookies::feature,
];

/// `[api_keys]`, which needs the SQL store.
#[cfg(feature = "sql")]
use crate::checks::api_key::feature as api_keys;

/// `[api_keys]` in a build without the SQL store: the plan refuses the section, so this is
/// reached only by a config that skipped it.
#[cfg(not(feature = "sql"))]
fn api_keys(inputs: &FeatureInputs<'_>) -> Result<Option<Arc<dyn Feature>>, FeatureError> {
    match inputs.config.api_keys {
        Some(_) => Err(FeatureError::StoreNotOpen("[api_keys]")),
        None => Ok(None),
    }
}

static NOT_FOUND_ROUTE: &str = "-";

impl Admission {
    /// Assembles admission for a planned config, with process-wide state from `services`.
    pub fn build(plan: Plan, services: &Arc<Services>) -> Result<Admission, BuildError> {
        let route_policies: Vec<_> = plan
            .table
            .entries()
            .iter()
            .map(|entry| {
                let policy = entry.config_index.and_then(|i| plan.config.routes.get(i));
                plan.route_policy(entry, policy)
            })
            .collect();
        let Plan { config, spec, table } = plan;
        // Each feature builds from its config section; those that provide authenticators come
        // before the authenticate stage that uses them (FEATURES).
        let mut features: Vec<Arc<dyn Feature>> = Vec::new();
        let mut authenticators = Vec::new();
        for build in FEATURES {
            let inputs = FeatureInputs {
                config: &config,
                table: &table,
                spec: spec.as_ref(),
                services,
                authenticators: &authenticators,
                route_policies: &route_policies,
            };
            if let Some(feature) = build(&inputs)? {
                authenticators.extend(feature.authenticators());
                features.push(feature);
            }
        }
        let endpoints: Vec<Arc<dyn Endpoint>> =
            features.iter().flat_map(|f| f.endpoints()).collect();
        // Every route's checks, from every feature, in stage order (a stable sort: within a
        // stage, the features' order).
        let (checks, response_hooks): (Vec<_>, Vec<_>) = table
            .entries()
            .iter()
            .zip(&route_policies)
            .map(|(entry, (auth, scopes))| {
                let route = RouteContext {
                    config: &config,
                    entry,
                    policy: entry.config_index.and_then(|i| config.routes.get(i)),
                    auth,
                    scopes,
                };
                let mut route_checks: Vec<Arc<dyn Check>> = Vec::new();
                for feature in &features {
                    feature.route_checks(&route, &mut route_checks);
                }
                route_checks.sort_by_key(|c| c.stage());
                let hooks = features.iter().filter_map(|f| f.response_hook(&route)).collect();
                (route_checks, hooks)
            })
            .unzip();
        let csp = config
            .frontend
            .as_ref()
            .map(|f| f.csp())
            .unwrap_or_else(crate::config::frontend::d_csp);
        let hsts = config.server.hsts_value().and_then(|v| HeaderValue::from_str(v).ok());
        let csp =
            HeaderValue::from_str(&csp).unwrap_or(HeaderValue::from_static("default-src 'none'"));
        let defaults = response_fields::Defaults { hsts: hsts.as_ref(), csp: &csp };
        let fields = table
            .entries()
            .iter()
            .map(Some)
            .chain([None])
            .map(|r| [FieldPolicy::new(&defaults, r, false), FieldPolicy::new(&defaults, r, true)])
            .collect();
        let route_metrics = table.entries().iter().map(RouteMetrics::new).collect();
        Ok(Admission {
            body_timeout: config.upstream.as_ref().map_or(Duration::from_secs(30), |u| u.timeout.0),
            config: Arc::new(config),
            table,
            checks,
            response_hooks,
            fields,
            route_metrics,
            endpoints,
            request_ids: RequestIds::new(),
        })
    }

    /// The config this was built from.
    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// The route table requests are matched against.
    pub fn table(&self) -> &Arc<RouteTable> {
        &self.table
    }

    /// The largest body the route a request was admitted on takes (`max_body_bytes`).
    pub fn max_body_bytes(&self, out: &Outgoing) -> u64 {
        let route = out.route.and_then(|i| self.table.entries().get(i));
        route.map_or(self.config.server.max_body_bytes.0, |r| r.max_body_bytes)
    }

    /// The work on the backend's responses for the route a request was admitted on.
    pub fn response_hooks(&self, out: &Outgoing) -> &[Arc<dyn ResponseHook>] {
        out.route.and_then(|i| self.response_hooks.get(i)).map_or(&[], Vec::as_slice)
    }

    /// Everything before the target: limits, head hygiene, normalization, routing and the
    /// route's checks, with the body a check needs buffered from `body`. Either the request may
    /// pass (with its normalized path, if it changed, and the caller's identity), or the gateway
    /// answers it itself (a preflight, a reserved path, an endpoint), or it is refused.
    pub async fn admit(
        &self,
        head: &mut http::request::Parts,
        client: &Client,
        request_id: &HeaderValue,
        out: &mut Outgoing,
        body: &mut RequestBody,
    ) -> Result<Admitted, Problem> {
        let server = &self.config.server;
        if head.headers.len() > server.max_header_count
            || header_bytes(&head.headers) > server.max_header_bytes.0 as usize
        {
            return Err(Problem::new(Code::HeadersTooLarge));
        }
        let screened = hygiene::screen_request_head(head, server.underscores_in_headers)?;
        let raw_path = head.uri.path();
        let path = normalize_path(raw_path)
            .map_err(|e| Problem::new(Code::InvalidPath).with_detail(e.describe()))?;
        if path.starts_with("/.frontgate/") || &*path == "/.frontgate" {
            out.decision = Decision::Served;
            if let Some(e) = self.endpoints.iter().find(|e| e.matches(&path)) {
                return Ok(Admitted::Endpoint(e.clone()));
            }
            return self.reserved(&head.method, &path).map(Admitted::Answer);
        }
        let preflight = is_preflight(&head.method, &head.headers);
        let lookup_method = if preflight {
            head.headers
                .get(header::ACCESS_CONTROL_REQUEST_METHOD)
                .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
                .unwrap_or(Method::OPTIONS)
        } else {
            head.method.clone()
        };
        let (index, route) = match self.table.lookup(&lookup_method, &path) {
            Lookup::Found(i, r) => (i, r),
            Lookup::MethodNotAllowed(allow) => {
                return Err(Problem::new(Code::MethodNotAllowed).with_allow(allow));
            }
            Lookup::NotFound => return Err(Problem::new(Code::RouteNotFound)),
        };
        out.route = Some(index);
        let path = path.into_owned_if_changed();
        if screened.method_override && !route.method_override {
            hygiene::remove_method_override(&mut head.headers);
        }

        // The route's checks, in pipeline order.
        let rid = request_id.to_str().unwrap_or("");
        let body_readable = !matches!(body, RequestBody::Unavailable);
        let mut ex = Exchange {
            head,
            route,
            client,
            request_id: rid,
            response_headers: Vec::new(),
            identity: None,
            body: None,
            body_readable,
        };
        for check in &self.checks[index] {
            let mut wants_body = check.needs_body();
            let verdict = loop {
                if wants_body && ex.body.is_none() {
                    match body
                        .buffer(
                            &ex.head.headers,
                            route.max_body_bytes,
                            route.timeout.unwrap_or(self.body_timeout),
                        )
                        .await
                    {
                        Ok(bytes) => ex.body = Some(bytes),
                        Err(p) => {
                            out.extra = std::mem::take(&mut ex.response_headers);
                            return Err(p);
                        }
                    }
                }
                let verdict = match check.check(&mut ex) {
                    Outcome::Ready(v) => v,
                    Outcome::Pending(f) => f.await,
                };
                match verdict {
                    // Read the body, then ask the check again (once: it has the body then).
                    Verdict::NeedsBody if ex.body.is_none() && ex.body_readable => {
                        wants_body = true
                    }
                    v => break v,
                }
            };
            match verdict {
                Verdict::Continue => {}
                Verdict::Deny(mut p) => {
                    out.extra = std::mem::take(&mut ex.response_headers);
                    out.caller = p
                        .caller
                        .take()
                        .or_else(|| ex.identity.as_ref().map(|i| Box::new(i.caller())));
                    return Err(p);
                }
                Verdict::Respond(r) => {
                    out.extra = std::mem::take(&mut ex.response_headers);
                    out.decision = Decision::Served;
                    return Ok(Admitted::Answer(r));
                }
                // Asked again with the body, or where no body can be read: fail closed.
                Verdict::NeedsBody => {
                    tracing::error!(
                        check = check.name(),
                        "a check asked for a body it has or cannot have"
                    );
                    out.extra = std::mem::take(&mut ex.response_headers);
                    return Err(Problem::new(Code::BadRequest).with_detail(
                        "This route needs the request body, which could not be read here.",
                    ));
                }
            }
        }
        out.extra = ex.response_headers;
        Ok(Admitted::Pass { path, identity: ex.identity })
    }

    pub fn reserved(&self, method: &Method, path: &str) -> Result<Response<Body>, Problem> {
        if method != Method::GET && method != Method::HEAD {
            return Err(Problem::new(Code::RouteNotFound));
        }
        if path == "/.frontgate/health" {
            let mut r = Response::new(Body::full("{\"status\":\"ok\"}"));
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            return Ok(r);
        }
        if let Some(code) = path.strip_prefix("/.frontgate/problems/")
            && let Some(page) = crate::problem::problem_page(code)
        {
            let mut r = Response::new(Body::full(page));
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
            r.headers_mut().insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(crate::problem::problem_page_csp()),
            );
            return Ok(r);
        }
        Err(Problem::new(Code::RouteNotFound))
    }

    /// Adds what the checks set for this response (CORS, `Vary`, challenges) and returns the
    /// route's [`FieldPolicy`], still to be applied.
    pub fn add_extra_headers(
        &self,
        resp: &mut Response<Body>,
        out: &Outgoing,
        https: bool,
    ) -> &FieldPolicy {
        let h = resp.headers_mut();
        for (k, v) in &out.extra {
            // Lists a response may carry several of (one challenge per scheme).
            if k == header::VARY || k == header::WWW_AUTHENTICATE {
                h.append(k, v.clone());
            } else {
                h.insert(k, v.clone());
            }
        }
        &self.fields[out.route.unwrap_or(self.fields.len() - 1)][usize::from(https)]
    }

    /// Sets the response's headers: what the checks asked for, then the route's policy.
    pub fn finish_headers(
        &self,
        resp: &mut Response<Body>,
        out: &Outgoing,
        request_id: &HeaderValue,
        https: bool,
    ) {
        self.add_extra_headers(resp, out, https).apply(resp.headers_mut(), request_id);
    }

    /// Counts the request in the metrics and writes its access-log line; returns the name of
    /// its route (`-` for none), for the caller's own records.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &self,
        method: &Method,
        path: &str,
        resp: &Response<Body>,
        out: &mut Outgoing,
        start: Instant,
        request_id: &HeaderValue,
        client: &Client,
    ) -> &str {
        if let Some(code) = resp.extensions().get::<Code>() {
            out.code = Some(*code);
        }
        let total = start.elapsed();
        let route_name =
            out.route.map(|i| &*self.table.entries()[i].name).unwrap_or(NOT_FOUND_ROUTE);
        let passed = |i: usize| {
            let target = self.table.entries()[i].target;
            matches!(
                (target, out.decision),
                (RouteTarget::Upstream, Decision::Forwarded)
                    | (RouteTarget::Frontend, Decision::Served)
            )
        };
        match (out.route, out.decision, out.code) {
            (Some(i), _, None) if passed(i) => self.route_metrics[i].passed.increment(1),
            (_, decision, code) => {
                let code = code.map_or("none", |c| c.as_str());
                metrics::counter!(observe::REQUESTS, "route" => route_name.to_owned(), "decision" => decision.as_str(), "code" => code).increment(1);
            }
        }
        if let Some(m) = out.route.map(|i| &self.route_metrics[i]) {
            m.duration.record(total.as_secs_f64());
            m.overhead
                .record(total.saturating_sub(out.upstream_time.unwrap_or_default()).as_secs_f64());
        }
        if self.config.log.access_log {
            tracing::info!(
                target: "frontgate::access",
                request_id = request_id.to_str().unwrap_or(""),
                method = method.as_str(),
                path = path,
                route = route_name,
                status = resp.status().as_u16(),
                decision = out.decision.as_str(),
                code = out.code.map_or("none", |c| c.as_str()),
                client = %client.ip,
                duration_us = total.as_micros() as u64,
                upstream_us = out.upstream_time.map(|d| d.as_micros() as u64),
                "request"
            );
        }
        route_name
    }
}

/// What admission decided about a request that was not refused.
pub enum Admitted {
    /// Go on to the target; `path` is the normalized path when it differs from the raw one.
    Pass { path: Option<String>, identity: Option<Identity> },
    /// The gateway answers itself.
    Answer(Response<Body>),
    /// A path under `/.frontgate/` served by one of the gateway's own endpoints, which needs
    /// the body (login, verify, logout).
    Endpoint(Arc<dyn Endpoint>),
}

/// The request body on its way through the pipeline: streamed to the upstream untouched,
/// unless a check needed it, in which case it is read once and forwarded as those bytes.
pub enum RequestBody {
    Stream(ClientBody),
    /// The body of a request an embedding service handed to the layer, whatever its type.
    Embedded(Body),
    Buffered(Bytes),
    /// Not available to checks.
    Unavailable,
}

impl RequestBody {
    /// Reads the whole body (at most `limit` bytes; more is a 413) and keeps it. It must all
    /// arrive within `timeout` (408), so a client trickling a body cannot hold the read open.
    pub async fn buffer(
        &mut self,
        headers: &http::HeaderMap,
        limit: u64,
        timeout: Duration,
    ) -> Result<Bytes, Problem> {
        use http_body_util::BodyExt;
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit) {
            return Err(Problem::new(Code::PayloadTooLarge));
        }
        let stream = match std::mem::replace(self, RequestBody::Unavailable) {
            RequestBody::Stream(b) => Body::from(b),
            RequestBody::Embedded(b) => b,
            RequestBody::Buffered(b) => {
                *self = RequestBody::Buffered(b.clone());
                return Ok(b);
            }
            RequestBody::Unavailable => {
                return Err(Problem::new(Code::BadRequest).with_detail(
                    "This route checks request bodies, and this one cannot be read.",
                ));
            }
        };
        let read =
            http_body_util::Limited::new(stream, usize::try_from(limit).unwrap_or(usize::MAX))
                .collect();
        let Ok(read) = tokio::time::timeout(timeout, read).await else {
            return Err(Problem::new(Code::RequestTimeout));
        };
        let bytes = match read {
            Ok(c) => c.to_bytes(),
            Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
                return Err(Problem::new(Code::PayloadTooLarge));
            }
            Err(_) => {
                return Err(Problem::new(Code::BadRequest)
                    .with_detail("The request body could not be read."));
            }
        };
        *self = RequestBody::Buffered(bytes.clone());
        Ok(bytes)
    }
}

/// What admission records of a request on its way through, for the response's fields, the
/// metrics and the access log.
pub struct Outgoing {
    /// The index of the route the request matched, once it did.
    pub route: Option<usize>,
    pub decision: Decision,
    pub code: Option<Code>,
    /// The backend's time to response head, when the request was forwarded.
    pub upstream_time: Option<Duration>,
    /// Fields the checks set for the response (CORS, `Vary`, challenges).
    pub extra: Vec<(HeaderName, HeaderValue)>,
    /// Who a refusal was for, when that is certain (see [`crate::problem::Caller`]).
    pub caller: Option<Box<crate::problem::Caller>>,
}

impl Outgoing {
    pub fn new() -> Self {
        Outgoing {
            route: None,
            decision: Decision::Denied,
            code: None,
            upstream_time: None,
            extra: Vec::new(),
            caller: None,
        }
    }
}

impl Default for Outgoing {
    fn default() -> Self {
        Outgoing::new()
    }
}

fn header_bytes(headers: &http::HeaderMap) -> usize {
    headers.iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum()
}

pub fn valid_request_id(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && b.iter().all(|c| c.is_ascii_alphanumeric() || b"-_.:".contains(c))
}

/// The request's declared body length, made canonical for the backend: every Content-Length
/// value (fields and comma-separated copies) must be plain digits and agree, and what is
/// forwarded is one field with the integer as digits alone. `00005`, `010` or `5, 5` reach the
/// backend as `5` and `10`; a parser there that reads leading zeros as octal, or takes the
/// first of two copies, cannot disagree with the length the gateway counted.
pub fn canonical_content_length(headers: &mut http::HeaderMap) -> Result<Option<u64>, Problem> {
    let mut length: Option<u64> = None;
    let mut canonical = true;
    for value in headers.get_all(header::CONTENT_LENGTH) {
        for part in value.as_bytes().split(|&b| b == b',') {
            let digits = part.trim_ascii();
            if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
                return Err(Problem::new(Code::BadRequest)
                    .with_detail("The Content-Length is not a number."));
            }
            let n = digits.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
            if length.is_some_and(|l| l != n) {
                return Err(Problem::new(Code::AmbiguousRequest)
                    .with_detail("The request has conflicting Content-Length values."));
            }
            canonical &= length.is_none()
                && digits.len() == part.len()
                && (digits[0] != b'0' || digits.len() == 1);
            length = Some(n);
        }
    }
    if let (Some(n), false) = (length, canonical) {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
    }
    Ok(length)
}

trait IntoOwnedIfChanged {
    fn into_owned_if_changed(self) -> Option<String>;
}

impl IntoOwnedIfChanged for std::borrow::Cow<'_, str> {
    fn into_owned_if_changed(self) -> Option<String> {
        match self {
            std::borrow::Cow::Borrowed(_) => None,
            std::borrow::Cow::Owned(s) => Some(s),
        }
    }
}
