//! Restoring records from the lake's history: [`RestoreRun`] → [`RestoreMetrics`].
//!
//! A restore sets the selected records of one or more objects back to their state at an
//! instant (see [`crate::restore_plan`] for what happens to each record). It writes through
//! the push flows' machinery: the same [`Sender`] (sObject Collections, Bulk API 2.0 jobs, and
//! SOAP `undelete()`), the same retry executor, inserts journaled before they are sent, one
//! error table per object (`<lake>/_tidemark/restore/<object>/errors`, in SQL
//! `restore_<object>_errors`), and a run log (`restore_runs`). Re-created records' new Ids go
//! to the Id map ([`crate::id_map`]).
//!
//! Objects are restored parents first (by their lookups to each other), so children re-created
//! or updated in the same run point at their parents' new Ids. Per object:
//!
//! 1. re-creations an interrupted run left in flight are resolved (their new Ids recorded);
//! 2. records deleted since the instant are looked up in Salesforce (queryAll): live ones are
//!    updated, those in the recycle bin undeleted (where the object's describe says
//!    `undeletable`) and then updated, the rest re-created;
//! 3. live records whose fields differ from the instant's are updated.
//!
//! A crash at any point is safe to re-run: updates and undeletes are idempotent and decided
//! again from Salesforce's state, and re-creations are found again through the journal.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value as J;
use tidemark_core::{Clock, SystemClock};
use tidemark_lake::arrow::array::{RecordBatch, StringArray};
use tidemark_lake::arrow::datatypes::{DataType, Field, Schema};
use tidemark_lake::datafusion::prelude::SessionContext;
use tidemark_lake::{LakeLocation, Lease, with_lease};
use tidemark_query::{QuerySession, ReadOptions};
use tidemark_salesforce::SalesforceClient;
use tidemark_salesforce::describe::SObjectDescribe;
use tidemark_salesforce::write::{Record, RowOutcome};

use crate::dry_run::{Sample, SampleRow};
use crate::error::{PushError, Result};
use crate::errors::{ErrorTable, PushRunRecord, PushStatus, RunLog};
use crate::id_map::IdMap;
use crate::journal::{Journal, WritePath, resolve};
use crate::mapping::Mapping;
use crate::restore_plan::{ID_MAP_RELATION, IDS_RELATION, OrgState, Selection, differences, relink};
use crate::run::{OperationCounts, RunState};
use crate::send::{Operation, OutRow, Sender};

/// The run log of restores (one record per object restored), and its SQL name.
pub const RESTORE_RUNS: &str = "restore_runs";

/// The internal folder of an object's restore state (`restore/<object>`).
pub fn restore_folder(object: &str) -> String {
    format!("restore/{}", object.to_ascii_lowercase())
}

/// What a restore did to one object.
#[derive(Debug, Clone, Default)]
pub struct ObjectRestore {
    pub object: String,
    pub run: i64,
    pub status: Option<PushStatus>,
    /// Records of the selection at the instant.
    pub selected: u64,
    /// Of those, records whose restorable fields equal the instant's already.
    pub unchanged: u64,
    /// Records deleted since the instant (as far as the lake knows).
    pub deleted_since: u64,
    /// Live records with fields changed since the instant.
    pub changed_since: u64,
    pub planned: OperationCounts,
    pub sent: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub not_processed: u64,
    /// Re-creations of an interrupted run found accepted by Salesforce.
    pub recovered: u64,
    /// Lookup values written with a re-created record's new Id.
    pub relinked: u64,
    /// (old Id, new Id) of the records re-created by this run.
    pub recreated: Vec<(String, String)>,
    pub api: String,
    pub bulk_jobs: Vec<String>,
    pub sample: Vec<SampleRow>,
    pub message: Option<String>,
}

/// What a restore did.
#[derive(Debug, Clone)]
pub struct RestoreMetrics {
    pub as_of: DateTime<Utc>,
    pub dry_run: bool,
    /// In the order restored (parents first).
    pub objects: Vec<ObjectRestore>,
    pub api_calls: u64,
    pub duration: Duration,
}

impl RestoreMetrics {
    /// The worst status of the objects (a dry run is complete).
    pub fn status(&self) -> PushStatus {
        let statuses = self.objects.iter().filter_map(|o| o.status);
        statuses
            .max_by_key(|s| match s {
                PushStatus::Complete => 0,
                PushStatus::Incomplete => 1,
                PushStatus::Failed => 2,
            })
            .unwrap_or(PushStatus::Complete)
    }
}

