//! Fuzzes loading an OpenAPI document (`openapi::load`: the file read as JSON or YAML, its
//! `$ref`s bundled, then compiled into validators), the path a config's `[openapi] spec` takes.
//! Properties: no panic, bounded work (libFuzzer's timeout), and every refusal has a message.
//! The first byte picks the file's extension (`.json` or `.yaml`); the rest is the document.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use frontgate::config::Size;
use frontgate::config::openapi::{OpenApiConfig, ResponseValidation, UnknownQuery};
use libfuzzer_sys::fuzz_target;

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("frontgate-fuzz-spec-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        // A file a `$ref` may name.
        std::fs::write(d.join("common.yaml"), "Name:\n  type: string\n  maxLength: 5\n").unwrap();
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, doc)) = data.split_first() else { return };
    let path = dir().join(if kind & 1 == 0 { "spec.json" } else { "spec.yaml" });
    std::fs::write(&path, doc).unwrap();
    let config = OpenApiConfig {
        spec: path,
        unknown_query: UnknownQuery::Reject,
        response_validation: ResponseValidation::Off,
        max_json_depth: 32,
        max_errors: 10,
        max_spec_bytes: Size(64 * 1024),
        max_response_bytes: Size(1 << 20),
    };
    if let Err(errors) = frontgate::openapi::load(&config) {
        assert!(!errors.is_empty());
        for e in &errors {
            assert!(!e.message.is_empty(), "{e:?}");
        }
    }
});
