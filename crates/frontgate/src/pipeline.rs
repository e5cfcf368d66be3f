//! The request path, assembled once per config load: normalize → route → checks → forward or
//! serve → response headers, metrics and access log. A reload builds a new [`Gateway`] and
//! swaps it in whole; requests in flight finish on the one they started with.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use http::header::{self, HeaderValue};
use http::{Request, Response};

use crate::admission::{
    Admission, Admitted, BuildError as AdmissionError, Decision, Outgoing, RequestBody,
    canonical_content_length, valid_request_id,
};
use crate::body::{Body, ClientBody};
use crate::config::{Config, RouteTarget};
use crate::exchange::{Client, ForwardingCache, Identity};
use crate::frontend::{Frontend, Served};
use crate::headers as hygiene;
use crate::plan::Plan;
use crate::problem::{Code, Problem};
use crate::proxy::client::UpstreamClient;
use crate::proxy::{self, RelayedFields};
use crate::response_fields::FieldPolicy;
use crate::route::RouteEntry;
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

/// The request path of one config load: [`Admission`] (frontgate-core), then the target: the
/// `[upstream]`, the front-end's files, or its dev server.
pub struct Gateway {
    admission: Admission,
    upstream: Option<Backend>,
    frontend: Option<Frontend>,
    /// `[frontend] dev_server`: front-end routes are forwarded there instead of served from disk.
    dev_server: Option<DevServer>,
}

/// Why a planned config could not be assembled into a pipeline.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// Admission (a feature) could not be built.
    #[error(transparent)]
    Admission(#[from] AdmissionError),
    /// `[frontend] dir` cannot be read.
    #[error("[frontend] dir: {0}")]
    Frontend(std::io::Error),
}

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
        let config = &plan.config;
        // The paths the SPA fallback leaves alone: those of upstream routes and operations.
        let routes = config
            .routes
            .iter()
            .filter(|r| r.to == RouteTarget::Upstream)
            .map(|r| r.matcher.get_ref().path.as_str());
        let operations =
            plan.spec.iter().flat_map(|s| s.operations.iter().map(|o| o.pattern.as_str()));
        let api_prefixes = crate::frontend::api_prefixes(routes.chain(operations));
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
                let exclude = f.spa_fallback_exclude.clone().unwrap_or(api_prefixes);
                dev_server = Some(DevServer { backend: Backend::new(url, client), exclude });
            }
            Some(f) => {
                frontend = Some(Frontend::new(f, api_prefixes).map_err(BuildError::Frontend)?)
            }
            None => {}
        }
        let admission = Admission::build(plan, services)?;
        Ok(Gateway { admission, upstream, frontend, dev_server })
    }

    pub fn config(&self) -> &Arc<Config> {
        self.admission.config()
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
        let server = &self.config().server;
        let trusted_peer =
            !server.trusted_proxies.is_empty() && server.is_trusted_proxy(conn.peer.ip());
        let request_id =
            match trusted_peer.then(|| head.headers.get(&hygiene::X_REQUEST_ID)).flatten() {
                Some(v) if valid_request_id(v) => v.clone(),
                _ => self.admission.request_ids.next(),
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
        let mut relayed = RelayedFields::default();
        let run = self.run(&mut head, body, &client, &request_id, &mut out, &mut relayed);
        let mut resp = match run.await {
            Ok(r) => r,
            Err(problem) => {
                // Nothing of a backend's response goes out with the gateway's own answer.
                relayed = RelayedFields::default();
                out.decision = Decision::Denied;
                out.code = Some(problem.code);
                problem.into_response(request_id.to_str().unwrap_or(""))
            }
        };
        if !out.extra.is_empty() {
            // What the checks set replaces the backend's fields of the same name.
            relayed.move_into(resp.headers_mut());
        }
        let policy = self.admission.add_extra_headers(&mut resp, &out, client.https);
        let route = self.admission.record(
            &head.method,
            head.uri.path(),
            &resp,
            &mut out,
            start,
            &request_id,
            &client,
        );
        // The admin console's traffic view (admin/traffic.rs).
        crate::observe::traffic::record(out.code, route, client.ip, out.caller.as_deref(), start);
        (resp, DeferredFields { policy, request_id, relayed })
    }

    async fn run(
        &self,
        head: &mut http::request::Parts,
        body: ClientBody,
        client: &Client,
        request_id: &HeaderValue,
        out: &mut Outgoing,
        relayed: &mut RelayedFields,
    ) -> Result<Response<Body>, Problem> {
        let mut body = RequestBody::Stream(body);
        let path = match self.admission.admit(head, client, request_id, out, &mut body).await? {
            Admitted::Answer(r) => return Ok(r),
            Admitted::Pass { path, identity } => (path, identity),
            Admitted::Endpoint(e) => {
                out.decision = Decision::Served;
                let RequestBody::Stream(body) = body else {
                    return Err(Problem::new(Code::BadRequest));
                };
                return e.handle(head, body, client, request_id.to_str().unwrap_or("")).await;
            }
        };
        let (path, identity) = path;
        let route = &self.admission.table().entries()[out.route.unwrap_or_default()];
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
                            relayed,
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
                        relayed,
                    )
                    .await?;
                let hooks = self.admission.response_hooks(out);
                // The gateway's own answers (a masked 5xx) are not the upstream's to check.
                if hooks.is_empty() || resp.extensions().get::<Code>().is_some() {
                    return Ok(resp);
                }
                relayed.move_into(resp.headers_mut());
                let request_id = request_id.to_str().unwrap_or("");
                for hook in hooks {
                    resp = hook.on_response(&head.method, request_id, resp).await?;
                }
                Ok(resp)
            }
        }
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
        relayed: &mut RelayedFields,
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
                        relayed,
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
            relayed,
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
        relayed_out: &mut RelayedFields,
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
            &self.config().server,
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
        *relayed_out = relayed;
        Ok(resp)
    }
}

/// The response fields [`Gateway::handle_deferred`] leaves to its caller.
pub struct DeferredFields<'a> {
    pub policy: &'a FieldPolicy,
    pub request_id: HeaderValue,
    /// The backend's fields, when its response is relayed: they go ahead of the map's.
    pub relayed: RelayedFields,
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
