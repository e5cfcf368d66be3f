//! The one body type that flows through the gateway.
//!
//! An enum rather than a boxed trait object so the common cases (a proxied stream, a small
//! gateway-made document, nothing) cost no allocation on the hot path.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::Body as _;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

type Boxed = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// A body streamed from a connection by a codec in a layer above this one.
pub type StreamBody = Pin<Box<dyn http_body::Body<Data = Bytes, Error = BoxError> + Send>>;

#[derive(Default)]
pub enum Body {
    #[default]
    Empty,
    Full(Option<Bytes>),
    /// An upstream's response body.
    Incoming(hyper::body::Incoming),
    /// A client's request body on its way upstream; drained if dropped unread.
    Client(ClientIncoming),
    /// An incoming request body with a byte limit; `exceeded` is set if the limit is crossed.
    Limited {
        inner: ClientBody,
        remaining: u64,
        exceeded: Arc<AtomicBool>,
    },
    Boxed(Boxed),
    /// An upstream response body read from its connection by the backend codec (`proxy::h1`),
    /// which puts the connection back in its pool when the body ends. A trait object, so this
    /// bottom layer names no codec type.
    Upstream(StreamBody),
}

/// A client's request body as a server connection hands it to the pipeline.
#[derive(Debug)]
pub enum ClientBody {
    /// Read by hyper (HTTP/2, and HTTP/1 bodies the gateway's own reader leaves to hyper).
    Hyper(ClientIncoming),
    /// A request whose framing says it has no body.
    Empty,
    /// A small body the gateway's own HTTP/1.1 reader (`server::h1`) read whole before
    /// handing the request over (its `Content-Length` says how long); taken by the first poll.
    Read(Option<Bytes>),
}

impl From<ClientBody> for Body {
    fn from(b: ClientBody) -> Body {
        match b {
            ClientBody::Hyper(b) => Body::Client(b),
            ClientBody::Empty => Body::Empty,
            ClientBody::Read(b) => Body::Full(b),
        }
    }
}

impl http_body::Body for ClientBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            ClientBody::Hyper(b) => Pin::new(b).poll_frame(cx),
            ClientBody::Empty => Poll::Ready(None),
            ClientBody::Read(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ClientBody::Hyper(b) => b.is_end_stream(),
            ClientBody::Empty => true,
            ClientBody::Read(b) => b.as_ref().is_none_or(Bytes::is_empty),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ClientBody::Hyper(b) => b.size_hint(),
            ClientBody::Empty => SizeHint::with_exact(0),
            ClientBody::Read(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
        }
    }
}

/// The most of an unread request body drained after the gateway has answered without it.
pub const DRAIN_MAX_BYTES: u64 = 1024 * 1024;
/// How long a drain may take, all told.
pub const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// A client's request body as hyper reads it, which is drained if dropped unread.
///
/// The gateway often answers without reading a body: a refusal (404, 405, 401, 403, 413...),
/// a served file, a failed upstream. Dropping hyper's body then ends the request stream early:
/// on HTTP/2, `h2` sends RST_STREAM(NO_ERROR) after the response (RFC 9113 §8.1), and on
/// HTTP/1 hyper closes the connection after the response. Both are correct, but a client still
/// uploading takes them as a failure and never shows the response: curl 7.88 (nghttp2) fails
/// its send on the reset stream with `(92) Stream error in the HTTP/2 framing layer` before
/// it hands over the response it already has, and an HTTP/1 client writing into a closed
/// socket gets ECONNRESET. So, as nginx and Envoy do, the rest of the body is read and
/// discarded in a task of its own, up to [`DRAIN_MAX_BYTES`] and [`DRAIN_TIME`]: the client's
/// stream then ends as it meant it to (both sides END_STREAM; an HTTP/1 connection kept
/// alive). A body declared longer than that is not drained: it is dropped at once (the
/// HTTP/1 connection then closes with a lingering close, `server::linger`).
#[derive(Debug)]
pub struct ClientIncoming {
    /// `None` only once handed to a drain.
    inner: Option<hyper::body::Incoming>,
    /// The body has been read to its end.
    ended: bool,
    /// Whether dropping it unread drains it: not when the client waits for `100 Continue`
    /// before sending it (hyper would invite the body the gateway does not want).
    drain: bool,
}

impl ClientIncoming {
    pub fn new(inner: hyper::body::Incoming, drain: bool) -> Self {
        ClientIncoming { inner: Some(inner), ended: false, drain }
    }
}

