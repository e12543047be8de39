//! sObject Collections: create, update, upsert, delete and retrieve up to 200 records per
//! request under `/services/data/vNN.N/composite/sobjects`.
//!
//! A well-formed request always answers 200 with one result per record, in request order. With
//! `allOrNone: true` the whole request runs in one [`Transaction`]; if any record fails it is
//! rolled back and every other record reports `ALL_OR_NONE_OPERATION_ROLLED_BACK`.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, patch, post};
use axum::{Extension, Router};
use serde_json::{Map, Value as J, json};
use tidemark_core::SfId;

use super::error::json_ok;
use super::records::{lock_fault, no_such_column, parse_json_body, record_inputs};
use super::{ApiError, AppState, VersionExt};
use crate::org::Org;
use crate::org::transaction::Transaction;
use crate::org::write::{Input, RecordError, UpsertOutcome};

/// Records per create/update/upsert/delete request.
const MAX_RECORDS: usize = 200;
/// Ids per retrieve request.
const MAX_RETRIEVE_IDS: usize = 2_000;

const ROLLED_BACK_MESSAGE: &str =
    "Record rolled back because not all records were valid and the request was using AllOrNone header";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/composite/sobjects", post(create).patch(update).delete(delete))
        .route("/composite/sobjects/{object}", get(retrieve).post(retrieve_post))
        .route("/composite/sobjects/{object}/{field}", patch(upsert))
}

/// One record's result.
struct Outcome {
    id: Option<SfId>,
    errors: Vec<RecordError>,
    created: Option<bool>,
}

impl Outcome {
    fn ok(id: SfId, created: Option<bool>) -> Outcome {
        Outcome { id: Some(id), errors: Vec::new(), created }
    }

    fn failed(errors: Vec<RecordError>) -> Outcome {
        Outcome { id: None, errors, created: None }
    }

