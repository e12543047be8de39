//! Tables rewritten whole (or by partition) in one commit: a dimension's current rows, a
//! model's state, a push flow's snapshot.
//!
//! [`RewriteWriter`] streams new files and commits them together with the removal of the files
//! they replace, carrying an application transaction (`txn`), so a crash leaves the table as
//! before or as after and a re-run can tell whether the rewrite landed. Files one writer wrote
//! are read back in the order written ([`written_files`], [`stream_files`]), which lets a writer
//! that was given rows in key order hand them to the next reader in key order.

use std::collections::HashMap;
use std::sync::Arc;

use deltalake::arrow::array::{BooleanArray, RecordBatch};
use deltalake::arrow::datatypes::{DataType, SchemaRef};
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, Transaction};
#[allow(deprecated)]
use deltalake::parquet::arrow::async_reader::{ParquetObjectReader, ParquetRecordBatchStreamBuilder};
use deltalake::parquet::basic::Compression;
use deltalake::parquet::file::properties::{EnabledStatistics, WriterProperties};
use deltalake::parquet::schema::types::ColumnPath;
use deltalake::protocol::DeltaOperation;
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::{DeltaTable, ObjectStore, Path};
use futures::StreamExt;

use crate::error::{LakeError, Result};

/// Writes a rewrite's files; [`RewriteWriter::commit`] makes them the table's in one commit.
pub struct RewriteWriter {
    writer: RecordBatchWriter,
    label: String,
    /// A tag set on every file written (see [`crate::policy`]).
    file_tag: Option<(String, String)>,
}

impl RewriteWriter {
    /// A writer for `table` (`label` names it in errors); `unique` names columns whose values
    /// never repeat within a file: no dictionary for them, which could never pay off.
    pub fn new(table: &DeltaTable, label: &str, unique: &[String], target_file_size: u64) -> Result<RewriteWriter> {
        let mut properties =
            WriterProperties::builder().set_compression(Compression::SNAPPY).set_max_row_group_row_count(Some(128 * 1024));
        for column in unique {
            properties = properties.set_column_dictionary_enabled(ColumnPath::from(column.as_str()), false);
        }
        // Delta keeps no statistics of binary columns (the writer warns about each one it
        // skips): Parquet need not compute them either.
        let snapshot = table.snapshot().map_err(|e| LakeError::delta(label, e))?;
        for field in snapshot.schema().fields() {
            if matches!(field.data_type(), deltalake::kernel::DataType::Primitive(deltalake::kernel::PrimitiveType::Binary)) {
                properties =
                    properties.set_column_statistics_enabled(ColumnPath::from(field.name().as_str()), EnabledStatistics::None);
            }
        }
        RewriteWriter::with_properties(table, label, properties.build(), target_file_size)
    }

    /// A writer with Parquet settings of the caller's (a history table's own, when its files
    /// are rewritten as they are).
    pub fn with_properties(
        table: &DeltaTable,
        label: &str,
        properties: WriterProperties,
        target_file_size: u64,
    ) -> Result<RewriteWriter> {
        let writer = RecordBatchWriter::for_table(table)
            .map_err(|e| LakeError::delta(label, e))?
            .with_writer_properties(properties)
            .with_target_file_size(target_file_size);
        Ok(RewriteWriter { writer, label: label.to_owned(), file_tag: None })
    }

    /// Tags every file this writer adds.
    pub fn with_file_tag(mut self, tag: Option<(String, String)>) -> RewriteWriter {
        self.file_tag = tag;
        self
    }

    pub async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() > 0 {
            self.writer.write(batch).await.map_err(|e| LakeError::delta(&self.label, e))?;
        }
        Ok(())
    }

    /// One commit: the new files, the removal of `removes`, `txn` and `metadata` (commit info).
    /// No retry on conflict: one writer holds the table's lease, so a conflict is a bug to report.
    pub async fn commit(
        mut self,
        table: &mut DeltaTable,
        label: &str,
        txn: Transaction,
        removes: Vec<Action>,
        metadata: HashMap<String, serde_json::Value>,
        operation: DeltaOperation,
    ) -> Result<u64> {
        let mut actions: Vec<Action> = self.flush().await?.into_iter().map(Action::Add).collect();
        actions.extend(removes);
        let snapshot = table.snapshot().map_err(|e| LakeError::delta(label, e))?;
        let properties =
            CommitProperties::default().with_max_retries(0).with_application_transaction(txn).with_metadata(metadata);
        let finalized = CommitBuilder::from(properties)
            .with_actions(actions)
            .build(Some(snapshot), table.log_store(), operation)
            .await
            .map_err(|e| LakeError::delta(label, e))?;
        let version = finalized.version();
        table.update_state().await.map_err(|e| LakeError::delta(label, e))?;
        Ok(version as u64)
    }
}

