//! Access control for the SQL endpoint: what one user's session can name, see and read, from
//! the grants, column rules and row filters of [`tidemark_core::access`].
//!
//! Each user gets a DataFusion session of their own ([`user_context`]) whose catalog holds
//! [`GrantedSchema`]s over the lake's shared schemas. Everything DataFusion plans goes through
//! that catalog: named relations in any casing or qualification, joins, subqueries, CTEs,
//! views, `EXPLAIN`, prepared statements and cursors, and `information_schema` and
//! `pg_catalog`, which list the catalog's tables and their schemas. So:
//!
//! - a relation the role is not granted is absent from every listing, and naming it fails with
//!   [`AccessDenied`] (SQLSTATE 42501 on the wire), even in a CTE the query never reads;
//! - a granted relation with rules for its table is a [`guard::GuardedTable`]: the row filters
//!   apply to the relation's output (so `<object>` is filtered on each record's live state,
//!   `<object>_history` version by version), then the columns are projected: a denied column
//!   is absent from the schema, a masked one computed by a function no user can call by name;
//! - `as_of('<object>', …)` is checked and guarded the same way ([`as_of::GrantedAsOf`]), and so
//!   is a table read at a pinned table version: old data is seen through today's rules.
//!
//! The guarded scan is opaque to the rest of the plan (`TidemarkGuard` in `EXPLAIN`): the
//! user's predicates run above it, never below the row filter, except predicates on the record
//! key alone, which cannot fail and keep point lookups cheap.

use std::sync::Arc;

use tidemark_core::access::Principal;
use tidemark_core::governance::HashKey;
use tidemark_lake::datafusion::catalog::{CatalogProvider, MemoryCatalogProvider, MemoryCatalogProviderList};
use tidemark_lake::datafusion::common::DataFusionError;
use tidemark_lake::datafusion::execution::SessionStateBuilder;
use tidemark_lake::datafusion::prelude::SessionContext;

use crate::as_of::AsOf;
use crate::error::Result;
use crate::session::{CATALOG, QuerySession, SCHEMA};

mod as_of;
mod guard;
mod mask;
mod row_filter;
mod schema;

pub use guard::{GuardExec, GuardedTable};
pub use row_filter::check_row_filters;
pub use schema::GrantedSchema;

/// A query named a relation its user is not granted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("permission denied for table {relation}")]
pub struct AccessDenied {
    /// As the grants name it: `account`, `app.orders`, a mart, `push_runs`.
    pub relation: String,
}

impl AccessDenied {
    pub(crate) fn error(relation: &str) -> DataFusionError {
        DataFusionError::External(Box::new(AccessDenied { relation: relation.to_owned() }))
    }

    /// The refusal inside `error`, if that is what it is.
    pub fn find(error: &DataFusionError) -> Option<&AccessDenied> {
        match error.find_root() {
            DataFusionError::External(e) => e.downcast_ref::<AccessDenied>(),
            _ => None,
        }
    }
}

/// The lake's catalog as one user sees it: every schema can be asked for (so a hidden source's
/// table is refused by name), but only those holding something the user may read are listed
/// (`information_schema`, `pg_namespace`, `\dn`).
#[derive(Debug, Default)]
struct GrantedCatalog {
    schemas: MemoryCatalogProvider,
    unlisted: parking_lot::RwLock<std::collections::BTreeSet<String>>,
}

impl CatalogProvider for GrantedCatalog {
    fn schema_names(&self) -> Vec<String> {
        let unlisted = self.unlisted.read();
        self.schemas.schema_names().into_iter().filter(|s| !unlisted.contains(s)).collect()
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn tidemark_lake::datafusion::catalog::SchemaProvider>> {
        self.schemas.schema(name)
    }

    fn register_schema(
        &self,
        name: &str,
        schema: Arc<dyn tidemark_lake::datafusion::catalog::SchemaProvider>,
    ) -> tidemark_lake::datafusion::common::Result<Option<Arc<dyn tidemark_lake::datafusion::catalog::SchemaProvider>>> {
        self.schemas.register_schema(name, schema)
    }
}

/// What guarding needs to know about a user: who, with which role, and the key of the `hash`
/// rule.
#[derive(Debug, Clone)]
pub struct UserRules {
    pub principal: Arc<Principal>,
    pub hash_key: Option<Arc<HashKey>>,
}

/// A session for `rules`' user over `session`'s lake: the lake's schemas behind grants, the
/// `as_of` function checked and guarded, `information_schema` on. The opened tables are
/// shared with `session` (and every other user's context); only the rules differ.
pub fn user_context(session: &QuerySession, rules: UserRules) -> Result<SessionContext> {
    let (lake, sources, inner_as_of) = session.schemas();
    let rules = Arc::new(rules);
    let catalog = GrantedCatalog::default();
    catalog.register_schema(SCHEMA, Arc::new(GrantedSchema::new(lake.clone(), None, rules.clone())))?;
    for (name, schema) in sources {
        catalog.register_schema(name, Arc::new(GrantedSchema::new(schema.clone(), Some(name.clone()), rules.clone())))?;
        // A source the role reads nothing of is not listed (`\dn`, `pg_namespace`); naming
        // one of its tables is still refused by name.
        if !rules.principal.role.grants_source(name) {
            catalog.unlisted.write().insert(name.clone());
        }
    }
    let catalogs = MemoryCatalogProviderList::new();
    use tidemark_lake::datafusion::catalog::CatalogProviderList;
    catalogs.register_catalog(CATALOG.to_owned(), Arc::new(catalog));
    let mut state =
        SessionStateBuilder::new_from_existing(session.context().state()).with_catalog_list(Arc::new(catalogs)).build();
    state.config_mut().options_mut().catalog.information_schema = true;
    let ctx = SessionContext::new_with_state(state);
    // The copied state still holds the ungranted function: replace it.
    ctx.register_udtf(AsOf::NAME, Arc::new(as_of::GrantedAsOf::new(inner_as_of.clone(), rules)));
    Ok(ctx)
}
