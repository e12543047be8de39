//! [`Ingest`]: drives any [`Source`] into its history tables: under `sources/<source>/`, or
//! under `objects/` for the Salesforce sync ([`TableLayout`]).
//!
//! What every source shares lives here: tables created and evolved from [`TableSpec`]s, the
//! `_key` and metadata columns, unchanged values filled from a record's previous version,
//! truncates as delete versions, commits numbered by the source's position (so a re-delivered
//! transaction is recognised and a crash loses nothing), acknowledgement only after the commit,
//! the source's lease and its schema events in the ledger.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use deltalake::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch, TimestampMicrosecondArray};
use deltalake::arrow::compute::interleave;
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use tidemark_core::governance::Governance;
use tidemark_core::{Clock, SystemClock};

use crate::columns::{DELETED, KEY, LSN, VERSION_AT, timestamp_type};
use crate::error::{LakeError, Result};
use crate::history::HistoryTable;
use crate::lease::{Lease, with_lease};
use crate::ledger::{Ledger, RunStatus, SchemaEvent, SyncRunRecord};
use crate::location::LakeLocation;
use crate::policy::ColumnPolicies;
use crate::schema_plan::{self, Evolution};
use crate::source::{CaptureKind, Change, Position, SOURCE_TYPE, Source, SourceError, TableLayout, TableSpec, Versions};
use crate::writer::{VersionWriter, app_id};

mod policies;
mod rows;
mod suppressed;
pub use rows::record_keys;
use rows::{fill_unchanged, initial_schema, shape};

/// Why an ingest run stopped.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("source {source_name}: {error}")]
    Source {
        source_name: String,
        #[source]
        error: SourceError,
    },
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error("arrow: {0}")]
    Arrow(#[from] deltalake::arrow::error::ArrowError),
    #[error("source {source_name}, table {table}: {detail}")]
    Contract { source_name: String, table: String, detail: String },
    /// A field policy does not fit the table (hash of a number, another hash key, …).
    #[error(transparent)]
    Policy(#[from] tidemark_core::ConfigError),
}

impl IngestError {
    /// Whether running again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            IngestError::Source { error, .. } => error.retryable,
            IngestError::Lake(e) => e.is_retryable(),
            IngestError::Contract { .. } | IngestError::Arrow(_) | IngestError::Policy(_) => false,
        }
    }
}

/// What a run reports as it goes, for progress displays and logs. Called on the run's task
/// between steps: implementations return at once and never fail the run.
pub trait IngestObserver: Send + Sync {
    /// `versions` of `table` were written, not committed yet.
    fn versions_written(&self, _source: &str, _table: &str, _versions: u64) {}
    /// `versions` of `table` were committed; the table holds the source up to `position`.
    fn committed(&self, _source: &str, _table: &str, _versions: u64, _position: Position) {}
}

/// What one table received in a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableMetrics {
    /// Versions from the initial copy.
    pub copied: u64,
    /// Versions from the source's changes (deletes included).
    pub changes: u64,
    pub deletes: u64,
    pub truncates: u64,
    pub schema_changes: u64,
    /// Cells filled from a previous version (unchanged TOAST values).
    pub filled: u64,
    /// Versions of records an erasure suppressed, left out.
    pub suppressed: u64,
    pub commits: u64,
    /// The position the table holds the source up to after the run.
    pub position: Option<Position>,
}

/// What an ingest run did.
#[derive(Debug, Clone, Default)]
pub struct IngestMetrics {
    pub run_id: String,
    pub tables: BTreeMap<String, TableMetrics>,
    /// The last position acknowledged to the source.
    pub acknowledged: Option<Position>,
    pub duration: Duration,
}

impl IngestMetrics {
    pub fn versions(&self) -> u64 {
        self.tables.values().map(|t| t.copied + t.changes).sum()
    }
}

