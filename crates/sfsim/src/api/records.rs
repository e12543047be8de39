//! sObject Rows: basic info, retrieve (by id or external id), create, update, upsert and delete
//! of single records under `/services/data/vNN.N/sobjects/…`.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use serde_json::{Map, Value as J, json};
use tidemark_core::SfId;

use super::error::{json_ok, json_response};
use super::{ApiError, ApiVersion, AppState, VersionExt};
use crate::org::write::{Input, RecordError, UpsertOutcome};
use crate::org::{ObjectTable, Org};
use crate::row::Row;

/// Newest records listed as `recentItems` by the basic-information resource.
const RECENT_ITEMS: usize = 25;

type Params = Path<HashMap<String, String>>;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/sobjects/{object}", get(basic_info).post(create))
        .route("/sobjects/{object}/{key}", get(retrieve).patch(update).delete(delete).post(insert_by_id))
        .route("/sobjects/{object}/{key}/{value}", get(retrieve_by_external_id).patch(upsert).delete(delete_by_external_id))
}

fn param<'a>(params: &'a HashMap<String, String>, name: &str) -> &'a str {
    params.get(name).map(String::as_str).unwrap_or_default()
}

/// Parses a JSON request body. Salesforce refuses other media types with 415 and malformed
/// JSON with 400 `JSON_PARSER_ERROR`.
pub(crate) fn parse_json_body(headers: &HeaderMap, body: &[u8]) -> Result<J, ApiError> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or_default();
        let mime = ct.split(';').next().unwrap_or_default().trim();
        if !mime.is_empty() && !mime.eq_ignore_ascii_case("application/json") {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                format!("Content-Type header specified in HTTP request is not supported: {ct}"),
            ));
        }
    }
    serde_json::from_slice(body).map_err(|e| {
        let text = e.to_string();
        let reason = text.split(" at line ").next().unwrap_or(&text);
        ApiError::json_parser_error(format!("{reason} at [line:{}, column:{}]", e.line(), e.column()))
    })
}

/// The writable inputs of a JSON record: every key except `attributes`.
pub(crate) fn record_inputs(record: &Map<String, J>) -> Vec<(&str, Input<'_>)> {
    record.iter().filter(|(k, _)| k.as_str() != "attributes").map(|(k, v)| (k.as_str(), Input::Json(v))).collect()
}

/// A body that must be a JSON object (a record).
fn expect_object(body: &J, object: &str) -> Result<(), ApiError> {
    match body {
        J::Object(_) => Ok(()),
        J::Array(_) => {
            Err(ApiError::json_parser_error(format!("Cannot deserialize instance of {object} from START_ARRAY value")))
        }
        _ => Err(ApiError::json_parser_error(format!("Cannot deserialize instance of {object} from VALUE_STRING value"))),
    }
}

/// REST error array for record errors: `[{message, errorCode, fields}]`. An unknown field is a
/// deserialisation error in Salesforce, reported alone and without `fields`.
pub(crate) fn record_errors_response(status: StatusCode, errors: &[RecordError]) -> Response {
    if let Some(e) = errors.iter().find(|e| e.status_code == "INVALID_FIELD") {
        return ApiError::new(status, "INVALID_FIELD", e.message.clone()).into_response();
    }
    let body: Vec<J> =
        errors.iter().map(|e| json!({ "message": e.message, "errorCode": e.status_code, "fields": e.fields })).collect();
    json_response(status, &J::Array(body))
}

/// The `UNABLE_TO_LOCK_ROW` error a contended record write fails with.
pub(crate) fn lock_error(id: Option<&str>) -> RecordError {
    let message = match id {
        Some(id) => format!("unable to obtain exclusive access to this record or 1 records: {id}"),
        None => "unable to obtain exclusive access to this record".to_owned(),
    };
    RecordError::new("UNABLE_TO_LOCK_ROW", message, vec![])
}

/// The record ids a JSON record names (values that are well-formed ids): the parents a write
/// would lock.
pub(crate) fn referenced_ids(body: &Map<String, J>) -> impl Iterator<Item = &str> {
    body.iter()
        .filter(|(k, _)| k.as_str() != "attributes")
        .filter_map(|(_, v)| v.as_str())
        .filter(|s| (s.len() == 15 || s.len() == 18) && SfId::parse(s).is_ok())
}

