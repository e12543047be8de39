//! Rewriting stored versions where they lie: what `tidemark govern apply` (values brought under
//! a changed field policy) and erasure (records removed) are made of.
//!
//! A [`Scrub`] rewrites only the data files it is given, through a transform of their rows,
//! and commits the new files with the removal of the old ones in **one** Delta commit (readers
//! see the table before or after, never in between). Then it makes sure nothing of the old
//! files survives anywhere under the table ([`purge`]):
//! - the replaced files are deleted at once, whatever a vacuum retention says;
//! - the Delta log's entries for them lose their statistics (per-file min/max values would
//!   otherwise keep values the rewrite removed);
//! - checkpoints older than the rewrite are replaced by one written after it.
//!
//! Older table versions then refer to files that no longer exist: time travel to them fails
//! rather than showing what was removed.
//!
//! Crash safety: the commit carries a `txn` (`tidemark-scrub:<table>`) and a `tidemark.scrub`
//! commit-info key. A crash before it leaves the table as it was (and at most unreferenced new
//! files, holding only transformed rows); a crash after it leaves a purge to finish, and
//! [`purge`] is idempotent and finds what to do from the log itself, so running the operation
//! again completes it. The caller holds the table's lease.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use deltalake::arrow::array::RecordBatch;
use deltalake::kernel::{Action, Transaction};
use deltalake::logstore::object_store::ObjectStoreExt as _;
use deltalake::protocol::DeltaOperation;
use deltalake::{ObjectStore, Path};
use futures::TryStreamExt;

use crate::error::{LakeError, Result};
use crate::history::HistoryTable;
use crate::rewrite::{RewriteWriter, stream_files};
use crate::writer::TARGET_FILE_SIZE;

/// Commit-info key marking a scrub's commit (its value says what for: `govern apply`, …).
pub const SCRUB_COMMIT: &str = "tidemark.scrub";

/// A data file of a table: its path (as the log writes it) and size, and the policy tokens its
/// values were written under ([`crate::policy::file_tokens`]).
#[derive(Debug, Clone)]
pub struct ScrubFile {
    pub path: String,
    pub size: i64,
    pub tokens: BTreeMap<String, String>,
    /// The file's statistics as the log holds them (JSON: `minValues`, `maxValues`, …).
    pub stats: Option<String>,
}

impl ScrubFile {
    /// Whether the file's statistics exclude every one of `sorted` (text values of `column`, in
    /// order): without statistics for the column, nothing is excluded.
    pub fn excludes(&self, column: &str, sorted: &[String]) -> bool {
        let Some(stats) = self.stats.as_deref().and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok()) else {
            return false;
        };
        let bound = |which: &str| stats.get(which)?.get(column)?.as_str().map(str::to_owned);
        let (Some(min), Some(max)) = (bound("minValues"), bound("maxValues")) else { return false };
        let first = sorted.partition_point(|v| v.as_str() < min.as_str());
        // Delta truncates long string statistics; a maximum may then be a prefix.
        sorted.get(first).is_none_or(|v| v.as_str() > max.as_str() && !v.starts_with(max.as_str()))
    }
}

/// What a scrub did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScrubMetrics {
    pub files_rewritten: u64,
    /// Bytes of the files rewritten, and of the whole table before.
    pub bytes_rewritten: u64,
    pub table_bytes: u64,
    pub rows_read: u64,
    pub rows_written: u64,
    /// The rewrite's commit (None when there was nothing to rewrite).
    pub table_version: Option<u64>,
    pub purge: PurgeMetrics,
}

/// What [`purge`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurgeMetrics {
    pub data_files_deleted: u64,
    pub log_entries_cleaned: u64,
    pub checkpoints_replaced: u64,
}

/// Transforms one file's rows; the tokens are the file's. Returns the rows to keep, transformed.
pub type RowTransform = Arc<dyn Fn(&BTreeMap<String, String>, RecordBatch) -> Result<RecordBatch> + Send + Sync>;

/// A rewrite of some of a table's files (see the module docs).
pub struct Scrub {
    purpose: String,
    files: Vec<ScrubFile>,
    transform: RowTransform,
    tag: Option<(String, String)>,
    metadata: Vec<(String, serde_json::Value)>,
}

