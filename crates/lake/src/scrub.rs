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

use deltalake::DeltaTable;
use deltalake::arrow::array::{Array, ArrayRef, RecordBatch, StringArray};
use deltalake::arrow::datatypes::{Schema, SchemaRef};
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
    /// Its partition values (partition columns are not stored in the file).
    pub partition_values: BTreeMap<String, Option<String>>,
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

    /// Runs on a history table: `delta.appendOnly` is lifted for the rewrite's commit only.
    pub async fn run(self, table: &mut HistoryTable) -> Result<ScrubMetrics> {
        if !self.files.is_empty() {
            table.set_append_only(false).await?;
        }
        let label = table.object().to_owned();
        let mut metrics = self.rewrite(table.delta_mut(), &label).await?;
        // Always: an earlier run may have committed and crashed before finishing.
        table.set_append_only(true).await?;
        metrics.purge = purge(table.delta_mut(), &label).await?;
        Ok(metrics)
    }

    /// Runs on any other table (a dimension, a snapshot, an internal table): `label` names it
    /// in errors.
    pub async fn run_on(self, table: &mut DeltaTable, label: &str) -> Result<ScrubMetrics> {
        let mut metrics = self.rewrite(table, label).await?;
        metrics.purge = purge(table, label).await?;
        Ok(metrics)
    }

    /// The rewrite and its commit.
    async fn rewrite(self, table: &mut DeltaTable, label: &str) -> Result<ScrubMetrics> {
        let files = crate::policy::file_tokens(table, label).await?;
        let mut metrics = ScrubMetrics { table_bytes: files.iter().map(|f| f.size as u64).sum(), ..ScrubMetrics::default() };
        if self.files.is_empty() {
            return Ok(metrics);
        }
        let schema = crate::history::arrow_schema(table, label)?;
        let mut writer = RewriteWriter::new(table, label, &[], TARGET_FILE_SIZE)?.with_file_tag(self.tag.clone());
        let removes = removals(table, &self.files).await?;
        for file in &self.files {
            let mut batches = file_rows(table, label, file, &schema)?;
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
        let app_id = crate::writer::app_id("scrub", label);
        let snapshot = table.snapshot().map_err(|e| LakeError::delta(label, e))?;
        let done =
            snapshot.transaction_version(table.log_store().as_ref(), &app_id).await.map_err(|e| LakeError::delta(label, e))?;
        let mut info: HashMap<String, serde_json::Value> = self.metadata.into_iter().collect();
        info.insert(SCRUB_COMMIT.to_owned(), self.purpose.clone().into());
        info.insert("tidemark.files_rewritten".to_owned(), metrics.files_rewritten.into());
        let version = writer
            .commit(
                table,
                label,
                Transaction::new(&app_id, done.unwrap_or(0) + 1),
                removes,
                info,
                DeltaOperation::Update { predicate: None },
            )
            .await?;
        metrics.table_version = Some(version);
        Ok(metrics)
    }
}

/// The newest commit that is neither a scrub nor maintenance (compaction, vacuum): capabilities
/// that carry state forward in their commits' info (a model's load record, a push run's
/// unresolved chunks) read it here, so an erasure or a maintenance run between two of their
/// runs changes nothing for them.
pub async fn last_commit_besides_housekeeping(table: &DeltaTable, label: &str) -> Result<Option<deltalake::kernel::CommitInfo>> {
    use futures::StreamExt;
    let mut history = table.history(None);
    while let Some(info) = history.next().await {
        let info = info.map_err(|e| LakeError::delta(label, e))?;
        let maintenance = info.info.contains_key(crate::maintain::MAINTENANCE_COMMIT)
            || matches!(info.operation.as_deref(), Some("OPTIMIZE" | "VACUUM START" | "VACUUM END"));
        if !info.info.contains_key(SCRUB_COMMIT) && !maintenance {
            return Ok(Some(info));
        }
    }
    Ok(None)
}

/// Streams one file's rows in the table's schema, its partition columns filled from the
/// file's partition values.
pub(crate) fn file_rows(
    table: &DeltaTable,
    label: &str,
    file: &ScrubFile,
    schema: &SchemaRef,
) -> Result<tokio::sync::mpsc::Receiver<Result<RecordBatch>>> {
    let stored: Vec<_> =
        schema.fields().iter().filter(|f| !file.partition_values.contains_key(f.name())).cloned().collect::<Vec<_>>();
    let mut batches = stream_files(table, vec![(store_path(label, &file.path)?, file.size)], Arc::new(Schema::new(stored)));
    if file.partition_values.is_empty() {
        return Ok(batches);
    }
    let (schema, values, label) = (schema.clone(), file.partition_values.clone(), label.to_owned());
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    tokio::spawn(async move {
        while let Some(batch) = batches.recv().await {
            let item = batch.and_then(|b| with_partition_columns(&b, &schema, &values, &label));
            if tx.send(item).await.is_err() {
                return;
            }
        }
    });
    Ok(rx)
}

