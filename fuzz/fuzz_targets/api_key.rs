//! Fuzzes how the gateway reads an API key: `keys::format::check` (shape and checksum, before
//! any lookup), the verifier's cache-only path (`Verifier::verify_cached`: a malformed or
//! badly checksummed key is refused without I/O, a well-formed one needs the store), and the
//! API-key authenticator's reading of the request (`presented`, `consumed`: `X-API-Key`,
//! `Authorization: Bearer`, the query string). Properties: no panic; what `check` accepts is
//! the prefix and 36 ASCII letters or digits; the verifier refuses without the store exactly
//! what `check` refuses; after `consumed` no key field is left for the backend. The input is
//! split at line feeds: the first line is the key and the query string, the others fields.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, OnceLock};

use frontgate::checks::api_key::{ApiKeyAuth, X_API_KEY};
use frontgate::checks::auth::Authenticator;
use frontgate::config::api_keys::ApiKeysConfig;
use frontgate::keys::format::{self, CHECKSUM_LEN, FormatError, RANDOM_LEN};
use frontgate::keys::verify::Verifier;
use frontgate::state::Services;
use libfuzzer_sys::fuzz_target;

const PREFIX: &str = "fgk_";

fn auth() -> &'static (Arc<Verifier>, ApiKeyAuth) {
    static AUTH: OnceLock<(Arc<Verifier>, ApiKeyAuth)> = OnceLock::new();
    AUTH.get_or_init(|| {
        let config: ApiKeysConfig =
            toml::from_str("hash_secret = \"fuzzing-secret-0123456789abcdef0123\"\n").unwrap();
        let services = Arc::new(Services::runtime_only().unwrap());
        let verifier = Verifier::new(&config, &services);
        (verifier.clone(), ApiKeyAuth::new(verifier))
    })
}

fuzz_target!(|data: &[u8]| {
    let (verifier, auth) = auth();
    let mut lines = data.split(|b| *b == b'\n');
    let first = lines.next().unwrap_or_default();
    if let Ok(key) = std::str::from_utf8(first) {
        let checked = format::check(PREFIX, key);
        if checked.is_ok() {
            let body = &key[PREFIX.len()..];
            assert_eq!(body.len(), RANDOM_LEN + CHECKSUM_LEN);
            assert!(body.bytes().all(|b| b.is_ascii_alphanumeric()));
        }
        let cached = verifier.verify_cached(key, IpAddr::V4(Ipv4Addr::LOCALHOST), None);
        match checked {
            Ok(()) => {
                assert!(cached.is_none(), "a well-formed unknown key answered without the store")
            }
            Err(FormatError::Malformed | FormatError::Checksum) => {
                assert!(matches!(cached, Some(Err(_))), "a malformed key reached the store")
            }
        }
    }
    let uri = format!("/x?{}", String::from_utf8_lossy(first));
    let mut builder = http::Request::builder()
        .uri(uri.parse::<http::Uri>().unwrap_or(http::Uri::from_static("/x")));
    for line in lines {
        let (name, value) = match line.split_first() {
            Some((b, rest)) if b % 2 == 0 => (X_API_KEY, rest),
            Some((_, rest)) => ("authorization", rest),
            None => continue,
        };
        if let Ok(v) = http::HeaderValue::from_bytes(value) {
            builder = builder.header(name, v);
        }
    }
    let Ok(req) = builder.body(()) else { return };
    let (mut head, ()) = req.into_parts();
    let presented = auth.presented(&head);
    if head.headers.contains_key(X_API_KEY) {
        assert!(presented);
    }
    auth.consumed(&mut head);
    assert!(!head.headers.contains_key(X_API_KEY), "X-API-Key forwarded");
    for v in head.headers.get_all(http::header::AUTHORIZATION) {
        if let Ok(s) = v.to_str()
            && let Some((scheme, rest)) = s.split_once(' ')
        {
            assert!(
                !(scheme.eq_ignore_ascii_case("bearer") && rest.trim().starts_with(PREFIX)),
                "a bearer API key forwarded: {s}"
            );
        }
    }
});
