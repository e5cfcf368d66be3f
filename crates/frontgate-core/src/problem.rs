//! The closed set of refusals frontgate can give, and their RFC 9457 documents.
//!
//! Every refusal carries a stable `code`: the same string appears in the problem body, in the
//! access log and in the `code` label of the metrics, and `/.frontgate/problems/<code>` explains it
//! to a person. Adding a code means adding it here, with its status, title and explanation.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

use crate::body::Body;

/// Every problem frontgate answers with. The string form (`as_str`) is the public, stable code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code {
    /// 404: the path matches no declared route; also a missing front-end file, or a path under
    /// `/.frontgate/` that is not a gateway endpoint.
    RouteNotFound,
    /// 405: the path matches a route, but not for this method; `Allow` lists the methods that do.
    MethodNotAllowed,
    /// 400: the path failed normalization (an encoded slash or dot, a dot-segment, `//`, a
    /// backslash, `;`, a control byte, bad UTF-8); `detail` names the rule.
    InvalidPath,
    /// 400: the gateway could not build the request to the backend (defensive; normal traffic
    /// does not reach it).
    BadRequest,
    /// 403: a browser `Origin` not allowed on this route, an API key used from an origin it is not
    /// restricted to, or a refused preflight; `detail` says why.
    OriginDenied,
    /// 413: the request body is larger than the route's `max_body_bytes`.
    PayloadTooLarge,
    /// 408: a body the gateway reads itself (OpenAPI validation, a proof-of-work `altcha` field)
    /// did not arrive within the route's `timeout`.
    RequestTimeout,
    /// 431: the parsed request headers exceed `[server] max_header_count` or `max_header_bytes`.
    HeadersTooLarge,
    /// 502: the backend could not be reached within `connect_timeout`, or the connection failed
    /// before a response head arrived.
    UpstreamUnavailable,
    /// 504: no response head within the route's `timeout` or `[upstream] timeout`, or within
    /// `[upstream] total_timeout` if that is shorter.
    UpstreamTimeout,
    /// The backend's 5xx status (502 is only the fallback): the backend answered with a 5xx and
    /// `[upstream] mask_5xx = true`; its body is dropped, its status and `Retry-After` are kept.
    UpstreamError,
    /// 401: the route has `auth` and the request carries no credential of an accepted kind, or a
    /// session cookie whose session has ended.
    Unauthenticated,
    /// 503: the gateway could not complete work of its own in time (issuing a proof-of-work
    /// challenge failed because its worker pool is saturated).
    Overloaded,
    /// 401: a bearer JWT or opaque token, or its DPoP proof, was refused.
    InvalidToken,
    /// 403: the credential is valid but lacks a scope or claim the route requires.
    InsufficientScope,
    /// 401: the API key is malformed, has a bad checksum, is unknown, or two different keys were
    /// sent.
    ApiKeyInvalid,
    /// 401: the API key was revoked (on any node).
    ApiKeyRevoked,
    /// 401: the API key is past its expiry, its rotation grace ended, or it used up its budget of
    /// requests.
    ApiKeyExpired,
    /// 400: an API key was sent in the query string.
    CredentialsInQuery,
    /// 403: the API key is restricted to client networks and the request came from outside them.
    ClientDenied,
    /// 403: a cookie-authenticated unsafe request without a same-site `Origin` (or
    /// `Sec-Fetch-Site`) and the `X-Frontgate-CSRF` header.
    CsrfFailed,
    /// 403: the route asks for a proof of work or CAPTCHA and the request has no clearance or
    /// token; the `challenge` (or `captcha`) member says where to get one.
    ChallengeRequired,
    /// 403: the solution or clearance was refused: wrong, expired, already used, for another route
    /// or client, or a bad signature.
    ChallengeFailed,
    /// 429: a rate limit of this route (or of the login or verify endpoint) was exceeded.
    RateLimited,
    /// 400: the request does not match the OpenAPI document; `errors` lists each offending part.
    ValidationFailed,
    /// 400: a body the gateway reads to decide could be read more than one way (strict multipart,
    /// two `Content-Type` fields on a validated body, a repeated `altcha` field); `detail` names
    /// the rule.
    InvalidBody,
    /// 415: the body's `Content-Type` is not one the operation declares, or the operation takes
    /// no body.
    UnsupportedMediaType,
    /// 502: the backend's response did not match the OpenAPI document and
    /// `[openapi] response_validation = "block"`.
    ResponseInvalid,
    /// 503: a store the gateway needs to decide cannot answer, and `[shared] on_outage` says to
    /// refuse.
    StoreUnavailable,
    /// 400: the request could be read two ways: two `Host` fields, a `Host` that disagrees with
    /// `:authority` or an absolute target, or a body with two `Content-Type` fields.
    AmbiguousRequest,
    /// 414: the path and query under the upstream's base path would make a request target longer
    /// than 65534 bytes.
    UriTooLong,
    /// 421: a request to the admin listener names a `Host` that is neither an IP address,
    /// `localhost`, nor one of `[admin] allowed_hosts` (a DNS-rebinding page's name).
    HostNotAllowed,
}

