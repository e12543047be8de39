//! The Salesforce sync on the lake's source seam.
//!
//! An object's run is a [`Source`] in the objects namespace ([`TableLayout::Objects`]), driven
//! by [`tidemark_lake::ingest::Ingest`] like a Postgres database or a folder of CDC files: the
//! lake creates and evolves the history table, writes, commits (numbered, lease-checked) and
//! records schema events. The Salesforce side — extraction, the overlap read with its exact
//! de-duplication, reconciliation and re-snapshots, which compare what they read with the
//! lake — runs beside it as a producer that hands its steps over an [`ObjectSink`].
//!
//! The producer is written as if it held the table itself: [`ObjectSink::define`] and
//! [`ObjectSink::commit`] return once the lake has done them (the lake asks for the next step
//! only after finishing the last), so a read after a commit sees it.

use std::collections::HashMap;

use tidemark_core::SourceSchema;
use tidemark_lake::HistoryTable;
use tidemark_lake::arrow::array::RecordBatch;
use tidemark_lake::arrow::datatypes::Field;
use tidemark_lake::columns::arrow_type;
use tidemark_lake::policy::ColumnPolicies;
use tidemark_lake::source::{CaptureKind, Change, Position, SOURCE_TYPE, Source, SourceError, TableLayout, TableSpec, Versions};
use tokio::sync::{mpsc, oneshot};

use crate::error::SyncError;

/// A step handed to the lake, with a signal for when it is done (for those the producer waits on).
type Step = (Change, Option<oneshot::Sender<()>>);

/// The lake's side of one object's run.
pub(crate) struct ObjectSource {
    object: String,
    steps: mpsc::Receiver<Step>,
    /// Fired when the lake asks for the step after the one it belongs to.
    done: Option<oneshot::Sender<()>>,
    held: Option<oneshot::Sender<Position>>,
}

/// The producer's side: what the sync's object run writes through.
pub(crate) struct ObjectSink {
    object: String,
    steps: mpsc::Sender<Step>,
    held: Option<oneshot::Receiver<Position>>,
    /// The last commit number, once the lake said where the table stands.
    position: Option<Position>,
    pending_rows: u64,
}

/// A connected source and sink for `object`'s run.
pub(crate) fn object_channel(object: &str) -> (ObjectSource, ObjectSink) {
    // One step in flight: the producer reads the next page while the lake writes this one.
    let (tx, rx) = mpsc::channel(1);
    let (held_tx, held_rx) = oneshot::channel();
    let source = ObjectSource { object: object.to_owned(), steps: rx, done: None, held: Some(held_tx) };
    let sink = ObjectSink { object: object.to_owned(), steps: tx, held: Some(held_rx), position: None, pending_rows: 0 };
    (source, sink)
}

/// The table an object's describe asks for: its replicated fields typed as the lake stores
/// them, each carrying its Salesforce type for schema events.
pub(crate) fn table_spec(object: &str, schema: &SourceSchema, policies: &ColumnPolicies) -> TableSpec {
    let fields = schema
        .fields
        .iter()
        .filter_map(|f| {
            let t = arrow_type(f)?;
            Some(Field::new(&f.name, t, true).with_metadata(HashMap::from([(SOURCE_TYPE.to_owned(), f.field_type.to_string())])))
        })
        .collect();
    TableSpec { name: object.to_owned(), fields, key: Vec::new(), policies: policies.tokens() }
}

#[async_trait::async_trait]
impl Source for ObjectSource {
    fn name(&self) -> &str {
        "salesforce"
    }

    async fn start(&mut self, held: &HashMap<String, Position>) -> Result<(), SourceError> {
        if let Some(tx) = self.held.take() {
            let _ = tx.send(held.get(&self.object).copied().unwrap_or(0));
        }
        Ok(())
    }

    async fn next(&mut self) -> Result<Option<Change>, SourceError> {
        if let Some(done) = self.done.take() {
            let _ = done.send(());
        }
        Ok(self.steps.recv().await.map(|(change, done)| {
            self.done = done;
            change
        }))
    }

    /// Nothing to release: the bookmark moves in the ledger when the object's run completes.
    async fn acknowledge(&mut self, _position: Position) -> Result<(), SourceError> {
        Ok(())
    }

    fn layout(&self) -> TableLayout {
        TableLayout::Objects
    }

    fn tables(&self) -> Option<Vec<String>> {
        Some(vec![self.object.clone()])
    }
}

impl ObjectSink {
    async fn send(&self, change: Change, wait: bool) -> Result<(), SyncError> {
        let stopped = || SyncError::LakeStopped { object: self.object.clone() };
        let (done, finished) = if wait {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        self.steps.send((change, done)).await.map_err(|_| stopped())?;
        if let Some(finished) = finished {
            finished.await.map_err(|_| stopped())?;
        }
        Ok(())
    }

    /// Creates or evolves the object's table to `spec`; returns once the lake has.
    pub async fn define(&mut self, spec: TableSpec) -> Result<(), SyncError> {
        self.send(Change::Table(spec), true).await
    }

    /// Hands versions (in the table's columns) to the lake; visible after the next commit.
    pub async fn write(&mut self, versions: RecordBatch) -> Result<(), SyncError> {
        if versions.num_rows() == 0 {
            return Ok(());
        }
        self.pending_rows += versions.num_rows() as u64;
        let v = Versions {
            table: self.object.clone(),
            kind: CaptureKind::Change,
            batch: versions,
            unchanged: Vec::new(),
            continues: Vec::new(),
        };
        self.send(Change::Versions(v), false).await
    }

    /// Versions handed over since the last commit.
    pub fn pending_rows(&self) -> u64 {
        self.pending_rows
    }

    /// Commits what was handed over (nothing when nothing was), then refreshes `table`, the
    /// producer's own handle on the object's table, so its reads see the commit.
    pub async fn commit(&mut self, table: &mut HistoryTable) -> Result<(), SyncError> {
        if self.pending_rows == 0 {
            return Ok(());
        }
        let last = match (self.position, self.held.take()) {
            (Some(p), _) => p,
            (None, Some(held)) => held.await.map_err(|_| SyncError::LakeStopped { object: self.object.clone() })?,
            (None, None) => return Err(SyncError::LakeStopped { object: self.object.clone() }),
        };
        let position = last + 1;
        self.send(Change::Commit { position, table: Some(self.object.clone()) }, true).await?;
        self.position = Some(position);
        self.pending_rows = 0;
        table.refresh().await?;
        Ok(())
    }
}
