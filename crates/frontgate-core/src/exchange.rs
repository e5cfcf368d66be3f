//! The request path's vocabulary, below every feature: what a check sees ([`Exchange`], with
//! its [`Client`] and the caller's [`Identity`]), what it answers ([`Verdict`]), the [`Check`]
//! and [`Endpoint`] traits features implement, and the per-connection facts the server computes
//! once ([`ForwardingCache`]). Features, the pipeline and the server import these from here;
//! nothing here imports them back (tests/it/architecture.rs holds the layering).

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use http::{HeaderName, HeaderValue, Response};

use crate::body::Body;
use crate::problem::Problem;
use crate::route::RouteEntry;

/// Who is on the other end of the connection, as far as the gateway can tell.
#[derive(Debug, Clone)]
pub struct Client {
    /// The TCP peer.
    pub peer: std::net::SocketAddr,
    /// The client address: the peer, or from X-Forwarded-For when the peer is a trusted proxy.
    pub ip: IpAddr,
    /// Whether the client reached the edge over TLS (here, or at a trusted proxy).
    pub https: bool,
    /// Per-connection forwarding header values, when the server made them.
    pub forwarding: Option<std::sync::Arc<ForwardingCache>>,
}

/// A request being checked.
pub struct Exchange<'a> {
    pub head: &'a mut http::request::Parts,
    pub route: &'a RouteEntry,
    pub client: &'a Client,
    pub request_id: &'a str,
    /// Headers a check wants on the final response, whatever it is (CORS, Vary).
    pub response_headers: Vec<(HeaderName, HeaderValue)>,
    /// Who the caller proved to be, once the authenticate check has run.
    pub identity: Option<Identity>,
    /// The request body, buffered by the pipeline before the first check that
    /// [`Check::needs_body`]; `None` before that (and for routes whose checks never need it).
    pub body: Option<bytes::Bytes>,
    /// Whether the body can be read at all (the embedded layer cannot), so whether a check may
    /// answer [`Verdict::NeedsBody`].
    pub body_readable: bool,
}

/// A caller that authenticated: what later checks authorize and what the upstream is told.
#[derive(Debug, Clone)]
pub struct Identity {
    pub method: crate::config::AuthMethod,
    /// Sent upstream as `X-Frontgate-Subject` (the key's owner, the token's `sub`).
    pub subject: String,
    /// Sent upstream as `X-Frontgate-Key-Id` for API keys.
    pub key_id: Option<String>,
    /// Sent upstream as `X-Frontgate-Scopes`, space-separated.
    pub scopes: Vec<String>,
    /// The token's claims (JWT) or the session's kept claims, for routes that require some.
    pub claims: Option<std::sync::Arc<serde_json::Map<String, serde_json::Value>>>,
    /// The caller's own rate limit (an API key's `rate_limit`), which replaces the route's
    /// `api_key`-keyed limits for this caller.
    pub rate_limit: Option<crate::config::Rate>,
    /// Further headers for the upstream (e.g. `Authorization: Bearer <access token>` for a
    /// session); set after inbound copies are removed.
    pub upstream_headers: Vec<(HeaderName, HeaderValue)>,
}

impl Identity {
    /// Who this is, for a refusal that comes after authentication.
    pub fn caller(&self) -> crate::problem::Caller {
        crate::problem::Caller { subject: self.subject.clone(), key_id: self.key_id.clone() }
    }

    pub fn has_scopes(&self, required: &[String]) -> bool {
        required.iter().all(|r| self.scopes.iter().any(|s| s == r))
    }

    /// The identity headers for the upstream.
    pub fn headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        let mut out = Vec::with_capacity(3 + self.upstream_headers.len());
        if let Ok(v) = HeaderValue::from_str(&self.subject) {
            out.push((HeaderName::from_static("x-frontgate-subject"), v));
        }
        if let Some(id) = &self.key_id
            && let Ok(v) = HeaderValue::from_str(id)
        {
            out.push((HeaderName::from_static("x-frontgate-key-id"), v));
        }
        if let Ok(v) = HeaderValue::from_str(&self.scopes.join(" ")) {
            out.push((HeaderName::from_static("x-frontgate-scopes"), v));
        }
        out.extend(self.upstream_headers.iter().cloned());
        out
    }
}

pub enum Verdict {
    Continue,
    Deny(Problem),
    /// The gateway answers itself (a preflight, a challenge page).
    Respond(Response<Body>),
    /// The check can only decide with the body (the proof of work's `altcha` form field). The
    /// pipeline buffers it, as for [`Check::needs_body`], and runs the check once more; a check
    /// asks only while [`Exchange::body`] is `None` and [`Exchange::body_readable`] is true.
    NeedsBody,
}

pub type VerdictFuture<'a> = Pin<Box<dyn Future<Output = Verdict> + Send + 'a>>;

pub enum Outcome<'a> {
    Ready(Verdict),
    Pending(VerdictFuture<'a>),
}

/// Where a check runs on the request path. The pipeline runs a route's checks sorted by stage
/// (checks of one stage in the order their features were registered), so where a new check
/// goes is a choice of variant, not a place in a list. Cheap, key-less refusals come first;
/// what costs a store lookup or a body read comes after what can refuse without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// CORS preflights and the origin allow-list (a preflight is answered here, before any
    /// later stage could refuse it).
    Origin,
    /// Credentials in the wrong place (an API key in a URL), refused before anything counts.
    Credentials,
    /// Limits keyed by the client's address, before any credential is looked at.
    ClientLimit,
    /// Who the caller is (API key, JWT/DPoP, session) and whether their scopes and claims
    /// admit them.
    Authenticate,
    /// Cross-site request forgery defence, for cookie sessions.
    Csrf,
    /// Proof of work or a CAPTCHA.
    Bot,
    /// Limits keyed by the authenticated caller.
    CallerLimit,
    /// Parameters and body against the OpenAPI document.
    Validate,
    /// Last changes to the request before it is forwarded (the gateway's cookies removed).
    Forward,
}

