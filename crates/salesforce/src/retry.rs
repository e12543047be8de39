//! Retry policy: exponential backoff with full jitter, honouring `Retry-After`.

use std::time::Duration;

use rand::Rng;

/// A `Retry-After` longer than this is treated as this: a run should rather end incomplete.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// How often and how patiently to retry retryable failures.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included. 1 disables retries.
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_attempts: 8, initial_backoff: Duration::from_millis(200), max_backoff: Duration::from_secs(30) }
    }
}

impl RetryPolicy {
    /// No waiting between attempts (tests against the simulator).
    pub fn immediate(max_attempts: u32) -> RetryPolicy {
        RetryPolicy { max_attempts, initial_backoff: Duration::ZERO, max_backoff: Duration::ZERO }
    }

    /// The wait before attempt `attempt + 1` (attempt counts from 1). A server's `Retry-After`
    /// wins when it asks for longer than the computed backoff (up to five minutes).
    pub fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self.initial_backoff.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(16)));
        let ceiling = exp.min(self.max_backoff);
        // Full jitter spreads retries of many parallel workers apart.
        let jittered = if ceiling.is_zero() {
            Duration::ZERO
        } else {
            Duration::from_millis(rand::rng().random_range(ceiling.as_millis() as u64 / 2..=ceiling.as_millis() as u64))
        };
        match retry_after {
            Some(ra) => ra.min(MAX_RETRY_AFTER).max(jittered),
            None => jittered,
        }
    }
}

/// Parses a `Retry-After` header given in seconds.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_respects_retry_after() {
        let p = RetryPolicy { max_attempts: 5, initial_backoff: Duration::from_millis(100), max_backoff: Duration::from_secs(1) };
        for _ in 0..50 {
            let b1 = p.backoff(1, None);
            assert!(b1 >= Duration::from_millis(50) && b1 <= Duration::from_millis(100), "{b1:?}");
            let b4 = p.backoff(4, None);
            assert!(b4 >= Duration::from_millis(400) && b4 <= Duration::from_millis(800), "{b4:?}");
            assert!(p.backoff(20, None) <= Duration::from_secs(1));
        }
        assert_eq!(p.backoff(1, Some(Duration::from_secs(3))), Duration::from_secs(3));
        assert_eq!(RetryPolicy::immediate(3).backoff(5, None), Duration::ZERO);
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
