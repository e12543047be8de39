//! Bulk API 2.0 query jobs (`/services/data/vNN.N/jobs/query`).
//!
//! A job is created `UploadComplete`, then a background task runs the query (`InProgress`),
//! snapshots the matching record versions and ends `JobComplete` (or `Failed`). Result pages are
//! rendered on request from the snapshot, holding the org read lock only while rendering.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use parking_lot::Mutex;
use serde_json::{Value as J, json};
use tidemark_core::SfId;

use super::error::{json_ok, json_response};
use super::{ApiError, ApiVersion, AppState, SessionExt, SimState};
use crate::bulk::{self, ColumnDelimiter, CsvFormat, IdGen, JobParams as Params, JobState, LineEnding, invalid_job, locator};
use crate::row::Row;
use crate::soql::{self, SoqlQuery};
use crate::value::format_datetime_rest;

/// Rows per result page when the client gives no `maxRecords`.
pub const DEFAULT_MAX_RECORDS: usize = 100_000;
/// Jobs per page of the job list.
/// Result URLs per `resultPages` call.
const RESULT_PAGES_PER_CALL: usize = 5;
const DAY_MS: i64 = 86_400_000;

/// Every Bulk 2.0 query job of the org.
#[derive(Debug)]
pub struct QueryJobStore {
    ids: IdGen,
    jobs: Mutex<BTreeMap<SfId, Arc<QueryJob>>>,
    /// Creation times of every job (deleted ones included) for `DailyBulkV2QueryJobs`.
    created: Mutex<Vec<i64>>,
    /// Holds new jobs in `UploadComplete` while paused.
    pub gate: bulk::ProcessingGate,
}

impl Default for QueryJobStore {
    fn default() -> Self {
        QueryJobStore {
            ids: IdGen::new(10_000_000),
            jobs: Mutex::new(BTreeMap::new()),
            created: Mutex::new(Vec::new()),
            gate: Default::default(),
        }
    }
}

impl QueryJobStore {
    /// Jobs created at or after `since_millis` (org clock), deleted or not.
    pub fn jobs_created_since(&self, since_millis: i64) -> u64 {
        let mut created = self.created.lock();
        created.retain(|t| *t >= since_millis - DAY_MS);
        created.iter().filter(|t| **t >= since_millis).count() as u64
    }

    pub fn get(&self, id: &str) -> Option<Arc<QueryJob>> {
        let id = SfId::parse(id).ok()?;
        self.jobs.lock().get(&id).cloned()
    }
}

/// One query job.
#[derive(Debug)]
pub struct QueryJob {
    pub id: SfId,
    pub query_all: bool,
    pub object: String,
    pub created_by: SfId,
    pub created_millis: i64,
    pub api_version: String,
    pub format: CsvFormat,
    pub pk_chunking_supported: bool,
    query: Arc<SoqlQuery>,
    inner: Mutex<QueryJobInner>,
}

#[derive(Debug)]
struct QueryJobInner {
    state: JobState,
    modstamp: i64,
    error_message: Option<String>,
    rows: Arc<Vec<Row>>,
    total_processing_ms: u64,
}

/// How much of a job's info a response shows (each shape is the one Salesforce gives there).
#[derive(Debug, Clone, Copy, PartialEq)]
enum InfoShape {
    /// PATCH responses.
    Short,
    /// The create response.
    Created,
    /// Entries of the job list.
    Listed,
    /// `GET …/jobs/query/<id>`.
    Full,
}

impl QueryJob {
    pub fn state(&self) -> JobState {
        self.inner.lock().state
    }

    fn info(&self, shape: InfoShape) -> J {
        let inner = self.inner.lock();
        let mut m = serde_json::Map::new();
        m.insert("id".into(), json!(self.id.as_str()));
        m.insert("operation".into(), json!(if self.query_all { "queryAll" } else { "query" }));
        m.insert("object".into(), json!(self.object));
        m.insert("createdById".into(), json!(self.created_by.as_str()));
        m.insert("createdDate".into(), json!(format_datetime_rest(self.created_millis)));
        m.insert("systemModstamp".into(), json!(format_datetime_rest(inner.modstamp)));
        m.insert("state".into(), json!(inner.state.as_str()));
        m.insert("concurrencyMode".into(), json!("Parallel"));
        m.insert("contentType".into(), json!("CSV"));
        m.insert("apiVersion".into(), api_version_number(&self.api_version));
        if shape == InfoShape::Short {
            return J::Object(m);
        }
        if shape != InfoShape::Created {
            m.insert("jobType".into(), json!("V2Query"));
        }
        m.insert("lineEnding".into(), json!(self.format.line_ending.name()));
        m.insert("columnDelimiter".into(), json!(self.format.delimiter.name()));
        if shape == InfoShape::Full {
            m.insert("numberRecordsProcessed".into(), json!(inner.rows.len()));
            m.insert("retries".into(), json!(0));
            m.insert("totalProcessingTime".into(), json!(inner.total_processing_ms));
            m.insert("isPkChunkingSupported".into(), json!(self.pk_chunking_supported));
            if let Some(e) = &inner.error_message {
                m.insert("errorMessage".into(), json!(e));
            }
        }
        J::Object(m)
    }

