//! Tidemark's Salesforce client.
//!
//! - [`AuthConfig`]: JWT bearer, client credentials, refresh token, username-password, or a given
//!   session; sessions are renewed transparently when Salesforce answers `INVALID_SESSION_ID`.
//! - [`SalesforceClient::execute`]: every call goes through one executor that retries retryable
//!   failures (5xx, dropped connections, row locks, concurrent-request limits) with exponential
//!   backoff and jitter, honours `Retry-After`, tracks `Sforce-Limit-Info`, and refuses to go past
//!   the configured share of the daily allocation ([`SalesforceError::BudgetExhausted`]).
//! - REST: describe, query/queryAll pages, getDeleted/getUpdated; Bulk API 2.0 query jobs.
//! - Writes ([`write`]): sObject Collections create/update/upsert/delete ([`collections`]), Bulk
//!   API 2.0 ingest jobs planned from the same input rows ([`ingest_plan`], [`bulk2_ingest`]),
//!   and SOAP `undelete` ([`soap`]); one outcome per input row, row errors returned, never raised.
//!
//! Errors carry an [`ErrorClass`] so schedulers decide without parsing messages. Secrets never
//! appear in `Debug` output or errors, and URLs in errors lose their query strings (SOQL may hold
//! record values).

pub mod auth;
pub mod bulk2;
pub mod bulk2_ingest;
pub mod client;
pub mod collections;
pub mod describe;
pub mod error;
pub mod ingest_plan;
pub mod rest;
pub mod retry;
pub mod soap;
pub mod usage;
pub mod write;

pub use auth::{AuthConfig, Session};
pub use bulk2_ingest::{IngestJobInfo, IngestReport, JobOutcome};
pub use client::{Body, ClientConfig, Request, SalesforceClient};
pub use error::{ErrorClass, SalesforceError};
pub use ingest_plan::{IngestOperation, IngestOptions, IngestPlan, IngestSpec, PlannedJob};
pub use retry::RetryPolicy;
pub use write::{Record, RowError, RowOutcome, WriteError};
