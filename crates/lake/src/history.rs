//! History tables: one append-only Delta table of record versions per object.

use std::sync::Arc;

use deltalake::arrow::datatypes::{Schema, SchemaRef};
use deltalake::kernel::StructField;
use deltalake::kernel::engine::arrow_conversion::{TryIntoArrow, TryIntoKernel};
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError};

use crate::error::{LakeError, Result};
use crate::location::LakeLocation;

/// Table properties every history table gets.
///
/// - Statistics on the first 40 columns: the metadata columns and `Id` come first, so the
///   bookmark and overlap scans prune files by `_version_at`.
/// - Checkpoints every 50 commits keep opening a long-lived table fast.
const TABLE_PROPERTIES: [(&str, &str); 3] =
    [("delta.dataSkippingNumIndexedCols", "40"), ("delta.checkpointInterval", "50"), ("delta.appendOnly", "true")];

/// An object's history table.
#[derive(Debug, Clone)]
pub struct HistoryTable {
    object: String,
    table: DeltaTable,
}

/// Any Delta table's current Arrow schema, partition columns included (`label` names it in
/// errors).
pub fn arrow_schema(table: &DeltaTable, label: &str) -> Result<SchemaRef> {
    let snapshot = table.snapshot().map_err(|e| LakeError::delta(label, e))?;
    let schema: Schema = snapshot.schema().as_ref().try_into_arrow().map_err(LakeError::Arrow)?;
    Ok(Arc::new(schema))
}

/// Opens the table at `url`, `None` when no Delta table exists there yet.
pub async fn open_table(location: &LakeLocation, url: url::Url) -> Result<Option<DeltaTable>> {
    let name = url.to_string();
    // A local folder that does not exist yet is "no table", as an empty prefix is on S3.
    if let Ok(path) = url.to_file_path() {
        if !path.join("_delta_log").is_dir() {
            return Ok(None);
        }
    }
    let mut table = DeltaTableBuilder::from_url(url)
        .map_err(|e| LakeError::delta(&name, e))?
        .with_storage_options(location.storage_options().clone())
        .build()
        .map_err(|e| LakeError::delta(&name, e))?;
    match table.load().await {
        Ok(()) => Ok(Some(table)),
        Err(DeltaTableError::NotATable(_)) => Ok(None),
        Err(e) => Err(LakeError::delta(&name, e)),
    }
}

/// Creates a table (or opens it when another writer created it first).
pub async fn create_table(
    location: &LakeLocation,
    url: url::Url,
    name: &str,
    schema: &Schema,
    properties: &[(&str, &str)],
) -> Result<DeltaTable> {
    create_partitioned_table(location, url, name, schema, properties, &[]).await
}

/// [`create_table`] with Hive-style partition columns.
pub async fn create_partitioned_table(
    location: &LakeLocation,
    url: url::Url,
    name: &str,
    schema: &Schema,
    properties: &[(&str, &str)],
    partition_columns: &[&str],
) -> Result<DeltaTable> {
    let label = url.to_string();
    let fields: Vec<StructField> = schema
        .fields()
        .iter()
        .map(|f| f.as_ref().try_into_kernel())
        .collect::<Result<_, _>>()
        .map_err(|e: deltalake::arrow::error::ArrowError| LakeError::Arrow(e))?;
    let created = deltalake::operations::create::CreateBuilder::new()
        .with_location(url.as_str())
        .with_storage_options(location.storage_options().clone())
        .with_table_name(name)
        .with_columns(fields)
        .with_partition_columns(partition_columns.iter().map(|c| c.to_string()))
        .with_configuration(properties.iter().map(|(k, v)| (k.to_string(), Some(v.to_string()))))
        .await;
    match created {
        Ok(t) => Ok(t),
        // A concurrent creator won; its table is as good as ours.
        Err(e) => match open_table(location, url).await? {
            Some(t) => Ok(t),
            None => Err(LakeError::delta(&label, e)),
        },
    }
}

impl HistoryTable {
    /// Opens an object's history table, `None` when it was never synced.
    pub async fn open(location: &LakeLocation, object: &str) -> Result<Option<HistoryTable>> {
        Ok(open_table(location, location.object_table_url(object))
            .await?
            .map(|table| HistoryTable { object: object.to_owned(), table }))
    }

    /// Creates an object's history table with `schema` (see [`crate::columns::initial_schema`]).
    pub async fn create(location: &LakeLocation, object: &str, schema: &Schema) -> Result<HistoryTable> {
        let table = create_table(location, location.object_table_url(object), object, schema, &TABLE_PROPERTIES).await?;
        Ok(HistoryTable { object: object.to_owned(), table })
    }

    /// Opens a history table by the name SQL gives it: a Salesforce object (`Account`), or a
    /// source's table as `<source>.<table>` (`crm.account`).
    pub async fn open_named(location: &LakeLocation, name: &str) -> Result<Option<HistoryTable>> {
        match name.split_once('.') {
            Some((source, table)) => HistoryTable::open_source(location, source, table).await,
            None => HistoryTable::open(location, name).await,
        }
    }

