//! `_tidemark/source_files`: which change files a source has read, in the lake.
//!
//! A file is **claimed** (given its ordinal, the high bits of the positions its versions are
//! committed at) before it is read, and **done** once the lake acknowledged its last position.
//! A crash between the two leaves the file claimed: the next run reads it again under the same
//! ordinal, and the lake's per-table positions skip what already landed. Ordinals are never
//! reused, so a file that arrives late (sorting before files already read) is simply read next.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tidemark_lake::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use tidemark_lake::{LakeLocation, Ledger};

use crate::error::CdcError;
use crate::segments::file_end;

const TABLE: &str = "source_files";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileRecord {
    pub source: String,
    pub path: String,
    pub size: i64,
    pub ordinal: i64,
    /// `claimed` or `done`.
    pub state: String,
    pub at: DateTime<Utc>,
}

impl FileRecord {
    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("source", DataType::Utf8, false),
            Field::new("path", DataType::Utf8, false),
            Field::new("size", DataType::Int64, false),
            Field::new("ordinal", DataType::Int64, false),
            Field::new("state", DataType::Utf8, false),
            Field::new("at", tidemark_lake::columns::timestamp_type(), false),
        ]))
    }
}

/// A claimed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub path: String,
    pub size: u64,
    pub ordinal: i64,
    pub done: bool,
}

/// One source's claims.
pub struct Claims {
    ledger: Ledger,
    source: String,
    /// By path.
    pub files: BTreeMap<String, Claim>,
}

impl Claims {
    pub async fn load(lake: &LakeLocation, source: &str) -> Result<Claims, CdcError> {
        let ledger = Ledger::new(lake.clone());
        let records: Vec<FileRecord> = ledger.read_rows(TABLE).await?;
        let mut files: BTreeMap<String, Claim> = BTreeMap::new();
        for r in records.into_iter().filter(|r| r.source == source) {
            let claim = files.entry(r.path.clone()).or_insert(Claim {
                path: r.path.clone(),
                size: r.size as u64,
                ordinal: r.ordinal,
                done: false,
            });
            claim.done |= r.state == "done";
        }
        Ok(Claims { ledger, source: source.to_owned(), files })
    }

    pub fn next_ordinal(&self) -> i64 {
        self.files.values().map(|c| c.ordinal).max().unwrap_or(0) + 1
    }

    /// Claims `files` (path, size), in order, with the next ordinals, in one commit.
    pub async fn claim(&mut self, files: &[(String, u64)], at: DateTime<Utc>) -> Result<Vec<Claim>, CdcError> {
        let first = self.next_ordinal();
        let claims: Vec<Claim> = files
            .iter()
            .enumerate()
            .map(|(i, (path, size))| Claim { path: path.clone(), size: *size, ordinal: first + i as i64, done: false })
            .collect();
        let records: Vec<FileRecord> = claims.iter().map(|c| self.record(c, "claimed", at)).collect();
        self.ledger.append_rows(TABLE, FileRecord::schema(), &records).await?;
        for c in &claims {
            self.files.insert(c.path.clone(), c.clone());
        }
        Ok(claims)
    }

    /// Marks done every claimed file whose last position is at or before `position`.
    pub async fn acknowledge(&mut self, position: i64, at: DateTime<Utc>) -> Result<usize, CdcError> {
        let newly: Vec<Claim> = self.files.values().filter(|c| !c.done && file_end(c.ordinal) <= position).cloned().collect();
        let records: Vec<FileRecord> = newly.iter().map(|c| self.record(c, "done", at)).collect();
        self.ledger.append_rows(TABLE, FileRecord::schema(), &records).await?;
        for c in &newly {
            if let Some(claim) = self.files.get_mut(&c.path) {
                claim.done = true;
            }
        }
        Ok(newly.len())
    }

    fn record(&self, c: &Claim, state: &str, at: DateTime<Utc>) -> FileRecord {
        FileRecord {
            source: self.source.clone(),
            path: c.path.clone(),
            size: c.size as i64,
            ordinal: c.ordinal,
            state: state.to_owned(),
            at,
        }
    }
}

/// Every file record of `source` (for status listings), in ordinal order.
pub async fn file_records(lake: &LakeLocation, source: &str) -> Result<Vec<Claim>, CdcError> {
    let mut claims: Vec<Claim> = Claims::load(lake, source).await?.files.into_values().collect();
    claims.sort_by_key(|c| c.ordinal);
    Ok(claims)
}
