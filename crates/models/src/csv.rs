//! Landed CSV files → Arrow record batches, with our own RFC 4180 tokenizer.
//!
//! Our own because the distinction the `csv` crate drops is the one the dimensions need: an
//! unquoted empty field is NULL, a quoted empty field (`""`) the empty string.
//!
//! The rules, strict by design (a load that guesses writes wrong history):
//! - A header row is required; columns are matched by exact header name, a UTF-8 BOM is skipped,
//!   a name may not appear twice. Each record has exactly the header's number of fields.
//! - Lines end in LF or CRLF; the last one may lack its line end. Empty lines at the end of the
//!   file are not records (an empty line elsewhere is: one NULL field). A CR elsewhere outside
//!   quotes (in the header or a column read) is an error rather than data, since it can only be
//!   a broken line end.
//! - Quoted fields may hold anything, line ends included; a quote inside is doubled, or with
//!   `csv.escape` set, preceded by the escape character (which then also escapes itself and is
//!   literal before anything else; a doubled quote is then an error). Quotes inside unquoted
//!   fields, and text after a closing quote, are errors.
//! - NULL: an unquoted empty field, or an unquoted field equal to `csv.null`. A quoted empty
//!   field is the empty string, and an error for other types. Typed values are taken as written:
//!   surrounding spaces are an error, not trimmed.
//! - Timestamps (`YYYY-MM-DD HH:MM:SS`, `T` allowed, up to nine fractional digits, an optional
//!   `Z`, `±HH:MM`, `±HHMM` or `±HH` offset; naive values are UTC) are stored in microseconds.
//!   Fractional digits past the sixth must be zeros, so `.123456000` reads but `.123456789` is an
//!   error: truncating would make distinct source values equal and hide real changes.
//! - Doubles follow Rust's float syntax, including `NaN` and `inf`/`Infinity`.
//!
//! Errors name the file, the line a record starts on and the column, never the value (customer
//! data). Columns not wanted are tokenized but never converted.

mod columns;
#[cfg(test)]
mod tests;
mod tokenizer;
mod values;

use std::collections::BTreeMap;
use std::sync::Arc;

use tidemark_core::models::{ColumnType, CsvDialect};
use tidemark_lake::arrow::array::{RecordBatch, RecordBatchOptions};
use tidemark_lake::arrow::datatypes::{DataType, Field as ArrowField, Schema, SchemaRef, TimeUnit};

use crate::error::{ModelError, Result};
use columns::Column;
use tokenizer::{End, Field, Syntax, Tokenizer};

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Rows the first batch's builders make room for; later batches size from the rows seen so far.
const FIRST_CAPACITY: usize = 1024;

/// Reads a whole CSV file (already in memory) into batches of at most `batch_rows` rows with
/// the `wanted` columns, in `wanted` order, typed by `types` (unlisted columns are Utf8).
///
/// A file without data rows gives no batches. A `batch_rows` of 0 counts as 1. A column wanted
/// twice appears twice.
pub fn read_csv(
    bytes: &[u8],
    file: &str,
    dialect: &CsvDialect,
    types: &BTreeMap<String, ColumnType>,
    wanted: &[String],
    batch_rows: usize,
) -> Result<Vec<RecordBatch>> {
    let syntax = syntax(dialect).map_err(|message| ModelError::file(file, message))?;
    let bytes = bytes.strip_prefix(BOM).unwrap_or(bytes);
    let mut tokenizer = Tokenizer::new(bytes, syntax);
    let header = read_header(&mut tokenizer).map_err(|message| ModelError::file(file, message))?;
    let mut reader = Reader::new(file, header, dialect, types, wanted, batch_rows.max(1))?;
    reader.read(&mut tokenizer)
}

/// The Arrow type a declared column type reads as.
pub fn arrow_type(t: ColumnType) -> DataType {
    match t {
        ColumnType::String => DataType::Utf8,
        ColumnType::Bigint => DataType::Int64,
        ColumnType::Int => DataType::Int32,
        ColumnType::Double => DataType::Float64,
        ColumnType::Boolean => DataType::Boolean,
        ColumnType::Date => DataType::Date32,
        ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
    }
}

/// The dialect as bytes: the tokenizer works on single ASCII characters.
fn syntax(dialect: &CsvDialect) -> Result<Syntax, String> {
    if !dialect.header {
        return Err("files without a header row (csv.header: false) are not supported: columns are matched by header name".into());
    }
    let byte = |setting: &str, c: char| {
        u8::try_from(c)
            .ok()
            .filter(|b| b.is_ascii() && !matches!(b, b'\r' | b'\n'))
            .ok_or_else(|| format!("csv.{setting} must be a single ASCII character other than CR and LF"))
    };
    let delimiter = byte("delimiter", dialect.delimiter)?;
    let quote = byte("quote", dialect.quote)?;
    // An escape equal to the quote is the doubled-quote default spelled out.
    let escape = dialect.escape.map(|c| byte("escape", c)).transpose()?.filter(|&e| e != quote);
    if delimiter == quote {
        return Err("csv.delimiter and csv.quote must differ".into());
    }
    if escape == Some(delimiter) {
        return Err("csv.escape and csv.delimiter must differ".into());
    }
    Ok(Syntax { delimiter, quote, escape })
}

