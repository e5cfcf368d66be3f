//! Each proof-of-work route's current level, for the admin console's traffic view
//! (docs/console.md). The `[pow]` feature registers itself when it is built; the gateway's
//! admin API asks [`pow_levels`].

use std::sync::Mutex;

/// A proof-of-work route's current level, as the console shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PowRouteLevel {
    pub route: String,
    /// Requests per second on the route (its 10-second average).
    pub rps: f64,
    /// The level its load alone asks for now (0: the lowest), of `levels`.
    pub level: usize,
    pub levels: usize,
    /// That level's ALTCHA cost and counter.
    pub cost: u32,
    pub counter: u32,
}

/// What can report proof-of-work levels (the running pipeline's `[pow]` feature).
pub trait PowLevels: Send + Sync {
    fn pow_levels(&self) -> Vec<PowRouteLevel>;
}

static POW: Mutex<Vec<std::sync::Weak<dyn PowLevels>>> = Mutex::new(Vec::new());

/// Registers a built `[pow]` feature. The newest one still alive answers [`pow_levels`]: the
/// running pipeline's, since one whose build failed (a refused reload) is dropped at once.
pub fn publish_pow(source: std::sync::Weak<dyn PowLevels>) {
    let mut p = POW.lock().unwrap_or_else(|e| e.into_inner());
    p.retain(|w| w.strong_count() > 0);
    p.push(source);
}

/// The running pipeline's proof-of-work routes and their levels; empty without `[pow]`.
pub fn pow_levels() -> Vec<PowRouteLevel> {
    let p = POW.lock().unwrap_or_else(|e| e.into_inner());
    p.iter().rev().find_map(|w| w.upgrade()).map(|s| s.pow_levels()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(usize);
    impl PowLevels for Fixed {
        fn pow_levels(&self) -> Vec<PowRouteLevel> {
            vec![PowRouteLevel {
                route: "POST /x".into(),
                rps: 0.0,
                level: self.0,
                levels: 3,
                cost: 1,
                counter: 1,
            }]
        }
    }

    #[test]
    fn the_newest_live_pow_source_answers() {
        let running = std::sync::Arc::new(Fixed(1));
        publish_pow(std::sync::Arc::downgrade(&running) as std::sync::Weak<dyn PowLevels>);
        assert_eq!(pow_levels()[0].level, 1);
        // A build that failed (a refused reload) drops its feature: the running one answers.
        let failed = std::sync::Arc::new(Fixed(2));
        publish_pow(std::sync::Arc::downgrade(&failed) as std::sync::Weak<dyn PowLevels>);
        assert_eq!(pow_levels()[0].level, 2);
        drop(failed);
        assert_eq!(pow_levels()[0].level, 1);
    }
}
