//! Forwarding to the backend: the pooled client, timeouts and WebSocket pass-through (the
//! request head's hygiene is frontgate-core's `headers`). The checks have already run; this
//! module only moves bytes faithfully.

pub mod client;
pub mod h1;

use std::time::Duration;

use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use crate::body::{Body, DeadlineBody};
use crate::headers;
use crate::problem::{Code, Problem};
use client::{UpstreamClient, UpstreamError};
pub use h1::{Outbound, RelayedFields};

/// WebSocket tunnels open now. Once upgraded, a tunnel has left its HTTP connection, so it is
/// counted here and still held against `[server] max_connections`.
pub static TUNNELS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

struct TunnelGuard;

impl TunnelGuard {
    fn new() -> Self {
        TUNNELS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        metrics::gauge!(crate::observe::TUNNELS_ACTIVE).increment(1.0);
        TunnelGuard
    }
}

impl Drop for TunnelGuard {
    fn drop(&mut self) {
        TUNNELS.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        metrics::gauge!(crate::observe::TUNNELS_ACTIVE).decrement(1.0);
    }
}

/// When a request went upstream and how long its answer may take.
pub struct Timing {
    /// When the gateway started sending it (the caller's clock, read once for both uses).
    pub sent: tokio::time::Instant,
    /// Until the response head (`[upstream] timeout`, or the route's).
    pub timeout: Duration,
    /// Until the end of the response body (`[upstream] total_timeout`).
    pub total: Option<Duration>,
}

/// Sends the request upstream and returns its response, or the problem that explains why not.
/// `limit_hit` reports whether our own body limit cut the request body off.
/// The response's fields come without hop-by-hop fields and without what fingerprints the
/// backend ([`headers::hidden_response_header`]): in its header map for an upgrade, otherwise
/// in the [`RelayedFields`] beside it.
pub async fn forward(
    client: &std::sync::Arc<UpstreamClient>,
    req: Request<Body>,
    outbound: Outbound<'_>,
    timing: Timing,
    client_upgrade: Option<OnUpgrade>,
    limit_hit: impl Fn() -> bool,
) -> Result<(Response<Body>, RelayedFields), Problem> {
    if let Some(client_upgrade) = client_upgrade {
        let (mut parts, body) = req.into_parts();
        for (name, value) in outbound.added {
            parts.headers.insert(name, value.clone());
        }
        parts.headers.insert(header::HOST, outbound.host.clone());
        let resp = forward_upgrade(
            client,
            Request::from_parts(parts, body),
            timing.timeout,
            client_upgrade,
        )
        .await?;
        return Ok((resp, RelayedFields::default()));
    }
    let Timing { sent, timeout, total } = timing;
    let head_timeout = total.map_or(timeout, |t| t.min(timeout));
    let (parts, body) = req.into_parts();
    let sent_result = client.send(&parts, &outbound, body, sent + head_timeout).await;
    // The request's fields are written: its map can hold the next request's.
    h1::recycle_headers(parts.headers);
    match sent_result {
        Err(UpstreamError::Timeout) => Err(Problem::new(Code::UpstreamTimeout)),
        Err(e) => Err(upstream_problem(e, limit_hit())),
        Ok((resp, fields)) => Ok((
            match total {
                Some(t) if !http_body::Body::is_end_stream(resp.body()) => {
                    resp.map(|body| Body::boxed(DeadlineBody::new(body, sent + t)))
                }
                _ => resp,
            },
            fields,
        )),
    }
}

fn upstream_problem(e: UpstreamError, limit_hit: bool) -> Problem {
    if limit_hit {
        return Problem::new(Code::PayloadTooLarge);
    }
    match e {
        UpstreamError::ConnectTimeout => {
            tracing::warn!(error = "connect timeout", "upstream unavailable");
            Problem::new(Code::UpstreamUnavailable)
        }
        UpstreamError::Unavailable(msg) => {
            tracing::warn!(error = %msg, "upstream unavailable");
            Problem::new(Code::UpstreamUnavailable)
        }
        UpstreamError::SendFailed(err) => {
            tracing::warn!(error = %err, "upstream exchange failed");
            Problem::new(Code::UpstreamUnavailable)
        }
        UpstreamError::Timeout => Problem::new(Code::UpstreamTimeout),
    }
}

async fn forward_upgrade(
    client: &UpstreamClient,
    req: Request<Body>,
    timeout: Duration,
    client_upgrade: OnUpgrade,
) -> Result<Response<Body>, Problem> {
    let mut resp = match tokio::time::timeout(timeout, client.send_upgrade(req)).await {
        Err(_) => return Err(Problem::new(Code::UpstreamTimeout)),
        Ok(Err(e)) => return Err(upstream_problem(e, false)),
        Ok(Ok(r)) => r,
    };
    let upgraded = resp.status() == StatusCode::SWITCHING_PROTOCOLS;
    headers::clean_response_headers(resp.headers_mut(), upgraded);
    if !upgraded {
        let (parts, body) = resp.into_parts();
        return Ok(Response::from_parts(parts, Body::Incoming(body)));
    }
    let upstream_upgrade = resp.extensions_mut().remove::<OnUpgrade>();
    let (parts, _) = resp.into_parts();
    if let Some(upstream_upgrade) = upstream_upgrade {
        let guard = TunnelGuard::new();
        tokio::spawn(async move {
            let _guard = guard;
            let (Ok(a), Ok(b)) = (client_upgrade.await, upstream_upgrade.await) else {
                return;
            };
            let mut a = TokioIo::new(a);
            let mut b = TokioIo::new(b);
            let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
        });
    }
    let mut out = Response::from_parts(parts, Body::empty());
    out.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    Ok(out)
}
