//! A source's new rows, reduced to one row per key: the latest by the ordering column.
//!
//! The reduced rows have the business key columns, the source's attributes, then `__at` (the
//! ordering value, a UTC timestamp) and `__deleted` (status `D`), and come as a stream in key
//! order ([`ReducedRows`]): the source's rows are sorted in a bounded DataFusion session, so a
//! source larger than memory is sorted by spilling. Two different rows of one key with the
//! same ordering value are a [`ModelError::Tie`]: which one is latest cannot be known, and
//! picking either would make the result depend on file order.

use std::sync::{Arc, Mutex};

use futures::StreamExt;
use tidemark_core::models::{FileFormat, SourceConfig};
use tidemark_lake::arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use tidemark_lake::arrow::compute::cast;
use tidemark_lake::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use tidemark_lake::datafusion::catalog::streaming::StreamingTable;
use tidemark_lake::datafusion::error::DataFusionError;
use tidemark_lake::datafusion::execution::TaskContext;
use tidemark_lake::datafusion::physical_plan::SendableRecordBatchStream;
use tidemark_lake::datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use tidemark_lake::datafusion::physical_plan::streaming::PartitionStream;
use tidemark_lake::datafusion::prelude::SessionContext;
use tidemark_lake::deltalake::parquet::arrow::ProjectionMask;
use tidemark_lake::deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use tidemark_lake::read::quote;

use crate::bounded::BoundedQuery;
use crate::error::{ModelError, Result};
use crate::files::{LandedFile, LandingZone};

mod reduce;

pub use reduce::{ReducedRows, SourceLabel};
pub use tidemark_lake::keys::KeyCodec;

pub const AT: &str = "__at";
pub const DELETED: &str = "__deleted";

/// What one source contributes to a load.
pub struct SourceRows {
    /// Keys, attributes, `__at`, `__deleted`: one row per key, in key order, as a stream.
    pub rows: ReducedRows,
    /// A full extract: keys absent from it are deleted from the source.
    pub full: bool,
    pub files_read: Vec<LandedFile>,
    /// Older unread files of a full-extract source, skipped because a newer extract arrived.
    pub files_superseded: Vec<LandedFile>,
    /// A lake object's live state read at this Delta version (`None` for files, or when the
    /// object has not changed since the last load).
    pub object_version: Option<u64>,
}

/// The reduced schema of a source: key fields, attribute fields, `__at`, `__deleted`.
pub fn reduced_schema(key: &[Field], attributes: &[Field]) -> SchemaRef {
    let mut fields: Vec<Field> = key.iter().chain(attributes).cloned().collect();
    fields.push(Field::new(AT, DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true));
    fields.push(Field::new(DELETED, DataType::Boolean, false));
    Arc::new(Schema::new(fields))
}

/// Where a load's sources are sorted: one bounded session (one memory pool) for all of them,
/// each source registered under its position.
pub struct Extraction<'a> {
    pub ctx: &'a SessionContext,
    pub model: &'a str,
    pub key: &'a [String],
}

