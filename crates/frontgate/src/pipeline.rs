//! The request path, assembled once per config load: normalize → route → checks → forward or
//! serve → response headers, metrics and access log. A reload builds a new [`Gateway`] and
//! swaps it in whole; requests in flight finish on the one they started with.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Request, Response};

use crate::body::{Body, ClientBody};
use crate::checks::cors::is_preflight;
use crate::checks::{BuildFeature, Feature, FeatureError, FeatureInputs, RouteContext};
use crate::config::{Config, RouteTarget};
use crate::exchange::{
    Check, Client, Endpoint, Exchange, ForwardingCache, Identity, Outcome, ResponseHook, Verdict,
};
use crate::frontend::{Frontend, Served};
use crate::observe;
use crate::plan::Plan;
use crate::problem::{Code, Problem};
use crate::proxy::client::UpstreamClient;
use crate::proxy::{self, RelayedFields, headers as hygiene};
use crate::response_fields::{self, FieldPolicy};
use crate::route::{Lookup, RouteEntry, RouteTable, normalize_path};
use crate::state::Services;

/// What the server knows about a connection.
#[derive(Clone)]
pub struct ConnInfo {
    pub peer: std::net::SocketAddr,
    pub tls: bool,
    pub forwarding: Arc<ForwardingCache>,
}

impl ConnInfo {
    pub fn new(peer: std::net::SocketAddr, tls: bool) -> Self {
        ConnInfo { peer, tls, forwarding: Arc::new(ForwardingCache::new(peer.ip(), tls)) }
    }
}

/// The outcome of a request, for metrics and logs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    Forwarded,
    Served,
    Denied,
}

impl Decision {
    fn as_str(self) -> &'static str {
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
pub(crate) struct RequestIds {
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

