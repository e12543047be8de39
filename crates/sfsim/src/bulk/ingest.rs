//! The record side of Bulk ingest: resolving a CSV header against an object (fields,
//! `Relationship.ExternalId__c` and polymorphic `Type:Relationship.Field` columns), writing one
//! row through the validated API write path, and rendering the three result CSVs.

use std::collections::HashMap;

use tidemark_core::SfId;

use super::csv::push_quoted;
use super::{CsvFormat, csv::CsvTable};
use crate::org::Org;
use crate::org::write::{Input, RecordError, UpsertOutcome};

/// Bulk ingest operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Insert,
    Update,
    Upsert,
    Delete,
    HardDelete,
}

impl Operation {
    pub fn parse(s: &str) -> Option<Operation> {
        Some(match s {
            "insert" => Operation::Insert,
            "update" => Operation::Update,
            "upsert" => Operation::Upsert,
            "delete" => Operation::Delete,
            "hardDelete" => Operation::HardDelete,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Operation::Insert => "insert",
            Operation::Update => "update",
            Operation::Upsert => "upsert",
            Operation::Delete => "delete",
            Operation::HardDelete => "hardDelete",
        }
    }
}

/// What a job writes: its object, operation and upsert key.
#[derive(Debug, Clone)]
pub struct IngestSpec {
    pub object: String,
    pub operation: Operation,
    pub external_id_field: Option<String>,
}

/// How one header column is written.
#[derive(Debug, Clone, PartialEq)]
enum Column {
    /// A field of the job's object (the header spelling is kept for the write path).
    Field(String),
    /// A parent looked up by one of its id-lookup fields; the found id goes into `reference_field`.
    Parent { reference_field: String, object: String, lookup_field: String },
}

/// A header resolved against the object.
#[derive(Debug, Clone)]
pub struct Plan {
    columns: Vec<Column>,
    id_column: Option<usize>,
    key_column: Option<usize>,
}

/// Resolves `header` for `spec`. The error is the job's `errorMessage`.
pub fn plan(org: &Org, spec: &IngestSpec, header: &[String]) -> Result<Plan, String> {
    let table = org.table(&spec.object).ok_or_else(|| format!("InvalidJob : Unknown object {}", spec.object))?;
    let def = &table.def;
    let not_found = |name: &str| format!("InvalidBatch : Field name not found : {name}");
    let mut columns = Vec::with_capacity(header.len());
    for name in header {
        let name = name.trim();
        if let Some((rel_part, lookup_field)) = name.split_once('.') {
            let candidates: Vec<(Option<&str>, &str)> = match rel_part.split_once(':') {
                Some((a, b)) => vec![(Some(a), b), (Some(b), a)],
                None => vec![(None, rel_part)],
            };
            let resolved = candidates.into_iter().find_map(|(ty, rel)| {
                let reference = def.relationship(rel)?;
                let target = match ty {
                    Some(ty) => reference.reference_to.iter().find(|t| t.eq_ignore_ascii_case(ty))?,
                    None => reference.reference_to.first()?,
                };
                let parent = org.table(target)?;
                let field = parent.def.field(lookup_field)?;
                let usable = field.name == "Id" || field.external_id || field.id_lookup;
                usable.then(|| Column::Parent {
                    reference_field: reference.name.clone(),
                    object: parent.def.name.clone(),
                    lookup_field: field.name.clone(),
                })
            });
            columns.push(resolved.ok_or_else(|| not_found(name))?);
        } else {
            let field = def.field(name).ok_or_else(|| not_found(name))?;
            columns.push(Column::Field(field.name.clone()));
        }
    }
    let position = |wanted: &str| columns.iter().position(|c| matches!(c, Column::Field(f) if f.eq_ignore_ascii_case(wanted)));
    let id_column = position("Id");
    let key_column = match (spec.operation, &spec.external_id_field) {
        (Operation::Upsert, Some(key)) => Some(position(key).ok_or_else(|| not_found(key))?),
        _ => None,
    };
    if matches!(spec.operation, Operation::Delete | Operation::HardDelete) && id_column.is_none() {
        return Err(not_found("Id"));
    }
    Ok(Plan { columns, id_column, key_column })
}

/// The outcome of one row.
#[derive(Debug, Clone, PartialEq)]
pub enum RowOutcome {
    Success {
        id: SfId,
        created: bool,
    },
    /// `id` is the record's id when the row named one; `error` is the `sf__Error` text.
    Failure {
        id: Option<String>,
        error: String,
    },
}

impl RowOutcome {
    pub fn is_failure(&self) -> bool {
        matches!(self, RowOutcome::Failure { .. })
    }
}

/// Parent ids by `(object, lookup field)` and key value, built on first use within a job.
#[derive(Debug, Default)]
pub struct ParentIndex {
    by_key: HashMap<(String, String), HashMap<String, Vec<SfId>>>,
}

impl ParentIndex {
    fn lookup(&mut self, org: &Org, object: &str, field: &str, value: &str) -> Vec<SfId> {
        let Some(table) = org.table(object) else { return Vec::new() };
        let Some(def) = table.def.field(field) else { return Vec::new() };
        let Some(slot) = def.slot else { return Vec::new() };
        let fold = !def.case_sensitive;
        let norm = |s: &str| if fold { s.to_lowercase() } else { s.to_owned() };
        let key = (object.to_owned(), field.to_owned());
        if !self.by_key.contains_key(&key) {
            let mut index: HashMap<String, Vec<SfId>> = HashMap::new();
            for row in table.rows().iter().filter(|r| !table.is_deleted(r)) {
                if let Some(v) = row.get(slot).as_str() {
                    index.entry(norm(v)).or_default().push(table.id_of(row));
                }
            }
            self.by_key.insert(key.clone(), index);
        }
        let wanted = norm(value);
        let cached = self.by_key.get(&key).and_then(|m| m.get(&wanted)).cloned().unwrap_or_default();
        if !cached.is_empty() {
            return cached;
        }
        // Parents created after the index was built (by this job or anyone else).
        let fresh: Vec<SfId> = table
            .rows()
            .iter()
            .filter(|r| !table.is_deleted(r) && r.get(slot).as_str().is_some_and(|v| norm(v) == wanted))
            .map(|r| table.id_of(r))
            .collect();
        if !fresh.is_empty()
            && let Some(m) = self.by_key.get_mut(&key)
        {
            m.insert(wanted, fresh.clone());
        }
        fresh
    }
}

fn failure(id: Option<&str>, error: &RecordError) -> RowOutcome {
    RowOutcome::Failure { id: id.filter(|s| !s.is_empty()).map(str::to_owned), error: error.bulk_text() }
}

fn first_failure(id: Option<&str>, errors: &[RecordError]) -> RowOutcome {
    match errors.first() {
        Some(e) => failure(id, e),
        None => failure(id, &RecordError::new("UNKNOWN_EXCEPTION", "unknown error", vec![])),
    }
}

/// The `UNABLE_TO_LOCK_ROW` failure of a row that hit lock contention on record `locked`
/// (`unable to obtain exclusive access to this record or 1 records: <id>`, or without the id
/// when it is not known).
pub fn lock_failure(row: &[String], plan: &Plan, locked: Option<&str>) -> RowOutcome {
    let id = plan.id_column.and_then(|i| row.get(i)).map(String::as_str);
    failure(id, &crate::api::records::lock_error(locked))
}

/// The record ids writing `row` would lock: the record's own id (its `Id` cell, or the one
/// record an upsert key matches) first, then every other cell holding a record id (parents).
pub fn lock_candidates(org: &Org, spec: &IngestSpec, plan: &Plan, row: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if let Some(id) = plan.id_column.and_then(|i| row.get(i)).filter(|s| !s.is_empty()) {
        out.push(id.clone());
    } else if let (Operation::Upsert, Some(key), Some(i)) = (spec.operation, &spec.external_id_field, plan.key_column)
        && let Some(value) = row.get(i).filter(|s| !s.is_empty())
        && let Some(table) = org.table(&spec.object)
        && let Some(field) = table.def.field(key)
        && let [one] = crate::org::validate::find_by_text(table, field, value).as_slice()
    {
        out.push(one.to_string());
    }
    for cell in row {
        let is_record_id = (cell.len() == 15 || cell.len() == 18)
            && SfId::parse(cell).is_ok_and(|id| org.table_for_id(&id).is_some() || id == org.integration_user);
        if is_record_id && !out.contains(cell) {
            out.push(cell.clone());
        }
    }
    out
}

/// For an upsert on an external id, the failure of every row of `rows` (one processing chunk)
/// whose key value another row of the chunk also has: Salesforce refuses such rows together
/// (`DUPLICATE_VALUE:Duplicate external id specified: <value>:<field> --`) rather than write the
/// record twice. `None` for the other rows.
pub fn duplicate_keys(org: &Org, spec: &IngestSpec, plan: &Plan, rows: &[Vec<String>]) -> Vec<Option<RowOutcome>> {
    let mut out = vec![None; rows.len()];
    let (Operation::Upsert, Some(key), Some(col)) = (spec.operation, &spec.external_id_field, plan.key_column) else {
        return out;
    };
    if key == "Id" {
        return out;
    }
    let case_sensitive = org.table(&spec.object).and_then(|t| t.def.field(key)).is_some_and(|f| f.case_sensitive);
    let fold = |s: &str| if case_sensitive { s.to_owned() } else { s.to_lowercase() };
    let mut counts: HashMap<String, usize> = HashMap::new();
    for row in rows {
        if let Some(v) = row.get(col).filter(|v| !v.is_empty()) {
            *counts.entry(fold(v)).or_default() += 1;
        }
    }
    for (i, row) in rows.iter().enumerate() {
        let Some(v) = row.get(col).filter(|v| !v.is_empty()) else { continue };
        if counts.get(&fold(v)).copied().unwrap_or(0) > 1 {
            let e = RecordError::new("DUPLICATE_VALUE", format!("Duplicate external id specified: {v}"), vec![key.clone()]);
            let id = plan.id_column.and_then(|c| row.get(c)).map(String::as_str);
            out[i] = Some(failure(id, &e));
        }
    }
    out
}

/// Writes one CSV row through the validated write path.
pub fn process_row(org: &mut Org, spec: &IngestSpec, plan: &Plan, parents: &mut ParentIndex, row: &[String]) -> RowOutcome {
    let header_len = plan.columns.len();
    if row.len() != header_len {
        let e = RecordError::new(
            "INVALID_FIELD",
            format!("Number of fields in header is different from the row. header = {header_len} row = {}", row.len()),
            vec![],
        );
        return failure(None, &e);
    }
    let row_id = plan.id_column.map(|i| row[i].as_str());
    let object = spec.object.as_str();
    match spec.operation {
        Operation::Delete | Operation::HardDelete => {
            let id = row_id.unwrap_or("");
            let result = if spec.operation == Operation::Delete {
                org.api_delete(Some(object), id)
            } else {
                org.api_hard_delete(Some(object), id)
            };
            return match result {
                Ok(id) => RowOutcome::Success { id, created: false },
                Err(e) => failure(Some(id), &e),
            };
        }
        Operation::Insert | Operation::Update | Operation::Upsert => {}
    }
    // Parent references first: they own the strings the inputs borrow.
    let mut resolved: Vec<Option<String>> = vec![None; header_len];
    for (i, column) in plan.columns.iter().enumerate() {
        let Column::Parent { object: parent, lookup_field, .. } = column else { continue };
        let value = row[i].as_str();
        if value.is_empty() || value == "#N/A" {
            continue;
        }
        let found = if lookup_field == "Id" {
            SfId::parse(value)
                .ok()
                .filter(|id| org.table(parent).and_then(|t| t.get(id)).is_some())
                .map(|id| vec![id])
                .unwrap_or_default()
        } else {
            parents.lookup(org, parent, lookup_field, value)
        };
        match found.as_slice() {
            [one] => resolved[i] = Some(one.as_str().to_owned()),
            [] if lookup_field == "Id" => {
                return failure(row_id, &RecordError::new("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", vec![]));
            }
            [] => {
                let e = RecordError::new(
                    "INVALID_FIELD",
                    format!("Foreign key external ID: {value} not found for field {lookup_field} in entity {parent}"),
                    vec![],
                );
                return failure(row_id, &e);
            }
            _ => {
                let e = RecordError::new(
                    "INVALID_FIELD",
                    format!(
                        "Foreign key external ID: {value} matched more than one record for field {lookup_field} in entity {parent}"
                    ),
                    vec![],
                );
                return failure(row_id, &e);
            }
        }
    }
    let mut inputs: Vec<(&str, Input<'_>)> = Vec::with_capacity(header_len);
    for (i, column) in plan.columns.iter().enumerate() {
        match column {
            Column::Field(name) => {
                if spec.operation == Operation::Update && Some(i) == plan.id_column {
                    continue;
                }
                inputs.push((name.as_str(), Input::Text(row[i].as_str())));
            }
            Column::Parent { reference_field, .. } => {
                // An empty cell changes nothing (and must not clear what another column of the
                // same reference, e.g. a second polymorphic form, sets).
                if row[i].is_empty() {
                    continue;
                }
                let text = resolved[i].as_deref().unwrap_or(row[i].as_str());
                inputs.push((reference_field.as_str(), Input::Text(text)));
            }
        }
    }
    match spec.operation {
        Operation::Insert => match org.api_create(object, &inputs) {
            Ok(id) => RowOutcome::Success { id, created: true },
            Err(errors) => first_failure(None, &errors),
        },
        Operation::Update => {
            let id = row_id.unwrap_or("");
            if id.is_empty() {
                return failure(None, &RecordError::new("MISSING_ARGUMENT", "Id not specified in an update call", vec![]));
            }
            match org.api_update(Some(object), id, &inputs) {
                Ok(id) => RowOutcome::Success { id, created: false },
                Err(errors) => first_failure(Some(id), &errors),
            }
        }
        _ => {
            let key_field = spec.external_id_field.as_deref().unwrap_or("Id");
            let key_value = plan.key_column.map(|i| row[i].as_str()).unwrap_or("");
            match org.api_upsert(object, key_field, key_value, &inputs) {
                Ok(UpsertOutcome::Created(id)) => RowOutcome::Success { id, created: true },
                Ok(UpsertOutcome::Updated(id)) => RowOutcome::Success { id, created: false },
                Ok(UpsertOutcome::MultipleMatches(ids)) => {
                    failure(row_id, &crate::org::write::multiple_external_matches(org, object, key_field, &ids))
                }
                Err(errors) => first_failure(row_id, &errors),
            }
        }
    }
}

/// Which result file to render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultKind {
    Successful,
    Failed,
    Unprocessed,
}

/// Renders one of the three result CSVs of a job: `"sf__Id","sf__Created"` /
/// `"sf__Id","sf__Error"` followed by the original header as uploaded, then quoted values.
/// `outcomes[i]` is the outcome of `table.rows[i]` (`None` = not processed).
pub fn render_results(table: &CsvTable, outcomes: &[Option<RowOutcome>], kind: ResultKind, fmt: CsvFormat) -> String {
    let delim = fmt.delimiter.byte() as char;
    let eol = fmt.line_ending.as_str();
    let mut out = String::with_capacity(64 + table.rows.len() * 64);
    let push_header = |out: &mut String| {
        for (i, h) in table.header.iter().enumerate() {
            if i > 0 {
                out.push(delim);
            }
            out.push_str(h);
        }
    };
    let push_values = |out: &mut String, row: &[String]| {
        if row.len() == table.header.len() {
            for v in row {
                out.push(delim);
                push_quoted(out, v);
            }
        } else {
            // A row that does not fit the header is echoed as empty values, as Salesforce does.
            for _ in &table.header {
                out.push(delim);
                out.push_str("\"\"");
            }
        }
    };
    match kind {
        ResultKind::Successful | ResultKind::Failed => {
            out.push_str("\"sf__Id\"");
            out.push(delim);
            out.push_str(if kind == ResultKind::Successful { "\"sf__Created\"" } else { "\"sf__Error\"" });
            if !table.header.is_empty() {
                out.push(delim);
                push_header(&mut out);
            }
            out.push_str(eol);
        }
        ResultKind::Unprocessed => {
            push_header(&mut out);
            out.push_str(eol);
        }
    }
    for (i, row) in table.rows.iter().enumerate() {
        let outcome = outcomes.get(i).and_then(Option::as_ref);
        match (kind, outcome) {
            (ResultKind::Successful, Some(RowOutcome::Success { id, created })) => {
                push_quoted(&mut out, id.as_str());
                out.push(delim);
                out.push_str(if *created { "\"true\"" } else { "\"false\"" });
            }
            (ResultKind::Failed, Some(RowOutcome::Failure { id, error })) => {
                push_quoted(&mut out, id.as_deref().unwrap_or(""));
                out.push(delim);
                push_quoted(&mut out, error);
            }
            (ResultKind::Unprocessed, None) => {
                for (j, v) in row.iter().enumerate() {
                    if j > 0 {
                        out.push(delim);
                    }
                    push_quoted(&mut out, v);
                }
                out.push_str(eol);
                continue;
            }
            _ => continue,
        }
        push_values(&mut out, row);
        out.push_str(eol);
    }
    out
}
