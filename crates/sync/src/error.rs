use tidemark_lake::LakeError;
use tidemark_lake::arrow::error::ArrowError;
use tidemark_lake::datafusion::error::DataFusionError;
use tidemark_lake::ingest::IngestError;
use tidemark_salesforce::{ErrorClass, SalesforceError};

/// Errors of a sync. Messages name objects, fields and counts, never record values.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Salesforce(#[from] SalesforceError),
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error("{object}: converting results failed: {source}")]
    Convert {
        object: String,
        #[source]
        source: ArrowError,
    },
    #[error("{object}: comparing with the lake failed: {source}")]
    Compare {
        object: String,
        #[source]
        source: Box<DataFusionError>,
    },
    #[error("unknown object '{name}'{hint}")]
    UnknownObject { name: String, hint: String },
    #[error(transparent)]
    Config(#[from] tidemark_core::ConfigError),
    #[error("object '{name}' is not synced: {reason}")]
    SkippedObject { name: String, reason: String },
    /// The lake stopped taking the object's versions (its error is reported instead).
    #[error("{object}: the lake stopped taking versions")]
    LakeStopped { object: String },
    #[error(transparent)]
    Ingest(Box<IngestError>),
}

impl From<IngestError> for SyncError {
    fn from(e: IngestError) -> SyncError {
        match e {
            IngestError::Lake(e) => SyncError::Lake(e),
            other => SyncError::Ingest(Box::new(other)),
        }
    }
}

impl SyncError {
    /// The class a scheduler acts on: retry soon, fix credentials, wait for quota, or fix the
    /// request/config.
    pub fn class(&self) -> ErrorClass {
        match self {
            SyncError::Salesforce(e) => e.class(),
            SyncError::Lake(e) if e.is_retryable() => ErrorClass::Retryable,
            SyncError::Ingest(e) if e.is_retryable() => ErrorClass::Retryable,
            _ => ErrorClass::InvalidRequest,
        }
    }

    /// The API budget (or the org's allocation) ran out: the run is incomplete, not failed.
    pub fn is_quota(&self) -> bool {
        self.class() == ErrorClass::Quota
    }
}