/// Reads a [`Source`] into the lake, the way delta-rs builds its operations:
///
/// ```no_run
/// # async fn f(lake: tidemark_lake::LakeLocation, source: Box<dyn tidemark_lake::source::Source>) -> Result<(), tidemark_lake::ingest::IngestError> {
/// let metrics = tidemark_lake::ingest::Ingest::new(lake, source).with_commit_rows(50_000).await?;
/// println!("{} versions", metrics.versions());
/// # Ok(()) }
/// ```
///
/// Contract: every transaction the source reports is in the lake exactly once after a run that
/// returns `Ok`, whatever crashed in earlier runs (see [`Source`]'s idempotency rule); the
/// source is acknowledged a position only after the commits holding it; one run per source at
/// a time (the lease `sources/<source>`). Memory: the versions written since the last commit
/// are kept (to fill unchanged values and to truncate) until it, so commits come every
/// `commit_rows` versions at the first transaction end past them.
pub struct Ingest {
    lake: LakeLocation,
    source: Box<dyn Source>,
    run_id: Option<String>,
    clock: Arc<dyn Clock>,
    commit_rows: u64,
    lease_ttl: Duration,
    lease: Option<Arc<Lease>>,
    run_records: bool,
    observer: Option<Arc<dyn IngestObserver>>,
    governance: Option<Arc<Governance>>,
}

impl Ingest {
    pub fn new(lake: LakeLocation, source: Box<dyn Source>) -> Ingest {
        Ingest {
            lake,
            source,
            run_id: None,
            clock: Arc::new(SystemClock),
            commit_rows: 100_000,
            lease_ttl: Duration::from_secs(300),
            lease: None,
            run_records: true,
            observer: None,
            governance: None,
        }
    }

    /// Field policies: a source's tables get the policies `governance` gives them, applied to
    /// every batch before it is written, recorded per column and per data file (see
    /// [`crate::policy`]). In the objects namespace the producer applies its own and hands
    /// their tokens in [`TableSpec::policies`].
    pub fn with_governance(mut self, governance: Arc<Governance>) -> Ingest {
        self.governance = Some(governance);
        self
    }

    /// Reports writes and commits as they happen (the CLI's progress display).
    pub fn with_observer(mut self, observer: Arc<dyn IngestObserver>) -> Ingest {
        self.observer = Some(observer);
        self
    }

    /// Runs under a lease the caller holds (and renews) instead of taking the source's own:
    /// a Salesforce sync takes every object's lease before writing any.
    pub fn with_lease(mut self, lease: Arc<Lease>) -> Ingest {
        self.lease = Some(lease);
        self
    }

    /// Whether the run appends its per-table records to the ledger's `sync_runs` (default
    /// true). A source that keeps richer records of its own (the Salesforce sync's bookmarks
    /// and reconciliation dates) turns this off and writes them itself.
    pub fn with_run_records(mut self, record: bool) -> Ingest {
        self.run_records = record;
        self
    }

