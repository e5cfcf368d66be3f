//! Request bodies: the content type must be one the operation declares (415 otherwise); JSON is
//! read strictly ([`super::json`]), `application/x-www-form-urlencoded` and `multipart/form-data`
//! are turned into objects by the schema's property types; then the schema validates. Multipart
//! is read by the strict [`crate::multipart`] reader: a body it refuses (malformed, or readable
//! more than one way) is a 400 `invalid_body`, never validated under one guessed reading. The body was buffered by the pipeline (bounded by the route's
//! `max_body_bytes`) and is forwarded as these same bytes.

use bytes::Bytes;
use http::HeaderMap;
use jsonschema::Validator;
use serde_json::{Map, Value};

use super::params::{coerce, decode};
use super::{Errors, Operation, Spec};
use crate::problem::{Code, Problem};

pub struct RequestBody {
    pub required: bool,
    pub content: Vec<MediaBody>,
}

pub struct MediaBody {
    /// The declared media range, lower-case, without parameters (`application/json`, `image/*`).
    pub range: String,
    pub kind: MediaKind,
    pub validator: Option<Validator>,
    /// Top-level properties and their types (form and multipart coercion).
    pub properties: Vec<(String, Option<String>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Json,
    Form,
    Multipart,
    /// Passed through unparsed (only the content type and size are checked).
    Opaque,
}

impl MediaKind {
    pub fn of(essence: &str) -> MediaKind {
        if essence == "application/json"
            || (essence.starts_with("application/") && essence.ends_with("+json"))
        {
            MediaKind::Json
        } else if essence == "application/x-www-form-urlencoded" {
            MediaKind::Form
        } else if essence == "multipart/form-data" {
            MediaKind::Multipart
        } else {
            MediaKind::Opaque
        }
    }
}

/// The readable message of a schema error, without echoing the offending value (which may be
/// huge or sensitive).
pub fn message(e: &jsonschema::ValidationError<'_>) -> String {
    let m = e.masked().to_string();
    if m.starts_with("False schema") {
        return "not allowed here (read-only or undeclared)".into();
    }
    m.chars().take(200).collect()
}

/// Checks the body against the operation. `Err` is a 415, or a 400 `invalid_body` for a body that
/// is ambiguous; schema errors go into `errors`.
pub fn check(
    op: &Operation,
    spec: &Spec,
    headers: &HeaderMap,
    body: Option<&Bytes>,
    errors: &mut Errors,
) -> Result<(), Problem> {
    let present =
        body.is_some_and(|b| !b.is_empty()) || (body.is_none() && super::has_body(headers));
    let Some(decl) = &op.body else {
        if present {
            return Err(Problem::new(Code::UnsupportedMediaType)
                .with_detail("This operation does not take a request body."));
        }
        return Ok(());
    };
    let Some(bytes) = body.filter(|b| !b.is_empty()) else {
        if decl.required {
            errors.push("/body", "a request body is required");
        }
        return Ok(());
    };
    let mut content_types = headers.get_all(http::header::CONTENT_TYPE).iter();
    let content_type = content_types.next().and_then(|v| v.to_str().ok()).unwrap_or("");
    if content_types.next().is_some() {
        // Readers behind the gateway take the first or the last: the body has no one type.
        return Err(Problem::new(Code::InvalidBody)
            .with_detail("The request has more than one Content-Type."));
    }
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let Some(media) = pick(&decl.content, &essence) else {
        let declared: Vec<&str> = decl.content.iter().map(|m| m.range.as_str()).collect();
        return Err(Problem::new(Code::UnsupportedMediaType)
            .with_detail(format!("Send the body as one of: {}.", declared.join(", "))));
    };
    let value = match media.kind {
        MediaKind::Opaque => return Ok(()),
        MediaKind::Json => match super::json::parse(bytes, spec.max_json_depth) {
            Ok(v) => v,
            Err(m) => {
                errors.push("/body", format!("not acceptable JSON: {m}"));
                return Ok(());
            }
        },
        MediaKind::Form => match form(bytes, media) {
            Ok(v) => v,
            Err(m) => {
                errors.push("/body", m);
                return Ok(());
            }
        },
        MediaKind::Multipart => match multipart(bytes, content_type, media)? {
            Ok(v) => v,
            Err(m) => {
                errors.push("/body", m);
                return Ok(());
            }
        },
    };
    if let Some(v) = &media.validator {
        for e in v.iter_errors(&value) {
            if errors.full() {
                errors.push("/body", "");
                break;
            }
            errors.push(format!("/body{}", e.instance_path().as_str()), message(&e));
        }
    }
    Ok(())
}

/// The most specific declared range that matches: exact, then `type/*`, then `*/*`.
fn pick<'a>(content: &'a [MediaBody], essence: &str) -> Option<&'a MediaBody> {
    if essence.is_empty() {
        return None;
    }
    let major = essence.split('/').next().unwrap_or("");
    content
        .iter()
        .find(|m| m.range == essence)
        .or_else(|| content.iter().find(|m| m.range.strip_suffix("/*") == Some(major)))
        .or_else(|| content.iter().find(|m| m.range == "*/*"))
}

