//! AWS DMS output on S3 (or copied to a folder): `<schema>/<table>/LOAD00000001.csv` … for the
//! full load, then CDC files named by time (`20141029-1134010000.csv`), in CSV or Parquet.
//!
//! - CSV needs its header row (`AddColumnName=true`): columns are matched by name, and typed by
//!   the source's `column_types` (others are text). Parquet files carry their types.
//! - `Op` (`I`, `U`, `D`) says what a CDC row is; full-load rows are inserts, with or without
//!   `IncludeOpForFullLoad`. The `Op` column and the timestamp column are not table columns.
//! - `_version_at`: the `timestamp_column` (`TimestampColumnName`: the commit time of a CDC row,
//!   the transfer time of a full-load row); without one, a CDC file's time from its name and a
//!   full-load file's time of reading.
//! - `_lsn`: the row's place in the files (a CDC file holds its rows in commit order).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use tidemark_core::sources::ValueType;
use tidemark_lake::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch, TimestampMicrosecondArray};
use tidemark_lake::arrow::compute::{CastOptions, cast_with_options, concat_batches};
use tidemark_lake::arrow::datatypes::{DataType, Field, Schema, TimestampMicrosecondType};
use tidemark_lake::arrow::util::display::FormatOptions;
use tidemark_lake::columns::{DELETED, LSN, VERSION_AT, timestamp_type};
use tidemark_lake::deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use tidemark_lake::source::{CaptureKind, TableSpec, Versions};

use crate::error::CdcError;
use crate::segments::{Item, ROW_BITS, Segment, Tables};

/// The name of DMS's operation column.
const OP: &str = "Op";

/// Whether `path` is a full-load file.
pub fn is_full_load(path: &str) -> bool {
    file_name(path).starts_with("LOAD")
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Reads one file; `read_at` dates full-load rows when no timestamp column is configured.
pub fn parse(
    bytes: &[u8],
    path: &str,
    label: &str,
    ordinal: i64,
    tables: &Tables,
    read_at: DateTime<Utc>,
) -> Result<Vec<Segment>, CdcError> {
    let parts: Vec<&str> = path.split('/').collect();
    let [.., schema, table, _] = parts.as_slice() else {
        return Err(CdcError::file(label, None, "DMS files sit under <schema>/<table>/ below the source's path"));
    };
    let Some(lake_name) = tables.lake_name(schema, table) else { return Ok(Vec::new()) };
    let full_load = is_full_load(path);
    let config = tables.config();
    let batch = if path.to_ascii_lowercase().ends_with(".parquet") {
        read_parquet(bytes, label)?
    } else {
        let types = config.column_types.get(&format!("{schema}.{table}")).cloned().unwrap_or_default();
        read_csv(bytes, label, &types)?
    };
    let rows = batch.num_rows();
    let by_name = |name: &str| batch.schema().index_of(name).ok();
    let deleted: Vec<bool> = match by_name(OP) {
        Some(i) => {
            let ops = cast_with_options(batch.column(i), &DataType::Utf8, &CastOptions::default())
                .map_err(|e| CdcError::file(label, None, e.to_string()))?;
            let ops = ops.as_string::<i32>();
            (0..rows)
                .map(|r| match ops.is_valid(r).then(|| ops.value(r)) {
                    Some("I" | "U") => Ok(false),
                    Some("D") => Ok(true),
                    _ => Err(CdcError::file(label, Some(r + 2), "an Op that is not I, U or D")),
                })
                .collect::<Result<_, _>>()?
        }
        None if full_load => vec![false; rows],
        None => return Err(CdcError::file(label, None, "a CDC file without its Op column")),
    };
    let at: Vec<i64> = match &config.timestamp_column {
        Some(column) => {
            let i = by_name(column)
                .ok_or_else(|| CdcError::file(label, None, format!("no timestamp column {column} (timestamp_column)")))?;
            let options = CastOptions { safe: false, format_options: FormatOptions::default() };
            let times = cast_with_options(batch.column(i), &timestamp_type(), &options)
                .map_err(|_| CdcError::file(label, None, format!("column {column}: a value that is not a timestamp")))?;
            let times = times.as_primitive::<TimestampMicrosecondType>();
            if times.null_count() > 0 {
                return Err(CdcError::file(label, None, format!("column {column}: a row without its timestamp")));
            }
            times.values().to_vec()
        }
        None if full_load => vec![read_at.timestamp_micros(); rows],
        None => vec![
            name_time(file_name(path)).ok_or_else(|| CdcError::file(
                label,
                None,
                "a CDC file name that is not a DMS time (yyyyMMdd-HHmmssffff) and no timestamp_column is set"
            ))?;
            rows
        ],
    };
    let mut fields = vec![
        Field::new(VERSION_AT, timestamp_type(), false),
        Field::new(DELETED, DataType::Boolean, false),
        Field::new(LSN, DataType::Int64, true),
    ];
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(TimestampMicrosecondArray::from(at).with_timezone("UTC")),
        Arc::new(BooleanArray::from(deleted)),
        Arc::new(Int64Array::from_iter_values((0..rows as i64).map(|r| (ordinal << ROW_BITS) | r))),
    ];
    let mut spec_fields = Vec::new();
    for (i, f) in batch.schema().fields().iter().enumerate() {
        if f.name() == OP || Some(f.name()) == config.timestamp_column.as_ref() {
            continue;
        }
        spec_fields.push(Field::new(f.name(), f.data_type().clone(), true));
        fields.push(Field::new(f.name(), f.data_type().clone(), true));
        columns.push(batch.column(i).clone());
    }
    let key = tables.key(schema, table);
    for k in &key {
        if !spec_fields.iter().any(|f| f.name().eq_ignore_ascii_case(k)) {
            return Err(CdcError::file(
                label,
                None,
                format!("table {schema}.{table} has no key column {k} (set the source's `keys: {{{schema}.{table}: [...]}}`)"),
            ));
        }
    }
    let batch =
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| CdcError::file(label, None, e.to_string()))?;
    let kind = if full_load { CaptureKind::Copy } else { CaptureKind::Change };
    let spec = TableSpec { name: lake_name.clone(), fields: spec_fields, key, policies: Vec::new() };
    let versions = Versions { table: lake_name.clone(), kind, batch, unchanged: Vec::new(), continues: Vec::new() };
    Ok(vec![Segment { specs: BTreeMap::from([(lake_name, spec)]), items: vec![Item::Versions(versions)] }])
}

