//! Schema changes on a live org, as an admin makes them in Setup: add a custom field, widen
//! one, change its type (converting stored values), or delete it. Each is logged as a `schema`
//! event in the change log.
//!
//! Like a real org, only custom fields (`__c`) can be changed; standard fields are fixed. Slots
//! are never reused: a removed field's bytes stay in old rows and are simply never read again.

use serde::Deserialize;
use tidemark_core::FieldType;

use super::Org;
use crate::row::Row;
use crate::schema::{FieldDef, PicklistValue};
use crate::value::{Value, ValueRef, parse_date, parse_datetime, parse_time};

/// One schema change. JSON: `{"op":"add_field","field":"Tier__c","type":"picklist",…}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum SchemaChange {
    /// Adds a nullable custom field.
    AddField {
        field: String,
        #[serde(rename = "type")]
        field_type: String,
        #[serde(default)]
        label: Option<String>,
        #[serde(default)]
        length: Option<u32>,
        #[serde(default)]
        precision: Option<u8>,
        #[serde(default)]
        scale: Option<u8>,
        #[serde(default)]
        picklist_values: Option<Vec<String>>,
        #[serde(default)]
        reference_to: Option<Vec<String>>,
    },
    /// Makes a field accept more: a longer text length, more digits, or `int` → `double`.
    WidenField {
        field: String,
        #[serde(default)]
        length: Option<u32>,
        #[serde(default)]
        precision: Option<u8>,
        #[serde(default)]
        scale: Option<u8>,
        #[serde(default, rename = "type")]
        to_type: Option<String>,
    },
    /// Changes a field's type, converting stored values (unconvertible values become null).
    ChangeType {
        field: String,
        #[serde(rename = "type")]
        to_type: String,
        #[serde(default)]
        length: Option<u32>,
        #[serde(default)]
        picklist_values: Option<Vec<String>>,
    },
    /// Deletes a custom field: it disappears from describe, queries and the truth dump.
    RemoveField { field: String },
}

/// Why a schema change was refused; `field()` names the offending request field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SchemaChangeError {
    #[error("unknown object '{0}'")]
    UnknownObject(String),
    #[error("unknown field '{0}'")]
    UnknownField(String),
    #[error("field '{0}' already exists")]
    FieldExists(String),
    #[error("only custom fields (ending in __c) can be changed; '{0}' is a standard or system field")]
    NotCustom(String),
    #[error("field '{0}' is a formula, compound or compound component and cannot be changed this way")]
    NotChangeable(String),
    #[error("unsupported field type '{0}'")]
    UnsupportedType(String),
    #[error("{0}")]
    NotWider(String),
    #[error("referenceTo is required for a reference field")]
    MissingReferenceTo,
    #[error("unknown object '{0}' in referenceTo")]
    UnknownReferenceTo(String),
    #[error("field '{0}' is used by formula field '{1}'")]
    InUse(String, String),
}

impl SchemaChangeError {
    /// The request field at fault, for `{"error":…,"field":…}` answers.
    pub fn field(&self) -> &'static str {
        match self {
            SchemaChangeError::UnknownObject(_) => "object",
            SchemaChangeError::UnsupportedType(_) => "type",
            SchemaChangeError::NotWider(m) if m.contains("length") => "length",
            SchemaChangeError::NotWider(m) if m.contains("type") => "type",
            SchemaChangeError::NotWider(_) => "precision",
            SchemaChangeError::MissingReferenceTo | SchemaChangeError::UnknownReferenceTo(_) => "reference_to",
            _ => "field",
        }
    }
}

/// Types an admin can give a custom field here (compound, id and formula fields are not).
fn parse_type(s: &str) -> Result<FieldType, SchemaChangeError> {
    match FieldType::parse(s) {
        Some(t) if !t.is_compound() && !matches!(t, FieldType::Id | FieldType::AnyType | FieldType::Base64) => Ok(t),
        _ => Err(SchemaChangeError::UnsupportedType(s.to_owned())),
    }
}

fn picklist_entries(values: &[String]) -> Vec<PicklistValue> {
    values.iter().map(|v| PicklistValue { value: v.clone(), label: v.clone(), active: true, default_value: false }).collect()
}

