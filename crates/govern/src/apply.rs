//! `tidemark govern apply`: stored versions brought under their columns' recorded policies.
//!
//! Which policy a column should have is what its metadata records (`tidemark.policy`, set by the
//! last sync from the configuration): change the configuration, sync, then apply. Which policy a
//! stored version is under is what its data file's tag records. A file is rewritten when one of
//! its columns is under another policy than the column's, unless the column's policy was lifted
//! (a hash cannot be undone). Per column:
//! - `null` and `exclude`: every value becomes null;
//! - a mask: applied (masks are idempotent, so already-masked values stay as they are);
//! - `hash`: raw values hashed. Values stored under a mask are hashed as they are (the raw value
//!   is gone), so they will not join with hashes of raw values.
//!
//! Each table is rewritten under its lease (no sync writes it meanwhile), in one commit, and
//! the old files and their log statistics are removed at once ([`Scrub`]). Re-running after a
//! crash completes the work; re-running after success does nothing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tidemark_core::governance::Governance;
use tidemark_core::{Clock, ConfigError, SystemClock};
use tidemark_lake::policy::{ColumnPolicies, column_tokens, file_tag, file_tokens};
use tidemark_lake::scrub::{Scrub, ScrubFile, ScrubMetrics};
use tidemark_lake::{HistoryTable, LakeError, LakeLocation, with_lease};

#[derive(Debug, thiserror::Error)]
pub enum GovernError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error("no table named {0} in the lake")]
    UnknownTable(String),
    #[error(transparent)]
    Model(#[from] tidemark_models::ModelError),
    #[error(transparent)]
    Push(#[from] tidemark_push::PushError),
    #[error("{0}")]
    Unsupported(String),
}

impl GovernError {
    /// Whether running again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            GovernError::Lake(e) => e.is_retryable(),
            GovernError::Model(e) => e.is_retryable(),
            GovernError::Push(e) => matches!(e, tidemark_push::PushError::Lake(e) if e.is_retryable()),
            _ => false,
        }
    }
}

/// One table's outcome.
#[derive(Debug, Clone, Default)]
pub struct TableApply {
    /// `Object` or `<source>.<table>`.
    pub table: String,
    /// Columns with versions that were (or, dry, would be) brought under their policy.
    pub columns: Vec<String>,
    pub files: u64,
    pub files_to_rewrite: u64,
    pub scrub: ScrubMetrics,
}

#[derive(Debug, Clone, Default)]
pub struct ApplyMetrics {
    pub tables: Vec<TableApply>,
    pub dry_run: bool,
}

/// Builds and runs `govern apply`, the way delta-rs builds its operations.
pub struct GovernApply {
    lake: LakeLocation,
    governance: Arc<Governance>,
    tables: Option<Vec<String>>,
    dry_run: bool,
    clock: Arc<dyn Clock>,
    lease_ttl: Duration,
}

impl std::future::IntoFuture for GovernApply {
    type Output = Result<ApplyMetrics, GovernError>;
    type IntoFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

impl GovernApply {
    pub fn new(lake: LakeLocation, governance: Arc<Governance>) -> GovernApply {
        GovernApply {
            lake,
            governance,
            tables: None,
            dry_run: false,
            clock: Arc::new(SystemClock),
            lease_ttl: Duration::from_secs(120),
        }
    }

    /// Only these tables (`Object` or `<source>.<table>`, case-insensitive).
    pub fn with_tables(mut self, tables: Vec<String>) -> GovernApply {
        self.tables = Some(tables);
        self
    }