    pub fn with_run_id(mut self, run_id: impl Into<String>) -> Ingest {
        self.run_id = Some(run_id.into());
        self
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Ingest {
        self.clock = clock;
        self
    }

    /// Commit at the first transaction end after this many uncommitted versions (default 100,000).
    pub fn with_commit_rows(mut self, rows: u64) -> Ingest {
        self.commit_rows = rows.max(1);
        self
    }

    pub fn with_lease_ttl(mut self, ttl: Duration) -> Ingest {
        self.lease_ttl = ttl;
        self
    }

    pub async fn run(self) -> Result<IngestMetrics, IngestError> {
        let timer = Instant::now();
        let name = self.source.name().to_ascii_lowercase();
        let run_id = self.run_id.clone().unwrap_or_else(|| crate::ledger::new_run_id(self.clock.now()));
        // One run per source, or per object in the objects namespace (as the Salesforce sync
        // leases them).
        let resource = match (self.source.layout(), self.source.tables().as_deref()) {
            (TableLayout::Objects, Some([one])) => LakeLocation::table_resource(one),
            _ => format!("sources/{name}"),
        };
        let (lake, clock, ttl) = (self.lake.clone(), self.clock.clone(), self.lease_ttl);
        let held_lease = self.lease.clone();
        let work = async |lease: &Lease| {
            let layout = self.source.layout();
            let ledger = Ledger::new(self.lake.clone());
            let past_events = ledger.schema_events().await?;
            let suppressed = ledger.suppressed().await?;
            let mut run = Run {
                lake: self.lake.clone(),
                source_name: name.clone(),
                layout,
                run_id: run_id.clone(),
                clock: self.clock.clone(),
                commit_rows: self.commit_rows,
                ledger,
                past_events,
                tables: HashMap::new(),
                last_commit: None,
                uncommitted: false,
                open_tables: std::collections::HashSet::new(),
                metrics: IngestMetrics { run_id: run_id.clone(), ..Default::default() },
                observer: self.observer.clone(),
                governance: self.governance.clone(),
                suppressed,
            };
            let started = self.clock.now();
            let held = held_in(&self.lake, &name, layout, self.source.tables()).await?;
            let mut source = self.source;
            let outcome = run.drive(source.as_mut(), lease, &held).await;
            if self.run_records {
                let records = run.run_records(started, &held, outcome.as_ref().err());
                // A clone: the run (whose writers are not `Sync`) is not borrowed across the await.
                run.ledger.clone().record_runs(&records).await?;
            }
            outcome?;
            Ok::<_, IngestError>(run.metrics)
        };
        let mut metrics = match held_lease {
            Some(lease) => {
                lease.ensure_held()?;
                work(&lease).await?
            }
            None => with_lease(&lake, &resource, "ingest", ttl, clock, work).await?,
        };
        metrics.duration = timer.elapsed();
        tracing::info!(source = name, run_id, versions = metrics.versions(), "ingest finished");
        Ok(metrics)
    }
}

impl std::future::IntoFuture for Ingest {
    type Output = Result<IngestMetrics, IngestError>;
    type IntoFuture = futures::future::BoxFuture<'static, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

/// The app id a source table's commits are numbered under (by position).
pub fn source_app_id(source: &str, table: &str) -> String {
    app_id("source", &format!("{source}.{table}"))
}

/// The position each of `source`'s tables is held up to in the lake.
pub async fn held_positions(lake: &LakeLocation, source: &str) -> Result<HashMap<String, Position>> {
    held_in(lake, source, TableLayout::Source, None).await
}

/// The position each of `tables` (default: all of the layout's) is held up to.
async fn held_in(
    lake: &LakeLocation,
    source: &str,
    layout: TableLayout,
    tables: Option<Vec<String>>,
) -> Result<HashMap<String, Position>> {
    let tables = match (tables, layout) {
        (Some(t), _) => t,
        (None, TableLayout::Source) => lake.source_tables(source).await?,
        (None, TableLayout::Objects) => lake.history_tables().await?,
    };
    let mut held = HashMap::new();
    for table in tables {
        if let Some(t) = open_table(lake, source, layout, &table).await? {
            if let Some(p) = t.transaction_version(&table_app_id(source, layout, &table)).await? {
                held.insert(table, p);
            }
        }
    }
    Ok(held)
}

async fn open_table(lake: &LakeLocation, source: &str, layout: TableLayout, table: &str) -> Result<Option<HistoryTable>> {
    match layout {
        TableLayout::Source => HistoryTable::open_source(lake, source, table).await,
        TableLayout::Objects => HistoryTable::open(lake, table).await,
    }
}

/// The app id a table's commits are numbered under: the Salesforce sync's for objects, so
/// lakes it wrote before the seam carry on.
fn table_app_id(source: &str, layout: TableLayout, table: &str) -> String {
    match layout {
        TableLayout::Source => source_app_id(source, table),
        TableLayout::Objects => app_id("sync", table),
    }
}

/// Versions written since the table's last commit, for fills and truncates.
#[derive(Default)]
struct Pending {
    batches: Vec<RecordBatch>,
    /// `_key` → its latest pending version (batch, row).
    rows: HashMap<String, (usize, usize)>,
}

struct TableState {
    spec: TableSpec,
    table: HistoryTable,
    writer: VersionWriter,
    schema: SchemaRef,
    /// Field (lower case) → its column in the table.
    columns: HashMap<String, String>,
    pending: Pending,
    /// Applied to the source's batches (none in the objects namespace).
    policies: ColumnPolicies,
    /// Columns with files under an older policy: unchanged values cannot be filled from them.
    unsettled: std::collections::HashSet<String>,
}

struct Run {
    lake: LakeLocation,
    source_name: String,
    layout: TableLayout,
    run_id: String,
    clock: Arc<dyn Clock>,
    commit_rows: u64,
    ledger: Ledger,
    past_events: Vec<SchemaEvent>,
    tables: HashMap<String, TableState>,
    /// The last transaction-end position seen, and whether versions wait for a commit at it.
    last_commit: Option<Position>,
    uncommitted: bool,
    /// Tables with versions since the last transaction end, or since their own table-scoped
    /// commit: a transaction is open while any is.
    open_tables: std::collections::HashSet<String>,
    metrics: IngestMetrics,
    observer: Option<Arc<dyn IngestObserver>>,
    governance: Option<Arc<Governance>>,
    /// Keys erasures suppressed, per table (`<source>.<table>` or object, lower case).
    suppressed: HashMap<String, std::collections::HashSet<String>>,
}

impl Run {
    /// One record per table the run touched in the ledger's `sync_runs` (object
    /// `<source>.<table>`), as the Salesforce sync keeps one per object: `tidemark status` and
    /// `tidemark runs` list both.
    fn run_records(
        &self,
        started: DateTime<Utc>,
        held: &HashMap<String, Position>,
        error: Option<&IngestError>,
    ) -> Vec<SyncRunRecord> {
        let finished = self.clock.now();
        self.metrics
            .tables
            .iter()
            .map(|(table, m)| SyncRunRecord {
                run_id: self.run_id.clone(),
                object: self.object_name(table),
                started_at: started,
                finished_at: finished,
                status: if error.is_some() { RunStatus::Failed } else { RunStatus::Complete },
                mode: if held.contains_key(table) { "incremental" } else { "initial" }.to_owned(),
                api: "source".to_owned(),
                bookmark: None,
                bookmark_field: String::new(),
                rows_read: (m.copied + m.changes) as i64,
                versions_written: (m.copied + m.changes) as i64,
                deletes: m.deletes as i64,
                hard_deletes: 0,
                snapshot_versions: 0,
                reconciled_at: None,
                formula_snapshot_at: None,
                api_calls: 0,
                message: error.map(|e| e.to_string()),
            })
            .collect()
    }

