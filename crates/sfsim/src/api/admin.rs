//! The admin API: drives the simulated org's time, activity, schema, faults and limits, and
//! exposes the truth dump. Routes live under `/__admin/`, take and return JSON, and need no
//! Salesforce session; when [`SimConfig::admin_token`](crate::SimConfig) is set, every request
//! must carry it in `X-Admin-Token` (else 401).
//!
//! | route | body | answer |
//! |---|---|---|
//! | `GET /__admin/clock` | | `{"now","millis","manual"}` |
//! | `POST /__admin/clock/advance` | `{"seconds"?,"minutes"?,"hours"?,"days"?}` (summed) | clock + `{"purged"}` (recycle-bin purge runs) |
//! | `POST /__admin/changes` | [`ChangeRoundSpec`] fields + optional `"seed"` | [`ChangeSummary`] |
//! | `POST /__admin/schema` | `{"object", "op": "add_field\|widen_field\|change_type\|remove_field", …}` ([`SchemaChange`]) | `{"object","detail"}` |
//! | `GET/PUT /__admin/faults` | [`FaultConfig`] (+ optional `"seed"` on PUT) | the config |
//! | `GET/POST/DELETE /__admin/validation-rules` | see [`super::admin_rules`] | rules |
//! | `POST /__admin/sessions/expire` | | `{"expired"}` |
//! | `GET/PUT /__admin/limits` | `{"max"?,"used"?}` | `{"max","used","remaining"}` |
//! | `POST /__admin/recycle-bin/empty` | | `{"purged"}` |
//! | `POST /__admin/purge` | | `{"purged"}` (the 15-day purge, now) |
//! | `GET /__admin/truth?object=&since=&records=&changes=` | | NDJSON ([`crate::truth`]) |
//! | `POST /__admin/save` | | `{"saved","path"}`; 409 without a data directory |
//!
//! Errors are `{"error": "...", "field": "<request field at fault>"}` with status 400.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value as J, json};

use super::AppState;
use crate::changes::{ChangeRoundSpec, ChangeSummary, apply_change_round};
use crate::faults::FaultConfig;
use crate::org::schema_change::SchemaChange;
use crate::truth::{TruthDump, TruthFilter};
use crate::value::format_datetime_rest;

pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/__admin/clock", get(clock))
        .route("/__admin/clock/advance", post(advance_clock))
        .route("/__admin/changes", post(change_round))
        .route("/__admin/schema", post(schema_change))
        .route("/__admin/faults", get(get_faults).put(put_faults))
        .route("/__admin/sessions/expire", post(expire_sessions))
        .route("/__admin/limits", get(get_limits).put(put_limits))
        .route("/__admin/recycle-bin/empty", post(empty_recycle_bin))
        .route("/__admin/purge", post(purge))
        .route("/__admin/truth", get(truth))
        .route("/__admin/save", post(save))
        .merge(super::admin_rules::routes())
        .layer(middleware::from_fn_with_state(state, admin_token_layer))
}

/// An admin API error: `{"error", "field"}`.
#[derive(Debug)]
pub struct AdminError {
    status: StatusCode,
    message: String,
    field: Option<&'static str>,
}

impl AdminError {
    pub(super) fn bad(field: &'static str, message: impl Into<String>) -> AdminError {
        AdminError { status: StatusCode::BAD_REQUEST, message: message.into(), field: Some(field) }
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(json!({ "error": self.message, "field": self.field }))).into_response()
    }
}

async fn admin_token_layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(expected) = &state.config.admin_token {
        let given = req.headers().get("X-Admin-Token").and_then(|v| v.to_str().ok());
        if given != Some(expected.as_str()) {
            return AdminError {
                status: StatusCode::UNAUTHORIZED,
                message: "missing or wrong X-Admin-Token".into(),
                field: Some("X-Admin-Token"),
            }
            .into_response();
        }
    }
    next.run(req).await
}

/// Parses a JSON object body (an empty body counts as `{}`).
fn json_object(body: &Bytes) -> Result<serde_json::Map<String, J>, AdminError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Map::new());
    }
    match serde_json::from_slice::<J>(body) {
        Ok(J::Object(map)) => Ok(map),
        Ok(_) => Err(AdminError::bad("body", "expected a JSON object")),
        Err(e) => Err(AdminError::bad("body", format!("malformed JSON: {e}"))),
    }
}

/// Deserializes `map` into `T`, naming the offending field in the error when serde says which.
fn from_map<T: serde::de::DeserializeOwned>(map: serde_json::Map<String, J>) -> Result<T, AdminError> {
    serde_json::from_value(J::Object(map)).map_err(|e| {
        let msg = e.to_string();
        let field = leak_field_name(&msg);
        AdminError::bad(field, msg)
    })
}

