//! [`LiveTable`]: a history table seen as its live state, now or as of an instant.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deltalake::arrow::datatypes::SchemaRef;
use deltalake::datafusion::catalog::{Session, TableProvider};
use deltalake::datafusion::common::{DFSchema, Result, ScalarValue};
use deltalake::datafusion::datasource::TableType;
use deltalake::datafusion::logical_expr::utils::conjunction;
use deltalake::datafusion::logical_expr::{Expr, TableProviderFilterPushDown, ident, lit, not};
use deltalake::datafusion::physical_plan::expressions::Column;
use deltalake::datafusion::physical_plan::filter::FilterExec;
use deltalake::datafusion::physical_plan::projection::ProjectionExec;
use deltalake::datafusion::physical_plan::{ExecutionPlan, PhysicalExpr};

#[cfg(test)]
use crate::columns::ID;
use crate::columns::{DELETED, INGESTED_AT, VERSION_AT, key_column, version_order};
use crate::latest::LatestVersionExec;

/// Each record's last version in a history table ([`LatestVersionExec`]'s order), records whose
/// last version is a delete left out; with an instant, only versions at or before it count.
///
/// The schema is the history table's. A scan reads the projected columns plus the four the
/// version order needs. Filters on `Id` alone are applied before the latest version is chosen
/// (they select whole records, so the result is the same and point lookups stay cheap); any
/// other filter is applied by DataFusion above this table, since a filter on a field must see
/// only each record's last version.
#[derive(Debug)]
pub struct LiveTable {
    history: Arc<dyn TableProvider>,
    as_of: Option<DateTime<Utc>>,
}

impl LiveTable {
    /// The live state of `history` (a history table's provider).
    pub fn new(history: Arc<dyn TableProvider>) -> LiveTable {
        LiveTable { history, as_of: None }
    }

    /// The state of `history` as of `at`: versions with `_version_at` after it are ignored.
    pub fn as_of(history: Arc<dyn TableProvider>, at: DateTime<Utc>) -> LiveTable {
        LiveTable { history, as_of: Some(at) }
    }
}

/// Whether `filter` keeps or drops whole records, so it may run before the latest version is
/// chosen: it reads only the record key (`key`: `Id` or `_key`), and gives the same answer for
/// every version (not `random()`).
fn selects_records(filter: &Expr, key: &str) -> bool {
    let columns = filter.column_refs();
    !columns.is_empty() && columns.iter().all(|c| c.name == key) && !filter.is_volatile()
}

