//! Compaction: a table's small files merged into fewer, larger ones, in one data-neutral
//! commit.
//!
//! delta-rs's `optimize` is not used because it drops each file's tags: a file's
//! `tidemark.policies` tag records the field policies its values were written under
//! ([`crate::policy`]), and files under different policies must never be merged into one. Here
//! files are grouped by partition *and* tags, and each output file carries its group's tags.

use std::collections::BTreeMap;

use deltalake::DeltaTable;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, Remove};
use deltalake::parquet::file::properties::WriterProperties;
use deltalake::protocol::DeltaOperation;
use futures::StreamExt;
use tidemark_core::maintenance::MaintenanceSettings;

use crate::error::{LakeError, Result};
use crate::rewrite::RewriteWriter;
use crate::scrub::ScrubFile;

/// Commit-info key marking a maintenance commit (its value names the work: `compact`,
/// `vacuum`). Such commits change no data: readers of "the last commit a writer made" skip
/// them ([`crate::scrub::last_commit_besides_housekeeping`]).
pub const MAINTENANCE_COMMIT: &str = "tidemark.maintenance";

/// What a compaction did (or, in a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactionMetrics {
    pub files_removed: u64,
    pub bytes_removed: u64,
    pub files_added: u64,
    pub bytes_added: u64,
    pub rows: u64,
    /// The table version the compaction committed.
    pub version: Option<u64>,
}

/// One data file as compaction sees it.
#[derive(Debug, Clone)]
struct Candidate {
    path: String,
    size: i64,
    modified: i64,
    partition_values: BTreeMap<String, Option<String>>,
    remove: Remove,
}

/// Files merged into one output: same partition, same tags, written oldest first.
#[derive(Debug)]
struct Bin {
    tags: BTreeMap<String, Option<String>>,
    files: Vec<Candidate>,
}

/// The table's files below `small_file_size`, grouped by partition and tags; a group with at
/// least `min_files` files is packed, oldest first, into bins of up to `target_file_size`.
/// A bin of one file would rewrite it for nothing, so none is made.
async fn plan(table: &DeltaTable, label: &str, settings: &MaintenanceSettings) -> Result<Vec<Bin>> {
    type Values = BTreeMap<String, Option<String>>;
    let mut groups: BTreeMap<(Values, Values), Vec<Candidate>> = BTreeMap::new();
    let mut views = table.get_active_add_actions_by_partitions(&[]);
    while let Some(view) = views.next().await {
        let view = view.map_err(|e| LakeError::delta(label, e))?;
        if view.size() as u64 >= settings.small_file_size {
            continue;
        }
        #[allow(deprecated)]
        let add = view.add_action();
        if add.deletion_vector.is_some() {
            continue;
        }
        let mut remove = view.remove_action(false);
        remove.tags = add.tags.clone();
        let tags: BTreeMap<String, Option<String>> = add.tags.clone().unwrap_or_default().into_iter().collect();
        let partition_values: BTreeMap<String, Option<String>> = add.partition_values.clone().into_iter().collect();
        groups.entry((partition_values.clone(), tags)).or_default().push(Candidate {
            path: add.path,
            size: add.size,
            modified: add.modification_time,
            partition_values,
            remove,
        });
    }
    let mut bins = Vec::new();
    for ((_, tags), mut files) in groups {
        if files.len() < settings.min_files {
            continue;
        }
        files.sort_by(|a, b| (a.modified, &a.path).cmp(&(b.modified, &b.path)));
        let mut current: Vec<Candidate> = Vec::new();
        let mut size = 0u64;
        for file in files {
            if !current.is_empty() && size + file.size as u64 > settings.target_file_size {
                push_bin(&mut bins, &tags, std::mem::take(&mut current));
                size = 0;
            }
            size += file.size as u64;
            current.push(file);
        }
        push_bin(&mut bins, &tags, current);
    }
    Ok(bins)
}

fn push_bin(bins: &mut Vec<Bin>, tags: &BTreeMap<String, Option<String>>, files: Vec<Candidate>) {
    if files.len() >= 2 {
        bins.push(Bin { tags: tags.clone(), files });
    }
}

/// Compacts `table`'s small files (see [`plan`]) with Parquet `properties` (the rewrite
/// writer's own when `None`), in one commit
/// whose adds and removes all say `dataChange: false`, so readers of changes and append-only
/// checks see no data change. With `dry_run`, reports what it would remove and writes nothing.
///
/// A concurrent commit that removed one of the same files makes the commit fail (Delta's
/// conflict check); the files written are then unreferenced and a later vacuum deletes them.
pub async fn compact(
    table: &mut DeltaTable,
    label: &str,
    settings: &MaintenanceSettings,
    properties: Option<WriterProperties>,
    dry_run: bool,
) -> Result<CompactionMetrics> {
    let bins = plan(table, label, settings).await?;
    let mut metrics = CompactionMetrics::default();
    for bin in &bins {
        metrics.files_removed += bin.files.len() as u64;
        metrics.bytes_removed += bin.files.iter().map(|f| f.size as u64).sum::<u64>();
    }
    if dry_run || bins.is_empty() {
        return Ok(metrics);
    }
    let schema = crate::history::arrow_schema(table, label)?;
    let mut actions: Vec<Action> = Vec::new();
    for bin in bins {
        let mut writer = match &properties {
            Some(p) => RewriteWriter::with_properties(table, label, p.clone(), settings.target_file_size)?,
            None => RewriteWriter::new(table, label, &[], settings.target_file_size)?,
        };
        for file in &bin.files {
            let scrub_file = ScrubFile {
                path: file.path.clone(),
                size: file.size,
                tokens: BTreeMap::new(),
                stats: None,
                partition_values: file.partition_values.clone(),
            };
            let mut batches = crate::scrub::file_rows(table, label, &scrub_file, &schema)?;
            while let Some(batch) = batches.recv().await {
                let batch = batch?;
                metrics.rows += batch.num_rows() as u64;
                writer.write(batch).await?;
            }
        }
        let tags: std::collections::HashMap<String, Option<String>> = bin.tags.clone().into_iter().collect();
        for mut add in writer.flush().await? {
            add.data_change = false;
            add.tags = (!tags.is_empty()).then(|| tags.clone());
            metrics.files_added += 1;
            metrics.bytes_added += add.size as u64;
            actions.push(Action::Add(add));
        }
        actions.extend(bin.files.into_iter().map(|f| Action::Remove(f.remove)));
    }
    let snapshot = table.snapshot().map_err(|e| LakeError::delta(label, e))?;
    let properties = CommitProperties::default().with_max_retries(5).with_metadata([
        (MAINTENANCE_COMMIT.to_owned(), serde_json::Value::from("compact")),
        ("tidemark.files_compacted".to_owned(), metrics.files_removed.into()),
    ]);
    let operation = DeltaOperation::Optimize { predicate: None, target_size: settings.target_file_size as i64 };
    let finalized = CommitBuilder::from(properties)
        .with_actions(actions)
        .build(Some(snapshot), table.log_store(), operation)
        .await
        .map_err(|e| LakeError::delta(label, e))?;
    metrics.version = Some(finalized.version() as u64);
    table.update_state().await.map_err(|e| LakeError::delta(label, e))?;
    Ok(metrics)
}