    async fn drive(
        &mut self,
        source: &mut dyn Source,
        lease: &Lease,
        held: &HashMap<String, Position>,
    ) -> Result<(), IngestError> {
        let source_err = |name: &str, error| IngestError::Source { source_name: name.to_owned(), error };
        source.start(held).await.map_err(|e| source_err(&self.source_name, e))?;
        loop {
            let change = source.next().await.map_err(|e| source_err(&self.source_name, e))?;
            match change {
                None => {
                    if !self.open_tables.is_empty() {
                        // Committing now would store part of a transaction under the position of
                        // the one before it; the next run reads the whole transaction again.
                        return Err(self.contract(
                            "",
                            "the source ended inside a transaction: nothing after the last commit is kept".into(),
                        ));
                    }
                    self.commit_all(source, lease).await?;
                    return Ok(());
                }
                Some(Change::Table(spec)) => {
                    let waiting = self.tables.get(&spec.name).is_some_and(|t| t.writer.pending_rows() > 0);
                    if waiting && self.open_tables.is_empty() {
                        // Versions of earlier transactions wait under the old layout: commit them first.
                        self.commit_all(source, lease).await?;
                    }
                    self.define(spec).await?
                }
                Some(Change::Versions(v)) => {
                    self.open_tables.insert(v.table.clone());
                    self.write(v).await?
                }
                Some(Change::Truncate { table, at, lsn }) => {
                    self.open_tables.insert(table.clone());
                    self.truncate(&table, at, lsn).await?
                }
                Some(Change::Commit { position, table: Some(table) }) => {
                    lease.ensure_held()?;
                    let state = self.state(&table)?;
                    let done = state.writer.commit_at(&mut state.table, position, true).await?;
                    state.pending = Pending::default();
                    self.open_tables.remove(&table);
                    self.committed(&table, done.map_or(0, |d| d.rows), position);
                }
                Some(Change::Commit { position, table: None }) => {
                    if self.last_commit.is_some_and(|p| position < p) {
                        return Err(self.contract("", format!("position {position} after {}", self.last_commit.unwrap_or(0))));
                    }
                    self.last_commit = Some(position);
                    self.uncommitted = true;
                    self.open_tables.clear();
                    let pending: u64 = self.tables.values().map(|t| t.writer.pending_rows()).sum();
                    if pending >= self.commit_rows {
                        self.commit_all(source, lease).await?;
                    }
                }
                Some(Change::Idle { position }) => {
                    if self.uncommitted {
                        self.commit_all(source, lease).await?;
                    } else if let Some(p) = position.filter(|p| self.metrics.acknowledged.is_none_or(|a| *p > a)) {
                        source.acknowledge(p).await.map_err(|e| source_err(&self.source_name, e))?;
                        self.metrics.acknowledged = Some(p);
                    }
                }
            }
        }
    }

