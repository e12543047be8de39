//! A flow's columns checked against the target object's describe before anything is written.
//!
//! Each sent column (the result's columns but `exclude`) goes to a field: the one `mapping`
//! names, else the field of its name (case-insensitive; the describe's spelling is used). The
//! field must exist, be writable as the mode needs (`createable` for insert, `updateable` for
//! update, both for upsert), and accept the column's values; the object must allow the mode.
//! Delete sends `Id` only. A violation stops the flow with an error naming the column and the
//! field, so nothing is sent that Salesforce would reject for every row.

use tidemark_core::FieldType;
use tidemark_core::push::{PushConfig, PushMode};
use tidemark_lake::arrow::datatypes::{DataType, Schema};
use tidemark_salesforce::describe::{FieldDescribe, SObjectDescribe};

use crate::error::{PushError, Result};

/// Where each sent column goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// (result column, field as the describe spells it), in the result's column order.
    pub columns: Vec<(String, String)>,
    /// The column holding each row's record Id (update, delete), if any.
    pub id_column: Option<String>,
    /// Upsert: the column matched against the external id field.
    pub external_id_column: Option<String>,
}

/// Checks `result` (the query's columns) against `describe` for `flow`'s mode.
pub fn check(flow: &str, config: &PushConfig, result: &Schema, describe: &SObjectDescribe) -> Result<Mapping> {
    let invalid = |message: String| PushError::Invalid { flow: flow.to_owned(), message };
    let object = &describe.name;
    let access = describe.access;
    let allowed = match config.mode {
        PushMode::Insert => access.createable,
        PushMode::Update => access.updateable,
        PushMode::Upsert => access.createable && access.updateable,
        PushMode::Delete => access.deletable,
    };
    if !allowed || (config.delete_vanished && !access.deletable) {
        let what = if allowed { "delete" } else { config.mode.label() };
        return Err(invalid(format!("{object} does not allow {what} for this user (describe)")));
    }
    for column in config.mapping.keys().chain(&config.exclude) {
        if result.field_with_name(column).is_err() {
            return Err(invalid(format!("column {column} (in mapping or exclude) is not a column of the query's result")));
        }
    }
    let mut columns = Vec::new();
    for field in result.fields() {
        let column = field.name();
        if config.exclude.contains(column) {
            continue;
        }
        let target = config.field_of(column);
        let Some(describe_field) = describe.fields.iter().find(|f| f.name.eq_ignore_ascii_case(target)) else {
            return Err(invalid(format!("column {column} goes to field {target}, which {object} does not have")));
        };
        let is_id = describe_field.name == "Id";
        match config.mode {
            PushMode::Delete if !is_id => {
                return Err(invalid(format!(
                    "column {column}: delete sends only Id; exclude the column or map the Id column alone"
                )));
            }
            PushMode::Insert if is_id => {
                return Err(invalid(format!("column {column} goes to Id: insert creates records, exclude it")));
            }
            _ => {}
        }
        if !is_id {
            writable(config.mode, describe_field).map_err(|need| {
                invalid(format!("column {column} goes to field {}.{}, which is not {need}", object, describe_field.name))
            })?;
        }
        if !converts(field.data_type(), describe_field.field_type) {
            return Err(invalid(format!(
                "column {column} ({}) does not convert to field {}.{} ({})",
                field.data_type(),
                object,
                describe_field.name,
                describe_field.field_type.map_or("an unknown type".to_owned(), |t| format!("{t:?}").to_lowercase())
            )));
        }
        columns.push((column.clone(), describe_field.name.clone()));
    }
    let column_of = |field: &str| columns.iter().find(|(_, f)| f.eq_ignore_ascii_case(field)).map(|(c, _)| c.clone());
    let id_column = column_of("Id");
    if matches!(config.mode, PushMode::Update | PushMode::Delete) && id_column.is_none() {
        return Err(invalid(format!("{} needs a column sent to Id", config.mode.label())));
    }
    let external_id_column = match (config.mode, &config.external_id) {
        (PushMode::Upsert, Some(name)) => {
            let field = describe
                .fields
                .iter()
                .find(|f| f.name.eq_ignore_ascii_case(name))
                .ok_or_else(|| invalid(format!("external_id {name} is not a field of {object}")))?;
            if !field.is_upsert_key() {
                return Err(invalid(format!("{object}.{} is not an external id field: upsert cannot match on it", field.name)));
            }
            Some(column_of(&field.name).ok_or_else(|| invalid(format!("upsert needs a column sent to {}", field.name)))?)
        }
        _ => None,
    };
    Ok(Mapping { columns, id_column, external_id_column })
}

/// `Err(what the field is not)` when `mode` cannot write it.
fn writable(mode: PushMode, field: &FieldDescribe) -> std::result::Result<(), &'static str> {
    match mode {
        PushMode::Insert if !field.createable => Err("createable"),
        PushMode::Update if !field.updateable => Err("updateable"),
        PushMode::Upsert if !(field.createable && field.updateable) => Err("both createable and updateable (upsert does both)"),
        _ => Ok(()),
    }
}