impl Extraction<'_> {
    fn label(&self, source: &SourceConfig, order_by: &str) -> SourceLabel {
        SourceLabel { model: self.model.to_owned(), source: source.name.clone(), order_by: order_by.to_owned() }
    }

    /// `SELECT … ORDER BY key, __at DESC` over the relation `table`.
    fn sorted(&self, select: &str, table: &str) -> String {
        let order: Vec<String> = self.key.iter().map(|k| format!("{} ASC NULLS FIRST", quote(k))).collect();
        format!("SELECT {select} FROM {table} ORDER BY {}, {} DESC", order.join(", "), quote(AT))
    }

    /// The new rows of `source` from `files`, reduced to the latest per key. Files are parsed one
    /// at a time as the sort consumes them; the sort spills beyond the session's memory limit.
    pub async fn landed(
        &self,
        index: usize,
        source: &SourceConfig,
        zone: &LandingZone,
        files: Vec<LandedFile>,
        full: bool,
    ) -> Result<SourceRows> {
        let (files_read, files_superseded) = if full && files.len() > 1 {
            // A full extract replaces the ones before it: only the newest is the source's state.
            let mut files = files;
            let newest = files.pop().expect("non-empty");
            (vec![newest], files)
        } else {
            (files, Vec::new())
        };
        let order_by = source.order_by.clone().expect("validated: file sources have order_by");
        let label = self.label(source, &order_by);
        let failure = Arc::new(Mutex::new(None));
        // Batches as the session's: a sort under a small limit must hold a few at a time.
        let batch_rows = self.ctx.copied_config().batch_size();
        let mut batches =
            landed_batches(zone.clone(), files_read.clone(), source.clone(), self.key.to_vec(), order_by, batch_rows);
        let rows = match batches.next().await.transpose()? {
            None => ReducedRows::empty(empty_schema(source, self.key), self.key.len(), label)?,
            Some(first) => {
                let schema = first.schema();
                let slot = failure.clone();
                let conform_to = schema.clone();
                // Later files in the first file's types (a key stored as int32 in one Parquet file, int64
                // in another).
                let rest = batches.map(move |b| b.and_then(|b| Ok(tidemark_lake::plain::cast_to(&b, &conform_to)?)));
                let stream = futures::stream::once(async { Ok(first) }).chain(rest).map(move |b| {
                    b.map_err(|e| {
                        // The model error is kept whole; DataFusion carries only that one happened.
                        let message = e.to_string();
                        *slot.lock().expect("not poisoned") = Some(e);
                        DataFusionError::Execution(message)
                    })
                });
                let partition = OnePass::new(schema.clone(), Box::pin(RecordBatchStreamAdapter::new(schema.clone(), stream)));
                let name = format!("landed_{index}");
                self.ctx.register_table(&name, Arc::new(StreamingTable::try_new(schema.clone(), vec![Arc::new(partition)])?))?;
                let query = BoundedQuery::start(self.ctx, &self.sorted("*", &name), "source sort").await?;
                ReducedRows::new(Some(query), schema, self.key.len(), label)?.with_failure(failure)
            }
        };
        Ok(SourceRows { rows, full, files_read, files_superseded, object_version: None })
    }

    /// A lake object's live state (each record's latest version, deletes left out) as a full
    /// extract ordered by `_version_at`; nothing when the table has not changed since
    /// `last_version`. Versions are ranked by a window over a spilling sort, not held whole.
    pub async fn live(
        &self,
        index: usize,
        lake: &tidemark_lake::LakeLocation,
        source: &SourceConfig,
        last_version: Option<u64>,
    ) -> Result<SourceRows> {
        use tidemark_lake::columns::{DELETED as HISTORY_DELETED, ID, VERSION_AT, VERSION_ORDER};
        let object = source.object.as_deref().expect("lake source");
        let table = tidemark_lake::HistoryTable::open_named(lake, object).await?.ok_or_else(|| ModelError::Invalid {
            model: self.model.to_owned(),
            message: format!("source {}: object {object} has not been synced into this lake", source.name),
        })?;
        let version = table.version().unwrap_or_default();
        let label = self.label(source, VERSION_AT);
        let empty = |object_version: Option<u64>| -> Result<SourceRows> {
            Ok(SourceRows {
                rows: ReducedRows::empty(empty_schema(source, self.key), self.key.len(), label.clone())?,
                full: object_version.is_some(),
                files_read: Vec::new(),
                files_superseded: Vec::new(),
                object_version,
            })
        };
        if last_version == Some(version) {
            return empty(None);
        }
        let present = table.column_names()?;
        let wanted: Vec<&String> = self.key.iter().chain(&source.columns).collect();
        if let Some(missing) = wanted.iter().find(|c| !present.contains(c)) {
            return Err(ModelError::Invalid {
                model: self.model.to_owned(),
                message: format!("source {}: {object} has no column {missing}", source.name),
            });
        }
        let name = format!("live_{index}");
        let delta = table.delta();
        delta.update_datafusion_session(&self.ctx.state()).map_err(|e| tidemark_lake::LakeError::delta(object, e))?;
        self.ctx.register_table(&name, delta.table_provider().await?)?;
        let mut inner: Vec<String> = Vec::new();
        for column in [ID].iter().chain(&VERSION_ORDER).copied().chain(wanted.iter().map(|c| c.as_str())) {
            if !inner.contains(&quote(column)) {
                inner.push(quote(column));
            }
        }
        let last_first: Vec<String> = VERSION_ORDER.iter().map(|c| format!("{} DESC", quote(c))).collect();
        let ranked = format!(
            "(SELECT {}, ROW_NUMBER() OVER (PARTITION BY {} ORDER BY {}) AS __rank FROM {name}) AS ranked \
             WHERE __rank = 1 AND NOT {}",
            inner.join(", "),
            quote(ID),
            last_first.join(", "),
            quote(HISTORY_DELETED),
        );
        let mut select: Vec<String> = wanted.iter().map(|c| quote(c)).collect();
        select.push(format!("{} AS {}", quote(VERSION_AT), quote(AT)));
        select.push(format!("false AS {}", quote(DELETED)));
        let query = BoundedQuery::start(self.ctx, &self.sorted(&select.join(", "), &ranked), "live state").await?;
        let plain = tidemark_lake::plain::plain_schema(&query.stream.schema());
        let schema = reduced_schema(
            &plain.fields()[..self.key.len()].iter().map(|f| f.as_ref().clone()).collect::<Vec<_>>(),
            &plain.fields()[self.key.len()..wanted.len()].iter().map(|f| f.as_ref().clone()).collect::<Vec<_>>(),
        );
        let rows = ReducedRows::new(Some(query), schema, self.key.len(), label)?;
        Ok(SourceRows { rows, full: true, files_read: Vec::new(), files_superseded: Vec::new(), object_version: Some(version) })
    }
}

