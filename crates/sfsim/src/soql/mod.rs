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
//! Pipeline: [`lexer`] → [`parser`] (AST in [`ast`]) → [`resolve`] (names to field positions,
//! literals to typed operands; the result is described in [`plan`]) → [`eval`] (filter, sort,
//! aggregate) → [`project`] (JSON / CSV).

pub mod ast;
pub mod eval;
pub mod lexer;
pub mod parser;
pub mod plan;
pub mod project;
pub mod resolve;

use serde_json::{Map, Value as J};

use crate::api::ApiError;
use crate::org::{ObjectTable, Org};
use crate::row::Row;
use plan::Selection;
pub use project::RecordFormat;
use resolve::{Resolved, Resolver};

/// Characters of the query line shown before the error position in located errors.
const ERROR_WINDOW_CHARS: usize = 36;

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

    /// An error at byte `offset` of `src`, in Salesforce's layout: the query line (from a few
    /// tokens before the position), a caret under the position, `ERROR at Row:r:Column:c`, then
    /// `detail`.
    pub fn located(src: &str, offset: usize, code: &str, detail: &str) -> SoqlError {
        let offset = offset.min(src.len());
        let (row, col) = lexer::position(src, offset);
        let line_start = src[..offset].rfind('\n').map(|p| p + 1).unwrap_or(0);
        let line_end = src[offset..].find('\n').map(|p| offset + p).unwrap_or(src.len());
        let line: Vec<char> = src[line_start..line_end].chars().collect();
        let col0 = col - 1;
        // Start the excerpt at a word boundary at most ERROR_WINDOW_CHARS before the error.
        let mut start = col0.saturating_sub(ERROR_WINDOW_CHARS);
        if start > 0 {
            while start < col0 && !line[start - 1].is_whitespace() {
                start += 1;
            }
        }
        let excerpt: String = line[start..].iter().collect();
        let caret = " ".repeat(col0 - start);
        SoqlError {
            error_code: code.to_owned(),
            message: format!("\n{excerpt}\n{caret}^\nERROR at Row:{row}:Column:{col}\n{detail}"),
        }
    }

    pub fn to_api_error(&self) -> ApiError {
        ApiError::bad_request(&self.error_code, self.message.clone())
    }
}

/// A compiled query.
#[derive(Debug, Clone)]
pub struct SoqlQuery {
    soql: String,
    plan: Resolved,
}

/// What a query returned.
#[derive(Debug, Clone)]
pub struct QueryOutput {
    /// Matching rows in result order (empty for `COUNT()`).
    pub rows: Vec<Row>,
    /// `totalSize`: the number of rows, or the count for `COUNT()`.
    pub total_size: usize,
}

/// Parses and resolves `soql` against `org`. Relative date literals (`TODAY`, `LAST_N_DAYS:n`)
/// are fixed against the org clock now.
pub fn compile(org: &Org, soql: &str) -> Result<SoqlQuery, SoqlError> {
    let stmt = parser::parse(soql)?;
    let now = org.clock().now();
    let resolver = Resolver { org, src: soql, today: now.date_naive() };
    let plan = resolver.resolve(&stmt)?;
    Ok(SoqlQuery { soql: soql.to_owned(), plan })
}

impl SoqlQuery {
    /// The queried object's API name.
    pub fn object(&self) -> &str {
        &self.plan.object
    }

    /// The statement as given.
    pub fn text(&self) -> &str {
        &self.soql
    }

    /// Output column names in SELECT order, as Bulk CSV headers (`Account.Name` for paths).
    pub fn columns(&self) -> Vec<String> {
        match &self.plan.selection {
            Selection::Records { columns, .. } => columns.iter().map(|c| c.display.clone()).collect(),
            Selection::CountOnly => Vec::new(),
            Selection::Aggregate { columns, .. } => columns.iter().map(|c| c.key.clone()).collect(),
        }
    }

    /// Whether it is `SELECT COUNT() …`.
    pub fn is_count(&self) -> bool {
        matches!(self.plan.selection, Selection::CountOnly)
    }

    /// Whether it selects aggregate functions (`COUNT(Id)`, `SUM(…)`, GROUP BY).
    pub fn is_aggregate(&self) -> bool {
        matches!(self.plan.selection, Selection::Aggregate { .. })
    }

    pub fn has_where(&self) -> bool {
        self.plan.filter.is_some()
    }

    /// ORDER BY present (disables PK chunking).
    pub fn has_order_by(&self) -> bool {
        !self.plan.order_by.is_empty()
    }

    /// LIMIT present (disables PK chunking).
    pub fn has_limit(&self) -> bool {
        self.plan.limit.is_some()
    }

