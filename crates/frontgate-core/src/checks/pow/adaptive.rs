//! Adaptive difficulty: which level a new challenge gets.
//!
//! The base level follows the route's request rate over the last [`WINDOW_SECS`] seconds (the
//! highest level whose `above_rps` it reaches); each `failures_per_level` failed solutions from
//! one client in the last [`FAILURE_WINDOW_SECS`] seconds add one level for that client. Both
//! fall back as the window slides past. The clock is a parameter, so tests drive levels with
//! request counts at chosen instants instead of waiting.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use crate::checks::rate_limit::ClientKey;
use crate::config::pow::PowLevel;

/// Seconds the request rate is averaged over.
pub const WINDOW_SECS: u64 = 10;
/// Seconds a failed solution counts against its client.
pub const FAILURE_WINDOW_SECS: u64 = 600;
/// Clients whose failures are remembered; beyond this the oldest record is dropped.
const MAX_CLIENTS: usize = 100_000;

/// Requests per second over a sliding window of one-second buckets.
pub struct RateWindow {
    inner: Mutex<Buckets>,
}

struct Buckets {
    /// The second the last bucket belongs to.
    head: u64,
    counts: [u64; WINDOW_SECS as usize],
}

impl Default for RateWindow {
    fn default() -> Self {
        RateWindow { inner: Mutex::new(Buckets { head: 0, counts: [0; WINDOW_SECS as usize] }) }
    }
}

impl Buckets {
    fn advance(&mut self, now: u64) {
        if now <= self.head {
            return;
        }
        let gap = now - self.head;
        if gap >= WINDOW_SECS {
            self.counts = [0; WINDOW_SECS as usize];
        } else {
            for s in self.head + 1..=now {
                self.counts[(s % WINDOW_SECS) as usize] = 0;
            }
        }
        self.head = now;
    }
}

impl RateWindow {
    pub fn record(&self, now: u64) {
        let mut b = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        b.advance(now);
        // A late clock reading counts in the current bucket.
        let i = (b.head % WINDOW_SECS) as usize;
        b.counts[i] += 1;
    }

    pub fn rate(&self, now: u64) -> f64 {
        let mut b = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        b.advance(now);
        b.counts.iter().sum::<u64>() as f64 / WINDOW_SECS as f64
    }
}

/// Failed solutions per client (its [`ClientKey`]: an IPv6 client's whole /64), bounded.
#[derive(Default)]
pub struct Failures {
    inner: Mutex<HashMap<ClientKey, (u64, u32)>>,
}

impl Failures {
    pub fn record(&self, ip: IpAddr, now: u64) {
        let ip = ClientKey::of(ip);
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() >= MAX_CLIENTS && !m.contains_key(&ip) {
            m.retain(|_, (since, _)| now.saturating_sub(*since) < FAILURE_WINDOW_SECS);
            if m.len() >= MAX_CLIENTS {
                // Still full of recent failures: forget one rather than grow without bound.
                if let Some(k) = m.keys().next().copied() {
                    m.remove(&k);
                }
            }
        }
        let e = m.entry(ip).or_insert((now, 0));
        if now.saturating_sub(e.0) >= FAILURE_WINDOW_SECS {
            *e = (now, 0);
        }
        e.1 = e.1.saturating_add(1);
    }

    pub fn count(&self, ip: IpAddr, now: u64) -> u32 {
        let m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match m.get(&ClientKey::of(ip)) {
            Some((since, n)) if now.saturating_sub(*since) < FAILURE_WINDOW_SECS => *n,
            _ => 0,
        }
    }
}

/// The level for a route at `rps` and a client with `failures`.
pub fn choose_level(
    levels: &[PowLevel],
    rps: f64,
    failures: u32,
    failures_per_level: u32,
) -> usize {
    let base = levels.iter().rposition(|l| rps >= l.above_rps).unwrap_or(0);
    let bump = (failures / failures_per_level.max(1)) as usize;
    (base + bump).min(levels.len().saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::pow::d_levels;

    #[test]
    fn levels_rise_with_request_rate_and_fall_after() {
        let levels = d_levels(); // above_rps 0, 50, 200, 1000
        let w = RateWindow::default();
        let level_at = |now| choose_level(&levels, w.rate(now), 0, 3);
        assert_eq!(level_at(1000), 0);
        // 100 requests a second for ten seconds: 100 rps, above 50.
        for s in 1000..1010 {
            for _ in 0..100 {
                w.record(s);
            }
        }
        assert_eq!(level_at(1009), 1);
        // 3000 more in one second: (900 + 3000) / 10 = 390 rps, above 200.
        for _ in 0..3000 {
            w.record(1010);
        }
        assert_eq!(level_at(1010), 2);
        // 12000 in one second: 1200 rps, the memory-hard tier.
        for _ in 0..12_000 {
            w.record(1011);
        }
        assert_eq!(level_at(1011), 3);
        // Quiet: the window slides past the burst, level by level.
        assert_eq!(
            level_at(1020),
            3,
            "1011's 12000 are still in the window at 1020: {}",
            w.rate(1020)
        );
        assert_eq!(level_at(1021), 0);
        assert_eq!(w.rate(1100), 0.0);
    }

    #[test]
    fn a_clients_failures_raise_its_level_only_and_expire() {
        let levels = d_levels();
        let f = Failures::default();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..7 {
            f.record(a, 5000);
        }
        assert_eq!(choose_level(&levels, 0.0, f.count(a, 5000), 3), 2);
        assert_eq!(choose_level(&levels, 0.0, f.count(b, 5000), 3), 0);
        // Capped at the top level.
        assert_eq!(choose_level(&levels, 500.0, f.count(a, 5000), 3), 3);
        assert_eq!(f.count(a, 5000 + FAILURE_WINDOW_SECS), 0);
    }

    #[test]
    fn an_ipv6_clients_failures_count_for_its_whole_64() {
        let f = Failures::default();
        for i in 1..=6u16 {
            // A client rotating through its /64 still piles up failures.
            f.record(IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 7, i, i, i, i)), 100);
        }
        assert_eq!(f.count("2001:db8:0:7::1".parse().unwrap(), 100), 6);
        assert_eq!(f.count("2001:db8:0:8::1".parse().unwrap(), 100), 0, "another /64");
    }
}
