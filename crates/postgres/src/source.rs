//! [`PostgresSource`]: a database's tables through a publication and a logical replication
//! slot — a consistent copy of tables the lake lacks, then every committed change.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use pgwire_replication::{Lsn, ReplicationClient, ReplicationConfig, ReplicationEvent, TlsConfig};
use tidemark_lake::source::{CaptureKind, Change, Position, Source, SourceError};
use tokio::sync::mpsc;

use crate::catalog::{self, PgTable, SESSION_OPTIONS};
use crate::config::{PostgresConfig, SslMode};
use crate::copy::{CopyJob, copy_tables, snapshot_connection};
use crate::error::PgError;
use crate::pgoutput::{self, Datum, Message, OldTuple, Tuple};
use crate::rows::{BATCH_ROWS, Cell, RowBuffer};

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// Reads one Postgres database into the lake (see the crate README for the guarantees).
pub struct PostgresSource {
    name: String,
    config: PostgresConfig,
    slot: String,
    publication: String,
    control: Option<tokio_postgres::Client>,
    tables: HashMap<u32, Arc<PgTable>>,
    held: HashMap<String, Position>,
    /// Steps ready to hand out.
    queue: VecDeque<Change>,
    copies: Option<mpsc::Receiver<Result<Change, SourceError>>>,
    /// Replication sessions kept open until the copies are done (their snapshots).
    snapshot_sessions: Vec<ReplicationClient>,
    stream: Option<ReplicationClient>,
    /// The marker whose arrival ends the run (the stream is caught up).
    marker: Option<(String, u64)>,
    txn: Option<Transaction>,
    buffers: HashMap<u32, RowBuffer>,
    finished: bool,
    /// The highest position acknowledged.
    acked: u64,
    /// A Heroku Connect mirror (see [`PostgresSource::heroku_connect`]).
    mirror: bool,
    /// The tables' `schema.table` globs.
    patterns: Vec<String>,
    /// Per relation, where each lake column is in its tuples (from its relation message).
    positions: HashMap<u32, Vec<Option<usize>>>,
    /// Follow mode: stream until this says stop, instead of until caught up.
    follow: Option<Follow>,
}

/// Continuous streaming ([`PostgresSource::following`]).
struct Follow {
    stop: tokio::sync::watch::Receiver<bool>,
    /// Longest time changes wait before the lake commits them.
    interval: Duration,
    last_flush: tokio::time::Instant,
}

/// The transaction being decoded.
struct Transaction {
    commit_lsn: u64,
    at_micros: i64,
}

impl PostgresSource {
    pub fn new(name: impl Into<String>, config: PostgresConfig) -> PostgresSource {
        let name = name.into();
        let patterns = if config.tables.is_empty() { vec!["public.*".to_owned()] } else { config.tables.clone() };
        PostgresSource {
            slot: config.slot_name(&name),
            publication: config.publication_name(&name),
            name,
            config,
            control: None,
            tables: HashMap::new(),
            held: HashMap::new(),
            queue: VecDeque::new(),
            copies: None,
            snapshot_sessions: Vec::new(),
            stream: None,
            marker: None,
            txn: None,
            buffers: HashMap::new(),
            finished: false,
            acked: 0,
            mirror: false,
            patterns,
            positions: HashMap::new(),
            follow: None,
        }
    }

    /// Streams until `stop` turns true (instead of ending once caught up), asking the lake to
    /// commit at the first transaction end after `interval` (and whenever the stream is idle),
    /// so a change reaches the lake about `interval` after its commit. A stop takes effect
    /// between transactions: the run ends with every transaction it read committed.
    pub fn following(mut self, stop: tokio::sync::watch::Receiver<bool>, interval: Duration) -> PostgresSource {
        self.follow = Some(Follow { stop, interval, last_flush: tokio::time::Instant::now() });
        self
    }

    /// A Heroku Connect mirror: tables of schema `salesforce` (unless `tables` says otherwise)
    /// under their object names, keyed by `sfid` stored as `Id`, without Heroku Connect's
    /// bookkeeping columns (`id`, `_hc_lastop`, `_hc_err`) and tables (`_trigger_log`, …); rows
    /// without an `sfid` yet are left out until they get one. Its tables need
    /// `REPLICA IDENTITY FULL`, so that a delete carries the `sfid`.
    pub fn heroku_connect(name: impl Into<String>, config: PostgresConfig) -> PostgresSource {
        let patterns = if config.tables.is_empty() { vec!["salesforce.*".to_owned()] } else { config.tables.clone() };
        PostgresSource { mirror: true, patterns, ..PostgresSource::new(name, config) }
    }

