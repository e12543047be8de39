//! Debezium's JSON values → Arrow columns typed as the Postgres source types the same columns,
//! so that a table read from Debezium events and one read by logical replication are equal.
//!
//! With `schemas.enable=true` every event carries its Kafka Connect schema, and each field's
//! [`Conv`] follows its type and logical name (`io.debezium.time.MicroTimestamp`,
//! `org.apache.kafka.connect.data.Decimal`, …). Without a schema the type is inferred from the
//! values of a whole file ([`Conv::infer`]): exact types need the schema.

use std::sync::Arc;

use base64::Engine as _;
use serde_json::Value;
use tidemark_lake::arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder, Float64Builder, Int16Builder,
    Int32Builder, Int64Builder, ListArray, StringBuilder, TimestampMicrosecondBuilder,
};
use tidemark_lake::arrow::buffer::{NullBuffer, OffsetBuffer};
use tidemark_lake::arrow::datatypes::{DataType, Field};

/// Debezium's stand-in for an unchanged TOAST value it did not receive.
pub const UNAVAILABLE: &str = "__debezium_unavailable_value";

/// How one field's JSON values become an Arrow column.
#[derive(Debug, Clone, PartialEq)]
pub enum Conv {
    Bool,
    I16,
    I32,
    I64,
    F32,
    F64,
    Text,
    /// Base64 bytes.
    Binary,
    /// `org.apache.kafka.connect.data.Decimal`: base64 big-endian two's complement, fixed scale.
    Decimal {
        precision: u8,
        scale: i8,
    },
    /// `io.debezium.data.VariableScaleDecimal` (`numeric` without a typmod): `{scale, value}`,
    /// stored as the Postgres source stores it, `decimal(38,18)`.
    VariableDecimal,
    /// Days since 1970-01-01.
    Date,
    /// A number since the epoch in this many parts of a second (1 000, 1 000 000, 1 000 000 000).
    Timestamp {
        per_second: i64,
    },
    /// `io.debezium.time.ZonedTimestamp`: ISO 8601 text with an offset.
    ZonedTimestamp,
    /// A time of day as a number of parts of a second since midnight, stored as Postgres prints it.
    Time {
        per_second: i64,
    },
    List(Box<Conv>),
    /// A struct or map without a known logical type: its JSON text.
    Json,
}

impl Conv {
    /// The conversion for a Kafka Connect field schema; `None` for a schema it cannot read.
    pub fn from_schema(schema: &Value) -> Option<Conv> {
        let name = schema.get("name").and_then(Value::as_str).unwrap_or("");
        let kind = schema.get("type").and_then(Value::as_str)?;
        Some(match (kind, name) {
            (_, "org.apache.kafka.connect.data.Decimal") => {
                let param = |k: &str| schema.get("parameters").and_then(|p| p.get(k)).and_then(Value::as_str);
                let scale: i8 = param("scale").and_then(|s| s.parse().ok())?;
                let precision: u8 = param("connect.decimal.precision").and_then(|s| s.parse().ok()).unwrap_or(38);
                Conv::Decimal { precision: precision.clamp(1, 38), scale }
            }
            (_, "io.debezium.data.VariableScaleDecimal") => Conv::VariableDecimal,
            (_, "io.debezium.time.Date" | "org.apache.kafka.connect.data.Date") => Conv::Date,
            (_, "io.debezium.time.Timestamp" | "org.apache.kafka.connect.data.Timestamp") => {
                Conv::Timestamp { per_second: 1_000 }
            }
            (_, "io.debezium.time.MicroTimestamp") => Conv::Timestamp { per_second: 1_000_000 },
            (_, "io.debezium.time.NanoTimestamp") => Conv::Timestamp { per_second: 1_000_000_000 },
            (_, "io.debezium.time.ZonedTimestamp") => Conv::ZonedTimestamp,
            (_, "io.debezium.time.Time" | "org.apache.kafka.connect.data.Time") => Conv::Time { per_second: 1_000 },
            (_, "io.debezium.time.MicroTime") => Conv::Time { per_second: 1_000_000 },
            (_, "io.debezium.time.NanoTime") => Conv::Time { per_second: 1_000_000_000 },
            ("boolean", _) => Conv::Bool,
            ("int8" | "int16", _) => Conv::I16,
            ("int32", _) => Conv::I32,
            ("int64", _) => Conv::I64,
            ("float" | "float32", _) => Conv::F32,
            ("double" | "float64", _) => Conv::F64,
            ("string", _) => Conv::Text,
            ("bytes", _) => Conv::Binary,
            ("array", _) => Conv::List(Box::new(Conv::from_schema(schema.get("items")?)?)),
            ("struct" | "map", _) => Conv::Json,
            _ => return None,
        })
    }

