//! The change hash of a dimension row's tracked attributes, as lowercase hex.
//!
//! - Default: SHA-256 over an injective encoding, so two different tuples never share an input:
//!   each attribute in order is `N` (NULL) or `V<byte length>:<text>`. Length prefixes make the
//!   concatenation unambiguous (`'ANNA','BELLE'` ≠ `'ANNABELLE',NULL`) and `N` ≠ `V0:` keeps NULL
//!   apart from `''`. SHA-256 rather than SHA-512: every engine `model sql` targets has it
//!   natively (DuckDB has no SHA-512), so their hashes equal ours.
//! - `redshift-post`: the post's `sha2(coalesce(a,'') || coalesce(b,'') || …, 512)`, traps included.
//!
//! The text form of a typed value is fixed (README, "Change hash") so that SQL engines can
//! produce the same bytes.

use sha2::{Digest, Sha256, Sha512};
use tidemark_core::models::Compatibility;
use tidemark_lake::arrow::array::{Array, ArrayRef, AsArray, StringArray};
use tidemark_lake::arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float64Type, Int32Type, Int64Type, TimeUnit, TimestampMicrosecondType,
};

use crate::error::{ModelError, Result};

/// One hash per row over `columns` (the tracked attributes, in order).
pub fn change_hashes(columns: &[ArrayRef], rows: usize, mode: Compatibility) -> Result<StringArray> {
    let mut texts = vec![String::new(); columns.len()];
    let mut out = Vec::with_capacity(rows);
    let mut input = Vec::with_capacity(256);
    for row in 0..rows {
        input.clear();
        for (column, text) in columns.iter().zip(texts.iter_mut()) {
            let present = text_of(column, row, text)?;
            match (mode, present) {
                (Compatibility::Default, false) => input.push(b'N'),
                (Compatibility::Default, true) => {
                    input.push(b'V');
                    input.extend_from_slice(text.len().to_string().as_bytes());
                    input.push(b':');
                    input.extend_from_slice(text.as_bytes());
                }
                (Compatibility::RedshiftPost, false) => {}
                (Compatibility::RedshiftPost, true) => input.extend_from_slice(text.as_bytes()),
            }
        }
        out.push(match mode {
            Compatibility::Default => hex::encode(Sha256::digest(&input)),
            Compatibility::RedshiftPost => hex::encode(Sha512::digest(&input)),
        });
    }
    Ok(StringArray::from(out))
}

/// Writes the text form of `column[row]` into `text`; false when NULL.
fn text_of(column: &ArrayRef, row: usize, text: &mut String) -> Result<bool> {
    use std::fmt::Write;
    text.clear();
    if column.is_null(row) {
        return Ok(false);
    }
    match column.data_type() {
        DataType::Utf8 => text.push_str(column.as_string::<i32>().value(row)),
        DataType::LargeUtf8 => text.push_str(column.as_string::<i64>().value(row)),
        DataType::Utf8View => text.push_str(column.as_string_view().value(row)),
        DataType::Int64 => write!(text, "{}", column.as_primitive::<Int64Type>().value(row)).expect("write to String"),
        DataType::Int32 => write!(text, "{}", column.as_primitive::<Int32Type>().value(row)).expect("write to String"),
        DataType::Float64 => write!(text, "{}", column.as_primitive::<Float64Type>().value(row)).expect("write to String"),
        DataType::Boolean => text.push_str(if column.as_boolean().value(row) { "true" } else { "false" }),
        // Salesforce numbers (decimal(18, s)): the exact decimal text, scale digits included.
        DataType::Decimal128(_, _) => text.push_str(&column.as_primitive::<Decimal128Type>().value_as_string(row)),
        DataType::Date32 => {
            let days = column.as_primitive::<Date32Type>().value(row);
            let date = chrono::NaiveDate::from_num_days_from_ce_opt(days + 719_163).expect("date in range");
            write!(text, "{}", date.format("%Y-%m-%d")).expect("write to String");
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            let micros = column.as_primitive::<TimestampMicrosecondType>().value(row);
            text.push_str(&timestamp_text(micros));
        }
        other => {
            return Err(ModelError::Invalid {
                model: String::new(),
                message: format!("a tracked attribute of type {other} cannot be hashed"),
            });
        }
    }
    Ok(true)
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff]`, UTC, fraction only when non-zero, trailing zeros trimmed.
pub fn timestamp_text(micros: i64) -> String {
    let at = chrono::DateTime::from_timestamp_micros(micros).expect("timestamp in range").naive_utc();
    let mut text = at.format("%Y-%m-%d %H:%M:%S").to_string();
    let fraction = micros.rem_euclid(1_000_000);
    if fraction != 0 {
        let digits = format!("{fraction:06}");
        text.push('.');
        text.push_str(digits.trim_end_matches('0'));
    }
    text
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn hashes(a: Vec<Option<&str>>, b: Vec<Option<&str>>, mode: Compatibility) -> Vec<String> {
        let n = a.len();
        let columns: Vec<ArrayRef> = vec![Arc::new(StringArray::from(a)), Arc::new(StringArray::from(b))];
        change_hashes(&columns, n, mode).unwrap().iter().map(|h| h.unwrap().to_owned()).collect()
    }

    #[test]
    fn the_default_hash_tells_the_concatenation_trap_and_null_from_empty() {
        let h = hashes(
            vec![Some("ANNA"), Some("ANNABELLE"), None, Some("")],
            vec![Some("BELLE"), None, Some("x"), Some("x")],
            Compatibility::Default,
        );
        assert_ne!(h[0], h[1], "'ANNA'+'BELLE' must differ from 'ANNABELLE'+NULL");
        assert_ne!(h[2], h[3], "NULL must differ from ''");
        assert_eq!(h[0].len(), 64);
        // The documented encoding, so engines can reproduce it.
        assert_eq!(h[0], hex::encode(Sha256::digest(b"V4:ANNAV5:BELLE")));
        assert_eq!(h[1], hex::encode(Sha256::digest(b"V9:ANNABELLEN")));
    }

    #[test]
    fn the_redshift_post_hash_keeps_the_post_traps() {
        let h = hashes(
            vec![Some("ANNA"), Some("ANNABELLE"), None, Some("")],
            vec![Some("BELLE"), None, Some("x"), Some("x")],
            Compatibility::RedshiftPost,
        );
        assert_eq!(h[0], h[1]);
        assert_eq!(h[2], h[3]);
        assert_eq!(h[0], hex::encode(Sha512::digest(b"ANNABELLE")));
    }

    #[test]
    fn typed_values_have_fixed_text_forms() {
        assert_eq!(timestamp_text(0), "1970-01-01 00:00:00");
        assert_eq!(timestamp_text(1_500_000), "1970-01-01 00:00:01.5");
        assert_eq!(timestamp_text(-1), "1969-12-31 23:59:59.999999");
        let dates: ArrayRef = Arc::new(tidemark_lake::arrow::array::Date32Array::from(vec![19_174]));
        let mut t = String::new();
        assert!(text_of(&dates, 0, &mut t).unwrap());
        assert_eq!(t, "2022-07-01");
    }
}
