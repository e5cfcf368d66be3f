//! The ALTCHA v2 wire protocol: issuing signed, expiring, scoped challenges and verifying the
//! `altcha` payload a solver sends back.
//!
//! Key derivation, canonical JSON and the HMAC signatures come from the official `altcha`
//! crate (it speaks v2 and is what `altcha-lib` interoperates with). This module adds what a
//! gateway must insist on around it: an expiry on every challenge (checked against an
//! injectable clock), the route and site inside the signed `data`, only PBKDF2/SHA-256 and
//! scrypt (never iterated SHA), a non-empty hex `keyPrefix`, and size limits on what a peer
//! sends. Single use is the caller's job: it records the returned nonce in a replay set only
//! after this verification succeeded.

use std::collections::BTreeMap;
use std::time::Duration;

use altcha::{Challenge, CreateChallengeOptions, HmacAlgorithm, Payload, VerifySolutionOptions};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::pow::{PowAlgorithm, PowLevel, PowMode};

/// The largest `altcha` payload accepted (a real one is about 700 bytes).
pub const MAX_PAYLOAD_BYTES: usize = 4096;

/// Why a payload was refused. `Malformed` is the client's mistake (400); the others are
/// refusals of a well-formed answer (403).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PowError {
    #[error("the payload is malformed: {0}")]
    Malformed(&'static str),
    #[error("the challenge has expired")]
    Expired,
    #[error("the challenge signature does not verify")]
    BadSignature,
    #[error("the challenge was issued for another route or site")]
    WrongScope,
    #[error("the challenge uses an algorithm this gateway does not accept")]
    Algorithm,
    #[error("the solution is wrong")]
    WrongSolution,
}

impl PowError {
    /// A short label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            PowError::Malformed(_) => "malformed",
            PowError::Expired => "expired",
            PowError::BadSignature => "bad_signature",
            PowError::WrongScope => "wrong_scope",
            PowError::Algorithm => "algorithm",
            PowError::WrongSolution => "wrong_solution",
        }
    }
}

/// A verified solution: what the caller needs to record it and to issue a clearance.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The challenge's nonce: the replay-set key.
    pub nonce: String,
    /// The route the challenge was issued for (its `match` text).
    pub route: String,
    /// Seconds since the epoch when the challenge expires: the replay entry lives until then.
    pub expires_at: i64,
}

/// Issues and verifies challenges with one secret.
pub struct Protocol {
    /// Signs the challenge parameters.
    signature_secret: String,
    /// Signs the derived key in deterministic mode (verification is then one HMAC).
    key_secret: String,
    expires: Duration,
    mode: PowMode,
    default_algorithm: PowAlgorithm,
    /// The site (public origin) inside every challenge.
    site: String,
}

/// HMAC-SHA-256 of `label` under `secret`, hex: independent keys from one configured secret.
pub fn derive_secret(secret: &str, label: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes any key length");
    mac.update(label.as_bytes());
    hex(&mac.finalize().into_bytes())
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    // getrandom only fails when the OS has no entropy source; a zero counter is then still a
    // valid (easy) challenge, never a crash.
    let _ = getrandom::fill(&mut b);
    u32::from_le_bytes(b)
}

impl Protocol {
    pub fn new(
        secret: &str,
        expires: Duration,
        mode: PowMode,
        default_algorithm: PowAlgorithm,
        site: &str,
    ) -> Protocol {
        Protocol {
            signature_secret: derive_secret(secret, "frontgate pow challenge v1"),
            key_secret: derive_secret(secret, "frontgate pow key v1"),
            expires,
            mode,
            default_algorithm,
            site: site.to_owned(),
        }
    }

    pub fn site(&self) -> &str {
        &self.site
    }

