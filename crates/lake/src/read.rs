//! Reading history tables with DataFusion: live state, version keys for de-duplication, counts.
//!
//! Live state is computed on read (latest version per `Id` by `_version_at`, then
//! `_ingested_at`; deleted ones dropped) rather than kept in a second table: one table per
//! object stays the single source of truth, every sync is a pure append, and the window
//! query reads only the columns a query projects.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use deltalake::arrow::array::{ArrayRef, AsArray, RecordBatch, StringArray};
use deltalake::arrow::datatypes::DataType;
use deltalake::arrow::datatypes::{Int64Type, TimestampMicrosecondType};
use deltalake::datafusion::dataframe::DataFrame;
use deltalake::datafusion::prelude::SessionContext;

use crate::columns::{DELETED, ID, INGESTED_AT, ORIGIN, Origin, VERSION_AT};
use crate::error::{LakeError, Result};
use crate::history::HistoryTable;

/// The table name a history table is registered under in [`HistoryTable::session`].
pub const HISTORY: &str = "history";

/// Identity of a queried version: the record, its timestamp (µs) and whether it is a delete.
/// Re-reading a version (overlap window, re-run after a crash) yields the same key.
pub type VersionKey = (String, i64, bool);

/// A string column as `Utf8`, whatever string layout the scan produced (DataFusion reads
/// Parquet strings as `Utf8View`).
pub fn utf8(array: &ArrayRef) -> Result<StringArray> {
    let cast = deltalake::arrow::compute::cast(array, &DataType::Utf8)?;
    Ok(cast.as_string::<i32>().clone())
}

/// Quotes an identifier for DataFusion SQL (Salesforce names are mixed case).
pub fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// SQL for the live state of the table registered as `source`: `columns` of each record's
/// latest version, records whose latest version is a delete left out. Versions are ordered as
/// everywhere else: `_version_at`, `_ingested_at`, then `_deleted` (a delete at the same
/// instant in the same run comes last).
pub fn live_sql(source: &str, columns: &[String]) -> String {
    let cols = columns.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", ");
    // Each Id's greatest version key (a hash aggregate), then the version that carries it (a
    // join): the same plan as the query crate's live relation (`views::live_plan`), measured
    // 2.5–4× faster than `row_number()` over a window partitioned by Id. Keys are unique per Id
    // because the sync de-duplicates on (Id, _version_at, _deleted).
    let key = format!(
        "CAST(CAST({v} AS BIGINT) AS DECIMAL(38,0)) * CAST(1000000000000000000 AS DECIMAL(38,0)) \
         + CAST(CAST({i} AS BIGINT) * 2 + COALESCE(CAST({d} AS BIGINT), 0) AS DECIMAL(38,0))",
        v = quote(VERSION_AT),
        i = quote(INGESTED_AT),
        d = quote(DELETED),
    );
    format!(
        "SELECT {cols} FROM (SELECT *, {key} AS __tm_key FROM {source}) AS __tm_v \
         JOIN (SELECT {id} AS __tm_id, max({key}) AS __tm_latest FROM {source} GROUP BY {id}) AS __tm_l \
         ON __tm_v.{id} = __tm_l.__tm_id AND __tm_v.__tm_key = __tm_l.__tm_latest WHERE NOT __tm_v.{d}",
        id = quote(ID),
        d = quote(DELETED),
    )
}

impl HistoryTable {
    /// A DataFusion session with this table registered as [`HISTORY`].
    pub async fn session(&self) -> Result<SessionContext> {
        let ctx = SessionContext::new();
        self.delta().update_datafusion_session(&ctx.state()).map_err(|e| LakeError::delta(self.object(), e))?;
        let provider = self.delta().table_provider().await.map_err(|e| LakeError::query(self.object(), e))?;
        ctx.register_table(HISTORY, provider).map_err(|e| LakeError::query(self.object(), e))?;
        Ok(ctx)
    }

    /// Column names of the table, in order.
    pub fn column_names(&self) -> Result<Vec<String>> {
        Ok(self.schema()?.fields().iter().map(|f| f.name().clone()).collect())
    }

    /// Each record's current version (all columns), deleted records excluded.
    pub async fn live(&self, ctx: &SessionContext) -> Result<DataFrame> {
        let sql = live_sql(HISTORY, &self.column_names()?);
        ctx.sql(&sql).await.map_err(|e| LakeError::query(self.object(), e))
    }

    /// Keys of queried versions with `_version_at >= since` (all when `since` is `None`).
    pub async fn version_keys_since(&self, since: Option<DateTime<Utc>>) -> Result<HashSet<VersionKey>> {
        let ctx = self.session().await?;
        let mut sql = format!(
            "SELECT {id}, {v}, {d} FROM {HISTORY} WHERE {o} = '{q}'",
            id = quote(ID),
            v = quote(VERSION_AT),
            d = quote(DELETED),
            o = quote(ORIGIN),
            q = Origin::Query.as_str()
        );
        if let Some(since) = since {
            sql.push_str(&format!(" AND {} >= TIMESTAMP '{}'", quote(VERSION_AT), since.format("%Y-%m-%dT%H:%M:%S%.6fZ")));
        }
        let batches = self.collect(&ctx, &sql).await?;
        let mut keys = HashSet::new();
        for b in &batches {
            let ids = utf8(b.column(0))?;
            let at = b.column(1).as_primitive::<TimestampMicrosecondType>();
            let deleted = b.column(2).as_boolean();
            for i in 0..b.num_rows() {
                keys.insert((ids.value(i).to_owned(), at.value(i), deleted.value(i)));
            }
        }
        Ok(keys)
    }

    /// Number of versions and of live records.
    pub async fn counts(&self) -> Result<(u64, u64)> {
        let ctx = self.session().await?;
        let versions = self.count(&ctx, &format!("SELECT count(*) FROM {HISTORY}")).await?;
        let live = self.count(&ctx, &format!("SELECT count(*) FROM ({})", live_sql(HISTORY, &[ID.to_owned()]))).await?;
        Ok((versions, live))
    }

    /// Runs `sql` on a session of this table and collects the result.
    pub async fn collect(&self, ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>> {
        let df = ctx.sql(sql).await.map_err(|e| LakeError::query(self.object(), e))?;
        df.collect().await.map_err(|e| LakeError::query(self.object(), e))
    }

    async fn count(&self, ctx: &SessionContext, sql: &str) -> Result<u64> {
        let batches = self.collect(ctx, sql).await?;
        let b = batches.first().ok_or_else(|| LakeError::Layout { table: self.object().to_owned(), detail: "empty count".into() })?;
        let col = b.column(0).as_primitive::<Int64Type>();
        Ok(if col.is_empty() { 0 } else { u64::try_from(col.value(0)).unwrap_or(0) })
    }
}