    /// A table's name in the ledger, schema events and commit metadata: `<source>.<table>`,
    /// or the object's name in the objects namespace.
    fn object_name(&self, table: &str) -> String {
        match self.layout {
            TableLayout::Source => format!("{}.{table}", self.source_name),
            TableLayout::Objects => table.to_owned(),
        }
    }

    /// Counts a table's commit and reports it.
    fn committed(&mut self, table: &str, versions: u64, position: Position) {
        let m = self.metrics.tables.entry(table.to_owned()).or_default();
        m.commits += 1;
        m.position = Some(position);
        tracing::debug!(source = self.source_name, table, versions, position, "committed");
        if let Some(o) = &self.observer {
            o.committed(&self.source_name, table, versions, position);
        }
    }

    fn contract(&self, table: &str, detail: String) -> IngestError {
        IngestError::Contract { source_name: self.source_name.clone(), table: table.to_owned(), detail }
    }

    fn state(&mut self, table: &str) -> Result<&mut TableState, IngestError> {
        if !self.tables.contains_key(table) {
            return Err(self.contract(table, "versions before the table's definition".into()));
        }
        Ok(self.tables.get_mut(table).expect("checked"))
    }

    /// Commits every table with pending versions at the last transaction end, then acknowledges it.
    async fn commit_all(&mut self, source: &mut dyn Source, lease: &Lease) -> Result<(), IngestError> {
        let Some(position) = self.last_commit.filter(|_| self.uncommitted) else { return Ok(()) };
        lease.ensure_held()?;
        let mut committed = Vec::new();
        for (name, state) in &mut self.tables {
            if state.writer.pending_rows() == 0 {
                continue;
            }
            let done = state.writer.commit_at(&mut state.table, position, false).await?;
            state.pending = Pending::default();
            committed.push((name.clone(), done.map_or(0, |d| d.rows)));
        }
        for (table, rows) in committed {
            self.committed(&table, rows, position);
        }
        self.uncommitted = false;
        source
            .acknowledge(position)
            .await
            .map_err(|error| IngestError::Source { source_name: self.source_name.clone(), error })?;
        self.metrics.acknowledged = Some(position);
        Ok(())
    }

    /// Creates or evolves a table to `spec`.
    async fn define(&mut self, spec: TableSpec) -> Result<(), IngestError> {
        let name = spec.name.clone();
        let object = self.object_name(&name);
        let (spec, policies) = policies::govern_spec(self.governance.as_ref(), self.layout, &object, spec)?;
        let type_name = |f: &Field| f.metadata().get(SOURCE_TYPE).cloned().unwrap_or_else(|| f.data_type().to_string());
        let fields: Vec<(String, DataType, String)> =
            spec.fields.iter().map(|f| (f.name().clone(), f.data_type().clone(), type_name(f))).collect();
        for f in &spec.fields {
            if crate::columns::METADATA_COLUMNS.contains(&f.name().as_str()) {
                return Err(self.contract(&name, format!("column {} has the name of a metadata column", f.name())));
            }
        }
        let (mut table, created, writer) = match self.tables.remove(&name) {
            Some(state) => (state.table, false, Some(state.writer)),
            None => match open_table(&self.lake, &self.source_name, self.layout, &name).await? {
                Some(t) => (t, false, None),
                None => {
                    let schema = initial_schema(&spec, self.layout);
                    let table = match self.layout {
                        TableLayout::Source => HistoryTable::create_source(&self.lake, &self.source_name, &name, &schema).await?,
                        TableLayout::Objects => HistoryTable::create(&self.lake, &name, &schema).await?,
                    };
                    (table, true, None)
                }
            },
        };
        if let Some(w) = &writer {
            if w.pending_rows() > 0 {
                // Columns change between commits only, and a transaction is never split: one that
                // writes a table, alters it and writes it again is refused.
                return Err(self.contract(
                    &name,
                    "one transaction wrote the table, changed its columns and wrote it again: not supported".into(),
                ));
            }
        }
        let removed = schema_plan::removed_fields(&self.past_events, &object);
        let plan = schema_plan::plan_typed(table.schema()?.as_ref(), &fields, &removed);
        let evolution = Evolution {
            ledger: &self.ledger,
            past_events: &self.past_events,
            object: &object,
            run_id: &self.run_id,
            at: self.clock.now(),
        };
        evolution.apply(&mut table, &plan, created, fields.len()).await?;
        let events = policies::EventContext {
            ledger: &self.ledger,
            past_events: &self.past_events,
            object: &object,
            run_id: &self.run_id,
            at: self.clock.now(),
        };
        let policy_state = policies::record(&mut table, &spec.policies, events).await?;
        self.metrics.tables.entry(name.clone()).or_default().schema_changes += plan.changes.len() as u64;
        self.past_events = self.ledger.schema_events().await?;
        let writer = match writer.filter(|_| plan.new_columns.is_empty() && !policy_state.changed) {
            Some(w) => w,
            // A writer's files follow the table's schema when it was made.
            None => VersionWriter::new(
                &table,
                table_app_id(&self.source_name, self.layout, &name),
                vec![("tidemark.run_id".to_owned(), self.run_id.clone().into()), ("tidemark.object".to_owned(), object.into())],
            )
            .await?
            .with_file_tag(policy_state.tag),
        };
        let columns = plan.targets.iter().map(|(f, c, _)| (f.to_ascii_lowercase(), c.clone())).collect();
        let schema = table.schema()?;
        let unsettled = policy_state.unsettled;
        self.tables
            .insert(name, TableState { spec, table, writer, schema, columns, pending: Pending::default(), policies, unsettled });
        Ok(())
    }

