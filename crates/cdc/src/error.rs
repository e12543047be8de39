//! The change-file sources' errors, classified for the scheduler.

use tidemark_lake::LakeError;
use tidemark_lake::source::SourceError;
use tidemark_models::ModelError;

#[derive(Debug, thiserror::Error)]
pub enum CdcError {
    /// A setting that cannot work (named by its field).
    #[error("{0}")]
    Config(String),
    /// A file that cannot be read as its format says: named by file, line or row, and column,
    /// never by value (customer data).
    #[error("{file}{}: {detail}", .line.map(|l| format!(", line {l}")).unwrap_or_default())]
    File { file: String, line: Option<usize>, detail: String },
    /// A file read before changed afterwards: change files are immutable, and reading it again
    /// could apply its changes twice.
    #[error(
        "{file} was {was} bytes when it was read and is {now} bytes now: change files must not be rewritten (move the new content to a new file)"
    )]
    Rewritten { file: String, was: u64, now: u64 },
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error(transparent)]
    Landing(#[from] ModelError),
}

impl CdcError {
    pub fn file(file: &str, line: Option<usize>, detail: impl Into<String>) -> CdcError {
        CdcError::File { file: file.to_owned(), line, detail: detail.into() }
    }

    pub fn is_retryable(&self) -> bool {
        match self {
            CdcError::Lake(e) => e.is_retryable(),
            CdcError::Landing(e) => e.is_retryable(),
            CdcError::Config(_) | CdcError::File { .. } | CdcError::Rewritten { .. } => false,
        }
    }
}

impl From<CdcError> for SourceError {
    fn from(e: CdcError) -> SourceError {
        let retryable = e.is_retryable();
        let message = e.to_string();
        SourceError::new(message, retryable).with_cause(e)
    }
}
