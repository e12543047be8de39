//! The relations each history table is seen through, as DataFusion logical plans: history (every
//! version), live (each record's last version; optionally as of an instant) and SCD2. A mart's
//! two relations ([`Relation::Mart`], [`Relation::MartCurrent`]) are planned in [`crate::marts`].
//!
//! Plans are built with `LogicalPlanBuilder` rather than SQL text so that the `as_of` table
//! function can build one synchronously while a query is being planned. The semantics are the
//! ones [`crate::ddl`] writes for outside engines (see [`crate::names::VERSION_ORDER`]).

use std::borrow::Cow;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use tidemark_lake::arrow::datatypes::{Schema, SchemaRef};
use tidemark_lake::columns::{DELETED, VERSION_AT};
use tidemark_lake::datafusion::catalog::{Session, TableProvider};
use tidemark_lake::datafusion::common::{Result, ScalarValue};
use tidemark_lake::datafusion::datasource::{TableType, ViewTable, provider_as_source};
use tidemark_lake::datafusion::functions_window::expr_fn::lead;
use tidemark_lake::datafusion::logical_expr::{
    Expr, ExprFunctionExt, LogicalPlan, LogicalPlanBuilder, SortExpr, TableProviderFilterPushDown, ident, lit, not,
};
use tidemark_lake::datafusion::physical_plan::ExecutionPlan;
use tidemark_lake::datafusion::prelude::coalesce;
use tidemark_lake::live::LiveTable;

use crate::catalog::Folder;
use crate::names::{
    CURRENT_SUFFIX, END_OF_TIME, HISTORY_SUFFIX, IS_CURRENT, SCD2_SUFFIX, VALID_FROM, VALID_TO, column_name, is_metadata,
};

/// Which relation of an object or of a mart (a dimension model's table) a SQL name refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Relation {
    /// `<object>`: live records (or their state as of an instant).
    Live,
    /// `<object>_history`: every version.
    History,
    /// `<object>_scd2`: validity windows.
    Scd2,
    /// `<mart>`: the dimension table as stored, every row and column.
    Mart,
    /// `<mart>_current`: the dimension's rows whose current-row flag is true.
    MartCurrent,
}

impl Relation {
    /// The relations of an object.
    pub const ALL: [Relation; 3] = [Relation::Live, Relation::History, Relation::Scd2];
    /// The relations of a mart.
    pub const MART: [Relation; 2] = [Relation::Mart, Relation::MartCurrent];

    /// The SQL name of this relation of the table `table` (a lower-case object or model name).
    pub fn sql_name(self, table: &str) -> String {
        match self {
            Relation::Live | Relation::Mart => table.to_owned(),
            Relation::History => format!("{table}{HISTORY_SUFFIX}"),
            Relation::Scd2 => format!("{table}{SCD2_SUFFIX}"),
            Relation::MartCurrent => format!("{table}{CURRENT_SUFFIX}"),
        }
    }

    /// Where the relation's Delta table lives.
    pub fn folder(self) -> Folder {
        match self {
            Relation::Live | Relation::History | Relation::Scd2 => Folder::Objects,
            Relation::Mart | Relation::MartCurrent => Folder::Marts,
        }
    }

    /// Splits a lower-case SQL name into a table and a relation, given the lake's tables. An exact
    /// table name wins over a suffix, so an object whose API name ends in `_history` (a custom
    /// object's `Invoice__History`) is still its own live table.
    pub fn resolve<'a>(name: &str, is_table: impl Fn(&str) -> bool) -> Option<(String, Relation)> {
        if is_table(name) {
            return Some((name.to_owned(), Relation::Live));
        }
        for (suffix, relation) in [(HISTORY_SUFFIX, Relation::History), (SCD2_SUFFIX, Relation::Scd2)] {
            if let Some(table) = name.strip_suffix(suffix) {
                if is_table(table) {
                    return Some((table.to_owned(), relation));
                }
            }
        }
        None
    }

    /// [`Relation::resolve`] for marts: an exact mart name, else `<mart>_current`.
    pub fn resolve_mart(name: &str, is_mart: impl Fn(&str) -> bool) -> Option<(String, Relation)> {
        if is_mart(name) {
            return Some((name.to_owned(), Relation::Mart));
        }
        name.strip_suffix(CURRENT_SUFFIX).filter(|m| is_mart(m)).map(|m| (m.to_owned(), Relation::MartCurrent))
    }

    /// Resolves a lower-case SQL name against the lake's objects and marts. Object relations win
    /// a clash, name by name: a mart named like an object (or like one of its relations) is
    /// reached only through the names no object relation takes. Objects came first, and a
    /// model's new table must not change what an existing query reads.
    pub fn resolve_in(
        name: &str,
        is_object: impl Fn(&str) -> bool,
        is_mart: impl Fn(&str) -> bool,
    ) -> Option<(String, Relation)> {
        Relation::resolve(name, is_object).or_else(|| Relation::resolve_mart(name, is_mart))
    }

    pub fn describe(self) -> &'static str {
        match self {
            Relation::Live => "live",
            Relation::History => "history",
            Relation::Scd2 => "scd2",
            Relation::Mart => "mart",
            Relation::MartCurrent => "current",
        }
    }
}

