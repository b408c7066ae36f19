//! A byte (or entry) budget for maps that hold security state: when full
//! they refuse what does not fit instead of evicting what they hold. A
//! cache may forget; a replay or revocation list that forgets lets a
//! replayed proof or a revoked token through.
//!
//! Used with a moka cache that has no capacity of its own: the budget is
//! reserved before an insert and released by the cache's eviction listener
//! when an entry expires, is removed or replaced.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// How much a map may hold, and how much it holds.
#[derive(Debug)]
pub(crate) struct Budget {
    used: AtomicU64,
    max: u64,
}

impl Budget {
    pub(crate) fn new(max: u64) -> Arc<Self> {
        Arc::new(Self {
            used: AtomicU64::new(0),
            max,
        })
    }

    /// Reserves `n`: `false` (nothing reserved) when it does not fit.
    pub(crate) fn reserve(&self, n: u64) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|total| *total <= self.max)
            })
            .is_ok()
    }

    /// Reserves `n`, calling `drop_expired` (the map's pending evictions,
    /// which give room back) once if it does not fit at first: `false`
    /// (nothing reserved) when it still does not.
    pub(crate) fn reserve_or_drop_expired(&self, n: u64, drop_expired: impl FnOnce()) -> bool {
        if self.reserve(n) {
            return true;
        }
        drop_expired();
        self.reserve(n)
    }

    /// Gives back `n` reserved before.
    pub(crate) fn release(&self, n: u64) {
        // Never below zero, whatever the caller's accounting.
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                Some(used.saturating_sub(n))
            });
    }

    /// What is reserved now.
    pub(crate) fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_does_not_fit() {
        let b = Budget::new(10);
        assert!(b.reserve(6));
        assert!(!b.reserve(5));
        assert!(b.reserve(4));
        assert!(!b.reserve(1));
        b.release(4);
        assert!(b.reserve(3));
        assert_eq!(b.used(), 9);
        b.release(100);
        assert_eq!(b.used(), 0);
        assert!(!b.reserve(u64::MAX));
        // Room freed by dropping what expired is used at once.
        assert!(b.reserve(10));
        assert!(b.reserve_or_drop_expired(4, || b.release(4)));
        assert!(!b.reserve_or_drop_expired(4, || {}));
        assert_eq!(b.used(), 10);
    }
}