    fn to_json(&self) -> J {
        let mut out = Map::new();
        if let Some(id) = &self.id {
            out.insert("id".into(), J::String(id.to_string()));
        }
        out.insert("success".into(), J::Bool(self.errors.is_empty()));
        let errors: Vec<J> = self
            .errors
            .iter()
            .map(|e| json!({ "statusCode": e.status_code, "message": e.message, "fields": e.fields }))
            .collect();
        out.insert("errors".into(), J::Array(errors));
        if let Some(created) = self.created {
            out.insert("created".into(), J::Bool(created));
        }
        J::Object(out)
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Operation {
    Create,
    Update,
    Upsert,
    Delete,
}

/// Runs `each` over the records under the org write lock, in one transaction when
/// `all_or_none`, and renders the results.
fn run<T>(
    state: &AppState,
    items: &[T],
    all_or_none: bool,
    op: Operation,
    mut each: impl FnMut(&mut Org, Option<&mut Transaction>, &T) -> Outcome,
) -> Response {
    let mut org = state.org.write();
    let mut tx = all_or_none.then(|| org.begin_transaction());
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(items.len());
    for item in items {
        outcomes.push(each(&mut org, tx.as_mut(), item));
    }
    let failed = outcomes.iter().filter(|o| !o.errors.is_empty()).count();
    if let Some(tx) = tx
        && failed > 0
    {
        org.rollback(tx);
        for o in outcomes.iter_mut().filter(|o| o.errors.is_empty()) {
            o.errors.push(RecordError::new("ALL_OR_NONE_OPERATION_ROLLED_BACK", ROLLED_BACK_MESSAGE, vec![]));
            o.created = None;
            // Rolled-back creates never had an id; updates, upserts and deletes keep theirs.
            if op == Operation::Create {
                o.id = None;
            }
        }
    }
    drop(org);
    tracing::debug!(records = outcomes.len(), failed, all_or_none, "sObject collection processed");
    json_ok(&J::Array(outcomes.iter().map(Outcome::to_json).collect()))
}

/// The `{allOrNone, records}` body of create/update/upsert.
struct CollectionBody {
    all_or_none: bool,
    records: Vec<Map<String, J>>,
}

fn parse_collection(headers: &HeaderMap, body: &[u8]) -> Result<CollectionBody, ApiError> {
    let body = parse_json_body(headers, body)?;
    let J::Object(mut body) = body else {
        return Err(ApiError::json_parser_error("Cannot deserialize instance of SObjectCollectionInput from START_ARRAY value"));
    };
    let all_or_none = match body.get("allOrNone") {
        None | Some(J::Null) => false,
        Some(J::Bool(b)) => *b,
        Some(other) => {
            return Err(ApiError::json_parser_error(format!("Cannot deserialize value of type boolean from {other}")));
        }
    };
    let records = match body.remove("records") {
        Some(J::Array(items)) => items,
        _ => return Err(ApiError::bad_request("MISSING_ARGUMENT", "records: must be a list of sObjects")),
    };
    if records.len() > MAX_RECORDS {
        return Err(too_many_records());
    }
    let mut out = Vec::with_capacity(records.len());
    for r in records {
        match r {
            J::Object(m) => out.push(m),
            _ => return Err(ApiError::json_parser_error("Cannot deserialize instance of SObject from VALUE_STRING value")),
        }
    }
    Ok(CollectionBody { all_or_none, records: out })
}

fn too_many_records() -> ApiError {
    ApiError::bad_request("EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 200 records into this call")
}

/// Resolves every record's `attributes.type` and checks its field names, as Salesforce does while
/// deserialising the request (so such problems fail the whole request with 400).
fn record_types(org: &Org, records: &[Map<String, J>]) -> Result<Vec<String>, ApiError> {
    records
        .iter()
        .map(|r| {
            let ty = r.get("attributes").and_then(|a| a.get("type")).and_then(J::as_str).ok_or_else(|| {
                ApiError::json_parser_error("No sObject type found in attributes: every record needs attributes.type")
            })?;
            let table = org
                .table(ty)
                .ok_or_else(|| ApiError::bad_request("INVALID_TYPE", format!("sObject type '{ty}' is not supported.")))?;
            if let Some(bad) = r.keys().find(|k| k.as_str() != "attributes" && !table.def.has_field(k)) {
                return Err(ApiError::bad_request(
                    "INVALID_FIELD",
                    format!("No such column '{bad}' on sobject of type {}", table.def.name),
                ));
            }
            Ok(table.def.name.clone())
        })
        .collect()
}

fn field_of<'r>(record: &'r Map<String, J>, name: &str) -> Option<&'r J> {
    record.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
}