fn with_partition_columns(
    batch: &RecordBatch,
    schema: &SchemaRef,
    values: &BTreeMap<String, Option<String>>,
    label: &str,
) -> Result<RecordBatch> {
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        match values.get(field.name()) {
            Some(value) => {
                let text: ArrayRef = Arc::new(StringArray::from(vec![value.as_deref(); batch.num_rows()]));
                let typed = deltalake::arrow::compute::cast(&text, field.data_type())?;
                if value.is_some() && typed.null_count() > 0 {
                    return Err(LakeError::Layout {
                        table: label.to_owned(),
                        detail: format!("a file's partition value of {} is not a {}", field.name(), field.data_type()),
                    });
                }
                columns.push(typed);
            }
            None => columns.push(batch.column_by_name(field.name()).expect("streamed in the stored schema").clone()),
        }
    }
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// Reads the files of `table` that `skip` does not rule out (by their statistics), one after
/// another (only `columns`, when given, partition columns filled in): `visit` sees each batch
/// with its file, and returns whether to stop reading that file.
pub async fn scan_files(
    table: &DeltaTable,
    label: &str,
    columns: Option<&[&str]>,
    skip: impl Fn(&ScrubFile) -> bool,
    mut visit: impl FnMut(&ScrubFile, &RecordBatch) -> Result<bool>,
) -> Result<()> {
    let mut schema = crate::history::arrow_schema(table, label)?;
    if let Some(columns) = columns {
        let picked: Vec<_> = schema.fields().iter().filter(|f| columns.contains(&f.name().as_str())).cloned().collect();
        schema = Arc::new(Schema::new(picked));
    }
    for file in crate::policy::file_tokens(table, label).await?.into_iter().filter(|f| !skip(f)) {
        let mut batches = file_rows(table, label, &file, &schema)?;
        while let Some(batch) = batches.recv().await {
            if visit(&file, &batch?)? {
                break;
            }
        }
    }
    Ok(())
}

/// The files of `table` holding a row `holds` picks, each read up to its first such row.
pub async fn files_holding(
    table: &DeltaTable,
    label: &str,
    columns: Option<&[&str]>,
    skip: impl Fn(&ScrubFile) -> bool,
    holds: impl Fn(&RecordBatch) -> Result<bool>,
) -> Result<Vec<ScrubFile>> {
    let mut out: Vec<ScrubFile> = Vec::new();
    scan_files(table, label, columns, skip, |file, batch| {
        let found = holds(batch)?;
        if found {
            out.push(file.clone());
        }
        Ok(found)
    })
    .await?;
    Ok(out)
}

/// The files of `table` with rows `picks` picks, and how many each has (every file read whole).
pub async fn rows_picked(
    table: &DeltaTable,
    label: &str,
    columns: Option<&[&str]>,
    picks: impl Fn(&RecordBatch) -> Result<deltalake::arrow::array::BooleanArray>,
) -> Result<Vec<(ScrubFile, u64)>> {
    let mut out: Vec<(ScrubFile, u64)> = Vec::new();
    scan_files(
        table,
        label,
        columns,
        |_| false,
        |file, batch| {
            let count = picks(batch)?.true_count() as u64;
            match out.last_mut() {
                Some((last, n)) if last.path == file.path => *n += count,
                _ if count > 0 => out.push((file.clone(), count)),
                _ => {}
            }
            Ok(false)
        },
    )
    .await?;
    Ok(out)
}

/// A log path (percent-encoded) as an object-store path.
fn store_path(label: &str, path: &str) -> Result<Path> {
    Path::from_url_path(path).map_err(|e| LakeError::Layout { table: label.to_owned(), detail: format!("file {path}: {e}") })
}

/// The removal actions of `files`, from the table's current snapshot.
async fn removals(table: &DeltaTable, files: &[ScrubFile]) -> Result<Vec<Action>> {
    let wanted: HashSet<&str> = files.iter().map(|f| f.path.as_str()).collect();
    let all = crate::rewrite::written_files(table, None).await?;
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

/// Finishes every scrub of the table (see the module docs): in a table a scrub committed to,
/// deletes every file the current version does not read, strips those files' statistics from
/// every log entry, and replaces checkpoints written before the last scrub. Idempotent.
pub async fn purge(table: &mut DeltaTable, label: &str) -> Result<PurgeMetrics> {
    let store: Arc<dyn ObjectStore> = table.log_store().object_store(None);
    let err =
        |e: deltalake::ObjectStoreError| LakeError::Layout { table: label.to_owned(), detail: format!("the Delta log: {e}") };
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
    // Every file a commit removed (a scrub's, or a rewrite's before it: an older version of a
    // dimension holds the same values), and the last scrub commit.
    let mut removed: HashSet<String> = HashSet::new();
    let mut active: HashSet<String> = HashSet::new();
    let mut last_scrub = None;
    let mut entries: Vec<(u64, Path, Vec<serde_json::Value>)> = Vec::new();
    for (version, path) in commits {
        let bytes = store.get(&path).await.map_err(err)?.bytes().await.map_err(err)?;
        let actions: Vec<serde_json::Value> = String::from_utf8_lossy(&bytes)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(serde_json::from_str)
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| LakeError::Layout { table: label.to_owned(), detail: format!("log entry {version}: {e}") })?;
        if actions.iter().any(|a| a.pointer(&format!("/commitInfo/{SCRUB_COMMIT}")).is_some()) {
            last_scrub = Some(version);
        }
        for action in &actions {
            if let Some(path) = action.pointer("/add/path").and_then(|p| p.as_str()) {
                active.insert(path.to_owned());
            }
            if let Some(path) = action.pointer("/remove/path").and_then(|p| p.as_str()) {
                active.remove(path);
                removed.insert(path.to_owned());
            }
        }
        entries.push((version, path, actions));
    }
    let mut metrics = PurgeMetrics::default();
    let Some(last_scrub) = last_scrub else { return Ok(metrics) };
    removed.retain(|path| !active.contains(path));
    for path in &removed {
        match store.delete(&store_path(label, path)?).await {
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
        table.update_state().await.map_err(|e| LakeError::delta(label, e))?;
        deltalake::checkpoints::create_checkpoint(table, None).await.map_err(|e| LakeError::delta(label, e))?;
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
            partition_values: BTreeMap::new(),
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
