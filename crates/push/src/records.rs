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

    /// Row `row` of `batch` as a record (for many rows of one batch, [`RecordEncoder::prepare`]
    /// it once).
    pub fn record(&self, batch: &RecordBatch, row: usize) -> Result<Record> {
        self.prepare(batch)?.record(row)
    }

    /// `batch`'s columns converted once, so that each row's record costs only its values.
    pub fn prepare(&self, batch: &RecordBatch) -> Result<PreparedBatch> {
        let mut columns = Vec::with_capacity(self.columns.len());
        for (index, field, conversion) in &self.columns {
            columns.push((field.clone(), Column::new(batch.column(*index), *conversion)?));
        }
        Ok(PreparedBatch { columns })
    }
}

/// A batch's sent columns, each converted to the type its values are read from.
pub struct PreparedBatch {
    columns: Vec<(String, Column)>,
}

impl PreparedBatch {
    /// Row `row` as a record.
    pub fn record(&self, row: usize) -> Result<Record> {
        let mut record = Record::new();
        for (field, column) in &self.columns {
            record.insert(field.clone(), column.value(row)?);
        }
        Ok(record)
    }
}

/// One column, converted for reading values.
enum Column {
    Text(ArrayRef),
    /// Values Arrow cannot cast to text: their display text.
    Display(ArrayRef),
    Bool(ArrayRef),
    Integer(ArrayRef),
    Float(ArrayRef),
    Date(ArrayRef),
    /// Milliseconds in UTC.
    Timestamp(ArrayRef),
}

impl Column {
    fn new(array: &ArrayRef, conversion: Conversion) -> Result<Column> {
        use tidemark_lake::arrow::compute::cast;
        Ok(match conversion {
            Conversion::Bool => Column::Bool(array.clone()),
            Conversion::Integer => Column::Integer(cast(array, &DataType::Int64)?),
            Conversion::Float => Column::Float(cast(array, &DataType::Float64)?),
            Conversion::Text => Column::Text(cast(array, &DataType::Utf8)?),
            // Arrow's cast to text formats decimals and times as their display does, once per
            // batch; what it cannot cast (a binary key) is formatted per value.
            Conversion::Display => cast(array, &DataType::Utf8).map_or_else(|_| Column::Display(array.clone()), Column::Text),
            Conversion::Date => Column::Date(cast(array, &DataType::Date32)?),
            Conversion::Timestamp => {
                Column::Timestamp(cast(array, &DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())))?)
            }
        })
    }

    fn value(&self, row: usize) -> Result<J> {
        use tidemark_lake::arrow::datatypes::{Date32Type, Float64Type, Int64Type, TimestampMillisecondType};
        let array = match self {
            Column::Text(a)
            | Column::Display(a)
            | Column::Bool(a)
            | Column::Integer(a)
            | Column::Float(a)
            | Column::Date(a)
            | Column::Timestamp(a) => a,
        };
        if array.is_null(row) {
            return Ok(J::Null);
        }
        Ok(match self {
            Column::Text(a) => J::String(a.as_string::<i32>().value(row).to_owned()),
            Column::Display(a) => J::String(display(&a.slice(row, 1))?),
            Column::Bool(a) => J::Bool(a.as_boolean().value(row)),
            Column::Integer(a) => J::from(a.as_primitive::<Int64Type>().value(row)),
            Column::Float(a) => {
                serde_json::Number::from_f64(a.as_primitive::<Float64Type>().value(row)).map_or(J::Null, J::Number)
            }
            Column::Date(a) => {
                let days = a.as_primitive::<Date32Type>().value(row);
                let date = chrono::NaiveDate::from_num_days_from_ce_opt(days + UNIX_EPOCH_DAYS_FROM_CE).unwrap_or_default();
                J::String(date.format("%Y-%m-%d").to_string())
            }
            Column::Timestamp(a) => {
                let ms = a.as_primitive::<TimestampMillisecondType>().value(row);
                let at = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
                J::String(at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
            }
        })
    }
}

/// Days from 0001-01-01 (chrono's day 1) to 1970-01-01 (Arrow's day 0).
const UNIX_EPOCH_DAYS_FROM_CE: i32 = 719_163;

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

fn display(one: &ArrayRef) -> Result<String> {
    let formatter = ArrayFormatter::try_new(one.as_ref(), &FormatOptions::default())?;
    Ok(formatter.value(0).to_string())
}

/// A row's key as JSON text: the values of `columns` in order, `["0015g00000ABC"]`.
pub fn key_text(batch: &RecordBatch, columns: &[usize], row: usize) -> Result<String> {
    KeyText::new(batch, columns)?.text(row)
}

/// [`key_text`] for many rows of one batch: its key columns converted once.
pub struct KeyText {
    columns: Vec<Column>,
}

impl KeyText {
    pub fn new(batch: &RecordBatch, columns: &[usize]) -> Result<KeyText> {
        let columns = columns
            .iter()
            .map(|&c| {
                let array = batch.column(c);
                Column::new(array, conversion("", "", array.data_type()).unwrap_or(Conversion::Display))
            })
            .collect::<Result<_>>()?;
        Ok(KeyText { columns })
    }

    pub fn text(&self, row: usize) -> Result<String> {
        let values = self.columns.iter().map(|c| c.value(row)).collect::<Result<Vec<J>>>()?;
        Ok(J::Array(values).to_string())
    }
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
