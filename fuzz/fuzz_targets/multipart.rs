//! Differential: frontgate's strict multipart reader (`frontgate::multipart`) against multer,
//! the reader axum uses. The input is a `Content-Type` value, a line feed, then the body (with no
//! line feed, the whole input is a body for `multipart/form-data; boundary=b`).
//!
//! Whenever frontgate accepts, multer must agree: the same boundary from the content type, and
//! the same parts, in order, with the same names, file names (present or not, and equal) and
//! contents, and nothing after them. An accepted body on which they disagree is a crash: a
//! backend could read a body the gateway validated as another one.
#![no_main]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use frontgate::multipart;
use libfuzzer_sys::fuzz_target;

/// Runs a future over an in-memory stream, which is always ready, to completion.
fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..10_000 {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
    panic!("multer did not finish reading an in-memory body");
}

/// multer's reading of `body`: (name, file name, content) per part, or its error.
fn multer_parts(
    body: &[u8],
    boundary: &str,
) -> Result<Vec<(Option<String>, Option<String>, Bytes)>, multer::Error> {
    let chunk = Bytes::copy_from_slice(body);
    let stream =
        futures_util::stream::once(async move { Ok::<Bytes, std::convert::Infallible>(chunk) });
    let mut reader = multer::Multipart::new(stream, boundary);
    block_on(async move {
        let mut out = Vec::new();
        while let Some(field) = reader.next_field().await? {
            let (name, file) =
                (field.name().map(str::to_owned), field.file_name().map(str::to_owned));
            out.push((name, file, field.bytes().await?));
        }
        Ok(out)
    })
}

fuzz_target!(|data: &[u8]| {
    let (content_type, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => match std::str::from_utf8(&data[..i]) {
            Ok(ct) => (ct, &data[i + 1..]),
            Err(_) => return,
        },
        None => ("multipart/form-data; boundary=b", data),
    };
    let Ok(boundary) = multipart::boundary(content_type) else { return };
    match multer::parse_boundary(content_type) {
        Ok(b) => assert_eq!(b, boundary, "multer reads another boundary from {content_type:?}"),
        Err(e) => panic!("multer refuses the content type {content_type:?} frontgate accepts: {e}"),
    }
    let Ok(parts) = multipart::parse(body, boundary) else { return };
    let theirs = match multer_parts(body, boundary) {
        Ok(t) => t,
        Err(e) => panic!("multer refuses a body frontgate accepts: {e}\nfrontgate: {parts:?}"),
    };
    assert_eq!(parts.len(), theirs.len(), "part count: frontgate {parts:?}, multer {theirs:?}");
    for (ours, (name, file, content)) in parts.iter().zip(&theirs) {
        assert_eq!(Some(ours.name), name.as_deref(), "name: frontgate {ours:?}, multer {theirs:?}");
        assert_eq!(
            ours.filename,
            file.as_deref(),
            "file name: frontgate {ours:?}, multer {theirs:?}"
        );
        assert_eq!(
            &body[ours.content.clone()],
            &content[..],
            "content: frontgate {ours:?}, multer {theirs:?}"
        );
    }
});
