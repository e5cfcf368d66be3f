//! Response validation (`[openapi] response_validation`): the status must be declared (or a
//! `default`/`2XX` range), the content type one of the declared ones, and a JSON body must
//! match its schema. `report` logs and counts, `block` answers 502 `response_invalid`, `strip`
//! first removes every property the schema does not declare (OWASP API3, excessive data
//! exposure), then blocks what still does not match.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Response, header};
use http_body_util::BodyExt;
use jsonschema::Validator;
use serde_json::Value;

use super::compile::resolve;
use super::{Operation, Spec};
use crate::body::Body;
use crate::config::openapi::ResponseValidation;
use crate::problem::{Code, Problem};

#[derive(Default)]
pub struct Responses {
    /// (status key upper-cased: `200`, `2XX`, `DEFAULT`; what it declares).
    pub by_status: Vec<(String, ResponseSpec)>,
}

pub struct ResponseSpec {
    /// (media range, validator, pointer to the schema).
    pub content: Vec<(String, Option<Arc<Validator>>, Option<String>)>,
}

impl Responses {
    fn find(&self, status: u16) -> Option<&ResponseSpec> {
        let exact = status.to_string();
        let range = format!("{}XX", status / 100);
        self.by_status
            .iter()
            .find(|(k, _)| *k == exact)
            .or_else(|| self.by_status.iter().find(|(k, _)| *k == range))
            .or_else(|| self.by_status.iter().find(|(k, _)| k == "DEFAULT"))
            .map(|(_, s)| s)
    }
}

/// Validates (and in `strip` mode, trims) an upstream response for `op`.
pub async fn check(
    spec: &Spec,
    op: &Operation,
    method: &http::Method,
    route: &str,
    resp: Response<Body>,
    request_id: &str,
) -> Result<Response<Body>, Problem> {
    let mode = spec.response_validation;
    if mode == ResponseValidation::Off || resp.status() == http::StatusCode::SWITCHING_PROTOCOLS {
        return Ok(resp);
    }
    let status = resp.status().as_u16();
    let Some(declared) = op.responses.find(status) else {
        // A client error the document does not declare (a 404 for an id that does not exist,
        // a 409 from the backend's own rules) is the backend's answer to the client: turning
        // it into a 502 would hide what the client must fix. It passes as sent, and is
        // counted. 5xx answers are `[upstream] mask_5xx`'s; undeclared successes are refused.
        if resp.status().is_client_error() {
            count(route, mode, "undeclared_error_status");
            return Ok(resp);
        }
        return verdict(mode, route, request_id, resp, format!("status {status} is not declared"));
    };
    let content_type = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    // No body to check: a HEAD answer, 204, 304.
    if method == http::Method::HEAD || status == 204 || status == 304 {
        return Ok(resp);
    }
    let (parts, body) = resp.into_parts();
    if declared.content.is_empty() {
        let resp = Response::from_parts(parts, body);
        if http_body::Body::is_end_stream(resp.body()) || essence.is_empty() {
            return Ok(resp);
        }
        return verdict(
            mode,
            route,
            request_id,
            resp,
            format!("status {status} declares no body, but one of type `{essence}` came"),
        );
    }
    let major = essence.split('/').next().unwrap_or("");
    let media = declared
        .content
        .iter()
        .find(|(r, _, _)| *r == essence)
        .or_else(|| declared.content.iter().find(|(r, _, _)| r.strip_suffix("/*") == Some(major)))
        .or_else(|| declared.content.iter().find(|(r, _, _)| r == "*/*"));
    let Some((_, validator, schema_ptr)) = media else {
        return verdict(
            mode,
            route,
            request_id,
            Response::from_parts(parts, body),
            format!("content type `{essence}` is not declared for status {status}"),
        );
    };
    if super::body::MediaKind::of(&essence) != super::body::MediaKind::Json || validator.is_none() {
        return Ok(Response::from_parts(parts, body));
    }
    // Compressed despite the request asking for identity (see OpenApiCheck): cannot be read.
    if parts
        .headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|e| !e.as_bytes().eq_ignore_ascii_case(b"identity"))
    {
        return verdict(
            mode,
            route,
            request_id,
            Response::from_parts(parts, body),
            "the body is compressed and cannot be validated".into(),
        );
    }
    let declared_len = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared_len.is_some_and(|n| n > spec.max_response_bytes) {
        count(route, mode, "too_large");
        if mode == ResponseValidation::Report {
            return Ok(Response::from_parts(parts, body));
        }
        return Err(Problem::new(Code::ResponseInvalid));
    }
    // Buffer the JSON body, bounded.
    let limited = http_body_util::Limited::new(body, spec.max_response_bytes as usize);
    let bytes = match limited.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            // The body is partly consumed: it cannot be passed on, whatever the mode.
            count(route, mode, "too_large");
            tracing::warn!(target: "frontgate::openapi", request_id, route, "response too large to validate, or failed while reading");
            return Err(Problem::new(Code::ResponseInvalid));
        }
    };
    let rebuild = |parts: http::response::Parts, bytes: Bytes| {
        let mut parts = parts;
        parts.headers.remove(header::TRANSFER_ENCODING);
        parts.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
        Response::from_parts(parts, Body::full(bytes))
    };
    let Ok(mut value) = serde_json::from_slice::<Value>(&bytes) else {
        return verdict(
            mode,
            route,
            request_id,
            rebuild(parts, bytes),
            "the body is not JSON".into(),
        );
    };
    let mut bytes = bytes;
    if mode == ResponseValidation::Strip
        && let Some(ptr) = schema_ptr
        && let Some(schema) = spec.root.pointer(ptr)
        && strip(&spec.root, schema, ptr, &mut value, 0)
    {
        bytes = Bytes::from(serde_json::to_vec(&value).unwrap_or_default());
        count(route, mode, "stripped");
    }
    let validator = validator.as_ref().map(Arc::as_ref);
    let first = validator.and_then(|v| {
        v.iter_errors(&value)
            .next()
            .map(|e| format!("{}: {}", e.instance_path().as_str(), super::body::message(&e)))
    });
    match first {
        None => Ok(rebuild(parts, bytes)),
        Some(m) => verdict(mode, route, request_id, rebuild(parts, bytes), m),
    }
}

