//! `as_of('<object>', <instant>)` (or `as_of('<source>.<table>', …)`): a table function giving
//! an object's records as they were at an instant, so one query can compare several instants.
//!
//! ```sql
//! SELECT n.industry, count(*) FROM as_of('account', TIMESTAMP '2025-01-31T00:00:00Z') n GROUP BY 1
//! ```
//!
//! DataFusion plans table functions synchronously. A table the session has not opened yet is
//! opened on the spot, blocking the planning thread (which needs a multi-threaded runtime).

use std::sync::{Arc, Weak};

use chrono::DateTime;
use tidemark_lake::arrow::array::RecordBatch;
use tidemark_lake::arrow::datatypes::{DataType, Schema, TimeUnit};
use tidemark_lake::datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use tidemark_lake::datafusion::common::{DFSchema, ScalarValue, plan_err};
use tidemark_lake::datafusion::datasource::ViewTable;
use tidemark_lake::datafusion::error::{DataFusionError, Result};
use tidemark_lake::datafusion::logical_expr::{ColumnarValue, Expr};

use crate::catalog::LakeSchema;
use crate::names::table_name;
use crate::views::live_plan;

/// The `as_of` table function over the lake's schemas: `as_of('account', …)` for an object,
/// `as_of('app.orders', …)` for a source's table.
#[derive(Debug)]
pub struct AsOf {
    schema: Weak<LakeSchema>,
    sources: std::collections::HashMap<String, Weak<LakeSchema>>,
}

impl AsOf {
    /// The SQL name of the function.
    pub const NAME: &'static str = "as_of";

    pub fn new(schema: &Arc<LakeSchema>) -> AsOf {
        AsOf { schema: Arc::downgrade(schema), sources: Default::default() }
    }

    /// Also reads `<source>.<table>` from `schema`.
    pub fn with_source(mut self, source: &str, schema: &Arc<LakeSchema>) -> AsOf {
        self.sources.insert(source.to_ascii_lowercase(), Arc::downgrade(schema));
        self
    }
}

/// Evaluates a constant argument (a literal, `TIMESTAMP '…'`, `now() - INTERVAL '1 day'`).
fn constant(args: &TableFunctionArgs, expr: &Expr) -> Result<ScalarValue> {
    let physical = args.session().create_physical_expr(expr.clone(), &DFSchema::empty())?;
    match physical.evaluate(&RecordBatch::new_empty(Arc::new(Schema::empty())))? {
        ColumnarValue::Scalar(value) => Ok(value),
        ColumnarValue::Array(_) => plan_err!("as_of arguments must be constants"),
    }
}

/// What an `as_of(…)` call names: the source (`None` for a Salesforce object), the table (its
/// lake name) and the instant.
#[derive(Debug, Clone)]
pub(crate) struct AsOfTarget {
    pub source: Option<String>,
    pub table: String,
    pub at: DateTime<chrono::Utc>,
}

impl AsOfTarget {
    /// `account` or `app.orders`: the name grants and rules use.
    pub fn key(&self) -> String {
        match &self.source {
            Some(source) => format!("{source}.{}", self.table),
            None => self.table.clone(),
        }
    }
}

impl AsOf {
    /// Reads the call's arguments.
    pub(crate) fn target(args: &TableFunctionArgs) -> Result<AsOfTarget> {
        let [object, instant] = args.exprs() else {
            return plan_err!("as_of takes two arguments: as_of('<object>', TIMESTAMP '<instant>')");
        };
        let (ScalarValue::Utf8(Some(object)) | ScalarValue::Utf8View(Some(object)) | ScalarValue::LargeUtf8(Some(object))) =
            constant(args, object)?
        else {
            return plan_err!("as_of: the first argument is an object name in quotes, e.g. 'account'");
        };
        let micros = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        let at = match constant(args, instant)?.cast_to(&micros) {
            Ok(ScalarValue::TimestampMicrosecond(Some(us), _)) => DateTime::from_timestamp_micros(us),
            _ => None,
        };
        let Some(at) = at else {
            return plan_err!("as_of: the second argument must be a timestamp, e.g. TIMESTAMP '2025-01-31T00:00:00Z'");
        };
        Ok(match object.split_once('.') {
            Some((source, table)) => AsOfTarget { source: Some(source.to_ascii_lowercase()), table: table_name(table), at },
            None => AsOfTarget { source: None, table: table_name(&object), at },
        })
    }

    /// The schema `target` reads from; `None` for a source this lake does not have.
    pub(crate) fn schema(&self, target: &AsOfTarget) -> Result<Option<Arc<LakeSchema>>> {
        let schema = match &target.source {
            Some(source) => match self.sources.get(source) {
                Some(schema) => schema,
                None => return Ok(None),
            },
            None => &self.schema,
        };
        schema.upgrade().map(Some).ok_or_else(|| DataFusionError::Internal("lake session closed".into()))
    }

    /// The records of `target` at its instant.
    pub(crate) fn provider(&self, target: &AsOfTarget) -> Result<Arc<dyn TableProvider>> {
        let Some(schema) = self.schema(target)? else {
            return plan_err!("as_of: no source named '{}' in this lake", target.source.as_deref().unwrap_or_default());
        };
        let table = &target.table;
        let provider = match schema.ready_provider(table) {
            Some(p) => p,
            None => open_blocking(&schema, table)?,
        };
        let plan = live_plan(table, provider, Some(target.at))?;
        Ok(Arc::new(ViewTable::new(plan, None)))
    }
}

impl TableFunctionImpl for AsOf {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        self.provider(&AsOf::target(&args)?)
    }
}

fn open_blocking(schema: &Arc<LakeSchema>, table: &str) -> Result<Arc<dyn TableProvider>> {
    if !schema.lake_tables().iter().any(|t| t == table) {
        if schema.mart_tables().iter().any(|m| m == table) {
            // Record time is the objects' (`_version_at`); a mart dates its rows itself.
            return plan_err!(
                "as_of reads an object's records at an instant; '{table}' is a mart: filter on its validity columns instead"
            );
        }
        return Err(schema.unknown_table(table));
    }
    let handle = tokio::runtime::Handle::try_current().map_err(|e| DataFusionError::Internal(e.to_string()))?;
    if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
        return plan_err!("as_of('{table}', …) needs a multi-threaded runtime to open the table; query '{table}' first");
    }
    tokio::task::block_in_place(|| handle.block_on(schema.history_provider(table)))
}
