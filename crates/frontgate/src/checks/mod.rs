//! The checks a request passes between routing and forwarding, one module each.
//!
//! A check sees the request head and the matched route, and says whether the request goes on,
//! is refused with a problem, or is answered by the gateway itself (a CORS preflight, a
//! challenge page). Checks that need no I/O answer synchronously, so they cost no allocation;
//! checks that consult a store return a boxed future. The order is fixed in
//! [`crate::pipeline`], the one place the pipeline is assembled.

pub mod cors;

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
}

pub enum Verdict {
    Continue,
    Deny(Problem),
    /// The gateway answers itself (a preflight, a challenge page).
    Respond(Response<Body>),
}

pub type VerdictFuture<'a> = Pin<Box<dyn Future<Output = Verdict> + Send + 'a>>;

pub enum Outcome<'a> {
    Ready(Verdict),
    Pending(VerdictFuture<'a>),
}

pub trait Check: Send + Sync + 'static {
    /// A short stable name, used in logs and metrics.
    fn name(&self) -> &'static str;
    fn check<'a>(&'a self, exchange: &'a mut Exchange<'_>) -> Outcome<'a>;
}
