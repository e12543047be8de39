//! The dimension's Delta table, `<lake>/marts/<name>`, and the model's state table of keys
//! without a current row, `<lake>/_tidemark/model_state/<name>`.
//!
//! The dimension is partitioned by its current flag. Each load rewrites the current partition
//! (in business-key order, so the next load merges it as a stream) and appends the rows it
//! expired to the other partition, in one commit carrying the `txn` action
//! `(tidemark-model:<name>, load)`: a crash leaves the table as before or as after the load.
//! Closed rows are never rewritten.

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;
use tidemark_lake::arrow::array::RecordBatch;
use tidemark_lake::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use tidemark_lake::deltalake::kernel::{Action, Transaction};
use tidemark_lake::deltalake::protocol::{DeltaOperation, SaveMode};
use tidemark_lake::deltalake::{DeltaTable, Path};
use tidemark_lake::history::{create_partitioned_table, create_table, open_table};
use tidemark_lake::rewrite::{RewriteWriter, stream_files, written_files};
use tidemark_lake::{LakeError, LakeLocation};

use crate::error::{ModelError, Result};

/// Names of the dimension's own columns.
#[derive(Debug, Clone)]
pub struct Layout {
    pub surrogate_key: String,
    pub key: Vec<String>,
    pub attributes: Vec<String>,
    /// Attributes overwritten rather than versioned.
    pub type1: Vec<String>,
    pub effective: String,
    pub expiry: String,
    pub current: String,
    pub hash: String,
    /// Per source, in order: the bookkeeping column of its row's ordering value.
    pub source_at: Vec<String>,
}

pub const LOAD_ID: &str = "_load_id";

/// Delta properties of a dimension: statistics on every column, no append-only (expiring a
/// row rewrites it).
const PROPERTIES: [(&str, &str); 1] = [("delta.checkpointInterval", "20")];

pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

impl Layout {
    /// Columns unique within the current rows: no Parquet dictionary for them.
    pub fn unique_columns(&self) -> Vec<String> {
        let mut columns = vec![self.surrogate_key.clone(), self.hash.clone()];
        columns.extend(self.key.iter().cloned());
        columns
    }

    /// The dimension's schema from the key and attribute fields (types from the sources).
    pub fn dimension_schema(&self, key: &[Field], attributes: &[Field], dating_type: DataType) -> SchemaRef {
        let mut fields = vec![Field::new(&self.surrogate_key, DataType::Int64, false)];
        fields.extend(key.iter().map(|f| Field::new(f.name(), f.data_type().clone(), false)));
        fields.extend(attributes.iter().map(|f| Field::new(f.name(), f.data_type().clone(), true)));
        fields.push(Field::new(&self.effective, dating_type.clone(), false));
        fields.push(Field::new(&self.expiry, dating_type, false));
        fields.push(Field::new(&self.current, DataType::Boolean, false));
        fields.push(Field::new(&self.hash, DataType::Utf8, false));
        fields.push(Field::new(LOAD_ID, DataType::Int64, false));
        fields.extend(self.source_at.iter().map(|n| Field::new(n, timestamp_type(), true)));
        Arc::new(Schema::new(fields))
    }

    /// The state table's schema: key, attributes, per-source ordering values.
    pub fn state_schema(&self, dimension: &Schema) -> SchemaRef {
        let keep = |f: &&Arc<Field>| {
            let n = f.name();
            self.key.contains(n) || self.attributes.contains(n) || self.source_at.contains(n)
        };
        Arc::new(Schema::new(dimension.fields().iter().filter(keep).map(|f| f.as_ref().clone()).collect::<Vec<_>>()))
    }
}

/// The Delta application id of a model's loads.
pub fn app_id(model: &str) -> String {
    format!("tidemark-model:{}", model.to_ascii_lowercase())
}

/// Opens the dimension table, `None` before the first load.
pub async fn open_dimension(lake: &LakeLocation, model: &str) -> Result<Option<DeltaTable>> {
    Ok(open_table(lake, lake.mart_table_url(model)).await?)
}

pub async fn create_dimension(lake: &LakeLocation, model: &str, schema: &Schema, current: &str) -> Result<DeltaTable> {
    Ok(create_partitioned_table(lake, lake.mart_table_url(model), model, schema, &PROPERTIES, &[current]).await?)
}

