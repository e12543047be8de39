//! Versions found by reading narrow slices of an object whole and comparing them with the
//! lake: Id reconciliation (hard deletes), re-snapshots (formulas, type changes) and
//! snapshot-and-diff for objects without a timestamp.

use std::sync::Arc;

use tidemark_lake::policy::ColumnPolicies;

use chrono::DateTime;
use tidemark_lake::HistoryTable;
use tidemark_lake::arrow::array::{BooleanArray, RecordBatch};
use tidemark_lake::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use tidemark_lake::columns::{ID, Origin};
use tidemark_lake::schema_plan::SchemaPlan;

use crate::compare::{Comparison, compare};
use crate::convert::{Stamp, StampSource, read_schema, to_history};
use crate::error::SyncError;
use crate::extract::{Extraction, count};
use crate::object_source::ObjectSink;
use crate::object_sync::{RunContext, micros, org_now, select_list, stamp};
use crate::report::ObjectReport;

/// The table one object's run writes to, and how its fields map onto it.
pub(crate) struct Target<'a> {
    pub object: &'a str,
    pub plan: &'a SchemaPlan,
    pub table: &'a mut HistoryTable,
    pub schema: SchemaRef,
    pub writer: &'a mut ObjectSink,
    /// Which API reads this object (from its settings).
    pub api: crate::config::ApiChoice,
    /// Applied to every value read, before comparing or writing.
    pub policies: &'a ColumnPolicies,
    /// Erased records every read leaves out.
    pub suppressed: &'a crate::extract::Suppressed,
}

/// What kind of version a batch of compared rows becomes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Changed,
    Snapshot,
    Deleted,
}

impl Target<'_> {
    fn convert_err(&self) -> impl Fn(tidemark_lake::arrow::error::ArrowError) -> SyncError + '_ {
        move |e| SyncError::Convert { object: self.object.to_owned(), source: e }
    }

    /// Stamps rows read back from the lake (or fetched, named as columns) and appends them,
    /// counting them in the report under `kind`.
    async fn append(
        &mut self,
        rows: Vec<RecordBatch>,
        stamp: &Stamp,
        kind: Kind,
        report: &mut ObjectReport,
    ) -> Result<(), SyncError> {
        for batch in rows {
            let mut versions = to_history(&batch, None, &self.schema, stamp).map_err(self.convert_err())?;
            if kind == Kind::Deleted {
                // The Salesforce flag agrees with the version's `_deleted`.
                if let Some(column) = self.plan.column_of("IsDeleted") {
                    versions = set_bool(&versions, column, true);
                }
            }
            let n = versions.num_rows() as u64;
            match kind {
                Kind::Changed => {}
                Kind::Snapshot => report.snapshot_versions += n,
                Kind::Deleted => report.hard_deletes += n,
            }
            report.versions_written += n;
            self.writer.write(versions).await?;
        }
        Ok(())
    }
}

fn set_bool(batch: &RecordBatch, column: &str, value: bool) -> RecordBatch {
    let Ok(i) = batch.schema().index_of(column) else { return batch.clone() };
    let mut columns = batch.columns().to_vec();
    columns[i] = Arc::new(BooleanArray::from(vec![value; batch.num_rows()]));
    RecordBatch::try_new(batch.schema(), columns).expect("same schema")
}

/// Reads a query completely into memory (Id-only and formula reads: narrow by design).
/// Takes the object and API rather than the `Target`: a `&Target` held across awaits would
/// need the writer to be `Sync`.
async fn read_all(
    cx: &RunContext,
    (object, choice, policies, suppressed): (&str, crate::config::ApiChoice, &ColumnPolicies, &crate::extract::Suppressed),
    soql: &str,
    include_deleted: bool,
    schema: SchemaRef,
    report: &mut ObjectReport,
) -> Result<Vec<RecordBatch>, SyncError> {
    let expected =
        if choice == crate::config::ApiChoice::Auto { Some(count(&cx.client, object, "", include_deleted).await?) } else { None };
    let mut extraction = Extraction::start(
        &cx.client,
        object,
        soql,
        include_deleted,
        schema,
        choice,
        expected,
        cx.settings.bulk_threshold,
        cx.settings.bulk_page_records,
    )
    .await?
    .with_policies(policies.clone())
    .with_suppressed(suppressed.clone());
    report.api.get_or_insert(extraction.api);
    let mut out = Vec::new();
    while let Some(batches) = extraction.next().await? {
        report.rows_read += batches.iter().map(|b| b.num_rows() as u64).sum::<u64>();
        out.extend(batches);
    }
    Ok(out)
}

