//! What push runs leave in the lake besides the snapshot: the rejected rows of each flow
//! (`<lake>/_tidemark/push/<flow>/errors`) and one record per run (`<lake>/_tidemark/push_runs`).
//! Both are Delta tables `tidemark sql` reads as `push_<flow>_errors` and `push_runs`.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tidemark_lake::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use tidemark_lake::columns::timestamp_type;
use tidemark_lake::{LakeLocation, Ledger};

use crate::error::Result;

/// The internal table name of a flow's errors.
pub fn errors_table(flow: &str) -> String {
    format!("push/{}/errors", flow.to_ascii_lowercase())
}

pub const RUNS_TABLE: &str = "push_runs";

/// One rejected row of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorRow {
    pub run: i64,
    pub failed_at: DateTime<Utc>,
    /// The row's key, as a JSON array of the key columns' values.
    pub key: String,
    /// `insert`, `update`, `upsert` or `delete`.
    pub operation: String,
    /// The fields sent, as a JSON object.
    pub record: String,
    pub status_code: String,
    pub message: String,
    /// The fields Salesforce named, comma-separated.
    pub fields: String,
    /// 1 the first time the key failed, then one more for each later run it failed in while
    /// still undelivered.
    pub attempt: i64,
    /// The later run that delivered the key, once one did.
    pub delivered_run: Option<i64>,
}

impl ErrorRow {
    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("run", DataType::Int64, false),
            Field::new("failed_at", timestamp_type(), false),
            Field::new("key", DataType::Utf8, false),
            Field::new("operation", DataType::Utf8, false),
            Field::new("record", DataType::Utf8, false),
            Field::new("status_code", DataType::Utf8, false),
            Field::new("message", DataType::Utf8, false),
            Field::new("fields", DataType::Utf8, false),
            Field::new("attempt", DataType::Int64, false),
            Field::new("delivered_run", DataType::Int64, true),
        ]))
    }

    pub fn is_open(&self) -> bool {
        self.delivered_run.is_none()
    }
}

/// A flow's error table.
pub struct ErrorTable {
    ledger: Ledger,
    table: String,
}

impl ErrorTable {
    pub fn new(lake: &LakeLocation, flow: &str) -> ErrorTable {
        ErrorTable::at(lake, &errors_table(flow))
    }

    /// The error table at `_tidemark/<table>` (restores keep theirs under `restore/`).
    pub fn at(lake: &LakeLocation, table: &str) -> ErrorTable {
        ErrorTable { ledger: Ledger::new(lake.clone()), table: table.to_owned() }
    }

    /// Every row, oldest run first.
    pub async fn rows(&self) -> Result<Vec<ErrorRow>> {
        let mut rows: Vec<ErrorRow> = self.ledger.read_rows(&self.table).await?;
        rows.sort_by(|a, b| a.run.cmp(&b.run).then_with(|| a.key.cmp(&b.key)));
        Ok(rows)
    }

    /// Records run `run`'s outcome: rows of an earlier attempt at the same run are replaced,
    /// open rows of `delivered` keys are closed, and `failed` rows are added with their attempt
    /// numbers. One commit, so a crash leaves the table as it was or as it is now.
    pub async fn record(&self, run: i64, delivered: &std::collections::HashSet<String>, failed: Vec<ErrorRow>) -> Result<()> {
        let mut rows = self.rows().await?;
        // An earlier attempt at this run (killed before its snapshot commit) counts for nothing.
        rows.retain(|r| r.run != run);
        for row in rows.iter_mut().filter(|r| r.delivered_run == Some(run)) {
            row.delivered_run = None;
        }
        if delivered.is_empty() && failed.is_empty() && rows.iter().all(|r| !r.is_open()) {
            return Ok(());
        }
        let mut open_attempts: HashMap<String, i64> = HashMap::new();
        for row in rows.iter_mut() {
            if row.is_open() && delivered.contains(&row.key) {
                row.delivered_run = Some(run);
            }
            if row.is_open() {
                let attempts = open_attempts.entry(row.key.clone()).or_default();
                *attempts = (*attempts).max(row.attempt);
            }
        }
        for mut row in failed {
            row.attempt = open_attempts.get(&row.key).copied().unwrap_or(0) + 1;
            rows.push(row);
        }
        Ok(self.ledger.replace_rows(&self.table, ErrorRow::schema(), &rows).await?)
    }
}

