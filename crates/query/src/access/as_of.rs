//! `as_of(…)` for one user: the object's grant checked before anything is opened, and the
//! result guarded by the object's rules, so past states obey today's grants.

use std::sync::Arc;

use tidemark_core::access::TableKind;
use tidemark_lake::datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use tidemark_lake::datafusion::error::{DataFusionError, Result};
use tidemark_lake::datafusion::execution::{SessionState, SessionStateBuilder};

use super::{AccessDenied, UserRules, guard};
use crate::as_of::AsOf;

#[derive(Debug)]
pub(super) struct GrantedAsOf {
    inner: Arc<AsOf>,
    rules: Arc<UserRules>,
    planning: SessionState,
}

impl GrantedAsOf {
    pub fn new(inner: Arc<AsOf>, rules: Arc<UserRules>) -> GrantedAsOf {
        GrantedAsOf { inner, rules, planning: SessionStateBuilder::new().with_default_features().build() }
    }
}

impl TableFunctionImpl for GrantedAsOf {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let target = AsOf::target(&args)?;
        let key = target.key();
        if !self.rules.principal.role.grants(TableKind::Object, &key) {
            // A name that is no table is "not found", as for anyone; only an existing one is
            // refused by name.
            let exists = match self.inner.schema(&target)? {
                Some(schema) => schema.lake_tables().contains(&target.table),
                None => false,
            };
            if exists {
                return Err(AccessDenied::error(&key));
            }
            return Err(DataFusionError::Plan(format!("table '{key}' not found in the lake (\\d lists the tables)")));
        }
        let provider = self.inner.provider(&target)?;
        let key_column = tidemark_lake::columns::key_column(&provider.schema()).to_lowercase();
        guard::guard(&key, &key, Some(&key_column), provider, &self.rules, &self.planning)
    }
}
