//! One worker's accept loop and the life of a client connection.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};

use super::Shared;
use super::h1;
use super::linger::Linger;
use super::stall::{Activity, Busy, SendTimeout, Watched};
use crate::body::{Body, ClientBody, ClientIncoming};
use crate::observe;
use crate::pipeline::ConnInfo;

/// Counts this worker's open connections, so a drain knows when it is done.
struct Tracker {
    open: AtomicUsize,
    idle: Notify,
}

struct ConnGuard {
    shared: Arc<Shared>,
    tracker: Arc<Tracker>,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.shared.connections.fetch_sub(1, Ordering::Relaxed);
        metrics::gauge!(observe::CONNECTIONS_ACTIVE).decrement(1.0);
        if self.tracker.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.tracker.idle.notify_waiters();
        }
    }
}

pub async fn accept_loop(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
    grace: Duration,
) {
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "worker cannot use the listener");
            return;
        }
    };
    let tracker = Arc::new(Tracker { open: AtomicUsize::new(0), idle: Notify::new() });
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Accepted in the moment between the drain's start and this thread seeing it: a
        // connection after "draining" is turned away, never served.
        if shared.draining.load(Ordering::SeqCst) {
            drop(stream);
            break;
        }
        let max = shared.gateway.load().config().server.max_connections;
        let tunnels = crate::proxy::TUNNELS.load(Ordering::Relaxed);
        if shared.connections.fetch_add(1, Ordering::Relaxed) + tunnels >= max {
            shared.connections.fetch_sub(1, Ordering::Relaxed);
            metrics::counter!(observe::CONNECTIONS_REFUSED).increment(1);
            drop(stream);
            continue;
        }
        tracker.open.fetch_add(1, Ordering::AcqRel);
        metrics::counter!(observe::CONNECTIONS).increment(1);
        metrics::gauge!(observe::CONNECTIONS_ACTIVE).increment(1.0);
        let guard = ConnGuard { shared: shared.clone(), tracker: tracker.clone() };
        let shared = shared.clone();
        let rx = shutdown.clone();
        tokio::spawn(async move {
            let _guard = guard;
            handle_connection(stream, peer, shared, rx).await;
        });
    }
    drop(listener);
    // Drain: connections were told to finish their in-flight requests and close.
    let wait = async {
        loop {
            let notified = tracker.idle.notified();
            if tracker.open.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    };
    if tokio::time::timeout(grace, wait).await.is_err() {
        tracing::warn!(
            open = tracker.open.load(Ordering::Relaxed),
            "shutdown grace ran out; closing remaining connections"
        );
    }
}

/// Unsent bytes a client socket may hold (`TCP_NOTSENT_LOWAT`).
const UNSENT_LIMIT: u32 = 128 * 1024;

async fn handle_connection(
    stream: TcpStream,
    peer: std::net::SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    // The kernel takes as much unsent data as the send buffer's autotuning allows (megabytes
    // per socket), whether or not the client reads: 200 slow readers made it queue 229 MiB and
    // spend most of the gateway's CPU allocating and copying it. Writable only while less than
    // this is unsent (in-flight data is not counted, so a fast client's throughput is not).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let _ = socket2::SockRef::from(&stream).set_tcp_notsent_lowat(UNSENT_LIMIT);
    // A client that stops taking the response (or takes it a few bytes at a time through a
    // tiny TCP window: the slow-read attack) holds its connection at most idle_timeout
    // between two writes its socket accepts (`stall::SendTimeout`).
    let send_timeout = shared.gateway.load().config().server.idle_timeout.0;
    let stream = SendTimeout::new(stream, send_timeout);
    let tls = shared.tls.load_full();
    match tls.as_ref() {
        None => {
            let limits = h1_limits(&shared);
            h1::serve(stream, ConnInfo::new(peer, false), shared, shutdown, limits).await
        }
        // Boxed: a task is as large as the largest state of its future, and a TLS session
        // (or an HTTP/2 connection) is several KiB a plain HTTP/1.1 connection need not carry.
        Some(cfg) => Box::pin(serve_tls(stream, peer, cfg.clone(), shared, shutdown)).await,
    }
}

