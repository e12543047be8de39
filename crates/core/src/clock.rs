//! The injected clock. Time-dependent logic (session expiry, recycle-bin purge, overlap windows,
//! schedules) takes a [`Clock`] so tests can move time deterministically instead of sleeping.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use parking_lot::Mutex;

/// A source of "now".
///
/// Implementations must be cheap to call and safe to share across threads. Successive calls
/// never go backwards.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to. Cloning shares the same instant.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<DateTime<Utc>>>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self { now: Arc::new(Mutex::new(start)) }
    }

    /// A fixed, memorable default start: Monday 2025-01-06 09:00:00 UTC.
    pub fn default_start() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, 6, 9, 0, 0).single().expect("valid constant date")
    }

    /// Moves the clock forward. Negative durations are ignored: time never goes backwards.
    pub fn advance(&self, by: Duration) -> DateTime<Utc> {
        let mut now = self.now.lock();
        if by > Duration::zero() {
            *now += by;
        }
        *now
    }

    /// Sets the clock to `to` if that is not in the past; returns the resulting instant.
    pub fn set_not_before(&self, to: DateTime<Utc>) -> DateTime<Utc> {
        let mut now = self.now.lock();
        if to > *now {
            *now = to;
        }
        *now
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_forward() {
        let clock = ManualClock::new(ManualClock::default_start());
        let start = clock.now();
        clock.advance(Duration::seconds(90));
        assert_eq!(clock.now() - start, Duration::seconds(90));
        clock.advance(Duration::seconds(-500));
        assert_eq!(clock.now() - start, Duration::seconds(90));
        clock.set_not_before(start);
        assert_eq!(clock.now() - start, Duration::seconds(90));
        let shared = clock.clone();
        shared.advance(Duration::seconds(10));
        assert_eq!(clock.now() - start, Duration::seconds(100));
    }
}
