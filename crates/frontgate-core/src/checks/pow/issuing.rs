//! How many challenges are derived at once, in the whole process.
//!
//! Issuing a challenge derives its key at the level's cost (deterministic mode): at the
//! default ladder's top, scrypt with N = 16384 and r = 8, 16 MiB and tens of milliseconds of
//! one core. The per-client limit (`[pow] challenge_rate`, per IPv4 address or IPv6 /64)
//! bounds one client; a client with many /64s (one IPv6 /48 holds 65 536) gets a fresh burst
//! from each. Without a bound across clients, every such request started a derivation on
//! tokio's blocking pool (up to 512 threads): all cores busy and 16 MiB each, gigabytes at
//! once. So derivations take a slot: at most half the cores' worth run at once (at least
//! one), so the other half keeps serving requests and memory stays at `slots × 16 MiB`. A
//! challenge request that finds no slot free within [`WAIT`] gets 503 `overloaded` with
//! `Retry-After: 1` (the widget asks again).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a challenge request waits for a free slot.
pub const WAIT: Duration = Duration::from_secs(1);

/// Derivations that may run at once: half the cores, at least one.
pub fn slots() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get() / 2).max(1)
}

fn semaphore() -> &'static Arc<Semaphore> {
    static SLOTS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    SLOTS.get_or_init(|| Arc::new(Semaphore::new(slots())))
}

/// A slot for one derivation, or `None` when none came free within [`WAIT`].
pub async fn slot() -> Option<OwnedSemaphorePermit> {
    tokio::time::timeout(WAIT, semaphore().clone().acquire_owned()).await.ok()?.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn no_more_than_the_slots_derive_at_once() {
        let held: Vec<_> = {
            let mut v = Vec::new();
            for _ in 0..slots() {
                v.push(slot().await.expect("a free slot"));
            }
            v
        };
        let started = std::time::Instant::now();
        assert!(slot().await.is_none(), "a derivation beyond the slots started");
        assert!(started.elapsed() >= WAIT);
        drop(held);
        assert!(slot().await.is_some());
    }
}
