//! Sending rows of one operation to Salesforce through sObject Collections or a Bulk API 2.0
//! ingest job, with inserts journaled first (see [`crate::journal`]).
//!
//! Retries are the client's: each request goes through its retry executor (5xx, concurrent
//! request limits, dropped connections), Collections re-send rows refused with
//! `UNABLE_TO_LOCK_ROW`, a Bulk upload whose answer was lost moves to a fresh job. What comes
//! back is one [`RowOutcome`] per row; a failure of a whole request (the API budget, auth, the
//! org's limits) ends the sending with [`Sent::stop`], the outcomes known so far kept.

use std::collections::{BTreeMap, BTreeSet};

use tidemark_salesforce::ingest_plan::{IngestOperation, IngestOptions, IngestPlan, IngestSpec};
use tidemark_salesforce::write::{Record, RowOutcome};
use tidemark_salesforce::{SalesforceClient, SalesforceError};

use crate::error::Result;
use crate::journal::{InsertChunk, Journal, JournalRow, WritePath, resolve};

/// What one row does to its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    Insert,
    Upsert,
    Update,
    Delete,
    /// Restores only: a record back from the recycle bin (SOAP `undelete()`).
    Undelete,
}

impl Operation {
    pub const ALL: [Operation; 5] =
        [Operation::Insert, Operation::Upsert, Operation::Update, Operation::Delete, Operation::Undelete];

    pub fn label(self) -> &'static str {
        match self {
            Operation::Insert => "insert",
            Operation::Upsert => "upsert",
            Operation::Update => "update",
            Operation::Delete => "delete",
            Operation::Undelete => "undelete",
        }
    }
}

/// One row to send: its key (JSON text), the hash of its values and the fields (`Id` alone for
/// a delete).
#[derive(Debug, Clone)]
pub struct OutRow {
    pub key: String,
    pub hash: Vec<u8>,
    pub record: Record,
}

/// The outcome of sending one group of rows.
#[derive(Debug)]
pub struct Sent {
    /// One per row, in order.
    pub outcomes: Vec<RowOutcome>,
    /// A whole-request failure: nothing more should be sent this run.
    pub stop: Option<SalesforceError>,
    /// A journaled chunk of inserts whose outcome is known: forget it once the snapshot holds it.
    pub settled_chunk: Option<String>,
    /// The same, for rows sent as several chunks.
    pub settled_chunks: Vec<String>,
    /// A journaled chunk still in flight (its outcome could not be read): the next run resolves
    /// it before sending anything.
    pub unresolved_chunk: Option<String>,
}

/// Sends rows of one object for one run.
pub struct Sender<'a> {
    pub client: &'a SalesforceClient,
    pub journal: &'a Journal,
    pub object: String,
    /// Upsert's external id field.
    pub external_id: Option<String>,
    /// Inserts: the field each row's key is sent to, when it finds a record again (an external
    /// id or unique field). Without one, inserts always go through Bulk jobs.
    pub lookup_field: Option<String>,
    pub run: i64,
    pub attempt: String,
    pub max_upload_bytes: usize,
    /// Rows per Bulk job.
    pub bulk_job_rows: usize,
    next_chunk: u64,
    /// Every Bulk job created.
    pub jobs: Vec<String>,
    /// The APIs used (`collections`, `bulk`).
    pub paths: BTreeSet<&'static str>,
}

