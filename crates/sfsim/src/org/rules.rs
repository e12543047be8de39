//! Managing validation rules at run time (the admin API's `/__admin/validation-rules`, and
//! tests in-process): add or replace a rule by name, list and remove rules. Evaluation lives in
//! [`super::validate::check_rules`].

use tidemark_core::FieldType;

use super::Org;
use crate::schema::{RuleCondition, ValidationRule};

/// Why a rule cannot be set; `field` names the part of the request at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct RuleError {
    pub field: &'static str,
    pub message: String,
}

fn bad(field: &'static str, message: impl Into<String>) -> RuleError {
    RuleError { field, message: message.into() }
}

impl Org {
    /// Adds `rule` to `object`, replacing a rule of the same name (case-insensitive). Object
    /// and field names are resolved case-insensitively and stored as the describe spells them.
    /// Returns the rule as stored.
    pub fn set_validation_rule(&mut self, object: &str, mut rule: ValidationRule) -> Result<ValidationRule, RuleError> {
        let table = self.table_mut(object).ok_or_else(|| bad("object", format!("unknown object '{object}'")))?;
        let def = &mut table.def;
        if rule.name.trim().is_empty() {
            return Err(bad("name", "name (the rule's unique name) is required"));
        }
        if rule.message.trim().is_empty() {
            return Err(bad("message", "message (the error message) is required"));
        }
        let field =
            def.field(&rule.field).ok_or_else(|| bad("field", format!("unknown field '{}' on {}", rule.field, def.name)))?;
        if field.slot.is_none() {
            return Err(bad("field", format!("{} is computed (formula or compound); rules check stored fields", field.name)));
        }
        let numeric = matches!(
            field.field_type,
            FieldType::Int | FieldType::Long | FieldType::Double | FieldType::Currency | FieldType::Percent
        );
        if matches!(rule.when, RuleCondition::LessThan(_) | RuleCondition::GreaterThan(_)) && !numeric {
            return Err(bad(
                "when",
                format!("less_than/greater_than need a number field; {} is {}", field.name, field.field_type),
            ));
        }
        rule.field = field.name.clone();
        if let Some(at) = &rule.error_field {
            let f = def.field(at).ok_or_else(|| bad("error_field", format!("unknown field '{at}' on {}", def.name)))?;
            rule.error_field = Some(f.name.clone());
        }
        match def.validation_rules.iter_mut().find(|r| r.name.eq_ignore_ascii_case(&rule.name)) {
            Some(existing) => *existing = rule.clone(),
            None => def.validation_rules.push(rule.clone()),
        }
        tracing::info!(object = %def.name, rule = %rule.name, "validation rule set");
        Ok(rule)
    }

    /// Removes rules: every rule of `object` (or of every object when `None`), or only the one
    /// named `name`. Returns how many were removed.
    pub fn remove_validation_rules(&mut self, object: Option<&str>, name: Option<&str>) -> Result<usize, RuleError> {
        if let Some(o) = object
            && self.table(o).is_none()
        {
            return Err(bad("object", format!("unknown object '{o}'")));
        }
        let mut removed = 0;
        for table in &mut self.tables {
            if object.is_some_and(|o| !table.def.name.eq_ignore_ascii_case(o)) {
                continue;
            }
            let before = table.def.validation_rules.len();
            table.def.validation_rules.retain(|r| name.is_some_and(|n| !r.name.eq_ignore_ascii_case(n)));
            removed += before - table.def.validation_rules.len();
        }
        Ok(removed)
    }

    /// Every rule, as `(object, rule)`, optionally of one object.
    pub fn validation_rules(&self, object: Option<&str>) -> Vec<(String, ValidationRule)> {
        self.tables
            .iter()
            .filter(|t| object.is_none_or(|o| t.def.name.eq_ignore_ascii_case(o)))
            .flat_map(|t| t.def.validation_rules.iter().map(|r| (t.def.name.clone(), r.clone())))
            .collect()
    }
}
