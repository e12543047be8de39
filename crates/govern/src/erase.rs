//! `tidemark erase`: every version of some records removed from an object's history, with no
//! trace left under the lake, the records suppressed from later syncs, and an audit record.
//!
//! The order, and why a crash anywhere is safe:
//! 1. an audit record `started` (the erasure's Ids, the versions each table holds of them, who,
//!    why) and the suppressions are appended to the ledger, before anything is removed: a crash
//!    after this point leaves an erasure the next `tidemark erase` of the object resumes, with
//!    the Ids recorded here (a `--where` predicate would match nothing once rows are gone);
//! 2. the table's files holding those records are rewritten without them in one commit, and the
//!    old files, their log statistics and older checkpoints are removed ([`Scrub`]);
//! 3. an audit record `completed`.
//!
//! Readers see the table before or after step 2, never half-erased. Commits and the audit hold
//! record Ids and counts, never values.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tidemark_core::{Clock, SystemClock};
use tidemark_lake::arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, StringArray, UInt32Array};
use tidemark_lake::arrow::compute::filter_record_batch;
use tidemark_lake::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use tidemark_lake::columns::{ID, KEY, timestamp_type};
use tidemark_lake::policy::{column_tokens, file_tag};
use tidemark_lake::read::{HISTORY, quote, utf8};
use tidemark_lake::scrub::{self, Scrub, ScrubFile, ScrubMetrics};
use tidemark_lake::suppression::Suppression;
use tidemark_lake::{HistoryTable, LakeError, LakeLocation, Ledger, with_leases};

use crate::GovernError;
use crate::derived::Derived;

const ERASURES: &str = "erasures";

/// One audit record of `_tidemark/erasures`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasureRecord {
    pub erasure_id: String,
    pub at: DateTime<Utc>,
    /// `started` (before anything is removed) or `completed`.
    pub status: String,
    pub object: String,
    /// The erased records' Ids, a JSON array.
    pub ids: String,
    /// Versions removed per table, a JSON object.
    pub versions: String,
    /// Who asked (the operator's name), and why.
    pub by: String,
    pub reason: String,
    /// `erase`, or `rectify:<fields>` (the fields rewritten; their new values are not kept).
    pub action: String,
}

fn erasures_schema() -> SchemaRef {
    let text = |name: &str| Field::new(name, DataType::Utf8, false);
    Arc::new(Schema::new(vec![
        text("erasure_id"),
        Field::new("at", timestamp_type(), false),
        text("status"),
        text("object"),
        text("ids"),
        text("versions"),
        text("by"),
        text("reason"),
        text("action"),
    ]))
}

/// Which records to erase.
#[derive(Debug, Clone)]
pub enum Subjects {
    Ids(Vec<String>),
    /// A SQL predicate over the object's history: every record with a version matching it.
    Where(String),
}

/// What an erasure did (or, dry, would do).
#[derive(Debug, Clone, Default)]
pub struct EraseMetrics {
    pub erasure_id: String,
    pub ids: usize,
    /// Versions removed (dry: to remove) per table.
    pub versions: BTreeMap<String, u64>,
    pub scrub: ScrubMetrics,
    /// The derived tables looked into (dry run: to look into).
    pub derived_tables: Vec<String>,
    pub resumed: bool,
    pub dry_run: bool,
}

/// Builds and runs an erasure (see the module docs).
pub struct Erase {
    lake: LakeLocation,
    object: String,
    subjects: Subjects,
    by: String,
    reason: String,
    dry_run: bool,
    clock: Arc<dyn Clock>,
    /// Rectification: these fields get these values (as text, cast to the column's type) in
    /// every version of the records, which stay (and keep syncing).
    rectify: Vec<(String, String)>,
    /// Applies a rectified column's recorded policy (a hashed field gets the hash of the value).
    governance: Arc<tidemark_core::governance::Governance>,
    /// Dimensions and push flows that may hold rows derived from the records.
    derived: Derived,
}

