//! Postgres column types as the lake stores them, and their text values (as `COPY … TO STDOUT`
//! and `pgoutput` send them, with `DateStyle=ISO` and `TimeZone=UTC`) parsed into Arrow.
//!
//! | Postgres | lake (Arrow / Delta) |
//! |---|---|
//! | boolean | `Boolean` |
//! | smallint, integer, bigint (and `oid`) | `Int16`, `Int32`, `Int64` |
//! | real, double precision | `Float32`, `Float64` |
//! | numeric(p, s), p ≤ 38 | `Decimal128(p, s)`: exact |
//! | numeric (no precision) | `Decimal128(38, 18)`: exact; a value needing more digits is an error, never rounded |
//! | text, varchar, char, name, citext, uuid, json, jsonb, xml, inet, cidr, macaddr, interval, time, timetz, enums | `Utf8` (the value's text) |
//! | bytea | `Binary` |
//! | date | `Date32` |
//! | timestamptz | `Timestamp(µs, UTC)` |
//! | timestamp | `Timestamp(µs, UTC)`, the value read as UTC (Delta's plain timestamp; `timestamp_ntz` is a table feature not every reader has) |
//! | one-dimensional arrays of the above | `List` of the element type |
//! | domains | their base type |
//!
//! Anything else (money, geometric types, ranges, multi-dimensional arrays, ±infinity dates)
//! is an error naming the table and column: never dropped, never rounded.

use std::sync::Arc;

use chrono::{NaiveDate, NaiveDateTime};
use tidemark_lake::arrow::array::{
    ArrayBuilder, ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder, Float64Builder,
    Int16Builder, Int32Builder, Int64Builder, ListBuilder, StringBuilder, TimestampMicrosecondBuilder,
};
use tidemark_lake::arrow::datatypes::{DataType, Field};

/// A column's type as the lake stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgType {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Numeric { precision: u8, scale: i8 },
    Text,
    Bytea,
    Date,
    Timestamp,
    Array(Box<PgType>),
}

/// Catalog facts about a type oid (from `pg_type`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeInfo {
    pub oid: u32,
    pub name: String,
    /// `b` base, `d` domain, `e` enum, `c` composite, `r` range, `p` pseudo, `m` multirange.
    pub typtype: char,
    /// Array element type (0 when not an array).
    pub element: u32,
    /// A domain's base type.
    pub base: u32,
}

/// Why a column cannot be replicated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "type {name} is not supported (supported: boolean, integers, real, double, numeric, text types, uuid, json, jsonb, bytea, date, timestamp, timestamptz, time, interval, enums, domains and one-dimensional arrays of them)"
)]
pub struct Unsupported {
    pub name: String,
}

impl PgType {
    /// The lake type of a column of type `oid` with modifier `typmod`. `lookup` answers for
    /// types beyond the built-in ones (enums, domains, arrays).
    pub fn resolve(oid: u32, typmod: i32, lookup: &dyn Fn(u32) -> Option<TypeInfo>) -> Result<PgType, Unsupported> {
        Ok(match oid {
            16 => PgType::Bool,
            21 => PgType::Int2,
            23 => PgType::Int4,
            20 | 26 => PgType::Int8,
            700 => PgType::Float4,
            701 => PgType::Float8,
            1700 => numeric(typmod),
            // text, varchar, bpchar, name, "char", uuid, json, jsonb, xml, inet, cidr, macaddr,
            // macaddr8, interval, time, timetz
            25 | 1043 | 1042 | 19 | 18 | 2950 | 114 | 3802 | 142 | 869 | 650 | 829 | 774 | 1186 | 1083 | 1266 => PgType::Text,
            17 => PgType::Bytea,
            1082 => PgType::Date,
            1114 | 1184 => PgType::Timestamp,
            _ => {
                let info = lookup(oid).ok_or_else(|| Unsupported { name: format!("with oid {oid}") })?;
                match info.typtype {
                    'e' => PgType::Text,
                    'd' => PgType::resolve(info.base, typmod, lookup).map_err(|_| Unsupported { name: info.name.clone() })?,
                    'b' if info.element != 0 => {
                        let element =
                            PgType::resolve(info.element, typmod, lookup).map_err(|_| Unsupported { name: info.name.clone() })?;
                        if matches!(element, PgType::Array(_)) {
                            return Err(Unsupported { name: info.name });
                        }
                        PgType::Array(Box::new(element))
                    }
                    // citext and other text-like extension types print as text.
                    'b' if info.name == "citext" => PgType::Text,
                    _ => return Err(Unsupported { name: info.name }),
                }
            }
        })
    }

