//! A connection's query handlers, whose DataFusion session is chosen when the connection has
//! authenticated.
//!
//! pgwire asks for a connection's handlers once, before its first message, but which session a
//! connection gets depends on who logs in: with users and roles, each user has a context of
//! their own ([`crate::access`]). [`LazySession`] is handed to pgwire at once and filled in by
//! the startup handler just before `AuthenticationOk`; pgwire routes nothing but startup
//! messages until then, so an empty session is never asked to run anything.

use std::fmt::Debug;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use datafusion_postgres::DfSessionService;
use datafusion_postgres::pgwire::api::portal::{Format, Portal};
use datafusion_postgres::pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use datafusion_postgres::pgwire::api::results::{FieldInfo, Response};
use datafusion_postgres::pgwire::api::stmt::QueryParser;
use datafusion_postgres::pgwire::api::store::PortalStore;
use datafusion_postgres::pgwire::api::{ClientInfo, ClientPortalStore, Type};
use datafusion_postgres::pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use datafusion_postgres::pgwire::messages::PgWireBackendMessage;
use futures::Sink;
use tidemark_lake::datafusion::logical_expr::LogicalPlan;
use tidemark_lake::datafusion::sql::sqlparser::ast::Statement;

use super::log::{ConnectionLog, Entry, relations};

/// The statement type of datafusion-postgres's handlers, which the portal store is typed by.
type DfStatement = (String, Option<(Statement, LogicalPlan)>);

/// The statements the read-only hook has checked since the last `take`, each with the
/// relations it reads (the query log's kinds and relations for the simple protocol), and the
/// relations of each statement the connection has prepared, which `EXECUTE` reads.
#[derive(Default)]
pub(super) struct StatementNotes {
    checked: parking_lot::Mutex<Vec<(Statement, Vec<String>)>>,
    prepared: parking_lot::Mutex<std::collections::HashMap<String, Vec<String>>>,
}

impl StatementNotes {
    pub(super) fn note(&self, statement: &Statement, plan: Option<&LogicalPlan>) {
        let relations = plan.map(|p| self.relations(p)).unwrap_or_default();
        self.checked.lock().push((statement.clone(), relations));
    }

    /// What `plan` reads; for `EXECUTE`, what the prepared statement reads.
    fn relations(&self, plan: &LogicalPlan) -> Vec<String> {
        use tidemark_lake::datafusion::logical_expr::Statement as Planned;
        match plan {
            LogicalPlan::Statement(Planned::Execute(execute)) => {
                self.prepared.lock().get(&execute.name).cloned().unwrap_or_default()
            }
            LogicalPlan::Statement(Planned::Prepare(prepare)) => {
                let relations = relations(plan);
                self.prepared.lock().insert(prepare.name.clone(), relations.clone());
                relations
            }
            _ => relations(plan),
        }
    }

    fn take(&self) -> Vec<(Statement, Vec<String>)> {
        std::mem::take(&mut *self.checked.lock())
    }
}

/// What the handlers share: the session once set, and the connection's query log.
#[derive(Default)]
struct Connection {
    session: OnceLock<Arc<DfSessionService>>,
    log: OnceLock<ConnectionLog>,
    /// What the read-only hook saw of each statement of a simple query, in order.
    notes: Arc<StatementNotes>,
}

type Slot = Arc<Connection>;

/// A connection's query handlers; see the module docs.
pub(super) struct LazySession {
    connection: Slot,
    parser: Arc<LazyParser>,
}

impl LazySession {
    pub(super) fn new() -> LazySession {
        let connection: Slot = Arc::default();
        LazySession { parser: Arc::new(LazyParser { connection: connection.clone() }), connection }
    }

    /// Where the read-only hook notes each statement it checks (for the query log).
    pub(super) fn notes(&self) -> Arc<StatementNotes> {
        self.connection.notes.clone()
    }