/// How a push run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PushStatus {
    /// Every change was sent; rows Salesforce rejected are in the error table.
    Complete,
    /// Stopped early (the API budget ran out): what was delivered is recorded, the rest is sent
    /// by the next run.
    Incomplete,
    /// Stopped by an error; what was delivered before it is recorded.
    Failed,
}

impl PushStatus {
    pub fn label(self) -> &'static str {
        match self {
            PushStatus::Complete => "complete",
            PushStatus::Incomplete => "incomplete",
            PushStatus::Failed => "failed",
        }
    }
}

/// One push run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushRunRecord {
    pub flow: String,
    pub run: i64,
    pub attempt: String,
    pub object: String,
    pub mode: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub status: PushStatus,
    /// `collections`, `bulk`, `collections+bulk` or `none`.
    pub api: String,
    pub rows_new: i64,
    pub rows_changed: i64,
    pub rows_unchanged: i64,
    pub rows_vanished: i64,
    /// Rows the run planned to send (inserts, updates, upserts, deletes).
    pub planned: i64,
    pub sent: i64,
    pub succeeded: i64,
    pub failed: i64,
    /// Rows of an interrupted run whose outcome this run found out (inserts in flight).
    pub recovered: i64,
    pub api_calls: i64,
    pub snapshot_version: Option<i64>,
    /// Why the run did not complete (never record values).
    pub message: Option<String>,
}

impl PushRunRecord {
    fn schema() -> SchemaRef {
        let ts = timestamp_type;
        let int = |name: &str| Field::new(name, DataType::Int64, false);
        Arc::new(Schema::new(vec![
            Field::new("flow", DataType::Utf8, false),
            int("run"),
            Field::new("attempt", DataType::Utf8, false),
            Field::new("object", DataType::Utf8, false),
            Field::new("mode", DataType::Utf8, false),
            Field::new("started_at", ts(), false),
            Field::new("finished_at", ts(), false),
            Field::new("status", DataType::Utf8, false),
            Field::new("api", DataType::Utf8, false),
            int("rows_new"),
            int("rows_changed"),
            int("rows_unchanged"),
            int("rows_vanished"),
            int("planned"),
            int("sent"),
            int("succeeded"),
            int("failed"),
            int("recovered"),
            int("api_calls"),
            Field::new("snapshot_version", DataType::Int64, true),
            Field::new("message", DataType::Utf8, true),
        ]))
    }
}

/// The run records of every flow.
pub struct RunLog {
    ledger: Ledger,
    table: &'static str,
}

impl RunLog {
    pub fn new(lake: &LakeLocation) -> RunLog {
        RunLog::at(lake, RUNS_TABLE)
    }

    /// The run log at `_tidemark/<table>` (restores keep theirs in `restore_runs`).
    pub fn at(lake: &LakeLocation, table: &'static str) -> RunLog {
        RunLog { ledger: Ledger::new(lake.clone()), table }
    }

    pub async fn record(&self, record: &PushRunRecord) -> Result<()> {
        Ok(self.ledger.append_rows(self.table, PushRunRecord::schema(), std::slice::from_ref(record)).await?)
    }

    /// Runs, oldest first; of one flow when `flow` is given.
    pub async fn runs(&self, flow: Option<&str>) -> Result<Vec<PushRunRecord>> {
        let mut runs: Vec<PushRunRecord> = self.ledger.read_rows(self.table).await?;
        if let Some(flow) = flow {
            runs.retain(|r| r.flow.eq_ignore_ascii_case(flow));
        }
        runs.sort_by(|a, b| a.started_at.cmp(&b.started_at).then_with(|| a.flow.cmp(&b.flow)));
        Ok(runs)
    }
}
