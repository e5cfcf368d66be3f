//! Parameters: path, query, header and cookie values, read in their declared style
//! (form, simple, deepObject, space/pipe delimited; exploded or not), turned into JSON by
//! their schema's type, and validated. Unknown query parameters are refused unless
//! `unknown_query = "allow"`; a non-array parameter given twice is refused (parameter pollution).

use std::borrow::Cow;

use jsonschema::Validator;
use serde_json::{Map, Value};

use super::{Errors, Operation, Spec};
use crate::config::openapi::UnknownQuery;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Path,
    Query,
    Header,
    Cookie,
}

impl Location {
    fn as_str(self) -> &'static str {
        match self {
            Location::Path => "path",
            Location::Query => "query",
            Location::Header => "header",
            Location::Cookie => "cookie",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Form,
    Simple,
    DeepObject,
    SpaceDelimited,
    PipeDelimited,
}

/// What the schema says the value looks like, for turning strings into JSON.
#[derive(Debug, Clone)]
pub enum ParamShape {
    /// A single value of this type (`None`: unknown, kept as a string).
    Scalar(Option<String>),
    /// An array of items of this type.
    Array(Option<String>),
    /// An object with these properties (name, type).
    Object(Vec<(String, Option<String>)>),
    /// `content: {application/json: ...}`: the value is a JSON text.
    Json,
}

pub struct Param {
    pub name: String,
    pub location: Location,
    pub required: bool,
    pub style: Style,
    pub explode: bool,
    pub allow_empty: bool,
    pub shape: ParamShape,
    pub validator: Option<Validator>,
}

/// Checks every parameter of `op` in `head`.
pub fn check(op: &Operation, spec: &Spec, head: &http::request::Parts, errors: &mut Errors) {
    if !op.path_params.is_empty() {
        let segments: Vec<&str> = head.uri.path().split('/').skip(1).collect();
        for (index, p) in &op.path_params {
            match segments.get(*index) {
                Some(raw) => {
                    let decoded = decode(raw, false);
                    let value = from_delimited(p, &decoded, ',');
                    validate(p, value, errors);
                }
                None => errors.push(pointer(p), "missing"),
            }
        }
    }
    let pairs: Vec<(Cow<'_, str>, Cow<'_, str>)> = head
        .uri
        .query()
        .map(|q| {
            q.split('&')
                .filter(|s| !s.is_empty())
                .map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    (decode(k, true), decode(v, true))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut claimed = vec![false; pairs.len()];
    for p in &op.query {
        let value = query_value(p, &pairs, &mut claimed, errors);
        match value {
            Some(v) => validate(p, v, errors),
            None if p.required => errors.push(pointer(p), "required parameter is missing"),
            None => {}
        }
    }
    if spec.unknown_query == UnknownQuery::Reject {
        for (i, (k, _)) in pairs.iter().enumerate() {
            if !claimed[i] {
                errors.push(
                    format!("/query/{}", super::loader::escape(k)),
                    "unknown query parameter",
                );
            }
        }
    }
    for p in &op.headers {
        let all: Vec<&str> =
            head.headers.get_all(p.name.as_str()).iter().filter_map(|v| v.to_str().ok()).collect();
        if all.is_empty() {
            if p.required {
                errors.push(pointer(p), "required header is missing");
            }
            continue;
        }
        let joined = all.join(",");
        let value = from_delimited(p, &joined, ',');
        validate(p, value, errors);
    }
    if !op.cookies.is_empty() {
        let jar: Vec<(&str, &str)> = head
            .headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .collect();
        for p in &op.cookies {
            let found: Vec<&str> =
                jar.iter().filter(|(k, _)| *k == p.name).map(|(_, v)| *v).collect();
            match found.as_slice() {
                [] if p.required => errors.push(pointer(p), "required cookie is missing"),
                [] => {}
                [one] => {
                    let decoded = decode(one, false);
                    validate(p, from_delimited(p, &decoded, ','), errors);
                }
                _ => errors.push(pointer(p), "cookie sent more than once"),
            }
        }
    }
}

fn pointer(p: &Param) -> String {
    format!("/{}/{}", p.location.as_str(), super::loader::escape(&p.name))
}

fn validate(p: &Param, value: Result<Value, String>, errors: &mut Errors) {
    let value = match value {
        Ok(v) => v,
        Err(m) => return errors.push(pointer(p), m),
    };
    if let Value::String(s) = &value
        && s.is_empty()
        && p.location == Location::Query
        && !p.allow_empty
        && p.required
    {
        return errors.push(pointer(p), "must not be empty");
    }
    let Some(validator) = &p.validator else { return };
    let base = pointer(p);
    for e in validator.iter_errors(&value) {
        if errors.full() {
            errors.push(base.clone(), "");
            break;
        }
        errors.push(format!("{base}{}", e.instance_path().as_str()), super::body::message(&e));
    }
}

/// The value of a query parameter, claiming the pairs it consumes.
fn query_value(
    p: &Param,
    pairs: &[(Cow<'_, str>, Cow<'_, str>)],
    claimed: &mut [bool],
    errors: &mut Errors,
) -> Option<Result<Value, String>> {
    match (&p.shape, p.style) {
        (ParamShape::Object(props), Style::DeepObject) => {
            let prefix = format!("{}[", p.name);
            let mut obj = Map::new();
            for (i, (k, v)) in pairs.iter().enumerate() {
                let Some(rest) = k.strip_prefix(prefix.as_str()) else { continue };
                claimed[i] = true;
                let Some(prop) = rest.strip_suffix(']').filter(|r| !r.contains(['[', ']'])) else {
                    errors.push(
                        pointer(p),
                        format!("`{k}`: nested deepObject keys are not supported"),
                    );
                    continue;
                };
                let t = props.iter().find(|(n, _)| n == prop).and_then(|(_, t)| t.as_deref());
                if obj.insert(prop.to_owned(), coerce(v, t)).is_some() {
                    errors.push(pointer(p), format!("`{k}` given more than once"));
                }
            }
            (!obj.is_empty()).then_some(Ok(Value::Object(obj)))
        }
        (ParamShape::Object(props), Style::Form) if p.explode => {
            let mut obj = Map::new();
            for (i, (k, v)) in pairs.iter().enumerate() {
                if let Some((_, t)) = props.iter().find(|(n, _)| n == k) {
                    claimed[i] = true;
                    if obj.insert(k.to_string(), coerce(v, t.as_deref())).is_some() {
                        errors.push(pointer(p), format!("`{k}` given more than once"));
                    }
                }
            }
            (!obj.is_empty()).then_some(Ok(Value::Object(obj)))
        }
        _ => {
            let mut values = Vec::new();
            for (i, (k, v)) in pairs.iter().enumerate() {
                if *k == p.name {
                    claimed[i] = true;
                    values.push(v);
                }
            }
            if values.is_empty() {
                return None;
            }
            if let ParamShape::Array(item) = &p.shape
                && p.explode
                && p.style == Style::Form
            {
                return Some(Ok(Value::Array(
                    values.iter().map(|v| coerce(v, item.as_deref())).collect(),
                )));
            }
            if values.len() > 1 {
                return Some(Err("given more than once".into()));
            }
            let delim = match p.style {
                Style::SpaceDelimited => ' ',
                Style::PipeDelimited => '|',
                _ => ',',
            };
            Some(from_delimited(p, values[0], delim))
        }
    }
}

/// A value in simple/form (not exploded) style: scalars as is, arrays and objects delimited.
fn from_delimited(p: &Param, raw: &str, delim: char) -> Result<Value, String> {
    match &p.shape {
        ParamShape::Scalar(t) => Ok(coerce(raw, t.as_deref())),
        ParamShape::Json => serde_json::from_str(raw).map_err(|_| "not valid JSON".to_owned()),
        ParamShape::Array(item) => {
            if raw.is_empty() {
                return Ok(Value::Array(Vec::new()));
            }
            Ok(Value::Array(raw.split(delim).map(|v| coerce(v, item.as_deref())).collect()))
        }
        ParamShape::Object(props) => {
            let mut obj = Map::new();
            if raw.is_empty() {
                return Ok(Value::Object(obj));
            }
            if p.explode && p.style == Style::Simple {
                for kv in raw.split(',') {
                    let (k, v) = kv.split_once('=').ok_or("expected key=value pairs")?;
                    let t = props.iter().find(|(n, _)| n == k).and_then(|(_, t)| t.as_deref());
                    obj.insert(k.to_owned(), coerce(v, t));
                }
            } else {
                let parts: Vec<&str> = raw.split(delim).collect();
                if !parts.len().is_multiple_of(2) {
                    return Err("expected key,value pairs".into());
                }
                for kv in parts.chunks(2) {
                    let t = props.iter().find(|(n, _)| n == kv[0]).and_then(|(_, t)| t.as_deref());
                    obj.insert(kv[0].to_owned(), coerce(kv[1], t));
                }
            }
            Ok(Value::Object(obj))
        }
    }
}

/// A string as the JSON value its schema type expects; left a string when it does not parse,
/// so the schema reports the type error.
pub fn coerce(raw: &str, t: Option<&str>) -> Value {
    match t {
        Some("integer") => {
            raw.parse::<i64>().map(Value::from).unwrap_or_else(|_| Value::String(raw.to_owned()))
        }
        Some("number") => raw
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(raw.to_owned())),
        Some("boolean") => match raw {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(raw.to_owned()),
        },
        Some("null") if raw.is_empty() => Value::Null,
        _ => Value::String(raw.to_owned()),
    }
}

/// Percent-decodes (and, in query strings, turns `+` into a space).
pub fn decode(s: &str, plus: bool) -> Cow<'_, str> {
    if !(s.contains('%') || plus && s.contains('+')) {
        return Cow::Borrowed(s);
    }
    let replaced: Cow<'_, str> =
        if plus { Cow::Owned(s.replace('+', " ")) } else { Cow::Borrowed(s) };
    Cow::Owned(percent_encoding::percent_decode_str(&replaced).decode_utf8_lossy().into_owned())
}