    /// Sets the session, and the query log if one is kept; the first call wins (a connection
    /// authenticates once).
    pub(super) fn set(&self, session: DfSessionService, log: Option<ConnectionLog>) {
        if let Some(log) = log {
            let _ = self.connection.log.set(log);
        }
        let _ = self.connection.session.set(Arc::new(session));
    }
}

fn get(connection: &Connection) -> PgWireResult<&Arc<DfSessionService>> {
    connection.session.get().ok_or_else(|| {
        PgWireError::UserError(Box::new(ErrorInfo::new(
            "FATAL".to_owned(),
            "08P01".to_owned(),
            "the connection has not authenticated".to_owned(),
        )))
    })
}

#[async_trait]
impl SimpleQueryHandler for LazySession {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let session = get(&self.connection)?;
        let Some(log) = self.connection.log.get() else {
            return SimpleQueryHandler::do_query(session.as_ref(), client, query).await;
        };
        self.connection.notes.take();
        let started = Entry::new(log, "simple", None, Vec::new());
        let result = SimpleQueryHandler::do_query(session.as_ref(), client, query).await;
        let mut notes = self.connection.notes.take().into_iter();
        let entry = |note: Option<(Statement, Vec<String>)>| match note {
            Some((statement, relations)) => Entry::new(log, "simple", Some(&statement), relations),
            None => Entry::new(log, "simple", None, Vec::new()),
        };
        match result {
            Ok(responses) => Ok(responses.into_iter().map(|response| entry(notes.next()).finish(response)).collect()),
            Err(e) => {
                // A failed statement ends the query: the results of those before it are not
                // sent either, so each is recorded with the query's error.
                let mut any = false;
                for note in notes {
                    entry(Some(note)).failed(&e);
                    any = true;
                }
                if !any {
                    started.failed(&e);
                }
                Err(e)
            }
        }
    }
}

#[async_trait]
impl ExtendedQueryHandler for LazySession {
    type Statement = DfStatement;
    type QueryParser = LazyParser;

    fn query_parser(&self) -> Arc<LazyParser> {
        self.parser.clone()
    }

    async fn do_query<C>(&self, client: &mut C, portal: &Portal<DfStatement>, max_rows: usize) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = DfStatement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let session = get(&self.connection)?;
        let entry = self.connection.log.get().map(|log| {
            let parsed = portal.statement.statement.1.as_ref();
            let relations = parsed.map(|(_, plan)| self.connection.notes.relations(plan)).unwrap_or_default();
            Entry::new(log, "extended", parsed.map(|(s, _)| s), relations)
        });
        let result = ExtendedQueryHandler::do_query(session.as_ref(), client, portal, max_rows).await;
        match (entry, result) {
            (Some(entry), Ok(response)) => Ok(entry.finish(response)),
            (Some(entry), Err(e)) => {
                entry.failed(&e);
                Err(e)
            }
            (None, result) => result,
        }
    }
}

/// The extended protocol's parser of the connection's session.
pub(super) struct LazyParser {
    connection: Slot,
}

#[async_trait]
impl QueryParser for LazyParser {
    type Statement = DfStatement;

    async fn parse_sql<C>(&self, client: &C, sql: &str, types: &[Option<Type>]) -> PgWireResult<Option<DfStatement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let result = get(&self.connection)?.query_parser().parse_sql(client, sql, types).await;
        let statement = self.connection.notes.take().pop();
        // A statement refused when parsed never executes: its record is made here.
        if let (Err(e), Some(log)) = (&result, self.connection.log.get()) {
            let (statement, relations) = statement.map_or((None, Vec::new()), |(s, r)| (Some(s), r));
            Entry::new(log, "extended", statement.as_ref(), relations).failed(e);
        }
        result
    }

    fn get_parameter_types(&self, stmt: &DfStatement) -> PgWireResult<Vec<Type>> {
        get(&self.connection)?.query_parser().get_parameter_types(stmt)
    }

    fn get_result_schema(&self, stmt: &DfStatement, column_format: Option<&Format>) -> PgWireResult<Vec<FieldInfo>> {
        get(&self.connection)?.query_parser().get_result_schema(stmt, column_format)
    }
}