    /// A new challenge for `route` at `level`, expiring `expires` after `now` (seconds since the epoch).
    pub fn issue(
        &self,
        route: &str,
        level_index: usize,
        level: &PowLevel,
        now: u64,
    ) -> Result<Challenge, altcha::Error> {
        let algorithm = level.algorithm.unwrap_or(self.default_algorithm);
        let mut data = BTreeMap::new();
        data.insert("route".to_owned(), serde_json::Value::String(route.to_owned()));
        data.insert("site".to_owned(), serde_json::Value::String(self.site.clone()));
        data.insert("level".to_owned(), serde_json::Value::from(level_index as u64));
        let counter_max = level.counter.max(2);
        let (counter, key_prefix) = match self.mode {
            // The secret answer, uniformly in [counter/2, counter]: the solver must try every
            // counter below it.
            PowMode::Deterministic => {
                let low = counter_max / 2;
                (Some(low + random_u32() % (counter_max - low + 1)), "00".to_owned())
            }
            // A random prefix of as many hex digits as give about `counter` possibilities.
            PowMode::Probabilistic => {
                let mut digits = 1;
                while 16u64.pow(digits) < u64::from(counter_max) && digits < 8 {
                    digits += 1;
                }
                let prefix = hex(&random_u32().to_be_bytes());
                (None, prefix[..digits as usize].to_owned())
            }
        };
        let memory_cost = match algorithm {
            PowAlgorithm::Scrypt => Some(level.memory_cost.unwrap_or(8)),
            PowAlgorithm::Pbkdf2Sha256 => None,
        };
        altcha::create_challenge(CreateChallengeOptions {
            algorithm: algorithm.as_str().to_owned(),
            counter,
            cost: level.cost,
            data: Some(data),
            expires_at: Some((now + self.expires.as_secs().max(1)) as i64),
            hmac_algorithm: HmacAlgorithm::Sha256,
            hmac_key_signature_secret: Some(self.key_secret.clone()),
            hmac_signature_secret: Some(self.signature_secret.clone()),
            key_length: 32,
            key_prefix,
            memory_cost,
            ..Default::default()
        })
    }

    /// Decodes an `altcha` payload (base64 of JSON `{challenge, solution}`).
    pub fn decode(payload: &str) -> Result<Payload, PowError> {
        let payload = payload.trim();
        if payload.is_empty() {
            return Err(PowError::Malformed("empty"));
        }
        if payload.len() > MAX_PAYLOAD_BYTES {
            return Err(PowError::Malformed("too large"));
        }
        let engine = base64::engine::GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            base64::engine::GeneralPurposeConfig::new()
                .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
        );
        let json = engine.decode(payload).map_err(|_| PowError::Malformed("not base64"))?;
        serde_json::from_slice::<Payload>(&json)
            .map_err(|_| PowError::Malformed("not an ALTCHA v2 payload"))
    }

    /// Verifies a decoded payload for `route` at `now` (seconds since the epoch). Does not
    /// record it: the caller does that with the returned nonce, only on success.
    pub fn verify(
        &self,
        payload: &Payload,
        route: Option<&str>,
        now: u64,
    ) -> Result<Verified, PowError> {
        let p = &payload.challenge.parameters;
        // Every challenge expires: one without an expiry is not one of ours.
        let expires_at = p.expires_at.ok_or(PowError::BadSignature)?;
        if expires_at <= 0 || (expires_at as u64) <= now {
            return Err(PowError::Expired);
        }
        let sig_ok = payload.challenge.signature.as_deref().is_some_and(|s| s.len() == 64);
        if !sig_ok {
            return Err(PowError::BadSignature);
        }
        // As altcha-lib insists: the key is lowercase hex of the signed length.
        let key = &payload.solution.derived_key;
        if key.len() != p.key_length.min(64) * 2
            || !key.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(PowError::WrongSolution);
        }
        // Signature and solution, by the reference implementation. Re-derivation (probabilistic
        // mode, or no key signature) happens only after the signature verified, so a forged
        // challenge cannot make the server run an expensive key derivation.
        let options = VerifySolutionOptions {
            challenge: &payload.challenge,
            solution: &payload.solution,
            counter_mode: altcha::CounterMode::Uint32,
            hmac_algorithm: HmacAlgorithm::Sha256,
            hmac_key_signature_secret: Some(self.key_secret.clone()),
            hmac_signature_secret: self.signature_secret.clone(),
        };
        // Our signature is checked before anything else of the parameters is trusted; the
        // checks below then run on values we signed.
        let result = altcha::verify_solution(options).map_err(|_| PowError::WrongSolution)?;
        if result.expired {
            return Err(PowError::Expired);
        }
        if result.invalid_signature != Some(false) {
            return Err(PowError::BadSignature);
        }
        // Defence in depth on signed values: only the algorithms we issue, and a non-empty hex
        // prefix (an empty one would let counter 0 solve any challenge).
        if !matches!(p.algorithm.as_str(), "PBKDF2/SHA-256" | "SCRYPT") {
            return Err(PowError::Algorithm);
        }
        if p.key_prefix.is_empty() || !p.key_prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(PowError::WrongSolution);
        }
        if !result.verified || result.invalid_solution != Some(false) {
            return Err(PowError::WrongSolution);
        }
        let data = p.data.as_ref().ok_or(PowError::WrongScope)?;
        let signed_route =
            data.get("route").and_then(|v| v.as_str()).ok_or(PowError::WrongScope)?;
        let signed_site = data.get("site").and_then(|v| v.as_str()).ok_or(PowError::WrongScope)?;
        if signed_site != self.site || route.is_some_and(|r| r != signed_route) {
            return Err(PowError::WrongScope);
        }
        Ok(Verified { nonce: p.nonce.clone(), route: signed_route.to_owned(), expires_at })
    }
}

