//! The lake as a DataFusion schema: every history table under three names and every mart (a
//! dimension model's table) under two (see [`Relation`]), opened when a query first names it.
//!
//! Tables are opened lazily so a query over one object never reads the logs of the others, and
//! a long-running endpoint sees new syncs and model loads: an unpinned table's log is re-read
//! when it was last read more than [`LakeSchema::REFRESH_AFTER`] ago.
//!
//! Object relations win a name clash with a mart's, name by name (see [`Relation::resolve_in`]);
//! both win over the push flows' tables Tidemark keeps under `_tidemark/` (see
//! [`crate::internal`]), which are read as stored.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use parking_lot::{Mutex, RwLock};
use tidemark_lake::LakeLocation;
use tidemark_lake::datafusion::catalog::{SchemaProvider, TableProvider};
use tidemark_lake::datafusion::common::utils::datafusion_strsim::levenshtein;
use tidemark_lake::datafusion::datasource::ViewTable;
use tidemark_lake::datafusion::error::{DataFusionError, Result};
use tidemark_lake::deltalake::{DeltaTable, DeltaTableBuilder};

use crate::ddl::view_definition;
use crate::error::TableError;
use crate::internal;
use crate::marts::{MartShape, mart_relation};
use crate::session::TableListing;
use crate::views::{Relation, TableView, plan};

/// Which state of the lake a session reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadOptions {
    /// Record time: `<object>` is the state of each record at this instant (the last version
    /// with `_version_at` at or before it). History and SCD2 relations are not affected, nor
    /// are marts, which carry their own validity columns.
    pub as_of: Option<DateTime<Utc>>,
    /// Lake time: read each Delta table (history tables and marts alike) as it was at this
    /// table version or commit time, as if later syncs and model loads had not happened.
    /// Applies to every table a query names, each at its own commit number; a table without
    /// that version (or without a commit by that time) fails the queries that name it, never
    /// read at another version instead.
    pub table_version: Option<TableVersion>,
}

/// The lake folder a relation's Delta table lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Folder {
    /// `objects/<object>/`: history tables.
    Objects,
    /// `marts/<model>/`: dimension models' tables.
    Marts,
    /// `_tidemark/<name>/`: Tidemark's own tables that queries read as stored (push runs and
    /// errors, see [`crate::internal`]).
    Internal,
}

impl Folder {
    fn url(self, location: &LakeLocation, table: &str) -> url::Url {
        match self {
            Folder::Objects => location.object_table_url(table),
            Folder::Marts => location.mart_table_url(table),
            Folder::Internal => location.internal_table_url(table),
        }
    }

    /// The key of an opened table: a mart and an object may share a name.
    fn key(self, table: &str) -> String {
        match self {
            Folder::Objects => LakeLocation::table_resource(table),
            Folder::Marts => LakeLocation::mart_resource(table),
            Folder::Internal => format!("_tidemark/{table}"),
        }
    }
}

/// A Delta table version (commit number) or a commit time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TableVersion {
    Version(u64),
    Timestamp(DateTime<Utc>),
}

impl fmt::Display for TableVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TableVersion::Version(v) => write!(f, "version {v}"),
            TableVersion::Timestamp(t) => write!(f, "commit time {}", t.to_rfc3339()),
        }
    }
}

