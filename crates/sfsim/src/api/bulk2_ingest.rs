//! Bulk API 2.0 ingest jobs (`/services/data/vNN.N/jobs/ingest`).
//!
//! `Open` → CSV uploads (`PUT …/batches`) → `PATCH UploadComplete` → a background task writes the
//! rows through the validated write path in chunks of 200 (`InProgress`) → `JobComplete`, or
//! `Failed` with `errorMessage`. Per-row outcomes feed the three result CSVs.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Extension, Router};
use parking_lot::Mutex;
use serde_json::{Value as J, json};
use tidemark_core::SfId;

use super::bulk2_query::{api_version_number, csv_format, json_object};
use super::error::json_ok;
use super::{ApiError, ApiVersion, AppState, SessionExt, SimState};
use crate::bulk::csv::{self, CsvTable};
use crate::bulk::ingest::{self, IngestSpec, Operation, ParentIndex, ResultKind, RowOutcome};
use crate::bulk::{self, CsvFormat, IdGen, JobParams as Params, JobState, LineEnding, invalid_job};
use crate::value::format_datetime_rest;

/// Raw CSV a job may receive (150 MB base64-encoded ≈ 100 MB raw).
pub const MAX_JOB_DATA_BYTES: usize = 100_000_000;
/// Characters of data a multipart create may carry.
pub const MAX_MULTIPART_CHARS: usize = 100_000;
/// Rows written per org write-lock acquisition, as Salesforce processes them.
pub const CHUNK_ROWS: usize = 200;
/// Rows per internal batch (a failing batch fails the job).
pub const INTERNAL_BATCH_ROWS: usize = 10_000;

/// Every Bulk 2.0 ingest job of the org.
#[derive(Debug)]
pub struct IngestJobStore {
    ids: IdGen,
    jobs: Mutex<BTreeMap<SfId, Arc<IngestJob>>>,
    /// Holds jobs in `UploadComplete` while paused.
    pub gate: bulk::ProcessingGate,
}

impl Default for IngestJobStore {
    fn default() -> Self {
        IngestJobStore { ids: IdGen::new(20_000_000), jobs: Mutex::new(BTreeMap::new()), gate: Default::default() }
    }
}

impl IngestJobStore {
    pub fn get(&self, id: &str) -> Option<Arc<IngestJob>> {
        let id = SfId::parse(id).ok()?;
        self.jobs.lock().get(&id).cloned()
    }
}

/// One ingest job.
#[derive(Debug)]
pub struct IngestJob {
    pub id: SfId,
    pub spec: IngestSpec,
    pub created_by: SfId,
    pub created_millis: i64,
    pub api_version: String,
    pub format: CsvFormat,
    inner: Mutex<IngestInner>,
}

#[derive(Debug)]
struct IngestInner {
    state: JobState,
    modstamp: i64,
    error_message: Option<String>,
    uploads: Vec<String>,
    upload_bytes: usize,
    /// The parsed data once processing started.
    table: Option<Arc<CsvTable>>,
    outcomes: Vec<Option<RowOutcome>>,
    processed: u64,
    failed: u64,
    total_ms: u64,
    api_active_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum InfoShape {
    Short,
    Created,
    Listed,
    Full,
}

impl IngestJob {
    fn state(&self) -> JobState {
        self.inner.lock().state
    }