/// One restore of records of one or more objects to an instant (see the module docs).
pub struct RestoreRun {
    lake: LakeLocation,
    client: Arc<SalesforceClient>,
    objects: Vec<String>,
    as_of: DateTime<Utc>,
    where_sql: Option<String>,
    ids: Option<Vec<String>>,
    fields: Option<Vec<String>>,
    dry_run: Option<usize>,
    bulk_threshold: usize,
    bulk_job_rows: usize,
    memory_limit: usize,
    lease_ttl: Duration,
    clock: Arc<dyn Clock>,
}

impl RestoreRun {
    pub fn new(lake: LakeLocation, client: Arc<SalesforceClient>, objects: &[String], as_of: DateTime<Utc>) -> RestoreRun {
        RestoreRun {
            lake,
            client,
            objects: objects.to_vec(),
            as_of,
            where_sql: None,
            ids: None,
            fields: None,
            dry_run: None,
            bulk_threshold: 2000,
            bulk_job_rows: 50_000,
            memory_limit: tidemark_lake::bounded::DEFAULT_MEMORY_LIMIT,
            lease_ttl: Duration::from_secs(120),
            clock: Arc::new(SystemClock),
        }
    }

    /// Only records whose state at the instant matches a SQL predicate (lower-case column
    /// names, as `tidemark sql` shows the object).
    pub fn with_where(mut self, predicate: &str) -> RestoreRun {
        self.where_sql = Some(predicate.to_owned());
        self
    }

    /// Only these records (15- or 18-character Ids, of any of the objects).
    pub fn with_ids(mut self, ids: Vec<String>) -> RestoreRun {
        self.ids = Some(ids);
        self
    }

    /// Only these fields are set back on existing records (a re-created record gets every
    /// createable field, as it cannot exist without them).
    pub fn with_fields(mut self, fields: Vec<String>) -> RestoreRun {
        self.fields = Some(fields);
        self
    }

    /// Plans and shows up to `sample` rows per operation against the records' current values,
    /// writing nothing to Salesforce or the lake.
    pub fn with_dry_run(mut self, sample: usize) -> RestoreRun {
        self.dry_run = Some(sample);
        self
    }

    /// Updates of more records than this go through Bulk API 2.0 jobs (default 2000).
    pub fn with_bulk_threshold(mut self, rows: usize) -> RestoreRun {
        self.bulk_threshold = rows;
        self
    }

    pub fn with_bulk_job_rows(mut self, rows: usize) -> RestoreRun {
        self.bulk_job_rows = rows.max(1);
        self
    }

    pub fn with_memory_limit(mut self, bytes: usize) -> RestoreRun {
        self.memory_limit = bytes;
        self
    }

