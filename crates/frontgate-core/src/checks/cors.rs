//! Origin and CORS: cross-origin browser requests are accepted only from the exact origins in
//! `[cors] allow_origins`, and only on routes where CORS applies; everything else that carries a
//! foreign `Origin` is refused with `origin_denied`. Same-origin requests (Origin equal to the
//! public URL) and requests without an Origin (non-browser clients, same-origin GETs) pass.

use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Response, StatusCode};

use std::sync::Arc;

use crate::body::Body;
use crate::checks::{Feature, FeatureError, FeatureInputs, RouteContext};
use crate::config::{CorsConfig, CorsOrigin, Origin};
use crate::exchange::{Check, Exchange, Outcome, Stage, Verdict};
use crate::problem::{Code, Problem};

pub struct OriginCheck {
    /// The configured public origin; `None` when `public_url` is not set, and the request's own
    /// scheme and Host stand in for it (see [`OriginCheck::same_origin`]).
    public_origin: Option<HeaderValue>,
    /// `None` when CORS does not apply to the route: only same-origin requests pass.
    cors: Option<CorsPolicy>,
}

struct CorsPolicy {
    any: bool,
    origins: Vec<String>,
    credentials: bool,
    methods: Vec<String>,
    headers: Vec<String>,
    allow_methods: HeaderValue,
    allow_headers: HeaderValue,
    expose_headers: Option<HeaderValue>,
    max_age: HeaderValue,
}

impl OriginCheck {
    pub fn new(public_origin: Option<&Origin>, cors: Option<&CorsConfig>) -> OriginCheck {
        let public_origin = public_origin
            .map(|o| HeaderValue::from_str(o.as_str()).unwrap_or(HeaderValue::from_static("null")));
        let cors = cors.map(|c| {
            let origins = c.allow_origins.get_ref();
            let join = |v: &[String]| {
                HeaderValue::from_str(&v.join(", ")).unwrap_or(HeaderValue::from_static(""))
            };
            let headers: Vec<String> =
                c.allow_headers.iter().map(|h| h.to_ascii_lowercase()).collect();
            CorsPolicy {
                any: origins.contains(&CorsOrigin::Any),
                origins: origins
                    .iter()
                    .filter_map(|o| match o {
                        CorsOrigin::Exact(o) => Some(o.as_str().to_owned()),
                        CorsOrigin::Any => None,
                    })
                    .collect(),
                credentials: c.allow_credentials,
                allow_methods: join(&c.allow_methods),
                allow_headers: join(&headers),
                expose_headers: (!c.expose_headers.is_empty()).then(|| join(&c.expose_headers)),
                max_age: HeaderValue::from(c.max_age.0.as_secs()),
                methods: c.allow_methods.clone(),
                headers,
            }
        });
        OriginCheck { public_origin, cors }
    }

    /// Whether `origin` is the gateway's own. Without a configured public_url, the origin the
    /// request was sent to (scheme + Host) is taken; that is weaker against DNS rebinding, so
    /// `frontgate check` warns about it.
    fn same_origin(&self, origin: &HeaderValue, ex: &Exchange<'_>) -> bool {
        if let Some(public) = &self.public_origin {
            return origin == public;
        }
        let host = ex
            .head
            .uri
            .authority()
            .map(|a| a.as_str())
            .or_else(|| ex.head.headers.get(header::HOST).and_then(|h| h.to_str().ok()));
        let (Some(host), Ok(origin)) = (host, origin.to_str()) else { return false };
        let scheme = if ex.client.https { "https://" } else { "http://" };
        let Some(rest) = origin.strip_prefix(scheme) else { return false };
        // Compare canonical forms: default ports dropped, host lower-cased.
        match (
            format!("{scheme}{rest}").parse::<Origin>(),
            format!("{scheme}{host}").parse::<Origin>(),
        ) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
    }

    fn denied(detail: String) -> Verdict {
        Verdict::Deny(Problem::new(Code::OriginDenied).with_detail(detail))
    }
}

/// Whether a request is a CORS preflight (and so should be routed by its requested method).
pub fn is_preflight(method: &Method, headers: &http::HeaderMap) -> bool {
    method == Method::OPTIONS
        && headers.contains_key(header::ORIGIN)
        && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

impl Check for OriginCheck {
    fn name(&self) -> &'static str {
        "origin"
    }

    fn stage(&self) -> Stage {
        Stage::Origin
    }

    fn check<'a>(&'a self, ex: &'a mut Exchange<'_>) -> Outcome<'a> {
        Outcome::Ready(self.decide(ex))
    }
}

