//! Schema evolution: how a history table follows its object's fields without ever failing a
//! sync or losing data.
//!
//! - A new field becomes a new nullable column; earlier versions read it as null.
//! - A removed field keeps its column (history intact); it is null in new versions.
//! - A type change keeps the column when the new type's values fit it without loss (longer
//!   text; more digits within the column's precision, 18 or 38; a field narrowed from `long` to
//!   `int`); otherwise new values go to `<Field>_v2` (then `_v3`, …) and the old column keeps
//!   the old values. A widened field (`int` → `long`) therefore gets `_v2`: widening the column
//!   in place would need Delta's type-widening table feature, which not every reader supports.
//! - A field that comes back resumes its column.
//!
//! Every change yields a [`crate::SchemaEvent`] kind: `field_added`, `type_changed`,
//! `field_removed`, `field_restored`.

use std::collections::{BTreeMap, HashSet};

use deltalake::arrow::datatypes::{DataType, Field, Schema};
use tidemark_core::SourceField;

use crate::columns::{METADATA_COLUMNS, arrow_type, column_name, fits, parse_column_name};

/// One change the plan makes (or notices).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedChange {
    pub kind: &'static str,
    pub field: String,
    pub column: String,
    pub detail: String,
}

/// Where each field's values go and what the table needs first.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaPlan {
    /// Per source field, in order: `(field, column, type)`; fields not replicated are absent.
    pub targets: Vec<(String, String, DataType)>,
    /// Columns to add before writing.
    pub new_columns: Vec<Field>,
    pub changes: Vec<PlannedChange>,
}

impl SchemaPlan {
    /// The column a field's values go to.
    pub fn column_of(&self, field: &str) -> Option<&str> {
        self.targets.iter().find(|(f, _, _)| f.eq_ignore_ascii_case(field)).map(|(_, c, _)| c.as_str())
    }
}

/// Plans writing `fields` into a table with `existing` columns. `removed` holds the fields whose
/// latest recorded event is `field_removed`, so removals are reported once and returns noticed.
pub fn plan(existing: &Schema, fields: &[SourceField], removed: &HashSet<String>) -> SchemaPlan {
    let typed: Vec<(String, DataType, String)> =
        fields.iter().filter_map(|f| arrow_type(f).map(|t| (f.name.clone(), t, f.field_type.to_string()))).collect();
    plan_typed(existing, &typed, removed)
}

/// [`plan`] for sources whose fields are typed as the lake stores them already (Postgres
/// columns, CDC files): `(name, type, the source's type name for events)`.
pub fn plan_typed(existing: &Schema, fields: &[(String, DataType, String)], removed: &HashSet<String>) -> SchemaPlan {
    // Field name (lower case) → its columns by generation.
    let mut by_field: BTreeMap<String, BTreeMap<u32, &Field>> = BTreeMap::new();
    for f in existing.fields() {
        if METADATA_COLUMNS.contains(&f.name().as_str()) {
            continue;
        }
        let (field, generation) = parse_column_name(f.name());
        by_field.entry(field.to_ascii_lowercase()).or_default().insert(generation, f);
    }
    let mut out = SchemaPlan { targets: Vec::new(), new_columns: Vec::new(), changes: Vec::new() };
    let mut seen = HashSet::new();
    for (name, wanted, type_name) in fields {
        let wanted = wanted.clone();
        let key = name.to_ascii_lowercase();
        seen.insert(key.clone());
        let change =
            |kind, column: &str, detail: String| PlannedChange { kind, field: name.clone(), column: column.to_owned(), detail };
        match by_field.get(&key).and_then(|g| g.last_key_value()) {
            None => {
                let column = name.clone();
                out.changes.push(change("field_added", &column, format!("{type_name} as {wanted}")));
                out.new_columns.push(Field::new(&column, wanted.clone(), true));
                out.targets.push((name.clone(), column, wanted));
            }
            Some((_, current)) if fits(&wanted, current.data_type()) => {
                if removed.contains(&key) {
                    out.changes.push(change("field_restored", current.name(), format!("{type_name} as {}", current.data_type())));
                }
                out.targets.push((name.clone(), current.name().clone(), current.data_type().clone()));
            }
            Some((&generation, current)) => {
                let column = column_name(name, generation + 1);
                out.changes.push(change(
                    "type_changed",
                    &column,
                    format!("{type_name} no longer fits {} ({}): new values go to {column}", current.name(), current.data_type()),
                ));
                out.new_columns.push(Field::new(&column, wanted.clone(), true));
                out.targets.push((name.clone(), column, wanted));
            }
        }
    }
    for (key, generations) in &by_field {
        if seen.contains(key) || removed.contains(key) {
            continue;
        }
        let (_, current) = generations.last_key_value().expect("at least one generation");
        let (field, _) = parse_column_name(current.name());
        out.changes.push(PlannedChange {
            kind: "field_removed",
            field: field.to_owned(),
            column: current.name().clone(),
            detail: "no longer in the object's fields: the column stays, null in new versions".into(),
        });
    }
    out
}

