//! Replay sets: "has this one-time value been seen before?" for DPoP proof `jti`s (and other
//! single-use tokens). An entry lives for a TTL, after which the value it guards has expired
//! anyway. The in-process set is the one-node default; a shared (Redis `SET NX` + TTL) set can
//! implement the same trait for many nodes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Why a replay set could not answer. Callers fail closed: no answer means no entry.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The set is at its capacity with live entries; refusing is the only safe answer, since
    /// evicting a live entry would let its value be replayed.
    #[error("the replay set is full ({0} live entries)")]
    Full(usize),
    #[error("the replay store is unavailable: {0}")]
    Unavailable(String),
}

/// A set of single-use values with a time to live.
pub trait ReplaySet: Send + Sync + 'static {
    /// Records `key` for `ttl`. `Ok(true)` the first time, `Ok(false)` if it is already there
    /// (a replay).
    fn first_use(&self, key: &str, ttl: Duration) -> Result<bool, ReplayError>;
}

/// The in-process replay set: bounded, expired entries swept when it fills up.
pub struct LocalReplaySet {
    entries: Mutex<HashMap<Box<str>, Instant>>,
    capacity: usize,
}

impl LocalReplaySet {
    pub fn new(capacity: usize) -> Self {
        LocalReplaySet { entries: Mutex::new(HashMap::new()), capacity: capacity.max(1) }
    }

    pub fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ReplaySet for LocalReplaySet {
    fn first_use(&self, key: &str, ttl: Duration) -> Result<bool, ReplayError> {
        let now = Instant::now();
        let mut entries = self.entries.lock().map_err(|_| ReplayError::Unavailable("poisoned lock".into()))?;
        if let Some(expires) = entries.get(key) {
            if *expires > now {
                return Ok(false);
            }
            entries.remove(key);
        }
        if entries.len() >= self.capacity {
            entries.retain(|_, expires| *expires > now);
            if entries.len() >= self.capacity {
                return Err(ReplayError::Full(entries.len()));
            }
        }
        entries.insert(key.into(), now + ttl);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_use_is_a_replay_until_the_ttl_ends() {
        let set = LocalReplaySet::new(10);
        assert!(set.first_use("a", Duration::from_secs(60)).unwrap());
        assert!(!set.first_use("a", Duration::from_secs(60)).unwrap());
        assert!(set.first_use("b", Duration::ZERO).unwrap());
        // Zero TTL: expired at once, so a new use is first again.
        assert!(set.first_use("b", Duration::from_secs(60)).unwrap());
    }

    #[test]
    fn a_full_set_refuses_instead_of_evicting_live_entries() {
        let set = LocalReplaySet::new(2);
        assert!(set.first_use("a", Duration::from_secs(60)).unwrap());
        assert!(set.first_use("b", Duration::from_secs(60)).unwrap());
        assert!(matches!(set.first_use("c", Duration::from_secs(60)), Err(ReplayError::Full(2))));
        // "a" is still remembered.
        assert!(!set.first_use("a", Duration::from_secs(60)).unwrap());
    }

    #[test]
    fn expired_entries_make_room() {
        let set = LocalReplaySet::new(1);
        assert!(set.first_use("a", Duration::ZERO).unwrap());
        assert!(set.first_use("b", Duration::from_secs(60)).unwrap());
        assert_eq!(set.len(), 1);
    }
}