    fn set_state(&self, state: JobState, now: i64) {
        let mut inner = self.inner.lock();
        inner.state = state;
        inner.modstamp = now;
    }
}

/// `"66.0"` → the JSON number `66.0`.
pub fn api_version_number(v: &str) -> J {
    v.parse::<f64>().ok().and_then(serde_json::Number::from_f64).map(J::Number).unwrap_or(J::Null)
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/jobs/query", get(list_jobs).post(create_job))
        .route("/jobs/query/{id}", get(job_info).patch(abort_job).delete(delete_job))
        .route("/jobs/query/{id}/results", get(results))
        .route("/jobs/query/{id}/resultPages", get(result_pages))
        .route("/jobs/query/{id}/resultpages", get(result_pages))
}

fn find_job(state: &SimState, params: &HashMap<String, String>) -> Result<Arc<QueryJob>, ApiError> {
    params.get("id").and_then(|id| state.bulk2_query_jobs.get(id)).ok_or_else(ApiError::not_found)
}

/// Reads a create/patch body as a JSON object.
pub fn json_object(body: &[u8]) -> Result<serde_json::Map<String, J>, ApiError> {
    match serde_json::from_slice::<J>(body) {
        Ok(J::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::json_parser_error("Expected a JSON object")),
        Err(e) => Err(ApiError::json_parser_error(format!("Unexpected character: {e}"))),
    }
}

/// `columnDelimiter` and `lineEnding` of a create request (defaults COMMA, LF).
pub fn csv_format(body: &serde_json::Map<String, J>) -> Result<CsvFormat, ApiError> {
    let delimiter = match body.get("columnDelimiter").and_then(J::as_str) {
        None => ColumnDelimiter::default(),
        Some(s) => ColumnDelimiter::parse(s).ok_or_else(|| invalid_job(format!("Invalid column delimiter: {s}")))?,
    };
    let line_ending = match body.get("lineEnding").and_then(J::as_str) {
        None => LineEnding::default(),
        Some(s) => LineEnding::parse(s).ok_or_else(|| invalid_job(format!("Invalid line ending: {s}")))?,
    };
    if let Some(ct) = body.get("contentType").and_then(J::as_str)
        && ct != "CSV"
    {
        return Err(invalid_job(format!("Invalid content type: {ct}. Only CSV is supported")));
    }
    Ok(CsvFormat { delimiter, line_ending })
}

async fn create_job(
    State(state): State<AppState>,
    Extension(version): Extension<ApiVersion>,
    session: SessionExt,
    body: bytes::Bytes,
) -> Result<Response, ApiError> {
    if version.major() < 47 {
        return Err(ApiError::not_found());
    }
    let body = json_object(&body)?;
    let query_all = match body.get("operation").and_then(J::as_str) {
        Some("query") => false,
        Some("queryAll") => true,
        Some(other) => return Err(invalid_job(format!("Invalid operation: {other}"))),
        None => return Err(invalid_job("operation is required")),
    };
    let Some(soql_text) = body.get("query").and_then(J::as_str) else {
        return Err(invalid_job("query is required"));
    };
    let format = csv_format(&body)?;
    let (query, object, pk_chunking_supported, now) = {
        let org = state.org.read();
        let query = soql::compile(&org, soql_text).map_err(|e| e.to_api_error())?;
        let table = org.table(query.object()).ok_or_else(ApiError::not_found)?;
        if !table.def.flags.bulk_queryable {
            return Err(ApiError::bad_request(
                "INVALIDENTITY",
                format!("Entity '{}' is not supported by the Bulk API.", table.def.name),
            ));
        }
        if let Some(reason) = bulk::unsupported_reason(&org, &query) {
            return Err(match bulk::split_reason(&reason) {
                Some((code, message)) => ApiError::bad_request(code, message),
                None => ApiError::bad_request("API_ERROR", reason),
            });
        }
        (query, table.def.name.clone(), table.def.flags.pk_chunking_supported, org.stamp_millis())
    };
    let instance = state.org.read().instance.clone();
    let job = Arc::new(QueryJob {
        id: state.bulk2_query_jobs.ids.next(bulk::JOB_PREFIX, &instance),
        query_all,
        object,
        created_by: session.user_id,
        created_millis: now,
        api_version: version.0.clone(),
        format,
        pk_chunking_supported,
        query: Arc::new(query),
        inner: Mutex::new(QueryJobInner {
            state: JobState::UploadComplete,
            modstamp: now,
            error_message: None,
            rows: Arc::new(Vec::new()),
            total_processing_ms: 0,
        }),
    });
    state.bulk2_query_jobs.jobs.lock().insert(job.id, job.clone());
    state.bulk2_query_jobs.created.lock().push(now);
    tracing::info!(job = %job.id, object = %job.object, "bulk 2.0 query job created");
    let response = job.info(InfoShape::Created);
    tokio::spawn(run_job(state.clone(), job));
    Ok(json_ok(&response))
}