impl Org {
    /// Applies `change` to `object` and logs it. Returns the logged detail text.
    pub fn apply_schema_change(&mut self, object: &str, change: &SchemaChange) -> Result<String, SchemaChangeError> {
        let known_objects: Vec<String> = self.tables().iter().map(|t| t.def.name.clone()).collect();
        let table = self.table_mut(object).ok_or_else(|| SchemaChangeError::UnknownObject(object.to_owned()))?;
        table.forget_lookups();
        let object_name = table.def.name.clone();
        let detail = match change {
            SchemaChange::AddField { field, field_type, label, length, precision, scale, picklist_values, reference_to } => {
                if !field.ends_with("__c") || field.len() <= 3 {
                    return Err(SchemaChangeError::NotCustom(field.clone()));
                }
                if table.def.has_field(field) {
                    return Err(SchemaChangeError::FieldExists(field.clone()));
                }
                let ty = parse_type(field_type)?;
                let mut def = FieldDef::new(field, ty);
                if let Some(label) = label {
                    def.label = label.clone();
                }
                if let Some(l) = length {
                    def.length = *l;
                }
                if ty.is_numeric() {
                    def.precision = precision.unwrap_or(def.precision);
                    def.scale = scale.unwrap_or(def.scale);
                }
                if let Some(values) = picklist_values {
                    def.picklist_values = picklist_entries(values);
                }
                if ty == FieldType::Reference {
                    let targets = reference_to.as_ref().filter(|t| !t.is_empty()).ok_or(SchemaChangeError::MissingReferenceTo)?;
                    let mut canonical = Vec::with_capacity(targets.len());
                    for t in targets {
                        let known = known_objects.iter().find(|k| k.eq_ignore_ascii_case(t));
                        canonical.push(known.ok_or_else(|| SchemaChangeError::UnknownReferenceTo(t.clone()))?.clone());
                    }
                    let refs: Vec<&str> = canonical.iter().map(String::as_str).collect();
                    def = def.lookup(&refs);
                }
                table.def.add_field(def);
                format!("add_field {field} ({field_type})")
            }
            SchemaChange::WidenField { field, length, precision, scale, to_type } => {
                let idx = changeable_field(&table.def, field)?;
                let f = &mut table.def.fields[idx];
                let mut parts = Vec::new();
                if let Some(l) = length {
                    if !f.field_type.is_textual() && f.field_type != FieldType::Textarea {
                        return Err(SchemaChangeError::NotWider(format!("length applies to text fields, not {}", f.field_type)));
                    }
                    if *l <= f.length {
                        return Err(SchemaChangeError::NotWider(format!("new length {l} is not longer than {}", f.length)));
                    }
                    parts.push(format!("length {}→{l}", f.length));
                    f.length = *l;
                }
                if precision.is_some() || scale.is_some() {
                    if !f.field_type.is_numeric() || f.field_type == FieldType::Int {
                        return Err(SchemaChangeError::NotWider(format!(
                            "precision applies to decimal fields, not {}",
                            f.field_type
                        )));
                    }
                    let p = precision.unwrap_or(f.precision);
                    let s = scale.unwrap_or(f.scale);
                    if p < f.precision || s < f.scale || p - s < f.precision - f.scale {
                        return Err(SchemaChangeError::NotWider(format!(
                            "precision {p},{s} is narrower than {},{}",
                            f.precision, f.scale
                        )));
                    }
                    parts.push(format!("precision {},{}→{p},{s}", f.precision, f.scale));
                    f.precision = p;
                    f.scale = s;
                }
                if let Some(t) = to_type {
                    let to = parse_type(t)?;
                    if !(f.field_type == FieldType::Int && matches!(to, FieldType::Double | FieldType::Long)) {
                        return Err(SchemaChangeError::NotWider(format!("type {} cannot be widened to {to}", f.field_type)));
                    }
                    parts.push(format!("type {}→{to}", f.field_type));
                    let widened = FieldDef { slot: f.slot, ..FieldDef::new(&f.name, to).label(&f.label) };
                    *f = widened;
                }
                if parts.is_empty() {
                    return Err(SchemaChangeError::NotWider("nothing to widen: give length, precision/scale or type".into()));
                }
                format!("widen_field {field}: {}", parts.join(", "))
            }
            SchemaChange::ChangeType { field, to_type, length, picklist_values } => {
                let idx = changeable_field(&table.def, field)?;
                let to = parse_type(to_type)?;
                let old = table.def.fields[idx].clone();
                let slot = old.slot.expect("changeable fields are stored");
                let mut new = FieldDef::new(&old.name, to).label(&old.label);
                new.slot = old.slot;
                new.nillable = true;
                if let Some(l) = length {
                    new.length = *l;
                } else if to.is_textual() && old.length > 0 {
                    new.length = old.length.max(new.length.min(255));
                }
                if to == FieldType::Reference {
                    return Err(SchemaChangeError::UnsupportedType(to_type.clone()));
                }
                let rows = table.rows().to_vec();
                let converted: Vec<Row> = rows.iter().map(|r| convert_row(r, slot, &old, to)).collect();
                if matches!(to, FieldType::Picklist | FieldType::Multipicklist) {
                    let values = match picklist_values {
                        Some(v) => v.clone(),
                        None => distinct_text(&converted, slot),
                    };
                    new.picklist_values = picklist_entries(&values);
                }
                let mut it = converted.into_iter();
                table.map_rows(|_| it.next().expect("one converted row per row"));
                table.def.fields[idx] = new;
                format!("change_type {field} ({}→{to})", old.field_type)
            }
            SchemaChange::RemoveField { field } => {
                let idx = changeable_field(&table.def, field)?;
                let name = table.def.fields[idx].name.clone();
                if let Some(user) = table.def.fields.iter().find(|f| formula_uses(f, &name)) {
                    return Err(SchemaChangeError::InUse(name, user.name.clone()));
                }
                table.def.fields.remove(idx);
                table.def.validation_rules.retain(|r| !r.field.eq_ignore_ascii_case(&name));
                for rule in &mut table.def.validation_rules {
                    if rule.error_field.as_deref().is_some_and(|f| f.eq_ignore_ascii_case(&name)) {
                        rule.error_field = None;
                    }
                }
                format!("remove_field {name}")
            }
        };
        self.log_schema_change(&object_name, detail.clone());
        tracing::info!(object = %object_name, "schema change applied");
        Ok(detail)
    }
}