/// The header's column names (line 1; column names are not customer data, so they may be quoted
/// in messages).
fn read_header(tokenizer: &mut Tokenizer<'_>) -> Result<Vec<String>, String> {
    if tokenizer.at_end() {
        return Err("empty file: a header row is required".into());
    }
    let mut names: Vec<String> = Vec::new();
    loop {
        let (field, end) = tokenizer.next_field().map_err(|e| format!("line 1 (header): {}", e.message()))?;
        let (Field::Unquoted(text) | Field::Quoted(text)) = field;
        let name = std::str::from_utf8(text).map_err(|_| "line 1 (header): not valid UTF-8".to_string())?;
        if matches!(field, Field::Unquoted(_)) && name.contains('\r') {
            return Err("line 1 (header): a carriage return not followed by a line feed (lines end in LF or CRLF)".into());
        }
        if names.iter().any(|n| n == name) {
            return Err(format!("line 1 (header): column {name} appears twice"));
        }
        names.push(name.to_owned());
        if end == End::Record {
            return Ok(names);
        }
    }
}

struct Reader<'a> {
    file: &'a str,
    header: Vec<String>,
    /// For each header column, the builder it feeds, if it is wanted.
    slots: Vec<Option<usize>>,
    /// One builder per distinct wanted column.
    columns: Vec<Column>,
    /// For each output column, its builder (a column wanted twice shares one).
    outputs: Vec<usize>,
    schema: SchemaRef,
    null: Option<&'a [u8]>,
    batch_rows: usize,
}

impl<'a> Reader<'a> {
    fn new(
        file: &'a str,
        header: Vec<String>,
        dialect: &'a CsvDialect,
        types: &BTreeMap<String, ColumnType>,
        wanted: &[String],
        batch_rows: usize,
    ) -> Result<Reader<'a>> {
        let mut slots = vec![None; header.len()];
        let mut columns = Vec::new();
        let mut outputs = Vec::with_capacity(wanted.len());
        let mut fields = Vec::with_capacity(wanted.len());
        for name in wanted {
            let Some(index) = header.iter().position(|h| h == name) else {
                let message = format!("column {name} is not in the header (its columns: {})", header.join(", "));
                return Err(ModelError::file(file, message));
            };
            let ty = types.get(name).copied().unwrap_or(ColumnType::String);
            let slot = *slots[index].get_or_insert_with(|| {
                columns.push(Column::new(ty, batch_rows.min(FIRST_CAPACITY)));
                columns.len() - 1
            });
            outputs.push(slot);
            fields.push(ArrowField::new(name, arrow_type(ty), true));
        }
        let schema = Arc::new(Schema::new(fields));
        let null = dialect.null.as_deref().map(str::as_bytes);
        Ok(Reader { file, header, slots, columns, outputs, schema, null, batch_rows })
    }

    fn read(&mut self, tokenizer: &mut Tokenizer<'_>) -> Result<Vec<RecordBatch>> {
        let (data_start, total) = (tokenizer.offset(), tokenizer.offset() + tokenizer.remaining());
        let (mut batches, mut rows, mut rows_read) = (Vec::new(), 0, 0);
        while !tokenizer.at_end() {
            self.read_record(tokenizer)?;
            rows += 1;
            rows_read += 1;
            if rows == self.batch_rows {
                let next = self.next_capacity(rows_read, tokenizer.offset() - data_start, total - tokenizer.offset());
                batches.push(self.finish_batch(rows, next)?);
                rows = 0;
            }
        }
        if rows > 0 {
            batches.push(self.finish_batch(rows, 0)?);
        }
        Ok(batches)
    }

    /// Appends one record's wanted fields to the builders. On an error the builders hold part of
    /// the record, which is fine: the whole read fails.
    fn read_record(&mut self, tokenizer: &mut Tokenizer<'_>) -> Result<()> {
        let line = tokenizer.line();
        let mut index = 0;
        loop {
            let (field, end) = tokenizer.next_field().map_err(|e| self.error(line, index, e.message()))?;
            if let Some(&Some(slot)) = self.slots.get(index) {
                self.columns[slot].append(field, self.null).map_err(|message| self.error(line, index, &message))?;
            }
            index += 1;
            if end == End::Record {
                break;
            }
        }
        if index != self.header.len() {
            let fields = if index == 1 { "1 field".to_string() } else { format!("{index} fields") };
            return Err(ModelError::file(self.file, format!("line {line}: {fields}, the header has {}", self.header.len())));
        }
        Ok(())
    }

    fn error(&self, line: usize, index: usize, message: &str) -> ModelError {
        let message = match self.header.get(index) {
            Some(column) => format!("line {line}, column {column}: {message}"),
            None => format!("line {line}, field {} (beyond the header's {}): {message}", index + 1, self.header.len()),
        };
        ModelError::file(self.file, message)
    }

    /// Room for the next batch: the rows the rest of the file likely holds at the bytes-per-row
    /// seen so far, so a short last batch does not reserve a full one.
    fn next_capacity(&self, rows_read: usize, bytes_read: usize, bytes_left: usize) -> usize {
        let estimate = (bytes_left as u128 * rows_read as u128).div_ceil(bytes_read.max(1) as u128);
        usize::try_from(estimate).unwrap_or(usize::MAX).min(self.batch_rows)
    }

    fn finish_batch(&mut self, rows: usize, next_capacity: usize) -> Result<RecordBatch> {
        let arrays: Vec<_> = self.columns.iter_mut().map(|c| c.finish(next_capacity)).collect();
        let outputs = self.outputs.iter().map(|&slot| arrays[slot].clone()).collect();
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        Ok(RecordBatch::try_new_with_options(self.schema.clone(), outputs, &options)?)
    }
}
