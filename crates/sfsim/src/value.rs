//! Field values: the owned [`Value`], the borrowed [`ValueRef`] read out of a stored row, and
//! their renderings in Salesforce's REST JSON and Bulk CSV formats.

use chrono::{DateTime, NaiveDate, NaiveTime, Timelike, Utc};
use tidemark_core::FieldType;

/// Days from 0001-01-01 (CE day 1) to 1970-01-01.
const UNIX_EPOCH_CE_DAYS: i32 = 719_163;

/// An owned field value. Numbers of every numeric describe type are `Int` or `Double`; ids,
/// picklists, text, etc. are `Str`. Serialises externally tagged (`{"Int":5}`), the form
/// persisted org snapshots store.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Double(f64),
    Str(String),
    /// Days since 1970-01-01.
    Date(i32),
    /// Milliseconds since the Unix epoch, UTC.
    DateTime(i64),
    /// Milliseconds since midnight.
    Time(u32),
}

/// A value borrowed from a stored row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueRef<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Double(f64),
    Str(&'a str),
    Date(i32),
    DateTime(i64),
    Time(u32),
}

impl Value {
    pub fn as_ref(&self) -> ValueRef<'_> {
        match self {
            Value::Null => ValueRef::Null,
            Value::Bool(b) => ValueRef::Bool(*b),
            Value::Int(i) => ValueRef::Int(*i),
            Value::Double(d) => ValueRef::Double(*d),
            Value::Str(s) => ValueRef::Str(s),
            Value::Date(d) => ValueRef::Date(*d),
            Value::DateTime(t) => ValueRef::DateTime(*t),
            Value::Time(t) => ValueRef::Time(*t),
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(s.into())
    }

    pub fn datetime(t: DateTime<Utc>) -> Value {
        Value::DateTime(t.timestamp_millis())
    }

    pub fn date(d: NaiveDate) -> Value {
        Value::Date(date_to_days(d))
    }
}

impl<'a> ValueRef<'a> {
    pub fn to_owned(self) -> Value {
        match self {
            ValueRef::Null => Value::Null,
            ValueRef::Bool(b) => Value::Bool(b),
            ValueRef::Int(i) => Value::Int(i),
            ValueRef::Double(d) => Value::Double(d),
            ValueRef::Str(s) => Value::Str(s.to_owned()),
            ValueRef::Date(d) => Value::Date(d),
            ValueRef::DateTime(t) => Value::DateTime(t),
            ValueRef::Time(t) => Value::Time(t),
        }
    }

    pub fn is_null(self) -> bool {
        matches!(self, ValueRef::Null)
    }

