//! A source's new rows, reduced to one row per key: the latest by the ordering column.
//!
//! The reduced batch has the business key columns, the source's attributes, then `__at` (the
//! ordering value, a UTC timestamp) and `__deleted` (status `D`), sorted by key. Two different
//! rows of one key with the same ordering value are a [`ModelError::Tie`]: which one is latest
//! cannot be known, and picking either would make the result depend on file order.

use std::sync::Arc;

use tidemark_core::models::{FileFormat, SourceConfig};
use tidemark_lake::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch};
use tidemark_lake::arrow::compute::{SortColumn, SortOptions, cast, concat_batches, lexsort_to_indices, take_record_batch};
use tidemark_lake::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use tidemark_lake::arrow::row::{RowConverter, Rows, SortField};
use tidemark_lake::arrow::util::display::{ArrayFormatter, FormatOptions};
use tidemark_lake::deltalake::parquet::arrow::ProjectionMask;
use tidemark_lake::deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::error::{ModelError, Result};
use crate::files::{LandedFile, LandingZone};

pub const AT: &str = "__at";
pub const DELETED: &str = "__deleted";

/// Rows per batch when parsing files.
const BATCH_ROWS: usize = 64 * 1024;

/// The business key's Arrow encoding, shared by every sorted stream of a load so keys of
/// different inputs compare byte-wise.
pub struct KeyCodec {
    converter: RowConverter,
    pub fields: Vec<Field>,
}

impl KeyCodec {
    pub fn new(fields: Vec<Field>) -> Result<KeyCodec> {
        let converter = RowConverter::new(fields.iter().map(|f| SortField::new(f.data_type().clone())).collect())?;
        Ok(KeyCodec { converter, fields })
    }

    /// The key rows of `batch` (its first `fields.len()` columns are the key, cast as needed).
    pub fn encode(&self, batch: &RecordBatch) -> Result<Rows> {
        let columns: Vec<ArrayRef> = self
            .fields
            .iter()
            .map(|f| {
                let c = batch.column_by_name(f.name()).expect("key column present");
                if c.data_type() == f.data_type() { Ok(c.clone()) } else { cast(c, f.data_type()) }
            })
            .collect::<std::result::Result<_, _>>()?;
        Ok(self.converter.convert_columns(&columns)?)
    }

