//! The gateway's own HTTP/1.1 server, for requests without a body or with a small one.
//!
//! hyper's HTTP/1 server (reading the head, dispatching, encoding the response head) was about
//! a third of the user-space instructions the gateway spends per proxied request
//! (docs/performance.md). Most API and page traffic is requests whose framing is trivial:
//! HTTP/1.1 with no Transfer-Encoding, no Expect and no Upgrade, and either no body or one
//! `Content-Length` of at most [`READ_BODY_MAX`] bytes that arrived with its head (a browser
//! app's JSON POST). Those are read, dispatched and answered here.
//!
//! The first request on a connection that is anything else (a larger, chunked or
//! not-yet-arrived body, an upgrade, HTTP/1.0, a head httparse or `http` refuses, a head that
//! does not fit) hands the connection, with every byte read and not yet used, to hyper, which
//! serves it from that request on exactly as it did before this module existed. So each large or chunked body,
//! each error answer to a bad head and each upgrade is still hyper's; this module only has to
//! agree with hyper on the requests it keeps, and
//! `tests::hyper_reads_every_head_this_reader_keeps_the_same_way` (and the `h1_request_head`
//! fuzz target) hold it to that, body bytes included.
//!
//! What it keeps of hyper's behaviour: the header-read timeout (also between requests on a
//! kept-alive connection), pipelined requests answered in order, a client that closes its
//! side while its request runs cancels the request, `Connection: close` either way, a
//! graceful shutdown lets the running request finish and then closes with
//! `Connection: close`, and the response framing rules of hyper's `Server::encode` (HEAD,
//! 204 and 304 have no body; a known length is sent as Content-Length, otherwise chunked).

use std::future::{Future, poll_fn};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderName, HeaderValue, Method, Request, StatusCode, Version, header};
use http_body::{Body as _, Frame};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::watch;

use super::Shared;
use crate::body::{Body, ClientBody};
use crate::pipeline::{ConnInfo, DeferredFields};
use crate::wire::is_text;

/// A connection's read buffer starts this large (hyper's starts at 8 KiB); it grows up to the
/// connection's limit only for a large head.
const FIRST_READ: usize = 4 * 1024;
/// Response bytes gathered into one write: a head and a small body go out in one syscall.
const COALESCE: usize = 16 * 1024;
/// hyper refuses longer request targets with 414; such a request goes to hyper.
const MAX_URI_LEN: usize = (u16::MAX - 1) as usize;
/// Field slots on the stack; a configured limit above this takes a heap array.
const STACK_FIELDS: usize = 128;
/// The largest request body kept here (when it arrived with its head); a larger one goes to
/// hyper, which streams it.
pub const READ_BODY_MAX: usize = 16 * 1024;

/// What the server config asks of an HTTP/1 connection (the same values hyper is given).
#[derive(Clone, Copy, Debug)]
pub(super) struct Limits {
    pub header_read_timeout: Duration,
    /// The most bytes buffered while waiting for a complete head.
    pub max_buf: usize,
    pub max_headers: usize,
}

/// What the reader made of the bytes at the start of a connection's buffer.
#[derive(Debug)]
// Returned once per head and taken apart at once: boxing the request would be an allocation
// per request to save a move.
#[allow(clippy::large_enum_variant)]
pub enum Head {
    /// An HTTP/1.1 request with no body or a small one, taken out of the buffer; `close` when
    /// it asks for the connection to be closed after its response.
    Request { req: Request<ClientBody>, close: bool },
    /// Not a complete head yet.
    Partial,
    /// Not one this reader keeps: hyper serves the connection from this request on.
    Hyper,
}

/// The field names of a connection's last request, in order, as sent and as parsed. A client
/// sends much the same fields in the same order on every request of a connection (a browser's
/// `fetch()`: a dozen, half of them names the `http` crate does not know, each of which
/// `HeaderName::from_bytes` would allocate anew), so a name sent with the same bytes at the
/// same position as last time is cloned instead of parsed.
#[derive(Default)]
pub struct FieldNames(Vec<(Box<[u8]>, HeaderName)>);

/// Longer names are parsed every time rather than copied into the cache.
const REMEMBERED_NAME_LEN: usize = 64;

impl FieldNames {
    /// The name of the `i`th field, sent as `raw`; `None` when `raw` is not a field name.
    fn get(&mut self, i: usize, raw: &[u8]) -> Option<HeaderName> {
        // Exact bytes (one memcmp): a case-insensitive compare costs as much as parsing.
        if let Some((sent, name)) = self.0.get(i)
            && **sent == *raw
        {
            return Some(name.clone());
        }
        let name = HeaderName::from_bytes(raw).ok()?;
        self.0.truncate(i);
        if raw.len() <= REMEMBERED_NAME_LEN && i == self.0.len() {
            self.0.push((raw.into(), name.clone()));
        }
        Some(name)
    }
}

