//! How many challenges are derived at once, in the whole process.
//!
//! Issuing a challenge derives its key at the level's cost (deterministic mode): at the
//! default ladder's top, scrypt with N = 16384 and r = 8, 16 MiB and tens of milliseconds of
//! one core. The per-client limit (`[pow] challenge_rate`, per IPv4 address or IPv6 /64)
//! bounds one client; a client with many /64s (one IPv6 /48 holds 65 536) gets a fresh burst
//! from each. Without a bound across clients, every such request started a derivation on
//! tokio's blocking pool (up to 512 threads): all cores busy and 16 MiB each, gigabytes at
//! once. So derivations take a slot: at most half the cores' worth run at once (at least
//! one), so the other half keeps serving requests and memory stays at `slots × 16 MiB`.
//!
//! Who waits for a slot: a client at the route's base level (the level the route's load
//! alone asks for) queues for up to [`WAIT`]. A client whose level its own failed solutions
//! raised never queues: it takes a slot only if one is free at once, else gets the 503
//! straight away. Freed slots go to queued requests first (tokio's semaphore hands a
//! released permit to the oldest waiter; `try_acquire` sees none free while anyone waits), so
//! clients that raised their own level, from however many /64s, can hold at most the slots
//! and never the queue: a base-level client waits for at most the derivations already
//! running and those of base-level clients ahead of it. A request that gets no slot gets 503
//! `overloaded` with `Retry-After: 1`, is not counted against `challenge_rate`, and the
//! widget asks again after the Retry-After, a few times, before it shows the error.

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

/// Who asks for a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asker {
    /// A client at the route's base level: queues for up to [`WAIT`].
    Base,
    /// A client whose own failed solutions raised its level: a free slot now, or none.
    Raised,
}

/// A slot for one derivation, or `None` when none came free in time (see [`Asker`]).
pub async fn slot(asker: Asker) -> Option<OwnedSemaphorePermit> {
    slot_from(semaphore(), asker).await
}

async fn slot_from(slots: &Arc<Semaphore>, asker: Asker) -> Option<OwnedSemaphorePermit> {
    match asker {
        Asker::Base => tokio::time::timeout(WAIT, slots.clone().acquire_owned()).await.ok()?.ok(),
        Asker::Raised => slots.clone().try_acquire_owned().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn no_more_than_the_slots_derive_at_once() {
        let held: Vec<_> = {
            let mut v = Vec::new();
            for _ in 0..slots() {
                v.push(slot(Asker::Base).await.expect("a free slot"));
            }
            v
        };
        let started = std::time::Instant::now();
        assert!(slot(Asker::Base).await.is_none(), "a derivation beyond the slots started");
        assert!(started.elapsed() >= WAIT);
        assert!(slot(Asker::Raised).await.is_none(), "a derivation beyond the slots started");
        drop(held);
        assert!(slot(Asker::Base).await.is_some());
        assert!(slot(Asker::Raised).await.is_some());
    }

    #[tokio::test]
    async fn a_raised_client_never_waits_for_a_slot() {
        let slots = Arc::new(Semaphore::new(1));
        let held = slot_from(&slots, Asker::Raised).await.expect("a free slot");
        // None free: refused at once (well under WAIT), not queued.
        let started = std::time::Instant::now();
        assert!(slot_from(&slots, Asker::Raised).await.is_none());
        assert!(started.elapsed() < WAIT / 2, "waited {:?}", started.elapsed());
        drop(held);
        assert!(slot_from(&slots, Asker::Raised).await.is_some());
    }

    #[tokio::test]
    async fn a_freed_slot_goes_to_a_queued_base_client_not_to_a_raised_one() {
        let slots = Arc::new(Semaphore::new(1));
        let held = slot_from(&slots, Asker::Raised).await.expect("a free slot");
        let s = slots.clone();
        let base = tokio::spawn(async move { slot_from(&s, Asker::Base).await });
        // The base client queues (the test's runtime runs it while this one sleeps).
        tokio::time::sleep(WAIT / 10).await;
        assert!(!base.is_finished());
        drop(held);
        // The released slot went to the waiting base client: none is free for a raised one,
        // however quickly it asks.
        assert!(
            slot_from(&slots, Asker::Raised).await.is_none(),
            "a raised client jumped the queue"
        );
        let got = base.await.unwrap();
        assert!(got.is_some(), "the queued base client got no slot");
        assert!(slot_from(&slots, Asker::Raised).await.is_none());
        drop(got);
        assert!(slot_from(&slots, Asker::Raised).await.is_some());
    }

    #[tokio::test]
    async fn raised_clients_holding_every_slot_do_not_queue_ahead_of_a_base_client() {
        let slots = Arc::new(Semaphore::new(1));
        // A raised client derives; many more ask meanwhile and are refused, so none is queued.
        let held = slot_from(&slots, Asker::Raised).await.expect("a free slot");
        for _ in 0..100 {
            assert!(slot_from(&slots, Asker::Raised).await.is_none());
        }
        // A base client arrives: it waits only for the running derivation.
        let s = slots.clone();
        let base = tokio::spawn(async move { slot_from(&s, Asker::Base).await });
        tokio::time::sleep(WAIT / 10).await;
        drop(held);
        assert!(base.await.unwrap().is_some(), "the base client got 503 behind raised clients");
    }
}
