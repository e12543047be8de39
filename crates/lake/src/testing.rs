//! Helpers shared by the crate's unit tests: a small history table of `(Id, Name)` versions.

use std::sync::Arc;

use deltalake::arrow::array::{ArrayRef, BooleanArray, RecordBatch, StringArray, TimestampMicrosecondArray};

use crate::history::HistoryTable;
use crate::writer::{VersionWriter, app_id};

/// `(Id, version at, deleted, Name, ingested at, run)`.
pub(crate) type Row = (&'static str, i64, bool, &'static str, i64, &'static str);

pub(crate) fn batch(schema: &deltalake::arrow::datatypes::SchemaRef, rows: &[Row]) -> RecordBatch {
    let ts = |v: Vec<i64>| -> ArrayRef { Arc::new(TimestampMicrosecondArray::from(v).with_timezone("UTC")) };
    let text = |v: Vec<&str>| -> ArrayRef { Arc::new(StringArray::from(v)) };
    let columns: Vec<ArrayRef> = vec![
        ts(rows.iter().map(|r| r.1).collect()),
        Arc::new(BooleanArray::from(rows.iter().map(|r| r.2).collect::<Vec<_>>())),
        text(rows.iter().map(|_| "query").collect()),
        text(rows.iter().map(|r| r.5).collect()),
        ts(rows.iter().map(|r| r.4).collect()),
        text(rows.iter().map(|r| r.0).collect()),
        text(rows.iter().map(|r| r.3).collect()),
    ];
    RecordBatch::try_new(schema.clone(), columns).unwrap()
}

pub(crate) async fn append(table: &mut HistoryTable, writer: &str, rows: &[Row]) {
    let schema = table.schema().unwrap();
    let mut w = VersionWriter::new(table, app_id(writer, "Account"), Vec::new()).await.unwrap();
    w.write(batch(&schema, rows)).await.unwrap();
    w.commit(table).await.unwrap();
}