/// A CDC file's time from its name: `yyyyMMdd-HHmmss` and fraction digits, UTC.
fn name_time(name: &str) -> Option<i64> {
    let stem = name.split('.').next()?;
    let (date, time) = stem.split_once('-')?;
    if date.len() != 8 || time.len() < 6 || !date.bytes().chain(time.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let day = NaiveDate::parse_from_str(date, "%Y%m%d").ok()?;
    let n = |s: &str| s.parse::<u32>().ok();
    let at = day.and_hms_opt(n(&time[0..2])?, n(&time[2..4])?, n(&time[4..6])?)?;
    let fraction = &time[6..];
    if fraction.len() > 6 {
        return None;
    }
    let micros = if fraction.is_empty() { 0 } else { n(fraction)? as i64 * 10i64.pow(6 - fraction.len() as u32) };
    Some(at.and_utc().timestamp_micros() + micros)
}

fn read_parquet(bytes: &[u8], label: &str) -> Result<RecordBatch, CdcError> {
    let bad = |e: &dyn std::fmt::Display| CdcError::file(label, None, format!("not a readable Parquet file: {e}"));
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::copy_from_slice(bytes)).map_err(|e| bad(&e))?;
    let schema = reader.schema().clone();
    let batches: Vec<RecordBatch> = reader.build().map_err(|e| bad(&e))?.collect::<Result<_, _>>().map_err(|e| bad(&e))?;
    concat_batches(&schema, &batches).map_err(|e| bad(&e))
}

/// A CSV file with its header, every column text, then cast to its configured type.
fn read_csv(bytes: &[u8], label: &str, types: &BTreeMap<String, ValueType>) -> Result<RecordBatch, CdcError> {
    let header = csv_header(bytes);
    if header.is_empty() {
        return Ok(RecordBatch::new_empty(Arc::new(Schema::empty())));
    }
    for column in types.keys() {
        if !header.contains(column) {
            return Err(CdcError::file(label, Some(1), format!("no column {column} (column_types) in the header row")));
        }
    }
    let dialect = tidemark_core::models::CsvDialect::default();
    let batches = tidemark_models::csv::read_csv(bytes, label, &dialect, &BTreeMap::new(), &header, usize::MAX)?;
    let text_schema = Arc::new(Schema::new(header.iter().map(|h| Field::new(h, DataType::Utf8, true)).collect::<Vec<_>>()));
    let text = concat_batches(&text_schema, &batches).map_err(|e| CdcError::file(label, None, e.to_string()))?;
    let options = CastOptions { safe: false, format_options: FormatOptions::default() };
    let mut fields = Vec::new();
    let mut columns = Vec::new();
    for (i, name) in header.iter().enumerate() {
        let target = types.get(name).map_or(DataType::Utf8, |t| arrow_type(*t));
        let column = cast_with_options(text.column(i), &target, &options)
            .map_err(|_| CdcError::file(label, None, format!("column {name}: a value that is not {target}")))?;
        fields.push(Field::new(name, target, true));
        columns.push(column);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| CdcError::file(label, None, e.to_string()))
}

/// The header row's names (DMS writes plain names; a quoted one is unquoted).
fn csv_header(bytes: &[u8]) -> Vec<String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(line));
    if line.is_empty() {
        return Vec::new();
    }
    line.split(',')
        .map(|n| n.strip_prefix('"').and_then(|n| n.strip_suffix('"')).map_or_else(|| n.to_owned(), |n| n.replace("\"\"", "\"")))
        .collect()
}