    async fn write(&mut self, v: Versions) -> Result<(), IngestError> {
        let ingested = self.clock.now().timestamp_micros();
        let run_id = self.run_id.clone();
        let source_name = self.source_name.clone();
        let layout = self.layout;
        if layout == TableLayout::Objects && (!v.unchanged.is_empty() || !v.continues.is_empty()) {
            return Err(self.contract(&v.table, "unchanged values in the objects namespace".into()));
        }
        let object = self.object_name(&v.table);
        let state = self.state(&v.table)?;
        let rows = v.batch.num_rows();
        if rows == 0 {
            return Ok(());
        }
        if let Some((field, _)) = v.unchanged.iter().find(|(f, rows)| {
            !rows.is_empty() && state.columns.get(&f.to_ascii_lowercase()).is_some_and(|c| state.unsettled.contains(c))
        }) {
            return Err(IngestError::Contract {
                source_name,
                table: v.table.clone(),
                detail: format!(
                    "unchanged values of {field} would be filled from versions written under its earlier policy: \
                     run `tidemark govern apply` first, then sync again"
                ),
            });
        }
        let v = if state.policies.is_empty() { v } else { Versions { batch: state.policies.apply(&v.batch)?, ..v } };
        let out = shape(state, &v, layout, &run_id, ingested).map_err(|detail| IngestError::Contract {
            source_name: source_name.clone(),
            table: v.table.clone(),
            detail,
        })?;
        let key = if layout == TableLayout::Source { KEY } else { crate::columns::ID };
        let none = std::collections::HashSet::new();
        let suppressed = self.suppressed.get(&object.to_ascii_lowercase()).unwrap_or(&none);
        let (out, unchanged, continues) = match suppressed::leave_out(&out, key, suppressed, &v.unchanged, &v.continues)? {
            Some(kept) => kept,
            None => (out, v.unchanged.clone(), v.continues.clone()),
        };
        let (left_out, rows) = ((rows - out.num_rows()) as u64, out.num_rows());
        if rows == 0 {
            self.metrics.tables.entry(v.table).or_default().suppressed += left_out;
            return Ok(());
        }
        let state = self.state(&v.table)?;
        let (out, filled) = fill_unchanged(&source_name, state, out, &unchanged, &continues).await?;
        let deletes = out.column_by_name(DELETED).expect("shaped").as_boolean().true_count() as u64;
        // A copy is committed on its own (a table-scoped `Commit`) before any change of its
        // table, so no fill or truncate can need its rows before they are in the lake: keeping
        // them would hold the whole table in memory. Objects have neither fills nor truncates.
        if v.kind != CaptureKind::Copy && layout == TableLayout::Source {
            let keys = out.column_by_name(KEY).expect("shaped").as_string::<i32>().clone();
            let index = state.pending.batches.len();
            for row in 0..rows {
                if keys.is_valid(row) {
                    state.pending.rows.insert(keys.value(row).to_owned(), (index, row));
                }
            }
            state.pending.batches.push(out.clone());
        }
        state.writer.write(out).await?;
        if let Some(o) = &self.observer {
            o.versions_written(&source_name, &v.table, rows as u64);
        }
        let m = self.metrics.tables.entry(v.table).or_default();
        match v.kind {
            CaptureKind::Copy => m.copied += rows as u64,
            CaptureKind::Change | CaptureKind::Truncate | CaptureKind::Reconcile => m.changes += rows as u64,
        }
        m.deletes += deletes;
        m.filled += filled;
        m.suppressed += left_out;
        Ok(())
    }