fn property_type<'a>(media: &'a MediaBody, name: &str) -> (bool, Option<&'a str>) {
    match media.properties.iter().find(|(n, _)| n == name) {
        Some((_, t)) => (true, t.as_deref()),
        None => (false, None),
    }
}

/// Adds a field to a form object: array-typed properties collect repeats, others refuse them.
/// `raw` is `None` for a file part, whose content is not validated (an empty string stands in).
fn add_field(
    obj: &mut Map<String, Value>,
    media: &MediaBody,
    name: &str,
    raw: Option<&str>,
) -> Result<(), String> {
    let (_, t) = property_type(media, name);
    let value = |t| raw.map_or(Value::String(String::new()), |raw| coerce(raw, t));
    if t == Some("array") {
        let entry = obj.entry(name.to_owned()).or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(a) = entry {
            a.push(raw.map_or(Value::String(String::new()), |raw| Value::String(raw.to_owned())));
        }
        return Ok(());
    }
    if obj.insert(name.to_owned(), value(t)).is_some() {
        return Err(format!(
            "field `{}` given more than once",
            name.chars().take(64).collect::<String>()
        ));
    }
    Ok(())
}

fn form(bytes: &[u8], media: &MediaBody) -> Result<Value, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "the form body is not UTF-8".to_owned())?;
    let mut obj = Map::new();
    for kv in text.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        add_field(&mut obj, media, &decode(k, true), Some(&decode(v, true)))?;
    }
    Ok(Value::Object(obj))
}

/// A `multipart/form-data` body as an object: each part's `name` becomes a property; a field's
/// content is text (coerced by type), a file's is not read. The outer `Err` is the strict
/// reader's refusal (a 400 `invalid_body`); the inner one a schema-level error (a field given
/// twice, text that is not UTF-8).
fn multipart(
    bytes: &[u8],
    content_type: &str,
    media: &MediaBody,
) -> Result<Result<Value, String>, Problem> {
    let invalid = |e: crate::multipart::Error| {
        Problem::new(Code::InvalidBody).with_detail(format!("The multipart body is refused: {e}."))
    };
    let boundary = crate::multipart::boundary(content_type).map_err(invalid)?;
    let parts = crate::multipart::parse(bytes, boundary).map_err(invalid)?;
    let mut obj = Map::new();
    for part in &parts {
        let text = if part.is_file() {
            None
        } else {
            match std::str::from_utf8(&bytes[part.content.clone()]) {
                Ok(t) => Some(t),
                Err(_) => {
                    return Ok(Err(format!(
                        "multipart field `{}` is not UTF-8 text",
                        part.name.chars().take(64).collect::<String>()
                    )));
                }
            }
        };
        if let Err(e) = add_field(&mut obj, media, part.name, text) {
            return Ok(Err(e));
        }
    }
    Ok(Ok(Value::Object(obj)))
}
