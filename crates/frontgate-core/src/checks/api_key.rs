//! The API-key authenticator: a key presented as `Authorization: Bearer <key>` or
//! `X-API-Key: <key>` is verified by [`crate::keys::Verifier`] (checksum → cache → store) and
//! becomes an [`Identity`] with the key's subject, id and scopes. A key in the query string is
//! refused (it would end up in logs, proxies and browser history). The key itself never goes
//! upstream: [`Authenticator::consumed`] removes the headers that carried it.

use std::sync::Arc;

use http::HeaderValue;
use http::request::Parts;

use super::auth::{AuthFuture, AuthResult, Authenticator, BEARER_CHALLENGE};
use crate::checks::{Feature, FeatureError, FeatureInputs, RouteContext};
use crate::config::AuthMethod;
use crate::exchange::{Exchange, Identity};
use crate::keys::record::Denial;
use crate::keys::{Refusal, Verifier};
use crate::problem::{Code, Problem};

pub use crate::headers::X_API_KEY;

/// Query parameter names that carry an API key in the wild.
const QUERY_NAMES: [&str; 5] = ["api_key", "apikey", "api-key", "x-api-key", "key"];

pub struct ApiKeyAuth {
    verifier: Arc<Verifier>,
}

impl ApiKeyAuth {
    pub fn new(verifier: Arc<Verifier>) -> ApiKeyAuth {
        ApiKeyAuth { verifier }
    }

    fn bearer<'h>(&self, v: &'h HeaderValue) -> Option<&'h str> {
        let s = v.to_str().ok()?;
        let (scheme, rest) = s.split_once(' ')?;
        let rest = rest.trim();
        (scheme.eq_ignore_ascii_case("bearer") && rest.starts_with(self.verifier.prefix()))
            .then_some(rest)
    }

    /// Whether the query string carries something that looks like a key (by name, or by a value
    /// starting with the key prefix).
    fn key_in_query(&self, head: &Parts) -> bool {
        let Some(q) = head.uri.query() else { return false };
        let prefix = self.verifier.prefix();
        // Pairs split on `&` and `;` (older parsers), names and values trimmed, and a key
        // prefix anywhere in the decoded query: whatever a backend's parser makes of it.
        if percent_encoding::percent_decode_str(q).decode_utf8_lossy().contains(prefix) {
            return true;
        }
        q.split(['&', ';']).any(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
            let value = percent_encoding::percent_decode_str(value).decode_utf8_lossy();
            QUERY_NAMES.iter().any(|n| name.trim().eq_ignore_ascii_case(n))
                && !value.trim().is_empty()
        })
    }

    /// The one key the request presents; two different ones are refused as ambiguous.
    fn presented_key<'h>(&self, head: &'h Parts) -> Result<&'h str, Problem> {
        let mut found: Option<&str> = None;
        let header_keys = head
            .headers
            .get_all(X_API_KEY)
            .iter()
            .map(|v| v.to_str().map(str::trim).unwrap_or("\u{0}"));
        let bearer_keys =
            head.headers.get_all(http::header::AUTHORIZATION).iter().filter_map(|v| self.bearer(v));
        for k in header_keys.chain(bearer_keys) {
            match found {
                Some(f) if f != k => {
                    return Err(Problem::new(Code::ApiKeyInvalid)
                        .with_detail("Send exactly one API key, in one header."));
                }
                _ => found = Some(k),
            }
        }
        found.ok_or_else(|| Problem::new(Code::Unauthenticated))
    }
}

impl Authenticator for ApiKeyAuth {
    fn method(&self) -> AuthMethod {
        AuthMethod::ApiKey
    }

    fn presented(&self, head: &Parts) -> bool {
        head.headers.contains_key(X_API_KEY)
            || head
                .headers
                .get_all(http::header::AUTHORIZATION)
                .iter()
                .any(|v| self.bearer(v).is_some())
            || self.key_in_query(head)
    }

    fn consumed(&self, head: &mut Parts) {
        head.headers.remove(X_API_KEY);
        let keep: Vec<HeaderValue> = head
            .headers
            .get_all(http::header::AUTHORIZATION)
            .iter()
            .filter(|v| self.bearer(v).is_none())
            .cloned()
            .collect();
        head.headers.remove(http::header::AUTHORIZATION);
        for v in keep {
            head.headers.append(http::header::AUTHORIZATION, v);
        }
    }

    fn challenges(&self) -> Vec<String> {
        // Keys are also presented as `Authorization: Bearer <key>`.
        vec![BEARER_CHALLENGE.to_owned()]
    }

    fn authenticate<'a>(&'a self, ex: &'a Exchange<'_>) -> AuthFuture<'a> {
        Box::pin(async move {
            let key = self.presentable_key(ex)?;
            let origin = ex.head.headers.get(http::header::ORIGIN).and_then(|v| v.to_str().ok());
            self.verifier
                .verify(key, ex.client.ip, origin)
                .await
                .map(identity)
                .map_err(|r| problem(&r))
        })
    }

    fn authenticate_cached(&self, ex: &Exchange<'_>) -> Option<AuthResult> {
        let key = match self.presentable_key(ex) {
            Ok(key) => key,
            Err(p) => return Some(Err(p)),
        };
        let origin = ex.head.headers.get(http::header::ORIGIN).and_then(|v| v.to_str().ok());
        let verified = self.verifier.verify_cached(key, ex.client.ip, origin)?;
        Some(verified.map(identity).map_err(|r| problem(&r)))
    }
}

