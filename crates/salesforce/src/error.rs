//! Client errors, classified so a scheduler can decide what to do without parsing messages.

use std::time::Duration;

/// What kind of failure an error is, for retry and reporting decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Transient: 5xx, dropped connections, row locks, concurrent-request limits. Retry later.
    Retryable,
    /// Credentials or session: fix the configuration (or re-authenticate, which the client
    /// already tried).
    Auth,
    /// The org's API allocation (or our configured share of it) is used up. Resume later.
    Quota,
    /// The request itself is wrong (bad SOQL, unknown object or field). Retrying won't help.
    InvalidRequest,
    /// A write that is not safe to repeat (an insert, a Bulk upload) was sent, but no answer
    /// came back (the connection broke or timed out after sending): Salesforce may or may not
    /// have applied it. Repeating it blindly may duplicate records; reconcile first (query by
    /// an external id, or read the Bulk job's results by its id).
    OutcomeUnknown,
}

/// An error from Salesforce or from talking to it. Messages never contain secrets or record
/// values: Salesforce's own error messages are kept, our own name only ids and counts.
#[derive(Debug, thiserror::Error)]
pub enum SalesforceError {
    /// Salesforce answered with an error body (`[{errorCode, message}]`).
    #[error("Salesforce answered {status} {error_code}: {message}")]
    Api { status: u16, error_code: String, message: String, retry_after: Option<Duration> },

    /// The OAuth token endpoint refused the credentials.
    #[error("authentication failed: {error}: {description}")]
    OAuth { error: String, description: String },

    /// The connection failed or broke mid-response.
    #[error("could not reach Salesforce at {url}")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },

    /// A response did not have the shape we expected.
    #[error("unexpected response from {what}: {detail}")]
    Decode { what: String, detail: String },

    /// We stopped because the configured share of the daily allocation is used.
    #[error(
        "stopped to stay within the API budget: {used} of {max} daily requests used (budget {budget_percent}%); the next run resumes"
    )]
    BudgetExhausted { used: u64, max: u64, budget_percent: u32 },

    /// A Bulk job ended `Failed` or `Aborted`.
    #[error("Bulk job {job_id} ended {state}: {message}")]
    BulkJob { job_id: String, state: String, message: String },

    /// Configuration that cannot work (e.g. an unreadable private key).
    #[error("invalid client configuration: {0}")]
    Config(String),

    /// A SOAP API fault (`<soapenv:Fault>`): `code` is the `sf:` exception code without its
    /// prefix (`INVALID_SESSION_ID`), or `Client`/`Server` for SOAP's own fault codes.
    #[error("Salesforce SOAP fault {code}: {message}")]
    SoapFault { code: String, message: String },

    /// Input the client refuses before sending anything (e.g. a value that has no CSV form). The
    /// message names fields and row positions, never values.
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// A non-idempotent write was sent but its answer was lost (see
    /// [`ErrorClass::OutcomeUnknown`]). `source` is the transport failure.
    #[error("the outcome of {what} is unknown: {source}")]
    OutcomeUnknown {
        what: String,
        #[source]
        source: Box<SalesforceError>,
    },
}

impl SalesforceError {
    pub fn class(&self) -> ErrorClass {
        match self {
            SalesforceError::Api { status, error_code, message, .. } => classify_api(*status, error_code, message),
            SalesforceError::OAuth { .. } => ErrorClass::Auth,
            SalesforceError::Transport { .. } => ErrorClass::Retryable,
            // A truncated body looks like a decode error; the request is safe to repeat.
            SalesforceError::Decode { .. } => ErrorClass::Retryable,
            SalesforceError::BudgetExhausted { .. } => ErrorClass::Quota,
            SalesforceError::BulkJob { .. } => ErrorClass::Retryable,
            SalesforceError::Config(_) => ErrorClass::InvalidRequest,
            SalesforceError::SoapFault { code, message } => classify_soap(code, message),
            SalesforceError::InvalidInput(_) => ErrorClass::InvalidRequest,
            SalesforceError::OutcomeUnknown { .. } => ErrorClass::OutcomeUnknown,
        }
    }

