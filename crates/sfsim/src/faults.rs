//! Fault injection, deterministic by seed and switchable at run time through the admin API.
//!
//! Each request draws from one seeded RNG in arrival order, so a sequential client sees the same
//! faults on every run with the same seed. Row locks can also be aimed at chosen records
//! ([`FaultConfig::lock_row_ids`]), which needs no RNG at all.

use std::collections::HashMap;

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
    /// for collections and Bulk ingest, per id for SOAP `undelete`).
    pub lock_row_rate: f64,
    /// Records whose writes fail with `UNABLE_TO_LOCK_ROW`: a write fails when the record it
    /// writes, or any record id it names (a parent it would lock), is listed. 15- or
    /// 18-character ids; compared on their first 15 characters.
    pub lock_row_ids: Vec<String>,
    /// How many writes of each listed record fail before it can be written (a contention that
    /// clears, for retry tests); 0 = every write fails while the id is listed.
    pub lock_row_id_failures: u32,
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
    /// Lock failures served so far per listed id (15-character form).
    lock_hits: Mutex<HashMap<String, u32>>,
}

/// A write that hit a row lock. `id` is the record named in the error message, when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockHit {
    pub id: Option<String>,
}

impl Faults {
    pub fn new(seed: u64) -> Faults {
        Faults {
            config: Mutex::new(FaultConfig::default()),
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed ^ 0xFA17)),
            lock_hits: Mutex::new(HashMap::new()),
        }
    }

    pub fn config(&self) -> FaultConfig {
        self.config.lock().clone()
    }

    /// Replaces the settings and reseeds, so a test that sets faults gets a reproducible sequence.
    pub fn set(&self, config: FaultConfig, seed: u64) {
        *self.config.lock() = config;
        *self.rng.lock() = ChaCha8Rng::seed_from_u64(seed ^ 0xFA17);
        self.lock_hits.lock().clear();
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

    /// Whether a write (one record, or one REST write request) hits a row lock by
    /// [`FaultConfig::lock_row_rate`] alone.
    pub fn lock_row(&self) -> bool {
        let rate = self.config.lock().lock_row_rate;
        self.roll(rate)
    }

    /// Whether any row-lock fault is configured (callers skip working out lock candidates
    /// otherwise).
    pub fn locks_configured(&self) -> bool {
        let c = self.config.lock();
        c.lock_row_rate > 0.0 || !c.lock_row_ids.is_empty()
    }

    /// Whether a write of one record hits a row lock. `ids` are the record ids the write
    /// touches: the record's own id first (when it has one), then ids it references. A listed
    /// id ([`FaultConfig::lock_row_ids`]) fails the write deterministically; otherwise one draw
    /// of [`FaultConfig::lock_row_rate`] decides (exactly one draw per call, so the sequence a
    /// seed gives does not depend on the ids). The hit names the locked record: the listed id,
    /// or for a drawn lock the first of `ids`.
    pub fn row_lock(&self, ids: &[&str]) -> Option<LockHit> {
        let (rate, listed, failures) = {
            let c = self.config.lock();
            (c.lock_row_rate, !c.lock_row_ids.is_empty(), c.lock_row_id_failures)
        };
        let drawn = self.roll(rate);
        if listed && let Some(id) = self.listed_lock(ids, failures) {
            return Some(LockHit { id: Some(id) });
        }
        drawn.then(|| LockHit { id: ids.first().map(|s| (*s).to_owned()) })
    }

    /// The first of `ids` that is listed and still has failures to serve.
    fn listed_lock(&self, ids: &[&str], failures: u32) -> Option<String> {
        let config = self.config.lock();
        let short = |s: &str| s.get(..15).map(str::to_owned);
        let listed: Vec<String> = config.lock_row_ids.iter().filter_map(|s| short(s.trim())).collect();
        drop(config);
        let mut hits = self.lock_hits.lock();
        for id in ids {
            let Some(key) = short(id) else { continue };
            if !listed.contains(&key) {
                continue;
            }
            let served = hits.entry(key).or_default();
            if failures == 0 || *served < failures {
                *served += 1;
                return Some((*id).to_owned());
            }
        }
        None
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

    #[test]
    fn listed_ids_lock_deterministically_and_clear_after_their_failures() {
        let f = Faults::new(1);
        let a = "001Dn000000001AAAA";
        f.set(FaultConfig { lock_row_ids: vec![a[..15].to_owned()], lock_row_id_failures: 2, ..Default::default() }, 1);
        assert_eq!(f.row_lock(&["001Dn000000002AAA", a]), Some(LockHit { id: Some(a.to_owned()) }));
        assert_eq!(f.row_lock(&[a]).unwrap().id.as_deref(), Some(a));
        assert_eq!(f.row_lock(&[a]), None, "two failures served, the lock clears");
        assert_eq!(f.row_lock(&["001Dn000000002AAA"]), None);
        f.set(FaultConfig { lock_row_ids: vec![a.to_owned()], ..Default::default() }, 1);
        assert!((0..5).all(|_| f.row_lock(&[a]).is_some()), "0 failures = always");
        f.set(FaultConfig { lock_row_rate: 1.0, ..Default::default() }, 1);
        assert_eq!(f.row_lock(&[]), Some(LockHit { id: None }));
    }
}