/// The field named in a serde error ("unknown field `x`", "missing field `x`", "unknown variant
/// `x`" → `op`), as a static string for the error body.
fn leak_field_name(msg: &str) -> &'static str {
    const KNOWN: [&str; 26] = [
        "op",
        "field",
        "type",
        "label",
        "length",
        "precision",
        "scale",
        "picklist_values",
        "reference_to",
        "objects",
        "updates",
        "creates",
        "deletes",
        "hard_deletes",
        "undeletes",
        "parent_renames",
        "seed",
        "http_500_rate",
        "http_503_rate",
        "concurrent_limit_rate",
        "lock_row_rate",
        "lock_row_ids",
        "lock_row_id_failures",
        "drop_connection_rate",
        "latency_ms",
        "query_timeout_rows",
    ];
    if msg.contains("unknown variant") || msg.contains("missing field `op`") {
        return "op";
    }
    let quoted = msg.split('`').nth(1).unwrap_or("");
    KNOWN.iter().find(|k| **k == quoted).copied().unwrap_or("body")
}

fn clock_json(state: &AppState) -> J {
    let org = state.org.read();
    let millis = org.now_millis();
    json!({
        "now": format_datetime_rest(millis),
        "millis": millis,
        "manual": matches!(org.clock(), crate::org::OrgClock::Manual(_)),
    })
}

async fn clock(State(state): State<AppState>) -> Response {
    axum::Json(clock_json(&state)).into_response()
}

async fn advance_clock(State(state): State<AppState>, body: Bytes) -> Result<Response, AdminError> {
    let map = json_object(&body)?;
    let mut seconds: i64 = 0;
    let mut any = false;
    for (key, unit) in [("seconds", 1i64), ("minutes", 60), ("hours", 3600), ("days", 86_400)] {
        if let Some(v) = map.get(key) {
            let n = v
                .as_f64()
                .filter(|n| *n >= 0.0 && n.is_finite())
                .ok_or_else(|| AdminError::bad(key, format!("{key} must be a non-negative number")))?;
            seconds = seconds.saturating_add((n * unit as f64).round() as i64);
            any = true;
        }
    }
    if let Some(other) = map.keys().find(|k| !["seconds", "minutes", "hours", "days"].contains(&k.as_str())) {
        return Err(AdminError::bad("body", format!("unknown field '{other}'")));
    }
    if !any {
        return Err(AdminError::bad("seconds", "give seconds, minutes, hours or days"));
    }
    let purged = {
        let mut org = state.org.write();
        let before = org.change_log().len();
        org.advance_clock(chrono::Duration::seconds(seconds));
        org.change_log()[before..].iter().filter(|e| e.kind == crate::org::ChangeKind::Purge).count()
    };
    let mut out = clock_json(&state);
    out["purged"] = json!(purged);
    Ok(axum::Json(out).into_response())
}

async fn change_round(State(state): State<AppState>, body: Bytes) -> Result<axum::Json<ChangeSummary>, AdminError> {
    let mut map = json_object(&body)?;
    let seed = match map.remove("seed") {
        Some(v) => v.as_u64().ok_or_else(|| AdminError::bad("seed", "seed must be a non-negative integer"))?,
        None => state.config.seed ^ state.org.read().change_log().len() as u64,
    };
    let spec: ChangeRoundSpec = from_map(map)?;
    let mut org = state.org.write();
    apply_change_round(&mut org, &spec, seed).map(axum::Json).map_err(|e| AdminError::bad(e.field(), e.to_string()))
}

async fn schema_change(State(state): State<AppState>, body: Bytes) -> Result<Response, AdminError> {
    let mut map = json_object(&body)?;
    let object = match map.remove("object") {
        Some(J::String(o)) if !o.is_empty() => o,
        _ => return Err(AdminError::bad("object", "object (the sObject name) is required")),
    };
    let change: SchemaChange = from_map(map)?;
    let mut org = state.org.write();
    let name = org.table(&object).map(|t| t.def.name.clone()).unwrap_or(object.clone());
    let detail = org.apply_schema_change(&object, &change).map_err(|e| AdminError::bad(e.field(), e.to_string()))?;
    Ok(axum::Json(json!({ "object": name, "detail": detail })).into_response())
}

async fn get_faults(State(state): State<AppState>) -> axum::Json<FaultConfig> {
    axum::Json(state.faults.config())
}

