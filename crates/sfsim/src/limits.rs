//! The org's rolling 24-hour allocations: API requests (reported in `Sforce-Limit-Info` and
//! `DailyApiRequests`) and Bulk API batches (`DailyBulkApiBatches`).

use std::collections::VecDeque;

use parking_lot::Mutex;

const MINUTE_MS: i64 = 60_000;
const DAY_MINUTES: i64 = 24 * 60;

/// Bulk API batches per rolling 24 hours, shared by Bulk API 1.0 and Bulk API 2.0 ingest.
pub const DAILY_BULK_BATCHES: u64 = 15_000;

/// Counts uses (requests, batches) per org-clock minute over a rolling 24 hours.
#[derive(Debug)]
pub struct ApiUsage {
    inner: Mutex<UsageInner>,
}

#[derive(Debug)]
struct UsageInner {
    max: u64,
    /// `(minute, requests)`, oldest first.
    buckets: VecDeque<(i64, u64)>,
    used: u64,
}

impl ApiUsage {
    pub fn new(max: u64) -> ApiUsage {
        ApiUsage { inner: Mutex::new(UsageInner { max, buckets: VecDeque::new(), used: 0 }) }
    }

    /// Counts one request at `now_millis` unless the allocation is exhausted.
    /// Returns `(used, max)` after counting, or `Err((used, max))` when refused.
    pub fn try_consume(&self, now_millis: i64) -> Result<(u64, u64), (u64, u64)> {
        let mut u = self.inner.lock();
        u.expire(now_millis);
        if u.used >= u.max {
            return Err((u.used, u.max));
        }
        let minute = now_millis.div_euclid(MINUTE_MS);
        match u.buckets.back_mut() {
            Some((m, n)) if *m == minute => *n += 1,
            _ => u.buckets.push_back((minute, 1)),
        }
        u.used += 1;
        Ok((u.used, u.max))
    }

    /// Counts `n` uses at `now_millis` whether or not the allocation is left: Bulk batches are
    /// counted as the org creates them, and running past the allocation is not simulated.
    pub fn record(&self, now_millis: i64, n: u64) {
        if n == 0 {
            return;
        }
        let mut u = self.inner.lock();
        u.expire(now_millis);
        let minute = now_millis.div_euclid(MINUTE_MS);
        match u.buckets.back_mut() {
            Some((m, count)) if *m == minute => *count += n,
            _ => u.buckets.push_back((minute, n)),
        }
        u.used += n;
    }

    /// `(used, max)` at `now_millis`.
    pub fn snapshot(&self, now_millis: i64) -> (u64, u64) {
        let mut u = self.inner.lock();
        u.expire(now_millis);
        (u.used, u.max)
    }

    pub fn set_max(&self, max: u64) {
        self.inner.lock().max = max;
    }

    /// Sets the used count as if `used` requests had just been made (admin API, tests).
    pub fn set_used(&self, now_millis: i64, used: u64) {
        let mut u = self.inner.lock();
        u.buckets.clear();
        u.buckets.push_back((now_millis.div_euclid(MINUTE_MS), used));
        u.used = used;
    }
}

impl UsageInner {
    fn expire(&mut self, now_millis: i64) {
        let oldest_kept = now_millis.div_euclid(MINUTE_MS) - DAY_MINUTES + 1;
        while let Some(&(m, n)) = self.buckets.front() {
            if m >= oldest_kept {
                break;
            }
            self.used -= n;
            self.buckets.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocation_is_enforced_and_rolls_over_after_a_day() {
        let usage = ApiUsage::new(3);
        let t0 = 1_000 * MINUTE_MS;
        assert_eq!(usage.try_consume(t0), Ok((1, 3)));
        assert_eq!(usage.try_consume(t0 + MINUTE_MS), Ok((2, 3)));
        assert_eq!(usage.try_consume(t0 + 2 * MINUTE_MS), Ok((3, 3)));
        assert_eq!(usage.try_consume(t0 + 3 * MINUTE_MS), Err((3, 3)));
        // 24 h after the first request, it no longer counts.
        assert_eq!(usage.try_consume(t0 + DAY_MINUTES * MINUTE_MS), Ok((3, 3)));
        assert_eq!(usage.snapshot(t0 + 3 * DAY_MINUTES * MINUTE_MS), (0, 3));
        usage.set_used(t0, 3);
        assert!(usage.try_consume(t0).is_err());
    }

    #[test]
    fn recorded_uses_count_past_the_allocation_and_roll_over() {
        let batches = ApiUsage::new(2);
        let t0 = 1_000 * MINUTE_MS;
        batches.record(t0, 2);
        batches.record(t0 + MINUTE_MS, 1);
        batches.record(t0 + MINUTE_MS, 0);
        assert_eq!(batches.snapshot(t0 + MINUTE_MS), (3, 2));
        assert_eq!(batches.snapshot(t0 + DAY_MINUTES * MINUTE_MS), (1, 2), "the first minute's two have rolled off");
    }
}
