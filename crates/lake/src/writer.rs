//! Streaming, idempotent appends of versions to a history table.

use std::sync::Arc;
use std::time::Instant;

use deltalake::arrow::array::RecordBatch;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, Transaction};
use deltalake::parquet::basic::{Compression, ZstdLevel};
use deltalake::parquet::file::properties::WriterProperties;
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::writer::{DeltaWriter, RecordBatchWriter, WriteMode};

use crate::error::{LakeError, Result};
use crate::history::HistoryTable;
use crate::lease::Lease;

/// Target size of one data file. Large enough that readers open few files, small enough that
/// a writer holds little in memory (files stream to storage as multipart uploads).
pub const TARGET_FILE_SIZE: u64 = 128 * 1024 * 1024;

/// Parquet settings for history tables: zstd level 3, 64 Ki-row row groups (enough for
/// per-row-group pruning on `_version_at` without tiny pages).
pub fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).expect("valid zstd level")))
        .set_max_row_group_row_count(Some(64 * 1024))
        .build()
}

/// The Delta application id under which a writer numbers its commits for `table`.
pub fn app_id(writer: &str, object: &str) -> String {
    format!("tidemark-{writer}:{}", object.to_ascii_lowercase())
}

/// Commit-info key holding the writer's unique token and transaction number.
const WRITER_TOKEN: &str = "tidemark.writer";

/// What one commit did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitMetrics {
    pub table_version: u64,
    pub rows: u64,
    /// The transaction number recorded in the commit (`txn` action).
    pub transaction: i64,
    pub millis: u64,
}

/// Appends batches to a history table, streaming Parquet files to storage, and commits them
/// as numbered Delta transactions.
///
/// Contract:
/// - Nothing is visible to readers until [`VersionWriter::commit`] returns; a crash before
///   leaves at most unreferenced files (removed by a later vacuum), never partial versions.
/// - Each commit carries a `txn` action `(app_id, n)` with `n` one more than the table's last
///   transaction for `app_id` when the writer was created. If a commit's outcome is unknown
///   (an error after the log entry may have landed), the writer re-reads the log and treats
///   the commit as done when transaction `n` is there, so a retry never appends twice.
/// - A commit lands only on the table version the writer last saw (its own previous commit,
///   or the table as opened): any other writer's commit in between makes it fail with
///   [`LakeError::ForeignCommit`] (or [`LakeError::ConcurrentWriter`] for the same `app_id`),
///   nothing written. Appends would merge without conflict in Delta, but versions read and
///   de-duplicated against a stale table would land twice. Each writer stamps its commits with
///   a unique token, so "transaction `n` is there" means "ours is".
/// - With a [`Lease`] ([`VersionWriter::with_lease`]), a commit first checks it is still held.
/// - Not `Sync`: one task writes one table.
pub struct VersionWriter {
    inner: Option<RecordBatchWriter>,
    app_id: String,
    next_transaction: i64,
    metadata: Vec<(String, serde_json::Value)>,
    pending_rows: u64,
    token: String,
    lease: Option<Arc<Lease>>,
    /// A tag set on every data file this writer adds (`tidemark.policies`: see
    /// [`crate::policy`]).
    file_tag: Option<(String, String)>,
}

impl std::fmt::Debug for VersionWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VersionWriter")
            .field("app_id", &self.app_id)
            .field("next_transaction", &self.next_transaction)
            .field("pending_rows", &self.pending_rows)
            .finish()
    }
}

impl VersionWriter {
    /// A writer for `table`; `metadata` goes into every commit's `commitInfo`.
    pub async fn new(table: &HistoryTable, app_id: String, metadata: Vec<(String, serde_json::Value)>) -> Result<VersionWriter> {
        let last = table.transaction_version(&app_id).await?.unwrap_or(0);
        let inner = RecordBatchWriter::for_table(table.delta())
            .map_err(|e| LakeError::delta(table.object(), e))?
            .with_writer_properties(writer_properties())
            .with_target_file_size(TARGET_FILE_SIZE);
        let token = uuid::Uuid::new_v4().to_string();
        Ok(VersionWriter {
            inner: Some(inner),
            app_id,
            next_transaction: last + 1,
            metadata,
            pending_rows: 0,
            token,
            lease: None,
            file_tag: None,
        })
    }

    /// Commits only while `lease` is held.
    pub fn with_lease(mut self, lease: Arc<Lease>) -> VersionWriter {
        self.lease = Some(lease);
        self
    }

    /// Tags every data file this writer adds with `tag` (key, value).
    pub fn with_file_tag(mut self, tag: Option<(String, String)>) -> VersionWriter {
        self.file_tag = tag;
        self
    }

