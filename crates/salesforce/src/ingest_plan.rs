//! Planning a Bulk API 2.0 ingest: input rows → CSV uploads split into jobs, and the way each
//! job's result files are matched back to the input rows.
//!
//! # How results are matched to input rows
//!
//! Bulk result files do not keep the upload's row order, so rows are matched by the values they
//! carry. Each result file echoes the uploaded columns; the plan records, for every row, its
//! **key**: the cells of its key columns as they were written to the CSV.
//!
//! | operation | key |
//! |---|---|
//! | update, delete | `Id` (required in every row) |
//! | upsert | the external id field (required in every row) |
//! | insert with [`IngestOptions::row_key_field`] | that field (required in every row): use a unique field the mapping writes, e.g. an external id holding the source row's key |
//! | insert without it | every column: the whole row's content |
//!
//! A key is unique within a job: a row whose key already occurs goes to a later job (jobs run one
//! after the other, so the later row also wins, as in input order). Only whole-row keys of
//! inserts may repeat; such rows are identical, so which of them gets which outcome makes no
//! difference to what Salesforce holds. A result row is matched on its exact echoed text first,
//! then with numbers compared as numbers (Salesforce may echo `912260031` as `9.12260031E8`) and
//! booleans case-insensitively. A row found in no result file is [`RowOutcome::Unknown`] (or
//! [`RowOutcome::NotProcessed`] when the job processed nothing).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value as J;

use crate::error::SalesforceError;
use crate::write::{Record, RowError, RowOutcome, join_multi};

/// Raw CSV bytes per job: Salesforce takes 150 MB of base64-encoded data per job, about 100 MB
/// before encoding.
pub const MAX_JOB_UPLOAD_BYTES: usize = 100_000_000;

/// What an ingest job does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestOperation {
    /// Creates records. **Not idempotent.**
    Insert,
    /// Updates records by `Id`.
    Update,
    /// Upserts by an external id field.
    Upsert { external_id_field: String },
    /// Deletes records by `Id` (to the recycle bin).
    Delete,
}

impl IngestOperation {
    pub fn api_name(&self) -> &'static str {
        match self {
            IngestOperation::Insert => "insert",
            IngestOperation::Update => "update",
            IngestOperation::Upsert { .. } => "upsert",
            IngestOperation::Delete => "delete",
        }
    }
}

/// The object and operation of an ingest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestSpec {
    pub object: String,
    pub operation: IngestOperation,
}

/// Tuning of an ingest.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Raw CSV bytes per job upload, header included (default [`MAX_JOB_UPLOAD_BYTES`]); more
    /// data is split into several jobs.
    pub max_upload_bytes: usize,
    /// Inserts only: a field whose value identifies each row, to match results by (see the
    /// module docs). Without it, inserts are matched by their whole content.
    pub row_key_field: Option<String>,
    /// The longest wait between two job status checks.
    pub poll_cap: Duration,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions { max_upload_bytes: MAX_JOB_UPLOAD_BYTES, row_key_field: None, poll_cap: Duration::from_secs(10) }
    }
}

/// One job of a plan: which input rows it carries and their CSV. `Debug` shows sizes, not data.
#[derive(Clone)]
pub struct PlannedJob {
    /// Position of the job in the plan (jobs run in this order).
    pub index: usize,
    /// Input row positions in this job, in upload order.
    pub rows: Vec<usize>,
    pub(crate) csv: Bytes,
    /// Each row's key cells, aligned with `rows`.
    keys: Vec<Vec<String>>,
}

impl std::fmt::Debug for PlannedJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlannedJob")
            .field("index", &self.index)
            .field("rows", &self.rows.len())
            .field("csv_bytes", &self.csv.len())
            .finish()
    }
}

impl PlannedJob {
    /// The CSV this job uploads (header included).
    pub fn csv(&self) -> &Bytes {
        &self.csv
    }
}

/// Input rows laid out as ingest jobs. Deterministic: the same rows and options give the same
/// jobs, so a run that crashed can rebuild its plan and resume its jobs by their recorded ids.
#[derive(Clone)]
pub struct IngestPlan {
    pub spec: IngestSpec,
    pub options: IngestOptions,
    columns: Vec<String>,
    key_columns: Vec<String>,
    row_count: usize,
    jobs: Vec<PlannedJob>,
}

