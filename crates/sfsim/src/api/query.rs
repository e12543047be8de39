//! The REST query resources: `GET /query?q=…`, `GET /queryAll?q=…` and the continuation
//! `GET /query/<locator>-<offset>`.
//!
//! A query is evaluated once; its result rows (shared `Row`s, so a snapshot costs a pointer
//! per row) and the compiled query are kept in a cursor, and each page is rendered on request
//! under a short read lock on the org. Cursors live two days of org-clock time.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use chrono::Duration;
use parking_lot::Mutex;
use tidemark_core::SfId;

use super::error::JSON_UTF8;
use super::{ApiError, ApiVersion, AppState};
use crate::org::Org;
use crate::row::Row;
use crate::soql::{self, SoqlQuery};

/// Records per page unless `Sforce-Query-Options: batchSize=N` asks otherwise.
pub const DEFAULT_BATCH_SIZE: usize = 2_000;
/// Smallest batch size Salesforce honours; smaller requests get this.
pub const MIN_BATCH_SIZE: usize = 200;
/// How long a query locator stays valid (org clock).
pub const CURSOR_LIFETIME_DAYS: i64 = 2;
/// Live cursors kept; beyond this the oldest are dropped.
pub const MAX_CURSORS: usize = 2_000;

/// An evaluated query whose remaining pages can still be fetched.
#[derive(Debug)]
struct Cursor {
    query: SoqlQuery,
    rows: Vec<Row>,
    batch_size: usize,
    created_millis: i64,
}

#[derive(Debug, Default)]
struct CursorMap {
    next: u64,
    by_locator: HashMap<String, Arc<Cursor>>,
    /// Locators in creation order, for eviction.
    order: VecDeque<String>,
}

/// The live query cursors of the org.
#[derive(Debug, Default)]
pub struct CursorStore {
    inner: Mutex<CursorMap>,
}

impl CursorStore {
    /// Stores a cursor and returns its locator (an id with the `01g` key prefix, as Salesforce's).
    fn insert(&self, instance: &str, cursor: Cursor) -> String {
        let mut map = self.inner.lock();
        map.next += 1;
        let locator = SfId::from_parts("01g", instance, map.next).as_str().to_owned();
        map.by_locator.insert(locator.clone(), Arc::new(cursor));
        map.order.push_back(locator.clone());
        while map.order.len() > MAX_CURSORS {
            if let Some(old) = map.order.pop_front() {
                map.by_locator.remove(&old);
            }
        }
        locator
    }

    /// The cursor for `locator` if it exists and has not expired at `now_millis`.
    fn get(&self, locator: &str, now_millis: i64) -> Option<Arc<Cursor>> {
        let mut map = self.inner.lock();
        let cursor = map.by_locator.get(locator)?.clone();
        if now_millis - cursor.created_millis > Duration::days(CURSOR_LIFETIME_DAYS).num_milliseconds() {
            map.by_locator.remove(locator);
            map.order.retain(|l| l != locator);
            return None;
        }
        Some(cursor)
    }