impl Scrub {
    /// `purpose` goes into the commit (never a value: it names what was done, not to what).
    pub fn new(purpose: impl Into<String>, files: Vec<ScrubFile>, transform: RowTransform) -> Scrub {
        Scrub { purpose: purpose.into(), files, transform, tag: None, metadata: Vec::new() }
    }

    /// The tag every new file carries.
    pub fn with_file_tag(mut self, tag: Option<(String, String)>) -> Scrub {
        self.tag = tag;
        self
    }

    /// More commit-info keys (counts, Ids: never record values).
    pub fn with_commit_metadata(mut self, metadata: Vec<(String, serde_json::Value)>) -> Scrub {
        self.metadata = metadata;
        self
    }

    pub async fn run(self, table: &mut HistoryTable) -> Result<ScrubMetrics> {
        let label = table.object().to_owned();
        let mut metrics = ScrubMetrics { table_bytes: table_bytes(table).await?, ..ScrubMetrics::default() };
        if !self.files.is_empty() {
            let schema = table.schema()?;
            let mut writer = RewriteWriter::new(table.delta(), &label, &[], TARGET_FILE_SIZE)?.with_file_tag(self.tag.clone());
            let removes = removals(table, &self.files).await?;
            for file in &self.files {
                let mut batches = stream_files(table.delta(), vec![(store_path(&label, &file.path)?, file.size)], schema.clone());
                while let Some(batch) = batches.recv().await {
                    let batch = batch?;
                    metrics.rows_read += batch.num_rows() as u64;
                    let out = (self.transform)(&file.tokens, batch)?;
                    metrics.rows_written += out.num_rows() as u64;
                    writer.write(out).await?;
                }
                metrics.files_rewritten += 1;
                metrics.bytes_rewritten += file.size as u64;
            }
            let app_id = crate::writer::app_id("scrub", &label);
            let next = table.transaction_version(&app_id).await?.unwrap_or(0) + 1;
            let mut info: HashMap<String, serde_json::Value> = self.metadata.into_iter().collect();
            info.insert(SCRUB_COMMIT.to_owned(), self.purpose.clone().into());
            info.insert("tidemark.files_rewritten".to_owned(), metrics.files_rewritten.into());
            table.set_append_only(false).await?;
            let version = writer
                .commit(
                    table.delta_mut(),
                    &label,
                    Transaction::new(&app_id, next),
                    removes,
                    info,
                    DeltaOperation::Update { predicate: None },
                )
                .await?;
            metrics.table_version = Some(version);
        }
        // Always: an earlier run may have committed and crashed before finishing.
        table.set_append_only(true).await?;
        metrics.purge = purge(table).await?;
        Ok(metrics)
    }
}

async fn table_bytes(table: &HistoryTable) -> Result<u64> {
    Ok(crate::policy::file_tokens(table.delta(), table.object()).await?.iter().map(|f| f.size as u64).sum())
}

/// A log path (percent-encoded) as an object-store path.
fn store_path(label: &str, path: &str) -> Result<Path> {
    Path::from_url_path(path).map_err(|e| LakeError::Layout { table: label.to_owned(), detail: format!("file {path}: {e}") })
}

/// The removal actions of `files`, from the table's current snapshot.
async fn removals(table: &HistoryTable, files: &[ScrubFile]) -> Result<Vec<Action>> {
    let wanted: HashSet<&str> = files.iter().map(|f| f.path.as_str()).collect();
    let all = crate::rewrite::written_files(table.delta(), None).await?;
    Ok(all
        .into_iter()
        .filter(|(path, _, _)| wanted.contains(path.as_ref()) || wanted.contains(path.to_string().as_str()))
        .map(|(_, _, remove)| remove)
        .collect())
}

fn log_version(path: &Path) -> Option<(u64, bool)> {
    let name = path.filename()?;
    let (number, rest) = name.split_once('.')?;
    let version = number.parse().ok()?;
    match rest {
        "json" => Some((version, false)),
        r if r.starts_with("checkpoint") && r.ends_with("parquet") => Some((version, true)),
        _ => None,
    }
}

