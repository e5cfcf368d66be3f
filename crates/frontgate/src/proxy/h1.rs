//! One HTTP/1.1 connection to the backend, driven in the request's own task.
//!
//! hyper's client runs each connection in a task of its own and hands requests and responses
//! over channels: two task wake-ups and a channel round trip per request, about a third of the
//! gateway's CPU per proxied request in profiles (docs/performance.md). Here the request's
//! task writes the request and reads the response itself, and the response body reads the
//! socket as the server side polls it. WebSocket upgrades still go through hyper
//! ([`super::client`]).
//!
//! What it accepts from a backend is strict, because the response is relayed to clients and
//! its framing is ours to re-state: at most 64 KiB and 128 fields of response head; exactly one
//! framing, or none: one Content-Length field holding one canonical decimal (no list such as
//! `5, 5`, no second field even if equal, no sign, no leading zero), or one Transfer-Encoding
//! field that is exactly `chunked` (in HTTP/1.1, without a Content-Length). Anything else (`gzip`,
//! `gzip, chunked`, `chunked, chunked`, both fields) is a 502 before any byte reaches the client:
//! RFC 9112 §6.3 would read such a body to the end of the connection, or pick one of two
//! lengths, where the backend may have meant another. With neither field, the body runs to the
//! end of the connection, which is then not reused.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode, Version, header};
use http_body::{Body as _, Frame, SizeHint};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::body::{Body, BoxError};

const MAX_HEAD: usize = 64 * 1024;
const MAX_HEADERS: usize = 128;
/// A chunk-size line, with any extensions, at most this long.
const MAX_CHUNK_LINE: usize = 4096;
/// Trailer section of a chunked body (read and dropped), at most this long.
const MAX_TRAILERS: usize = 16 * 1024;
/// A connection's read buffer starts small (API responses fit, and hundreds of idle pooled
/// connections cost little) and grows by this much when a body streams through it.
const FIRST_READ: usize = 4 * 1024;
const READ_CHUNK: usize = 16 * 1024;
/// Request bodies up to this size are sent in the same write as the head.
const COALESCE: usize = 16 * 1024;

/// Why an exchange failed.
#[derive(Debug)]
pub enum H1Error {
    /// The connection closed before any byte of a response arrived, after the request was
    /// written: the backend ended its keep-alive, or took the request and failed. Only an
    /// idempotent request may be sent again (RFC 9110 §9.2.2; [`super::client`]).
    ClosedBeforeResponse,
    /// The first write of the request failed: not a byte of it left, so the backend cannot
    /// have acted on it, and any request may be sent again.
    NotSent(io::Error),
    Io(io::Error),
    /// The backend's response is not acceptable HTTP/1.1.
    Malformed(&'static str),
    /// Reading the client's request body failed (also our own body limit).
    RequestBody(BoxError),
    /// No complete response head by the deadline.
    Timeout,
}

impl std::fmt::Display for H1Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            H1Error::ClosedBeforeResponse => f.write_str("connection closed before a response"),
            H1Error::NotSent(e) => write!(f, "request not sent: {e}"),
            H1Error::Timeout => f.write_str("no response head by the deadline"),
            H1Error::Io(e) => write!(f, "{e}"),
            H1Error::Malformed(why) => write!(f, "malformed response: {why}"),
            H1Error::RequestBody(e) => write!(f, "request body: {e}"),
        }
    }
}

/// Response fields the caller wants left out (say, what fingerprints the backend).
pub type HeaderFilter = fn(&HeaderName) -> bool;

/// What goes upstream besides the client's request: fields the gateway adds after the
/// client's own (whose `Host` is replaced by `host`), and response fields to leave out.
pub struct Outbound<'a> {
    pub host: &'a HeaderValue,
    pub added: &'a [(HeaderName, HeaderValue)],
    pub hide: HeaderFilter,
    /// The request's id, for the log line of a response body the backend breaks off (the
    /// access log line is written with the response head, before the body).
    pub request_id: &'a HeaderValue,
}

/// Where a connection goes once its response body is complete.
pub trait Recycle: Send + Sync + 'static {
    fn recycle(&self, conn: Conn);
}

/// An open connection to the backend, with what it has read ahead.
pub struct Conn {
    io: TcpStream,
    buf: BytesMut,
    /// The request head being written; kept for the next request.
    out: Vec<u8>,
    /// The field names of the last response, in order, as sent and as parsed: a backend
    /// sends the same ones each time, and a name found here is not parsed (nor allocated,
    /// nor classified) again.
    names: FieldNames,
    /// The response-head deadline, kept for the connection's next exchange: moving a
    /// registered timer's deadline later is one atomic update, where a new timer per request
    /// is a timer-wheel insertion and removal under the driver's lock.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Conn {
    pub fn new(io: TcpStream) -> Conn {
        Conn {
            io,
            buf: BytesMut::with_capacity(FIRST_READ),
            out: Vec::new(),
            names: FieldNames::default(),
            timer: None,
        }
    }

