//! What an HTTP/2 connection has been doing, for its timeouts: requests started, handlers and
//! response bodies still running, and whether responses are stuck waiting on the client.
//!
//! hyper has no timeout for a response the client never takes: a client that sets its
//! flow-control window to zero (or never sends a `WINDOW_UPDATE`, or stops reading its
//! socket) keeps every stream it opened, the backend response behind each, and up to h2's
//! send buffer per stream, for as long as it answers keep-alive PINGs. [`Activity::stalled`]
//! tells the connection loop (`conn::serve_h2`) when some response body on the connection has
//! waited on the client for a whole `idle_timeout`; the loop then closes the connection. Each
//! body's wait is its own: a new request, or another stream that keeps moving, does not
//! restart it.
//!
//! Below TLS, [`SendTimeout`] bounds how long a write to the client's socket may wait: a
//! client that stops reading (or opens its TCP window a few bytes at a time, the slow-read
//! attack) holds its connection, and the response behind it, at most `idle_timeout` between
//! two writes the socket accepts, on HTTP/1.1 and HTTP/2 alike.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body as _, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::body::{Body, BoxError};

pub(super) struct Activity {
    /// Requests started on the connection.
    pub started: AtomicU64,
    /// Handlers running, or responses still streaming.
    pub open: AtomicUsize,
    /// Response bodies whose next frame the connection has not asked for: not polled yet, or
    /// their last frame not yet taken (HTTP/2 polls a body only when the client's window has
    /// room for more). Each as (when its wait started, in ms since `epoch`; its id), so the
    /// first is the longest wait. At most one entry per live body: bounded by the connection's
    /// concurrent streams.
    waiting: Mutex<BTreeSet<(u64, u64)>>,
    /// The next body's id.
    next_id: AtomicU64,
    epoch: Instant,
}

impl Activity {
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity {
            started: AtomicU64::new(0),
            open: AtomicUsize::new(0),
            waiting: Mutex::new(BTreeSet::new()),
            next_id: AtomicU64::new(0),
            epoch: Instant::now(),
        })
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis().try_into().unwrap_or(u64::MAX)
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, BTreeSet<(u64, u64)>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a body's wait on the client; the key that ends it.
    fn start_wait(&self, id: u64) -> (u64, u64) {
        let key = (self.now_ms(), id);
        self.waiting().insert(key);
        key
    }

    fn end_wait(&self, key: (u64, u64)) {
        self.waiting().remove(&key);
    }

    /// Some response body has waited on the client for `limit`, however much the others
    /// moved or how many new requests came meanwhile.
    pub fn stalled(&self, limit: Duration) -> bool {
        let oldest = self.waiting().first().map(|&(start, _)| start);
        oldest.is_some_and(|start| {
            self.now_ms().saturating_sub(start) >= limit.as_millis().try_into().unwrap_or(u64::MAX)
        })
    }
}

