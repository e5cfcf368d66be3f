//! The one strict `multipart/form-data` reader (RFC 7578, RFC 2046 §5.1.1), shared by the
//! OpenAPI body validator and the proof of work's `altcha` field.
//!
//! The gateway reads a multipart body to decide on it, and the backend reads the same bytes
//! again with its own parser. Parsers disagree on everything the format leaves loose, so this one
//! accepts only the plain form every browser and common client sends, and refuses the rest with
//! a precise [`Error`] instead of picking a reading:
//!
//! - the `Content-Type`: `multipart/form-data` with exactly one `boundary` of 1 to 70 characters
//!   of RFC 2046's set, and no parameter given twice;
//! - the framing: the body opens with the first delimiter (no preamble), every delimiter starts a
//!   line and ends it (no transport padding, no bytes after it), and the close delimiter ends the
//!   body, followed by at most one CRLF (no epilogue);
//! - part heads: CRLF lines (no bare CR or LF, no obs-fold, no control characters, UTF-8), only
//!   `Content-Disposition` (exactly once), `Content-Type`, `Content-Transfer-Encoding` (an
//!   identity one) and `Content-Length` (the content's true length), each at most once;
//! - the disposition: `form-data; name="..."` with an optional `; filename="..."` after it, in
//!   that order and spelling; no other parameter (`name*`, `filename*`), none given twice, a
//!   non-empty name, and values a naive reader cannot misread (no `;`, `=`, `"`, `\` or control
//!   character; a name holding the word `filename`).
//!
//! What the parts mean (duplicate names, files) is the caller's business: it gets each part's
//! name, file name, content type and content range. The body is in memory and bounded by the
//! route's limit, so this is a scan for delimiters, not a streaming parser.

use std::fmt;
use std::ops::Range;

/// One part of an accepted body. Every string borrows from the body or the content type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part<'a> {
    pub name: &'a str,
    /// The `filename` parameter (possibly empty, as browsers send for an empty file input): the
    /// part is a file.
    pub filename: Option<&'a str>,
    pub content_type: Option<&'a str>,
    /// The part's content, as a range of the body.
    pub content: Range<usize>,
}

impl Part<'_> {
    pub fn is_file(&self) -> bool {
        self.filename.is_some()
    }
}

/// Why a body (or its content type) was refused. `Display` says it in words for a problem detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    NotFormData,
    ContentTypeSyntax,
    ContentTypeDuplicate,
    NoBoundary,
    InvalidBoundary,
    NoOpeningDelimiter,
    DelimiterLine,
    Unclosed,
    AfterClose,
    PartHead,
    UnknownHeader,
    DuplicateHeader,
    NoDisposition,
    NotFormDataDisposition,
    DispositionSyntax,
    DispositionDuplicate,
    DispositionUnknown,
    DispositionOrder,
    DispositionValue,
    NoName,
    PartContentType,
    TransferEncoding,
    PartLength,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::NotFormData => "the content type is not multipart/form-data",
            Error::ContentTypeSyntax => "the Content-Type parameters are malformed",
            Error::ContentTypeDuplicate => "a Content-Type parameter is given more than once",
            Error::NoBoundary => "the Content-Type has no boundary",
            Error::InvalidBoundary => "the boundary is not 1 to 70 characters of the set RFC 2046 allows",
            Error::NoOpeningDelimiter => "the body does not open with its first boundary delimiter",
            Error::DelimiterLine => "a boundary delimiter is not alone on its line",
            Error::Unclosed => "the body is not closed by its close delimiter",
            Error::AfterClose => "there is data after the close delimiter",
            Error::PartHead => "a part's header lines are malformed (bare CR or LF, folded line, control character or not UTF-8)",
            Error::UnknownHeader => "a part has a header other than Content-Disposition, Content-Type, Content-Transfer-Encoding and Content-Length",
            Error::DuplicateHeader => "a part has a header given more than once",
            Error::NoDisposition => "a part has no Content-Disposition",
            Error::NotFormDataDisposition => "a part's Content-Disposition is not form-data",
            Error::DispositionSyntax => "a part's Content-Disposition parameters are malformed",
            Error::DispositionDuplicate => "a part's Content-Disposition gives a parameter more than once",
            Error::DispositionUnknown => "a part's Content-Disposition has a parameter other than name and filename (spelled in lower case)",
            Error::DispositionOrder => "a part's Content-Disposition gives filename before name",
            Error::DispositionValue => "a part's name or filename holds a character or word that parsers read differently (; = \" \\, a control character, the word filename)",
            Error::NoName => "a part has no name, or an empty one",
            Error::PartContentType => "a part's Content-Type is malformed or names a charset other than UTF-8",
            Error::TransferEncoding => "a part has a Content-Transfer-Encoding other than 7bit, 8bit or binary",
            Error::PartLength => "a part's Content-Length is not the length of its content",
        })
    }
}

impl std::error::Error for Error {}