    pub fn is_retryable(&self) -> bool {
        self.class() == ErrorClass::Retryable
    }

    /// The Salesforce error code, when there is one.
    pub fn error_code(&self) -> Option<&str> {
        match self {
            SalesforceError::Api { error_code, .. } => Some(error_code),
            SalesforceError::SoapFault { code, .. } => Some(code),
            _ => None,
        }
    }
}

fn classify_api(status: u16, code: &str, message: &str) -> ErrorClass {
    match code {
        "INVALID_SESSION_ID" | "INVALID_AUTH_HEADER" => ErrorClass::Auth,
        "REQUEST_LIMIT_EXCEEDED" => request_limit_class(message),
        "UNABLE_TO_LOCK_ROW" | "SERVER_UNAVAILABLE" | "UNKNOWN_EXCEPTION" | "QUERY_TIMEOUT" => ErrorClass::Retryable,
        _ if status == 401 => ErrorClass::Auth,
        _ if status >= 500 || status == 429 => ErrorClass::Retryable,
        _ => ErrorClass::InvalidRequest,
    }
}

/// SOAP answers every fault with HTTP 500, so the code alone decides: Salesforce's `sf:` codes
/// as for REST, SOAP's `Server` fault as transient, anything else as a bad request.
fn classify_soap(code: &str, message: &str) -> ErrorClass {
    match code {
        "Server" => ErrorClass::Retryable,
        _ => classify_api(400, code, message),
    }
}

/// Distinguishes the two meanings of `REQUEST_LIMIT_EXCEEDED`: the concurrent long-running
/// request limit (transient) and the daily allocation (quota).
fn request_limit_class(message: &str) -> ErrorClass {
    if message.contains("Concurrent") || message.contains("concurrent") { ErrorClass::Retryable } else { ErrorClass::Quota }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: &str, message: &str) -> SalesforceError {
        SalesforceError::Api { status, error_code: code.into(), message: message.into(), retry_after: None }
    }

    #[test]
    fn classifies_salesforce_errors() {
        assert_eq!(api(401, "INVALID_SESSION_ID", "Session expired or invalid").class(), ErrorClass::Auth);
        assert_eq!(api(500, "UNKNOWN_EXCEPTION", "x").class(), ErrorClass::Retryable);
        assert_eq!(api(503, "SERVER_UNAVAILABLE", "x").class(), ErrorClass::Retryable);
        assert_eq!(api(400, "UNABLE_TO_LOCK_ROW", "x").class(), ErrorClass::Retryable);
        assert_eq!(api(400, "MALFORMED_QUERY", "x").class(), ErrorClass::InvalidRequest);
        assert_eq!(api(404, "NOT_FOUND", "x").class(), ErrorClass::InvalidRequest);
        assert_eq!(api(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.").class(), ErrorClass::Quota);
        assert_eq!(api(403, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded.").class(), ErrorClass::Retryable);
    }

    #[test]
    fn classifies_soap_faults_by_code_not_by_their_http_500() {
        let fault = |code: &str| SalesforceError::SoapFault { code: code.into(), message: "m".into() };
        assert_eq!(fault("INVALID_SESSION_ID").class(), ErrorClass::Auth);
        assert_eq!(fault("INVALID_SESSION_ID").error_code(), Some("INVALID_SESSION_ID"));
        assert_eq!(fault("UNKNOWN_EXCEPTION").class(), ErrorClass::Retryable);
        assert_eq!(fault("Server").class(), ErrorClass::Retryable);
        assert_eq!(fault("INVALID_ID_FIELD").class(), ErrorClass::InvalidRequest);
        assert_eq!(fault("Client").class(), ErrorClass::InvalidRequest);
        let unknown = SalesforceError::OutcomeUnknown { what: "x".into(), source: Box::new(fault("Server")) };
        assert_eq!(unknown.class(), ErrorClass::OutcomeUnknown);
    }
}