/// The fields whose latest recorded event for `object` is `field_removed` (lower case): what
/// [`plan`] needs to report a removal once and notice a field's return.
pub fn removed_fields(past_events: &[crate::SchemaEvent], object: &str) -> HashSet<String> {
    let mut last_kind = std::collections::HashMap::new();
    for e in past_events.iter().filter(|e| e.object.eq_ignore_ascii_case(object) && e.kind != POLICY_CHANGED) {
        last_kind.insert(e.field.to_ascii_lowercase(), e.kind.as_str());
    }
    last_kind.into_iter().filter(|(_, kind)| *kind == "field_removed").map(|(f, _)| f).collect()
}

/// The event of a column whose field policy changed (see [`crate::policy`]). It says nothing
/// about the field's presence or type, so the rules above skip it.
pub const POLICY_CHANGED: &str = "policy_changed";

/// Where and when a schema change is applied, for its events.
pub struct Evolution<'a> {
    pub ledger: &'a crate::Ledger,
    /// The ledger's events at the start of the run.
    pub past_events: &'a [crate::SchemaEvent],
    /// The name events carry: the Salesforce object, or `<source>.<table>`.
    pub object: &'a str,
    pub run_id: &'a str,
    pub at: chrono::DateTime<chrono::Utc>,
}

impl Evolution<'_> {
    /// Applies `plan` to `table`: records its events, then adds its columns. Events are recorded
    /// before the columns change, and a change whose event is already the field's latest (a run
    /// that crashed in between) is not recorded twice; `table_created` likewise, when the table
    /// was `created` by this run or its event is missing. `fields`: how many fields the source
    /// has, for that event's detail.
    pub async fn apply(
        &self,
        table: &mut crate::HistoryTable,
        plan: &SchemaPlan,
        created: bool,
        fields: usize,
    ) -> crate::error::Result<()> {
        let mine = |e: &&crate::SchemaEvent| e.object.eq_ignore_ascii_case(self.object);
        let mut last_event = std::collections::HashMap::new();
        for e in self.past_events.iter().filter(mine).filter(|e| e.kind != POLICY_CHANGED) {
            last_event.insert(e.field.to_ascii_lowercase(), (e.kind.as_str(), e.column.as_str()));
        }
        let event = |kind: &str, field: &str, column: &str, detail: String| crate::SchemaEvent {
            at: self.at,
            run_id: self.run_id.to_owned(),
            object: self.object.to_owned(),
            kind: kind.to_owned(),
            field: field.to_owned(),
            column: column.to_owned(),
            detail,
        };
        let mut events: Vec<crate::SchemaEvent> = plan
            .changes
            .iter()
            .filter(|c| last_event.get(&c.field.to_ascii_lowercase()) != Some(&(c.kind, c.column.as_str())))
            .map(|c| event(c.kind, &c.field, &c.column, c.detail.clone()))
            .collect();
        if created || !self.past_events.iter().filter(mine).any(|e| e.kind == "table_created") {
            let detail = format!("{} columns from {fields} fields", table.schema()?.fields().len());
            events.insert(0, event("table_created", "", "", detail));
        }
        for c in &plan.changes {
            tracing::info!(object = self.object, kind = c.kind, field = %c.field, column = %c.column, "schema change");
        }
        self.ledger.record_schema_events(&events).await?;
        table.add_columns(&plan.new_columns).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::columns::initial_schema;
    use tidemark_core::FieldType;

    fn money(name: &str, p: u32, s: u32) -> SourceField {
        SourceField { precision: p, scale: s, ..SourceField::of(name, FieldType::Currency) }
    }

    #[test]
    fn new_removed_widened_and_changed_fields() {
        let before = vec![
            SourceField::of("Id", FieldType::Id),
            SourceField::text("Name"),
            money("Amount__c", 16, 2),
            money("Old__c", 18, 0),
        ];
        let schema = initial_schema(&before);
        let after = vec![
            SourceField::of("Id", FieldType::Id),
            SourceField::text("Name"),
            money("Amount__c", 18, 2),
            SourceField::text("Tier__c"),
        ];
        let p = plan(&schema, &after, &HashSet::new());
        assert_eq!(p.column_of("Amount__c"), Some("Amount__c"));
        assert_eq!(p.new_columns.len(), 1);
        let kinds: Vec<_> = p.changes.iter().map(|c| (c.kind, c.field.as_str())).collect();
        assert_eq!(kinds, vec![("field_added", "Tier__c"), ("field_removed", "Old__c")]);

        // Amount__c becomes text: a second generation column.
        let text_amount = vec![SourceField::of("Id", FieldType::Id), SourceField::text("Amount__c")];
        let p = plan(&schema, &text_amount, &HashSet::from(["old__c".to_owned(), "name".to_owned()]));
        assert_eq!(p.column_of("Amount__c"), Some("Amount__c_v2"));
        assert_eq!(p.new_columns, vec![Field::new("Amount__c_v2", DataType::Utf8, true)]);
        assert_eq!(p.changes.iter().map(|c| c.kind).collect::<Vec<_>>(), vec!["type_changed"]);
    }

    #[test]
    fn a_returning_field_resumes_its_latest_column() {
        let schema = initial_schema(&[SourceField::of("Id", FieldType::Id), SourceField::text("Tier__c")]);
        let p = plan(
            &schema,
            &[SourceField::of("Id", FieldType::Id), SourceField::text("Tier__c")],
            &HashSet::from(["tier__c".to_owned()]),
        );
        assert_eq!(p.changes.iter().map(|c| c.kind).collect::<Vec<_>>(), vec!["field_restored"]);
        assert!(p.new_columns.is_empty());
    }
}