    pub fn arrow(&self) -> DataType {
        match self {
            PgType::Bool => DataType::Boolean,
            PgType::Int2 => DataType::Int16,
            PgType::Int4 => DataType::Int32,
            PgType::Int8 => DataType::Int64,
            PgType::Float4 => DataType::Float32,
            PgType::Float8 => DataType::Float64,
            PgType::Numeric { precision, scale } => DataType::Decimal128(*precision, *scale),
            PgType::Text => DataType::Utf8,
            PgType::Bytea => DataType::Binary,
            PgType::Date => DataType::Date32,
            PgType::Timestamp => tidemark_lake::columns::timestamp_type(),
            PgType::Array(element) => DataType::List(Arc::new(Field::new("element", element.arrow(), true))),
        }
    }

    pub fn builder(&self, capacity: usize) -> Box<dyn ArrayBuilder> {
        match self {
            PgType::Bool => Box::new(BooleanBuilder::with_capacity(capacity)),
            PgType::Int2 => Box::new(Int16Builder::with_capacity(capacity)),
            PgType::Int4 => Box::new(Int32Builder::with_capacity(capacity)),
            PgType::Int8 => Box::new(Int64Builder::with_capacity(capacity)),
            PgType::Float4 => Box::new(Float32Builder::with_capacity(capacity)),
            PgType::Float8 => Box::new(Float64Builder::with_capacity(capacity)),
            PgType::Numeric { precision, scale } => Box::new(
                Decimal128Builder::with_capacity(capacity)
                    .with_precision_and_scale(*precision, *scale)
                    .expect("valid decimal type"),
            ),
            PgType::Text => Box::new(StringBuilder::with_capacity(capacity, capacity * 16)),
            PgType::Bytea => Box::new(BinaryBuilder::with_capacity(capacity, capacity * 16)),
            PgType::Date => Box::new(Date32Builder::with_capacity(capacity)),
            PgType::Timestamp => Box::new(TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone("UTC")),
            PgType::Array(element) => {
                let inner = element.builder(capacity);
                Box::new(ListBuilder::new(inner).with_field(Arc::new(Field::new("element", element.arrow(), true))))
            }
        }
    }

    /// Appends a value (its text) or a null to `builder` (made by [`PgType::builder`]).
    pub fn append(&self, builder: &mut dyn ArrayBuilder, value: Option<&str>) -> Result<(), String> {
        macro_rules! typed {
            ($t:ty) => {
                builder.as_any_mut().downcast_mut::<$t>().expect("builder made for this type")
            };
        }
        let Some(text) = value else {
            append_null(self, builder);
            return Ok(());
        };
        let bad = |what: &str| format!("not a valid {what} value ({} characters)", text.len());
        match self {
            PgType::Bool => typed!(BooleanBuilder).append_value(match text {
                "t" | "true" => true,
                "f" | "false" => false,
                _ => return Err(bad("boolean")),
            }),
            PgType::Int2 => typed!(Int16Builder).append_value(text.parse().map_err(|_| bad("smallint"))?),
            PgType::Int4 => typed!(Int32Builder).append_value(text.parse().map_err(|_| bad("integer"))?),
            PgType::Int8 => typed!(Int64Builder).append_value(text.parse().map_err(|_| bad("bigint"))?),
            PgType::Float4 => typed!(Float32Builder).append_value(float(text).map_err(|_| bad("real"))? as f32),
            PgType::Float8 => typed!(Float64Builder).append_value(float(text).map_err(|_| bad("double"))?),
            PgType::Numeric { precision, scale } => typed!(Decimal128Builder).append_value(decimal(text, *precision, *scale)?),
            PgType::Text => typed!(StringBuilder).append_value(text),
            PgType::Bytea => typed!(BinaryBuilder).append_value(bytea(text).ok_or_else(|| bad("bytea"))?),
            PgType::Date => typed!(Date32Builder).append_value(date(text).ok_or_else(|| bad("date"))?),
            PgType::Timestamp => {
                typed!(TimestampMicrosecondBuilder).append_value(timestamp(text).ok_or_else(|| bad("timestamp"))?)
            }
            PgType::Array(element) => {
                let list = typed!(ListBuilder<Box<dyn ArrayBuilder>>);
                for item in array_items(text)? {
                    element.append(list.values().as_mut(), item.as_deref())?;
                }
                list.append(true);
            }
        }
        Ok(())
    }
}