    /// The conversion a column's values suggest when events carry no schema: booleans,
    /// integers (`bigint`), other numbers (`double`), else text (objects and arrays as JSON).
    /// `None` when every value is null or unavailable.
    pub fn infer<'a>(values: impl Iterator<Item = &'a Value>) -> Option<Conv> {
        let mut found: Option<Conv> = None;
        for v in values {
            let this = match v {
                Value::Null => continue,
                Value::String(s) if s == UNAVAILABLE => continue,
                Value::Bool(_) => Conv::Bool,
                Value::Number(n) if n.is_i64() => Conv::I64,
                Value::Number(_) => Conv::F64,
                _ => Conv::Text,
            };
            found = Some(match (found, this) {
                (None, t) => t,
                (Some(a), b) if a == b => a,
                (Some(Conv::I64 | Conv::F64), Conv::I64 | Conv::F64) => Conv::F64,
                _ => Conv::Text,
            });
        }
        found
    }

    pub fn data_type(&self) -> DataType {
        match self {
            Conv::Bool => DataType::Boolean,
            Conv::I16 => DataType::Int16,
            Conv::I32 => DataType::Int32,
            Conv::I64 => DataType::Int64,
            Conv::F32 => DataType::Float32,
            Conv::F64 => DataType::Float64,
            Conv::Text | Conv::Json | Conv::Time { .. } => DataType::Utf8,
            Conv::Binary => DataType::Binary,
            Conv::Decimal { precision, scale } => DataType::Decimal128(*precision, *scale),
            Conv::VariableDecimal => DataType::Decimal128(38, 18),
            Conv::Date => DataType::Date32,
            Conv::Timestamp { .. } | Conv::ZonedTimestamp => tidemark_lake::columns::timestamp_type(),
            Conv::List(element) => DataType::List(Arc::new(Field::new("element", element.data_type(), true))),
        }
    }

    /// Whether `v` is Debezium's placeholder for a value it did not receive.
    pub fn is_unavailable(&self, v: &Value) -> bool {
        match v {
            Value::String(s) if s == UNAVAILABLE => true,
            Value::String(s) if matches!(self, Conv::Binary | Conv::Decimal { .. }) => {
                base64::engine::general_purpose::STANDARD.decode(s).is_ok_and(|b| b == UNAVAILABLE.as_bytes())
            }
            Value::Array(items) if items.len() == 1 => matches!(self, Conv::List(c) if c.is_unavailable(&items[0])),
            _ => false,
        }
    }

    /// The column of `values` (`None` and JSON null are null). Errors say what was expected,
    /// never the value (customer data).
    pub fn build(&self, values: &[Option<&Value>]) -> Result<ArrayRef, String> {
        macro_rules! column {
            ($builder:expr, |$v:ident| $convert:expr) => {{
                let mut b = $builder;
                for value in values {
                    match value {
                        None | Some(Value::Null) => b.append_null(),
                        Some($v) => b.append_value($convert),
                    }
                }
                Arc::new(b.finish()) as ArrayRef
            }};
        }
        let n = values.len();
        let bad = |what: &str| format!("a value that is not {what}");
        Ok(match self {
            Conv::Bool => column!(BooleanBuilder::with_capacity(n), |v| v.as_bool().ok_or_else(|| bad("a boolean"))?),
            Conv::I16 => column!(Int16Builder::with_capacity(n), |v| integer(v)?.try_into().map_err(|_| bad("a smallint"))?),
            Conv::I32 => column!(Int32Builder::with_capacity(n), |v| integer(v)?.try_into().map_err(|_| bad("an integer"))?),
            Conv::I64 => column!(Int64Builder::with_capacity(n), |v| integer(v)?),
            Conv::F32 => column!(Float32Builder::with_capacity(n), |v| float(v)? as f32),
            Conv::F64 => column!(Float64Builder::with_capacity(n), |v| float(v)?),
            Conv::Text | Conv::Json => column!(StringBuilder::with_capacity(n, n * 16), |v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            }),
            Conv::Binary => column!(BinaryBuilder::with_capacity(n, n * 16), |v| base64_bytes(v)?),
            Conv::Decimal { precision, scale } => column!(
                Decimal128Builder::with_capacity(n).with_precision_and_scale(*precision, *scale).map_err(|e| e.to_string())?,
                |v| fits(twos_complement(&base64_bytes(v)?)?, *precision)?
            ),
            Conv::VariableDecimal => {
                column!(Decimal128Builder::with_capacity(n).with_precision_and_scale(38, 18).map_err(|e| e.to_string())?, |v| {
                    variable_decimal(v)?
                })
            }
            Conv::Date => column!(Date32Builder::with_capacity(n), |v| integer(v)?.try_into().map_err(|_| bad("a date"))?),
            Conv::Timestamp { per_second } => {
                column!(TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC"), |v| micros(integer(v)?, *per_second)?)
            }
            Conv::ZonedTimestamp => column!(TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC"), |v| zoned(v)?),
            Conv::Time { per_second } => {
                column!(StringBuilder::with_capacity(n, n * 8), |v| time_text(integer(v)?, *per_second)?)
            }
            Conv::List(element) => {
                let mut offsets = vec![0i32];
                let mut items: Vec<Option<&Value>> = Vec::new();
                let mut valid = Vec::with_capacity(n);
                for value in values {
                    match value {
                        None | Some(Value::Null) => valid.push(false),
                        Some(Value::Array(a)) => {
                            items.extend(a.iter().map(Some));
                            valid.push(true);
                        }
                        Some(_) => return Err(bad("an array")),
                    }
                    offsets.push(i32::try_from(items.len()).map_err(|_| "an array column over 2^31 items".to_owned())?);
                }
                let child = element.build(&items)?;
                let field = Arc::new(Field::new("element", element.data_type(), true));
                Arc::new(
                    ListArray::try_new(field, OffsetBuffer::new(offsets.into()), child, Some(NullBuffer::from(valid)))
                        .map_err(|e| e.to_string())?,
                )
            }
        })
    }
}