#[async_trait]
impl TableProvider for LiveTable {
    fn schema(&self) -> SchemaRef {
        self.history.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        let schema = self.history.schema();
        let key = key_column(&schema);
        Ok(filters
            .iter()
            .map(|f| {
                if selects_records(f, key) {
                    TableProviderFilterPushDown::Inexact
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
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let schema = self.history.schema();
        let wanted: Vec<usize> = projection.cloned().unwrap_or_else(|| (0..schema.fields().len()).collect());
        let mut read = wanted.clone();
        for column in version_order(&schema).into_iter().chain([key_column(&schema), INGESTED_AT, DELETED]) {
            read.push(schema.index_of(column)?);
        }
        read.sort_unstable();
        read.dedup();

        let key = key_column(&schema);
        let mut predicates: Vec<Expr> = filters.iter().filter(|f| selects_records(f, key)).cloned().collect();
        if let Some(at) = self.as_of {
            let at = ScalarValue::TimestampMicrosecond(Some(at.timestamp_micros()), Some("UTC".into()));
            predicates.push(ident(VERSION_AT).lt_eq(lit(at)));
        }
        // The history table uses them to skip files; it may not apply them row by row.
        let refs: Vec<&Expr> = predicates.iter().collect();
        let supported = self.history.supports_filters_pushdown(&refs)?;
        let pushed: Vec<Expr> = predicates
            .iter()
            .zip(supported)
            .filter(|(_, s)| *s != TableProviderFilterPushDown::Unsupported)
            .map(|(p, _)| p.clone())
            .collect();
        let mut plan = self.history.scan(state, Some(&read), &pushed, None).await?;
        if let Some(predicate) = conjunction(predicates) {
            let predicate = state.create_physical_expr(predicate, &DFSchema::try_from(plan.schema())?)?;
            plan = Arc::new(FilterExec::try_new(predicate, plan)?);
        }

        let latest: Arc<dyn ExecutionPlan> = Arc::new(LatestVersionExec::try_new(plan)?);
        let live = state.create_physical_expr(not(ident(DELETED)), &DFSchema::try_from(latest.schema())?)?;
        let live: Arc<dyn ExecutionPlan> = Arc::new(FilterExec::try_new(live, latest)?);
        let output = live.schema();
        let columns = wanted
            .iter()
            .map(|&i| {
                let name = schema.field(i).name();
                let column: Arc<dyn PhysicalExpr> = Arc::new(Column::new(name, output.index_of(name)?));
                Ok((column, name.clone()))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Arc::new(ProjectionExec::try_new(columns, live)?))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use deltalake::arrow::array::{AsArray, RecordBatch};
    use deltalake::arrow::util::pretty::pretty_format_batches;
    use deltalake::datafusion::datasource::MemTable;
    use deltalake::datafusion::prelude::{SessionConfig, SessionContext};

    use super::*;
    use crate::latest::tests::{Version, batch, schema};

    /// Versions of five records spread over three partitions, in no particular order.
    fn partitions() -> Vec<Vec<RecordBatch>> {
        let v = |id, at, ingested, deleted, name: &str| -> Version {
            (Some(id), Some(at), Some(ingested), Some(deleted), name.to_owned())
        };
        vec![
            vec![batch(&[v("a", 30, 3, false, "a3"), v("b", 10, 1, false, "b1"), v("e", 10, 1, false, "e1")])],
            vec![
                batch(&[v("a", 10, 1, false, "a1"), v("c", 10, 1, false, "c1"), v("b", 20, 2, true, "b2-deleted")]),
                batch(&[v("c", 25, 2, true, "c2-deleted"), v("d", 40, 3, false, "d3")]),
            ],
            vec![batch(&[v("c", 35, 3, false, "c3-undeleted"), v("a", 20, 2, false, "a2"), v("e", 20, 2, false, "e2")])],
        ]
    }

    async fn names(ctx: &SessionContext, sql: &str) -> BTreeMap<String, String> {
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let mut out = BTreeMap::new();
        for b in &batches {
            let id = deltalake::arrow::compute::cast(b.column(0), &deltalake::arrow::datatypes::DataType::Utf8).unwrap();
            for row in 0..b.num_rows() {
                out.insert(id.as_string::<i32>().value(row).to_owned(), b.column(1).as_string::<i32>().value(row).to_owned());
            }
        }
        out
    }

    fn expect(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
    }

    async fn context(target_partitions: usize) -> SessionContext {
        let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(target_partitions));
        let history: Arc<dyn TableProvider> = Arc::new(MemTable::try_new(schema(), partitions()).unwrap());
        ctx.register_table("live", Arc::new(LiveTable::new(history.clone()))).unwrap();
        let at = DateTime::from_timestamp_micros(25).unwrap();
        ctx.register_table("at25", Arc::new(LiveTable::as_of(history, at))).unwrap();
        ctx
    }

    #[tokio::test]
    async fn live_and_as_of_state_for_any_partitioning() {
        for target_partitions in [1, 2, 4] {
            let ctx = context(target_partitions).await;
            let live = names(&ctx, r#"SELECT "Id", "Name" FROM live"#).await;
            assert_eq!(
                live,
                expect(&[("a", "a3"), ("c", "c3-undeleted"), ("d", "d3"), ("e", "e2")]),
                "{target_partitions} partitions"
            );
            let at = names(&ctx, r#"SELECT "Id", "Name" FROM at25"#).await;
            assert_eq!(at, expect(&[("a", "a2"), ("e", "e2")]), "{target_partitions} partitions");
            let count = ctx.sql("SELECT count(*) AS n FROM live").await.unwrap().collect().await.unwrap();
            assert_eq!(pretty_format_batches(&count).unwrap().to_string().lines().nth(3), Some("| 4 |"));
        }
    }

    #[test]
    fn only_stable_filters_on_id_select_records() {
        use deltalake::datafusion::functions::math::expr_fn::random;
        let id = || ident(ID).eq(lit("a"));
        assert!(selects_records(&id(), ID));
        assert!(selects_records(&ident(ID).like(lit("00Q%")).or(id()), ID));
        assert!(!selects_records(&ident("Name").eq(lit("a")), ID));
        assert!(!selects_records(&ident("Name").eq(lit("a")).or(id()), ID));
        assert!(
            !selects_records(&random().lt(lit(0.5)).or(id()), ID),
            "a volatile filter could drop a record's last version only"
        );
        assert!(!selects_records(&lit(true), ID));
        assert!(selects_records(&ident("_key").eq(lit("7")), "_key"));
        assert!(!selects_records(&id(), "_key"), "Id is an ordinary column where the key is _key");
    }

    #[tokio::test]
    async fn filters_on_fields_see_only_the_last_version() {
        let ctx = context(2).await;
        // "a1" is an old version of a live record: a field filter must not resurrect it.
        let old = names(&ctx, r#"SELECT "Id", "Name" FROM live WHERE "Name" = 'a1'"#).await;
        assert_eq!(old, expect(&[]));
        let by_id = names(&ctx, r#"SELECT "Id", "Name" FROM live WHERE "Id" IN ('a', 'b')"#).await;
        assert_eq!(by_id, expect(&[("a", "a3")]));
        let plan = ctx.sql(r#"EXPLAIN SELECT "Name" FROM live WHERE "Id" = 'a'"#).await.unwrap().collect().await.unwrap();
        let plan = pretty_format_batches(&plan).unwrap().to_string();
        let physical = &plan[plan.find("physical_plan").unwrap()..];
        let latest = physical.find("LatestVersionExec").unwrap();
        assert!(physical[latest..].contains("Id@0 = a"), "the Id filter runs below the operator:\n{plan}");
    }
}
