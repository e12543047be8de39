//! Salesforce results into Arrow, and Arrow rows into history-table versions.
//!
//! Bulk CSV pages go through arrow-csv and REST records (kept as raw JSON, so decimals keep
//! every digit) through arrow-json, both with the *target* column types from the schema plan:
//! a value is parsed once, straight into the type it is stored as.

use std::io::Cursor;
use std::sync::Arc;

use tidemark_lake::arrow::array::{
    ArrayRef, AsArray, BooleanArray, RecordBatch, StringArray, TimestampMicrosecondArray, new_null_array,
};
use tidemark_lake::arrow::compute::cast;
use tidemark_lake::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use tidemark_lake::arrow::error::ArrowError;
use tidemark_lake::columns::{DELETED, INGESTED_AT, ORIGIN, Origin, RUN_ID, VERSION_AT, timestamp_type};
use tidemark_lake::schema_plan::SchemaPlan;

/// Rows per Arrow batch when decoding.
const BATCH_ROWS: usize = 16 * 1024;

/// The schema of query results: one column per queried field, named as the field, typed as
/// the column it is stored in.
pub fn read_schema(plan: &SchemaPlan) -> SchemaRef {
    Arc::new(Schema::new(plan.targets.iter().map(|(f, _, t)| Field::new(f, t.clone(), true)).collect::<Vec<_>>()))
}

/// Decodes one Bulk API CSV page (header row included). The header must list the fields in
/// query order.
pub fn csv_batches(page: &[u8], schema: &SchemaRef) -> Result<Vec<RecordBatch>, ArrowError> {
    let header_end = page.iter().position(|&b| b == b'\n').unwrap_or(page.len());
    let header = std::str::from_utf8(&page[..header_end]).map_err(|e| ArrowError::CsvError(e.to_string()))?;
    let names: Vec<&str> = header.trim_end_matches('\r').split(',').map(|h| h.trim_matches('"')).collect();
    let expected: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    if page.is_empty() || (names.len() == 1 && names[0].is_empty()) {
        return Ok(Vec::new());
    }
    if !names.iter().zip(&expected).all(|(a, b)| a.eq_ignore_ascii_case(b)) || names.len() != expected.len() {
        return Err(ArrowError::CsvError(format!("result columns {names:?} do not match the query's fields {expected:?}")));
    }
    let reader = tidemark_lake::arrow::csv::ReaderBuilder::new(schema.clone())
        .with_header(true)
        .with_batch_size(BATCH_ROWS)
        .build(Cursor::new(page))?;
    reader.collect()
}

/// Decodes REST query records (raw JSON objects; `attributes` and unknown keys are ignored).
pub fn json_batches(records: &[Box<serde_json::value::RawValue>], schema: &SchemaRef) -> Result<Vec<RecordBatch>, ArrowError> {
    // A number or boolean arriving for a text column (a field whose type changed to text after
    // the describe this read was planned from) is kept as its text rather than failing the read.
    let mut decoder = tidemark_lake::arrow::json::ReaderBuilder::new(schema.clone())
        .with_batch_size(BATCH_ROWS)
        .with_coerce_primitive(true)
        .build_decoder()?;
    let mut out = Vec::new();
    for chunk in records.chunks(BATCH_ROWS) {
        let mut text = String::with_capacity(chunk.iter().map(|r| r.get().len() + 1).sum());
        for r in chunk {
            text.push_str(r.get());
            text.push('\n');
        }
        let mut buf = text.as_bytes();
        while !buf.is_empty() {
            let read = decoder.decode(buf)?;
            if read == 0 {
                break;
            }
            buf = &buf[read..];
        }
        if let Some(b) = decoder.flush()? {
            out.push(b);
        }
    }
    Ok(out)
}

/// Where a version's `_version_at` and `_deleted` come from.
#[derive(Debug, Clone)]
pub struct Stamp {
    pub origin: Origin,
    pub run_id: String,
    pub ingested_at_micros: i64,
    /// A column of the batch holding the version time (the bookmark field), or a fixed time.
    pub version_at: StampSource<i64>,
    /// A boolean column (`IsDeleted`), or a fixed value.
    pub deleted: StampSource<bool>,
}

#[derive(Debug, Clone)]
pub enum StampSource<T> {
    Column(String),
    Fixed(T),
}

