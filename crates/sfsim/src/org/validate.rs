//! Value validation with Salesforce's error codes, and the configurable validation rules.
//!
//! The order follows Salesforce's order of execution for API saves: field-level checks (types,
//! lengths, restricted picklists, foreign keys, required fields), then custom validation rules,
//! then, when the record would be saved, the unique indexes (`DUPLICATE_VALUE`). A record that
//! breaks a validation rule therefore never reports a duplicate.

use tidemark_core::{FieldType, SfId};

use super::write::RecordError;
use super::{ObjectTable, Org};
use crate::row::Row;
use crate::schema::{FieldDef, ObjectDef, RuleCondition};
use crate::value::{Value, ValueRef};

/// Checks one coerced value against its field's constraints (all but uniqueness, see
/// [`check_unique_values`]).
pub fn check_value(org: &Org, field: &FieldDef, value: &Value) -> Result<(), RecordError> {
    match value {
        Value::Null => Ok(()),
        Value::Str(s) => {
            check_length(field, s)?;
            check_picklist(field, s)?;
            if field.field_type == FieldType::Email && !s.is_empty() && !is_valid_email(s) {
                return Err(RecordError::new(
                    "INVALID_EMAIL_ADDRESS",
                    format!("{}: invalid email address: {s}", field.label),
                    vec![field.name.clone()],
                ));
            }
            if field.field_type == FieldType::Reference && !s.is_empty() {
                check_reference(org, field, s)?;
            }
            Ok(())
        }
        Value::Int(_) | Value::Double(_) => check_range(field, value),
        _ => Ok(()),
    }
}

fn check_length(field: &FieldDef, s: &str) -> Result<(), RecordError> {
    if field.length > 0 && field.field_type.is_textual() && s.chars().count() > field.length as usize {
        return Err(RecordError::new(
            "STRING_TOO_LONG",
            format!("{}: data value too large: {} (max length={})", field.label, truncate(s, 40), field.length),
            vec![field.name.clone()],
        ));
    }
    Ok(())
}

/// Restricted picklists accept only active values; multipicklists check each `;`-joined value.
fn check_picklist(field: &FieldDef, s: &str) -> Result<(), RecordError> {
    if !field.restricted_picklist {
        return Ok(());
    }
    let allowed = |v: &str| field.picklist_values.iter().any(|p| p.active && p.value == v);
    let bad = match field.field_type {
        FieldType::Picklist => (!allowed(s)).then_some(s),
        FieldType::Multipicklist => s.split(';').find(|v| !allowed(v)),
        _ => None,
    };
    match bad {
        Some(bad) => Err(RecordError::new(
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            format!("{}: bad value for restricted picklist field: {bad}", field.label),
            vec![field.name.clone()],
        )),
        None => Ok(()),
    }
}

/// The address shape Salesforce accepts: `local@domain.tld` without spaces or quotes.
fn is_valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else { return false };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local.chars().all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c))
        && !local.starts_with('.')
        && !local.ends_with('.');
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty() && !l.starts_with('-') && !l.ends_with('-') && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    local_ok && domain_ok
}

/// A reference must name an existing, live record of one of the field's `referenceTo` objects.
fn check_reference(org: &Org, field: &FieldDef, s: &str) -> Result<(), RecordError> {
    let Ok(id) = SfId::parse(s) else {
        return Err(RecordError::new(
            "MALFORMED_ID",
            format!("{}: id value of incorrect type: {s}", field.label),
            vec![field.name.clone()],
        ));
    };
    // The integration user every write runs as always exists, even in a catalog without User rows.
    if id == org.integration_user && field.reference_to.iter().any(|r| r.eq_ignore_ascii_case("User")) {
        return Ok(());
    }
    let table = org
        .table_for_id(&id)
        .filter(|t| field.reference_to.is_empty() || field.reference_to.iter().any(|r| r.eq_ignore_ascii_case(&t.def.name)));
    let Some(table) = table else {
        return Err(RecordError::new(
            "INVALID_CROSS_REFERENCE_KEY",
            format!("{}: id value of incorrect type: {s}", field.label),
            vec![field.name.clone()],
        ));
    };
    match table.get(&id) {
        None => Err(RecordError::new("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", vec![])),
        Some(row) if table.is_deleted(row) => Err(RecordError::new("ENTITY_IS_DELETED", "entity is deleted", vec![])),
        Some(_) => Ok(()),
    }
}

/// Unique fields among `values` (external ids included when marked unique): no other live
/// record may hold the same value. `current` is the stored record being updated (or undeleted).
pub fn check_unique_values(org: &Org, def: &ObjectDef, values: &[(usize, Value)], current: Option<&Row>) -> Vec<RecordError> {
    values
        .iter()
        .filter(|(i, _)| def.fields[*i].unique)
        .filter_map(|(i, v)| match v {
            Value::Str(s) => check_unique(org, def, &def.fields[*i], s, current).err(),
            _ => None,
        })
        .collect()
}

/// No other live record may hold `s` in `field` (compared case-insensitively unless the field
/// is case-sensitive).
fn check_unique(org: &Org, def: &ObjectDef, field: &FieldDef, s: &str, current: Option<&Row>) -> Result<(), RecordError> {
    if s.is_empty() {
        return Ok(());
    }
    let Some(table) = org.table(&def.name) else { return Ok(()) };
    let own_id = current.map(|row| table.id_of(row));
    let clash = find_by_text(table, field, s).into_iter().find(|id| Some(*id) != own_id);
    match clash {
        Some(other) => Err(RecordError::new(
            "DUPLICATE_VALUE",
            format!("duplicate value found: {} duplicates value on record with id: {}", field.name, other.short()),
            vec![],
        )),
        None => Ok(()),
    }
}

