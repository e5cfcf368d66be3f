//! The OpenAPI positive security model: the team's OpenAPI document is the allow-list (its
//! operations are the routes; see [`crate::route::table`]) and the validator (parameters and
//! bodies before the upstream sees them, responses after).
//!
//! - [`loader`] reads YAML/JSON and bundles local file references, never remote ones;
//! - [`compile()`] turns the document into [`Operation`]s with their validators, once per load;
//! - [`params`] checks path, query, header and cookie parameters;
//! - [`body`] checks request bodies (JSON, form, multipart);
//! - [`response`] checks (reports, blocks, strips) upstream responses.

pub mod body;
pub mod compile;
pub mod json;
pub mod loader;
pub mod params;
pub mod response;

use std::sync::Arc;

use bytes::Bytes;
use http::Method;
use serde_json::Value;

use crate::checks::{Check, Exchange, Outcome, Verdict};
use crate::config::AuthMethod;
use crate::config::openapi::{OpenApiConfig, UnknownQuery};
use crate::problem::{Code, Problem};

pub use compile::compile;

/// A problem in the document: where (a JSON pointer into it) and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pointer}: {message}")]
pub struct SpecError {
    pub pointer: String,
    pub message: String,
}

impl SpecError {
    pub fn new(pointer: &str, message: impl Into<String>) -> Self {
        SpecError {
            pointer: if pointer.is_empty() { "/".into() } else { pointer.to_owned() },
            message: message.into(),
        }
    }
}

/// The compiled document: every operation with its validators.
pub struct Spec {
    pub operations: Vec<Operation>,
    /// The bundled document (for stripping responses by their schemas).
    pub root: Arc<Value>,
    pub unknown_query: UnknownQuery,
    pub max_json_depth: usize,
    pub max_errors: usize,
    pub max_response_bytes: u64,
    pub response_validation: crate::config::openapi::ResponseValidation,
}

impl std::fmt::Debug for Spec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spec").field("operations", &self.operations.len()).finish()
    }
}

/// One declared operation.
pub struct Operation {
    pub method: Method,
    /// The matchit pattern (servers base path + template, parameters renamed `{p0}`, `{p1}`...).
    pub pattern: String,
    /// `GET /base/items/{id}`: the route name in logs and metrics.
    pub name: String,
    /// The operation's place in the document.
    pub pointer: String,
    /// Path parameters: (segment index in the request path, parameter).
    pub path_params: Vec<(usize, params::Param)>,
    pub query: Vec<params::Param>,
    pub headers: Vec<params::Param>,
    pub cookies: Vec<params::Param>,
    pub body: Option<body::RequestBody>,
    pub responses: response::Responses,
    /// Authentication the document's `security` asks for (any one method suffices); empty
    /// when the operation is public.
    pub auth: Vec<AuthMethod>,
    pub scopes: Vec<String>,
}

/// Builds the compiled spec for a config section.
pub fn load(config: &OpenApiConfig) -> Result<Spec, Vec<SpecError>> {
    let root = loader::load(&config.spec, config.max_spec_bytes.0).map_err(|e| vec![e])?;
    compile(root, config)
}

/// The authentication a route asks for: its `[[routes]]` entry's `auth` and `scopes` when set,
/// else (for an OpenAPI operation) what the document's `security` says. A config route can
/// thus replace or tighten the document's requirement, but `auth = "none"` cannot remove it.
pub fn route_policy(
    config: &crate::config::Config,
    entry: &crate::route::RouteEntry,
    route: Option<&crate::config::RouteConfig>,
) -> (crate::config::AuthSetting, Vec<String>) {
    let op =
        entry.operation.and_then(|i| config.openapi.as_ref()?.compiled.as_ref()?.operations.get(i));
    let (mut auth, mut scopes) = match route {
        Some(r) => (r.auth.clone(), r.scopes.clone()),
        None => (crate::config::AuthSetting::default(), Vec::new()),
    };
    if let Some(op) = op {
        if auth.is_none() {
            auth = crate::config::AuthSetting(op.auth.clone());
        }
        if scopes.is_empty() && !auth.is_none() {
            scopes = op.scopes.clone();
        }
    }
    (auth, scopes)
}

/// Validating errors collected for one request, capped at `max`.
pub struct Errors {
    pub list: Vec<(String, String)>,
    pub max: usize,
    pub truncated: bool,
}

impl Errors {
    pub fn new(max: usize) -> Self {
        Errors { list: Vec::new(), max: max.max(1), truncated: false }
    }
    pub fn push(&mut self, pointer: impl Into<String>, message: impl Into<String>) {
        if self.list.len() < self.max {
            self.list.push((pointer.into(), message.into()));
        } else {
            self.truncated = true;
        }
    }
    pub fn full(&self) -> bool {
        self.list.len() >= self.max
    }
    pub fn into_problem(self) -> Option<Problem> {
        if self.list.is_empty() {
            return None;
        }
        let mut p = Problem::new(Code::ValidationFailed);
        if self.truncated {
            p = p.with_detail(format!("The request does not match the API's declared schema; the first {} errors are listed.", self.max));
        }
        p.errors = self.list;
        Some(p)
    }
}

/// The validate check for one operation: parameters, then the body.
pub struct OpenApiCheck {
    spec: Arc<Spec>,
    op: usize,
    route: Arc<str>,
}

impl OpenApiCheck {
    pub fn new(spec: Arc<Spec>, op: usize, route: Arc<str>) -> Self {
        OpenApiCheck { spec, op, route }
    }

    fn operation(&self) -> &Operation {
        &self.spec.operations[self.op]
    }

    fn validate(&self, ex: &Exchange<'_>) -> Result<(), Problem> {
        let op = self.operation();
        let spec = &*self.spec;
        let mut errors = Errors::new(spec.max_errors);
        params::check(op, spec, ex.head, &mut errors);
        let mut media_problem = None;
        if errors.list.is_empty() {
            media_problem =
                body::check(op, spec, &ex.head.headers, ex.body.as_ref(), &mut errors).err();
        }
        if let Some(p) = media_problem {
            self.count(if p.code == Code::InvalidBody { "body" } else { "media_type" });
            return Err(p);
        }
        match errors.into_problem() {
            Some(p) => {
                self.count("request");
                Err(p)
            }
            None => Ok(()),
        }
    }

    fn count(&self, part: &'static str) {
        metrics::counter!("frontgate_openapi_rejected_total", "route" => self.route.to_string(), "part" => part).increment(1);
    }
}

impl Check for OpenApiCheck {
    fn name(&self) -> &'static str {
        "openapi"
    }

    fn needs_body(&self) -> bool {
        self.operation().body.is_some()
    }

    fn check<'a>(&'a self, ex: &'a mut Exchange<'_>) -> Outcome<'a> {
        // Responses are validated as JSON text: ask the upstream not to compress them.
        if self.spec.response_validation != crate::config::openapi::ResponseValidation::Off {
            ex.head.headers.remove(http::header::ACCEPT_ENCODING);
        }
        Outcome::Ready(match self.validate(ex) {
            Ok(()) => Verdict::Continue,
            Err(p) => Verdict::Deny(p),
        })
    }
}

/// Whether a request carries a body, judged from its head (no body is read).
pub fn has_body(headers: &http::HeaderMap) -> bool {
    headers.contains_key(http::header::TRANSFER_ENCODING)
        || headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0")
}

/// A body as the check sees it.
pub type BodyBytes = Bytes;