    pub fn limit(&self) -> Option<u64> {
        self.plan.limit
    }

    /// Why Bulk API cannot run this query (compound fields, COUNT(), OFFSET, …), if it cannot.
    /// The text follows Bulk API 1.0's batch state messages after `Failed to process query: `.
    pub fn bulk_unsupported_reason(&self, org: &Org) -> Option<String> {
        if let Some(t) = org.table(&self.plan.object)
            && !t.def.flags.bulk_queryable
        {
            return Some(format!("Entity '{}' is not supported by the Bulk API.", t.def.name));
        }
        let reason = if self.plan.has_compound {
            "FUNCTIONALITY_NOT_ENABLED: Selecting compound data not supported in Bulk Query"
        } else if self.plan.has_subquery {
            "FUNCTIONALITY_NOT_ENABLED: Aggregate Relationships not supported in Bulk Query"
        } else if self.plan.has_group_by {
            "FUNCTIONALITY_NOT_ENABLED: GROUP BY not supported in Bulk Query"
        } else if self.is_count() || self.is_aggregate() {
            "FUNCTIONALITY_NOT_ENABLED: Aggregate functions such as COUNT() are not supported in Bulk Query"
        } else if self.plan.offset.is_some() {
            "FUNCTIONALITY_NOT_ENABLED: OFFSET not supported in Bulk Query"
        } else {
            return None;
        };
        Some(reason.to_owned())
    }

    fn table<'o>(&self, org: &'o Org) -> Option<&'o ObjectTable> {
        org.table(&self.plan.object)
    }

    /// Evaluates the query. `include_deleted` is queryAll.
    pub fn execute(&self, org: &Org, include_deleted: bool) -> Result<QueryOutput, SoqlError> {
        let table = self.table(org).ok_or_else(|| SoqlError {
            error_code: "INVALID_TYPE".to_owned(),
            message: format!("sObject type '{}' is not supported.", self.plan.object),
        })?;
        let skip = self.plan.offset.unwrap_or(0) as usize;
        let mut rows = scan(org, table, &self.plan, include_deleted, |_| true);
        match &self.plan.selection {
            Selection::CountOnly => {
                let mut n = rows.len().saturating_sub(skip);
                if let Some(limit) = self.plan.limit {
                    n = n.min(limit as usize);
                }
                Ok(QueryOutput { rows: Vec::new(), total_size: n })
            }
            Selection::Aggregate { columns, group_by } => {
                // Groups come out in first-seen order, so sorting the input by the (grouped)
                // ORDER BY fields orders the groups.
                eval::sort_rows(org, table, &mut rows, &self.plan.order_by);
                let mut out = eval::aggregate(org, table, &rows, columns, group_by);
                apply_window(&mut out, skip, self.plan.limit);
                Ok(QueryOutput { total_size: out.len(), rows: out })
            }
            Selection::Records { .. } => {
                eval::sort_rows(org, table, &mut rows, &self.plan.order_by);
                apply_window(&mut rows, skip, self.plan.limit);
                Ok(QueryOutput { total_size: rows.len(), rows })
            }
        }
    }

    /// One row as a REST query record (`attributes` first, then the selected fields).
    pub fn record_json(&self, org: &Org, version: &str, row: &Row) -> J {
        self.record_json_as(org, version, row, RecordFormat::Rest)
    }

    /// [`record_json`](Self::record_json) with values written in `format`.
    pub fn record_json_as(&self, org: &Org, version: &str, row: &Row, format: RecordFormat) -> J {
        match &self.plan.selection {
            Selection::Aggregate { columns, .. } => project::render_aggregate(row, columns),
            Selection::Records { tree, .. } => {
                let mut out = Map::new();
                if let Some(table) = self.table(org) {
                    let id = table.id_of(row);
                    out.insert("attributes".into(), Org::attributes_json(version, &table.def.name, Some(id.as_str())));
                    project::render_record_as(org, version, table, row, tree, format, &mut out);
                }
                J::Object(out)
            }
            Selection::CountOnly => J::Object(Map::new()),
        }
    }

    /// Appends `rows` as comma-separated REST query records: the same output as
    /// [`record_json`](Self::record_json) for each row, written without building JSON values.
    pub fn write_records_json(&self, org: &Org, version: &str, rows: &[Row], out: &mut Vec<u8>) {
        match (&self.plan.selection, self.table(org)) {
            (Selection::Records { tree, .. }, Some(table)) => project::write_json_rows(org, version, table, rows, tree, out),
            _ => {
                for (i, row) in rows.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    // Serialising a JSON value into memory cannot fail.
                    let _ = serde_json::to_writer(&mut *out, &self.record_json(org, version, row));
                }
            }
        }
    }

    /// Appends `rows` as Bulk CSV lines: the same output as [`write_csv_row`](Self::write_csv_row)
    /// for each row, with the table and column slots resolved once per call (the Bulk results
    /// hot path).
    pub fn write_csv_rows(&self, org: &Org, rows: &[Row], out: &mut String) {
        match (&self.plan.selection, self.table(org)) {
            (Selection::Records { columns, .. }, Some(table)) => project::write_csv_rows(org, table, rows, columns, out),
            _ => {
                for row in rows {
                    self.write_csv_row(org, row, out);
                }
            }
        }
    }

    /// Appends one row as a Bulk CSV line (every value quoted, `"` doubled, LF-terminated).
    pub fn write_csv_row(&self, org: &Org, row: &Row, out: &mut String) {
        match &self.plan.selection {
            Selection::Records { columns, .. } => {
                if let Some(table) = self.table(org) {
                    project::write_csv(org, table, row, columns, out);
                }
            }
            Selection::Aggregate { columns, .. } => {
                let cells: Vec<String> = (0..columns.len())
                    .map(|i| {
                        let mut s = String::new();
                        row.get(i as u16).write_csv_text(tidemark_core::FieldType::String, 0, &mut s);
                        format!("\"{}\"", s.replace('"', "\"\""))
                    })
                    .collect();
                out.push_str(&cells.join(","));
                out.push('\n');
            }
            Selection::CountOnly => {}
        }
    }
}