    /// Opens the history table of `table` from source `source` (`sources/<source>/<table>/`).
    pub async fn open_source(location: &LakeLocation, source: &str, table: &str) -> Result<Option<HistoryTable>> {
        Ok(open_table(location, location.source_table_url(source, table))
            .await?
            .map(|t| HistoryTable { object: LakeLocation::source_resource(source, table), table: t }))
    }

    /// Creates the history table of `table` from source `source`.
    pub async fn create_source(location: &LakeLocation, source: &str, table: &str, schema: &Schema) -> Result<HistoryTable> {
        let name = LakeLocation::source_resource(source, table);
        let url = location.source_table_url(source, table);
        let t = create_table(location, url, &name.replace('/', "."), schema, &TABLE_PROPERTIES).await?;
        Ok(HistoryTable { object: name, table: t })
    }

    /// The object (Salesforce) or `sources/<source>/<table>` name the table was opened by.
    pub fn object(&self) -> &str {
        &self.object
    }

    pub fn delta(&self) -> &DeltaTable {
        &self.table
    }

    pub(crate) fn delta_mut(&mut self) -> &mut DeltaTable {
        &mut self.table
    }

    /// The Delta table version (number of commits - 1); `None` before the first commit.
    pub fn version(&self) -> Option<u64> {
        self.table.version()
    }

    /// The table's current Arrow schema.
    pub fn schema(&self) -> Result<SchemaRef> {
        arrow_schema(&self.table, &self.object)
    }

    /// Adds nullable columns (schema evolution). Existing rows read them as null.
    pub async fn add_columns(&mut self, fields: &[deltalake::arrow::datatypes::Field]) -> Result<()> {
        if fields.is_empty() {
            return Ok(());
        }
        let kernel: Vec<StructField> = fields
            .iter()
            .map(|f| f.clone().with_nullable(true))
            .map(|f| (&f).try_into_kernel())
            .collect::<Result<_, _>>()
            .map_err(|e: deltalake::arrow::error::ArrowError| LakeError::Arrow(e))?;
        let table = self.table.clone().add_columns().with_fields(kernel).await.map_err(|e| LakeError::delta(&self.object, e))?;
        self.table = table;
        Ok(())
    }

    /// Sets `delta.appendOnly` (a commit only when it changes). Lifted only for a rewrite that
    /// must remove rows (doctor repairs, scrubs), and set again after it.
    pub async fn set_append_only(&mut self, on: bool) -> Result<()> {
        let properties = self.table.snapshot().map_err(|e| LakeError::delta(&self.object, e))?.table_config().clone();
        if properties.append_only == Some(on) {
            return Ok(());
        }
        let updated = self
            .table
            .clone()
            .set_tbl_properties()
            .with_properties(std::collections::HashMap::from([("delta.appendOnly".to_owned(), on.to_string())]))
            .await
            .map_err(|e| LakeError::delta(&self.object, e))?;
        self.table = updated;
        Ok(())
    }

    /// Sets one metadata key of a column (a metadata-only commit).
    pub async fn set_column_metadata(&mut self, column: &str, key: &str, value: &str) -> Result<()> {
        use deltalake::kernel::MetadataValue;
        let table = self
            .table
            .clone()
            .update_field_metadata()
            .with_field_name(column)
            .with_metadata(std::collections::HashMap::from([(key.to_owned(), MetadataValue::String(value.to_owned()))]))
            .await
            .map_err(|e| LakeError::delta(&self.object, e))?;
        self.table = table;
        Ok(())
    }

    /// Re-reads the table's log (after another writer or an ambiguous commit).
    pub async fn refresh(&mut self) -> Result<()> {
        self.table.update_state().await.map_err(|e| LakeError::delta(&self.object, e))
    }

    /// The commit info of the table's latest commit (operation, and the `tidemark.*` keys the
    /// writer stamped: `tidemark.run_id`, …).
    pub async fn last_commit(&self) -> Result<Option<deltalake::kernel::CommitInfo>> {
        use futures::StreamExt;
        let mut history = self.table.history(Some(1));
        history.next().await.transpose().map_err(|e| LakeError::delta(&self.object, e))
    }

    /// The sync run that made the latest commit besides erasures and maintenance, when a
    /// Tidemark writer made it.
    pub async fn last_commit_run(&self) -> Result<Option<String>> {
        let last = crate::scrub::last_commit_besides_housekeeping(&self.table, &self.object).await?;
        Ok(last.and_then(|c| c.info.get("tidemark.run_id").and_then(|v| v.as_str()).map(str::to_owned)))
    }

    /// The last transaction number `app_id` committed, if any.
    pub async fn transaction_version(&self, app_id: &str) -> Result<Option<i64>> {
        let snapshot = self.table.snapshot().map_err(|e| LakeError::delta(&self.object, e))?;
        snapshot.transaction_version(self.table.log_store().as_ref(), app_id).await.map_err(|e| LakeError::delta(&self.object, e))
    }
}
