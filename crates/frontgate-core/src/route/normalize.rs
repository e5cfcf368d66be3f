//! Path normalization: one canonical form, and a refusal for anything two parsers might read
//! differently.
//!
//! The gateway matches routes against the normalized path and forwards exactly that path, so the
//! backend never sees a form that a route did not see. Percent-escapes of unreserved characters
//! (`%61` → `a`) are decoded, other escapes are kept with upper-case hex; anything ambiguous is
//! refused rather than "fixed": an encoded slash, backslash or dot, double encoding, dot-segments,
//! empty segments, segments ending in a dot, semicolons (matrix parameters), control bytes, raw
//! non-ASCII, and escapes that do not decode to valid UTF-8 (which rules out overlong forms).

use std::borrow::Cow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    NotAbsolute,
    EncodedSlash,
    EncodedDot,
    DoubleEncoding,
    BadEscape,
    Backslash,
    Semicolon,
    ControlByte,
    NonAscii,
    InvalidUtf8,
    EmptySegment,
    DotSegment,
    TrailingDot,
}

impl PathError {
    pub fn describe(self) -> &'static str {
        match self {
            PathError::NotAbsolute => "the path must start with /",
            PathError::EncodedSlash => "the path contains an encoded slash or backslash (%2F, %5C)",
            PathError::EncodedDot => "the path contains an encoded dot (%2E)",
            PathError::DoubleEncoding => "the path contains double percent-encoding (%25xx)",
            PathError::BadEscape => "the path contains a malformed percent-escape",
            PathError::Backslash => "the path contains a backslash",
            PathError::Semicolon => "the path contains a semicolon",
            PathError::ControlByte => "the path contains a control byte",
            PathError::NonAscii => "the path contains raw non-ASCII bytes; percent-encode them",
            PathError::InvalidUtf8 => "the path's percent-escapes are not valid UTF-8",
            PathError::EmptySegment => "the path contains an empty segment (//)",
            PathError::DotSegment => "the path contains a dot-segment (/./ or /../)",
            PathError::TrailingDot => "a path segment ends with a dot",
        }
    }
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'~'
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Normalizes a request path (without the query). Borrows when the path is already canonical.
pub fn normalize_path(path: &str) -> Result<Cow<'_, str>, PathError> {
    if plainly_canonical(path.as_bytes()) {
        return Ok(Cow::Borrowed(path));
    }
    normalize_in_full(path)
}

/// The common case, decided in one pass: only unreserved bytes, dots and slashes, no empty
/// segment but a trailing one, and no segment ending in a dot (which also rules out `.` and
/// `..`). Whatever this accepts, the full normalization would return unchanged.
fn plainly_canonical(bytes: &[u8]) -> bool {
    if bytes.first() != Some(&b'/') {
        return false;
    }
    let mut prev = b'/';
    for &b in &bytes[1..] {
        match b {
            b'/' if prev == b'/' || prev == b'.' => return false,
            b'/' | b'.' => {}
            _ if is_unreserved(b) => {}
            _ => return false,
        }
        prev = b;
    }
    prev != b'.'
}

fn normalize_in_full(path: &str) -> Result<Cow<'_, str>, PathError> {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(PathError::NotAbsolute);
    }
    // `out` is only allocated once the path differs from its canonical form.
    let mut out: Option<Vec<u8>> = None;
    let mut utf8_run: Vec<u8> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'%' => {
                let (h, l) = match (
                    bytes.get(i + 1).copied().and_then(hex_val),
                    bytes.get(i + 2).copied().and_then(hex_val),
                ) {
                    (Some(h), Some(l)) => (h, l),
                    _ => return Err(PathError::BadEscape),
                };
                let v = h << 4 | l;
                match v {
                    b'/' | b'\\' => return Err(PathError::EncodedSlash),
                    b'.' => return Err(PathError::EncodedDot),
                    b';' => return Err(PathError::Semicolon),
                    0x00..=0x1f | 0x7f => return Err(PathError::ControlByte),
                    b'%' => {
                        let next_is_hex = bytes.get(i + 3).copied().and_then(hex_val).is_some()
                            && bytes.get(i + 4).copied().and_then(hex_val).is_some();
                        if next_is_hex {
                            return Err(PathError::DoubleEncoding);
                        }
                    }
                    _ => {}
                }
                if v >= 0x80 {
                    utf8_run.push(v);
                } else {
                    check_utf8_run(&mut utf8_run)?;
                }
                let canonical_escape =
                    bytes[i + 1] == HEX[(h) as usize] && bytes[i + 2] == HEX[(l) as usize];
                if is_unreserved(v) {
                    out.get_or_insert_with(|| bytes[..i].to_vec()).push(v);
                } else if !canonical_escape || out.is_some() {
                    let o = out.get_or_insert_with(|| bytes[..i].to_vec());
                    o.extend_from_slice(&[b'%', HEX[h as usize], HEX[l as usize]]);
                }
                i += 3;
                continue;
            }
            b'\\' => return Err(PathError::Backslash),
            b';' => return Err(PathError::Semicolon),
            0x00..=0x1f | 0x7f => return Err(PathError::ControlByte),
            0x80..=0xff => return Err(PathError::NonAscii),
            _ => {}
        }
        check_utf8_run(&mut utf8_run)?;
        if let Some(o) = out.as_mut() {
            o.push(b);
        }
        i += 1;
    }
    check_utf8_run(&mut utf8_run)?;
    let normalized: Cow<'_, str> = match out {
        // Only ASCII was written: from_utf8 cannot fail, but stay total.
        Some(o) => Cow::Owned(String::from_utf8(o).map_err(|_| PathError::InvalidUtf8)?),
        None => Cow::Borrowed(path),
    };
    // Decoding may have made a new `%25XX` (`%25%32%65` → `%252e`): still double encoding.
    if normalized.contains("%25") {
        let b = normalized.as_bytes();
        for i in 0..b.len().saturating_sub(4) {
            if &b[i..i + 3] == b"%25" && hex_val(b[i + 3]).is_some() && hex_val(b[i + 4]).is_some()
            {
                return Err(PathError::DoubleEncoding);
            }
        }
    }
    check_segments(&normalized)?;
    Ok(normalized)
}

