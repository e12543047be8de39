//! [`PollingSource`]: a database where logical replication is not allowed, read by a
//! modification-time column (`mode: poll`), as exact as the Salesforce sync reads
//! `SystemModstamp`.
//!
//! Each run reads, per table, in one `REPEATABLE READ` snapshot:
//! - the rows modified at or after the newest modification time the lake holds (at most the
//!   last run's instant, so a row stamped in the future does not hide later ones), minus the
//!   overlap (every row on the first run). `_version_at` is the row's modification time.
//!   Rows re-read in the overlap whose content equals the lake's current version of the record
//!   are dropped. A row saved twice with one modification time has different content and is
//!   kept; its `_lsn` (the run's instant) orders it after the first.
//! - with `deletes` (the default), the table's keys. A record live in the lake whose key is gone
//!   gets a delete version (origin `reconcile`), dated when the run found it missing.
//!
//! What polling cannot see: versions overwritten between two runs (only the state at each run
//! is kept), and a row whose modification time is older than the overlap when it commits (a
//! transaction open longer than the overlap). Logical replication has neither limit.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use tidemark_core::governance::Governance;
use tidemark_core::sources::{PollConfig, PostgresConfig};
use tidemark_core::{Clock, SystemClock};
use tidemark_lake::arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use tidemark_lake::arrow::compute::filter_record_batch;
use tidemark_lake::columns::{DELETED, KEY, LSN, VERSION_AT};
use tidemark_lake::content::content_digests;
use tidemark_lake::datafusion::prelude::SessionContext;
use tidemark_lake::policy::{ColumnPolicies, field_facts};
use tidemark_lake::read::{live_sql, quote};
use tidemark_lake::source::{CaptureKind, Change, Position, Source, SourceError, Versions};
use tidemark_lake::{HistoryTable, LakeLocation};
use tokio_postgres::Client;

use crate::catalog::{self, PgTable, quote_ident};
use crate::copy::CopyReader;
use crate::error::PgError;
use crate::rows::{BATCH_ROWS, Cell, RowBuffer};
use crate::types::PgType;

/// A Postgres database (or a Heroku Connect mirror) read by polling.
pub struct PollingSource {
    name: String,
    config: PostgresConfig,
    poll: PollConfig,
    mirror: bool,
    patterns: Vec<String>,
    lake: LakeLocation,
    clock: Arc<dyn Clock>,
    held: HashMap<String, Position>,
    /// Tables still to read this run, with their modification-time column.
    tables: VecDeque<(Arc<PgTable>, String)>,
    out: VecDeque<Change>,
    client: Option<Client>,
    /// The run's instant (µs): the `_lsn` of its versions and its commits' position.
    run_at: i64,
    /// The lake applies these policies to what it writes: re-read rows are compared with it
    /// under them.
    governance: Option<Arc<Governance>>,
}

impl PollingSource {
    /// `lake`: where the source's tables are (the run compares what it reads with them).
    pub fn new(name: impl Into<String>, config: PostgresConfig, lake: LakeLocation) -> PollingSource {
        let patterns = if config.tables.is_empty() { vec!["public.*".to_owned()] } else { config.tables.clone() };
        PollingSource {
            name: name.into(),
            poll: config.poll.clone().unwrap_or_default(),
            config,
            mirror: false,
            patterns,
            lake,
            clock: Arc::new(SystemClock),
            held: HashMap::new(),
            tables: VecDeque::new(),
            out: VecDeque::new(),
            client: None,
            run_at: 0,
            governance: None,
        }
    }

    /// The field policies the lake applies to this source's tables (see
    /// `Ingest::with_governance`): re-reads are recognised under them.
    pub fn with_governance(mut self, governance: Arc<Governance>) -> PollingSource {
        self.governance = Some(governance);
        self
    }

    /// A Heroku Connect mirror (see [`crate::PostgresSource::heroku_connect`]), polled by
    /// `systemmodstamp` unless configured otherwise. Its tables need no replica identity.
    pub fn heroku_connect(name: impl Into<String>, config: PostgresConfig, lake: LakeLocation) -> PollingSource {
        let patterns = if config.tables.is_empty() { vec!["salesforce.*".to_owned()] } else { config.tables.clone() };
        PollingSource { mirror: true, patterns, ..PollingSource::new(name, config, lake) }
    }