impl OriginCheck {
    fn decide(&self, ex: &mut Exchange<'_>) -> Verdict {
        let policy = self.cors.as_ref().filter(|_| ex.route.cors);
        if policy.is_some() {
            ex.response_headers.push((header::VARY, HeaderValue::from_static("Origin")));
        }
        let mut origins = ex.head.headers.get_all(header::ORIGIN).iter();
        let origin = match (origins.next(), origins.next()) {
            (None, _) => return Verdict::Continue,
            (Some(one), None) => one,
            (Some(_), Some(_)) => return Self::denied("more than one Origin header".into()),
        };
        let preflight = is_preflight(&ex.head.method, &ex.head.headers);
        let same = self.same_origin(origin, ex);
        if same && !preflight {
            return Verdict::Continue;
        }
        let Some(policy) = policy else {
            // A preflight is answered here, never forwarded: routing it by its requested method
            // would otherwise let an OPTIONS reach a route that only declares GET.
            if same && !preflight {
                return Verdict::Continue;
            }
            return Self::denied(format!(
                "origin {:?} is not this site's origin, and this route takes no cross-origin requests (localhost and 127.0.0.1 are different origins: [server] public_url names the one browsers use)",
                origin.to_str().unwrap_or("")
            ));
        };
        let origin_str = origin.to_str().unwrap_or("");
        let listed = policy.origins.iter().any(|o| o == origin_str);
        // `null` and anything that does not parse as an origin never match `*`.
        let allowed = same
            || listed
            || (policy.any && origin_str != "null" && origin_str.parse::<Origin>().is_ok());
        if !allowed {
            return Self::denied(format!("origin {origin_str:?} is not in the allow-list"));
        }
        let mut cors_headers: Vec<(HeaderName, HeaderValue)> = Vec::with_capacity(4);
        if policy.any && !listed && !same {
            cors_headers.push((header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*")));
        } else {
            cors_headers.push((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone()));
        }
        if policy.credentials {
            cors_headers
                .push((header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true")));
        }
        if preflight {
            let requested = ex
                .head
                .headers
                .get(header::ACCESS_CONTROL_REQUEST_METHOD)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !policy.methods.iter().any(|m| m == requested) {
                return Self::denied(format!("method {requested:?} is not allowed cross-origin"));
            }
            for v in ex.head.headers.get_all(header::ACCESS_CONTROL_REQUEST_HEADERS) {
                for h in v.to_str().unwrap_or("\u{0}").split(',') {
                    let h = h.trim().to_ascii_lowercase();
                    if !h.is_empty() && !policy.headers.contains(&h) {
                        return Self::denied(format!("header {h:?} is not allowed cross-origin"));
                    }
                }
            }
            let mut resp = Response::new(Body::empty());
            *resp.status_mut() = StatusCode::NO_CONTENT;
            let h = resp.headers_mut();
            for (k, v) in cors_headers {
                h.insert(k, v);
            }
            h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, policy.allow_methods.clone());
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, policy.allow_headers.clone());
            h.insert(header::ACCESS_CONTROL_MAX_AGE, policy.max_age.clone());
            h.append(
                header::VARY,
                HeaderValue::from_static(
                    "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
                ),
            );
            return Verdict::Respond(resp);
        }
        if let Some(expose) = &policy.expose_headers {
            cors_headers.push((header::ACCESS_CONTROL_EXPOSE_HEADERS, expose.clone()));
        }
        ex.response_headers.extend(cors_headers);
        Verdict::Continue
    }
}

/// The origin feature: every route's origin check (CORS preflights and the allow-list).
pub struct Cors(Arc<dyn Check>);

/// Always built: without `[cors]` the check refuses cross-origin preflights.
pub fn feature(inputs: &FeatureInputs<'_>) -> Result<Option<Arc<dyn Feature>>, FeatureError> {
    let config = inputs.config;
    let public_origin = config.server.public_url.as_ref().map(|p| p.get_ref().clone());
    let check = OriginCheck::new(public_origin.as_ref(), config.cors.as_ref());
    Ok(Some(Arc::new(Cors(Arc::new(check)))))
}

impl Feature for Cors {
    fn route_checks(&self, _: &RouteContext<'_>, checks: &mut Vec<Arc<dyn Check>>) {
        checks.push(self.0.clone());
    }
}
