//! Fuzzes what the gateway reads from the `Cookie` fields a client sends and the session
//! records it unseals: `session::cookie::get` (the session and login cookies),
//! `carries_ours`/`strip_ours` (the gateway's cookies removed before forwarding),
//! `is_token_shaped`, the proof-of-work clearance cookie (`Clearances::verify`), the sealed
//! session record (`Sealer::open`) and the login cookies (`oidc::login_cookie`: `open` for a
//! fixed state, `to_clear`). Properties: no panic; after `strip_ours` no cookie of the
//! gateway's is left (by the names `strip_ours` and `get` read, login cookies by their prefix)
//! and the app's cookies are kept; nothing forged verifies or unseals; a login start never
//! clears more than a few cookies, and only login cookies. The input is split at line feeds
//! into Cookie fields.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use frontgate::checks::pow::clearance::Clearances;
use frontgate::oidc::login_cookie;
use frontgate::session::cookie::{
    self, CLEARANCE_PREFIX, CONSOLE, CONSOLE_LOGIN, LOGIN_PREFIX, SESSION,
};
use frontgate::session::crypto::{Sealer, is_token_shaped};
use http::{HeaderMap, HeaderValue, header::COOKIE};
use libfuzzer_sys::fuzz_target;

fn ours(name: &str) -> bool {
    name.starts_with(SESSION)
        || name == CONSOLE
        || name == CONSOLE_LOGIN
        || name.strip_prefix("__Host-").unwrap_or(name).starts_with(CLEARANCE_PREFIX)
}

fn pairs(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|s| s.split(';'))
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect()
}

fuzz_target!(|data: &[u8]| {
    static SEALER: OnceLock<Sealer> = OnceLock::new();
    static CLEAR: OnceLock<Clearances> = OnceLock::new();
    let sealer = SEALER.get_or_init(|| Sealer::new(&[7u8; 32]));
    let clear = CLEAR.get_or_init(|| {
        Clearances::new("fuzzing-secret-0123456789abcdef0123", Duration::from_secs(300))
    });
    assert!(sealer.open(b"context", data).is_err(), "a forged record unsealed");

    let mut headers = HeaderMap::new();
    for line in data.split(|b| *b == b'\n') {
        if let Ok(v) = HeaderValue::from_bytes(line) {
            headers.append(COOKIE, v);
        }
    }
    // The login cookie's name for this state; a seed holds a cookie of that name.
    const STATE: &str = "fuzz-state";
    let login = login_cookie::name(STATE);
    for name in [SESSION, login.as_str()] {
        if let Some(v) = cookie::get(&headers, name) {
            assert!(v.len() <= data.len());
            let _ = is_token_shaped(v);
        }
    }
    assert!(
        login_cookie::open(sealer, &headers, STATE, 0).is_err(),
        "a forged login cookie opened"
    );
    let cleared = login_cookie::to_clear(&headers, 1_700_000_000);
    assert!(cleared.len() <= 8, "a login start cleared {} cookies", cleared.len());
    for name in &cleared {
        assert!(name.starts_with(LOGIN_PREFIX), "a login start cleared {name}");
    }
    for token in pairs(&headers) {
        let value = token.split_once('=').map_or("", |(_, v)| v);
        assert!(
            clear.verify(value, "GET /x", "binding", 1_700_000_000).is_err(),
            "a forged clearance verified"
        );
    }
    let app_before: Vec<String> = pairs(&headers)
        .into_iter()
        .filter(|p| !ours(p.split_once('=').map_or(p.as_str(), |(k, _)| k).trim()))
        .collect();
    let carried = cookie::carries_ours(&headers);
    cookie::strip_ours(&mut headers);
    assert!(cookie::get(&headers, SESSION).is_none(), "the session cookie was forwarded");
    assert!(cookie::get(&headers, &login).is_none(), "the login cookie was forwarded");
    for p in pairs(&headers) {
        let name = p.split_once('=').map_or(p.as_str(), |(k, _)| k).trim();
        assert!(!ours(name), "{name} was forwarded");
        assert!(!name.starts_with(LOGIN_PREFIX), "{name} was forwarded");
    }
    // The app's own cookies survive (those in fields that are text; others are dropped whole).
    if carried {
        let after = pairs(&headers);
        for p in &app_before {
            assert!(after.contains(p), "{p} was removed");
        }
    } else {
        assert_eq!(pairs(&headers), app_before);
    }
});