    pub fn with_tables(mut self, patterns: Vec<String>) -> PollingSource {
        self.patterns = patterns;
        self
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> PollingSource {
        self.clock = clock;
        self
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("started")
    }

    /// The modification-time column of `schema.table`.
    fn column_of(&self, table: &PgTable) -> String {
        let qualified = format!("{}.{}", table.schema, table.name);
        self.poll
            .columns
            .get(&qualified)
            .or(self.poll.column.as_ref())
            .cloned()
            .unwrap_or_else(|| if self.mirror { "systemmodstamp".to_owned() } else { "updated_at".to_owned() })
    }

    async fn plan(&mut self, held: &HashMap<String, Position>) -> Result<(), PgError> {
        let client = catalog::connect(&self.config).await?;
        // One snapshot for every table's rows and keys.
        client
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .map_err(PgError::query("starting the snapshot"))?;
        let found = catalog::matching_tables(&client, &self.patterns, self.mirror).await?;
        if found.is_empty() {
            return Err(PgError::Setup(format!("no table matches {}", self.patterns.join(", "))));
        }
        let now: i64 = client
            .query_one("SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint", &[])
            .await
            .map_err(PgError::query("clock_timestamp()"))?
            .get(0);
        // Positions grow with every run, whatever the clocks do.
        self.run_at = held.values().map(|p| p + 1).chain([now, self.clock.now().timestamp_micros()]).max().unwrap_or(now);
        self.client = Some(client);
        for (schema, name, oid, identity) in found {
            // Polling needs no replica identity: a mirror's deletes are found by their sfid.
            let identity = if self.mirror { 'f' } else { identity };
            let table = catalog::describe(self.client(), &schema, &name, oid, identity, self.mirror).await?;
            let column = self.column_of(&table);
            match table.columns.iter().position(|(c, _)| *c == column).map(|i| &table.columns[i].1) {
                Some(PgType::Timestamp) => {}
                Some(_) => {
                    return Err(PgError::Setup(format!(
                        "table {schema}.{name}: the modification-time column {column} is not a timestamp"
                    )));
                }
                None => {
                    return Err(PgError::Setup(format!(
                        "table {schema}.{name} has no column {column} to poll by (set poll.columns.{schema}.{name})"
                    )));
                }
            }
            self.out.push_back(Change::Table(spec_of(&table, &column)));
            self.tables.push_back((Arc::new(table), column));
        }
        self.held = held.clone();
        Ok(())
    }

    /// Reads one table into `out`: new and changed rows, then deletes, then its commit.
    async fn read_table(&mut self, table: Arc<PgTable>, column: String) -> Result<(), PgError> {
        let lake_table = HistoryTable::open_source(&self.lake, &self.name, &table.lake_name).await.map_err(lake)?;
        let lake_table = lake_table.filter(|_| self.held.contains_key(&table.lake_name));
        // One read of the lake table serves the bookmark, the re-read check and the deletes.
        let lake_table = match lake_table {
            Some(t) => {
                let ctx = t.session().await.map_err(lake)?;
                Some((t, ctx))
            }
            None => None,
        };
        // A stamp in the future (a clock set wrong) must not stop later runs from reading: the
        // bookmark is at most the last run's instant.
        let since = match &lake_table {
            Some((t, ctx)) => {
                newest_modification(t, ctx).await?.map(|m| self.held.get(&table.lake_name).map_or(m, |&run| m.min(run)))
            }
            None => None,
        };
        let kind = if lake_table.is_some() { CaptureKind::Change } else { CaptureKind::Copy };
        let columns = table.source_columns.iter().map(|c| quote_ident(c)).collect::<Vec<_>>().join(", ");
        let modified =
            quote_ident(table.source_columns[table.columns.iter().position(|(c, _)| *c == column).expect("checked")].as_str());
        let mut conditions: Vec<String> = table.copy_filter.iter().map(|f| f.to_string()).collect();
        let overlap = self.poll.overlap.as_micros() as i64;
        if let Some(since) = since {
            conditions.push(format!("{modified} >= to_timestamp({}::float8 / 1000000)", since - overlap));
        }
        let filter = if conditions.is_empty() { String::new() } else { format!(" WHERE {}", conditions.join(" AND ")) };
        // The modification time as µs since the epoch (a plain timestamp counts as UTC), last.
        let sql = format!(
            "COPY (SELECT {columns}, (extract(epoch FROM {modified}) * 1000000)::bigint FROM ONLY {}{filter} ORDER BY {modified}) TO STDOUT",
            table.qualified()
        );
        let mut reader = CopyReader::start(self.client(), &sql, &table.lake_name).await?;
        let mut buffer = RowBuffer::new(table.clone());
        let mut fields = Vec::with_capacity(table.columns.len() + 1);
        let mut batches = Vec::new();
        while reader.next_row(&mut fields).await? {
            let at = match fields.pop().flatten() {
                Some(micros) => micros.parse::<i64>().map_err(|_| PgError::Setup("unreadable modification time".into()))?,
                // A row never stamped: dated by this run.
                None => self.run_at,
            };
            buffer.push(fields.iter().map(|f| Cell::Value(f.as_deref())), at, false, self.run_at)?;
            if buffer.len() >= BATCH_ROWS {
                batches.extend(buffer.take(kind));
            }
        }
        batches.extend(buffer.take(kind));
        let mut read = 0;
        if let Some((t, ctx)) = &lake_table {
            let policies = match &self.governance {
                Some(g) => {
                    let spec = spec_of(&table, &column);
                    let name = format!("{}.{}", self.name.to_ascii_lowercase(), table.lake_name);
                    ColumnPolicies::resolve(g, &name, &field_facts(&spec.fields, &spec.key))
                        .map_err(|e| PgError::Setup(e.to_string()))?
                }
                None => ColumnPolicies::none(),
            };
            batches = drop_rereads(t, ctx, &table, &policies, batches).await?;
        }
        for v in batches.into_iter().filter(|v| v.batch.num_rows() > 0) {
            read += v.batch.num_rows();
            self.out.push_back(Change::Versions(v));
        }
        if let (Some((t, ctx)), true) = (&lake_table, self.poll.deletes) {
            if let Some(deletes) = self.deletes(t, ctx, &table).await? {
                read += deletes.batch.num_rows();
                self.out.push_back(Change::Versions(deletes));
            }
        }
        if read > 0 || lake_table.is_none() {
            self.out.push_back(Change::Commit { position: self.run_at, table: Some(table.lake_name.clone()) });
        }
        tracing::info!(table = table.lake_name, versions = read, "table polled");
        Ok(())
    }

    /// Delete versions for the records live in the lake whose keys the table no longer has.
    async fn deletes(
        &self,
        lake_table: &HistoryTable,
        ctx: &SessionContext,
        table: &PgTable,
    ) -> Result<Option<Versions>, PgError> {
        let positions: Vec<usize> =
            table.key.iter().map(|k| table.columns.iter().position(|(c, _)| c == k).expect("key columns are columns")).collect();
        let key_table = Arc::new(PgTable {
            columns: positions.iter().map(|&i| table.columns[i].clone()).collect(),
            source_columns: positions.iter().map(|&i| table.source_columns[i].clone()).collect(),
            ..table.clone()
        });
        let keys = key_table.source_columns.iter().map(|c| quote_ident(c)).collect::<Vec<_>>().join(", ");
        let filter = table.copy_filter.map(|f| format!(" WHERE {f}")).unwrap_or_default();
        let sql = format!("COPY (SELECT {keys} FROM ONLY {}{filter}) TO STDOUT", table.qualified());
        let mut reader = CopyReader::start(self.client(), &sql, &table.lake_name).await?;
        let mut buffer = RowBuffer::new(key_table);
        let mut fields = Vec::new();
        let mut present: HashSet<String> = HashSet::new();
        loop {
            let more = reader.next_row(&mut fields).await?;
            if more {
                buffer.push(fields.iter().map(|f| Cell::Value(f.as_deref())), 0, false, 0)?;
            }
            if buffer.len() >= BATCH_ROWS || (!more && buffer.len() > 0) {
                let v = buffer.take(CaptureKind::Change).expect("rows");
                let texts = tidemark_lake::ingest::record_keys(&v.batch, &table.key).map_err(PgError::Setup)?;
                let texts = tidemark_lake::read::utf8(&texts).map_err(lake)?;
                present.extend((0..texts.len()).filter(|&r| texts.is_valid(r)).map(|r| texts.value(r).to_owned()));
            }
            if !more {
                break;
            }
        }
        let wanted: Vec<String> = std::iter::once(KEY.to_owned()).chain(table.key.iter().cloned()).collect();
        let live = lake_table.collect(ctx, &live_sql(&wanted)).await.map_err(lake)?;
        let mut gone = Vec::new();
        for b in live {
            let keys = tidemark_lake::read::utf8(b.column(0)).map_err(lake)?;
            let mask: BooleanArray =
                (0..b.num_rows()).map(|r| Some(keys.is_valid(r) && !present.contains(keys.value(r)))).collect();
            let b = filter_record_batch(&b, &mask).map_err(|e| PgError::Setup(e.to_string()))?;
            if b.num_rows() > 0 {
                gone.push(b.project(&(1..b.num_columns()).collect::<Vec<_>>()).map_err(|e| PgError::Setup(e.to_string()))?);
            }
        }
        if gone.is_empty() {
            return Ok(None);
        }
        let schema = gone[0].schema();
        let keys = tidemark_lake::arrow::compute::concat_batches(&schema, &gone).map_err(|e| PgError::Setup(e.to_string()))?;
        let n = keys.num_rows();
        let mut fields = vec![
            tidemark_lake::arrow::datatypes::Field::new(VERSION_AT, tidemark_lake::columns::timestamp_type(), false),
            tidemark_lake::arrow::datatypes::Field::new(DELETED, tidemark_lake::arrow::datatypes::DataType::Boolean, false),
            tidemark_lake::arrow::datatypes::Field::new(LSN, tidemark_lake::arrow::datatypes::DataType::Int64, true),
        ];
        fields.extend(schema.fields().iter().map(|f| f.as_ref().clone()));
        let mut columns: Vec<Arc<dyn Array>> = vec![
            Arc::new(tidemark_lake::arrow::array::TimestampMicrosecondArray::from(vec![self.run_at; n]).with_timezone("UTC")),
            Arc::new(BooleanArray::from(vec![true; n])),
            Arc::new(tidemark_lake::arrow::array::Int64Array::from(vec![self.run_at; n])),
        ];
        columns.extend(keys.columns().iter().cloned());
        let batch = RecordBatch::try_new(Arc::new(tidemark_lake::arrow::datatypes::Schema::new(fields)), columns)
            .map_err(|e| PgError::Setup(e.to_string()))?;
        Ok(Some(Versions {
            table: table.lake_name.clone(),
            kind: CaptureKind::Reconcile,
            batch,
            unchanged: Vec::new(),
            continues: Vec::new(),
        }))
    }
}

fn lake(e: tidemark_lake::LakeError) -> PgError {
    PgError::Setup(format!("reading the lake: {e}"))
}

/// The newest modification time among the table's read versions (deletes found by key
/// comparison are dated by their run, not by a modification time).
async fn newest_modification(t: &HistoryTable, ctx: &SessionContext) -> Result<Option<i64>, PgError> {
    let sql = "SELECT CAST(max(_version_at) AS BIGINT) FROM history WHERE _origin <> 'reconcile'";
    let batches = t.collect(ctx, sql).await.map_err(lake)?;
    let Some(b) = batches.first().filter(|b| b.num_rows() > 0) else { return Ok(None) };
    let c = tidemark_lake::arrow::compute::cast(b.column(0), &tidemark_lake::arrow::datatypes::DataType::Int64)
        .map_err(|e| PgError::Setup(e.to_string()))?;
    let c = c.as_primitive::<tidemark_lake::arrow::datatypes::Int64Type>();
    Ok(c.is_valid(0).then(|| c.value(0)))
}

/// Drops the rows read again that the lake already holds: a row whose content equals its
/// record's current version.
/// The table's spec with its modification-time column protected from field policies: the
/// bookmark is read back from it.
fn spec_of(table: &PgTable, column: &str) -> tidemark_lake::source::TableSpec {
    let mut spec = table.spec();
    for field in spec.fields.iter_mut().filter(|f| f.name() == column) {
        let mut metadata = field.metadata().clone();
        metadata.insert(tidemark_lake::source::PROTECTED.to_owned(), "true".to_owned());
        *field = field.clone().with_metadata(metadata);
    }
    spec
}

async fn drop_rereads(
    t: &HistoryTable,
    ctx: &SessionContext,
    table: &PgTable,
    policies: &ColumnPolicies,
    batches: Vec<Versions>,
) -> Result<Vec<Versions>, PgError> {
    let fields: Vec<String> = table.columns.iter().map(|(c, _)| c.clone()).collect();
    let mut candidates: Vec<String> = Vec::new();
    let mut keyed = Vec::new();
    for v in batches {
        let keys = tidemark_lake::ingest::record_keys(&v.batch, &table.key).map_err(PgError::Setup)?;
        let keys = tidemark_lake::read::utf8(&keys).map_err(lake)?;
        candidates.extend((0..keys.len()).filter(|&r| keys.is_valid(r)).map(|r| keys.value(r).to_owned()));
        keyed.push((v, keys));
    }
    let mut current: HashMap<String, u64> = HashMap::new();
    if !candidates.is_empty() {
        let lake_columns: HashSet<String> = t.column_names().map_err(lake)?.into_iter().collect();
        let wanted: Vec<String> =
            std::iter::once(KEY.to_owned()).chain(fields.iter().filter(|f| lake_columns.contains(*f)).cloned()).collect();
        candidates.sort();
        candidates.dedup();
        for chunk in candidates.chunks(1000) {
            let list = chunk.iter().map(|k| format!("'{}'", k.replace('\'', "''"))).collect::<Vec<_>>().join(", ");
            let sql = format!("{} WHERE {} IN ({list})", live_sql(&wanted), quote(KEY));
            for b in t.collect(ctx, &sql).await.map_err(lake)? {
                let digests = content_digests(&b, &fields).map_err(lake)?;
                let keys = tidemark_lake::read::utf8(b.column(0)).map_err(lake)?;
                for (r, d) in digests.into_iter().enumerate() {
                    current.insert(keys.value(r).to_owned(), d);
                }
            }
        }
    }
    let mut out = Vec::new();
    for (mut v, keys) in keyed {
        // The lake holds the values under their policies: compare those.
        let governed = policies.apply(&v.batch).map_err(|e| PgError::Setup(e.to_string()))?;
        let digests = content_digests(&governed, &fields).map_err(lake)?;
        let keep: BooleanArray =
            (0..keys.len()).map(|r| Some(!(keys.is_valid(r) && current.get(keys.value(r)) == Some(&digests[r])))).collect();
        v.batch = filter_record_batch(&v.batch, &keep).map_err(|e| PgError::Setup(e.to_string()))?;
        out.push(v);
    }
    Ok(out)
}

#[async_trait::async_trait]
impl Source for PollingSource {
    fn name(&self) -> &str {
        &self.name
    }

    async fn start(&mut self, held: &HashMap<String, Position>) -> Result<(), SourceError> {
        self.plan(held).await?;
        Ok(())
    }

    async fn next(&mut self) -> Result<Option<Change>, SourceError> {
        loop {
            if let Some(change) = self.out.pop_front() {
                return Ok(Some(change));
            }
            let Some((table, column)) = self.tables.pop_front() else {
                if let Some(client) = self.client.take() {
                    let _ = client.batch_execute("COMMIT").await;
                }
                return Ok(None);
            };
            self.read_table(table, column).await?;
        }
    }

    async fn acknowledge(&mut self, _position: Position) -> Result<(), SourceError> {
        // Nothing is retained on the server: the lake's newest modification time is the bookmark.
        Ok(())
    }
}