/// The longest boundary RFC 2046 allows.
const MAX_BOUNDARY: usize = 70;

/// The most parameters one header value may carry: duplicates are looked for pairwise, and a
/// part head can be as long as the body.
const MAX_PARAMETERS: usize = 16;

/// The boundary of a `multipart/form-data` content type (RFC 9110 media type syntax: no
/// whitespace around `=`, no empty parameter, no quoted-pair).
pub fn boundary(content_type: &str) -> Result<&str, Error> {
    let (essence, rest) =
        content_type.split_once(';').map_or((content_type, None), |(e, r)| (e, Some(r)));
    if !essence.eq_ignore_ascii_case("multipart/form-data") {
        return Err(Error::NotFormData);
    }
    let params = parameters(rest.unwrap_or(""), rest.is_some()).ok_or(Error::ContentTypeSyntax)?;
    let mut boundary = None;
    for (i, &(name, value)) in params.iter().enumerate() {
        if params[..i].iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            return Err(Error::ContentTypeDuplicate);
        }
        // mime (under multer) refuses an empty quoted value.
        if value.is_empty() {
            return Err(Error::ContentTypeSyntax);
        }
        if name.eq_ignore_ascii_case("boundary") {
            boundary = Some(value);
        }
    }
    let boundary = boundary.ok_or(Error::NoBoundary)?;
    if valid_boundary(boundary) { Ok(boundary) } else { Err(Error::InvalidBoundary) }
}

/// RFC 2046 §5.1.1: 1 to 70 `bchars`, the last not a space.
fn valid_boundary(b: &str) -> bool {
    (1..=MAX_BOUNDARY).contains(&b.len())
        && !b.ends_with(' ')
        && b.bytes().all(|c| c.is_ascii_alphanumeric() || b" '()+_,-./:=?".contains(&c))
}

fn is_token(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

/// `;`-led `name=value` parameters (RFC 9110 §5.6.6), each value a token or a quoted string;
/// spaces after a `;` only (mime, which multer uses, refuses them before one or at the end). `leading` says whether the text starts after a `;` (the caller split
/// it off), so that a lone trailing `;` and empty parameters are refused. Quoted values are
/// returned without their quotes; a backslash (quoted-pair) or control character in one is
/// refused rather than unescaped, since readers differ on it. `None` when malformed, or more
/// than [`MAX_PARAMETERS`].
fn parameters(s: &str, leading: bool) -> Option<Vec<(&str, &str)>> {
    let mut out = Vec::new();
    let mut rest = s;
    let mut first = leading;
    loop {
        if !first {
            // No trailing space either: mime refuses it (header values arrive trimmed).
            if rest.is_empty() {
                return Some(out);
            }
            rest = rest.strip_prefix(';')?;
        }
        first = false;
        rest = rest.trim_start_matches(' ');
        let name_len = rest.bytes().take_while(|&c| is_token(c)).count();
        if name_len == 0 {
            return None;
        }
        let (name, after) = rest.split_at(name_len);
        let after = after.strip_prefix('=')?;
        let (value, after) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"')?;
            let value = &quoted[..end];
            if value.bytes().any(|c| c == b'\\' || c.is_ascii_control()) {
                return None;
            }
            (value, &quoted[end + 1..])
        } else {
            let len = after.bytes().take_while(|&c| is_token(c)).count();
            if len == 0 {
                return None;
            }
            after.split_at(len)
        };
        if out.len() == MAX_PARAMETERS {
            return None;
        }
        out.push((name, value));
        rest = after;
    }
}

/// The parts of a body delimited by `boundary`, or why it is refused.
pub fn parse<'a>(body: &'a [u8], boundary: &str) -> Result<Vec<Part<'a>>, Error> {
    if !valid_boundary(boundary) {
        return Err(Error::InvalidBoundary);
    }
    // "\r\n--" + boundary, on the stack: a delimiter is only ever one at a line start.
    let mut buf = [0u8; MAX_BOUNDARY + 4];
    buf[..4].copy_from_slice(b"\r\n--");
    buf[4..4 + boundary.len()].copy_from_slice(boundary.as_bytes());
    let delimiter = &buf[..4 + boundary.len()];
    let finder = memchr::memmem::Finder::new(delimiter);
    // No preamble: the body opens with the first delimiter, without its CRLF.
    if !body.starts_with(&delimiter[2..]) {
        return Err(Error::NoOpeningDelimiter);
    }
    let mut pos = delimiter.len() - 2;
    let mut parts = Vec::new();
    loop {
        let rest = &body[pos..];
        if let Some(after) = rest.strip_prefix(b"--") {
            // The close delimiter: at most a CRLF after it, no epilogue.
            return if after.is_empty() || after == b"\r\n" {
                Ok(parts)
            } else {
                Err(Error::AfterClose)
            };
        }
        if !rest.starts_with(b"\r\n") {
            return Err(if rest.is_empty() { Error::Unclosed } else { Error::DelimiterLine });
        }
        let start = pos + 2;
        if body[start..].starts_with(b"\r\n") {
            return Err(Error::NoDisposition);
        }
        let head_len = memchr::memmem::find(&body[start..], b"\r\n\r\n").ok_or(Error::Unclosed)?;
        let content_start = start + head_len + 4;
        let content_len = finder.find(&body[content_start..]).ok_or(Error::Unclosed)?;
        let content = content_start..content_start + content_len;
        parts.push(part(&body[start..start + head_len], content)?);
        pos = content_start + content_len + delimiter.len();
    }
}

