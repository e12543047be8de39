//! Typed Arrow builders fed straight from tokenized fields: the NULL rules and the wording of
//! value errors live here. Messages describe a field, never repeat it (it is customer data).

use std::sync::Arc;

use tidemark_core::models::ColumnType;
use tidemark_lake::arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, Int32Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};

use super::tokenizer::Field;
use super::values::{self, Problem};

enum Builder {
    Utf8(StringBuilder),
    Int64(Int64Builder),
    Int32(Int32Builder),
    Float64(Float64Builder),
    Boolean(BooleanBuilder),
    Date32(Date32Builder),
    Timestamp(TimestampMicrosecondBuilder),
}

impl Builder {
    fn new(ty: ColumnType, rows: usize) -> Builder {
        match ty {
            ColumnType::String => Builder::Utf8(StringBuilder::with_capacity(rows, rows * 8)),
            ColumnType::Bigint => Builder::Int64(Int64Builder::with_capacity(rows)),
            ColumnType::Int => Builder::Int32(Int32Builder::with_capacity(rows)),
            ColumnType::Double => Builder::Float64(Float64Builder::with_capacity(rows)),
            ColumnType::Boolean => Builder::Boolean(BooleanBuilder::with_capacity(rows)),
            ColumnType::Date => Builder::Date32(Date32Builder::with_capacity(rows)),
            ColumnType::Timestamp => Builder::Timestamp(TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC")),
        }
    }

    fn append_null(&mut self) {
        match self {
            Builder::Utf8(b) => b.append_null(),
            Builder::Int64(b) => b.append_null(),
            Builder::Int32(b) => b.append_null(),
            Builder::Float64(b) => b.append_null(),
            Builder::Boolean(b) => b.append_null(),
            Builder::Date32(b) => b.append_null(),
            Builder::Timestamp(b) => b.append_null(),
        }
    }

    /// Appends a non-empty text; `quoted` only matters to strings (see [`Column::append`]).
    fn append_text(&mut self, text: &[u8], quoted: bool) -> Result<(), Problem> {
        match self {
            Builder::Utf8(b) => b.append_value(string(text, quoted)?),
            Builder::Int64(b) => b.append_value(values::parse_i64(text)?),
            Builder::Int32(b) => b.append_value(values::parse_i32(text)?),
            Builder::Float64(b) => b.append_value(values::parse_f64(text)?),
            Builder::Boolean(b) => b.append_value(values::parse_bool(text)?),
            Builder::Date32(b) => b.append_value(values::parse_date(text)?),
            Builder::Timestamp(b) => b.append_value(values::parse_timestamp(text)?),
        }
        Ok(())
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Utf8(b) => Arc::new(b.finish()),
            Builder::Int64(b) => Arc::new(b.finish()),
            Builder::Int32(b) => Arc::new(b.finish()),
            Builder::Float64(b) => Arc::new(b.finish()),
            Builder::Boolean(b) => Arc::new(b.finish()),
            Builder::Date32(b) => Arc::new(b.finish()),
            Builder::Timestamp(b) => Arc::new(b.finish()),
        }
    }
}

/// A string field's text. An unquoted CR can only be a broken line end (`\r\r\n`, or a file
/// with CR-only line ends), which would otherwise end up inside the values; quoted ones are data.
fn string(text: &[u8], quoted: bool) -> Result<&str, Problem> {
    if !quoted && memchr::memchr(b'\r', text).is_some() {
        return Err(Problem::Syntax);
    }
    std::str::from_utf8(text).map_err(|_| Problem::Syntax)
}

/// One wanted column of the output.
pub(super) struct Column {
    ty: ColumnType,
    builder: Builder,
}

impl Column {
    pub(super) fn new(ty: ColumnType, rows: usize) -> Column {
        Column { ty, builder: Builder::new(ty, rows) }
    }

    /// Appends one field: an unquoted empty field or the dialect's NULL marker is NULL, a quoted
    /// empty field is the empty string (and no value of any other type). The error is the
    /// message for the field, to be prefixed with its line and column.
    pub(super) fn append(&mut self, field: Field<'_>, null: Option<&[u8]>) -> Result<(), String> {
        match field {
            Field::Unquoted(text) if text.is_empty() || Some(text) == null => self.builder.append_null(),
            Field::Quoted([]) if self.ty != ColumnType::String => {
                return Err(format!("quoted empty value is not {}", a_type(self.ty)));
            }
            Field::Unquoted(text) => self.builder.append_text(text, false).map_err(|p| self.explain(p, text, false))?,
            Field::Quoted(text) => self.builder.append_text(text, true).map_err(|p| self.explain(p, text, true))?,
        }
        Ok(())
    }

    /// The finished array of the rows appended so far; the builder starts over with room for
    /// `next_rows` rows.
    pub(super) fn finish(&mut self, next_rows: usize) -> ArrayRef {
        let array = self.builder.finish();
        self.builder = Builder::new(self.ty, next_rows);
        array
    }

    /// Runs only on the error path, so it may look at the field again to say what is wrong.
    fn explain(&self, problem: Problem, text: &[u8], quoted: bool) -> String {
        let ty = self.ty;
        if !quoted && memchr::memchr(b'\r', text).is_some() {
            return "a carriage return not followed by a line feed (lines end in LF or CRLF; quote values holding a CR)".into();
        }
        if ty == ColumnType::String {
            return "not valid UTF-8".into();
        }
        if text.first().is_some_and(u8::is_ascii_whitespace) || text.last().is_some_and(u8::is_ascii_whitespace) {
            return format!("spaces around the value, which is not allowed for {}", a_type(ty));
        }
        match problem {
            Problem::Syntax => format!("not {} (expected {})", a_type(ty), notation(ty)),
            Problem::Range => range_message(ty).into(),
            Problem::Precision => {
                "timestamp more precise than microseconds (digits after the sixth fractional digit must be 0)".into()
            }
        }
    }
}

fn type_name(ty: ColumnType) -> &'static str {
    match ty {
        ColumnType::String => "string",
        ColumnType::Bigint => "bigint",
        ColumnType::Int => "int",
        ColumnType::Double => "double",
        ColumnType::Boolean => "boolean",
        ColumnType::Date => "date",
        ColumnType::Timestamp => "timestamp",
    }
}

/// The type's name with its article, as the messages read ("not an int").
fn a_type(ty: ColumnType) -> String {
    let name = type_name(ty);
    let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
    format!("{article} {name}")
}

fn notation(ty: ColumnType) -> &'static str {
    match ty {
        ColumnType::String => "UTF-8 text",
        ColumnType::Bigint | ColumnType::Int => "an integer",
        ColumnType::Double => "a number",
        ColumnType::Boolean => "true/false, t/f, 1/0 or yes/no",
        ColumnType::Date => "YYYY-MM-DD",
        ColumnType::Timestamp => "YYYY-MM-DD HH:MM:SS",
    }
}

fn range_message(ty: ColumnType) -> &'static str {
    match ty {
        ColumnType::Bigint => "out of range for a bigint (64-bit)",
        ColumnType::Int => "out of range for an int (32-bit)",
        ColumnType::Date => "not a calendar date (month or day out of range)",
        ColumnType::Timestamp => "not a calendar date and time (month, day, hour, minute, second or offset out of range)",
        ColumnType::String | ColumnType::Double | ColumnType::Boolean => "out of range",
    }
}
