//! The gateway's own proof-of-work endpoints: `GET /.frontgate/challenge?route=PATH`,
//! `POST /.frontgate/verify` and `GET /.frontgate/widget.js`.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Response, StatusCode};
use http_body_util::BodyExt;

use super::Pow;
use crate::body::{Body, ClientBody};
use crate::exchange::Client;
use crate::exchange::{Endpoint, EndpointFuture};
use crate::problem::{Code, Problem};

/// The three endpoints, for [`crate::admission::Admission::build`].
pub fn all(pow: &Arc<Pow>) -> Vec<Arc<dyn Endpoint>> {
    vec![
        Arc::new(ChallengeEndpoint(pow.clone())),
        Arc::new(VerifyEndpoint(pow.clone())),
        Arc::new(WidgetEndpoint),
    ]
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

/// A 429 with its `Retry-After` (a problem alone carries no such header).
fn retry_after(problem: Problem, secs: u64, request_id: &str) -> Response<Body> {
    let mut r = problem.into_response(request_id);
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    r
}

fn method_not_allowed(allow: &'static str) -> Problem {
    Problem::new(Code::MethodNotAllowed).with_allow(HeaderValue::from_static(allow))
}

use crate::wire::{form_urlencoded_pairs, query_param};

/// `GET /.frontgate/challenge?route=PATH[&method=M]`.
pub struct ChallengeEndpoint(pub Arc<Pow>);

impl Endpoint for ChallengeEndpoint {
    fn path(&self) -> &'static str {
        "/.frontgate/challenge"
    }

    fn handle<'a>(
        &'a self,
        head: &'a mut http::request::Parts,
        _body: ClientBody,
        client: &'a Client,
        request_id: &'a str,
    ) -> EndpointFuture<'a> {
        Box::pin(async move {
            if head.method != Method::GET {
                return Err(method_not_allowed("GET"));
            }
            let pow = &self.0;
            if let Err(secs) = pow.allow_challenge(client.ip) {
                metrics::counter!("frontgate_pow_challenges_limited_total").increment(1);
                let problem = Problem::new(Code::RateLimited)
                    .with_detail("Too many challenges from this address; wait a minute.");
                return Ok(retry_after(problem, secs, request_id));
            }
            let query = head.uri.query();
            let Some(path) = query_param(query, "route") else {
                return Err(Problem::new(Code::BadRequest).with_detail(
                    "Name the protected path: /.frontgate/challenge?route=/api/signup",
                ));
            };
            let method = query_param(query, "method")
                .and_then(|m| Method::from_bytes(m.to_ascii_uppercase().as_bytes()).ok());
            let Some(route) = pow.protected_route(&path, method.as_ref()) else {
                return Err(Problem::new(Code::RouteNotFound)
                    .with_detail("No route at this path asks for a proof of work."));
            };
            let level_index = pow.level_for(&route, client.ip);
            let level = pow.levels()[level_index].clone();
            // Issuing derives one key (deterministic mode): off the worker thread, and only
            // as many at once as `issuing` has slots, whichever clients ask. A client whose own
            // failures raised its level takes a free slot or none: it never queues ahead of
            // clients at the route's base level.
            let asker = if level_index > pow.load_level(&route) {
                super::issuing::Asker::Raised
            } else {
                super::issuing::Asker::Base
            };
            let Some(slot) = super::issuing::slot(asker).await else {
                // No challenge issued: not counted against the client's challenge_rate, so
                // asking again after the Retry-After does not run it into a 429.
                pow.refund_challenge(client.ip);
                metrics::counter!("frontgate_pow_challenges_limited_total").increment(1);
                let problem = Problem::new(Code::Overloaded)
                    .with_detail("Too many challenges are being issued; try again in a second.");
                return Ok(retry_after(problem, 1, request_id));
            };
            let now = pow.now();
            let (me, r) = (pow.clone(), route.clone());
            let issued = tokio::task::spawn_blocking(move || {
                let _slot = slot;
                me.protocol.issue(&r, level_index, &level, now)
            })
            .await;
            let challenge = match issued {
                Ok(Ok(c)) => c,
                _ => return Err(Problem::new(Code::Overloaded)),
            };
            metrics::counter!("frontgate_pow_challenges_issued_total", "level" => level_index.to_string()).increment(1);
            let body =
                serde_json::to_string(&challenge).map_err(|_| Problem::new(Code::Overloaded))?;
            Ok(json_response(StatusCode::OK, body))
        })
    }
}