impl std::fmt::Debug for IngestPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestPlan")
            .field("spec", &self.spec)
            .field("columns", &self.columns)
            .field("rows", &self.row_count)
            .field("jobs", &self.jobs)
            .finish()
    }
}

impl IngestPlan {
    /// Lays `rows` out as CSV jobs. Fails, before anything is sent, on a row without its key, a
    /// value with no CSV form, or a row larger than `max_upload_bytes`; the message names the
    /// row position and field, never a value.
    pub fn new(spec: IngestSpec, rows: &[Record], options: IngestOptions) -> Result<IngestPlan, SalesforceError> {
        let flat: Vec<Vec<(String, String)>> =
            rows.iter().enumerate().map(|(i, r)| flatten(i, r, &spec.operation)).collect::<Result<_, _>>()?;
        let mut columns: Vec<String> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for row in &flat {
            for (name, _) in row {
                if !index.contains_key(name) {
                    index.insert(name.clone(), columns.len());
                    columns.push(name.clone());
                }
            }
        }
        let required = match &spec.operation {
            IngestOperation::Update | IngestOperation::Delete => Some("Id".to_owned()),
            IngestOperation::Upsert { external_id_field } => Some(external_id_field.clone()),
            IngestOperation::Insert => options.row_key_field.clone(),
        };
        let key_columns: Vec<String> = match &required {
            Some(key) => {
                let found = columns.iter().find(|c| c.eq_ignore_ascii_case(key)).cloned();
                vec![found.ok_or_else(|| SalesforceError::InvalidInput(format!("no row has the key field {key}")))?]
            }
            None => columns.clone(),
        };
        let key_positions: Vec<usize> = key_columns.iter().map(|c| index[c]).collect();
        let header = csv_line(columns.iter().map(|c| Some(c.as_str())))?;
        let budget = options.max_upload_bytes.saturating_sub(header.len());
        // Cells per row, the key, and the wave (how often the key occurred before).
        let mut seen: HashMap<Vec<String>, usize> = HashMap::new();
        let mut waves: Vec<Vec<(usize, Vec<u8>, Vec<String>)>> = Vec::new();
        for (i, row) in flat.iter().enumerate() {
            let mut cells: Vec<Option<&str>> = vec![None; columns.len()];
            for (name, value) in row {
                cells[index[name]] = Some(value.as_str());
            }
            let key: Vec<String> = key_positions.iter().map(|&p| cells[p].unwrap_or("").to_owned()).collect();
            if required.is_some() && key.iter().all(String::is_empty) {
                let field = &key_columns[0];
                return Err(SalesforceError::InvalidInput(format!("row {i} has no value for the key field {field}")));
            }
            let line = csv_line(cells.into_iter())?;
            if line.len() > budget {
                return Err(SalesforceError::InvalidInput(format!(
                    "row {i} takes {} bytes of CSV, more than a job upload may hold ({} bytes)",
                    line.len(),
                    options.max_upload_bytes
                )));
            }
            let wave = if required.is_some() {
                let n = seen.entry(key.clone()).or_default();
                *n += 1;
                *n - 1
            } else {
                0
            };
            if waves.len() <= wave {
                waves.resize_with(wave + 1, Vec::new);
            }
            waves[wave].push((i, line, key));
        }
        let mut jobs: Vec<PlannedJob> = Vec::new();
        for wave in waves {
            let mut current: Option<(Vec<u8>, PlannedJob)> = None;
            for (i, line, key) in wave {
                if current.as_ref().is_some_and(|(buf, _)| buf.len() + line.len() > options.max_upload_bytes) {
                    jobs.push(finish(current.take().expect("checked")));
                }
                let (buf, job) = current.get_or_insert_with(|| {
                    let job = PlannedJob { index: 0, rows: Vec::new(), csv: Bytes::new(), keys: Vec::new() };
                    (header.clone(), job)
                });
                buf.extend_from_slice(&line);
                job.rows.push(i);
                job.keys.push(key);
            }
            jobs.extend(current.map(finish));
        }
        for (n, job) in jobs.iter_mut().enumerate() {
            job.index = n;
        }
        Ok(IngestPlan { spec, options, columns, key_columns, row_count: rows.len(), jobs })
    }

