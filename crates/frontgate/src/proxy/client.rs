//! The upstream client: HTTP/1.1 connections to the backend, kept alive in a small pool.
//!
//! Deliberately not hyper-util's legacy client, nor hyper's connection tasks: their pool and
//! dispatch layers cost measurable CPU per request on the proxy path (docs/performance.md).
//! A connection is taken from a LIFO stack, used for one exchange in the request's own task
//! ([`super::h1`]), and put back by the response body when it ends; a body dropped early (the
//! client went away) closes that connection instead. WebSocket upgrades use hyper, on a
//! connection of their own.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{Request, Response};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::h1::{Conn, H1Error, Outbound, Recycle, RelayedFields};
use crate::body::Body;
use crate::config::upstream::UpstreamUrl;

#[derive(Debug)]
pub enum UpstreamError {
    /// Could not connect, or the connection broke before a response head arrived.
    Unavailable(String),
    /// No connection within connect_timeout.
    ConnectTimeout,
    /// The exchange failed after the request started (which may be our own body limit).
    SendFailed(String),
    /// No response head by the deadline (`[upstream] timeout`, or the route's).
    Timeout,
}

struct Idle {
    conn: Conn,
    since: Instant,
}

pub struct UpstreamClient {
    target: UpstreamUrl,
    connect_timeout: Duration,
    idle_timeout: Duration,
    max_idle: usize,
    idle: Mutex<VecDeque<Idle>>,
}

impl Recycle for UpstreamClient {
    fn recycle(&self, conn: Conn) {
        if self.max_idle == 0 {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() >= self.max_idle {
            idle.pop_front();
        }
        idle.push_back(Idle { conn, since: Instant::now() });
    }
}

impl UpstreamClient {
    pub fn new(
        target: UpstreamUrl,
        connect_timeout: Duration,
        idle_timeout: Duration,
        max_idle: usize,
    ) -> Arc<Self> {
        Arc::new(UpstreamClient {
            target,
            connect_timeout,
            idle_timeout,
            max_idle,
            idle: Mutex::new(VecDeque::new()),
        })
    }

    pub fn target(&self) -> &UpstreamUrl {
        &self.target
    }

    fn checkout(&self) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(mut idle_conn) = idle.pop_back() {
            if idle_conn.since.elapsed() < self.idle_timeout && idle_conn.conn.is_reusable() {
                return Some(idle_conn.conn);
            }
        }
        None
    }

    /// Connects within connect_timeout, and before `deadline` (the response-head deadline of
    /// the request that needs the connection, which may come first).
    async fn open(
        &self,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<TcpStream, UpstreamError> {
        // `authority` is `host:port` (IPv6 bracketed): an IP connects directly, a name is
        // resolved on each new connection so DNS changes are picked up.
        let connect = TcpStream::connect(self.target.authority.as_str());
        let connect_deadline = tokio::time::Instant::now() + self.connect_timeout;
        let limit = deadline.map_or(connect_deadline, |d| d.min(connect_deadline));
        let stream = match tokio::time::timeout_at(limit, connect).await {
            Err(_) if limit < connect_deadline => return Err(UpstreamError::Timeout),
            Err(_) => return Err(UpstreamError::ConnectTimeout),
            Ok(Err(e)) => {
                return Err(UpstreamError::Unavailable(format!(
                    "connect to {}: {e}",
                    self.target.authority
                )));
            }
            Ok(Ok(s)) => s,
        };
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    /// Sends one request; its response head must arrive by `deadline`. The response's fields
    /// come beside it ([`Conn::exchange`]). When a pooled connection closes without a byte of
    /// response after the request was written (the backend's keep-alive ended, or it took the
    /// request and died), the request is sent once more on a fresh connection only if its
    /// method is idempotent (RFC 9110 §9.2.2) and its body can be sent again (empty or
    /// buffered): a POST the backend may have acted on is never sent twice, it is a 502. When
    /// the pooled connection failed the request's first write, nothing left, and any request
    /// with a resendable body goes once more on a fresh connection.
    pub async fn send(
        self: &Arc<Self>,
        parts: &http::request::Parts,
        outbound: &Outbound<'_>,
        body: Body,
        deadline: tokio::time::Instant,
    ) -> Result<(Response<Body>, RelayedFields), UpstreamError> {
        let pool: Arc<dyn Recycle> = self.clone();
        let failed = |e: H1Error| match e {
            H1Error::ClosedBeforeResponse => UpstreamError::Unavailable(
                "the backend closed the connection without answering".into(),
            ),
            H1Error::NotSent(e) => {
                UpstreamError::Unavailable(format!("the request could not be sent: {e}"))
            }
            H1Error::Timeout => UpstreamError::Timeout,
            other => UpstreamError::SendFailed(other.to_string()),
        };
        if let Some(conn) = self.checkout() {
            let again = match &body {
                Body::Empty => Some(Body::Empty),
                Body::Full(b) => Some(Body::Full(b.clone())),
                _ => None,
            };
            let resend = |e: &H1Error| match e {
                H1Error::NotSent(_) => true,
                H1Error::ClosedBeforeResponse => idempotent(&parts.method),
                _ => false,
            };
            match (conn.exchange(parts, outbound, body, pool.clone(), deadline).await, again) {
                (Err(e), Some(body)) if resend(&e) => {
                    let conn = Conn::new(self.open(Some(deadline)).await?);
                    return conn
                        .exchange(parts, outbound, body, pool, deadline)
                        .await
                        .map_err(failed);
                }
                (result, _) => return result.map_err(failed),
            }
        }
        let conn = Conn::new(self.open(Some(deadline)).await?);
        conn.exchange(parts, outbound, body, pool, deadline).await.map_err(failed)
    }

    /// Sends a request that asks to upgrade the connection (WebSocket), on its own connection.
    pub async fn send_upgrade(
        &self,
        req: Request<Body>,
    ) -> Result<Response<hyper::body::Incoming>, UpstreamError> {
        let stream = self.open(None).await?;
        let (mut sender, conn) =
            http1::Builder::new().handshake(TokioIo::new(stream)).await.map_err(|e| {
                UpstreamError::Unavailable(format!("handshake with {}: {e}", self.target.authority))
            })?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        sender.send_request(req).await.map_err(|e| UpstreamError::SendFailed(e.to_string()))
    }
}

/// The methods RFC 9110 §9.2.2 defines as idempotent: sending one twice has the effect of
/// sending it once, so a client may repeat it when the connection failed before a response.
fn idempotent(method: &http::Method) -> bool {
    use http::Method;
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}
