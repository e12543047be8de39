//! A query session over a lake: a DataFusion context whose default schema is the lake.

use std::collections::BTreeSet;
use std::sync::Arc;

use tidemark_lake::LakeLocation;
use tidemark_lake::arrow::datatypes::SchemaRef;
use tidemark_lake::datafusion::catalog::SchemaProvider;
use tidemark_lake::datafusion::dataframe::DataFrame;
use tidemark_lake::datafusion::error::DataFusionError;
use tidemark_lake::datafusion::prelude::{SessionConfig, SessionContext};
use tidemark_lake::datafusion::sql::parser::{DFParserBuilder, Statement};
use tidemark_lake::datafusion::sql::sqlparser::dialect::GenericDialect;
use tidemark_lake::deltalake::DeltaTableBuilder;

use crate::as_of::AsOf;
use crate::catalog::{LakeSchema, ReadOptions, TableVersion};
use crate::error::{QueryError, Result, TableError, table_error};
use crate::notes::{Note, Notes};
use crate::views::Relation;

/// The catalog and schema the lake is registered as (the DataFusion defaults, which Postgres
/// clients also expect).
pub const CATALOG: &str = "datafusion";
pub const SCHEMA: &str = "public";

/// DataFusion's "table 'datafusion.public.x' not found" becomes the lake's error listing the
/// closest names; other errors pass unchanged. Public for the Postgres endpoint, which plans
/// with its own copy of the context.
pub fn explain_unknown_table(schema: &LakeSchema, error: DataFusionError) -> DataFusionError {
    explain_unknown_table_with(error, |name| schema.unknown_table(name))
}

/// [`explain_unknown_table`] with the error for an unknown name given by `unknown`.
pub fn explain_unknown_table_with(error: DataFusionError, unknown: impl Fn(&str) -> DataFusionError) -> DataFusionError {
    let message = error.find_root().to_string();
    let name = message
        .split_once("table '")
        .and_then(|(_, rest)| rest.split_once("' not found"))
        .map(|(name, _)| name.rsplit('.').next().unwrap_or(name).to_lowercase());
    match name {
        Some(name) if matches!(error.find_root(), DataFusionError::Plan(_)) => unknown(&name),
        _ => error,
    }
}

/// One relation a session can query, for listings (`\d`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableListing {
    pub name: String,
    /// The lake table: a lower-case object name, or a lower-case model name for a mart's
    /// relations ([`Relation::folder`] tells which).
    pub table: String,
    pub relation: Relation,
}

/// A DataFusion session over a lake. Cheap to share: clone the context for concurrent queries.
#[derive(Clone)]
pub struct QuerySession {
    ctx: Arc<SessionContext>,
    schema: Arc<LakeSchema>,
    /// Each source's schema, by SQL schema name.
    sources: Vec<(String, Arc<LakeSchema>)>,
    as_of: Arc<AsOf>,
    notes: Arc<Notes>,
}

impl std::fmt::Debug for QuerySession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuerySession").field("schema", &self.schema).finish_non_exhaustive()
    }
}

impl QuerySession {
    /// Lists the lake's tables and prepares a context; no table log is read until a query
    /// names the table.
    pub async fn open(location: LakeLocation, options: ReadOptions) -> Result<QuerySession> {
        QuerySession::open_with(location, options, SessionContext::new_with_config).await
    }

    /// [`QuerySession::open`] whose queries share a pool of `memory_limit` bytes and spill beyond
    /// it ([`tidemark_lake::bounded`]): for operations over results larger than memory.
    pub async fn open_bounded(location: LakeLocation, options: ReadOptions, memory_limit: usize) -> Result<QuerySession> {
        let (bounded, runtime) = tidemark_lake::bounded::session_parts(memory_limit)?;
        let make = move |config: SessionConfig| {
            let mut config = config.with_batch_size(bounded.batch_size());
            config.options_mut().optimizer.prefer_hash_join = bounded.options().optimizer.prefer_hash_join;
            config.options_mut().execution.sort_spill_reservation_bytes =
                bounded.options().execution.sort_spill_reservation_bytes;
            SessionContext::new_with_config_rt(config, runtime)
        };
        QuerySession::open_with(location, options, make).await
    }

    async fn open_with(
        location: LakeLocation,
        options: ReadOptions,
        make: impl FnOnce(SessionConfig) -> SessionContext,
    ) -> Result<QuerySession> {
        let config = SessionConfig::new()
            .with_information_schema(true)
            .with_default_catalog_and_schema(CATALOG, SCHEMA)
            .with_create_default_catalog_and_schema(true);
        let ctx = make(config);
        // Object stores are registered once for the lake root; every table lives below it.
        let root = DeltaTableBuilder::from_url(location.root().clone())
            .and_then(|b| b.with_storage_options(location.storage_options().clone()).build())
            .map_err(|e| QueryError::Usage(format!("lake {}: {e}", location.root())))?;
        root.update_datafusion_session(&ctx.state()).map_err(|e| QueryError::Usage(format!("lake {}: {e}", location.root())))?;

        let schema = Arc::new(LakeSchema::open(location, options).await?);
        let catalog = ctx.catalog(CATALOG).ok_or_else(|| DataFusionError::Internal("default catalog missing".into()))?;
        catalog.register_schema(SCHEMA, schema.clone())?;
        // Each source's tables as `<source>.<table>` (the default schema keeps Salesforce's
        // objects unqualified).
        let location = schema.location().clone();
        let mut as_of = AsOf::new(&schema);
        let mut sources = Vec::new();
        for source in location.sources().await? {
            let tables = Arc::new(LakeSchema::open_source(location.clone(), schema.options().clone(), &source).await?);
            catalog.register_schema(&source, tables.clone())?;
            as_of = as_of.with_source(&source, &tables);
            sources.push((source.to_ascii_lowercase(), tables));
        }
        let as_of = Arc::new(as_of);
        ctx.register_udtf(AsOf::NAME, as_of.clone());
        Ok(QuerySession { ctx: Arc::new(ctx), schema, sources, as_of, notes: Arc::default() })
    }

