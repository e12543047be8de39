//! Reading history tables with DataFusion: live state, version keys for de-duplication, counts.
//!
//! Live state is computed on read (latest version per `Id` by `_version_at`, then
//! `_ingested_at`; deleted ones dropped) rather than kept in a second table: one table per
//! object stays the single source of truth, every sync is a pure append, and the scan
//! ([`LiveTable`]) reads only the columns a query projects.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use deltalake::arrow::array::{ArrayRef, AsArray, RecordBatch, StringArray};
use deltalake::arrow::datatypes::DataType;
use deltalake::arrow::datatypes::{Int64Type, TimestampMicrosecondType};
use std::sync::Arc;

use deltalake::datafusion::dataframe::DataFrame;
use deltalake::datafusion::prelude::SessionContext;

use crate::columns::{DELETED, ID, INGESTED_AT, ORIGIN, Origin, VERSION_AT};
use crate::content::content_digests;
use crate::error::{LakeError, Result};
use crate::history::HistoryTable;
use crate::live::LiveTable;

/// The table name a history table is registered under in [`HistoryTable::session`].
pub const HISTORY: &str = "history";

/// Identity of a queried version: the record, its timestamp (µs) and whether it is a delete.
/// Re-reading a version (overlap window, re-run after a crash) yields the same key; so does a
/// second save within the timestamp's precision (a second), which only its content tells apart
/// ([`HistoryTable::version_digests_since`]).
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

/// The name [`HistoryTable::session`] registers the live state under: every column of each
/// record's latest version, records whose latest version is a delete left out.
pub const LIVE: &str = "live_versions";

/// SQL selecting `columns` of the live state ([`LIVE`]) in a [`HistoryTable::session`].
pub fn live_sql(columns: &[String]) -> String {
    let cols = columns.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", ");
    format!("SELECT {cols} FROM {LIVE}")
}

impl HistoryTable {
    /// A DataFusion session with this table registered as [`HISTORY`].
    pub async fn session(&self) -> Result<SessionContext> {
        let ctx = SessionContext::new();
        self.delta().update_datafusion_session(&ctx.state()).map_err(|e| LakeError::delta(self.object(), e))?;
        let provider = self.delta().table_provider().await.map_err(|e| LakeError::query(self.object(), e))?;
        let err = |e| LakeError::query(self.object(), e);
        ctx.register_table(HISTORY, provider.clone()).map_err(err)?;
        ctx.register_table(LIVE, Arc::new(LiveTable::new(provider))).map_err(err)?;
        Ok(ctx)
    }

    /// Column names of the table, in order.
    pub fn column_names(&self) -> Result<Vec<String>> {
        Ok(self.schema()?.fields().iter().map(|f| f.name().clone()).collect())
    }

    /// Each record's current version (all columns), deleted records excluded.
    pub async fn live(&self, ctx: &SessionContext) -> Result<DataFrame> {
        let sql = live_sql(&self.column_names()?);
        ctx.sql(&sql).await.map_err(|e| LakeError::query(self.object(), e))
    }

    /// The queried versions with `_version_at >= since` (all when `since` is `None`): for each
    /// key, the content digest ([`content_digests`] over `content_columns`) of the version of
    /// that key ingested last, which is the one live and as-of reads take for the key.
    ///
    /// Streams the scan: memory holds the map, not the versions.
    pub async fn version_digests_since(
        &self,
        since: Option<DateTime<Utc>>,
        content_columns: &[String],
    ) -> Result<HashMap<VersionKey, u64>> {
        use futures::StreamExt;

        let ctx = self.session().await?;
        let present: Vec<String> = self.column_names()?;
        // `Id` is in the key already; a column the table lacks is null in every version.
        let content: Vec<String> = content_columns
            .iter()
            .filter(|c| !c.eq_ignore_ascii_case(ID) && present.iter().any(|p| p.eq_ignore_ascii_case(c)))
            .cloned()
            .collect();
        let mut select = vec![quote(ID), quote(VERSION_AT), quote(DELETED), quote(INGESTED_AT)];
        select.extend(content.iter().map(|c| quote(c)));
        let mut sql =
            format!("SELECT {} FROM {HISTORY} WHERE {} = '{}'", select.join(", "), quote(ORIGIN), Origin::Query.as_str());
        if let Some(since) = since {
            sql.push_str(&format!(" AND {} >= TIMESTAMP '{}'", quote(VERSION_AT), since.format("%Y-%m-%dT%H:%M:%S%.6fZ")));
        }
        let err = |e| LakeError::query(self.object(), e);
        let mut stream = ctx.sql(&sql).await.map_err(err)?.execute_stream().await.map_err(err)?;
        // Key → (ingested at, digest) of the last-ingested version of the key.
        let mut latest: HashMap<VersionKey, (i64, u64)> = HashMap::new();
        while let Some(batch) = stream.next().await {
            let b = batch.map_err(err)?;
            let ids = utf8(b.column(0))?;
            let at = b.column(1).as_primitive::<TimestampMicrosecondType>();
            let deleted = b.column(2).as_boolean();
            let ingested = b.column(3).as_primitive::<TimestampMicrosecondType>();
            let digests = content_digests(&b, &content)?;
            for i in 0..b.num_rows() {
                let key = (ids.value(i).to_owned(), at.value(i), deleted.value(i));
                let entry = latest.entry(key).or_insert((i64::MIN, 0));
                if ingested.value(i) >= entry.0 {
                    *entry = (ingested.value(i), digests[i]);
                }
            }
        }
        Ok(latest.into_iter().map(|(k, (_, d))| (k, d)).collect())
    }

    /// Number of versions and of live records.
    pub async fn counts(&self) -> Result<(u64, u64)> {
        let ctx = self.session().await?;
        let versions = self.count(&ctx, &format!("SELECT count(*) FROM {HISTORY}")).await?;
        let live = self.count(&ctx, &format!("SELECT count(*) FROM {LIVE}")).await?;
        Ok((versions, live))
    }

    /// Runs `sql` on a session of this table and collects the result.
    pub async fn collect(&self, ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>> {
        let df = ctx.sql(sql).await.map_err(|e| LakeError::query(self.object(), e))?;
        df.collect().await.map_err(|e| LakeError::query(self.object(), e))
    }

    async fn count(&self, ctx: &SessionContext, sql: &str) -> Result<u64> {
        let batches = self.collect(ctx, sql).await?;
        let b =
            batches.first().ok_or_else(|| LakeError::Layout { table: self.object().to_owned(), detail: "empty count".into() })?;
        let col = b.column(0).as_primitive::<Int64Type>();
        Ok(if col.is_empty() { 0 } else { u64::try_from(col.value(0)).unwrap_or(0) })
    }
}