/// Whether values of `from` can be sent to a field of type `to`. Text goes anywhere (Salesforce
/// parses it and rejects a bad row as a row error); other types only where their values mean
/// something.
fn converts(from: &DataType, to: Option<FieldType>) -> bool {
    use DataType as D;
    use FieldType as F;
    let Some(to) = to else { return true };
    let numeric = matches!(to, F::Int | F::Long | F::Double | F::Currency | F::Percent);
    let textual = matches!(
        to,
        F::String
            | F::Textarea
            | F::Picklist
            | F::Multipicklist
            | F::Combobox
            | F::Email
            | F::Phone
            | F::Url
            | F::Encryptedstring
            | F::AnyType
    );
    match from {
        D::Utf8 | D::Utf8View | D::LargeUtf8 | D::Null => true,
        D::Boolean => matches!(to, F::Boolean) || textual,
        D::Int8 | D::Int16 | D::Int32 | D::Int64 | D::UInt8 | D::UInt16 | D::UInt32 | D::UInt64 => numeric || textual,
        D::Float16 | D::Float32 | D::Float64 | D::Decimal128(_, _) | D::Decimal256(_, _) => {
            matches!(to, F::Double | F::Currency | F::Percent) || textual
        }
        D::Date32 | D::Date64 => matches!(to, F::Date | F::Datetime) || textual,
        D::Timestamp(_, _) => matches!(to, F::Datetime | F::Date) || textual,
        D::Time32(_) | D::Time64(_) => matches!(to, F::Time) || textual,
        D::Binary | D::BinaryView | D::LargeBinary => matches!(to, F::Base64),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidemark_lake::arrow::datatypes::Field;

    fn describe() -> SObjectDescribe {
        let text = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/salesforce-api/describe-account.json"));
        serde_json::from_str(text).unwrap()
    }

    fn config(yaml: &str) -> PushConfig {
        let c: PushConfig = serde_yaml_ng::from_str(yaml).unwrap();
        c.validate("f").unwrap();
        c
    }

    fn schema(columns: &[(&str, DataType)]) -> Schema {
        Schema::new(columns.iter().map(|(n, t)| Field::new(*n, t.clone(), true)).collect::<Vec<_>>())
    }

    #[test]
    fn an_update_maps_columns_to_fields_in_the_describes_spelling() {
        let c = config("query: q\nobject: Account\nmode: update\nmapping: { account_id: Id, employees: NumberOfEmployees }\n");
        let s = schema(&[("account_id", DataType::Utf8), ("name", DataType::Utf8), ("employees", DataType::Int64)]);
        let m = check("f", &c, &s, &describe()).unwrap();
        assert_eq!(m.id_column.as_deref(), Some("account_id"));
        assert_eq!(m.columns[1], ("name".to_owned(), "Name".to_owned()));
        assert_eq!(m.columns[2], ("employees".to_owned(), "NumberOfEmployees".to_owned()));
    }

    #[test]
    fn violations_name_the_column_and_the_field() {
        let d = describe();
        let update = config("query: q\nobject: Account\nmode: update\n");
        let err = |c: &PushConfig, s: Schema| check("f", c, &s, &d).unwrap_err().to_string();
        let missing = err(&update, schema(&[("Id", DataType::Utf8), ("Tier__c", DataType::Utf8)]));
        assert!(missing.contains("column Tier__c goes to field Tier__c, which Account does not have"), "{missing}");
        let read_only = err(&update, schema(&[("Id", DataType::Utf8), ("CreatedDate", DataType::Utf8)]));
        assert!(read_only.contains("Account.CreatedDate, which is not updateable"), "{read_only}");
        let types = err(&update, schema(&[("Id", DataType::Utf8), ("NumberOfEmployees", DataType::Boolean)]));
        assert!(types.contains("column NumberOfEmployees (Boolean) does not convert"), "{types}");
        let no_id = err(&update, schema(&[("Name", DataType::Utf8)]));
        assert!(no_id.contains("update needs a column sent to Id"), "{no_id}");
        let insert = config("query: q\nobject: Account\nmode: insert\nkey: [Id]\n");
        assert!(err(&insert, schema(&[("Id", DataType::Utf8)])).contains("insert creates records"));
        let upsert = config("query: q\nobject: Account\nmode: upsert\nexternal_id: Name\n");
        let not_external = err(&upsert, schema(&[("Name", DataType::Utf8)]));
        assert!(not_external.contains("Account.Name is not an external id field"), "{not_external}");
        let delete = config("query: q\nobject: Account\nmode: delete\nallow_delete: true\n");
        assert!(err(&delete, schema(&[("Id", DataType::Utf8), ("Name", DataType::Utf8)])).contains("delete sends only Id"));
    }
}