    pub fn as_str(self) -> Option<&'a str> {
        match self {
            ValueRef::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(self) -> Option<bool> {
        match self {
            ValueRef::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_f64(self) -> Option<f64> {
        match self {
            ValueRef::Int(i) => Some(i as f64),
            ValueRef::Double(d) => Some(d),
            _ => None,
        }
    }

    pub fn as_datetime_millis(self) -> Option<i64> {
        match self {
            ValueRef::DateTime(t) => Some(t),
            _ => None,
        }
    }

    /// Renders the value the way the REST API puts it into JSON for a field of type `ty`.
    pub fn to_json(self, ty: FieldType, scale: u8) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            ValueRef::Null => J::Null,
            ValueRef::Bool(b) => J::Bool(b),
            ValueRef::Int(i) => match ty {
                // Salesforce sends double-typed fields as JSON floats even when integral.
                FieldType::Double | FieldType::Currency | FieldType::Percent => json_f64(i as f64),
                _ => J::from(i),
            },
            ValueRef::Double(d) => match ty {
                FieldType::Int | FieldType::Long => J::from(d as i64),
                _ => json_f64(round_to_scale(d, scale)),
            },
            ValueRef::Str(s) => J::String(s.to_owned()),
            ValueRef::Date(d) => J::String(format_date(d)),
            ValueRef::DateTime(t) => J::String(format_datetime_rest(t)),
            ValueRef::Time(t) => J::String(format_time(t)),
        }
    }

    /// Appends the value's Bulk CSV text (unquoted, unescaped) to `out`. Null appends nothing.
    pub fn write_csv_text(self, ty: FieldType, scale: u8, out: &mut String) {
        use std::fmt::Write;
        match self {
            ValueRef::Null => {}
            ValueRef::Bool(b) => out.push_str(if b { "true" } else { "false" }),
            ValueRef::Int(i) => {
                let _ = write!(out, "{i}");
            }
            ValueRef::Double(d) => match ty {
                FieldType::Int | FieldType::Long => {
                    let _ = write!(out, "{}", d as i64);
                }
                _ => write_plain_decimal(round_to_scale(d, scale), out),
            },
            ValueRef::Str(s) => out.push_str(s),
            ValueRef::Date(d) => out.push_str(&format_date(d)),
            ValueRef::DateTime(t) => out.push_str(&format_datetime_bulk(t)),
            ValueRef::Time(t) => out.push_str(&format_time(t)),
        }
    }
}

fn json_f64(d: f64) -> serde_json::Value {
    serde_json::Number::from_f64(d).map(serde_json::Value::Number).unwrap_or(serde_json::Value::Null)
}

fn round_to_scale(d: f64, scale: u8) -> f64 {
    if scale == 0 || scale > 15 {
        return d;
    }
    let factor = 10f64.powi(i32::from(scale));
    (d * factor).round() / factor
}

/// Writes a decimal without exponent notation: `1234.5`, `1000000`, `-0.25`.
fn write_plain_decimal(d: f64, out: &mut String) {
    use std::fmt::Write;
    if d.fract() == 0.0 && d.abs() < 1e15 {
        let _ = write!(out, "{}", d as i64);
    } else {
        let _ = write!(out, "{d}");
    }
}

pub fn date_to_days(d: NaiveDate) -> i32 {
    use chrono::Datelike;
    d.num_days_from_ce() - UNIX_EPOCH_CE_DAYS
}

pub fn days_to_date(days: i32) -> NaiveDate {
    NaiveDate::from_num_days_from_ce_opt(days + UNIX_EPOCH_CE_DAYS).unwrap_or(NaiveDate::MIN)
}

pub fn millis_to_datetime(ms: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// `2022-01-02`
pub fn format_date(days: i32) -> String {
    days_to_date(days).format("%Y-%m-%d").to_string()
}

/// REST JSON datetime: `2022-01-02T17:38:59.000+0000`.
pub fn format_datetime_rest(ms: i64) -> String {
    millis_to_datetime(ms).format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

/// Bulk CSV / Bulk 1.0 XML datetime: `2022-01-02T17:38:59.000Z`.
pub fn format_datetime_bulk(ms: i64) -> String {
    millis_to_datetime(ms).format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Time field: `00:30:00.000Z`.
pub fn format_time(ms: u32) -> String {
    let t = NaiveTime::from_num_seconds_from_midnight_opt(ms / 1000, (ms % 1000) * 1_000_000).unwrap_or(NaiveTime::MIN);
    format!("{:02}:{:02}:{:02}.{:03}Z", t.hour(), t.minute(), t.second(), ms % 1000)
}

/// Parses the datetime forms Salesforce accepts on input: `2024-01-02T03:04:05Z`,
/// `…05.123Z`, `…05.123+0000`, `…05+01:00`, and a bare date (midnight UTC).
pub fn parse_datetime(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%z"] {
        if let Ok(t) = DateTime::parse_from_str(s, fmt) {
            return Some(t.timestamp_millis());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|dt| dt.and_utc().timestamp_millis())
}

/// Parses `yyyy-MM-dd`; a trailing `Z` is accepted because Salesforce's own Bulk sample CSVs
/// write dates that way (`1940-06-07Z`).
pub fn parse_date(s: &str) -> Option<i32> {
    let s = s.trim();
    NaiveDate::parse_from_str(s.strip_suffix('Z').unwrap_or(s), "%Y-%m-%d").ok().map(date_to_days)
}

/// Parses `HH:mm`, `HH:mm:ss`, `HH:mm:ss.SSS`, each optionally followed by `Z`.
pub fn parse_time(s: &str) -> Option<u32> {
    let s = s.trim().trim_end_matches('Z');
    for fmt in ["%H:%M:%S%.f", "%H:%M:%S", "%H:%M"] {
        if let Ok(t) = NaiveTime::parse_from_str(s, fmt) {
            return Some(t.num_seconds_from_midnight() * 1000 + t.nanosecond() / 1_000_000);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_salesforce_datetime_date_and_time_formats() {
        let ms = parse_datetime("2022-01-02T17:38:59Z").unwrap();
        assert_eq!(format_datetime_rest(ms), "2022-01-02T17:38:59.000+0000");
        assert_eq!(format_datetime_bulk(ms), "2022-01-02T17:38:59.000Z");
        assert_eq!(parse_datetime("2022-01-02T18:38:59.000+0100"), Some(ms));
        assert_eq!(parse_datetime("2022-01-02T17:38:59.000+0000"), Some(ms));
        assert_eq!(parse_datetime("2022-01-02T19:38:59+02:00"), Some(ms));
        assert_eq!(format_time(parse_time("00:30:00.000Z").unwrap()), "00:30:00.000Z");
        assert_eq!(format_date(parse_date("2024-02-29").unwrap()), "2024-02-29");
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("1940-06-07Z"), parse_date("1940-06-07"));
    }

    #[test]
    fn numbers_follow_the_field_type() {
        assert_eq!(ValueRef::Int(5).to_json(FieldType::Currency, 2).to_string(), "5.0");
        assert_eq!(ValueRef::Double(5.0).to_json(FieldType::Int, 0).to_string(), "5");
        assert_eq!(ValueRef::Double(3.125).to_json(FieldType::Percent, 2).to_string(), "3.13");
        let mut out = String::new();
        ValueRef::Double(35_000_000.0).write_csv_text(FieldType::Currency, 2, &mut out);
        assert_eq!(out, "35000000");
    }
}
