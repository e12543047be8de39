//! The query hook every statement passes first: it keeps the endpoint read-only, and plans the
//! Postgres syntax DataFusion's parser cannot (see [`super::rewrite`]).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use datafusion_postgres::QueryHook;
use datafusion_postgres::arrow_pg::datatypes::df::encode_dataframe;
use datafusion_postgres::hooks::HookClient;
use datafusion_postgres::pgwire::api::ClientInfo;
use datafusion_postgres::pgwire::api::portal::Format;
use datafusion_postgres::pgwire::api::results::Response;
use datafusion_postgres::pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use datafusion_postgres::pgwire::types::format::FormatOptions;
use tidemark_lake::datafusion::common::{DataFusionError, ParamValues};
use tidemark_lake::datafusion::execution::context::SQLOptions;
use tidemark_lake::datafusion::logical_expr::LogicalPlan;
use tidemark_lake::datafusion::prelude::SessionContext;
use tidemark_lake::datafusion::sql::parser::Statement as DfStatement;
use tidemark_lake::datafusion::sql::sqlparser::ast::Statement;

use super::rewrite::rewrite;
use super::session::StatementNotes;
use crate::access::{AccessDenied, GrantedSchema};
use crate::catalog::LakeSchema;
use crate::session::{explain_unknown_table, explain_unknown_table_with};

/// Where datafusion-postgres's `SET statement_timeout` keeps the timeout in the connection's
/// metadata (its own accessor is private); a rewritten query honours it as any other does.
const STATEMENT_TIMEOUT: &str = "statement_timeout_ms";

/// Keeps the endpoint read-only (see the module documentation).
///
/// For the simple protocol it plans each statement and only looks; datafusion-postgres then
/// runs it, except a query this hook rewrote, which datafusion-postgres would re-parse from its
/// original text: this hook runs that one itself. For the extended protocol the checked plan
/// (of the rewritten statement) is the one that runs.
pub(super) struct ReadOnly {
    /// Each statement checked, with its plan, for the query log.
    notes: Arc<StatementNotes>,
}

impl ReadOnly {
    pub(super) fn new(notes: Arc<StatementNotes>) -> ReadOnly {
        ReadOnly { notes }
    }

    /// [`ReadOnly::check`], noting the statement and its plan.
    async fn check_noted(&self, statement: &Statement, ctx: &SessionContext) -> Option<PgWireResult<LogicalPlan>> {
        let checked = Self::check(statement, ctx).await;
        self.notes.note(statement, checked.as_ref().and_then(|c| c.as_ref().ok()));
        checked
    }

    /// `None` for the statements datafusion-postgres's own hooks answer (SET, SHOW,
    /// transactions, cursors), after checking a cursor's query; otherwise the checked plan, or
    /// why the statement may not run.
    async fn check(statement: &Statement, ctx: &SessionContext) -> Option<PgWireResult<LogicalPlan>> {
        match statement {
            Statement::Set(_)
            | Statement::ShowVariable { .. }
            | Statement::ShowStatus { .. }
            | Statement::ShowCatalogs { .. }
            | Statement::StartTransaction { .. }
            | Statement::Commit { .. }
            | Statement::Rollback { .. }
            | Statement::Fetch { .. }
            | Statement::Close { .. } => None,
            Statement::Declare { stmts } => {
                for query in stmts.iter().filter_map(|declare| declare.for_query.as_ref()) {
                    if let Err(e) = Self::plan(&Statement::Query(query.clone()), ctx).await {
                        return Some(Err(e));
                    }
                }
                None
            }
            Statement::Copy { .. } => Some(Err(read_only("COPY"))),
            // A statement DataFusion cannot plan is refused here too: datafusion-postgres would
            // hand its text to DataFusion's own parser, which knows more (`COPY … TO`).
            statement => Some(Self::plan(rewrite(statement).as_ref().unwrap_or(statement), ctx).await),
        }
    }