/// Encodes a payload the way the widget does (base64 of the JSON), for tests and benchmarks.
pub fn encode_payload(payload: &Payload) -> String {
    let json = serde_json::to_vec(payload).unwrap_or_default();
    base64::engine::general_purpose::STANDARD.encode(json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use altcha::{Solution, SolveChallengeOptions};

    const SECRET: &str = "0123456789abcdef0123456789abcdef-test";

    fn level(cost: u32, counter: u32) -> PowLevel {
        PowLevel { above_rps: 0.0, cost, counter, algorithm: None, memory_cost: None }
    }

    fn now() -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
    }

    fn solve(challenge: &Challenge) -> Payload {
        let solution = altcha::solve_challenge(SolveChallengeOptions::new(challenge))
            .unwrap()
            .expect("solved");
        Payload { challenge: challenge.clone(), solution }
    }

    fn protocol(mode: PowMode) -> Protocol {
        Protocol::new(
            SECRET,
            Duration::from_secs(300),
            mode,
            PowAlgorithm::Pbkdf2Sha256,
            "https://app.example",
        )
    }

    #[test]
    fn deterministic_round_trip_through_base64() {
        let p = protocol(PowMode::Deterministic);
        let c = p.issue("POST /api/signup", 0, &level(10, 20), now()).unwrap();
        assert!(c.parameters.key_signature.is_some());
        let text = encode_payload(&solve(&c));
        let decoded = Protocol::decode(&text).unwrap();
        let v = p.verify(&decoded, Some("POST /api/signup"), now()).unwrap();
        assert_eq!(v.route, "POST /api/signup");
        assert_eq!(v.nonce, c.parameters.nonce);
    }

    #[test]
    fn probabilistic_round_trip_and_the_counter_zero_bypass() {
        let p = protocol(PowMode::Probabilistic);
        // A challenge whose counter-0 key does not already satisfy the prefix.
        let (c, key0) = loop {
            let c = p.issue("POST /api/signup", 0, &level(10, 200), now()).unwrap();
            assert_eq!(c.parameters.key_prefix.len(), 2);
            let params = &c.parameters;
            let mut password = altcha_hex_decode(&params.nonce);
            password.extend_from_slice(&0u32.to_be_bytes());
            let mut key = [0u8; 32];
            pbkdf2_sha256(&password, &altcha_hex_decode(&params.salt), params.cost, &mut key);
            if !hex(&key).starts_with(&params.key_prefix) {
                break (c, hex(&key));
            }
        };
        // Counter 0 with its true derived key: the key matches, the prefix does not.
        let bypass = Payload {
            challenge: c.clone(),
            solution: Solution { counter: 0, derived_key: key0, time: None },
        };
        assert_eq!(p.verify(&bypass, None, now()).unwrap_err(), PowError::WrongSolution);
        let good = solve(&c);
        p.verify(&good, None, now()).unwrap();
    }

    fn altcha_hex_decode(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn pbkdf2_sha256(password: &[u8], salt: &[u8], rounds: u32, out: &mut [u8]) {
        // One block of PBKDF2-HMAC-SHA-256 (32-byte output), written out so the test does not
        // share code with the verifier.
        let prf = |data: &[u8]| {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(password).unwrap();
            mac.update(data);
            mac.finalize().into_bytes()
        };
        let mut first = salt.to_vec();
        first.extend_from_slice(&1u32.to_be_bytes());
        let mut u = prf(&first);
        let mut t = u;
        for _ in 1..rounds {
            u = prf(&u);
            for (a, b) in t.iter_mut().zip(u.iter()) {
                *a ^= b;
            }
        }
        out.copy_from_slice(&t);
    }

    #[test]
    fn tampering_expiry_scope_and_wrong_keys_are_refused() {
        let p = protocol(PowMode::Deterministic);
        let c = p.issue("POST /api/signup", 0, &level(10, 20), now()).unwrap();
        let good = solve(&c);
        // Expired: the injected clock is past the expiry.
        let exp = c.parameters.expires_at.unwrap() as u64;
        assert_eq!(p.verify(&good, None, exp).unwrap_err(), PowError::Expired);
        // Wrong scope.
        assert_eq!(
            p.verify(&good, Some("POST /api/other"), now()).unwrap_err(),
            PowError::WrongScope
        );
        // Another site's secret and site.
        let other = Protocol::new(
            "another-secret-of-32-characters-or-more",
            Duration::from_secs(300),
            PowMode::Deterministic,
            PowAlgorithm::Pbkdf2Sha256,
            "https://app.example",
        );
        assert_eq!(other.verify(&good, None, now()).unwrap_err(), PowError::BadSignature);
        let other_site = Protocol::new(
            SECRET,
            Duration::from_secs(300),
            PowMode::Deterministic,
            PowAlgorithm::Pbkdf2Sha256,
            "https://evil.example",
        );
        assert_eq!(other_site.verify(&good, None, now()).unwrap_err(), PowError::WrongScope);
        // Tampered parameters: cheaper cost, other route, longer expiry, easier prefix.
        let tamper = |f: &dyn Fn(&mut Payload)| {
            let mut t = good.clone();
            f(&mut t);
            p.verify(&t, None, now()).unwrap_err()
        };
        assert_eq!(tamper(&|t| t.challenge.parameters.cost = 1), PowError::BadSignature);
        assert_eq!(
            tamper(&|t| {
                t.challenge
                    .parameters
                    .data
                    .as_mut()
                    .unwrap()
                    .insert("route".into(), "GET /x".into());
            }),
            PowError::BadSignature
        );
        assert_eq!(
            tamper(&|t| t.challenge.parameters.expires_at = Some(i64::MAX)),
            PowError::BadSignature
        );
        assert_eq!(
            tamper(&|t| t.challenge.parameters.key_prefix = String::new()),
            PowError::BadSignature
        );
        assert_eq!(
            tamper(&|t| t.challenge.parameters.key_signature = None),
            PowError::BadSignature
        );
        assert_eq!(tamper(&|t| t.challenge.parameters.expires_at = None), PowError::BadSignature);
        assert_eq!(tamper(&|t| t.challenge.signature = None), PowError::BadSignature);
        // Wrong keys.
        assert_eq!(tamper(&|t| t.solution.derived_key = "00".repeat(32)), PowError::WrongSolution);
        assert_eq!(tamper(&|t| t.solution.derived_key = "zz".into()), PowError::WrongSolution);
        assert_eq!(
            tamper(&|t| t.solution.derived_key = t.solution.derived_key.to_uppercase()),
            PowError::WrongSolution
        );
    }

    #[test]
    fn malformed_payloads_are_malformed_not_panics() {
        for bad in [
            "",
            "!!!",
            "bm90IGpzb24=",
            "e30=",
            &"A".repeat(MAX_PAYLOAD_BYTES + 4),
            "eyJjaGFsbGVuZ2UiOjF9",
        ] {
            assert!(matches!(Protocol::decode(bad), Err(PowError::Malformed(_))), "{bad:.40}");
        }
    }

    #[test]
    fn scrypt_tier_round_trips() {
        let p = protocol(PowMode::Deterministic);
        let l = PowLevel {
            above_rps: 0.0,
            cost: 1024,
            counter: 4,
            algorithm: Some(PowAlgorithm::Scrypt),
            memory_cost: Some(1),
        };
        let c = p.issue("POST /api/signup", 3, &l, now()).unwrap();
        assert_eq!(c.parameters.algorithm, "SCRYPT");
        p.verify(&solve(&c), None, now()).unwrap();
    }
}
