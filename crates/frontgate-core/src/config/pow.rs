//! `[pow]`: the built-in proof of work (ALTCHA v2), its difficulty levels and its clearance.
//!
//! A level is chosen per challenge from the route's recent request rate (`above_rps`) and the
//! client's recent failures (`failures_per_level`); see docs/bot-defence.md for what each
//! level costs a phone, a laptop and a GPU.

use serde::Deserialize;

use super::values::{Dur, EnvString};

/// `[pow]`: the built-in proof of work for `challenge = "pow"` routes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PowConfig {
    /// Signs challenges and clearances (HMAC-SHA-256). At least 32 characters.
    pub secret: EnvString,
    /// The key derivation of levels that do not name their own.
    #[serde(default)]
    pub algorithm: PowAlgorithm,
    /// How long a challenge may be solved and submitted.
    #[serde(default = "d_expires")]
    pub expires: Dur,
    /// How long a clearance (the proof that a challenge was solved) lets requests through.
    #[serde(default = "d_clearance")]
    pub clearance: Dur,
    /// "deterministic" (the server knows the answer: verification is one HMAC) or
    /// "probabilistic" (any key with the signed prefix: verification re-derives one key).
    #[serde(default)]
    pub mode: PowMode,
    /// Difficulty levels, by the route's recent requests per second.
    #[serde(default = "d_levels")]
    pub levels: Vec<PowLevel>,
    /// Each this many failed solutions from one client (in the last 10 minutes) raise its level by one.
    #[serde(default = "d_failures_per_level")]
    pub failures_per_level: u32,
    /// Challenges one client IP may fetch per minute (issuing costs the server one key derivation).
    #[serde(default = "d_challenge_rate")]
    pub challenge_rate: u32,
    /// Solutions one client (IPv6: one /64) may post to `/.frontgate/verify` per period; each
    /// is a signature check, and in probabilistic mode a key derivation.
    #[serde(default = "d_verify_rate_limit")]
    pub verify_rate_limit: super::Rate,
}

/// A level's key derivation. Iterated SHA and PBKDF2 with SHA-384/512 are refused (ALTCHA
/// implementations disagree on them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum PowAlgorithm {
    /// `PBKDF2/SHA-256`: `cost` is the iteration count (the default).
    #[default]
    #[serde(rename = "PBKDF2/SHA-256")]
    Pbkdf2Sha256,
    /// Memory-hard: `cost` is scrypt's N (a power of two), `memory_cost` its r (default 8).
    #[serde(rename = "SCRYPT")]
    Scrypt,
}

impl PowAlgorithm {
    /// The name on the wire (ALTCHA's `algorithm`).
    pub fn as_str(self) -> &'static str {
        match self {
            PowAlgorithm::Pbkdf2Sha256 => "PBKDF2/SHA-256",
            PowAlgorithm::Scrypt => "SCRYPT",
        }
    }
}

/// `mode`: how answers are chosen and verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PowMode {
    /// The server picks the answer and signs the derived key; verifying is one HMAC (the
    /// default).
    #[default]
    Deterministic,
    /// Any key with the signed hex prefix is an answer; verifying re-derives one key.
    Probabilistic,
}

/// One difficulty level of `[pow] levels`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PowLevel {
    /// The level applies when the route's requests per second (10 s average) reach this.
    pub above_rps: f64,
    /// ALTCHA `cost`: PBKDF2 iterations per attempt, or scrypt's N.
    pub cost: u32,
    /// Attempts a solver needs: the secret counter is drawn from [counter / 2, counter]
    /// (deterministic), or the key prefix has about this many possibilities (probabilistic).
    #[serde(default = "d_counter")]
    pub counter: u32,
    /// This level's key derivation; default: `[pow] algorithm`.
    pub algorithm: Option<PowAlgorithm>,
    /// scrypt's r (block size): memory is 128 × N × r bytes.
    pub memory_cost: Option<u32>,
}

fn d_expires() -> Dur {
    Dur(std::time::Duration::from_secs(300))
}
fn d_clearance() -> Dur {
    Dur(std::time::Duration::from_secs(600))
}
fn d_counter() -> u32 {
    100
}
fn d_failures_per_level() -> u32 {
    3
}
fn d_challenge_rate() -> u32 {
    30
}
fn d_verify_rate_limit() -> super::Rate {
    super::Rate { count: 30, period: std::time::Duration::from_secs(60) }
}

