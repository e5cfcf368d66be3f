//! Compiling a bundled OpenAPI document into [`Operation`]s, once per config load.
//!
//! Schemas are compiled by `jsonschema` (no default features: no file or network retrieval;
//! the linear-time `regex` engine for `pattern`; formats asserted) against a registry that holds
//! the whole document, so `#/components/...` references resolve. Two variants of the document
//! are registered: for requests, `readOnly` properties are forbidden; for responses,
//! `writeOnly` ones. OpenAPI 3.0 schemas are rewritten to JSON Schema 2020-12 first
//! (`nullable`, boolean `exclusiveMinimum`/`exclusiveMaximum`).

use std::collections::BTreeSet;
use std::sync::Arc;

use http::Method;
use jsonschema::{Draft, PatternOptions, Registry, Validator};
use serde_json::{Value, json};

use super::body::{MediaBody, MediaKind, RequestBody};
use super::loader::{MAX_DEPTH, escape};
use super::params::{Location, Param, ParamShape, Style};
use super::response::{ResponseSpec, Responses};
use super::{Operation, Spec, SpecError};
use crate::config::AuthMethod;
use crate::config::openapi::OpenApiConfig;

const BASE: &str = "https://frontgate.invalid/spec.json";
const REQ_BASE: &str = "https://frontgate.invalid/request.json";
const RESP_BASE: &str = "https://frontgate.invalid/response.json";
/// A `$ref` chain longer than this is refused (and cycles are found this way).
const MAX_REF_HOPS: usize = 32;
const METHODS: [(&str, Method); 8] = [
    ("get", Method::GET),
    ("put", Method::PUT),
    ("post", Method::POST),
    ("delete", Method::DELETE),
    ("options", Method::OPTIONS),
    ("head", Method::HEAD),
    ("patch", Method::PATCH),
    ("trace", Method::TRACE),
];

/// Compiles a bundled document.
pub fn compile(mut root: Value, config: &OpenApiConfig) -> Result<Spec, Vec<SpecError>> {
    let version = root.get("openapi").and_then(Value::as_str).unwrap_or_default().to_owned();
    let v30 = if version.starts_with("3.0.") || version == "3.0" {
        true
    } else if version.starts_with("3.1.") || version == "3.1" {
        false
    } else {
        return Err(vec![SpecError::new(
            "/openapi",
            format!(
                "`{version}` is not a supported OpenAPI version; frontgate reads 3.0.x and 3.1.x"
            ),
        )]);
    };
    if v30 {
        rewrite_30(&mut root, 0);
    }
    check_refs(&root, &root, "", 0).map_err(|e| vec![e])?;
    let mut request_doc = root.clone();
    forbid_flagged(&mut request_doc, "readOnly", &root, 0);
    let mut response_doc = root.clone();
    forbid_flagged(&mut response_doc, "writeOnly", &root, 0);
    let registry = Registry::new()
        .draft(Draft::Draft202012)
        .add(REQ_BASE, request_doc)
        .and_then(|b| b.add(RESP_BASE, response_doc))
        .and_then(|b| b.add(BASE, root.clone()))
        .and_then(|b| b.prepare())
        .map_err(|e| {
            vec![SpecError::new("", format!("cannot index the document's schemas: {e}"))]
        })?;
    let c = Compiler { root: &root, registry: &registry, errors: Vec::new() };
    let operations = c.operations();
    if !operations.1.is_empty() {
        return Err(operations.1);
    }
    Ok(Spec {
        operations: operations.0,
        root: Arc::new(root),
        unknown_query: config.unknown_query,
        max_json_depth: config.max_json_depth.clamp(1, 128),
        max_errors: config.max_errors.max(1),
        max_response_bytes: config.max_response_bytes.0,
        response_validation: config.response_validation,
    })
}