async fn create(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let body = parse_collection(&headers, &body)?;
    let types = record_types(&state.org.read(), &body.records)?;
    let items: Vec<(&Map<String, J>, &String)> = body.records.iter().zip(types.iter()).collect();
    Ok(run(&state, &items, body.all_or_none, Operation::Create, |org, tx, (record, ty)| {
        if field_of(record, "Id").is_some_and(|v| !v.is_null()) {
            return Outcome::failed(vec![RecordError::new("INVALID_FIELD", "cannot specify Id in an insert call", vec![])]);
        }
        if let Some(e) = lock_fault(&state, None, Some(record)) {
            return Outcome::failed(vec![e]);
        }
        let inputs: Vec<(&str, Input<'_>)> =
            record_inputs(record).into_iter().filter(|(k, _)| !k.eq_ignore_ascii_case("Id")).collect();
        match org.api_create_in(tx, ty, &inputs) {
            Ok(id) => Outcome::ok(id, None),
            Err(errors) => Outcome::failed(errors),
        }
    }))
}

async fn update(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let body = parse_collection(&headers, &body)?;
    let types = record_types(&state.org.read(), &body.records)?;
    let items: Vec<(&Map<String, J>, &String)> = body.records.iter().zip(types.iter()).collect();
    Ok(run(&state, &items, body.all_or_none, Operation::Update, |org, tx, (record, ty)| {
        let Some(id) = field_of(record, "Id").and_then(J::as_str) else {
            return Outcome::failed(vec![RecordError::new("MISSING_ARGUMENT", "Id not specified in an update call", vec![])]);
        };
        if let Some(e) = lock_fault(&state, Some(id), Some(record)) {
            return Outcome::failed(vec![e]);
        }
        let inputs: Vec<(&str, Input<'_>)> =
            record_inputs(record).into_iter().filter(|(k, _)| !k.eq_ignore_ascii_case("Id")).collect();
        match org.api_update_in(tx, Some(ty), id, &inputs) {
            Ok(id) => Outcome::ok(id, None),
            Err(errors) => Outcome::failed(errors),
        }
    }))
}

/// The text of an external-id value as a JSON record carries it.
fn key_text(v: Option<&J>) -> String {
    match v {
        None | Some(J::Null) => String::new(),
        Some(J::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

async fn upsert(
    State(state): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let object = params.get("object").map(String::as_str).unwrap_or_default();
    let field = params.get("field").map(String::as_str).unwrap_or_default();
    let (name, key_name, case_sensitive) = {
        let org = state.org.read();
        let table = org.table(object).ok_or_else(ApiError::not_found)?;
        let key = org.upsert_key_field(object, field).ok_or_else(|| {
            ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "NOT_FOUND",
                format!("Provided external ID field does not exist or is not accessible: {field}"),
            )
        })?;
        (table.def.name.clone(), key.name.clone(), key.case_sensitive || key.name == "Id")
    };
    let body = parse_collection(&headers, &body)?;
    let types = record_types(&state.org.read(), &body.records)?;
    let keys: Vec<String> = body.records.iter().map(|r| key_text(field_of(r, &key_name))).collect();
    let fold = |k: &str| if case_sensitive { k.to_owned() } else { k.to_lowercase() };
    let mut key_counts: HashMap<String, usize> = HashMap::new();
    for k in keys.iter().filter(|k| !k.is_empty()) {
        *key_counts.entry(fold(k)).or_default() += 1;
    }
    let items: Vec<(&Map<String, J>, &String, &String)> =
        body.records.iter().zip(types.iter()).zip(keys.iter()).map(|((r, t), k)| (r, t, k)).collect();
    Ok(run(&state, &items, body.all_or_none, Operation::Upsert, |org, tx, (record, ty, key)| {
        if !ty.eq_ignore_ascii_case(&name) {
            return Outcome::failed(vec![RecordError::new(
                "INVALID_TYPE",
                format!("Record type {ty} does not match the sObject type of the request, {name}"),
                vec![],
            )]);
        }
        if !key.is_empty() && key_counts.get(&fold(key)).copied().unwrap_or(0) > 1 {
            return Outcome::failed(vec![RecordError::new(
                "DUPLICATE_VALUE",
                format!("Duplicate external id specified: {key}"),
                vec![key_name.clone()],
            )]);
        }
        let target = if state.faults.locks_configured() { upsert_target(org, &name, &key_name, key) } else { None };
        if let Some(e) = lock_fault(&state, target.as_deref(), Some(record)) {
            return Outcome::failed(vec![e]);
        }
        let inputs: Vec<(&str, Input<'_>)> =
            record_inputs(record).into_iter().filter(|(k, _)| !k.eq_ignore_ascii_case("Id")).collect();
        match org.api_upsert_in(tx, &name, &key_name, key, &inputs) {
            Ok(UpsertOutcome::Created(id)) => Outcome::ok(id, Some(true)),
            Ok(UpsertOutcome::Updated(id)) => Outcome::ok(id, Some(false)),
            Ok(UpsertOutcome::MultipleMatches(ids)) => {
                Outcome::failed(vec![crate::org::write::multiple_external_matches(org, &name, &key_name, &ids)])
            }
            Err(errors) => Outcome::failed(errors),
        }
    }))
}

/// The existing record an upsert by `key` would write (the one record its key matches), which
/// is the row a lock would be taken on.
fn upsert_target(org: &Org, object: &str, key_name: &str, key: &str) -> Option<String> {
    if key.is_empty() {
        return None;
    }
    if key_name == "Id" {
        return Some(key.to_owned());
    }
    let table = org.table(object)?;
    let field = table.def.field(key_name)?;
    match crate::org::validate::find_by_text(table, field, key).as_slice() {
        [one] => Some(one.to_string()),
        _ => None,
    }
}

fn split_list(s: Option<&String>) -> Vec<String> {
    s.map(|s| s.split(',').map(str::trim).filter(|x| !x.is_empty()).map(str::to_owned).collect()).unwrap_or_default()
}

fn query_bool(query: &HashMap<String, String>, name: &str) -> bool {
    query.get(name).is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

async fn delete(State(state): State<AppState>, Query(query): Query<HashMap<String, String>>) -> Result<Response, ApiError> {
    let ids = split_list(query.get("ids"));
    if ids.is_empty() {
        return Err(ApiError::bad_request("MISSING_ARGUMENT", "ids: the list of record ids to delete is required"));
    }
    if ids.len() > MAX_RECORDS {
        return Err(too_many_records());
    }
    Ok(run(&state, &ids, query_bool(&query, "allOrNone"), Operation::Delete, |org, tx, id| {
        // A failure on a record that exists names it (recorded delete results carry the id of an
        // already-deleted record); a malformed or unknown id has none.
        let existing = SfId::parse(id).ok().filter(|p| org.find(p).is_some());
        let failed = |e: RecordError| Outcome { id: existing, errors: vec![e], created: None };
        if let Some(e) = lock_fault(&state, Some(id), None) {
            return failed(e);
        }
        match org.api_delete_in(tx, None, id) {
            Ok(id) => Outcome::ok(id, None),
            Err(e) => failed(e),
        }
    }))
}

/// Records of `object` by id with the requested fields; `null` for ids that are invalid, of
/// another object, unknown or deleted.
fn retrieve_records(
    state: &AppState,
    version: &str,
    object: &str,
    ids: &[String],
    fields: &[String],
) -> Result<Response, ApiError> {
    let org = state.org.read();
    let table = org.table(object).ok_or_else(ApiError::not_found)?;
    if ids.is_empty() || fields.is_empty() {
        return Err(ApiError::bad_request("MISSING_ARGUMENT", "ids and fields are required"));
    }
    if ids.len() > MAX_RETRIEVE_IDS {
        return Err(ApiError::bad_request(
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 2000 records into this call",
        ));
    }
    let defs = fields
        .iter()
        .map(|f| table.def.field(f).ok_or_else(|| no_such_column(f, &table.def.name)))
        .collect::<Result<Vec<_>, _>>()?;
    let out: Vec<J> = ids
        .iter()
        .map(|id| {
            let row = SfId::parse(id).ok().filter(|p| p.key_prefix() == table.def.key_prefix).and_then(|p| table.get(&p));
            let Some(row) = row.filter(|r| !table.is_deleted(r)) else { return J::Null };
            let id = table.id_of(row);
            let mut rec = Map::new();
            rec.insert("attributes".into(), Org::attributes_json(version, &table.def.name, Some(id.as_str())));
            for f in &defs {
                rec.insert(f.name.clone(), org.field_json(table, row, f));
            }
            J::Object(rec)
        })
        .collect();
    Ok(json_ok(&J::Array(out)))
}

async fn retrieve(
    State(state): State<AppState>,
    Extension(v): VersionExt,
    Path(params): Path<HashMap<String, String>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let object = params.get("object").map(String::as_str).unwrap_or_default();
    retrieve_records(&state, &v.0, object, &split_list(query.get("ids")), &split_list(query.get("fields")))
}

/// The POST form of retrieve, for id lists too long for a URL: `{"ids": [...], "fields": [...]}`.
async fn retrieve_post(
    State(state): State<AppState>,
    Extension(v): VersionExt,
    Path(params): Path<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let object = params.get("object").map(String::as_str).unwrap_or_default();
    let body = parse_json_body(&headers, &body)?;
    let list = |name: &str| -> Vec<String> {
        body.get(name)
            .and_then(J::as_array)
            .map(|a| a.iter().filter_map(J::as_str).map(str::to_owned).collect())
            .unwrap_or_default()
    };
    retrieve_records(&state, &v.0, object, &list("ids"), &list("fields"))
}