/// `POST /.frontgate/verify`: the `altcha` form field, or JSON `{"altcha": "..."}` (also
/// `{"payload": "..."}`, what the altcha widget's `verifyurl` sends).
pub struct VerifyEndpoint(pub Arc<Pow>);

/// What a body that may carry an `altcha` solution is, by its `Content-Type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum FieldMedia {
    Form,
    Json,
    /// `multipart/form-data`, with its boundary.
    Multipart(String),
}

impl FieldMedia {
    /// `application/x-www-form-urlencoded` (also assumed when no type is given),
    /// `application/json` or `multipart/form-data` with a valid boundary; other types carry
    /// no field here.
    pub(super) fn of(content_type: Option<&HeaderValue>) -> Option<FieldMedia> {
        let Some(ct) = content_type else { return Some(FieldMedia::Form) };
        let ct = ct.to_str().ok()?;
        let essence = ct.split(';').next().unwrap_or("").trim();
        if essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") || essence.is_empty() {
            Some(FieldMedia::Form)
        } else if essence.eq_ignore_ascii_case("application/json") {
            Some(FieldMedia::Json)
        } else {
            crate::multipart::boundary(ct).ok().map(|b| FieldMedia::Multipart(b.to_owned()))
        }
    }

    /// The string in the body's form field (urlencoded or multipart) or top-level JSON member
    /// `name` (`altcha` or `payload`); `Ok(None)` when there is none (or the multipart part of
    /// that name is a file). A field or member given twice, and a multipart body the strict
    /// reader refuses, are [`FieldError::Ambiguous`]: no reader behind the gateway may pick
    /// another copy, or split the body otherwise, than the gateway did.
    pub(super) fn field(&self, body: &[u8], name: &str) -> Result<Option<String>, FieldError> {
        #[derive(serde::Deserialize)]
        struct Members {
            altcha: Option<serde_json::Value>,
            payload: Option<serde_json::Value>,
        }
        let twice = || FieldError::Ambiguous(format!("the field `{name}` is given more than once"));
        match self {
            FieldMedia::Form => {
                std::str::from_utf8(body).map_err(|_| FieldError::Malformed("not UTF-8"))?;
                let mut found = None;
                for (_, value) in form_urlencoded_pairs(body).filter(|(k, _)| k == name) {
                    if found.replace(value).is_some() {
                        return Err(twice());
                    }
                }
                Ok(found)
            }
            FieldMedia::Json => {
                let m: Members = serde_json::from_slice(body).map_err(|e| {
                    // serde names a member given twice "duplicate field"; anything else is syntax.
                    if e.to_string().starts_with("duplicate field") {
                        twice()
                    } else {
                        FieldError::Malformed("not a JSON object")
                    }
                })?;
                let member = if name == "payload" { m.payload } else { m.altcha };
                Ok(member.as_ref().and_then(|v| v.as_str()).map(str::to_owned))
            }
            FieldMedia::Multipart(boundary) => {
                let parts = crate::multipart::parse(body, boundary).map_err(|e| {
                    FieldError::Ambiguous(format!("the multipart body is refused: {e}"))
                })?;
                let mut named = parts.iter().filter(|p| p.name == name);
                match (named.next(), named.next()) {
                    (Some(_), Some(_)) => Err(twice()),
                    (Some(p), None) if !p.is_file() => {
                        std::str::from_utf8(&body[p.content.clone()])
                            .map(|v| Some(v.to_owned()))
                            .map_err(|_| {
                                FieldError::Malformed("a multipart field that is not UTF-8")
                            })
                    }
                    _ => Ok(None),
                }
            }
        }
    }
}

/// Why a body's field could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum FieldError {
    /// The body is not its type's syntax (not UTF-8, not a JSON object).
    Malformed(&'static str),
    /// The body could be read more than one way: a field given twice, or a multipart body the
    /// strict reader refuses. The gate refuses it outright (400 `invalid_body`).
    Ambiguous(String),
}