    /// A plan deleting `ids`.
    pub fn delete(object: &str, ids: &[impl AsRef<str>], options: IngestOptions) -> Result<IngestPlan, SalesforceError> {
        let rows: Vec<Record> =
            ids.iter().map(|id| Record::from_iter([("Id".to_owned(), J::String(id.as_ref().to_owned()))])).collect();
        IngestPlan::new(IngestSpec { object: object.to_owned(), operation: IngestOperation::Delete }, &rows, options)
    }

    pub fn jobs(&self) -> &[PlannedJob] {
        &self.jobs
    }

    /// The CSV header every job uploads.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Input rows planned.
    pub fn row_count(&self) -> usize {
        self.row_count
    }

    /// Matches a job's three result files (`successfulResults/`, `failedResults/`,
    /// `unprocessedrecords/`) to its rows: one `(input row, outcome)` per row of `job`.
    /// `processed_nothing` says the job processed no record (rows found nowhere are then
    /// `NotProcessed` rather than `Unknown`).
    pub fn match_results(
        &self,
        job: &PlannedJob,
        successful: &[u8],
        failed: &[u8],
        unprocessed: &[u8],
        processed_nothing: bool,
    ) -> Result<Vec<(usize, RowOutcome)>, SalesforceError> {
        let mut outcomes: Vec<Option<RowOutcome>> = vec![None; job.rows.len()];
        let mut unmatched = 0usize;
        for (body, kind) in [(successful, Kind::Successful), (failed, Kind::Failed), (unprocessed, Kind::Unprocessed)] {
            unmatched += self.match_file(job, body, kind, &mut outcomes)?;
        }
        let missing = outcomes.iter().filter(|o| o.is_none()).count();
        if unmatched > 0 || (missing > 0 && !processed_nothing) {
            tracing::warn!(
                job = job.index,
                unmatched_results = unmatched,
                rows_without_result = missing,
                "Bulk results did not cover every row"
            );
        }
        let fallback = if processed_nothing { RowOutcome::NotProcessed } else { RowOutcome::Unknown };
        Ok(job.rows.iter().zip(outcomes).map(|(&i, o)| (i, o.unwrap_or_else(|| fallback.clone()))).collect())
    }

    /// Assigns the rows of one result file; returns how many result rows matched no input row.
    fn match_file(
        &self,
        job: &PlannedJob,
        body: &[u8],
        kind: Kind,
        outcomes: &mut [Option<RowOutcome>],
    ) -> Result<usize, SalesforceError> {
        let decode = |detail: String| SalesforceError::Decode { what: format!("Bulk {} results", kind.name()), detail };
        let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(body);
        let header: Vec<String> = reader.headers().map_err(|e| decode(e.to_string()))?.iter().map(str::to_owned).collect();
        let position = |name: &str| {
            header.iter().position(|h| h == name).or_else(|| header.iter().position(|h| h.eq_ignore_ascii_case(name)))
        };
        // Key columns the file echoes (a file may leave out columns that match no field).
        let used: Vec<(usize, usize)> =
            self.key_columns.iter().enumerate().filter_map(|(k, c)| position(c).map(|p| (k, p))).collect();
        if used.is_empty() {
            return Err(decode("the file echoes none of the key columns".into()));
        }
        let (id_col, extra_col) = match kind {
            Kind::Successful => (position("sf__Id"), position("sf__Created")),
            Kind::Failed => (position("sf__Id"), position("sf__Error")),
            Kind::Unprocessed => (None, None),
        };
        let mut exact: HashMap<Vec<String>, VecDeque<usize>> = HashMap::new();
        let mut loose: HashMap<Vec<String>, VecDeque<usize>> = HashMap::new();
        for (r, key) in job.keys.iter().enumerate().filter(|(r, _)| outcomes[*r].is_none()) {
            exact.entry(used.iter().map(|&(k, _)| key[k].clone()).collect()).or_default().push_back(r);
            loose.entry(used.iter().map(|&(k, _)| normalize(&key[k])).collect()).or_default().push_back(r);
        }
        let mut unmatched = 0;
        for record in reader.records() {
            let record = record.map_err(|e| decode(e.to_string()))?;
            let cell = |p: usize| record.get(p).unwrap_or("");
            let echoed: Vec<String> = used.iter().map(|&(_, p)| cell(p).to_owned()).collect();
            let pick = |queue: Option<&mut VecDeque<usize>>| {
                let queue = queue?;
                while let Some(r) = queue.pop_front() {
                    if outcomes[r].is_none() {
                        return Some(r);
                    }
                }
                None
            };
            let found = pick(exact.get_mut(&echoed))
                .or_else(|| pick(loose.get_mut(&echoed.iter().map(|c| normalize(c)).collect::<Vec<_>>())));
            let Some(r) = found else {
                unmatched += 1;
                continue;
            };
            outcomes[r] = Some(match kind {
                Kind::Successful => RowOutcome::Success {
                    id: id_col.map(cell).unwrap_or_default().to_owned(),
                    created: extra_col.map(cell).is_some_and(|c| c.eq_ignore_ascii_case("true")),
                },
                Kind::Failed => RowOutcome::Failed { errors: vec![RowError::from_bulk_text(extra_col.map(cell).unwrap_or(""))] },
                Kind::Unprocessed => RowOutcome::NotProcessed,
            });
        }
        Ok(unmatched)
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Successful,
    Failed,
    Unprocessed,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Successful => "successful",
            Kind::Failed => "failed",
            Kind::Unprocessed => "unprocessed",
        }
    }
}

