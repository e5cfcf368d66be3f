//! The one form field the proof of work reads from a `multipart/form-data` body (RFC 7578):
//! what a page sends with `fetch(url, { method: "POST", body: new FormData(form) })`, and what
//! a form with `enctype="multipart/form-data"` posts.
//!
//! Only a whole body already in memory (at most [`super::MAX_FIELD_BODY`]) is read, so this is
//! a scan for delimiters, not a streaming parser. It is strict where the format is ambiguous:
//! a boundary parameter or a part's `name` given twice, a delimiter line with anything after
//! it, or a body that never closes is malformed, never guessed at.

/// The boundary of a `multipart/form-data` content type: 1 to 70 characters of the set RFC 2046
/// §5.1.1 allows, not ending in a space. `None` for another type, or a missing or bad boundary.
pub fn boundary(content_type: &str) -> Option<String> {
    let (essence, rest) = content_type.split_once(';').unwrap_or((content_type, ""));
    if !essence.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    let (_, value) = parameters(rest).ok()?.into_iter().find(|(name, _)| name.eq_ignore_ascii_case("boundary"))?;
    let valid = (1..=70).contains(&value.len())
        && !value.ends_with(' ')
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || b" '()+_,-./:=?".contains(&b));
    valid.then_some(value)
}

/// The value of the one part named `name` that is not a file. `Ok(None)` when there is none,
/// or more than one (readers behind the gateway could disagree on which copy counts); `Err`
/// when the body is not a multipart body delimited by `boundary`.
pub fn field(body: &[u8], boundary: &str, name: &str) -> Result<Option<String>, &'static str> {
    let dash_boundary = format!("--{boundary}");
    let delimiter = format!("\r\n{dash_boundary}");
    // The first delimiter opens the body or follows a preamble line.
    let mut pos = if body.starts_with(dash_boundary.as_bytes()) {
        dash_boundary.len()
    } else {
        memchr::memmem::find(body, delimiter.as_bytes()).ok_or("no multipart delimiter")? + delimiter.len()
    };
    let mut found: Option<&[u8]> = None;
    let mut copies = 0;
    loop {
        let rest = &body[pos..];
        if rest.starts_with(b"--") {
            break; // The close delimiter; what follows is the epilogue.
        }
        let padding = rest.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
        if !rest[padding..].starts_with(b"\r\n") {
            return Err("a multipart delimiter line with more after it");
        }
        let part = pos + padding + 2;
        let mut slots = [httparse::EMPTY_HEADER; 16];
        let (head_len, headers) = match httparse::parse_headers(&body[part..], &mut slots) {
            Ok(httparse::Status::Complete(parsed)) => parsed,
            Ok(httparse::Status::Partial) => return Err("an unterminated multipart part head"),
            Err(_) => return Err("a malformed multipart part head"),
        };
        let mut disposition = headers.iter().filter(|h| h.name.eq_ignore_ascii_case("content-disposition"));
        let (Some(cd), None) = (disposition.next(), disposition.next()) else {
            return Err("a multipart part without exactly one Content-Disposition");
        };
        let content_start = part + head_len;
        let content_len = memchr::memmem::find(&body[content_start..], delimiter.as_bytes()).ok_or("an unterminated multipart body")?;
        if is_field_named(cd.value, name)? {
            copies += 1;
            found = Some(&body[content_start..content_start + content_len]);
        }
        pos = content_start + content_len + delimiter.len();
    }
    match (copies, found) {
        (1, Some(value)) => std::str::from_utf8(value).map(|v| Some(v.to_owned())).map_err(|_| "a multipart field that is not UTF-8"),
        _ => Ok(None),
    }
}

/// Whether a part's Content-Disposition is `form-data` with this `name` and no file name.
fn is_field_named(disposition: &[u8], name: &str) -> Result<bool, &'static str> {
    let disposition = std::str::from_utf8(disposition).map_err(|_| "a Content-Disposition that is not UTF-8")?;
    let (kind, rest) = disposition.split_once(';').unwrap_or((disposition, ""));
    if !kind.trim().eq_ignore_ascii_case("form-data") {
        return Ok(false);
    }
    let params = parameters(rest).map_err(|_| "a malformed Content-Disposition")?;
    let file = params.iter().any(|(k, _)| k.eq_ignore_ascii_case("filename") || k.eq_ignore_ascii_case("filename*"));
    let named = params.iter().any(|(k, v)| k.eq_ignore_ascii_case("name") && v == name);
    Ok(named && !file)
}

