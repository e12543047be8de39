//! Types shared by every write path (sObject Collections, Bulk API 2.0 ingest, SOAP undelete):
//! the neutral input row, per-row outcomes and the error that keeps the outcomes known so far.
//!
//! # Input rows
//!
//! A [`Record`] is a map of field API name → JSON value:
//!
//! | value | Collections (JSON) | Bulk 2.0 (CSV cell) |
//! |---|---|---|
//! | field absent | not sent: unchanged on update/upsert, default on insert | empty cell: ignored (unchanged / default) |
//! | `null` | `null`: sets the field to null | `#N/A`: sets the field to null |
//! | `""` | `""` (Salesforce stores empty text as null) | `#N/A` (an empty cell would be *ignored*, not cleared) |
//! | string | as is | as is, quoted when needed, never trimmed |
//! | bool | as is | `true` / `false` |
//! | number | as is | its JSON text (`12.50`, `-3`); pass decimals as strings to keep every digit |
//! | array of strings | `;`-joined (multi-select picklist) | `;`-joined |
//! | object | as is: a relationship by external id, `{"Ext__c": "X"}` (with `attributes.type` for polymorphic ones) | one column per key: `Account.Ext__c`, or `Type:Rel.Ext__c` when it has `attributes.type` |
//!
//! Dates are `yyyy-MM-dd` strings and datetimes ISO 8601 with an offset or `Z`
//! (`2025-01-06T09:00:00.000Z`), as both APIs accept. A string that is literally `#N/A` cannot be
//! written through Bulk (it means null there); use Collections for it.

use serde::Deserialize;

use crate::error::{ErrorClass, SalesforceError};

/// One input row: field API name → value (see the module docs for the conversions).
pub type Record = serde_json::Map<String, serde_json::Value>;

/// One error of a row, as Salesforce reports it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RowError {
    /// `REQUIRED_FIELD_MISSING`, `DUPLICATE_VALUE`, `UNABLE_TO_LOCK_ROW`, …
    pub status_code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub fields: Vec<String>,
}

impl RowError {
    /// Transient contention: the row was not written and may be sent again.
    pub fn is_retryable(&self) -> bool {
        self.status_code == "UNABLE_TO_LOCK_ROW"
    }

    /// Parses Bulk's `sf__Error` text, `STATUS_CODE:message:field1,field2 --` (or `…:--` without
    /// fields). The message may itself hold colons: the code is before the first one, the
    /// fields after the last one.
    pub fn from_bulk_text(text: &str) -> RowError {
        let text = text.trim();
        let Some((code, rest)) = text.split_once(':') else {
            return RowError { status_code: text.to_owned(), message: String::new(), fields: Vec::new() };
        };
        let rest = rest.strip_suffix("--").unwrap_or(rest).trim_end();
        let (message, fields) = match rest.rsplit_once(':') {
            Some((m, f)) => (m, f.trim()),
            None => (rest, ""),
        };
        let fields = fields.split(',').map(str::trim).filter(|f| !f.is_empty()).map(str::to_owned).collect();
        RowError { status_code: code.to_owned(), message: message.to_owned(), fields }
    }
}

/// What happened to one input row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowOutcome {
    /// Written. `created` is true when the row created a record (an insert, or an upsert that
    /// matched nothing).
    Success { id: String, created: bool },
    /// Refused by Salesforce with these errors (nothing written for the row).
    Failed { errors: Vec<RowError> },
    /// Never reached Salesforce's processing (an earlier request failed, the budget ran out, or
    /// a Bulk job ended before the row): sending it again is safe.
    NotProcessed,
    /// Sent, but the answer was lost (see [`ErrorClass::OutcomeUnknown`]): it may or may not
    /// have been written.
    Unknown,
}

impl RowOutcome {
    pub fn is_success(&self) -> bool {
        matches!(self, RowOutcome::Success { .. })
    }

    /// The record id of a successful row.
    pub fn id(&self) -> Option<&str> {
        match self {
            RowOutcome::Success { id, .. } => Some(id),
            _ => None,
        }
    }

    /// The errors of a failed row (empty otherwise).
    pub fn errors(&self) -> &[RowError] {
        match self {
            RowOutcome::Failed { errors } => errors,
            _ => &[],
        }
    }

    pub(crate) fn is_lock_failure(&self) -> bool {
        let errors = self.errors();
        !errors.is_empty() && errors.iter().all(RowError::is_retryable)
    }
}

