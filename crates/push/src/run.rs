//! One run of a push flow: [`PushRun`] → [`PushMetrics`].
//!
//! 1. The flow's lease (`push/<flow>`): one run of a flow at a time.
//! 2. The target's describe checks the result's columns ([`crate::mapping`]).
//! 3. Inserts an interrupted run left in flight are resolved ([`crate::journal`]).
//! 4. The result is diffed against the snapshot ([`crate::diff`]); rows to send are planned
//!    ([`crate::plan`]) and sent ([`crate::send`]): through sObject Collections when the run has
//!    at most `bulk_threshold` rows to send, else through Bulk API 2.0 jobs of at most
//!    `bulk_job_rows` rows each.
//! 5. The rejected rows go to the error table, the new snapshot is committed (one commit, the
//!    run number as its Delta transaction), the journal is cleared and the run recorded.
//!
//! A run that stops early (the API budget, an error of a whole request) still records what it
//! delivered; the rest is sent by the next run. A crash at any point is safe to re-run: the
//! snapshot moves in one commit, and inserts in flight are found again through the journal.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tidemark_core::push::{PushConfig, PushMode};
use tidemark_core::{Clock, SystemClock};
use tidemark_lake::arrow::datatypes::{Field, Schema};
use tidemark_lake::{LakeLocation, Lease, with_lease};
use tidemark_query::{QuerySession, ReadOptions};
use tidemark_salesforce::{ErrorClass, RowOutcome, SalesforceClient, SalesforceError};

use crate::diff::{Diff, DiffCounts};
use crate::dry_run::{Sample, SampleRow};
use crate::error::{PushError, Result};
use crate::errors::{ErrorRow, ErrorTable, PushRunRecord, PushStatus, RunLog};
use crate::journal::{Journal, WritePath, resolve};
use crate::plan::{Delivery, Planner, Recovered, delivery};
use crate::send::{Operation, OutRow, Sender};
use crate::snapshot::{Snapshot, SnapshotWriter};

/// Commit-info key of the chunks of inserts a snapshot commit leaves in flight.
pub const UNRESOLVED_KEY: &str = "tidemark.push.unresolved";
/// Commit-info key of the run's summary.
pub const RUN_KEY: &str = "tidemark.push.run";

/// Rows per operation a run planned.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct OperationCounts {
    pub insert: u64,
    pub upsert: u64,
    pub update: u64,
    pub delete: u64,
    pub undelete: u64,
}

impl OperationCounts {
    pub(crate) fn add(&mut self, operation: Operation, n: u64) {
        match operation {
            Operation::Insert => self.insert += n,
            Operation::Upsert => self.upsert += n,
            Operation::Update => self.update += n,
            Operation::Delete => self.delete += n,
            Operation::Undelete => self.undelete += n,
        }
    }

    pub fn total(&self) -> u64 {
        self.insert + self.upsert + self.update + self.delete + self.undelete
    }
}

