//! Bulk API 1.0 query jobs (`/services/async/NN.N/job…`), in XML or JSON.
//!
//! Sessions come in the `X-SFDC-Session` header. A job is created `Open`; each batch carries one
//! SOQL statement and is run in the background (`Queued` → `InProgress` → `Completed`/`Failed`).
//! With `Sforce-Enable-PKChunking` the submitted batch becomes `NotProcessed` and one batch per
//! Id range is created, each returning only the records of its range.
//!
//! Response formats follow Salesforce's Content Type Header rule: once the URL names a known
//! job, the job's `contentType` decides (JSON for JSON jobs; XML for CSV and XML jobs, whose
//! query results are CSV and XML), whatever the request's headers say. Before that (job
//! creation, an unknown job, a bad session) the request's `Content-Type` decides, XML unless it
//! names JSON. Request bodies are read in the format their `Content-Type` names: clients such as
//! Singer's tap-salesforce send `application/json` on every call of a CSV job.

mod results;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use parking_lot::Mutex;
use serde_json::{Map, Value as J, json};
use tidemark_core::SfId;

use super::bulk2_query::api_version_number;
use super::{AppState, MAX_VERSION, MIN_VERSION, SimState};
use crate::auth::Session;
use crate::bulk::{self, IdGen, xml};
use crate::row::Row;
use crate::soql::{self, SoqlQuery};
use crate::value::format_datetime_bulk;

/// PK chunking chunk sizes.
pub const DEFAULT_CHUNK_SIZE: usize = 100_000;
pub const MAX_CHUNK_SIZE: usize = 250_000;

/// Bulk API 1.0 jobs and batches.
#[derive(Debug)]
pub struct Bulk1Store {
    job_ids: IdGen,
    batch_ids: IdGen,
    result_ids: IdGen,
    jobs: Mutex<BTreeMap<SfId, Arc<Bulk1Job>>>,
}

impl Default for Bulk1Store {
    fn default() -> Self {
        Bulk1Store {
            job_ids: IdGen::new(30_000_000),
            batch_ids: IdGen::new(1000),
            result_ids: IdGen::new(1000),
            jobs: Mutex::new(BTreeMap::new()),
        }
    }
}

/// Result content type of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentType {
    Csv,
    Json,
    Xml,
}

impl ContentType {
    fn name(self) -> &'static str {
        match self {
            ContentType::Csv => "CSV",
            ContentType::Json => "JSON",
            ContentType::Xml => "XML",
        }
    }
}

#[derive(Debug)]
pub struct Bulk1Job {
    pub id: SfId,
    pub query_all: bool,
    pub object: String,
    pub content_type: ContentType,
    pub created_by: SfId,
    pub created_millis: i64,
    pub api_version: String,
    /// PK chunking chunk size, when enabled.
    pub chunk_size: Option<usize>,
    inner: Mutex<JobInner>,
}

#[derive(Debug)]
struct JobInner {
    state: &'static str,
    modstamp: i64,
    batches: Vec<Arc<Batch>>,
}

#[derive(Debug)]
pub struct Batch {
    pub id: SfId,
    pub job_id: SfId,
    pub created_millis: i64,
    /// The SOQL the batch runs (a PK chunk runs its parent's query and keeps its Id range).
    pub soql: String,
    /// The SOQL as `…/request` shows it (chunks show their Id range as a WHERE clause).
    pub request: String,
    /// `[low, high)` Id range of a PK chunk (`None` = unbounded).
    range: Option<(Option<SfId>, Option<SfId>)>,
    inner: Mutex<BatchInner>,
}

#[derive(Debug)]
struct BatchInner {
    state: &'static str,
    state_message: Option<String>,
    modstamp: i64,
    query: Option<Arc<SoqlQuery>>,
    rows: Arc<Vec<Row>>,
    result_id: Option<SfId>,
    total_ms: u64,
}

