use deltalake::DeltaTableError;
use deltalake::arrow::error::ArrowError;
use deltalake::datafusion::error::DataFusionError;

/// Errors of the lake layer.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error("invalid lake location '{location}': {reason}")]
    Location { location: String, reason: String },
    #[error("Delta table {table}: {source}")]
    Delta {
        table: String,
        #[source]
        source: Box<DeltaTableError>,
    },
    #[error("query on {table}: {source}")]
    Query {
        table: String,
        #[source]
        source: Box<DataFusionError>,
    },
    #[error("storage at {location}: {source}")]
    Store {
        location: String,
        #[source]
        source: Box<deltalake::ObjectStoreError>,
    },
    #[error("arrow: {0}")]
    Arrow(#[from] ArrowError),
    #[error("table {table} has an unexpected layout: {detail}")]
    Layout { table: String, detail: String },
    #[error(
        "table {table}: another writer committed transaction {found} for '{app_id}' (expected {expected}); \
         is a second sync of this object running?"
    )]
    ConcurrentWriter { table: String, app_id: String, expected: i64, found: i64 },
    #[error(
        "table {table}: another writer committed to it since this run read it ({detail}); \
         nothing of this commit was written"
    )]
    ForeignCommit { table: String, detail: String },
    #[error("another run holds {resource}: {holder}, until {} unless renewed", .expires_at.to_rfc3339())]
    LeaseHeld { resource: String, holder: String, expires_at: chrono::DateTime<chrono::Utc> },
    #[error("lost the lease on {resource}: {reason}")]
    LeaseLost { resource: String, reason: String },
}

impl LakeError {
    pub fn delta(table: &str, source: DeltaTableError) -> LakeError {
        LakeError::Delta { table: table.to_owned(), source: Box::new(source) }
    }

    pub fn store(location: &str, source: deltalake::ObjectStoreError) -> LakeError {
        LakeError::Store { location: location.to_owned(), source: Box::new(source) }
    }

    /// Another run writes the same table (a held lease, or a commit race it lost).
    pub fn is_concurrent_run(&self) -> bool {
        matches!(
            self,
            LakeError::LeaseHeld { .. }
                | LakeError::LeaseLost { .. }
                | LakeError::ForeignCommit { .. }
                | LakeError::ConcurrentWriter { .. }
        )
    }

    pub(crate) fn query(table: &str, source: DataFusionError) -> LakeError {
        LakeError::Query { table: table.to_owned(), source: Box::new(source) }
    }

    /// Whether running the same operation again may succeed (storage hiccups, commit races).
    pub fn is_retryable(&self) -> bool {
        match self {
            LakeError::Delta { source, .. } => matches!(
                source.as_ref(),
                DeltaTableError::ObjectStore { .. }
                    | DeltaTableError::Io { .. }
                    | DeltaTableError::VersionAlreadyExists(_)
                    | DeltaTableError::Transaction { .. }
            ),
            LakeError::Query { .. } => false,
            LakeError::Store { .. } => true,
            LakeError::ConcurrentWriter { .. } | LakeError::ForeignCommit { .. } => true,
            // Another run is at work: trying again later (not at once) is the remedy.
            LakeError::LeaseHeld { .. } | LakeError::LeaseLost { .. } => true,
            LakeError::Location { .. } | LakeError::Arrow(_) | LakeError::Layout { .. } => false,
        }
    }
}

pub type Result<T, E = LakeError> = std::result::Result<T, E>;
