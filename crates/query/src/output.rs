//! Writing query results: an aligned table for people, CSV, JSON lines or Parquet for programs.
//!
//! Results stream batch by batch: nothing holds a whole result in memory. The aligned table
//! takes its column widths from the first [`TABLE_WIDTH_SAMPLE`] rows and shortens longer values
//! that come later, as `psql` does with a pager.

use std::io::Write;
use std::str::FromStr;

use futures::TryStreamExt;
use tidemark_lake::arrow::array::{Array, RecordBatch};
use tidemark_lake::arrow::csv::WriterBuilder as CsvWriterBuilder;
use tidemark_lake::arrow::datatypes::{DataType, SchemaRef};
use tidemark_lake::arrow::json::LineDelimitedWriter;
use tidemark_lake::arrow::util::display::{ArrayFormatter, FormatOptions};
use tidemark_lake::datafusion::execution::SendableRecordBatchStream;
use tidemark_lake::deltalake::parquet::arrow::ArrowWriter;
use tidemark_lake::deltalake::parquet::basic::{Compression, ZstdLevel};
use tidemark_lake::deltalake::parquet::file::properties::WriterProperties;

use crate::error::{QueryError, Result};

/// Rows the aligned table measures before it prints.
pub const TABLE_WIDTH_SAMPLE: usize = 1000;
/// The widest a column of the aligned table gets.
const MAX_CELL_WIDTH: usize = 60;

/// An output format (`--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Json,
    Parquet,
}

impl FromStr for Format {
    type Err = QueryError;

    fn from_str(s: &str) -> Result<Format> {
        match s.to_ascii_lowercase().as_str() {
            "table" => Ok(Format::Table),
            "csv" => Ok(Format::Csv),
            "json" | "jsonl" | "ndjson" => Ok(Format::Json),
            "parquet" => Ok(Format::Parquet),
            other => Err(QueryError::Usage(format!("unknown format '{other}': use table, csv, json or parquet"))),
        }
    }
}

/// What an output wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutputMetrics {
    pub rows: u64,
    pub batches: u64,
}

fn io(e: impl std::fmt::Display) -> QueryError {
    QueryError::Output(e.to_string())
}

/// Writes every batch of `stream` to `out` in `format`.
pub async fn write_stream<W: Write + Send>(stream: SendableRecordBatchStream, format: Format, out: W) -> Result<OutputMetrics> {
    let schema = stream.schema();
    let mut sink: Box<dyn BatchSink + '_> = match format {
        Format::Table => Box::new(TableSink::new(schema.clone(), out)),
        Format::Csv => Box::new(CsvSink {
            writer: CsvWriterBuilder::new().with_header(true).build(out),
            wrote: false,
            schema: schema.clone(),
        }),
        Format::Json => Box::new(JsonSink(LineDelimitedWriter::new(out))),
        Format::Parquet => {
            let props = WriterProperties::builder().set_compression(Compression::ZSTD(ZstdLevel::default())).build();
            Box::new(ParquetSink(Some(ArrowWriter::try_new(out, schema.clone(), Some(props)).map_err(io)?)))
        }
    };
    let mut metrics = OutputMetrics::default();
    let mut stream = stream;
    while let Some(batch) = stream.try_next().await? {
        metrics.rows += batch.num_rows() as u64;
        metrics.batches += 1;
        sink.write(&batch)?;
    }
    sink.finish(metrics.rows)?;
    Ok(metrics)
}

trait BatchSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<()>;
    fn finish(&mut self, rows: u64) -> Result<()>;
}

struct CsvSink<W: Write> {
    writer: tidemark_lake::arrow::csv::Writer<W>,
    wrote: bool,
    schema: SchemaRef,
}

impl<W: Write> BatchSink for CsvSink<W> {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.wrote = true;
        self.writer.write(batch).map_err(io)
    }

    fn finish(&mut self, _rows: u64) -> Result<()> {
        // An empty result still gets its header line.
        if !self.wrote {
            self.writer.write(&RecordBatch::new_empty(self.schema.clone())).map_err(io)?;
        }
        Ok(())
    }
}

