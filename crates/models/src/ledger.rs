//! `_tidemark/model_loads`: one row per committed load of a model: its run date, the files it
//! consumed, the highest surrogate key issued and what it did. The dimension commit carries the
//! same record in its commit info, so a crash between the two is repaired on the next run.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use tidemark_lake::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use tidemark_lake::{LakeLocation, Ledger};

use crate::error::Result;
use crate::files::LandedFile;
use crate::merge::MergeCounts;

const TABLE: &str = "model_loads";
/// Commit-info key of the record in the dimension's commit.
pub const COMMIT_KEY: &str = "tidemark.model.load";

/// A file one load consumed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumedFile {
    pub source: String,
    #[serde(flatten)]
    pub file: LandedFile,
    /// Skipped because a newer full extract arrived in the same load.
    #[serde(default)]
    pub superseded: bool,
}

/// One committed load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadRecord {
    pub model: String,
    pub load: i64,
    pub run_date: NaiveDate,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub table_version: i64,
    /// Every surrogate key issued so far is at most this (never reused).
    pub max_surrogate_key: i64,
    pub rows_read: i64,
    /// JSON list of [`ConsumedFile`].
    pub files: String,
    /// JSON of [`MergeCounts`].
    pub counts: String,
    /// JSON map of lake sources to the Delta version read (source-time models).
    pub source_versions: String,
}

impl LoadRecord {
    fn schema() -> SchemaRef {
        let ts = tidemark_lake::columns::timestamp_type;
        Arc::new(Schema::new(vec![
            Field::new("model", DataType::Utf8, false),
            Field::new("load", DataType::Int64, false),
            Field::new("run_date", DataType::Date32, false),
            Field::new("started_at", ts(), false),
            Field::new("finished_at", ts(), false),
            Field::new("table_version", DataType::Int64, false),
            Field::new("max_surrogate_key", DataType::Int64, false),
            Field::new("rows_read", DataType::Int64, false),
            Field::new("files", DataType::Utf8, false),
            Field::new("counts", DataType::Utf8, false),
            Field::new("source_versions", DataType::Utf8, false),
        ]))
    }

    pub fn consumed(&self) -> Vec<ConsumedFile> {
        serde_json::from_str(&self.files).unwrap_or_default()
    }

    pub fn source_versions(&self) -> crate::timeline::SourceVersions {
        serde_json::from_str(&self.source_versions).unwrap_or_default()
    }

    pub fn merge_counts(&self) -> MergeCounts {
        serde_json::from_str(&self.counts).unwrap_or_default()
    }
}

/// The load records of every model.
pub struct LoadLedger {
    ledger: Ledger,
}

impl LoadLedger {
    pub fn new(lake: LakeLocation) -> LoadLedger {
        LoadLedger { ledger: Ledger::new(lake) }
    }

    pub async fn record(&self, record: &LoadRecord) -> Result<()> {
        Ok(self.ledger.append_rows(TABLE, LoadRecord::schema(), std::slice::from_ref(record)).await?)
    }

    /// A model's loads, oldest first (one record per load even if a repair wrote it twice).
    pub async fn loads(&self, model: &str) -> Result<Vec<LoadRecord>> {
        let mut all: Vec<LoadRecord> = self.ledger.read_rows(TABLE).await?;
        all.retain(|r| r.model == model);
        all.sort_by_key(|r| r.load);
        all.dedup_by_key(|r| r.load);
        Ok(all)
    }
}