impl FieldError {
    pub(super) fn detail(&self) -> String {
        match self {
            FieldError::Malformed(what) => (*what).to_owned(),
            FieldError::Ambiguous(what) => what.clone(),
        }
    }
}

/// The `altcha` payload posted to `/.frontgate/verify`: a form field or a JSON member (also
/// `payload`, which the widget's `verifyurl` sends).
fn payload_from_body(content_type: Option<&HeaderValue>, body: &[u8]) -> Result<String, Problem> {
    let malformed = |what: &str| {
        Problem::new(Code::ChallengeFailed)
            .with_status(StatusCode::BAD_REQUEST)
            .with_detail(format!("The body is malformed: {what}."))
    };
    let Some(media) = FieldMedia::of(content_type) else {
        return Err(Problem::new(Code::UnsupportedMediaType).with_detail("Send the solution as a form field `altcha` (urlencoded or multipart) or as JSON {\"altcha\": \"...\"}."));
    };
    let found = match media.field(body, "altcha").map_err(|e| malformed(&e.detail()))? {
        None if media == FieldMedia::Json => {
            media.field(body, "payload").map_err(|e| malformed(&e.detail()))?
        }
        found => found,
    };
    found.ok_or_else(|| {
        malformed(if media == FieldMedia::Json {
            "no \"altcha\" string member"
        } else {
            "no altcha field"
        })
    })
}

