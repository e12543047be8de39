//! The Postgres source's errors, classified for the scheduler.

use tidemark_lake::source::SourceError;

use crate::config::PostgresConfig;

#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// Connecting failed (the server is down, refused the login, TLS failed).
    #[error("could not connect to {target}: {}", with_causes(.source))]
    Connect {
        target: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("{what}: {}", with_causes(.source))]
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

/// A tokio-postgres error with its causes: its own text is only its kind ("db error", "error
/// performing TLS handshake"), the server's message or the certificate problem is its cause.
fn with_causes(e: &tokio_postgres::Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// Whether TLS failed because the server's certificate was rejected (rustls's error, inside the
/// I/O error the handshake returns).
fn rejected_certificate(e: &tokio_postgres::Error) -> bool {
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let inner =
            c.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()).and_then(|i| i.downcast_ref::<rustls::Error>());
        if matches!(inner.or_else(|| c.downcast_ref::<rustls::Error>()), Some(rustls::Error::InvalidCertificate(_))) {
            return true;
        }
        cause = c.source();
    }
    false
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
            // A certificate the CA did not sign, or for another host name, stays so.
            PgError::Connect { source, .. } if rejected_certificate(source) => false,
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