/// A Bulk API 1.0 exception: `<error><exceptionCode/><exceptionMessage/></error>`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Bulk1Error {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub json: bool,
}

impl Bulk1Error {
    fn new(code: &'static str, message: impl Into<String>) -> Bulk1Error {
        Bulk1Error { status: StatusCode::BAD_REQUEST, code, message: message.into(), json: false }
    }

    fn in_json(mut self, json: bool) -> Bulk1Error {
        self.json = json;
        self
    }
}

impl IntoResponse for Bulk1Error {
    fn into_response(self) -> Response {
        if self.json {
            let body = json!({ "exceptionCode": self.code, "exceptionMessage": self.message });
            return body_response(self.status, true, body.to_string());
        }
        let mut out = String::with_capacity(256);
        xml::open_root(&mut out, "error");
        xml::element(&mut out, "exceptionCode", self.code);
        xml::element(&mut out, "exceptionMessage", &self.message);
        out.push_str("</error>");
        body_response(self.status, false, out)
    }
}

fn body_response(status: StatusCode, json: bool, body: String) -> Response {
    let mut resp = (status, body).into_response();
    let ct = if json { "application/json" } else { "application/xml" };
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    resp
}

type Result1<T> = Result<T, Bulk1Error>;

/// The request context every Bulk 1.0 handler needs.
struct Call {
    session: Session,
    version: String,
    /// Answer in JSON (else XML); set from the job once the job is known.
    json: bool,
    /// The request body is JSON (else XML), as its `Content-Type` says.
    body_json: bool,
    usage: (u64, u64),
}

impl Call {
    fn respond(&self, status: StatusCode, body: J, xml_root: &str) -> Response {
        let text = if self.json {
            body.to_string()
        } else {
            body.as_object().map(|m| xml::object_document(xml_root, m)).unwrap_or_default()
        };
        self.finish(body_response(status, self.json, text))
    }

    fn finish(&self, mut resp: Response) -> Response {
        if let Ok(v) = HeaderValue::from_str(&format!("api-usage={}/{}", self.usage.0, self.usage.1)) {
            resp.headers_mut().insert("Sforce-Limit-Info", v);
        }
        resp
    }
}

/// Whether `Content-Type` names JSON. Salesforce documents only this header as choosing the
/// format, so `Accept` is not consulted.
fn content_type_json(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.to_ascii_lowercase().contains("json"))
}

/// Checks the version, the `X-SFDC-Session` session and the API allocation.
fn authenticate(state: &SimState, params: &HashMap<String, String>, headers: &HeaderMap) -> Result1<Call> {
    let json = content_type_json(headers);
    let version = params.get("version").map(String::as_str).unwrap_or("");
    let major = version.strip_suffix(".0").and_then(|m| m.parse::<u32>().ok());
    if !major.is_some_and(|m| (MIN_VERSION..=MAX_VERSION).contains(&m)) {
        return Err(Bulk1Error::new("InvalidVersion", format!("Invalid api version specified on URL: {version}")).in_json(json));
    }
    let now = state.now_millis();
    let token = headers.get("X-SFDC-Session").and_then(|v| v.to_str().ok()).map(str::trim).unwrap_or("");
    let session =
        state.auth.validate(token, now).ok_or_else(|| Bulk1Error::new("InvalidSessionId", "Invalid session id").in_json(json))?;
    let usage = state
        .usage
        .try_consume(now)
        .map_err(|_| Bulk1Error::new("ExceededQuota", "TotalRequests Limit exceeded.").in_json(json))?;
    Ok(Call { session, version: version.to_owned(), json, body_json: json, usage })
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/services/async/{version}/job", post(create_job))
        .route("/services/async/{version}/job/{job}", get(job_info).post(update_job))
        .route("/services/async/{version}/job/{job}/batch", get(batch_list).post(add_batch))
        .route("/services/async/{version}/job/{job}/batch/{batch}", get(batch_info))
        .route("/services/async/{version}/job/{job}/batch/{batch}/request", get(batch_request))
        .route("/services/async/{version}/job/{job}/batch/{batch}/result", get(results::result_list))
        .route("/services/async/{version}/job/{job}/batch/{batch}/result/{result}", get(results::result))
}

