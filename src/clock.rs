//! The one clock every time check reads: token `exp`/`nbf`/`iat`, the
//! verified-token cache, the key caches and the revocation list.
//!
//! In production it is the system clock. In tests (feature `testing`), a
//! [`ManualClock`](crate::testing::ManualClock) given to
//! a guard builder through [`Clocked`](crate::testing::Clocked) moves all of them at
//! once, so a test can let a token expire or keys go stale without waiting.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The time source: the system clock, plus a manual offset in tests.
#[derive(Debug, Clone, Default)]
pub(crate) struct Clock(Option<Arc<AtomicU64>>);

impl Clock {
    /// How far a manual clock was moved forward (zero for the system clock).
    fn offset(&self) -> Duration {
        self.0.as_ref().map_or(Duration::ZERO, |o| {
            Duration::from_millis(o.load(Ordering::Relaxed))
        })
    }

    /// A clock moved forward by the milliseconds in `offset` (unit tests).
    #[cfg(test)]
    pub(crate) fn manual(offset: Arc<AtomicU64>) -> Self {
        Self(Some(offset))
    }

    /// A monotonic instant, for cache lifetimes.
    pub(crate) fn now(&self) -> Instant {
        Instant::now() + self.offset()
    }

    /// The wall-clock time, for comparisons with precomputed bounds (the
    /// token cache's): no conversion to seconds on the hot path.
    #[inline]
    pub(crate) fn system_now(&self) -> SystemTime {
        match &self.0 {
            None => SystemTime::now(),
            Some(_) => SystemTime::now() + self.offset(),
        }
    }

    /// Seconds since the Unix epoch, for token times.
    pub(crate) fn unix_now(&self) -> u64 {
        unix_seconds(self.system_now())
    }
}

/// Whole seconds since the Unix epoch (0 before it).
pub(crate) fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The time `secs` seconds after the Unix epoch, saturating at about the
/// year 10,000 (every platform's `SystemTime` holds that, so this cannot
/// overflow).
pub(crate) fn from_unix_seconds(secs: u64) -> SystemTime {
    const LAST: u64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    UNIX_EPOCH + Duration::from_secs(secs.min(LAST))
}

/// A clock for tests (feature `testing`): the real time plus every
/// [`advance`](ManualClock::advance) made so far, so hours pass in a test
/// without waiting. Give it to the builders with
/// [`Clocked::clock`](crate::testing::Clocked::clock).
///
/// ```
/// use std::time::Duration;
/// use mcp_resource_guard::testing::ManualClock;
///
/// let clock = ManualClock::new();
/// clock.advance(Duration::from_secs(3600)); // an hour later, at once
/// ```
#[cfg(feature = "testing")]
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicU64>);

#[cfg(feature = "testing")]
impl ManualClock {
    /// A clock at the real time.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.0.fetch_add(ms, Ordering::Relaxed);
    }

    pub(crate) fn clock(&self) -> Clock {
        Clock(Some(self.0.clone()))
    }
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_both_readings() {
        let manual = ManualClock::new();
        let clock = manual.clock();
        let (i0, u0) = (clock.now(), clock.unix_now());
        manual.advance(Duration::from_secs(7200));
        assert!(clock.now() >= i0 + Duration::from_secs(7200));
        assert!(clock.unix_now() >= u0 + 7200);
        let system = Clock::default();
        assert!(system.unix_now() < u0 + 7200);
    }
}
