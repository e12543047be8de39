//! Field policies in a run: resolved for a source's table, recorded in the table's column
//! metadata (with a `policy_changed` schema event when one changes), and the tag of the files
//! written under them. See [`crate::policy`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tidemark_core::ConfigError;
use tidemark_core::governance::{Governance, POLICY_METADATA, parse_token};

use super::IngestError;
use crate::HistoryTable;
use crate::columns::{METADATA_COLUMNS, parse_column_name};
use crate::ledger::{Ledger, SchemaEvent};
use crate::policy::{ColumnPolicies, NO_POLICY, column_tokens, field_facts, file_tag, unsettled_columns};
use crate::schema_plan::POLICY_CHANGED;
use crate::source::{TableLayout, TableSpec};

/// A source table's spec under `governance`: excluded fields dropped, the tokens in
/// [`TableSpec::policies`], and the policies to apply to its batches. In the objects namespace
/// the producer has done all of this (it applies policies before comparing with the lake).
pub(super) fn govern_spec(
    governance: Option<&Arc<Governance>>,
    layout: TableLayout,
    object: &str,
    mut spec: TableSpec,
) -> Result<(TableSpec, ColumnPolicies), ConfigError> {
    let Some(governance) = governance.filter(|_| layout == TableLayout::Source) else {
        return Ok((spec, ColumnPolicies::none()));
    };
    let policies = ColumnPolicies::resolve(governance, object, &field_facts(&spec.fields, &spec.key))?;
    spec.fields.retain(|f| !policies.is_excluded(f.name()));
    spec.policies = policies.tokens();
    Ok((spec, policies))
}

/// What new files are written under.
pub(super) struct PolicyState {
    /// The tag of every file written from now on.
    pub tag: Option<(String, String)>,
    /// Columns with files under another policy (a change not yet applied to history).
    pub unsettled: HashSet<String>,
    /// Whether the table's schema changed (a writer made before is stale).
    pub changed: bool,
}

/// Where the events go.
pub(super) struct EventContext<'a> {
    pub ledger: &'a Ledger,
    pub past_events: &'a [SchemaEvent],
    pub object: &'a str,
    pub run_id: &'a str,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// The token `policies` (field → token) give a column: its field's, through retype generations.
fn wanted(policies: &[(String, String)], column: &str) -> String {
    let (field, _) = parse_column_name(column);
    policies
        .iter()
        .find(|(f, _)| f.eq_ignore_ascii_case(field) || f.eq_ignore_ascii_case(column))
        .map_or(NO_POLICY.to_owned(), |(_, t)| t.clone())
}

/// A lake keeps one hash key: a column hashed with another refuses the configured one, or its
/// old and new values would never join.
fn check_key(object: &str, column: &str, recorded: &str, wanted: &str) -> Result<(), ConfigError> {
    if let (Some((_, Some(old))), Some((_, Some(new)))) = (parse_token(recorded), parse_token(wanted))
        && old != new
    {
        return Err(ConfigError::invalid(
            "governance.hash_key",
            format!(
                "{object}.{column} was hashed with the key of id {old}, and the configured key has id {new}: \
                 configure the key the lake was written with (hashes of two keys never match)"
            ),
        ));
    }
    Ok(())
}

/// Brings the table's column metadata to `policies`, recording a `policy_changed` event per
/// changed column (before the change: a crash in between records it again, never loses it).
pub(super) async fn record(
    table: &mut HistoryTable,
    policies: &[(String, String)],
    events: EventContext<'_>,
) -> Result<PolicyState, IngestError> {
    let schema = table.schema()?;
    let recorded = column_tokens(&schema);
    let mut changes = Vec::new();
    for field in schema.fields() {
        if METADATA_COLUMNS.contains(&field.name().as_str()) {
            continue;
        }
        let now = recorded.get(field.name()).map_or(NO_POLICY, String::as_str);
        let want = wanted(policies, field.name());
        if now != want {
            check_key(events.object, field.name(), now, &want)?;
            changes.push((field.name().clone(), now.to_owned(), want));
        }
    }
    if !changes.is_empty() {
        let last: HashMap<&str, &str> = events
            .past_events
            .iter()
            .filter(|e| e.kind == POLICY_CHANGED && e.object.eq_ignore_ascii_case(events.object))
            .map(|e| (e.column.as_str(), e.detail.as_str()))
            .collect();
        let new_events: Vec<SchemaEvent> = changes
            .iter()
            .map(|(column, from, to)| (column, format!("{from} → {to}")))
            .filter(|(column, detail)| last.get(column.as_str()) != Some(&detail.as_str()))
            .map(|(column, detail)| SchemaEvent {
                at: events.at,
                run_id: events.run_id.to_owned(),
                object: events.object.to_owned(),
                kind: POLICY_CHANGED.to_owned(),
                field: parse_column_name(column).0.to_owned(),
                column: column.clone(),
                detail,
            })
            .collect();
        for e in &new_events {
            tracing::info!(object = events.object, column = %e.column, change = %e.detail, "field policy changed");
        }
        events.ledger.record_schema_events(&new_events).await?;
        for (column, _, to) in &changes {
            table.set_column_metadata(column, POLICY_METADATA, to).await?;
        }
    }
    let schema = table.schema()?;
    let unsettled = unsettled_columns(table.delta(), &schema, table.object()).await?.into_iter().collect();
    Ok(PolicyState { tag: file_tag(&column_tokens(&schema)), unsettled, changed: !changes.is_empty() })
}

/// Column metadata for a new table's fields: their tokens.
pub(super) fn initial_metadata(policies: &[(String, String)], column: &str) -> HashMap<String, String> {
    match wanted(policies, column) {
        token if token == NO_POLICY => HashMap::new(),
        token => HashMap::from([(POLICY_METADATA.to_owned(), token)]),
    }
}