impl Erase {
    pub fn new(lake: LakeLocation, object: impl Into<String>, subjects: Subjects) -> Erase {
        Erase {
            lake,
            object: object.into(),
            subjects,
            by: String::new(),
            reason: String::new(),
            dry_run: false,
            clock: Arc::new(SystemClock),
            rectify: Vec::new(),
            governance: Default::default(),
            derived: Derived::default(),
        }
    }

    /// The configured models and push flows: rows derived from the erased records are cleared
    /// from them too, or rectified (see [`crate::derived`]).
    pub fn with_derived(
        mut self,
        models: &BTreeMap<String, tidemark_core::models::ModelConfig>,
        flows: &BTreeMap<String, tidemark_core::push::PushConfig>,
    ) -> Erase {
        self.derived = Derived::of(&self.object, models, flows);
        self
    }

    /// The field policies (their key): a rectified value is stored under its column's policy.
    pub fn with_governance(mut self, governance: Arc<tidemark_core::governance::Governance>) -> Erase {
        self.governance = governance;
        self
    }

    /// Rectify instead of erase: `fields` (field, new value) rewritten in every version of the
    /// records; the old values leave no trace, the records are not suppressed.
    pub fn with_rectify(mut self, fields: Vec<(String, String)>) -> Erase {
        self.rectify = fields;
        self
    }

    /// Who asked and why, for the audit record.
    pub fn with_audit(mut self, by: impl Into<String>, reason: impl Into<String>) -> Erase {
        self.by = by.into();
        self.reason = reason.into();
        self
    }