    /// The DataFusion context (for the Postgres endpoint and for embedding).
    pub fn context(&self) -> Arc<SessionContext> {
        self.ctx.clone()
    }

    /// The lake's default schema, each source's, and the `as_of` function over them (for the
    /// per-user sessions of [`crate::access`]).
    pub(crate) fn schemas(&self) -> (&Arc<LakeSchema>, &[(String, Arc<LakeSchema>)], &Arc<AsOf>) {
        (&self.schema, &self.sources, &self.as_of)
    }

    /// The lake this session reads.
    pub fn location(&self) -> &LakeLocation {
        self.schema.location()
    }

    pub fn read_options(&self) -> &ReadOptions {
        self.schema.options()
    }

    /// Parses `sql` into statements (a script may hold several, separated by `;`).
    pub fn parse(&self, sql: &str) -> Result<Vec<Statement>> {
        let statements = DFParserBuilder::new(sql).with_dialect(&GenericDialect {}).build()?.parse_statements()?;
        Ok(statements.into_iter().collect())
    }

    /// Plans and starts one statement (DDL such as `CREATE VIEW` takes effect here).
    ///
    /// With a pinned table version, every lake table the statement names is opened first, so
    /// that all the tables without that version are named in one error.
    pub async fn execute(&self, statement: Statement) -> Result<DataFrame> {
        if self.schema.options().table_version.is_some() {
            self.open_pinned(&statement).await?;
        }
        let plan = self.ctx.state().statement_to_plan(statement).await.map_err(|e| explain_unknown_table(&self.schema, e))?;
        Ok(self.ctx.execute_logical_plan(plan).await?)
    }

    async fn open_pinned(&self, statement: &Statement) -> Result<()> {
        let mut tables = BTreeSet::new();
        for reference in self.ctx.state().resolve_table_references(statement)? {
            let name = reference.table().to_lowercase();
            if let Some((table, relation)) = self.schema.resolve(&name) {
                tables.insert((table, relation.folder()));
            }
        }
        let mut missing = Vec::new();
        for (table, folder) in tables {
            if let Err(e) = self.schema.open_table(folder, &table).await {
                match table_error(&e) {
                    Some(TableError::NotAt { table, reason, .. }) => missing.push((table.clone(), reason.clone())),
                    _ => return Err(e.into()),
                }
            }
        }
        let Some(version) = self.schema.options().table_version else { return Ok(()) };
        let hint = match version {
            TableVersion::Version(_) => {
                "; each table numbers its own commits, so a commit time reads every table as of one instant"
            }
            TableVersion::Timestamp(_) => "",
        };
        match missing.as_slice() {
            [] => Ok(()),
            [(table, reason)] => Err(QueryError::Usage(format!("table '{table}' has no {version}: {reason}{hint}"))),
            _ => {
                let listed: Vec<String> = missing.iter().map(|(table, reason)| format!("{table} ({reason})")).collect();
                Err(QueryError::Usage(format!("tables {} have no {version}{hint}", listed.join(", "))))
            }
        }
    }

    /// Hints about the result of `frame` (a frame [`QuerySession::execute`] returned), for the
    /// user to read next to it: an as-of instant before an object's first version, a live state
    /// whose initial sync never completed (see [`crate::notes`]).
    pub async fn notes(&self, frame: &DataFrame) -> Result<Vec<Note>> {
        self.notes.for_plan(&self.ctx, &self.schema, frame.logical_plan()).await
    }

    /// Runs a single-statement query.
    pub async fn sql(&self, sql: &str) -> Result<DataFrame> {
        let mut statements = self.parse(sql)?;
        match statements.len() {
            1 => self.execute(statements.remove(0)).await,
            0 => Err(QueryError::Usage("empty query".into())),
            n => Err(QueryError::Usage(format!("expected one statement, got {n}; separate runs or use the shell"))),
        }
    }

    /// Every relation of every lake table and mart, sorted by name.
    pub fn tables(&self) -> Vec<TableListing> {
        self.schema.relations()
    }

    /// The columns of a relation (`\d name`).
    pub async fn describe(&self, name: &str) -> Result<SchemaRef> {
        let provider = self.schema.table(name).await?.ok_or_else(|| self.schema.unknown_table(name))?;
        Ok(provider.schema())
    }
}