impl RewriteWriter {
    /// Closes the files written so far and returns their add actions, tagged; the caller
    /// commits them.
    pub async fn flush(&mut self) -> Result<Vec<deltalake::kernel::Add>> {
        let adds = self.writer.flush().await.map_err(|e| LakeError::delta(&self.label, e))?;
        Ok(adds
            .into_iter()
            .map(|mut add| {
                if let Some((key, value)) = &self.file_tag {
                    add.tags.get_or_insert_with(Default::default).insert(key.clone(), Some(value.clone()));
                }
                add
            })
            .collect())
    }
}

/// The data files of the table (of the partition where the boolean partition column `flag` is
/// true), ordered by name, which is the order one writer wrote them in (`part-00000-<writer>…`,
/// `part-00001-<writer>…`); each with its size and its removal action.
pub async fn written_files(table: &DeltaTable, flag: Option<&str>) -> Result<Vec<(Path, i64, Action)>> {
    let mut files = Vec::new();
    let mut views = table.get_active_add_actions_by_partitions(&[]);
    while let Some(view) = views.next().await {
        let view = view.map_err(|e| LakeError::delta("table files", e))?;
        let values = view.partition_values_map();
        if flag.is_none_or(|flag| values.get(flag).and_then(|v| v.as_deref()) == Some("true")) {
            files.push((view.object_store_path(), view.size(), Action::Remove(view.remove_action(true))));
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(files)
}

/// Streams the batches of `files` of `table`, in the order given, in `schema` (columns cast as
/// needed; a boolean partition column absent from the files reads as true).
pub fn stream_files(
    table: &DeltaTable,
    files: Vec<(Path, i64)>,
    schema: SchemaRef,
) -> tokio::sync::mpsc::Receiver<Result<RecordBatch>> {
    let store: Arc<dyn ObjectStore> = table.log_store().object_store(None);
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    // Decoding runs beside the consumer: one core decodes while the other works on the rows.
    tokio::spawn(async move {
        for (path, size) in files {
            let label = path.to_string();
            let failed = |e: &dyn std::fmt::Display| LakeError::Layout {
                table: label.clone(),
                detail: format!("a data file cannot be read: {e}"),
            };
            // The object-store reader streams a file by ranges; reading whole files instead would
            // hold a whole file in memory.
            #[allow(deprecated)]
            let reader = ParquetObjectReader::new(store.clone(), path).with_file_size(size as u64);
            let stream =
                match ParquetRecordBatchStreamBuilder::new(reader).await.and_then(|b| b.with_batch_size(16 * 1024).build()) {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = tx.send(Err(failed(&e))).await;
                        return;
                    }
                };
            let mut stream = stream;
            while let Some(batch) = stream.next().await {
                let item = batch.map_err(|e| failed(&e)).and_then(|b| conform(&b, &schema));
                if tx.send(item).await.is_err() {
                    return;
                }
            }
        }
    });
    rx
}

/// A file batch in the table's column order and types (the partition column is not stored).
fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let mut columns = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        match batch.column_by_name(field.name()) {
            Some(c) if c.data_type() == field.data_type() => columns.push(c.clone()),
            Some(c) => columns.push(deltalake::arrow::compute::cast(c, field.data_type())?),
            None if field.data_type() == &DataType::Boolean => {
                columns.push(Arc::new(BooleanArray::from(vec![true; batch.num_rows()])))
            }
            None => {
                return Err(LakeError::Layout {
                    table: "table".into(),
                    detail: format!("a data file lacks column {}", field.name()),
                });
            }
        }
    }
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}