async fn serve_tls(
    stream: SendTimeout<TcpStream>,
    peer: std::net::SocketAddr,
    cfg: Arc<rustls::ServerConfig>,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) {
    // A guard must not be held for a connection's lifetime (arc-swap has few fast slots).
    let handshake_timeout = shared.gateway.load().config().server.header_read_timeout.0;
    let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
    let tls_stream = match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            metrics::counter!(observe::TLS_HANDSHAKE_FAILURES).increment(1);
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            metrics::counter!(observe::TLS_HANDSHAKE_FAILURES).increment(1);
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    // Dispatch on ALPN: no protocol sniffing, so no untimed read before the handshake.
    let info = ConnInfo::new(peer, true);
    if tls_stream.get_ref().1.alpn_protocol() == Some(b"h2") {
        serve_h2(tls_stream, info, shared, shutdown).await;
    } else {
        let limits = h1_limits(&shared);
        h1::serve(tls_stream, info, shared, shutdown, limits).await;
    }
}

/// The request handler for one connection. With `activity`, a request counts as running until
/// its response body has been sent (HTTP/2's idle timeout needs that). With `upgraded`, an
/// upgrade (101) turns the connection's lingering close off (`Linger`).
fn service(
    shared: Arc<Shared>,
    info: ConnInfo,
    activity: Option<Arc<Activity>>,
    upgraded: Option<Arc<AtomicBool>>,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = Response<Body>,
    Error = Infallible,
    Future: Send,
> + Clone {
    service_fn(move |req: Request<Incoming>| {
        // A client waiting for `100 Continue` has not sent its body: nothing to drain. (A
        // request without a body, most of them, skips the lookup.)
        let drain = http_body::Body::is_end_stream(req.body())
            || !req.headers().contains_key(header::EXPECT);
        let mut req = req.map(|b| ClientBody::Hyper(ClientIncoming::new(b, drain)));
        if req.version() <= http::Version::HTTP_11 {
            detach_from_read_buffer(&mut req);
        }
        let busy = activity.as_ref().map(|a| {
            a.started.fetch_add(1, Ordering::Relaxed);
            a.open.fetch_add(1, Ordering::Relaxed);
            Busy(a.clone())
        });
        let gateway = shared.gateway.load_full();
        let info = info.clone();
        let upgraded = upgraded.clone();
        async move {
            let resp = gateway.handle(req, info).await;
            if resp.status() == StatusCode::SWITCHING_PROTOCOLS
                && let Some(u) = upgraded
            {
                u.store(true, Ordering::Relaxed);
            }
            // HTTP/2: a long download or event stream keeps its connection out of the idle timeout.
            Ok::<_, Infallible>(match busy {
                Some(busy) => resp.map(|b| Watched::wrap(b, busy)),
                None => resp,
            })
        }
    })
}

/// The field-count limit hyper applies when none is set (`hyper::proto::h1::role`).
const HYPER_DEFAULT_MAX_HEADERS: usize = 100;

/// The server config's limits for an HTTP/1 connection, read once as it starts.
fn h1_limits(shared: &Shared) -> h1::Limits {
    let gateway = shared.gateway.load();
    let server = &gateway.config().server;
    h1::Limits {
        header_read_timeout: server.header_read_timeout.0,
        // Room above the limit, so most oversize heads get the gateway's own 431 problem
        // document; only a head past twice the limit gets hyper's bare 431.
        max_buf: (server.max_header_bytes.0 as usize).saturating_mul(2).max(8192),
        max_headers: server.max_header_count,
    }
}

/// Serves an HTTP/1 connection with hyper, from the request the gateway's own reader
/// (`h1::serve`) handed over on.
pub(super) async fn serve_h1_hyper<I>(
    io: I,
    info: ConnInfo,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
    limits: h1::Limits,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_buf)
        .keep_alive(true);
    // hyper's own limit is 100 fields; set explicitly, it fills its field arrays one
    // element at a time on every request head, so it is only set when it differs.
    if limits.max_headers != HYPER_DEFAULT_MAX_HEADERS {
        builder.max_headers(limits.max_headers);
    }
    // hyper closes the connection after answering a request whose body it did not read to
    // the end (one not drained, `body::ClientIncoming`): that close lingers, unless the
    // connection became a tunnel, whose reads are the tunnel's.
    let upgraded = Arc::new(AtomicBool::new(false));
    let io = Linger::new(io, upgraded.clone());
    let conn = builder
        .serve_connection(TokioIo::new(io), service(shared, info, None, Some(upgraded)))
        .with_upgrades();
    drive(conn, &mut shutdown, |c| c.graceful_shutdown()).await;
}

