//! Timing shared by the in-process benchmarks (`cargo bench`): rounds of calls, best and median.
#![allow(dead_code)]

use std::time::{Duration, Instant};

/// Times `f` in `rounds` rounds, each of enough calls to take at least `min_round`; returns
/// (best, median) ns per call. The best round is the least disturbed by a noisy machine.
pub fn measure_with(mut f: impl FnMut(), min_round: Duration, rounds: usize) -> (f64, f64) {
    let mut iters: u64 = 1;
    loop {
        let t = Instant::now();
        for _ in 0..iters {
            f();
        }
        if t.elapsed() >= min_round || iters >= 1 << 30 {
            break;
        }
        iters *= 2;
    }
    let mut times: Vec<f64> = (0..rounds.max(1))
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            t.elapsed().as_nanos() as f64 / iters as f64
        })
        .collect();
    times.sort_by(f64::total_cmp);
    (times[0], times[times.len() / 2])
}

/// [`measure_with`] with 15 rounds of at least 20 ms: for calls of microseconds or less.
pub fn measure(f: impl FnMut()) -> (f64, f64) {
    measure_with(f, Duration::from_millis(20), 15)
}
