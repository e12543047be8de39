//! The source seam: what a source of record versions (a Postgres database by logical
//! replication, a folder of CDC files, …) hands the lake, and what the lake promises back.
//!
//! A [`Source`] is pulled by [`crate::ingest::Ingest`], which owns everything sources share:
//! the history tables (under `sources/<source>/`, or `objects/` for the Salesforce sync: see
//! [`TableLayout`]), schema evolution, the `_key` and metadata columns, idempotent positioned
//! commits, unchanged-value filling, truncates, the lease and the ledger. A source only reads
//! its system and says what changed, in order.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use deltalake::arrow::array::RecordBatch;
use deltalake::arrow::datatypes::Field;

/// A source's position: a number that grows with every transaction the source reports
/// (Postgres: the commit's end LSN). The lake stores, per table, the position it holds the
/// source up to, inside the same Delta commit as the versions (the commit's `txn` version).
pub type Position = i64;

/// Field metadata key: the source's own name for a field's type (`picklist`, `numeric(12,2)`),
/// used in schema events instead of the Arrow type's.
pub const SOURCE_TYPE: &str = "tidemark.source_type";

/// Field metadata key: `"true"` on a field the source itself depends on (a polled table's
/// modification time, its bookmark): no field policy applies to it, like the key's fields.
pub const PROTECTED: &str = "tidemark.protected";

/// A table as a source offers it.
#[derive(Debug, Clone, PartialEq)]
pub struct TableSpec {
    /// The name inside the source's namespace, lower case: the lake folder
    /// `sources/<source>/<name>/`, and `<source>.<name>` in SQL.
    pub name: String,
    /// The source's columns in order, typed as the lake stores them (never the metadata
    /// columns of [`crate::columns`]).
    pub fields: Vec<Field>,
    /// The columns identifying a record (a primary key, a replica identity). The lake's record
    /// key `_key` is their values as text (one column: its value; several: a JSON array).
    /// Empty means the table is keyed by its `Id` column (Salesforce-shaped tables).
    pub key: Vec<String>,
    /// The field policies in force, field → token ([`crate::policy`]), excluded fields
    /// included. Sources leave it empty: the lake resolves their policies
    /// ([`crate::ingest::Ingest::with_governance`]) and applies them to their batches. The
    /// Salesforce sync resolves and applies its own, before comparing what it read with the
    /// lake, and hands the tokens here.
    pub policies: Vec<(String, String)>,
}

/// Where a source's tables live, and what its versions look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableLayout {
    /// `sources/<source>/<table>/`, records keyed by `_key` (the [`TableSpec::key`] fields as
    /// text), ordered within one `_version_at` by `_lsn`; commits numbered by the source's
    /// positions. [`Versions`] batches carry the source's fields by name: the lake maps them onto
    /// its columns (a retyped field's `_v2`).
    Source,
    /// `objects/<Object>/` (SQL's unqualified names): the Salesforce objects' namespace. Records
    /// are keyed by `Id`; there is no `_key` or `_lsn`, no unchanged values and no truncate.
    /// Commits are table-scoped and numbered one after another (the table's last number comes
    /// with [`Source::start`]). The source plans its own column mapping ([`crate::schema_plan`]
    /// on the table the lake evolved), so [`Versions`] batches are already in the table's
    /// columns, metadata columns included; the lake writes them as they are.
    Objects,
}

/// How a version was captured, stored in `_origin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureKind {
    /// A row of a consistent initial copy (a snapshot).
    Copy,
    /// A change read from the source's log, in commit order.
    Change,
    /// A delete version written for each live row of a truncated table.
    Truncate,
    /// A delete version for a record found missing by comparing keys (a polled table's
    /// deleted rows), dated when it was found missing.
    Reconcile,
}

impl CaptureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CaptureKind::Copy => "copy",
            CaptureKind::Change => "change",
            CaptureKind::Truncate => "truncate",
            CaptureKind::Reconcile => "reconcile",
        }
    }
}

/// Versions of rows of one table.
#[derive(Debug, Clone)]
pub struct Versions {
    pub table: String,
    pub kind: CaptureKind,
    /// Columns `_version_at` (timestamp µs UTC), `_deleted` (boolean), `_lsn` (int64: the
    /// change's position, the order within one `_version_at`), then any of the table's
    /// fields by name, typed as in its [`TableSpec`]. A field left out is null. A delete
    /// version needs only the key fields.
    pub batch: RecordBatch,
    /// Cells the source did not receive because they did not change (a Postgres unchanged
    /// TOAST value, Debezium's `__debezium_unavailable_value`): `(field, rows)`. The lake fills
    /// each from the record's previous version (earlier in this batch, written earlier in this
    /// run, or committed), never writing null for them.
    pub unchanged: Vec<(String, Vec<u32>)>,
    /// `(row, earlier row)`: the record at `row` continues the one deleted at `earlier row` (an
    /// update that changed the key), so its unchanged values come from that record's versions.
    pub continues: Vec<(u32, u32)>,
}

