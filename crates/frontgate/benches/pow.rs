//! Proof-of-work costs on the server, per operation: verifying a solution (the whole `altcha`
//! payload: base64, JSON, signature, key signature; deterministic and probabilistic mode),
//! checking a clearance, and issuing a challenge at each default level (issuing derives one key
//! in deterministic mode, so it costs what one attempt costs a solver). Plain `std::time` loops,
//! best of several rounds, as in hot_path.rs. Run with `cargo bench -p frontgate --bench pow`.
//!
//! These are not tests: nothing here asserts a time.

mod support;
use std::hint::black_box;
use std::time::Duration;
use support::measure_with;

use frontgate::checks::pow::clearance::Clearances;
use frontgate::checks::pow::protocol::{Protocol, encode_payload};
use frontgate::config::pow::{PowAlgorithm, PowLevel, PowMode, d_levels};

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

fn solved(p: &Protocol, level: &PowLevel) -> String {
    let c = p.issue("POST /api/signup", 0, level, now()).unwrap();
    let s = altcha::solve_challenge(altcha::SolveChallengeOptions::new(&c)).unwrap().unwrap();
    encode_payload(&altcha::Payload { challenge: c, solution: s })
}

fn main() {
    let secret = "benchmark-secret-0123456789abcdef0123";
    let site = "https://app.example.com";
    let fast =
        PowLevel { above_rps: 0.0, cost: 5000, counter: 10, algorithm: None, memory_cost: None };
    println!("{:<58} {:>14} {:>14}", "operation", "best", "median");
    for mode in [PowMode::Deterministic, PowMode::Probabilistic] {
        let p =
            Protocol::new(secret, Duration::from_secs(300), mode, PowAlgorithm::Pbkdf2Sha256, site);
        let payload = solved(&p, &fast);
        let (b, m) = measure_with(
            || {
                let d = Protocol::decode(black_box(&payload)).unwrap();
                black_box(p.verify(&d, Some("POST /api/signup"), now()).unwrap());
            },
            Duration::from_millis(20),
            15,
        );
        println!(
            "{:<58} {:>11.2} µs {:>11.2} µs",
            format!("verify solution, {mode:?}, PBKDF2 cost 5000 (decode+verify)"),
            b / 1e3,
            m / 1e3
        );
    }
    let c = Clearances::new(secret, Duration::from_secs(600));
    let ip = "192.0.2.1".parse().unwrap();
    let bind = c.binding(&ip, b"Mozilla/5.0 (X11; Linux x86_64)");
    let (token, _) = c.issue("POST /api/signup", &bind, now());
    let (b, m) = measure_with(
        || {
            let bind = c.binding(&ip, black_box(b"Mozilla/5.0 (X11; Linux x86_64)"));
            c.verify(black_box(&token), "POST /api/signup", &bind, now()).unwrap();
        },
        Duration::from_millis(20),
        15,
    );
    println!(
        "{:<58} {:>11.2} µs {:>11.2} µs",
        "clearance check (binding + verify)",
        b / 1e3,
        m / 1e3
    );

    let p = Protocol::new(
        secret,
        Duration::from_secs(300),
        PowMode::Deterministic,
        PowAlgorithm::Pbkdf2Sha256,
        site,
    );
    for (i, level) in d_levels().iter().enumerate() {
        let alg = level.algorithm.unwrap_or(PowAlgorithm::Pbkdf2Sha256).as_str();
        let (b, m) = measure_with(
            || {
                black_box(p.issue("POST /api/signup", i, level, now()).unwrap());
            },
            Duration::from_millis(50),
            7,
        );
        println!(
            "{:<58} {:>11.2} ms {:>11.2} ms",
            format!("issue challenge, level {i} ({alg}, cost {})", level.cost),
            b / 1e6,
            m / 1e6
        );
    }
}