fn changeable_field(def: &crate::schema::ObjectDef, name: &str) -> Result<usize, SchemaChangeError> {
    let idx = def.field_index(name).ok_or_else(|| SchemaChangeError::UnknownField(name.to_owned()))?;
    let f = &def.fields[idx];
    if !f.name.ends_with("__c") {
        return Err(SchemaChangeError::NotCustom(f.name.clone()));
    }
    if f.slot.is_none()
        || f.compound_field_name.is_some()
        || f.field_type == FieldType::Reference && f.relationship_order.is_some()
    {
        return Err(SchemaChangeError::NotChangeable(f.name.clone()));
    }
    Ok(idx)
}

fn formula_uses(f: &FieldDef, name: &str) -> bool {
    use crate::schema::Formula;
    match &f.formula {
        Some(Formula::ParentField { reference_field, .. }) => reference_field.eq_ignore_ascii_case(name),
        Some(Formula::Product { left, right, .. }) => left.eq_ignore_ascii_case(name) || right.eq_ignore_ascii_case(name),
        Some(Formula::DaysSince { field }) => field.eq_ignore_ascii_case(name),
        None => false,
    }
}

/// The value's text as the old field type renders it (`42`, `12.5`, `2024-01-02`, …).
fn as_text(v: ValueRef<'_>, old: &FieldDef) -> Option<String> {
    match v {
        ValueRef::Null => None,
        ValueRef::Str(s) => Some(s.to_owned()),
        ValueRef::DateTime(ms) => Some(crate::value::format_datetime_rest(ms)),
        other => {
            let mut out = String::new();
            other.write_csv_text(old.field_type, old.scale, &mut out);
            Some(out)
        }
    }
}

/// Converts one stored value from `old`'s type to `to`; `Null` when it does not convert.
fn convert_value(v: ValueRef<'_>, old: &FieldDef, to: FieldType) -> Value {
    if v.is_null() {
        return Value::Null;
    }
    match to {
        FieldType::Int | FieldType::Long => match v {
            ValueRef::Int(i) => Value::Int(i),
            ValueRef::Double(d) => Value::Int(d.round() as i64),
            ValueRef::Bool(b) => Value::Int(i64::from(b)),
            ValueRef::Str(s) => {
                s.trim().parse::<f64>().ok().filter(|d| d.is_finite()).map_or(Value::Null, |d| Value::Int(d.round() as i64))
            }
            _ => Value::Null,
        },
        FieldType::Double | FieldType::Currency | FieldType::Percent => match v {
            ValueRef::Int(i) => Value::Double(i as f64),
            ValueRef::Double(d) => Value::Double(d),
            ValueRef::Bool(b) => Value::Double(if b { 1.0 } else { 0.0 }),
            ValueRef::Str(s) => s.trim().parse::<f64>().ok().filter(|d| d.is_finite()).map_or(Value::Null, Value::Double),
            _ => Value::Null,
        },
        FieldType::Boolean => match v {
            ValueRef::Bool(b) => Value::Bool(b),
            ValueRef::Int(i) => Value::Bool(i != 0),
            ValueRef::Double(d) => Value::Bool(d != 0.0),
            ValueRef::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Value::Bool(true),
                "false" | "0" | "no" => Value::Bool(false),
                _ => Value::Null,
            },
            _ => Value::Null,
        },
        FieldType::Date => match v {
            ValueRef::Date(d) => Value::Date(d),
            ValueRef::DateTime(ms) => Value::Date(ms.div_euclid(86_400_000) as i32),
            ValueRef::Str(s) => parse_date(s)
                .or_else(|| parse_datetime(s).map(|ms| ms.div_euclid(86_400_000) as i32))
                .map_or(Value::Null, Value::Date),
            _ => Value::Null,
        },
        FieldType::Datetime => match v {
            ValueRef::DateTime(ms) => Value::DateTime(ms),
            ValueRef::Date(d) => Value::DateTime(i64::from(d) * 86_400_000),
            ValueRef::Str(s) => parse_datetime(s).map_or(Value::Null, Value::DateTime),
            _ => Value::Null,
        },
        FieldType::Time => match v {
            ValueRef::Time(t) => Value::Time(t),
            ValueRef::Str(s) => parse_time(s).map_or(Value::Null, Value::Time),
            _ => Value::Null,
        },
        _ => as_text(v, old).map_or(Value::Null, Value::Str),
    }
}