    /// A key's values for messages (business keys are identifiers, not record values).
    pub fn describe(&self, batch: &RecordBatch, row: usize) -> String {
        let options = FormatOptions::default().with_null("NULL");
        self.fields
            .iter()
            .map(|f| {
                let column = batch.column_by_name(f.name()).expect("key column present");
                ArrayFormatter::try_new(column.as_ref(), &options).map(|fmt| fmt.value(row).to_string()).unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// What one source contributes to a load.
#[derive(Debug)]
pub struct SourceRows {
    /// Keys, attributes, `__at`, `__deleted`; sorted by key, one row per key.
    pub batch: RecordBatch,
    /// A full extract: keys absent from it are deleted from the source.
    pub full: bool,
    pub files_read: Vec<LandedFile>,
    /// Older unread files of a full-extract source, skipped because a newer extract arrived.
    pub files_superseded: Vec<LandedFile>,
    pub rows_read: u64,
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

/// Reads `files` of `source` and reduces them to the latest row per key.
pub async fn read_source(
    model: &str,
    source: &SourceConfig,
    key: &[String],
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
    let order_by = source.order_by.as_deref().expect("validated: file sources have order_by");
    let mut wanted: Vec<String> = key.iter().chain(&source.columns).cloned().collect();
    wanted.push(order_by.to_owned());
    wanted.extend(source.status_column.iter().cloned());
    let mut batches = Vec::new();
    let mut rows_read = 0;
    for file in &files_read {
        let label = zone.label(file);
        let bytes = zone.read(file).await?;
        let parsed = match zone.format_of(&file.path).unwrap_or(FileFormat::Csv) {
            FileFormat::Csv => crate::csv::read_csv(&bytes, &label, &source.csv, &source.types, &wanted, BATCH_ROWS)?,
            FileFormat::Parquet => read_parquet(bytes, &label, source, &wanted)?,
        };
        for batch in parsed {
            rows_read += batch.num_rows() as u64;
            batches.push(shape(batch, &label, source, key, order_by)?);
        }
    }
    let schema = match batches.first() {
        Some(b) => b.schema(),
        None => {
            let batch = RecordBatch::new_empty(empty_schema(source, key));
            return Ok(SourceRows { batch, full, files_read, files_superseded, rows_read, object_version: None });
        }
    };
    let all = concat_batches(&schema, &batches)?;
    drop(batches);
    let batch = latest_per_key(model, &source.name, order_by, key.len(), all)?;
    Ok(SourceRows { batch, full, files_read, files_superseded, rows_read, object_version: None })
}

/// A lake object's live state (each record's latest version, deletes left out) as a full
/// extract, ordered by `_version_at`; nothing when the table has not changed since `last_version`.
pub async fn read_live(
    lake: &tidemark_lake::LakeLocation,
    model: &str,
    source: &SourceConfig,
    key: &[String],
    last_version: Option<u64>,
) -> Result<SourceRows> {
    use tidemark_lake::read::{LIVE, quote};
    let object = source.object.as_deref().expect("lake source");
    let table = tidemark_lake::HistoryTable::open(lake, object).await?.ok_or_else(|| ModelError::Invalid {
        model: model.to_owned(),
        message: format!("source {}: object {object} has not been synced into this lake", source.name),
    })?;
    let version = table.version().unwrap_or_default();
    let empty = |object_version| SourceRows {
        batch: RecordBatch::new_empty(empty_schema(source, key)),
        full: false,
        files_read: Vec::new(),
        files_superseded: Vec::new(),
        rows_read: 0,
        object_version,
    };
    if last_version == Some(version) {
        return Ok(empty(None));
    }
    let present = table.column_names()?;
    let wanted: Vec<&String> = key.iter().chain(&source.columns).collect();
    if let Some(missing) = wanted.iter().find(|c| !present.contains(c)) {
        return Err(ModelError::Invalid {
            model: model.to_owned(),
            message: format!("source {}: {object} has no column {missing}", source.name),
        });
    }
    let mut select: Vec<String> = wanted.iter().map(|c| quote(c)).collect();
    select.push(format!("{} AS {AT}", quote(tidemark_lake::columns::VERSION_AT)));
    select.push(format!("false AS {DELETED}"));
    let ctx = table.session().await?;
    let batches = table.collect(&ctx, &format!("SELECT {} FROM {LIVE}", select.join(", "))).await?;
    let Some(first) = batches.first() else { return Ok(SourceRows { full: true, ..empty(Some(version)) }) };
    let all = concat_batches(&first.schema(), &batches)?;
    let all = crate::timeline::to_plain_strings(all)?;
    let rows_read = all.num_rows() as u64;
    let batch = latest_per_key(model, &source.name, tidemark_lake::columns::VERSION_AT, key.len(), all)?;
    Ok(SourceRows {
        batch,
        full: true,
        files_read: Vec::new(),
        files_superseded: Vec::new(),
        rows_read,
        object_version: Some(version),
    })
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

fn read_parquet(bytes: bytes::Bytes, label: &str, source: &SourceConfig, wanted: &[String]) -> Result<Vec<RecordBatch>> {
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
    let reader = builder.with_projection(mask).with_batch_size(BATCH_ROWS).build().map_err(|e| err(&e))?;
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

/// Sorts by key, latest first, and keeps each key's first row; a different row with the same
/// ordering value is a tie.
pub fn latest_per_key(model: &str, source: &str, order_by: &str, key_len: usize, all: RecordBatch) -> Result<RecordBatch> {
    let at_index = all.schema().index_of(AT).expect("reduced shape");
    let mut sort: Vec<SortColumn> = (0..key_len)
        .map(|i| SortColumn {
            values: all.column(i).clone(),
            options: Some(SortOptions { descending: false, nulls_first: true }),
        })
        .collect();
    sort.push(SortColumn {
        values: all.column(at_index).clone(),
        options: Some(SortOptions { descending: true, nulls_first: false }),
    });
    let order = lexsort_to_indices(&sort, None)?;
    let sorted = take_record_batch(&all, &order)?;
    drop(all);
    let codec = KeyCodec::new(sorted.schema().fields()[..key_len].iter().map(|f| f.as_ref().clone()).collect())?;
    let keys = codec.encode(&sorted)?;
    let content = RowConverter::new(
        sorted.schema().fields()[key_len..]
            .iter()
            .filter(|f| f.name() != AT)
            .map(|f| SortField::new(f.data_type().clone()))
            .collect(),
    )?;
    let content_columns: Vec<ArrayRef> = sorted
        .schema()
        .fields()
        .iter()
        .enumerate()
        .skip(key_len)
        .filter(|(_, f)| f.name() != AT)
        .map(|(i, _)| sorted.column(i).clone())
        .collect();
    let contents = content.convert_columns(&content_columns)?;
    let at = sorted.column(at_index).as_primitive::<tidemark_lake::arrow::datatypes::TimestampMicrosecondType>();
    let mut keep = Vec::with_capacity(sorted.num_rows());
    let mut first = 0;
    for row in 0..sorted.num_rows() {
        let starts_key = row == 0 || keys.row(row) != keys.row(row - 1);
        if starts_key {
            first = row;
        } else if at.value(row) == at.value(first) && contents.row(row) != contents.row(first) {
            return Err(ModelError::Tie {
                model: model.to_owned(),
                source_name: source.to_owned(),
                key: codec.describe(&sorted, row),
                order_by: order_by.to_owned(),
            });
        }
        keep.push(starts_key);
    }
    Ok(tidemark_lake::arrow::compute::filter_record_batch(&sorted, &BooleanArray::from(keep))?)
}

/// The Arrow type of a declared column (strings when undeclared).
pub fn declared_type(source: &SourceConfig, column: &str) -> DataType {
    source.types.get(column).copied().map(crate::csv::arrow_type).unwrap_or(DataType::Utf8)
}