/// The Arrow type of a configured column type, as the Postgres source types the same column.
pub fn arrow_type(t: ValueType) -> DataType {
    match t {
        ValueType::Text => DataType::Utf8,
        ValueType::Boolean => DataType::Boolean,
        ValueType::Smallint => DataType::Int16,
        ValueType::Integer => DataType::Int32,
        ValueType::Bigint => DataType::Int64,
        ValueType::Real => DataType::Float32,
        ValueType::Double => DataType::Float64,
        ValueType::Decimal { precision, scale } => DataType::Decimal128(precision, scale),
        ValueType::Date => DataType::Date32,
        ValueType::Timestamp => timestamp_type(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidemark_core::sources::CdcFilesConfig;
    use tidemark_lake::arrow::datatypes::Decimal128Type;

    fn tables(timestamp_column: Option<&str>) -> Tables {
        let mut config = CdcFilesConfig::new("x");
        config.timestamp_column = timestamp_column.map(str::to_owned);
        config.column_types.insert(
            "public.orders".into(),
            BTreeMap::from([
                ("id".into(), ValueType::Integer),
                ("amount".into(), ValueType::Decimal { precision: 10, scale: 2 }),
            ]),
        );
        Tables::new(&config, &["*.*".to_owned()]).unwrap()
    }

    fn versions(segments: &[Segment]) -> &Versions {
        match &segments[0].items[0] {
            Item::Versions(v) => v,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn cdc_csv_rows_are_typed_dated_and_ordered() {
        let csv = b"Op,ts,id,amount,note\nI,2024-03-01 10:00:00.000001,1,12.50,hello\nU,2024-03-01 10:00:01.5,1,13.00,\nD,2024-03-01 10:00:02,1,,\n";
        let segments = parse(csv, "public/orders/20240301-1000000000.csv", "f", 3, &tables(Some("ts")), Utc::now()).unwrap();
        let v = versions(&segments);
        assert_eq!((v.table.as_str(), v.kind), ("orders", CaptureKind::Change));
        let b = &v.batch;
        let at = b.column_by_name(VERSION_AT).unwrap().as_primitive::<TimestampMicrosecondType>();
        assert_eq!(at.value(0), 1_709_287_200_000_001);
        assert_eq!(at.value(1) - at.value(0), 1_499_999);
        assert_eq!(
            b.column_by_name(DELETED).unwrap().as_boolean().iter().collect::<Vec<_>>(),
            [Some(false), Some(false), Some(true)]
        );
        assert_eq!(
            b.column_by_name(LSN).unwrap().as_primitive::<tidemark_lake::arrow::datatypes::Int64Type>().value(2),
            (3 << 32) | 2
        );
        assert_eq!(b.column_by_name("amount").unwrap().as_primitive::<Decimal128Type>().value(0), 1250);
        assert!(b.column_by_name("ts").is_none() && b.column_by_name("Op").is_none());
        assert!(b.column_by_name("note").unwrap().is_null(1), "an unquoted empty field is NULL");
        let spec = &segments[0].specs["orders"];
        assert_eq!(spec.key, ["id"]);
    }

    #[test]
    fn full_loads_and_file_name_times() {
        let csv = b"id,amount,note\n1,1.00,a\n2,2.00,b\n";
        let read_at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let segments = parse(csv, "dms/public/orders/LOAD00000001.csv", "f", 1, &tables(None), read_at).unwrap();
        let v = versions(&segments);
        assert_eq!((v.kind, v.batch.num_rows()), (CaptureKind::Copy, 2));
        assert_eq!(v.batch.column(0).as_primitive::<TimestampMicrosecondType>().value(1), 1_700_000_000_000_000);
        assert_eq!(name_time("20141029-1134010000.csv"), Some(1_414_582_441_000_000));
        assert_eq!(name_time("20141029-113401123456.csv"), Some(1_414_582_441_123_456));
        assert_eq!(name_time("LOAD00000001.csv"), None);
    }

    #[test]
    fn bad_files_are_named_without_their_values() {
        let t = tables(None);
        let no_op = parse(b"id,amount\n1,2\n", "public/orders/20240301-1000000000.csv", "f.csv", 1, &t, Utc::now()).unwrap_err();
        assert!(no_op.to_string().contains("without its Op"));
        let bad_op =
            parse(b"Op,id,amount\nX,1,2\n", "public/orders/20240301-1000000000.csv", "f.csv", 1, &t, Utc::now()).unwrap_err();
        assert!(bad_op.to_string().contains("line 2"));
        let bad_value = parse(b"Op,id,amount\nI,1,secret\n", "public/orders/20240301-1000000000.csv", "f.csv", 1, &t, Utc::now())
            .unwrap_err();
        assert!(bad_value.to_string().contains("column amount") && !bad_value.to_string().contains("secret"));
        let flat = parse(b"Op,id\nI,1\n", "orders.csv", "f.csv", 1, &t, Utc::now()).unwrap_err();
        assert!(flat.to_string().contains("<schema>/<table>/"));
        let no_key = parse(b"Op,amount\nI,1\n", "public/orders/20240301-1000000000.csv", "f.csv", 1, &t, Utc::now()).unwrap_err();
        assert!(no_key.to_string().contains("no column id") || no_key.to_string().contains("no key column id"));
    }
}
