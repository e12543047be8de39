//! Tidemark's sync engine: Salesforce objects into Delta Lake history tables.
//!
//! - [`config`]: the YAML configuration file and its validation.
//! - [`discovery`]: which objects and fields are replicated, and why others are not.
//! - [`Sync`]: a run over many objects in parallel, returning a [`SyncReport`].
//! - Per object: schema evolution, an incremental queryAll read on `SystemModstamp` (falling
//!   back to `LastModifiedDate`/`CreatedDate`, or snapshot-and-diff) with an overlap window and
//!   exact de-duplication, Id reconciliation for hard deletes, formula re-snapshots.
//!
//! The bookmark lives in the lake (the `_tidemark/sync_runs` ledger), so any machine that can
//! read the lake can resume, and a crash at any point is safe to re-run.

pub mod compare;
pub mod config;
pub mod convert;
pub mod discovery;
pub mod error;
pub mod extract;
mod object_source;
mod object_sync;
pub mod pii;
pub mod report;
mod rereads;
mod run;

pub use config::{SyncSettings, TidemarkConfig};
pub use error::SyncError;
pub use extract::Api;
pub use report::{ObjectReport, Quiet, SyncObserver, SyncReport};
pub use run::Sync;
