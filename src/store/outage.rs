//! Logging a store outage once, not once per request.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::StoreError;
use crate::observe::log::event;

/// The state of one use of the store (replay, introspection, revocation,
/// sessions): up or down. The first failure logs a warning and counts an
/// outage; the next success logs the recovery.
#[derive(Debug)]
pub(crate) struct Outage {
    used_for: &'static str,
    down: AtomicBool,
    outages: AtomicU64,
}

impl Outage {
    pub(crate) const fn new(used_for: &'static str) -> Self {
        Self {
            used_for,
            down: AtomicBool::new(false),
            outages: AtomicU64::new(0),
        }
    }

    /// A call failed: logged when it starts an outage.
    pub(crate) fn failed(&self, store: &'static str, error: &StoreError, then: &'static str) {
        crate::observe::metrics::store_error(store, self.used_for);
        if !self.down.swap(true, Ordering::AcqRel) {
            self.outages.fetch_add(1, Ordering::Relaxed);
            event!(warn, STORE, store, used_for = self.used_for, error = %error, then,
                "the shared store is unavailable (logged once per outage)");
            let _ = (error, then);
        }
    }

    /// A call succeeded: logged when it ends an outage.
    #[inline]
    pub(crate) fn succeeded(&self, store: &'static str) {
        if self.down.load(Ordering::Relaxed) && self.down.swap(false, Ordering::AcqRel) {
            event!(
                info,
                STORE,
                store,
                used_for = self.used_for,
                "the shared store is back"
            );
            let _ = store;
        }
    }

    /// How many outages began (each logged once).
    pub(crate) fn count(&self) -> u64 {
        self.outages.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_outage_however_many_failures() {
        let o = Outage::new("replay");
        let e = StoreError::new("down");
        for _ in 0..100 {
            o.failed("memory", &e, "refused");
        }
        assert_eq!(o.count(), 1);
        o.succeeded("memory");
        o.succeeded("memory");
        o.failed("memory", &e, "refused");
        assert_eq!(o.count(), 2);
    }
}
