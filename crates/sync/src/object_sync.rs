//! One object's sync: schema evolution, the incremental (or full) read with exact
//! de-duplication, hard-delete reconciliation and formula re-snapshots, each version appended
//! to the object's history table in idempotent commits.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use tidemark_core::{Clock, SourceSchema};
use tidemark_lake::arrow::array::{AsArray, BooleanArray, RecordBatch};
use tidemark_lake::arrow::compute::filter_record_batch;
use tidemark_lake::arrow::datatypes::TimestampMicrosecondType;
use tidemark_lake::columns::{DELETED, ID, Origin, VERSION_AT};
use tidemark_lake::content::content_digests;
use tidemark_lake::ingest::Ingest;
use tidemark_lake::ledger::{RunStatus, SchemaEvent, SyncRunRecord};
use tidemark_lake::read::VersionKey;
use tidemark_lake::schema_plan::{self, SchemaPlan};
use tidemark_lake::{HistoryTable, LakeLocation, Ledger};
use tidemark_salesforce::SalesforceClient;

use crate::config::{ApiChoice, SyncSettings};
use crate::convert::{Stamp, StampSource, read_schema, to_history};
use crate::discovery::{bookmark_field, source_schema};
use crate::error::SyncError;
use crate::extract::{Extraction, count};
use crate::object_source::{ObjectSink, object_channel, table_spec};
use crate::report::{ObjectReport, SyncObserver};
use crate::rereads::{Target, reconcile, resnapshot, snapshot_diff};

/// Everything one run shares across objects.
pub(crate) struct RunContext {
    pub client: Arc<SalesforceClient>,
    pub lake: LakeLocation,
    pub ledger: Ledger,
    pub settings: SyncSettings,
    pub clock: Arc<dyn Clock>,
    pub observer: Arc<dyn SyncObserver>,
    pub run_id: String,
    pub full: bool,
    /// Ledger contents at the start of the run.
    pub past_runs: Vec<SyncRunRecord>,
    /// This run's lease on each object's table (by lower-case name).
    pub leases: std::collections::HashMap<String, Arc<tidemark_lake::Lease>>,
    pub governance: Arc<tidemark_core::governance::Governance>,
    /// Erased records per object (lower case), left out of every read.
    pub suppressed: HashMap<String, Arc<HashSet<String>>>,
}

pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn soql_datetime(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Syncs one object; never panics on bad data, always returns a report (errors inside it).
pub(crate) async fn sync_object(cx: &RunContext, object: &str) -> ObjectReport {
    let started = cx.clock.now();
    let timer = Instant::now();
    let mut report = ObjectReport::new(object);
    let calls_before = cx.client.requests_sent();
    // The lake writes the object's table as it writes any source's (see `object_source`); the
    // Salesforce side runs beside it in this task.
    let (source, sink) = object_channel(object);
    let mut ingest = Ingest::new(cx.lake.clone(), Box::new(source))
        .with_run_id(cx.run_id.clone())
        .with_clock(cx.clock.clone())
        .with_lease_ttl(cx.settings.lease_ttl)
        .with_run_records(false);
    if let Some(lease) = cx.leases.get(&object.to_ascii_lowercase()) {
        ingest = ingest.with_lease(lease.clone());
    }
    let (ingested, produced) = tokio::join!(ingest.run(), run(cx, object, sink, &mut report));
    if let Ok(metrics) = &ingested {
        report.schema_changes = metrics.tables.get(object).map_or(0, |t| t.schema_changes as usize);
    }
    let outcome = match (produced, ingested) {
        // The lake's own error says why it stopped taking versions.
        (Err(SyncError::LakeStopped { .. }), Err(lake)) | (Ok(()), Err(lake)) => Err(SyncError::from(lake)),
        (Err(e), _) => Err(e),
        (Ok(()), Ok(_)) => Ok(()),
    };
    report.duration = timer.elapsed();
    match outcome {
        Ok(()) => report.status = RunStatus::Complete,
        Err(e) => {
            report.status = if e.is_quota() { RunStatus::Incomplete } else { RunStatus::Failed };
            report.message = Some(e.to_string());
            report.error_class = Some(e.class());
            tracing::warn!(object, error = %e, "object sync did not complete");
        }
    }
    // Per-object call counts are approximate when objects run in parallel.
    report.api_calls = cx.client.requests_sent().saturating_sub(calls_before);
    let record = SyncRunRecord {
        run_id: cx.run_id.clone(),
        object: object.to_owned(),
        started_at: started,
        finished_at: cx.clock.now(),
        status: report.status,
        mode: report.mode.to_owned(),
        api: report.api.map_or("", |a| a.as_str()).to_owned(),
        bookmark: report.bookmark,
        bookmark_field: report.bookmark_field.clone(),
        rows_read: report.rows_read as i64,
        versions_written: report.versions_written as i64,
        deletes: report.deletes as i64,
        hard_deletes: report.hard_deletes as i64,
        snapshot_versions: report.snapshot_versions as i64,
        reconciled_at: report.reconciled_at,
        formula_snapshot_at: report.formula_snapshot_at,
        api_calls: report.api_calls as i64,
        message: report.message.clone(),
    };
    if let Err(e) = cx.ledger.record_run(&record).await {
        // Without the record the next run re-reads from the previous bookmark: slower, not wrong.
        tracing::warn!(object, error = %e, "could not record the sync run");
        report.message.get_or_insert_with(|| format!("could not record the run: {e}"));
        if report.status == RunStatus::Complete {
            report.status = RunStatus::Incomplete;
        }
    }
    cx.observer.object_finished(&report);
    report
}

async fn run(cx: &RunContext, object: &str, mut sink: ObjectSink, report: &mut ObjectReport) -> Result<(), SyncError> {
    let describe = cx.client.describe(object).await?;
    let (mut schema, _skipped) = source_schema(&describe, &cx.settings);
    let policies = crate::discovery::field_policies(&cx.governance, &schema)?;
    schema.fields.retain(|f| !policies.is_excluded(&f.name));
    let settings = cx.settings.object(object);
    let mine = |r: &&SyncRunRecord| r.object.eq_ignore_ascii_case(object);
    let last_complete = cx.past_runs.iter().filter(mine).filter(|r| r.status == RunStatus::Complete).last();
    let last_reconciled = cx.past_runs.iter().filter(mine).filter_map(|r| r.reconciled_at).max();
    let last_formula = cx.past_runs.iter().filter(mine).filter_map(|r| r.formula_snapshot_at).max();

    let created = HistoryTable::open(&cx.lake, object).await?.is_none();
    sink.define(table_spec(object, &schema, &policies)).await?;
    let mut table =
        HistoryTable::open(&cx.lake, object).await?.ok_or_else(|| SyncError::LakeStopped { object: object.to_owned() })?;
    // The lake evolved the table: planning again on it gives the same columns, and the ledger
    // now holds this run's schema events.
    let past_events = cx.ledger.schema_events().await?;
    let plan = schema_plan::plan(table.schema()?.as_ref(), &schema.fields, &schema_plan::removed_fields(&past_events, object));
    let table_schema = table.schema()?;

    let bookmark = if settings.snapshot_diff { None } else { bookmark_field(&schema) };
    report.bookmark_field = bookmark.unwrap_or("").to_owned();
    // A table created now (first run, or deleted by hand) starts from the beginning whatever
    // the ledger says.
    let previous = last_complete.and_then(|r| r.bookmark).filter(|_| !cx.full && !created);
    report.mode = match (previous, created || last_complete.is_none()) {
        (Some(_), _) => "incremental",
        (None, true) => "initial",
        (None, false) => "full",
    };
    report.bookmark = previous;
    let writer = &mut sink;
    let suppressed = crate::extract::Suppressed {
        ids: cx.suppressed.get(&object.to_ascii_lowercase()).cloned().unwrap_or_default(),
        ..Default::default()
    };

    let outcome = async {
        let mut target = Target {
            object,
            plan: &plan,
            table: &mut table,
            schema: table_schema,
            writer,
            api: settings.api,
            policies: &policies,
            suppressed: &suppressed,
        };
        match bookmark {
            Some(field) => {
                let content = content_columns(&schema, &plan, &new_columns(cx, &past_events, object));
                read_changes(cx, &mut target, field, &content, previous, report).await?
            }
            None => snapshot_diff(cx, &mut target, report).await?,
        }
        let now = cx.clock.now();
        let reconcile_every = settings.reconcile_every.unwrap_or(cx.settings.reconcile_every);
        let reconcile_due = report.mode != "initial"
            && (cx.full
                || last_reconciled.is_none_or(|t| now - t >= chrono::Duration::from_std(reconcile_every).unwrap_or_default()));
        if reconcile_due && bookmark.is_some() {
            reconcile(cx, &mut target, report).await?;
        } else if report.mode != "incremental" {
            // A complete read saw every record: it is as good as a reconciliation.
            report.reconciled_at = Some(now);
        }
        // A type change converts stored values without moving SystemModstamp: re-read them.
        // Also those of earlier runs that ended before completing (a crash after the event).
        let completed = |run: &str| {
            cx.past_runs
                .iter()
                .any(|r| r.run_id == run && r.object.eq_ignore_ascii_case(object) && r.status == RunStatus::Complete)
        };
        // The events include this run's own.
        let mut snapshot: Vec<(String, String)> = past_events
            .iter()
            .filter(|e| e.object.eq_ignore_ascii_case(object) && e.kind == "type_changed" && !completed(&e.run_id))
            .filter(|e| plan.column_of(&e.field) == Some(e.column.as_str()))
            .map(|e| (e.field.clone(), e.column.clone()))
            .collect();
        snapshot.dedup();
        if let Some(every) = settings.formula_snapshot_every {
            let due = report.mode != "initial"
                && last_formula.is_none_or(|t| now - t >= chrono::Duration::from_std(every).unwrap_or_default());
            if due {
                snapshot.extend(
                    schema.calculated_fields().filter_map(|f| plan.column_of(&f.name).map(|c| (f.name.clone(), c.to_owned()))),
                );
                report.formula_snapshot_at = Some(now);
            }
        }
        if !snapshot.is_empty() && report.mode != "initial" && bookmark.is_some() {
            resnapshot(cx, &mut target, &snapshot, report).await?;
        }
        Ok::<(), SyncError>(())
    }
    .await;
    report.suppressed = suppressed.count.load(std::sync::atomic::Ordering::Relaxed);
    if report.suppressed > 0 {
        tracing::info!(object, records = report.suppressed, "erased records left out (suppressed)");
    }
    // Versions read before an error are correct on their own: keep them. The bookmark only
    // moves on completion, so the next run re-reads (and de-duplicates) from the old one.
    let committed = sink.commit(&mut table).await;
    outcome?;
    committed?;
    Ok(())
}

pub(crate) fn select_list(plan: &SchemaPlan) -> String {
    plan.targets.iter().map(|(f, _, _)| f.as_str()).collect::<Vec<_>>().join(", ")
}

pub(crate) fn stamp(cx: &RunContext, origin: Origin, version_at: StampSource<i64>, deleted: StampSource<bool>) -> Stamp {
    Stamp { origin, run_id: cx.run_id.clone(), ingested_at_micros: micros(cx.clock.now()), version_at, deleted }
}

/// The org's "now" for versions Tidemark stamps itself.
pub(crate) fn org_now(cx: &RunContext) -> DateTime<Utc> {
    cx.client.server_time().unwrap_or_else(|| cx.clock.now())
}

/// Reads every version changed since `previous` (minus the overlap) with queryAll and appends
/// the ones the lake does not have yet.
async fn read_changes(
    cx: &RunContext,
    target: &mut Target<'_>,
    field: &str,
    content: &[String],
    previous: Option<DateTime<Utc>>,
    report: &mut ObjectReport,
) -> Result<(), SyncError> {
    let Target { object, plan, table, schema: table_schema, writer, api: choice, policies, suppressed } = target;
    let choice = *choice;
    let (object, plan): (&str, &SchemaPlan) = (object, plan);
    let overlap = chrono::Duration::from_std(cx.settings.overlap).unwrap_or_default();
    let since = previous.map(|b| b - overlap);
    let known: HashMap<VersionKey, u64> = table.version_digests_since(since, content).await?;
    let where_clause = since.map(|s| format!(" WHERE {field} >= {}", soql_datetime(s))).unwrap_or_default();
    let soql = format!("SELECT {} FROM {object}{where_clause}", select_list(plan));
    let expected = if choice == ApiChoice::Auto { Some(count(&cx.client, object, &where_clause, true).await?) } else { None };
    let schema = read_schema(plan);
    let mut extraction = Extraction::start(
        &cx.client,
        object,
        &soql,
        true,
        schema,
        choice,
        expected,
        cx.settings.bulk_threshold,
        cx.settings.bulk_page_records,
    )
    .await?
    .with_policies((*policies).clone())
    .with_suppressed((*suppressed).clone());
    report.api = Some(extraction.api);
    cx.observer.object_started(object, extraction.api, expected);
    let stamp = stamp(cx, Origin::Query, StampSource::Column(field.to_owned()), StampSource::Column("IsDeleted".to_owned()));
    // The next page downloads and decodes while this one is encoded and written: a producer
    // and a consumer joined in this task, one page in flight between them.
    let (pages, mut received) = tokio::sync::mpsc::channel::<Vec<RecordBatch>>(1);
    let produce = async move {
        while let Some(batches) = extraction.next().await? {
            if pages.send(batches).await.is_err() {
                break;
            }
        }
        Ok::<(), SyncError>(())
    };
    // `move`: returning (on success or error) drops the receiver, which ends the producer at
    // its next send instead of leaving it blocked on a full channel.
    let consume = async move {
        let mut max_seen = previous.map(micros);
        while let Some(batches) = received.recv().await {
            let mut page_rows = 0;
            for batch in batches {
                page_rows += batch.num_rows() as u64;
                let versions = to_history(&batch, Some(plan), table_schema, &stamp)
                    .map_err(|e| SyncError::Convert { object: object.to_owned(), source: e })?;
                let at = versions.column_by_name(VERSION_AT).expect("metadata column").as_primitive::<TimestampMicrosecondType>();
                if let Some(m) = tidemark_lake::arrow::compute::max(at) {
                    max_seen = Some(max_seen.map_or(m, |s| s.max(m)));
                }
                let fresh = drop_known(&versions, &known, content)
                    .map_err(|e| SyncError::Convert { object: object.to_owned(), source: e })?;
                report.deletes += count_true(&fresh, DELETED);
                report.versions_written += fresh.num_rows() as u64;
                writer.write(fresh).await?;
                if writer.pending_rows() >= cx.settings.commit_rows {
                    writer.commit(table).await?;
                }
            }
            report.rows_read += page_rows;
            cx.observer.records_read(object, page_rows);
        }
        Ok::<(Option<i64>, &mut ObjectReport), SyncError>((max_seen, report))
    };
    let (produced, consumed) = tokio::join!(produce, consume);
    let (max_seen, report) = consumed?;
    produced?;
    report.bookmark = max_seen.and_then(DateTime::from_timestamp_micros);
    Ok(())
}

/// Columns (lower case) that began receiving values in this run, or in a run of `object` that has
/// not completed since (`events` include this run's).
fn new_columns(cx: &RunContext, events: &[SchemaEvent], object: &str) -> HashSet<String> {
    let completed = |run: &str| {
        cx.past_runs.iter().any(|r| r.run_id == run && r.object.eq_ignore_ascii_case(object) && r.status == RunStatus::Complete)
    };
    events
        .iter()
        .filter(|e| e.object.eq_ignore_ascii_case(object) && e.kind != "field_removed" && e.kind != "table_created")
        .filter(|e| !completed(&e.run_id))
        .map(|e| e.column.to_ascii_lowercase())
        .collect()
}

/// Fields that changed without `SystemModstamp` moving, left out of content comparisons:
/// formulas (the re-snapshot's business) and the per-user "last viewed" stamps.
const VOLATILE_FIELDS: [&str; 2] = ["LastViewedDate", "LastReferencedDate"];

/// The columns whose values tell two versions with one key apart: every replicated field
/// except formulas and [`VOLATILE_FIELDS`].
///
/// Columns added by this run, or by an earlier run of the object that did not complete, are left
/// out too: versions stored before they existed hold nulls there, so a re-read would look new.
/// (Values a type change converted are the re-snapshot's business.)
fn content_columns(schema: &SourceSchema, plan: &SchemaPlan, new_columns: &HashSet<String>) -> Vec<String> {
    plan.targets
        .iter()
        .filter(|(_, c, _)| !new_columns.contains(&c.to_ascii_lowercase()))
        .filter(|(f, _, _)| schema.field(f).is_none_or(|sf| !sf.calculated))
        .filter(|(f, _, _)| !f.eq_ignore_ascii_case(ID) && !VOLATILE_FIELDS.iter().any(|v| v.eq_ignore_ascii_case(f)))
        .map(|(_, c, _)| c.clone())
        .collect()
}

/// Rows of `versions` the lake does not have: a key it lacks, or a key whose last stored
/// version has other content (a second save within the timestamp's precision).
fn drop_known(
    versions: &RecordBatch,
    known: &HashMap<VersionKey, u64>,
    content: &[String],
) -> Result<RecordBatch, tidemark_lake::arrow::error::ArrowError> {
    if known.is_empty() {
        return Ok(versions.clone());
    }
    let as_arrow = |e: tidemark_lake::LakeError| match e {
        tidemark_lake::LakeError::Arrow(a) => a,
        other => tidemark_lake::arrow::error::ArrowError::ComputeError(other.to_string()),
    };
    let ids = tidemark_lake::read::utf8(versions.column_by_name(ID).expect("Id column")).map_err(as_arrow)?;
    let at = versions.column_by_name(VERSION_AT).expect("metadata column").as_primitive::<TimestampMicrosecondType>();
    let deleted = versions.column_by_name(DELETED).expect("metadata column").as_boolean();
    let stored: Vec<Option<u64>> =
        (0..versions.num_rows()).map(|i| known.get(&(ids.value(i).to_owned(), at.value(i), deleted.value(i))).copied()).collect();
    if stored.iter().all(Option::is_none) {
        return Ok(versions.clone());
    }
    let digests = content_digests(versions, content).map_err(as_arrow)?;
    let keep: BooleanArray = stored.iter().zip(&digests).map(|(s, d)| Some(*s != Some(*d))).collect();
    filter_record_batch(versions, &keep)
}

fn count_true(batch: &RecordBatch, column: &str) -> u64 {
    batch.column_by_name(column).map_or(0, |c| c.as_boolean().true_count() as u64)
}