impl ApiKeyAuth {
    /// The one key the request presents, refusing a key in the URL.
    fn presentable_key<'e>(&self, ex: &'e Exchange<'_>) -> Result<&'e str, Problem> {
        if self.key_in_query(ex.head) {
            metrics::counter!(crate::keys::verify::VERIFICATIONS, "result" => "in_query")
                .increment(1);
            return Err(in_query_problem());
        }
        self.presented_key(ex.head)
    }
}

/// On a route that does not take API keys: a key in the query string is still refused with
/// `credentials_in_query` (not, say, a validation error about an unknown parameter), because the
/// answer that matters is "this key has leaked". Only values that start with the key prefix
/// count here: a parameter merely named `key` is the route's own business.
pub struct KeyNotInQuery {
    prefix: String,
}

impl KeyNotInQuery {
    pub fn new(prefix: &str) -> KeyNotInQuery {
        KeyNotInQuery { prefix: prefix.to_owned() }
    }
}

impl crate::exchange::Check for KeyNotInQuery {
    fn name(&self) -> &'static str {
        "key_not_in_query"
    }

    fn stage(&self) -> crate::exchange::Stage {
        crate::exchange::Stage::Credentials
    }

    fn check<'a>(&'a self, ex: &'a mut Exchange<'_>) -> crate::exchange::Outcome<'a> {
        let Some(q) = ex.head.uri.query() else {
            return crate::exchange::Outcome::Ready(crate::exchange::Verdict::Continue);
        };
        // Anywhere in the decoded query: backends split pairs on `;` too, trim values, or read
        // the whole query; a key is a leak wherever it stands.
        let leaked = percent_encoding::percent_decode_str(q)
            .decode_utf8_lossy()
            .contains(self.prefix.as_str());
        crate::exchange::Outcome::Ready(if leaked {
            metrics::counter!(crate::keys::verify::VERIFICATIONS, "result" => "in_query")
                .increment(1);
            crate::exchange::Verdict::Deny(in_query_problem())
        } else {
            crate::exchange::Verdict::Continue
        })
    }
}

fn in_query_problem() -> Problem {
    Problem::new(Code::CredentialsInQuery)
        .with_detail("API keys must not be sent in the URL, where logs and browser history keep them; send the X-API-Key header. Consider this key leaked and rotate it.")
}

/// Who a verified key says the caller is.
fn identity(r: Arc<crate::keys::KeyRecord>) -> Identity {
    Identity {
        method: AuthMethod::ApiKey,
        subject: r.subject.clone(),
        key_id: Some(r.id.clone()),
        scopes: r.scopes.clone(),
        claims: None,
        // Validated when the key was made; an unparsable stored value limits nothing.
        rate_limit: r.rate_limit.as_deref().and_then(|s| crate::config::Rate::parse(s).ok()),
        upstream_headers: Vec::new(),
    }
}

fn problem(r: &Refusal) -> Problem {
    let problem = match r {
        Refusal::Malformed => {
            Problem::new(Code::ApiKeyInvalid).with_detail("The API key is malformed.")
        }
        Refusal::BadChecksum => Problem::new(Code::ApiKeyInvalid)
            .with_detail("The API key's checksum does not match: it was mistyped or truncated."),
        Refusal::Unknown => Problem::new(Code::ApiKeyInvalid),
        Refusal::Denied(Denial::Revoked, _) => Problem::new(Code::ApiKeyRevoked),
        Refusal::Denied(Denial::Expired, _) => Problem::new(Code::ApiKeyExpired),
        Refusal::UsesSpent(_) => Problem::new(Code::ApiKeyExpired)
            .with_detail("This API key has used up its budget of requests."),
        Refusal::Denied(Denial::ClientAddress, _) => Problem::new(Code::ClientDenied),
        Refusal::Denied(Denial::Origin, _) => Problem::new(Code::OriginDenied)
            .with_detail("This API key may not be used from this origin."),
        Refusal::Store(e) => {
            tracing::error!(error = %e, "API-key store unavailable");
            Problem::new(Code::StoreUnavailable)
        }
    };
    // A key that exists names its owner: the refusal is theirs (the console counts it).
    match r {
        Refusal::Denied(_, record) | Refusal::UsesSpent(record) => {
            problem.with_caller(crate::problem::Caller {
                subject: record.subject.clone(),
                key_id: Some(record.id.clone()),
            })
        }
        _ => problem,
    }
}

/// The API-key feature: key authentication, and a refusal of keys in query strings on routes
/// that do not take keys (a key in a URL leaks into logs; refused wherever it appears).
pub struct ApiKeys {
    auth: Arc<ApiKeyAuth>,
    in_query: Arc<dyn crate::exchange::Check>,
}

/// `[api_keys]`: needs the store the process opened at start.
pub fn feature(inputs: &FeatureInputs<'_>) -> Result<Option<Arc<dyn Feature>>, FeatureError> {
    let Some(keys) = &inputs.config.api_keys else { return Ok(None) };
    if inputs.services.db().is_none() {
        return Err(FeatureError::StoreNotOpen("[api_keys]"));
    }
    let verifier = Verifier::new(keys, inputs.services);
    Ok(Some(Arc::new(ApiKeys {
        auth: Arc::new(ApiKeyAuth::new(verifier)),
        in_query: Arc::new(KeyNotInQuery::new(&keys.prefix)),
    })))
}

impl Feature for ApiKeys {
    fn authenticators(&self) -> Vec<Arc<dyn Authenticator>> {
        vec![self.auth.clone()]
    }

    fn route_checks(
        &self,
        route: &RouteContext<'_>,
        checks: &mut Vec<Arc<dyn crate::exchange::Check>>,
    ) {
        // Routes that take keys refuse one in the URL as they read it.
        if !route.auth.accepts(AuthMethod::ApiKey) {
            checks.push(self.in_query.clone());
        }
    }
}
