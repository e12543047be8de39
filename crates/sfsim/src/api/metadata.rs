//! Discovery and metadata resources: versions, resources by version, limits, describeGlobal,
//! sObject describe and basic info, getUpdated and getDeleted.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use chrono::Duration;
use serde::Deserialize;
use serde_json::{Value as J, json};
use tidemark_core::SfId;

use super::error::json_ok;
use super::{ApiError, ApiVersion, AppState, MAX_VERSION, MIN_VERSION, release_label};
use crate::org::RECYCLE_BIN_DAYS;
use crate::value::{format_datetime_rest, parse_datetime};

/// getUpdated/getDeleted refuse windows that would list more ids than this.
const MAX_IDS: usize = 600_000;

/// Routes that need no session: the versions list.
pub fn unauthenticated_routes() -> Router<AppState> {
    Router::new().route("/services/data", get(versions))
}

/// Routes under `/services/data/vNN.N`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(resources))
        .route("/limits", get(limits))
        .route("/limits/recordCount", get(record_count))
        .route("/sobjects", get(describe_global))
        .route("/sobjects/{object}/describe", get(describe))
        .route("/sobjects/{object}/updated", get(get_updated))
        .route("/sobjects/{object}/deleted", get(get_deleted))
}

async fn versions(State(state): State<AppState>) -> Response {
    let _ = &state;
    let list: Vec<J> = (MIN_VERSION..=MAX_VERSION)
        .map(|m| json!({ "label": release_label(m), "url": format!("/services/data/v{m}.0"), "version": format!("{m}.0") }))
        .collect();
    json_ok(&J::Array(list))
}

pub(super) async fn resources(State(state): State<AppState>, Extension(v): Extension<ApiVersion>) -> Response {
    let org = state.org.read();
    let base = format!("/services/data/v{}", v.0);
    let mut out = serde_json::Map::new();
    for name in ["tooling", "metadata", "folders", "tabs", "appMenu", "quickActions", "queryAll", "analytics", "search"] {
        out.insert(name.to_owned(), J::String(format!("{base}/{name}")));
    }
    out.insert("identity".to_owned(), J::String(format!("{}/id/{}/{}", state.base_url(), org.org_id, org.integration_user)));
    for name in [
        "composite",
        "theme",
        "recent",
        "connect",
        "limits",
        "process",
        "query",
        "jobs",
        "async-queries",
        "sobjects",
        "actions",
        "support",
    ] {
        out.insert(name.to_owned(), J::String(format!("{base}/{name}")));
    }
    json_ok(&J::Object(out))
}

async fn limits(State(state): State<AppState>) -> Response {
    let now = state.now_millis();
    let (used, max) = state.usage.snapshot(now);
    let queued_jobs = state.bulk2_query_jobs_count_today(now);
    let (batches_used, batches_max) = state.bulk_batches.snapshot(now);
    let pair = |max: u64, remaining: u64| json!({ "Max": max, "Remaining": remaining });
    json_ok(&json!({
        "ConcurrentAsyncGetReportInstances": pair(200, 200),
        "ConcurrentSyncReportRuns": pair(20, 20),
        "DailyApiRequests": pair(max, max.saturating_sub(used)),
        "DailyAsyncApexExecutions": pair(250_000, 250_000),
        "DailyBulkApiBatches": pair(batches_max, batches_max.saturating_sub(batches_used)),
        "DailyBulkV2QueryFileStorageMB": pair(976_562, 976_562),
        "DailyBulkV2QueryJobs": pair(10_000, 10_000u64.saturating_sub(queued_jobs)),
        "DailyGenericStreamingApiEvents": pair(10_000, 10_000),
        "DailyStreamingApiEvents": pair(1_000_000, 1_000_000),
        "DailyWorkflowEmails": pair(2_000_000, 2_000_000),
        "DataStorageMB": pair(1_024, 1_024),
        "FileStorageMB": pair(10_240, 10_240),
        "HourlyTimeBasedWorkflow": pair(1_000, 1_000),
        "MassEmail": pair(5_000, 5_000),
        "SingleEmail": pair(5_000, 5_000),
        "StreamingApiConcurrentClients": pair(2_000, 2_000),
    }))
}