fn integer(v: &Value) -> Result<i64, String> {
    v.as_i64().ok_or_else(|| "a value that is not an integer".to_owned())
}

fn float(v: &Value) -> Result<f64, String> {
    match v {
        Value::Number(n) => n.as_f64().ok_or_else(|| "a number out of range".to_owned()),
        // Debezium writes the special values as text.
        Value::String(s) => match s.as_str() {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            _ => Err("a value that is not a number".to_owned()),
        },
        _ => Err("a value that is not a number".to_owned()),
    }
}

fn base64_bytes(v: &Value) -> Result<Vec<u8>, String> {
    let text = v.as_str().ok_or_else(|| "a value that is not base64 text".to_owned())?;
    base64::engine::general_purpose::STANDARD.decode(text).map_err(|_| "a value that is not base64 text".to_owned())
}

/// A big-endian two's complement integer of up to 16 bytes.
fn twos_complement(bytes: &[u8]) -> Result<i128, String> {
    if bytes.len() > 16 {
        return Err("a decimal wider than 38 digits".to_owned());
    }
    let negative = bytes.first().is_some_and(|b| b & 0x80 != 0);
    let mut full = [if negative { 0xff } else { 0 }; 16];
    full[16 - bytes.len()..].copy_from_slice(bytes);
    Ok(i128::from_be_bytes(full))
}

fn fits(unscaled: i128, precision: u8) -> Result<i128, String> {
    if unscaled.unsigned_abs() >= 10u128.pow(precision as u32) {
        return Err(format!("a decimal with more than {precision} digits"));
    }
    Ok(unscaled)
}

/// `{scale, value}` rescaled to 18 digits after the point, exactly or not at all.
fn variable_decimal(v: &Value) -> Result<i128, String> {
    let scale = v.get("scale").and_then(Value::as_i64).ok_or_else(|| "a variable-scale decimal without its scale".to_owned())?;
    let unscaled = twos_complement(&base64_bytes(v.get("value").unwrap_or(&Value::Null))?)?;
    let rescaled = if scale <= 18 {
        unscaled.checked_mul(10i128.pow((18 - scale) as u32))
    } else {
        let divisor = 10i128.checked_pow((scale - 18) as u32);
        divisor.filter(|d| unscaled % d == 0).map(|d| unscaled / d)
    };
    fits(rescaled.ok_or_else(|| "a decimal that decimal(38,18) cannot hold exactly".to_owned())?, 38)
}

fn micros(value: i64, per_second: i64) -> Result<i64, String> {
    if per_second >= 1_000_000 {
        let per_micro = per_second / 1_000_000;
        if value % per_micro != 0 {
            return Err("a time below a microsecond".to_owned());
        }
        Ok(value / per_micro)
    } else {
        value.checked_mul(1_000_000 / per_second).ok_or_else(|| "a timestamp out of range".to_owned())
    }
}

fn zoned(v: &Value) -> Result<i64, String> {
    let text = v.as_str().ok_or_else(|| "a value that is not a timestamp".to_owned())?;
    let at = chrono::DateTime::parse_from_rfc3339(text).map_err(|_| "a value that is not an ISO 8601 timestamp".to_owned())?;
    if at.timestamp_subsec_nanos() % 1000 != 0 {
        return Err("a time below a microsecond".to_owned());
    }
    Ok(at.timestamp_micros())
}