/// `valid_to` of a current version: 9999-12-31T00:00:00Z in µs.
fn end_of_time() -> ScalarValue {
    let micros = NaiveDate::parse_from_str(END_OF_TIME, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_micros());
    ScalarValue::TimestampMicrosecond(micros, Some("UTC".into()))
}

/// The table's version order ([`crate::names::VERSION_ORDER`], with `_lsn` where the table has it).
fn version_order(schema: &Schema, ascending: bool) -> Vec<SortExpr> {
    tidemark_lake::columns::version_order(schema).into_iter().map(|c| ident(c).sort(ascending, false)).collect()
}

/// Non-metadata columns, physical names, in table order (`Id` first among them).
fn field_columns(schema: &Schema) -> impl Iterator<Item = &str> {
    schema.fields().iter().map(|f| f.name().as_str()).filter(|c| !is_metadata(c))
}

fn renamed(physical: &str) -> Expr {
    ident(physical).alias(column_name(physical))
}

/// A scan of the lake table `table`, named as its history relation.
fn scan(table: &str, provider: Arc<dyn TableProvider>) -> Result<LogicalPlanBuilder> {
    LogicalPlanBuilder::scan(Relation::History.sql_name(table), provider_as_source(provider), None)
}

/// A view that catalogs (psql's `\dt`, `information_schema.tables`, BI tools' table lists) list
/// as a table: `<object>_history`, the stored table it is though planned as a view renaming the
/// Delta table's columns, and the Postgres catalog tables planned over the library's. Everything
/// else is the view's, so queries are planned through it.
#[derive(Debug)]
pub struct TableView(pub ViewTable);

#[async_trait]
impl TableProvider for TableView {
    fn schema(&self) -> SchemaRef {
        self.0.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn get_logical_plan(&self) -> Option<Cow<'_, LogicalPlan>> {
        self.0.get_logical_plan()
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        self.0.supports_filters_pushdown(filters)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.0.scan(state, projection, filters, limit).await
    }
}

/// The scan under `<object>` and `as_of('<object>', …)`: the lake's [`LiveTable`], marked with
/// the lake table and the instant it shows, so a planned query tells which live states it
/// reads (for the hints of [`crate::notes`]).
#[derive(Debug)]
pub struct LiveScan {
    /// The lake table (lower-case object name).
    pub table: String,
    /// The instant of an as-of state; `None` for the live state.
    pub as_of: Option<DateTime<Utc>>,
    live: LiveTable,
}

#[async_trait]
impl TableProvider for LiveScan {
    fn schema(&self) -> SchemaRef {
        self.live.schema()
    }

    fn table_type(&self) -> TableType {
        self.live.table_type()
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        self.live.supports_filters_pushdown(filters)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.live.scan(state, projection, filters, limit).await
    }
}

/// `<object>_history`: every column, renamed to lower case.
pub fn history_plan(table: &str, provider: Arc<dyn TableProvider>) -> Result<LogicalPlan> {
    let schema = provider.schema();
    scan(table, provider)?.project(schema.fields().iter().map(|f| renamed(f.name())))?.build()
}

/// `<object>`: each Id's last version in the version order ([`crate::names::VERSION_ORDER`]) (among versions at or before `as_of`
/// when given), left out when that version is a delete. Columns: the fields, then `_version_at`.
/// The scan is the lake's [`LiveTable`], shared with `tidemark status` and reconciliation.
pub fn live_plan(table: &str, provider: Arc<dyn TableProvider>, as_of: Option<DateTime<Utc>>) -> Result<LogicalPlan> {
    let schema = provider.schema();
    let live = match as_of {
        Some(at) => LiveTable::as_of(provider, at),
        None => LiveTable::new(provider),
    };
    let columns: Vec<Expr> = field_columns(&schema).chain([VERSION_AT]).map(renamed).collect();
    scan(table, Arc::new(LiveScan { table: table.to_owned(), as_of, live }))?.project(columns)?.build()
}