    fn info(&self, shape: InfoShape) -> J {
        let inner = self.inner.lock();
        let mut m = serde_json::Map::new();
        m.insert("id".into(), json!(self.id.as_str()));
        m.insert("operation".into(), json!(self.spec.operation.name()));
        m.insert("object".into(), json!(self.spec.object));
        m.insert("createdById".into(), json!(self.created_by.as_str()));
        m.insert("createdDate".into(), json!(format_datetime_rest(self.created_millis)));
        m.insert("systemModstamp".into(), json!(format_datetime_rest(inner.modstamp)));
        m.insert("state".into(), json!(inner.state.as_str()));
        if let Some(ext) = &self.spec.external_id_field {
            m.insert("externalIdFieldName".into(), json!(ext));
        }
        m.insert("concurrencyMode".into(), json!("Parallel"));
        m.insert("contentType".into(), json!("CSV"));
        m.insert("apiVersion".into(), api_version_number(&self.api_version));
        if shape == InfoShape::Short {
            return J::Object(m);
        }
        if shape != InfoShape::Created {
            m.insert("jobType".into(), json!("V2Ingest"));
        }
        if inner.state == JobState::Open {
            m.insert("contentUrl".into(), json!(format!("services/data/v{}/jobs/ingest/{}/batches", self.api_version, self.id)));
        }
        m.insert("lineEnding".into(), json!(self.format.line_ending.name()));
        m.insert("columnDelimiter".into(), json!(self.format.delimiter.name()));
        if shape == InfoShape::Full {
            if inner.state != JobState::Open {
                m.insert("numberRecordsProcessed".into(), json!(inner.processed));
                m.insert("numberRecordsFailed".into(), json!(inner.failed));
            }
            m.insert("retries".into(), json!(0));
            m.insert("totalProcessingTime".into(), json!(inner.total_ms));
            m.insert("apiActiveProcessingTime".into(), json!(inner.api_active_ms));
            m.insert("apexProcessingTime".into(), json!(0));
            if let Some(e) = &inner.error_message {
                m.insert("errorMessage".into(), json!(e));
            }
        }
        J::Object(m)
    }
}

pub fn routes() -> Router<AppState> {
    let upload = put(upload_batch).layer(DefaultBodyLimit::max(MAX_JOB_DATA_BYTES + 1024));
    let create = axum::routing::post(create_job).layer(DefaultBodyLimit::max(4 * MAX_MULTIPART_CHARS + 64 * 1024));
    Router::new()
        .route("/jobs/ingest", get(list_jobs).merge(create))
        .route("/jobs/ingest/{id}", get(job_info).patch(change_state).delete(delete_job))
        .route("/jobs/ingest/{id}/batches", upload)
        .route("/jobs/ingest/{id}/successfulResults", get(successful_results))
        .route("/jobs/ingest/{id}/failedResults", get(failed_results))
        .route("/jobs/ingest/{id}/unprocessedrecords", get(unprocessed_records))
}

fn find_job(state: &SimState, params: &HashMap<String, String>) -> Result<Arc<IngestJob>, ApiError> {
    params.get("id").and_then(|id| state.bulk2_ingest_jobs.get(id)).ok_or_else(ApiError::not_found)
}

fn content_type(headers: &HeaderMap) -> &str {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("")
}

async fn create_job(
    State(state): State<AppState>,
    Extension(version): Extension<ApiVersion>,
    session: SessionExt,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Result<Response, ApiError> {
    let ct = content_type(&headers);
    let (job_json, data) = if ct.to_ascii_lowercase().starts_with("multipart/form-data") {
        let (job, content) = parse_multipart(ct, &body)?;
        let content = content.ok_or_else(|| invalid_job("The multipart request has no content part"))?;
        if content.chars().count() > MAX_MULTIPART_CHARS {
            return Err(ApiError::bad_request(
                "CLIENTINPUTERROR",
                format!(
                    "Job data in a multipart request is limited to {MAX_MULTIPART_CHARS} characters; upload it with PUT …/batches"
                ),
            ));
        }
        (job, Some(content))
    } else {
        (json_object(&body)?, None)
    };
    let spec = job_spec(&state, &job_json)?;
    let format = csv_format(&job_json)?;
    let now = state.stamp_millis();
    let instance = state.org.read().instance.clone();
    let uploaded = data.is_some();
    let upload_bytes = data.as_ref().map_or(0, String::len);
    let job = Arc::new(IngestJob {
        id: state.bulk2_ingest_jobs.ids.next(bulk::JOB_PREFIX, &instance),
        spec,
        created_by: session.user_id,
        created_millis: now,
        api_version: version.0.clone(),
        format,
        inner: Mutex::new(IngestInner {
            state: if uploaded { JobState::UploadComplete } else { JobState::Open },
            modstamp: now,
            error_message: None,
            uploads: data.into_iter().collect(),
            upload_bytes,
            table: None,
            outcomes: Vec::new(),
            processed: 0,
            failed: 0,
            total_ms: 0,
            api_active_ms: 0,
        }),
    });
    state.bulk2_ingest_jobs.jobs.lock().insert(job.id, job.clone());
    tracing::info!(job = %job.id, object = %job.spec.object, operation = job.spec.operation.name(), "bulk 2.0 ingest job created");
    let response = job.info(InfoShape::Created);
    if uploaded {
        tokio::spawn(run_job(state.clone(), job));
    }
    Ok(json_ok(&response))
}

/// Validates `object`, `operation` and `externalIdFieldName` of a create request.
fn job_spec(state: &SimState, body: &serde_json::Map<String, J>) -> Result<IngestSpec, ApiError> {
    let Some(object) = body.get("object").and_then(J::as_str) else {
        return Err(invalid_job("object is required"));
    };
    let operation = match body.get("operation").and_then(J::as_str) {
        Some(op) => Operation::parse(op).ok_or_else(|| invalid_job(format!("Invalid operation: {op}")))?,
        None => return Err(invalid_job("operation is required")),
    };
    let org = state.org.read();
    let table = org
        .table(object)
        .ok_or_else(|| ApiError::bad_request("INVALIDENTITY", format!("Entity '{object}' is not supported by the Bulk API.")))?;
    let external_id_field = match (operation, body.get("externalIdFieldName").and_then(J::as_str)) {
        (Operation::Upsert, None) => return Err(invalid_job("externalIdFieldName is required for upsert")),
        (Operation::Upsert, Some(f)) => {
            let field = table.def.field(f).filter(|d| d.name == "Id" || d.external_id || (d.id_lookup && d.unique));
            let field = field.ok_or_else(|| {
                invalid_job(format!(
                    "Field name provided, {f} does not match an External ID, Salesforce Id, or indexed field for {}",
                    table.def.name
                ))
            })?;
            Some(field.name.clone())
        }
        _ => None,
    };
    Ok(IngestSpec { object: table.def.name.clone(), operation, external_id_field })
}

/// Splits a `multipart/form-data` body into its `job` JSON and `content` CSV parts.
fn parse_multipart(content_type: &str, body: &[u8]) -> Result<(serde_json::Map<String, J>, Option<String>), ApiError> {
    let boundary = content_type
        .split(';')
        .filter_map(|p| p.trim().strip_prefix("boundary="))
        .next()
        .map(|b| b.trim_matches('"'))
        .filter(|b| !b.is_empty())
        .ok_or_else(|| invalid_job("multipart request without a boundary"))?;
    let text = std::str::from_utf8(body).map_err(|_| ApiError::bad_request("CLIENTINPUTERROR", "Request body is not UTF-8"))?;
    let delimiter = format!("--{boundary}");
    let mut job = None;
    let mut content = None;
    for part in text.split(delimiter.as_str()).skip(1) {
        if part.starts_with("--") {
            break;
        }
        let part = part.strip_prefix("\r\n").or_else(|| part.strip_prefix('\n')).unwrap_or(part);
        let (head, data) = part
            .split_once("\r\n\r\n")
            .or_else(|| part.split_once("\n\n"))
            .ok_or_else(|| invalid_job("malformed multipart part"))?;
        let data = data.strip_suffix("\r\n").or_else(|| data.strip_suffix('\n')).unwrap_or(data);
        let name = head
            .lines()
            .filter(|l| l.to_ascii_lowercase().starts_with("content-disposition"))
            .flat_map(|l| l.split(';'))
            .filter_map(|p| p.trim().strip_prefix("name="))
            .map(|n| n.trim_matches('"').to_owned())
            .next();
        match name.as_deref() {
            Some("job") => job = Some(json_object(data.as_bytes())?),
            Some("content") => content = Some(data.to_owned()),
            _ => {}
        }
    }
    let job = job.ok_or_else(|| invalid_job("The multipart request has no job part"))?;
    Ok((job, content))
}

async fn upload_batch(
    State(state): State<AppState>,
    Path(params): Params,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Result<Response, ApiError> {
    let job = find_job(&state, &params)?;
    let ct = content_type(&headers);
    if !ct.to_ascii_lowercase().starts_with("text/csv") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTEDMEDIATYPE",
            format!("Content type '{ct}' is not supported; job data is uploaded as text/csv"),
        ));
    }
    let text =
        String::from_utf8(body.to_vec()).map_err(|_| ApiError::bad_request("CLIENTINPUTERROR", "Job data must be UTF-8"))?;
    let mut inner = job.inner.lock();
    if inner.state != JobState::Open {
        return Err(ApiError::bad_request(
            "INVALIDJOBSTATE",
            format!("Job data can be uploaded only while the job is Open; this job is {}", inner.state.as_str()),
        ));
    }
    if inner.upload_bytes + text.len() > MAX_JOB_DATA_BYTES {
        return Err(ApiError::bad_request("CLIENTINPUTERROR", "Job data exceeds the limit of 150 MB of base64-encoded content"));
    }
    inner.upload_bytes += text.len();
    inner.uploads.push(text);
    Ok(StatusCode::CREATED.into_response())
}

