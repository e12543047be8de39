//! Tidemark's own small Delta tables inside the lake: the sync-run ledger (where bookmarks
//! live, so any machine that can read the lake can resume) and the schema-event log.
//!
//! Rows are plain serde structs; they cross into Arrow through arrow-json, which keeps these
//! tables' definitions in one place (the struct and its Arrow schema side by side).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use deltalake::arrow::array::RecordBatch;
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use deltalake::arrow::json::{ArrayWriter, ReaderBuilder};
use deltalake::datafusion::prelude::SessionContext;
use deltalake::protocol::SaveMode;
use serde::{Deserialize, Serialize};

use crate::columns::timestamp_type;
use crate::error::{LakeError, Result};
use crate::history::{create_table, open_table};
use crate::location::LakeLocation;

/// A new run's id: its start (UTC, to the second) and a random suffix, so ids sort by time and
/// two runs started in the same second differ.
pub fn new_run_id(now: DateTime<Utc>) -> String {
    format!("{}-{}", now.format("%Y%m%dT%H%M%SZ"), &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// How one object's part of a sync run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Every version up to the bookmark is in the lake.
    Complete,
    /// Stopped early (API budget, interruption); the next run resumes. Versions written before
    /// the stop are in the lake; the bookmark did not move.
    Incomplete,
    /// Stopped by an error.
    Failed,
}

/// One object's part of one sync run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncRunRecord {
    pub run_id: String,
    pub object: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub status: RunStatus,
    /// `initial`, `incremental` or `full`.
    pub mode: String,
    /// `bulk` or `rest`.
    pub api: String,
    /// Highest `_version_at` of queried versions, once the run completed: the next run reads
    /// from here (minus the overlap window).
    pub bookmark: Option<DateTime<Utc>>,
    /// The timestamp field the bookmark is on (`SystemModstamp`, …; empty for snapshot-diff).
    pub bookmark_field: String,
    pub rows_read: i64,
    pub versions_written: i64,
    pub deletes: i64,
    pub hard_deletes: i64,
    pub snapshot_versions: i64,
    /// Set when this run reconciled Ids (hard-delete detection).
    pub reconciled_at: Option<DateTime<Utc>>,
    /// Set when this run re-read formula fields (their schedule runs from here).
    pub formula_snapshot_at: Option<DateTime<Utc>>,
    pub api_calls: i64,
    /// Why the run did not complete (never record values).
    pub message: Option<String>,
}

impl SyncRunRecord {
    fn schema() -> SchemaRef {
        let ts = timestamp_type;
        Arc::new(Schema::new(vec![
            Field::new("run_id", DataType::Utf8, false),
            Field::new("object", DataType::Utf8, false),
            Field::new("started_at", ts(), false),
            Field::new("finished_at", ts(), false),
            Field::new("status", DataType::Utf8, false),
            Field::new("mode", DataType::Utf8, false),
            Field::new("api", DataType::Utf8, false),
            Field::new("bookmark", ts(), true),
            Field::new("bookmark_field", DataType::Utf8, false),
            Field::new("rows_read", DataType::Int64, false),
            Field::new("versions_written", DataType::Int64, false),
            Field::new("deletes", DataType::Int64, false),
            Field::new("hard_deletes", DataType::Int64, false),
            Field::new("snapshot_versions", DataType::Int64, false),
            Field::new("reconciled_at", ts(), true),
            Field::new("formula_snapshot_at", ts(), true),
            Field::new("api_calls", DataType::Int64, false),
            Field::new("message", DataType::Utf8, true),
        ]))
    }
}

/// A schema change Tidemark applied to a history table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchemaEvent {
    pub at: DateTime<Utc>,
    pub run_id: String,
    pub object: String,
    /// `table_created`, `field_added`, `type_changed`, `field_removed`, `field_restored`.
    pub kind: String,
    pub field: String,
    /// The column the field's values go to from now on (for `field_removed`, the column that
    /// stops receiving values).
    pub column: String,
    pub detail: String,
}

impl SchemaEvent {
    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("at", timestamp_type(), false),
            Field::new("run_id", DataType::Utf8, false),
            Field::new("object", DataType::Utf8, false),
            Field::new("kind", DataType::Utf8, false),
            Field::new("field", DataType::Utf8, false),
            Field::new("column", DataType::Utf8, false),
            Field::new("detail", DataType::Utf8, false),
        ]))
    }
}

const SYNC_RUNS: &str = "sync_runs";
const SCHEMA_EVENTS: &str = "schema_events";

