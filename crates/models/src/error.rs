//! Errors of the models layer. Messages name the model, source, file, line and column, never a
//! record value (those are customer data).

use tidemark_lake::LakeError;
use tidemark_lake::arrow::error::ArrowError;
use tidemark_lake::datafusion::error::DataFusionError;

pub type Result<T, E = ModelError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A landed file cannot be read as its source declares (bad value, missing column, bad CSV).
    #[error("{file}: {message}")]
    File { file: String, message: String },
    /// Two different rows of one key carry the same ordering value: which one is latest is
    /// unknowable, so the load stops instead of picking one.
    #[error(
        "model {model}, source {source_name}: two different rows of key {key} have the same {order_by}; \
         which is latest cannot be decided (fix the source data, then run again)"
    )]
    Tie { model: String, source_name: String, key: String, order_by: String },
    #[error("model {model}: run date {run_date} is before the last load's date {last}; loads move forward in time")]
    RunDateBeforeLastLoad { model: String, run_date: chrono::NaiveDate, last: chrono::NaiveDate },
    #[error("model {model}: {message}")]
    Invalid { model: String, message: String },
    #[error("model {model}: the dimension table does not have the layout this model writes: {detail}")]
    Layout { model: String, detail: String },
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error("arrow: {0}")]
    Arrow(#[from] ArrowError),
    #[error("query: {0}")]
    Query(#[from] DataFusionError),
}

impl ModelError {
    pub fn file(file: impl Into<String>, message: impl Into<String>) -> ModelError {
        ModelError::File { file: file.into(), message: message.into() }
    }

    /// Worth retrying unchanged (storage hiccups, another run's commit); data and config
    /// errors are not.
    pub fn is_retryable(&self) -> bool {
        match self {
            ModelError::Lake(e) => matches!(e, LakeError::Store { .. } | LakeError::Delta { .. }) || e.is_concurrent_run(),
            _ => false,
        }
    }
}