/// The `UNABLE_TO_LOCK_ROW` error of a write of record `own` (none for a create) whose body is
/// `body`, when the fault injection says it hits a row lock.
pub(crate) fn lock_fault(state: &AppState, own: Option<&str>, body: Option<&Map<String, J>>) -> Option<RecordError> {
    if !state.faults.locks_configured() {
        return None;
    }
    let mut ids: Vec<&str> = own.filter(|s| !s.is_empty()).into_iter().collect();
    if let Some(body) = body {
        ids.extend(referenced_ids(body).filter(|s| Some(*s) != own));
    }
    state.faults.row_lock(&ids).map(|hit| lock_error(hit.id.as_deref()))
}

fn record_url(version: &str, object: &str, id: &str) -> String {
    format!("/services/data/v{version}/sobjects/{object}/{id}")
}

fn table_or_404<'o>(org: &'o Org, name: &str) -> Result<&'o ObjectTable, ApiError> {
    org.table(name).ok_or_else(ApiError::not_found)
}

/// Why a record URL does not resolve to a live record.
#[derive(Debug)]
enum Missing {
    /// 404 `NOT_FOUND` (unknown object, unknown or malformed id).
    NotFound,
    /// 404 `ENTITY_IS_DELETED`: the record is in the recycle bin.
    Deleted,
}

impl IntoResponse for Missing {
    fn into_response(self) -> Response {
        match self {
            Missing::NotFound => ApiError::not_found().into_response(),
            // The real response carries an empty `fields` array (error-entity-is-deleted.json).
            Missing::Deleted => json_response(
                StatusCode::NOT_FOUND,
                &json!([{ "message": "entity is deleted", "errorCode": "ENTITY_IS_DELETED", "fields": [] }]),
            ),
        }
    }
}

/// A live record of `table` by id.
fn find_row<'o>(table: &'o ObjectTable, id: &str) -> Result<(SfId, &'o Row), Missing> {
    let found =
        SfId::parse(id).ok().filter(|p| p.key_prefix() == table.def.key_prefix).and_then(|p| table.get(&p).map(|r| (p, r)));
    match found {
        Some((_, row)) if table.is_deleted(row) => Err(Missing::Deleted),
        Some(found) => Ok(found),
        None => Err(Missing::NotFound),
    }
}

async fn basic_info(State(state): State<AppState>, Extension(v): VersionExt, Path(params): Params) -> Result<Response, ApiError> {
    let org = state.org.read();
    let table = table_or_404(&org, param(&params, "object"))?;
    let modified = table.def.slot("LastModifiedDate");
    let mut live: Vec<&Row> = table.rows().iter().filter(|r| !table.is_deleted(r)).collect();
    live.sort_by_key(|r| std::cmp::Reverse(r.get(modified).as_datetime_millis()));
    let name_field = table.def.fields.iter().find(|f| f.name_field);
    let recent: Vec<J> = live
        .into_iter()
        .take(RECENT_ITEMS)
        .map(|row| {
            let id = table.id_of(row);
            let mut item = Map::new();
            item.insert("attributes".into(), Org::attributes_json(&v.0, &table.def.name, Some(id.as_str())));
            item.insert("Id".into(), J::String(id.to_string()));
            if let Some(f) = name_field {
                item.insert(f.name.clone(), org.field_json(table, row, f));
            }
            J::Object(item)
        })
        .collect();
    Ok(json_ok(&json!({ "objectDescribe": table.def.describe_global_entry(&v.0), "recentItems": recent })))
}

/// `attributes` plus the requested fields (all fields without `?fields=`).
fn render(org: &Org, version: &str, table: &ObjectTable, row: &Row, fields: Option<&str>) -> Result<J, ApiError> {
    let Some(list) = fields.filter(|f| !f.trim().is_empty()) else {
        return Ok(org.record_json(version, table, row));
    };
    let id = table.id_of(row);
    let mut out = Map::new();
    out.insert("attributes".into(), Org::attributes_json(version, &table.def.name, Some(id.as_str())));
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let f = table.def.field(name).ok_or_else(|| no_such_column(name, &table.def.name))?;
        out.insert(f.name.clone(), org.field_json(table, row, f));
    }
    Ok(J::Object(out))
}

pub(crate) fn no_such_column(field: &str, object: &str) -> ApiError {
    ApiError::bad_request(
        "INVALID_FIELD",
        format!(
            "No such column '{field}' on entity '{object}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names."
        ),
    )
}

async fn retrieve(
    State(state): State<AppState>,
    Extension(v): VersionExt,
    Path(params): Params,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let org = state.org.read();
    let table = match table_or_404(&org, param(&params, "object")) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let (_, row) = match find_row(table, param(&params, "key")) {
        Ok(found) => found,
        Err(missing) => return missing.into_response(),
    };
    match render(&org, &v.0, table, row, query.get("fields").map(String::as_str)) {
        Ok(j) => json_ok(&j),
        Err(e) => e.into_response(),
    }
}