    /// Plans, checks and runs a query (a rewritten one, which only this hook can plan).
    async fn run(query: &Statement, ctx: &SessionContext, client: &mut dyn HookClient) -> PgWireResult<Response> {
        let plan = Self::plan(query, ctx).await?;
        let timeout = client.metadata().get(STATEMENT_TIMEOUT).and_then(|ms| ms.parse().ok()).map(Duration::from_millis);
        let execute = ctx.execute_logical_plan(plan);
        let frame = match timeout {
            Some(limit) => tokio::time::timeout(limit, execute).await.map_err(|_| {
                PgWireError::UserError(Box::new(ErrorInfo::new(
                    "ERROR".to_owned(),
                    "57014".to_owned(),
                    "canceling statement due to statement timeout".to_owned(),
                )))
            })?,
            None => execute.await,
        }
        .map_err(|e| PgWireError::ApiError(Box::new(e)))?;
        let options = Arc::new(FormatOptions::from_client_metadata(client.metadata()));
        Ok(Response::Query(encode_dataframe(frame, &Format::UnifiedText, Some(options)).await?))
    }

    async fn plan(statement: &Statement, ctx: &SessionContext) -> PgWireResult<LogicalPlan> {
        let plan = ctx.state().statement_to_plan(DfStatement::Statement(Box::new(statement.clone()))).await.map_err(|e| {
            match AccessDenied::find(&e) {
                Some(denied) => permission_denied(denied),
                None => PgWireError::ApiError(Box::new(suggest_tables(ctx, e))),
            }
        })?;
        // Statements (PREPARE, EXECUTE, SET) stay allowed: they only touch this connection's session.
        let options = SQLOptions::new().with_allow_ddl(false).with_allow_dml(false);
        if let Err(e) = options.verify_plan(&plan) {
            let reason = match e {
                DataFusionError::Plan(reason) => reason,
                other => other.to_string(),
            };
            return Err(read_only(&reason));
        }
        Ok(plan)
    }
}

/// The "did you mean" of [`explain_unknown_table`] when `ctx`'s default schema is a lake (the
/// connection's context only knows the schema as a trait object); other errors pass unchanged.
fn suggest_tables(ctx: &SessionContext, error: DataFusionError) -> DataFusionError {
    let state = ctx.state();
    let defaults = &state.config().options().catalog;
    let schema = ctx.catalog(&defaults.default_catalog).and_then(|c| c.schema(&defaults.default_schema));
    let Some(schema) = schema else { return error };
    if let Some(lake) = schema.downcast_ref::<LakeSchema>() {
        return explain_unknown_table(lake, error);
    }
    // With users and roles, only names the user can see are suggested.
    match schema.downcast_ref::<GrantedSchema>() {
        Some(granted) => explain_unknown_table_with(error, |name| granted.unknown_table(name)),
        None => error,
    }
}

/// SQLSTATE 42501 (insufficient_privilege), PostgreSQL's wording.
pub(super) fn permission_denied(denied: &AccessDenied) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new("ERROR".to_owned(), "42501".to_owned(), denied.to_string())))
}

/// SQLSTATE 25006 (read_only_sql_transaction), PostgreSQL's answer to a write on a standby.
fn read_only(what: &str) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".to_owned(),
        "25006".to_owned(),
        format!("the Tidemark Postgres endpoint is read-only ({what})"),
    )))
}

#[async_trait]
impl QueryHook for ReadOnly {
    async fn handle_simple_query(
        &self,
        statement: &Statement,
        session_context: &SessionContext,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        if let Statement::Query(_) = statement
            && let Some(rewritten) = rewrite(statement)
        {
            self.notes.note(statement, None);
            return Some(Self::run(&rewritten, session_context, client).await);
        }
        match self.check_noted(statement, session_context).await {
            Some(Err(refused)) => Some(Err(refused)),
            Some(Ok(_)) | None => None,
        }
    }

    async fn handle_extended_parse_query(
        &self,
        statement: &Statement,
        session_context: &SessionContext,
        _client: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<LogicalPlan>> {
        self.check_noted(statement, session_context).await
    }

    async fn handle_extended_query(
        &self,
        _statement: &Statement,
        _logical_plan: &LogicalPlan,
        _params: &ParamValues,
        _session_context: &SessionContext,
        _client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        // Checked when parsed: an execute runs a plan that passed `check`.
        None
    }
}
