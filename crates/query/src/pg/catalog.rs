//! What the endpoint adds to `datafusion-pg-catalog`'s `pg_catalog` for psql's meta-commands:
//! the roles `\du` lists, and the `pg_class` columns `\d+` reads that it lacks.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::context::{PgCatalogContextProvider, Role};
use parking_lot::Mutex;

use crate::views::TableView;
use tidemark_lake::arrow::datatypes::{DataType, Field};
use tidemark_lake::datafusion::catalog::{SchemaProvider, TableProvider};
use tidemark_lake::datafusion::common::{Result, ScalarValue};
use tidemark_lake::datafusion::datasource::{ViewTable, provider_as_source};
use tidemark_lake::datafusion::logical_expr::{Expr, LogicalPlanBuilder, col, lit};

/// The roles `pg_roles` lists: the one user of an endpoint with credentials; without them,
/// where any user name is let in, the users that have connected since the endpoint started.
/// Nobody is a superuser or may create anything: the endpoint is read-only.
#[derive(Debug, Clone)]
pub(super) struct Roles {
    configured: Option<String>,
    connected: Arc<Mutex<BTreeSet<String>>>,
}

impl Roles {
    pub(super) fn new(configured: Option<String>) -> Roles {
        Roles { configured, connected: Arc::default() }
    }

    /// Notes a user that has logged in.
    pub(super) fn connected(&self, user: &str) {
        if self.configured.is_none() {
            self.connected.lock().insert(user.to_owned());
        }
    }

    fn names(&self) -> Vec<String> {
        match &self.configured {
            Some(user) => vec![user.clone()],
            None => self.connected.lock().iter().cloned().collect(),
        }
    }
}

#[async_trait]
impl PgCatalogContextProvider for Roles {
    async fn roles(&self) -> Vec<String> {
        self.names()
    }

    async fn role(&self, name: &str) -> Option<Role> {
        self.names().iter().any(|n| n == name).then(|| Role {
            name: name.to_owned(),
            is_superuser: false,
            can_login: true,
            can_create_db: false,
            can_create_role: false,
            can_create_user: false,
            can_replication: false,
            grants: Vec::new(),
            inherited_roles: Vec::new(),
        })
    }
}

/// `pg_catalog` with `pg_class.reloptions`, which psql's `\d+` reads and
/// `datafusion-pg-catalog` leaves out. It is NULL for every relation, as in Postgres for a
/// relation without storage parameters: lake tables and views have none.
#[derive(Debug)]
pub(super) struct PgCatalog {
    inner: Arc<dyn SchemaProvider>,
}

impl PgCatalog {
    pub(super) fn new(inner: Arc<dyn SchemaProvider>) -> PgCatalog {
        PgCatalog { inner }
    }
}

#[async_trait]
impl SchemaProvider for PgCatalog {
    fn table_names(&self) -> Vec<String> {
        self.inner.table_names()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let table = self.inner.table(name).await?;
        match table {
            Some(pg_class) if name.eq_ignore_ascii_case("pg_class") => {
                let text_array = DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)));
                let mut columns: Vec<Expr> = pg_class.schema().fields().iter().map(|f| col(f.name())).collect();
                columns.push(lit(ScalarValue::try_from(&text_array)?).alias("reloptions"));
                let plan = LogicalPlanBuilder::scan("pg_class", provider_as_source(pg_class), None)?.project(columns)?.build()?;
                Ok(Some(Arc::new(TableView(ViewTable::new(plan, None)))))
            }
            other => Ok(other),
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        self.inner.table_exist(name)
    }
}