fn count(route: &str, mode: ResponseValidation, outcome: &'static str) {
    metrics::counter!("frontgate_openapi_responses_total", "route" => route.to_owned(), "mode" => mode.as_str(), "outcome" => outcome).increment(1);
}

fn verdict(
    mode: ResponseValidation,
    route: &str,
    request_id: &str,
    resp: Response<Body>,
    why: String,
) -> Result<Response<Body>, Problem> {
    count(route, mode, "invalid");
    tracing::warn!(target: "frontgate::openapi", request_id, route, mode = mode.as_str(), reason = why.as_str(), "response does not match the OpenAPI document");
    match mode {
        ResponseValidation::Off | ResponseValidation::Report => Ok(resp),
        ResponseValidation::Block | ResponseValidation::Strip => {
            Err(Problem::new(Code::ResponseInvalid))
        }
    }
}

/// Removes from `value` the object properties `schema` does not declare. Returns whether
/// anything was removed. Follows `$ref`, `properties`, `items` and `allOf`; values under
/// `oneOf`/`anyOf` are left alone (which branch applies is not known here).
fn strip(root: &Value, schema: &Value, ptr: &str, value: &mut Value, depth: usize) -> bool {
    if depth > 64 {
        return false;
    }
    let Ok((schema, _)) = resolve(root, schema, ptr) else { return false };
    let mut changed = false;
    match value {
        Value::Object(obj) => {
            if schema.get("oneOf").is_some() || schema.get("anyOf").is_some() {
                return false;
            }
            let mut declared: Vec<(&String, &Value)> = Vec::new();
            collect_properties(root, schema, &mut declared, 0);
            let open = declared.is_empty()
                && schema.get("additionalProperties").is_none_or(|a| a != &Value::Bool(false))
                && schema.get("patternProperties").is_none();
            if open {
                return false;
            }
            let additional = schema
                .get("additionalProperties")
                .filter(|a| a.is_object() || **a == Value::Bool(true));
            let before = obj.len();
            obj.retain(|k, _| {
                declared.iter().any(|(n, _)| *n == k)
                    || additional.is_some()
                    || schema.get("patternProperties").is_some()
            });
            changed |= obj.len() != before;
            for (k, v) in obj.iter_mut() {
                if let Some((_, s)) = declared.iter().find(|(n, _)| *n == k) {
                    changed |= strip(root, s, ptr, v, depth + 1);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for v in items.iter_mut() {
                    changed |= strip(root, item_schema, ptr, v, depth + 1);
                }
            }
        }
        _ => {}
    }
    changed
}

fn collect_properties<'a>(
    root: &'a Value,
    schema: &'a Value,
    out: &mut Vec<(&'a String, &'a Value)>,
    depth: usize,
) {
    if depth > 16 {
        return;
    }
    let Ok((schema, _)) = resolve(root, schema, "") else { return };
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        out.extend(props.iter());
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for s in all {
            collect_properties(root, s, out, depth + 1);
        }
    }
}
