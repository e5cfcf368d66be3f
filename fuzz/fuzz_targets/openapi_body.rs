//! Fuzzes the OpenAPI request-body validator: arbitrary bytes as a JSON, form or multipart body
//! (the first byte picks which) against a compiled schema. It must never panic, and every
//! refusal must name a pointer under `/body` with a message (or, for multipart, be the strict
//! reader's `invalid_body`); the strict JSON reader must agree
//! with serde_json on what is JSON (minus duplicate keys and depth).
#![no_main]

use std::sync::OnceLock;

use bytes::Bytes;
use frontgate::config::Size;
use frontgate::config::openapi::{OpenApiConfig, ResponseValidation, UnknownQuery};
use frontgate::openapi::{Errors, Spec, body, compile, json};
use libfuzzer_sys::fuzz_target;

const SPEC: &str = r##"{"openapi":"3.0.3","info":{"title":"f","version":"1"},"paths":{"/items":{"post":{
  "requestBody":{"required":true,"content":{
    "application/json":{"schema":{"$ref":"#/components/schemas/Item"}},
    "application/x-www-form-urlencoded":{"schema":{"$ref":"#/components/schemas/Item"}},
    "multipart/form-data":{"schema":{"$ref":"#/components/schemas/Item"}}}},
  "responses":{"200":{"description":"ok"}}}}},
  "components":{"schemas":{"Item":{"type":"object","additionalProperties":false,"required":["name"],
    "properties":{"id":{"type":"integer","readOnly":true},"name":{"type":"string","maxLength":20,"pattern":"^[a-z ]+$"},
      "n":{"type":"integer","minimum":0},"tags":{"type":"array","items":{"type":"string"},"maxItems":3},
      "note":{"type":"string","nullable":true},"email":{"type":"string","format":"email"},
      "child":{"$ref":"#/components/schemas/Item"}}}}}}"##;

fn spec() -> &'static Spec {
    static SPEC_ONCE: OnceLock<Spec> = OnceLock::new();
    SPEC_ONCE.get_or_init(|| {
        let config = OpenApiConfig {
            spec: "fuzz.json".into(),
            unknown_query: UnknownQuery::Reject,
            response_validation: ResponseValidation::Off,
            max_json_depth: 32,
            max_errors: 10,
            max_spec_bytes: Size(1 << 20),
            max_response_bytes: Size(1 << 20),
        };
        compile(serde_json::from_str(SPEC).expect("fuzz spec is JSON"), &config)
            .unwrap_or_else(|e| panic!("{e:?}"))
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, rest)) = data.split_first() else { return };
    let content_type = match kind % 3 {
        0 => "application/json",
        1 => "application/x-www-form-urlencoded",
        _ => "multipart/form-data; boundary=b",
    };
    let spec = spec();
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(content_type));
    let mut errors = Errors::new(spec.max_errors);
    let bytes = Bytes::copy_from_slice(rest);
    if let Err(p) = body::check(&spec.operations[0], spec, &headers, Some(&bytes), &mut errors) {
        // The content type is declared: the only refusal is a multipart body the strict reader
        // refuses (fuzzed against multer in the `multipart` target).
        assert!(kind % 3 == 2 && p.code == frontgate::problem::Code::InvalidBody, "{p:?}");
        return;
    }
    assert!(errors.list.len() <= spec.max_errors);
    for (pointer, message) in &errors.list {
        assert!(pointer.starts_with("/body"), "{pointer}");
        assert!(!message.is_empty());
    }
    if kind % 3 == 0 && json::parse(rest, 1000).is_ok() {
        assert!(
            serde_json::from_slice::<serde_json::Value>(rest).is_ok(),
            "strict reader accepted what serde_json refuses"
        );
    }
});