impl http_body::Body for ClientIncoming {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let Some(inner) = self.inner.as_mut() else { return Poll::Ready(None) };
        let frame = Pin::new(inner).poll_frame(cx);
        if let Poll::Ready(None) = frame {
            self.ended = true;
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.as_ref().is_none_or(http_body::Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.as_ref().map_or_else(|| SizeHint::with_exact(0), http_body::Body::size_hint)
    }
}

impl Drop for ClientIncoming {
    fn drop(&mut self) {
        // Read to its end (the common case: every request without a body, and every body
        // forwarded whole): nothing to do, and nothing allocated.
        if !self.drain || self.is_end_stream() || self.size_hint().lower() > DRAIN_MAX_BYTES {
            return;
        }
        let (Some(body), Ok(runtime)) = (self.inner.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        runtime.spawn(drain(body));
    }
}

/// Reads and discards what is left of a request body, within the drain's bounds.
async fn drain(mut body: hyper::body::Incoming) {
    let mut left = DRAIN_MAX_BYTES;
    let read = async {
        while let Some(Ok(frame)) = body.frame().await {
            let len = frame.data_ref().map_or(0, |d| d.len() as u64);
            let Some(rest) = left.checked_sub(len) else { return false };
            left = rest;
        }
        true
    };
    let drained = tokio::time::timeout(DRAIN_TIME, read).await.unwrap_or(false);
    tracing::debug!(drained, "unread request body drained");
}

/// A body that holds a value (a guard) until the body is dropped: the request stays "running"
/// while its response streams.
pub struct GuardedBody<G> {
    inner: Body,
    _guard: G,
}

impl<G: Send + Unpin + 'static> GuardedBody<G> {
    pub fn wrap(inner: Body, guard: G) -> Body {
        if inner.is_end_stream() {
            return inner;
        }
        Body::boxed(GuardedBody { inner, _guard: guard })
    }
}

impl<G: Unpin> http_body::Body for GuardedBody<G> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A body that fails once a deadline passes (`[upstream] total_timeout`).
pub struct DeadlineBody {
    inner: Body,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl DeadlineBody {
    pub fn new(inner: Body, deadline: tokio::time::Instant) -> Self {
        DeadlineBody { inner, sleep: Box::pin(tokio::time::sleep_until(deadline)) }
    }
}

/// The error a [`DeadlineBody`] yields when its deadline passes.
#[derive(Debug)]
pub struct DeadlineError;

impl std::fmt::Display for DeadlineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("upstream total_timeout reached while streaming the response")
    }
}
impl std::error::Error for DeadlineError {}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        match self.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(DeadlineError)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The error a [`Body::Limited`] yields when it goes over its limit.
#[derive(Debug)]
pub struct LengthLimitError;

impl std::fmt::Display for LengthLimitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("body length limit exceeded")
    }
}
impl std::error::Error for LengthLimitError {}

impl Body {
    pub fn empty() -> Self {
        Body::Empty
    }

    pub fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        if bytes.is_empty() { Body::Empty } else { Body::Full(Some(bytes)) }
    }

    pub fn boxed<B>(body: B) -> Self
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        Body::Boxed(body.map_err(Into::into).boxed_unsync())
    }

    pub fn limited(inner: ClientBody, limit: u64, exceeded: Arc<AtomicBool>) -> Self {
        Body::Limited { inner, remaining: limit, exceeded }
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            Body::Empty => Poll::Ready(None),
            Body::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Body::Incoming(b) => Pin::new(b).poll_frame(cx).map_err(Into::into),
            Body::Client(b) => Pin::new(b).poll_frame(cx).map_err(Into::into),
            Body::Limited { inner, remaining, exceeded } => match Pin::new(inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Some(data) = frame.data_ref() {
                        let len = data.len() as u64;
                        if len > *remaining {
                            exceeded.store(true, Ordering::Relaxed);
                            return Poll::Ready(Some(Err(Box::new(LengthLimitError))));
                        }
                        *remaining -= len;
                    }
                    Poll::Ready(Some(Ok(frame)))
                }
                other => other.map_err(Into::into),
            },
            Body::Boxed(b) => Pin::new(b).poll_frame(cx),
            Body::Upstream(b) => b.as_mut().poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Empty => true,
            Body::Full(b) => b.is_none(),
            Body::Incoming(b) => b.is_end_stream(),
            Body::Client(b) => b.is_end_stream(),
            Body::Limited { inner, .. } => inner.is_end_stream(),
            Body::Boxed(b) => b.is_end_stream(),
            Body::Upstream(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Empty => SizeHint::with_exact(0),
            Body::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Body::Incoming(b) => b.size_hint(),
            Body::Client(b) => b.size_hint(),
            Body::Limited { inner, .. } => inner.size_hint(),
            Body::Boxed(b) => b.size_hint(),
            Body::Upstream(b) => b.size_hint(),
        }
    }
}