fn finish((buf, mut job): (Vec<u8>, PlannedJob)) -> PlannedJob {
    job.csv = Bytes::from(buf);
    job
}

/// A cell compared loosely: numbers by value, booleans without case.
fn normalize(cell: &str) -> String {
    let numeric = !cell.is_empty()
        && cell.bytes().any(|b| b.is_ascii_digit())
        && cell.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'));
    if numeric && let Ok(n) = cell.parse::<f64>() {
        return format!("{n}");
    }
    if cell.eq_ignore_ascii_case("true") || cell.eq_ignore_ascii_case("false") {
        return cell.to_ascii_lowercase();
    }
    cell.to_owned()
}

/// One CSV line (LF-terminated); `None` cells are empty.
fn csv_line<'a>(cells: impl Iterator<Item = Option<&'a str>>) -> Result<Vec<u8>, SalesforceError> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .quote_style(csv::QuoteStyle::Necessary)
        .from_writer(Vec::new());
    w.write_record(cells.map(|c| c.unwrap_or(""))).map_err(|e| SalesforceError::InvalidInput(e.to_string()))?;
    w.into_inner().map_err(|e| SalesforceError::InvalidInput(e.to_string()))
}

/// A row as `(column, cell text)` pairs (see [`crate::write`] for the conversions).
fn flatten(row_no: usize, row: &Record, op: &IngestOperation) -> Result<Vec<(String, String)>, SalesforceError> {
    let mut out = Vec::with_capacity(row.len());
    for (field, value) in row {
        // A delete uploads only the Id column.
        if *op == IngestOperation::Delete && !field.eq_ignore_ascii_case("Id") {
            continue;
        }
        match value {
            J::Object(parent) => {
                let prefix = match parent.get("attributes").and_then(|a| a.get("type")).and_then(J::as_str) {
                    Some(ty) => format!("{ty}:{field}"),
                    None => field.clone(),
                };
                for (lookup, v) in parent.iter().filter(|(k, _)| k.as_str() != "attributes") {
                    let column = format!("{prefix}.{lookup}");
                    if matches!(v, J::Object(_) | J::Array(_)) {
                        return Err(SalesforceError::InvalidInput(format!(
                            "row {row_no}, field {column}: a relationship value must be a scalar"
                        )));
                    }
                    out.push((column.clone(), cell(&column, row_no, v)?));
                }
            }
            other => out.push((field.clone(), cell(field, row_no, other)?)),
        }
    }
    Ok(out)
}

/// The CSV text of a value: `#N/A` for null and for the empty string (Bulk ignores an empty
/// cell instead of clearing the field).
fn cell(field: &str, row_no: usize, value: &J) -> Result<String, SalesforceError> {
    Ok(match value {
        J::Null => "#N/A".to_owned(),
        J::String(s) if s.is_empty() => "#N/A".to_owned(),
        J::String(s) => s.clone(),
        J::Bool(b) => b.to_string(),
        J::Number(n) => n.to_string(),
        J::Array(items) => join_multi(field, row_no, items)?,
        J::Object(_) => {
            return Err(SalesforceError::InvalidInput(format!("row {row_no}, field {field}: an object has no CSV form")));
        }
    })
}

#[cfg(test)]
#[path = "ingest_plan_tests.rs"]
mod tests;
