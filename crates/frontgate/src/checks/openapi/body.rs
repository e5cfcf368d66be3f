//! Request bodies: the content type must be one the operation declares (415 otherwise); JSON is
//! read strictly ([`super::json`]), `application/x-www-form-urlencoded` and simple
//! `multipart/form-data` are turned into objects by the schema's property types; then the
//! schema validates. The body was buffered by the pipeline (bounded by the route's
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
        if essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json")) {
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

/// Checks the body against the operation. `Err` is a 415; schema errors go into `errors`.
pub fn check(op: &Operation, spec: &Spec, headers: &HeaderMap, body: Option<&Bytes>, errors: &mut Errors) -> Result<(), Problem> {
    let present = body.is_some_and(|b| !b.is_empty()) || (body.is_none() && super::has_body(headers));
    let Some(decl) = &op.body else {
        if present {
            return Err(Problem::new(Code::UnsupportedMediaType).with_detail("This operation does not take a request body."));
        }
        return Ok(());
    };
    let Some(bytes) = body.filter(|b| !b.is_empty()) else {
        if decl.required {
            errors.push("/body", "a request body is required");
        }
        return Ok(());
    };
    let content_type = headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let Some(media) = pick(&decl.content, &essence) else {
        let declared: Vec<&str> = decl.content.iter().map(|m| m.range.as_str()).collect();
        return Err(Problem::new(Code::UnsupportedMediaType).with_detail(format!("Send the body as one of: {}.", declared.join(", "))));
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
        MediaKind::Multipart => match multipart(bytes, content_type, media) {
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
fn add_field(obj: &mut Map<String, Value>, media: &MediaBody, name: &str, raw: &str) -> Result<(), String> {
    let (_, t) = property_type(media, name);
    if t == Some("array") {
        let entry = obj.entry(name.to_owned()).or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(a) = entry {
            a.push(Value::String(raw.to_owned()));
        }
        return Ok(());
    }
    if obj.insert(name.to_owned(), coerce(raw, t)).is_some() {
        return Err(format!("field `{}` given more than once", name.chars().take(64).collect::<String>()));
    }
    Ok(())
}

fn form(bytes: &[u8], media: &MediaBody) -> Result<Value, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "the form body is not UTF-8".to_owned())?;
    let mut obj = Map::new();
    for kv in text.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        add_field(&mut obj, media, &decode(k, true), &decode(v, true))?;
    }
    Ok(Value::Object(obj))
}

/// A simple `multipart/form-data` reader: each part's `name` becomes a property; its content is
/// text (coerced by type), or a string for binary parts.
fn multipart(bytes: &[u8], content_type: &str, media: &MediaBody) -> Result<Value, String> {
    let boundary = content_type
        .split(';')
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim().trim_matches('"').to_owned())
        .filter(|b| !b.is_empty() && b.len() <= 70)
        .ok_or("multipart body without a boundary")?;
    let delim = format!("--{boundary}");
    let delim = delim.as_bytes();
    let mut obj = Map::new();
    let mut rest = match find(bytes, delim) {
        Some(i) => &bytes[i + delim.len()..],
        None => return Err("multipart body without its boundary".into()),
    };
    loop {
        if rest.starts_with(b"--") {
            break;
        }
        let Some(after_crlf) = rest.strip_prefix(b"\r\n") else { return Err("malformed multipart boundary line".into()) };
        let Some(end) = find(after_crlf, delim) else { return Err("multipart body is not terminated".into()) };
        let part = &after_crlf[..end];
        let part = part.strip_suffix(b"\r\n").ok_or("malformed multipart part")?;
        let Some(split) = find(part, b"\r\n\r\n") else { return Err("multipart part without headers".into()) };
        let head = std::str::from_utf8(&part[..split]).map_err(|_| "multipart part headers are not UTF-8".to_owned())?;
        let content = &part[split + 4..];
        let disposition = head
            .split("\r\n")
            .find_map(|l| l.split_once(':').filter(|(k, _)| k.trim().eq_ignore_ascii_case("content-disposition")).map(|(_, v)| v))
            .ok_or("multipart part without Content-Disposition")?;
        let name = disposition
            .split(';')
            .filter_map(|p| p.trim().split_once('='))
            .find(|(k, _)| k.trim() == "name")
            .map(|(_, v)| v.trim().trim_matches('"').to_owned())
            .ok_or("multipart part without a name")?;
        let is_file = disposition.contains("filename=");
        let text = if is_file { String::new() } else { String::from_utf8(content.to_vec()).map_err(|_| format!("multipart field `{name}` is not UTF-8 text"))? };
        if is_file {
            if obj.insert(name.clone(), Value::String(String::new())).is_some() {
                return Err(format!("field `{name}` given more than once"));
            }
        } else {
            add_field(&mut obj, media, &name, &text)?;
        }
        rest = &after_crlf[end + delim.len()..];
    }
    Ok(Value::Object(obj))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}
