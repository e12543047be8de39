//! Schema evolution: how a history table follows its object's fields without ever failing a
//! sync or losing data.
//!
//! - A new field becomes a new nullable column; earlier versions read it as null.
//! - A removed field keeps its column (history intact); it is null in new versions.
//! - A type change keeps the column when the new type fits it without loss (longer text,
//!   more digits, `int` → `long`); otherwise new values go to `<Field>_v2` (then `_v3`, …) and
//!   the old column keeps the old values.
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
    for f in fields {
        let Some(wanted) = arrow_type(f) else { continue };
        let key = f.name.to_ascii_lowercase();
        seen.insert(key.clone());
        let change =
            |kind, column: &str, detail: String| PlannedChange { kind, field: f.name.clone(), column: column.to_owned(), detail };
        match by_field.get(&key).and_then(|g| g.last_key_value()) {
            None => {
                let column = f.name.clone();
                out.changes.push(change("field_added", &column, format!("{} as {wanted}", f.field_type)));
                out.new_columns.push(Field::new(&column, wanted.clone(), true));
                out.targets.push((f.name.clone(), column, wanted));
            }
            Some((_, current)) if fits(&wanted, current.data_type()) => {
                if removed.contains(&key) {
                    out.changes.push(change(
                        "field_restored",
                        current.name(),
                        format!("{} as {}", f.field_type, current.data_type()),
                    ));
                }
                out.targets.push((f.name.clone(), current.name().clone(), current.data_type().clone()));
            }
            Some((&generation, current)) => {
                let column = column_name(&f.name, generation + 1);
                out.changes.push(change(
                    "type_changed",
                    &column,
                    format!(
                        "{} no longer fits {} ({}): new values go to {column}",
                        f.field_type,
                        current.name(),
                        current.data_type()
                    ),
                ));
                out.new_columns.push(Field::new(&column, wanted.clone(), true));
                out.targets.push((f.name.clone(), column, wanted));
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
