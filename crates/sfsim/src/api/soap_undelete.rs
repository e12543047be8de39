//! The partner SOAP API's `undelete()` call (`POST /services/Soap/u/NN.N`), as restore tools
//! send it:
//!
//! ```xml
//! <soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:partner.soap.sforce.com">
//!   <soapenv:Header><urn:SessionHeader><urn:sessionId>…</urn:sessionId></urn:SessionHeader></soapenv:Header>
//!   <soapenv:Body><urn:undelete><urn:ids>001…</urn:ids><urn:ids>003…</urn:ids></urn:undelete></soapenv:Body>
//! </soapenv:Envelope>
//! ```
//!
//! The answer is the partner WSDL's `undeleteResponse`, one `UndeleteResult` per id in request
//! order, its elements in the WSDL's sequence (`errors*`, `id`, `success`; an `Error` is
//! `fields*`, `message`, `statusCode`, with `<fields xsi:nil="true"/>` when no field is named, as
//! recorded partner responses print it), with the `LimitInfoHeader` SOAP responses carry. A
//! failed result names the record when the id names one (as recorded delete and merge failures
//! do), else its id is nil:
//!
//! ```xml
//! <soapenv:Body><undeleteResponse>
//!   <result><id>001…</id><success>true</success></result>
//!   <result><errors><fields xsi:nil="true"/><message>Entity is not in the recycle bin</message>
//!     <statusCode>UNDELETE_FAILED</statusCode></errors><id>003…</id><success>false</success></result>
//!   <result><errors><fields xsi:nil="true"/><message>malformed id 001x</message>
//!     <statusCode>MALFORMED_ID</statusCode></errors><id xsi:nil="true"/><success>false</success></result>
//! </undeleteResponse></soapenv:Body>
//! ```
//!
//! Per-id semantics are [`Org::api_undelete_in`]'s. An id restored earlier in the same call (a
//! master-detail child its master brought back) reports success. `<AllOrNoneHeader>` with
//! `allOrNone` true rolls every restore back when one id fails; the others then report
//! `ALL_OR_NONE_OPERATION_ROLLED_BACK`. A missing, unknown or expired session is the
//! `sf:INVALID_SESSION_ID` fault; the call counts against the daily API allocation
//! (`sf:REQUEST_LIMIT_EXCEEDED` once it is used up); more than 200 ids is `sf:EXCEEDED_ID_LIMIT`.
//! Row-lock faults ([`crate::faults::FaultConfig::lock_row_ids`], `lock_row_rate`) apply per id.

use std::collections::HashSet;

use axum::http::StatusCode;
use axum::response::Response;
use tidemark_core::SfId;

use super::AppState;
use super::records::lock_error;
use super::soap::{PARTNER_NS, SOAP_ENV_NS, element, sf_fault, xml_response};
use crate::org::Org;
use crate::org::write::RecordError;

/// Ids one `undelete()` call may carry (the WSDL's `maxOccurs`).
pub const MAX_IDS: usize = 200;

const ROLLED_BACK: &str = "Record rolled back because not all records were valid and the request was using AllOrNone header";

/// Serves one `undelete()` call.
pub fn undelete(state: &AppState, session_id: Option<&str>, all_or_none: bool, ids: &[String]) -> Response {
    let now = state.now_millis();
    if session_id.and_then(|t| state.auth.validate(t, now)).is_none() {
        return sf_fault(
            "INVALID_SESSION_ID",
            "Invalid Session ID found in SessionHeader: Illegal Session",
            "UnexpectedErrorFault",
        );
    }
    let (used, max) = match state.usage.try_consume(now) {
        Ok(counts) => counts,
        Err(_) => return sf_fault("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", "UnexpectedErrorFault"),
    };
    if ids.len() > MAX_IDS {
        return sf_fault(
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call",
            "UnexpectedErrorFault",
        );
    }
    let outcomes = {
        let mut org = state.org.write();
        run(state, &mut org, all_or_none, ids)
    };
    let failed = outcomes.iter().filter(|o| o.is_err()).count();
    tracing::debug!(ids = ids.len(), failed, all_or_none, "SOAP undelete");
    xml_response(StatusCode::OK, render(&outcomes, used, max))
}

