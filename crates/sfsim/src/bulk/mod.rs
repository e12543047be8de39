//! What Bulk API 2.0 (query and ingest) and Bulk API 1.0 query jobs share: job ids, job states,
//! CSV formats and parsing, result paging locators, gzip, and the Bulk limits on SOQL.

pub mod csv;
pub mod ingest;
pub mod results;
pub mod xml;

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use tidemark_core::SfId;

use crate::org::Org;
use crate::soql::SoqlQuery;

/// Key prefix of Bulk jobs (`750`) and Bulk 1.0 batches (`751`) and results (`752`).
pub const JOB_PREFIX: &str = "750";
pub const BATCH_PREFIX: &str = "751";
pub const RESULT_PREFIX: &str = "752";

/// Generates job/batch ids. Each store owns one generator with its own `base`, so ids from
/// different stores (all `750…`) never collide while staying deterministic per server.
#[derive(Debug)]
pub struct IdGen {
    next: AtomicU64,
}

impl IdGen {
    pub fn new(base: u64) -> IdGen {
        IdGen { next: AtomicU64::new(base) }
    }

    pub fn next(&self, prefix: &str, instance: &str) -> SfId {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        SfId::from_parts(prefix, instance, n)
    }
}

/// Bulk API 2.0 job states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Open,
    UploadComplete,
    InProgress,
    JobComplete,
    Failed,
    Aborted,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Open => "Open",
            JobState::UploadComplete => "UploadComplete",
            JobState::InProgress => "InProgress",
            JobState::JobComplete => "JobComplete",
            JobState::Failed => "Failed",
            JobState::Aborted => "Aborted",
        }
    }

    /// Whether processing is over (the job can be deleted, its results read).
    pub fn is_terminal(self) -> bool {
        matches!(self, JobState::JobComplete | JobState::Failed | JobState::Aborted)
    }
}

/// `columnDelimiter` of a Bulk 2.0 job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColumnDelimiter {
    Backquote,
    Caret,
    #[default]
    Comma,
    Pipe,
    Semicolon,
    Tab,
}

impl ColumnDelimiter {
    pub fn parse(s: &str) -> Option<ColumnDelimiter> {
        Some(match s {
            "BACKQUOTE" => ColumnDelimiter::Backquote,
            "CARET" => ColumnDelimiter::Caret,
            "COMMA" => ColumnDelimiter::Comma,
            "PIPE" => ColumnDelimiter::Pipe,
            "SEMICOLON" => ColumnDelimiter::Semicolon,
            "TAB" => ColumnDelimiter::Tab,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            ColumnDelimiter::Backquote => "BACKQUOTE",
            ColumnDelimiter::Caret => "CARET",
            ColumnDelimiter::Comma => "COMMA",
            ColumnDelimiter::Pipe => "PIPE",
            ColumnDelimiter::Semicolon => "SEMICOLON",
            ColumnDelimiter::Tab => "TAB",
        }
    }

    pub fn byte(self) -> u8 {
        match self {
            ColumnDelimiter::Backquote => b'`',
            ColumnDelimiter::Caret => b'^',
            ColumnDelimiter::Comma => b',',
            ColumnDelimiter::Pipe => b'|',
            ColumnDelimiter::Semicolon => b';',
            ColumnDelimiter::Tab => b'\t',
        }
    }
}

/// `lineEnding` of a Bulk 2.0 job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LineEnding {
    #[default]
    Lf,
    Crlf,
}

impl LineEnding {
    pub fn parse(s: &str) -> Option<LineEnding> {
        match s {
            "LF" => Some(LineEnding::Lf),
            "CRLF" => Some(LineEnding::Crlf),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            LineEnding::Lf => "LF",
            LineEnding::Crlf => "CRLF",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LineEnding::Lf => "\n",
            LineEnding::Crlf => "\r\n",
        }
    }
}

/// The CSV dialect of a job: delimiter and line ending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CsvFormat {
    pub delimiter: ColumnDelimiter,
    pub line_ending: LineEnding,
}

/// Result-set locators: opaque to clients, Salesforce-style (`MTAwMDA` is the offset `10000`
/// in unpadded base64).
pub mod locator {
    use super::*;

    pub fn encode(offset: usize) -> String {
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(offset.to_string())
    }

    pub fn decode(locator: &str) -> Option<usize> {
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD.decode(locator.trim_end_matches('=')).ok()?;
        std::str::from_utf8(&bytes).ok()?.parse().ok()
    }
}

/// Whether the client accepts a gzip-compressed body.
pub fn wants_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|enc| enc.split(';').next().is_some_and(|e| e.trim().eq_ignore_ascii_case("gzip")))
}

/// Gzip at the fastest level: results are large and the simulator must not be the bottleneck.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::with_capacity(data.len() / 4 + 64), flate2::Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

