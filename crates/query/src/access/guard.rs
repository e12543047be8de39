//! A relation seen through a role's column rules and row filters.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use tidemark_core::access::ColumnRule;
use tidemark_lake::arrow::datatypes::SchemaRef;
use tidemark_lake::columns::parse_column_name;
use tidemark_lake::datafusion::catalog::{Session, TableProvider};
use tidemark_lake::datafusion::common::tree_node::TreeNodeRecursion;
use tidemark_lake::datafusion::common::{DataFusionError, Result, ScalarValue};
use tidemark_lake::datafusion::datasource::{TableType, provider_as_source};
use tidemark_lake::datafusion::execution::{SendableRecordBatchStream, SessionState, TaskContext};
use tidemark_lake::datafusion::logical_expr::expr_rewriter::unnormalize_cols;
use tidemark_lake::datafusion::logical_expr::utils::conjunction;
use tidemark_lake::datafusion::logical_expr::{
    BinaryExpr, Expr, LogicalPlan, LogicalPlanBuilder, Operator, TableProviderFilterPushDown, ident, lit,
};
use tidemark_lake::datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PhysicalExpr, PlanProperties};

use super::{UserRules, mask, row_filter};

/// `inner` (the relation `relation` of table `table`) under `rules`' column rules and row
/// filters; `inner` itself when none applies, so an unrestricted relation keeps every
/// optimisation.
pub(super) fn guard(
    relation: &str,
    table: &str,
    key_column: Option<&str>,
    inner: Arc<dyn TableProvider>,
    rules: &UserRules,
    planning: &SessionState,
) -> Result<Arc<dyn TableProvider>> {
    let role = &rules.principal.role;
    if !role.restricts(table) {
        return Ok(inner);
    }
    let table_type = inner.table_type();
    let builder = LogicalPlanBuilder::scan(relation, provider_as_source(inner.clone()), None)?;
    let filters = role
        .row_filters(table)
        .into_iter()
        .map(|f| row_filter::plan(f, &rules.principal, planning, builder.schema()))
        .collect::<Result<Vec<_>>>()?;
    let barrier = !filters.is_empty();
    let builder = match conjunction(filters) {
        Some(predicate) => builder.filter(predicate)?,
        None => builder,
    };
    let mut columns = Vec::new();
    let mut changed = barrier;
    for field in inner.schema().fields() {
        let name = field.name();
        let Some(decision) = role.column_rule(table, parse_column_name(name).0) else {
            columns.push(ident(name));
            continue;
        };
        let text = tidemark_lake::policy::is_text(field.data_type());
        let column = match decision.rule {
            ColumnRule::Allow => ident(name),
            ColumnRule::Deny => {
                changed = true;
                continue;
            }
            ColumnRule::Null => lit(ScalarValue::try_from(field.data_type())?).alias(name),
            ColumnRule::Hash | ColumnRule::Mask(_) if text => {
                mask::masked(ident(name), field.data_type(), decision.rule, rules.hash_key.as_ref())?.alias(name)
            }
            // A glob means "the text columns like this": others are hidden, failing closed.
            _ if !decision.exact => {
                changed = true;
                continue;
            }
            rule => {
                return Err(DataFusionError::Plan(format!(
                    "{}: {relation}.{name} is {}, not text: {} applies to text columns (null or deny fit any type)",
                    decision.path,
                    field.data_type(),
                    rule.name()
                )));
            }
        };
        changed |= decision.rule != ColumnRule::Allow;
        columns.push(column);
    }
    if !changed {
        return Ok(inner);
    }
    let plan = builder.project(columns)?.build()?;
    let schema = Arc::new(plan.schema().as_arrow().clone());
    Ok(Arc::new(GuardedTable {
        relation: relation.to_owned(),
        plan,
        schema,
        table_type,
        barrier,
        key_column: key_column.map(str::to_owned),
    }))
}

/// A relation planned as a filter and a projection over the original; see the module docs of
/// [`crate::access`]. It hands DataFusion no logical plan to inline and no definition to show.
#[derive(Debug)]
pub struct GuardedTable {
    relation: String,
    plan: LogicalPlan,
    schema: SchemaRef,
    table_type: TableType,
    /// Row filters apply: only predicates that cannot fail may go below them.
    barrier: bool,
    /// The record key, whose equality predicates may go below the row filters.
    key_column: Option<String>,
}

impl GuardedTable {
    pub fn relation(&self) -> &str {
        &self.relation
    }

    /// `key = literal` or `key IN (literals)`: cannot fail, reveals nothing about other rows.
    fn leak_proof(&self, filter: &Expr) -> bool {
        let Some(key) = &self.key_column else { return false };
        let is_key = |e: &Expr| matches!(e, Expr::Column(c) if c.name == *key);
        let is_literal = |e: &Expr| matches!(e, Expr::Literal(..));
        match filter {
            Expr::BinaryExpr(BinaryExpr { left, op: Operator::Eq, right }) => {
                (is_key(left) && is_literal(right)) || (is_literal(left) && is_key(right))
            }
            Expr::InList(list) => is_key(&list.expr) && list.list.iter().all(is_literal),
            _ => false,
        }
    }
}

#[async_trait]
impl TableProvider for GuardedTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        self.table_type
    }

    fn get_logical_plan(&self) -> Option<Cow<'_, LogicalPlan>> {
        None
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| {
                if !self.barrier || self.leak_proof(f) {
                    TableProviderFilterPushDown::Exact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let mut builder = LogicalPlanBuilder::from(self.plan.clone());
        if let Some(predicate) = conjunction(unnormalize_cols(filters.iter().cloned())) {
            builder = builder.filter(predicate)?;
        }
        if let Some(columns) = projection {
            builder = builder.project(columns.iter().map(|&i| ident(self.schema.field(i).name())))?;
        }
        if let Some(limit) = limit {
            // Every pushed filter is applied above, so the limit counts rows the user sees.
            builder = builder.limit(0, Some(limit))?;
        }
        let plan = builder.build()?;
        let physical = state.create_physical_plan(&plan).await?;
        Ok(Arc::new(GuardExec { relation: self.relation.clone(), inner: physical }))
    }
}

/// The physical scan of a guarded relation. It shows DataFusion no children, so nothing above
/// can rewrite its inside (push a predicate below the row filter), and `EXPLAIN` prints only
/// the relation's name, never the row filter, the masks or the hidden columns.
#[derive(Debug)]
pub struct GuardExec {
    relation: String,
    inner: Arc<dyn ExecutionPlan>,
}

impl DisplayAs for GuardExec {
    fn fmt_as(&self, _format: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TidemarkGuard: relation={}", self.relation)
    }
}

impl ExecutionPlan for GuardExec {
    fn name(&self) -> &str {
        "TidemarkGuard"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.inner.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(self: Arc<Self>, _children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn reset_state(self: Arc<Self>) -> Result<Arc<dyn ExecutionPlan>> {
        // The inner plan is hidden from the walk that resets each node, so reset it whole here.
        use tidemark_lake::datafusion::common::tree_node::{Transformed, TreeNode};
        let inner = self.inner.clone().transform_up(|node| Ok(Transformed::yes(node.reset_state()?)))?.data;
        Ok(Arc::new(GuardExec { relation: self.relation.clone(), inner }))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        self.inner.execute(partition, context)
    }
}