    pub fn with_lease_ttl(mut self, ttl: Duration) -> RestoreRun {
        self.lease_ttl = ttl;
        self
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> RestoreRun {
        self.clock = clock;
        self
    }

    fn invalid(&self, object: &str, message: impl Into<String>) -> PushError {
        PushError::Restore { object: object.to_owned(), message: message.into() }
    }

    pub async fn execute(self) -> Result<RestoreMetrics> {
        let first = self.objects.first().cloned().unwrap_or_default();
        if self.objects.is_empty() {
            return Err(self.invalid("", "name at least one object"));
        }
        let ids = match &self.ids {
            Some(ids) => Some(normalised_ids(ids).map_err(|m| self.invalid(&first, m))?),
            None => None,
        };
        if self.dry_run.is_some() {
            return self.restore(ids, None).await;
        }
        with_lease(&self.lake, "restore", "restore", self.lease_ttl, self.clock.clone(), async |lease| {
            self.restore(ids, Some(lease)).await
        })
        .await
    }

    async fn restore(&self, ids: Option<Vec<String>>, lease: Option<&Lease>) -> Result<RestoreMetrics> {
        let started = Instant::now();
        let calls_before = self.client.requests_sent();
        let session = QuerySession::open_bounded(self.lake.clone(), ReadOptions::default(), self.memory_limit).await?;
        let ctx = session.context();
        if let Some(ids) = &ids {
            let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Utf8, false)]));
            let batch = RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(ids.clone()))])?;
            ctx.register_batch(IDS_RELATION, batch)?;
        }
        let mut describes = Vec::with_capacity(self.objects.len());
        for object in &self.objects {
            if session.describe(&object.to_ascii_lowercase()).await.is_err() {
                return Err(self.invalid(object, "the lake has no table of this object: sync it first"));
            }
            describes.push(self.client.describe(object).await?);
        }
        let describes = parents_first(describes);
        let selection = Selection { as_of: self.as_of, where_sql: self.where_sql.clone(), ids: ids.is_some() };
        let mut map = IdMap::load(&self.lake).await?;
        let mut objects = Vec::with_capacity(describes.len());
        for describe in &describes {
            let restored = self.restore_object(&session, &ctx, describe, &selection, &mut map, lease).await?;
            let stopped = restored.status.is_some_and(|s| s != PushStatus::Complete);
            objects.push(restored);
            if stopped {
                break;
            }
        }
        Ok(RestoreMetrics {
            as_of: self.as_of,
            dry_run: self.dry_run.is_some(),
            objects,
            api_calls: self.client.requests_sent() - calls_before,
            duration: started.elapsed(),
        })
    }

    async fn restore_object(
        &self,
        session: &QuerySession,
        ctx: &SessionContext,
        describe: &SObjectDescribe,
        selection: &Selection,
        map: &mut IdMap,
        lease: Option<&Lease>,
    ) -> Result<ObjectRestore> {
        let object = describe.name.clone();
        let relation = object.to_ascii_lowercase();
        let columns = session.describe(&relation).await?;
        let fields = crate::restore_plan::fields(describe, &columns, self.fields.as_deref())?;
        let folder = restore_folder(&object);
        let log = RunLog::at(&self.lake, RESTORE_RUNS);
        let run = log.runs(Some(&object)).await?.iter().map(|r| r.run).max().unwrap_or(0) + 1;
        let started_at = self.clock.now();
        let attempt = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
        let journal = Journal::at(&self.lake, &format!("{folder}/inflight"))?;
        let mut state = RunState { run, at: started_at, ..RunState::default() };
        let mut out = ObjectRestore { object: object.clone(), run, ..ObjectRestore::default() };

        // 1. Re-creations left in flight.
        let chunks = journal.chunks().await?;
        if self.dry_run.is_some() && !chunks.is_empty() {
            out.message = Some("an interrupted restore left re-creations in flight: the next restore resolves them first".into());
        }
        if self.dry_run.is_none() {
            for (chunk, jobs) in chunks {
                let outcomes = resolve(&self.client, &chunk, &jobs).await?;
                let mut pairs = Vec::new();
                for (row, outcome) in chunk.rows.iter().zip(&outcomes) {
                    if let (RowOutcome::Success { id, .. }, Some(old)) = (outcome, old_id(&row.key)) {
                        pairs.push((old, id.clone()));
                    }
                    // Rejected rows go to the error table (accepted ones leave none).
                    state.failures.extend(crate::run::error_rows(
                        run,
                        started_at,
                        Operation::Insert,
                        &row.key,
                        &row.record,
                        outcome,
                    ));
                }
                out.recovered += pairs.len() as u64;
                map.add(&object, chunk.run, started_at, &pairs).await?;
                journal.remove(&chunk.name()).await?;
            }
        }
        let _ = ctx.deregister_table(ID_MAP_RELATION)?;
        ctx.register_batch(ID_MAP_RELATION, map.batch())?;

        // 2. Records deleted since the instant, by their state in Salesforce.
        // The first query over the instant: a selection that cannot be planned is named here.
        let gone = crate::restore_plan::deleted_since(ctx, &relation, selection, &fields).await.map_err(|e| match e {
            PushError::Query(e) => {
                let what = match &selection.where_sql {
                    Some(w) => format!("--where {w:?} over its columns at the instant"),
                    None => "reading its records at the instant".to_owned(),
                };
                self.invalid(&object, format!("{what}: {e}"))
            }
            other => other,
        })?;
        out.deleted_since = gone.len() as u64;
        let targets: Vec<String> = gone.iter().map(|g| g.target.clone()).collect();
        let update_fields: Vec<&str> = fields.update.iter().map(|(_, f)| f.as_str()).collect();
        let org = crate::restore_plan::org_states(&self.client, &object, &targets, &update_fields).await?;
        let (mut undeletes, mut inserts, mut updates) = (Vec::new(), Vec::new(), Vec::new());
        let mut after_undelete: HashMap<String, OutRow> = HashMap::new();
        for g in gone {
            let key = key_of(&g.old_id);
            let mut wanted = g.update;
            out.relinked += relink(&mut wanted, &fields.references, map);
            match org.get(&g.target) {
                Some(OrgState::Live(now)) => {
                    if let Some(record) = differences(&g.target, &wanted, now) {
                        updates.push(unhashed(key, record));
                    } else {
                        out.unchanged += 1;
                    }
                }
                Some(OrgState::InRecycleBin(now)) if describe.access.undeletable => {
                    if let Some(record) = differences(&g.target, &wanted, now) {
                        after_undelete.insert(key.clone(), unhashed(key.clone(), record));
                    }
                    let record = Record::from_iter([("Id".to_owned(), J::String(g.target.clone()))]);
                    undeletes.push(unhashed(key, record));
                }
                _ => {
                    let mut record = g.create;
                    out.relinked += relink(&mut record, &fields.references, map);
                    inserts.push(unhashed(key, record));
                }
            }
        }

        // 3. Live records whose fields differ.
        let (changed, unchanged) = crate::restore_plan::changed_since(ctx, &relation, selection, &fields, map).await?;
        out.unchanged += unchanged;
        out.changed_since = changed.len() as u64;
        out.selected = out.deleted_since + unchanged + out.changed_since;
        out.relinked += changed.iter().map(|c| c.relinked).sum::<u64>();
        updates.extend(changed.into_iter().map(|c| unhashed(key_of(&c.old_id), c.record)));

        let mut sender = Sender::new(&self.client, &journal, &object, run, &attempt);
        sender.bulk_job_rows = self.bulk_job_rows;
        if let Some(limit) = self.dry_run {
            let mut sample = Sample::new(limit);
            let planned = [(Operation::Undelete, &undeletes), (Operation::Insert, &inserts), (Operation::Update, &updates)];
            for (operation, rows) in planned {
                for row in rows {
                    out.planned.add(operation, 1);
                    sample.offer(operation, row.clone());
                }
            }
            for row in after_undelete.into_values() {
                out.planned.add(Operation::Update, 1);
                sample.offer(Operation::Update, row);
            }
            let columns: Vec<(String, String)> = fields.update.iter().map(|(_, f)| (f.clone(), f.clone())).collect();
            let mapping = Mapping { columns, id_column: None, external_id_column: None };
            out.sample = sample.with_current_values(&self.client, &object, &mapping).await?;
            out.api = "none".into();
            return Ok(out);
        }

        // Undeletes, then the updates of what differs on the undeleted records.
        let outcomes = self.send(&mut sender, &mut state, Operation::Undelete, &undeletes).await?;
        for (row, outcome) in undeletes.iter().zip(&outcomes) {
            if matches!(outcome, RowOutcome::Success { .. }) {
                updates.extend(after_undelete.remove(&row.key));
            }
        }
        // Re-creations: their new Ids recorded before the journal forgets them.
        let outcomes = self.send(&mut sender, &mut state, Operation::Insert, &inserts).await?;
        let mut pairs = Vec::new();
        for (row, outcome) in inserts.iter().zip(&outcomes) {
            if let (RowOutcome::Success { id, .. }, Some(old)) = (outcome, old_id(&row.key)) {
                pairs.push((old, id.clone()));
            }
        }
        map.add(&object, run, started_at, &pairs).await?;
        for name in std::mem::take(&mut state.settled) {
            journal.remove(&name).await?;
        }
        // Lookups among the records just re-created (a hierarchy) point at their new Ids now.
        let created: HashMap<String, String> = pairs.iter().cloned().collect();
        for row in &inserts {
            let Some(new_id) = old_id(&row.key).and_then(|old| created.get(&old)) else { continue };
            let mut record = row.record.clone();
            if relink(&mut record, &fields.references, map) > 0 {
                out.relinked += 1;
                let wanted: Record = record.into_iter().filter(|(f, _)| fields.references.contains(f)).collect();
                if let Some(record) = differences(new_id, &wanted, &row.record) {
                    updates.push(unhashed(row.key.clone(), record));
                }
            }
        }
        out.recreated = pairs;
        let _ = self.send(&mut sender, &mut state, Operation::Update, &updates).await?;

        // The outcome, recorded.
        if let Some(lease) = lease {
            lease.ensure_held()?;
        }
        let errors = ErrorTable::at(&self.lake, &format!("{folder}/errors"));
        let open: std::collections::HashSet<String> =
            errors.rows().await?.into_iter().filter(|r| r.is_open()).map(|r| r.key).collect();
        let delivered = std::mem::take(&mut state.delivered_keys).into_iter().filter(|k| open.contains(k)).collect();
        errors.record(run, &delivered, std::mem::take(&mut state.failures)).await?;
        let status = state.status();
        if let Some(stop) = &state.stop {
            out.message = Some(format!("stopped: {stop}"));
        }
        out.status = Some(status);
        out.planned = state.planned;
        (out.sent, out.succeeded, out.failed, out.not_processed) =
            (state.sent, state.succeeded, state.failed, state.not_processed);
        out.api = sender.api();
        out.bulk_jobs = sender.jobs.clone();
        let record = PushRunRecord {
            flow: object.clone(),
            run,
            attempt,
            object: object.clone(),
            mode: format!("restore as of {}", self.as_of.to_rfc3339()),
            started_at,
            finished_at: self.clock.now(),
            status,
            api: out.api.clone(),
            rows_new: out.deleted_since as i64,
            rows_changed: out.changed_since as i64,
            rows_unchanged: out.unchanged as i64,
            rows_vanished: 0,
            planned: out.planned.total() as i64,
            sent: out.sent as i64,
            succeeded: out.succeeded as i64,
            failed: out.failed as i64,
            recovered: out.recovered as i64,
            api_calls: 0,
            snapshot_version: None,
            message: out.message.clone(),
        };
        log.record(&record).await?;
        tracing::info!(object = %object, run, status = status.label(), sent = out.sent, failed = out.failed, "restore finished");
        Ok(out)
    }

    /// Sends `rows` as `operation` (nothing once the run has stopped), counting the outcomes.
    async fn send(
        &self,
        sender: &mut Sender<'_>,
        state: &mut RunState,
        operation: Operation,
        rows: &[OutRow],
    ) -> Result<Vec<RowOutcome>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        state.planned.add(operation, rows.len() as u64);
        if state.stop.is_some() {
            state.not_processed += rows.len() as u64;
            return Ok(vec![RowOutcome::NotProcessed; rows.len()]);
        }
        let path = if rows.len() > self.bulk_threshold { WritePath::Bulk } else { WritePath::Collections };
        let sent = sender.send(operation, path, rows).await?;
        state.settled.extend(sent.settled_chunk);
        state.settled.extend(sent.settled_chunks);
        for (row, outcome) in rows.iter().zip(&sent.outcomes) {
            state.count(operation, row, outcome);
        }
        if let Some(stop) = sent.stop {
            tracing::warn!(object = %sender.object, error = %stop, "restore stopped; run it again to finish");
            state.stop = Some(stop);
        }
        Ok(sent.outcomes)
    }
}