type Params = Path<HashMap<String, String>>;

/// Reads a `jobInfo` body in XML or JSON (as its `Content-Type` says) as field → text.
fn job_fields(call: &Call, body: &[u8]) -> Result1<HashMap<String, String>> {
    let err = |code, message: String| Bulk1Error::new(code, message).in_json(call.json);
    let text = std::str::from_utf8(body).map_err(|_| err("InvalidXML", "Request body is not UTF-8".to_owned()))?;
    if call.body_json {
        let v: J = serde_json::from_str(text).map_err(|e| err("InvalidJob", format!("Invalid JSON: {e}")))?;
        let map = v.as_object().ok_or_else(|| err("InvalidJob", "Expected a JSON object".to_owned()))?;
        return Ok(map.iter().map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_owned))).collect());
    }
    xml::parse_flat(text, "jobInfo").map_err(|e| err("InvalidXML", e.to_string()))
}

/// Parses `Sforce-Enable-PKChunking` (`true`, `false`, `[true; ]chunkSize=N[; parent=…; startRow=…]`).
fn chunking(headers: &HeaderMap) -> Result<Option<usize>, String> {
    let Some(v) = headers.get("Sforce-Enable-PKChunking").and_then(|v| v.to_str().ok()) else { return Ok(None) };
    let v = v.trim();
    if v.eq_ignore_ascii_case("false") {
        return Ok(None);
    }
    if v.eq_ignore_ascii_case("true") {
        return Ok(Some(DEFAULT_CHUNK_SIZE));
    }
    let mut size = DEFAULT_CHUNK_SIZE;
    // Salesforce also takes `true` followed by options (tap-salesforce sends
    // `true; chunkSize=100000`).
    for part in v.split(';').filter(|p| !p.trim().eq_ignore_ascii_case("true")) {
        let (k, val) = part.split_once('=').ok_or_else(|| format!("Invalid Sforce-Enable-PKChunking header: {v}"))?;
        if k.trim().eq_ignore_ascii_case("chunkSize") {
            size = val.trim().parse::<usize>().map_err(|_| format!("Invalid chunkSize: {}", val.trim()))?;
            if size == 0 || size > MAX_CHUNK_SIZE {
                return Err(format!("The chunkSize must be between 1 and {MAX_CHUNK_SIZE}: {size}"));
            }
        }
    }
    Ok(Some(size))
}

