//! What a query's result cannot say about itself, for `tidemark sql` to print on standard
//! error next to it (the result itself is unchanged):
//!
//! - an as-of instant before the first version of an object: the empty result is right (no
//!   record existed yet in the lake), but looks like a wrong query;
//! - the live state of an object whose initial sync never completed (the lake's ledger has no
//!   complete run for it): it holds only the records read before the sync stopped. Warned once
//!   per object and session; the query still runs, since a partial state is what some users
//!   want to look at while a first sync runs.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use parking_lot::Mutex;
use tidemark_lake::columns::VERSION_AT;
use tidemark_lake::datafusion::catalog::TableProvider;
use tidemark_lake::datafusion::common::ScalarValue;
use tidemark_lake::datafusion::common::tree_node::TreeNodeRecursion;
use tidemark_lake::datafusion::datasource::source_as_provider;
use tidemark_lake::datafusion::functions_aggregate::expr_fn::min;
use tidemark_lake::datafusion::logical_expr::{LogicalPlan, ident};
use tidemark_lake::datafusion::prelude::{DataFrame, SessionContext};
use tidemark_lake::{LakeLocation, Ledger, RunStatus};
use tracing::debug;

use crate::catalog::{LakeSchema, TableVersion};
use crate::error::Result;
use crate::views::{LiveScan, live_plan};

/// How much a [`Note`] matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The result is right; this explains it.
    Note,
    /// The result is incomplete.
    Warning,
}

/// A hint about a query's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub severity: Severity,
    /// One sentence naming the object; no record value.
    pub text: String,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self.severity {
            Severity::Note => "note",
            Severity::Warning => "warning",
        };
        write!(f, "{label}: {}", self.text)
    }
}

/// A session's memory of what it has looked up and said.
#[derive(Debug, Default)]
pub(crate) struct Notes {
    /// Tables the ledger shows a complete sync run for: once complete, always complete.
    complete: Mutex<HashSet<String>>,
    /// Tables whose incomplete initial sync this session has warned about.
    warned: Mutex<HashSet<String>>,
    /// The earliest `_version_at` of tables that have one: history tables only grow, so it
    /// stays.
    first_versions: Mutex<HashMap<String, DateTime<Utc>>>,
}

fn instant(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

impl Notes {
    /// The notes for a planned query (`plan` as planned from its statement, before optimizing).
    pub(crate) async fn for_plan(&self, ctx: &SessionContext, schema: &LakeSchema, plan: &LogicalPlan) -> Result<Vec<Note>> {
        let mut notes = Vec::new();
        for (table, as_of) in live_states(plan) {
            if let Some(at) = as_of {
                notes.extend(self.before_first_version(ctx, schema, &table, at).await?);
            }
            notes.extend(self.initial_sync(ctx, schema, &table).await?);
        }
        Ok(notes)
    }

    async fn before_first_version(
        &self,
        ctx: &SessionContext,
        schema: &LakeSchema,
        table: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<Note>> {
        let text = match self.first_version(ctx, schema, table).await? {
            Some(first) if at < first => format!(
                "{} is before the first version of {table} ({}); no record existed yet in the lake",
                instant(at),
                instant(first)
            ),
            Some(_) => return Ok(None),
            None => format!("{table} has no version in the lake yet, so it is empty at {}", instant(at)),
        };
        Ok(Some(Note { severity: Severity::Note, text }))
    }

    async fn first_version(&self, ctx: &SessionContext, schema: &LakeSchema, table: &str) -> Result<Option<DateTime<Utc>>> {
        if let Some(first) = self.first_versions.lock().get(table) {
            return Ok(Some(*first));
        }
        let history = schema.history_provider(table).await?;
        let batches = ctx.read_table(history)?.aggregate(vec![], vec![min(ident(VERSION_AT))])?.collect().await?;
        let first = match batches.first().filter(|b| b.num_rows() > 0) {
            Some(batch) => match ScalarValue::try_from_array(batch.column(0), 0)? {
                ScalarValue::TimestampMicrosecond(Some(us), _) => DateTime::from_timestamp_micros(us),
                _ => None,
            },
            None => None,
        };
        if let Some(first) = first {
            self.first_versions.lock().insert(table.to_owned(), first);
        }
        Ok(first)
    }

    async fn initial_sync(&self, ctx: &SessionContext, schema: &LakeSchema, table: &str) -> Result<Option<Note>> {
        if self.warned.lock().contains(table) || self.initial_sync_complete(schema, table).await {
            return Ok(None);
        }
        let live = live_plan(table, schema.history_provider(table).await?, None)?;
        let records = DataFrame::new(ctx.state(), live).count().await?;
        self.warned.lock().insert(table.to_owned());
        Ok(Some(Note {
            severity: Severity::Warning,
            text: format!(
                "{table}'s initial sync has not completed (the lake's ledger has no complete run for it): the live \
                 state holds only the {records} records read so far"
            ),
        }))
    }

    /// Whether the lake's ledger has a complete run for `table` (at the pinned commit time, if
    /// any). A lake without a ledger, or one that cannot be read, counts as complete: there is
    /// nothing to tell from.
    async fn initial_sync_complete(&self, schema: &LakeSchema, table: &str) -> bool {
        if self.complete.lock().contains(table) {
            return true;
        }
        let runs = match Ledger::new(schema.location().clone()).runs().await {
            Ok(runs) if !runs.is_empty() => runs,
            Ok(_) => return true,
            Err(e) => {
                debug!(error = %e, "cannot read the sync ledger; no hint about initial syncs");
                return true;
            }
        };
        let until = match schema.options().table_version {
            Some(TableVersion::Timestamp(t)) => Some(t),
            _ => None,
        };
        let complete = runs
            .iter()
            .filter(|r| r.status == RunStatus::Complete && until.is_none_or(|t| r.finished_at <= t))
            .map(|r| LakeLocation::table_name(&r.object));
        let mut known = self.complete.lock();
        known.extend(complete);
        known.contains(table)
    }
}

/// The live states (`<object>`, `as_of(…)`) a plan reads: the lake table and the instant.
fn live_states(plan: &LogicalPlan) -> BTreeSet<(String, Option<DateTime<Utc>>)> {
    let mut found = BTreeSet::new();
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && let Ok(provider) = source_as_provider(&scan.source)
            && let Some(live) = (provider.as_ref() as &dyn TableProvider).downcast_ref::<LiveScan>()
        {
            found.insert((live.table.clone(), live.as_of));
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}