async fn serve_h2<I>(
    io: I,
    info: ConnInfo,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let gateway = shared.gateway.load_full();
    let server = &gateway.config().server;
    let peer = info.peer;
    let activity = Activity::new();
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .max_concurrent_streams(server.h2_max_concurrent_streams)
        .max_header_list_size(server.max_header_bytes.0.min(u32::MAX as u64) as u32)
        .max_pending_accept_reset_streams(server.h2_max_pending_reset_streams)
        .max_local_error_reset_streams(Some(1024))
        .keep_alive_interval(Some(Duration::from_secs(20)))
        .keep_alive_timeout(Duration::from_secs(20));
    let conn = builder.serve_connection(
        TokioIo::new(io),
        service(shared.clone(), info, Some(activity.clone()), None),
    );
    let mut conn = std::pin::pin!(conn);
    // hyper has no header-read or idle timeout for HTTP/2: without this, a client that
    // completes TLS and then sends no request, or stops sending them, would hold its
    // connection slot forever. The first request must come within header_read_timeout;
    // after that, a connection with no new request and none running for a whole
    // idle_timeout window is closed gracefully (GOAWAY; running streams finish).
    let mut seen = 0;
    let mut window = server.header_read_timeout.0;
    let idle = server.idle_timeout.0;
    drop(gateway);
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = tokio::time::sleep(window) => {
                let started = activity.started.load(Ordering::Relaxed);
                if started == seen && activity.open.load(Ordering::Relaxed) == 0 {
                    if started == 0 {
                        tracing::debug!(%peer, "no HTTP/2 request within header_read_timeout; closing");
                        return;
                    }
                    tracing::debug!(%peer, "HTTP/2 connection idle; closing");
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                    return;
                }
                // Responses the client does not take (a flow-control window that never
                // opens, a socket it does not read): closed at once, since a graceful close
                // would wait for them (`stall`).
                if activity.stalled(idle) {
                    tracing::debug!(%peer, "HTTP/2 client takes no response data; closing");
                    return;
                }
                seen = started;
                window = idle;
            }
            _ = shutdown.changed() => {
                if activity.started.load(Ordering::Relaxed) == 0 {
                    return;
                }
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
                return;
            }
        }
    }
}

/// Runs a connection; on shutdown, lets in-flight requests finish and then closes it.
async fn drive<C, E>(
    conn: C,
    shutdown: &mut watch::Receiver<bool>,
    graceful: impl FnOnce(std::pin::Pin<&mut C>),
) where
    C: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let mut conn = std::pin::pin!(conn);
    if *shutdown.borrow() {
        graceful(conn.as_mut());
        let _ = conn.await;
        return;
    }
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            return;
        }
        _ = shutdown.changed() => {}
    }
    graceful(conn.as_mut());
    let _ = conn.await;
}