fn id_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(ID, DataType::Utf8, false)]))
}

fn id_only() -> [(String, String); 1] {
    [(ID.to_owned(), ID.to_owned())]
}

/// Finds live records that vanished from the org (hard deletes, purges the incremental read
/// cannot see) and appends a delete version for each, carrying its last values.
pub(crate) async fn reconcile(cx: &RunContext, target: &mut Target<'_>, report: &mut ObjectReport) -> Result<(), SyncError> {
    // Pending versions must be visible to the comparison.
    target.writer.commit(target.table).await?;
    let object = target.object;
    let ids = read_all(
        cx,
        (target.object, target.api, target.policies, target.suppressed),
        &format!("SELECT Id FROM {object}"),
        true,
        id_schema(),
        report,
    )
    .await?;
    let detected_at = org_now(cx);
    let gone = compare(target.table, ids, id_schema(), &id_only(), Comparison::Vanished).await?;
    let stamp = stamp(cx, Origin::Reconcile, StampSource::Fixed(micros(detected_at)), StampSource::Fixed(true));
    target.append(gone, &stamp, Kind::Deleted, report).await?;
    report.reconciled_at = Some(cx.clock.now());
    Ok(())
}

/// Re-reads `fields` (API name, column) of live records and appends a version for each record
/// whose values changed without its timestamp moving (formulas; values converted by a type
/// change). The version carries the record's other values from its current version.
pub(crate) async fn resnapshot(
    cx: &RunContext,
    target: &mut Target<'_>,
    fields: &[(String, String)],
    report: &mut ObjectReport,
) -> Result<(), SyncError> {
    target.writer.commit(target.table).await?;
    let mut fields: Vec<(String, String)> = fields.to_vec();
    fields.insert(0, (ID.to_owned(), ID.to_owned()));
    let read = Arc::new(Schema::new(
        fields
            .iter()
            .map(|(f, c)| {
                Field::new(f, target.schema.field_with_name(c).map(|x| x.data_type().clone()).unwrap_or(DataType::Utf8), true)
            })
            .collect::<Vec<_>>(),
    ));
    let object = target.object;
    let soql = format!("SELECT {} FROM {object}", fields.iter().map(|(f, _)| f.as_str()).collect::<Vec<_>>().join(", "));
    let rows =
        read_all(cx, (target.object, target.api, target.policies, target.suppressed), &soql, false, read.clone(), report).await?;
    let observed_at = org_now(cx);
    let changed = compare(target.table, rows, read, &fields, Comparison::Changed).await?;
    let stamp = stamp(cx, Origin::Snapshot, StampSource::Fixed(micros(observed_at)), StampSource::Fixed(false));
    target.append(changed, &stamp, Kind::Snapshot, report).await
}

/// Objects without a timestamp field: read everything, append new and changed records, and
/// delete versions for records that vanished.
pub(crate) async fn snapshot_diff(cx: &RunContext, target: &mut Target<'_>, report: &mut ObjectReport) -> Result<(), SyncError> {
    let object = target.object;
    let schema = read_schema(target.plan);
    let soql = format!("SELECT {} FROM {object}", select_list(target.plan));
    let rows =
        read_all(cx, (target.object, target.api, target.policies, target.suppressed), &soql, false, schema.clone(), report)
            .await?;
    let observed_at = micros(org_now(cx));
    let fields: Vec<(String, String)> = target.plan.targets.iter().map(|(f, c, _)| (f.clone(), c.clone())).collect();
    let changed = compare(target.table, rows.clone(), schema.clone(), &fields, Comparison::NewOrChanged).await?;
    let upsert = stamp(cx, Origin::Query, StampSource::Fixed(observed_at), StampSource::Fixed(false));
    target.append(changed, &upsert, Kind::Changed, report).await?;
    target.writer.commit(target.table).await?;
    let ids: Vec<RecordBatch> = rows.iter().map(|b| b.project(&[0]).expect("Id is the first field")).collect();
    let ids_schema = Arc::new(schema.project(&[0]).expect("Id is the first field"));
    let gone = compare(target.table, ids, ids_schema, &id_only(), Comparison::Vanished).await?;
    let deleted = stamp(cx, Origin::Reconcile, StampSource::Fixed(observed_at), StampSource::Fixed(true));
    target.append(gone, &deleted, Kind::Deleted, report).await?;
    report.bookmark = DateTime::from_timestamp_micros(observed_at);
    Ok(())
}