impl super::SimState {
    /// Bulk 2.0 query jobs created in the last 24 h (for `/limits`).
    fn bulk2_query_jobs_count_today(&self, now: i64) -> u64 {
        self.bulk2_query_jobs.jobs_created_since(now - 86_400_000)
    }
}

#[derive(Debug, Deserialize)]
struct RecordCountQuery {
    #[serde(rename = "sObjects")]
    sobjects: Option<String>,
}

/// `limits/recordCount?sObjects=A,B`: live record counts (the storage estimate tools use to
/// size objects). Objects without rows are left out, as Salesforce does; without `sObjects`
/// every object with rows is listed.
async fn record_count(State(state): State<AppState>, Query(q): Query<RecordCountQuery>) -> Response {
    let org = state.org.read();
    let wanted: Option<Vec<String>> =
        q.sobjects.map(|s| s.split(',').map(|n| n.trim().to_ascii_lowercase()).filter(|n| !n.is_empty()).collect());
    let entries: Vec<J> = org
        .tables()
        .iter()
        .filter(|t| wanted.as_ref().is_none_or(|w| w.contains(&t.def.name.to_ascii_lowercase())))
        .map(|t| (t.def.name.clone(), t.live_count()))
        .filter(|(_, n)| *n > 0)
        .map(|(name, count)| json!({ "count": count, "name": name }))
        .collect();
    json_ok(&json!({ "sObjects": entries }))
}

async fn describe_global(State(state): State<AppState>, Extension(v): Extension<ApiVersion>) -> Response {
    let org = state.org.read();
    let sobjects: Vec<J> = org.tables().iter().map(|t| t.def.describe_global_entry(&v.0)).collect();
    json_ok(&json!({ "encoding": "UTF-8", "maxBatchSize": 200, "sobjects": sobjects }))
}

async fn describe(
    State(state): State<AppState>,
    Extension(v): Extension<ApiVersion>,
    Path(params): Path<std::collections::HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let org = state.org.read();
    let name = params.get("object").map(String::as_str).unwrap_or_default();
    let table = org.table(name).ok_or_else(ApiError::not_found)?;
    let mut children = Vec::new();
    for other in org.tables() {
        for f in &other.def.fields {
            if f.reference_to.iter().any(|r| r == &table.def.name) {
                children.push(json!({
                    "cascadeDelete": f.cascade_delete,
                    "childSObject": other.def.name,
                    "deprecatedAndHidden": false,
                    "field": f.name,
                    "junctionIdListNames": [],
                    "junctionReferenceTo": [],
                    "relationshipName": child_relationship_name(&other.def.name, &f.name, &table.def.name),
                    "restrictedDelete": f.restricted_delete,
                }));
            }
        }
    }
    Ok(json_ok(&table.def.describe(&v.0, children)))
}

/// The parent-to-child relationship name: `Contacts` for Contact.AccountId, `Invoices__r` for a
/// custom lookup, and none for audit fields.
pub fn child_relationship_name(child: &str, field: &str, _parent: &str) -> Option<String> {
    if matches!(field, "CreatedById" | "LastModifiedById") {
        return None;
    }
    match child.strip_suffix("__c") {
        Some(base) => Some(format!("{base}s__r")),
        None if child.ends_with('y') && !child.ends_with("ey") => Some(format!("{}ies", &child[..child.len() - 1])),
        None if child.ends_with('s') => Some(format!("{child}es")),
        None => Some(format!("{child}s")),
    }
}

#[derive(Debug, Deserialize)]
struct Window {
    start: Option<String>,
    end: Option<String>,
}