async fn create(
    State(state): State<AppState>,
    Extension(v): VersionExt,
    Path(params): Params,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let object = param(&params, "object");
    let name = table_or_404(&state.org.read(), object)?.def.name.clone();
    let body = parse_json_body(&headers, &body)?;
    expect_object(&body, &name)?;
    let record = body.as_object().expect("checked above");
    if let Some(e) = lock_fault(&state, None, Some(record)) {
        return Ok(record_errors_response(StatusCode::BAD_REQUEST, &[e]));
    }
    let result = state.org.write().api_create(&name, &record_inputs(record));
    Ok(match result {
        Ok(id) => created_response(&v.0, &name, &id, None),
        Err(errors) => record_errors_response(StatusCode::BAD_REQUEST, &errors),
    })
}

/// 201 `{id, success, errors[, created]}` with a `Location` header.
fn created_response(version: &str, object: &str, id: &SfId, created: Option<bool>) -> Response {
    let mut body = json!({ "id": id.as_str(), "success": true, "errors": [] });
    if let Some(created) = created {
        body["created"] = J::Bool(created);
    }
    let mut resp = json_response(StatusCode::CREATED, &body);
    if let Ok(loc) = HeaderValue::from_str(&record_url(version, object, id.as_str())) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    resp
}

/// Checks that `key` names a live record of `object` before a write, answering the 404s a
/// record URL gets (`NOT_FOUND`, or `ENTITY_IS_DELETED` from the recycle bin).
fn live_record_id(state: &AppState, object: &str, key: &str) -> Result<(String, SfId), Missing> {
    let org = state.org.read();
    let table = org.table(object).ok_or(Missing::NotFound)?;
    let (id, _) = find_row(table, key)?;
    Ok((table.def.name.clone(), id))
}

async fn update(State(state): State<AppState>, Path(params): Params, headers: HeaderMap, body: Bytes) -> Response {
    let (name, id) = match live_record_id(&state, param(&params, "object"), param(&params, "key")) {
        Ok(found) => found,
        Err(missing) => return missing.into_response(),
    };
    let body = match parse_json_body(&headers, &body).and_then(|b| expect_object(&b, &name).map(|_| b)) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let record = body.as_object().expect("checked above");
    if let Some(e) = lock_fault(&state, Some(id.as_str()), Some(record)) {
        return record_errors_response(StatusCode::BAD_REQUEST, &[e]);
    }
    let result = state.org.write().api_update(Some(&name), id.as_str(), &record_inputs(record));
    match result {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(errors) => record_errors_response(StatusCode::BAD_REQUEST, &errors),
    }
}

async fn delete(State(state): State<AppState>, Path(params): Params) -> Response {
    let (name, id) = match live_record_id(&state, param(&params, "object"), param(&params, "key")) {
        Ok(found) => found,
        Err(missing) => return missing.into_response(),
    };
    delete_id(&state, &name, &id)
}

fn delete_id(state: &AppState, object: &str, id: &SfId) -> Response {
    if let Some(e) = lock_fault(state, Some(id.as_str()), None) {
        return record_errors_response(StatusCode::BAD_REQUEST, &[e]);
    }
    let result = state.org.write().api_delete(Some(object), id.as_str());
    match result {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => record_errors_response(StatusCode::BAD_REQUEST, &[e]),
    }
}

/// `POST /sobjects/{Type}/Id`: an upsert keyed on Id, which creates when the body has no Id.
async fn insert_by_id(
    State(state): State<AppState>,
    Extension(v): VersionExt,
    Path(params): Params,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if param(&params, "key") != "Id" || v.major() < 37 {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            "HTTP Method 'POST' not allowed. Allowed are HEAD,GET,PATCH,DELETE",
        ));
    }
    upsert_with(&state, &v, param(&params, "object"), "Id", None, &headers, &body)
}

async fn upsert(
    State(state): State<AppState>,
    Extension(v): VersionExt,
    Path(params): Params,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let value = param(&params, "value");
    upsert_with(&state, &v, param(&params, "object"), param(&params, "key"), Some(value), &headers, &body)
}