    /// Says what would be rewritten; writes nothing.
    pub fn with_dry_run(mut self, dry_run: bool) -> GovernApply {
        self.dry_run = dry_run;
        self
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> GovernApply {
        self.clock = clock;
        self
    }

    pub async fn run(self) -> Result<ApplyMetrics, GovernError> {
        let mut all: Vec<(String, String)> =
            self.lake.history_tables().await?.into_iter().map(|o| (o.clone(), LakeLocation::table_resource(&o))).collect();
        for source in self.lake.sources().await? {
            for table in self.lake.source_tables(&source).await? {
                all.push((format!("{source}.{table}"), format!("sources/{source}")));
            }
        }
        if let Some(wanted) = &self.tables {
            for w in wanted {
                if !all.iter().any(|(t, _)| t.eq_ignore_ascii_case(w)) {
                    return Err(GovernError::UnknownTable(w.clone()));
                }
            }
            all.retain(|(t, _)| wanted.iter().any(|w| w.eq_ignore_ascii_case(t)));
        }
        let mut metrics = ApplyMetrics { dry_run: self.dry_run, ..ApplyMetrics::default() };
        for (name, resource) in all {
            let outcome = if self.dry_run {
                let mut table = open(&self.lake, &name).await?;
                self.apply_table(&name, &mut table).await?
            } else {
                let work = async |_: &tidemark_lake::Lease| {
                    let mut table = open(&self.lake, &name).await?;
                    self.apply_table(&name, &mut table).await
                };
                with_lease(&self.lake, &resource, "govern", self.lease_ttl, self.clock.clone(), work).await?
            };
            if let Some(outcome) = outcome {
                metrics.tables.push(outcome);
            }
        }
        Ok(metrics)
    }

    /// `None` for a table without policies, never scrubbed.
    async fn apply_table(&self, name: &str, table: &mut HistoryTable) -> Result<Option<TableApply>, GovernError> {
        let schema = table.schema()?;
        let wanted = column_tokens(&schema);
        let files = file_tokens(table.delta(), name).await?;
        let stale = |file: &ScrubFile| stale_columns(&wanted, &file.tokens);
        let to_rewrite: Vec<ScrubFile> = files.iter().filter(|f| !stale(f).is_empty()).cloned().collect();
        let mut columns: Vec<String> = to_rewrite.iter().flat_map(stale).collect();
        columns.sort();
        columns.dedup();
        let mut outcome = TableApply {
            table: name.to_owned(),
            columns,
            files: files.len() as u64,
            files_to_rewrite: to_rewrite.len() as u64,
            scrub: ScrubMetrics::default(),
        };
        if self.dry_run {
            return Ok((!wanted.is_empty()).then_some(outcome));
        }
        // Every recorded policy must be appliable with the configured key, rewrite or not.
        let tokens: Vec<(String, String)> = wanted.iter().map(|(c, t)| (c.clone(), t.clone())).collect();
        ColumnPolicies::from_tokens(&self.governance, name, &tokens)?;
        let governance = self.governance.clone();
        let (table_name, want) = (name.to_owned(), wanted.clone());
        let transform: tidemark_lake::scrub::RowTransform =
            Arc::new(move |have, batch| bring_under(&governance, &table_name, &want, have, &batch));
        let scrub = Scrub::new("govern apply", to_rewrite, transform)
            .with_file_tag(file_tag(&wanted))
            .with_commit_metadata(vec![("tidemark.columns".to_owned(), outcome.columns.join(",").into())]);
        outcome.scrub = scrub.run(table).await?;
        let scrubbed = outcome.scrub.table_version.is_some() || outcome.scrub.purge != Default::default();
        Ok((!wanted.is_empty() || scrubbed).then_some(outcome))
    }
}

/// `batch`, read from a file written under `have`, brought under `want` (column → token): what
/// `govern apply` does to every file, and any other rewrite to the files it rewrites, since
/// the new files are tagged with `want`.
pub(crate) fn bring_under(
    governance: &Arc<Governance>,
    table: &str,
    want: &BTreeMap<String, String>,
    have: &BTreeMap<String, String>,
    batch: &tidemark_lake::arrow::array::RecordBatch,
) -> tidemark_lake::error::Result<tidemark_lake::arrow::array::RecordBatch> {
    let changes: Vec<(String, String)> = stale_columns(want, have).into_iter().map(|c| (c.clone(), want[&c].clone())).collect();
    let policies = ColumnPolicies::from_tokens(governance, table, &changes)
        .map_err(|e| LakeError::Layout { table: table.to_owned(), detail: e.to_string() })?;
    Ok(policies.apply(batch)?)
}

/// The columns of a file written under `have` that are not under `want` (a lifted policy is
/// never a reason: it cannot be undone).
fn stale_columns(want: &BTreeMap<String, String>, have: &BTreeMap<String, String>) -> Vec<String> {
    want.iter().filter(|(column, token)| have.get(*column) != Some(*token)).map(|(column, _)| column.clone()).collect()
}

/// A history table by its name: an object, or `<source>.<table>`.
pub(crate) async fn open(lake: &LakeLocation, name: &str) -> Result<HistoryTable, GovernError> {
    let table = match name.split_once('.') {
        Some((source, table)) => HistoryTable::open_source(lake, source, table).await?,
        None => HistoryTable::open(lake, name).await?,
    };
    table.ok_or_else(|| GovernError::UnknownTable(name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_columns_under_another_policy_are_stale() {
        let want = BTreeMap::from([("Email".to_owned(), "hash:ab".to_owned()), ("Phone".to_owned(), "mask:last4".to_owned())]);
        let have = BTreeMap::from([("Email".to_owned(), "hash:ab".to_owned()), ("Title".to_owned(), "hash:ab".to_owned())]);
        assert_eq!(stale_columns(&want, &have), vec!["Phone".to_owned()]);
        assert!(stale_columns(&BTreeMap::new(), &have).is_empty(), "a lifted policy is not undone");
    }
}