/// Live records of `table` whose text field `field` equals `value` (case-insensitively unless
/// the field is case-sensitive), in storage order.
pub fn find_by_text(table: &ObjectTable, field: &FieldDef, value: &str) -> Vec<SfId> {
    let Some(slot) = field.slot else { return Vec::new() };
    let deleted = table.def.slot("IsDeleted");
    table
        .lookup_text(slot, value)
        .into_iter()
        .filter(|id| {
            let Some(r) = table.get(id) else { return false };
            let same = match r.get(slot) {
                ValueRef::Str(v) if field.case_sensitive => v == value,
                ValueRef::Str(v) => v.eq_ignore_ascii_case(value),
                _ => false,
            };
            same && r.get(deleted).as_bool() != Some(true)
        })
        .collect()
}

/// Numbers must fit the field's precision and scale (`digits` for integers).
fn check_range(field: &FieldDef, value: &Value) -> Result<(), RecordError> {
    let n = match value {
        Value::Int(i) => *i as f64,
        Value::Double(d) => *d,
        _ => return Ok(()),
    };
    let integer_digits = match field.field_type {
        FieldType::Int | FieldType::Long => i32::from(field.digits),
        FieldType::Double | FieldType::Currency | FieldType::Percent if field.precision > 0 => {
            i32::from(field.precision) - i32::from(field.scale)
        }
        _ => return Ok(()),
    };
    if integer_digits <= 0 || n.abs() < 10f64.powi(integer_digits) {
        return Ok(());
    }
    let shown = match value {
        Value::Int(i) => i.to_string(),
        _ => n.to_string(),
    };
    Err(RecordError::new(
        "NUMBER_OUTSIDE_VALID_RANGE",
        format!("{}: value outside of valid range on numeric field: {shown}", field.label),
        vec![field.name.clone()],
    ))
}

/// Evaluates the object's validation rules against the values being written (updates see the
/// merged record). Every failing rule is reported.
pub fn check_rules(org: &Org, def: &ObjectDef, id: Option<&SfId>, values: &[(usize, Value)]) -> Vec<RecordError> {
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
        if rule_fails(&rule.when, &value, field) {
            let fields = rule.error_field.iter().filter_map(|f| def.field(f)).map(|f| f.name.clone()).collect();
            errors.push(RecordError::new("FIELD_CUSTOM_VALIDATION_EXCEPTION", rule.message.clone(), fields));
        }
    }
    errors
}

/// Whether `value` (of `field`) makes a rule with condition `when` fail.
pub fn rule_fails(when: &RuleCondition, value: &Value, field: &FieldDef) -> bool {
    let blank = matches!(value, Value::Null) || matches!(value, Value::Str(s) if s.is_empty());
    if let RuleCondition::IsBlank = when {
        return blank;
    }
    if blank {
        return false;
    }
    let number = value.as_ref().as_f64();
    let text = || -> String {
        match value {
            Value::Str(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
            other => {
                let mut out = String::new();
                other.as_ref().write_csv_text(field.field_type, field.scale, &mut out);
                out
            }
        }
    };
    let equals = |x: &str| match (value, number) {
        (Value::Bool(b), _) => x.eq_ignore_ascii_case(if *b { "true" } else { "false" }),
        (Value::Int(_) | Value::Double(_), Some(n)) => x.trim().parse::<f64>().is_ok_and(|x| x == n),
        _ => text() == x,
    };
    let like = |p: &str| crate::soql::eval::like(&text(), &crate::soql::resolve::like_pattern(p));
    match when {
        RuleCondition::IsBlank => unreachable!("handled above"),
        RuleCondition::LessThan(bound) => number.is_some_and(|n| n < *bound),
        RuleCondition::GreaterThan(bound) => number.is_some_and(|n| n > *bound),
        RuleCondition::Equals(x) => equals(x),
        RuleCondition::NotEquals(x) => !equals(x),
        RuleCondition::Like(p) => like(p),
        RuleCondition::NotLike(p) => !like(p),
    }
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_shapes() {
        for ok in ["a@b.co", "first.last+tag@sub.example.com", "testuser@salesforce.com"] {
            assert!(is_valid_email(ok), "{ok}");
        }
        for bad in ["", "plain", "@b.co", "a@", "a@b", "a b@c.de", "a@-b.com", ".a@b.com", "a@b..com"] {
            assert!(!is_valid_email(bad), "{bad}");
        }
    }

    #[test]
    fn numbers_respect_precision_and_scale() {
        let f = FieldDef::new("Amount__c", FieldType::Currency).precision_scale(5, 2);
        assert!(check_range(&f, &Value::Double(999.99)).is_ok());
        let e = check_range(&f, &Value::Double(1000.0)).unwrap_err();
        assert_eq!(e.status_code, "NUMBER_OUTSIDE_VALID_RANGE");
        assert_eq!(e.message, "Amount: value outside of valid range on numeric field: 1000");
        let i = FieldDef::new("Seats__c", FieldType::Int);
        assert!(check_range(&i, &Value::Int(999_999_999)).is_ok());
        assert!(check_range(&i, &Value::Int(1_000_000_000)).is_err());
    }

    #[test]
    fn restricted_multipicklist_checks_every_value() {
        let f = FieldDef::new("Tags__c", FieldType::Multipicklist).picklist(&["a", "b"], true);
        assert!(check_picklist(&f, "a;b").is_ok());
        let e = check_picklist(&f, "a;zz").unwrap_err();
        assert_eq!(e.message, "Tags: bad value for restricted picklist field: zz");
    }
}