impl Code {
    /// Every code, in the order of docs/problems.md.
    pub const ALL: &'static [Code] = &[
        Code::RouteNotFound,
        Code::MethodNotAllowed,
        Code::InvalidPath,
        Code::BadRequest,
        Code::OriginDenied,
        Code::PayloadTooLarge,
        Code::RequestTimeout,
        Code::HeadersTooLarge,
        Code::UpstreamUnavailable,
        Code::UpstreamTimeout,
        Code::UpstreamError,
        Code::Unauthenticated,
        Code::Overloaded,
        Code::InvalidToken,
        Code::InsufficientScope,
        Code::ApiKeyInvalid,
        Code::ApiKeyRevoked,
        Code::ApiKeyExpired,
        Code::CredentialsInQuery,
        Code::ClientDenied,
        Code::CsrfFailed,
        Code::ChallengeRequired,
        Code::ChallengeFailed,
        Code::RateLimited,
        Code::ValidationFailed,
        Code::InvalidBody,
        Code::UnsupportedMediaType,
        Code::ResponseInvalid,
        Code::StoreUnavailable,
        Code::AmbiguousRequest,
        Code::UriTooLong,
        Code::HostNotAllowed,
    ];

    /// The stable code: the `code` member, the end of `type`, the log field and metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::RouteNotFound => "route_not_found",
            Code::MethodNotAllowed => "method_not_allowed",
            Code::InvalidPath => "invalid_path",
            Code::BadRequest => "bad_request",
            Code::OriginDenied => "origin_denied",
            Code::PayloadTooLarge => "payload_too_large",
            Code::RequestTimeout => "request_timeout",
            Code::HeadersTooLarge => "headers_too_large",
            Code::UpstreamUnavailable => "upstream_unavailable",
            Code::UpstreamTimeout => "upstream_timeout",
            Code::UpstreamError => "upstream_error",
            Code::Unauthenticated => "unauthenticated",
            Code::Overloaded => "overloaded",
            Code::InvalidToken => "invalid_token",
            Code::InsufficientScope => "insufficient_scope",
            Code::ApiKeyInvalid => "api_key_invalid",
            Code::ApiKeyRevoked => "api_key_revoked",
            Code::ApiKeyExpired => "api_key_expired",
            Code::CredentialsInQuery => "credentials_in_query",
            Code::ClientDenied => "client_denied",
            Code::CsrfFailed => "csrf_failed",
            Code::ChallengeRequired => "challenge_required",
            Code::ChallengeFailed => "challenge_failed",
            Code::RateLimited => "rate_limited",
            Code::ValidationFailed => "validation_failed",
            Code::InvalidBody => "invalid_body",
            Code::UnsupportedMediaType => "unsupported_media_type",
            Code::ResponseInvalid => "response_invalid",
            Code::StoreUnavailable => "store_unavailable",
            Code::AmbiguousRequest => "ambiguous_request",
            Code::UriTooLong => "uri_too_long",
            Code::HostNotAllowed => "host_not_allowed",
        }
    }

    /// The code whose [`Code::as_str`] is `s`, if any.
    pub fn parse(s: &str) -> Option<Code> {
        Code::ALL.iter().copied().find(|c| c.as_str() == s)
    }

    /// The HTTP status this code is answered with.
    pub fn status(self) -> StatusCode {
        match self {
            Code::RouteNotFound => StatusCode::NOT_FOUND,
            Code::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Code::InvalidPath | Code::BadRequest => StatusCode::BAD_REQUEST,
            Code::OriginDenied => StatusCode::FORBIDDEN,
            Code::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Code::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Code::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Code::UpstreamUnavailable | Code::UpstreamError => StatusCode::BAD_GATEWAY,
            Code::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            Code::InvalidToken => StatusCode::UNAUTHORIZED,
            Code::InsufficientScope => StatusCode::FORBIDDEN,
            Code::ApiKeyInvalid => StatusCode::UNAUTHORIZED,
            Code::ApiKeyRevoked => StatusCode::UNAUTHORIZED,
            Code::ApiKeyExpired => StatusCode::UNAUTHORIZED,
            Code::CredentialsInQuery => StatusCode::BAD_REQUEST,
            Code::ClientDenied => StatusCode::FORBIDDEN,
            Code::CsrfFailed => StatusCode::FORBIDDEN,
            Code::ChallengeRequired => StatusCode::FORBIDDEN,
            Code::ChallengeFailed => StatusCode::FORBIDDEN,
            Code::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Code::ValidationFailed | Code::InvalidBody => StatusCode::BAD_REQUEST,
            Code::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Code::ResponseInvalid => StatusCode::BAD_GATEWAY,
            Code::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Code::AmbiguousRequest => StatusCode::BAD_REQUEST,
            Code::UriTooLong => StatusCode::URI_TOO_LONG,
            Code::HostNotAllowed => StatusCode::MISDIRECTED_REQUEST,
        }
    }

    /// The short fixed summary, the document's `title`.
    pub fn title(self) -> &'static str {
        match self {
            Code::RouteNotFound => "Not found",
            Code::MethodNotAllowed => "Method not allowed",
            Code::InvalidPath => "Invalid request path",
            Code::BadRequest => "Bad request",
            Code::OriginDenied => "Origin not allowed",
            Code::PayloadTooLarge => "Request body too large",
            Code::RequestTimeout => "Request body too slow",
            Code::HeadersTooLarge => "Request headers too large",
            Code::UpstreamUnavailable => "Upstream unavailable",
            Code::UpstreamTimeout => "Upstream timed out",
            Code::UpstreamError => "Upstream error",
            Code::Unauthenticated => "Authentication required",
            Code::Overloaded => "Gateway overloaded",
            Code::InvalidToken => "Invalid token",
            Code::InsufficientScope => "Insufficient scope",
            Code::ApiKeyInvalid => "Invalid API key",
            Code::ApiKeyRevoked => "API key revoked",
            Code::ApiKeyExpired => "API key expired",
            Code::CredentialsInQuery => "Credentials in the URL",
            Code::ClientDenied => "Client not allowed",
            Code::CsrfFailed => "Cross-site request refused",
            Code::ChallengeRequired => "Challenge required",
            Code::ChallengeFailed => "Challenge failed",
            Code::RateLimited => "Too many requests",
            Code::ValidationFailed => "Request validation failed",
            Code::InvalidBody => "Malformed or ambiguous request body",
            Code::UnsupportedMediaType => "Unsupported media type",
            Code::ResponseInvalid => "Invalid upstream response",
            Code::StoreUnavailable => "State store unavailable",
            Code::AmbiguousRequest => "Ambiguous request",
            Code::UriTooLong => "Request target too long",
            Code::HostNotAllowed => "Host not allowed",
        }
    }

    /// The default `detail`: what happened and what the caller can do about it.
    pub fn detail(self) -> &'static str {
        match self {
            Code::RouteNotFound => "No resource exists at this path.",
            Code::MethodNotAllowed => {
                "This resource exists but does not accept this method; see the Allow header."
            }
            Code::InvalidPath => {
                "The path is ambiguous or malformed (encoded slash or dot, dot-segment, empty segment, \
                 backslash, control byte or invalid UTF-8). Send the path in its plain, normalized form."
            }
            Code::BadRequest => "The request is malformed.",
            Code::OriginDenied => "Requests from this origin are not allowed.",
            Code::PayloadTooLarge => "The request body exceeds the limit for this route.",
            Code::RequestTimeout => "The request body did not arrive in time.",
            Code::HeadersTooLarge => "The request headers exceed the size or count limit.",
            Code::UpstreamUnavailable => "The service behind the gateway could not be reached.",
            Code::UpstreamTimeout => "The service behind the gateway did not answer in time.",
            Code::UpstreamError => "The service behind the gateway failed to handle the request.",
            Code::Unauthenticated => "This resource requires authentication.",
            Code::Overloaded => "The gateway is at capacity; retry shortly.",
            Code::InvalidToken => "The bearer token or DPoP proof was refused.",
            Code::InsufficientScope => {
                "The credential is valid but lacks a scope this route requires."
            }
            Code::ApiKeyInvalid => "The API key is malformed, has a bad checksum, or is not known.",
            Code::ApiKeyRevoked => "This API key has been revoked.",
            Code::ApiKeyExpired => "This API key has expired.",
            Code::CredentialsInQuery => {
                "Credentials must not be sent in the query string; send them in a header."
            }
            Code::ClientDenied => "This credential may not be used from this client address.",
            Code::CsrfFailed => {
                "A cookie-authenticated request that changes state must come from this site and carry the X-Frontgate-CSRF header."
            }
            Code::ChallengeRequired => {
                "Solve the challenge at the URL given in `challenge` and retry with the clearance."
            }
            Code::ChallengeFailed => "The challenge solution or clearance was refused.",
            Code::RateLimited => "Slow down; the Retry-After header says when to retry.",
            Code::ValidationFailed => {
                "The request does not match the API's declared schema; see `errors`."
            }
            Code::InvalidBody => {
                "The request body is malformed or could be read more than one way; `detail` says where."
            }
            Code::UnsupportedMediaType => {
                "This operation does not accept a body of this content type."
            }
            Code::ResponseInvalid => {
                "The service behind the gateway answered with a response that does not match its declared schema."
            }
            Code::StoreUnavailable => {
                "A store the gateway needs to decide this request is unavailable; retry shortly."
            }
            Code::AmbiguousRequest => {
                "The request could be read in more than one way (a duplicated or conflicting header), so it was refused."
            }
            Code::UriTooLong => "The request target is too long to forward.",
            Code::HostNotAllowed => "This listener does not answer to that host name.",
        }
    }

    /// A longer explanation for the human page at `/.frontgate/problems/<code>`.
    pub fn explanation(self) -> &'static str {
        match self {
            Code::RouteNotFound => {
                "frontgate only lets through requests to routes its configuration declares. Anything \
                 else is answered with this same 404, whether or not the backend has such a path, so \
                 that undeclared endpoints cannot be discovered by probing."
            }
            Code::MethodNotAllowed => {
                "The path matches a declared route, but not for this HTTP method. The Allow header \
                 lists the methods that route accepts."
            }
            Code::InvalidPath => {
                "Paths are normalized before routing, and anything that two parsers could read \
                 differently is refused: percent-encoded slashes (%2F), backslashes and dots (%2E), \
                 double encoding (%25xx), dot-segments (/./, /../), empty segments (//), segments \
                 ending in a dot, semicolons, NUL and other control bytes, and invalid or overlong \
                 UTF-8. The path that reaches the backend is exactly the normalized one that matched."
            }
            Code::BadRequest => "The request could not be understood.",
            Code::OriginDenied => {
                "Cross-origin requests are accepted only from the exact origins in [cors] \
                 allow_origins. The `null` origin is never accepted."
            }
            Code::PayloadTooLarge => {
                "Each route has a body size limit ([server] max_body_bytes, or the route's own \
                 max_body_bytes). Larger bodies are refused before they reach the backend."
            }
            Code::RequestTimeout => {
                "When the gateway reads a request body itself (OpenAPI validation, a proof-of-work \
                 field), the whole body must arrive within the route's timeout ([upstream] timeout, \
                 or the route's own timeout), as it must when it streams to the backend."
            }
            Code::HeadersTooLarge => {
                "The request line and headers are limited in size ([server] max_header_bytes) and \
                 count ([server] max_header_count)."
            }
            Code::UpstreamUnavailable => {
                "frontgate could not connect to the backend, or the connection failed before a \
                 response arrived. The request may be retried if it is idempotent."
            }
            Code::UpstreamTimeout => {
                "The backend did not send a response within [upstream] timeout."
            }
            Code::UpstreamError => {
                "The backend answered with a server error. Its body is not passed on, so that \
                 internal details (stack traces, queries) do not leak ([upstream] mask_5xx)."
            }
            Code::Unauthenticated => "Authenticate and retry.",
            Code::Overloaded => {
                "The gateway refused the request to protect itself (connection or queue limits)."
            }
            Code::InvalidToken => {
                "The token is malformed, expired, not yet valid, from an issuer or for an audience this route does not accept, signed with an algorithm that is not allowed, or its signature does not verify. DPoP-bound tokens also need a valid, fresh, single-use proof for this exact method and URL. Obtain a new token and retry."
            }
            Code::InsufficientScope => {
                "Routes may require scopes (route `scopes`). The caller authenticated, but its key, token or session does not carry every scope the route requires. Ask for a credential with the right scopes."
            }
            Code::ApiKeyInvalid => {
                "API keys have a fixed shape (prefix, random part, checksum). A key that does not match it is refused before any lookup; a well-formed key that is not in the store is refused the same way. Check that the whole key was copied."
            }
            Code::ApiKeyRevoked => {
                "The key was revoked by an administrator, or its rotation grace period ended. Revocation takes effect on every node within seconds. Ask for a new key."
            }
            Code::ApiKeyExpired => {
                "Every key may carry an expiry date; after it the key is refused. Ask for a new key, or rotate the old one before it expires."
            }
            Code::CredentialsInQuery => {
                "URLs end up in logs, browser history and Referer headers, so a key or token in the query string is refused (and never logged). Send API keys in `Authorization: Bearer` or `X-API-Key`, tokens in `Authorization`."
            }
            Code::ClientDenied => {
                "The credential is restricted to a list of client networks (CIDRs), and this request came from outside them."
            }
            Code::CsrfFailed => {
                "Unsafe methods (POST, PUT, PATCH, DELETE) authenticated by the session cookie must carry an Origin (or Sec-Fetch-Site) naming this site and the custom header X-Frontgate-CSRF, which a cross-site form cannot send. Send both from the front-end."
            }
            Code::ChallengeRequired => {
                "This route is protected against automated abuse. Fetch a proof-of-work challenge (or complete the CAPTCHA), submit the solution to /.frontgate/verify, and retry with the clearance cookie or X-Frontgate-Clearance header. /.frontgate/widget.js does all of this for a browser app."
            }
            Code::ChallengeFailed => {
                "The solution is wrong, expired, already used, for another route, or its signature does not verify; or the clearance is expired or for another route or client. Fetch a new challenge and solve it."
            }
            Code::RateLimited => {
                "The request exceeded a rate limit of this route ([rate_limits]). Wait for the time given in Retry-After."
            }
            Code::InvalidBody => {
                "A body the gateway reads to decide on a request (OpenAPI validation, a proof-of-work field) must have one reading only, because the backend parses the same bytes again. A multipart/form-data body is read strictly: one boundary parameter, every delimiter alone at the start of its line, no preamble or epilogue, plain part heads with exactly one Content-Disposition of the form `form-data; name=\"...\"` (optionally `; filename=\"...\"`), no parameter given twice, no Content-Transfer-Encoding that changes the bytes. A field the gateway reads given more than once is refused too. Send the body as browsers and common HTTP clients build it."
            }
            Code::ValidationFailed => {
                "Every parameter and body is checked against the OpenAPI document ([openapi] spec). Each entry of `errors` names the offending part with a JSON pointer (/query/limit, /body/items/0/name) and says what is wrong."
            }
            Code::UnsupportedMediaType => {
                "The OpenAPI document declares which content types each operation accepts; send the body as one of them with a matching Content-Type header."
            }
            Code::ResponseInvalid => {
                "Response validation ([openapi] response_validation = \"block\") stops responses that the OpenAPI document does not declare, so that undeclared data is not exposed."
            }
            Code::StoreUnavailable => {
                "frontgate keeps keys, sessions, counters and replay sets in SQLite, PostgreSQL or Redis. When the store it needs cannot answer, the request is refused with this 503 rather than let through unchecked ([shared] on_outage)."
            }
            Code::AmbiguousRequest => {
                "The gateway checks a request and the backend then reads it again. Where two HTTP \
                 implementations could read the same header differently, frontgate refuses rather \
                 than pick one reading: a request with two Host fields, a Host that disagrees with \
                 the HTTP/2 :authority or the absolute request target, or a body with two \
                 Content-Type fields. Send each of these once."
            }
            Code::UriTooLong => {
                "The path and query, once put under the backend's base path, are longer than an \
                 HTTP request target may be (65,534 bytes). Send a shorter query, or the data in \
                 a request body."
            }
            Code::HostNotAllowed => {
                "The admin listener answers only to IP addresses, localhost and the names listed \
                 in [admin] allowed_hosts, so that a web page whose DNS name was rebound to this \
                 machine cannot reach the admin API or the console from a browser. Add the name \
                 you use to [admin] allowed_hosts."
            }
        }
    }
}

