//! Lingering close: a connection the gateway closes while the client is still sending is not
//! closed with those bytes unread.
//!
//! Closing a TCP socket with unread bytes in its receive buffer makes the kernel answer with a
//! reset instead of a FIN. A client still uploading a request body the gateway refused (and
//! did not drain: one declared larger than `body::DRAIN_MAX_BYTES`) gets that reset on its
//! next write and fails (curl: `(55) Send failure: Connection reset by peer`) without reading
//! the response that was sent before it. So, as nginx's `lingering_close` does, a shutdown
//! here first shuts the write side (TLS close_notify, then FIN), then reads and discards what
//! the client still sends until it closes its side, at most [`LINGER_BYTES`] and
//! [`LINGER_TIME`]. The client meanwhile sees the response and stops sending.
//!
//! Only connections served by hyper's HTTP/1 server linger (`conn::serve_h1_hyper`): the only
//! ones that can be closed with a request body unread. Not once upgraded: a tunnel's shutdown
//! is a half-close, and what the client sends after it is the tunnel's to forward. Whether the client is still sending
//! cannot be told from the socket (its buffer may be empty for a moment between two of the
//! client's writes), so every shutdown there lingers until the client's FIN, which a client
//! sends as soon as it has read a `Connection: close` response: about one round trip.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The most bytes discarded while lingering.
pub const LINGER_BYTES: u64 = 16 * 1024 * 1024;
/// The longest a shutdown lingers.
pub const LINGER_TIME: Duration = Duration::from_secs(5);

/// An I/O stream whose shutdown lingers while the peer is still sending.
pub struct Linger<I> {
    io: I,
    state: State,
    /// Set when the connection became a tunnel (an upgrade): its shutdowns are then the
    /// tunnel's half-closes, and what the client sends after one is the tunnel's to forward.
    upgraded: Arc<AtomicBool>,
}

enum State {
    Open,
    /// Write side shut; discarding what arrives. The timer is made only once there was
    /// something to discard and the peer has not closed yet.
    Lingering {
        discarded: u64,
        deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    },
    Closed,
}

impl<I> Linger<I> {
    pub fn new(io: I, upgraded: Arc<AtomicBool>) -> Self {
        Linger { io, state: State::Open, upgraded }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Linger<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Linger<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.upgraded.load(Ordering::Relaxed) {
            return Pin::new(&mut this.io).poll_shutdown(cx);
        }
        loop {
            match &mut this.state {
                State::Open => {
                    ready!(Pin::new(&mut this.io).poll_shutdown(cx))?;
                    this.state = State::Lingering { discarded: 0, deadline: None };
                }
                State::Lingering { discarded, deadline } => {
                    let mut scratch = [0u8; 8192];
                    let mut buf = ReadBuf::new(&mut scratch);
                    match Pin::new(&mut this.io).poll_read(cx, &mut buf) {
                        Poll::Ready(Ok(())) if !buf.filled().is_empty() => {
                            *discarded += buf.filled().len() as u64;
                            if *discarded > LINGER_BYTES {
                                this.state = State::Closed;
                            }
                        }
                        // The peer closed its side, or the connection failed: done.
                        Poll::Ready(_) => this.state = State::Closed,
                        // Nothing was left unread: nothing for a reset to destroy.
                        Poll::Pending => {
                            let timer = deadline
                                .get_or_insert_with(|| Box::pin(tokio::time::sleep(LINGER_TIME)));
                            ready!(timer.as_mut().poll(cx));
                            this.state = State::Closed;
                        }
                    }
                }
                State::Closed => return Poll::Ready(Ok(())),
            }
        }
    }
}
