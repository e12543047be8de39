//! Rows of one table gathered into [`Versions`] batches, from `COPY` text and from `pgoutput`
//! tuples alike.

use std::sync::Arc;

use tidemark_lake::arrow::array::{ArrayBuilder, ArrayRef, BooleanArray, Int64Array, RecordBatch, TimestampMicrosecondArray};
use tidemark_lake::arrow::datatypes::{DataType, Field, Schema};
use tidemark_lake::columns::{DELETED, LSN, VERSION_AT, timestamp_type};
use tidemark_lake::source::{CaptureKind, Versions};

use crate::catalog::PgTable;
use crate::error::PgError;

/// Rows per batch handed to the lake.
pub(crate) const BATCH_ROWS: usize = 8192;

/// One column's value in a row.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Cell<'a> {
    Value(Option<&'a str>),
    /// An unchanged TOAST value: the previous version's stands.
    Unchanged,
}

pub(crate) struct RowBuffer {
    pub table: Arc<PgTable>,
    builders: Vec<Box<dyn ArrayBuilder>>,
    version_at: Vec<i64>,
    deleted: Vec<bool>,
    lsn: Vec<i64>,
    /// Per column, the rows whose value was not sent.
    unchanged: Vec<Vec<u32>>,
    continues: Vec<(u32, u32)>,
}

impl RowBuffer {
    pub fn new(table: Arc<PgTable>) -> RowBuffer {
        let builders = table.columns.iter().map(|(_, t)| t.builder(BATCH_ROWS)).collect();
        let unchanged = vec![Vec::new(); table.columns.len()];
        RowBuffer {
            table,
            builders,
            version_at: Vec::new(),
            deleted: Vec::new(),
            lsn: Vec::new(),
            unchanged,
            continues: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.version_at.len()
    }

    /// The last row pushed continues the record deleted by the row before it (a changed key).
    pub fn continues_previous(&mut self) {
        let n = self.len() as u32;
        if n >= 2 {
            self.continues.push((n - 1, n - 2));
        }
    }

    /// Appends a row: one cell per column, in the table's column order.
    pub fn push<'a>(
        &mut self,
        cells: impl IntoIterator<Item = Cell<'a>>,
        at_micros: i64,
        deleted: bool,
        lsn: i64,
    ) -> Result<(), PgError> {
        let row = self.len() as u32;
        let mut n = 0;
        for (i, cell) in cells.into_iter().enumerate() {
            let Some((column, t)) = self.table.columns.get(i) else {
                return Err(PgError::Setup(format!(
                    "table {}: a row with more columns than its definition",
                    self.table.lake_name
                )));
            };
            let value = match cell {
                Cell::Value(v) => v,
                Cell::Unchanged => {
                    self.unchanged[i].push(row);
                    None
                }
            };
            t.append(self.builders[i].as_mut(), value).map_err(|detail| PgError::Value {
                table: self.table.lake_name.clone(),
                column: column.clone(),
                detail,
            })?;
            n += 1;
        }
        if n != self.table.columns.len() {
            return Err(PgError::Setup(format!(
                "table {}: a row with {n} of {} columns",
                self.table.lake_name,
                self.table.columns.len()
            )));
        }
        self.version_at.push(at_micros);
        self.deleted.push(deleted);
        self.lsn.push(lsn);
        Ok(())
    }

    /// The buffered rows as versions (`None` when empty); the buffer is empty after.
    pub fn take(&mut self, kind: CaptureKind) -> Option<Versions> {
        if self.version_at.is_empty() {
            return None;
        }
        let mut fields = vec![
            Field::new(VERSION_AT, timestamp_type(), false),
            Field::new(DELETED, DataType::Boolean, false),
            Field::new(LSN, DataType::Int64, true),
        ];
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(TimestampMicrosecondArray::from(std::mem::take(&mut self.version_at)).with_timezone("UTC")),
            Arc::new(BooleanArray::from(std::mem::take(&mut self.deleted))),
            Arc::new(Int64Array::from(std::mem::take(&mut self.lsn))),
        ];
        for ((name, t), builder) in self.table.columns.iter().zip(&mut self.builders) {
            fields.push(Field::new(name, t.arrow(), true));
            columns.push(builder.finish());
        }
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("columns built to the schema");
        let unchanged = self
            .table
            .columns
            .iter()
            .zip(&mut self.unchanged)
            .filter(|(_, rows)| !rows.is_empty())
            .map(|((name, _), rows)| (name.clone(), std::mem::take(rows)))
            .collect();
        let continues = std::mem::take(&mut self.continues);
        Some(Versions { table: self.table.lake_name.clone(), kind, batch, unchanged, continues })
    }
}
