//! The `push:` configuration section: reverse-ETL flows that send a query's result over the lake
//! to a Salesforce object, only what changed since the last run.
//!
//! ```yaml
//! push:
//!   account_tier:
//!     query: SELECT account_id, tier FROM account_scores   # any relation `tidemark sql` reads
//!     object: Account
//!     mode: upsert                  # insert | upsert | update | delete
//!     external_id: Tier_Key__c      # upsert: the external id field rows are matched on
//!     key: [account_id]             # the result's row key (defaults below)
//!     mapping: { account_id: Tier_Key__c, tier: Tier__c }   # column → field; default: same name
//!     bulk_threshold: 2000          # more changed rows than this: Bulk API 2.0 ingest jobs
//!     bulk_job_rows: 50000          # rows per Bulk job
//! ```
//!
//! Deletes never happen by default: `mode: delete` and `delete_vanished` each need
//! `allow_delete: true`. These are plain data types with offline validation
//! ([`PushConfig::validate`]); the `tidemark-push` crate runs them.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::config::ConfigError;

/// One push flow.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushConfig {
    /// SQL over the lake (live objects, `_history`, `_scd2`, marts): one row per record to send.
    pub query: String,
    /// The target object's API name.
    pub object: String,
    pub mode: PushMode,
    /// Upsert: the external id field matched against.
    #[serde(default)]
    pub external_id: Option<String>,
    /// The result's columns that identify a row between runs. Default: the column mapped to
    /// `Id` (update, delete) or to the external id field (upsert); insert mode names it.
    #[serde(default)]
    pub key: Option<Vec<String>>,
    /// Result column → Salesforce field; an unlisted column goes to the field of its name.
    #[serde(default)]
    pub mapping: BTreeMap<String, String>,
    /// Result columns not sent (an insert key that is no field, helper columns).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Needed for `mode: delete` and `delete_vanished`.
    #[serde(default)]
    pub allow_delete: bool,
    /// Delete the records of keys that left the result since the last run (upsert, update,
    /// insert: by the Id recorded when they were sent).
    #[serde(default)]
    pub delete_vanished: bool,
    /// A run with more rows to send than this uses a Bulk API 2.0 ingest job; up to it, sObject
    /// Collections requests of 200 rows.
    #[serde(default = "default_bulk_threshold")]
    pub bulk_threshold: u64,
    /// Rows per Bulk API 2.0 job: the rows held in memory while a job runs, and the most a
    /// crash can leave in flight.
    #[serde(default = "default_bulk_job_rows")]
    pub bulk_job_rows: u64,
}

fn default_bulk_job_rows() -> u64 {
    50_000
}

fn default_bulk_threshold() -> u64 {
    2_000
}

/// How rows are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PushMode {
    /// Create a record per new key (the created Id is kept; a later change updates it).
    Insert,
    /// Create or update by the external id field.
    Upsert,
    /// Update by `Id`.
    Update,
    /// Delete by `Id` each row the result gains.
    Delete,
}

impl PushMode {
    pub fn label(self) -> &'static str {
        match self {
            PushMode::Insert => "insert",
            PushMode::Upsert => "upsert",
            PushMode::Update => "update",
            PushMode::Delete => "delete",
        }
    }
}

impl PushConfig {
    /// The Salesforce field a result column is sent to.
    pub fn field_of<'a>(&'a self, column: &'a str) -> &'a str {
        self.mapping.get(column).map(String::as_str).unwrap_or(column)
    }

    /// The result column sent to `field`, if any (mapped, or named as the field).
    pub fn column_for(&self, field: &str, columns: &[String]) -> Option<String> {
        columns.iter().filter(|c| !self.exclude.contains(c)).find(|c| self.field_of(c).eq_ignore_ascii_case(field)).cloned()
    }

    /// The row key: as configured, else the column sent to `Id` or to the external id field.
    /// `None` when it cannot be known without the result's columns and none is configured.
    pub fn key_columns(&self, columns: &[String]) -> Option<Vec<String>> {
        if let Some(key) = &self.key {
            return Some(key.clone());
        }
        let field = match self.mode {
            PushMode::Update | PushMode::Delete => "Id",
            PushMode::Upsert => self.external_id.as_deref()?,
            PushMode::Insert => return None,
        };
        self.column_for(field, columns).map(|c| vec![c])
    }