/// Parses and truncates to whole seconds (Salesforce ignores fractions here).
fn parse_window(w: &Window) -> Result<(i64, i64), ApiError> {
    let parse = |name: &str, v: &Option<String>| -> Result<i64, ApiError> {
        let raw = v.as_deref().ok_or_else(|| ApiError::bad_request("MISSING_ARGUMENT", format!("{name} is required")))?;
        let ms = parse_datetime(raw)
            .ok_or_else(|| ApiError::bad_request("INVALID_QUERY_FILTER_OPERATOR", format!("Unable to parse {name}: '{raw}'")))?;
        Ok(ms - ms.rem_euclid(1000))
    };
    let start = parse("start", &w.start)?;
    let end = parse("end", &w.end)?;
    if end < start {
        return Err(ApiError::bad_request("INVALID_REPLICATION_DATE", "start date must be before end date"));
    }
    Ok((start, end))
}

fn rest_ts(ms: i64) -> String {
    format_datetime_rest(ms)
}

async fn get_updated(
    State(state): State<AppState>,
    Path(params): Path<std::collections::HashMap<String, String>>,
    Query(w): Query<Window>,
) -> Result<Response, ApiError> {
    let (start, end) = parse_window(&w)?;
    let org = state.org.read();
    let now = org.now_millis();
    let name = params.get("object").map(String::as_str).unwrap_or_default();
    let table = org.table(name).ok_or_else(ApiError::not_found)?;
    if !table.def.flags.replicateable {
        return Err(ApiError::bad_request("INVALID_TYPE", format!("sObject type '{}' is not replicateable", table.def.name)));
    }
    if start < now - Duration::days(30).num_milliseconds() {
        return Err(ApiError::bad_request("INVALID_REPLICATION_DATE", "startDate cannot be more than 30 days ago"));
    }
    // latestDateCovered: the end, truncated to the minute and never in the future.
    let latest = end.min(now);
    let latest = latest - latest.rem_euclid(60_000);
    let stamp = table.def.slot("SystemModstamp");
    let mut ids: Vec<String> = table
        .rows()
        .iter()
        .filter(|r| !table.is_deleted(r))
        .filter(|r| r.get(stamp).as_datetime_millis().is_some_and(|t| t >= start && t <= latest))
        .map(|r| table.id_of(r).to_string())
        .collect();
    if ids.len() > MAX_IDS {
        return Err(ApiError::bad_request("EXCEEDED_ID_LIMIT", "record limit reached. modify filter criteria"));
    }
    ids.sort();
    Ok(json_ok(&json!({ "ids": ids, "latestDateCovered": rest_ts(latest) })))
}

async fn get_deleted(
    State(state): State<AppState>,
    Path(params): Path<std::collections::HashMap<String, String>>,
    Query(w): Query<Window>,
) -> Result<Response, ApiError> {
    let (start, end) = parse_window(&w)?;
    let mut org = state.org.write();
    org.purge_expired();
    let now = org.now_millis();
    let name = params.get("object").map(String::as_str).unwrap_or_default();
    let table = org.table(name).ok_or_else(ApiError::not_found)?;
    if !table.def.flags.replicateable {
        return Err(ApiError::bad_request("INVALID_TYPE", format!("sObject type '{}' is not replicateable", table.def.name)));
    }
    let latest = end.min(now);
    let latest = latest - latest.rem_euclid(60_000);
    let earliest_available =
        table.delete_log().iter().map(|(_, at)| *at).min().unwrap_or(now - Duration::days(RECYCLE_BIN_DAYS).num_milliseconds());
    let mut deleted: Vec<(SfId, i64)> =
        table.delete_log().iter().filter(|(_, at)| *at >= start && *at <= latest).copied().collect();
    if deleted.len() > MAX_IDS {
        return Err(ApiError::bad_request("EXCEEDED_ID_LIMIT", "record limit reached. modify filter criteria"));
    }
    deleted.sort_by_key(|(id, at)| (*at, *id));
    let records: Vec<J> = deleted.iter().map(|(id, at)| json!({ "deletedDate": rest_ts(*at), "id": id.as_str() })).collect();
    Ok(json_ok(&json!({
        "deletedRecords": records,
        "earliestDateAvailable": rest_ts(earliest_available - earliest_available.rem_euclid(60_000)),
        "latestDateCovered": rest_ts(latest),
    })))
}