/// Parses an instant given on the command line: RFC 3339 (`2025-01-31T00:00:00Z`,
/// `2025-01-31T01:00:00+01:00`), a date and time without offset (taken as UTC), or a date
/// (midnight UTC).
pub fn parse_instant(text: &str) -> Result<DateTime<Utc>, crate::QueryError> {
    let t = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(t) {
        return Ok(at.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(at) = chrono::NaiveDateTime::parse_from_str(t, format) {
            return Ok(at.and_utc());
        }
    }
    if let Ok(day) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(day.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    Err(crate::QueryError::Usage(format!(
        "'{text}' is not an instant: use 2025-01-31T00:00:00Z, 2025-01-31 12:00:00 (UTC) or 2025-01-31"
    )))
}

#[derive(Clone)]
struct Opened {
    provider: Arc<dyn TableProvider>,
    /// A mart's column order and partition columns; `None` for a history table.
    mart: Option<Arc<MartShape>>,
    read_at: Instant,
}

/// The schema provider over a lake's history tables and marts. Names are case-insensitive: a
/// name is lower-cased before lookup, quoted or not.
pub struct LakeSchema {
    location: LakeLocation,
    options: ReadOptions,
    /// `None`: the lake's default schema (Salesforce objects, marts, Tidemark's tables);
    /// `Some(name)`: the tables of the source `name` (`sources/<name>/`), the SQL schema `name`.
    source: Option<String>,
    /// History tables (lower-case object names).
    tables: RwLock<BTreeSet<String>>,
    /// Marts (lower-case model names).
    marts: RwLock<BTreeSet<String>>,
    /// Whether `_tidemark/push_runs` held a table when the lake was last listed.
    push_runs: RwLock<bool>,
    /// Keyed by [`Folder::key`].
    opened: Mutex<HashMap<String, Opened>>,
    /// Views and tables a session created itself (`CREATE VIEW`).
    session_tables: RwLock<HashMap<String, Arc<dyn TableProvider>>>,
    /// When the table list was last re-read for a name it lacked.
    relisted: Mutex<Option<Instant>>,
}

impl fmt::Debug for LakeSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LakeSchema").field("location", &self.location).field("options", &self.options).finish_non_exhaustive()
    }
}

impl LakeSchema {
    /// How old an unpinned table's log may be before a query re-reads it.
    pub const REFRESH_AFTER: Duration = Duration::from_secs(2);

    /// Lists the lake's tables and marts (no table log is read yet).
    pub async fn open(location: LakeLocation, options: ReadOptions) -> tidemark_lake::error::Result<LakeSchema> {
        LakeSchema::open_namespace(location, options, None).await
    }

    /// The tables of the source `source` (`sources/<source>/`): the same three relations per
    /// table, no marts.
    pub async fn open_source(
        location: LakeLocation,
        options: ReadOptions,
        source: &str,
    ) -> tidemark_lake::error::Result<LakeSchema> {
        LakeSchema::open_namespace(location, options, Some(source.to_ascii_lowercase())).await
    }

    async fn open_namespace(
        location: LakeLocation,
        options: ReadOptions,
        source: Option<String>,
    ) -> tidemark_lake::error::Result<LakeSchema> {
        let (tables, marts, push_runs) = match &source {
            None => (
                location.history_tables().await?,
                location.mart_tables().await?,
                internal::exists(&location, internal::PUSH_RUNS).await?,
            ),
            Some(name) => (location.source_tables(name).await?, Vec::new(), false),
        };
        Ok(LakeSchema {
            location,
            options,
            source,
            tables: RwLock::new(tables.into_iter().collect()),
            marts: RwLock::new(marts.into_iter().collect()),
            push_runs: RwLock::new(push_runs),
            opened: Mutex::new(HashMap::new()),
            session_tables: RwLock::new(HashMap::new()),
            relisted: Mutex::new(None),
        })
    }

    pub fn location(&self) -> &LakeLocation {
        &self.location
    }

    pub fn options(&self) -> &ReadOptions {
        &self.options
    }

    /// The lake's history tables (lower-case object names).
    pub fn lake_tables(&self) -> Vec<String> {
        self.tables.read().iter().cloned().collect()
    }

    /// The lake's marts (lower-case model names).
    pub fn mart_tables(&self) -> Vec<String> {
        self.marts.read().iter().cloned().collect()
    }

    fn is_table(&self, table: &str) -> bool {
        self.tables.read().contains(table)
    }

    fn is_mart(&self, mart: &str) -> bool {
        self.marts.read().contains(mart)
    }