    /// The tables' `schema.table` globs (overrides the configuration's).
    pub fn with_tables(mut self, patterns: Vec<String>) -> PostgresSource {
        self.patterns = patterns;
        self
    }

    fn replication_config(&self, slot: &str) -> ReplicationConfig {
        let c = &self.config;
        let tls = match c.sslmode {
            SslMode::Disable => TlsConfig::disabled(),
            SslMode::Require => TlsConfig::require(),
            SslMode::VerifyFull => TlsConfig::verify_full(c.ca_file.clone()),
        };
        ReplicationConfig::new(c.host.clone(), c.user.clone(), c.password(), c.database.clone(), slot, self.publication.as_str())
            .with_port(c.port)
            .with_tls(tls)
            .with_options(SESSION_OPTIONS)
            .with_application_name("tidemark")
            .with_status_interval(Duration::from_millis(500))
            .with_start_lsn(Lsn::from_u64(0))
    }

    fn control(&self) -> &tokio_postgres::Client {
        self.control.as_ref().expect("started")
    }

    async fn prepare(&mut self, held: &HashMap<String, Position>) -> Result<(), PgError> {
        self.config.validate(&self.name).map_err(|(field, why)| PgError::Setup(format!("{field}: {why}")))?;
        let control = catalog::connect(&self.config).await?;
        catalog::check_server(&control).await?;
        let mut tables = Vec::new();
        for (schema, name, oid, identity) in catalog::matching_tables(&control, &self.patterns, self.mirror).await? {
            tables.push(catalog::describe(&control, &schema, &name, oid, identity, self.mirror).await?);
        }
        if tables.is_empty() {
            return Err(PgError::Setup(format!("tables: no table matches {}", self.patterns.join(", "))));
        }
        let mut names: HashMap<&str, &PgTable> = HashMap::new();
        for t in &tables {
            if let Some(other) = names.insert(&t.lake_name, t) {
                return Err(PgError::Setup(format!(
                    "tables {}.{} and {}.{} would share the lake table {}",
                    other.schema, other.name, t.schema, t.name, t.lake_name
                )));
            }
        }
        catalog::ensure_publication(&control, &self.publication, &tables).await?;
        for t in &tables {
            self.queue.push_back(Change::Table(t.spec()));
        }
        let to_copy: Vec<Arc<PgTable>> =
            tables.iter().filter(|t| !held.contains_key(&t.lake_name)).cloned().map(Arc::new).collect();
        self.tables = tables.into_iter().map(|t| (t.oid, Arc::new(t))).collect();
        self.held = held.clone();
        let slot_exists = catalog::slot_position(&control, &self.slot).await?.is_some();
        if !slot_exists && !held.is_empty() {
            // The changes between what the lake holds and a new slot's start are gone with the
            // old slot: streaming on would leave a silent gap.
            let position = held.values().max().copied().unwrap_or_default();
            return Err(PgError::Setup(format!(
                "the replication slot {} no longer exists, and the lake holds this source up to {}: the changes after it \
                 are lost. Remove the lake's sources/{}/ folder (the next run copies every table again) or restore the slot",
                self.slot,
                crate::format_lsn(position as u64),
                self.name
            )));
        }
        self.control = Some(control);
        if !slot_exists {
            // A new slot's snapshot serves the copy; changes start right after it.
            let at = self.copy_instant().await?;
            let (session, snapshot, position) = self.create_slot(&self.slot.clone(), false).await?;
            self.snapshot_sessions.push(session);
            if !to_copy.is_empty() {
                self.start_copy(at, snapshot, position, to_copy).await?;
            }
        } else if !to_copy.is_empty() {
            // Tables new to the lake: copied from a temporary slot's snapshot; the permanent slot's
            // changes for them up to that point are skipped by position.
            let at = self.copy_instant().await?;
            let (session, snapshot, position) = self.create_slot(&format!("{}_copy", self.slot), true).await?;
            self.snapshot_sessions.push(session);
            for t in &to_copy {
                self.held.insert(t.lake_name.clone(), position);
            }
            self.start_copy(at, snapshot, position, to_copy).await?;
        }
        Ok(())
    }