/// `<object>_scd2`: one row per non-delete version, valid from its `_version_at` until the next
/// version's (a delete closes the window; [`END_OF_TIME`] when nothing followed).
pub fn scd2_plan(table: &str, provider: Arc<dyn TableProvider>) -> Result<LogicalPlan> {
    const NEXT: &str = "__tm_next";
    let schema = provider.schema();
    let next = lead(ident(VERSION_AT), Some(1), None)
        .partition_by(vec![ident(tidemark_lake::columns::key_column(&schema))])
        .order_by(version_order(&schema, true))
        .build()?
        .alias(NEXT);
    let mut columns: Vec<Expr> = field_columns(&schema).map(renamed).collect();
    columns.push(ident(VERSION_AT).alias(VALID_FROM));
    columns.push(coalesce(vec![ident(NEXT), lit(end_of_time())]).alias(VALID_TO));
    columns.push(ident(NEXT).is_null().alias(IS_CURRENT));
    scan(table, provider)?
        .window(vec![next])?
        // After the window: a delete must still close the window of the version before it.
        .filter(not(ident(DELETED)))?
        .project(columns)?
        .build()
}

/// The plan of `relation` over the provider of the lake table `table`'s history (for a mart's
/// relations, see [`crate::marts::mart_relation`]).
pub fn plan(
    relation: Relation,
    table: &str,
    provider: Arc<dyn TableProvider>,
    as_of: Option<DateTime<Utc>>,
) -> Result<LogicalPlan> {
    match relation {
        Relation::Live => live_plan(table, provider, as_of),
        Relation::History => history_plan(table, provider),
        Relation::Scd2 => scd2_plan(table, provider),
        Relation::Mart | Relation::MartCurrent => {
            tidemark_lake::datafusion::common::internal_err!(
                "{} is a mart's relation, not a history table's",
                relation.sql_name(table)
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_exact_table_first() {
        let tables = ["account", "invoice__history", "invoice"];
        let is_table = |t: &str| tables.contains(&t);
        assert_eq!(Relation::resolve("account", is_table), Some(("account".into(), Relation::Live)));
        assert_eq!(Relation::resolve("account_history", is_table), Some(("account".into(), Relation::History)));
        assert_eq!(Relation::resolve("account_scd2", is_table), Some(("account".into(), Relation::Scd2)));
        assert_eq!(Relation::resolve("invoice__history", is_table), Some(("invoice__history".into(), Relation::Live)));
        assert_eq!(Relation::resolve("contact", is_table), None);
        assert_eq!(Relation::Scd2.sql_name("account"), "account_scd2");
    }

    #[test]
    fn mart_names_resolve_after_object_names() {
        let objects = ["account", "case"];
        let marts = ["dim_customer", "dim_customer_current", "account", "case_history"];
        let resolve = |name: &str| Relation::resolve_in(name, |t| objects.contains(&t), |m| marts.contains(&m));
        assert_eq!(resolve("dim_customer"), Some(("dim_customer".into(), Relation::Mart)));
        assert_eq!(resolve("dim_customer_current"), Some(("dim_customer_current".into(), Relation::Mart)), "exact first");
        assert_eq!(resolve("dim_customer_current_current"), Some(("dim_customer_current".into(), Relation::MartCurrent)));
        // Object relations win, name by name.
        assert_eq!(resolve("account"), Some(("account".into(), Relation::Live)));
        assert_eq!(resolve("account_current"), Some(("account".into(), Relation::MartCurrent)));
        assert_eq!(resolve("case_history"), Some(("case".into(), Relation::History)));
        assert_eq!(resolve("case_history_current"), Some(("case_history".into(), Relation::MartCurrent)));
        assert_eq!(resolve("dim_account_current"), None);
        assert_eq!(Relation::MartCurrent.sql_name("dim_customer"), "dim_customer_current");
        assert_eq!(Relation::Mart.folder(), Folder::Marts);
    }

    #[test]
    fn end_of_time_is_the_last_day_of_9999() {
        let ScalarValue::TimestampMicrosecond(Some(us), _) = end_of_time() else { panic!("not a timestamp") };
        assert_eq!(DateTime::from_timestamp_micros(us).unwrap().to_rfc3339(), "9999-12-31T00:00:00+00:00");
    }
}
