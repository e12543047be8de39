//! Versions found by comparing freshly read rows with the lake's live state: hard deletes
//! (Id reconciliation), formula re-snapshots, and snapshot-and-diff for objects without a
//! timestamp field. The comparison runs in DataFusion over the fetched rows and the table.

use std::sync::Arc;

use tidemark_lake::HistoryTable;
use tidemark_lake::arrow::array::RecordBatch;
use tidemark_lake::arrow::datatypes::SchemaRef;
use tidemark_lake::columns::ID;
use tidemark_lake::datafusion::datasource::MemTable;
use tidemark_lake::read::{live_sql, quote};

use crate::error::SyncError;

/// What to look for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// Live records whose Id is no longer in the fetched Ids (vanished: hard deleted or purged).
    Vanished,
    /// Live records whose `columns` differ from the fetched values (formula re-snapshot).
    Changed,
    /// Fetched records that are new or differ in any column (snapshot-and-diff).
    NewOrChanged,
}

/// Compares `fetched` (columns named as fields) with the live state of `table`. `fields` maps
/// fetched fields to table columns. Returns rows named as table columns; the caller stamps them.
pub async fn compare(
    table: &HistoryTable,
    fetched: Vec<RecordBatch>,
    fetched_schema: SchemaRef,
    fields: &[(String, String)],
    comparison: Comparison,
) -> Result<Vec<RecordBatch>, SyncError> {
    let object = table.object().to_owned();
    let df_err = |e| SyncError::Compare { object: object.clone(), source: Box::new(e) };
    let ctx = table.session().await?;
    let mem = MemTable::try_new(fetched_schema, vec![fetched]).map_err(df_err)?;
    ctx.register_table("fetched", Arc::new(mem)).map_err(df_err)?;
    let columns = table.column_names()?;
    let live = live_sql(&columns);
    let id = quote(ID);
    let fed = |column: &str| fields.iter().find(|(_, c)| c == column).map(|(f, _)| f.as_str());
    let differs = fields
        .iter()
        .filter(|(f, _)| f != ID)
        .map(|(f, c)| format!("(l.{} IS DISTINCT FROM f.{})", quote(c), quote(f)))
        .collect::<Vec<_>>();
    let any_differs = if differs.is_empty() { "false".to_owned() } else { differs.join(" OR ") };
    let sql = match comparison {
        Comparison::Vanished => {
            let cols = columns.iter().map(|c| format!("l.{}", quote(c))).collect::<Vec<_>>().join(", ");
            format!("SELECT {cols} FROM ({live}) l WHERE NOT EXISTS (SELECT 1 FROM fetched f WHERE f.{id} = l.{id})")
        }
        Comparison::Changed => {
            let cols = columns
                .iter()
                .map(|c| match fed(c) {
                    Some(f) => format!("f.{} AS {}", quote(f), quote(c)),
                    None => format!("l.{}", quote(c)),
                })
                .collect::<Vec<_>>()
                .join(", ");
            format!("SELECT {cols} FROM ({live}) l JOIN fetched f ON f.{id} = l.{id} WHERE {any_differs}")
        }
        Comparison::NewOrChanged => {
            let cols = fields.iter().map(|(f, c)| format!("f.{} AS {}", quote(f), quote(c))).collect::<Vec<_>>().join(", ");
            format!("SELECT {cols} FROM fetched f LEFT JOIN ({live}) l ON f.{id} = l.{id} WHERE l.{id} IS NULL OR {any_differs}")
        }
    };
    let df = ctx.sql(&sql).await.map_err(df_err)?;
    df.collect().await.map_err(df_err)
}