/// Runs the query in the background and records the outcome.
async fn run_job(state: AppState, job: Arc<QueryJob>) {
    tokio::task::yield_now().await;
    state.bulk2_query_jobs.gate.wait_open().await;
    let started = std::time::Instant::now();
    {
        let mut inner = job.inner.lock();
        if inner.state != JobState::UploadComplete {
            return;
        }
        inner.state = JobState::InProgress;
        inner.modstamp = state.stamp_millis();
    }
    tokio::task::yield_now().await;
    let outcome = if state.faults.bulk_job_fails() {
        Err("InternalServerError : Retried more than 15 times. Apply filter criteria and try again.".to_owned())
    } else {
        let org = state.org.read();
        job.query.execute(&org, job.query_all).map(|out| out.rows).map_err(|e| format!("{}: {}", e.error_code, e.message))
    };
    let now = state.stamp_millis();
    let mut inner = job.inner.lock();
    if inner.state != JobState::InProgress {
        // Aborted while running: the abort wins.
        return;
    }
    inner.total_processing_ms = bulk::elapsed_ms(started);
    inner.modstamp = now;
    match outcome {
        Ok(rows) => {
            tracing::info!(job = %job.id, rows = rows.len(), "bulk 2.0 query job complete");
            inner.rows = Arc::new(rows);
            inner.state = JobState::JobComplete;
        }
        Err(message) => {
            tracing::info!(job = %job.id, "bulk 2.0 query job failed");
            inner.error_message = Some(message);
            inner.state = JobState::Failed;
        }
    }
}

async fn job_info(State(state): State<AppState>, Path(params): Params) -> Result<Response, ApiError> {
    let job = find_job(&state, &params)?;
    Ok(json_ok(&job.info(InfoShape::Full)))
}

async fn abort_job(State(state): State<AppState>, Path(params): Params, body: bytes::Bytes) -> Result<Response, ApiError> {
    let job = find_job(&state, &params)?;
    let body = json_object(&body)?;
    match body.get("state").and_then(J::as_str) {
        Some("Aborted") => {}
        Some(other) => {
            return Err(ApiError::bad_request(
                "INVALIDJOBSTATE",
                format!("Changing the state of a query job to {other} is not allowed"),
            ));
        }
        None => return Err(invalid_job("state is required")),
    }
    let now = state.stamp_millis();
    {
        let current = job.state();
        match current {
            JobState::UploadComplete | JobState::InProgress => job.set_state(JobState::Aborted, now),
            done => {
                let word = match done {
                    JobState::JobComplete => "Completed",
                    other => other.as_str(),
                };
                return Err(ApiError::bad_request("INVALIDJOBSTATE", format!("Aborting already {word} Job not allowed")));
            }
        }
    }
    Ok(json_ok(&job.info(InfoShape::Short)))
}

async fn delete_job(State(state): State<AppState>, Path(params): Params) -> Result<Response, ApiError> {
    let job = find_job(&state, &params)?;
    if !job.state().is_terminal() {
        return Err(ApiError::bad_request(
            "API_ERROR",
            "Error encountered when deleting the job because the job is not terminated",
        ));
    }
    state.bulk2_query_jobs.jobs.lock().remove(&job.id);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The rows of a finished job, after the version and state checks results need.
fn completed_rows(job: &QueryJob, version: &ApiVersion) -> Result<Arc<Vec<Row>>, ApiError> {
    if job.api_version != version.0 {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "API_ERROR",
            format!(
                "The API version of the request ({}) does not match the API version of the job ({}). Use the job's API version.",
                version.0, job.api_version
            ),
        ));
    }
    let inner = job.inner.lock();
    if inner.state != JobState::JobComplete {
        return Err(ApiError::bad_request(
            "INVALIDJOBSTATE",
            format!("Results are available only for a job in state JobComplete; this job is {}", inner.state.as_str()),
        ));
    }
    Ok(inner.rows.clone())
}