/// The default ladder: PBKDF2 at three costs, then a memory-hard scrypt tier (16 MiB per attempt).
pub fn d_levels() -> Vec<PowLevel> {
    let pbkdf2 = |above_rps, cost| PowLevel {
        above_rps,
        cost,
        counter: 100,
        algorithm: None,
        memory_cost: None,
    };
    vec![
        pbkdf2(0.0, 5_000),
        pbkdf2(50.0, 20_000),
        pbkdf2(200.0, 100_000),
        PowLevel {
            above_rps: 1000.0,
            cost: 16_384,
            counter: 20,
            algorithm: Some(PowAlgorithm::Scrypt),
            memory_cost: Some(8),
        },
    ]
}

impl PowConfig {
    /// Problems with the section, as messages a person can act on.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.secret.0.len() < 32 {
            out.push("[pow] secret must be at least 32 characters: generate one with `openssl rand -base64 32`".to_owned());
        }
        if self.expires.0.is_zero() || self.expires.0 > std::time::Duration::from_secs(3600) {
            out.push(
                "[pow] expires must be between 1s and 1h (challenges always expire)".to_owned(),
            );
        }
        if self.clearance.0.is_zero() || self.clearance.0 > std::time::Duration::from_secs(86_400) {
            out.push("[pow] clearance must be between 1s and 24h".to_owned());
        }
        if self.levels.is_empty() {
            out.push("[pow] levels is empty: give at least one level, e.g. { above_rps = 0, cost = 5000 }".to_owned());
        }
        if self.failures_per_level == 0 {
            out.push("[pow] failures_per_level must be at least 1".to_owned());
        }
        if self.challenge_rate == 0 {
            out.push(
                "[pow] challenge_rate must be at least 1 (challenges per client per minute)"
                    .to_owned(),
            );
        }
        let mut last = f64::NEG_INFINITY;
        for (i, l) in self.levels.iter().enumerate() {
            if l.above_rps.is_nan() || l.above_rps < 0.0 || l.above_rps <= last {
                out.push(format!(
                    "[pow] levels[{i}]: above_rps must be non-negative and rise from level to level"
                ));
            }
            last = l.above_rps;
            if l.counter < 2 || l.counter > 10_000_000 {
                out.push(format!("[pow] levels[{i}]: counter must be between 2 and 10000000"));
            }
            match l.algorithm.unwrap_or(self.algorithm) {
                PowAlgorithm::Pbkdf2Sha256 => {
                    if l.cost == 0 || l.cost > 10_000_000 {
                        out.push(format!("[pow] levels[{i}]: PBKDF2 cost must be between 1 and 10000000 iterations"));
                    }
                    if l.memory_cost.is_some() {
                        out.push(format!("[pow] levels[{i}]: memory_cost applies to SCRYPT only"));
                    }
                }
                PowAlgorithm::Scrypt => {
                    if !l.cost.is_power_of_two() || !(1024..=1 << 20).contains(&l.cost) {
                        out.push(format!("[pow] levels[{i}]: scrypt cost (N) must be a power of two from 1024 to 1048576"));
                    }
                    let r = l.memory_cost.unwrap_or(8);
                    if r == 0 || r > 32 || 128 * u64::from(l.cost) * u64::from(r) > 256 << 20 {
                        out.push(format!("[pow] levels[{i}]: scrypt memory (128 × N × memory_cost bytes) must stay within 256 MiB, memory_cost 1..=32"));
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_rate_limit_is_a_rate_with_a_default() {
        let base = "secret = \"0123456789abcdef0123456789abcdef\"\n";
        let parse = |extra: &str| {
            toml::from_str::<PowConfig>(&format!("{base}{extra}")).map_err(|e| e.to_string())
        };
        let d = parse("").unwrap().verify_rate_limit;
        assert_eq!((d.count, d.period.as_secs()), (30, 60));
        let r = parse("verify_rate_limit = \"5/h\"").unwrap().verify_rate_limit;
        assert_eq!((r.count, r.period.as_secs()), (5, 3600));
        for bad in ["\"0/min\"", "\"5\"", "5", "\"5/fortnight\""] {
            assert!(parse(&format!("verify_rate_limit = {bad}")).is_err(), "{bad}");
        }
    }
}