/// A 200 `text/csv` response, gzip-compressed when `compress`.
pub fn csv_response(body: String, compress: bool, extra: &[(&'static str, String)]) -> Response {
    let body = if compress { axum::body::Body::from(gzip(body.as_bytes())) } else { axum::body::Body::from(body) };
    csv_stream_response(body, compress, extra)
}

/// A 200 `text/csv` response streaming `body` (already gzip-encoded when `gzip`).
pub fn csv_stream_response(body: axum::body::Body, gzip: bool, extra: &[(&'static str, String)]) -> Response {
    let mut resp = (StatusCode::OK, body).into_response();
    if gzip {
        resp.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv"));
    for (name, value) in extra {
        if let Ok(v) = HeaderValue::from_str(value) {
            resp.headers_mut().insert(*name, v);
        }
    }
    resp
}

/// Why Bulk API (2.0 and 1.0) cannot run `query`, as `CODE: message`, if it cannot. Combines the
/// SOQL module's own verdict with the checks that only need the selected columns, so compound
/// fields and `COUNT()` are refused whatever SOQL implementation is behind the facade.
pub fn unsupported_reason(org: &Org, query: &SoqlQuery) -> Option<String> {
    if let Some(reason) = query.bulk_unsupported_reason(org) {
        return Some(reason);
    }
    if query.is_count() {
        return Some("FUNCTIONALITY_NOT_ENABLED: Aggregate queries are not supported in Bulk Query".to_owned());
    }
    let table = org.table(query.object())?;
    let compound = query.columns().iter().any(|c| table.def.field(c).is_some_and(|f| f.field_type.is_compound()));
    compound.then(|| "FUNCTIONALITY_NOT_ENABLED: Selecting compound data not supported in Bulk Query".to_owned())
}

/// Splits `CODE: message` into its parts (`None` when there is no upper-case code).
pub fn split_reason(reason: &str) -> Option<(&str, &str)> {
    let (code, message) = reason.split_once(": ")?;
    let is_code = !code.is_empty() && code.bytes().all(|b| b.is_ascii_uppercase() || b == b'_');
    is_code.then_some((code, message))
}

/// A switch that holds background job processing (admin and tests use it to observe and act on
/// jobs before they run, e.g. abort an `UploadComplete` query job).
#[derive(Debug)]
pub struct ProcessingGate(tokio::sync::watch::Sender<bool>);

impl Default for ProcessingGate {
    fn default() -> Self {
        ProcessingGate(tokio::sync::watch::channel(false).0)
    }
}

impl ProcessingGate {
    pub fn set_paused(&self, paused: bool) {
        self.0.send_replace(paused);
    }

    /// Waits until processing is not paused.
    pub async fn wait_open(&self) {
        let mut rx = self.0.subscribe();
        let _ = rx.wait_for(|paused| !*paused).await;
    }
}

/// Milliseconds since `start`, saturating.
/// Path parameters of the Bulk 2.0 job routes (`{id}`).
pub type JobParams = axum::extract::Path<std::collections::HashMap<String, String>>;

/// A 400 `INVALIDJOB` error (bad create or state-change request).
pub fn invalid_job(message: impl Into<String>) -> crate::api::ApiError {
    crate::api::ApiError::bad_request("INVALIDJOB", message)
}

/// Bulk 2.0 job lists return at most this many jobs per call (Behaviour 43).
pub const LIST_PAGE: usize = 1000;

/// One page of `GET /jobs/query` or `GET /jobs/ingest`: `done`, `records` and, while jobs
/// remain, `nextRecordsUrl` = `…/jobs/<resource>?queryLocator=<cursor>-<offset>`.
/// `query_locator` is the continuation's `queryLocator` parameter, if any.
pub fn job_list_page<T>(
    jobs: &[T],
    info: impl Fn(&T) -> serde_json::Value,
    query_locator: Option<&String>,
    list: JobList<'_>,
) -> Result<serde_json::Value, crate::api::ApiError> {
    let offset = match query_locator {
        None => 0,
        Some(loc) => loc
            .rsplit_once('-')
            .and_then(|(_, n)| n.parse::<usize>().ok())
            .ok_or_else(|| crate::api::ApiError::bad_request("INVALIDLOCATOR", format!("Invalid queryLocator: {loc}")))?,
    };
    let page: Vec<serde_json::Value> = jobs.iter().skip(offset).take(LIST_PAGE).map(info).collect();
    let next_offset = offset + page.len();
    let done = next_offset >= jobs.len();
    let mut body = serde_json::json!({ "done": done, "records": page });
    if !done {
        // A fixed, valid cursor id per resource: listing is stateless, only the offset matters.
        let cursor = SfId::from_parts("01g", list.instance, list.cursor_seq);
        body["nextRecordsUrl"] = serde_json::json!(format!(
            "/services/data/v{}/jobs/{}?queryLocator={}-{next_offset}",
            list.version,
            list.resource,
            cursor.as_str()
        ));
    }
    Ok(body)
}

/// Which job list [`job_list_page`] renders.
#[derive(Debug, Clone, Copy)]
pub struct JobList<'a> {
    /// `query` or `ingest`.
    pub resource: &'a str,
    pub version: &'a str,
    pub instance: &'a str,
    pub cursor_seq: u64,
}

pub fn elapsed_ms(start: std::time::Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locators_look_like_salesforce_ones_and_round_trip() {
        assert_eq!(locator::encode(10000), "MTAwMDA");
        assert_eq!(locator::decode("MTAwMDA"), Some(10000));
        assert_eq!(locator::decode("MjAwMDAw"), Some(200000));
        assert_eq!(locator::decode("not a locator!"), None);
    }

    #[test]
    fn gzip_detection_and_reasons() {
        let mut h = HeaderMap::new();
        assert!(!wants_gzip(&h));
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("deflate, gzip;q=1.0"));
        assert!(wants_gzip(&h));
        assert_eq!(
            split_reason("FUNCTIONALITY_NOT_ENABLED: Selecting compound data"),
            Some(("FUNCTIONALITY_NOT_ENABLED", "Selecting compound data"))
        );
        assert_eq!(split_reason("no code here: x"), None);
    }

    #[test]
    fn ids_are_distinct_per_generator_base() {
        let a = IdGen::new(1);
        let b = IdGen::new(1 << 30);
        let x = a.next(JOB_PREFIX, "Dn");
        assert!(x.as_str().starts_with("750Dn"));
        assert_ne!(x, b.next(JOB_PREFIX, "Dn"));
        assert_ne!(a.next(JOB_PREFIX, "Dn"), x);
    }
}