fn append_null(t: &PgType, builder: &mut dyn ArrayBuilder) {
    macro_rules! null {
        ($t:ty) => {
            builder.as_any_mut().downcast_mut::<$t>().expect("builder made for this type").append_null()
        };
    }
    match t {
        PgType::Bool => null!(BooleanBuilder),
        PgType::Int2 => null!(Int16Builder),
        PgType::Int4 => null!(Int32Builder),
        PgType::Int8 => null!(Int64Builder),
        PgType::Float4 => null!(Float32Builder),
        PgType::Float8 => null!(Float64Builder),
        PgType::Numeric { .. } => null!(Decimal128Builder),
        PgType::Text => null!(StringBuilder),
        PgType::Bytea => null!(BinaryBuilder),
        PgType::Date => null!(Date32Builder),
        PgType::Timestamp => null!(TimestampMicrosecondBuilder),
        PgType::Array(_) => null!(ListBuilder<Box<dyn ArrayBuilder>>),
    }
}

/// Finishes a builder made by [`PgType::builder`].
pub fn finish(builder: &mut Box<dyn ArrayBuilder>) -> ArrayRef {
    builder.finish()
}

fn numeric(typmod: i32) -> PgType {
    if typmod >= 4 {
        let m = typmod - 4;
        let (precision, scale) = ((m >> 16) & 0xffff, m & 0xffff);
        if (1..=38).contains(&precision) && scale <= precision {
            return PgType::Numeric { precision: precision as u8, scale: scale as i8 };
        }
    }
    PgType::Numeric { precision: 38, scale: 18 }
}

fn float(text: &str) -> Result<f64, ()> {
    match text {
        "NaN" => Ok(f64::NAN),
        "Infinity" => Ok(f64::INFINITY),
        "-Infinity" => Ok(f64::NEG_INFINITY),
        _ => text.parse().map_err(|_| ()),
    }
}

/// A numeric's text as an unscaled integer at `scale`: exact, or an error.
fn decimal(text: &str, precision: u8, scale: i8) -> Result<i128, String> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let valid = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !valid(whole) || !valid(fraction) {
        return Err(format!("not a finite numeric value ({} characters)", text.len()));
    }
    let scale = scale as usize;
    let significant = fraction.trim_end_matches('0');
    if significant.len() > scale {
        return Err(format!("a numeric value with more than {scale} decimal places would be rounded"));
    }
    let mut value: i128 = 0;
    for b in whole.bytes().chain(fraction.bytes().chain(std::iter::repeat(b'0')).take(scale)) {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(i128::from(b - b'0')))
            .ok_or_else(|| format!("a numeric value beyond {precision} digits"))?;
    }
    if value >= 10i128.pow(u32::from(precision)) {
        return Err(format!("a numeric value beyond {precision} digits"));
    }
    Ok(if negative { -value } else { value })
}

/// `\x` hex (bytea_output = hex, the default).
fn bytea(text: &str) -> Option<Vec<u8>> {
    let hex = text.strip_prefix("\\x")?;
    if hex.len() % 2 != 0 {
        return None;
    }
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok()).collect()
}

const UNIX_EPOCH_DAYS_FROM_CE: i32 = 719_163;

fn date(text: &str) -> Option<i32> {
    let d = iso_date(text.as_bytes()).or_else(|| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok())?;
    Some(chrono::Datelike::num_days_from_ce(&d) - UNIX_EPOCH_DAYS_FROM_CE)
}