/// The rows of `table` that pass the deleted check, `extra` and the plan's WHERE, in table order.
/// Without ORDER BY the scan stops once OFFSET + LIMIT rows matched.
fn scan(org: &Org, table: &ObjectTable, plan: &Resolved, include_deleted: bool, extra: impl Fn(&Row) -> bool) -> Vec<Row> {
    let deleted = table.def.field("IsDeleted").and_then(|f| f.slot);
    let skip = plan.offset.unwrap_or(0) as usize;
    let stop_after = match (&plan.selection, plan.order_by.is_empty(), plan.limit) {
        (Selection::Records { .. }, true, Some(limit)) => Some(skip.saturating_add(limit as usize)),
        _ => None,
    };
    let mut rows = Vec::new();
    for row in table.rows() {
        if !include_deleted && deleted.is_some_and(|s| row.get(s).as_bool() == Some(true)) {
            continue;
        }
        if !extra(row) {
            continue;
        }
        if let Some(filter) = &plan.filter
            && !eval::matches(org, table, row, filter)
        {
            continue;
        }
        rows.push(row.clone());
        if stop_after.is_some_and(|n| rows.len() >= n) {
            break;
        }
    }
    rows
}

/// A parent-to-child subquery's value for one parent record: a nested query result, or null
/// when the parent has no matching children.
///
/// The child table is scanned per parent record: subqueries are rare in sync traffic, and this
/// keeps cursors free of per-query indexes.
pub(crate) fn child_records(
    org: &Org,
    version: &str,
    parent: &ObjectTable,
    parent_row: &Row,
    reference: &plan::FieldLookup,
    plan: &Resolved,
) -> J {
    let Some(child) = org.table(&plan.object) else { return J::Null };
    let Some(ref_slot) = reference.resolve(&child.def).and_then(|f| f.slot) else { return J::Null };
    let parent_id = parent.id_of(parent_row);
    let mut rows =
        scan(org, child, plan, false, |r| r.get(ref_slot).as_str().is_some_and(|s| s.get(..15) == Some(parent_id.short())));
    eval::sort_rows(org, child, &mut rows, &plan.order_by);
    apply_window(&mut rows, plan.offset.unwrap_or(0) as usize, plan.limit);
    if rows.is_empty() {
        return J::Null;
    }
    let Selection::Records { tree, .. } = &plan.selection else { return J::Null };
    let records: Vec<J> = rows
        .iter()
        .map(|r| {
            let mut out = Map::new();
            let id = child.id_of(r);
            out.insert("attributes".into(), Org::attributes_json(version, &child.def.name, Some(id.as_str())));
            project::render_record(org, version, child, r, tree, &mut out);
            J::Object(out)
        })
        .collect();
    serde_json::json!({ "totalSize": records.len(), "done": true, "records": records })
}

fn apply_window(rows: &mut Vec<Row>, skip: usize, limit: Option<u64>) {
    if skip > 0 {
        rows.drain(..skip.min(rows.len()));
    }
    if let Some(limit) = limit {
        rows.truncate(limit as usize);
    }
}

#[cfg(test)]
mod tests;
