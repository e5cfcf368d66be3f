//! The upstream client: HTTP/1.1 connections to the backend, kept alive in a small pool.
//!
//! Deliberately not hyper-util's legacy client: its pool and dispatch layers cost measurable
//! CPU per request on the proxy path (see docs/performance.md). Here a connection is taken from
//! a LIFO stack, used for one exchange, and put back by the response body when it ends; a
//! body dropped early (client went away) closes that connection instead.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{Request, Response};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::body::Body;
use crate::config::upstream::UpstreamUrl;

#[derive(Debug)]
pub enum UpstreamError {
    /// Could not connect, or the connection broke before a response head arrived.
    Unavailable(String),
    /// No connection within connect_timeout.
    ConnectTimeout,
    /// Sending the request body failed (which may be our own body limit).
    SendFailed(hyper::Error),
}

struct Idle {
    sender: SendRequest<Body>,
    since: Instant,
}

pub struct UpstreamClient {
    target: UpstreamUrl,
    connect_timeout: Duration,
    idle_timeout: Duration,
    max_idle: usize,
    idle: Mutex<VecDeque<Idle>>,
}

/// Puts a connection back into the pool when the response body that uses it has ended.
pub struct PoolGuard {
    client: Arc<UpstreamClient>,
    sender: SendRequest<Body>,
}

impl PoolGuard {
    pub fn release(self) {
        self.client.put_back(self.sender);
    }
}

impl UpstreamClient {
    pub fn new(target: UpstreamUrl, connect_timeout: Duration, idle_timeout: Duration, max_idle: usize) -> Arc<Self> {
        Arc::new(UpstreamClient { target, connect_timeout, idle_timeout, max_idle, idle: Mutex::new(VecDeque::new()) })
    }

    pub fn target(&self) -> &UpstreamUrl {
        &self.target
    }

    fn checkout(&self) -> Option<SendRequest<Body>> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(conn) = idle.pop_back() {
            if !conn.sender.is_closed() && conn.since.elapsed() < self.idle_timeout {
                return Some(conn.sender);
            }
        }
        None
    }

    fn put_back(&self, sender: SendRequest<Body>) {
        if sender.is_closed() || self.max_idle == 0 {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() >= self.max_idle {
            idle.pop_front();
        }
        idle.push_back(Idle { sender, since: Instant::now() });
    }

    async fn connect(&self, upgrades: bool) -> Result<SendRequest<Body>, UpstreamError> {
        // `authority` is `host:port` (IPv6 bracketed): an IP connects directly, a name is
        // resolved on each new connection so DNS changes are picked up.
        let connect = TcpStream::connect(self.target.authority.as_str());
        let stream = match tokio::time::timeout(self.connect_timeout, connect).await {
            Err(_) => return Err(UpstreamError::ConnectTimeout),
            Ok(Err(e)) => return Err(UpstreamError::Unavailable(format!("connect to {}: {e}", self.target.authority))),
            Ok(Ok(s)) => s,
        };
        let _ = stream.set_nodelay(true);
        let (sender, conn) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| UpstreamError::Unavailable(format!("handshake with {}: {e}", self.target.authority)))?;
        if upgrades {
            tokio::spawn(async move {
                let _ = conn.with_upgrades().await;
            });
        } else {
            tokio::spawn(async move {
                let _ = conn.await;
            });
        }
        Ok(sender)
    }

    /// Sends one request. A pooled connection that turns out to be closed (the backend's
    /// keep-alive ended) is retried once on a fresh connection, since the request was not sent.
    pub async fn send(self: &Arc<Self>, req: Request<Body>) -> Result<(Response<hyper::body::Incoming>, Option<PoolGuard>), UpstreamError> {
        let mut req = req;
        if let Some(mut sender) = self.checkout()
            && sender.ready().await.is_ok() {
                match sender.try_send_request(req).await {
                    Ok(resp) => return Ok((resp, Some(PoolGuard { client: self.clone(), sender }))),
                    Err(mut e) => match e.take_message() {
                        Some(r) => req = r,
                        None => return Err(UpstreamError::SendFailed(e.into_error())),
                    },
                }
            }
        let mut sender = self.connect(false).await?;
        match sender.send_request(req).await {
            Ok(resp) => Ok((resp, Some(PoolGuard { client: self.clone(), sender }))),
            Err(e) => Err(UpstreamError::SendFailed(e)),
        }
    }

    /// Sends a request that asks to upgrade the connection (WebSocket), on its own connection.
    pub async fn send_upgrade(&self, req: Request<Body>) -> Result<Response<hyper::body::Incoming>, UpstreamError> {
        let mut sender = self.connect(true).await?;
        sender.send_request(req).await.map_err(UpstreamError::SendFailed)
    }
}