async fn change_state(State(state): State<AppState>, Path(params): Params, body: bytes::Bytes) -> Result<Response, ApiError> {
    let job = find_job(&state, &params)?;
    let body = json_object(&body)?;
    let now = state.stamp_millis();
    let wanted = body.get("state").and_then(J::as_str).ok_or_else(|| invalid_job("state is required"))?;
    let start = {
        let mut inner = job.inner.lock();
        match (wanted, inner.state) {
            ("UploadComplete", JobState::Open) => {
                inner.state = JobState::UploadComplete;
                inner.modstamp = now;
                true
            }
            ("Aborted", JobState::Open | JobState::UploadComplete | JobState::InProgress) => {
                inner.state = JobState::Aborted;
                inner.modstamp = now;
                false
            }
            ("Aborted", done) => {
                let word = if done == JobState::JobComplete { "Completed" } else { done.as_str() };
                return Err(ApiError::bad_request("INVALIDJOBSTATE", format!("Aborting already {word} Job not allowed")));
            }
            ("UploadComplete", current) => {
                return Err(ApiError::bad_request(
                    "INVALIDJOBSTATE",
                    format!("Unable to change the state of a job in state {} to UploadComplete", current.as_str()),
                ));
            }
            (other, _) => {
                return Err(ApiError::bad_request("INVALIDJOBSTATE", format!("Invalid state for a job update: {other}")));
            }
        }
    };
    if start {
        tokio::spawn(run_job(state.clone(), job.clone()));
    }
    Ok(json_ok(&job.info(InfoShape::Short)))
}