/// One part from its head (the header lines, without the blank line) and content range.
fn part(head: &[u8], content: Range<usize>) -> Result<Part<'_>, Error> {
    let head = std::str::from_utf8(head).map_err(|_| Error::PartHead)?;
    let (mut disposition, mut content_type, mut encoding, mut length) = (None, None, None, None);
    for line in head.split("\r\n") {
        // Lines end in CRLF only; HTAB and every other control byte, and a leading space
        // (obs-fold), are refused.
        if line.bytes().any(|c| c.is_ascii_control()) || line.starts_with(' ') {
            return Err(Error::PartHead);
        }
        let (name, value) = line.split_once(':').ok_or(Error::PartHead)?;
        if name.is_empty() || !name.bytes().all(is_token) {
            return Err(Error::PartHead);
        }
        let is = |known: &str| name.eq_ignore_ascii_case(known);
        let slot = if is("content-disposition") {
            &mut disposition
        } else if is("content-type") {
            &mut content_type
        } else if is("content-transfer-encoding") {
            &mut encoding
        } else if is("content-length") {
            &mut length
        } else {
            return Err(Error::UnknownHeader);
        };
        if slot.replace(value.trim_matches(' ')).is_some() {
            return Err(Error::DuplicateHeader);
        }
    }
    let (name, filename) = disposition_of(disposition.ok_or(Error::NoDisposition)?)?;
    if let Some(ct) = content_type {
        check_part_type(ct)?;
    }
    if let Some(e) = encoding
        && !["7bit", "8bit", "binary"].iter().any(|ok| e.eq_ignore_ascii_case(ok))
    {
        return Err(Error::TransferEncoding);
    }
    // A canonical decimal equal to the content's length: a reader that trusts it reads the same.
    if let Some(l) = length
        && (l.is_empty()
            || !l.bytes().all(|c| c.is_ascii_digit())
            || (l.len() > 1 && l.starts_with('0'))
            || l.parse::<usize>().ok() != Some(content.len()))
    {
        return Err(Error::PartLength);
    }
    Ok(Part { name, filename, content_type, content })
}

/// `form-data; name="..."[; filename="..."]`: the name and file name.
fn disposition_of<'a>(value: &'a str) -> Result<(&'a str, Option<&'a str>), Error> {
    let (kind, rest) = value.split_once(';').map_or((value, None), |(k, r)| (k, Some(r)));
    if kind != "form-data" {
        return Err(Error::NotFormDataDisposition);
    }
    let params = parameters(rest.unwrap_or(""), rest.is_some()).ok_or(Error::DispositionSyntax)?;
    // `filename*` is `filename` spelled otherwise (RFC 2231): the same parameter twice.
    let base = |n: &'a str| n.strip_suffix('*').unwrap_or(n);
    for (i, (n, _)) in params.iter().enumerate() {
        if params[..i].iter().any(|(m, _)| base(m).eq_ignore_ascii_case(base(n))) {
            return Err(Error::DispositionDuplicate);
        }
    }
    if params.iter().any(|(n, _)| *n != "name" && *n != "filename") {
        return Err(Error::DispositionUnknown);
    }
    if !params.iter().any(|(n, _)| *n == "name") {
        return Err(Error::NoName);
    }
    let (name, filename) = match params.as_slice() {
        [("name", name)] => (*name, None),
        [("name", name), ("filename", file)] => (*name, Some(*file)),
        _ => return Err(Error::DispositionOrder),
    };
    // Naive readers (multer among them) search the header for `name` and `filename` after a
    // space or `;`, and split at `;`; a value holding either would be read as a parameter.
    let misreadable = |v: &str| {
        v.bytes().any(|c| matches!(c, b';' | b'=' | b'"' | b'\\'))
            || v.bytes().any(|c| c.is_ascii_control())
    };
    if misreadable(name) || filename.is_some_and(misreadable) || holds_word(name, "filename") {
        return Err(Error::DispositionValue);
    }
    if name.is_empty() {
        return Err(Error::NoName);
    }
    Ok((name, filename))
}

/// Whether `word` (ASCII) starts after a space in `s`, in any case.
fn holds_word(s: &str, word: &str) -> bool {
    s.match_indices(' ').any(|(i, _)| {
        s.as_bytes()[i + 1..]
            .get(..word.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(word.as_bytes()))
    })
}