impl Endpoint for VerifyEndpoint {
    fn path(&self) -> &'static str {
        "/.frontgate/verify"
    }

    fn handle<'a>(
        &'a self,
        head: &'a mut http::request::Parts,
        body: ClientBody,
        client: &'a Client,
        request_id: &'a str,
    ) -> EndpointFuture<'a> {
        Box::pin(async move {
            if head.method != Method::POST {
                return Err(method_not_allowed("POST"));
            }
            // Every attempt counts, before its body is read: each costs a signature check (a
            // key derivation in probabilistic mode), whatever it turns out to hold.
            if let Err((problem, secs)) = self.0.verify_limit.admit(client.ip) {
                return Ok(retry_after(problem, secs, request_id));
            }
            let declared = head
                .headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<usize>().ok());
            if declared.is_some_and(|n| n > MAX_VERIFY_BODY) {
                return Err(Problem::new(Code::PayloadTooLarge));
            }
            let bytes = http_body_util::Limited::new(body, MAX_VERIFY_BODY)
                .collect()
                .await
                .map_err(|_| Problem::new(Code::PayloadTooLarge))?
                .to_bytes();
            let payload = payload_from_body(head.headers.get(header::CONTENT_TYPE), &bytes)?;
            let pow = &self.0;
            let verified = pow.redeem(&payload, None, client.ip).await?;
            let binding = pow.binding(head, client.ip);
            let (token, expires) = pow.clearances.issue(&verified.route, &binding, pow.now());
            let mut body = String::from("{\"verified\":true,\"clearance\":");
            crate::problem::push_json_str(&mut body, &token);
            body.push_str(",\"route\":");
            crate::problem::push_json_str(&mut body, &verified.route);
            body.push_str(&format!(
                ",\"expires\":{expires},\"header\":\"X-Frontgate-Clearance\"}}"
            ));
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

    fn handle<'a>(
        &'a self,
        head: &'a mut http::request::Parts,
        _body: ClientBody,
        _client: &'a Client,
        _request_id: &'a str,
    ) -> EndpointFuture<'a> {
        Box::pin(async move {
            if head.method != Method::GET && head.method != Method::HEAD {
                return Err(method_not_allowed("GET, HEAD"));
            }
            let mut r = Response::new(Body::full(Bytes::from_static(WIDGET_JS.as_bytes())));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            );
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
            Ok(r)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(ct: &'static str, body: &[u8]) -> Result<String, Problem> {
        payload_from_body((!ct.is_empty()).then(|| HeaderValue::from_static(ct)).as_ref(), body)
    }

    #[test]
    fn payload_is_read_from_forms_and_json() {
        assert_eq!(
            payload("application/x-www-form-urlencoded", b"a=1&altcha=ab%2Bc%3D").unwrap(),
            "ab+c="
        );
        assert_eq!(payload("", b"altcha=z").unwrap(), "z");
        assert_eq!(payload("application/json; charset=utf-8", br#"{"altcha":"x"}"#).unwrap(), "x");
        assert_eq!(
            payload("Application/JSON", br#"{"payload":"y","other":{"a":[1]}}"#).unwrap(),
            "y"
        );
        assert_eq!(
            payload(
                "multipart/form-data; boundary=b",
                b"--b\r\ncontent-disposition: form-data; name=\"altcha\"\r\n\r\nm\r\n--b--\r\n"
            )
            .unwrap(),
            "m"
        );
        let refused: [(&'static str, &[u8]); 9] = [
            ("application/json", b"{"),
            ("application/json", br#"{"altcha":1}"#),
            ("application/json", br#"["altcha"]"#),
            ("application/json", br#"{"altcha":"a","altcha":"b"}"#),
            ("application/x-www-form-urlencoded", b"other=1"),
            ("application/x-www-form-urlencoded", b"altcha=a&altcha=b"),
            ("application/x-www-form-urlencoded", b"altcha=\xff\xfe"),
            ("multipart/form-data; boundary=x", b""),
            (
                "multipart/form-data; boundary=x",
                b"--x\r\ncontent-disposition: form-data; name=other\r\n\r\n1\r\n--x--",
            ),
        ];
        for (ct, body) in refused {
            let p = payload(ct, body).unwrap_err();
            assert_eq!(
                (p.code, p.status()),
                (Code::ChallengeFailed, StatusCode::BAD_REQUEST),
                "{ct} {body:?}"
            );
        }
        assert_eq!(
            payload("text/plain", b"altcha=x").unwrap_err().code,
            Code::UnsupportedMediaType
        );
        assert_eq!(
            payload("multipart/form-data", b"").unwrap_err().code,
            Code::UnsupportedMediaType,
            "no boundary"
        );
        assert_eq!(
            payload("multipart/mixed; boundary=x", b"").unwrap_err().code,
            Code::UnsupportedMediaType
        );
    }

    #[test]
    fn a_field_given_twice_or_a_body_read_two_ways_is_ambiguous() {
        let multipart =
            FieldMedia::of(Some(&HeaderValue::from_static("multipart/form-data; boundary=b")))
                .unwrap();
        let part = |disposition: &str, value: &str| {
            format!("--b\r\ncontent-disposition: {disposition}\r\n\r\n{value}\r\n")
        };
        let field = |media: &FieldMedia, body: &str| media.field(body.as_bytes(), "altcha");
        assert_eq!(
            field(&multipart, &format!("{}--b--", part("form-data; name=altcha", "v"))),
            Ok(Some("v".into()))
        );
        assert_eq!(
            field(&multipart, &format!("{}--b--", part("form-data; name=other", "v"))),
            Ok(None)
        );
        // A file is not the field; names compare exactly.
        assert_eq!(
            field(&multipart, &format!("{}--b--", part("form-data; name=altcha; filename=a", "v"))),
            Ok(None)
        );
        assert_eq!(
            field(
                &multipart,
                &format!(
                    "{}{}--b--",
                    part("form-data; name=Altcha", "v"),
                    part("form-data; name=\"altcha \"", "v")
                )
            ),
            Ok(None)
        );
        let ambiguous = [
            (
                multipart.clone(),
                format!(
                    "{}{}--b--",
                    part("form-data; name=altcha", "v"),
                    part("form-data; name=altcha", "v")
                ),
            ),
            (
                multipart.clone(),
                format!(
                    "{}{}--b--",
                    part("form-data; name=altcha", "v"),
                    part("form-data; name=altcha; filename=a", "v")
                ),
            ),
            (multipart.clone(), format!("{}--b", part("form-data; name=altcha", "v"))),
            (
                multipart.clone(),
                format!("{}--b--", part("form-data; name=x; filename=\"a; name=altcha\"", "v")),
            ),
            (FieldMedia::Form, "altcha=a&x=1&altcha=a".into()),
            (FieldMedia::Json, r#"{"altcha":"a","altcha":"a"}"#.into()),
        ];
        for (media, body) in &ambiguous {
            assert!(
                matches!(field(media, body), Err(FieldError::Ambiguous(_))),
                "{media:?} {body:?}"
            );
        }
        assert_eq!(
            field(&FieldMedia::Json, "[1]"),
            Err(FieldError::Malformed("not a JSON object"))
        );
    }
}