/// A stream that can be executed once: the parsed rows of landed files feeding the sort.
struct OnePass {
    schema: SchemaRef,
    stream: Mutex<Option<SendableRecordBatchStream>>,
}

impl OnePass {
    fn new(schema: SchemaRef, stream: SendableRecordBatchStream) -> OnePass {
        OnePass { schema, stream: Mutex::new(Some(stream)) }
    }
}

impl std::fmt::Debug for OnePass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("landed files")
    }
}

impl PartitionStream for OnePass {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _: Arc<TaskContext>) -> SendableRecordBatchStream {
        match self.stream.lock().expect("not poisoned").take() {
            Some(stream) => stream,
            None => Box::pin(RecordBatchStreamAdapter::new(
                self.schema.clone(),
                futures::stream::once(async { Err(DataFusionError::Internal("landed files are read once per load".into())) }),
            )),
        }
    }
}

/// The shaped batches of `files`, read and parsed one file at a time, in order.
fn landed_batches(
    zone: LandingZone,
    files: Vec<LandedFile>,
    source: SourceConfig,
    key: Vec<String>,
    order_by: String,
    batch_rows: usize,
) -> futures::stream::BoxStream<'static, Result<RecordBatch>> {
    let mut wanted: Vec<String> = key.iter().chain(&source.columns).cloned().collect();
    wanted.push(order_by.clone());
    wanted.extend(source.status_column.iter().cloned());
    let parsed = futures::stream::iter(files).then(move |file| {
        let (zone, source, key, order_by, wanted) = (zone.clone(), source.clone(), key.clone(), order_by.clone(), wanted.clone());
        async move {
            let label = zone.label(&file);
            let bytes = zone.read(&file).await?;
            let parsed = match zone.format_of(&file.path).unwrap_or(FileFormat::Csv) {
                FileFormat::Csv => crate::csv::read_csv(&bytes, &label, &source.csv, &source.types, &wanted, batch_rows)?,
                FileFormat::Parquet => read_parquet(bytes, &label, &source, &wanted, batch_rows)?,
            };
            parsed.into_iter().map(|b| shape(b, &label, &source, &key, &order_by)).collect::<Result<Vec<_>>>()
        }
    });
    parsed
        .flat_map(|file| match file {
            Ok(batches) => futures::stream::iter(batches.into_iter().map(Ok)).left_stream(),
            Err(e) => futures::stream::once(async { Err(e) }).right_stream(),
        })
        .filter(|b| std::future::ready(b.as_ref().map_or(true, |b| b.num_rows() > 0)))
        .boxed()
}

fn empty_schema(source: &SourceConfig, key: &[String]) -> SchemaRef {
    let field = |name: &String| {
        let t = source.types.get(name).copied().map(crate::csv::arrow_type).unwrap_or(DataType::Utf8);
        Field::new(name, t, true)
    };
    let keys: Vec<Field> = key.iter().map(field).collect();
    let attributes: Vec<Field> = source.columns.iter().map(field).collect();
    reduced_schema(&keys, &attributes)
}