    /// Live cursor count (for tests and the admin API).
    pub fn len(&self) -> usize {
        self.inner.lock().by_locator.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/query", get(query)).route("/queryAll", get(query_all)).route("/query/{locator}", get(query_more))
}

async fn query(
    State(state): State<AppState>,
    Extension(version): Extension<ApiVersion>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    run(&state, &version, &params, &headers, false).unwrap_or_else(IntoResponse::into_response)
}

async fn query_all(
    State(state): State<AppState>,
    Extension(version): Extension<ApiVersion>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    run(&state, &version, &params, &headers, true).unwrap_or_else(IntoResponse::into_response)
}

/// The batch size asked for in `Sforce-Query-Options`, clamped to what Salesforce honours.
fn batch_size(headers: &HeaderMap) -> Option<usize> {
    let options = headers.get("Sforce-Query-Options")?.to_str().ok()?;
    options.split(',').find_map(|opt| {
        let (k, v) = opt.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case("batchSize") {
            return None;
        }
        let n: usize = v.trim().parse().ok()?;
        Some(n.clamp(MIN_BATCH_SIZE, DEFAULT_BATCH_SIZE))
    })
}

fn run(
    state: &AppState,
    version: &ApiVersion,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
    include_deleted: bool,
) -> Result<Response, ApiError> {
    let soql = params
        .get("q")
        .filter(|q| !q.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request("MALFORMED_QUERY", "A query string has to be specified"))?;
    let batch = batch_size(headers).unwrap_or(DEFAULT_BATCH_SIZE);
    let timeout_rows = state.faults.config().query_timeout_rows;
    let org = state.org.read();
    let query = soql::compile(&org, soql).map_err(|e| e.to_api_error())?;
    if timeout_rows > 0 && !query.has_where() && org.table(query.object()).is_some_and(|t| t.len() as u64 > timeout_rows) {
        return Err(ApiError::bad_request("QUERY_TIMEOUT", "Your query request was running for too long."));
    }
    let output = query.execute(&org, include_deleted).map_err(|e| e.to_api_error())?;
    tracing::debug!(object = query.object(), rows = output.total_size, include_deleted, "query evaluated");
    if query.is_count() {
        return Ok(page_response(&org, &version.0, &query, &[], output.total_size, None));
    }
    let total = output.total_size;
    let first_len = total.min(batch);
    if first_len == total {
        return Ok(page_response(&org, &version.0, &query, &output.rows, total, None));
    }
    let now = org.now_millis();
    let instance = org.instance.clone();
    let first_page: Vec<Row> = output.rows[..first_len].to_vec();
    let cursor = Cursor { query: query.clone(), rows: output.rows, batch_size: batch, created_millis: now };
    let locator = state.cursors.insert(&instance, cursor);
    let next = format!("/services/data/v{}/query/{locator}-{first_len}", version.0);
    Ok(page_response(&org, &version.0, &query, &first_page, total, Some(&next)))
}

async fn query_more(
    State(state): State<AppState>,
    Extension(version): Extension<ApiVersion>,
    Path(params): Path<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let invalid = || ApiError::bad_request("INVALID_QUERY_LOCATOR", "invalid query locator").into_response();
    let Some(raw) = params.get("locator") else { return invalid() };
    let (locator, offset) = match raw.rsplit_once('-') {
        Some((l, o)) => match o.parse::<usize>() {
            Ok(o) => (l, o),
            Err(_) => return invalid(),
        },
        None => (raw.as_str(), 0),
    };
    let now = state.now_millis();
    let Some(cursor) = state.cursors.get(locator, now) else { return invalid() };
    if offset > cursor.rows.len() {
        return invalid();
    }
    let batch = batch_size(&headers).unwrap_or(cursor.batch_size);
    let end = (offset + batch).min(cursor.rows.len());
    let next = (end < cursor.rows.len()).then(|| format!("/services/data/v{}/query/{locator}-{end}", version.0));
    let org = state.org.read();
    page_response(&org, &version.0, &cursor.query, &cursor.rows[offset..end], cursor.rows.len(), next.as_deref())
}

/// `{"totalSize":…,"done":…,["nextRecordsUrl":…,]"records":[…]}` in Salesforce's key order,
/// serialised straight into the body.
fn page_response(org: &Org, version: &str, query: &SoqlQuery, rows: &[Row], total: usize, next: Option<&str>) -> Response {
    let mut body = Vec::with_capacity(64 + rows.len() * 256);
    body.extend_from_slice(format!("{{\"totalSize\":{total},\"done\":{}", next.is_none()).as_bytes());
    if let Some(next) = next {
        body.extend_from_slice(b",\"nextRecordsUrl\":");
        // A URL string cannot fail to serialise.
        let _ = serde_json::to_writer(&mut body, next);
    }
    body.extend_from_slice(b",\"records\":[");
    query.write_records_json(org, version, rows, &mut body);
    body.extend_from_slice(b"]}");
    ([(http::header::CONTENT_TYPE, JSON_UTF8)], body).into_response()
}