/// The value of ASCII digits, `None` for anything else.
fn digits(bytes: &[u8]) -> Option<u32> {
    bytes.iter().try_fold(0u32, |n, &b| b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0')))
}

/// `YYYY-MM-DD`, the layout Postgres prints for years 1–9999: parsed without chrono's format
/// interpreter, which took 6.5 % of an initial copy. Anything else goes to the general parser.
fn iso_date(b: &[u8]) -> Option<NaiveDate> {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    NaiveDate::from_ymd_opt(digits(&b[..4])? as i32, digits(&b[5..7])?, digits(&b[8..10])?)
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff]` as microseconds since the epoch (see [`iso_date`]).
fn iso_timestamp(b: &[u8]) -> Option<i64> {
    if b.len() < 19 || b[10] != b' ' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let day = iso_date(&b[..10])?;
    let (h, m, s) = (digits(&b[11..13])?, digits(&b[14..16])?, digits(&b[17..19])?);
    if h > 23 || m > 59 || s > 59 {
        return None;
    }
    let fraction = match &b[19..] {
        [] => 0,
        [b'.', f @ ..] if (1..=6).contains(&f.len()) => i64::from(digits(f)?) * 10i64.pow(6 - f.len() as u32),
        _ => return None,
    };
    let days = i64::from(chrono::Datelike::num_days_from_ce(&day) - UNIX_EPOCH_DAYS_FROM_CE);
    Some((days * 86_400 + i64::from(h * 3600 + m * 60 + s)) * 1_000_000 + fraction)
}

/// ISO output: `2024-01-02 03:04:05.123456` with `+00` (or `+05:30`) for timestamptz.
fn timestamp(text: &str) -> Option<i64> {
    let (naive, offset_secs) = match text.rfind(['+', '-']).filter(|&i| i > 10) {
        Some(i) => {
            let (base, zone) = text.split_at(i);
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let mut parts = zone[1..].split(':').map(|p| p.parse::<i64>().ok());
            let h = parts.next()??;
            let m = parts.next().flatten().unwrap_or(0);
            let s = parts.next().flatten().unwrap_or(0);
            (base, sign * (h * 3600 + m * 60 + s))
        }
        None => (text, 0),
    };
    let micros = match iso_timestamp(naive.as_bytes()) {
        Some(m) => m,
        None => NaiveDateTime::parse_from_str(naive, "%Y-%m-%d %H:%M:%S%.f").ok()?.and_utc().timestamp_micros(),
    };
    Some(micros - offset_secs * 1_000_000)
}

/// The items of a one-dimensional array literal (`{a,"b c",NULL}`): `None` for NULL.
fn array_items(text: &str) -> Result<Vec<Option<String>>, String> {
    // A lower bound other than 1 is printed as `[0:2]={…}`.
    let body = match text.find("={") {
        Some(i) if text.starts_with('[') => &text[i + 1..],
        _ => text,
    };
    let inner = body
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .ok_or_else(|| format!("not an array value ({} characters)", text.len()))?;
    let mut items = Vec::new();
    if inner.is_empty() {
        return Ok(items);
    }
    let mut chars = inner.chars().peekable();
    loop {
        let item = match chars.peek() {
            Some('{') => return Err("multi-dimensional arrays are not supported".into()),
            Some('"') => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some('\\') => s.extend(chars.next()),
                        Some('"') => break,
                        Some(c) => s.push(c),
                        None => return Err("an unterminated quoted array item".into()),
                    }
                }
                Some(s)
            }
            _ => {
                let mut s = String::new();
                while let Some(&c) = chars.peek() {
                    if c == ',' {
                        break;
                    }
                    chars.next();
                    if c == '\\' {
                        s.extend(chars.next());
                    } else {
                        s.push(c);
                    }
                }
                let s = s.trim().to_owned();
                if s.eq_ignore_ascii_case("NULL") { None } else { Some(s) }
            }
        };
        items.push(item);
        match chars.next() {
            Some(',') => continue,
            None => break,
            Some(_) => return Err("a malformed array value".into()),
        }
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidemark_lake::arrow::array::{Array, AsArray};
    use tidemark_lake::arrow::datatypes::{Decimal128Type, Int64Type, TimestampMicrosecondType};

    fn one(t: &PgType, text: Option<&str>) -> ArrayRef {
        let mut b = t.builder(1);
        t.append(b.as_mut(), text).unwrap();
        finish(&mut b)
    }

    #[test]
    fn numerics_are_exact_or_refused() {
        let t = PgType::Numeric { precision: 10, scale: 2 };
        assert_eq!(one(&t, Some("-12.50")).as_primitive::<Decimal128Type>().value(0), -1250);
        assert_eq!(one(&t, Some("7")).as_primitive::<Decimal128Type>().value(0), 700);
        assert!(t.append(t.builder(1).as_mut(), Some("1.005")).unwrap_err().contains("rounded"));
        assert!(t.append(t.builder(1).as_mut(), Some("123456789.00")).unwrap_err().contains("10 digits"));
        assert!(t.append(t.builder(1).as_mut(), Some("NaN")).is_err());
        assert_eq!(numeric(-1), PgType::Numeric { precision: 38, scale: 18 });
        assert_eq!(numeric(((12 << 16) | 3) + 4), PgType::Numeric { precision: 12, scale: 3 });
    }

    #[test]
    fn the_fast_date_and_time_parsers_agree_with_chrono() {
        let general =
            |t: &str| NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f").ok().map(|d| d.and_utc().timestamp_micros());
        // A deterministic walk over seven centuries (1621-2333), with every fraction length.
        let mut micros: i64 = -11_000_000_000_000_000;
        for i in 0..20_000i64 {
            micros += 1_123_456_789_013 + i * 7_919;
            let at = chrono::DateTime::from_timestamp_micros(micros).unwrap().naive_utc();
            let digits = (i % 7) as usize;
            let full = at.format("%Y-%m-%d %H:%M:%S%.6f").to_string();
            let text = if digits == 0 { full[..19].to_owned() } else { full[..20 + digits].to_owned() };
            assert_eq!(iso_timestamp(text.as_bytes()), general(&text), "{text}");
            assert_eq!(date(&text[..10]), Some(chrono::Datelike::num_days_from_ce(&at.date()) - UNIX_EPOCH_DAYS_FROM_CE));
        }
        // Not the fixed layout: left to the general parser, or refused by both.
        for odd in [
            "2024-02-30 00:00:00",
            "2024-01-01 24:00:00",
            "2024-01-01 00:00:00.",
            "2024-01-01 00:00:00.1234567",
            "12024-01-01 00:00:00",
            "2024-1-01 00:00:00",
            "infinity",
        ] {
            assert_eq!(iso_timestamp(odd.as_bytes()), None, "{odd}");
        }
        assert_eq!(timestamp("12024-01-01 00:00:00"), general("12024-01-01 00:00:00"));
        assert_eq!(date("2024-02-30"), None);
    }

    #[test]
    fn timestamps_dates_bytea_and_arrays() {
        let ts = one(&PgType::Timestamp, Some("2024-03-01 10:00:00.25+00"));
        assert_eq!(ts.as_primitive::<TimestampMicrosecondType>().value(0), 1_709_287_200_250_000);
        let shifted = one(&PgType::Timestamp, Some("2024-03-01 15:30:00.25+05:30"));
        assert_eq!(shifted.as_primitive::<TimestampMicrosecondType>().value(0), 1_709_287_200_250_000);
        assert_eq!(timestamp("2024-03-01 10:00:00"), Some(1_709_287_200_000_000));
        assert_eq!(date("1970-01-02"), Some(1));
        assert_eq!(bytea("\\x00ff"), Some(vec![0, 255]));
        assert_eq!(
            array_items(r#"{1,"a, b",NULL,"NULL","q\"x"}"#).unwrap(),
            vec![Some("1".into()), Some("a, b".into()), None, Some("NULL".into()), Some("q\"x".into())]
        );
        assert!(array_items("{{1,2},{3,4}}").is_err());
        let list = one(&PgType::Array(Box::new(PgType::Int8)), Some("{3,NULL,5}"));
        let values = list.as_list::<i32>().value(0);
        assert_eq!(values.as_primitive::<Int64Type>().iter().collect::<Vec<_>>(), vec![Some(3), None, Some(5)]);
        assert!(one(&PgType::Text, None).is_null(0));
    }

    #[test]
    fn unsupported_types_are_named() {
        let money =
            PgType::resolve(790, -1, &|oid| Some(TypeInfo { oid, name: "money".into(), typtype: 'b', element: 0, base: 0 }));
        assert_eq!(money.unwrap_err().name, "money");
        let status =
            PgType::resolve(99_999, -1, &|oid| Some(TypeInfo { oid, name: "status".into(), typtype: 'e', element: 0, base: 0 }));
        assert_eq!(status.unwrap(), PgType::Text);
    }
}
