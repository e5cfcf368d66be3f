//! CSRF defence for cookie-authenticated requests that change state (route key `csrf`, on by
//! default where `auth` includes "session"): the request must come from the gateway's own
//! origin (`Origin`, or `Sec-Fetch-Site: same-origin` when a browser sends no Origin) and carry
//! the `X-Frontgate-CSRF` header, which a cross-site form cannot set and a cross-origin script
//! can set only after a CORS preflight. Refusals are `csrf_failed`.
//!
//! SameSite=Lax alone does not suffice: a sibling origin on the same site (another port or
//! subdomain) is "same-site" and its requests carry the cookie.
//!
//! A WebSocket handshake is a GET, but it opens a channel that reads and writes with the
//! user's cookie and that CORS does not govern (cross-site WebSocket hijacking): it gets the
//! same Origin check as an unsafe method. Not the header: a browser's `WebSocket` cannot set
//! one, and the Origin it always sends is the proof.

use http::{HeaderMap, Method};

use crate::config::AuthMethod;
use crate::exchange::{Check, Exchange, Outcome, Stage, Verdict};
use crate::problem::{Code, Problem};

pub const HEADER: &str = "x-frontgate-csrf";

pub struct CsrfCheck {
    public_origin: String,
}

impl CsrfCheck {
    pub fn new(public_origin: &str) -> CsrfCheck {
        CsrfCheck { public_origin: public_origin.trim_end_matches('/').to_owned() }
    }
}

fn is_safe(m: &Method) -> bool {
    matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE)
}

/// Whether the browser says this request comes from `public_origin` itself.
pub fn same_origin_request(headers: &HeaderMap, public_origin: &str) -> bool {
    let origins: Vec<_> = headers.get_all(http::header::ORIGIN).iter().collect();
    match origins.as_slice() {
        [one] => one.as_bytes() == public_origin.as_bytes(),
        [] => headers.get("sec-fetch-site").is_some_and(|v| v.as_bytes() == b"same-origin"),
        _ => false,
    }
}

const NOT_SAME_ORIGIN: &str = "The request does not come from this site (Origin / Sec-Fetch-Site).";

/// Why a cookie-authenticated request that changes state is refused, if it is: it must come
/// from `public_origin` itself and carry the `X-Frontgate-CSRF` header. Also used by the
/// gateway's own endpoints that change state with the session (`keys::self_service`).
pub fn refusal(headers: &HeaderMap, public_origin: &str) -> Option<&'static str> {
    if !same_origin_request(headers, public_origin) {
        return Some(NOT_SAME_ORIGIN);
    }
    if headers.get(HEADER).is_none_or(|v| v.is_empty()) {
        return Some(
            "The X-Frontgate-CSRF header is missing; the SPA sends it on every request that changes state.",
        );
    }
    None
}

impl Check for CsrfCheck {
    fn name(&self) -> &'static str {
        "csrf"
    }

    fn stage(&self) -> Stage {
        Stage::Csrf
    }

    fn check<'a>(&'a self, ex: &'a mut Exchange<'_>) -> Outcome<'a> {
        let cookie_auth = ex.identity.as_ref().is_some_and(|i| i.method == AuthMethod::Session);
        if !cookie_auth {
            return Outcome::Ready(Verdict::Continue);
        }
        let websocket = is_safe(&ex.head.method) && crate::wire::is_websocket_upgrade(ex.head);
        if is_safe(&ex.head.method) && !websocket {
            return Outcome::Ready(Verdict::Continue);
        }
        let refuse = |why: &str| {
            metrics::counter!("frontgate_csrf_refused_total").increment(1);
            Outcome::Ready(Verdict::Deny(
                Problem::new(Code::CsrfFailed).with_detail(why.to_owned()),
            ))
        };
        if websocket {
            if !same_origin_request(&ex.head.headers, &self.public_origin) {
                return refuse(NOT_SAME_ORIGIN);
            }
            return Outcome::Ready(Verdict::Continue);
        }
        match refusal(&ex.head.headers, &self.public_origin) {
            Some(why) => refuse(why),
            None => Outcome::Ready(Verdict::Continue),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        h
    }

    #[test]
    fn only_the_public_origin_is_same_origin() {
        let o = "https://app.example.com";
        assert!(same_origin_request(&headers(&[("origin", o)]), o));
        assert!(same_origin_request(&headers(&[("sec-fetch-site", "same-origin")]), o));
        assert!(!same_origin_request(&headers(&[("origin", "https://evil.example.com")]), o));
        assert!(!same_origin_request(&headers(&[("origin", "https://app.example.com:444")]), o));
        assert!(!same_origin_request(&headers(&[("origin", "null")]), o));
        assert!(!same_origin_request(&headers(&[("origin", o), ("origin", o)]), o));
        assert!(!same_origin_request(&headers(&[("sec-fetch-site", "same-site")]), o));
        assert!(!same_origin_request(&headers(&[("sec-fetch-site", "cross-site")]), o));
        assert!(!same_origin_request(&headers(&[]), o));
        // Origin wins over Sec-Fetch-Site.
        assert!(!same_origin_request(
            &headers(&[("origin", "https://evil.example.com"), ("sec-fetch-site", "same-origin")]),
            o
        ));
    }
}