    pub(crate) fn next(&self) -> HeaderValue {
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

pub struct Gateway {
    config: Arc<Config>,
    table: Arc<RouteTable>,
    /// The checks for each route, by route index, in stage order.
    checks: Vec<Vec<Arc<dyn Check>>>,
    /// The work on the backend's responses for each route, by route index (most have none).
    response_hooks: Vec<Vec<Arc<dyn ResponseHook>>>,
    upstream: Option<Backend>,
    upstream_timeout: Duration,
    frontend: Option<Frontend>,
    /// `[frontend] dev_server`: front-end routes are forwarded there instead of served from disk.
    dev_server: Option<DevServer>,
    /// The response fields of each route, then of no route; for plain HTTP and for HTTPS.
    fields: Vec<[FieldPolicy; 2]>,
    route_metrics: Vec<RouteMetrics>,
    /// The gateway's own endpoints under `/.frontgate/`, from the modules that own them.
    endpoints: Vec<Arc<dyn Endpoint>>,
    pub(crate) request_ids: RequestIds,
}

/// Why a planned config could not be assembled into a pipeline.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A feature could not be built from its section.
    #[error(transparent)]
    Feature(#[from] FeatureError),
    /// `[frontend] dir` cannot be read.
    #[error("[frontend] dir: {0}")]
    Frontend(std::io::Error),
    /// The process state the embedded layer needs could not be started.
    #[error("{0}")]
    State(String),
}

/// The features of the request path, in the order they are built: those that provide
/// authenticators (API keys, JWT, sessions) before the authenticate stage. The order of their
/// checks on a route is not this order but their [`Stage`]s. A new feature is its module and
/// one line here.
const FEATURES: &[BuildFeature] = &[
    crate::checks::cors::feature,
    crate::checks::api_key::feature,
    crate::checks::jwt::feature,
    crate::oidc::feature,
    crate::checks::rate_limit::feature,
    crate::checks::auth::feature,
    crate::checks::pow::feature,
    crate::checks::captcha::feature,
    crate::checks::openapi::feature,
    crate::checks::gateway_cookies::feature,
];

static NOT_FOUND_ROUTE: &str = "-";

/// Where a forwarded request goes: the `[upstream]`, or the front-end's dev server.
struct Backend {
    client: Arc<UpstreamClient>,
    host: HeaderValue,
    timeout: Duration,
    total_timeout: Option<Duration>,
    mask_5xx: bool,
}

impl Backend {
    fn new(url: &crate::config::upstream::UpstreamUrl, client: Arc<UpstreamClient>) -> Backend {
        Backend {
            client,
            host: HeaderValue::from_str(&url.authority)
                .unwrap_or(HeaderValue::from_static("localhost")),
            timeout: Duration::from_secs(30),
            total_timeout: None,
            mask_5xx: false,
        }
    }
}

struct DevServer {
    backend: Backend,
    /// The API prefixes (as for the SPA fallback): a path under them is not the dev server's
    /// to answer, so an undeclared API path is 404 here as it is with `dir`.
    exclude: Vec<String>,
}

impl Gateway {
    /// Assembles the pipeline for a planned config, with process-wide state from `services`.
    pub fn build(plan: Plan, services: &Arc<Services>) -> Result<Gateway, BuildError> {
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
        let upstream = config.upstream.as_ref().map(|u| Backend {
            timeout: u.timeout.0,
            total_timeout: u.total_timeout.map(|d| d.0),
            mask_5xx: u.mask_5xx,
            ..Backend::new(
                &u.url,
                UpstreamClient::new(
                    u.url.clone(),
                    u.connect_timeout.0,
                    u.pool_idle_timeout.0,
                    u.pool_max_idle,
                ),
            )
        });
        let api_prefixes = || {
            let routes = config
                .routes
                .iter()
                .filter(|r| r.to == RouteTarget::Upstream)
                .map(|r| r.matcher.get_ref().path.as_str());
            let operations =
                spec.iter().flat_map(|s| s.operations.iter().map(|o| o.pattern.as_str()));
            crate::frontend::api_prefixes(routes.chain(operations))
        };
        let (mut frontend, mut dev_server) = (None, None);
        match &config.frontend {
            Some(f @ crate::config::FrontendConfig { dev_server: Some(url), .. }) => {
                // A dev server is a development tool: its errors (Vite's 500 with the compile
                // error) are shown, not masked. One browser's traffic needs a small pool.
                let client = UpstreamClient::new(
                    url.clone(),
                    Duration::from_secs(2),
                    Duration::from_secs(60),
                    16,
                );
                let exclude = f.spa_fallback_exclude.clone().unwrap_or_else(api_prefixes);
                dev_server = Some(DevServer { backend: Backend::new(url, client), exclude });
            }
            Some(f) => {
                frontend = Some(Frontend::new(f, api_prefixes()).map_err(BuildError::Frontend)?)
            }
            None => {}
        }
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
        Ok(Gateway {
            upstream_timeout: config
                .upstream
                .as_ref()
                .map_or(Duration::from_secs(30), |u| u.timeout.0),
            config: Arc::new(config),
            table,
            checks,
            response_hooks,
            upstream,
            frontend,
            dev_server,
            fields,
            route_metrics,
            endpoints,
            request_ids: RequestIds::new(),
        })
    }

    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// The largest body the route a request was admitted on takes (`max_body_bytes`).
    pub(crate) fn max_body_bytes(&self, out: &Outgoing) -> u64 {
        let route = out.route.and_then(|i| self.table.entries().get(i));
        route.map_or(self.config.server.max_body_bytes.0, |r| r.max_body_bytes)
    }

    /// The work on the backend's responses for the route a request was admitted on.
    pub(crate) fn response_hooks(&self, out: &Outgoing) -> &[Arc<dyn ResponseHook>] {
        out.route.and_then(|i| self.response_hooks.get(i)).map_or(&[], Vec::as_slice)
    }

    /// Handles one request from a client connection.
    pub async fn handle(&self, req: Request<ClientBody>, conn: ConnInfo) -> Response<Body> {
        let (mut resp, mut fields) = self.handle_deferred(req, conn).await;
        fields.relayed.move_into(resp.headers_mut());
        fields.policy.apply(resp.headers_mut(), &fields.request_id);
        resp
    }

    /// [`Gateway::handle`], except that some of the response's fields are not yet in its
    /// header map: the backend's, when they are relayed as it sent them, and those of the
    /// route's [`FieldPolicy`] (security headers, `X-Request-Id`). The caller writes them as
    /// it encodes the head (`server::h1`), or moves them into the map.
    pub async fn handle_deferred(
        &self,
        req: Request<ClientBody>,
        conn: ConnInfo,
    ) -> (Response<Body>, DeferredFields<'_>) {
        let start = Instant::now();
        let (mut head, body) = req.into_parts();
        let server = &self.config.server;
        let trusted_peer =
            !server.trusted_proxies.is_empty() && server.is_trusted_proxy(conn.peer.ip());
        let request_id =
            match trusted_peer.then(|| head.headers.get(&hygiene::X_REQUEST_ID)).flatten() {
                Some(v) if valid_request_id(v) => v.clone(),
                _ => self.request_ids.next(),
            };
        let https = conn.tls
            || (trusted_peer
                && head
                    .headers
                    .get(&hygiene::X_FORWARDED_PROTO)
                    .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https")));
        let client = Client {
            peer: conn.peer,
            ip: hygiene::client_ip(server, conn.peer.ip(), &head.headers),
            https,
            forwarding: Some(conn.forwarding),
        };

        let mut out = Outgoing::new();
        let mut resp = match self.run(&mut head, body, &client, &request_id, &mut out).await {
            Ok(r) => r,
            Err(problem) => {
                // Nothing of a backend's response goes out with the gateway's own answer.
                out.relayed = RelayedFields::default();
                out.decision = Decision::Denied;
                out.code = Some(problem.code);
                problem.into_response(request_id.to_str().unwrap_or(""))
            }
        };
        if !out.extra.is_empty() {
            // What the checks set replaces the backend's fields of the same name.
            out.relayed.move_into(resp.headers_mut());
        }
        let policy = self.add_extra_headers(&mut resp, &out, client.https);
        self.record(&head.method, head.uri.path(), &resp, &mut out, start, &request_id, &client);
        (resp, DeferredFields { policy, request_id, relayed: std::mem::take(&mut out.relayed) })
    }

    async fn run(
        &self,
        head: &mut http::request::Parts,
        body: ClientBody,
        client: &Client,
        request_id: &HeaderValue,
        out: &mut Outgoing,
    ) -> Result<Response<Body>, Problem> {
        let mut body = RequestBody::Stream(body);
        let path = match self.admit_with_body(head, client, request_id, out, &mut body).await? {
            Admission::Answer(r) => return Ok(r),
            Admission::Pass { path, identity } => (path, identity),
            Admission::Endpoint(e) => {
                out.decision = Decision::Served;
                let RequestBody::Stream(body) = body else {
                    return Err(Problem::new(Code::BadRequest));
                };
                return e.handle(head, body, client, request_id.to_str().unwrap_or("")).await;
            }
        };
        let (path, identity) = path;
        let route = &self.table.entries()[out.route.unwrap_or_default()];
        match route.target {
            RouteTarget::Frontend => {
                out.decision = Decision::Served;
                if let Some(dev) = &self.dev_server {
                    let p = path.as_deref().unwrap_or(head.uri.path());
                    if dev
                        .exclude
                        .iter()
                        .any(|x| p.starts_with(x.as_str()) || p == x.trim_end_matches('/'))
                    {
                        return Err(Problem::new(Code::RouteNotFound));
                    }
                    let resp = self
                        .forward(
                            &dev.backend,
                            head,
                            body,
                            path,
                            identity.as_ref(),
                            route,
                            client,
                            request_id,
                            out,
                        )
                        .await?;
                    // `send` recorded it as forwarded; for the metrics it is the front-end's.
                    out.decision = Decision::Served;
                    return Ok(resp);
                }
                let Some(frontend) = &self.frontend else {
                    return Err(Problem::new(Code::RouteNotFound));
                };
                let p = path.as_deref().unwrap_or(head.uri.path());
                match frontend.serve(&head.method, p, &head.headers).await {
                    Served::Found(r) => Ok(r),
                    Served::NotFound => Err(Problem::new(Code::RouteNotFound)),
                }
            }
            RouteTarget::Upstream => {
                let Some(upstream) = &self.upstream else {
                    return Err(Problem::new(Code::RouteNotFound));
                };
                let mut resp = self
                    .forward(
                        upstream,
                        head,
                        body,
                        path,
                        identity.as_ref(),
                        route,
                        client,
                        request_id,
                        out,
                    )
                    .await?;
                let hooks = &self.response_hooks[out.route.unwrap_or_default()];
                // The gateway's own answers (a masked 5xx) are not the upstream's to check.
                if hooks.is_empty() || resp.extensions().get::<Code>().is_some() {
                    return Ok(resp);
                }
                out.relayed.move_into(resp.headers_mut());
                let request_id = request_id.to_str().unwrap_or("");
                for hook in hooks {
                    resp = hook.on_response(&head.method, request_id, resp).await?;
                }
                Ok(resp)
            }
        }
    }

    /// Everything before the target: limits, normalization, routing and the route's checks.
    /// Either the request may pass (with its normalized path, if it changed), or the gateway
    /// answers it itself (a preflight, a reserved path), or it is refused.
    /// [`Gateway::admit`], with the body a check may need buffered from `body`.
    pub(crate) async fn admit_with_body(
        &self,
        head: &mut http::request::Parts,
        client: &Client,
        request_id: &HeaderValue,
        out: &mut Outgoing,
        body: &mut RequestBody,
    ) -> Result<Admission, Problem> {
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
                return Ok(Admission::Endpoint(e.clone()));
            }
            return self.reserved(&head.method, &path).map(Admission::Answer);
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
                            route.timeout.unwrap_or(self.upstream_timeout),
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
                Verdict::Deny(p) => {
                    out.extra = std::mem::take(&mut ex.response_headers);
                    return Err(p);
                }
                Verdict::Respond(r) => {
                    out.extra = std::mem::take(&mut ex.response_headers);
                    out.decision = Decision::Served;
                    return Ok(Admission::Answer(r));
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
        Ok(Admission::Pass { path, identity: ex.identity })
    }

    #[allow(clippy::too_many_arguments)]
    async fn forward(
        &self,
        backend: &Backend,
        head: &mut http::request::Parts,
        body: RequestBody,
        normalized: Option<String>,
        identity: Option<&Identity>,
        route: &RouteEntry,
        client: &Client,
        request_id: &HeaderValue,
        out: &mut Outgoing,
    ) -> Result<Response<Body>, Problem> {
        // Body limit: refuse a declared oversize at once; count a streamed one as it passes.
        // (A body already at its end declared no length, or 0.)
        let empty = matches!(&body, RequestBody::Stream(b) if http_body::Body::is_end_stream(b));
        let declared = if empty { None } else { canonical_content_length(&mut head.headers)? };
        if declared.is_some_and(|n| n > route.max_body_bytes) {
            return Err(Problem::new(Code::PayloadTooLarge));
        }
        let mut exceeded = None;
        let body = match body {
            RequestBody::Stream(b) => b,
            // Buffered for a check: forwarded as exactly the bytes that were checked.
            RequestBody::Buffered(bytes) => {
                head.headers.remove(header::TRANSFER_ENCODING);
                head.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
                return self
                    .send(
                        backend,
                        head,
                        if bytes.is_empty() { Body::Empty } else { Body::full(bytes) },
                        None,
                        normalized,
                        identity,
                        route,
                        client,
                        request_id,
                        out,
                    )
                    .await;
            }
            // The embedded layer hands bodies to its inner service, never to a backend.
            RequestBody::Embedded(_) | RequestBody::Unavailable => {
                return Err(Problem::new(Code::BadRequest));
            }
        };
        let body = if empty {
            Body::Empty
        } else if declared.is_some() {
            // hyper enforces a declared Content-Length; no counting needed.
            Body::from(body)
        } else {
            let flag = Arc::new(AtomicBool::new(false));
            exceeded = Some(flag.clone());
            Body::limited(body, route.max_body_bytes, flag)
        };
        self.send(
            backend, head, body, exceeded, normalized, identity, route, client, request_id, out,
        )
        .await
    }

    /// Sends the request upstream and prepares its response.
    #[allow(clippy::too_many_arguments)]
    async fn send(
        &self,
        backend: &Backend,
        head: &mut http::request::Parts,
        body: Body,
        exceeded: Option<Arc<AtomicBool>>,
        normalized: Option<String>,
        identity: Option<&Identity>,
        route: &RouteEntry,
        client: &Client,
        request_id: &HeaderValue,
        out: &mut Outgoing,
    ) -> Result<Response<Body>, Problem> {
        let upstream = &backend.client;
        let upgrade = if crate::wire::is_websocket_upgrade(head) {
            head.extensions.remove::<hyper::upgrade::OnUpgrade>()
        } else {
            None
        };
        let uri = upstream_uri(&upstream.target().base_path, normalized.as_deref(), &head.uri)?;
        let mut req = Request::new(body);
        *req.method_mut() = head.method.clone();
        *req.uri_mut() = uri;
        *req.version_mut() = http::Version::HTTP_11;
        let mut added = Vec::with_capacity(6);
        let h = req.headers_mut();
        *h = std::mem::take(&mut head.headers);
        let host = head.uri.authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok());
        let host = host.or_else(|| h.get(header::HOST).cloned());
        hygiene::prepare_request_headers(
            h,
            &self.config.server,
            client,
            request_id,
            host.as_ref(),
            upgrade.is_some(),
            &mut added,
        );
        // After hygiene removed any inbound copies: who the caller proved to be.
        if let Some(identity) = identity {
            for (k, v) in identity.headers() {
                h.insert(k, v);
            }
        }
        let timing = proxy::Timing {
            sent: tokio::time::Instant::now(),
            timeout: route.timeout.unwrap_or(backend.timeout),
            total: backend.total_timeout,
        };
        let sent = timing.sent;
        let outbound = proxy::Outbound {
            host: &backend.host,
            added: &added,
            hide: hygiene::hidden_response_header,
            request_id,
        };
        let result = proxy::forward(upstream, req, outbound, timing, upgrade, || {
            exceeded.as_ref().is_some_and(|f| f.load(Ordering::Relaxed))
        })
        .await;
        out.upstream_time = Some(sent.elapsed());
        let (resp, relayed) = result?;
        out.decision = Decision::Forwarded;
        if backend.mask_5xx && resp.status().is_server_error() {
            let status = resp.status();
            let retry_after = relayed
                .get(&header::RETRY_AFTER)
                .or(resp.headers().get(header::RETRY_AFTER).map(HeaderValue::as_bytes));
            let retry_after = retry_after.and_then(|v| HeaderValue::from_bytes(v).ok());
            let mut masked = Problem::new(Code::UpstreamError)
                .with_status(status)
                .into_response(request_id.to_str().unwrap_or(""));
            if let Some(r) = retry_after {
                masked.headers_mut().insert(header::RETRY_AFTER, r);
            }
            // The original body is dropped unread, which closes that upstream connection.
            return Ok(masked);
        }
        out.relayed = relayed;
        Ok(resp)
    }

    fn reserved(&self, method: &Method, path: &str) -> Result<Response<Body>, Problem> {
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
    fn add_extra_headers(
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
    pub(crate) fn finish_headers(
        &self,
        resp: &mut Response<Body>,
        out: &Outgoing,
        request_id: &HeaderValue,
        https: bool,
    ) {
        self.add_extra_headers(resp, out, https).apply(resp.headers_mut(), request_id);
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn record(
        &self,
        method: &Method,
        path: &str,
        resp: &Response<Body>,
        out: &mut Outgoing,
        start: Instant,
        request_id: &HeaderValue,
        client: &Client,
    ) {
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
        observe::traffic::record(out.code, route_name, client.ip, start);
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
    }
}

/// The response fields [`Gateway::handle_deferred`] leaves to its caller.
pub struct DeferredFields<'a> {
    pub policy: &'a FieldPolicy,
    pub request_id: HeaderValue,
    /// The backend's fields, when its response is relayed: they go ahead of the map's.
    pub relayed: RelayedFields,
}

pub(crate) enum Admission {
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
pub(crate) enum RequestBody {
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
    pub(crate) async fn buffer(
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

pub(crate) struct Outgoing {
    route: Option<usize>,
    pub(crate) decision: Decision,
    code: Option<Code>,
    upstream_time: Option<Duration>,
    extra: Vec<(HeaderName, HeaderValue)>,
    /// The forwarded response's fields, relayed as the backend sent them.
    relayed: RelayedFields,
}

impl Outgoing {
    pub(crate) fn new() -> Self {
        Outgoing {
            route: None,
            decision: Decision::Denied,
            code: None,
            upstream_time: None,
            extra: Vec::new(),
            relayed: RelayedFields::default(),
        }
    }
}

fn header_bytes(headers: &http::HeaderMap) -> usize {
    headers.iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum()
}

fn valid_request_id(v: &HeaderValue) -> bool {
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
pub(crate) fn canonical_content_length(
    headers: &mut http::HeaderMap,
) -> Result<Option<u64>, Problem> {
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

/// The URI to send upstream: the base path, the normalized path, the original query. A target
/// too long for a request line is refused (414), never cut or replaced: the backend only ever
/// receives the normalized path that matched, under the base path.
fn upstream_uri(
    base: &str,
    normalized: Option<&str>,
    original: &http::Uri,
) -> Result<http::Uri, Problem> {
    if base.is_empty()
        && normalized.is_none()
        && let Some(pq) = original.path_and_query()
    {
        let mut parts = http::uri::Parts::default();
        parts.path_and_query = Some(pq.clone());
        if let Ok(uri) = http::Uri::from_parts(parts) {
            return Ok(uri);
        }
    }
    let path = normalized.unwrap_or(original.path());
    let mut s = String::with_capacity(
        base.len() + path.len() + original.query().map_or(0, |q| q.len() + 1),
    );
    s.push_str(base);
    s.push_str(path);
    if let Some(q) = original.query() {
        s.push('?');
        s.push_str(q);
    }
    s.parse().map_err(|_| Problem::new(Code::UriTooLong))
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
