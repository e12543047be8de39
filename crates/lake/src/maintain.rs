//! Table maintenance (`tidemark maintain`, a pipeline's `maintain` step): for each Delta table
//! of the lake, compaction of small files ([`compact`]), a checkpoint, vacuum of files no
//! version references any more, and cleanup of expired log entries.
//!
//! **Concurrency.** A table a capability writes under a lease (an object's history, a
//! source's tables, a model's tables, a push flow's tables) is maintained under that same
//! lease, taken with the purpose [`MAINTENANCE_PURPOSE`]:
//! - held by a writer → the table is skipped this time ([`TableOutcome::Busy`]): maintenance
//!   yields and never waits;
//! - a writer that finds maintenance holding it waits until maintenance is done with that
//!   table ([`crate::Lease::acquire`]), then writes on top of the compacted table.
//!
//! The internal ledgers (`_tidemark/sync_runs`, …) have no lease: their writers append
//! blindly with retries, which Delta's conflict check lets through a compaction, and a
//! compaction that loses a race to a commit removing the same files fails without effect.
//!
//! **Crash safety.** Each step is one Delta commit or an idempotent deletion: a crash leaves
//! at most unreferenced files, which the next vacuum (once past the retention) deletes.

pub mod compact;

use std::sync::Arc;
use std::time::{Duration, Instant};

use deltalake::DeltaTable;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::operations::vacuum::VacuumMode;
use tidemark_core::maintenance::MaintenanceSettings;
use tidemark_core::{Clock, SystemClock};

pub use compact::{CompactionMetrics, MAINTENANCE_COMMIT};

use crate::error::{LakeError, Result};
use crate::history::open_table;
use crate::lease::{Lease, MAINTENANCE_PURPOSE, with_lease};
use crate::location::LakeLocation;

/// What maintenance did to one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableMaintenance {
    /// The table, relative to the lake (`objects/account`).
    pub table: String,
    pub outcome: TableOutcome,
    pub files_before: u64,
    pub bytes_before: u64,
    pub files_after: u64,
    pub bytes_after: u64,
    pub compaction: CompactionMetrics,
    /// The version a checkpoint was written for (none when the newest was checkpointed).
    pub checkpoint: Option<u64>,
    /// Data files vacuum deleted (or would delete, in a dry run).
    pub files_vacuumed: u64,
    /// Log entries deleted.
    pub logs_removed: u64,
    pub millis: u64,
}

/// How one table's maintenance ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableOutcome {
    Done,
    /// A writer held the table's lease: left for the next maintenance.
    Busy {
        holder: String,
    },
    /// Maintenance of this table failed (the others went on). `retryable` as
    /// [`LakeError::is_retryable`] says.
    Failed {
        error: String,
        retryable: bool,
    },
}

/// What a maintenance run did, table by table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaintenanceMetrics {
    pub tables: Vec<TableMaintenance>,
    pub dry_run: bool,
    pub millis: u64,
}

impl MaintenanceMetrics {
    pub fn failed(&self) -> impl Iterator<Item = &TableMaintenance> {
        self.tables.iter().filter(|t| matches!(t.outcome, TableOutcome::Failed { .. }))
    }

    pub fn busy(&self) -> impl Iterator<Item = &TableMaintenance> {
        self.tables.iter().filter(|t| matches!(t.outcome, TableOutcome::Busy { .. }))
    }

    /// Files removed by compaction, over all tables.
    pub fn files_compacted(&self) -> u64 {
        self.tables.iter().map(|t| t.compaction.files_removed).sum()
    }

    pub fn files_vacuumed(&self) -> u64 {
        self.tables.iter().map(|t| t.files_vacuumed).sum()
    }
}

/// The lease under which a table's writer works, by the table's path in the lake; `None` for
/// the internal ledgers, which are appended to without one.
pub fn lease_resource(table: &str) -> Option<String> {
    let parts: Vec<&str> = table.split('/').collect();
    match parts.as_slice() {
        ["objects", _] | ["marts", _] => Some(table.to_owned()),
        ["sources", source, _] => Some(format!("sources/{source}")),
        ["_tidemark", "model_state", model] => Some(format!("marts/{model}")),
        ["_tidemark", "push", flow, ..] => Some(format!("push/{flow}")),
        _ => None,
    }
}