impl<'a> Sender<'a> {
    pub fn new(client: &'a SalesforceClient, journal: &'a Journal, object: &str, run: i64, attempt: &str) -> Sender<'a> {
        Sender {
            client,
            journal,
            object: object.to_owned(),
            external_id: None,
            lookup_field: None,
            run,
            attempt: attempt.to_owned(),
            max_upload_bytes: tidemark_salesforce::ingest_plan::MAX_JOB_UPLOAD_BYTES,
            bulk_job_rows: 50_000,
            next_chunk: 0,
            jobs: Vec::new(),
            paths: BTreeSet::new(),
        }
    }

    /// The APIs used so far: `collections`, `bulk`, `soap`, joined by `+`; `none`.
    pub fn api(&self) -> String {
        if self.paths.is_empty() { "none".to_owned() } else { self.paths.iter().copied().collect::<Vec<_>>().join("+") }
    }

    /// The path rows of `operation` take when the run chose `path`: inserts go through Bulk
    /// (whose job ids make them recoverable) unless a lookup field lets a re-run find them.
    pub fn path_for(&self, operation: Operation, path: WritePath) -> WritePath {
        match operation {
            Operation::Insert if self.lookup_field.is_none() => WritePath::Bulk,
            // Neither sObject Collections nor Bulk ingest can undelete: SOAP it is.
            Operation::Undelete => WritePath::Soap,
            _ => path,
        }
    }

    /// Sends `rows` as `operation` through `path` (see [`Sender::path_for`]); through Bulk, in
    /// jobs of at most `bulk_job_rows` rows, one after the other (stopping at a whole-request
    /// failure: later rows are not processed).
    pub async fn send(&mut self, operation: Operation, path: WritePath, rows: &[OutRow]) -> Result<Sent> {
        let path = self.path_for(operation, path);
        if path == WritePath::Bulk && rows.len() > self.bulk_job_rows {
            let mut all = Sent {
                outcomes: Vec::with_capacity(rows.len()),
                stop: None,
                settled_chunk: None,
                settled_chunks: Vec::new(),
                unresolved_chunk: None,
            };
            let mut settled = Vec::new();
            for part in rows.chunks(self.bulk_job_rows) {
                if all.stop.is_some() {
                    all.outcomes.extend(std::iter::repeat_n(RowOutcome::NotProcessed, part.len()));
                    continue;
                }
                let sent = Box::pin(self.send(operation, path, part)).await?;
                all.outcomes.extend(sent.outcomes);
                all.stop = sent.stop;
                settled.extend(sent.settled_chunk);
                if sent.unresolved_chunk.is_some() {
                    all.unresolved_chunk = sent.unresolved_chunk;
                }
            }
            all.settled_chunks = settled;
            return Ok(all);
        }
        self.paths.insert(path.label());
        tracing::info!(object = %self.object, operation = operation.label(), rows = rows.len(), api = path.label(), "sending");
        if operation == Operation::Insert {
            return self.send_inserts(path, rows).await;
        }
        let records: Vec<Record> = rows.iter().map(|r| r.record.clone()).collect();
        let mut sent =
            Sent { outcomes: Vec::new(), stop: None, settled_chunk: None, settled_chunks: Vec::new(), unresolved_chunk: None };
        let result = match path {
            WritePath::Soap => {
                let ids: Vec<&str> = records.iter().map(record_id).collect();
                self.client.undelete(&ids).await
            }
            WritePath::Collections => match operation {
                Operation::Update => self.client.collections_update(&self.object, &records).await,
                Operation::Upsert => {
                    let field = self.external_id.as_deref().expect("upsert has an external id");
                    self.client.collections_upsert(&self.object, field, &records).await
                }
                _ => {
                    let ids: Vec<&str> = records.iter().map(record_id).collect();
                    self.client.collections_delete(&ids).await
                }
            },
            WritePath::Bulk => {
                let plan = match operation {
                    Operation::Delete => {
                        let ids: Vec<&str> = records.iter().map(record_id).collect();
                        IngestPlan::delete(&self.object, &ids, self.options(None))?
                    }
                    Operation::Upsert => {
                        let external_id_field = self.external_id.clone().expect("upsert has an external id");
                        let spec =
                            IngestSpec { object: self.object.clone(), operation: IngestOperation::Upsert { external_id_field } };
                        IngestPlan::new(spec, &records, self.options(None))?
                    }
                    _ => {
                        let spec = IngestSpec { object: self.object.clone(), operation: IngestOperation::Update };
                        IngestPlan::new(spec, &records, self.options(None))?
                    }
                };
                let jobs = &mut self.jobs;
                let report = self
                    .client
                    .bulk_ingest(&plan, |_, info| {
                        jobs.push(info.id.clone());
                        async { Ok::<(), SalesforceError>(()) }
                    })
                    .await;
                match report {
                    Ok(report) => Ok(report.outcomes),
                    Err(error) => Err(tidemark_salesforce::write::WriteError {
                        error,
                        outcomes: vec![RowOutcome::NotProcessed; records.len()],
                    }),
                }
            }
        };
        match result {
            Ok(outcomes) => sent.outcomes = outcomes,
            Err(e) => {
                // Not inserts: a row whose answer was lost is sent again next run, harmlessly.
                sent.outcomes =
                    e.outcomes.into_iter().map(|o| if o == RowOutcome::Unknown { RowOutcome::NotProcessed } else { o }).collect();
                sent.stop = Some(e.error);
            }
        }
        Ok(sent)
    }

    fn options(&self, row_key_field: Option<String>) -> IngestOptions {
        IngestOptions { max_upload_bytes: self.max_upload_bytes, row_key_field, ..IngestOptions::default() }
    }

    /// Inserts: journaled before anything is sent; outcomes lost on the way are found again
    /// through the journal (Bulk job results, or the lookup field) before this returns.
    async fn send_inserts(&mut self, path: WritePath, rows: &[OutRow]) -> Result<Sent> {
        let chunk = InsertChunk {
            run: self.run,
            attempt: self.attempt.clone(),
            chunk: self.next_chunk,
            object: self.object.clone(),
            path,
            lookup_field: self.lookup_field.clone(),
            max_upload_bytes: self.max_upload_bytes,
            rows: rows
                .iter()
                .map(|r| JournalRow { key: r.key.clone(), hash: hex::encode(&r.hash), record: r.record.clone() })
                .collect(),
        };
        self.next_chunk += 1;
        let name = chunk.name();
        self.journal.write(&chunk).await?;
        let mut jobs = BTreeMap::new();
        let result = match path {
            // `path_for` sends no insert through SOAP.
            WritePath::Collections | WritePath::Soap => {
                let records: Vec<Record> = rows.iter().map(|r| r.record.clone()).collect();
                self.client.collections_create(&self.object, &records).await
            }
            WritePath::Bulk => {
                let plan = chunk.plan()?;
                let journal = self.journal;
                let (name, created) = (&name, &mut self.jobs);
                let jobs = &mut jobs;
                let report = self
                    .client
                    .bulk_ingest(&plan, |job, info| {
                        jobs.insert(job.index, info.id.clone());
                        created.push(info.id.clone());
                        let snapshot = jobs.clone();
                        async move { journal.write_jobs(name, &snapshot).await }
                    })
                    .await;
                match report {
                    Ok(report) => Ok(report.outcomes),
                    Err(e) => {
                        let error = match e {
                            crate::error::PushError::Salesforce(error) => error,
                            other => return Err(other),
                        };
                        Err(tidemark_salesforce::write::WriteError { error, outcomes: vec![RowOutcome::Unknown; rows.len()] })
                    }
                }
            }
        };
        let mut sent =
            Sent { outcomes: Vec::new(), stop: None, settled_chunk: None, settled_chunks: Vec::new(), unresolved_chunk: None };
        match result {
            Ok(outcomes) => {
                sent.outcomes = outcomes;
                sent.settled_chunk = Some(name);
            }
            Err(e) => {
                sent.stop = Some(e.error);
                sent.outcomes = e.outcomes;
                if sent.outcomes.contains(&RowOutcome::Unknown) {
                    // Find out now where that is cheap; otherwise the next run does, first.
                    match resolve(self.client, &chunk, &jobs).await {
                        Ok(found) => {
                            for (outcome, resolved) in sent.outcomes.iter_mut().zip(found) {
                                if *outcome == RowOutcome::Unknown {
                                    *outcome = resolved;
                                }
                            }
                            sent.settled_chunk = Some(name);
                        }
                        Err(error) => {
                            tracing::warn!(chunk = %name, error = %error, "inserts in flight could not be resolved now; the next run resolves them first");
                            // Not delivered for this run's snapshot: the next run resolves the
                            // chunk before it plans, and only the rows Salesforce did not take
                            // are sent again.
                            for outcome in sent.outcomes.iter_mut().filter(|o| **o == RowOutcome::Unknown) {
                                *outcome = RowOutcome::NotProcessed;
                            }
                            sent.unresolved_chunk = Some(name);
                        }
                    }
                } else {
                    sent.settled_chunk = Some(name);
                }
            }
        }
        Ok(sent)
    }
}

fn record_id(record: &Record) -> &str {
    record.get("Id").and_then(|v| v.as_str()).unwrap_or_default()
}
