//! Field policies applied to record batches before they are written (see
//! [`tidemark_core::governance`] for the policies and their configuration).
//!
//! Where a policy is recorded:
//! - each column's Delta field metadata `tidemark.policy` holds the token in force for new
//!   versions ([`column_tokens`]);
//! - each data file's `tidemark.policies` tag holds the tokens its values were written under
//!   ([`file_tokens`]), so a policy changed later ("applies forward") leaves a table whose older
//!   files say they are under the older policy until `tidemark govern apply` rewrites them.
//!
//! A file without the tag was written under no policy at all.

use std::collections::BTreeMap;
use std::sync::Arc;

use deltalake::DeltaTable;
use deltalake::arrow::array::{Array, ArrayRef, AsArray, LargeStringArray, RecordBatch, StringArray, new_null_array};
use deltalake::arrow::datatypes::{DataType, Schema};
use deltalake::arrow::error::ArrowError;
use futures::StreamExt;
use tidemark_core::ConfigError;
use tidemark_core::governance::{FieldFacts, FieldPolicy, Governance, POLICY_METADATA, POLICY_TAG, parse_token};

use crate::error::{LakeError, Result};
use crate::scrub::ScrubFile;

/// Whether a column's values are text (hash and mask apply to them).
pub fn is_text(data_type: &DataType) -> bool {
    matches!(data_type, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// The policies of one table's fields.
#[derive(Debug, Clone)]
pub struct ColumnPolicies {
    governance: Arc<Governance>,
    /// Field name → policy, fields in source order.
    fields: Vec<(String, FieldPolicy)>,
}

impl ColumnPolicies {
    /// No policies.
    pub fn none() -> ColumnPolicies {
        ColumnPolicies { governance: Arc::new(Governance::none()), fields: Vec::new() }
    }

    /// The policies `governance` gives `table`'s fields (errors name the configuration rule).
    pub fn resolve(governance: &Arc<Governance>, table: &str, fields: &[FieldFacts<'_>]) -> Result<ColumnPolicies, ConfigError> {
        let fields = governance.resolve(table, fields)?.into_iter().map(|(f, r)| (f, r.policy)).collect();
        Ok(ColumnPolicies { governance: governance.clone(), fields })
    }

    /// The policies recorded tokens name (column → token), to apply with `governance`'s key.
    /// A hash token of another key is refused, naming the column.
    pub fn from_tokens(
        governance: &Arc<Governance>,
        table: &str,
        tokens: &[(String, String)],
    ) -> Result<ColumnPolicies, ConfigError> {
        let mut fields = Vec::new();
        for (column, token) in tokens {
            let Some((policy, key)) = parse_token(token) else {
                return Err(ConfigError::invalid("governance", format!("{table}.{column} records the unknown policy '{token}'")));
            };
            if let Some(key) = key {
                let configured = governance.key().map(|k| k.id().to_owned()).unwrap_or_else(|| "(none)".to_owned());
                if key != configured {
                    return Err(ConfigError::invalid(
                        "governance.hash_key",
                        format!(
                            "{table}.{column} is hashed with the key of id {key}, and the configured key has id {configured}"
                        ),
                    ));
                }
            }
            fields.push((column.clone(), policy));
        }
        Ok(ColumnPolicies { governance: governance.clone(), fields })
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The policy of `field` (case-insensitive), if any.
    pub fn of(&self, field: &str) -> Option<FieldPolicy> {
        self.fields.iter().find(|(f, _)| f.eq_ignore_ascii_case(field)).map(|(_, p)| *p)
    }

    pub fn is_excluded(&self, field: &str) -> bool {
        self.of(field) == Some(FieldPolicy::Exclude)
    }

    /// Field → token, for every field under a policy (excluded ones included).
    pub fn tokens(&self) -> Vec<(String, String)> {
        self.fields.iter().map(|(f, p)| (f.clone(), self.governance.token(*p))).collect()
    }

    /// `batch` with each policy applied to its field's column (matched case-insensitively;
    /// columns the batch lacks are skipped). Null stays null; excluded and nulled fields become
    /// all null.
    pub fn apply(&self, batch: &RecordBatch) -> std::result::Result<RecordBatch, ArrowError> {
        if self.fields.is_empty() {
            return Ok(batch.clone());
        }
        let schema = batch.schema();
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        for (i, field) in schema.fields().iter().enumerate() {
            let Some(policy) = self.of(field.name()) else { continue };
            columns[i] = self.apply_array(policy, &columns[i]).map_err(|e| {
                ArrowError::InvalidArgumentError(format!("column {} under the {} policy: {e}", field.name(), policy.name()))
            })?;
        }
        RecordBatch::try_new(schema, columns)
    }

    fn apply_array(&self, policy: FieldPolicy, array: &ArrayRef) -> std::result::Result<ArrayRef, ArrowError> {
        if matches!(policy, FieldPolicy::Null | FieldPolicy::Exclude) {
            return Ok(new_null_array(array.data_type(), array.len()));
        }
        map_text(array, |v| self.governance.apply_text(policy, v))
    }
}

/// `array` (Utf8, LargeUtf8 or Utf8View) with `f` applied to each value, in the same type;
/// nulls stay null, and `None` from `f` makes a null. Also the SQL endpoint's masks.
pub fn map_text(array: &ArrayRef, f: impl Fn(&str) -> Option<String>) -> std::result::Result<ArrayRef, ArrowError> {
    Ok(match array.data_type() {
        DataType::Utf8 => Arc::new(array.as_string::<i32>().iter().map(|v| v.and_then(&f)).collect::<StringArray>()),
        DataType::LargeUtf8 => Arc::new(array.as_string::<i64>().iter().map(|v| v.and_then(&f)).collect::<LargeStringArray>()),
        DataType::Utf8View => {
            let out: StringArray = array.as_string_view().iter().map(|v| v.and_then(&f)).collect();
            deltalake::arrow::compute::cast(&out, &DataType::Utf8View)?
        }
        other => return Err(ArrowError::InvalidArgumentError(format!("{other} is not text"))),
    })
}

/// The facts resolution needs about a table's fields: text or not, protected or not, and the
/// source's type name (from `tidemark.source_type` metadata where present).
pub fn field_facts<'a, F: AsRef<deltalake::arrow::datatypes::Field>>(
    fields: &'a [F],
    protected: &[String],
) -> Vec<FieldFacts<'a>> {
    fields
        .iter()
        .map(|f| f.as_ref())
        .map(|f| FieldFacts {
            name: f.name(),
            text: is_text(f.data_type()),
            protected: protected.iter().any(|p| p.eq_ignore_ascii_case(f.name()))
                || f.metadata().get(crate::source::PROTECTED).is_some_and(|v| v == "true"),
            type_name: f.metadata().get(crate::source::SOURCE_TYPE).map_or("a non-text type", String::as_str),
        })
        .collect()
}

/// Column → the token recorded in its metadata (columns without one are absent).
pub fn column_tokens(schema: &Schema) -> BTreeMap<String, String> {
    schema
        .fields()
        .iter()
        .filter_map(|f| {
            f.metadata().get(POLICY_METADATA).filter(|t| t.as_str() != NO_POLICY).map(|t| (f.name().clone(), t.clone()))
        })
        .collect()
}

/// The token of a column whose policy was lifted (metadata keys cannot be removed).
pub const NO_POLICY: &str = "none";

/// The file tag for columns written under `tokens` (column → token); `None` when there are none.
pub fn file_tag(tokens: &BTreeMap<String, String>) -> Option<(String, String)> {
    (!tokens.is_empty()).then(|| (POLICY_TAG.to_owned(), serde_json::to_string(tokens).expect("a map of strings")))
}

/// Each data file of `table` with the tokens its values were written under (empty: none).
pub async fn file_tokens(table: &DeltaTable, label: &str) -> Result<Vec<ScrubFile>> {
    let mut out = Vec::new();
    let mut views = table.get_active_add_actions_by_partitions(&[]);
    while let Some(view) = views.next().await {
        let view = view.map_err(|e| LakeError::delta(label, e))?;
        #[allow(deprecated)]
        let add = view.add_action();
        let tokens = add
            .tags
            .as_ref()
            .and_then(|tags| tags.get(POLICY_TAG).cloned().flatten())
            .map(|json| serde_json::from_str::<BTreeMap<String, String>>(&json))
            .transpose()
            .map_err(|e| LakeError::Layout { table: label.to_owned(), detail: format!("a file's policy tag is not valid: {e}") })?
            .unwrap_or_default();
        let partition_values = add.partition_values.into_iter().collect();
        out.push(ScrubFile { path: add.path, size: add.size, tokens, stats: add.stats, partition_values });
    }
    Ok(out)
}

/// Columns whose files are not all under the token their metadata records: versions written
/// before a policy changed, waiting for `tidemark govern apply`.
pub async fn unsettled_columns(table: &DeltaTable, schema: &Schema, label: &str) -> Result<Vec<String>> {
    let wanted = column_tokens(schema);
    let files = file_tokens(table, label).await?;
    let mut out = Vec::new();
    for field in schema.fields() {
        let want = wanted.get(field.name());
        if files.iter().any(|f| f.tokens.get(field.name()) != want) {
            out.push(field.name().clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use deltalake::arrow::array::Int32Array;
    use deltalake::arrow::datatypes::Field;
    use tidemark_core::governance::GovernanceConfig;

    fn governance() -> Arc<Governance> {
        let yaml = "hash_key: a key of sixteen+ chars\npolicies:\n  Contact:\n    Email: hash\n    Phone: mask:last4\n    Age: null\n    Notes: exclude\n";
        let config: GovernanceConfig = tidemark_core::config::load_str(yaml, &|_| None).unwrap();
        Arc::new(Governance::compile(&config).unwrap())
    }

    #[test]
    fn policies_transform_their_columns_only() {
        let g = governance();
        let schema = Arc::new(Schema::new(vec![
            Field::new("Id", DataType::Utf8, false),
            Field::new("email", DataType::Utf8, true),
            Field::new("Phone", DataType::LargeUtf8, true),
            Field::new("Age", DataType::Int32, true),
            Field::new("Notes", DataType::Utf8View, true),
        ]));
        let facts = field_facts(schema.fields(), &["Id".to_owned()]);
        let policies = ColumnPolicies::resolve(&g, "Contact", &facts).unwrap();
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec!["003A", "003B"])),
                Arc::new(StringArray::from(vec![Some("jane@example.com"), None])),
                Arc::new(LargeStringArray::from(vec![Some("+1 415 555 0134"), Some("12")])),
                Arc::new(Int32Array::from(vec![Some(41), Some(7)])),
                Arc::new(deltalake::arrow::array::StringViewArray::from(vec![Some("secret"), None])),
            ],
        )
        .unwrap();
        let out = policies.apply(&batch).unwrap();
        assert_eq!(out.column(0).as_string::<i32>().value(0), "003A");
        let email = out.column(1).as_string::<i32>();
        assert_eq!(email.value(0), g.key().unwrap().hash("jane@example.com"));
        assert!(email.is_null(1));
        let phone = out.column(2).as_string::<i64>();
        assert_eq!((phone.value(0), phone.value(1)), ("***********0134", "**"));
        assert_eq!(out.column(3).null_count(), 2);
        assert_eq!(out.column(4).null_count(), 2);
        assert_eq!(out.column(4).data_type(), &DataType::Utf8View);
        // A field the source depends on (a polled table's modification time) is skipped by a glob
        // and refused when named.
        let stamp = Field::new("updated_at", DataType::Utf8, true)
            .with_metadata(std::collections::HashMap::from([(crate::source::PROTECTED.to_owned(), "true".to_owned())]));
        let globbed: GovernanceConfig =
            tidemark_core::config::load_str("policies:\n  \"*\":\n    \"*\": null\n", &|_| None).unwrap();
        let globbed = Arc::new(Governance::compile(&globbed).unwrap());
        let fields = [stamp.clone(), Field::new("notes", DataType::Utf8, true)];
        let resolved = ColumnPolicies::resolve(&globbed, "app.t", &field_facts(&fields, &[])).unwrap();
        assert_eq!((resolved.of("updated_at"), resolved.of("notes")), (None, Some(FieldPolicy::Null)));
        let named: GovernanceConfig =
            tidemark_core::config::load_str("policies:\n  app.t:\n    updated_at: null\n", &|_| None).unwrap();
        let named = Arc::new(Governance::compile(&named).unwrap());
        assert!(ColumnPolicies::resolve(&named, "app.t", &field_facts(&[stamp], &[])).is_err());
        let tokens: BTreeMap<String, String> = policies.tokens().into_iter().collect();
        assert_eq!(tokens["Phone"], "mask:last4");
        assert_eq!(tokens["Notes"], "exclude");
        assert!(tokens["email"].starts_with("hash:"));
    }
}