/// Whether the table holds versions written by the history writer (its Parquet settings are
/// kept when its files are rewritten).
fn is_history(table: &str) -> bool {
    table.starts_with("objects/") || table.starts_with("sources/")
}

/// Maintains the lake's tables; [`Maintain::run`] returns what it did per table.
pub struct Maintain {
    lake: LakeLocation,
    settings: MaintenanceSettings,
    tables: Option<Vec<String>>,
    dry_run: bool,
    clock: Arc<dyn Clock>,
    lease_ttl: Duration,
}

impl Maintain {
    pub fn new(lake: LakeLocation, settings: MaintenanceSettings) -> Maintain {
        Maintain {
            lake,
            settings,
            tables: None,
            dry_run: false,
            clock: Arc::new(SystemClock),
            lease_ttl: Duration::from_secs(120),
        }
    }

    /// Only these tables (paths relative to the lake, as [`LakeLocation::all_tables`] lists).
    pub fn with_tables(mut self, tables: Vec<String>) -> Maintain {
        self.tables = Some(tables);
        self
    }

    /// Reports what would be compacted and vacuumed; changes nothing.
    pub fn with_dry_run(mut self, dry_run: bool) -> Maintain {
        self.dry_run = dry_run;
        self
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Maintain {
        self.clock = clock;
        self
    }

    pub fn with_lease_ttl(mut self, ttl: Duration) -> Maintain {
        self.lease_ttl = ttl;
        self
    }

    pub async fn run(self) -> Result<MaintenanceMetrics> {
        let started = Instant::now();
        let tables = match &self.tables {
            Some(t) => t.clone(),
            None => self.lake.all_tables().await?,
        };
        let mut metrics = MaintenanceMetrics { dry_run: self.dry_run, ..MaintenanceMetrics::default() };
        for table in tables {
            let timer = Instant::now();
            let mut done = match self.one(&table).await {
                Ok(Some(done)) => done,
                Ok(None) => continue,
                Err(LakeError::LeaseHeld { holder, .. }) => self.empty(&table, TableOutcome::Busy { holder }),
                Err(e) => {
                    tracing::warn!(table = %table, error = %e, "table maintenance failed");
                    let outcome = TableOutcome::Failed { error: e.to_string(), retryable: e.is_retryable() };
                    self.empty(&table, outcome)
                }
            };
            done.millis = u64::try_from(timer.elapsed().as_millis()).unwrap_or(u64::MAX);
            tracing::info!(
                table = %done.table, outcome = ?done.outcome, files_before = done.files_before, files_after = done.files_after,
                compacted = done.compaction.files_removed, vacuumed = done.files_vacuumed, logs_removed = done.logs_removed,
                "table maintained"
            );
            metrics.tables.push(done);
        }
        metrics.millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        Ok(metrics)
    }

    fn empty(&self, table: &str, outcome: TableOutcome) -> TableMaintenance {
        TableMaintenance {
            table: table.to_owned(),
            outcome,
            files_before: 0,
            bytes_before: 0,
            files_after: 0,
            bytes_after: 0,
            compaction: CompactionMetrics::default(),
            checkpoint: None,
            files_vacuumed: 0,
            logs_removed: 0,
            millis: 0,
        }
    }

    /// One table under its lease (when it has one); `None` when the table is gone.
    async fn one(&self, table: &str) -> Result<Option<TableMaintenance>> {
        let Some(resource) = lease_resource(table) else { return self.unleased(table).await };
        let (clock, ttl) = (self.clock.clone(), self.lease_ttl);
        with_lease(&self.lake, &resource, MAINTENANCE_PURPOSE, ttl, clock, async |_: &Lease| self.unleased(table).await).await
    }

    async fn unleased(&self, name: &str) -> Result<Option<TableMaintenance>> {
        let Some(mut table) = open_table(&self.lake, self.lake.table_url(name)).await? else { return Ok(None) };
        let mut done = self.empty(name, TableOutcome::Done);
        (done.files_before, done.bytes_before) = file_count(&table, name).await?;
        // History tables keep the history writer's settings; others the rewrite writer's.
        let properties = is_history(name).then(crate::writer::writer_properties);
        done.compaction = compact::compact(&mut table, name, &self.settings, properties, self.dry_run).await?;
        if !self.dry_run {
            done.checkpoint = checkpoint(&table, name).await?;
        }
        let (table, vacuumed) = self.vacuum(table, name).await?;
        done.files_vacuumed = vacuumed;
        if !self.dry_run {
            done.logs_removed = self.clean_logs(&table, name).await?;
        }
        (done.files_after, done.bytes_after) = file_count(&table, name).await?;
        Ok(Some(done))
    }

    async fn vacuum(&self, table: DeltaTable, label: &str) -> Result<(DeltaTable, u64)> {
        let retention = chrono::Duration::from_std(self.settings.vacuum_retention).unwrap_or(chrono::Duration::MAX);
        let properties =
            CommitProperties::default().with_metadata([(MAINTENANCE_COMMIT.to_owned(), serde_json::Value::from("vacuum"))]);
        let (table, metrics) = table
            .vacuum()
            .with_retention_period(retention)
            // The configured retention was checked (at least an hour) when the config was read.
            .with_enforce_retention_duration(false)
            .with_mode(VacuumMode::Full)
            .with_dry_run(self.dry_run)
            .with_clock(Arc::new(VacuumClock(self.clock.clone())))
            .with_commit_properties(properties)
            .await
            .map_err(|e| LakeError::delta(label, e))?;
        Ok((table, metrics.files_deleted.len() as u64))
    }

    /// Deletes log entries older than the log retention that a checkpoint makes unnecessary.
    async fn clean_logs(&self, table: &DeltaTable, label: &str) -> Result<u64> {
        let Some(version) = table.version() else { return Ok(0) };
        let retention = chrono::Duration::from_std(self.settings.log_retention).unwrap_or(chrono::Duration::MAX);
        let cutoff = (self.clock.now() - retention).timestamp_millis();
        let removed = deltalake::checkpoints::cleanup_expired_logs_for(version as _, table.log_store().as_ref(), cutoff, None)
            .await
            .map_err(|e| LakeError::delta(label, e))?;
        Ok(removed as u64)
    }
}

/// delta-rs's vacuum asks its own clock trait for the time: ours, so tests can move it.
#[derive(Debug)]
struct VacuumClock(Arc<dyn Clock>);

impl deltalake::operations::vacuum::Clock for VacuumClock {
    fn current_timestamp_millis(&self) -> i64 {
        self.0.now().timestamp_millis()
    }
}

/// The table's data files and their bytes.
async fn file_count(table: &DeltaTable, label: &str) -> Result<(u64, u64)> {
    use futures::StreamExt;
    let (mut files, mut bytes) = (0, 0);
    let mut views = table.get_active_add_actions_by_partitions(&[]);
    while let Some(view) = views.next().await {
        let view = view.map_err(|e| LakeError::delta(label, e))?;
        files += 1;
        bytes += view.size() as u64;
    }
    Ok((files, bytes))
}

/// Writes a checkpoint for the current version unless `_last_checkpoint` already names it.
async fn checkpoint(table: &DeltaTable, label: &str) -> Result<Option<u64>> {
    let Some(version) = table.version() else { return Ok(None) };
    if last_checkpoint(table).await? == Some(version) {
        return Ok(None);
    }
    deltalake::checkpoints::create_checkpoint(table, None).await.map_err(|e| LakeError::delta(label, e))?;
    Ok(Some(version))
}

/// The version `_delta_log/_last_checkpoint` names, if any.
pub async fn last_checkpoint(table: &DeltaTable) -> Result<Option<u64>> {
    use deltalake::logstore::object_store::ObjectStoreExt as _;
    let store = table.log_store().object_store(None);
    let path = deltalake::Path::from("_delta_log/_last_checkpoint");
    let bytes = match store.get(&path).await {
        Ok(got) => got.bytes().await.map_err(|e| LakeError::store("_last_checkpoint", e))?,
        Err(deltalake::ObjectStoreError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(LakeError::store("_last_checkpoint", e)),
    };
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| LakeError::Layout { table: "_last_checkpoint".into(), detail: e.to_string() })?;
    Ok(value.get("version").and_then(serde_json::Value::as_u64))
}

#[cfg(test)]
mod tests;
