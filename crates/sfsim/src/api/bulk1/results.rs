//! Bulk API 1.0 batch results: the result list and the result bodies, in the job's format.
//!
//! A CSV job's result list is XML and its results are CSV; an XML job answers XML throughout; a
//! JSON job answers JSON, with dates and datetimes as epoch milliseconds as Salesforce writes
//! them there (see [`RecordFormat::Bulk1Json`]).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Value as J, json};
use tidemark_core::SfId;

use super::{AppState, Batch, Bulk1Error, Call, ContentType, Params, Result1, authenticate, body_response, find_batch, find_job};
use crate::bulk::{self, CsvFormat, xml};
use crate::row::Row;
use crate::soql::{RecordFormat, SoqlQuery};

fn completed(batch: &Batch, call: &Call) -> Result1<(Arc<SoqlQuery>, Arc<Vec<Row>>, SfId)> {
    let inner = batch.inner.lock();
    match (&inner.query, inner.result_id) {
        (Some(q), Some(r)) if inner.state == "Completed" => Ok((q.clone(), inner.rows.clone(), r)),
        _ => Err(Bulk1Error::new("InvalidBatch", "Batch not completed").in_json(call.json)),
    }
}

pub(super) async fn result_list(State(state): State<AppState>, Path(params): Params, headers: HeaderMap) -> Result1<Response> {
    let mut call = authenticate(&state, &params, &headers)?;
    let job = find_job(&state, &mut call, &params)?;
    let batch = find_batch(&job, &call, &params)?;
    let (_, _, result_id) = completed(&batch, &call)?;
    if call.json {
        return Ok(call.finish(body_response(StatusCode::OK, true, json!([result_id.as_str()]).to_string())));
    }
    let mut out = String::with_capacity(256);
    xml::open_root(&mut out, "result-list");
    xml::element(&mut out, "result", result_id.as_str());
    out.push_str("</result-list>");
    Ok(call.finish(body_response(StatusCode::OK, false, out)))
}

pub(super) async fn result(State(state): State<AppState>, Path(params): Params, headers: HeaderMap) -> Result1<Response> {
    let mut call = authenticate(&state, &params, &headers)?;
    let job = find_job(&state, &mut call, &params)?;
    let batch = find_batch(&job, &call, &params)?;
    let (query, rows, result_id) = completed(&batch, &call)?;
    if params.get("result").and_then(|r| SfId::parse(r).ok()) != Some(result_id) {
        return Err(Bulk1Error::new("InvalidBatch", "Unable to find result for the given id").in_json(call.json));
    }
    let compress = bulk::wants_gzip(&headers);
    let render_state = state.clone();
    let version = job.api_version.clone();
    let content_type = job.content_type;
    let body = tokio::task::spawn_blocking(move || {
        let org = render_state.org.read();
        match content_type {
            ContentType::Csv => bulk::results::render_page(&org, &query, &query.columns(), &rows, CsvFormat::default()),
            ContentType::Json => {
                let records: Vec<J> =
                    rows.iter().map(|r| query.record_json_as(&org, &version, r, RecordFormat::Bulk1Json)).collect();
                J::Array(records).to_string()
            }
            ContentType::Xml => {
                let mut out = String::with_capacity(rows.len() * 128 + 256);
                out.push_str(xml::DECLARATION);
                out.push_str("<queryResult xmlns=\"");
                out.push_str(xml::NAMESPACE);
                out.push_str("\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">");
                for r in rows.iter() {
                    xml::record_xml(&mut out, "records", &query.record_json_as(&org, &version, r, RecordFormat::Bulk1Xml));
                }
                out.push_str("</queryResult>");
                out
            }
        }
    })
    .await
    .map_err(|_| Bulk1Error::new("Unknown", "Rendering the result failed").in_json(call.json))?;
    let mime = match content_type {
        ContentType::Csv => "text/csv",
        ContentType::Json => "application/json",
        ContentType::Xml => "application/xml",
    };
    let mut resp = bulk::csv_response(body, compress, &[]);
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    Ok(call.finish(resp))
}