/// `locator` and `maxRecords` of a results request.
fn page_window(q: &HashMap<String, String>, total: usize) -> Result<(usize, usize), ApiError> {
    let max = match q.get("maxRecords") {
        None => DEFAULT_MAX_RECORDS,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => return Err(ApiError::bad_request("INVALIDREQUEST", format!("Invalid maxRecords: {s}"))),
        },
    };
    let offset = match q.get("locator").map(String::as_str) {
        None | Some("") => 0,
        Some(loc) => match locator::decode(loc) {
            Some(o) if o <= total => o,
            _ => return Err(ApiError::bad_request("INVALIDLOCATOR", format!("Invalid locator: {loc}"))),
        },
    };
    Ok((offset, max))
}

async fn results(
    State(state): State<AppState>,
    Extension(version): Extension<ApiVersion>,
    Path(params): Params,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let job = find_job(&state, &params)?;
    let rows = completed_rows(&job, &version)?;
    let (offset, max) = page_window(&q, rows.len())?;
    let end = offset.saturating_add(max).min(rows.len());
    let next = if end < rows.len() { locator::encode(end) } else { "null".to_owned() };
    let compress = bulk::wants_gzip(&headers);
    let render_job = job.clone();
    let render_state = state.clone();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(4);
    // Rendering and compression are CPU-bound: a blocking thread produces chunks while the
    // response streams them. The org read lock is held for the page; a client that stops
    // reading ends the render when the channel closes.
    tokio::task::spawn_blocking(move || {
        let org = render_state.org.read();
        let columns = render_job.query.columns();
        let mut encoder = bulk::results::ChunkEncoder::new(compress);
        let send = |bytes: bytes::Bytes| bytes.is_empty() || tx.blocking_send(Ok(bytes)).is_ok();
        let mut open = true;
        bulk::results::render_chunks(&org, &render_job.query, &columns, &rows[offset..end], render_job.format, |chunk| {
            open = send(encoder.encode(chunk));
            open
        });
        if open {
            send(encoder.finish());
        }
    });
    let count = (end - offset).to_string();
    let body = axum::body::Body::from_stream(tokio_stream_from(rx));
    Ok(bulk::csv_stream_response(body, compress, &[("Sforce-NumberOfRecords", count), ("Sforce-Locator", next)]))
}

async fn result_pages(
    State(state): State<AppState>,
    Extension(version): Extension<ApiVersion>,
    Path(params): Params,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    if version.major() < 58 {
        return Err(ApiError::not_found());
    }
    let job = find_job(&state, &params)?;
    let rows = completed_rows(&job, &version)?;
    let (mut offset, max) = page_window(&q, rows.len())?;
    let base = format!("/services/data/v{}/jobs/query/{}", version.0, job.id);
    let max_param = q.get("maxRecords").map(|m| format!("&maxRecords={m}")).unwrap_or_default();
    let mut pages = Vec::new();
    while pages.len() < RESULT_PAGES_PER_CALL && (offset < rows.len() || (offset == 0 && pages.is_empty())) {
        pages.push(json!({ "resultUrl": format!("{base}/results?locator={}{max_param}", locator::encode(offset)) }));
        offset = offset.saturating_add(max);
    }
    let done = offset >= rows.len();
    let next = if done { J::Null } else { json!(format!("{base}/resultpages?locator={}{max_param}", locator::encode(offset))) };
    Ok(json_ok(&json!({ "resultPages": pages, "nextRecordsUrl": next, "done": done })))
}

async fn list_jobs(
    State(state): State<AppState>,
    Extension(version): Extension<ApiVersion>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let jobs: Vec<Arc<QueryJob>> = state.bulk2_query_jobs.jobs.lock().values().cloned().collect();
    let instance = state.org.read().instance.clone();
    let list = bulk::JobList { resource: "query", version: &version.0, instance: &instance, cursor_seq: 1 };
    let body = bulk::job_list_page(&jobs, |j| j.info(InfoShape::Listed), q.get("queryLocator"), list)?;
    Ok(json_response(StatusCode::OK, &body))
}

/// A receiver as a body stream.
fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<bytes::Bytes, std::io::Error>>,
) -> impl futures::Stream<Item = Result<bytes::Bytes, std::io::Error>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