/// Parses every upload into one table (all uploads must share the first one's header).
fn parse_uploads(uploads: &[String], format: CsvFormat) -> Result<CsvTable, String> {
    let mut merged: Option<CsvTable> = None;
    for upload in uploads {
        let t = csv::parse(upload, format).map_err(|e| e.to_string())?;
        match merged.as_mut() {
            None => merged = Some(t),
            Some(m) => {
                let same = m.header.len() == t.header.len()
                    && m.header.iter().zip(&t.header).all(|(a, b)| a.trim().eq_ignore_ascii_case(b.trim()));
                if !same {
                    return Err("InvalidBatch : Every upload of a job must have the same header row".to_owned());
                }
                m.rows.extend(t.rows);
            }
        }
    }
    merged.ok_or_else(|| "InvalidBatch : No job data was uploaded".to_owned())
}

fn finish(job: &IngestJob, state: JobState, error: Option<String>, now: i64, started: std::time::Instant) {
    let mut inner = job.inner.lock();
    if inner.state == JobState::Aborted {
        return;
    }
    inner.state = state;
    inner.error_message = error;
    inner.modstamp = now;
    inner.total_ms = bulk::elapsed_ms(started);
}

/// Processes an `UploadComplete` job in the background.
async fn run_job(state: AppState, job: Arc<IngestJob>) {
    tokio::task::yield_now().await;
    state.bulk2_ingest_jobs.gate.wait_open().await;
    let started = std::time::Instant::now();
    let uploads = {
        let mut inner = job.inner.lock();
        if inner.state != JobState::UploadComplete {
            return;
        }
        inner.state = JobState::InProgress;
        inner.modstamp = state.stamp_millis();
        std::mem::take(&mut inner.uploads)
    };
    let table = match parse_uploads(&uploads, job.format) {
        Ok(t) => Arc::new(t),
        Err(message) => {
            job.inner.lock().uploads = uploads;
            return finish(&job, JobState::Failed, Some(message), state.stamp_millis(), started);
        }
    };
    drop(uploads);
    let total = table.rows.len();
    {
        let mut inner = job.inner.lock();
        inner.table = Some(table.clone());
        inner.outcomes = vec![None; total];
    }
    let plan = ingest::plan(&state.org.read(), &job.spec, &table.header);
    let plan = match plan {
        Ok(p) => p,
        Err(message) => return finish(&job, JobState::Failed, Some(message), state.stamp_millis(), started),
    };
    // A failing job loses one internal batch (and everything after it) to exhausted retries.
    let job_fails = state.faults.bulk_job_fails();
    let batches = total.div_ceil(INTERNAL_BATCH_ROWS).max(1);
    // Ingest jobs draw on the batch allocation Bulk API 1.0 uses, one batch per 10,000 records;
    // query jobs draw on none.
    state.bulk_batches.record(state.now_millis(), batches as u64);
    let stop_at = if job_fails { (batches / 2) * INTERNAL_BATCH_ROWS } else { total };
    let mut parents = ParentIndex::default();
    let mut chunk_start = 0;
    while chunk_start < stop_at {
        if job.state() == JobState::Aborted {
            break;
        }
        let chunk_end = (chunk_start + CHUNK_ROWS).min(stop_at);
        let t0 = std::time::Instant::now();
        let outcomes: Vec<RowOutcome> = {
            let mut org = state.org.write();
            let rows = &table.rows[chunk_start..chunk_end];
            // Lock draws happen for every row up front, one per row in upload order, so a seed
            // gives the same failures whatever else fails.
            let locking = state.faults.locks_configured();
            let locks: Vec<_> = rows
                .iter()
                .map(|row| {
                    if !locking {
                        return None;
                    }
                    let ids = ingest::lock_candidates(&org, &job.spec, &plan, row);
                    state.faults.row_lock(&ids.iter().map(String::as_str).collect::<Vec<_>>())
                })
                .collect();
            let duplicates = ingest::duplicate_keys(&org, &job.spec, &plan, rows);
            rows.iter()
                .zip(locks)
                .zip(duplicates)
                .map(|((row, lock), duplicate)| match (duplicate, lock) {
                    (Some(failed), _) => failed,
                    (None, Some(hit)) => ingest::lock_failure(row, &plan, hit.id.as_deref()),
                    (None, None) => ingest::process_row(&mut org, &job.spec, &plan, &mut parents, row),
                })
                .collect()
        };
        let active = bulk::elapsed_ms(t0);
        let now = state.stamp_millis();
        {
            let mut inner = job.inner.lock();
            inner.api_active_ms += active;
            inner.processed += outcomes.len() as u64;
            inner.failed += outcomes.iter().filter(|o| o.is_failure()).count() as u64;
            inner.modstamp = now;
            for (slot, outcome) in inner.outcomes[chunk_start..chunk_end].iter_mut().zip(outcomes) {
                *slot = Some(outcome);
            }
            inner.total_ms = bulk::elapsed_ms(started);
        }
        chunk_start = chunk_end;
        tokio::task::yield_now().await;
    }
    let now = state.stamp_millis();
    if job_fails {
        let message =
            "InternalServerError : Batch processing did not finish in time and was retried more than 20 times".to_owned();
        finish(&job, JobState::Failed, Some(message), now, started);
    } else {
        finish(&job, JobState::JobComplete, None, now, started);
    }
    tracing::info!(job = %job.id, rows = total, "bulk 2.0 ingest job processed");
}

