//! The query log: one record per statement a client ran, appended to the lake's
//! `_tidemark/query_log` table (readable as `query_log` by roles granted it).
//!
//! A record says who ran what kind of statement on which relations, when, for how long, how
//! many rows were sent and how it ended. It never holds the statement's text, its parameters or
//! an error message, since those carry literal values (a cast error quotes the value). Records
//! are kept in memory and appended every `flush_every` (each append is one commit), and once
//! more when the endpoint stops. A failed append is retried at the next flush; beyond
//! [`MAX_PENDING`] records the oldest are dropped, with an error logged.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use datafusion_postgres::pgwire::api::results::Response;
use datafusion_postgres::pgwire::error::PgWireError;
use futures::StreamExt;
use serde::Serialize;
use tidemark_lake::LakeLocation;
use tidemark_lake::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use tidemark_lake::datafusion::datasource::DefaultTableSource;
use tidemark_lake::datafusion::logical_expr::LogicalPlan;
use tidemark_lake::datafusion::sql::sqlparser::ast::Statement;
use tidemark_lake::ledger::Ledger;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{error, warn};

use crate::access::GuardedTable;

/// The internal table's name (`_tidemark/query_log`, SQL `query_log`).
pub const QUERY_LOG: &str = "query_log";

/// Records kept while appends fail; the oldest beyond are dropped.
pub const MAX_PENDING: usize = 100_000;

/// One statement's record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueryLogRecord {
    pub at: DateTime<Utc>,
    pub duration_ms: i64,
    pub user: String,
    /// The user's role; empty without users and roles.
    pub role: String,
    pub peer: String,
    /// `simple` or `extended`.
    pub protocol: String,
    /// The statement's kind: `SELECT`, `EXPLAIN`, `PREPARE`, `EXECUTE`, `SET`, …
    pub kind: String,
    /// The relations the statement names (as the grants name them, lower case).
    pub relations: Vec<String>,
    /// Rows sent to the client.
    pub row_count: i64,
    /// `ok` or `error`.
    pub outcome: String,
    /// The error's SQLSTATE; empty when it succeeded.
    pub sqlstate: String,
}

impl QueryLogRecord {
    pub fn schema() -> SchemaRef {
        let ts = tidemark_lake::columns::timestamp_type;
        let text = |name: &str| Field::new(name, DataType::Utf8, false);
        Arc::new(Schema::new(vec![
            Field::new("at", ts(), false),
            Field::new("duration_ms", DataType::Int64, false),
            text("user"),
            text("role"),
            text("peer"),
            text("protocol"),
            text("kind"),
            Field::new("relations", DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, false))), false),
            Field::new("row_count", DataType::Int64, false),
            text("outcome"),
            text("sqlstate"),
        ]))
    }
}

/// Where records go, and the task writing them.
pub(crate) struct QueryLog {
    sender: mpsc::UnboundedSender<QueryLogRecord>,
    writer: JoinHandle<()>,
}

impl QueryLog {
    /// Starts the writer appending to `location`'s query log every `flush_every`.
    pub(crate) fn start(location: LakeLocation, flush_every: Duration) -> QueryLog {
        let (sender, receiver) = mpsc::unbounded_channel();
        let writer = tokio::spawn(write(Ledger::new(location), receiver, flush_every));
        QueryLog { sender, writer }
    }

    pub(crate) fn sender(&self) -> mpsc::UnboundedSender<QueryLogRecord> {
        self.sender.clone()
    }

    /// Appends what is pending and stops the writer (once every sender is gone).
    pub(crate) async fn close(self) {
        drop(self.sender);
        if let Err(e) = self.writer.await {
            error!(error = %e, "the query log writer failed");
        }
    }
}

async fn write(ledger: Ledger, mut receiver: mpsc::UnboundedReceiver<QueryLogRecord>, flush_every: Duration) {
    let mut pending: Vec<QueryLogRecord> = Vec::new();
    let mut tick = tokio::time::interval(flush_every);
    tick.tick().await;
    loop {
        let open = tokio::select! {
            received = receiver.recv() => match received {
                Some(record) => {
                    pending.push(record);
                    continue;
                }
                None => false,
            },
            _ = tick.tick() => true,
        };
        if !pending.is_empty() {
            match ledger.append_rows(QUERY_LOG, QueryLogRecord::schema(), &pending).await {
                Ok(()) => pending.clear(),
                Err(e) => {
                    warn!(error = %e, pending = pending.len(), "cannot append to the query log; retrying at the next flush");
                    if pending.len() > MAX_PENDING {
                        let dropped = pending.len() - MAX_PENDING;
                        pending.drain(..dropped);
                        error!(dropped, "the query log dropped its oldest records");
                    }
                }
            }
        }
        if !open {
            return;
        }
    }
}

