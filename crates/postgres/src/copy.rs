//! The initial copy: tables read with `COPY … TO STDOUT` inside transactions that imported
//! one exported snapshot, so every table is copied as of the same instant, the one the slot's
//! changes start after.

use std::sync::Arc;

use futures::StreamExt;
use tidemark_lake::source::{CaptureKind, Change, SourceError};
use tokio::sync::mpsc;

use crate::catalog::{PgTable, connect, quote_ident};
use crate::config::PostgresConfig;
use crate::error::PgError;
use crate::rows::{BATCH_ROWS, Cell, RowBuffer};

/// What one copy worker needs.
#[derive(Clone)]
pub(crate) struct CopyJob {
    pub config: PostgresConfig,
    pub snapshot: String,
    /// `_version_at` and `_lsn` of every copied row: the snapshot's time and consistent point.
    pub at_micros: i64,
    pub position: i64,
}

/// Opens a connection whose transaction sees `snapshot`; `imported` is signalled once it does.
pub(crate) async fn snapshot_connection(job: &CopyJob) -> Result<tokio_postgres::Client, PgError> {
    if !job.snapshot.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        return Err(PgError::Setup(format!("unexpected snapshot name {:?}", job.snapshot)));
    }
    let client = connect(&job.config).await?;
    client
        .batch_execute(&format!("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '{}'", job.snapshot))
        .await
        .map_err(PgError::query("importing the snapshot"))?;
    Ok(client)
}

/// Copies `tables` one after another on `client` (a snapshot connection), sending each
/// table's versions and then its table-scoped commit.
pub(crate) async fn copy_tables(
    client: tokio_postgres::Client,
    job: CopyJob,
    tables: Vec<Arc<PgTable>>,
    out: mpsc::Sender<Result<Change, SourceError>>,
) {
    for table in tables {
        let outcome = copy_table(&client, &job, table.clone(), &out).await;
        let message = match outcome {
            Ok(rows) => {
                tracing::info!(table = table.lake_name, rows, "table copied");
                Ok(Change::Commit { position: job.position, table: Some(table.lake_name.clone()) })
            }
            Err(e) => Err(e.into()),
        };
        let failed = message.is_err();
        if out.send(message).await.is_err() || failed {
            return;
        }
    }
    let _ = client.batch_execute("COMMIT").await;
}

async fn copy_table(
    client: &tokio_postgres::Client,
    job: &CopyJob,
    table: Arc<PgTable>,
    out: &mpsc::Sender<Result<Change, SourceError>>,
) -> Result<u64, PgError> {
    let columns = table.source_columns.iter().map(|c| quote_ident(c)).collect::<Vec<_>>().join(", ");
    let filter = table.copy_filter.map(|f| format!(" WHERE {f}")).unwrap_or_default();
    let sql = format!("COPY (SELECT {columns} FROM ONLY {}{filter}) TO STDOUT", table.qualified());
    let mut reader = CopyReader::start(client, &sql, &table.lake_name).await?;
    let mut buffer = RowBuffer::new(table.clone());
    let mut rows = 0u64;
    let mut fields: Vec<Option<String>> = Vec::with_capacity(table.columns.len());
    while reader.next_row(&mut fields).await? {
        buffer.push(fields.iter().map(|f| Cell::Value(f.as_deref())), job.at_micros, false, job.position)?;
        rows += 1;
        if buffer.len() >= BATCH_ROWS {
            send(out, &mut buffer).await?;
        }
    }
    send(out, &mut buffer).await?;
    Ok(rows)
}

/// The rows of a `COPY (…) TO STDOUT` in text format, one at a time.
pub(crate) struct CopyReader {
    stream: std::pin::Pin<Box<tokio_postgres::CopyOutStream>>,
    carry: Vec<u8>,
    start: usize,
    table: String,
}

impl CopyReader {
    pub async fn start(client: &tokio_postgres::Client, sql: &str, table: &str) -> Result<CopyReader, PgError> {
        let stream = client.copy_out(sql).await.map_err(PgError::query("COPY TO STDOUT"))?;
        Ok(CopyReader { stream: Box::pin(stream), carry: Vec::new(), start: 0, table: table.to_owned() })
    }

    /// The next row's fields into `fields`; false at the end.
    pub async fn next_row(&mut self, fields: &mut Vec<Option<String>>) -> Result<bool, PgError> {
        loop {
            if let Some(end) = memchr::memchr(b'\n', &self.carry[self.start..]) {
                let line = &self.carry[self.start..self.start + end];
                parse_line(line, fields).map_err(|detail| PgError::Value {
                    table: self.table.clone(),
                    column: String::new(),
                    detail,
                })?;
                self.start += end + 1;
                return Ok(true);
            }
            self.carry.drain(..self.start);
            self.start = 0;
            match self.stream.next().await {
                Some(chunk) => self.carry.extend_from_slice(&chunk.map_err(PgError::query("COPY data"))?),
                None => return Ok(false),
            }
        }
    }
}

async fn send(out: &mpsc::Sender<Result<Change, SourceError>>, buffer: &mut RowBuffer) -> Result<(), PgError> {
    if let Some(v) = buffer.take(CaptureKind::Copy) {
        out.send(Ok(Change::Versions(v))).await.map_err(|_| PgError::Setup("the copy's reader stopped".into()))?;
    }
    Ok(())
}

/// One line of `COPY` text format: tab-separated, `\N` for NULL, backslash escapes.
fn parse_line(line: &[u8], fields: &mut Vec<Option<String>>) -> Result<(), String> {
    fields.clear();
    for raw in line.split(|&b| b == b'\t') {
        if raw == b"\\N" {
            fields.push(None);
            continue;
        }
        let mut out = Vec::with_capacity(raw.len());
        let mut i = 0;
        while i < raw.len() {
            let b = raw[i];
            if b != b'\\' || i + 1 == raw.len() {
                out.push(b);
                i += 1;
                continue;
            }
            let next = raw[i + 1];
            i += 2;
            match next {
                b'b' => out.push(8),
                b'f' => out.push(12),
                b'n' => out.push(b'\n'),
                b'r' => out.push(b'\r'),
                b't' => out.push(b'\t'),
                b'v' => out.push(11),
                b'0'..=b'7' => {
                    let mut value = u32::from(next - b'0');
                    for _ in 0..2 {
                        match raw.get(i) {
                            Some(d @ b'0'..=b'7') => {
                                value = value * 8 + u32::from(d - b'0');
                                i += 1;
                            }
                            _ => break,
                        }
                    }
                    out.push(value as u8);
                }
                b'x' => {
                    let mut value = 0u32;
                    let mut digits = 0;
                    while digits < 2 {
                        match raw.get(i).and_then(|d| (*d as char).to_digit(16)) {
                            Some(d) => {
                                value = value * 16 + d;
                                i += 1;
                                digits += 1;
                            }
                            None => break,
                        }
                    }
                    out.push(value as u8);
                }
                other => out.push(other),
            }
        }
        fields.push(Some(String::from_utf8(out).map_err(|_| "a value that is not UTF-8".to_owned())?));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_lines_unescape() {
        let mut fields = Vec::new();
        parse_line(b"1\t\\N\ta\\tb\\\\c\\nd\t\\x41\\101", &mut fields).unwrap();
        assert_eq!(fields, vec![Some("1".into()), None, Some("a\tb\\c\nd".into()), Some("AA".into())]);
        parse_line(b"", &mut fields).unwrap();
        assert_eq!(fields, vec![Some(String::new())]);
    }
}
