//! Fault injection, deterministic by seed and switchable at run time through the admin API.
//!
//! Each request draws from one seeded RNG in arrival order, so a sequential client sees the same
//! faults on every run with the same seed.

use parking_lot::Mutex;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// What to inject. Rates are probabilities in `[0, 1]` per eligible request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Share of API requests answered 500 `UNKNOWN_EXCEPTION`.
    pub http_500_rate: f64,
    /// Share of API requests answered 503 `SERVER_UNAVAILABLE`.
    pub http_503_rate: f64,
    /// Share of API requests refused with 403 `REQUEST_LIMIT_EXCEEDED` (concurrent limit).
    pub concurrent_limit_rate: f64,
    /// Share of record writes failing with `UNABLE_TO_LOCK_ROW` (per request for REST, per row
    /// for collections and Bulk ingest).
    pub lock_row_rate: f64,
    /// Share of responses whose connection is dropped after part of the body was sent.
    pub drop_connection_rate: f64,
    /// Added latency for every API response, in milliseconds.
    pub latency_ms: u64,
    /// Share of Bulk jobs (query and ingest) that end `Failed`.
    pub bulk_job_failure_rate: f64,
    /// Queries without a WHERE clause over objects with more rows than this fail with
    /// `QUERY_TIMEOUT` (0 = never).
    pub query_timeout_rows: u64,
}

/// What a request should suffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFault {
    Http500,
    Http503,
    ConcurrentLimit,
    DropConnection,
}

/// The live fault settings and the seeded RNG they draw from.
#[derive(Debug)]
pub struct Faults {
    config: Mutex<FaultConfig>,
    rng: Mutex<ChaCha8Rng>,
}

impl Faults {
    pub fn new(seed: u64) -> Faults {
        Faults { config: Mutex::new(FaultConfig::default()), rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed ^ 0xFA17)) }
    }

    pub fn config(&self) -> FaultConfig {
        self.config.lock().clone()
    }

    /// Replaces the settings and reseeds, so a test that sets faults gets a reproducible sequence.
    pub fn set(&self, config: FaultConfig, seed: u64) {
        *self.config.lock() = config;
        *self.rng.lock() = ChaCha8Rng::seed_from_u64(seed ^ 0xFA17);
    }

    /// True with probability `rate`.
    pub fn roll(&self, rate: f64) -> bool {
        rate > 0.0 && self.rng.lock().random_bool(rate.clamp(0.0, 1.0))
    }

    /// The fault (if any) for one API request, drawn in a fixed order.
    pub fn for_request(&self) -> Option<RequestFault> {
        let c = self.config.lock().clone();
        if self.roll(c.http_500_rate) {
            return Some(RequestFault::Http500);
        }
        if self.roll(c.http_503_rate) {
            return Some(RequestFault::Http503);
        }
        if self.roll(c.concurrent_limit_rate) {
            return Some(RequestFault::ConcurrentLimit);
        }
        if self.roll(c.drop_connection_rate) {
            return Some(RequestFault::DropConnection);
        }
        None
    }

    /// Whether a write (one record, or one REST write request) hits a row lock.
    pub fn lock_row(&self) -> bool {
        let rate = self.config.lock().lock_row_rate;
        self.roll(rate)
    }

    /// Whether a Bulk job should fail.
    pub fn bulk_job_fails(&self) -> bool {
        let rate = self.config.lock().bulk_job_failure_rate;
        self.roll(rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_faults() {
        let draw = |seed| {
            let f = Faults::new(seed);
            f.set(FaultConfig { http_500_rate: 0.3, drop_connection_rate: 0.2, ..Default::default() }, seed);
            (0..200).map(|_| f.for_request()).collect::<Vec<_>>()
        };
        let a = draw(7);
        assert_eq!(a, draw(7));
        assert_ne!(a, draw(8));
        let n500 = a.iter().filter(|f| **f == Some(RequestFault::Http500)).count();
        assert!((30..90).contains(&n500), "about 30% of 200, got {n500}");
        assert!(Faults::new(1).for_request().is_none(), "no faults by default");
    }
}