/// A time of day as Postgres prints it: `HH:MM:SS`, then the fraction without trailing zeros.
fn time_text(value: i64, per_second: i64) -> Result<String, String> {
    let us = micros(value, per_second)?;
    if !(0..=86_400_000_000).contains(&us) {
        return Err("a time of day out of range".to_owned());
    }
    let (secs, frac) = (us / 1_000_000, us % 1_000_000);
    let mut text = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    if frac != 0 {
        text.push_str(format!(".{frac:06}").trim_end_matches('0'));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tidemark_lake::arrow::array::{Array, AsArray};
    use tidemark_lake::arrow::datatypes::{Decimal128Type, TimestampMicrosecondType};

    fn one(conv: &Conv, v: Value) -> ArrayRef {
        conv.build(&[Some(&v)]).unwrap()
    }

    #[test]
    fn logical_types_follow_the_connect_schema() {
        let decimal = Conv::from_schema(&json!({"type": "bytes", "name": "org.apache.kafka.connect.data.Decimal",
            "parameters": {"scale": "2", "connect.decimal.precision": "10"}}))
        .unwrap();
        assert_eq!(decimal, Conv::Decimal { precision: 10, scale: 2 });
        // -12.50 = -1250 = 0xFB1E.
        assert_eq!(one(&decimal, json!("+x4=")).as_primitive::<Decimal128Type>().value(0), -1250);
        let ts = Conv::from_schema(&json!({"type": "int64", "name": "io.debezium.time.MicroTimestamp"})).unwrap();
        assert_eq!(
            one(&ts, json!(1_700_000_000_123_456i64)).as_primitive::<TimestampMicrosecondType>().value(0),
            1_700_000_000_123_456
        );
        let zoned = Conv::from_schema(&json!({"type": "string", "name": "io.debezium.time.ZonedTimestamp"})).unwrap();
        assert_eq!(
            one(&zoned, json!("2024-01-01T01:00:00.5+01:00")).as_primitive::<TimestampMicrosecondType>().value(0),
            1_704_067_200_500_000
        );
        let time = Conv::from_schema(&json!({"type": "int64", "name": "io.debezium.time.MicroTime"})).unwrap();
        assert_eq!(one(&time, json!(45_296_789_000i64)).as_string::<i32>().value(0), "12:34:56.789");
        let list = Conv::from_schema(&json!({"type": "array", "items": {"type": "string"}})).unwrap();
        let built = list.build(&[Some(&json!(["x", "y z"])), None, Some(&json!([]))]).unwrap();
        let built = built.as_list::<i32>();
        assert_eq!((built.value(0).len(), built.is_null(1), built.value(2).len()), (2, true, 0));
        let var = Conv::from_schema(&json!({"type": "struct", "name": "io.debezium.data.VariableScaleDecimal"})).unwrap();
        assert_eq!(one(&var, json!({"scale": 1, "value": "Bw=="})).as_primitive::<Decimal128Type>().value(0), 7 * 10i128.pow(17));
    }

    #[test]
    fn values_that_cannot_be_kept_exactly_are_refused() {
        let small = Conv::Decimal { precision: 3, scale: 0 };
        assert!(small.build(&[Some(&json!("J xA"))]).is_err(), "not base64");
        assert!(small.build(&[Some(&json!("A+g="))]).unwrap_err().contains("3 digits"), "1000 needs 4 digits");
        assert!(Conv::I16.build(&[Some(&json!(70000))]).is_err());
        assert!(Conv::ZonedTimestamp.build(&[Some(&json!("2024-01-01T00:00:00.0000001Z"))]).unwrap_err().contains("microsecond"));
        let err = Conv::Bool.build(&[Some(&json!("secret@example.com"))]).unwrap_err();
        assert!(!err.contains("secret"), "errors never carry the value");
    }

    #[test]
    fn placeholders_and_inference() {
        assert!(Conv::Text.is_unavailable(&json!(UNAVAILABLE)));
        let encoded = base64::engine::general_purpose::STANDARD.encode(UNAVAILABLE);
        assert!(Conv::Binary.is_unavailable(&json!(encoded)));
        assert!(Conv::List(Box::new(Conv::Text)).is_unavailable(&json!([UNAVAILABLE])));
        assert!(!Conv::Text.is_unavailable(&json!("x")));
        let values = [json!(1), json!(null), json!(2.5)];
        assert_eq!(Conv::infer(values.iter()), Some(Conv::F64));
        assert_eq!(Conv::infer([json!(1), json!("a")].iter()), Some(Conv::Text));
        assert_eq!(Conv::infer([json!(null), json!(UNAVAILABLE)].iter()), None);
    }
}