/// Reads a request at the start of `buf`, with the connection's `names`. A request with a
/// body is kept only when the whole body (at most [`READ_BODY_MAX`] bytes) is already in `buf`:
/// nothing here waits for a body, so how long one may take stays the pipeline's to decide (a
/// check reading it, the upstream timeout). When the request is kept, its bytes are taken out
/// of `buf` and copied into allocations of the request's own (so the connection's buffer is
/// reused for the next read instead of staying shared with a request in flight).
pub fn read_head(buf: &mut BytesMut, max_headers: usize, names: &mut FieldNames) -> Head {
    let mut stack =
        [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; STACK_FIELDS];
    let mut heap;
    let slots: &mut [std::mem::MaybeUninit<httparse::Header<'_>>] = if max_headers <= STACK_FIELDS {
        &mut stack[..max_headers]
    } else {
        heap = vec![std::mem::MaybeUninit::uninit(); max_headers];
        &mut heap
    };
    let mut parsed = httparse::Request::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_request_with_uninit_headers(
        &mut parsed,
        buf,
        slots,
    ) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Head::Partial,
        Err(_) => return Head::Hyper,
    };
    let (Some(method), Some(target), Some(1)) = (parsed.method, parsed.path, parsed.version) else {
        return Head::Hyper;
    };
    let Ok(method) = Method::from_bytes(method.as_bytes()) else { return Head::Hyper };
    if method == Method::CONNECT || target.len() > MAX_URI_LEN {
        return Head::Hyper;
    }
    let mut close = false;
    let mut body = None;
    // A map a sent request left behind (proxy::forward), when there is one.
    let mut headers = crate::proxy::h1::header_map(parsed.headers.len());
    let head = Bytes::copy_from_slice(&buf[..len]);
    let base = buf.as_ptr() as usize;
    let span = |s: &[u8]| {
        let start = s.as_ptr() as usize - base;
        start..start + s.len()
    };
    let uri = match http::Uri::from_maybe_shared(head.slice(span(target.as_bytes()))) {
        Ok(u) => u,
        Err(_) => return Head::Hyper,
    };
    for (i, field) in parsed.headers.iter().enumerate() {
        let Some(name) = names.get(i, field.name.as_bytes()) else { return Head::Hyper };
        if name == header::CONTENT_LENGTH {
            // One field of plain digits, for a body small enough to read whole. Copies, lists
            // and anything hyper might read otherwise are hyper's.
            match (body, small_length(field.value)) {
                (None, Some(n)) => body = Some(n),
                _ => return Head::Hyper,
            }
        }
        // Other framing, expectations and upgrades are hyper's to handle.
        if name == header::TRANSFER_ENCODING
            || name == header::EXPECT
            || name == header::UPGRADE
            || name == header::TE
        {
            return Head::Hyper;
        }
        if name == header::CONNECTION && has_token(field.value, b"close") {
            close = true;
        }
        // SAFETY: httparse accepted the value, and its value bytes are exactly those
        // HeaderValue accepts (hyper builds its values the same way).
        #[allow(unsafe_code)]
        let value =
            unsafe { HeaderValue::from_maybe_shared_unchecked(head.slice(span(field.value))) };
        headers.append(name, value);
    }
    let body_len = body.unwrap_or(0);
    if buf.len() - len < body_len {
        return Head::Hyper;
    }
    buf.advance(len);
    let body = if body_len == 0 {
        ClientBody::Empty
    } else {
        let body = Bytes::copy_from_slice(&buf[..body_len]);
        buf.advance(body_len);
        ClientBody::Read(Some(body))
    };
    let mut req = Request::new(body);
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    *req.version_mut() = Version::HTTP_11;
    *req.headers_mut() = headers;
    Head::Request { req, close }
}

/// A `Content-Length` value of ASCII digits only (no sign, no list, no spaces) that is at most
/// [`READ_BODY_MAX`].
fn small_length(value: &[u8]) -> Option<usize> {
    if value.is_empty() || value.len() > 7 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = value.iter().fold(0usize, |n, d| n * 10 + usize::from(d - b'0'));
    (n <= READ_BODY_MAX).then_some(n)
}

