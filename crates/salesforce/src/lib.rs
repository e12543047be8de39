//! Tidemark's Salesforce client.
//!
//! - [`AuthConfig`]: JWT bearer, client credentials, refresh token, username-password, or a given
//!   session; sessions are renewed transparently when Salesforce answers `INVALID_SESSION_ID`.
//! - [`SalesforceClient::execute`]: every call goes through one executor that retries retryable
//!   failures (5xx, dropped connections, row locks, concurrent-request limits) with exponential
//!   backoff and jitter, honours `Retry-After`, tracks `Sforce-Limit-Info`, and refuses to go past
//!   the configured share of the daily allocation ([`SalesforceError::BudgetExhausted`]).
//! - REST: describe, query/queryAll pages, getDeleted/getUpdated; Bulk API 2.0 query jobs.
//!
//! Errors carry an [`ErrorClass`] so schedulers decide without parsing messages. Secrets never
//! appear in `Debug` output or errors, and URLs in errors lose their query strings (SOQL may hold
//! record values).

pub mod auth;
pub mod bulk2;
pub mod client;
pub mod describe;
pub mod error;
pub mod rest;
pub mod retry;
pub mod usage;

pub use auth::{AuthConfig, Session};
pub use client::{ClientConfig, Request, SalesforceClient};
pub use error::{ErrorClass, SalesforceError};
pub use retry::RetryPolicy;