    pub fn with_dry_run(mut self, dry_run: bool) -> Erase {
        self.dry_run = dry_run;
        self
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Erase {
        self.clock = clock;
        self
    }

    pub async fn run(self) -> Result<EraseMetrics, GovernError> {
        if self.dry_run {
            let mut table = self.open().await?;
            return self.erase(&mut table).await;
        }
        // The lease its writer takes: the object's, or the whole source's (`<source>.<table>`).
        let mut resources = vec![match self.object.split_once('.') {
            Some((source, _)) => format!("sources/{}", source.to_ascii_lowercase()),
            None => LakeLocation::table_resource(&self.object),
        }];
        resources.extend(self.derived.leases());
        let (lake, clock) = (self.lake.clone(), self.clock.clone());
        with_leases(&lake, &resources, "erase", Duration::from_secs(120), clock, async |_: &[Arc<tidemark_lake::Lease>]| {
            let mut table = self.open().await?;
            self.erase(&mut table).await
        })
        .await
    }

    async fn open(&self) -> Result<HistoryTable, GovernError> {
        crate::apply::open(&self.lake, &self.object).await
    }

    async fn erase(&self, table: &mut HistoryTable) -> Result<EraseMetrics, GovernError> {
        let ledger = Ledger::new(self.lake.clone());
        let records: Vec<ErasureRecord> = ledger.read_rows(ERASURES).await?;
        let unfinished = records
            .iter()
            .filter(|r| r.object.eq_ignore_ascii_case(&self.object) && r.status == "started")
            .find(|r| !records.iter().any(|c| c.erasure_id == r.erasure_id && c.status == "completed"))
            .cloned();
        let mut resumed_ids = HashSet::new();
        if let Some(record) = unfinished.filter(|_| !self.dry_run) {
            // An erasure a crash interrupted: finish it first, with its own Ids.
            let ids: Vec<String> = serde_json::from_str(&record.ids)
                .map_err(|e| LakeError::Layout { table: ERASURES.into(), detail: e.to_string() })?;
            tracing::info!(erasure_id = record.erasure_id, records = ids.len(), "resuming an interrupted erasure");
            let metrics = self.execute(table, &ledger, record, ids.clone(), true).await?;
            resumed_ids.extend(ids);
            // The same request again (the usual way to finish one): done.
            if matches!(&self.subjects, Subjects::Ids(wanted) if wanted.iter().all(|id| id.trim().is_empty() || resumed_ids.contains(id.trim())))
            {
                return Ok(metrics);
            }
        }
        let ids: Vec<String> = self.subject_ids(table).await?.into_iter().filter(|id| !resumed_ids.contains(id)).collect();
        let versions = count_versions(table, &ids).await?;
        let now = self.clock.now();
        let record = ErasureRecord {
            erasure_id: tidemark_lake::ledger::new_run_id(now),
            at: now,
            status: "started".into(),
            object: self.object.clone(),
            ids: serde_json::to_string(&ids).expect("strings"),
            versions: serde_json::to_string(&BTreeMap::from([(self.object.clone(), versions)])).expect("counts"),
            by: self.by.clone(),
            reason: self.reason.clone(),
            action: if self.rectify.is_empty() {
                "erase".to_owned()
            } else {
                format!("rectify:{}", self.rectify.iter().map(|(f, _)| f.as_str()).collect::<Vec<_>>().join(","))
            },
        };
        if self.dry_run {
            return Ok(EraseMetrics {
                erasure_id: record.erasure_id,
                ids: ids.len(),
                versions: BTreeMap::from([(self.object.clone(), versions)]),
                derived_tables: self.derived.tables(),
                dry_run: true,
                ..EraseMetrics::default()
            });
        }
        self.execute(table, &ledger, record, ids, false).await
    }

    /// Steps 1 (unless `resumed`) to 3 of the module docs for `started`.
    async fn execute(
        &self,
        table: &mut HistoryTable,
        ledger: &Ledger,
        started: ErasureRecord,
        ids: Vec<String>,
        resumed: bool,
    ) -> Result<EraseMetrics, GovernError> {
        let versions: BTreeMap<String, u64> = serde_json::from_str(&started.versions).unwrap_or_default();
        let mut metrics =
            EraseMetrics { erasure_id: started.erasure_id.clone(), ids: ids.len(), versions, resumed, ..EraseMetrics::default() };
        // The new values of a rectification are never kept: an interrupted one is finished by
        // the same command again.
        let fields = |pairs: &[(String, String)]| pairs.iter().map(|(f, _)| f.as_str()).collect::<Vec<_>>().join(",");
        let rectify = match started.action.strip_prefix("rectify:") {
            Some(recorded) if recorded == fields(&self.rectify) => self.rectified_columns(table)?,
            Some(recorded) => {
                return Err(GovernError::Unsupported(format!(
                    "rectification {} of {recorded} was interrupted: run it again with the same --rectify fields and values",
                    started.erasure_id
                )));
            }
            None => Vec::new(),
        };
        if !resumed {
            ledger.append_rows(ERASURES, erasures_schema(), std::slice::from_ref(&started)).await?;
        }
        if !resumed && rectify.is_empty() {
            let suppressions: Vec<Suppression> = ids
                .iter()
                .map(|id| Suppression {
                    at: started.at,
                    object: self.object.clone(),
                    id: id.clone(),
                    erasure_id: started.erasure_id.clone(),
                    lifted: false,
                })
                .collect();
            ledger.record_suppressions(&suppressions).await?;
        }
        let wanted: Arc<HashSet<String>> = Arc::new(ids.iter().cloned().collect());
        // Derived rows first: a dimension's business keys are read from the history.
        let derived = self.derived.erase(&self.lake, table, &wanted, &rectify).await?;
        metrics.derived_tables = self.derived.tables();
        metrics.versions.extend(derived);
        let files = files_holding(table, &wanted).await?;
        let keep = wanted.clone();
        // The new files are tagged with the columns' policies, so their rows are brought under
        // them first (a file written before a policy changed would otherwise be mislabelled);
        // rectified values are already stored under them.
        let want = column_tokens(table.schema()?.as_ref());
        let tag = file_tag(&want);
        let (governance, name) = (self.governance.clone(), table.object().to_owned());
        let rectify = Arc::new(rectify);
        let transform: tidemark_lake::scrub::RowTransform = Arc::new(move |have, batch| {
            let governed = crate::apply::bring_under(&governance, &name, &want, have, &batch)?;
            if rectify.is_empty() { without_ids(&governed, &keep) } else { rectified(&governed, &keep, &rectify) }
        });
        metrics.scrub = Scrub::new("erase", files, transform)
            .with_file_tag(tag)
            .with_commit_metadata(vec![
                ("tidemark.erasure_id".to_owned(), started.erasure_id.clone().into()),
                ("tidemark.action".to_owned(), started.action.clone().into()),
                ("tidemark.records".to_owned(), ids.len().into()),
            ])
            .run(table)
            .await?;
        // The completed record counts what was removed from every table, derived ones included.
        let versions = serde_json::to_string(&metrics.versions).expect("counts");
        let completed = ErasureRecord { at: self.clock.now(), status: "completed".into(), versions, ..started };
        ledger.append_rows(ERASURES, erasures_schema(), std::slice::from_ref(&completed)).await?;
        Ok(metrics)
    }

    /// The rectified columns with their new value, typed as the column (one-row arrays).
    fn rectified_columns(&self, table: &HistoryTable) -> Result<Vec<(String, ArrayRef)>, GovernError> {
        let schema = table.schema()?;
        let mut out = Vec::new();
        for (field, value) in &self.rectify {
            let Some((_, column)) = schema.column_with_name(field) else {
                return Err(GovernError::Unsupported(format!("--rectify {field}: {} has no such column", table.object())));
            };
            if tidemark_lake::columns::METADATA_COLUMNS.contains(&field.as_str()) || field == ID || field == key_column(table)? {
                return Err(GovernError::Unsupported(format!(
                    "--rectify {field}: the key and metadata columns are not rectified"
                )));
            }
            let text: ArrayRef = Arc::new(StringArray::from(vec![value.as_str()]));
            let typed =
                tidemark_lake::arrow::compute::cast(&text, column.data_type()).ok().filter(|a| a.is_valid(0)).ok_or_else(
                    || GovernError::Unsupported(format!("--rectify {field}: the value is not a {}", column.data_type())),
                )?;
            // Stored under the column's policy, as a sync would store it.
            let tokens: Vec<(String, String)> = column_tokens(&schema).into_iter().filter(|(c, _)| c == field).collect();
            let policies = tidemark_lake::policy::ColumnPolicies::from_tokens(&self.governance, table.object(), &tokens)?;
            let one = RecordBatch::try_new(Arc::new(Schema::new(vec![column.clone()])), vec![typed]).map_err(LakeError::Arrow)?;
            let governed = policies.apply(&one).map_err(LakeError::Arrow)?;
            out.push((field.clone(), governed.column(0).clone()));
        }
        Ok(out)
    }

    async fn subject_ids(&self, table: &HistoryTable) -> Result<Vec<String>, GovernError> {
        let mut ids: Vec<String> = match &self.subjects {
            Subjects::Ids(ids) => ids.iter().map(|id| id.trim().to_owned()).filter(|id| !id.is_empty()).collect(),
            Subjects::Where(predicate) => {
                let ctx = table.session().await?;
                let sql = format!("SELECT DISTINCT {} FROM {HISTORY} WHERE {predicate}", quote(key_column(table)?));
                let mut out = Vec::new();
                for b in table.collect(&ctx, &sql).await? {
                    let ids = utf8(b.column(0))?;
                    out.extend((0..ids.len()).filter(|&r| ids.is_valid(r)).map(|r| ids.value(r).to_owned()));
                }
                out
            }
        };
        ids.sort();
        ids.dedup();
        Ok(ids)
    }
}

/// Lifts the suppression of `ids` of `object` (erased earlier), so syncs read them again: a
/// full sync brings back their current state (their erased history stays erased). Returns how
/// many were suppressed. Audited as the action `lift`.
pub async fn lift_suppressions(
    lake: &LakeLocation,
    object: &str,
    ids: &[String],
    (by, reason): (&str, &str),
    clock: &dyn Clock,
) -> Result<usize, GovernError> {
    let ledger = Ledger::new(lake.clone());
    let suppressed = ledger.suppressed().await?.remove(&object.to_ascii_lowercase()).unwrap_or_default();
    let lifted: Vec<String> = ids.iter().map(|id| id.trim().to_owned()).filter(|id| suppressed.contains(id)).collect();
    if lifted.is_empty() {
        return Ok(0);
    }
    let now = clock.now();
    let erasure_id = tidemark_lake::ledger::new_run_id(now);
    let rows: Vec<Suppression> = lifted
        .iter()
        .map(|id| Suppression {
            at: now,
            object: object.to_owned(),
            id: id.clone(),
            erasure_id: erasure_id.clone(),
            lifted: true,
        })
        .collect();
    ledger.record_suppressions(&rows).await?;
    let record = ErasureRecord {
        erasure_id,
        at: now,
        status: "completed".into(),
        object: object.to_owned(),
        ids: serde_json::to_string(&lifted).expect("strings"),
        versions: "{}".into(),
        by: by.to_owned(),
        reason: reason.to_owned(),
        action: "lift".into(),
    };
    ledger.append_rows(ERASURES, erasures_schema(), std::slice::from_ref(&record)).await?;
    Ok(lifted.len())
}

impl std::future::IntoFuture for Erase {
    type Output = Result<EraseMetrics, GovernError>;
    type IntoFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

/// The column naming a record: `_key` in other sources' tables, `Id` in Salesforce objects'
/// (and Heroku Connect mirrors').
fn key_column(table: &HistoryTable) -> Result<&'static str, GovernError> {
    Ok(if table.schema()?.field_with_name(KEY).is_ok() { KEY } else { ID })
}

/// Versions of `ids` in the table.
async fn count_versions(table: &HistoryTable, ids: &[String]) -> Result<u64, GovernError> {
    if ids.is_empty() {
        return Ok(0);
    }
    let wanted: HashSet<&str> = ids.iter().map(String::as_str).collect();
    let ctx = table.session().await?;
    let mut count = 0;
    for b in table.collect(&ctx, &format!("SELECT {} FROM {HISTORY}", quote(key_column(table)?))).await? {
        let column = utf8(b.column(0))?;
        count += (0..column.len()).filter(|&r| column.is_valid(r) && wanted.contains(column.value(r))).count() as u64;
    }
    Ok(count)
}

/// The data files holding a version of one of `ids`.
async fn files_holding(table: &HistoryTable, ids: &HashSet<String>) -> Result<Vec<ScrubFile>, GovernError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut sorted: Vec<String> = ids.iter().cloned().collect();
    sorted.sort();
    // The log's Id ranges rule most files out without reading them.
    let holds = |batch: &RecordBatch| {
        let column = utf8(batch.column(0))?;
        Ok((0..column.len()).any(|r| column.is_valid(r) && ids.contains(column.value(r))))
    };
    let key = key_column(table)?;
    Ok(scrub::files_holding(table.delta(), table.object(), Some(&[key]), |f| f.excludes(key, &sorted), holds).await?)
}