impl Stage {
    /// Every stage, in the order the pipeline runs them.
    pub const ALL: [Stage; 9] = [
        Stage::Origin,
        Stage::Credentials,
        Stage::ClientLimit,
        Stage::Authenticate,
        Stage::Csrf,
        Stage::Bot,
        Stage::CallerLimit,
        Stage::Validate,
        Stage::Forward,
    ];
}

pub trait Check: Send + Sync + 'static {
    /// A short stable name, used in logs and metrics.
    fn name(&self) -> &'static str;
    /// Where on the request path this check runs.
    fn stage(&self) -> Stage;
    /// Whether this check reads the request body. The pipeline then buffers the body once
    /// (bounded by the route's `max_body_bytes`) before running it, and forwards the buffered
    /// bytes; routes with no such check stream bodies untouched.
    fn needs_body(&self) -> bool {
        false
    }
    fn check<'a>(&'a self, exchange: &'a mut Exchange<'_>) -> Outcome<'a>;
}

/// Work on a backend's response before it goes to the client, for the routes whose feature
/// asked for it (OpenAPI response validation). Runs only on the backend's answers, never on
/// the gateway's own.
pub trait ResponseHook: Send + Sync + 'static {
    /// A short stable name, used in logs.
    fn name(&self) -> &'static str;
    /// The response to send instead (the same one, changed, or a problem).
    fn on_response<'a>(
        &'a self,
        method: &'a http::Method,
        request_id: &'a str,
        response: Response<Body>,
    ) -> ResponseFuture<'a>;
}

pub type ResponseFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Response<Body>, Problem>> + Send + 'a>>;

/// One of the gateway's own endpoints under `/.frontgate/` (login, callback, challenge, ...),
/// registered by the module that owns it.
pub trait Endpoint: Send + Sync + 'static {
    /// The exact normalized path, e.g. `/.frontgate/login`.
    fn path(&self) -> &'static str;
    /// Whether this endpoint serves the normalized `path` (by default: exactly [`Self::path`];
    /// an endpoint with ids in its paths, like `/.frontgate/keys/{id}`, says so here).
    fn matches(&self, path: &str) -> bool {
        path == self.path()
    }
    fn handle<'a>(
        &'a self,
        head: &'a mut http::request::Parts,
        body: crate::body::ClientBody,
        client: &'a Client,
        request_id: &'a str,
    ) -> EndpointFuture<'a>;
}

pub type EndpointFuture<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Response<Body>, Problem>> + Send + 'a>,
>;

/// Per-connection forwarding values, computed once rather than per request: the peer's address
/// as an X-Forwarded-For value, and the last Forwarded value built (keyed by Host).
#[derive(Debug)]
pub struct ForwardingCache {
    pub(crate) https: bool,
    pub(crate) xff: HeaderValue,
    for_node: String,
    forwarded: std::sync::Mutex<Option<(HeaderValue, HeaderValue)>>,
}

impl ForwardingCache {
    pub fn new(peer: IpAddr, https: bool) -> Self {
        let for_node = match peer {
            IpAddr::V4(ip) => ip.to_string(),
            IpAddr::V6(ip) => format!("\"[{ip}]\""),
        };
        let xff =
            HeaderValue::from_str(&peer.to_string()).unwrap_or(HeaderValue::from_static("unknown"));
        ForwardingCache { https, xff, for_node, forwarded: std::sync::Mutex::new(None) }
    }

    pub(crate) fn forwarded(&self, host: Option<&HeaderValue>) -> Option<HeaderValue> {
        let mut last = self.forwarded.lock().unwrap_or_else(|e| e.into_inner());
        if let (Some((h, v)), Some(host)) = (last.as_ref(), host)
            && h == host
        {
            return Some(v.clone());
        }
        let proto = if self.https { "https" } else { "http" };
        let v = HeaderValue::from_str(&forwarded_element(&self.for_node, proto, host)).ok()?;
        if let Some(host) = host {
            *last = Some((host.clone(), v.clone()));
        }
        Some(v)
    }
}

pub(crate) fn forwarded_element(for_node: &str, proto: &str, host: Option<&HeaderValue>) -> String {
    let mut forwarded = format!("for={for_node};proto={proto}");
    if let Some(h) = host.and_then(|h| h.to_str().ok())
        && h.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
    {
        forwarded.push_str(";host=\"");
        forwarded.push_str(h);
        forwarded.push('"');
    }
    forwarded
}

#[cfg(test)]
mod tests {
    use super::Stage;

    /// Stage::ALL lists every stage once, in order: a new variant fails to compile here until
    /// it has a place.
    #[test]
    fn all_stages_are_listed_in_order() {
        let position = |s: Stage| match s {
            Stage::Origin => 0,
            Stage::Credentials => 1,
            Stage::ClientLimit => 2,
            Stage::Authenticate => 3,
            Stage::Csrf => 4,
            Stage::Bot => 5,
            Stage::CallerLimit => 6,
            Stage::Validate => 7,
            Stage::Forward => 8,
        };
        for (i, s) in Stage::ALL.iter().enumerate() {
            assert_eq!(position(*s), i, "{s:?}");
        }
        assert!(Stage::ALL.windows(2).all(|w| w[0] < w[1]));
    }
}