    /// Offline checks: everything that does not need the org or the lake.
    pub fn validate(&self, name: &str) -> Result<(), ConfigError> {
        let at = |field: &str| format!("push.{name}.{field}");
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(ConfigError::invalid(format!("push.{name}"), "a flow name is letters, digits and _ (it names tables)"));
        }
        if self.query.trim().is_empty() {
            return Err(ConfigError::invalid(at("query"), "a push flow needs a query"));
        }
        if self.object.trim().is_empty() || !self.object.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(ConfigError::invalid(at("object"), format!("'{}' is not an object API name", self.object)));
        }
        match (self.mode, &self.external_id) {
            (PushMode::Upsert, None) => {
                return Err(ConfigError::invalid(at("external_id"), "upsert matches on an external id field: name it"));
            }
            (PushMode::Upsert, Some(_)) | (_, None) => {}
            (mode, Some(_)) => {
                return Err(ConfigError::invalid(
                    at("external_id"),
                    format!("only upsert matches on an external id field; {} does not use it", mode.label()),
                ));
            }
        }
        if self.mode == PushMode::Insert && self.key.as_ref().is_none_or(Vec::is_empty) {
            return Err(ConfigError::invalid(
                at("key"),
                "insert needs the result's key column(s), so that a row is never inserted twice",
            ));
        }
        if self.key.as_ref().is_some_and(Vec::is_empty) {
            return Err(ConfigError::invalid(at("key"), "name at least one column, or leave key out"));
        }
        if self.mode == PushMode::Delete && !self.allow_delete {
            return Err(ConfigError::invalid(at("allow_delete"), "mode: delete deletes records; set allow_delete: true"));
        }
        if self.delete_vanished && !self.allow_delete {
            return Err(ConfigError::invalid(at("allow_delete"), "delete_vanished deletes records; set allow_delete: true"));
        }
        if self.delete_vanished && self.mode == PushMode::Delete {
            return Err(ConfigError::invalid(at("delete_vanished"), "a delete flow has nothing to delete when a row leaves"));
        }
        let mut fields: BTreeMap<String, &String> = BTreeMap::new();
        for (column, field) in &self.mapping {
            if self.exclude.contains(column) {
                return Err(ConfigError::invalid(at(&format!("mapping.{column}")), "the column is also excluded"));
            }
            if field.is_empty() || !field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
                return Err(ConfigError::invalid(at(&format!("mapping.{column}")), format!("'{field}' is not a field name")));
            }
            if let Some(other) = fields.insert(field.to_ascii_lowercase(), column) {
                return Err(ConfigError::invalid(
                    at(&format!("mapping.{column}")),
                    format!("field {field} is also the target of column {other}"),
                ));
            }
        }
        if self.bulk_job_rows == 0 || self.bulk_job_rows > 150_000_000 {
            return Err(ConfigError::invalid(at("bulk_job_rows"), "use 1 to 150,000,000 rows per Bulk job"));
        }
        if self.bulk_threshold == 0 {
            return Err(ConfigError::invalid(at("bulk_threshold"), "use 1 or more (rows above it go through Bulk API 2.0)"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(yaml: &str) -> PushConfig {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    fn error(yaml: &str) -> String {
        flow(yaml).validate("tier").unwrap_err().to_string()
    }

    #[test]
    fn keys_default_by_mode() {
        let columns = vec!["account_id".to_owned(), "tier".to_owned()];
        let upsert = flow("query: q\nobject: Account\nmode: upsert\nexternal_id: Key__c\nmapping: { account_id: Key__c }\n");
        upsert.validate("tier").unwrap();
        assert_eq!(upsert.key_columns(&columns), Some(vec!["account_id".to_owned()]));
        let update = flow("query: q\nobject: Account\nmode: update\n");
        assert_eq!(update.key_columns(&["Id".to_owned()]), Some(vec!["Id".to_owned()]));
        assert_eq!(update.key_columns(&columns), None);
        assert_eq!(upsert.field_of("tier"), "tier");
    }

    #[test]
    fn errors_name_the_field() {
        assert!(error("query: q\nobject: Account\nmode: upsert\n").starts_with("push.tier.external_id:"));
        assert!(error("query: q\nobject: Account\nmode: update\nexternal_id: X__c\n").starts_with("push.tier.external_id:"));
        assert!(error("query: q\nobject: Account\nmode: insert\n").starts_with("push.tier.key:"));
        assert!(error("query: q\nobject: Account\nmode: delete\n").starts_with("push.tier.allow_delete:"));
        assert!(error("query: q\nobject: Account\nmode: update\ndelete_vanished: true\n").starts_with("push.tier.allow_delete:"));
        let twice = error("query: q\nobject: Account\nmode: update\nmapping: { a: Name, b: name }\n");
        assert!(twice.starts_with("push.tier.mapping.b:") && twice.contains("also the target"), "{twice}");
        assert!(error("query: ' '\nobject: Account\nmode: update\n").starts_with("push.tier.query:"));
        assert!(error("query: q\nobject: Acc ount\nmode: update\n").starts_with("push.tier.object:"));
        let unknown = serde_yaml_ng::from_str::<PushConfig>("query: q\nobject: Account\nmode: update\nmodee: x\n");
        assert!(unknown.unwrap_err().to_string().contains("modee"));
    }
}