/// The lease one run of a flow holds (`push/<flow>`); an erasure holds it too.
pub fn lease_resource(flow: &str) -> String {
    format!("push/{}", flow.to_ascii_lowercase())
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct PushMetrics {
    pub flow: String,
    pub run: i64,
    pub status: PushStatus,
    pub dry_run: bool,
    pub counts: DiffCounts,
    pub planned: OperationCounts,
    /// `collections`, `bulk`, `collections+bulk` or `none`.
    pub api: String,
    pub sent: u64,
    pub succeeded: u64,
    pub failed: u64,
    /// Rows not processed (a stop, a failed job): sent again next run.
    pub not_processed: u64,
    /// Inserts of an interrupted run found accepted by Salesforce.
    pub recovered: u64,
    /// Changed rows of insert mode whose record's creation is unknown: not sent (see the errors).
    pub held: u64,
    pub bulk_jobs: Vec<String>,
    pub api_calls: u64,
    pub spilled_bytes: u64,
    pub snapshot_version: Option<u64>,
    /// Dry runs: the first rows of each operation, against the record's current values.
    pub sample: Vec<SampleRow>,
    pub message: Option<String>,
    pub duration: Duration,
}

/// One run of one flow (see the module docs).
pub struct PushRun {
    lake: LakeLocation,
    client: Arc<SalesforceClient>,
    flow: String,
    config: PushConfig,
    dry_run: Option<usize>,
    memory_limit: usize,
    bulk_job_rows: usize,
    max_upload_bytes: usize,
    lease_ttl: Duration,
    clock: Arc<dyn Clock>,
}

impl PushRun {
    pub fn new(lake: LakeLocation, client: Arc<SalesforceClient>, flow: &str, config: PushConfig) -> PushRun {
        let bulk_job_rows = usize::try_from(config.bulk_job_rows).unwrap_or(usize::MAX);
        PushRun {
            lake,
            client,
            flow: flow.to_owned(),
            config,
            dry_run: None,
            memory_limit: tidemark_lake::bounded::DEFAULT_MEMORY_LIMIT,
            bulk_job_rows,
            max_upload_bytes: tidemark_salesforce::ingest_plan::MAX_JOB_UPLOAD_BYTES,
            lease_ttl: Duration::from_secs(120),
            clock: Arc::new(SystemClock),
        }
    }

    /// Computes what would be sent, with up to `sample` rows per operation shown against the
    /// records' current values, and writes nothing: not to Salesforce, not to the lake.
    pub fn with_dry_run(mut self, sample: usize) -> PushRun {
        self.dry_run = Some(sample);
        self
    }

    /// The memory the result's sort may hold before spilling (default 256 MiB).
    pub fn with_memory_limit(mut self, bytes: usize) -> PushRun {
        self.memory_limit = bytes;
        self
    }

    /// Rows per Bulk API job, instead of the flow's `bulk_job_rows`.
    pub fn with_bulk_job_rows(mut self, rows: usize) -> PushRun {
        self.bulk_job_rows = rows.max(1);
        self
    }

    /// CSV bytes per Bulk upload (default: Salesforce's limit); more is split into jobs.
    pub fn with_max_upload_bytes(mut self, bytes: usize) -> PushRun {
        self.max_upload_bytes = bytes;
        self
    }

    pub fn with_lease_ttl(mut self, ttl: Duration) -> PushRun {
        self.lease_ttl = ttl;
        self
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> PushRun {
        self.clock = clock;
        self
    }

    fn invalid(&self, message: impl Into<String>) -> PushError {
        PushError::Invalid { flow: self.flow.clone(), message: message.into() }
    }

    pub async fn execute(self) -> Result<PushMetrics> {
        self.config.validate(&self.flow).map_err(|e| self.invalid(e.to_string()))?;
        if self.dry_run.is_some() {
            return self.push(None).await;
        }
        let resource = lease_resource(&self.flow);
        with_lease(&self.lake, &resource, "push", self.lease_ttl, self.clock.clone(), async |lease| self.push(Some(lease)).await)
            .await
    }

    async fn push(&self, lease: Option<&Lease>) -> Result<PushMetrics> {
        let started = Instant::now();
        let started_at = self.clock.now();
        let calls_before = self.client.requests_sent();
        let session = QuerySession::open_bounded(self.lake.clone(), ReadOptions::default(), self.memory_limit).await?;
        let ctx = session.context();
        let probe = ctx.sql(&format!("SELECT * FROM ({}) AS result LIMIT 0", self.config.query)).await?;
        let result_schema: Schema = probe.schema().as_arrow().clone();
        let describe = self.client.describe(&self.config.object).await?;
        let mapping = crate::mapping::check(&self.flow, &self.config, &result_schema, &describe)?;
        let names: Vec<String> = result_schema.fields().iter().map(|f| f.name().clone()).collect();
        let key = self.config.key_columns(&names).ok_or_else(|| self.invalid("name the result's key columns (key:)"))?;
        let lookup_field = match (self.config.mode, key.as_slice()) {
            (PushMode::Insert, [column]) => mapping
                .columns
                .iter()
                .find(|(c, _)| c == column)
                .and_then(|(_, field)| describe.field(field))
                .filter(|f| f.external_id || f.unique)
                .map(|f| f.name.clone()),
            _ => None,
        };

        let snapshot = Snapshot::open(&self.lake, &self.flow).await?;
        let (last_run, unresolved_before) = match &snapshot {
            Some(s) => (s.last_run(&self.flow).await?, s.last_commit_list(UNRESOLVED_KEY).await?),
            None => (0, Vec::new()),
        };
        let run = last_run + 1;
        let attempt = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
        let journal = Journal::new(&self.lake, &self.flow)?;
        let mut state = RunState { run, at: started_at, ..RunState::default() };
        let mut recovered = HashMap::new();
        let mut settled: Vec<String> = Vec::new();
        let mut message = None;
        if self.dry_run.is_none() {
            for (chunk, jobs) in journal.chunks().await? {
                let name = chunk.name();
                if chunk.run <= last_run && !unresolved_before.contains(&name) {
                    // Its outcome is in the committed snapshot already (a crash after the commit).
                    settled.push(name);
                    continue;
                }
                let outcomes = resolve(&self.client, &chunk, &jobs).await?;
                tracing::info!(flow = %self.flow, chunk = %name, rows = chunk.rows.len(), "resolved inserts an interrupted run left in flight");
                for (row, outcome) in chunk.rows.iter().zip(&outcomes) {
                    let hash = hex::decode(&row.hash).map_err(|_| self.invalid(format!("journal chunk {name} is unreadable")))?;
                    let record = delivery(Operation::Insert, outcome);
                    if record.delivered {
                        recovered.insert(row.key.clone(), Recovered { hash, id: record.id, run: chunk.run });
                    }
                    state.failures.extend(error_rows(run, started_at, Operation::Insert, &row.key, &row.record, outcome));
                }
                settled.push(name);
            }
        } else if !journal.chunks().await?.is_empty() {
            message = Some("an interrupted run left inserts in flight: the next run resolves them before sending".to_owned());
        }
        let recovered_count = recovered.values().filter(|r: &&Recovered| r.id.is_some()).count() as u64;

        let mut diff = Diff::start(&ctx, &self.flow, &self.config.query, &key, &self.config.exclude, snapshot.as_ref()).await?;
        let diff_schema = diff.schema().clone();
        let encoder = crate::records::RecordEncoder::new(&self.flow, &diff_schema, &mapping.columns)?;
        let key_columns: Vec<usize> = key.iter().map(|k| diff_schema.index_of(k).expect("key column")).collect();
        let key_fields: Vec<Field> = key.iter().map(|k| diff_schema.field_with_name(k).expect("key").clone()).collect();
        let snapshot_schema = crate::snapshot::schema(&key_fields);
        let mut planner = Planner::new(
            self.config.mode,
            self.config.delete_vanished,
            encoder,
            key_columns,
            mapping.id_column.clone(),
            recovered,
        );
        if let Some(sample) = self.dry_run {
            planner.encode_limit = Some(sample);
        }
        let mut writer = match self.dry_run {
            Some(_) => None,
            None => Some(
                SnapshotWriter::new(&self.lake, &self.flow, snapshot_schema.clone(), tidemark_lake::writer::TARGET_FILE_SIZE)
                    .await?,
            ),
        };
        let mut sender = Sender::new(&self.client, &journal, &self.config.object, run, &attempt);
        sender.external_id = self.config.external_id.clone().map(|f| describe.field(&f).map_or(f, |d| d.name.clone()));
        sender.lookup_field = lookup_field;
        sender.max_upload_bytes = self.max_upload_bytes;
        sender.bulk_job_rows = self.bulk_job_rows;
        let mut sample = Sample::new(self.dry_run.unwrap_or(0));
        let mut path: Option<WritePath> = None;
        while let Some(batch) = diff.next().await? {
            planner.plan(batch)?;
            if self.dry_run.is_some() {
                for (operation, _, row) in planner.outgoing.drain(..) {
                    state.planned.add(operation, 1);
                    sample.offer(operation, row);
                }
                planner.discard_waiting();
                continue;
            }
            if path.is_none() && planner.outgoing.len() as u64 > self.config.bulk_threshold {
                tracing::info!(flow = %self.flow, threshold = self.config.bulk_threshold, "more rows to send than bulk_threshold: Bulk API 2.0 jobs");
                path = Some(WritePath::Bulk);
            }
            let full = path.is_some() && planner.outgoing.len() >= self.bulk_job_rows;
            if full || !planner.has_outgoing() {
                self.flush(&mut planner, &mut sender, path, &mut state, writer.as_mut(), &snapshot_schema).await?;
            }
        }
        if self.dry_run.is_none() {
            let path = Some(path.unwrap_or(WritePath::Collections));
            self.flush(&mut planner, &mut sender, path, &mut state, writer.as_mut(), &snapshot_schema).await?;
        }
        let counts = diff.counts;
        let spilled_bytes = diff.spilled_bytes();
        let held = planner.held;
        drop(diff);

        let status = state.status();
        if let Some(e) = &state.stop {
            message = Some(format!("stopped: {e}"));
        }
        let api = sender.api();
        let mut metrics = PushMetrics {
            flow: self.flow.clone(),
            run,
            status,
            dry_run: self.dry_run.is_some(),
            counts,
            planned: state.planned,
            api,
            sent: state.sent,
            succeeded: state.succeeded,
            failed: state.failed,
            not_processed: state.not_processed,
            recovered: recovered_count,
            held,
            bulk_jobs: sender.jobs.clone(),
            api_calls: 0,
            spilled_bytes,
            snapshot_version: None,
            sample: Vec::new(),
            message,
            duration: Duration::ZERO,
        };
        if self.dry_run.is_some() {
            metrics.sample = sample.with_current_values(&self.client, &self.config.object, &mapping).await?;
            metrics.api_calls = self.client.requests_sent() - calls_before;
            metrics.duration = started.elapsed();
            return Ok(metrics);
        }

        // Errors first: a crash before the snapshot commit re-runs this run number, whose rows
        // replace these.
        if let Some(lease) = lease {
            lease.ensure_held()?;
        }
        let errors = ErrorTable::new(&self.lake, &self.flow);
        let open: HashSet<String> = errors.rows().await?.into_iter().filter(|r| r.is_open()).map(|r| r.key).collect();
        let delivered: HashSet<String> = state.delivered_keys.into_iter().filter(|k| open.contains(k)).collect();
        errors.record(run, &delivered, std::mem::take(&mut state.failures)).await?;
        let commit_info = HashMap::from([
            (UNRESOLVED_KEY.to_owned(), serde_json::json!(state.unresolved)),
            (
                RUN_KEY.to_owned(),
                serde_json::json!({"run": run, "attempt": attempt, "status": status.label(), "sent": metrics.sent, "succeeded": metrics.succeeded}),
            ),
        ]);
        if let Some(lease) = lease {
            lease.ensure_held()?;
        }
        let version = writer.expect("not a dry run").commit(run, commit_info).await?;
        metrics.snapshot_version = Some(version);
        settled.extend(state.settled);
        for name in &settled {
            journal.remove(name).await?;
        }
        metrics.api_calls = self.client.requests_sent() - calls_before;
        metrics.duration = started.elapsed();
        let record = PushRunRecord {
            flow: self.flow.clone(),
            run,
            attempt,
            object: self.config.object.clone(),
            mode: self.config.mode.label().to_owned(),
            started_at,
            finished_at: self.clock.now(),
            status,
            api: metrics.api.clone(),
            rows_new: counts.new as i64,
            rows_changed: counts.changed as i64,
            rows_unchanged: counts.unchanged as i64,
            rows_vanished: counts.vanished as i64,
            planned: metrics.planned.total() as i64,
            sent: metrics.sent as i64,
            succeeded: metrics.succeeded as i64,
            failed: metrics.failed as i64,
            recovered: metrics.recovered as i64,
            api_calls: metrics.api_calls as i64,
            snapshot_version: Some(version as i64),
            message: metrics.message.clone(),
        };
        RunLog::new(&self.lake).record(&record).await?;
        tracing::info!(flow = %self.flow, run, status = status.label(), sent = metrics.sent, failed = metrics.failed, "push finished");
        Ok(metrics)
    }

    /// Sends every planned row (nothing once the run has stopped), then writes the snapshot
    /// rows of every waiting diff row.
    async fn flush(
        &self,
        planner: &mut Planner,
        sender: &mut Sender<'_>,
        path: Option<WritePath>,
        state: &mut RunState,
        writer: Option<&mut SnapshotWriter>,
        schema: &tidemark_lake::arrow::datatypes::SchemaRef,
    ) -> Result<()> {
        let groups = planner.take_outgoing();
        let total: usize = groups.iter().map(|(_, rows)| rows.len()).sum();
        let mut deliveries = vec![Delivery::default(); total];
        for (operation, rows) in groups {
            state.planned.add(operation, rows.len() as u64);
            if state.stop.is_some() {
                state.not_processed += rows.len() as u64;
                continue;
            }
            let out_rows: Vec<_> = rows.iter().map(|(_, r)| r.clone()).collect();
            let sent = sender.send(operation, path.unwrap_or(WritePath::Collections), &out_rows).await?;
            state.settled.extend(sent.settled_chunk);
            state.settled.extend(sent.settled_chunks);
            state.unresolved.extend(sent.unresolved_chunk);
            for ((out, row), outcome) in rows.iter().zip(&sent.outcomes) {
                deliveries[*out as usize] = state.count(operation, row, outcome);
            }
            if let Some(stop) = sent.stop {
                tracing::warn!(flow = %self.flow, error = %stop, "push stopped; the rest is sent by the next run");
                state.stop = Some(stop);
            }
        }
        let batches = planner.settle(state.run, &deliveries, schema)?;
        if let Some(writer) = writer {
            for batch in batches {
                writer.write(batch).await?;
            }
        }
        Ok(())
    }
}

/// What a run (of a push flow, or a restore of one object) has done so far.
#[derive(Default)]
pub(crate) struct RunState {
    pub run: i64,
    pub at: DateTime<Utc>,
    /// Rows Salesforce rejected (and inserts whose outcome stays unknown).
    pub failures: Vec<ErrorRow>,
    pub planned: OperationCounts,
    pub sent: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub not_processed: u64,
    pub delivered_keys: Vec<String>,
    pub settled: Vec<String>,
    pub unresolved: Vec<String>,
    pub stop: Option<SalesforceError>,
}

impl RunState {
    /// Counts the outcome of one row sent as `operation`, keeping its error row if it failed.
    pub fn count(&mut self, operation: Operation, row: &OutRow, outcome: &RowOutcome) -> Delivery {
        let d = delivery(operation, outcome);
        match outcome {
            RowOutcome::NotProcessed => self.not_processed += 1,
            RowOutcome::Unknown => self.failed += 1,
            _ if d.delivered => self.succeeded += 1,
            _ => self.failed += 1,
        }
        if !matches!(outcome, RowOutcome::NotProcessed) {
            self.sent += 1;
        }
        if d.delivered {
            self.delivered_keys.push(row.key.clone());
        }
        self.failures.extend(error_rows(self.run, self.at, operation, &row.key, &row.record, outcome));
        d
    }

    /// How the run ended: stopped by the API budget is incomplete, by another error failed.
    pub fn status(&self) -> PushStatus {
        match &self.stop {
            None => PushStatus::Complete,
            Some(e) if e.class() == ErrorClass::Quota => PushStatus::Incomplete,
            Some(_) => PushStatus::Failed,
        }
    }
}

/// The error-table rows of one row's outcome (none when it was delivered or not processed).
pub(crate) fn error_rows(
    run: i64,
    at: DateTime<Utc>,
    operation: Operation,
    key: &str,
    record: &tidemark_salesforce::Record,
    outcome: &RowOutcome,
) -> Option<ErrorRow> {
    let (status_code, message, fields) = match outcome {
        RowOutcome::Failed { errors } if !delivery(operation, outcome).delivered => (
            errors.first().map_or_else(|| "UNKNOWN_ERROR".to_owned(), |e| e.status_code.clone()),
            errors.iter().map(|e| e.message.as_str()).collect::<Vec<_>>().join("; "),
            errors.iter().flat_map(|e| e.fields.iter().cloned()).collect::<Vec<_>>().join(","),
        ),
        RowOutcome::Unknown if operation == Operation::Insert => (
            "TIDEMARK_OUTCOME_UNKNOWN".to_owned(),
            "Salesforce's answer to this insert was lost; the row is held, not inserted again, until its record is \
             found (delete the key's snapshot entry to send it again)"
                .to_owned(),
            String::new(),
        ),
        _ => return None,
    };
    Some(ErrorRow {
        run,
        failed_at: at,
        key: key.to_owned(),
        operation: operation.label().to_owned(),
        record: serde_json::Value::Object(record.clone()).to_string(),
        status_code,
        message,
        fields,
        attempt: 1,
        delivered_run: None,
    })
}