async fn create_job(
    State(state): State<AppState>,
    Path(params): Params,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Result1<Response> {
    let call = authenticate(&state, &params, &headers)?;
    let err = |code, msg: String| Bulk1Error::new(code, msg).in_json(call.json);
    let f = job_fields(&call, &body)?;
    let query_all = match f.get("operation").map(String::as_str) {
        Some("query") => false,
        Some("queryAll") => true,
        Some(op @ ("insert" | "update" | "upsert" | "delete" | "hardDelete")) => {
            return Err(err(
                "FeatureNotEnabled",
                format!("Bulk API 1.0 {op} jobs are not available in this org; use Bulk API 2.0 ingest"),
            ));
        }
        Some(op) => return Err(err("InvalidJob", format!("Invalid operation: {op}"))),
        None => return Err(err("InvalidJob", "Operation must be specified".to_owned())),
    };
    let content_type = match f.get("contentType").map(String::as_str) {
        Some("CSV") => ContentType::Csv,
        Some("JSON") => ContentType::Json,
        Some("XML") | None => ContentType::Xml,
        Some(other) => return Err(err("InvalidJob", format!("Unsupported content type for a query job: {other}"))),
    };
    let chunk_size = chunking(&headers).map_err(|m| err("InvalidJob", m))?;
    let object_name = f.get("object").cloned().unwrap_or_default();
    let (object, instance, now) = {
        let org = state.org.read();
        let table = org.table(&object_name).ok_or_else(|| err("InvalidJob", format!("Unable to find object: {object_name}")))?;
        if !table.def.flags.bulk_queryable {
            return Err(err("InvalidEntity", format!("Entity '{}' is not supported by the Bulk API.", table.def.name)));
        }
        (table.def.name.clone(), org.instance.clone(), org.stamp_millis())
    };
    let job = Arc::new(Bulk1Job {
        id: state.bulk1_jobs.job_ids.next(bulk::JOB_PREFIX, &instance),
        query_all,
        object,
        content_type,
        created_by: call.session.user_id,
        created_millis: now,
        api_version: call.version.clone(),
        chunk_size,
        inner: Mutex::new(JobInner { state: "Open", modstamp: now, batches: Vec::new() }),
    });
    state.bulk1_jobs.jobs.lock().insert(job.id, job.clone());
    tracing::info!(job = %job.id, object = %job.object, "bulk 1.0 query job created");
    Ok(call.respond(StatusCode::CREATED, job_json(&job), "jobInfo"))
}

/// Finds the job of the URL; from here on the job's content type decides the response format.
fn find_job(state: &SimState, call: &mut Call, params: &HashMap<String, String>) -> Result1<Arc<Bulk1Job>> {
    let id = params.get("job").map(String::as_str).unwrap_or("");
    let job = SfId::parse(id)
        .ok()
        .and_then(|id| state.bulk1_jobs.jobs.lock().get(&id).cloned())
        .ok_or_else(|| Bulk1Error::new("InvalidJob", format!("Unable to find job with id: {id}")).in_json(call.json))?;
    call.json = job.content_type == ContentType::Json;
    Ok(job)
}

fn find_batch(job: &Bulk1Job, call: &Call, params: &HashMap<String, String>) -> Result1<Arc<Batch>> {
    let id = params.get("batch").map(String::as_str).unwrap_or("");
    let parsed = SfId::parse(id).ok();
    job.inner
        .lock()
        .batches
        .iter()
        .find(|b| Some(b.id) == parsed)
        .cloned()
        .ok_or_else(|| Bulk1Error::new("InvalidBatch", format!("Unable to find batch for id: {id}")).in_json(call.json))
}

fn job_json(job: &Bulk1Job) -> J {
    let inner = job.inner.lock();
    let count = |s: &str| inner.batches.iter().filter(|b| b.inner.lock().state == s).count();
    let processed: usize = inner.batches.iter().map(|b| b.inner.lock().rows.len()).sum();
    let total_ms: u64 = inner.batches.iter().map(|b| b.inner.lock().total_ms).sum();
    json!({
        "id": job.id.as_str(),
        "operation": if job.query_all { "queryAll" } else { "query" },
        "object": job.object,
        "createdById": job.created_by.as_str(),
        "createdDate": format_datetime_bulk(job.created_millis),
        "systemModstamp": format_datetime_bulk(inner.modstamp),
        "state": inner.state,
        "concurrencyMode": "Parallel",
        "contentType": job.content_type.name(),
        "numberBatchesQueued": count("Queued"),
        "numberBatchesInProgress": count("InProgress"),
        "numberBatchesCompleted": count("Completed"),
        "numberBatchesFailed": count("Failed"),
        "numberBatchesTotal": inner.batches.len(),
        "numberRecordsProcessed": processed,
        "numberRetries": 0,
        "apiVersion": api_version_number(&job.api_version),
        "numberRecordsFailed": 0,
        "totalProcessingTime": total_ms,
        "apiActiveProcessingTime": total_ms,
        "apexProcessingTime": 0,
    })
}

fn batch_json(batch: &Batch) -> J {
    let inner = batch.inner.lock();
    let mut m = Map::new();
    m.insert("id".into(), json!(batch.id.as_str()));
    m.insert("jobId".into(), json!(batch.job_id.as_str()));
    m.insert("state".into(), json!(inner.state));
    if let Some(msg) = &inner.state_message {
        m.insert("stateMessage".into(), json!(msg));
    }
    m.insert("createdDate".into(), json!(format_datetime_bulk(batch.created_millis)));
    m.insert("systemModstamp".into(), json!(format_datetime_bulk(inner.modstamp)));
    m.insert("numberRecordsProcessed".into(), json!(inner.rows.len()));
    m.insert("numberRecordsFailed".into(), json!(0));
    m.insert("totalProcessingTime".into(), json!(inner.total_ms));
    m.insert("apiActiveProcessingTime".into(), json!(inner.total_ms));
    m.insert("apexProcessingTime".into(), json!(0));
    J::Object(m)
}

async fn job_info(State(state): State<AppState>, Path(params): Params, headers: HeaderMap) -> Result1<Response> {
    let mut call = authenticate(&state, &params, &headers)?;
    let job = find_job(&state, &mut call, &params)?;
    Ok(call.respond(StatusCode::OK, job_json(&job), "jobInfo"))
}

async fn update_job(
    State(state): State<AppState>,
    Path(params): Params,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Result1<Response> {
    let mut call = authenticate(&state, &params, &headers)?;
    let job = find_job(&state, &mut call, &params)?;
    let f = job_fields(&call, &body)?;
    let now = state.stamp_millis();
    {
        let mut inner = job.inner.lock();
        let wanted = f.get("state").map(String::as_str).unwrap_or("");
        match (wanted, inner.state) {
            ("Closed", "Open") => inner.state = "Closed",
            ("Aborted", "Open" | "Closed") => {
                inner.state = "Aborted";
                for b in &inner.batches {
                    let mut bi = b.inner.lock();
                    if bi.state == "Queued" {
                        bi.state = "NotProcessed";
                        bi.modstamp = now;
                    }
                }
            }
            (w, current) => {
                return Err(Bulk1Error::new("InvalidJobState", format!("Invalid state transition from {current} to {w}"))
                    .in_json(call.json));
            }
        }
        inner.modstamp = now;
    }
    Ok(call.respond(StatusCode::OK, job_json(&job), "jobInfo"))
}

struct NewBatch {
    soql: String,
    request: String,
    range: Option<(Option<SfId>, Option<SfId>)>,
}

fn new_batch(state: &SimState, job: &Bulk1Job, spec: NewBatch, now: i64, instance: &str) -> Arc<Batch> {
    Arc::new(Batch {
        id: state.bulk1_jobs.batch_ids.next(bulk::BATCH_PREFIX, instance),
        job_id: job.id,
        created_millis: now,
        soql: spec.soql,
        request: spec.request,
        range: spec.range,
        inner: Mutex::new(BatchInner {
            state: "Queued",
            state_message: None,
            modstamp: now,
            query: None,
            rows: Arc::new(Vec::new()),
            result_id: None,
            total_ms: 0,
        }),
    })
}

async fn add_batch(
    State(state): State<AppState>,
    Path(params): Params,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Result1<Response> {
    let mut call = authenticate(&state, &params, &headers)?;
    let job = find_job(&state, &mut call, &params)?;
    let soql = String::from_utf8(body.to_vec())
        .map_err(|_| Bulk1Error::new("InvalidBatch", "The query is not UTF-8").in_json(call.json))?;
    let (now, instance) = {
        let org = state.org.read();
        (org.stamp_millis(), org.instance.clone())
    };
    let soql = soql.trim().to_owned();
    let batch = new_batch(&state, &job, NewBatch { request: soql.clone(), soql, range: None }, now, &instance);
    {
        let mut inner = job.inner.lock();
        if inner.state != "Open" {
            return Err(Bulk1Error::new(
                "InvalidJobState",
                format!("Batches can be added only to an Open job; this job is {}", inner.state),
            )
            .in_json(call.json));
        }
        inner.batches.push(batch.clone());
        inner.modstamp = now;
    }
    state.bulk_batches.record(state.now_millis(), 1);
    tokio::spawn(run_batch(state.clone(), job, batch.clone()));
    Ok(call.respond(StatusCode::CREATED, batch_json(&batch), "batchInfo"))
}

fn set_batch(batch: &Batch, state: &'static str, message: Option<String>, now: i64) {
    let mut inner = batch.inner.lock();
    inner.state = state;
    inner.state_message = message;
    inner.modstamp = now;
}

/// Runs one batch: compiles and checks the query, splits it into PK chunks or executes it.
async fn run_batch(state: AppState, job: Arc<Bulk1Job>, batch: Arc<Batch>) {
    tokio::task::yield_now().await;
    let started = std::time::Instant::now();
    if job.inner.lock().state == "Aborted" || batch.inner.lock().state != "Queued" {
        return;
    }
    set_batch(&batch, "InProgress", None, state.stamp_millis());
    tokio::task::yield_now().await;
    let failed = |message: String| set_batch(&batch, "Failed", Some(message), state.stamp_millis());
    let prepared = {
        let org = state.org.read();
        prepare(&org, &job, &batch)
    };
    let query = match prepared {
        Ok(q) => Arc::new(q),
        Err(message) => return failed(message),
    };
    if batch.range.is_none()
        && let Some(size) = job.chunk_size
    {
        return split_into_chunks(&state, &job, &batch, size);
    }
    if state.faults.bulk_job_fails() {
        return failed("InternalServerError : Retried more than 15 times".to_owned());
    }
    let executed = {
        let org = state.org.read();
        query.execute(&org, job.query_all).map(|out| match &batch.range {
            None => out.rows,
            Some((low, high)) => {
                let table = org.table(&job.object).expect("the job's object exists");
                out.rows
                    .into_iter()
                    .filter(|r| {
                        let id = table.id_of(r);
                        low.is_none_or(|l| id >= l) && high.is_none_or(|h| id < h)
                    })
                    .collect()
            }
        })
    };
    match executed {
        Ok(rows) => {
            let result_id = state.bulk1_jobs.result_ids.next(bulk::RESULT_PREFIX, &state.org.read().instance);
            let now = state.stamp_millis();
            let mut inner = batch.inner.lock();
            if inner.state != "InProgress" {
                return;
            }
            inner.rows = Arc::new(rows);
            inner.query = Some(query);
            inner.result_id = Some(result_id);
            inner.total_ms = bulk::elapsed_ms(started);
            inner.state = "Completed";
            inner.modstamp = now;
        }
        Err(e) => failed(format!("InvalidBatch : Failed to process query: {}: {}", e.error_code, e.message)),
    }
}

/// Compiles the batch's SOQL and applies the Bulk API restrictions. The error is the batch's
/// `stateMessage`.
fn prepare(org: &crate::org::Org, job: &Bulk1Job, batch: &Batch) -> Result<SoqlQuery, String> {
    let failed = |detail: String| format!("InvalidBatch : Failed to process query: {detail}");
    let query = soql::compile(org, &batch.soql).map_err(|e| failed(format!("{}: {}", e.error_code, e.message)))?;
    if !query.object().eq_ignore_ascii_case(&job.object) {
        return Err(failed(format!("INVALID_TYPE: The query is on {}, but the job's object is {}", query.object(), job.object)));
    }
    if let Some(reason) = bulk::unsupported_reason(org, &query) {
        return Err(failed(reason));
    }
    if job.chunk_size.is_some() && !org.table(&job.object).is_some_and(|t| t.def.flags.pk_chunking_supported) {
        return Err(format!("InvalidBatch : Unsupported entity for PK chunking: {}", job.object));
    }
    Ok(query)
}

/// Replaces `batch` by one batch per `size` Ids of the object (in Id order, deleted records
/// included, as Salesforce chunks on the primary key index).
fn split_into_chunks(state: &AppState, job: &Arc<Bulk1Job>, batch: &Arc<Batch>, size: usize) {
    let (bounds, instance, now) = {
        let org = state.org.read();
        let table = org.table(&job.object).expect("the job's object exists");
        let mut ids: Vec<SfId> = table.rows().iter().map(|r| table.id_of(r)).collect();
        ids.sort_unstable();
        let bounds: Vec<SfId> = ids.iter().step_by(size).copied().collect();
        (bounds, org.instance.clone(), org.stamp_millis())
    };
    let mut chunks = Vec::with_capacity(bounds.len().max(1));
    if bounds.is_empty() {
        let spec = NewBatch { soql: batch.soql.clone(), request: batch.request.clone(), range: Some((None, None)) };
        chunks.push(new_batch(state, job, spec, now, &instance));
    }
    for (i, low) in bounds.iter().enumerate() {
        let high = bounds.get(i + 1).copied();
        let mut request = format!("{} WHERE Id >= '{}'", batch.soql, low.short());
        if let Some(h) = high {
            request.push_str(&format!(" AND Id < '{}'", h.short()));
        }
        let spec = NewBatch { soql: batch.soql.clone(), request, range: Some((Some(*low), high)) };
        chunks.push(new_batch(state, job, spec, now, &instance));
    }
    job.inner.lock().batches.extend(chunks.iter().cloned());
    // Each chunk is a batch of its own against the daily allocation, as Salesforce counts them.
    state.bulk_batches.record(state.now_millis(), chunks.len() as u64);
    set_batch(batch, "NotProcessed", None, now);
    tracing::info!(job = %job.id, chunks = chunks.len(), "bulk 1.0 batch split by PK chunking");
    for chunk in chunks {
        tokio::spawn(run_batch(state.clone(), job.clone(), chunk));
    }
}

async fn batch_info(State(state): State<AppState>, Path(params): Params, headers: HeaderMap) -> Result1<Response> {
    let mut call = authenticate(&state, &params, &headers)?;
    let job = find_job(&state, &mut call, &params)?;
    let batch = find_batch(&job, &call, &params)?;
    Ok(call.respond(StatusCode::OK, batch_json(&batch), "batchInfo"))
}

async fn batch_list(State(state): State<AppState>, Path(params): Params, headers: HeaderMap) -> Result1<Response> {
    let mut call = authenticate(&state, &params, &headers)?;
    let job = find_job(&state, &mut call, &params)?;
    let batches: Vec<Arc<Batch>> = job.inner.lock().batches.clone();
    let infos: Vec<J> = batches.iter().map(|b| batch_json(b)).collect();
    if call.json {
        return Ok(call.respond(StatusCode::OK, json!({ "batchInfo": infos }), "batchInfoList"));
    }
    let mut out = String::with_capacity(512 * infos.len() + 128);
    xml::open_root(&mut out, "batchInfoList");
    for info in infos.iter().filter_map(J::as_object) {
        out.push_str(" <batchInfo>\n");
        for (k, v) in info {
            let text = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
            out.push(' ');
            xml::element(&mut out, k, &text);
        }
        out.push_str(" </batchInfo>\n");
    }
    out.push_str("</batchInfoList>");
    Ok(call.finish(body_response(StatusCode::OK, false, out)))
}

async fn batch_request(State(state): State<AppState>, Path(params): Params, headers: HeaderMap) -> Result1<Response> {
    let mut call = authenticate(&state, &params, &headers)?;
    let job = find_job(&state, &mut call, &params)?;
    let batch = find_batch(&job, &call, &params)?;
    let mut resp = (StatusCode::OK, batch.request.clone()).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=UTF-8"));
    Ok(call.finish(resp))
}
