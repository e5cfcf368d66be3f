//! The gateway's own proof-of-work endpoints: `GET /.frontgate/challenge?route=PATH`,
//! `POST /.frontgate/verify` and `GET /.frontgate/widget.js`.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::Pow;
use crate::body::Body;
use crate::checks::Client;
use crate::pipeline::{Endpoint, EndpointFuture};
use crate::problem::{Code, Problem};

/// The three endpoints, for [`crate::pipeline::Gateway::build`].
pub fn all(pow: &Arc<Pow>) -> Vec<Arc<dyn Endpoint>> {
    vec![Arc::new(ChallengeEndpoint(pow.clone())), Arc::new(VerifyEndpoint(pow.clone())), Arc::new(WidgetEndpoint)]
}

/// The largest body `/.frontgate/verify` reads.
const MAX_VERIFY_BODY: usize = 16 * 1024;

fn json_response(status: StatusCode, body: String) -> Response<Body> {
    let mut r = Response::new(Body::full(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn method_not_allowed(allow: &'static str) -> Problem {
    Problem::new(Code::MethodNotAllowed).with_allow(HeaderValue::from_static(allow))
}

/// Reads one query parameter, percent-decoded.
fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| percent_encoding::percent_decode_str(&v.replace('+', " ")).decode_utf8_lossy().into_owned())
    })
}

/// `GET /.frontgate/challenge?route=PATH[&method=M]`.
pub struct ChallengeEndpoint(pub Arc<Pow>);

impl Endpoint for ChallengeEndpoint {
    fn path(&self) -> &'static str {
        "/.frontgate/challenge"
    }

    fn handle<'a>(&'a self, head: &'a mut http::request::Parts, _body: Incoming, client: &'a Client, _request_id: &'a str) -> EndpointFuture<'a> {
        Box::pin(async move {
            if head.method != Method::GET {
                return Err(method_not_allowed("GET"));
            }
            let pow = &self.0;
            if !pow.allow_challenge(client.ip) {
                metrics::counter!("frontgate_pow_challenges_limited_total").increment(1);
                return Err(Problem::new(Code::RateLimited).with_detail("Too many challenges from this address; wait a minute."));
            }
            let query = head.uri.query();
            let Some(path) = query_param(query, "route") else {
                return Err(Problem::new(Code::BadRequest).with_detail("Name the protected path: /.frontgate/challenge?route=/api/signup"));
            };
            let method = query_param(query, "method").and_then(|m| Method::from_bytes(m.to_ascii_uppercase().as_bytes()).ok());
            let Some(route) = pow.protected_route(&path, method.as_ref()) else {
                return Err(Problem::new(Code::RouteNotFound).with_detail("No route at this path asks for a proof of work."));
            };
            let level_index = pow.level_for(&route, client.ip);
            let level = pow.levels()[level_index].clone();
            let now = pow.now();
            // Issuing derives one key (deterministic mode): off the worker thread.
            let (me, r) = (pow.clone(), route.clone());
            let issued = tokio::task::spawn_blocking(move || me.protocol.issue(&r, level_index, &level, now)).await;
            let challenge = match issued {
                Ok(Ok(c)) => c,
                _ => return Err(Problem::new(Code::Overloaded)),
            };
            metrics::counter!("frontgate_pow_challenges_issued_total", "level" => level_index.to_string()).increment(1);
            let body = serde_json::to_string(&challenge).map_err(|_| Problem::new(Code::Overloaded))?;
            Ok(json_response(StatusCode::OK, body))
        })
    }
}

/// `POST /.frontgate/verify`: the `altcha` form field, or JSON `{"altcha": "..."}` (also
/// `{"payload": "..."}`, what the altcha widget's `verifyurl` sends).
pub struct VerifyEndpoint(pub Arc<Pow>);