/// Marks a request handler (and then its response body) as finished when dropped.
pub(super) struct Busy(pub Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body on an HTTP/2 connection: the request counts as running until it is done
/// (so a long download or event stream keeps its connection out of the idle timeout), and
/// whether it waits on the client is known to [`Activity::stalled`].
pub(super) struct Watched {
    inner: Body,
    busy: Busy,
    id: u64,
    /// Its entry in `Activity::waiting`: its next frame has not been asked for since then.
    waiting: Option<(u64, u64)>,
}

impl Watched {
    pub fn wrap(inner: Body, busy: Busy) -> Body {
        if inner.is_end_stream() {
            return inner;
        }
        let activity = &busy.0;
        let id = activity.next_id.fetch_add(1, Ordering::Relaxed);
        // Its wait starts now; the others' go on.
        let waiting = Some(activity.start_wait(id));
        Body::boxed(Watched { inner, busy, id, waiting })
    }
}

impl http_body::Body for Watched {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let activity = self.busy.0.clone();
        if let Some(key) = self.waiting.take() {
            activity.end_wait(key);
        }
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        // A frame handed over: the next is the client's to make room for. (Pending is the
        // backend's turn, not the client's.)
        if let Poll::Ready(Some(Ok(_))) = &polled
            && !self.inner.is_end_stream()
        {
            self.waiting = Some(activity.start_wait(self.id));
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        if let Some(key) = self.waiting.take() {
            self.busy.0.end_wait(key);
        }
    }
}

/// A socket that can be made to close with a reset (`SO_LINGER` 0).
pub(super) trait AbortOnClose {
    fn abort_on_close(&self);
}

impl AbortOnClose for tokio::net::TcpStream {
    fn abort_on_close(&self) {
        let _ = socket2::SockRef::from(self).set_linger(Some(Duration::ZERO));
    }
}

/// A client connection whose writes fail with `TimedOut` once one has waited `limit` for
/// the socket to take a byte. The timer is armed when a write first finds the socket full and
/// disarmed by the next write it accepts, so a client that reads, however slowly, is bounded
/// only between two of its reads.
pub(super) struct SendTimeout<I> {
    io: I,
    limit: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    armed: bool,
}

impl<I: AbortOnClose> SendTimeout<I> {
    pub fn new(io: I, limit: Duration) -> Self {
        SendTimeout { io, limit, timer: None, armed: false }
    }

    /// Called when a write is pending: the error once the wait has lasted `limit`.
    fn waited_too_long(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Error> {
        let deadline = tokio::time::Instant::now() + self.limit;
        let timer = self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if !self.armed {
            self.armed = true;
            timer.as_mut().reset(deadline);
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                // Reset, not closed: a FIN would wait in the kernel behind the data the client
                // is not taking, and the connection with it (FIN-WAIT-1, its send buffer of up
                // to megabytes held), for as long as the client keeps its window shut.
                self.io.abort_on_close();
                Poll::Ready(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the client took no data for idle_timeout",
                ))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn written<T>(
        &mut self,
        polled: Poll<std::io::Result<T>>,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<T>> {
        match polled {
            Poll::Ready(r) => {
                self.armed = false;
                Poll::Ready(r)
            }
            Poll::Pending => self.waited_too_long(cx).map(Err),
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for SendTimeout<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + AbortOnClose + Unpin> AsyncWrite for SendTimeout<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, buf);
        self.written(polled, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.written(polled, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let polled = Pin::new(&mut self.io).poll_flush(cx);
        self.written(polled, cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_not_polled_for_the_limit_is_stalled_and_one_being_read_is_not() {
        let activity = Activity::new();
        activity.open.fetch_add(1, Ordering::Relaxed);
        let mut body = Watched::wrap(Body::full("chunk"), Busy(activity.clone()));
        assert!(!activity.stalled(Duration::from_millis(50)));
        std::thread::sleep(Duration::from_millis(60));
        // Never polled (a window that never opened): stalled.
        assert!(activity.stalled(Duration::from_millis(50)));
        // Polled to its end: nothing waits.
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        while let Poll::Ready(Some(_)) = Pin::new(&mut body).poll_frame(&mut cx) {}
        std::thread::sleep(Duration::from_millis(60));
        assert!(!activity.stalled(Duration::from_millis(50)));
        drop(body);
        assert_eq!(activity.open.load(Ordering::Relaxed), 0);
        assert!(activity.waiting().is_empty());
    }

    fn poll_once(body: &mut Body) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        Pin::new(body).poll_frame(&mut cx)
    }

    /// A body that hands out `frames` frames, one per poll.
    fn frames(n: usize) -> Body {
        let chunks = (0..n).map(|_| Ok::<_, BoxError>(Frame::data(Bytes::from_static(b"x"))));
        Body::boxed(http_body_util::StreamBody::new(futures_util::stream::iter(chunks)))
    }

    #[test]
    fn a_new_response_does_not_restart_the_wait_of_one_already_stuck() {
        let activity = Activity::new();
        let limit = Duration::from_millis(100);
        let _stuck = Watched::wrap(Body::full("never taken"), Busy(activity.clone()));
        std::thread::sleep(Duration::from_millis(120));
        // A fresh request's response, wrapped (and dropped, as a reset stream is), after the
        // stuck one's wait passed the limit.
        let fresh = Watched::wrap(Body::full("404"), Busy(activity.clone()));
        assert!(activity.stalled(limit), "a new response restarted the stuck one's wait");
        drop(fresh);
        assert!(activity.stalled(limit));
        assert_eq!(activity.waiting().len(), 1);
    }

    #[test]
    fn one_stream_kept_moving_does_not_cover_another_stuck() {
        let activity = Activity::new();
        let limit = Duration::from_millis(100);
        let _stuck = Watched::wrap(Body::full("never taken"), Busy(activity.clone()));
        let mut trickle = Watched::wrap(frames(1000), Busy(activity.clone()));
        for _ in 0..6 {
            std::thread::sleep(Duration::from_millis(25));
            assert!(matches!(poll_once(&mut trickle), Poll::Ready(Some(Ok(_)))));
        }
        assert!(activity.stalled(limit), "a trickling stream covered a stuck one");
    }

    #[test]
    fn a_body_taken_frame_by_frame_within_the_limit_is_not_stalled() {
        let activity = Activity::new();
        // Wide: each wait is 150 ms against a limit of 1 s; all of them together pass it.
        let limit = Duration::from_secs(1);
        let mut body = Watched::wrap(frames(10), Busy(activity.clone()));
        for _ in 0..10 {
            std::thread::sleep(Duration::from_millis(150));
            assert!(!activity.stalled(limit));
            assert!(matches!(poll_once(&mut body), Poll::Ready(Some(Ok(_)))));
        }
        drop(body);
        assert!(activity.waiting().is_empty());
        assert!(!activity.stalled(limit));
    }

    impl AbortOnClose for tokio::io::DuplexStream {
        fn abort_on_close(&self) {}
    }

    #[tokio::test]
    async fn a_write_the_client_never_takes_fails_after_the_limit() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (ours, mut theirs) = tokio::io::duplex(1024);
        let mut io = SendTimeout::new(ours, Duration::from_millis(200));
        // Taken, slowly: each write waits less than the limit.
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 512];
            for _ in 0..4 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                theirs.read_exact(&mut buf).await.unwrap();
            }
            theirs
        });
        io.write_all(&[1u8; 1024 + 2048]).await.expect("a slow reader is not cut off");
        let _theirs = reader.await.unwrap();
        // Not taken at all: the write that finds the buffer full fails once the limit passes.
        let started = std::time::Instant::now();
        let err = io.write_all(&[2u8; 4096]).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(200));
    }
}
