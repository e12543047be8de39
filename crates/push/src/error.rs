//! Errors of push flows, classified for the scheduler.

use tidemark_lake::LakeError;
use tidemark_lake::arrow::error::ArrowError;
use tidemark_lake::datafusion::error::DataFusionError;

pub type Result<T, E = PushError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("push {flow}: {message}")]
    Invalid { flow: String, message: String },
    /// Two rows of the result share a key: which one to send cannot be known.
    #[error("push {flow}: the result has more than one row with the key ({key}); a flow's key must identify one row")]
    DuplicateKey { flow: String, key: String },
    #[error("push {flow}: a row of the result has no value in the key column {column}")]
    NullKey { flow: String, column: String },
    #[error("push {flow}: the snapshot table does not have the layout this flow writes: {detail}")]
    Layout { flow: String, detail: String },
    /// A restore that cannot run as asked (an object, a field, the selection).
    #[error("restore {object}: {message}")]
    Restore { object: String, message: String },
    #[error(transparent)]
    Query(#[from] DataFusionError),
    #[error(transparent)]
    Arrow(#[from] ArrowError),
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error(transparent)]
    Sql(#[from] tidemark_query::QueryError),
    #[error(transparent)]
    Salesforce(#[from] tidemark_salesforce::SalesforceError),
}

impl PushError {
    /// Worth retrying unchanged: storage and transport trouble, and Salesforce's transient
    /// errors; everything else needs a change to the flow, its query, the data or the org.
    pub fn is_retryable(&self) -> bool {
        match self {
            PushError::Lake(e) => e.is_retryable(),
            PushError::Salesforce(e) => e.class() == tidemark_salesforce::ErrorClass::Retryable,
            _ => false,
        }
    }
}