/// What one connection's records share.
#[derive(Clone)]
pub(crate) struct ConnectionLog {
    pub user: String,
    pub role: String,
    pub peer: String,
    pub sender: mpsc::UnboundedSender<QueryLogRecord>,
}

/// A statement being run: completed into a record when its rows have been sent.
pub(crate) struct Entry {
    log: ConnectionLog,
    started: Instant,
    at: DateTime<Utc>,
    protocol: &'static str,
    kind: String,
    relations: Vec<String>,
}

impl Entry {
    pub(crate) fn new(
        log: &ConnectionLog,
        protocol: &'static str,
        statement: Option<&Statement>,
        relations: Vec<String>,
    ) -> Entry {
        Entry {
            log: log.clone(),
            started: Instant::now(),
            at: Utc::now(),
            protocol,
            kind: statement.map(kind).unwrap_or_default(),
            relations,
        }
    }

    fn record(self, row_count: i64, sqlstate: Option<String>) {
        let record = QueryLogRecord {
            at: self.at,
            duration_ms: i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX),
            user: self.log.user,
            role: self.log.role,
            peer: self.log.peer,
            protocol: self.protocol.to_owned(),
            kind: self.kind,
            relations: self.relations,
            row_count,
            outcome: if sqlstate.is_some() { "error" } else { "ok" }.to_owned(),
            sqlstate: sqlstate.unwrap_or_default(),
        };
        // The writer is gone only when the endpoint is stopping.
        let _ = self.log.sender.send(record);
    }

    /// Records a statement that failed before any row went out.
    pub(crate) fn failed(self, error: &PgWireError) {
        self.record(0, Some(sqlstate(error)));
    }

    /// `response` with the record made once its rows have all been sent (or the client stopped
    /// reading them).
    pub(crate) fn finish(self, response: Response) -> Response {
        match response {
            Response::Query(mut query) => {
                let mut counter = RowCounter { entry: Some(self), rows: 0, failed: None };
                let rows = std::mem::replace(&mut query.data_rows, Box::pin(futures::stream::empty()));
                query.data_rows = Box::pin(rows.map(move |row| {
                    // The whole counter moves into the closure: its drop, with the stream's,
                    // makes the record.
                    let counter = &mut counter;
                    match &row {
                        Ok(_) => counter.rows += 1,
                        Err(e) => counter.failed = Some(sqlstate(e)),
                    }
                    row
                }));
                Response::Query(query)
            }
            Response::Error(info) => {
                self.record(0, Some(info.code.clone()));
                Response::Error(info)
            }
            Response::Execution(tag) => {
                self.record(0, None);
                Response::Execution(tag)
            }
            other => {
                self.record(0, None);
                other
            }
        }
    }
}

/// Counts the rows a response sends; its drop makes the record.
struct RowCounter {
    entry: Option<Entry>,
    rows: i64,
    failed: Option<String>,
}

impl Drop for RowCounter {
    fn drop(&mut self) {
        if let Some(entry) = self.entry.take() {
            entry.record(self.rows, self.failed.take());
        }
    }
}

fn sqlstate(error: &PgWireError) -> String {
    match error {
        PgWireError::UserError(info) => info.code.clone(),
        _ => "XX000".to_owned(),
    }
}

/// The statement's kind: its first keyword(s), never its text.
fn kind(statement: &Statement) -> String {
    match statement {
        Statement::Query(_) => "SELECT".to_owned(),
        Statement::Explain { analyze: true, .. } => "EXPLAIN ANALYZE".to_owned(),
        Statement::Explain { .. } => "EXPLAIN".to_owned(),
        other => {
            // The keywords before any name or value: `SHOW TABLES`, `SET`, `DECLARE`, `PREPARE`.
            let text = other.to_string();
            text.split_whitespace()
                .take_while(|w| w.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
        }
    }
}

/// The relations `plan` scans, subqueries included, as the grants name them.
pub(crate) fn relations(plan: &LogicalPlan) -> Vec<String> {
    let mut found = Vec::new();
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            let guarded = scan
                .source
                .downcast_ref::<DefaultTableSource>()
                .and_then(|s| s.table_provider.downcast_ref::<GuardedTable>())
                .map(|g| g.relation().to_owned());
            found.push(guarded.unwrap_or_else(|| scan.table_name.table().to_lowercase()));
        }
        Ok(tidemark_lake::datafusion::common::tree_node::TreeNodeRecursion::Continue)
    });
    found.sort();
    found.dedup();
    found
}