/// The plain-HTTP listener: every request is redirected to the same path on the public origin.
pub async fn redirect_loop(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let Ok(listener) = TcpListener::from_std(listener) else { return };
    loop {
        let (stream, _) = tokio::select! {
            r = listener.accept() => match r { Ok(a) => a, Err(_) => continue },
            _ = shutdown.changed() => return,
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let gateway = shared.gateway.load_full();
                async move {
                    Ok::<_, Infallible>(redirect(
                        &gateway.config().public_origin().to_string(),
                        &req,
                    ))
                }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .max_buf_size(16384);
            let _ = builder.serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

fn redirect(origin: &str, req: &Request<Incoming>) -> Response<Body> {
    // The target host comes from config, never from the Host header: no host-header injection.
    let pq = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let pq = if pq.starts_with('/') && !pq.starts_with("//") { pq } else { "/" };
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::PERMANENT_REDIRECT;
    if let Ok(loc) = HeaderValue::from_str(&format!("{origin}{pq}")) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// Moves an HTTP/1 request's target and header values out of the connection's read buffer,
/// of which hyper makes them slices, into one allocation of their own. While a request holds
/// on to that buffer, hyper cannot reuse it for its next read (it checks for a closed
/// connection while the request runs, right after handing the request over) and allocates
/// another 8 KiB each time: the largest per-connection memory cost under load, and a large
/// allocation per request (docs/performance.md). So this runs as the request is received,
/// before that read.
fn detach_from_read_buffer<B>(req: &mut Request<B>) {
    let mut uri = std::mem::take(req.uri_mut());
    detach(&mut uri, req.headers_mut());
    *req.uri_mut() = uri;
}

fn detach(uri: &mut http::Uri, headers: &mut http::HeaderMap) {
    let target = uri.path_and_query().map(|p| p.as_str()).filter(|_| uri.scheme().is_none());
    let size = target.map_or(0, str::len) + headers.values().map(HeaderValue::len).sum::<usize>();
    let mut copy = bytes::BytesMut::with_capacity(size);
    if let Some(t) = target {
        copy.extend_from_slice(t.as_bytes());
    }
    for v in headers.values() {
        copy.extend_from_slice(v.as_bytes());
    }
    let mut copy = copy.freeze();
    if let Some(t) = target {
        let target = copy.split_to(t.len());
        if let Ok(pq) = http::uri::PathAndQuery::from_maybe_shared(target) {
            let mut parts = http::uri::Parts::default();
            parts.path_and_query = Some(pq);
            if let Ok(detached) = http::Uri::from_parts(parts) {
                *uri = detached;
            }
        }
    }
    for v in headers.values_mut() {
        let sensitive = v.is_sensitive();
        // SAFETY: the bytes are a copy of `v`'s, which already passed HeaderValue's checks.
        #[allow(unsafe_code)]
        let mut detached =
            unsafe { HeaderValue::from_maybe_shared_unchecked(copy.split_to(v.len())) };
        detached.set_sensitive(sensitive);
        *v = detached;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_detached_request_head_is_the_same_head() {
        let mut req = Request::builder()
            .uri("/api/items/7?q=a%20b&x=1")
            .header("host", "app.test")
            .header("accept", "application/json")
            .header("x-multi", "one")
            .header("x-multi", "two")
            .header("x-empty", "")
            .body(())
            .unwrap();
        let mut secret = HeaderValue::from_static("Bearer abc");
        secret.set_sensitive(true);
        req.headers_mut().insert(header::AUTHORIZATION, secret);
        let before = (req.uri().clone(), req.headers().clone());
        detach_from_read_buffer(&mut req);
        let (head, ()) = req.into_parts();
        assert_eq!(head.uri, before.0);
        assert_eq!(head.uri.path(), "/api/items/7");
        assert_eq!(head.uri.query(), Some("q=a%20b&x=1"));
        assert_eq!(head.headers, before.1);
        assert_eq!(head.headers.get_all("x-multi").iter().collect::<Vec<_>>(), ["one", "two"]);
        assert!(head.headers[header::AUTHORIZATION].is_sensitive());
        // An absolute-form target is left as it is.
        let mut req = Request::builder().uri("http://app.test/a?b").body(()).unwrap();
        detach_from_read_buffer(&mut req);
        assert_eq!(req.uri(), "http://app.test/a?b");
    }
}
