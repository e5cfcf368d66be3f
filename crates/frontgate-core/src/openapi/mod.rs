//! The OpenAPI positive security model: the team's OpenAPI document is the allow-list (its
//! operations are the routes the route table adds) and the validator (parameters and bodies
//! before the upstream sees them, responses after). This module is the compiled document and
//! its validators; the request-path check that runs them is `checks::openapi`, and the plan
//! (`crate::plan`) loads the document once per config load.
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