struct JsonSink<W: Write>(LineDelimitedWriter<W>);

impl<W: Write> BatchSink for JsonSink<W> {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.0.write(batch).map_err(io)
    }

    fn finish(&mut self, _rows: u64) -> Result<()> {
        self.0.finish().map_err(io)
    }
}

struct ParquetSink<W: Write + Send>(Option<ArrowWriter<W>>);

impl<W: Write + Send> BatchSink for ParquetSink<W> {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.0.as_mut().map_or(Ok(()), |w| w.write(batch).map_err(io))
    }

    fn finish(&mut self, _rows: u64) -> Result<()> {
        self.0.take().map_or(Ok(()), |w| w.close().map(drop).map_err(io))
    }
}

/// The aligned table: buffers the first rows to size the columns, then streams.
struct TableSink<W: Write> {
    out: W,
    schema: SchemaRef,
    pending: Vec<Vec<String>>,
    widths: Option<Vec<usize>>,
}

impl<W: Write> TableSink<W> {
    fn new(schema: SchemaRef, out: W) -> Self {
        TableSink { out, schema, pending: Vec::new(), widths: None }
    }

    fn right_aligned(&self) -> Vec<bool> {
        self.schema
            .fields()
            .iter()
            .map(|f| f.data_type().is_numeric() || matches!(f.data_type(), DataType::Decimal128(..)))
            .collect()
    }

    fn print_header(&mut self, widths: &[usize]) -> Result<()> {
        let names: Vec<String> = self.schema.fields().iter().map(|f| f.name().clone()).collect();
        let right = self.right_aligned();
        let line =
            names.iter().zip(widths).zip(&right).map(|((n, w), r)| pad(&fit(n, *w), *w, *r)).collect::<Vec<_>>().join(" | ");
        let rule = widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("-+-");
        writeln!(self.out, " {}\n-{}-", line.trim_end(), rule).map_err(io)
    }

    fn print_rows(&mut self, rows: &[Vec<String>]) -> Result<()> {
        let Some(widths) = self.widths.clone() else { return Ok(()) };
        let right = self.right_aligned();
        for row in rows {
            let cells: Vec<String> = row.iter().zip(&widths).zip(&right).map(|((c, w), r)| pad(&fit(c, *w), *w, *r)).collect();
            writeln!(self.out, " {}", cells.join(" | ").trim_end()).map_err(io)?;
        }
        Ok(())
    }

    fn flush_pending(&mut self) -> Result<()> {
        if self.widths.is_none() {
            let mut widths: Vec<usize> = self.schema.fields().iter().map(|f| width(f.name())).collect();
            for row in &self.pending {
                for (w, cell) in widths.iter_mut().zip(row) {
                    *w = (*w).max(width(cell));
                }
            }
            let widths: Vec<usize> = widths.into_iter().map(|w| w.min(MAX_CELL_WIDTH)).collect();
            self.print_header(&widths)?;
            self.widths = Some(widths);
        }
        let rows = std::mem::take(&mut self.pending);
        self.print_rows(&rows)
    }
}

impl<W: Write> BatchSink for TableSink<W> {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let options = FormatOptions::default().with_null("NULL");
        let formatters: Vec<ArrayFormatter> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref() as &dyn Array, &options))
            .collect::<Result<_, _>>()
            .map_err(io)?;
        for row in 0..batch.num_rows() {
            let cells = formatters.iter().map(|f| f.value(row).to_string().replace(['\n', '\r', '\t'], " ")).collect();
            self.pending.push(cells);
            if self.widths.is_some() || self.pending.len() >= TABLE_WIDTH_SAMPLE {
                self.flush_pending()?;
            }
        }
        Ok(())
    }

    fn finish(&mut self, rows: u64) -> Result<()> {
        self.flush_pending()?;
        let noun = if rows == 1 { "row" } else { "rows" };
        writeln!(self.out, "({rows} {noun})").map_err(io)?;
        self.out.flush().map_err(io)
    }
}

fn width(s: &str) -> usize {
    s.chars().count()
}