fn check_utf8_run(run: &mut Vec<u8>) -> Result<(), PathError> {
    if !run.is_empty() {
        std::str::from_utf8(run).map_err(|_| PathError::InvalidUtf8)?;
        run.clear();
    }
    Ok(())
}

fn check_segments(path: &str) -> Result<(), PathError> {
    let mut segments = path[1..].split('/').peekable();
    while let Some(seg) = segments.next() {
        let last = segments.peek().is_none();
        if seg.is_empty() {
            // Only the root "/" or a single trailing slash may end in an empty segment.
            if !last {
                return Err(PathError::EmptySegment);
            }
            continue;
        }
        if seg == "." || seg == ".." {
            return Err(PathError::DotSegment);
        }
        if seg.ends_with('.') {
            return Err(PathError::TrailingDot);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn canonical_paths_are_borrowed() {
        for p in [
            "/",
            "/api/items",
            "/api/items/",
            "/a-b_c~d/e.json",
            "/%C3%A9t%C3%A9",
            "/a%20b",
            "/.well-known/x",
        ] {
            assert!(matches!(normalize_path(p), Ok(Cow::Borrowed(_))), "{p}");
        }
    }

    #[test]
    fn unreserved_escapes_are_decoded_and_hex_upper_cased() {
        assert_eq!(normalize_path("/api/%61dmin").unwrap(), "/api/admin");
        assert_eq!(normalize_path("/%7e%2d").unwrap(), "/~-");
        assert_eq!(normalize_path("/a%2ab").unwrap(), "/a%2Ab");
        assert_eq!(normalize_path("/%c3%a9").unwrap(), "/%C3%A9");
        assert_eq!(normalize_path("/100%25").unwrap(), "/100%25");
    }

    #[test]
    fn ambiguous_paths_are_refused() {
        let cases: &[(&str, PathError)] = &[
            ("api", PathError::NotAbsolute),
            ("", PathError::NotAbsolute),
            ("/a%2Fb", PathError::EncodedSlash),
            ("/a%2fb", PathError::EncodedSlash),
            ("/a%5Cb", PathError::EncodedSlash),
            ("/%2e%2e/etc", PathError::EncodedDot),
            ("/a/%2E", PathError::EncodedDot),
            ("/%252e%252e/", PathError::DoubleEncoding),
            ("/%25%32%65", PathError::DoubleEncoding),
            ("/a%", PathError::BadEscape),
            ("/a%4", PathError::BadEscape),
            ("/a%zz", PathError::BadEscape),
            ("/a\\b", PathError::Backslash),
            ("/admin;x=1", PathError::Semicolon),
            ("/admin%3bx", PathError::Semicolon),
            ("/a%00b", PathError::ControlByte),
            ("/a\u{1}b", PathError::ControlByte),
            ("/a%7F", PathError::ControlByte),
            ("/caf\u{e9}", PathError::NonAscii),
            ("/%C0%AF", PathError::InvalidUtf8),
            ("/%E0%80%AF", PathError::InvalidUtf8),
            ("/%ED%A0%80", PathError::InvalidUtf8),
            ("/%C3", PathError::InvalidUtf8),
            ("/%C3a%A9", PathError::InvalidUtf8),
            ("//a", PathError::EmptySegment),
            ("/a//b", PathError::EmptySegment),
            ("/a/./b", PathError::DotSegment),
            ("/a/../b", PathError::DotSegment),
            ("/a/..", PathError::DotSegment),
            ("/..", PathError::DotSegment),
            ("/a/b.", PathError::TrailingDot),
            ("/a/...", PathError::TrailingDot),
            ("/a/%2e./", PathError::EncodedDot),
        ];
        for (p, e) in cases {
            assert_eq!(normalize_path(p), Err(*e), "{p:?}");
        }
    }

    proptest! {
        #[test]
        fn the_fast_path_agrees_with_the_full_normalization(s in "/[/a-z.%~_-]{0,24}") {
            if plainly_canonical(s.as_bytes()) {
                prop_assert!(matches!(normalize_in_full(&s), Ok(Cow::Borrowed(_))), "{}", s);
            }
        }

        #[test]
        fn normalizing_is_idempotent_and_output_is_clean(s in "/[a-zA-Z0-9%./;\\\\~_-]{0,40}") {
            if let Ok(n) = normalize_path(&s) {
                let again = normalize_path(&n).expect("normalized paths stay valid");
                prop_assert_eq!(&again, &n);
                prop_assert!(!n.contains("//") && !n.contains("/./") && !n.contains("/../"));
                prop_assert!(!n.to_ascii_lowercase().contains("%2f") && !n.to_ascii_lowercase().contains("%2e"));
            }
        }

        #[test]
        fn never_panics_on_any_string(s in "\\PC{0,64}") {
            let _ = normalize_path(&s);
        }
    }
}
