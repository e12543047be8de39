//! The Postgres source's errors, classified for the scheduler.

use tidemark_lake::source::SourceError;

use crate::config::PostgresConfig;

#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// Connecting failed (the server is down, refused the login, TLS failed).
    #[error("could not connect to {target}: {source}")]
    Connect {
        target: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("{what}: {source}")]
    Query {
        what: &'static str,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("replication: {0}")]
    Replication(#[from] pgwire_replication::PgWireError),
    #[error("{0}")]
    Decode(#[from] crate::pgoutput::DecodeError),
    /// The database is not set up for Tidemark (a setting, a privilege, a table without a key).
    #[error("{0}")]
    Setup(String),
    /// A value that cannot be stored exactly (named by table and column, never by value).
    #[error("table {table}, column {column}: {detail}")]
    Value { table: String, column: String, detail: String },
}

impl PgError {
    pub(crate) fn connect(cfg: &PostgresConfig, source: tokio_postgres::Error) -> PgError {
        PgError::Connect { target: format!("{}:{}/{} as {}", cfg.host, cfg.port, cfg.database, cfg.user), source }
    }

    pub(crate) fn query(what: &'static str) -> impl FnOnce(tokio_postgres::Error) -> PgError {
        move |source| PgError::Query { what, source }
    }

    /// Whether a later run may succeed without anyone changing anything.
    pub fn is_retryable(&self) -> bool {
        match self {
            PgError::Connect { source, .. } | PgError::Query { source, .. } => source.as_db_error().is_none_or(|db| {
                // Connection-class, resource and operator-intervention SQLSTATEs.
                let code = db.code().code();
                code.starts_with("08") || code.starts_with("53") || code.starts_with("57")
            }),
            PgError::Replication(e) => e.is_transient() || e.is_io(),
            PgError::Decode(_) | PgError::Setup(_) | PgError::Value { .. } => false,
        }
    }
}

impl From<PgError> for SourceError {
    fn from(e: PgError) -> SourceError {
        let retryable = e.is_retryable();
        SourceError::new(e.to_string(), retryable).with_cause(e)
    }
}