/// Appends to and reads Tidemark's own tables.
///
/// Appends from one process are serialised (objects finish concurrently); appends racing with
/// another process are retried on a commit conflict.
#[derive(Debug, Clone)]
pub struct Ledger {
    location: LakeLocation,
    writes: std::sync::Arc<tokio::sync::Mutex<()>>,
}

/// Attempts for one ledger append when other writers keep winning the commit race.
const APPEND_ATTEMPTS: u32 = 5;

impl Ledger {
    pub fn new(location: LakeLocation) -> Ledger {
        Ledger { location, writes: Default::default() }
    }

    pub async fn record_run(&self, record: &SyncRunRecord) -> Result<()> {
        self.append_rows(SYNC_RUNS, SyncRunRecord::schema(), std::slice::from_ref(record)).await
    }

    /// Several run records in one commit.
    pub async fn record_runs(&self, records: &[SyncRunRecord]) -> Result<()> {
        self.append_rows(SYNC_RUNS, SyncRunRecord::schema(), records).await
    }

    pub async fn record_schema_events(&self, events: &[SchemaEvent]) -> Result<()> {
        self.append_rows(SCHEMA_EVENTS, SchemaEvent::schema(), events).await
    }

    /// Every run record, oldest first.
    pub async fn runs(&self) -> Result<Vec<SyncRunRecord>> {
        let mut runs: Vec<SyncRunRecord> = self.read_rows(SYNC_RUNS).await?;
        runs.sort_by(|a, b| a.finished_at.cmp(&b.finished_at).then_with(|| a.object.cmp(&b.object)));
        Ok(runs)
    }

    /// Every schema event, oldest first.
    pub async fn schema_events(&self) -> Result<Vec<SchemaEvent>> {
        let mut events: Vec<SchemaEvent> = self.read_rows(SCHEMA_EVENTS).await?;
        events.sort_by(|a, b| a.at.cmp(&b.at));
        Ok(events)
    }

    /// Appends serde rows to the internal table `_tidemark/<name>` (created with `schema` on
    /// first use). Other Tidemark capabilities keep their records here the same way.
    pub async fn append_rows<T: Serialize>(&self, name: &str, schema: SchemaRef, rows: &[T]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        self.write_rows(name, schema, rows, SaveMode::Append).await
    }

    /// Replaces every row of the internal table `_tidemark/<name>` with `rows`, in one commit
    /// (for small tables a capability rewrites whole, such as a push flow's error table).
    pub async fn replace_rows<T: Serialize>(&self, name: &str, schema: SchemaRef, rows: &[T]) -> Result<()> {
        self.write_rows(name, schema, rows, SaveMode::Overwrite).await
    }

    async fn write_rows<T: Serialize>(&self, name: &str, schema: SchemaRef, rows: &[T], mode: SaveMode) -> Result<()> {
        let mut decoder = ReaderBuilder::new(schema.clone()).build_decoder()?;
        decoder.serialize(rows)?;
        let batch: RecordBatch = decoder.flush()?.unwrap_or_else(|| RecordBatch::new_empty(schema.clone()));
        let url = self.location.internal_table_url(name);
        let _serialised = self.writes.lock().await;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let table = match open_table(&self.location, url.clone()).await? {
                Some(t) => t,
                None => create_table(&self.location, url.clone(), name, &schema, &[]).await?,
            };
            match table.write(vec![batch.clone()]).with_save_mode(mode).await {
                Ok(_) => return Ok(()),
                Err(e) => {
                    let e = LakeError::delta(name, e);
                    if attempt >= APPEND_ATTEMPTS || !e.is_retryable() {
                        return Err(e);
                    }
                    tracing::debug!(table = name, attempt, error = %e, "ledger append raced another writer; retrying");
                }
            }
        }
    }

    /// Every row of the internal table `_tidemark/<name>`, unordered; none when it does not exist.
    pub async fn read_rows<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<Vec<T>> {
        let Some(table) = open_table(&self.location, self.location.internal_table_url(name)).await? else {
            return Ok(Vec::new());
        };
        let ctx = SessionContext::new();
        table.update_datafusion_session(&ctx.state()).map_err(|e| LakeError::delta(name, e))?;
        let provider = table.table_provider().await.map_err(|e| LakeError::query(name, e))?;
        let batches = ctx
            .read_table(provider)
            .map_err(|e| LakeError::query(name, e))?
            .collect()
            .await
            .map_err(|e| LakeError::query(name, e))?;
        let mut writer = ArrayWriter::new(Vec::new());
        for b in &batches {
            writer.write(b)?;
        }
        writer.finish()?;
        let json = writer.into_inner();
        if json.is_empty() {
            return Ok(Vec::new());
        }
        serde_json::from_slice(&json).map_err(|e| LakeError::Layout { table: name.to_owned(), detail: e.to_string() })
    }
}