/// `s` cut to `w` characters, the last one an ellipsis when cut.
fn fit(s: &str, w: usize) -> String {
    if width(s) <= w {
        return s.to_owned();
    }
    let mut cut: String = s.chars().take(w.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

fn pad(s: &str, w: usize, right: bool) -> String {
    let fill = " ".repeat(w.saturating_sub(width(s)));
    if right { format!("{fill}{s}") } else { format!("{s}{fill}") }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tidemark_lake::arrow::array::{Decimal128Array, Int64Array, StringArray};
    use tidemark_lake::arrow::datatypes::{Field, Schema};
    use tidemark_lake::datafusion::physical_plan::stream::RecordBatchStreamAdapter;

    use super::*;

    fn stream(batches: Vec<RecordBatch>, schema: SchemaRef) -> SendableRecordBatchStream {
        Box::pin(RecordBatchStreamAdapter::new(schema, futures::stream::iter(batches.into_iter().map(Ok))))
    }

    fn sample() -> (Vec<RecordBatch>, SchemaRef) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("name", DataType::Utf8, true),
            Field::new("n", DataType::Int64, false),
            Field::new("amount", DataType::Decimal128(18, 2), true),
        ]));
        let batch = |names: Vec<Option<&str>>, ns: Vec<i64>, amounts: Vec<Option<i128>>| {
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(StringArray::from(names)),
                    Arc::new(Int64Array::from(ns)),
                    Arc::new(Decimal128Array::from(amounts).with_precision_and_scale(18, 2).unwrap()),
                ],
            )
            .unwrap()
        };
        let batches = vec![
            batch(vec![Some("Acme"), None], vec![1, 22], vec![Some(12345), None]),
            batch(vec![Some("Globex, Inc.")], vec![3], vec![Some(-5)]),
        ];
        (batches, schema)
    }

    async fn render(format: Format) -> (String, OutputMetrics) {
        let (batches, schema) = sample();
        let mut out = Vec::new();
        let metrics = write_stream(stream(batches, schema), format, &mut out).await.unwrap();
        (String::from_utf8(out).unwrap(), metrics)
    }

    #[tokio::test]
    async fn table_is_aligned_and_counts_rows() {
        let (text, metrics) = render(Format::Table).await;
        assert_eq!(metrics, OutputMetrics { rows: 3, batches: 2 });
        let expected = " name         |  n | amount\n\
                        --------------+----+--------\n \
                        Acme         |  1 | 123.45\n \
                        NULL         | 22 |   NULL\n \
                        Globex, Inc. |  3 |  -0.05\n\
                        (3 rows)\n";
        assert_eq!(text, expected);
    }

    #[tokio::test]
    async fn csv_quotes_and_keeps_a_header_for_empty_results() {
        let (text, _) = render(Format::Csv).await;
        assert_eq!(text, "name,n,amount\nAcme,1,123.45\n,22,\n\"Globex, Inc.\",3,-0.05\n");
        let (_, schema) = sample();
        let mut out = Vec::new();
        write_stream(stream(vec![], schema), Format::Csv, &mut out).await.unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "name,n,amount\n");
    }

    #[tokio::test]
    async fn json_lines_one_object_per_row() {
        let (text, _) = render(Format::Json).await;
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].contains("\"name\":\"Acme\"") && lines[0].contains("\"n\":1"), "{}", lines[0]);
    }

    #[tokio::test]
    async fn parquet_round_trips() {
        let (bytes, _) = {
            let (batches, schema) = sample();
            let mut out = Vec::new();
            let m = write_stream(stream(batches, schema), Format::Parquet, &mut out).await.unwrap();
            (out, m)
        };
        let reader = tidemark_lake::deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            bytes::Bytes::from(bytes),
        )
        .unwrap()
        .build()
        .unwrap();
        let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
        assert_eq!(rows, 3);
    }

    #[test]
    fn long_cells_are_cut_with_an_ellipsis() {
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("abc", 4), "abc");
        assert_eq!(pad("7", 3, true), "  7");
        assert!("TABLE".parse::<Format>().is_ok() && "xml".parse::<Format>().is_err());
    }
}