/// A problem document about to be sent. Build one with [`Problem::new`] and turn it into a
/// response with [`Problem::into_response`].
#[derive(Debug, Clone)]
pub struct Problem {
    /// The code of the refusal.
    pub code: Code,
    /// Replaces the code's fixed `detail` text.
    /// (Boxed, not a `String`: a problem is returned by value on every refusal path, and this
    /// keeps it small.)
    pub detail: Option<Box<str>>,
    /// Header fields sent with the document: `Allow` on 405, `Set-Cookie` (a refused login
    /// callback clears its cookie).
    pub fields: Vec<(header::HeaderName, HeaderValue)>,
    /// Overrides the code's status (a masked upstream 503 stays a 503).
    pub status: Option<StatusCode>,
    /// Validation errors: (JSON pointer, message).
    pub errors: Vec<(String, String)>,
    /// Extension members (RFC 9457 §3.2), string-valued: e.g. `challenge` (the URL to fetch one).
    pub extensions: Vec<(&'static str, String)>,
    /// Who was refused, when the gateway knows for sure; never sent to the client.
    pub caller: Option<Box<Caller>>,
}

/// The caller a refusal was for, when that is certain: the owner of a key that exists but may
/// not be used (revoked, expired, out of budget, wrong address or origin), or a caller already
/// authenticated when a later check refused (a missing scope, its rate limit). Never a name the
/// request merely claims, so the console's "refused most" tables by key and subject cannot be
/// filled with made-up names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The key's owner, or the token's or session's `sub`.
    pub subject: String,
    /// The API key's id, for a key.
    pub key_id: Option<String>,
}

