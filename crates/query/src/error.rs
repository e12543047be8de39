//! Errors of the SQL layer.

use std::fmt;

use tidemark_lake::LakeError;
use tidemark_lake::datafusion::error::DataFusionError;
use url::Url;

use crate::catalog::TableVersion;

/// What went wrong answering a query.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The lake could not be listed or a table could not be opened.
    #[error(transparent)]
    Lake(#[from] LakeError),
    /// The query is wrong (syntax, unknown table or column, types); the message comes from
    /// DataFusion, with the position in the query when DataFusion knows it.
    /// (No `#[source]`: DataFusion's message already carries its causes, and a report that
    /// walks the chain would print them twice.)
    #[error("{}", sql_message(.0))]
    Sql(Box<DataFusionError>),
    /// Writing the result failed (a closed pipe, a full disk).
    #[error("writing the result: {0}")]
    Output(String),
    /// Options that do not go together or a value that does not parse.
    #[error("{0}")]
    Usage(String),
}

impl From<DataFusionError> for QueryError {
    fn from(e: DataFusionError) -> QueryError {
        QueryError::Sql(Box::new(e))
    }
}

impl QueryError {
    /// Whether the same query may succeed later (storage hiccups), as opposed to a query or
    /// usage error that needs a change.
    pub fn is_retryable(&self) -> bool {
        match self {
            QueryError::Lake(e) => e.is_retryable(),
            QueryError::Sql(e) => matches!(e.find_root(), DataFusionError::ObjectStore(_) | DataFusionError::IoError(_)),
            QueryError::Output(_) | QueryError::Usage(_) => false,
        }
    }

    /// Where in the query the error is, as (line, column) from 1, when DataFusion knows.
    pub fn position(&self) -> Option<(u64, u64)> {
        let QueryError::Sql(e) = self else { return None };
        let span = e.diagnostic()?.span?;
        (span.start.line > 0).then_some((span.start.line, span.start.column))
    }
}

/// A lake table a query names that cannot be read. It reaches the user through DataFusion, as
/// the external cause of a planning error; [`QueryError`] shows it without DataFusion's prefix.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// The table has no state at the pinned lake time (`--table-version`, `--table-timestamp`).
    #[error("table '{table}' has no {version}: {reason}")]
    NotAt {
        table: String,
        version: TableVersion,
        /// Why, e.g. `its last version is 3`.
        reason: String,
    },
    /// The table's Delta log cannot be read: a corrupt or missing commit file, a store refusing
    /// access.
    #[error("cannot read table '{table}' at {location}: {detail}")]
    Unreadable {
        table: String,
        /// The table's folder or URL.
        location: String,
        detail: String,
    },
}

impl TableError {
    pub(crate) fn unreadable(table: &str, url: &Url, detail: &dyn fmt::Display) -> TableError {
        let location = match url.to_file_path() {
            Ok(path) if url.scheme() == "file" => path.display().to_string(),
            _ => url.to_string(),
        };
        // Only the first line: the Delta kernel appends a backtrace when RUST_BACKTRACE is set.
        let detail = detail.to_string().lines().next().unwrap_or_default().trim().to_owned();
        TableError::Unreadable { table: table.to_owned(), location, detail }
    }
}

impl From<TableError> for DataFusionError {
    fn from(e: TableError) -> DataFusionError {
        DataFusionError::External(Box::new(e))
    }
}

/// The [`TableError`] `e` stems from, if any.
pub(crate) fn table_error(e: &DataFusionError) -> Option<&TableError> {
    match e.find_root() {
        DataFusionError::External(inner) => inner.downcast_ref::<TableError>(),
        _ => None,
    }
}

/// DataFusion's message without the "Error during planning:" style prefixes repeated by
/// wrapping, plus the position when the diagnostic carries one and the text lacks it.
fn sql_message(e: &DataFusionError) -> String {
    if let Some(table) = table_error(e) {
        return table.to_string();
    }
    let message = e.to_string();
    match e.diagnostic().and_then(|d| d.span) {
        Some(span) if span.start.line > 0 && !message.contains("Line:") => {
            format!("{message} (at line {}, column {})", span.start.line, span.start.column)
        }
        _ => message,
    }
}

pub type Result<T, E = QueryError> = std::result::Result<T, E>;