/// `; name=value` pairs (RFC 9110 §5.6.6), each value a token or a quoted string; a parameter
/// given twice makes the list malformed.
fn parameters(s: &str) -> Result<Vec<(String, String)>, ()> {
    let is_token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    let mut out: Vec<(String, String)> = Vec::new();
    let mut chars = s.trim_start_matches([' ', '\t']).chars().peekable();
    let skip_ows = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| {
        while chars.next_if(|&c| c == ' ' || c == '\t').is_some() {}
    };
    // The caller split off the first ';' already.
    loop {
        skip_ows(&mut chars);
        let mut key = String::new();
        while let Some(c) = chars.next_if(|&c| is_token(c)) {
            key.push(c);
        }
        if key.is_empty() {
            // Nothing (or only whitespace) after a ';' is tolerated; anything else is not.
            return if chars.peek().is_none() { Ok(out) } else { Err(()) };
        }
        if chars.next() != Some('=') {
            return Err(());
        }
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next().ok_or(())? {
                    '"' => break,
                    '\\' => value.push(chars.next().ok_or(())?),
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|&c| is_token(c)) {
                value.push(c);
            }
            if value.is_empty() {
                return Err(());
            }
        }
        if out.iter().any(|(k, _)| k.eq_ignore_ascii_case(&key)) {
            return Err(());
        }
        out.push((key, value));
        skip_ows(&mut chars);
        match chars.next() {
            None => return Ok(out),
            Some(';') => {}
            Some(_) => return Err(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROME: &str = "------WebKitFormBoundaryX3bY9nLq2mZ8aB7c";

    fn body(parts: &[(&str, &str)]) -> String {
        let mut b = String::new();
        for (disposition, value) in parts {
            b.push_str(&format!("--{CHROME}\r\nContent-Disposition: {disposition}\r\n\r\n{value}\r\n"));
        }
        b.push_str(&format!("--{CHROME}--\r\n"));
        b
    }

    #[test]
    fn the_boundary_comes_from_a_multipart_form_data_type_only() {
        assert_eq!(boundary(&format!("multipart/form-data; boundary={CHROME}")).as_deref(), Some(CHROME));
        assert_eq!(boundary("Multipart/Form-Data;boundary=\"a b'c\"").as_deref(), Some("a b'c"));
        assert_eq!(boundary("multipart/form-data; charset=utf-8; boundary=x").as_deref(), Some("x"));
        // A ';' inside another parameter's quoted value does not start a parameter.
        assert_eq!(boundary("multipart/form-data; x=\"a;boundary=evil\"; boundary=real").as_deref(), Some("real"));
        for bad in [
            "multipart/mixed; boundary=x",
            "multipart/form-data",
            "multipart/form-data; boundary=",
            "multipart/form-data; boundary=\"\"",
            "multipart/form-data; boundary=\"ends in space \"",
            "multipart/form-data; boundary=\"semi;colon\"",
            "multipart/form-data; boundary=a; boundary=b",
            "multipart/form-data; boundary=x y",
            "multipart/form-data; boundary=\"unterminated",
        ] {
            assert_eq!(boundary(bad), None, "{bad}");
        }
        assert_eq!(boundary(&format!("multipart/form-data; boundary={}", "b".repeat(71))), None);
        assert!(boundary(&format!("multipart/form-data; boundary={}", "b".repeat(70))).is_some());
    }

    #[test]
    fn the_field_of_a_browser_built_body_is_found() {
        let b = body(&[("form-data; name=\"name\"", "Ada"), ("form-data; name=\"altcha\"", "eyJhbGci"), ("form-data; name=\"note\"", "two\r\nlines")]);
        assert_eq!(field(b.as_bytes(), CHROME, "altcha"), Ok(Some("eyJhbGci".into())));
        assert_eq!(field(b.as_bytes(), CHROME, "note"), Ok(Some("two\r\nlines".into())));
        assert_eq!(field(b.as_bytes(), CHROME, "missing"), Ok(None));
        // A preamble, transport padding after a delimiter, an unquoted name, an epilogue.
        let b = format!("ignored\r\n--{CHROME} \t\r\ncontent-disposition: form-data; name=altcha\r\n\r\nv\r\n--{CHROME}--\r\nepilogue");
        assert_eq!(field(b.as_bytes(), CHROME, "altcha"), Ok(Some("v".into())));
        // An empty value is a value.
        assert_eq!(field(body(&[("form-data; name=\"altcha\"", "")]).as_bytes(), CHROME, "altcha"), Ok(Some(String::new())));
    }

    #[test]
    fn a_field_given_twice_or_as_a_file_is_not_the_field() {
        let twice = body(&[("form-data; name=\"altcha\"", "a"), ("form-data; name=\"altcha\"", "a")]);
        assert_eq!(field(twice.as_bytes(), CHROME, "altcha"), Ok(None));
        let file = body(&[("form-data; name=\"altcha\"; filename=\"a.txt\"", "a")]);
        assert_eq!(field(file.as_bytes(), CHROME, "altcha"), Ok(None));
        let file = body(&[("form-data; name=\"altcha\"; filename*=UTF-8''a.txt", "a")]);
        assert_eq!(field(file.as_bytes(), CHROME, "altcha"), Ok(None));
        let other_kind = body(&[("attachment; name=\"altcha\"", "a")]);
        assert_eq!(field(other_kind.as_bytes(), CHROME, "altcha"), Ok(None));
        // Names compare exactly.
        let near = body(&[("form-data; name=\"Altcha\"", "a"), ("form-data; name=\"altcha \"", "a")]);
        assert_eq!(field(near.as_bytes(), CHROME, "altcha"), Ok(None));
    }

    #[test]
    fn a_body_that_is_not_well_formed_is_an_error() {
        let good = body(&[("form-data; name=\"altcha\"", "a")]);
        let cases = [
            // Another boundary, or none at all.
            good.replace(CHROME, "other"),
            "altcha=a".to_owned(),
            // Never closed, or cut short.
            good.replace(&format!("--{CHROME}--\r\n"), ""),
            good[..good.len() / 2].to_owned(),
            // Bare LF line endings: the format's lines end in CRLF.
            good.replace("\r\n", "\n"),
            // A delimiter line with more after it.
            good.replacen(&format!("--{CHROME}\r\n"), &format!("--{CHROME}x\r\n"), 1),
            // No Content-Disposition, or two.
            format!("--{CHROME}\r\ncontent-type: text/plain\r\n\r\na\r\n--{CHROME}--"),
            format!("--{CHROME}\r\ncontent-disposition: form-data; name=x\r\ncontent-disposition: form-data; name=altcha\r\n\r\na\r\n--{CHROME}--"),
            // A name given twice, a malformed parameter list, a bad header line.
            body(&[("form-data; name=\"x\"; name=\"altcha\"", "a")]),
            body(&[("form-data; name=\"altcha", "a")]),
            body(&[("form-data; name", "a")]),
            format!("--{CHROME}\r\nbad header line\r\n\r\na\r\n--{CHROME}--"),
        ];
        for case in &cases {
            assert!(field(case.as_bytes(), CHROME, "altcha").is_err(), "{case:?}");
        }
        // The matched value must be text.
        let mut binary = format!("--{CHROME}\r\ncontent-disposition: form-data; name=altcha\r\n\r\n").into_bytes();
        binary.extend_from_slice(&[0xff, 0xfe]);
        binary.extend_from_slice(format!("\r\n--{CHROME}--").as_bytes());
        assert!(field(&binary, CHROME, "altcha").is_err());
    }

    #[test]
    fn parameters_are_tokens_or_quoted_strings_each_given_once() {
        assert_eq!(parameters(" a=1; b=\"x;\\\"y\" ;c=z").unwrap(), vec![("a".into(), "1".into()), ("b".into(), "x;\"y".into()), ("c".into(), "z".into())]);
        assert_eq!(parameters("").unwrap(), vec![]);
        assert_eq!(parameters(" a=1;").unwrap(), vec![("a".into(), "1".into())]);
        for bad in ["a", "a=", "a=1 b=2", "a=1; A=2", "a=\"open", "=1", "a=1; ;", "a=x\"y\""] {
            assert!(parameters(bad).is_err(), "{bad}");
        }
    }
}