/// The last load committed to the dimension (its `txn` version), 0 before the first.
pub async fn last_load(table: &DeltaTable, model: &str) -> Result<i64> {
    let snapshot = table.snapshot().map_err(|e| LakeError::delta(model, e))?;
    let version =
        snapshot.transaction_version(&table.log_store(), &app_id(model)).await.map_err(|e| LakeError::delta("dimension", e))?;
    Ok(version.unwrap_or(0))
}

/// The data files of the current partition in the order they were written, which is business-key
/// order: one load writes them all, in key order, through one writer that numbers the files it
/// rolls (`part-00000-<writer>…`, `part-00001-<writer>…`). The merge checks the order as it reads.
pub async fn current_files(table: &DeltaTable, current: &str) -> Result<Vec<(Path, i64, Action)>> {
    Ok(written_files(table, Some(current)).await?)
}

/// Every data file of the table, as removals (a source-time load rewrites the table).
pub async fn all_files(table: &DeltaTable) -> Result<Vec<Action>> {
    let mut files = Vec::new();
    let mut views = table.get_active_add_actions_by_partitions(&[]);
    while let Some(view) = views.next().await {
        files.push(Action::Remove(view.map_err(|e| LakeError::delta("dimension", e))?.remove_action(true)));
    }
    Ok(files)
}

/// The number of rows in the table.
pub async fn row_count(table: &DeltaTable) -> Result<u64> {
    let ctx = tidemark_lake::datafusion::prelude::SessionContext::new();
    table.update_datafusion_session(&ctx.state()).map_err(|e| LakeError::delta("dimension", e))?;
    Ok(ctx.read_table(table.table_provider().await?)?.count().await? as u64)
}

/// Streams the current rows: each file's batches, the files in the order given.
pub async fn read_current(
    table: &DeltaTable,
    files: &[(Path, i64, Action)],
    schema: SchemaRef,
) -> Result<tokio::sync::mpsc::Receiver<tidemark_lake::error::Result<RecordBatch>>> {
    Ok(stream_files(table, files.iter().map(|(p, s, _)| (p.clone(), *s)).collect(), schema))
}

/// Writes one load's files and commits them with the removal of the old current files.
pub struct DimensionWriter {
    writer: RewriteWriter,
}

impl DimensionWriter {
    /// A writer for `table`; `unique` names the columns whose values never repeat within a file
    /// (surrogate key, business key, change hash): no dictionary for them, which could never
    /// pay off and cost a seventh of an incremental load's time (BENCHMARKS.md).
    pub fn new(table: &DeltaTable, unique: &[String], target_file_size: u64) -> Result<DimensionWriter> {
        Ok(DimensionWriter { writer: RewriteWriter::new(table, "dimension", unique, target_file_size)? })
    }

    pub async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        Ok(self.writer.write(batch).await?)
    }

    /// One commit: the new files, the removal of `removes`, the load's `txn` and metadata.
    pub async fn commit(
        self,
        table: &mut DeltaTable,
        model: &str,
        load: i64,
        removes: Vec<Action>,
        metadata: HashMap<String, serde_json::Value>,
        current: &str,
    ) -> Result<u64> {
        let operation = DeltaOperation::Write {
            mode: SaveMode::Overwrite,
            partition_by: Some(vec![current.to_owned()]),
            predicate: Some(format!("{current} = true")),
        };
        Ok(self.writer.commit(table, model, Transaction::new(app_id(model), load), removes, metadata, operation).await?)
    }
}

/// The model's state table of keys without a current row (orphans of secondary sources, keys
/// deleted from the primary source), rewritten whole by each load before the dimension commit;
/// each version records its load so a re-run after a crash reads the state of the last
/// committed load.
pub struct StateTable;

impl StateTable {
    fn url(lake: &LakeLocation, model: &str) -> url::Url {
        lake.internal_table_url(&format!("model_state/{}", model.to_ascii_lowercase()))
    }

    fn app_id(model: &str) -> String {
        format!("tidemark-model-state:{}", model.to_ascii_lowercase())
    }