impl Problem {
    /// A document for `code`, with its default status and detail.
    pub fn new(code: Code) -> Self {
        Problem {
            code,
            detail: None,
            fields: Vec::new(),
            status: None,
            errors: Vec::new(),
            extensions: Vec::new(),
            caller: None,
        }
    }

    /// Names the caller the refusal was for (see [`Caller`]).
    pub fn with_caller(mut self, caller: Caller) -> Self {
        self.caller = Some(Box::new(caller));
        self
    }

    /// Replaces the code's fixed `detail` text.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into().into_boxed_str());
        self
    }

    /// Overrides the code's status.
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = Some(status);
        self
    }

    /// The status the response will have: the override, else the code's.
    pub fn status(&self) -> StatusCode {
        self.status.unwrap_or(self.code.status())
    }

    /// Adds a string extension member to the document.
    pub fn with_extension(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.extensions.push((name, value.into()));
        self
    }

    /// Adds a `Set-Cookie` field to the response.
    pub fn with_set_cookie(mut self, cookie: HeaderValue) -> Self {
        self.fields.push((header::SET_COOKIE, cookie));
        self
    }

    /// Sets the `Allow` header (for 405).
    pub fn with_allow(mut self, allow: HeaderValue) -> Self {
        self.fields.retain(|(name, _)| name != header::ALLOW);
        self.fields.push((header::ALLOW, allow));
        self
    }

    /// The JSON body. Hand-written so the hot path (404s under a scan) does no map building.
    pub fn to_json(&self, request_id: &str) -> String {
        let code = self.code;
        let detail = self.detail.as_deref().unwrap_or(code.detail());
        let mut out = String::with_capacity(256);
        out.push_str("{\"type\":\"/.frontgate/problems/");
        out.push_str(code.as_str());
        out.push_str("\",\"title\":");
        push_json_str(&mut out, code.title());
        out.push_str(",\"status\":");
        out.push_str(itoa_u16(self.status().as_u16()).as_str());
        out.push_str(",\"detail\":");
        push_json_str(&mut out, detail);
        out.push_str(",\"code\":\"");
        out.push_str(code.as_str());
        out.push_str("\",\"request_id\":");
        push_json_str(&mut out, request_id);
        for (name, value) in &self.extensions {
            out.push(',');
            push_json_str(&mut out, name);
            out.push(':');
            push_json_str(&mut out, value);
        }
        if !self.errors.is_empty() {
            out.push_str(",\"errors\":[");
            for (i, (pointer, message)) in self.errors.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"pointer\":");
                push_json_str(&mut out, pointer);
                out.push_str(",\"message\":");
                push_json_str(&mut out, message);
                out.push('}');
            }
            out.push(']');
        }
        out.push('}');
        out
    }

    /// The response: the JSON body, `Content-Type: application/problem+json`, `Cache-Control:
    /// no-store`, and `Allow` and `Set-Cookie` if set.
    pub fn into_response(self, request_id: &str) -> Response<Body> {
        let body = self.to_json(request_id);
        let mut resp = Response::new(Body::full(Bytes::from(body)));
        *resp.status_mut() = self.status();
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        for (name, value) in self.fields {
            h.append(name, value);
        }
        resp.extensions_mut().insert(self.code);
        resp
    }
}

