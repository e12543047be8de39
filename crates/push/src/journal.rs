//! Inserts in flight: what a run is about to create, written to the lake before it is sent, so
//! that a run killed at any point can find out what Salesforce accepted instead of creating a
//! record twice.
//!
//! Only inserts are journaled: updates, upserts and deletes are idempotent, so a row whose
//! outcome was lost is simply sent again by the next run (its snapshot entry was never moved).
//!
//! A chunk of inserts is `<lake>/_tidemark/push/<flow>/inflight/<run>-<attempt>-<chunk>.rows.json`
//! (the rows: key, hash, fields sent) and, for a Bulk chunk, `….jobs.json` (each planned job's
//! latest Bulk job id, rewritten as soon as a job exists and before its data is uploaded). The
//! next run resolves every chunk a committed snapshot does not account for:
//!
//! - a Bulk chunk by its job ids: an `Open` job is aborted (it never processed anything), any
//!   other is waited for and its result files read (`resume_planned_job`);
//! - a Collections chunk by querying the object for the keys' values in the field the key is
//!   sent to (inserts go through Collections only when there is such a field).
//!
//! Accepted rows enter the snapshot with their new Ids; the rest are sent again.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use tidemark_lake::deltalake::logstore::object_store::{ObjectStoreExt as _, PutPayload};
use tidemark_lake::deltalake::{ObjectStore, Path};
use tidemark_lake::{LakeError, LakeLocation};
use tidemark_salesforce::SalesforceClient;
use tidemark_salesforce::ingest_plan::{IngestOperation, IngestOptions, IngestPlan, IngestSpec};
use tidemark_salesforce::write::{Record, RowOutcome};

use crate::error::{PushError, Result};

/// How a chunk of inserts was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WritePath {
    Collections,
    Bulk,
    /// The SOAP API: undeletes (never journaled).
    Soap,
}

impl WritePath {
    pub fn label(self) -> &'static str {
        match self {
            WritePath::Collections => "collections",
            WritePath::Bulk => "bulk",
            WritePath::Soap => "soap",
        }
    }
}

/// One row of a chunk: its key (JSON text), the hash of its values (hex) and the fields sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JournalRow {
    pub key: String,
    pub hash: String,
    pub record: Record,
}

/// A chunk of inserts about to be sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InsertChunk {
    pub run: i64,
    pub attempt: String,
    pub chunk: u64,
    pub object: String,
    pub path: WritePath,
    /// The field each row's key is sent to (Collections inserts: found again by it).
    pub lookup_field: Option<String>,
    /// The Bulk plan's options, so the same plan is rebuilt for resuming its jobs.
    pub max_upload_bytes: usize,
    pub rows: Vec<JournalRow>,
}

impl InsertChunk {
    /// The file stem naming the chunk.
    pub fn name(&self) -> String {
        format!("{:012}-{}-{:06}", self.run, self.attempt, self.chunk)
    }

    /// The Bulk plan of the chunk (the same for the same rows and options).
    pub fn plan(&self) -> std::result::Result<IngestPlan, tidemark_salesforce::SalesforceError> {
        let spec = IngestSpec { object: self.object.clone(), operation: IngestOperation::Insert };
        let options = IngestOptions {
            max_upload_bytes: self.max_upload_bytes,
            row_key_field: self.lookup_field.clone(),
            ..IngestOptions::default()
        };
        let records: Vec<Record> = self.rows.iter().map(|r| r.record.clone()).collect();
        IngestPlan::new(spec, &records, options)
    }
}

/// A flow's journal of inserts in flight.
pub struct Journal {
    store: Arc<dyn ObjectStore>,
    location: String,
    folder: String,
}

impl Journal {
    pub fn new(lake: &LakeLocation, flow: &str) -> Result<Journal> {
        Journal::at(lake, &format!("push/{}/inflight", flow.to_ascii_lowercase()))
    }

    /// The journal in `_tidemark/<folder>` (restores keep theirs under `restore/`).
    pub fn at(lake: &LakeLocation, folder: &str) -> Result<Journal> {
        Ok(Journal { store: lake.object_store()?, location: lake.root().to_string(), folder: format!("_tidemark/{folder}") })
    }

    fn path(&self, name: &str, kind: &str) -> Path {
        Path::from(format!("{}/{name}.{kind}.json", self.folder))
    }

    fn store_error(&self, e: tidemark_lake::deltalake::ObjectStoreError) -> PushError {
        LakeError::store(&self.location, e).into()
    }

    /// Records a chunk before any of it is sent.
    pub async fn write(&self, chunk: &InsertChunk) -> Result<()> {
        let bytes = serde_json::to_vec(chunk).expect("a chunk serialises");
        self.store.put(&self.path(&chunk.name(), "rows"), PutPayload::from(bytes)).await.map_err(|e| self.store_error(e))?;
        Ok(())
    }

