//! Fuzzes what the proof of work reads from untrusted bytes: `Protocol::decode` then
//! `Protocol::verify` must never panic, and nothing unsigned may verify; the multipart reader
//! the `altcha` field is read with (`frontgate::multipart`) must never panic, and the parts it
//! finds must be named pieces of the body, in order (the `multipart` target compares it with
//! multer).
#![no_main]

use std::time::Duration;

use frontgate::checks::pow::protocol::Protocol;
use frontgate::config::pow::{PowAlgorithm, PowMode};
use frontgate::multipart;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(parts) = multipart::parse(data, "b") {
        let mut end = 0;
        for p in &parts {
            assert!(
                !p.name.is_empty() && end <= p.content.start && p.content.end <= data.len(),
                "{p:?}"
            );
            end = p.content.end;
        }
    }
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(boundary) = multipart::boundary(text) {
        assert!(!boundary.is_empty() && boundary.len() <= 70);
    }
    let p = Protocol::new(
        "fuzzing-secret-0123456789abcdef0123",
        Duration::from_secs(300),
        PowMode::Probabilistic,
        PowAlgorithm::Pbkdf2Sha256,
        "https://fuzz.example",
    );
    let Ok(payload) = Protocol::decode(text) else { return };
    assert!(p.verify(&payload, None, 1_700_000_000).is_err(), "an unsigned payload verified");
});