/// Builds history rows in `table` schema order from `batch`, whose columns are named either
/// after fields (query results: mapped through `plan`) or after table columns (rows read back
/// from the lake). Table columns no field feeds are null.
pub fn to_history(
    batch: &RecordBatch,
    plan: Option<&SchemaPlan>,
    table: &SchemaRef,
    stamp: &Stamp,
) -> Result<RecordBatch, ArrowError> {
    let rows = batch.num_rows();
    let source_of = |column: &str| -> Option<ArrayRef> {
        let field =
            plan.and_then(|p| p.targets.iter().find(|(_, c, _)| c == column).map(|(f, _, _)| f.as_str())).unwrap_or(column);
        batch.column_by_name(field).cloned()
    };
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(table.fields().len());
    for f in table.fields() {
        let array: ArrayRef = match f.name().as_str() {
            VERSION_AT => match &stamp.version_at {
                StampSource::Fixed(t) => Arc::new(TimestampMicrosecondArray::from(vec![*t; rows]).with_timezone("UTC")),
                StampSource::Column(c) => {
                    let a = source_of(c).ok_or_else(|| ArrowError::SchemaError(format!("version time column {c} missing")))?;
                    let a = cast(&a, &timestamp_type())?;
                    if a.null_count() > 0 {
                        return Err(ArrowError::InvalidArgumentError(format!("{c} is empty on {} record(s)", a.null_count())));
                    }
                    a
                }
            },
            DELETED => match &stamp.deleted {
                StampSource::Fixed(d) => Arc::new(BooleanArray::from(vec![*d; rows])),
                // `_deleted` is never null: a missing flag means "not deleted".
                StampSource::Column(c) => match source_of(c) {
                    Some(a) => {
                        let flags = cast(&a, &DataType::Boolean)?;
                        Arc::new(flags.as_boolean().iter().map(|v| Some(v.unwrap_or(false))).collect::<BooleanArray>())
                    }
                    None => Arc::new(BooleanArray::from(vec![false; rows])),
                },
            },
            ORIGIN => Arc::new(StringArray::from(vec![stamp.origin.as_str(); rows])),
            RUN_ID => Arc::new(StringArray::from(vec![stamp.run_id.as_str(); rows])),
            INGESTED_AT => Arc::new(TimestampMicrosecondArray::from(vec![stamp.ingested_at_micros; rows]).with_timezone("UTC")),
            name => match source_of(name) {
                Some(a) if a.data_type() == f.data_type() => a,
                Some(a) => cast(&a, f.data_type())?,
                None => new_null_array(f.data_type(), rows),
            },
        };
        columns.push(array);
    }
    RecordBatch::try_new(table.clone(), columns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidemark_core::{FieldType, SourceField};
    use tidemark_lake::arrow::array::{Array, AsArray, Decimal128Array};
    use tidemark_lake::columns::initial_schema;
    use tidemark_lake::schema_plan::plan;

    fn fields() -> Vec<SourceField> {
        vec![
            SourceField::of("Id", FieldType::Id),
            SourceField::text("Name"),
            SourceField { precision: 18, scale: 2, ..SourceField::of("Amount", FieldType::Currency) },
            SourceField::of("IsDeleted", FieldType::Boolean),
            SourceField::of("SystemModstamp", FieldType::Datetime),
        ]
    }

    #[test]
    fn csv_and_json_decode_to_the_same_rows() {
        let table = initial_schema(&fields());
        let p = plan(&table, &fields(), &Default::default());
        let schema = read_schema(&p);
        let csv = "\"Id\",\"Name\",\"Amount\",\"IsDeleted\",\"SystemModstamp\"\n\"001000000000001AAA\",\"Acme, Inc.\",\"12345678901234.56\",\"false\",\"2025-01-06T09:00:00.000Z\"\n\"001000000000002AAA\",\"\",\"\",\"true\",\"2025-01-06T09:00:01.000Z\"\n";
        let from_csv = csv_batches(csv.as_bytes(), &schema).unwrap();
        let raw: Vec<Box<serde_json::value::RawValue>> = serde_json::from_str(
            r#"[{"attributes":{"type":"Account","url":"/x"},"Id":"001000000000001AAA","Name":"Acme, Inc.","Amount":12345678901234.56,"IsDeleted":false,"SystemModstamp":"2025-01-06T09:00:00.000+0000"},
                {"attributes":{"type":"Account"},"Id":"001000000000002AAA","Name":null,"Amount":null,"IsDeleted":true,"SystemModstamp":"2025-01-06T09:00:01.000+0000"}]"#,
        )
        .unwrap();
        let from_json = json_batches(&raw, &schema).unwrap();
        assert_eq!(from_csv, from_json);
        let amount = from_csv[0].column(2).as_any().downcast_ref::<Decimal128Array>().unwrap();
        assert_eq!(amount.value(0), 1_234_567_890_123_456, "no float rounding");

        let stamp = Stamp {
            origin: Origin::Query,
            run_id: "r1".into(),
            ingested_at_micros: 7,
            version_at: StampSource::Column("SystemModstamp".into()),
            deleted: StampSource::Column("IsDeleted".into()),
        };
        let h = to_history(&from_csv[0], Some(&p), &table, &stamp).unwrap();
        assert_eq!(h.schema(), table);
        assert!(h.column(1).as_boolean().value(1));
        assert_eq!(
            h.column(0).as_primitive::<tidemark_lake::arrow::datatypes::TimestampMicrosecondType>().value(0),
            1_736_154_000_000_000
        );
        assert!(h.column_by_name("Name").unwrap().is_null(1));
    }

    #[test]
    fn a_number_for_a_text_column_keeps_its_text() {
        let table = initial_schema(&fields());
        let schema = read_schema(&plan(&table, &fields(), &Default::default()));
        let raw: Vec<Box<serde_json::value::RawValue>> = serde_json::from_str(
            r#"[{"Id":"001000000000001AAA","Name":53979.75,"Amount":1.5,"IsDeleted":false,"SystemModstamp":null}]"#,
        )
        .unwrap();
        let batches = json_batches(&raw, &schema).unwrap();
        assert_eq!(batches[0].column(1).as_string::<i32>().value(0), "53979.75");
    }

    #[test]
    fn mismatched_csv_header_is_refused() {
        let table = initial_schema(&fields());
        let p = plan(&table, &fields(), &Default::default());
        let err = csv_batches(b"\"Name\",\"Id\"\n\"a\",\"b\"\n", &read_schema(&p)).unwrap_err();
        assert!(err.to_string().contains("do not match"), "{err}");
    }
}
