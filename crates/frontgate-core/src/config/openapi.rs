//! `[openapi]`: the team's OpenAPI document as the allow-list and the validator. Its operations
//! become routes; every parameter and body is checked against it before the upstream sees it.
//! The document itself is loaded and compiled while the config is validated (so `frontgate
//! check` reports its errors, and a reload that breaks it is refused); see
//! `crate::checks::openapi`.

use std::path::PathBuf;

use serde::Deserialize;

use super::values::Size;

/// `[openapi]`: the OpenAPI document as the allow-list and the validator.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenApiConfig {
    /// The document (YAML or JSON, OpenAPI 3.0 or 3.1), relative to the config file.
    pub spec: PathBuf,
    /// Query parameters the operation does not declare: refused (the default) or passed on.
    #[serde(default)]
    pub unknown_query: UnknownQuery,
    /// What to do with upstream responses that do not match the document.
    #[serde(default)]
    pub response_validation: ResponseValidation,
    /// JSON bodies nested deeper than this are refused before schema validation.
    #[serde(default = "d_max_json_depth")]
    pub max_json_depth: usize,
    /// At most this many errors are listed in one `validation_failed` problem.
    #[serde(default = "d_max_errors")]
    pub max_errors: usize,
    /// The largest spec file (and the sum of all files it references) accepted.
    #[serde(default = "d_max_spec_bytes")]
    pub max_spec_bytes: Size,
    /// Responses larger than this are not buffered for validation: in `block`/`strip` they are
    /// refused, in `report` they pass and are counted.
    #[serde(default = "d_max_response_bytes")]
    pub max_response_bytes: Size,
}

/// `unknown_query`: what happens to query parameters the operation does not declare.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownQuery {
    /// Refused with 400 `validation_failed` (the default).
    #[default]
    Reject,
    /// Passed on unchecked.
    Allow,
}

/// `response_validation`: what happens to upstream responses that do not match the document.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResponseValidation {
    /// Responses are not validated (the default).
    #[default]
    Off,
    /// Log and count mismatches; the response passes unchanged.
    Report,
    /// Replace a mismatching response with a 502 `response_invalid`.
    Block,
    /// Remove properties the document does not declare from JSON responses, then block what
    /// still does not match.
    Strip,
}

impl ResponseValidation {
    /// The config spelling: `off`, `report`, `block` or `strip`.
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseValidation::Off => "off",
            ResponseValidation::Report => "report",
            ResponseValidation::Block => "block",
            ResponseValidation::Strip => "strip",
        }
    }
}

fn d_max_json_depth() -> usize {
    64
}
fn d_max_errors() -> usize {
    10
}
fn d_max_spec_bytes() -> Size {
    Size(16 * 1024 * 1024)
}
fn d_max_response_bytes() -> Size {
    Size(1024 * 1024)
}