    /// The object or mart, and its relation, a lower-case SQL name refers to (objects first:
    /// see [`Relation::resolve_in`]).
    pub fn resolve(&self, name: &str) -> Option<(String, Relation)> {
        Relation::resolve_in(name, |t| self.is_table(t), |m| self.is_mart(m))
    }

    /// Every relation of the lake, sorted by name: three per history table, and those of each
    /// mart whose names no object relation takes.
    pub fn relations(&self) -> Vec<TableListing> {
        let objects = self.lake_tables().into_iter().flat_map(|table| {
            Relation::ALL.map(|relation| TableListing { name: relation.sql_name(&table), table: table.clone(), relation })
        });
        let marts = self.mart_tables().into_iter().flat_map(|mart| {
            Relation::MART.map(|relation| TableListing { name: relation.sql_name(&mart), table: mart.clone(), relation })
        });
        let mut listing: Vec<TableListing> = objects
            .chain(marts)
            .filter(|l| self.resolve(&l.name).is_some_and(|(table, relation)| table == l.table && relation == l.relation))
            .collect();
        listing.sort_by(|a, b| a.name.cmp(&b.name));
        listing
    }

    /// Every name a query can use: the lake's relations, `push_runs` when it exists, plus the
    /// session's own.
    fn all_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.relations().into_iter().map(|l| l.name).collect();
        if *self.push_runs.read() && self.resolve(internal::PUSH_RUNS).is_none() {
            names.push(internal::PUSH_RUNS.to_owned());
        }
        names.extend(self.session_tables.read().keys().cloned());
        names.sort();
        names
    }

    /// The history table's provider, opened (or refreshed) as the read options say.
    pub async fn history_provider(&self, table: &str) -> Result<Arc<dyn TableProvider>> {
        Ok(self.opened(Folder::Objects, table).await?.provider)
    }

    /// Opens (or refreshes) the Delta table of `folder`/`table` as the read options say, so that
    /// errors show before planning (a table without the pinned version, an unreadable log).
    pub async fn open_table(&self, folder: Folder, table: &str) -> Result<()> {
        self.opened(folder, table).await.map(|_| ())
    }

    /// Where the Delta table of `folder`/`table` is, in this schema's namespace.
    fn url(&self, folder: Folder, table: &str) -> url::Url {
        match (&self.source, folder) {
            (Some(source), Folder::Objects) => self.location.source_table_url(source, table),
            _ => folder.url(&self.location, table),
        }
    }

    /// Two queries opening the same table at once may both read its log; the later one is kept.
    async fn opened(&self, folder: Folder, table: &str) -> Result<Opened> {
        let key = folder.key(table);
        let pinned = self.options.table_version.is_some();
        if let Some(o) = self.opened.lock().get(&key)
            && (pinned || o.read_at.elapsed() < Self::REFRESH_AFTER)
        {
            return Ok(o.clone());
        }
        let url = self.url(folder, table);
        let delta = self.load(table, &url).await?;
        let provider = delta.table_provider().await.map_err(|e| TableError::unreadable(table, &url, &e))?;
        let mart = match folder {
            Folder::Objects | Folder::Internal => None,
            Folder::Marts => Some(Arc::new(MartShape::of(&delta).map_err(|e| TableError::unreadable(table, &url, &e))?)),
        };
        let opened = Opened { provider, mart, read_at: Instant::now() };
        self.opened.lock().insert(key, opened.clone());
        Ok(opened)
    }

    /// A history table's provider opened earlier in this session, if any (for the synchronous
    /// `as_of`).
    pub(crate) fn ready_provider(&self, table: &str) -> Option<Arc<dyn TableProvider>> {
        self.opened.lock().get(&Folder::Objects.key(table)).map(|o| o.provider.clone())
    }

    /// Opens the table at `url` at the pinned lake time, if any. Errors name the table and where
    /// it is (see [`TableError`]).
    async fn load(&self, table: &str, url: &url::Url) -> Result<DeltaTable> {
        let unreadable = |detail: &dyn fmt::Display| TableError::unreadable(table, url, detail);
        let builder = || {
            DeltaTableBuilder::from_url(url.clone())
                .map(|b| b.with_storage_options(self.location.storage_options().clone()))
                .map_err(|e| unreadable(&e))
        };
        let Some(pinned) = self.options.table_version else {
            return Ok(builder()?.load().await.map_err(|e| unreadable(&e))?);
        };
        let loaded = match pinned {
            TableVersion::Version(v) => builder()?.with_version(v).load().await,
            TableVersion::Timestamp(t) => builder()?.with_timestamp(t).load().await,
        };
        let not_at = |reason: String| TableError::NotAt { table: table.to_owned(), version: pinned, reason };
        match (loaded, pinned) {
            (Ok(delta), TableVersion::Timestamp(t)) => {
                // Delta reads a time before the first commit as the first commit.
                let first = delta.version().and_then(|v| delta.snapshot().ok()?.version_timestamp(v));
                match first.and_then(DateTime::from_timestamp_millis) {
                    Some(committed) if committed > t => {
                        Err(not_at(format!("its first commit is at {}", committed.to_rfc3339_opts(SecondsFormat::Secs, true)))
                            .into())
                    }
                    _ => Ok(delta),
                }
            }
            (Ok(delta), TableVersion::Version(_)) => Ok(delta),
            (Err(e), TableVersion::Version(v)) => {
                // A version beyond the table's last is the user's to change; anything else is the
                // log's fault.
                let latest = builder()?.build().map_err(|e| unreadable(&e))?.get_latest_version().await;
                match latest {
                    Ok(last) if v > last => Err(not_at(format!("its last version is {last}")).into()),
                    _ => Err(unreadable(&e).into()),
                }
            }
            (Err(e), TableVersion::Timestamp(_)) => Err(unreadable(&e).into()),
        }
    }

    /// The relation named `name` (already lower case).
    async fn relation(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let Some((table, relation)) = self.resolve(name) else { return self.internal(name).await };
        if relation.folder() == Folder::Marts {
            let opened = self.opened(Folder::Marts, &table).await?;
            let shape = opened.mart.ok_or_else(|| DataFusionError::Internal(format!("mart {table} opened without a shape")))?;
            return mart_relation(relation, &table, opened.provider, &shape).map(Some);
        }
        let provider = self.history_provider(&table).await?;
        let as_of = if relation == Relation::Live { self.options.as_of } else { None };
        let definition = view_definition(relation, &table, self.url(Folder::Objects, &table), provider.schema(), as_of);
        let view = ViewTable::new(plan(relation, &table, provider, as_of)?, definition);
        Ok(Some(match relation {
            Relation::History => Arc::new(TableView(view)),
            _ => Arc::new(view),
        }))
    }

    /// The internal table named `name`, as stored; `None` when no such table was written.
    async fn internal(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let Some(table) = internal::internal_table(name).filter(|_| self.source.is_none()) else { return Ok(None) };
        let known = self.opened.lock().contains_key(&Folder::Internal.key(&table));
        if !known {
            let external = |e| DataFusionError::External(Box::new(e));
            if !internal::exists(&self.location, &table).await.map_err(external)? {
                return Ok(None);
            }
        }
        Ok(Some(self.opened(Folder::Internal, &table).await?.provider))
    }

    /// Re-lists the lake's tables and marts (a sync or a first model load may have added one
    /// since the session opened).
    async fn relist(&self) -> Result<()> {
        let external = |e| DataFusionError::External(Box::new(e));
        if let Some(source) = &self.source {
            *self.tables.write() = self.location.source_tables(source).await.map_err(external)?.into_iter().collect();
            return Ok(());
        }
        let tables = self.location.history_tables().await.map_err(external)?;
        let marts = self.location.mart_tables().await.map_err(external)?;
        let push_runs = internal::exists(&self.location, internal::PUSH_RUNS).await.map_err(external)?;
        *self.tables.write() = tables.into_iter().collect();
        *self.marts.write() = marts.into_iter().collect();
        *self.push_runs.write() = push_runs;
        Ok(())
    }

    /// The error for a name that is no table, with the closest names.
    pub fn unknown_table(&self, name: &str) -> DataFusionError {
        let close = close_matches(name, &self.all_names());
        let hint = match close.as_slice() {
            [] => String::new(),
            names => format!("; did you mean {}?", names.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ")),
        };
        DataFusionError::Plan(format!("table '{name}' not found in the lake{hint} (\\d lists the tables)"))
    }
}

