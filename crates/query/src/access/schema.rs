//! [`GrantedSchema`]: a lake schema as one user may see it.

use std::sync::Arc;

use async_trait::async_trait;
use tidemark_core::access::TableKind;
use tidemark_lake::datafusion::catalog::{SchemaProvider, TableProvider};
use tidemark_lake::datafusion::error::{DataFusionError, Result};
use tidemark_lake::datafusion::execution::{SessionState, SessionStateBuilder};

use super::{AccessDenied, UserRules, guard};
use crate::catalog::{Folder, LakeSchema, close_matches};
use crate::internal;
use crate::views::Relation;

/// The relations of a [`LakeSchema`] that a user's role is granted, each guarded by the role's
/// rules. Hidden relations are not listed; naming one fails with [`AccessDenied`].
pub struct GrantedSchema {
    inner: Arc<LakeSchema>,
    /// The source this schema holds, `None` for the lake's default schema.
    source: Option<String>,
    rules: Arc<UserRules>,
    /// Plans row filters (SQL text) into expressions; holds no tables.
    planning: SessionState,
}

impl std::fmt::Debug for GrantedSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrantedSchema").field("source", &self.source).field("user", &self.rules.principal.user).finish()
    }
}

/// What a lower-case SQL name refers to, as the grants see it.
pub(super) struct Named {
    pub kind: TableKind,
    /// The name grants and rules use: `account`, `app.orders`, a mart, an internal table.
    pub table: String,
    pub relation: Option<Relation>,
}

impl GrantedSchema {
    pub fn new(inner: Arc<LakeSchema>, source: Option<String>, rules: Arc<UserRules>) -> GrantedSchema {
        let planning = SessionStateBuilder::new().with_default_features().build();
        GrantedSchema { inner, source, rules, planning }
    }

    /// The grant key of a lake table of this schema.
    fn key(&self, table: &str) -> String {
        match &self.source {
            Some(source) => format!("{source}.{table}"),
            None => table.to_owned(),
        }
    }

    /// What `name` (lower case) refers to in this schema, if anything.
    fn named(&self, name: &str) -> Option<Named> {
        if let Some((table, relation)) = self.inner.resolve(name) {
            let kind = if relation.folder() == Folder::Marts { TableKind::Mart } else { TableKind::Object };
            let table = if kind == TableKind::Object { self.key(&table) } else { table };
            return Some(Named { kind, table, relation: Some(relation) });
        }
        (self.source.is_none() && internal::internal_table(name).is_some()).then(|| Named {
            kind: TableKind::Internal,
            table: name.to_owned(),
            relation: None,
        })
    }

    fn granted(&self, named: &Named) -> bool {
        self.rules.principal.role.grants(named.kind, &named.table)
    }

    /// The error for a name that is not a relation this user can see, with the closest names
    /// among those it can.
    pub fn unknown_table(&self, name: &str) -> DataFusionError {
        let close = close_matches(name, &self.table_names());
        let hint = match close.as_slice() {
            [] => String::new(),
            names => format!("; did you mean {}?", names.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ")),
        };
        DataFusionError::Plan(format!("table '{name}' not found in the lake{hint} (\\d lists the tables)"))
    }

    /// The guarded provider of the granted relation `named`.
    pub(super) fn guarded(&self, name: &str, named: &Named, provider: Arc<dyn TableProvider>) -> Result<Arc<dyn TableProvider>> {
        let key = match named.relation {
            Some(Relation::Live | Relation::History | Relation::Scd2) => {
                Some(tidemark_lake::columns::key_column(&provider.schema()).to_lowercase())
            }
            _ => None,
        };
        guard::guard(name, &named.table, key.as_deref(), provider, &self.rules, &self.planning)
    }
}

#[async_trait]
impl SchemaProvider for GrantedSchema {
    fn table_names(&self) -> Vec<String> {
        self.inner.table_names().into_iter().filter(|name| self.named(name).is_some_and(|named| self.granted(&named))).collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let name = name.to_lowercase();
        let named = match self.named(&name) {
            Some(named) => named,
            // Perhaps written since the lake was listed: the inner schema re-lists.
            None => {
                if self.inner.table(&name).await?.is_none() {
                    return Ok(None);
                }
                match self.named(&name) {
                    Some(named) => named,
                    None => return Ok(None),
                }
            }
        };
        if !self.granted(&named) {
            let typed = match &self.source {
                Some(source) => format!("{source}.{name}"),
                None => name,
            };
            return Err(AccessDenied::error(&typed));
        }
        match self.inner.table(&name).await? {
            Some(provider) => self.guarded(&name, &named, provider).map(Some),
            None => Ok(None),
        }
    }

    fn register_table(&self, name: String, _table: Arc<dyn TableProvider>) -> Result<Option<Arc<dyn TableProvider>>> {
        Err(DataFusionError::Plan(format!("cannot create '{name}': the endpoint is read-only")))
    }

    fn deregister_table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        Err(DataFusionError::Plan(format!("cannot drop '{name}': the endpoint is read-only")))
    }

    fn table_exist(&self, name: &str) -> bool {
        let name = name.to_lowercase();
        self.named(&name).is_some_and(|named| self.granted(&named)) && self.inner.table_exist(&name)
    }
}