async fn put_faults(State(state): State<AppState>, body: Bytes) -> Result<axum::Json<FaultConfig>, AdminError> {
    let mut map = json_object(&body)?;
    let seed = match map.remove("seed") {
        Some(v) => v.as_u64().ok_or_else(|| AdminError::bad("seed", "seed must be a non-negative integer"))?,
        None => state.config.seed,
    };
    let config: FaultConfig = from_map(map)?;
    for (name, rate) in [
        ("http_500_rate", config.http_500_rate),
        ("http_503_rate", config.http_503_rate),
        ("concurrent_limit_rate", config.concurrent_limit_rate),
        ("lock_row_rate", config.lock_row_rate),
        ("drop_connection_rate", config.drop_connection_rate),
        ("bulk_job_failure_rate", config.bulk_job_failure_rate),
    ] {
        if !(0.0..=1.0).contains(&rate) {
            return Err(AdminError::bad(leak_field_name(&format!("`{name}`")), format!("{name} must be between 0 and 1")));
        }
    }
    state.faults.set(config, seed);
    Ok(axum::Json(state.faults.config()))
}

async fn expire_sessions(State(state): State<AppState>) -> axum::Json<J> {
    axum::Json(json!({ "expired": state.auth.expire_all() }))
}

fn limits_json(state: &AppState) -> J {
    let (used, max) = state.usage.snapshot(state.now_millis());
    json!({ "max": max, "used": used, "remaining": max.saturating_sub(used) })
}

async fn get_limits(State(state): State<AppState>) -> axum::Json<J> {
    axum::Json(limits_json(&state))
}

async fn put_limits(State(state): State<AppState>, body: Bytes) -> Result<axum::Json<J>, AdminError> {
    let map = json_object(&body)?;
    let number = |key: &'static str| -> Result<Option<u64>, AdminError> {
        match map.get(key) {
            None => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or_else(|| AdminError::bad(key, format!("{key} must be a non-negative integer"))),
        }
    };
    if let Some(other) = map.keys().find(|k| !["max", "used"].contains(&k.as_str())) {
        return Err(AdminError::bad("body", format!("unknown field '{other}'")));
    }
    let (max, used) = (number("max")?, number("used")?);
    if let Some(max) = max {
        state.usage.set_max(max);
    }
    if let Some(used) = used {
        state.usage.set_used(state.now_millis(), used);
    }
    Ok(axum::Json(limits_json(&state)))
}

async fn empty_recycle_bin(State(state): State<AppState>) -> axum::Json<J> {
    let purged = state.org.write().empty_recycle_bin();
    axum::Json(json!({ "purged": purged }))
}

async fn purge(State(state): State<AppState>) -> axum::Json<J> {
    let purged = state.org.write().purge_expired();
    axum::Json(json!({ "purged": purged }))
}

#[derive(Debug, Deserialize)]
struct TruthParams {
    object: Option<String>,
    since: Option<String>,
    records: Option<String>,
    changes: Option<String>,
}

fn flag(v: &Option<String>, name: &'static str) -> Result<bool, AdminError> {
    match v.as_deref() {
        None | Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        Some(_) => Err(AdminError::bad(name, format!("{name} must be true or false"))),
    }
}

async fn truth(State(state): State<AppState>, Query(p): Query<TruthParams>) -> Result<Response, AdminError> {
    let since = match p.since.as_deref() {
        None | Some("") => None,
        Some(s) => Some(s.parse::<u64>().map_err(|_| AdminError::bad("since", "since must be a change-log seq"))?),
    };
    let filter = TruthFilter {
        object: p.object.clone(),
        since,
        records: flag(&p.records, "records")?,
        changes: flag(&p.changes, "changes")?,
    };
    let dump = {
        let org = state.org.read();
        if let Some(o) = &filter.object
            && org.table(o).is_none()
        {
            return Err(AdminError::bad("object", format!("unknown object '{o}'")));
        }
        TruthDump::snapshot(&org, &filter)
    };
    let stream = futures::stream::unfold(dump, |mut dump| async move {
        let mut buf = Vec::with_capacity(64 * 1024);
        dump.fill(&mut buf, 64 * 1024).then(|| (Ok::<_, std::io::Error>(Bytes::from(buf)), dump))
    });
    let mut resp = Body::from_stream(stream).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    Ok(resp)
}

async fn save(State(state): State<AppState>) -> Result<axum::Json<J>, AdminError> {
    let Some(dir) = state.config.data_dir.clone() else {
        return Err(AdminError {
            status: StatusCode::CONFLICT,
            message: "no data directory configured (serve --data-dir DIR)".into(),
            field: None,
        });
    };
    let state2 = state.clone();
    let dir2 = dir.clone();
    let result = tokio::task::spawn_blocking(move || crate::persist::save(&state2.org.read(), &dir2))
        .await
        .map_err(|e| AdminError { status: StatusCode::INTERNAL_SERVER_ERROR, message: e.to_string(), field: None })?;
    result.map_err(|e| AdminError { status: StatusCode::INTERNAL_SERVER_ERROR, message: e.to_string(), field: None })?;
    Ok(axum::Json(json!({ "saved": true, "path": crate::persist::snapshot_path(&dir).display().to_string() })))
}
