//! A flow's snapshot: per key of its result, the hash of the values delivered last and the
//! Salesforce record they went to. `<lake>/_tidemark/push/<flow>/snapshot`, a Delta table.
//!
//! Columns: the flow's key columns (types as its result's), `_row_hash` (the delivered values'
//! [`crate::row_hash`]), `_sf_id` (the record's Id, once known), `_run` (the run that delivered
//! them). Each run rewrites it whole in one commit carrying the transaction
//! `(tidemark-push:<flow>, run)`, with its rows in key order, so the next run's diff reads it as
//! a stream in file order without sorting it.

use std::collections::HashMap;
use std::sync::Arc;

use tidemark_lake::LakeLocation;
use tidemark_lake::arrow::array::RecordBatch;
use tidemark_lake::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use tidemark_lake::deltalake::DeltaTable;
use tidemark_lake::deltalake::kernel::Transaction;
use tidemark_lake::deltalake::protocol::{DeltaOperation, SaveMode};
use tidemark_lake::history::{create_table, open_table};
use tidemark_lake::rewrite::{RewriteWriter, stream_files, written_files};

use crate::error::{PushError, Result};
use crate::row_hash::hash_type;

pub const ROW_HASH: &str = "_row_hash";
pub const SF_ID: &str = "_sf_id";
pub const RUN: &str = "_run";

/// The Delta application id of a flow's runs.
pub fn app_id(flow: &str) -> String {
    format!("tidemark-push:{}", flow.to_ascii_lowercase())
}

/// The snapshot table's location.
pub(crate) fn url(lake: &LakeLocation, flow: &str) -> url::Url {
    lake.internal_table_url(&format!("push/{}/snapshot", flow.to_ascii_lowercase()))
}

/// The snapshot's schema for a result whose key columns are `key`.
pub fn schema(key: &[Field]) -> SchemaRef {
    let mut fields: Vec<Field> = key.iter().map(|f| Field::new(f.name(), f.data_type().clone(), false)).collect();
    fields.push(Field::new(ROW_HASH, hash_type(), false));
    fields.push(Field::new(SF_ID, DataType::Utf8, true));
    fields.push(Field::new(RUN, DataType::Int64, false));
    Arc::new(Schema::new(fields))
}

/// A flow's snapshot table as last committed.
pub struct Snapshot {
    table: DeltaTable,
    schema: SchemaRef,
}

impl Snapshot {
    /// The snapshot, `None` before the flow's first successful run.
    pub async fn open(lake: &LakeLocation, flow: &str) -> Result<Option<Snapshot>> {
        let Some(table) = open_table(lake, url(lake, flow)).await? else { return Ok(None) };
        let schema = table_schema(&table, flow)?;
        Ok(Some(Snapshot { table, schema }))
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The last run that committed it (0 for a table created but never committed by a run).
    pub async fn last_run(&self, flow: &str) -> Result<i64> {
        let snapshot = self.table.snapshot().map_err(|e| tidemark_lake::LakeError::delta(flow, e))?;
        let version = snapshot
            .transaction_version(&self.table.log_store(), &app_id(flow))
            .await
            .map_err(|e| tidemark_lake::LakeError::delta(flow, e))?;
        Ok(version.unwrap_or(0))
    }

    /// A list of strings the last commit carries in its commit info under `key` (empty when
    /// it carries none).
    pub async fn last_commit_list(&self, key: &str) -> Result<Vec<String>> {
        // An erasure's scrub may have committed since.
        let info = tidemark_lake::scrub::last_commit_besides_housekeeping(&self.table, "push snapshot").await?;
        Ok(info.and_then(|i| i.info.get(key).and_then(|list| serde_json::from_value(list.clone()).ok())).unwrap_or_default())
    }

    /// Its rows, in key order (the order they were written in).
    pub async fn rows(&self) -> Result<tokio::sync::mpsc::Receiver<tidemark_lake::error::Result<RecordBatch>>> {
        let files = written_files(&self.table, None).await?;
        Ok(stream_files(&self.table, files.into_iter().map(|(path, size, _)| (path, size)).collect(), self.schema.clone()))
    }
}

fn table_schema(table: &DeltaTable, flow: &str) -> Result<SchemaRef> {
    use tidemark_lake::deltalake::kernel::engine::arrow_conversion::TryIntoArrow;
    let snapshot = table.snapshot().map_err(|e| tidemark_lake::LakeError::delta(flow, e))?;
    let schema: Schema = snapshot.schema().as_ref().try_into_arrow()?;
    for name in [ROW_HASH, SF_ID, RUN] {
        if schema.field_with_name(name).is_err() {
            return Err(PushError::Layout { flow: flow.to_owned(), detail: format!("it has no column {name}") });
        }
    }
    Ok(Arc::new(schema))
}

/// Writes a run's snapshot (rows in key order); [`SnapshotWriter::commit`] replaces the old one.
pub struct SnapshotWriter {
    writer: RewriteWriter,
    table: DeltaTable,
    flow: String,
    schema: SchemaRef,
}

impl SnapshotWriter {
    /// A writer of a snapshot with `schema` (from [`schema`]); a snapshot of other key columns
    /// is refused (the flow's key changed: its snapshot no longer describes what was sent).
    pub async fn new(lake: &LakeLocation, flow: &str, schema: SchemaRef, target_file_size: u64) -> Result<SnapshotWriter> {
        let table = match open_table(lake, url(lake, flow)).await? {
            Some(t) => t,
            None => create_table(lake, url(lake, flow), "push snapshot", &schema, &[]).await?,
        };
        let stored = table_schema(&table, flow)?;
        let columns = |s: &Schema| s.fields().iter().map(|f| (f.name().clone(), f.data_type().clone())).collect::<Vec<_>>();
        if columns(&stored) != columns(&schema) {
            return Err(PushError::Layout {
                flow: flow.to_owned(),
                detail: "its key columns differ from the flow's (a changed key needs a new flow name)".into(),
            });
        }
        let unique = vec![ROW_HASH.to_owned(), SF_ID.to_owned()];
        let writer = RewriteWriter::new(&table, "push snapshot", &unique, target_file_size)?;
        Ok(SnapshotWriter { writer, table, flow: flow.to_owned(), schema })
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    pub async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        Ok(self.writer.write(batch).await?)
    }

    /// One commit replacing every file of the snapshot, recording `run`; the table version.
    pub async fn commit(mut self, run: i64, metadata: HashMap<String, serde_json::Value>) -> Result<u64> {
        let removes = written_files(&self.table, None).await?.into_iter().map(|(_, _, remove)| remove).collect();
        let operation = DeltaOperation::Write { mode: SaveMode::Overwrite, partition_by: None, predicate: None };
        let txn = Transaction::new(app_id(&self.flow), run);
        Ok(self.writer.commit(&mut self.table, "push snapshot", txn, removes, metadata, operation).await?)
    }
}
