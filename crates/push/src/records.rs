//! A result row as the Salesforce client sends it: a [`Record`] of field → JSON value, and a
//! row's key as text (how the error table and the journal name a row).
//!
//! Values keep their meaning across both write paths (see `tidemark_salesforce::write`): NULL
//! is JSON `null` (the field is cleared), numbers stay numbers (decimals are sent as their exact
//! text), dates are `yyyy-MM-dd`, timestamps ISO 8601 in UTC with milliseconds.

use serde_json::Value as J;
use tidemark_lake::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use tidemark_lake::arrow::datatypes::{DataType, Schema, TimeUnit};
use tidemark_lake::arrow::util::display::{ArrayFormatter, FormatOptions};
use tidemark_salesforce::write::Record;

use crate::error::{PushError, Result};

/// Turns rows of batches of one schema into records for a list of (column, field) pairs.
pub struct RecordEncoder {
    /// (column position, field name, how its values convert)
    columns: Vec<(usize, String, Conversion)>,
}

#[derive(Debug, Clone, Copy)]
enum Conversion {
    Text,
    Bool,
    Integer,
    Float,
    /// Decimals, times, binaries: through Arrow's display text.
    Display,
    Date,
    Timestamp,
}

impl RecordEncoder {
    /// An encoder of `schema`'s batches sending `columns` (result column → field).
    pub fn new(flow: &str, schema: &Schema, columns: &[(String, String)]) -> Result<RecordEncoder> {
        let mut out = Vec::with_capacity(columns.len());
        for (column, field) in columns {
            let (index, f) = schema.column_with_name(column).ok_or_else(|| PushError::Invalid {
                flow: flow.to_owned(),
                message: format!("column {column} is not in the result"),
            })?;
            out.push((index, field.clone(), conversion(flow, column, f.data_type())?));
        }
        Ok(RecordEncoder { columns: out })
    }

    /// Row `row` of `batch` as a record.
    pub fn record(&self, batch: &RecordBatch, row: usize) -> Result<Record> {
        let mut record = Record::new();
        for (index, field, conversion) in &self.columns {
            record.insert(field.clone(), value(batch.column(*index), row, *conversion)?);
        }
        Ok(record)
    }
}

/// Whether columns of type `t` can be sent to a field.
pub fn convertible(t: &DataType) -> bool {
    conversion("", "", t).is_ok()
}

fn conversion(flow: &str, column: &str, t: &DataType) -> Result<Conversion> {
    use DataType as D;
    Ok(match t {
        D::Utf8 | D::LargeUtf8 | D::Utf8View | D::Null => Conversion::Text,
        D::Boolean => Conversion::Bool,
        D::Int8 | D::Int16 | D::Int32 | D::Int64 | D::UInt8 | D::UInt16 | D::UInt32 | D::UInt64 => Conversion::Integer,
        D::Float16 | D::Float32 | D::Float64 => Conversion::Float,
        D::Decimal128(_, _) | D::Decimal256(_, _) | D::Time32(_) | D::Time64(_) => Conversion::Display,
        D::Date32 | D::Date64 => Conversion::Date,
        D::Timestamp(_, _) => Conversion::Timestamp,
        other => {
            return Err(PushError::Invalid {
                flow: flow.to_owned(),
                message: format!("column {column} has type {other}, which cannot be sent to a field"),
            });
        }
    })
}

fn value(array: &ArrayRef, row: usize, conversion: Conversion) -> Result<J> {
    use tidemark_lake::arrow::compute::cast;
    if array.is_null(row) {
        return Ok(J::Null);
    }
    let one = array.slice(row, 1);
    Ok(match conversion {
        Conversion::Text => J::String(cast(&one, &DataType::Utf8)?.as_string::<i32>().value(0).to_owned()),
        Conversion::Bool => J::Bool(one.as_boolean().value(0)),
        Conversion::Integer => {
            let v = cast(&one, &DataType::Int64)?;
            J::from(v.as_primitive::<tidemark_lake::arrow::datatypes::Int64Type>().value(0))
        }
        Conversion::Float => {
            let v = cast(&one, &DataType::Float64)?;
            let f = v.as_primitive::<tidemark_lake::arrow::datatypes::Float64Type>().value(0);
            serde_json::Number::from_f64(f).map_or(J::Null, J::Number)
        }
        Conversion::Display => J::String(display(&one)?),
        Conversion::Date => J::String(display(&cast(&one, &DataType::Date32)?)?),
        Conversion::Timestamp => {
            let utc = cast(&one, &DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())))?;
            let ms = utc.as_primitive::<tidemark_lake::arrow::datatypes::TimestampMillisecondType>().value(0);
            let at = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
            J::String(at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        }
    })
}

fn display(one: &ArrayRef) -> Result<String> {
    let formatter = ArrayFormatter::try_new(one.as_ref(), &FormatOptions::default())?;
    Ok(formatter.value(0).to_string())
}

/// A row's key as JSON text: the values of `columns` in order, `["0015g00000ABC"]`.
pub fn key_text(batch: &RecordBatch, columns: &[usize], row: usize) -> Result<String> {
    let mut values = Vec::with_capacity(columns.len());
    for &c in columns {
        let array = batch.column(c);
        let conversion = conversion("", "", array.data_type()).unwrap_or(Conversion::Display);
        values.push(value(array, row, conversion)?);
    }
    Ok(J::Array(values).to_string())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tidemark_lake::arrow::array::{
        BooleanArray, Date32Array, Decimal128Array, Float64Array, Int64Array, StringArray, TimestampMicrosecondArray,
    };
    use tidemark_lake::arrow::datatypes::Field;

    use super::*;

    #[test]
    fn values_convert_as_both_write_paths_expect() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("name", DataType::Utf8, true),
            Field::new("flag", DataType::Boolean, true),
            Field::new("n", DataType::Int64, true),
            Field::new("x", DataType::Float64, true),
            Field::new("amount", DataType::Decimal128(12, 2), true),
            Field::new("day", DataType::Date32, true),
            Field::new("at", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec![Some("Zoë"), None])),
                Arc::new(BooleanArray::from(vec![Some(true), None])),
                Arc::new(Int64Array::from(vec![Some(-3), None])),
                Arc::new(Float64Array::from(vec![Some(0.5), None])),
                Arc::new(Decimal128Array::from(vec![Some(1250), None]).with_precision_and_scale(12, 2).unwrap()),
                Arc::new(Date32Array::from(vec![Some(20_094), None])),
                Arc::new(TimestampMicrosecondArray::from(vec![Some(1_736_154_000_123_456), None]).with_timezone("UTC")),
            ],
        )
        .unwrap();
        let columns: Vec<(String, String)> =
            schema.fields().iter().map(|f| (f.name().clone(), format!("{}__c", f.name()))).collect();
        let encoder = RecordEncoder::new("f", &schema, &columns).unwrap();
        let first = J::Object(encoder.record(&batch, 0).unwrap());
        assert_eq!(
            first,
            serde_json::json!({"name__c": "Zoë", "flag__c": true, "n__c": -3, "x__c": 0.5, "amount__c": "12.50",
                "day__c": "2025-01-06", "at__c": "2025-01-06T09:00:00.123Z"})
        );
        let second = encoder.record(&batch, 1).unwrap();
        assert!(second.values().all(J::is_null), "NULL clears the field: {second:?}");
        assert_eq!(key_text(&batch, &[0, 2], 0).unwrap(), r#"["Zoë",-3]"#);
    }
}