/// A row to send; restores compare values with Salesforce's, not through row hashes.
fn unhashed(key: String, record: Record) -> OutRow {
    OutRow { key, hash: Vec::new(), record }
}

/// A record's key in the journal and the error table: its Id at the instant, as a JSON array.
fn key_of(id: &str) -> String {
    J::Array(vec![J::String(id.to_owned())]).to_string()
}

fn old_id(key: &str) -> Option<String> {
    match serde_json::from_str::<J>(key).ok()? {
        J::Array(values) => values.first().and_then(J::as_str).map(str::to_owned),
        _ => None,
    }
}

/// 18-character Ids of the given 15- or 18-character ones; an error names the first bad one.
fn normalised_ids(ids: &[String]) -> std::result::Result<Vec<String>, String> {
    let mut out = Vec::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        let parsed =
            tidemark_core::SfId::parse(id.trim()).map_err(|e| format!("--ids: entry {} ({id:?}) is not an Id: {e}", i + 1))?;
        out.push(parsed.as_str().to_owned());
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The describes ordered so that an object comes after the objects its lookups point at
/// (among those restored); objects in a cycle keep the order they were named in.
fn parents_first(mut describes: Vec<SObjectDescribe>) -> Vec<SObjectDescribe> {
    let mut ordered = Vec::with_capacity(describes.len());
    while !describes.is_empty() {
        let names: Vec<String> = describes.iter().map(|d| d.name.to_ascii_lowercase()).collect();
        let ready = describes.iter().position(|d| {
            let me = d.name.to_ascii_lowercase();
            !d.fields.iter().flat_map(|f| &f.reference_to).any(|p| {
                let p = p.to_ascii_lowercase();
                p != me && names.contains(&p)
            })
        });
        ordered.push(describes.remove(ready.unwrap_or(0)));
    }
    ordered
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked_and_lengthened() {
        let ids = normalised_ids(&["001000000000001".into(), "001000000000001AAA".into()]).unwrap();
        assert_eq!(ids, ["001000000000001AAA"]);
        let e = normalised_ids(&["001000000000001AAA".into(), "nope".into()]).unwrap_err();
        assert!(e.contains("entry 2") && e.contains("nope"), "{e}");
    }

    #[test]
    fn keys_carry_the_old_id() {
        assert_eq!(old_id(&key_of("001x")).as_deref(), Some("001x"));
        assert_eq!(old_id("garbage"), None);
    }
}