/// A part's `type/subtype` with parameters; a charset, if given, is UTF-8 (what the gateway
/// validates text as; a backend would decode another charset into other text).
fn check_part_type(ct: &str) -> Result<(), Error> {
    let (essence, rest) = ct.split_once(';').map_or((ct, None), |(e, r)| (e, Some(r)));
    let well_formed = essence.split_once('/').is_some_and(|(t, s)| {
        !t.is_empty() && !s.is_empty() && t.bytes().all(is_token) && s.bytes().all(is_token)
    });
    let params = parameters(rest.unwrap_or(""), rest.is_some())
        .filter(|_| well_formed)
        .ok_or(Error::PartContentType)?;
    for (i, (n, v)) in params.iter().enumerate() {
        if params[..i].iter().any(|(m, _)| m.eq_ignore_ascii_case(n))
            || (n.eq_ignore_ascii_case("charset") && !v.eq_ignore_ascii_case("utf-8"))
        {
            return Err(Error::PartContentType);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: &str = "----WebKitFormBoundaryX3bY9nLq2mZ8aB7c";

    /// A body of parts, each given as its head lines and content.
    fn body(parts: &[(&str, &str)]) -> Vec<u8> {
        let mut b = String::new();
        for (head, content) in parts {
            b.push_str(&format!("--{B}\r\n{head}\r\n\r\n{content}\r\n"));
        }
        b.push_str(&format!("--{B}--\r\n"));
        b.into_bytes()
    }

    fn field(name: &str, content: &str) -> (String, String) {
        (format!("Content-Disposition: form-data; name=\"{name}\""), content.to_owned())
    }

    fn parse_str(b: &[u8]) -> Result<Vec<(String, bool, String)>, Error> {
        parse(b, B).map(|parts| {
            parts
                .iter()
                .map(|p| {
                    (
                        p.name.to_owned(),
                        p.is_file(),
                        String::from_utf8_lossy(&b[p.content.clone()]).into_owned(),
                    )
                })
                .collect()
        })
    }

    fn one(head: &str) -> Result<Vec<(String, bool, String)>, Error> {
        parse_str(&body(&[(head, "v")]))
    }

    #[test]
    fn a_browser_built_body_is_read() {
        let b = body(&[
            ("Content-Disposition: form-data; name=\"name\"", "Ada"),
            ("Content-Disposition: form-data; name=\"note\"", "two\r\nlines -- and a --dash"),
            (
                "Content-Disposition: form-data; name=\"file\"; filename=\"a b.txt\"\r\nContent-Type: text/plain",
                "file\r\n",
            ),
            (
                "Content-Disposition: form-data; name=\"empty\"; filename=\"\"\r\nContent-Type: application/octet-stream",
                "",
            ),
            (
                "content-disposition: form-data; name=token_name\r\ncontent-type: text/plain; charset=UTF-8\r\ncontent-transfer-encoding: binary\r\ncontent-length: 1",
                "x",
            ),
            ("Content-Disposition: form-data; name=\"名前\"", "ü"),
        ]);
        let parts = parse(&b, B).unwrap();
        let got: Vec<_> = parts
            .iter()
            .map(|p| (p.name, p.filename, p.content_type, &b[p.content.clone()]))
            .collect();
        assert_eq!(
            got,
            vec![
                ("name", None, None, &b"Ada"[..]),
                ("note", None, None, b"two\r\nlines -- and a --dash"),
                ("file", Some("a b.txt"), Some("text/plain"), b"file\r\n"),
                ("empty", Some(""), Some("application/octet-stream"), b""),
                ("token_name", None, Some("text/plain; charset=UTF-8"), b"x"),
                ("名前", None, None, "ü".as_bytes()),
            ]
        );
        // No final CRLF, and a form with no fields.
        let b = format!("--{B}\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--{B}--");
        assert_eq!(parse_str(b.as_bytes()).unwrap(), vec![("a".into(), false, "1".into())]);
        assert_eq!(parse_str(format!("--{B}--\r\n").as_bytes()).unwrap(), vec![]);
    }

    #[test]
    fn the_boundary_is_one_valid_parameter() {
        assert_eq!(boundary(&format!("multipart/form-data; boundary={B}")), Ok(B));
        assert_eq!(boundary("Multipart/Form-Data;boundary=\"a b'c\""), Ok("a b'c"));
        assert_eq!(boundary("multipart/form-data; charset=utf-8; boundary=x"), Ok("x"));
        // A `;` inside another parameter's quoted value starts nothing.
        assert_eq!(
            boundary("multipart/form-data; x=\"a;boundary=evil\"; boundary=real"),
            Ok("real")
        );
        let cases = [
            ("multipart/mixed; boundary=x", Error::NotFormData),
            ("text/plain", Error::NotFormData),
            ("multipart/form-data", Error::NoBoundary),
            ("multipart/form-data; charset=utf-8", Error::NoBoundary),
            // Given twice, in any case: readers take the first or the last.
            ("multipart/form-data; boundary=a; boundary=b", Error::ContentTypeDuplicate),
            ("multipart/form-data; boundary=a; BOUNDARY=a", Error::ContentTypeDuplicate),
            ("multipart/form-data; charset=a; charset=b; boundary=x", Error::ContentTypeDuplicate),
            ("multipart/form-data; boundary=", Error::ContentTypeSyntax),
            ("multipart/form-data; boundary = x", Error::ContentTypeSyntax),
            ("multipart/form-data;", Error::ContentTypeSyntax),
            ("multipart/form-data; boundary=x;", Error::ContentTypeSyntax),
            ("multipart/form-data;; boundary=x", Error::ContentTypeSyntax),
            ("multipart/form-data; boundary=x y", Error::ContentTypeSyntax),
            ("multipart/form-data; charset=utf-8 ; boundary=x", Error::ContentTypeSyntax),
            ("multipart/form-data ; boundary=x", Error::NotFormData),
            ("multipart/form-data; boundary=x ", Error::ContentTypeSyntax),
            ("multipart/form-data; boundary=\"unterminated", Error::ContentTypeSyntax),
            ("multipart/form-data; boundary=\"a\\\"b\"", Error::ContentTypeSyntax),
            ("multipart/form-data; boundary=\"tab\there\"", Error::ContentTypeSyntax),
            ("multipart/form-data; boundary=\"\"", Error::ContentTypeSyntax),
            ("multipart/form-data; boundary=x; charset=\"\"", Error::ContentTypeSyntax),
            ("multipart/form-data; boundary=\"ends in space \"", Error::InvalidBoundary),
            ("multipart/form-data; boundary=\"semi;colon\"", Error::InvalidBoundary),
            ("multipart/form-data; boundary=a*b", Error::InvalidBoundary),
        ];
        for (ct, e) in cases {
            assert_eq!(boundary(ct), Err(e), "{ct}");
        }
        assert_eq!(
            boundary(&format!("multipart/form-data; boundary={}", "b".repeat(71))),
            Err(Error::InvalidBoundary)
        );
        // Duplicates are looked for pairwise, so the parameters are few.
        let many: String = (0..16).map(|i| format!("; p{i}=v")).collect();
        assert_eq!(
            boundary(&format!("multipart/form-data{many}; boundary=x")),
            Err(Error::ContentTypeSyntax)
        );
        assert_eq!(
            boundary(&format!(
                "multipart/form-data{}; boundary=x",
                &many[..many.rfind(';').unwrap()]
            )),
            Ok("x")
        );
        assert!(boundary(&format!("multipart/form-data; boundary={}", "b".repeat(70))).is_ok());
        assert_eq!(parse(b"--x--", &"b".repeat(71)), Err(Error::InvalidBoundary));
    }

    #[test]
    fn every_delimiter_is_alone_on_its_line() {
        let good = body(&[(&field("a", "1").0, "1")]);
        let good = String::from_utf8(good).unwrap();
        let cases = [
            // The first delimiter must open the body: no preamble, not even a line break.
            (format!("preamble\r\n{good}"), Error::NoOpeningDelimiter),
            (format!("\r\n{good}"), Error::NoOpeningDelimiter),
            (good.replace(B, "other"), Error::NoOpeningDelimiter),
            // Transport padding or anything else after a delimiter.
            (good.replacen(&format!("--{B}\r\n"), &format!("--{B} \r\n"), 1), Error::DelimiterLine),
            (good.replacen(&format!("--{B}\r\n"), &format!("--{B}x\r\n"), 1), Error::DelimiterLine),
            (good.replace(&format!("--{B}--"), &format!("--{B}x--")), Error::DelimiterLine),
            // Not closed, or something after the close delimiter.
            (good.replace(&format!("--{B}--\r\n"), ""), Error::Unclosed),
            (good.replace(&format!("\r\n--{B}--\r\n"), &format!("\r\n--{B}")), Error::Unclosed),
            (good[..good.len() / 2].to_owned(), Error::Unclosed),
            (format!("{good}epilogue"), Error::AfterClose),
            (format!("{good}\r\n"), Error::AfterClose),
            (good.replace(&format!("--{B}--\r\n"), &format!("--{B}-- \r\n")), Error::AfterClose),
            // Bare LF line endings.
            (good.replace("\r\n", "\n"), Error::DelimiterLine),
        ];
        for (case, e) in cases {
            assert_eq!(parse_str(case.as_bytes()), Err(e), "{case:?}");
        }
        // A delimiter without a line break before it is content, not a delimiter: the part
        // runs on to the real one.
        let b = format!(
            "--{B}\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1--{B}\r\nContent-Disposition: form-data; name=\"b\"\r\n\r\n2\r\n--{B}--\r\n"
        );
        let parts = parse_str(b.as_bytes()).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(
            parts[0].2,
            format!("1--{B}\r\nContent-Disposition: form-data; name=\"b\"\r\n\r\n2")
        );
    }

    #[test]
    fn part_heads_are_plain_crlf_lines_of_known_headers_each_given_once() {
        let cases = [
            ("Content-Disposition: form-data; name=\"a\"\nX: y", Error::PartHead),
            ("Content-Disposition: form-data; name=\"a\"\rX: y", Error::PartHead),
            ("Content-Disposition: form-data;\r\n name=\"a\"", Error::PartHead),
            ("Content-Disposition: form-data;\r\n\tname=\"a\"", Error::PartHead),
            ("Content-Disposition: form-data;\tname=\"a\"", Error::PartHead),
            ("Content-Disposition : form-data; name=\"a\"", Error::PartHead),
            ("Content-Disposition form-data; name=\"a\"", Error::PartHead),
            (": form-data; name=\"a\"", Error::PartHead),
            ("Content-Disposition: form-data; name=\"a\"\r\nX-Other: 1", Error::UnknownHeader),
            (
                "Content-Disposition: form-data; name=\"a\"\r\nContent-Type: text/plain\r\ncontent-type: text/html",
                Error::DuplicateHeader,
            ),
            (
                "Content-Disposition: form-data; name=\"a\"\r\ncontent-disposition: form-data; name=\"b\"",
                Error::DuplicateHeader,
            ),
            ("Content-Type: text/plain", Error::NoDisposition),
            (
                "Content-Disposition: form-data; name=\"a\"\r\nContent-Transfer-Encoding: base64",
                Error::TransferEncoding,
            ),
            (
                "Content-Disposition: form-data; name=\"a\"\r\nContent-Transfer-Encoding: quoted-printable",
                Error::TransferEncoding,
            ),
            ("Content-Disposition: form-data; name=\"a\"\r\nContent-Length: 2", Error::PartLength),
            ("Content-Disposition: form-data; name=\"a\"\r\nContent-Length: 01", Error::PartLength),
            ("Content-Disposition: form-data; name=\"a\"\r\nContent-Length: +1", Error::PartLength),
            ("Content-Disposition: form-data; name=\"a\"\r\nContent-Length: ", Error::PartLength),
            (
                "Content-Disposition: form-data; name=\"a\"\r\nContent-Type: text/plain; charset=utf-16",
                Error::PartContentType,
            ),
            (
                "Content-Disposition: form-data; name=\"a\"\r\nContent-Type: text/plain; charset=utf-8; charset=utf-8",
                Error::PartContentType,
            ),
            (
                "Content-Disposition: form-data; name=\"a\"\r\nContent-Type: text",
                Error::PartContentType,
            ),
            (
                "Content-Disposition: form-data; name=\"a\"\r\nContent-Type: ",
                Error::PartContentType,
            ),
        ];
        for (head, e) in cases {
            assert_eq!(one(head), Err(e), "{head:?}");
        }
        // No head at all, and a head that is not UTF-8.
        assert_eq!(
            parse_str(format!("--{B}\r\n\r\nv\r\n--{B}--").as_bytes()),
            Err(Error::NoDisposition)
        );
        let mut b = format!("--{B}\r\nContent-Disposition: form-data; name=\"").into_bytes();
        b.extend_from_slice(&[0xff, b'"']);
        b.extend_from_slice(format!("\r\n\r\nv\r\n--{B}--").as_bytes());
        assert_eq!(parse_str(&b), Err(Error::PartHead));
        // A header line (a delimiter line) where the blank line should have been.
        let b = format!(
            "--{B}\r\nContent-Disposition: form-data; name=\"a\"\r\n--{B}\r\nContent-Disposition: form-data; name=\"b\"\r\n\r\nv\r\n--{B}--"
        );
        assert_eq!(parse_str(b.as_bytes()), Err(Error::PartHead));
    }

    #[test]
    fn the_disposition_is_form_data_with_a_name_and_maybe_a_filename() {
        let cases = [
            ("Content-Disposition: attachment; name=\"a\"", Error::NotFormDataDisposition),
            ("Content-Disposition: Form-Data; name=\"a\"", Error::NotFormDataDisposition),
            ("Content-Disposition: form-data", Error::NoName),
            ("Content-Disposition: form-data; filename=\"a\"", Error::NoName),
            ("Content-Disposition: form-data; name=\"\"", Error::NoName),
            ("Content-Disposition: form-data; name=\"a\"; name=\"b\"", Error::DispositionDuplicate),
            ("Content-Disposition: form-data; name=\"a\"; NAME=\"b\"", Error::DispositionDuplicate),
            (
                "Content-Disposition: form-data; name=\"a\"; filename=\"x\"; filename=\"y\"",
                Error::DispositionDuplicate,
            ),
            (
                "Content-Disposition: form-data; name=\"a\"; filename=\"x\"; filename*=UTF-8''y",
                Error::DispositionDuplicate,
            ),
            (
                "Content-Disposition: form-data; name=\"a\"; name*=UTF-8''b",
                Error::DispositionDuplicate,
            ),
            ("Content-Disposition: form-data; name*=UTF-8''b", Error::DispositionUnknown),
            (
                "Content-Disposition: form-data; name=\"a\"; filename*=UTF-8''y",
                Error::DispositionUnknown,
            ),
            ("Content-Disposition: form-data; Name=\"a\"", Error::DispositionUnknown),
            ("Content-Disposition: form-data; name=\"a\"; size=3", Error::DispositionUnknown),
            // The original bypass: `filename=` inside another parameter's quoted value.
            (
                "Content-Disposition: form-data; name=\"a\"; x=\"filename=y\"",
                Error::DispositionUnknown,
            ),
            ("Content-Disposition: form-data; filename=\"x\"; name=\"a\"", Error::DispositionOrder),
            ("Content-Disposition: form-data; name=\"a; filename=x\"", Error::DispositionValue),
            (
                "Content-Disposition: form-data; name=\"a\"; filename=\"x; name=b\"",
                Error::DispositionValue,
            ),
            ("Content-Disposition: form-data; name=\"a=b\"", Error::DispositionValue),
            (
                "Content-Disposition: form-data; name=\"my filename\"; filename=\"x\"",
                Error::DispositionValue,
            ),
            ("Content-Disposition: form-data; name=\"a\\\"b\"", Error::DispositionSyntax),
            ("Content-Disposition: form-data; name=a\"b\"", Error::DispositionSyntax),
            ("Content-Disposition: form-data; name=\"a", Error::DispositionSyntax),
            ("Content-Disposition: form-data; name", Error::DispositionSyntax),
            ("Content-Disposition: form-data; name=", Error::DispositionSyntax),
            ("Content-Disposition: form-data; name = \"a\"", Error::DispositionSyntax),
            ("Content-Disposition: form-data;; name=\"a\"", Error::DispositionSyntax),
            ("Content-Disposition: form-data; name=\"a\";", Error::DispositionSyntax),
            ("Content-Disposition: form-data name=\"a\"", Error::NotFormDataDisposition),
        ];
        for (head, e) in cases {
            assert_eq!(one(head), Err(e), "{head:?}");
        }
        // Spaces after `;` are fine, not before it; a file name may hold spaces and the word name.
        assert_eq!(
            one("Content-Disposition: form-data;name=\"a\";  filename=\"my name.txt\" ").unwrap(),
            vec![("a".into(), true, "v".into())]
        );
        assert_eq!(
            one("Content-Disposition: form-data ; name=\"a\""),
            Err(Error::NotFormDataDisposition)
        );
        assert_eq!(
            one("Content-Disposition: form-data; name=\"a\" ; filename=\"b\""),
            Err(Error::DispositionSyntax)
        );
    }

    #[test]
    fn duplicate_names_are_the_callers_to_judge() {
        let (h, _) = field("a", "");
        let b = body(&[(&h, "1"), (&h, "2")]);
        assert_eq!(
            parse_str(&b).unwrap(),
            vec![("a".into(), false, "1".into()), ("a".into(), false, "2".into())]
        );
    }

    /// Differential with multer (the parser axum uses): bodies built from fragments that
    /// parsers read differently, then mutated byte by byte. Whenever this reader accepts, multer
    /// reads the same boundary and the same parts. The fuzz target `multipart` does the same on
    /// free-form input.
    mod differential {
        use std::future::Future;
        use std::task::{Context, Poll, Waker};

        use proptest::prelude::*;

        use super::super::*;

        const TYPES: &[&str] = &[
            "multipart/form-data; boundary=b",
            "multipart/form-data; boundary=\"b\"",
            "Multipart/Form-Data;boundary=b; charset=utf-8",
            "multipart/form-data; boundary=b; boundary=c",
            "multipart/form-data; boundary=\"a b:c\"",
            "multipart/form-data; x=\"boundary=c\"; boundary=b",
            "multipart/form-data ; boundary=b",
            "multipart/form-data; boundary=b ",
            "multipart/form-data; boundary=b; x=\"\"",
        ];
        const BOUNDARIES: &[&str] = &["b", "a b:c", "c"];
        const DISPOSITIONS: &[&str] = &[
            "form-data; name=\"a\"",
            "form-data; name=a",
            "form-data; name=\"a\"; filename=\"f.txt\"",
            "form-data; name=\"a\"; filename=\"\"",
            "form-data; name=\"my name\"; filename=\"my name.txt\"",
            "form-data; name=\"x filename\"; filename=\"f\"",
            "form-data; name=\"a\"; x=\"filename=y\"",
            "form-data; filename=\"a; name=b\"; name=\"c\"",
            "form-data; name=\"a\"; filename=\"x; name=b\"",
            "form-data; name=\"a\\\"b\"",
            "form-data; name=\"名前\"",
            "form-data; name=\"a\"; name=\"b\"",
            "form-data; NAME=\"a\"",
            "form-data;name=a;filename=b",
            "form-data ; name=\"a\" ; filename=\"b\" ",
            "form-data;name=\"a\";  filename=\"b\" ",
            "form-data; name=\"\"",
            "attachment; name=\"a\"",
        ];
        const HEADERS: &[&str] = &[
            "",
            "Content-Type: text/plain\r\n",
            "content-type: text/plain; charset=utf-8\r\n",
            "Content-Length: 1\r\n",
            "Content-Transfer-Encoding: binary\r\n",
            "X-Other: 1\r\n",
        ];
        const CONTENTS: &[&str] =
            &["", "v", "a\r\n--b", "--b", "\r\n", "x\r\n--bx", "line\r\nline"];
        const AFTER_DELIMITER: &[&str] = &["\r\n", "\r\n", "\r\n", " \r\n", "\n", "x\r\n"];
        const CLOSES: &[&str] = &["--\r\n", "--", "--\r\nepilogue", "-- \r\n"];
        const PREAMBLES: &[&str] = &["", "", "", "x", "\r\n", "x--b--\r\n"];

        fn block_on<F: Future>(f: F) -> F::Output {
            let mut f = std::pin::pin!(f);
            let mut cx = Context::from_waker(Waker::noop());
            for _ in 0..10_000 {
                if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                    return v;
                }
            }
            panic!("multer did not finish reading an in-memory body");
        }

        type Read = Vec<(Option<String>, Option<String>, bytes::Bytes)>;

        fn multer_parts(body: &[u8], boundary: &str) -> Result<Read, multer::Error> {
            let chunk = bytes::Bytes::copy_from_slice(body);
            let stream = futures_util::stream::once(async move {
                Ok::<bytes::Bytes, std::convert::Infallible>(chunk)
            });
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

        /// What `fuzz/fuzz_targets/multipart.rs` asserts, on one content type and body.
        pub(super) fn agree(content_type: &str, body: &[u8]) {
            let Ok(boundary) = boundary(content_type) else { return };
            assert_eq!(
                multer::parse_boundary(content_type).ok().as_deref(),
                Some(boundary),
                "{content_type:?}"
            );
            let Ok(parts) = parse(body, boundary) else { return };
            let theirs = multer_parts(body, boundary).unwrap_or_else(|e| {
                panic!("multer refuses {:?}: {e}", String::from_utf8_lossy(body))
            });
            assert_eq!(
                parts.len(),
                theirs.len(),
                "{:?}: {parts:?} vs {theirs:?}",
                String::from_utf8_lossy(body)
            );
            for (ours, (name, file, content)) in parts.iter().zip(&theirs) {
                assert_eq!(
                    (Some(ours.name), ours.filename, &body[ours.content.clone()]),
                    (name.as_deref(), file.as_deref(), &content[..]),
                    "{:?}",
                    String::from_utf8_lossy(body)
                );
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]
            #[test]
            fn whatever_this_reader_accepts_multer_reads_the_same(
                ct in 0..TYPES.len(),
                b in 0..BOUNDARIES.len(),
                preamble in 0..PREAMBLES.len(),
                parts in proptest::collection::vec((0..DISPOSITIONS.len(), 0..HEADERS.len(), 0..CONTENTS.len(), 0..AFTER_DELIMITER.len()), 0..4),
                close in 0..CLOSES.len(),
                edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..3u8), 0..3),
            ) {
                let boundary = BOUNDARIES[b];
                let mut body = PREAMBLES[preamble].replace("--b", &format!("--{boundary}"));
                for &(d, h, c, after) in &parts {
                    let content = CONTENTS[c].replace("--b", &format!("--{boundary}"));
                    body.push_str(&format!("--{boundary}{}Content-Disposition: {}\r\n{}\r\n{content}\r\n", AFTER_DELIMITER[after], DISPOSITIONS[d], HEADERS[h]));
                }
                body.push_str(&format!("--{boundary}{}", CLOSES[close]));
                let mut raw = body.into_bytes();
                for (at, byte, kind) in edits {
                    let i = at.index(raw.len() + 1);
                    match kind {
                        0 if i < raw.len() => raw[i] = byte,
                        1 if i < raw.len() => { raw.remove(i); }
                        _ => raw.insert(i.min(raw.len()), byte),
                    }
                }
                agree(TYPES[ct], &raw);
            }
        }

        #[test]
        fn the_seed_bodies_agree() {
            let b = "----WebKitFormBoundaryX3bY9nLq2mZ8aB7c";
            let body = format!(
                "--{b}\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--{b}\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a b.txt\"\r\nContent-Type: text/plain\r\n\r\nx\r\n--{b}--\r\n"
            );
            agree(&format!("multipart/form-data; boundary={b}"), body.as_bytes());
            assert_eq!(parse(body.as_bytes(), b).map(|p| p.len()), Ok(2));
        }
    }
}