    /// Records a Bulk chunk's job ids (planned job index → latest job id), before each upload.
    pub async fn write_jobs(&self, name: &str, jobs: &BTreeMap<usize, String>) -> Result<()> {
        let bytes = serde_json::to_vec(jobs).expect("job ids serialise");
        self.store.put(&self.path(name, "jobs"), PutPayload::from(bytes)).await.map_err(|e| self.store_error(e))?;
        Ok(())
    }

    /// Every chunk in the journal, oldest first, with its recorded job ids.
    pub async fn chunks(&self) -> Result<Vec<(InsertChunk, BTreeMap<usize, String>)>> {
        let prefix = Path::from(self.folder.as_str());
        let mut names: Vec<String> = self
            .store
            .list(Some(&prefix))
            .map_ok(|meta| meta.location.filename().unwrap_or_default().to_owned())
            .try_collect::<Vec<_>>()
            .await
            .map_err(|e| self.store_error(e))?
            .into_iter()
            .filter_map(|f| f.strip_suffix(".rows.json").map(str::to_owned))
            .collect();
        names.sort();
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let Some(chunk) = self.read::<InsertChunk>(&name, "rows").await? else { continue };
            let jobs = self.read::<BTreeMap<usize, String>>(&name, "jobs").await?.unwrap_or_default();
            out.push((chunk, jobs));
        }
        Ok(out)
    }

    async fn read<T: serde::de::DeserializeOwned>(&self, name: &str, kind: &str) -> Result<Option<T>> {
        let bytes = match self.store.get(&self.path(name, kind)).await {
            Ok(got) => got.bytes().await.map_err(|e| self.store_error(e))?,
            Err(tidemark_lake::deltalake::ObjectStoreError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.store_error(e)),
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            LakeError::Layout { table: format!("{}/{name}.{kind}.json", self.folder), detail: format!("unreadable: {e}") }.into()
        })
    }

    /// Forgets a chunk whose outcomes a committed snapshot holds.
    pub async fn remove(&self, name: &str) -> Result<()> {
        for kind in ["jobs", "rows"] {
            match self.store.delete(&self.path(name, kind)).await {
                Ok(()) | Err(tidemark_lake::deltalake::ObjectStoreError::NotFound { .. }) => {}
                Err(e) => return Err(self.store_error(e)),
            }
        }
        Ok(())
    }
}

/// What Salesforce did with each row of a chunk found in the journal (see the module docs).
pub async fn resolve(client: &SalesforceClient, chunk: &InsertChunk, jobs: &BTreeMap<usize, String>) -> Result<Vec<RowOutcome>> {
    let mut outcomes = vec![RowOutcome::NotProcessed; chunk.rows.len()];
    match chunk.path {
        WritePath::Bulk => {
            let plan = chunk.plan()?;
            for job in plan.jobs() {
                let Some(job_id) = jobs.get(&job.index) else { continue };
                if let Some(done) = client.resume_planned_job(&plan, job, job_id).await? {
                    for (row, outcome) in done.outcomes {
                        outcomes[row] = outcome;
                    }
                }
            }
        }
        // Undeletes are not journaled: an undelete is found out again by reading the record.
        WritePath::Soap => {}
        WritePath::Collections => {
            let Some(field) = &chunk.lookup_field else { return Ok(outcomes) };
            let found = lookup(client, &chunk.object, field, chunk.rows.iter().map(|r| r.record.get(field))).await?;
            for (row, outcome) in chunk.rows.iter().zip(outcomes.iter_mut()) {
                if let Some(id) = row.record.get(field).and_then(|v| found.get(&lookup_text(v))) {
                    *outcome = RowOutcome::Success { id: id.clone(), created: true };
                }
            }
        }
    }
    Ok(outcomes)
}

fn lookup_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The Ids of `object`'s records by their value in `field`, for the given values.
pub async fn lookup<'a>(
    client: &SalesforceClient,
    object: &str,
    field: &str,
    values: impl Iterator<Item = Option<&'a serde_json::Value>>,
) -> Result<std::collections::HashMap<String, String>> {
    let texts: Vec<String> = values.flatten().filter(|v| !v.is_null()).map(lookup_text).collect();
    let mut found = std::collections::HashMap::new();
    for group in texts.chunks(100) {
        let list: Vec<String> = group.iter().map(|v| soql_literal(v)).collect();
        let soql = format!("SELECT Id, {field} FROM {object} WHERE {field} IN ({})", list.join(", "));
        let mut pages = client.query(&soql, false);
        while let Some(page) = pages.next_page().await? {
            for record in page.records {
                let id = record.get("Id").and_then(|v| v.as_str()).map(str::to_owned);
                let value = record.get(field).map(lookup_text);
                if let (Some(id), Some(value)) = (id, value) {
                    found.insert(value, id);
                }
            }
        }
    }
    Ok(found)
}

/// A SOQL string literal: quotes and backslashes escaped.
pub fn soql_literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}