    /// Whether an idle connection can still carry a request: not closed by the backend and
    /// with nothing unsolicited to read. Never blocks.
    pub fn is_reusable(&mut self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let mut probe = [0u8; 1];
        matches!(self.io.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Sends the request and reads the response head, which must be complete by `deadline`
    /// ([`H1Error::Timeout`] otherwise). The response comes with an empty header map: its
    /// fields are in the [`RelayedFields`] beside it. The response body reads the rest from
    /// this connection and hands it to `pool` once complete (if the connection may be reused).
    pub async fn exchange(
        mut self,
        parts: &http::request::Parts,
        outbound: &Outbound<'_>,
        body: Body,
        pool: Arc<dyn Recycle>,
        deadline: tokio::time::Instant,
    ) -> Result<(Response<Body>, RelayedFields), H1Error> {
        let mut timer = match self.timer.take() {
            Some(mut t) => {
                t.as_mut().reset(deadline);
                t
            }
            None => Box::pin(tokio::time::sleep_until(deadline)),
        };
        let parsed = {
            let mut head = std::pin::pin!(self.send_and_read_head(parts, outbound, body));
            std::future::poll_fn(|cx| {
                if let Poll::Ready(r) = head.as_mut().poll(cx) {
                    return Poll::Ready(r);
                }
                timer.as_mut().poll(cx).map(|()| Err(H1Error::Timeout))
            })
            .await?
        };
        self.timer = Some(timer);
        let framing = framing(&parsed, parts.method == Method::HEAD)?;
        let mut resp = Response::new(Body::Empty);
        *resp.status_mut() = parsed.status;
        *resp.version_mut() = Version::HTTP_11;
        *resp.body_mut() = self.into_body(framing, parsed.keep_alive, pool, outbound.request_id);
        Ok((resp, parsed.fields))
    }

    /// Writes the request and reads up to the final response head (interim 1xx responses,
    /// such as 100 Continue and 103 Early Hints, are read and dropped).
    async fn send_and_read_head(
        &mut self,
        parts: &http::request::Parts,
        outbound: &Outbound<'_>,
        body: Body,
    ) -> Result<Parsed, H1Error> {
        self.send(parts, outbound, body).await?;
        let mut received_any = false;
        loop {
            let parsed = loop {
                if let Some(parsed) = parse_head(&mut self.buf, &mut self.names, outbound.hide)? {
                    break parsed;
                }
                if self.buf.len() >= MAX_HEAD {
                    return Err(H1Error::Malformed("response head over 64 KiB"));
                }
                let n = read_some(&mut self.io, &mut self.buf).await.map_err(H1Error::Io)?;
                if n == 0 {
                    return Err(if received_any {
                        H1Error::Malformed("connection closed inside the response head")
                    } else {
                        H1Error::ClosedBeforeResponse
                    });
                }
                received_any = true;
            };
            if parsed.status.is_informational() {
                if parsed.status == StatusCode::SWITCHING_PROTOCOLS {
                    return Err(H1Error::Malformed(
                        "101 Switching Protocols to a request that did not ask to upgrade",
                    ));
                }
                continue;
            }
            return Ok(parsed);
        }
    }

    async fn send(
        &mut self,
        parts: &http::request::Parts,
        outbound: &Outbound<'_>,
        body: Body,
    ) -> Result<(), H1Error> {
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        out.extend_from_slice(parts.method.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(parts.uri.path_and_query().map_or("/", |p| p.as_str()).as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        out.extend_from_slice(b"host: ");
        out.extend_from_slice(outbound.host.as_bytes());
        out.extend_from_slice(b"\r\n");
        let fields = parts.headers.iter().chain(outbound.added.iter().map(|(n, v)| (n, v)));
        for (name, value) in fields {
            // Framing is ours to decide (below), and the Host is the backend's.
            if name == header::CONTENT_LENGTH
                || name == header::TRANSFER_ENCODING
                || name == header::HOST
            {
                continue;
            }
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        // A declared length is kept for a streamed body; otherwise the body's own size, or
        // chunked.
        let mut chunked = false;
        match &body {
            Body::Empty => {
                if matches!(parts.method, Method::POST | Method::PUT | Method::PATCH) {
                    out.extend_from_slice(b"content-length: 0\r\n");
                }
            }
            Body::Full(b) => {
                out.extend_from_slice(b"content-length: ");
                out.extend_from_slice(
                    itoa::Buffer::new().format(b.as_ref().map_or(0, Bytes::len)).as_bytes(),
                );
                out.extend_from_slice(b"\r\n");
            }
            _ => match parts.headers.get(header::CONTENT_LENGTH) {
                Some(len) => {
                    out.extend_from_slice(b"content-length: ");
                    out.extend_from_slice(len.as_bytes());
                    out.extend_from_slice(b"\r\n");
                }
                None => {
                    out.extend_from_slice(b"transfer-encoding: chunked\r\n");
                    chunked = true;
                }
            },
        }
        out.extend_from_slice(b"\r\n");
        let sent = self.write_request(&mut out, body, chunked).await;
        // A head buffer grown by a coalesced body is not kept.
        if out.capacity() <= 2 * FIRST_READ {
            self.out = out;
        }
        sent
    }

    /// Writes the request head in `out`, then the body (in the same write when small).
    async fn write_request(
        &mut self,
        out: &mut Vec<u8>,
        body: Body,
        chunked: bool,
    ) -> Result<(), H1Error> {
        match body {
            Body::Empty | Body::Full(None) => self.write_first(out).await,
            Body::Full(Some(b)) if b.len() <= COALESCE => {
                out.extend_from_slice(&b);
                self.write_first(out).await
            }
            Body::Full(Some(b)) => {
                self.write_first(out).await?;
                self.io.write_all(&b).await.map_err(H1Error::Io)
            }
            mut stream => {
                self.write_first(out).await?;
                while let Some(frame) =
                    std::future::poll_fn(|cx| Pin::new(&mut stream).poll_frame(cx)).await
                {
                    let frame = frame.map_err(H1Error::RequestBody)?;
                    let Ok(data) = frame.into_data() else { continue };
                    if data.is_empty() {
                        continue;
                    }
                    if chunked {
                        let size = format!("{:x}\r\n", data.len());
                        self.io.write_all(size.as_bytes()).await.map_err(H1Error::Io)?;
                        self.io.write_all(&data).await.map_err(H1Error::Io)?;
                        self.io.write_all(b"\r\n").await.map_err(H1Error::Io)?;
                    } else {
                        self.io.write_all(&data).await.map_err(H1Error::Io)?;
                    }
                }
                if chunked {
                    self.io.write_all(b"0\r\n\r\n").await.map_err(H1Error::Io)?;
                }
                Ok(())
            }
        }
    }

    /// Writes the start of a request: a failure before its first byte left is
    /// [`H1Error::NotSent`] (a failed write wrote nothing), any later one [`H1Error::Io`].
    async fn write_first(&mut self, bytes: &[u8]) -> Result<(), H1Error> {
        let n = self.io.write(bytes).await.map_err(H1Error::NotSent)?;
        if n == 0 {
            return Err(H1Error::NotSent(io::ErrorKind::WriteZero.into()));
        }
        self.io.write_all(&bytes[n..]).await.map_err(H1Error::Io)
    }

    fn into_body(
        mut self,
        framing: Framing,
        keep_alive: bool,
        pool: Arc<dyn Recycle>,
        request_id: &HeaderValue,
    ) -> Body {
        match framing {
            Framing::Empty => {
                if keep_alive {
                    pool.recycle(self);
                }
                Body::Empty
            }
            // The common case for API responses: the whole body came with the head.
            Framing::Length(n) if self.buf.len() as u64 >= n => {
                let body = take_front(&mut self.buf, n as usize);
                if keep_alive {
                    pool.recycle(self);
                }
                Body::full(body)
            }
            // The id's bytes are shared by now (a clone of it went upstream with the request):
            // cloning it again counts a reference, it does not allocate.
            framing => Body::Upstream(Box::pin(UpstreamBody {
                conn: Some(self),
                state: State::from(framing),
                keep_alive,
                pool,
                request_id: request_id.clone(),
            })),
        }
    }
}

/// Takes the first `n` bytes of `buf`. Small ones are copied, so that `buf` is not shared
/// with a response still being relayed and its space can be reused for the next response
/// (sharing it would mean a new buffer for each exchange); large ones are split off.
fn take_front(buf: &mut BytesMut, n: usize) -> Bytes {
    if n <= FIRST_READ {
        let copy = Bytes::copy_from_slice(&buf[..n]);
        buf.advance(n);
        copy
    } else {
        buf.split_to(n).freeze()
    }
}

/// Reads what the socket has into the spare capacity of `buf` (a response head: small reads,
/// so the buffer stays small and is reused in place).
async fn read_some(io: &mut TcpStream, buf: &mut BytesMut) -> io::Result<usize> {
    std::future::poll_fn(|cx| poll_read_some(io, buf, FIRST_READ, cx)).await
}

/// Reads into `buf`, making room for at least `chunk` bytes when little is left.
fn poll_read_some(
    io: &mut TcpStream,
    buf: &mut BytesMut,
    chunk: usize,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    if buf.capacity() - buf.len() < 1024 {
        buf.reserve(chunk);
    }
    tokio_util::io::poll_read_buf(Pin::new(io), cx, buf)
}

struct Parsed {
    status: StatusCode,
    /// The end-to-end fields, to relay: without hop-by-hop fields (RFC 9110 §7.6.1), which
    /// concern this connection only, and without those `hide` names.
    fields: RelayedFields,
    keep_alive: bool,
    http10: bool,
    /// Whether there is Transfer-Encoding, and if so whether it is one field of exactly
    /// `chunked`.
    chunked: Option<bool>,
    /// The Content-Length, if any; an error when not canonical or given twice.
    content_length: Result<Option<u64>, &'static str>,
}

/// A backend response's end-to-end fields, as the backend sent them: its head's bytes and
/// where each field's value is in them. The gateway's own HTTP/1.1 server writes these lines
/// straight from the head; building a header map for them (a hashed insert and a
/// reference-counted value per field, all dropped again once written) cost about a tenth of
/// the gateway's instructions per proxied request (docs/performance.md). Whatever needs to
/// read or edit the response's fields as a map (a check, the HTTP/2 and hyper servers) moves
/// them into its header map first, with [`RelayedFields::move_into`].
#[derive(Default)]
pub struct RelayedFields {
    head: Bytes,
    /// Each field's name, and where its value starts and ends in `head`.
    fields: Vec<(HeaderName, u32, u32)>,
}

impl RelayedFields {
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Each field in the order the backend sent it, a name given several times once for each.
    pub fn iter(&self) -> impl Iterator<Item = (&HeaderName, &[u8])> {
        self.fields
            .iter()
            .map(|(name, start, end)| (name, &self.head[*start as usize..*end as usize]))
    }

    /// The first value of `name`.
    pub fn get(&self, name: &HeaderName) -> Option<&[u8]> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// Fields as a backend would send them, `name: value` each (names in lowercase).
    #[cfg(test)]
    pub(crate) fn from_lines(lines: &[(&str, &str)]) -> RelayedFields {
        let mut head = Vec::new();
        let mut fields = Vec::new();
        for (name, value) in lines {
            // move_into relies on every value being one HeaderValue accepts.
            assert!(HeaderValue::from_str(value).is_ok(), "{value:?} is not a field value");
            head.extend_from_slice(format!("{name}: ").as_bytes());
            let start = head.len() as u32;
            head.extend_from_slice(value.as_bytes());
            fields.push((
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                start,
                head.len() as u32,
            ));
            head.extend_from_slice(b"\r\n");
        }
        RelayedFields { head: head.into(), fields }
    }

    /// Moves the fields into `headers`, ahead of any already there, leaving `self` empty.
    pub fn move_into(&mut self, headers: &mut HeaderMap) {
        if self.fields.is_empty() {
            return;
        }
        let head = std::mem::take(&mut self.head);
        let mut map =
            HeaderMap::with_capacity(self.fields.len() + headers.len() + ADDED_RESPONSE_FIELDS);
        #[allow(unsafe_code)]
        for (name, start, end) in self.fields.drain(..) {
            // SAFETY: the spans are of field values that parse_head took from httparse, which
            // accepts in a field value exactly the bytes HeaderValue does (see parse_head).
            map.append(name, unsafe {
                HeaderValue::from_maybe_shared_unchecked(head.slice(start as usize..end as usize))
            });
        }
        for (name, value) in headers.iter() {
            map.append(name.clone(), value.clone());
        }
        *headers = map;
    }
}

/// Room in a header map made from a response's fields for what the gateway adds (security
/// headers, request id, CORS), so those inserts do not grow it.
const ADDED_RESPONSE_FIELDS: usize = 12;

/// Header maps kept for reuse, per thread, with the most fields a kept one may hold.
const SPARE_MAPS: usize = 32;
const SPARE_MAP_CAPACITY: usize = 64;

thread_local! {
    static SPARE: std::cell::RefCell<Vec<HeaderMap>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Takes back a header map that is done with (a request's once it is sent upstream, a
/// response's once its head is written), emptied, so the next request read on this thread
/// fills it instead of allocating one (two allocations and two frees per request otherwise).
/// A map grown past a usual request's size is dropped.
pub fn recycle_headers(mut map: HeaderMap) {
    if map.capacity() == 0 || map.capacity() > SPARE_MAP_CAPACITY {
        return;
    }
    map.clear();
    SPARE.with(|spare| {
        let mut spare = spare.borrow_mut();
        if spare.len() < SPARE_MAPS {
            spare.push(map);
        }
    });
}

/// An empty header map with room for `fields`: a recycled one when there is one.
pub fn header_map(fields: usize) -> HeaderMap {
    match SPARE.with(|spare| spare.borrow_mut().pop()) {
        Some(mut map) => {
            map.reserve(fields);
            map
        }
        None => HeaderMap::with_capacity(fields),
    }
}

/// What a response field is to the relay, decided once per name.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum FieldKind {
    /// End-to-end: relayed.
    Relayed,
    ContentLength,
    TransferEncoding,
    Connection,
    /// Another hop-by-hop field (RFC 9110 §7.6.1): dropped.
    HopByHop,
    /// Named by the caller's filter: dropped.
    Hidden,
}

impl FieldKind {
    fn of(name: &HeaderName, hide: HeaderFilter) -> FieldKind {
        if *name == header::CONTENT_LENGTH {
            FieldKind::ContentLength
        } else if *name == header::TRANSFER_ENCODING {
            FieldKind::TransferEncoding
        } else if *name == header::CONNECTION {
            FieldKind::Connection
        } else if *name == header::TE
            || *name == header::TRAILER
            || *name == header::UPGRADE
            || matches!(name.as_str(), "keep-alive" | "proxy-connection")
        {
            FieldKind::HopByHop
        } else if hide(name) {
            FieldKind::Hidden
        } else {
            FieldKind::Relayed
        }
    }
}

/// The field names of a connection's last response, in order: as sent, as parsed, and what
/// each is to the relay (for the filter they were classified with).
#[derive(Default)]
struct FieldNames {
    filter: Option<HeaderFilter>,
    entries: Vec<(Box<[u8]>, HeaderName, FieldKind)>,
}

impl FieldNames {
    /// The name and kind of the `i`th field, sent as `raw`: remembered if the last response
    /// had the same bytes there, else parsed, classified and remembered in place of the rest.
    fn get(
        &mut self,
        i: usize,
        raw: &[u8],
        hide: HeaderFilter,
    ) -> Result<(HeaderName, FieldKind), H1Error> {
        if self.filter.is_none_or(|f| !std::ptr::fn_addr_eq(f, hide)) {
            self.filter = Some(hide);
            self.entries.clear();
        }
        if let Some((sent, name, kind)) = self.entries.get(i)
            && **sent == *raw
        {
            return Ok((name.clone(), *kind));
        }
        let name =
            HeaderName::from_bytes(raw).map_err(|_| H1Error::Malformed("bad header name"))?;
        let kind = FieldKind::of(&name, hide);
        self.entries.truncate(i);
        self.entries.push((raw.into(), name.clone(), kind));
        Ok((name, kind))
    }
}

/// Parses a complete response head at the start of `buf` and takes it out of `buf`; `None`
/// (and `buf` untouched) while the head is incomplete. Header values are slices of the head's
/// bytes, not copies. Fields named by `hide` are left out, as are hop-by-hop ones (what
/// framing needs from them is kept in [`Parsed`]).
fn parse_head(
    buf: &mut BytesMut,
    names: &mut FieldNames,
    hide: HeaderFilter,
) -> Result<Option<Parsed>, H1Error> {
    // Offsets of each field's name and value in the head, found by the parse that borrows `buf`.
    // Left uninitialised (2 KiB of zeroing per response otherwise); only the first `count`
    // entries, each written below, are read.
    let mut spans =
        [const { std::mem::MaybeUninit::<(u32, u32, u32, u32)>::uninit() }; MAX_HEADERS];
    let (head_len, code, http10, count) = {
        let mut slots =
            [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut []);
        let head_len = match httparse::ParserConfig::default()
            .parse_response_with_uninit_headers(&mut resp, buf, &mut slots)
        {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(H1Error::Malformed("more than 128 header fields"));
            }
            Err(_) => return Err(H1Error::Malformed("not an HTTP/1.x response head")),
        };
        let base = buf.as_ptr() as usize;
        for (span, h) in spans.iter_mut().zip(resp.headers.iter()) {
            let name = h.name.as_ptr() as usize - base;
            let value = h.value.as_ptr() as usize - base;
            span.write((
                name as u32,
                (name + h.name.len()) as u32,
                value as u32,
                (value + h.value.len()) as u32,
            ));
        }
        (head_len, resp.code, resp.version == Some(0), resp.headers.len())
    };
    let status = code
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or(H1Error::Malformed("bad status code"))?;
    let head = take_front(buf, head_len);
    let mut fields = Vec::with_capacity(count);
    let mut connection_close = http10;
    let mut chunked = None;
    let mut content_length = Ok(None);
    let mut lengths = 0u32;
    // Fields a Connection header names as hop-by-hop (rare): removed once all are read.
    let mut named: Vec<HeaderName> = Vec::new();
    for (i, span) in spans[..count].iter().enumerate() {
        // SAFETY: the loop above wrote one span for each of the `count` fields httparse found.
        #[allow(unsafe_code)]
        let (ns, ne, vs, ve) = unsafe { span.assume_init() };
        let (name, kind) = names.get(i, &head[ns as usize..ne as usize], hide)?;
        let value = &head[vs as usize..ve as usize];
        match kind {
            FieldKind::Relayed => {}
            FieldKind::HopByHop | FieldKind::Hidden => continue,
            FieldKind::ContentLength => {
                lengths += 1;
                content_length = if lengths > 1 {
                    Err("more than one Content-Length")
                } else {
                    canonical_length(value).map(Some)
                };
            }
            FieldKind::TransferEncoding => {
                // One field, exactly `chunked` (httparse has trimmed the value): a second field
                // or any other coding is not a framing we relay.
                chunked = Some(chunked.is_none() && value.eq_ignore_ascii_case(b"chunked"));
                continue;
            }
            FieldKind::Connection => {
                for token in text(value).unwrap_or("").split(',') {
                    let token = token.trim();
                    if token.eq_ignore_ascii_case("close") {
                        connection_close = true;
                    } else if token.eq_ignore_ascii_case("keep-alive") {
                        connection_close &= !http10;
                    } else if let Ok(n) = HeaderName::from_bytes(token.as_bytes()) {
                        named.push(n);
                    }
                }
                continue;
            }
        }
        // Relayed as sent. httparse accepts in a field value exactly the bytes HeaderValue
        // does (HTAB, SP, visible ASCII, obs-text; never CR, LF, NUL, DEL or another control
        // byte), and rejects obs-fold in responses by default: RelayedFields::move_into relies
        // on it. Content-Length is relayed too, as sent: framing() lets only a canonical one by.
        fields.push((name, vs, ve));
    }
    if !named.is_empty() {
        fields.retain(|(name, ..)| !named.contains(name));
    }
    Ok(Some(Parsed {
        status,
        fields: RelayedFields { head, fields },
        keep_alive: !connection_close,
        http10,
        chunked,
        content_length,
    }))
}

/// A field value as text, when it is all visible ASCII, spaces and tabs (as
/// [`HeaderValue::to_str`] has it).
fn text(value: &[u8]) -> Option<&str> {
    if crate::wire::is_text(value) { std::str::from_utf8(value).ok() } else { None }
}

/// A Content-Length value in its one canonical spelling: decimal digits, no leading zero (but
/// `0`), no sign, list or space, at most 19 digits. Equal copies (`5, 5`) are refused too: the
/// value is relayed as sent, and a client must not be left to reconcile them.
fn canonical_length(value: &[u8]) -> Result<u64, &'static str> {
    let canonical = !value.is_empty()
        && value.len() <= 19
        && value.iter().all(u8::is_ascii_digit)
        && (value[0] != b'0' || value.len() == 1);
    if !canonical {
        return Err("Content-Length is not one canonical decimal");
    }
    Ok(value.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

/// How the response body is delimited (RFC 9112 §6.3), or why the response is refused: the
/// framing fields must be unambiguous even where the status or method means no body, since
/// they are relayed.
fn framing(p: &Parsed, head_only: bool) -> Result<Framing, H1Error> {
    let framing = match (p.chunked, p.content_length) {
        (Some(_), Ok(Some(_)) | Err(_)) => {
            return Err(H1Error::Malformed("both Transfer-Encoding and Content-Length"));
        }
        (Some(false), Ok(None)) => {
            return Err(H1Error::Malformed("a Transfer-Encoding other than one `chunked`"));
        }
        // RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing.
        (Some(true), Ok(None)) if p.http10 => {
            return Err(H1Error::Malformed("Transfer-Encoding in an HTTP/1.0 response"));
        }
        (Some(true), Ok(None)) => Framing::Chunked,
        (None, Err(why)) => return Err(H1Error::Malformed(why)),
        (None, Ok(Some(0))) => Framing::Empty,
        (None, Ok(Some(n))) => Framing::Length(n),
        (None, Ok(None)) => Framing::UntilClose,
    };
    if head_only || p.status == StatusCode::NO_CONTENT || p.status == StatusCode::NOT_MODIFIED {
        return Ok(Framing::Empty);
    }
    Ok(framing)
}

enum State {
    Length(u64),
    /// Before a chunk-size line.
    ChunkSize,
    /// Inside a chunk: bytes left.
    ChunkData(u64),
    /// After a chunk's data: its CRLF.
    ChunkEnd,
    Trailers,
    UntilClose,
    Done,
}

impl From<Framing> for State {
    fn from(f: Framing) -> State {
        match f {
            Framing::Empty => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::ChunkSize,
            Framing::UntilClose => State::UntilClose,
        }
    }
}

/// A response body read from its connection as it is polled; the connection goes back to the
/// pool when the body is complete, and is closed if the body is dropped before.
pub struct UpstreamBody {
    conn: Option<Conn>,
    state: State,
    keep_alive: bool,
    pool: Arc<dyn Recycle>,
    request_id: HeaderValue,
}

fn truncated() -> BoxError {
    Box::new(io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the backend closed the connection inside the response body",
    ))
}

fn malformed(why: &'static str) -> BoxError {
    Box::new(H1Error::Malformed(why).into_io())
}

impl H1Error {
    fn into_io(self) -> io::Error {
        match self {
            H1Error::Io(e) | H1Error::NotSent(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
        }
    }
}

impl UpstreamBody {
    fn finish(&mut self) {
        self.state = State::Done;
        if let Some(conn) = self.conn.take()
            && self.keep_alive
        {
            self.pool.recycle(conn);
        }
    }

    /// Makes progress on chunk framing with what is buffered; `Ok(Some(data))` is a frame,
    /// `Ok(None)` means more bytes are needed (or the body just ended: see `state`).
    fn step_chunked(&mut self) -> Result<Option<Bytes>, BoxError> {
        let conn = self.conn.as_mut().expect("connection while reading");
        loop {
            match self.state {
                State::ChunkSize => {
                    let Some(eol) = conn.buf.iter().position(|&b| b == b'\n') else {
                        if conn.buf.len() > MAX_CHUNK_LINE {
                            return Err(malformed("chunk-size line too long"));
                        }
                        return Ok(None);
                    };
                    if eol > MAX_CHUNK_LINE {
                        return Err(malformed("chunk-size line too long"));
                    }
                    let line = &conn.buf[..eol];
                    let line = line
                        .strip_suffix(b"\r")
                        .ok_or_else(|| malformed("chunk-size line without CRLF"))?;
                    let hex = line.split(|&b| b == b';').next().unwrap_or(b"");
                    let hex = hex.trim_ascii_end();
                    if hex.is_empty() || hex.len() > 15 || !hex.iter().all(u8::is_ascii_hexdigit) {
                        return Err(malformed("bad chunk size"));
                    }
                    let size = u64::from_str_radix(std::str::from_utf8(hex).unwrap_or("x"), 16)
                        .map_err(|_| malformed("bad chunk size"))?;
                    conn.buf.advance(eol + 1);
                    self.state = if size == 0 { State::Trailers } else { State::ChunkData(size) };
                }
                State::ChunkData(left) => {
                    if conn.buf.is_empty() {
                        return Ok(None);
                    }
                    let take = (conn.buf.len() as u64).min(left) as usize;
                    let data = conn.buf.split_to(take).freeze();
                    self.state = if left == take as u64 {
                        State::ChunkEnd
                    } else {
                        State::ChunkData(left - take as u64)
                    };
                    return Ok(Some(data));
                }
                State::ChunkEnd => {
                    if conn.buf.len() < 2 {
                        return Ok(None);
                    }
                    if &conn.buf[..2] != b"\r\n" {
                        return Err(malformed("chunk data not followed by CRLF"));
                    }
                    conn.buf.advance(2);
                    self.state = State::ChunkSize;
                }
                State::Trailers => {
                    // Trailer fields are read and dropped; the section ends with an empty line.
                    let Some(eol) = conn.buf.iter().position(|&b| b == b'\n') else {
                        if conn.buf.len() > MAX_TRAILERS {
                            return Err(malformed("trailer section too long"));
                        }
                        return Ok(None);
                    };
                    let empty = eol == 0 || (eol == 1 && conn.buf[0] == b'\r');
                    conn.buf.advance(eol + 1);
                    if empty {
                        let leftover = !conn.buf.is_empty();
                        if leftover {
                            // Bytes after the response: the connection is out of step.
                            self.keep_alive = false;
                        }
                        self.finish();
                        return Ok(None);
                    }
                }
                _ => unreachable!("chunk step outside chunked state"),
            }
        }
    }
}

impl http_body::Body for UpstreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = self.poll_body(cx);
        if let Poll::Ready(Some(Err(e))) = &polled {
            // The client's response is cut short (HTTP/1.1: the connection closes; HTTP/2: the
            // stream is reset) after a head the access log already recorded: say so, under
            // the same request id.
            let request_id = self.request_id.to_str().unwrap_or("");
            tracing::warn!(request_id, error = %e, "upstream response body broken off; the client's response is incomplete");
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, State::Done)
    }

    fn size_hint(&self) -> SizeHint {
        match self.state {
            State::Length(n) => SizeHint::with_exact(n),
            State::Done => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}

impl UpstreamBody {
    fn poll_body(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self;
        loop {
            match this.state {
                State::Done => return Poll::Ready(None),
                State::Length(left) => {
                    let conn = this.conn.as_mut().expect("connection while reading");
                    if conn.buf.is_empty() {
                        let n =
                            ready!(poll_read_some(&mut conn.io, &mut conn.buf, READ_CHUNK, cx))?;
                        if n == 0 {
                            this.conn = None;
                            this.state = State::Done;
                            return Poll::Ready(Some(Err(truncated())));
                        }
                    }
                    let take = (conn.buf.len() as u64).min(left) as usize;
                    let data = conn.buf.split_to(take).freeze();
                    if left == take as u64 {
                        if !conn.buf.is_empty() {
                            this.keep_alive = false;
                        }
                        this.finish();
                    } else {
                        this.state = State::Length(left - take as u64);
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                State::UntilClose => {
                    let conn = this.conn.as_mut().expect("connection while reading");
                    if conn.buf.is_empty() {
                        let n =
                            ready!(poll_read_some(&mut conn.io, &mut conn.buf, READ_CHUNK, cx))?;
                        if n == 0 {
                            this.keep_alive = false;
                            this.finish();
                            return Poll::Ready(None);
                        }
                    }
                    let data = conn.buf.split().freeze();
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                _ => {
                    if let Some(data) = this.step_chunked()? {
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                    if matches!(this.state, State::Done) {
                        return Poll::Ready(None);
                    }
                    let conn = this.conn.as_mut().expect("connection while reading");
                    let n = ready!(poll_read_some(&mut conn.io, &mut conn.buf, READ_CHUNK, cx))?;
                    if n == 0 {
                        this.conn = None;
                        this.state = State::Done;
                        return Poll::Ready(Some(Err(truncated())));
                    }
                }
            }
        }
    }
}

/// Compares this client's reading of a response head with hyper's HTTP/1 client on the same
/// bytes: for the unit test below and the `upstream_response_head` fuzz target.
#[doc(hidden)]
pub mod differential {
    use std::time::Duration;

    use bytes::{Bytes, BytesMut};
    use http::{HeaderMap, StatusCode};
    use http_body::Body as _;
    use http_body_util::{BodyExt, Empty};
    use tokio::io::AsyncWriteExt;

    use super::{FieldKind, FieldNames, Framing, H1Error, MAX_HEAD, framing, parse_head};

    /// What this client makes of a response head: status, the fields it relays (in order),
    /// the framing it reads the body by, and the bytes after the head.
    #[derive(Debug)]
    pub struct Ours {
        pub status: StatusCode,
        pub fields: Vec<(String, Vec<u8>)>,
        /// `Some(n)`: a body of exactly `n` bytes (0 for none); `None`: chunked or to the close.
        pub length: Option<u64>,
        pub rest: Bytes,
    }

    /// The response to a GET (or HEAD, `head_only`) this client reads from `raw`, as
    /// `Conn::send_and_read_head` and `exchange` do: interim 1xx heads skipped, then the final
    /// head and its framing. `Ok(None)`: the head is incomplete.
    pub fn ours(raw: &[u8], head_only: bool) -> Result<Option<Ours>, H1Error> {
        let mut buf = BytesMut::from(raw);
        let mut names = FieldNames::default();
        let hide: super::HeaderFilter = |_| false;
        loop {
            let Some(mut parsed) = parse_head(&mut buf, &mut names, hide)? else {
                if buf.len() >= MAX_HEAD {
                    return Err(H1Error::Malformed("response head over 64 KiB"));
                }
                return Ok(None);
            };
            if parsed.status.is_informational() {
                if parsed.status == StatusCode::SWITCHING_PROTOCOLS {
                    return Err(H1Error::Malformed("101"));
                }
                continue;
            }
            let length = match framing(&parsed, head_only)? {
                Framing::Empty => Some(0),
                Framing::Length(n) => Some(n),
                Framing::Chunked | Framing::UntilClose => None,
            };
            let mut map = HeaderMap::new();
            parsed.fields.move_into(&mut map);
            let fields =
                map.iter().map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec())).collect();
            return Ok(Some(Ours { status: parsed.status, fields, length, rest: buf.freeze() }));
        }
    }

    /// What hyper's HTTP/1 client reads from `raw` as the response to a GET (or HEAD): status,
    /// every field, the body's exact length if it knows one, and the body (when it ends).
    pub async fn hyper_reads(
        raw: &[u8],
        head_only: bool,
    ) -> Option<(StatusCode, HeaderMap, Option<u64>, Option<Bytes>)> {
        let (client, mut server) = tokio::io::duplex(256 * 1024);
        // As many fields as this client reads (hyper's default is 100).
        let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
            .max_headers(super::MAX_HEADERS)
            .handshake(hyper_util::rt::TokioIo::new(client))
            .await
            .ok()?;
        let conn = tokio::spawn(conn);
        let method = if head_only { http::Method::HEAD } else { http::Method::GET };
        let req = http::Request::builder()
            .method(method)
            .uri("/")
            .header("host", "backend")
            .body(Empty::<Bytes>::new())
            .ok()?;
        let raw = raw.to_vec();
        let feed = tokio::spawn(async move {
            let _ = server.write_all(&raw).await;
            let _ = server.shutdown().await;
            // Keep the read side open until the client is done (it may still be writing).
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(server);
        });
        let resp = tokio::time::timeout(Duration::from_secs(2), sender.send_request(req)).await;
        let out = match resp {
            Ok(Ok(resp)) => {
                let (parts, body) = resp.into_parts();
                let exact = body.size_hint().exact();
                let end = body.is_end_stream();
                let collected = tokio::time::timeout(Duration::from_secs(2), body.collect()).await;
                let bytes = match collected {
                    Ok(Ok(b)) => Some(b.to_bytes()),
                    _ => None,
                };
                let exact = if end { Some(0) } else { exact };
                Some((parts.status, parts.headers, exact, bytes))
            }
            _ => None,
        };
        feed.abort();
        conn.abort();
        out
    }

    /// Whenever this client accepts a complete response head, hyper's client reads the same
    /// status and fields (the ones relayed, in order; the rest hop-by-hop) and the same framing,
    /// and, for a body of a known length that is all there, the same body.
    pub async fn check(raw: &[u8], head_only: bool) -> Result<(), String> {
        let ours = match ours(raw, head_only) {
            Ok(Some(o)) => o,
            Ok(None) | Err(_) => return Ok(()),
        };
        // RelayedFields::move_into builds the values unchecked: each must be a valid one.
        for (name, value) in &ours.fields {
            if http::HeaderValue::from_bytes(value).is_err() {
                return Err(format!("relayed an invalid value for {name}: {value:?}"));
            }
        }
        let Some((status, headers, exact, body)) = hyper_reads(raw, head_only).await else {
            return Err(format!("the client accepts {ours:?}; hyper's client refuses it"));
        };
        if status != ours.status {
            return Err(format!("status: ours {}, hyper {status}", ours.status));
        }
        let nominated: Vec<String> = headers
            .get_all(http::header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|t| t.trim().to_ascii_lowercase())
            .collect();
        let relayed: Vec<(String, Vec<u8>)> = headers
            .iter()
            .filter(|(n, _)| {
                FieldKind::of(n, |_| false) == FieldKind::Relayed
                    || *n == http::header::CONTENT_LENGTH
            })
            .filter(|(n, _)| !nominated.iter().any(|t| t == n.as_str()))
            .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
            .collect();
        // hyper's map groups a name's values together; ours keeps the same grouping.
        let mut a = ours.fields.clone();
        let mut b = relayed.clone();
        a.sort_by(|x, y| x.0.cmp(&y.0));
        b.sort_by(|x, y| x.0.cmp(&y.0));
        if a != b {
            return Err(format!("fields: ours {:?}, hyper {:?}", ours.fields, relayed));
        }
        if ours.length.is_some() && exact != ours.length {
            return Err(format!("length: ours {:?}, hyper {exact:?}", ours.length));
        }
        if let (Some(n), Some(body)) = (ours.length, body)
            && ours.rest.len() as u64 >= n
            && body != ours.rest[..n as usize]
        {
            return Err(format!("body: ours {:?}, hyper {body:?}", &ours.rest[..n as usize]));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn response_heads_read_as_hypers_client_reads_them() {
        let cases: &[&[u8]] = &[
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: 1\r\nX-A: 2\r\n\r\nhi",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nConnection: x-b\r\nX-B: 1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
            b"HTTP/1.0 200 OK\r\nKeep-Alive: timeout=5\r\n\r\nto the close",
        ];
        for raw in cases {
            for head_only in [false, true] {
                assert!(differential::ours(raw, head_only).unwrap().is_some());
                differential::check(raw, head_only).await.unwrap();
            }
        }
    }

    fn parse(head: &[u8]) -> Result<Option<Parsed>, H1Error> {
        parse_head(&mut BytesMut::from(head), &mut FieldNames::default(), |_| false)
    }

    fn parsed(head: &str) -> Parsed {
        parse(head.as_bytes()).unwrap().unwrap()
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let f = |h: &str| framing(&parsed(h), false);
        assert_eq!(f("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n").unwrap(), Framing::Length(5));
        assert_eq!(f("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").unwrap(), Framing::Empty);
        assert_eq!(
            f("HTTP/1.1 200 OK\r\ncontent-length: 9999999999999999999\r\n\r\n").unwrap(),
            Framing::Length(9_999_999_999_999_999_999)
        );
        assert_eq!(
            f("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n").unwrap(),
            Framing::Chunked
        );
        assert_eq!(
            f("HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n").unwrap(),
            Framing::Chunked
        );
        assert_eq!(f("HTTP/1.1 200 OK\r\n\r\n").unwrap(), Framing::UntilClose);
        assert_eq!(
            f("HTTP/1.1 204 No Content\r\ncontent-length: 5\r\n\r\n").unwrap(),
            Framing::Empty
        );
        assert_eq!(
            framing(&parsed("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"), true).unwrap(),
            Framing::Empty
        );
        assert_eq!(
            framing(&parsed("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"), true)
                .unwrap(),
            Framing::Empty
        );
        // One canonical length or nothing: lists (even of equal copies), signs, leading zeros,
        // spaces, overflow. These used to be read as 5 (review finding): now refused.
        for bad in [
            "5, 5",
            "5,5",
            "5, 6",
            "-1",
            "+5",
            "05",
            "00",
            "0x5",
            "",
            "99999999999999999999",
            "5 5",
            "5;",
        ] {
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {bad}\r\n\r\n");
            assert!(f(&head).is_err(), "{bad}");
        }
        assert!(
            f("HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 5\r\n\r\n").is_err(),
            "equal copies in two fields"
        );
        assert!(f("HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\n").is_err());
        // One framing: Transfer-Encoding is one field of exactly `chunked`, never beside a
        // length (these were read as chunked or to the end of the connection before).
        for bad in [
            "transfer-encoding: chunked\r\ncontent-length: 5",
            "content-length: 5\r\ntransfer-encoding: chunked",
            "transfer-encoding: gzip\r\ncontent-length: 5",
            "transfer-encoding: gzip",
            "transfer-encoding: gzip, chunked",
            "transfer-encoding: chunked, chunked",
            "transfer-encoding: chunked\r\ntransfer-encoding: chunked",
            "transfer-encoding: chunked;x=1",
            "transfer-encoding: identity",
        ] {
            assert!(f(&format!("HTTP/1.1 200 OK\r\n{bad}\r\n\r\n")).is_err(), "{bad}");
            assert!(f(&format!("HTTP/1.1 204 No Content\r\n{bad}\r\n\r\n")).is_err(), "204: {bad}");
        }
        assert!(f("HTTP/1.0 200 OK\r\ntransfer-encoding: chunked\r\n\r\n").is_err());
    }

    #[test]
    fn keep_alive_follows_connection_and_version() {
        assert!(parsed("HTTP/1.1 200 OK\r\n\r\n").keep_alive);
        assert!(!parsed("HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n").keep_alive);
        assert!(!parsed("HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\n\r\n").keep_alive);
        assert!(!parsed("HTTP/1.0 200 OK\r\n\r\n").keep_alive);
        assert!(parsed("HTTP/1.0 200 OK\r\nconnection: keep-alive\r\n\r\n").keep_alive);
    }

    /// The relayed fields as a header map, as the HTTP/2 server sees them.
    fn map(mut fields: RelayedFields) -> HeaderMap {
        let mut h = HeaderMap::new();
        fields.move_into(&mut h);
        h
    }

    #[test]
    fn a_recycled_header_map_comes_back_empty_and_a_grown_one_is_not_kept() {
        SPARE.with(|s| s.borrow_mut().clear());
        let mut first = HeaderMap::with_capacity(3);
        first.insert("x-a", HeaderValue::from_static("1"));
        let reused = first.capacity();
        recycle_headers(first);
        assert_eq!(SPARE.with(|s| s.borrow().len()), 1);
        let second = header_map(1);
        assert_eq!(SPARE.with(|s| s.borrow().len()), 0, "the spare map was taken");
        assert_eq!(second.capacity(), reused);
        assert!(second.is_empty());
        // A map grown for a large request is freed, not kept; an unallocated one is not kept.
        let mut big = HeaderMap::new();
        for i in 0..=SPARE_MAP_CAPACITY {
            big.insert(
                HeaderName::from_bytes(format!("x-{i}").as_bytes()).unwrap(),
                HeaderValue::from_static("v"),
            );
        }
        recycle_headers(big);
        recycle_headers(HeaderMap::new());
        assert_eq!(SPARE.with(|s| s.borrow().len()), 0);
    }

    #[test]
    fn relayed_fields_keep_their_order_and_repeats_and_go_ahead_of_a_map_s_own() {
        let p = parsed(
            "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nx-b:  two words \r\nset-cookie: c=3\r\nContent-Length: 0\r\n\r\n",
        );
        let lines: Vec<_> =
            p.fields.iter().map(|(n, v)| (n.as_str().to_owned(), v.to_vec())).collect();
        assert_eq!(
            lines,
            [
                ("set-cookie".into(), b"a=1".to_vec()),
                ("x-b".into(), b"two words".to_vec()),
                ("set-cookie".into(), b"c=3".to_vec()),
                ("content-length".into(), b"0".to_vec())
            ]
        );
        assert_eq!(p.fields.get(&header::SET_COOKIE), Some(&b"a=1"[..]));
        assert_eq!(p.fields.get(&header::RETRY_AFTER), None);
        let mut fields = p.fields;
        let mut h = HeaderMap::new();
        h.insert("x-own", HeaderValue::from_static("1"));
        fields.move_into(&mut h);
        assert!(fields.is_empty());
        let all: Vec<_> = h.iter().map(|(n, v)| (n.as_str(), v.as_bytes())).collect();
        assert_eq!(
            all,
            [
                ("set-cookie", &b"a=1"[..]),
                ("set-cookie", b"c=3"),
                ("x-b", b"two words"),
                ("content-length", b"0"),
                ("x-own", b"1")
            ]
        );
        // Moving an empty set leaves the map as it was.
        fields.move_into(&mut h);
        assert_eq!(h.len(), 5);
    }

    #[test]
    fn names_remembered_from_the_last_response_are_checked_not_trusted() {
        let mut names = FieldNames::default();
        let mut next = |head: &str| {
            map(parse_head(&mut BytesMut::from(head.as_bytes()), &mut names, |_| false)
                .unwrap()
                .unwrap()
                .fields)
        };
        let h = next("HTTP/1.1 200 OK\r\nContent-Type: a\r\nX-Hits: 1\r\n\r\n");
        assert_eq!((h["content-type"].as_bytes(), h["x-hits"].as_bytes()), (&b"a"[..], &b"1"[..]));
        // Same names in another case, then a different name in the same place.
        let h = next("HTTP/1.1 200 OK\r\ncontent-type: b\r\nx-HITS: 2\r\n\r\n");
        assert_eq!((h["content-type"].as_bytes(), h["x-hits"].as_bytes()), (&b"b"[..], &b"2"[..]));
        let h = next("HTTP/1.1 200 OK\r\nx-other: 3\r\nX-Hits: 4\r\nx-third: 5\r\n\r\n");
        assert_eq!(h.len(), 3);
        assert!(h.get("content-type").is_none());
        assert_eq!(
            (h["x-other"].as_bytes(), h["x-hits"].as_bytes(), h["x-third"].as_bytes()),
            (&b"3"[..], &b"4"[..], &b"5"[..])
        );
        // A name that only looks like a remembered one is parsed, and refused when invalid.
        assert!(
            parse_head(
                &mut BytesMut::from(&b"HTTP/1.1 200 OK\r\nx-oth r: 3\r\n\r\n"[..]),
                &mut names,
                |_| false
            )
            .is_err()
        );
    }

    #[test]
    fn what_a_remembered_name_is_to_the_relay_is_remembered_too_for_its_filter() {
        fn hide_secret(name: &HeaderName) -> bool {
            name == "x-secret"
        }
        let head = b"HTTP/1.1 200 OK\r\nX-Secret: s\r\nKeep-Alive: timeout=5\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\nx-ok: 1\r\n\r\n";
        let mut names = FieldNames::default();
        // Twice: parsed and classified, then remembered. Hidden and hop-by-hop fields stay out,
        // and a remembered Transfer-Encoding still counts for the framing (beside a length,
        // the response is refused).
        for _ in 0..2 {
            let p = parse_head(&mut BytesMut::from(&head[..]), &mut names, hide_secret)
                .unwrap()
                .unwrap();
            assert_eq!(p.chunked, Some(true));
            assert_eq!(p.content_length, Ok(Some(3)));
            assert!(framing(&p, false).is_err(), "both framings");
            assert_eq!(
                p.fields.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
                ["content-length", "x-ok"]
            );
        }
        // Another filter: the names are classified again.
        let p = parse_head(&mut BytesMut::from(&head[..]), &mut names, |_| false).unwrap().unwrap();
        assert_eq!(
            p.fields.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            ["x-secret", "content-length", "x-ok"]
        );
    }

    struct NoPool;
    impl Recycle for NoPool {
        fn recycle(&self, _: Conn) {}
    }

    /// A write that fails before the first byte left is told apart from one that failed later:
    /// only then may a non-idempotent request be sent again ([`super::super::client`]).
    #[tokio::test]
    async fn a_request_written_to_a_reset_connection_is_known_not_sent() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let io = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (peer, _) = listener.accept().await.unwrap();
        // The backend resets the connection (linger 0); wait until the reset has arrived.
        peer.set_zero_linger().unwrap();
        drop(peer);
        let mut conn = Conn::new(io);
        tokio::time::timeout(std::time::Duration::from_secs(10), async {
            while conn.is_reusable() {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the reset arrives");
        let (parts, _) =
            http::Request::builder().method("POST").uri("/x").body(()).unwrap().into_parts();
        let host = HeaderValue::from_static("backend");
        let outbound = Outbound { host: &host, added: &[], hide: |_| false, request_id: &host };
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        let result =
            conn.exchange(&parts, &outbound, Body::full("a=1"), Arc::new(NoPool), deadline).await;
        assert!(matches!(result, Err(H1Error::NotSent(_))), "{:?}", result.err());
    }

    #[test]
    fn heads_are_bounded_and_strict() {
        assert!(parse(b"HTTP/1.1 200 OK\r\ncontent-le").unwrap().is_none());
        assert!(parse(b"HTTP/1.1 2000 OK\r\n\r\n").is_err());
        assert!(parse(b"HTTP/1.1 200 OK\r\nbad name: x\r\n\r\n").is_err());
        assert!(parse(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        let many: String = (0..200).map(|i| format!("x-{i}: y\r\n")).collect();
        assert!(parse(format!("HTTP/1.1 200 OK\r\n{many}\r\n").as_bytes()).is_err());
        // The head is taken out of the buffer; what follows it stays.
        let mut buf =
            BytesMut::from(&b"HTTP/1.1 200 OK\r\nx-a: 1\r\nX-B: two words\r\n\r\nbody"[..]);
        let p = parse_head(&mut buf, &mut FieldNames::default(), |_| false).unwrap().unwrap();
        assert_eq!(&buf[..], b"body");
        let h = map(p.fields);
        assert_eq!(h["x-a"], "1");
        assert_eq!(h["x-b"], "two words");
    }
}