/// Names within a small edit distance of `name` (or containing it), best first, at most three.
pub fn close_matches(name: &str, candidates: &[String]) -> Vec<String> {
    let limit = (name.len() / 3).max(2);
    let mut scored: Vec<(usize, &String)> = candidates
        .iter()
        .map(|c| (levenshtein(name, c), c))
        .filter(|(d, c)| *d <= limit || (name.len() >= 3 && c.contains(name)))
        .collect();
    scored.sort();
    scored.into_iter().take(3).map(|(_, c)| c.clone()).collect()
}

#[async_trait]
impl SchemaProvider for LakeSchema {
    fn table_names(&self) -> Vec<String> {
        self.all_names()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let name = name.to_lowercase();
        if let Some(t) = self.session_tables.read().get(&name) {
            return Ok(Some(t.clone()));
        }
        if let Some(found) = self.relation(&name).await? {
            return Ok(Some(found));
        }
        // Not an error yet: DataFusion also looks up names that are table functions (`as_of`).
        // `QuerySession` turns a planning failure on an unknown name into a list of close ones.
        if self.relisted.lock().is_none_or(|at| at.elapsed() >= Self::REFRESH_AFTER) {
            self.relist().await?;
            *self.relisted.lock() = Some(Instant::now());
            return self.relation(&name).await;
        }
        Ok(None)
    }