fn itoa_u16(n: u16) -> String {
    n.to_string()
}

/// Appends `s` as a JSON string literal.
pub fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Escapes text for HTML element content and attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The problem pages' style, inline: allowed by the page's own CSP through its hash
/// ([`problem_page_csp`]), so it renders under any `csp` the operator sets for the gateway.
const PAGE_STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;line-height:1.5;color:#1a1a1a;background:#fff}code{background:#eee;padding:0 .2em;border-radius:.2em}h1{font-size:1.6rem}";

/// The human page for `/.frontgate/problems/<code>`; `None` for an unknown code.
pub fn problem_page(code: &str) -> Option<String> {
    let code = Code::parse(code)?;
    Some(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} ({code}) - frontgate</title>\
         <style>{PAGE_STYLE}</style>\
         </head><body><main><h1>{title}</h1>\
         <p>Problem code <code>{code}</code>, HTTP status {status}.</p>\
         <p>{detail}</p><p>{explanation}</p></main></body></html>\n",
        title = html_escape(code.title()),
        code = code.as_str(),
        status = code.status().as_u16(),
        detail = text_to_html(code.detail()),
        explanation = text_to_html(code.explanation()),
    ))
}

/// The Content-Security-Policy of the problem pages: nothing but their own inline style.
pub fn problem_page_csp() -> &'static str {
    static CSP: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    CSP.get_or_init(|| {
        use base64::Engine as _;
        use sha2::Digest as _;
        let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(PAGE_STYLE.as_bytes()));
        format!("default-src 'none'; style-src 'sha256-{hash}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    })
}

/// Escapes text for HTML and renders its `code spans` (the explanations quote keys and
/// headers that way) as `<code>`.
fn text_to_html(text: &str) -> String {
    let escaped = html_escape(text);
    let mut out = String::with_capacity(escaped.len() + 32);
    for (i, piece) in escaped.split('`').enumerate() {
        if i % 2 == 1 {
            out.push_str("<code>");
            out.push_str(piece);
            out.push_str("</code>");
        } else {
            out.push_str(piece);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_texts_have_whole_code_spans() {
        for code in Code::ALL {
            for text in [code.detail(), code.explanation()] {
                assert_eq!(
                    text.matches('`').count() % 2,
                    0,
                    "{}: an unclosed code span in {text}",
                    code.as_str()
                );
            }
        }
        assert_eq!(
            text_to_html("send `X-API-Key` <now>"),
            "send <code>X-API-Key</code> &lt;now&gt;"
        );
    }

    #[test]
    fn json_document_has_every_member_and_parses() {
        let mut p = Problem::new(Code::MethodNotAllowed);
        p.errors.push(("/a\"b".into(), "bad\nvalue".into()));
        let v: serde_json::Value = serde_json::from_str(&p.to_json("req-\u{1}1")).unwrap();
        assert_eq!(v["type"], "/.frontgate/problems/method_not_allowed");
        assert_eq!(v["status"], 405);
        assert_eq!(v["code"], "method_not_allowed");
        assert_eq!(v["request_id"], "req-\u{1}1");
        assert_eq!(v["errors"][0]["pointer"], "/a\"b");
        assert_eq!(v["errors"][0]["message"], "bad\nvalue");
    }

    #[test]
    fn codes_round_trip_and_have_pages() {
        for code in Code::ALL {
            assert_eq!(Code::parse(code.as_str()), Some(*code));
            assert!(problem_page(code.as_str()).unwrap().contains(code.as_str()));
        }
        assert!(problem_page("../etc/passwd").is_none());
    }
}
