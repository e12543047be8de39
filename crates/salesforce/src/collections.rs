//! sObject Collections writes (`/composite/sobjects`): create, update, upsert by external id,
//! delete. Up to 200 records per request, always `allOrNone: false`, one outcome per input row in
//! input order.
//!
//! # Contract
//!
//! - **Per-row results, never raised.** A row Salesforce refuses (a required field missing, a
//!   duplicate value, a bad id) is [`RowOutcome::Failed`] with Salesforce's `statusCode`,
//!   `message` and `fields`; the other rows of the request are still written.
//! - **Row locks are retried.** Rows failing with `UNABLE_TO_LOCK_ROW` (and only those) are sent
//!   again, with the client's backoff, until they pass or the retry policy's `max_attempts` is
//!   reached; then their lock error is their outcome. A locked row was not written, so this is
//!   safe for inserts too.
//! - **Whole-request failures** go through [`SalesforceClient::execute`]: transient ones are
//!   retried there; what remains stops the write with a [`WriteError`] that keeps the outcomes of
//!   the requests already answered (rows not sent are [`RowOutcome::NotProcessed`]).
//! - **Idempotency.** Update, upsert and delete may be repeated: the effect is the same (a repeated
//!   upsert reports `created: false`, a repeated delete `ENTITY_IS_DELETED` for rows the first
//!   attempt deleted). **Create is not idempotent**: a create whose answer was lost is not
//!   repeated; its rows become [`RowOutcome::Unknown`] and the error is
//!   [`SalesforceError::OutcomeUnknown`]. Reconcile (e.g. by an external id) before sending them
//!   again, or prefer an upsert on an external id, which is safe to repeat.
//!
//! Values are converted as described in [`crate::write`].

use serde::Deserialize;
use serde_json::{Map, Value as J, json};

use crate::client::{Request, SalesforceClient};
use crate::error::SalesforceError;
use crate::write::{Record, RowError, RowOutcome, WriteError, json_value, send_with_lock_retries};

/// Records per Collections request (Salesforce's limit).
pub const MAX_COLLECTION_RECORDS: usize = 200;

/// One element of a Collections answer.
#[derive(Debug, Deserialize)]
struct SaveResult {
    #[serde(default)]
    id: Option<String>,
    success: bool,
    #[serde(default)]
    errors: Vec<RowError>,
    #[serde(default)]
    created: Option<bool>,
}

#[derive(Debug, Clone, Copy)]
enum Op<'a> {
    Create,
    Update,
    Upsert { external_id_field: &'a str },
    Delete,
}

impl SalesforceClient {
    /// Inserts `rows` as new `object` records. **Not idempotent** (see the module docs).
    pub async fn collections_create(&self, object: &str, rows: &[Record]) -> Result<Vec<RowOutcome>, WriteError> {
        let payloads = records(object, rows, None)?;
        self.collections_write(Op::Create, object, payloads).await
    }

    /// Updates records by the `Id` each row carries; fields a row leaves out are unchanged.
    pub async fn collections_update(&self, object: &str, rows: &[Record]) -> Result<Vec<RowOutcome>, WriteError> {
        let payloads = records(object, rows, Some("Id"))?;
        self.collections_write(Op::Update, object, payloads).await
    }

    /// Upserts by `external_id_field` (`PATCH /composite/sobjects/{object}/{field}`): a row whose
    /// key matches no record creates one (`created: true`), a match is updated.
    pub async fn collections_upsert(
        &self,
        object: &str,
        external_id_field: &str,
        rows: &[Record],
    ) -> Result<Vec<RowOutcome>, WriteError> {
        let payloads = records(object, rows, Some(external_id_field))?;
        self.collections_write(Op::Upsert { external_id_field }, object, payloads).await
    }

    /// Deletes records by id (to the recycle bin; see [`SalesforceClient::undelete`]).
    pub async fn collections_delete(&self, ids: &[impl AsRef<str>]) -> Result<Vec<RowOutcome>, WriteError> {
        let payloads = ids.iter().map(|id| J::String(id.as_ref().to_owned())).collect();
        self.collections_write(Op::Delete, "", payloads).await
    }

