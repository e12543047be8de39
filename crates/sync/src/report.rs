//! What a sync did, and the hooks progress displays use.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tidemark_lake::RunStatus;
use tidemark_salesforce::ErrorClass;

use crate::extract::Api;

/// One object's part of a run.
#[derive(Debug, Clone)]
pub struct ObjectReport {
    pub object: String,
    pub status: RunStatus,
    /// `initial`, `incremental` or `full`.
    pub mode: &'static str,
    pub api: Option<Api>,
    pub rows_read: u64,
    pub versions_written: u64,
    /// Soft deletes read (queryAll versions with `IsDeleted`).
    pub deletes: u64,
    /// Deletes found by Id reconciliation.
    pub hard_deletes: u64,
    pub snapshot_versions: u64,
    /// Records read but left out: erased from the lake and suppressed (`tidemark erase`).
    pub suppressed: u64,
    pub schema_changes: usize,
    pub bookmark: Option<DateTime<Utc>>,
    pub bookmark_field: String,
    pub reconciled_at: Option<DateTime<Utc>>,
    pub formula_snapshot_at: Option<DateTime<Utc>>,
    pub api_calls: u64,
    pub duration: Duration,
    pub message: Option<String>,
    pub error_class: Option<ErrorClass>,
}

impl ObjectReport {
    pub(crate) fn new(object: &str) -> ObjectReport {
        ObjectReport {
            object: object.to_owned(),
            status: RunStatus::Failed,
            mode: "initial",
            api: None,
            rows_read: 0,
            versions_written: 0,
            deletes: 0,
            hard_deletes: 0,
            snapshot_versions: 0,
            suppressed: 0,
            schema_changes: 0,
            bookmark: None,
            bookmark_field: String::new(),
            reconciled_at: None,
            formula_snapshot_at: None,
            api_calls: 0,
            duration: Duration::ZERO,
            message: None,
            error_class: None,
        }
    }
}

/// A whole run.
#[derive(Debug, Clone)]
pub struct SyncReport {
    pub run_id: String,
    pub objects: Vec<ObjectReport>,
    pub duration: Duration,
    pub api_calls: u64,
}

impl SyncReport {
    /// `Complete` when every object completed; `Failed` when any failed; else `Incomplete`.
    pub fn status(&self) -> RunStatus {
        if self.objects.iter().any(|o| o.status == RunStatus::Failed) {
            RunStatus::Failed
        } else if self.objects.iter().any(|o| o.status == RunStatus::Incomplete) {
            RunStatus::Incomplete
        } else {
            RunStatus::Complete
        }
    }

    pub fn versions_written(&self) -> u64 {
        self.objects.iter().map(|o| o.versions_written).sum()
    }

    pub fn rows_read(&self) -> u64 {
        self.objects.iter().map(|o| o.rows_read).sum()
    }
}

/// Progress hooks. Called from the sync's tasks: implementations must be cheap and must not
/// block. Record values never pass through here.
pub trait SyncObserver: Send + Sync {
    /// The run selected `objects` objects to sync.
    fn run_started(&self, _objects: usize) {}
    /// Reading started; `expected` is the record count when known.
    fn object_started(&self, _object: &str, _api: Api, _expected: Option<u64>) {}
    fn records_read(&self, _object: &str, _records: u64) {}
    fn object_finished(&self, _report: &ObjectReport) {}
}

/// An observer that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct Quiet;

impl SyncObserver for Quiet {}