    /// The state table, `None` before the first load.
    pub async fn open(lake: &LakeLocation, model: &str) -> Result<Option<DeltaTable>> {
        Ok(open_table(lake, StateTable::url(lake, model)).await?)
    }

    /// The load that last wrote the state (0 for none).
    pub async fn load_of(table: &DeltaTable, model: &str) -> Result<i64> {
        let snapshot = table.snapshot().map_err(|e| LakeError::delta("model state", e))?;
        let written = snapshot
            .transaction_version(&table.log_store(), &StateTable::app_id(model))
            .await
            .map_err(|e| LakeError::delta("model state", e))?;
        Ok(written.unwrap_or(0))
    }

    /// Streams the state as of `load` (what that load wrote), in key order; nothing when none.
    /// A load that crashed after writing its state but before its dimension commit left newer
    /// versions: walk back past them.
    pub async fn read(
        lake: &LakeLocation,
        model: &str,
        load: i64,
        schema: SchemaRef,
    ) -> Result<tokio::sync::mpsc::Receiver<tidemark_lake::error::Result<RecordBatch>>> {
        let nothing = || tokio::sync::mpsc::channel(1).1;
        let Some(mut table) = open_table(lake, StateTable::url(lake, model)).await? else {
            return Ok(nothing());
        };
        let app = StateTable::app_id(model);
        loop {
            let written = table
                .snapshot()
                .map_err(|e| LakeError::delta("model state", e))?
                .transaction_version(&table.log_store(), &app)
                .await
                .map_err(|e| LakeError::delta("model state", e))?
                .unwrap_or(0);
            if written == load {
                break;
            }
            match table.version() {
                Some(v) if written > load && v > 0 => {
                    table.load_version(v - 1).await.map_err(|e| LakeError::delta("model state", e))?;
                }
                _ if written < load => {
                    return Err(ModelError::Layout {
                        model: model.to_owned(),
                        detail: format!("its state table was last written by load {written}, the dimension by load {load}"),
                    });
                }
                _ => return Ok(nothing()),
            }
        }
        let files = written_files(&table, None).await?;
        Ok(stream_files(&table, files.into_iter().map(|(path, size, _)| (path, size)).collect(), schema))
    }

    /// A writer replacing the state with the rows it is given (in key order, so the next load
    /// reads them as a stream).
    pub async fn writer(lake: &LakeLocation, model: &str, schema: &SchemaRef, target_file_size: u64) -> Result<StateWriter> {
        use tidemark_lake::deltalake::kernel::engine::arrow_conversion::TryIntoArrow;
        let url = StateTable::url(lake, model);
        let table = match open_table(lake, url.clone()).await? {
            Some(t) => t,
            None => create_table(lake, url, "model_state", schema, &[]).await?,
        };
        let snapshot = table.snapshot().map_err(|e| LakeError::delta("model state", e))?;
        let stored: Schema = snapshot.schema().as_ref().try_into_arrow()?;
        let names = |s: &Schema| s.fields().iter().map(|f| (f.name().clone(), f.data_type().clone())).collect::<Vec<_>>();
        if names(&stored) != names(schema) {
            return Err(ModelError::Layout {
                model: model.to_owned(),
                detail: "its state table's columns differ from the dimension's key, attributes and source columns".into(),
            });
        }
        let key: Vec<String> = Vec::new();
        Ok(StateWriter { writer: DimensionWriter::new(&table, &key, target_file_size)?, table, model: model.to_owned() })
    }
}

/// Writes a load's state rows; [`StateWriter::commit`] replaces the state with them.
pub struct StateWriter {
    writer: DimensionWriter,
    table: DeltaTable,
    model: String,
}

impl StateWriter {
    pub async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        self.writer.write(batch).await
    }

    /// One commit replacing every state file, recording `load`.
    pub async fn commit(mut self, load: i64) -> Result<()> {
        let removes = written_files(&self.table, None).await?.into_iter().map(|(_, _, remove)| remove).collect();
        let operation = DeltaOperation::Write { mode: SaveMode::Overwrite, partition_by: None, predicate: None };
        let txn = Transaction::new(StateTable::app_id(&self.model), load);
        self.writer.writer.commit(&mut self.table, "model state", txn, removes, HashMap::new(), operation).await?;
        Ok(())
    }
}