    /// Creates a slot on a session kept open, returning it with the snapshot name and the
    /// consistent point.
    async fn create_slot(&self, slot: &str, temporary: bool) -> Result<(ReplicationClient, String, i64), PgError> {
        let mut session = ReplicationClient::connect_gated(self.replication_config(slot)).await?;
        let temporary = if temporary { " TEMPORARY" } else { "" };
        let rows = session
            .simple_query(&format!("CREATE_REPLICATION_SLOT {slot}{temporary} LOGICAL pgoutput (SNAPSHOT 'export')"))
            .await?;
        let text = |i: usize| {
            rows.first()
                .and_then(|r| r.get(i))
                .and_then(|v| v.as_ref())
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .ok_or_else(|| PgError::Setup("CREATE_REPLICATION_SLOT returned no row".into()))
        };
        let consistent = crate::parse_lsn(&text(1)?).ok_or_else(|| PgError::Setup("unreadable consistent point".into()))?;
        tracing::info!(slot, consistent_point = %Lsn::from_u64(consistent), "replication slot created");
        Ok((session, text(2)?, consistent as i64))
    }

    /// The server's clock, read before a slot is created: the instant of the copy from its
    /// snapshot. Every transaction the slot streams commits later (creating the slot waits for
    /// the transactions already running), so a copied row never outranks a later change of it.
    async fn copy_instant(&self) -> Result<i64, PgError> {
        let at: i64 = self
            .control()
            .query_one("SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint", &[])
            .await
            .map_err(PgError::query("clock_timestamp()"))?
            .get(0);
        Ok(at)
    }

    async fn start_copy(&mut self, at: i64, snapshot: String, position: i64, tables: Vec<Arc<PgTable>>) -> Result<(), PgError> {
        let job = CopyJob { config: self.config.clone(), snapshot, at_micros: at, position };
        let workers = self.config.copy_parallelism.min(tables.len()).max(1);
        // Every worker imports the snapshot before anything else runs on the slot's session.
        let mut clients = Vec::new();
        for _ in 0..workers {
            clients.push(snapshot_connection(&job).await?);
        }
        let (tx, rx) = mpsc::channel(4);
        let mut shares: Vec<Vec<Arc<PgTable>>> = vec![Vec::new(); workers];
        for (i, t) in tables.into_iter().enumerate() {
            shares[i % workers].push(t);
        }
        for (client, share) in clients.into_iter().zip(shares) {
            tokio::spawn(copy_tables(client, job.clone(), share, tx.clone()));
        }
        self.copies = Some(rx);
        Ok(())
    }