/// A write that stopped on a whole-request failure (budget, quota, auth, transport). `outcomes`
/// still has one entry per input row, in input order: what was done before the failure, and
/// [`RowOutcome::NotProcessed`] / [`RowOutcome::Unknown`] for the rest. Converting it into a
/// [`SalesforceError`] drops the outcomes.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct WriteError {
    #[source]
    pub error: SalesforceError,
    pub outcomes: Vec<RowOutcome>,
}

impl WriteError {
    pub fn class(&self) -> ErrorClass {
        self.error.class()
    }
}

impl From<WriteError> for SalesforceError {
    fn from(e: WriteError) -> SalesforceError {
        e.error
    }
}

/// Sends the rows `chunk` (positions into `outcomes`) with `send`, then re-sends the rows that
/// failed only with `UNABLE_TO_LOCK_ROW`, with the client's backoff, until none is left or the
/// retry policy's attempts are used. A whole-request failure stops it; rows of a request whose
/// answer was lost become [`RowOutcome::Unknown`], rows of a lock retry keep their lock failure.
pub(crate) async fn send_with_lock_retries<F, Fut>(
    client: &crate::client::SalesforceClient,
    outcomes: &mut [RowOutcome],
    chunk: Vec<usize>,
    mut send: F,
) -> Result<(), SalesforceError>
where
    F: FnMut(Vec<usize>) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<RowOutcome>, SalesforceError>>,
{
    let max_attempts = client.config().retry.max_attempts.max(1);
    let mut pending = chunk;
    let mut attempt = 1;
    loop {
        let results = match send(pending.clone()).await {
            Ok(r) => r,
            Err(error) => {
                if matches!(error, SalesforceError::OutcomeUnknown { .. }) {
                    for &i in &pending {
                        outcomes[i] = RowOutcome::Unknown;
                    }
                }
                return Err(error);
            }
        };
        let mut locked = Vec::new();
        for (&i, outcome) in pending.iter().zip(results) {
            if outcome.is_lock_failure() {
                locked.push(i);
            }
            outcomes[i] = outcome;
        }
        if locked.is_empty() || attempt >= max_attempts {
            return Ok(());
        }
        let wait = client.config().retry.backoff(attempt, None);
        tracing::warn!(attempt, rows = locked.len(), wait_ms = wait.as_millis() as u64, "re-sending rows that hit row locks");
        tokio::time::sleep(wait).await;
        attempt += 1;
        pending = locked;
    }
}

/// A JSON value as Collections sends it: arrays of strings become `;`-joined text.
pub(crate) fn json_value(field: &str, row: usize, value: &serde_json::Value) -> Result<serde_json::Value, SalesforceError> {
    match value {
        serde_json::Value::Array(items) => Ok(serde_json::Value::String(join_multi(field, row, items)?)),
        other => Ok(other.clone()),
    }
}

/// `;`-joins a multi-select picklist value.
pub(crate) fn join_multi(field: &str, row: usize, items: &[serde_json::Value]) -> Result<String, SalesforceError> {
    let mut out = String::new();
    for (i, item) in items.iter().enumerate() {
        let serde_json::Value::String(s) = item else {
            return Err(SalesforceError::InvalidInput(format!(
                "row {row}, field {field}: an array value must hold strings (a multi-select picklist)"
            )));
        };
        if i > 0 {
            out.push(';');
        }
        out.push_str(s);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bulk_error_texts() {
        let e =
            RowError::from_bulk_text("INVALID_FIELD:Number of fields in header is different from the row. header = 4 row = 3:--");
        assert_eq!(e.status_code, "INVALID_FIELD");
        assert_eq!(e.message, "Number of fields in header is different from the row. header = 4 row = 3");
        assert!(e.fields.is_empty());
        let e = RowError::from_bulk_text("REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --");
        assert_eq!(e.status_code, "REQUIRED_FIELD_MISSING");
        assert_eq!(e.message, "Required fields are missing: [Name]");
        assert_eq!(e.fields, vec!["Name".to_owned()]);
        let e = RowError::from_bulk_text("DUPLICATE_VALUE:a: b:A__c,B__c --");
        assert_eq!((e.message.as_str(), e.fields.len()), ("a: b", 2));
        assert_eq!(RowError::from_bulk_text("WEIRD").status_code, "WEIRD");
    }
}