    /// A delete version for every record live in the table (committed or pending).
    async fn truncate(&mut self, table: &str, at: DateTime<Utc>, lsn: Position) -> Result<(), IngestError> {
        if self.layout == TableLayout::Objects {
            return Err(self.contract(table, "a truncate in the objects namespace".into()));
        }
        let state = self.state(table)?;
        let key_fields: Vec<String> = state.spec.key.clone();
        // `_key`, then the columns holding the key fields (a field's current column after a
        // type change).
        let key_columns: Vec<String> = std::iter::once(KEY.to_owned())
            .chain(key_fields.iter().map(|f| state.columns.get(&f.to_ascii_lowercase()).cloned().unwrap_or_else(|| f.clone())))
            .collect();
        let mut parts: Vec<RecordBatch> = Vec::new();
        // Committed live records, minus those whose latest version is pending.
        if state.table.version().is_some() {
            let ctx = state.table.session().await?;
            let sql = crate::read::live_sql(&key_columns);
            for b in state.table.collect(&ctx, &sql).await? {
                let keys = crate::read::utf8(b.column(0))?;
                let keep: BooleanArray = (0..b.num_rows())
                    .map(|r| Some(!keys.is_valid(r) || !state.pending.rows.contains_key(keys.value(r))))
                    .collect();
                parts.push(deltalake::arrow::compute::filter_record_batch(&b, &keep)?);
            }
        }
        // Pending records whose latest version is not a delete.
        let mut pending_rows: Vec<(usize, usize)> = state
            .pending
            .rows
            .values()
            .copied()
            .filter(|&(b, r)| !state.pending.batches[b].column_by_name(DELETED).expect("shaped").as_boolean().value(r))
            .collect();
        pending_rows.sort_unstable();
        if !pending_rows.is_empty() {
            let mut cols: Vec<ArrayRef> = Vec::new();
            for name in &key_columns {
                let arrays: Vec<&dyn Array> =
                    state.pending.batches.iter().map(|b| b.column_by_name(name).expect("shaped").as_ref()).collect();
                cols.push(interleave(&arrays, &pending_rows)?);
            }
            let fields: Vec<Field> =
                cols.iter().enumerate().map(|(i, c)| Field::new(format!("c{i}"), c.data_type().clone(), true)).collect();
            parts.push(RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?);
        }
        let mut deletes = 0u64;
        for part in parts.into_iter().filter(|p| p.num_rows() > 0) {
            let n = part.num_rows();
            let mut fields = vec![
                Field::new(VERSION_AT, timestamp_type(), false),
                Field::new(DELETED, DataType::Boolean, false),
                Field::new(LSN, DataType::Int64, true),
            ];
            let mut cols: Vec<ArrayRef> = vec![
                Arc::new(TimestampMicrosecondArray::from(vec![at.timestamp_micros(); n]).with_timezone("UTC")),
                Arc::new(BooleanArray::from(vec![true; n])),
                Arc::new(Int64Array::from(vec![lsn; n])),
            ];
            for (i, f) in key_fields.iter().enumerate() {
                let column = part.column(i + 1);
                fields.push(Field::new(f, column.data_type().clone(), true));
                cols.push(column.clone());
            }
            let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?;
            deletes += n as u64;
            let v = Versions {
                table: table.to_owned(),
                kind: CaptureKind::Truncate,
                batch,
                unchanged: Vec::new(),
                continues: Vec::new(),
            };
            self.write(v).await?;
        }
        let m = self.metrics.tables.entry(table.to_owned()).or_default();
        m.truncates += 1;
        let event = SchemaEvent {
            at,
            run_id: self.run_id.clone(),
            object: self.object_name(table),
            kind: "truncated".into(),
            field: String::new(),
            column: String::new(),
            detail: format!("{deletes} live records deleted at position {lsn}"),
        };
        self.ledger.record_schema_events(std::slice::from_ref(&event)).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
