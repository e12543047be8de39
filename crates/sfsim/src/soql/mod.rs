//! SOQL: parsing, validation against the org's metadata, evaluation, and rendering of results
//! as REST JSON records or Bulk CSV rows.
//!
//! The contract the query APIs rely on:
//! - [`compile`] parses and resolves a query against the org, failing with the error
//!   (`MALFORMED_QUERY`, `INVALID_FIELD`, `INVALID_TYPE`, …) Salesforce would give;
//! - [`SoqlQuery::execute`] returns the matching record versions (cheap `Row` clones, so cursors
//!   and Bulk jobs snapshot them) in result order, after ORDER BY / OFFSET / LIMIT;
//! - [`SoqlQuery::record_json`] and [`SoqlQuery::write_csv_row`] project one row.
//!
//! INTERIM: this first version understands only `SELECT <fields> FROM <object>`; anything else
//! is refused with `MALFORMED_QUERY`. The full evaluator replaces the internals, not the API.

use serde_json::{Map, Value as J};

use crate::api::ApiError;
use crate::org::Org;
use crate::row::Row;

/// A SOQL failure, convertible to the REST error Salesforce returns.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{error_code}: {message}")]
pub struct SoqlError {
    pub error_code: String,
    pub message: String,
}

impl SoqlError {
    pub fn malformed(message: impl Into<String>) -> SoqlError {
        SoqlError { error_code: "MALFORMED_QUERY".to_owned(), message: message.into() }
    }

    pub fn to_api_error(&self) -> ApiError {
        ApiError::bad_request(&self.error_code, self.message.clone())
    }
}

/// A compiled query.
#[derive(Debug, Clone)]
pub struct SoqlQuery {
    object: String,
    fields: Vec<String>,
}

/// What a query returned.
#[derive(Debug, Clone)]
pub struct QueryOutput {
    /// Matching rows in result order (empty for `COUNT()`).
    pub rows: Vec<Row>,
    /// `totalSize`: the number of rows, or the count for `COUNT()`.
    pub total_size: usize,
}

/// Parses and resolves `soql` against `org`.
pub fn compile(org: &Org, soql: &str) -> Result<SoqlQuery, SoqlError> {
    let lower = soql.to_ascii_lowercase();
    let select = lower.find("select ").ok_or_else(|| SoqlError::malformed("unexpected token"))?;
    let from = lower.find(" from ").ok_or_else(|| SoqlError::malformed("unexpected token"))?;
    let fields: Vec<String> = soql[select + 7..from].split(',').map(|f| f.trim().to_owned()).collect();
    let rest = soql[from + 6..].trim();
    if rest.contains(' ') {
        return Err(SoqlError::malformed("only SELECT <fields> FROM <object> is supported"));
    }
    let table = org.table(rest).ok_or_else(|| SoqlError {
        error_code: "INVALID_TYPE".to_owned(),
        message: format!("sObject type '{rest}' is not supported."),
    })?;
    for f in &fields {
        if table.def.field(f).is_none() {
            return Err(SoqlError { error_code: "INVALID_FIELD".to_owned(), message: format!("No such column '{f}' on entity '{}'.", table.def.name) });
        }
    }
    Ok(SoqlQuery { object: table.def.name.clone(), fields })
}

impl SoqlQuery {
    /// The queried object's API name.
    pub fn object(&self) -> &str {
        &self.object
    }

    /// Output column names in SELECT order, as Bulk CSV headers (`Account.Name` for paths).
    pub fn columns(&self) -> Vec<String> {
        self.fields.clone()
    }

    /// Whether it is `SELECT COUNT() …`.
    pub fn is_count(&self) -> bool {
        false
    }

    pub fn has_where(&self) -> bool {
        false
    }

    /// Why Bulk API cannot run this query (compound fields, COUNT(), OFFSET, …), if it cannot.
    pub fn bulk_unsupported_reason(&self, _org: &Org) -> Option<String> {
        None
    }

    /// Evaluates the query. `include_deleted` is queryAll.
    pub fn execute(&self, org: &Org, include_deleted: bool) -> Result<QueryOutput, SoqlError> {
        let table = org.table(&self.object).expect("compiled against this org");
        let rows: Vec<Row> =
            table.rows().iter().filter(|r| include_deleted || !table.is_deleted(r)).cloned().collect();
        Ok(QueryOutput { total_size: rows.len(), rows })
    }

    /// One row as a REST query record (`attributes` first, then the selected fields).
    pub fn record_json(&self, org: &Org, version: &str, row: &Row) -> J {
        let table = org.table(&self.object).expect("compiled against this org");
        let mut out = Map::new();
        let id = table.id_of(row);
        out.insert("attributes".into(), Org::attributes_json(version, &table.def.name, Some(id.as_str())));
        for f in &self.fields {
            let field = table.def.field(f).expect("resolved at compile time");
            out.insert(field.name.clone(), org.field_json(table, row, field));
        }
        J::Object(out)
    }

    /// Appends one row as a Bulk CSV line (every value quoted, `"` doubled, LF-terminated).
    pub fn write_csv_row(&self, org: &Org, row: &Row, out: &mut String) {
        let table = org.table(&self.object).expect("compiled against this org");
        for (i, f) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let field = table.def.field(f).expect("resolved at compile time");
            let mut text = String::new();
            org.field_value(table, row, field).as_ref().write_csv_text(field.field_type, field.scale, &mut text);
            out.push('"');
            out.push_str(&text.replace('"', "\"\""));
            out.push('"');
        }
        out.push('\n');
    }
}
