//! Fuzzes what the proof of work reads from untrusted bytes: `Protocol::decode` then
//! `Protocol::verify` must never panic, and nothing unsigned may verify; the multipart reader
//! for the `altcha` field (`checks::pow::multipart`) must never panic, and what it finds must be
//! a piece of the body.
#![no_main]

use std::time::Duration;

use frontgate::checks::pow::multipart;
use frontgate::checks::pow::protocol::Protocol;
use frontgate::config::pow::{PowAlgorithm, PowMode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(value)) = multipart::field(data, "b", "altcha") {
        assert!(data.windows(value.len().max(1)).any(|w| w == value.as_bytes()) || value.is_empty());
    }
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Some(boundary) = multipart::boundary(text) {
        assert!(!boundary.is_empty() && boundary.len() <= 70);
    }
    let p = Protocol::new("fuzzing-secret-0123456789abcdef0123", Duration::from_secs(300), PowMode::Probabilistic, PowAlgorithm::Pbkdf2Sha256, "https://fuzz.example");
    let Ok(payload) = Protocol::decode(text) else { return };
    assert!(p.verify(&payload, None, 1_700_000_000).is_err(), "an unsigned payload verified");
});