    fn register_table(&self, name: String, table: Arc<dyn TableProvider>) -> Result<Option<Arc<dyn TableProvider>>> {
        let name = name.to_lowercase();
        if let Some((_, relation)) = self.resolve(&name) {
            let what = if relation.folder() == Folder::Marts { "a mart of the lake" } else { "a lake table" };
            return Err(DataFusionError::Plan(format!("'{name}' is {what}; choose another name")));
        }
        Ok(self.session_tables.write().insert(name, table))
    }

    fn deregister_table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        Ok(self.session_tables.write().remove(&name.to_lowercase()))
    }

    fn table_exist(&self, name: &str) -> bool {
        let name = name.to_lowercase();
        let internal = || {
            internal::internal_table(&name).is_some_and(|table| {
                (table == internal::PUSH_RUNS && *self.push_runs.read())
                    || self.opened.lock().contains_key(&Folder::Internal.key(&table))
            })
        };
        self.session_tables.read().contains_key(&name) || self.resolve(&name).is_some() || internal()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_parse_in_three_shapes() {
        assert_eq!(parse_instant("2025-01-31T01:00:00+01:00").unwrap().to_rfc3339(), "2025-01-31T00:00:00+00:00");
        assert_eq!(parse_instant("2025-01-31 12:30:00").unwrap().to_rfc3339(), "2025-01-31T12:30:00+00:00");
        assert_eq!(parse_instant("2025-01-31").unwrap().to_rfc3339(), "2025-01-31T00:00:00+00:00");
        assert!(parse_instant("last tuesday").unwrap_err().to_string().contains("last tuesday"));
    }

    #[test]
    fn close_matches_rank_by_distance() {
        let names: Vec<String> =
            ["account", "account_history", "account_scd2", "contact", "opportunity"].iter().map(|s| s.to_string()).collect();
        assert_eq!(close_matches("acount", &names), ["account"]);
        assert_eq!(close_matches("account_histroy", &names), ["account_history"]);
        assert_eq!(close_matches("opp", &names), ["opportunity"]);
        assert_eq!(close_matches("op", &names), Vec::<String>::new());
        assert!(close_matches("zzzzzz", &names).is_empty());
    }
}