/// OpenAPI 3.0 → JSON Schema 2020-12, everywhere in the document (the keys rewritten do not
/// occur outside schemas with other meanings).
fn rewrite_30(v: &mut Value, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    match v {
        Value::Object(m) => {
            if m.get("nullable") == Some(&Value::Bool(true)) {
                match m.get("type").cloned() {
                    Some(Value::String(t)) => {
                        m.insert("type".into(), json!([t, "null"]));
                    }
                    Some(Value::Array(mut ts)) if !ts.contains(&json!("null")) => {
                        ts.push(json!("null"));
                        m.insert("type".into(), Value::Array(ts));
                    }
                    _ => {}
                }
                if let Some(Value::Array(e)) = m.get_mut("enum")
                    && !e.contains(&Value::Null)
                {
                    e.push(Value::Null);
                }
            }
            for (key, bound) in [("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")] {
                match m.get(key) {
                    Some(Value::Bool(true)) => {
                        if let Some(b) = m.remove(bound) {
                            m.insert(key.into(), b);
                        } else {
                            m.remove(key);
                        }
                    }
                    Some(Value::Bool(false)) => {
                        m.remove(key);
                    }
                    _ => {}
                }
            }
            for (_, child) in m.iter_mut() {
                rewrite_30(child, depth + 1);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|c| rewrite_30(c, depth + 1)),
        _ => {}
    }
}

/// Every `$ref` must resolve within the document, and no chain of references may loop or run
/// longer than [`MAX_REF_HOPS`].
fn check_refs(root: &Value, v: &Value, pointer: &str, depth: usize) -> Result<(), SpecError> {
    if depth > MAX_DEPTH {
        return Err(SpecError::new(pointer, format!("nested deeper than {MAX_DEPTH} levels")));
    }
    match v {
        Value::Object(m) => {
            if m.get("$ref").is_some_and(Value::is_string) {
                resolve(root, v, pointer)?;
            }
            for (k, c) in m {
                if k != "$ref" {
                    check_refs(root, c, &format!("{pointer}/{}", escape(k)), depth + 1)?;
                }
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                check_refs(root, c, &format!("{pointer}/{i}"), depth + 1)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Follows `$ref`s from `v` (found at `pointer`) to the object they name; returns it and its
/// pointer.
pub fn resolve<'a>(
    root: &'a Value,
    mut v: &'a Value,
    pointer: &str,
) -> Result<(&'a Value, String), SpecError> {
    let mut at = pointer.to_owned();
    for _ in 0..=MAX_REF_HOPS {
        let Some(r) = v.get("$ref").and_then(Value::as_str) else { return Ok((v, at)) };
        let Some(fragment) = r.strip_prefix('#') else {
            return Err(SpecError::new(
                &format!("{at}/$ref"),
                format!("`{r}` is not a reference into this document"),
            ));
        };
        let decoded =
            percent_encoding::percent_decode_str(fragment).decode_utf8_lossy().into_owned();
        match root.pointer(&decoded) {
            Some(t) => {
                v = t;
                at = decoded;
            }
            None => {
                return Err(SpecError::new(
                    &format!("{at}/$ref"),
                    format!("`{r}` names nothing in the document"),
                ));
            }
        }
    }
    Err(SpecError::new(
        pointer,
        format!("a chain of more than {MAX_REF_HOPS} references (or a reference cycle)"),
    ))
}

/// Replaces each property whose schema carries `flag: true` with `false` (the property must not
/// appear) and drops it from `required`.
fn forbid_flagged(v: &mut Value, flag: &str, root: &Value, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    match v {
        Value::Object(m) => {
            if let Some(Value::Object(props)) = m.get_mut("properties") {
                let mut forbidden = Vec::new();
                for (name, schema) in props.iter_mut() {
                    let flagged = resolve(root, schema, "").ok().and_then(|(s, _)| s.get(flag))
                        == Some(&Value::Bool(true))
                        || schema.get(flag) == Some(&Value::Bool(true));
                    if flagged {
                        *schema = Value::Bool(false);
                        forbidden.push(name.clone());
                    }
                }
                if let Some(Value::Array(req)) = m.get_mut("required") {
                    req.retain(|r| !r.as_str().is_some_and(|r| forbidden.iter().any(|f| f == r)));
                }
            }
            for (_, c) in m.iter_mut() {
                forbid_flagged(c, flag, root, depth + 1);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|c| forbid_flagged(c, flag, root, depth + 1)),
        _ => {}
    }
}

/// Percent-encodes a JSON pointer for use as a URI fragment.
fn fragment(pointer: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'/')
        .remove(b'~')
        .remove(b'-')
        .remove(b'_')
        .remove(b'.');
    percent_encoding::utf8_percent_encode(pointer, SET).to_string()
}

#[derive(Clone, Copy)]
pub enum Direction {
    Request,
    Response,
}

struct Compiler<'a> {
    root: &'a Value,
    registry: &'a Registry<'a>,
    errors: Vec<SpecError>,
}

impl Compiler<'_> {
    /// A validator for the schema at `pointer` (a pointer into the bundled document).
    fn validator(&mut self, pointer: &str, dir: Direction) -> Option<Validator> {
        let base = match dir {
            Direction::Request => REQ_BASE,
            Direction::Response => RESP_BASE,
        };
        let schema = json!({ "$ref": format!("{base}#{}", fragment(pointer)) });
        let built = jsonschema::options()
            .with_draft(Draft::Draft202012)
            .offline()
            .with_registry(self.registry)
            .with_pattern_options(PatternOptions::regex())
            .should_validate_formats(true)
            .build(&schema);
        match built {
            Ok(v) => Some(v),
            Err(e) => {
                self.errors
                    .push(SpecError::new(pointer, format!("invalid schema: {}", e.masked())));
                None
            }
        }
    }

    fn operations(mut self) -> (Vec<Operation>, Vec<SpecError>) {
        let root = self.root;
        let mut ops = Vec::new();
        let bases = self.base_paths();
        let Some(paths) = root.get("paths").and_then(Value::as_object) else {
            self.errors.push(SpecError::new("/paths", "the document declares no paths"));
            return (ops, self.errors);
        };
        let global_security = root.get("security");
        for (template, item) in paths {
            let item_ptr = format!("/paths/{}", escape(template));
            let (item, item_ptr) = match resolve(root, item, &item_ptr) {
                Ok(x) => x,
                Err(e) => {
                    self.errors.push(e);
                    continue;
                }
            };
            let segments = match template_segments(template) {
                Ok(s) => s,
                Err(m) => {
                    self.errors.push(SpecError::new(&item_ptr, m));
                    continue;
                }
            };
            let shared_params = item.get("parameters");
            for (key, method) in &METHODS {
                let Some(op) = item.get(*key) else { continue };
                let op_ptr = format!("{item_ptr}/{key}");
                for base in &bases {
                    if let Some(o) = self.operation(
                        op,
                        &op_ptr,
                        method,
                        base,
                        &segments,
                        shared_params,
                        &format!("{item_ptr}/parameters"),
                        global_security,
                    ) {
                        ops.push(o);
                    }
                }
            }
        }
        (ops, self.errors)
    }

    /// The base paths of `servers` (path part of each URL; variables take their defaults).
    fn base_paths(&mut self) -> Vec<String> {
        let mut out = BTreeSet::new();
        if let Some(servers) = self.root.get("servers").and_then(Value::as_array) {
            for (i, s) in servers.iter().enumerate() {
                let Some(url) = s.get("url").and_then(Value::as_str) else { continue };
                let mut url = url.to_owned();
                if let Some(vars) = s.get("variables").and_then(Value::as_object) {
                    for (name, var) in vars {
                        let default =
                            var.get("default").and_then(Value::as_str).unwrap_or_default();
                        url = url.replace(&format!("{{{name}}}"), default);
                    }
                }
                let path = match url.find("://") {
                    Some(i) => url[i + 3..]
                        .find('/')
                        .map_or(String::new(), |j| url[i + 3 + j..].to_owned()),
                    None => url.clone(),
                };
                let path = path.trim_end_matches('/').to_owned();
                if path.contains('{') || (!path.is_empty() && !path.starts_with('/')) {
                    self.errors.push(SpecError::new(
                        &format!("/servers/{i}/url"),
                        format!("`{url}`: the base path must be a plain path"),
                    ));
                    continue;
                }
                out.insert(path);
            }
        }
        if out.is_empty() {
            out.insert(String::new());
        }
        out.into_iter().collect()
    }

    #[allow(clippy::too_many_arguments)]
    fn operation(
        &mut self,
        op: &Value,
        op_ptr: &str,
        method: &Method,
        base: &str,
        segments: &[Segment],
        shared: Option<&Value>,
        shared_ptr: &str,
        global_security: Option<&Value>,
    ) -> Option<Operation> {
        let root = self.root;
        let base_segments = base.split('/').filter(|s| !s.is_empty()).count();
        let mut pattern = String::from(base);
        let mut display = String::from(base);
        let mut param_positions = Vec::new();
        for (i, seg) in segments.iter().enumerate() {
            pattern.push('/');
            display.push('/');
            match seg {
                Segment::Static(s) => {
                    pattern.push_str(s);
                    display.push_str(s);
                }
                Segment::Param(name) => {
                    pattern.push_str(&format!("{{p{}}}", param_positions.len()));
                    display.push_str(&format!("{{{name}}}"));
                    param_positions.push((base_segments + i, name.clone()));
                }
            }
        }
        if pattern.is_empty() {
            pattern.push('/');
            display.push('/');
        }
        let mut declared: Vec<(Value, String)> = Vec::new();
        for (list, list_ptr) in [
            (shared, shared_ptr.to_owned()),
            (op.get("parameters"), format!("{op_ptr}/parameters")),
        ] {
            let Some(list) = list.and_then(Value::as_array) else { continue };
            for (i, p) in list.iter().enumerate() {
                match resolve(root, p, &format!("{list_ptr}/{i}")) {
                    Ok((p, ptr)) => {
                        let key = (p.get("name").cloned(), p.get("in").cloned());
                        declared
                            .retain(|(q, _)| (q.get("name").cloned(), q.get("in").cloned()) != key);
                        declared.push((p.clone(), ptr));
                    }
                    Err(e) => self.errors.push(e),
                }
            }
        }
        let mut path_params = Vec::new();
        let (mut query, mut headers, mut cookies) = (Vec::new(), Vec::new(), Vec::new());
        for (p, ptr) in &declared {
            let Some(param) = self.param(p, ptr) else { continue };
            match param.location {
                Location::Path => match param_positions.iter().find(|(_, n)| *n == param.name) {
                    Some((pos, _)) => path_params.push((*pos, param)),
                    None => self.errors.push(SpecError::new(
                        ptr,
                        format!("path parameter `{}` is not in the path template", param.name),
                    )),
                },
                Location::Query => query.push(param),
                Location::Header => headers.push(param),
                Location::Cookie => cookies.push(param),
            }
        }
        for (_, name) in &param_positions {
            if !path_params.iter().any(|(_, p)| p.name == *name) {
                self.errors.push(SpecError::new(
                    op_ptr,
                    format!("the path parameter `{name}` is not declared in `parameters`"),
                ));
            }
        }
        let body = match op.get("requestBody") {
            Some(b) => self.request_body(b, &format!("{op_ptr}/requestBody")),
            None => None,
        };
        let responses = self.responses(op.get("responses"), &format!("{op_ptr}/responses"));
        let security = op.get("security").or(global_security);
        let security_ptr = if op.get("security").is_some() {
            format!("{op_ptr}/security")
        } else {
            "/security".to_owned()
        };
        let (auth, scopes) = self.security(security, &security_ptr);
        Some(Operation {
            method: method.clone(),
            pattern,
            name: format!("{method} {display}"),
            pointer: op_ptr.to_owned(),
            path_params,
            query,
            headers,
            cookies,
            body,
            responses,
            auth,
            scopes,
        })
    }

    fn param(&mut self, p: &Value, ptr: &str) -> Option<Param> {
        let Some(name) = p.get("name").and_then(Value::as_str) else {
            self.errors.push(SpecError::new(ptr, "a parameter needs a `name`"));
            return None;
        };
        let location = match p.get("in").and_then(Value::as_str) {
            Some("path") => Location::Path,
            Some("query") => Location::Query,
            Some("header") => Location::Header,
            Some("cookie") => Location::Cookie,
            other => {
                self.errors.push(SpecError::new(
                    &format!("{ptr}/in"),
                    format!(
                        "`{}` is not a parameter location (path, query, header, cookie)",
                        other.unwrap_or("")
                    ),
                ));
                return None;
            }
        };
        let required = location == Location::Path
            || p.get("required").and_then(Value::as_bool).unwrap_or(false);
        let default_style = match location {
            Location::Query | Location::Cookie => Style::Form,
            Location::Path | Location::Header => Style::Simple,
        };
        let style = match p.get("style").and_then(Value::as_str) {
            None => default_style,
            Some("form") => Style::Form,
            Some("simple") => Style::Simple,
            Some("deepObject") => Style::DeepObject,
            Some("spaceDelimited") => Style::SpaceDelimited,
            Some("pipeDelimited") => Style::PipeDelimited,
            Some(other) => {
                self.errors.push(SpecError::new(&format!("{ptr}/style"), format!("style `{other}` is not supported; use form, simple, deepObject, spaceDelimited or pipeDelimited")));
                return None;
            }
        };
        let explode = p.get("explode").and_then(Value::as_bool).unwrap_or(style == Style::Form);
        let (schema_ptr, schema) = if let Some(s) = p.get("schema") {
            (format!("{ptr}/schema"), s)
        } else if let Some((media, c)) =
            p.get("content").and_then(Value::as_object).and_then(|c| c.iter().next())
        {
            match c.get("schema") {
                Some(s) => (format!("{ptr}/content/{}/schema", escape(media)), s),
                None => (String::new(), &Value::Null),
            }
        } else {
            (String::new(), &Value::Null)
        };
        let json_content = p.get("content").is_some();
        let (shape, validator) = if schema_ptr.is_empty() {
            (ParamShape::Scalar(None), None)
        } else {
            let shape = self.shape(schema, &schema_ptr);
            let shape = if json_content { ParamShape::Json } else { shape };
            (shape, self.validator(&schema_ptr, Direction::Request))
        };
        if style == Style::DeepObject && !matches!(shape, ParamShape::Object(_)) {
            self.errors.push(SpecError::new(ptr, "style deepObject needs an object schema"));
        }
        Some(Param {
            name: name.to_owned(),
            location,
            required,
            style,
            explode,
            allow_empty: p.get("allowEmptyValue").and_then(Value::as_bool).unwrap_or(false),
            shape,
            validator,
        })
    }

    /// How a parameter's string form maps onto its schema.
    fn shape(&mut self, schema: &Value, ptr: &str) -> ParamShape {
        let root = self.root;
        let Ok((s, _)) = resolve(root, schema, ptr) else { return ParamShape::Scalar(None) };
        match primary_type(s) {
            Some("array") => {
                let item = s
                    .get("items")
                    .and_then(|i| resolve(root, i, ptr).ok())
                    .and_then(|(i, _)| primary_type(i).map(str::to_owned));
                ParamShape::Array(item)
            }
            Some("object") => {
                let mut props = Vec::new();
                if let Some(p) = s.get("properties").and_then(Value::as_object) {
                    for (k, v) in p {
                        let t = resolve(root, v, ptr)
                            .ok()
                            .and_then(|(v, _)| primary_type(v).map(str::to_owned));
                        props.push((k.clone(), t));
                    }
                }
                ParamShape::Object(props)
            }
            other => ParamShape::Scalar(other.map(str::to_owned)),
        }
    }

    fn request_body(&mut self, b: &Value, ptr: &str) -> Option<RequestBody> {
        let (b, ptr) = match resolve(self.root, b, ptr) {
            Ok(x) => x,
            Err(e) => {
                self.errors.push(e);
                return None;
            }
        };
        let required = b.get("required").and_then(Value::as_bool).unwrap_or(false);
        let mut content = Vec::new();
        let Some(media) = b.get("content").and_then(Value::as_object) else {
            self.errors.push(SpecError::new(&ptr, "a requestBody needs `content`"));
            return None;
        };
        for (range, m) in media {
            let range_l = range.to_ascii_lowercase();
            let essence = range_l.split(';').next().unwrap_or("").trim().to_owned();
            let kind = MediaKind::of(&essence);
            let schema_ptr = format!("{ptr}/content/{}/schema", escape(range));
            let (validator, shape) = match m.get("schema") {
                Some(s) => {
                    let shape = match self.shape(s, &schema_ptr) {
                        ParamShape::Object(props) => props,
                        _ => Vec::new(),
                    };
                    (self.validator(&schema_ptr, Direction::Request), shape)
                }
                None => (None, Vec::new()),
            };
            content.push(MediaBody { range: essence, kind, validator, properties: shape });
        }
        Some(RequestBody { required, content })
    }

    fn responses(&mut self, r: Option<&Value>, ptr: &str) -> Responses {
        let mut out = Responses::default();
        let Some(map) = r.and_then(Value::as_object) else { return out };
        for (status, resp) in map {
            let rptr = format!("{ptr}/{}", escape(status));
            let (resp, rptr) = match resolve(self.root, resp, &rptr) {
                Ok(x) => x,
                Err(e) => {
                    self.errors.push(e);
                    continue;
                }
            };
            let mut content = Vec::new();
            if let Some(media) = resp.get("content").and_then(Value::as_object) {
                for (range, m) in media {
                    let essence = range
                        .to_ascii_lowercase()
                        .split(';')
                        .next()
                        .unwrap_or("")
                        .trim()
                        .to_owned();
                    let schema_ptr = format!("{rptr}/content/{}/schema", escape(range));
                    let validator = if m.get("schema").is_some() {
                        self.validator(&schema_ptr, Direction::Response)
                    } else {
                        None
                    };
                    let schema = m.get("schema").is_some().then(|| schema_ptr.clone());
                    content.push((essence, validator.map(Arc::new), schema));
                }
            }
            out.by_status.push((status.to_ascii_uppercase(), ResponseSpec { content }));
        }
        out
    }

    /// Maps `security` requirements onto frontgate's authentication methods and scopes.
    fn security(&mut self, security: Option<&Value>, ptr: &str) -> (Vec<AuthMethod>, Vec<String>) {
        let Some(reqs) = security.and_then(Value::as_array) else {
            return (Vec::new(), Vec::new());
        };
        let schemes = self.root.pointer("/components/securitySchemes");
        let mut methods = Vec::new();
        let mut scopes: Vec<String> = Vec::new();
        for (i, req) in reqs.iter().enumerate() {
            let Some(req) = req.as_object() else { continue };
            if req.is_empty() {
                // `{}`: authentication is optional, so the operation is public.
                return (Vec::new(), Vec::new());
            }
            for (name, wanted) in req {
                let at = format!("{ptr}/{i}/{}", escape(name));
                let Some(scheme) = schemes.and_then(|s| s.get(name)) else {
                    self.errors.push(SpecError::new(
                        &at,
                        format!(
                            "security scheme `{name}` is not defined in components/securitySchemes"
                        ),
                    ));
                    continue;
                };
                let scheme = resolve(self.root, scheme, &at).map(|(s, _)| s).unwrap_or(scheme);
                let kind = scheme.get("type").and_then(Value::as_str).unwrap_or("");
                let method = match kind {
                    "http"
                        if scheme
                            .get("scheme")
                            .and_then(Value::as_str)
                            .is_some_and(|s| s.eq_ignore_ascii_case("bearer")) =>
                    {
                        AuthMethod::Jwt
                    }
                    "oauth2" | "openIdConnect" => AuthMethod::Jwt,
                    "apiKey" if scheme.get("in").and_then(Value::as_str) == Some("query") => {
                        self.errors.push(SpecError::new(&at, format!("security scheme `{name}` sends an API key in the query string, which frontgate refuses (credentials_in_query); send it in a header")));
                        continue;
                    }
                    "apiKey" => AuthMethod::ApiKey,
                    _ => {
                        self.errors.push(SpecError::new(&at, format!("security scheme `{name}` (type `{kind}`) has no frontgate equivalent; use http bearer, apiKey, oauth2 or openIdConnect")));
                        continue;
                    }
                };
                if !methods.contains(&method) {
                    methods.push(method);
                }
                for s in wanted.as_array().into_iter().flatten().filter_map(Value::as_str) {
                    if !scopes.iter().any(|x| x == s) {
                        scopes.push(s.to_owned());
                    }
                }
            }
        }
        (methods, scopes)
    }
}

/// The one type a schema names, if it names exactly one besides `null`.
fn primary_type(s: &Value) -> Option<&str> {
    match s.get("type")? {
        Value::String(t) => Some(t),
        Value::Array(ts) => {
            let named: Vec<&str> =
                ts.iter().filter_map(Value::as_str).filter(|t| *t != "null").collect();
            (named.len() == 1).then(|| named[0])
        }
        _ => None,
    }
}

enum Segment {
    Static(String),
    Param(String),
}

/// Splits a path template; a parameter must be a whole segment.
fn template_segments(template: &str) -> Result<Vec<Segment>, String> {
    if !template.starts_with('/') {
        return Err(format!("path `{template}` must start with /"));
    }
    let mut out = Vec::new();
    let trimmed = template.trim_start_matches('/');
    if trimmed.is_empty() {
        return Ok(out);
    }
    for seg in trimmed.split('/') {
        if seg.is_empty() || seg == "." || seg == ".." {
            return Err(format!("path `{template}` has an empty or dot segment"));
        }
        if seg.contains('{') || seg.contains('}') {
            match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(n) if !n.is_empty() && !n.contains(['{', '}']) => {
                    out.push(Segment::Param(n.to_owned()))
                }
                _ => {
                    return Err(format!(
                        "path `{template}`: a parameter must be a whole segment like {{id}}"
                    ));
                }
            }
        } else if seg
            .bytes()
            .any(|b| b == b'%' || b == b'\\' || b == b';' || b == b'*' || b < 0x20 || b == 0x7f)
        {
            return Err(format!("path `{template}` has a character frontgate refuses in paths"));
        } else {
            out.push(Segment::Static(seg.to_owned()));
        }
    }
    Ok(out)
}
