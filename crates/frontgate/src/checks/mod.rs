//! The checks a request passes between routing and forwarding, one module each.
//!
//! A check sees the request head and the matched route, and says whether the request goes on,
//! is refused with a problem, or is answered by the gateway itself (a CORS preflight, a
//! challenge page). Checks that need no I/O answer synchronously, so they cost no allocation;
//! checks that consult a store return a boxed future. The order is fixed in
//! [`crate::pipeline`], the one place the pipeline is assembled.

pub mod api_key;
pub mod auth;
pub mod captcha;
pub mod cors;
pub mod csrf;
pub mod dpop;
pub mod introspect;
pub mod jwks;
pub mod jwt;
pub mod openapi;
pub mod pow;
pub mod rate_limit;
pub mod session;

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
    pub forwarding: Option<std::sync::Arc<crate::proxy::headers::ForwardingCache>>,
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

pub trait Check: Send + Sync + 'static {
    /// A short stable name, used in logs and metrics.
    fn name(&self) -> &'static str;
    /// Whether this check reads the request body. The pipeline then buffers the body once
    /// (bounded by the route's `max_body_bytes`) before running it, and forwards the buffered
    /// bytes; routes with no such check stream bodies untouched.
    fn needs_body(&self) -> bool {
        false
    }
    fn check<'a>(&'a self, exchange: &'a mut Exchange<'_>) -> Outcome<'a>;
}

/// The bot check a route's `challenge` names: the proof of work, or a CAPTCHA provider's.
pub fn bot_check(
    challenge: Option<&str>,
    pow: Option<&std::sync::Arc<pow::Pow>>,
    captchas: &[(crate::config::captcha::CaptchaKind, std::sync::Arc<dyn Check>)],
) -> Option<std::sync::Arc<dyn Check>> {
    match challenge? {
        "pow" => pow.map(|p| {
            std::sync::Arc::new(pow::PowCheck::new(p.clone())) as std::sync::Arc<dyn Check>
        }),
        other => {
            let kind = crate::config::captcha::CaptchaKind::parse(other)?;
            captchas.iter().find(|(k, _)| *k == kind).map(|(_, c)| c.clone())
        }
    }
}
