//! Fuzzes the proof-of-work payload path with arbitrary bytes: `Protocol::decode` then
//! `Protocol::verify` must never panic, and nothing unsigned may verify.
#![no_main]

use std::time::Duration;

use frontgate::checks::pow::protocol::Protocol;
use frontgate::config::pow::{PowAlgorithm, PowMode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let p = Protocol::new("fuzzing-secret-0123456789abcdef0123", Duration::from_secs(300), PowMode::Probabilistic, PowAlgorithm::Pbkdf2Sha256, "https://fuzz.example");
    let Ok(payload) = Protocol::decode(text) else { return };
    assert!(p.verify(&payload, None, 1_700_000_000).is_err(), "an unsigned payload verified");
});