fn convert_row(row: &Row, slot: crate::row::Slot, old: &FieldDef, to: FieldType) -> Row {
    let v = row.get(slot);
    if v.is_null() {
        return row.clone();
    }
    row.with_updates([(slot, convert_value(v, old, to))])
}

/// Distinct text values of a slot, in first-seen order (picklist values for a converted field).
fn distinct_text(rows: &[Row], slot: crate::row::Slot) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for r in rows {
        if let Some(s) = r.get(slot).as_str()
            && seen.insert(s.to_owned())
        {
            for part in s.split(';') {
                if !out.iter().any(|o: &String| o == part) {
                    out.push(part.to_owned());
                }
            }
        }
        if out.len() >= 1000 {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::org::OrgClock;
    use crate::schema::ObjectDef;

    fn org() -> Org {
        let mut o = ObjectDef::new("Thing__c", "Thing", "Things", "a05");
        o.add_system_fields();
        o.add_field(FieldDef::new("Name", FieldType::String));
        o.add_field(FieldDef::new("Code__c", FieldType::String).length(80));
        o.add_field(FieldDef::new("Count__c", FieldType::Int));
        let clock = OrgClock::Manual(tidemark_core::ManualClock::new(tidemark_core::ManualClock::default_start()));
        Org::new(vec![o], clock)
    }

    #[test]
    fn each_change_updates_schema_values_and_log() {
        let mut org = org();
        let def = &org.table("Thing__c").unwrap().def;
        let (code, count) = (def.slot("Code__c"), def.slot("Count__c"));
        let id = org.insert_record("Thing__c", vec![(code, Value::str("42")), (count, Value::Int(7))]).unwrap();
        let add = SchemaChange::AddField {
            field: "Tier__c".into(),
            field_type: "picklist".into(),
            label: None,
            length: None,
            precision: None,
            scale: None,
            picklist_values: Some(vec!["Gold".into()]),
            reference_to: None,
        };
        org.apply_schema_change("thing__c", &add).unwrap();
        assert_eq!(org.apply_schema_change("Thing__c", &add), Err(SchemaChangeError::FieldExists("Tier__c".into())));
        let widen =
            SchemaChange::WidenField { field: "Code__c".into(), length: Some(255), precision: None, scale: None, to_type: None };
        org.apply_schema_change("Thing__c", &widen).unwrap();
        assert_eq!(org.table("Thing__c").unwrap().def.field("Code__c").unwrap().length, 255);
        let narrow =
            SchemaChange::WidenField { field: "Code__c".into(), length: Some(10), precision: None, scale: None, to_type: None };
        assert_eq!(org.apply_schema_change("Thing__c", &narrow).unwrap_err().field(), "length");
        let to_int =
            SchemaChange::ChangeType { field: "Code__c".into(), to_type: "double".into(), length: None, picklist_values: None };
        org.apply_schema_change("Thing__c", &to_int).unwrap();
        let to_text =
            SchemaChange::ChangeType { field: "Count__c".into(), to_type: "string".into(), length: None, picklist_values: None };
        org.apply_schema_change("Thing__c", &to_text).unwrap();
        let (table, row) = org.find(&id).unwrap();
        assert_eq!(row.get(table.def.slot("Code__c")), ValueRef::Double(42.0));
        assert_eq!(row.get(table.def.slot("Count__c")), ValueRef::Str("7"));
        org.apply_schema_change("Thing__c", &SchemaChange::RemoveField { field: "Count__c".into() }).unwrap();
        assert!(!org.table("Thing__c").unwrap().def.has_field("Count__c"));
        let name_change = SchemaChange::RemoveField { field: "Name".into() };
        assert_eq!(org.apply_schema_change("Thing__c", &name_change).unwrap_err().field(), "field");
        let schema_events = org.change_log().iter().filter(|e| e.kind == super::super::ChangeKind::Schema).count();
        assert_eq!(schema_events, 5);
    }
}