    async fn collections_write(&self, op: Op<'_>, object: &str, payloads: Vec<J>) -> Result<Vec<RowOutcome>, WriteError> {
        let mut outcomes = vec![RowOutcome::NotProcessed; payloads.len()];
        let all: Vec<usize> = (0..payloads.len()).collect();
        for chunk in all.chunks(MAX_COLLECTION_RECORDS) {
            let send = |rows: Vec<usize>| {
                let payloads = &payloads;
                async move { self.send_collection(op, object, payloads, &rows).await }
            };
            if let Err(error) = send_with_lock_retries(self, &mut outcomes, chunk.to_vec(), send).await {
                return Err(WriteError { error, outcomes });
            }
        }
        Ok(outcomes)
    }

    /// One request for the rows `indices` of `payloads`; one outcome per row, in order.
    async fn send_collection(
        &self,
        op: Op<'_>,
        object: &str,
        payloads: &[J],
        indices: &[usize],
    ) -> Result<Vec<RowOutcome>, SalesforceError> {
        let base = format!("{}/composite/sobjects", self.data_path());
        let body = || json!({ "allOrNone": false, "records": indices.iter().map(|&i| payloads[i].clone()).collect::<Vec<_>>() });
        let req = match op {
            Op::Create => Request::post_json(base, body()).non_idempotent(),
            Op::Update => Request::patch_json(base, body()),
            Op::Upsert { external_id_field } => Request::patch_json(format!("{base}/{object}/{external_id_field}"), body()),
            Op::Delete => {
                let ids: Vec<&str> = indices.iter().map(|&i| payloads[i].as_str().unwrap_or_default()).collect();
                Request::delete(base).query("ids", ids.join(",")).query("allOrNone", "false")
            }
        };
        let resp = self.execute(&req).await?;
        let results: Vec<SaveResult> = match resp.json("sObject Collections result") {
            Ok(r) => r,
            // The request was applied; what it did is not known.
            Err(e) => return Err(unknown(&req, e)),
        };
        if results.len() != indices.len() {
            let detail = format!("{} results for {} records", results.len(), indices.len());
            return Err(unknown(&req, SalesforceError::Decode { what: "sObject Collections result".into(), detail }));
        }
        Ok(results
            .into_iter()
            .map(|r| match (r.success, r.id) {
                (true, Some(id)) => {
                    let created = match op {
                        Op::Create => true,
                        Op::Upsert { .. } => r.created.unwrap_or(false),
                        Op::Update | Op::Delete => false,
                    };
                    RowOutcome::Success { id, created }
                }
                (true, None) => RowOutcome::Failed {
                    errors: vec![RowError {
                        status_code: "UNKNOWN_EXCEPTION".into(),
                        message: "Salesforce reported success without a record id".into(),
                        fields: Vec::new(),
                    }],
                },
                (false, _) => RowOutcome::Failed { errors: r.errors },
            })
            .collect())
    }
}

fn unknown(req: &Request, source: SalesforceError) -> SalesforceError {
    SalesforceError::OutcomeUnknown { what: format!("{} {}", req.method, req.path), source: Box::new(source) }
}

/// Each row as a Collections record (`attributes.type` first). `required` names a key every row
/// must carry (case-insensitively): the `Id` of an update, the external id of an upsert.
fn records(object: &str, rows: &[Record], required: Option<&str>) -> Result<Vec<J>, WriteError> {
    let invalid = |message: String| WriteError {
        error: SalesforceError::InvalidInput(message),
        outcomes: vec![RowOutcome::NotProcessed; rows.len()],
    };
    let mut out = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        if let Some(key) = required
            && !row.keys().any(|k| k.eq_ignore_ascii_case(key))
        {
            return Err(invalid(format!("row {i} has no {key}")));
        }
        let mut rec = Map::with_capacity(row.len() + 1);
        rec.insert("attributes".into(), json!({ "type": object }));
        for (field, value) in row {
            if field == "attributes" {
                return Err(invalid(format!("row {i}: `attributes` is set by the client")));
            }
            rec.insert(field.clone(), json_value(field, i, value).map_err(|e| invalid(e.to_string()))?);
        }
        out.push(J::Object(rec));
    }
    Ok(out)
}
