//! The in-process event hub: invalidation messages (a revoked API key, a logged-out session)
//! are delivered to every live subscriber in this process, synchronously, whether they were
//! published here or arrived from another node over Redis pub/sub.
//!
//! Subscribers are held weakly, so a cache dropped with an old pipeline after a reload stops
//! receiving without unregistering.

use std::sync::{Arc, Mutex, Weak};

/// A subscriber: gets `(topic, payload)`. The topic [`RESYNC`] means messages may have been
/// lost (Redis reconnected): drop anything cached.
pub type Hook = dyn Fn(&str, &str) + Send + Sync;

/// Delivered after the Redis subscription is (re-)established.
pub const RESYNC: &str = "resync";

#[derive(Default)]
pub struct Events {
    hooks: Mutex<Vec<Weak<Hook>>>,
}

impl Events {
    pub fn new() -> Arc<Events> {
        Arc::new(Events::default())
    }

    /// Registers `hook` for as long as the caller keeps it alive.
    pub fn subscribe(&self, hook: &Arc<Hook>) {
        let mut hooks = self.hooks.lock().unwrap_or_else(|e| e.into_inner());
        hooks.retain(|h| h.strong_count() > 0);
        hooks.push(Arc::downgrade(hook));
    }

    /// Calls every live subscriber now.
    pub fn deliver(&self, topic: &str, payload: &str) {
        let live: Vec<Arc<Hook>> = {
            let mut hooks = self.hooks.lock().unwrap_or_else(|e| e.into_inner());
            hooks.retain(|h| h.strong_count() > 0);
            hooks.iter().filter_map(Weak::upgrade).collect()
        };
        for h in live {
            h(topic, payload);
        }
    }
}

/// The wire form on the Redis channel: `topic SP payload`.
pub fn encode(topic: &str, payload: &str) -> String {
    format!("{topic} {payload}")
}

pub fn decode(message: &str) -> Option<(&str, &str)> {
    let (t, p) = message.split_once(' ')?;
    (!t.is_empty()).then_some((t, p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn delivers_to_live_subscribers_only() {
        let ev = Events::new();
        let n = Arc::new(AtomicUsize::new(0));
        let n2 = n.clone();
        let hook: Arc<Hook> = Arc::new(move |t, p| {
            assert_eq!((t, p), ("api_key.revoked", "key_1"));
            n2.fetch_add(1, Ordering::SeqCst);
        });
        ev.subscribe(&hook);
        ev.deliver("api_key.revoked", "key_1");
        drop(hook);
        ev.deliver("api_key.revoked", "key_1");
        assert_eq!(n.load(Ordering::SeqCst), 1);
        assert_eq!(decode(&encode("a.b", "x y")), Some(("a.b", "x y")));
        assert_eq!(decode("nospace"), None);
    }
}