/// The `altcha` payload from a form or JSON body.
fn payload_from_body(content_type: &str, body: &[u8]) -> Result<String, Problem> {
    let malformed = |what: &str| Problem::new(Code::ChallengeFailed).with_status(StatusCode::BAD_REQUEST).with_detail(format!("The body is malformed: {what}."));
    let ct = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if ct == "application/json" {
        let v: serde_json::Value = serde_json::from_slice(body).map_err(|_| malformed("not JSON"))?;
        return v
            .get("altcha")
            .or_else(|| v.get("payload"))
            .and_then(|p| p.as_str())
            .map(str::to_owned)
            .ok_or_else(|| malformed("no \"altcha\" string member"));
    }
    if ct == "application/x-www-form-urlencoded" || ct.is_empty() {
        let text = std::str::from_utf8(body).map_err(|_| malformed("not UTF-8"))?;
        return query_param(Some(text), "altcha").ok_or_else(|| malformed("no altcha field"));
    }
    Err(Problem::new(Code::UnsupportedMediaType).with_detail("Send the solution as a form field `altcha` or as JSON {\"altcha\": \"...\"}."))
}

impl Endpoint for VerifyEndpoint {
    fn path(&self) -> &'static str {
        "/.frontgate/verify"
    }

    fn handle<'a>(&'a self, head: &'a mut http::request::Parts, body: Incoming, client: &'a Client, _request_id: &'a str) -> EndpointFuture<'a> {
        Box::pin(async move {
            if head.method != Method::POST {
                return Err(method_not_allowed("POST"));
            }
            let declared = head.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
            if declared.is_some_and(|n| n > MAX_VERIFY_BODY) {
                return Err(Problem::new(Code::PayloadTooLarge));
            }
            let bytes = http_body_util::Limited::new(body, MAX_VERIFY_BODY)
                .collect()
                .await
                .map_err(|_| Problem::new(Code::PayloadTooLarge))?
                .to_bytes();
            let content_type = head.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
            let payload = payload_from_body(content_type, &bytes)?;
            let pow = &self.0;
            let verified = pow.redeem(&payload, None, client.ip).await?;
            let binding = pow.binding(head, client.ip);
            let (token, expires) = pow.clearances.issue(&verified.route, &binding, pow.now());
            let mut body = String::from("{\"verified\":true,\"clearance\":");
            crate::problem::push_json_str(&mut body, &token);
            body.push_str(",\"route\":");
            crate::problem::push_json_str(&mut body, &verified.route);
            body.push_str(&format!(",\"expires\":{expires},\"header\":\"X-Frontgate-Clearance\"}}"));
            let mut resp = json_response(StatusCode::OK, body);
            if let Some(cookie) = pow.clearance_cookie(&verified.route, &token) {
                resp.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            Ok(resp)
        })
    }
}

/// `GET /.frontgate/widget.js`: the small client (and its own Web Worker).
pub struct WidgetEndpoint;

pub const WIDGET_JS: &str = include_str!("widget.js");

impl Endpoint for WidgetEndpoint {
    fn path(&self) -> &'static str {
        "/.frontgate/widget.js"
    }

    fn handle<'a>(&'a self, head: &'a mut http::request::Parts, _body: Incoming, _client: &'a Client, _request_id: &'a str) -> EndpointFuture<'a> {
        Box::pin(async move {
            if head.method != Method::GET && head.method != Method::HEAD {
                return Err(method_not_allowed("GET, HEAD"));
            }
            let mut r = Response::new(Body::full(Bytes::from_static(WIDGET_JS.as_bytes())));
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8"));
            r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
            Ok(r)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_read_from_forms_and_json() {
        assert_eq!(payload_from_body("application/x-www-form-urlencoded", b"a=1&altcha=ab%2Bc%3D").unwrap(), "ab+c=");
        assert_eq!(payload_from_body("application/json; charset=utf-8", br#"{"altcha":"x"}"#).unwrap(), "x");
        assert_eq!(payload_from_body("application/json", br#"{"payload":"y"}"#).unwrap(), "y");
        for (ct, body) in [("application/json", &b"{"[..]), ("application/json", br#"{"altcha":1}"#), ("application/x-www-form-urlencoded", b"other=1"), ("application/x-www-form-urlencoded", b"\xff\xfe")] {
            let p = payload_from_body(ct, body).unwrap_err();
            assert_eq!((p.code, p.status()), (Code::ChallengeFailed, StatusCode::BAD_REQUEST));
        }
        assert_eq!(payload_from_body("text/plain", b"x").unwrap_err().code, Code::UnsupportedMediaType);
    }

    #[test]
    fn query_params_are_percent_decoded() {
        assert_eq!(query_param(Some("route=%2Fapi%2Fsignup&method=post"), "route").unwrap(), "/api/signup");
        assert_eq!(query_param(Some("x=1"), "route"), None);
    }
}