/// One step of a source's output.
#[derive(Debug, Clone)]
pub enum Change {
    /// A table's definition: before its first versions, and again whenever it changes (added,
    /// dropped or retyped columns follow [`crate::schema_plan`]'s rules).
    Table(TableSpec),
    Versions(Versions),
    /// Every live row of `table` was deleted at `at` (Postgres `TRUNCATE`): the lake writes a
    /// delete version per live record, ordered at `lsn`, and records the event.
    Truncate {
        table: String,
        at: DateTime<Utc>,
        lsn: Position,
    },
    /// Everything delivered before this is a consistent state of the source at `position`.
    /// With `table`, only that table's versions (an initial copy, which the lake commits on
    /// its own, even when empty); without, every table's (a transaction's end: the lake may
    /// commit here, and then [`Source::acknowledge`]s `position`).
    Commit {
        position: Position,
        table: Option<String>,
    },
    /// Nothing more is available right now. The lake commits what it holds (at the last
    /// `Commit`); when it held nothing and `position` is given, that position may be
    /// acknowledged (an idle source's log still moves, and a slot should not retain it).
    Idle {
        position: Option<Position>,
    },
}

/// A source's failure, classified for the scheduler.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SourceError {
    pub message: String,
    /// Running again later may succeed (a dropped connection, a server restarting).
    pub retryable: bool,
    #[source]
    pub cause: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl SourceError {
    pub fn new(message: impl Into<String>, retryable: bool) -> SourceError {
        SourceError { message: message.into(), retryable, cause: None }
    }

    pub fn with_cause(mut self, cause: impl std::error::Error + Send + Sync + 'static) -> SourceError {
        self.cause = Some(Box::new(cause));
        self
    }
}

/// A source of record versions.
///
/// **Lifecycle.** [`Source::start`] once, with the position the lake holds each of the source's
/// tables up to; then [`Source::next`] until it returns `None` (the source is caught up, or was
/// asked to stop); [`Source::acknowledge`] between calls.
///
/// **Ordering.** Within a table, versions come in the order they happened, and a record's
/// versions with equal `_version_at` in increasing `_lsn`. Tables may interleave. A [`Change::Table`]
/// precedes the first versions of its table and any versions written under a changed
/// definition.
///
/// **Positions and acknowledgement.** Positions in `Commit`s never decrease. The lake commits a
/// table's versions at a `Commit` (whole transactions only, never part of one) and stores the
/// position in that commit. It calls `acknowledge(p)` only after every version at or before `p`
/// is committed, so a source may then release what it retains up to `p` (a replication slot's
/// confirmed position): a crash at any point loses nothing.
///
/// **Idempotency.** After a crash the source may deliver again what the lake already holds; it
/// must skip, per table, every transaction at or before the position given to `start` for that
/// table, so nothing lands twice. A table absent from that map has nothing in the lake: the
/// source starts it with a consistent copy ([`CaptureKind::Copy`] versions ended by a
/// table-scoped `Commit` at the copy's position), then reports its changes after that position.
///
/// A source whose system has no transaction positions (Salesforce: a query's pages, read again
/// from a bookmark minus an overlap) numbers its table-scoped commits one after another from the
/// position `start` gave, and makes re-reads idempotent itself, by comparing them with the lake
/// before handing them over ([`TableLayout::Objects`]).
///
/// **Deletes** are versions with `_deleted` true, carrying at least the key fields.
///
/// **Concurrency.** One source value is driven by one task; the lake holds the source's lease
/// for the whole run, so two runs never read one source into one lake at once.
#[async_trait::async_trait]
pub trait Source: Send {
    /// The source's name: its namespace in the lake and in SQL.
    fn name(&self) -> &str;

    /// Prepares reading. `held`: per table name, the position the lake holds it up to.
    async fn start(&mut self, held: &HashMap<String, Position>) -> Result<(), SourceError>;

    /// The next step, or `None` when the run is over.
    async fn next(&mut self) -> Result<Option<Change>, SourceError>;

    /// Everything at or before `position` is committed to the lake.
    async fn acknowledge(&mut self, position: Position) -> Result<(), SourceError>;

    /// Where the source's tables live (default: its own namespace, `sources/<name>/`).
    fn layout(&self) -> TableLayout {
        TableLayout::Source
    }

    /// The tables this run may write, when the source knows them before it starts (a
    /// Salesforce object's run): the lake reads only their positions for `start`. `None`: every
    /// table the lake holds in the source's namespace.
    fn tables(&self) -> Option<Vec<String>> {
        None
    }
}