/// One id's result: the restored id, or the error with the id it names (see [`failure_id`]).
type Outcome = Result<SfId, (Option<SfId>, RecordError)>;

/// The id a failed result carries: the record's, when the id names one (a record in the org, or
/// one that was there), as real delete and merge results carry it; none when it is malformed or
/// names nothing.
fn failure_id(org: &Org, id: &str, e: &RecordError) -> Option<SfId> {
    let parsed = SfId::parse(id).ok()?;
    let known = org.table_for_id(&parsed).is_some() && (org.find(&parsed).is_some() || org.was_removed(&parsed));
    (known && e.status_code != "MALFORMED_ID" && e.status_code != "INVALID_CROSS_REFERENCE_KEY").then_some(parsed)
}

/// Undeletes each id in order, in one transaction when `all_or_none`.
fn run(state: &AppState, org: &mut Org, all_or_none: bool, ids: &[String]) -> Vec<Outcome> {
    // Records in the recycle bin when the call started: one an earlier id brought back with it
    // counts as undeleted.
    let in_bin: HashSet<SfId> = ids
        .iter()
        .filter_map(|id| SfId::parse(id).ok())
        .filter(|id| org.find(id).is_some_and(|(t, r)| t.is_deleted(r)))
        .collect();
    let mut tx = all_or_none.then(|| org.begin_transaction());
    let mut outcomes = Vec::with_capacity(ids.len());
    for id in ids {
        let result = if let Some(hit) = state.faults.row_lock(&[id.as_str()]) {
            Err(lock_error(hit.id.as_deref()))
        } else {
            let parsed = SfId::parse(id).ok();
            match parsed.filter(|p| in_bin.contains(p) && org.find(p).is_some_and(|(t, r)| !t.is_deleted(r))) {
                Some(p) => Ok(p),
                None => org.api_undelete_in(tx.as_mut(), id),
            }
        };
        outcomes.push(result.map_err(|e| (failure_id(org, id, &e), e)));
    }
    if let Some(tx) = tx
        && outcomes.iter().any(Result::is_err)
    {
        org.rollback(tx);
        for o in outcomes.iter_mut() {
            if let Ok(id) = o {
                *o = Err((Some(*id), RecordError::new("ALL_OR_NONE_OPERATION_ROLLED_BACK", ROLLED_BACK, vec![])));
            }
        }
    }
    outcomes
}

/// The `undeleteResponse` envelope.
fn render(outcomes: &[Outcome], used: u64, max: u64) -> String {
    let mut out = String::with_capacity(512 + outcomes.len() * 160);
    out.push_str(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    out.push_str(&format!(
        r#"<soapenv:Envelope xmlns:soapenv="{SOAP_ENV_NS}" xmlns="{PARTNER_NS}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">"#
    ));
    out.push_str("<soapenv:Header><LimitInfoHeader><limitInfo>");
    element(&mut out, "current", &used.to_string());
    element(&mut out, "limit", &max.to_string());
    element(&mut out, "type", "API REQUESTS");
    out.push_str("</limitInfo></LimitInfoHeader></soapenv:Header>");
    out.push_str("<soapenv:Body><undeleteResponse>");
    for outcome in outcomes {
        out.push_str("<result>");
        match outcome {
            Ok(id) => {
                element(&mut out, "id", id.as_str());
                element(&mut out, "success", "true");
            }
            Err((id, e)) => {
                out.push_str("<errors>");
                if e.fields.is_empty() {
                    out.push_str(r#"<fields xsi:nil="true"/>"#);
                }
                for f in &e.fields {
                    element(&mut out, "fields", f);
                }
                element(&mut out, "message", &e.message);
                element(&mut out, "statusCode", &e.status_code);
                out.push_str("</errors>");
                match id {
                    Some(id) => element(&mut out, "id", id.as_str()),
                    None => out.push_str(r#"<id xsi:nil="true"/>"#),
                }
                element(&mut out, "success", "false");
            }
        }
        out.push_str("</result>");
    }
    out.push_str("</undeleteResponse></soapenv:Body></soapenv:Envelope>");
    out
}