    async fn start_stream(&mut self) -> Result<(), PgError> {
        // Dropping a gated session before its start ends it (a temporary slot goes with it).
        self.snapshot_sessions.clear();
        // A killed run's session holds the slot until the server notices it is gone.
        let mut attempt = 0;
        let stream = loop {
            let mut stream = ReplicationClient::connect(self.replication_config(&self.slot)).await?;
            match stream.wait_started().await {
                Ok(()) => break stream,
                Err(e) if attempt < 40 && e.to_string().contains("is active for PID") => {
                    attempt += 1;
                    tracing::info!(slot = self.slot, "the slot is still held by an ended session; waiting");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => return Err(e.into()),
            }
        };
        let prefix = format!("tidemark.{}", self.slot);
        let lsn = catalog::emit_marker(self.control(), &prefix).await?;
        self.marker = Some((prefix, lsn));
        self.stream = Some(stream);
        Ok(())
    }

    /// Moves buffered rows of `oid` (every table when `None`) to the queue.
    fn flush(&mut self, oid: Option<u32>) {
        let mut oids: Vec<u32> = self.buffers.keys().copied().filter(|o| oid.is_none_or(|x| x == *o)).collect();
        oids.sort_unstable();
        for o in oids {
            if let Some(v) = self.buffers.get_mut(&o).and_then(|b| b.take(CaptureKind::Change)) {
                self.queue.push_back(Change::Versions(v));
            }
        }
    }

    fn skips(&self, table: &PgTable, commit_lsn: u64) -> bool {
        self.held.get(&table.lake_name).is_some_and(|&h| (commit_lsn as i64) < h)
    }

    /// Decodes one event into queued steps; `Ok(false)` once the run is over.
    async fn on_event(&mut self, event: ReplicationEvent) -> Result<bool, PgError> {
        match event {
            ReplicationEvent::Begin { final_lsn, commit_time_micros, .. } => {
                self.txn = Some(Transaction { commit_lsn: final_lsn.as_u64(), at_micros: commit_time_micros + PG_EPOCH_MICROS });
            }
            ReplicationEvent::Commit { end_lsn, .. } => {
                self.flush(None);
                self.txn = None;
                self.queue.push_back(Change::Commit { position: end_lsn.as_u64() as i64, table: None });
                if let Some(f) = &mut self.follow {
                    if f.last_flush.elapsed() >= f.interval {
                        f.last_flush = tokio::time::Instant::now();
                        self.queue.push_back(Change::Idle { position: None });
                    }
                }
            }
            ReplicationEvent::XLogData { wal_start, data, .. } => {
                self.on_change(wal_start.as_u64(), pgoutput::decode(&data)?).await?
            }
            ReplicationEvent::Message { prefix, lsn, .. } => {
                if self.txn.is_none() && self.marker.as_ref().is_some_and(|(p, at)| *p == prefix && lsn.as_u64() >= *at) {
                    if self.follow.is_none() {
                        return Ok(false);
                    }
                    // Caught up: what was read goes to the lake now.
                    self.queue.push_back(Change::Idle { position: None });
                }
            }
            ReplicationEvent::KeepAlive { wal_end, .. } => {
                // A follower sees keepalives between most transactions while it keeps up; each
                // `Idle` commits, so it passes one on only once per flush interval (commits cost
                // more as a table's file count grows).
                let due = match &mut self.follow {
                    _ if self.txn.is_some() => false,
                    Some(f) if f.last_flush.elapsed() < f.interval => false,
                    Some(f) => {
                        f.last_flush = tokio::time::Instant::now();
                        true
                    }
                    None => true,
                };
                if due {
                    self.queue.push_back(Change::Idle { position: Some(wal_end.as_u64() as i64) });
                }
            }
            ReplicationEvent::StoppedAt { .. } => return Ok(false),
        }
        Ok(true)
    }

    async fn on_change(&mut self, wal_start: u64, message: Message) -> Result<(), PgError> {
        let Some(txn) = &self.txn else { return Ok(()) };
        let (commit_lsn, at) = (txn.commit_lsn, txn.at_micros);
        let lsn = if wal_start == 0 { commit_lsn } else { wal_start } as i64;
        match message {
            Message::Relation(relation) => self.on_relation(relation).await?,
            Message::Insert { relation, new } => self.row(relation, commit_lsn, &new, None, at, false, lsn)?,
            Message::Update { relation, old, new } => {
                let old_full = match &old {
                    Some(OldTuple::Full(t)) => Some(t.clone()),
                    _ => None,
                };
                if self.mirror && old_full.as_ref().is_some_and(|o| self.same_in_lake(relation, o, &new)) {
                    // Heroku Connect's bookkeeping (`_hc_lastop`, …) changed, nothing the lake keeps.
                    return Ok(());
                }
                let buffered = |s: &Self| s.buffers.get(&relation).map_or(0, |b| b.len());
                let mut continues = None;
                if let Some(OldTuple::Key(key) | OldTuple::Full(key)) = &old {
                    // A changed key ends the old record; the new one continues it (its unchanged
                    // values come from the old record), so both go into one batch.
                    if self.key_changed(relation, key, &new) {
                        if buffered(self) + 2 > BATCH_ROWS {
                            self.flush(Some(relation));
                        }
                        let before = buffered(self);
                        self.row(relation, commit_lsn, key, None, at, true, lsn)?;
                        // Not when the old row was left out (a mirror row without an sfid).
                        continues = (buffered(self) == before + 1).then_some(before + 2);
                    }
                }
                self.row(relation, commit_lsn, &new, old_full.as_ref(), at, false, lsn)?;
                if continues.is_some_and(|n| buffered(self) == n)
                    && let Some(b) = self.buffers.get_mut(&relation)
                {
                    b.continues_previous();
                }
            }
            Message::Delete { relation, old: OldTuple::Key(t) | OldTuple::Full(t) } => {
                self.row(relation, commit_lsn, &t, None, at, true, lsn)?;
            }
            Message::Begin { .. }
            | Message::Commit { .. }
            | Message::Origin { .. }
            | Message::Type { .. }
            | Message::Message { .. } => {}
            Message::Truncate { relations, .. } => {
                for oid in relations {
                    let Some(table) = self.tables.get(&oid).cloned() else { continue };
                    if self.skips(&table, commit_lsn) {
                        continue;
                    }
                    self.flush(Some(oid));
                    let when = chrono::DateTime::from_timestamp_micros(at).unwrap_or_default();
                    self.queue.push_back(Change::Truncate { table: table.lake_name.clone(), at: when, lsn });
                }
            }
        }
        Ok(())
    }

    /// Where each of the table's columns is in the relation's tuples.
    fn positions(&self, oid: u32, table: &PgTable) -> Vec<Option<usize>> {
        match self.positions.get(&oid) {
            Some(p) => p.clone(),
            None => (0..table.columns.len()).map(Some).collect(),
        }
    }

    /// Whether `old` and `new` agree on every column the lake keeps (an unchanged TOAST value
    /// agrees).
    fn same_in_lake(&self, oid: u32, old: &Tuple, new: &Tuple) -> bool {
        let Some(table) = self.tables.get(&oid) else { return false };
        self.positions(oid, table).into_iter().flatten().all(|i| match (old.0.get(i), new.0.get(i)) {
            (_, Some(Datum::UnchangedToast)) => true,
            (a, b) => a == b,
        })
    }

    fn key_changed(&self, oid: u32, old: &Tuple, new: &Tuple) -> bool {
        let Some(table) = self.tables.get(&oid) else { return false };
        let positions = self.positions(oid, table);
        // A value becoming NULL, or NULL a value, changes the key too (under REPLICA IDENTITY
        // FULL every column is the key, and may be NULL).
        table.columns.iter().zip(positions).any(|((name, _), p)| {
            table.key.contains(name)
                && p.is_some_and(|i| match (old.0.get(i), new.0.get(i)) {
                    (Some(Datum::UnchangedToast), _) | (_, Some(Datum::UnchangedToast)) => false,
                    (a, b) => a != b,
                })
        })
    }

    /// A relation's (re)definition: where its columns are, and columns added, dropped or
    /// retyped since the last one.
    async fn on_relation(&mut self, relation: pgoutput::Relation) -> Result<(), PgError> {
        let Some(current) = self.tables.get(&relation.oid).cloned() else { return Ok(()) };
        let identity = match relation.replica_identity {
            pgoutput::ReplicaIdentity::Full => 'f',
            pgoutput::ReplicaIdentity::Index => 'i',
            pgoutput::ReplicaIdentity::Nothing => 'n',
            pgoutput::ReplicaIdentity::Default => 'd',
        };
        // Still replicable (a key, an identity other than NOTHING)?
        catalog::describe(self.control(), &current.schema, &current.name, relation.oid, identity, self.mirror).await?;
        // The catalog may be ahead of this point of the WAL (a later ALTER COLUMN … TYPE, whose
        // type would not parse the values before it): names, types and modifiers come from the
        // relation message, the catalog only says what a type oid is.
        let oids: Vec<u32> = relation.columns.iter().map(|c| c.type_oid).collect();
        let mut infos = catalog::type_infos(self.control(), &oids).await?;
        let more: Vec<u32> =
            infos.values().flat_map(|i| [i.element, i.base]).filter(|o| *o != 0 && !infos.contains_key(o)).collect();
        if !more.is_empty() {
            infos.extend(catalog::type_infos(self.control(), &more).await?);
        }
        let (mut columns, mut source_columns, mut positions) = (Vec::new(), Vec::new(), Vec::new());
        for (i, c) in relation.columns.iter().enumerate() {
            let Some(lake) = catalog::lake_column(self.mirror, &c.name) else { continue };
            let t = crate::types::PgType::resolve(c.type_oid, c.type_modifier, &|o| infos.get(&o).cloned())
                .map_err(|e| PgError::Setup(format!("table {}, column {}: {e}", current.lake_name, c.name)))?;
            columns.push((lake, t));
            source_columns.push(c.name.clone());
            positions.push(Some(i));
        }
        self.positions.insert(relation.oid, positions);
        if columns == current.columns {
            return Ok(());
        }
        self.flush(Some(relation.oid));
        let table = Arc::new(PgTable { columns, source_columns, ..(*current).clone() });
        self.queue.push_back(Change::Table(table.spec()));
        self.buffers.remove(&relation.oid);
        self.tables.insert(relation.oid, table);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn row(
        &mut self,
        oid: u32,
        commit_lsn: u64,
        tuple: &Tuple,
        old_full: Option<&Tuple>,
        at: i64,
        deleted: bool,
        lsn: i64,
    ) -> Result<(), PgError> {
        let Some(table) = self.tables.get(&oid).cloned() else { return Ok(()) };
        if self.skips(&table, commit_lsn) {
            return Ok(());
        }
        fn text(d: &Datum) -> Option<&str> {
            match d {
                Datum::Text(b) => std::str::from_utf8(b).ok(),
                _ => None,
            }
        }
        let positions = self.positions(oid, &table);
        if self.mirror {
            // A mirror row without an sfid is not a Salesforce record yet.
            let key = table.columns.iter().position(|(c, _)| table.key.contains(c));
            let value = key.and_then(|k| positions[k]).and_then(|i| tuple.0.get(i));
            if !matches!(value, Some(Datum::Text(_))) {
                return Ok(());
            }
        }
        let cells = positions.iter().map(|p| match p.and_then(|i| tuple.0.get(i).map(|d| (i, d))) {
            Some((i, Datum::UnchangedToast)) => match old_full.and_then(|o| o.0.get(i)) {
                Some(old @ Datum::Text(_)) => Cell::Value(text(old)),
                _ => Cell::Unchanged,
            },
            Some((_, other)) => Cell::Value(text(other)),
            None => Cell::Value(None),
        });
        let buffer = self.buffers.entry(oid).or_insert_with(|| RowBuffer::new(table.clone()));
        if buffer.len() >= BATCH_ROWS {
            if let Some(v) = buffer.take(CaptureKind::Change) {
                self.queue.push_back(Change::Versions(v));
            }
        }
        buffer.push(cells, at, deleted, lsn)?;
        Ok(())
    }

    async fn step(&mut self) -> Result<Option<Change>, PgError> {
        loop {
            if let Some(change) = self.queue.pop_front() {
                return Ok(Some(change));
            }
            if self.finished {
                return Ok(None);
            }
            if let Some(copies) = &mut self.copies {
                match copies.recv().await {
                    Some(Ok(change)) => return Ok(Some(change)),
                    Some(Err(e)) => return Err(PgError::Setup(e.to_string())),
                    None => self.copies = None,
                }
                continue;
            }
            if self.stream.is_none() {
                self.start_stream().await?;
            }
            let event = match &mut self.follow {
                // Between transactions a follower may be stopped, and flushes what it holds when
                // the stream is quiet.
                Some(f) if self.txn.is_none() => {
                    if *f.stop.borrow() {
                        self.finished = true;
                        continue;
                    }
                    let stream = self.stream.as_mut().expect("started");
                    tokio::select! {
                        event = tokio::time::timeout(f.interval, stream.recv()) => match event {
                            Ok(event) => event?,
                            Err(_) => {
                                f.last_flush = tokio::time::Instant::now();
                                return Ok(Some(Change::Idle { position: None }));
                            }
                        },
                        changed = f.stop.changed() => {
                            // A dropped sender stops the run too.
                            if changed.is_err() {
                                self.finished = true;
                            }
                            continue;
                        }
                    }
                }
                _ => self.stream.as_mut().expect("started").recv().await?,
            };
            match event {
                Some(event) => {
                    if !self.on_event(event).await? {
                        self.finished = true;
                    }
                }
                None => self.finished = true,
            }
        }
    }
}

#[async_trait::async_trait]
impl Source for PostgresSource {
    fn name(&self) -> &str {
        &self.name
    }

    async fn start(&mut self, held: &HashMap<String, Position>) -> Result<(), SourceError> {
        Ok(self.prepare(held).await?)
    }

    async fn next(&mut self) -> Result<Option<Change>, SourceError> {
        let step = self.step().await?;
        if step.is_none() {
            if let Some(mut stream) = self.stream.take() {
                // The last acknowledgement is sent within the status interval: wait for the
                // slot to show it, so the server releases the WAL now.
                let acked = self.acked;
                let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
                while acked > 0 && tokio::time::Instant::now() < deadline {
                    match catalog::slot_position(self.control(), &self.slot).await? {
                        Some(Some(p)) if p >= acked => break,
                        _ => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                }
                let _ = stream.shutdown().await;
            }
        }
        Ok(step)
    }

    async fn acknowledge(&mut self, position: Position) -> Result<(), SourceError> {
        if let Some(stream) = &self.stream {
            stream.update_applied_lsn(Lsn::from_u64(position as u64));
            self.acked = self.acked.max(position as u64);
        }
        Ok(())
    }
}
