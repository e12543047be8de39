//! Reading field values out of records, including the ones computed on read: formula fields
//! (from the current state of parents and the org clock) and compound address/location fields.

use serde_json::{Map, Value as J, json};
use tidemark_core::{FieldType, SfId};

use super::{ObjectTable, Org};
use crate::row::Row;
use crate::schema::{FieldDef, Formula};
use crate::value::{Value, ValueRef};

/// A field value: borrowed from the row when stored, owned when computed.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue<'r> {
    Stored(ValueRef<'r>),
    Computed(Value),
}

impl FieldValue<'_> {
    pub fn as_ref(&self) -> ValueRef<'_> {
        match self {
            FieldValue::Stored(v) => *v,
            FieldValue::Computed(v) => v.as_ref(),
        }
    }
}

/// Address compound keys in the order REST returns them.
const ADDRESS_KEYS: [(&str, &str); 10] = [
    ("city", "City"),
    ("country", "Country"),
    ("countryCode", "CountryCode"),
    ("geocodeAccuracy", "GeocodeAccuracy"),
    ("latitude", "Latitude"),
    ("longitude", "Longitude"),
    ("postalCode", "PostalCode"),
    ("state", "State"),
    ("stateCode", "StateCode"),
    ("street", "Street"),
];

impl Org {
    /// The value of a non-compound field of `row` (a record of `table`).
    pub fn field_value<'r>(&self, table: &ObjectTable, row: &'r Row, field: &FieldDef) -> FieldValue<'r> {
        match (&field.formula, field.slot) {
            (_, Some(slot)) => FieldValue::Stored(row.get(slot)),
            (Some(formula), None) => FieldValue::Computed(self.eval_formula(table, row, formula, 0)),
            (None, None) => FieldValue::Computed(Value::Null),
        }
    }

    /// The value of `name` on a record, by field name (case-insensitive). `None` if no such field.
    pub fn field_value_by_name<'r>(&self, table: &ObjectTable, row: &'r Row, name: &str) -> Option<FieldValue<'r>> {
        table.def.field(name).map(|f| self.field_value(table, row, f))
    }

    fn eval_formula(&self, table: &ObjectTable, row: &Row, formula: &Formula, depth: u8) -> Value {
        if depth > 5 {
            return Value::Null;
        }
        match formula {
            Formula::ParentField { reference_field, parent_field } => {
                let Some(parent_id) = table
                    .def
                    .field(reference_field)
                    .and_then(|f| f.slot)
                    .and_then(|s| row.get(s).as_str())
                    .and_then(|s| SfId::parse(s).ok())
                else {
                    return Value::Null;
                };
                let Some((parent_table, parent_row)) = self.find(&parent_id) else { return Value::Null };
                match parent_table.def.field(parent_field) {
                    Some(f) => match (&f.formula, f.slot) {
                        (_, Some(slot)) => parent_row.get(slot).to_owned(),
                        (Some(inner), None) => self.eval_formula(parent_table, parent_row, inner, depth + 1),
                        (None, None) => Value::Null,
                    },
                    None => Value::Null,
                }
            }
            Formula::Product { left, right, divisor } => {
                let num = |name: &str| table.def.field(name).and_then(|f| f.slot).and_then(|s| row.get(s).as_f64());
                match (num(left), num(right)) {
                    (Some(a), Some(b)) if *divisor != 0.0 => Value::Double(a * b / divisor),
                    _ => Value::Null,
                }
            }
            Formula::DaysSince { field } => {
                let Some(slot) = table.def.field(field).and_then(|f| f.slot) else { return Value::Null };
                let today = self.clock().now().date_naive();
                let day = match row.get(slot) {
                    ValueRef::DateTime(ms) => crate::value::millis_to_datetime(ms).date_naive(),
                    ValueRef::Date(d) => crate::value::days_to_date(d),
                    _ => return Value::Null,
                };
                Value::Double((today - day).num_days() as f64)
            }
        }
    }

    /// The REST JSON of a compound field: an address or location object, or null when every
    /// component is null.
    pub fn compound_json(&self, table: &ObjectTable, row: &Row, field: &FieldDef) -> J {
        let mut out = Map::new();
        let mut any = false;
        match field.field_type {
            FieldType::Address => {
                let prefix = compound_prefix(&field.name);
                for (key, suffix) in ADDRESS_KEYS {
                    let component = if field.custom { format!("{prefix}__{suffix}__s") } else { format!("{prefix}{suffix}") };
                    // Standard addresses carry countryCode/stateCode only in orgs with State and
                    // Country picklists, i.e. when the code components exist (the real Account
                    // describe has none); custom addresses always carry all ten keys.
                    if !field.custom && !table.def.has_field(&component) {
                        continue;
                    }
                    let v = self.component_json(table, row, &component);
                    any |= !v.is_null();
                    out.insert(key.to_owned(), v);
                }
            }
            FieldType::Location => {
                for (key, component) in [("latitude", &field.components[0]), ("longitude", &field.components[1])] {
                    let v = self.component_json(table, row, component);
                    any |= !v.is_null();
                    out.insert(key.to_owned(), v);
                }
            }
            _ => return J::Null,
        }
        if any { J::Object(out) } else { J::Null }
    }

    fn component_json(&self, table: &ObjectTable, row: &Row, name: &str) -> J {
        match table.def.field(name) {
            Some(f) => self.field_value(table, row, f).as_ref().to_json(f.field_type, f.scale),
            None => J::Null,
        }
    }

    /// A field's REST JSON value: compound fields as objects, encrypted strings masked.
    pub fn field_json(&self, table: &ObjectTable, row: &Row, field: &FieldDef) -> J {
        if field.field_type.is_compound() {
            return self.compound_json(table, row, field);
        }
        let v = self.field_value(table, row, field);
        if field.encrypted && !v.as_ref().is_null() {
            return J::String("*".repeat(12));
        }
        v.as_ref().to_json(field.field_type, field.scale)
    }

    /// The `attributes` object of a record in REST output.
    pub fn attributes_json(version: &str, object: &str, id: Option<&str>) -> J {
        match id {
            Some(id) => json!({ "type": object, "url": format!("/services/data/v{version}/sobjects/{object}/{id}") }),
            None => json!({ "type": object }),
        }
    }

    /// A whole record as the sObject Rows GET returns it: `attributes`, then every field in
    /// describe order.
    pub fn record_json(&self, version: &str, table: &ObjectTable, row: &Row) -> J {
        let id = table.id_of(row);
        let mut out = Map::new();
        out.insert("attributes".into(), Self::attributes_json(version, &table.def.name, Some(id.as_str())));
        for field in &table.def.fields {
            out.insert(field.name.clone(), self.field_json(table, row, field));
        }
        J::Object(out)
    }

    /// A record's stored fields with canonical (REST) value formatting and unmasked values: the
    /// form the truth dump uses so that test oracles compare against the real data.
    pub fn truth_record_json(&self, table: &ObjectTable, row: &Row) -> J {
        let mut out = Map::new();
        for field in table.def.fields.iter().filter(|f| f.is_stored()) {
            let v = self.field_value(table, row, field);
            out.insert(field.name.clone(), v.as_ref().to_json(field.field_type, field.scale));
        }
        J::Object(out)
    }
}

/// `BillingAddress` → `Billing`, `Address__c` → `Address`.
fn compound_prefix(name: &str) -> &str {
    name.strip_suffix("__c").or_else(|| name.strip_suffix("Address")).unwrap_or(name)
}
