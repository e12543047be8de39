//! Which objects and fields to replicate.

use std::sync::Arc;

use tidemark_core::ConfigError;
use tidemark_core::governance::{FieldFacts, Governance};
use tidemark_core::{FieldType, SourceField, SourceSchema};
use tidemark_lake::policy::{ColumnPolicies, is_text};
use tidemark_salesforce::describe::{DescribeGlobal, SObjectDescribe};

use crate::config::{Patterns, SyncSettings};

/// An object of the org and whether it is synced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredObject {
    pub name: String,
    pub label: String,
    pub custom: bool,
    /// `None` when synced, else why not.
    pub skipped: Option<String>,
}

/// Applies Salesforce's capabilities and the configured patterns to describeGlobal.
/// Objects must be queryable, replicateable and retrieveable; deprecated ones are skipped.
pub fn discover(global: &DescribeGlobal, patterns: &Patterns) -> Vec<DiscoveredObject> {
    let mut out: Vec<DiscoveredObject> = global
        .sobjects
        .iter()
        .map(|o| {
            let skipped = if !o.queryable {
                Some("not queryable".to_owned())
            } else if !o.replicateable {
                Some("not replicateable (Salesforce does not offer it for replication)".to_owned())
            } else if !o.retrieveable {
                Some("not retrieveable".to_owned())
            } else if o.deprecated_and_hidden {
                Some("deprecated and hidden".to_owned())
            } else {
                patterns.check(&o.name).err()
            };
            DiscoveredObject { name: o.name.clone(), label: o.label.clone(), custom: o.custom, skipped }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The timestamp field incremental reads follow, in order of preference.
pub const BOOKMARK_FIELDS: [&str; 3] = ["SystemModstamp", "LastModifiedDate", "CreatedDate"];

/// Fields always replicated, whatever the field patterns say.
fn required(name: &str) -> bool {
    name == "Id" || name == "IsDeleted" || BOOKMARK_FIELDS.contains(&name)
}

/// A field left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedField {
    pub name: String,
    pub reason: String,
}

/// The fields to replicate from a describe: `Id` first, then describe order. Compound fields
/// (their components are replicated), base64 bodies and unknown types are left out.
pub fn source_schema(describe: &SObjectDescribe, settings: &SyncSettings) -> (SourceSchema, Vec<SkippedField>) {
    let object_settings = settings.object(&describe.name);
    let patterns = object_settings.field_patterns("").ok();
    let mut fields = Vec::new();
    let mut skipped = Vec::new();
    let mut skip = |name: &str, reason: &str| skipped.push(SkippedField { name: name.to_owned(), reason: reason.to_owned() });
    for f in &describe.fields {
        let Some(field_type) = f.field_type else {
            skip(&f.name, "field type unknown to this version of Tidemark");
            continue;
        };
        match field_type {
            FieldType::Address | FieldType::Location => {
                skip(&f.name, "compound field: its component fields are replicated");
                continue;
            }
            FieldType::Base64 => {
                skip(&f.name, "base64 body: not available in bulk results");
                continue;
            }
            _ => {}
        }
        if !required(&f.name) {
            if let Some(Err(reason)) = patterns.as_ref().map(|p| p.check(&f.name)) {
                skip(&f.name, &reason);
                continue;
            }
        }
        fields.push(SourceField {
            name: f.name.clone(),
            field_type,
            length: f.length,
            precision: f.precision,
            scale: f.scale,
            digits: f.digits,
            calculated: f.calculated,
        });
    }
    fields.sort_by_key(|f| f.name != "Id");
    (SourceSchema { object: describe.name.clone(), fields }, skipped)
}

/// The policies `governance` gives an object's fields. The key, `IsDeleted` and the
/// timestamps a sync follows never take one.
pub fn field_policies(governance: &Arc<Governance>, schema: &SourceSchema) -> Result<ColumnPolicies, ConfigError> {
    let types: Vec<String> = schema.fields.iter().map(|f| f.field_type.to_string()).collect();
    let facts: Vec<FieldFacts<'_>> = schema
        .fields
        .iter()
        .zip(&types)
        .map(|(f, type_name)| FieldFacts {
            name: &f.name,
            text: tidemark_lake::columns::arrow_type(f).as_ref().is_some_and(is_text),
            protected: required(&f.name),
            type_name,
        })
        .collect();
    ColumnPolicies::resolve(governance, &schema.object, &facts)
}

/// The bookmark field an object offers, `None` when it has no timestamp (snapshot-and-diff).
pub fn bookmark_field(schema: &SourceSchema) -> Option<&'static str> {
    BOOKMARK_FIELDS.into_iter().find(|name| schema.field(name).is_some_and(|f| f.field_type == FieldType::Datetime))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidemark_salesforce::describe::GlobalObject;

    fn obj(name: &str, replicateable: bool) -> GlobalObject {
        serde_json::from_value(serde_json::json!({
            "name": name, "label": name, "custom": name.ends_with("__c"), "queryable": true,
            "replicateable": replicateable, "retrieveable": true
        }))
        .unwrap()
    }

    #[test]
    fn skipped_objects_say_why() {
        let global = DescribeGlobal { sobjects: vec![obj("Account", true), obj("UserLicense", false), obj("AccountFeed", true)] };
        let found = discover(&global, &SyncSettings::default().object_patterns().unwrap());
        let reasons: Vec<_> = found.iter().map(|o| (o.name.as_str(), o.skipped.as_deref())).collect();
        assert_eq!(
            reasons,
            vec![
                ("Account", None),
                ("AccountFeed", Some("excluded by pattern '*Feed'")),
                ("UserLicense", Some("not replicateable (Salesforce does not offer it for replication)")),
            ]
        );
    }
}