/// Finishes every scrub of the table (see the module docs): deletes the files their commits
/// removed, strips those files' statistics from every log entry, and replaces checkpoints
/// written before the last scrub. Idempotent.
pub async fn purge(table: &mut HistoryTable) -> Result<PurgeMetrics> {
    let label = table.object().to_owned();
    let store: Arc<dyn ObjectStore> = table.delta().log_store().object_store(None);
    let err = |e: deltalake::ObjectStoreError| LakeError::Layout { table: label.clone(), detail: format!("the Delta log: {e}") };
    let listed: Vec<_> = store.list(Some(&Path::from("_delta_log"))).try_collect().await.map_err(err)?;
    let mut commits: Vec<(u64, Path)> = Vec::new();
    let mut checkpoints: Vec<(u64, Path)> = Vec::new();
    for meta in listed {
        match log_version(&meta.location) {
            Some((v, false)) => commits.push((v, meta.location)),
            Some((v, true)) => checkpoints.push((v, meta.location)),
            None => {}
        }
    }
    commits.sort();
    // The files scrub commits removed, and the last such commit.
    let mut removed: HashSet<String> = HashSet::new();
    let mut last_scrub = None;
    let mut entries: Vec<(u64, Path, Vec<serde_json::Value>)> = Vec::new();
    for (version, path) in commits {
        let bytes = store.get(&path).await.map_err(err)?.bytes().await.map_err(err)?;
        let actions: Vec<serde_json::Value> = String::from_utf8_lossy(&bytes)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(serde_json::from_str)
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| LakeError::Layout { table: label.clone(), detail: format!("log entry {version}: {e}") })?;
        let scrub = actions.iter().any(|a| a.pointer(&format!("/commitInfo/{SCRUB_COMMIT}")).is_some());
        if scrub {
            last_scrub = Some(version);
            removed.extend(actions.iter().filter_map(|a| a.pointer("/remove/path")?.as_str().map(str::to_owned)));
        }
        entries.push((version, path, actions));
    }
    let mut metrics = PurgeMetrics::default();
    let Some(last_scrub) = last_scrub else { return Ok(metrics) };
    for path in &removed {
        match store.delete(&store_path(&label, path)?).await {
            Ok(()) => metrics.data_files_deleted += 1,
            Err(deltalake::ObjectStoreError::NotFound { .. }) => {}
            Err(e) => return Err(err(e)),
        }
    }
    for (_, path, mut actions) in entries {
        let mut changed = false;
        for action in actions.iter_mut() {
            let Some(add) = action.get_mut("add").and_then(|a| a.as_object_mut()) else { continue };
            if add.get("path").and_then(|p| p.as_str()).is_some_and(|p| removed.contains(p)) && add.remove("stats").is_some() {
                changed = true;
            }
        }
        if changed {
            let text: String = actions.iter().map(|a| format!("{a}\n")).collect();
            store.put(&path, text.into_bytes().into()).await.map_err(err)?;
            metrics.log_entries_cleaned += 1;
        }
    }
    let stale: Vec<&Path> = checkpoints.iter().filter(|(v, _)| *v < last_scrub).map(|(_, p)| p).collect();
    if !stale.is_empty() {
        table.refresh().await?;
        deltalake::checkpoints::create_checkpoint(table.delta(), None).await.map_err(|e| LakeError::delta(&label, e))?;
        for path in stale {
            match store.delete(path).await {
                Ok(()) | Err(deltalake::ObjectStoreError::NotFound { .. }) => metrics.checkpoints_replaced += 1,
                Err(e) => return Err(err(e)),
            }
        }
    }
    Ok(metrics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_rule_out_a_file_only_when_no_value_can_be_in_it() {
        let file = |stats: Option<&str>| ScrubFile {
            path: "f".into(),
            size: 1,
            tokens: BTreeMap::new(),
            stats: stats.map(str::to_owned),
        };
        let ids = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let ranged = file(Some(r#"{"numRecords":3,"minValues":{"Id":"003B"},"maxValues":{"Id":"003D"}}"#));
        assert!(ranged.excludes("Id", &ids(&["003A", "003E"])));
        assert!(!ranged.excludes("Id", &ids(&["003A", "003C"])));
        assert!(!ranged.excludes("Id", &ids(&["003B"])) && !ranged.excludes("Id", &ids(&["003D"])));
        // A truncated maximum is a prefix of values above it.
        assert!(!ranged.excludes("Id", &ids(&["003DZZ"])));
        assert!(!file(None).excludes("Id", &ids(&["003A"])));
        assert!(!file(Some(r#"{"numRecords":3}"#)).excludes("Id", &ids(&["003A"])));
    }
}