async fn job_info(State(state): State<AppState>, Path(params): Params) -> Result<Response, ApiError> {
    Ok(json_ok(&find_job(&state, &params)?.info(InfoShape::Full)))
}

async fn delete_job(State(state): State<AppState>, Path(params): Params) -> Result<Response, ApiError> {
    let job = find_job(&state, &params)?;
    if matches!(job.state(), JobState::Open | JobState::InProgress) {
        return Err(ApiError::bad_request(
            "API_ERROR",
            "Error encountered when deleting the job because the job is not terminated",
        ));
    }
    state.bulk2_ingest_jobs.jobs.lock().remove(&job.id);
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn results(
    state: AppState,
    params: HashMap<String, String>,
    headers: HeaderMap,
    kind: ResultKind,
) -> Result<Response, ApiError> {
    let job = find_job(&state, &params)?;
    let body = {
        let inner = job.inner.lock();
        let parsed;
        let table: &CsvTable = match &inner.table {
            Some(t) => t,
            None => {
                // Not processed yet (or aborted before processing): every uploaded row is unprocessed.
                // Data the job could not read (e.g. a foreign line ending) is still listed,
                // read with the other line ending.
                let other = CsvFormat {
                    line_ending: match job.format.line_ending {
                        LineEnding::Lf => LineEnding::Crlf,
                        LineEnding::Crlf => LineEnding::Lf,
                    },
                    ..job.format
                };
                parsed = parse_uploads(&inner.uploads, job.format)
                    .or_else(|_| parse_uploads(&inner.uploads, other))
                    .unwrap_or_default();
                &parsed
            }
        };
        ingest::render_results(table, &inner.outcomes, kind, job.format)
    };
    Ok(bulk::csv_response(body, bulk::wants_gzip(&headers), &[]))
}

async fn successful_results(
    State(state): State<AppState>,
    Path(params): Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    results(state, params, headers, ResultKind::Successful).await
}

async fn failed_results(State(state): State<AppState>, Path(params): Params, headers: HeaderMap) -> Result<Response, ApiError> {
    results(state, params, headers, ResultKind::Failed).await
}

async fn unprocessed_records(
    State(state): State<AppState>,
    Path(params): Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    results(state, params, headers, ResultKind::Unprocessed).await
}

async fn list_jobs(
    State(state): State<AppState>,
    Extension(version): Extension<ApiVersion>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let jobs: Vec<Arc<IngestJob>> = state.bulk2_ingest_jobs.jobs.lock().values().cloned().collect();
    let instance = state.org.read().instance.clone();
    let list = bulk::JobList { resource: "ingest", version: &version.0, instance: &instance, cursor_seq: 2 };
    let body = bulk::job_list_page(&jobs, |j| j.info(InfoShape::Listed), q.get("queryLocator"), list)?;
    Ok(json_ok(&body))
}
