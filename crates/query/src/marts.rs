//! Dimension models' tables (`<lake>/marts/<model>/`, written by `tidemark-models`) as SQL
//! relations, next to the objects' (see `crates/models/README.md` for the table's layout):
//!
//! - `<mart>`: the Delta table as stored: every row, every column in the table's declared order
//!   (surrogate key, business key, attributes, validity, the current-row flag, the change hash,
//!   the `_` bookkeeping columns), names lower case (see [`mart_column_names`]). Catalogs list
//!   it as a table.
//! - `<mart>_current`: its rows whose current-row flag is true, a view.
//!
//! The flag is the table's one BOOLEAN partition column, read from its Delta metadata because
//! each model names it (`is_current` unless configured). Filtering on it is a partition filter,
//! so `<mart>_current` reads only the current partition's files.
//!
//! Lake time (`--table-version`, `--table-timestamp`) applies to marts as to history tables;
//! record time (`--as-of`, `as_of(…)`) does not: a mart carries its own validity columns, which
//! a query filters on.

use std::sync::Arc;

use tidemark_lake::arrow::datatypes::{DataType, Schema, SchemaRef};
use tidemark_lake::datafusion::catalog::TableProvider;
use tidemark_lake::datafusion::common::{Result, plan_err};
use tidemark_lake::datafusion::datasource::{ViewTable, provider_as_source};
use tidemark_lake::datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder, ident};
use tidemark_lake::deltalake::kernel::engine::arrow_conversion::TryIntoArrow;
use tidemark_lake::deltalake::{DeltaTable, DeltaTableError};

use crate::ddl::mart_current_definition;
use crate::names::mart_column_names;
use crate::views::{Relation, TableView};

/// What a mart's Delta metadata says that its table provider does not: the declared column
/// order (the provider moves partition columns last) and the partition columns, one of which is
/// the current-row flag.
#[derive(Debug, Clone)]
pub struct MartShape {
    /// The table's schema in its declared order, physical names.
    pub schema: SchemaRef,
    pub partition_columns: Vec<String>,
}

impl MartShape {
    /// The shape of the snapshot `delta` was loaded at.
    pub fn of(delta: &DeltaTable) -> Result<MartShape, DeltaTableError> {
        let snapshot = delta.snapshot()?;
        let schema: Schema = snapshot.schema().as_ref().try_into_arrow()?;
        Ok(MartShape { schema: Arc::new(schema), partition_columns: snapshot.metadata().partition_columns().to_vec() })
    }

    /// The current-row flag (physical name): the table's one partition column, when it is a
    /// BOOLEAN; `None` for a table not laid out as a model's.
    pub fn current(&self) -> Option<&str> {
        match self.partition_columns.as_slice() {
            [flag] => {
                self.schema.field_with_name(flag).ok().filter(|f| f.data_type() == &DataType::Boolean).map(|_| flag.as_str())
            }
            _ => None,
        }
    }

    /// The SQL names of the columns, in order.
    pub fn sql_columns(&self) -> Vec<String> {
        mart_column_names(self.schema.fields().iter().map(|f| f.name().as_str()))
    }
}

/// `<mart>`: every column in the declared order, renamed to its SQL name.
pub fn mart_plan(mart: &str, provider: Arc<dyn TableProvider>, shape: &MartShape) -> Result<LogicalPlan> {
    let columns = shape.schema.fields().iter().zip(shape.sql_columns()).map(|(f, sql)| ident(f.name()).alias(sql));
    LogicalPlanBuilder::scan(mart, provider_as_source(provider), None)?.project(columns)?.build()
}

/// `<mart>_current`: `<mart>` where the current-row flag is true. The filter is pushed through
/// the renaming projection into the scan, where it prunes the other partition.
pub fn current_plan(mart: &str, provider: Arc<dyn TableProvider>, shape: &MartShape) -> Result<LogicalPlan> {
    let Some(flag) = shape.current() else {
        return plan_err!(
            "mart '{mart}' has no current-row flag: a model's table is partitioned by one BOOLEAN column, this one by [{}]",
            shape.partition_columns.join(", ")
        );
    };
    let index = shape.schema.index_of(flag)?;
    let flag_sql = shape.sql_columns().swap_remove(index);
    LogicalPlanBuilder::from(mart_plan(mart, provider, shape)?).filter(ident(flag_sql))?.build()
}

/// The provider of a mart's `relation` over its Delta table's `provider`.
pub fn mart_relation(
    relation: Relation,
    mart: &str,
    provider: Arc<dyn TableProvider>,
    shape: &MartShape,
) -> Result<Arc<dyn TableProvider>> {
    Ok(match relation {
        Relation::MartCurrent => {
            let definition = shape.current().and_then(|flag| mart_current_definition(mart, &shape.schema, flag));
            Arc::new(ViewTable::new(current_plan(mart, provider, shape)?, definition))
        }
        // A table in every catalog, as `<object>_history` is: it is the stored table.
        Relation::Mart => Arc::new(TableView(ViewTable::new(mart_plan(mart, provider, shape)?, None))),
        other => return plan_err!("{} is not a mart's relation", other.sql_name(mart)),
    })
}