    /// Streams a batch into the open files. Its columns are matched by name; columns the table
    /// lacks are an error (add them first with [`HistoryTable::add_columns`]).
    pub async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let rows = batch.num_rows() as u64;
        let inner = self.inner.as_mut().expect("writer present between calls");
        inner.write_with_mode(batch, WriteMode::Default).await.map_err(|e| LakeError::delta("history writer", e))?;
        self.pending_rows += rows;
        Ok(())
    }

    /// Rows written since the last commit.
    pub fn pending_rows(&self) -> u64 {
        self.pending_rows
    }

    /// Commits everything written since the last commit as transaction `position` instead of
    /// the next number: sources whose changes carry a monotonic position (a Postgres LSN) number
    /// their commits by it, so [`HistoryTable::transaction_version`] tells how far the table
    /// holds the source, in the same atomic commit as the versions. With `always`, a commit is
    /// made even with nothing written (an empty table's initial copy is done too).
    ///
    /// Fails with [`LakeError::Layout`] when `position` is below the next transaction number: the
    /// caller must skip what the table already holds.
    pub async fn commit_at(&mut self, table: &mut HistoryTable, position: i64, always: bool) -> Result<Option<CommitMetrics>> {
        if position < self.next_transaction {
            return Err(LakeError::Layout {
                table: table.object().to_owned(),
                detail: format!("commit at position {position}, but the table already holds {}", self.next_transaction - 1),
            });
        }
        if self.pending_rows == 0 && !always {
            return Ok(None);
        }
        self.next_transaction = position;
        self.commit_inner(table).await
    }

    /// The last transaction number committed for this writer's app id (its position, for
    /// [`VersionWriter::commit_at`] writers), 0 when none.
    pub fn last_transaction(&self) -> i64 {
        self.next_transaction - 1
    }

    /// Commits everything written since the last commit as one transaction. Does nothing
    /// (and returns `None`) when nothing was written.
    pub async fn commit(&mut self, table: &mut HistoryTable) -> Result<Option<CommitMetrics>> {
        if self.pending_rows == 0 {
            return Ok(None);
        }
        self.commit_inner(table).await
    }

    async fn commit_inner(&mut self, table: &mut HistoryTable) -> Result<Option<CommitMetrics>> {
        if let Some(lease) = &self.lease {
            lease.ensure_held()?;
        }
        let started = Instant::now();
        let transaction = self.next_transaction;
        let read_version = table.version();
        let props = CommitProperties::default()
            // No retry over another writer's commit: see the contract above.
            .with_max_retries(0)
            .with_application_transaction(Transaction::new(&self.app_id, transaction))
            .with_metadata(self.metadata.iter().cloned().chain([
                ("tidemark.rows".to_owned(), self.pending_rows.into()),
                (WRITER_TOKEN.to_owned(), format!("{}/{transaction}", self.token).into()),
            ]));
        let outcome = match &self.file_tag {
            None => {
                let mut inner = self.inner.take().expect("writer present between calls").with_commit_properties(props);
                let outcome = inner.flush_and_commit(table.delta_mut()).await;
                self.inner = Some(inner);
                outcome
            }
            Some(tag) => {
                let inner = self.inner.as_mut().expect("writer present between calls");
                tagged_commit(inner, table, props, tag).await
            }
        };
        let table_version = match outcome {
            Ok(v) => v,
            Err(e) => {
                // The log entry may have landed before the error: look before retrying.
                table.refresh().await?;
                match table.transaction_version(&self.app_id).await? {
                    Some(found) if found == transaction && landed(table, format!("{}/{transaction}", self.token)).await? => {
                        self.inner.as_mut().expect("writer present").reset();
                        table.version().unwrap_or_default()
                    }
                    Some(found) if found >= transaction => {
                        return Err(LakeError::ConcurrentWriter {
                            table: table.object().to_owned(),
                            app_id: self.app_id.clone(),
                            expected: transaction,
                            found,
                        });
                    }
                    _ if table.version() != read_version => {
                        return Err(LakeError::ForeignCommit {
                            table: table.object().to_owned(),
                            detail: latest_writer(table).await,
                        });
                    }
                    _ => return Err(LakeError::delta(table.object(), e)),
                }
            }
        };
        let rows = std::mem::take(&mut self.pending_rows);
        self.next_transaction += 1;
        Ok(Some(CommitMetrics {
            table_version,
            rows,
            transaction,
            millis: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        }))
    }

    /// Drops everything written since the last commit.
    pub fn abort(&mut self) {
        if let Some(inner) = self.inner.as_mut() {
            inner.reset();
        }
        self.pending_rows = 0;
    }
}

/// `flush_and_commit` with every added file tagged: the files are flushed, tagged and
/// committed as the same append. (delta-rs's writer adds no tags of its own.)
async fn tagged_commit(
    inner: &mut RecordBatchWriter,
    table: &mut HistoryTable,
    props: CommitProperties,
    (key, value): &(String, String),
) -> std::result::Result<u64, deltalake::DeltaTableError> {
    let adds = inner.flush().await?;
    let actions: Vec<Action> = adds
        .into_iter()
        .map(|mut add| {
            add.tags.get_or_insert_with(Default::default).insert(key.clone(), Some(value.clone()));
            Action::Add(add)
        })
        .collect();
    let delta = table.delta_mut();
    let snapshot = delta.snapshot()?;
    let operation = DeltaOperation::Write { mode: SaveMode::Append, partition_by: None, predicate: None };
    let finalized = CommitBuilder::from(props).with_actions(actions).build(Some(snapshot), delta.log_store(), operation).await?;
    delta.update_state().await?;
    Ok(finalized.version() as u64)
}

/// Who made the table's latest commit, for messages: its run id and operation.
async fn latest_writer(table: &HistoryTable) -> String {
    let version = table.version().unwrap_or_default();
    match table.last_commit().await {
        Ok(Some(info)) => {
            let run = info.info.get("tidemark.run_id").and_then(|v| v.as_str()).unwrap_or("a writer other than Tidemark's sync");
            format!("version {version} by {run}, {}", info.operation.as_deref().unwrap_or("?"))
        }
        _ => format!("version {version}"),
    }
}

/// Whether the commit stamped `stamp` (`<token>/<transaction>`) is in the table's recent history.
async fn landed(table: &HistoryTable, stamp: String) -> Result<bool> {
    use futures::StreamExt;
    let mut history = table.delta().history(Some(20));
    while let Some(info) = history.next().await {
        let info = info.map_err(|e| LakeError::delta(table.object(), e))?;
        if info.info.get(WRITER_TOKEN).and_then(|v| v.as_str()) == Some(stamp.as_str()) {
            return Ok(true);
        }
    }
    Ok(false)
}