fn upsert_with(
    state: &AppState,
    v: &ApiVersion,
    object: &str,
    key: &str,
    value: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let (name, key_name) = {
        let org = state.org.read();
        let name = table_or_404(&org, object)?.def.name.clone();
        let key_field = org.upsert_key_field(&name, key).ok_or_else(|| external_id_not_found(key))?;
        (name, key_field.name.clone())
    };
    let body = parse_json_body(headers, body)?;
    expect_object(&body, &name)?;
    let record = body.as_object().expect("checked above");
    // POST …/Id takes the key from the body: a null or missing Id creates.
    let body_id = record.iter().find(|(k, _)| k.eq_ignore_ascii_case("Id")).and_then(|(_, v)| v.as_str());
    let value = value.or(body_id).unwrap_or_default();
    // The record an upsert locks: the one its key names (by Id), else the parents it references.
    let own = (key_name == "Id" && !value.is_empty()).then_some(value);
    let existing = (state.faults.locks_configured() && key_name != "Id" && !value.is_empty())
        .then(|| external_matches(&state.org.read(), &name, &key_name, value).ok())
        .flatten()
        .and_then(|(_, ids)| (ids.len() == 1).then(|| ids[0]));
    let own = own.or(existing.as_ref().map(SfId::as_str));
    if let Some(e) = lock_fault(state, own, Some(record)) {
        return Ok(record_errors_response(StatusCode::BAD_REQUEST, &[e]));
    }
    let inputs: Vec<(&str, Input<'_>)> =
        record_inputs(record).into_iter().filter(|(k, _)| !k.eq_ignore_ascii_case("Id")).collect();
    let result = state.org.write().api_upsert(&name, &key_name, value, &inputs);
    let modern = v.major() >= 46;
    Ok(match result {
        Ok(UpsertOutcome::Created(id)) => created_response(&v.0, &name, &id, modern.then_some(true)),
        Ok(UpsertOutcome::Updated(id)) if modern => {
            json_ok(&json!({ "id": id.as_str(), "success": true, "errors": [], "created": false }))
        }
        Ok(UpsertOutcome::Updated(_)) => StatusCode::NO_CONTENT.into_response(),
        Ok(UpsertOutcome::MultipleMatches(ids)) => multiple_matches(&v.0, &name, &ids),
        Err(errors) => record_errors_response(StatusCode::BAD_REQUEST, &errors),
    })
}

/// 300 Multiple Choices with the URLs of every matching record.
fn multiple_matches(version: &str, object: &str, ids: &[SfId]) -> Response {
    let urls: Vec<J> = ids.iter().map(|id| J::String(record_url(version, object, id.as_str()))).collect();
    json_response(StatusCode::MULTIPLE_CHOICES, &J::Array(urls))
}

fn external_id_not_found(field: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        format!("Provided external ID field does not exist or is not accessible: {field}"),
    )
}

/// Live records of `object` whose external id `key` equals `value`.
fn external_matches(org: &Org, object: &str, key: &str, value: &str) -> Result<(String, Vec<SfId>), ApiError> {
    let table = table_or_404(org, object)?;
    let field = org.upsert_key_field(object, key).ok_or_else(|| external_id_not_found(key))?;
    let ids = if field.name == "Id" {
        SfId::parse(value).ok().filter(|id| table.get(id).is_some_and(|r| !table.is_deleted(r))).into_iter().collect()
    } else {
        crate::org::validate::find_by_text(table, field, value)
    };
    Ok((table.def.name.clone(), ids))
}

async fn retrieve_by_external_id(
    State(state): State<AppState>,
    Extension(v): VersionExt,
    Path(params): Params,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let org = state.org.read();
    let (name, ids) = external_matches(&org, param(&params, "object"), param(&params, "key"), param(&params, "value"))?;
    match ids.as_slice() {
        [] => Err(ApiError::not_found()),
        [id] => {
            let (table, row) = org.find(id).ok_or_else(ApiError::not_found)?;
            Ok(json_ok(&render(&org, &v.0, table, row, query.get("fields").map(String::as_str))?))
        }
        many => Ok(multiple_matches(&v.0, &name, many)),
    }
}

async fn delete_by_external_id(
    State(state): State<AppState>,
    Extension(v): VersionExt,
    Path(params): Params,
) -> Result<Response, ApiError> {
    let (name, ids) = {
        let org = state.org.read();
        external_matches(&org, param(&params, "object"), param(&params, "key"), param(&params, "value"))?
    };
    match ids.as_slice() {
        [] => Err(ApiError::not_found()),
        [id] => Ok(delete_id(&state, &name, id)),
        many => Ok(multiple_matches(&v.0, &name, many)),
    }
}