/// `batch` with the rectified columns set on the rows of `ids`.
fn rectified(
    batch: &RecordBatch,
    ids: &HashSet<String>,
    columns: &[(String, ArrayRef)],
) -> tidemark_lake::error::Result<RecordBatch> {
    let id = utf8(batch.column_by_name(KEY).or_else(|| batch.column_by_name(ID)).expect("history tables have a key"))?;
    let hit: BooleanArray = (0..id.len()).map(|r| Some(id.is_valid(r) && ids.contains(id.value(r)))).collect();
    let mut out: Vec<ArrayRef> = batch.columns().to_vec();
    for (name, value) in columns {
        let index = batch.schema().index_of(name)?;
        let repeated =
            tidemark_lake::arrow::compute::take(value.as_ref(), &UInt32Array::from(vec![0u32; batch.num_rows()]), None)?;
        out[index] = tidemark_lake::arrow::compute::kernels::zip::zip(&hit, &repeated, &out[index])?;
    }
    Ok(RecordBatch::try_new(batch.schema(), out)?)
}

fn without_ids(batch: &RecordBatch, ids: &HashSet<String>) -> tidemark_lake::error::Result<RecordBatch> {
    let column = utf8(batch.column_by_name(KEY).or_else(|| batch.column_by_name(ID)).expect("history tables have a key"))?;
    let keep: BooleanArray = (0..column.len()).map(|r| Some(!(column.is_valid(r) && ids.contains(column.value(r))))).collect();
    Ok(filter_record_batch(batch, &keep)?)
}
