//! Value validation with Salesforce's error codes, and the configurable validation rules.

use tidemark_core::FieldType;

use super::Org;
use super::write::RecordError;
use crate::row::Row;
use crate::schema::{FieldDef, ObjectDef, RuleCondition};
use crate::value::Value;

/// Checks one coerced value against its field's constraints.
pub fn check_value(
    _org: &Org,
    _def: &ObjectDef,
    field: &FieldDef,
    value: &Value,
    _current: Option<&Row>,
) -> Result<(), RecordError> {
    if let Value::Str(s) = value
        && field.length > 0
        && field.field_type.is_textual()
        && s.chars().count() > field.length as usize
    {
        return Err(RecordError::new(
            "STRING_TOO_LONG",
            format!("{}: data value too large: {} (max length={})", field.label, truncate(s, 40), field.length),
            vec![field.name.clone()],
        ));
    }
    if field.field_type == FieldType::Picklist && field.restricted_picklist
        && let Value::Str(s) = value
        && !field.picklist_values.iter().any(|p| p.active && p.value == *s)
    {
        return Err(RecordError::new(
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            format!("{}: bad value for restricted picklist field: {s}", field.label),
            vec![field.name.clone()],
        ));
    }
    Ok(())
}

/// Evaluates the object's validation rules against the values being written (updates see the
/// merged record).
pub fn check_rules(
    org: &Org,
    def: &ObjectDef,
    id: Option<&tidemark_core::SfId>,
    values: &[(usize, Value)],
) -> Vec<RecordError> {
    let current = id.and_then(|id| org.table_for_id(id).and_then(|t| t.get(id)));
    let mut errors = Vec::new();
    for rule in &def.validation_rules {
        let Some(idx) = def.field_index(&rule.field) else { continue };
        let field = &def.fields[idx];
        let written = values.iter().rev().find(|(i, _)| *i == idx).map(|(_, v)| v.clone());
        let value = match (written, current, field.slot) {
            (Some(v), _, _) => v,
            (None, Some(row), Some(slot)) => row.get(slot).to_owned(),
            _ => Value::Null,
        };
        let fails = match &rule.when {
            RuleCondition::LessThan(bound) => value.as_ref().as_f64().is_some_and(|n| n < *bound),
            RuleCondition::IsBlank => matches!(&value, Value::Null) || matches!(&value, Value::Str(s) if s.is_empty()),
            RuleCondition::Equals(s) => value.as_ref().as_str() == Some(s.as_str()),
        };
        if fails {
            errors.push(RecordError::new("FIELD_CUSTOM_VALIDATION_EXCEPTION", rule.message.clone(), vec![field.name.clone()]));
        }
    }
    errors
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}