/// Whether a comma-separated field value lists `token` (case-insensitive), as hyper reads
/// `Connection`: a value with bytes other than visible ASCII and tab lists nothing
/// (`HeaderValue::to_str` fails on it).
fn has_token(value: &[u8], token: &[u8]) -> bool {
    is_text(value)
        && value.split(|&b| b == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// Whether the last token of a comma-separated field value is `token` (case-insensitive), as
/// hyper reads `Transfer-Encoding`.
fn has_last_token(value: &[u8], token: &[u8]) -> bool {
    is_text(value)
        && value
            .rsplit(|&b| b == b',')
            .next()
            .is_some_and(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// Serves one HTTP/1.1 connection (plain, or TLS after ALPN chose http/1.1).
pub(super) async fn serve<I>(
    mut io: I,
    info: ConnInfo,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
    limits: Limits,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut buf = BytesMut::with_capacity(FIRST_READ);
    let mut out = Vec::new();
    let mut names = FieldNames::default();
    // One timer per connection, armed for the first head's deadline. When it fires before
    // the current head's deadline (requests came and went meanwhile), it is moved there:
    // one wake-up per timeout period, instead of moving the timer for every request.
    let mut timer = std::pin::pin!(tokio::time::sleep(limits.header_read_timeout));
    if *shutdown.borrow() {
        return;
    }
    // Fires once when the server starts draining: one waiter for the connection's life,
    // not one registered and removed per request.
    let mut drain_signal = shutdown.clone();
    let mut drain = std::pin::pin!(async move {
        let _ = drain_signal.changed().await;
    });
    loop {
        if draining(&shutdown) {
            let _ = io.shutdown().await;
            return;
        }
        let deadline = tokio::time::Instant::now() + limits.header_read_timeout;
        // How much of the buffer a parse has already found incomplete: after the first parse,
        // a head is parsed again only once new bytes hold the empty line that ends it (as
        // hyper does), so a head sent a byte at a time costs linear, not quadratic, work.
        let mut scanned = None;
        let (req, close) = loop {
            if buf.len() > scanned.unwrap_or(0) {
                let head = if scanned.is_none_or(|from| may_end_head(&buf, from)) {
                    read_head(&mut buf, limits.max_headers, &mut names)
                } else {
                    Head::Partial
                };
                match head {
                    Head::Request { req, close } => break (req, close),
                    Head::Partial if buf.len() < limits.max_buf => scanned = Some(buf.len()),
                    Head::Partial | Head::Hyper => {
                        let io = Rewind { pre: buf.freeze(), io };
                        // Boxed: a rare path, kept out of every connection's task size.
                        return Box::pin(super::conn::serve_h1_hyper(
                            io, info, shared, shutdown, limits,
                        ))
                        .await;
                    }
                }
            }
            tokio::select! {
                biased;
                r = poll_fn(|cx| poll_read(&mut io, &mut buf, limits.max_buf, cx)) => match r {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                },
                () = timer.as_mut() => {
                    // No complete head in time (a slowloris client, or an idle keep-alive
                    // connection): closed without an answer, as hyper does.
                    if tokio::time::Instant::now() >= deadline {
                        return;
                    }
                    timer.as_mut().reset(deadline);
                }
                () = drain.as_mut() => {
                    let _ = io.shutdown().await;
                    return;
                }
            }
        };
        let head_request = req.method() == Method::HEAD;
        let gateway = shared.gateway.load_full();
        let (resp, fields) = {
            let mut handler = std::pin::pin!(gateway.handle_deferred(req, info.clone()));
            // A client that closes its side while its request runs cancels the request.
            let done = poll_fn(|cx| match handler.as_mut().poll(cx) {
                Poll::Ready(r) => Poll::Ready(Some(r)),
                Poll::Pending => {
                    watch_for_close(&mut io, &mut buf, limits.max_buf, cx).map(|()| None)
                }
            });
            match done.await {
                Some(r) => r,
                None => return,
            }
        };
        let keep_alive = !close && !draining(&shutdown);
        let (mut parts, body) = resp.into_parts();
        let length = if body.is_end_stream() {
            None
        } else {
            match body.size_hint().exact() {
                Some(n) => Some(Length::Known(n)),
                None => Some(Length::Unknown),
            }
        };
        let encoded =
            encode_head(&parts, Some(&fields), length, head_request, keep_alive, &mut out);
        crate::proxy::h1::recycle_headers(std::mem::take(&mut parts.headers));
        drop(fields);
        drop(gateway);
        let Ok((framing, last)) = encoded else {
            tracing::debug!(status = %parts.status, "response head not encodable; closing the connection");
            return;
        };
        if write_body(&mut io, &mut buf, &mut out, body, framing, limits.max_buf).await.is_err() {
            return;
        }
        if out.capacity() > 4 * COALESCE {
            out = Vec::new();
        }
        if last {
            let _ = io.shutdown().await;
            return;
        }
    }
}

/// Whether the bytes of `buf` from `from` on (and the three before, where the empty line may
/// have begun) hold the end of a head: a line feed followed by another, or by CR LF.
fn may_end_head(buf: &[u8], from: usize) -> bool {
    let tail = &buf[from.saturating_sub(3)..];
    memchr::memchr_iter(b'\n', tail)
        .any(|i| tail[i + 1..].starts_with(b"\n") || tail[i + 1..].starts_with(b"\r\n"))
}

/// Whether the server has started draining since the connection began (the watch only ever
/// changes to say so): an atomic load, where reading the value takes its lock.
fn draining(shutdown: &watch::Receiver<bool>) -> bool {
    shutdown.has_changed().unwrap_or(true)
}

/// Reads what the socket has into `buf`, up to `max` buffered bytes.
fn poll_read<I: AsyncRead + Unpin>(
    io: &mut I,
    buf: &mut BytesMut,
    max: usize,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    if buf.len() >= max {
        return Poll::Ready(Err(io::ErrorKind::OutOfMemory.into()));
    }
    if buf.capacity() - buf.len() < 1024 {
        buf.reserve(FIRST_READ.min(max - buf.len()).max(1024));
    }
    let room = (max - buf.len()).min(buf.capacity() - buf.len());
    tokio_util::io::poll_read_buf(Pin::new(io), cx, &mut bytes::BufMut::limit(buf, room))
}

/// While a request runs or its response streams: `Ready` once the client has closed its side
/// (or the connection failed). Bytes that arrive meanwhile (a pipelined request) are kept for
/// later, and then nothing more is read until they are used, as hyper does.
fn watch_for_close<I: AsyncRead + Unpin>(
    io: &mut I,
    buf: &mut BytesMut,
    max: usize,
    cx: &mut Context<'_>,
) -> Poll<()> {
    if !buf.is_empty() {
        return Poll::Pending;
    }
    match poll_read(io, buf, max, cx) {
        Poll::Ready(Ok(0) | Err(_)) => Poll::Ready(()),
        Poll::Ready(Ok(_)) | Poll::Pending => Poll::Pending,
    }
}

/// What the response body's length is known to be (`None` when the body is known empty).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Length {
    Known(u64),
    Unknown,
}

/// How the response body is delimited on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    Length(u64),
    Chunked,
    /// To the end of the connection (an HTTP/1.0 response of unknown length).
    Close,
}

fn can_have_body(head_request: bool, status: StatusCode) -> bool {
    !head_request
        && !status.is_informational()
        && !matches!(status, StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED)
}

fn can_have_content_length(status: StatusCode) -> bool {
    !status.is_informational()
        && !matches!(status, StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED)
}

/// Writes the response head into `out`, following hyper's `Server::encode`; returns how the
/// body is framed and whether the connection closes after it. `Err` when the response's own
/// framing fields are contradictory (hyper then closes the connection without an answer).
fn encode_head(
    parts: &http::response::Parts,
    fields: Option<&DeferredFields<'_>>,
    length: Option<Length>,
    head_request: bool,
    keep_alive: bool,
    out: &mut Vec<u8>,
) -> Result<(Framing, bool), ()> {
    let status = parts.status;
    if status.is_informational() {
        // Only an upgrade answers 101, and upgrades are hyper's.
        return Err(());
    }
    let http10 = parts.version == Version::HTTP_10;
    let mut last = !keep_alive;
    if !http10 && status == StatusCode::OK {
        out.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
    } else {
        out.extend_from_slice(if http10 { b"HTTP/1.0 " } else { b"HTTP/1.1 " });
        out.extend_from_slice(status.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(status.canonical_reason().unwrap_or("<none>").as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let body_allowed = can_have_body(head_request, status);
    let mut framing = None;
    let mut content_length = None;
    let mut te_chunked_last = None;
    let mut wrote_date = false;
    let mut wrote_close = false;
    // Each field line as the backend sent it (relayed fields), then as it is in the map (a
    // name given several values is sent as several lines, which RFC 9110 §5.3 makes equal to
    // one comma-joined line).
    let mut present = 0;
    let relayed = fields.into_iter().flat_map(|f| f.relayed.iter());
    for (name, value) in relayed.chain(parts.headers.iter().map(|(n, v)| (n, v.as_bytes()))) {
        if fields.is_some_and(|f| !f.policy.keeps(name, &mut present)) {
            continue;
        }
        if *name == header::CONTENT_LENGTH {
            if te_chunked_last.is_some() {
                return Err(());
            }
            if let Some(first) = content_length {
                // Repeated copies are not sent again; they must agree where they decide.
                if length == Some(Length::Unknown) && parse_content_length(value) != Some(first) {
                    return Err(());
                }
                continue;
            }
            let declared = match length {
                Some(Length::Known(n)) => n,
                Some(Length::Unknown) => parse_content_length(value).ok_or(())?,
                // An empty body: the field stands only in the answer to a HEAD request.
                None if head_request => 0,
                None => continue,
            };
            content_length = Some(declared);
            framing = Some(Framing::Length(declared));
        } else if *name == header::TRANSFER_ENCODING {
            if http10 || !body_allowed {
                continue;
            }
            if content_length.is_some() {
                return Err(());
            }
            te_chunked_last = Some(has_last_token(value, b"chunked"));
            framing = Some(Framing::Chunked);
        } else if *name == header::CONNECTION {
            if has_token(value, b"close") {
                last = true;
                wrote_close = true;
            }
        } else if *name == header::TRAILER {
            // No trailers are sent (as hyper, without the client's `TE: trailers`).
            continue;
        } else if *name == header::DATE {
            wrote_date = true;
        }
        write_field(out, name, value);
    }
    if te_chunked_last == Some(false) {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    if !keep_alive && !wrote_close && !http10 {
        out.extend_from_slice(b"connection: close\r\n");
    }
    let mut framing = match framing {
        Some(f) => f,
        None => match length {
            Some(Length::Unknown) if http10 || !body_allowed => Framing::Close,
            Some(Length::Unknown) => {
                out.extend_from_slice(b"transfer-encoding: chunked\r\n");
                Framing::Chunked
            }
            None | Some(Length::Known(0)) => {
                if can_have_content_length(status) && !head_request {
                    out.extend_from_slice(b"content-length: 0\r\n");
                }
                Framing::Length(0)
            }
            Some(Length::Known(n)) => {
                if can_have_content_length(status) {
                    out.extend_from_slice(b"content-length: ");
                    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
                    out.extend_from_slice(b"\r\n");
                    Framing::Length(n)
                } else {
                    Framing::Length(0)
                }
            }
        },
    };
    if !body_allowed {
        framing = Framing::Length(0);
    }
    if framing == Framing::Close {
        last = true;
    }
    if let Some(f) = fields {
        f.policy.write_lines(present, &f.request_id, out);
    }
    if !wrote_date {
        out.extend_from_slice(b"date: ");
        date::extend(out);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok((framing, last))
}

fn write_field(out: &mut Vec<u8>, name: &HeaderName, value: &[u8]) {
    out.extend_from_slice(name.as_str().as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

fn parse_content_length(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// Sends the response body after the head in `out`. `Err` means the connection must close:
/// the client went away, a write failed, or the body failed or did not match its framing.
async fn write_body<I>(
    io: &mut I,
    buf: &mut BytesMut,
    out: &mut Vec<u8>,
    mut body: Body,
    framing: Framing,
    max_buf: usize,
) -> Result<(), ()>
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    enum Step {
        Frame(Option<Result<Frame<Bytes>, crate::body::BoxError>>),
        Flush,
        Gone,
    }
    let mut remaining = match framing {
        Framing::Length(n) => n,
        _ => u64::MAX,
    };
    if framing == Framing::Length(0) {
        // Nothing to send (HEAD, 204, 304, or an empty body); the body is dropped unread.
        return flush(io, out).await;
    }
    loop {
        let step = poll_fn(|cx| match Pin::new(&mut body).poll_frame(cx) {
            Poll::Ready(f) => Poll::Ready(Step::Frame(f)),
            // Waiting for more of the body: what is gathered goes out first.
            Poll::Pending if !out.is_empty() => Poll::Ready(Step::Flush),
            Poll::Pending => watch_for_close(io, buf, max_buf, cx).map(|()| Step::Gone),
        })
        .await;
        let data = match step {
            Step::Flush => {
                flush(io, out).await?;
                continue;
            }
            Step::Gone => return Err(()),
            Step::Frame(None) => break,
            Step::Frame(Some(Err(e))) => {
                tracing::debug!(error = %e, "response body failed; closing the connection");
                let _ = flush(io, out).await;
                return Err(());
            }
            Step::Frame(Some(Ok(frame))) => match frame.into_data() {
                Ok(d) if !d.is_empty() => d,
                // Trailers are not sent, as hyper without `TE: trailers`.
                _ => continue,
            },
        };
        let len = data.len() as u64;
        if framing == Framing::Chunked {
            push_chunk_size(out, len);
        } else if len > remaining {
            tracing::debug!("response body longer than its Content-Length; closing the connection");
            let _ = flush(io, out).await;
            return Err(());
        }
        remaining = remaining.saturating_sub(len);
        if out.len() + data.len() <= COALESCE {
            out.extend_from_slice(&data);
        } else {
            flush(io, out).await?;
            io.write_all(&data).await.map_err(drop)?;
        }
        if framing == Framing::Chunked {
            out.extend_from_slice(b"\r\n");
        }
    }
    match framing {
        Framing::Chunked => out.extend_from_slice(b"0\r\n\r\n"),
        Framing::Length(_) if remaining > 0 => {
            tracing::debug!(
                "response body shorter than its Content-Length; closing the connection"
            );
            let _ = flush(io, out).await;
            return Err(());
        }
        _ => {}
    }
    flush(io, out).await
}

/// A chunk-size line: the size in hex, then CRLF.
fn push_chunk_size(out: &mut Vec<u8>, len: u64) {
    let digits = (64 - len.leading_zeros()).div_ceil(4).max(1);
    for i in (0..digits).rev() {
        out.push(b"0123456789abcdef"[((len >> (i * 4)) & 0xf) as usize]);
    }
    out.extend_from_slice(b"\r\n");
}

async fn flush<I: AsyncWrite + Unpin>(io: &mut I, out: &mut Vec<u8>) -> Result<(), ()> {
    if !out.is_empty() {
        io.write_all(out).await.map_err(drop)?;
        out.clear();
    }
    io.flush().await.map_err(drop)
}

/// A connection handed to hyper: the bytes already read come first.
pub(super) struct Rewind<I> {
    pre: Bytes,
    io: I,
}

impl<I: AsyncRead + Unpin> AsyncRead for Rewind<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.pre.is_empty() {
            let n = self.pre.len().min(buf.remaining());
            buf.put_slice(&self.pre[..n]);
            self.pre.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Rewind<I> {
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
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The `Date` field's value, formatted once per second per thread (as hyper does).
mod date {
    use std::cell::RefCell;
    use std::time::{SystemTime, UNIX_EPOCH};

    thread_local! {
        static CACHE: RefCell<(u64, [u8; 29])> = const { RefCell::new((0, [0; 29])) };
    }

    pub fn extend(out: &mut Vec<u8>) {
        let now = SystemTime::now();
        let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        CACHE.with(|c| {
            let mut c = c.borrow_mut();
            if c.0 != secs {
                let text = httpdate::fmt_http_date(now);
                if text.len() == 29 {
                    c.1.copy_from_slice(text.as_bytes());
                    c.0 = secs;
                } else {
                    out.extend_from_slice(text.as_bytes());
                    return;
                }
            }
            out.extend_from_slice(&c.1);
        });
    }
}

/// Compares this reader with hyper's HTTP/1 server on the same bytes: for the unit tests and
/// the `h1_request_head` fuzz target.
#[doc(hidden)]
pub mod differential {
    use std::convert::Infallible;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use bytes::{Bytes, BytesMut};
    use http::{HeaderMap, Method, Request, Version};
    use http_body_util::BodyExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::{ClientBody, FieldNames, Head, has_token, read_head};

    /// The parts of a request both readers must agree on.
    #[derive(Debug, PartialEq)]
    pub struct Seen {
        pub method: Method,
        pub uri: http::Uri,
        pub version: Version,
        pub headers: Vec<(String, Vec<u8>)>,
        /// Whether the connection closes after the answer.
        pub close: bool,
        pub body: Vec<u8>,
    }

    fn fields(h: &HeaderMap) -> Vec<(String, Vec<u8>)> {
        h.iter().map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec())).collect()
    }

    /// What hyper's HTTP/1 server (as the gateway configures it) makes of `raw`: the first
    /// request it hands over, with its whole body, and whether its answer closes the
    /// connection.
    pub async fn hyper_reads(raw: &[u8]) -> Option<Seen> {
        let (mut client, server) = tokio::io::duplex(256 * 1024);
        let seen = Arc::new(Mutex::new(None));
        let slot = seen.clone();
        let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
            let record = slot.clone();
            async move {
                let (head, body) = req.into_parts();
                // A body that does not arrive whole leaves nothing recorded.
                if let Ok(body) = body.collect().await {
                    let mut slot = record.lock().unwrap();
                    if slot.is_none() {
                        *slot = Some((
                            head.method,
                            head.uri,
                            head.version,
                            fields(&head.headers),
                            body.to_bytes().to_vec(),
                        ));
                    }
                }
                Ok::<_, Infallible>(http::Response::new(http_body_util::Empty::<Bytes>::new()))
            }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .serve_connection(hyper_util::rt::TokioIo::new(server), svc);
        let task = tokio::spawn(conn);
        client.write_all(raw).await.unwrap();
        // The write side stays open: hyper takes a client's half-close as the client leaving,
        // and answers nothing.
        let mut answer = Vec::new();
        let read_head = async {
            let mut chunk = [0u8; 4096];
            while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
                match client.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => answer.extend_from_slice(&chunk[..n]),
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), read_head).await;
        task.abort();
        let (method, uri, version, headers, body) = seen.lock().unwrap().take()?;
        let first = answer
            .split(|&b| b == b'\n')
            .take_while(|l| *l != b"\r")
            .map(|l| l.to_ascii_lowercase())
            .collect::<Vec<_>>();
        let close = first
            .iter()
            .any(|l| l.starts_with(b"connection:") && has_token(l[11..].trim_ascii(), b"close"));
        Some(Seen { method, uri, version, headers, close, body })
    }

    /// What this reader makes of `raw`. It reads `raw` three times: with no remembered field
    /// names, after a head whose names it remembers, and after `raw` itself (every name
    /// remembered); it panics unless all three agree.
    pub fn ours(raw: &[u8]) -> Option<Seen> {
        let fresh = ours_with(raw, &mut FieldNames::default());
        let mut names = FieldNames::default();
        let _ = ours_with(b"GET / HTTP/1.1\r\nHost: a\r\nuser-agent: b\r\nACCEPT: */*\r\nSec-Fetch-Site: x\r\nX-Custom: 1\r\n\r\n", &mut names);
        assert_eq!(
            ours_with(raw, &mut names),
            fresh,
            "names remembered from another head changed the reading of {raw:?}"
        );
        let _ = ours_with(raw, &mut names);
        assert_eq!(
            ours_with(raw, &mut names),
            fresh,
            "its own remembered names changed the reading of {raw:?}"
        );
        fresh
    }

    fn ours_with(raw: &[u8], names: &mut FieldNames) -> Option<Seen> {
        let mut buf = BytesMut::from(raw);
        match read_head(&mut buf, 100, names) {
            Head::Request { req, close } => Some(Seen {
                method: req.method().clone(),
                uri: req.uri().clone(),
                version: req.version(),
                headers: fields(req.headers()),
                close,
                body: match req.body() {
                    ClientBody::Read(Some(b)) => b.to_vec(),
                    _ => Vec::new(),
                },
            }),
            _ => None,
        }
    }

    /// `Err` (with both readings) when this reader keeps `raw`'s first request and hyper
    /// reads it otherwise (its body included).
    pub async fn check(raw: &[u8]) -> Result<(), String> {
        let Some(mine) = ours(raw) else { return Ok(()) };
        let theirs = hyper_reads(raw).await;
        if Some(&mine) == theirs.as_ref() {
            Ok(())
        } else {
            Err(format!(
                "{:?}\nthis reader: {mine:?}\nhyper: {theirs:?}",
                String::from_utf8_lossy(raw)
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::differential::{check, ours};
    use super::*;
    use crate::proxy::RelayedFields;
    use crate::response_fields::{Defaults, FieldPolicy};

    async fn agree(raw: &[u8]) {
        if let Err(e) = check(raw).await {
            panic!("{e}");
        }
    }

    const HEADS: &[&[u8]] = &[
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        b"get /x HTTP/1.1\r\nHost: a\r\n\r\n",
        b"PURGE /x HTTP/1.1\r\n\r\n",
        b"GET http://example.com/x?y=1 HTTP/1.1\r\nHost: example.com\r\n\r\n",
        b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET /a%2Fb?x=%00&y=%zz HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET //x/../y HTTP/1.1\r\n\r\n",
        b"GET ../x HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nX-Empty:\r\nX-Tab: a\tb\r\nX-Trail: a  \r\nX-Utf8: caf\xc3\xa9\r\n\r\n",
        b"GET / HTTP/1.1\r\nConnection: keep-alive, close\r\n\r\n",
        b"GET / HTTP/1.1\r\nConnection: Close\r\n\r\n",
        b"GET / HTTP/1.1\r\nConnection: closed\r\n\r\n",
        b"GET / HTTP/1.1\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n",
        b"GET / HTTP/1.1\r\nConnection: close\r\nConnection: keep-alive\r\n\r\n",
        // Not text: hyper reads no token in it (found by the mutation test below).
        b"GET / HTTP/1.1\r\nConnection:\xe3 keep-alive, close\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\nCookie: x=1\r\nCookie: y=2\r\n\r\n",
        b"GET / HTTP/1.1\nHost: a\n\n",
        b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
        b"GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n",
        b"GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n",
        b"GET  / HTTP/1.1\r\n\r\n",
        b"GET /\x7f HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.2\r\n\r\n",
        b"GET / HTTP/2.0\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}",
        b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /next HTTP/1.1\r\n\r\n",
        b"PUT / HTTP/1.1\r\ncontent-length: 0\r\nConnection: close\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 03\r\n\r\nabc",
        b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
        b"POST / HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\nabc",
        b"POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\nabc",
        b"POST / HTTP/1.1\r\nContent-Length: 3 \r\n\r\nabc",
        b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabc",
        b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
        b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
        b"GET / HTTP/1.1\r\nTE: trailers\r\n\r\n",
        b"GET / HTTP/1.0\r\n\r\n",
        b"CONNECT a:443 HTTP/1.1\r\n\r\n",
        b"GET /x HTTP/1.1\r\nHost: a\r\n\r\nGET /y HTTP/1.1\r\n\r\n",
    ];

    #[tokio::test]
    async fn hyper_reads_every_head_this_reader_keeps_the_same_way() {
        let (mut kept, mut with_body) = (0, 0);
        for raw in HEADS {
            if let Some(seen) = ours(raw) {
                kept += 1;
                with_body += usize::from(!seen.body.is_empty());
            }
            agree(raw).await;
        }
        // The corpus is not vacuous: most plain heads are kept, and some bodies.
        assert!(kept >= 18 && with_body >= 3, "{kept} {with_body}");
    }

    #[test]
    fn framing_upgrades_and_other_versions_are_left_to_hyper() {
        for raw in [
            &b"POST / HTTP/1.1\r\nContent-Length: 16385\r\n\r\n"[..],
            // A body not all here yet: not waited for.
            b"POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nabc",
            b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
            b"POST / HTTP/1.1\r\nContent-Length: 3,3\r\n\r\nabc",
            b"POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\nabc",
            b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 00000000003\r\n\r\nabc",
            b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            b"POST / HTTP/1.1\r\nTRANSFER-ENCODING: identity\r\n\r\n",
            b"GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
            b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
            b"GET / HTTP/1.1\r\nTE: trailers\r\n\r\n",
            b"GET / HTTP/1.0\r\n\r\n",
            b"CONNECT a:443 HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nX: \x01\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        ] {
            let mut buf = BytesMut::from(raw);
            assert!(
                matches!(read_head(&mut buf, 100, &mut FieldNames::default()), Head::Hyper),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
            assert_eq!(&buf[..], raw, "a head left to hyper is left in the buffer whole");
        }
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_URI_LEN));
        assert!(matches!(
            read_head(&mut BytesMut::from(long.as_bytes()), 100, &mut FieldNames::default()),
            Head::Hyper
        ));
        let many = format!("GET / HTTP/1.1\r\n{}\r\n", "X: 1\r\n".repeat(101));
        assert!(matches!(
            read_head(&mut BytesMut::from(many.as_bytes()), 100, &mut FieldNames::default()),
            Head::Hyper
        ));
        assert!(matches!(
            read_head(&mut BytesMut::from(many.as_bytes()), 200, &mut FieldNames::default()),
            Head::Request { .. }
        ));
        assert!(matches!(
            read_head(
                &mut BytesMut::from(&b"GET / HTTP/1.1\r\nHost: a\r\n"[..]),
                100,
                &mut FieldNames::default()
            ),
            Head::Partial
        ));
    }

    #[test]
    fn remembered_field_names_are_used_only_where_the_same_name_is_sent_again() {
        let mut names = FieldNames::default();
        let read = |names: &mut FieldNames, raw: &str| match read_head(
            &mut BytesMut::from(raw),
            100,
            names,
        ) {
            Head::Request { req, .. } => {
                Some(req.headers().keys().map(|n| n.as_str().to_owned()).collect::<Vec<_>>())
            }
            _ => None,
        };
        let first = "GET / HTTP/1.1\r\nHost: a\r\nSec-Fetch-Site: x\r\nX-Long-Name: 1\r\n\r\n";
        assert_eq!(read(&mut names, first).unwrap(), ["host", "sec-fetch-site", "x-long-name"]);
        // Same names in another case: parsed again, to the same names.
        let cased = "GET / HTTP/1.1\r\nHOST: a\r\nsec-fetch-site: x\r\nx-long-NAME: 1\r\n\r\n";
        assert_eq!(read(&mut names, cased).unwrap(), ["host", "sec-fetch-site", "x-long-name"]);
        // A framing field where a remembered name was still sends the request to hyper.
        assert_eq!(
            read(&mut names, "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\n"),
            None
        );
        assert_eq!(
            read(&mut names, "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"),
            None
        );
        // A prefix or an extension of a remembered name is another name.
        let near = "GET / HTTP/1.1\r\nHost: a\r\nSec-Fetch-Sit: x\r\nX-Long-Names: 1\r\n\r\n";
        assert_eq!(read(&mut names, near).unwrap(), ["host", "sec-fetch-sit", "x-long-names"]);
        assert_eq!(read(&mut names, first).unwrap(), ["host", "sec-fetch-site", "x-long-name"]);
        // The cache never outgrows the fields of the last head that reached each position.
        assert_eq!(names.0.len(), 3);
        assert_eq!(
            read(&mut names, "GET / HTTP/1.1\r\nUser-Agent: u\r\n\r\n").unwrap(),
            ["user-agent"]
        );
        assert_eq!(names.0.len(), 1);
        // A name too long to remember ends what is remembered: later positions would not line up.
        let long = format!(
            "GET / HTTP/1.1\r\nHost: a\r\nX-{}: 1\r\nAccept: b\r\n\r\n",
            "n".repeat(REMEMBERED_NAME_LEN)
        );
        assert_eq!(read(&mut names, &long).unwrap().len(), 3);
        assert_eq!(names.0.len(), 1);
        assert_eq!(read(&mut names, &long).unwrap().len(), 3);
    }

    #[test]
    fn a_kept_head_is_taken_out_of_the_buffer_and_shares_nothing_with_it() {
        let mut buf = BytesMut::with_capacity(FIRST_READ);
        buf.extend_from_slice(b"GET /a?b HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\n");
        let region = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.capacity();
        let Head::Request { req, close } = read_head(&mut buf, 100, &mut FieldNames::default())
        else {
            panic!("kept")
        };
        assert!(!close);
        assert_eq!(&buf[..], b"GET /next HTTP/1.1\r\n");
        assert_eq!(req.uri(), "/a?b");
        assert_eq!(req.headers()["host"], "x");
        assert!(!region.contains(&(req.headers()["host"].as_bytes().as_ptr() as usize)));
        assert!(!region.contains(&(req.uri().path().as_ptr() as usize)));
        // So the connection's buffer is reused in place for the next read, not reallocated.
        buf.clear();
        assert!(buf.try_reclaim(FIRST_READ));

        // A body is taken out with its head, and copied too.
        buf.extend_from_slice(
            b"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /next HTTP/1.1\r\n",
        );
        let Head::Request { req, .. } = read_head(&mut buf, 100, &mut FieldNames::default()) else {
            panic!("kept")
        };
        assert_eq!(&buf[..], b"GET /next HTTP/1.1\r\n");
        let ClientBody::Read(Some(body)) = req.body() else { panic!("{:?}", req.body()) };
        assert_eq!(&body[..], b"hello");
        assert!(!region.contains(&(body.as_ptr() as usize)));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]
        /// Heads mutated byte by byte: whatever this reader keeps, hyper reads the same way.
        #[test]
        fn mutated_heads_are_kept_only_as_hyper_reads_them(
            pick in 0..HEADS.len(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..3u8), 1..4),
        ) {
            let mut raw = HEADS[pick].to_vec();
            for (at, byte, kind) in edits {
                let i = at.index(raw.len() + 1);
                match kind {
                    0 if i < raw.len() => raw[i] = byte,
                    1 if i < raw.len() => { raw.remove(i); }
                    _ => raw.insert(i.min(raw.len()), byte),
                }
            }
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(agree(&raw));
        }
    }

    fn head(
        status: u16,
        fields: &[(&str, &str)],
        length: Option<Length>,
        head_request: bool,
        keep_alive: bool,
    ) -> Result<(String, Framing, bool), ()> {
        let mut resp = http::Response::builder().status(status);
        for (n, v) in fields {
            resp = resp.header(*n, *v);
        }
        let (parts, ()) = resp.body(()).unwrap().into_parts();
        let mut out = Vec::new();
        let result = encode_head(&parts, None, length, head_request, keep_alive, &mut out);
        // The same fields relayed as a backend sent them, rather than in the map, are written
        // the same way (here under a route's policy, with both).
        let policy = FieldPolicy::new(
            &Defaults { hsts: None, csp: &HeaderValue::from_static("default-src 'self'") },
            None,
            false,
        );
        let rid = HeaderValue::from_static("rid-1");
        let (mut in_map, mut relayed) = (Vec::new(), Vec::new());
        let deferred = DeferredFields {
            policy: &policy,
            request_id: rid.clone(),
            relayed: Default::default(),
        };
        let by_map =
            encode_head(&parts, Some(&deferred), length, head_request, keep_alive, &mut in_map);
        let deferred = DeferredFields {
            policy: &policy,
            request_id: rid,
            relayed: RelayedFields::from_lines(fields),
        };
        let (bare, ()) = http::Response::builder().status(status).body(()).unwrap().into_parts();
        let by_relay =
            encode_head(&bare, Some(&deferred), length, head_request, keep_alive, &mut relayed);
        assert_eq!(by_map, by_relay, "{fields:?}");
        assert_eq!(
            String::from_utf8_lossy(&in_map),
            String::from_utf8_lossy(&relayed),
            "{fields:?}"
        );
        assert_eq!(by_map.is_ok(), result.is_ok(), "{fields:?}");
        let (framing, last) = result?;
        Ok((String::from_utf8(out).unwrap(), framing, last))
    }

    #[test]
    fn response_heads_are_framed_as_hyper_frames_them() {
        // A known length is sent as Content-Length; a Date is added.
        let (h, f, last) =
            head(200, &[("x-a", "1")], Some(Length::Known(12)), false, true).unwrap();
        assert!(h.starts_with("HTTP/1.1 200 OK\r\nx-a: 1\r\ncontent-length: 12\r\ndate: "), "{h}");
        assert!(h.ends_with(" GMT\r\n\r\n"), "{h}");
        assert_eq!((f, last), (Framing::Length(12), false));
        // Unknown length: chunked.
        let (h, f, _) = head(404, &[], Some(Length::Unknown), false, true).unwrap();
        assert!(h.starts_with("HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\n"), "{h}");
        assert_eq!(f, Framing::Chunked);
        // Empty: an explicit zero, except for HEAD, 204 and 304.
        assert!(head(200, &[], None, false, true).unwrap().0.contains("content-length: 0\r\n"));
        for (status, head_request) in [(204, false), (304, false), (200, true)] {
            let (h, f, _) = head(status, &[], None, head_request, true).unwrap();
            assert!(!h.contains("content-length"), "{h}");
            assert_eq!(f, Framing::Length(0));
        }
        // The answer to HEAD keeps the length of what GET would send, and sends no body.
        let (h, f, _) = head(200, &[("content-length", "1234")], None, true, true).unwrap();
        assert!(h.contains("content-length: 1234\r\n"), "{h}");
        assert_eq!(f, Framing::Length(0));
        let (h, f, _) = head(200, &[], Some(Length::Known(99)), true, true).unwrap();
        assert!(h.contains("content-length: 99\r\n"), "{h}");
        assert_eq!(f, Framing::Length(0));
        // A declared length for an unknown-length body frames it; disagreeing copies are refused.
        let (h, f, _) =
            head(200, &[("content-length", "5")], Some(Length::Unknown), false, true).unwrap();
        assert_eq!(h.matches("content-length").count(), 1, "{h}");
        assert_eq!(f, Framing::Length(5));
        assert!(
            head(
                200,
                &[("content-length", "5"), ("content-length", "6")],
                Some(Length::Unknown),
                false,
                true
            )
            .is_err()
        );
        assert!(head(200, &[("content-length", "x")], Some(Length::Unknown), false, true).is_err());
        assert!(
            head(
                200,
                &[("content-length", "5"), ("transfer-encoding", "chunked")],
                Some(Length::Unknown),
                false,
                true
            )
            .is_err()
        );
        // A transfer coding that does not end in chunked gets chunked added.
        let (h, f, _) =
            head(200, &[("transfer-encoding", "gzip")], Some(Length::Unknown), false, true)
                .unwrap();
        assert!(h.contains("transfer-encoding: gzip\r\ntransfer-encoding: chunked\r\n"), "{h}");
        assert_eq!(f, Framing::Chunked);
        // Closing: asked by the request (or a shutdown), or by the response.
        let (h, _, last) = head(200, &[], None, false, false).unwrap();
        assert!(h.contains("connection: close\r\n") && last, "{h}");
        let (h, _, last) = head(200, &[("connection", "close")], None, false, true).unwrap();
        assert_eq!(h.matches("connection").count(), 1, "{h}");
        assert!(last);
        // A Date of the response's own is kept, and not doubled.
        let (h, _, _) =
            head(200, &[("date", "Thu, 01 Jan 1970 00:00:00 GMT")], None, false, true).unwrap();
        assert_eq!(h.matches("date: ").count(), 1, "{h}");
        // 1xx is never answered here.
        assert!(head(101, &[], None, false, true).is_err());
    }

    #[test]
    fn a_head_is_parsed_again_only_once_its_end_may_have_arrived() {
        let head = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        // Arriving a byte at a time: only the last byte can complete it.
        for n in 1..=head.len() {
            assert_eq!(may_end_head(&head[..n], n - 1), n == head.len(), "after {n} bytes");
        }
        assert!(may_end_head(b"GET / HTTP/1.1\n\n", 10));
        assert!(may_end_head(b"GET / HTTP/1.1\n\r\n", 14));
        assert!(!may_end_head(b"GET / HTTP/1.1\r\nX: 1\r\n", 0));
    }

    #[test]
    fn chunk_sizes_are_lowercase_hex() {
        for (n, want) in [
            (0u64, "0\r\n"),
            (1, "1\r\n"),
            (15, "f\r\n"),
            (16, "10\r\n"),
            (0x1234abcd, "1234abcd\r\n"),
            (u64::MAX, "ffffffffffffffff\r\n"),
        ] {
            let mut out = Vec::new();
            push_chunk_size(&mut out, n);
            assert_eq!(String::from_utf8(out).unwrap(), want);
        }
    }
}