fn read_parquet(
    bytes: bytes::Bytes,
    label: &str,
    source: &SourceConfig,
    wanted: &[String],
    batch_rows: usize,
) -> Result<Vec<RecordBatch>> {
    let err = |e: &dyn std::fmt::Display| ModelError::file(label, format!("not a readable Parquet file: {e}"));
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| err(&e))?;
    let file_schema = builder.schema().clone();
    let mut indices = Vec::new();
    for name in wanted {
        match file_schema.index_of(name) {
            Ok(i) => indices.push(i),
            Err(_) => return Err(ModelError::file(label, format!("has no column {name}"))),
        }
    }
    let mask = ProjectionMask::roots(builder.parquet_schema(), indices);
    let reader = builder.with_projection(mask).with_batch_size(batch_rows).build().map_err(|e| err(&e))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch?;
        // Declared types win over the file's (a key stored as int32 in one file, int64 in another).
        let columns = wanted
            .iter()
            .map(|name| {
                let c = batch.column_by_name(name).expect("projected");
                let want = match source.types.get(name) {
                    Some(t) => crate::csv::arrow_type(*t),
                    None if matches!(c.data_type(), DataType::Utf8View | DataType::LargeUtf8) => DataType::Utf8,
                    None => c.data_type().clone(),
                };
                if *c.data_type() == want { Ok(c.clone()) } else { cast(c, &want) }
            })
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| ModelError::file(label, format!("a column does not convert to its declared type: {e}")))?;
        let fields: Vec<Field> = wanted.iter().zip(&columns).map(|(n, c)| Field::new(n, c.data_type().clone(), true)).collect();
        out.push(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?);
    }
    Ok(out)
}

/// Puts a parsed batch into the reduced shape: keys, attributes, `__at`, `__deleted`.
fn shape(batch: RecordBatch, label: &str, source: &SourceConfig, key: &[String], order_by: &str) -> Result<RecordBatch> {
    for name in key {
        if batch.column_by_name(name).expect("read").null_count() > 0 {
            return Err(ModelError::file(label, format!("a row has no value in the key column {name}")));
        }
    }
    let at_type = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let order = batch.column_by_name(order_by).expect("read");
    if order.null_count() > 0 {
        return Err(ModelError::file(label, format!("a row has no value in {order_by}, which orders a key's rows")));
    }
    let at = match order.data_type() {
        DataType::Timestamp(_, _) | DataType::Date32 => cast(order, &at_type)?,
        other => {
            return Err(ModelError::file(
                label,
                format!("{order_by} is {other}; the ordering column must be a timestamp or date (declare it in types:)"),
            ));
        }
    };
    let deleted: BooleanArray = match &source.status_column {
        None => BooleanArray::from(vec![false; batch.num_rows()]),
        Some(status) => {
            let column = cast(batch.column_by_name(status).expect("read"), &DataType::Utf8)?;
            let values = column.as_string::<i32>();
            let mut out = Vec::with_capacity(values.len());
            for v in values.iter() {
                match v.map(str::trim) {
                    Some("D" | "d") => out.push(true),
                    Some("I" | "i" | "U" | "u") => out.push(false),
                    _ => {
                        return Err(ModelError::file(label, format!("{status} must be I, U or D on every row")));
                    }
                }
            }
            BooleanArray::from(out)
        }
    };
    let mut fields = Vec::new();
    let mut columns = Vec::new();
    for name in key.iter().chain(&source.columns) {
        let c = batch.column_by_name(name).expect("read");
        fields.push(Field::new(name, c.data_type().clone(), true));
        columns.push(c.clone());
    }
    fields.push(Field::new(AT, at_type, true));
    columns.push(at);
    fields.push(Field::new(DELETED, DataType::Boolean, false));
    columns.push(Arc::new(deleted));
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?)
}

/// The Arrow type of a declared column (strings when undeclared).
pub fn declared_type(source: &SourceConfig, column: &str) -> DataType {
    source.types.get(column).copied().map(crate::csv::arrow_type).unwrap_or(DataType::Utf8)
}
