//! Small readings of HTTP text that several layers share (the server's reader, the backend
//! codec, checks and endpoints): kept at the bottom so none of them imports another for them.

use http::header;

/// What `HeaderValue::to_str` accepts: visible ASCII, space and tab.
pub fn is_text(value: &[u8]) -> bool {
    value.iter().all(|&b| (0x20..0x7f).contains(&b) || b == b'\t')
}

/// Whether a request asks for a protocol upgrade we pass through (WebSocket only).
pub fn is_websocket_upgrade(req: &http::request::Parts) -> bool {
    req.version == http::Version::HTTP_11
        && req
            .headers
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
        && req
            .headers
            .get(header::CONNECTION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")))
}

/// `application/x-www-form-urlencoded` pairs, decoded.
pub fn form_urlencoded_pairs(bytes: &[u8]) -> impl Iterator<Item = (String, String)> + '_ {
    bytes.split(|&b| b == b'&').filter(|p| !p.is_empty()).map(|pair| {
        let mut it = pair.splitn(2, |&b| b == b'=');
        let decode = |s: &[u8]| {
            let plus: Vec<u8> = s.iter().map(|&b| if b == b'+' { b' ' } else { b }).collect();
            percent_encoding::percent_decode(&plus).decode_utf8_lossy().into_owned()
        };
        (decode(it.next().unwrap_or_default()), decode(it.next().unwrap_or_default()))
    })
}

/// One query parameter, decoded; a parameter given twice counts as absent.
pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    let mut found = None;
    for (k, v) in form_urlencoded_pairs(query?.as_bytes()) {
        if k == name {
            if found.is_some() {
                return None;
            }
            found = Some(v);
        }
    }
    found
}
