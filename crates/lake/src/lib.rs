//! Tidemark's history lake: one append-only Delta Lake table of record versions per object,
//! written with `deltalake` through `object_store` (local folder or `s3://`), plus Tidemark's
//! own ledger tables in the same lake.
//!
//! - [`columns`]: the Salesforce-to-Arrow type mapping and the metadata columns.
//! - [`HistoryTable`] / [`VersionWriter`]: streaming, idempotent appends.
//! - [`schema_plan`]: schema evolution (new columns, type generations, removed fields).
//! - [`Ledger`]: sync-run records (bookmarks) and schema events.
//! - [`policy`]: field policies (hash, mask, null) applied to batches, recorded per column and
//!   per data file.
//! - [`source`] / [`ingest`]: the seam every source implements (the Salesforce sync's objects
//!   included), and the run that drives one into its tables (`sources/<source>/`, `objects/`).
//! - [`read`]: live state ([`live::LiveTable`], [`latest::LatestVersionExec`]) and version keys,
//!   with DataFusion.
//!
//! Arrow, Parquet and DataFusion come from `deltalake`'s re-exports so the tree has one
//! version of each.

pub mod bounded;
pub mod columns;
pub mod content;
pub mod doctor;
pub mod error;
pub mod history;
pub mod ingest;
pub mod keys;
pub mod latest;
pub mod lease;
pub mod ledger;
pub mod live;
pub mod location;
pub mod maintain;
pub mod plain;
pub mod policy;
pub mod read;
pub mod rewrite;
pub mod schema_plan;
pub mod scrub;
pub mod source;
pub mod suppression;
#[cfg(test)]
mod testing;
pub mod writer;

pub use deltalake;
pub use deltalake::arrow;
pub use deltalake::datafusion;
pub use doctor::{Doctor, TableFindings};
pub use error::LakeError;
pub use history::HistoryTable;
pub use lease::{Lease, LeaseKeeper, LeaseOptions, ProcessIdentity, with_lease, with_leases};
pub use ledger::{Ledger, RunStatus, SchemaEvent, SyncRunRecord};
pub use location::LakeLocation;
pub use writer::{CommitMetrics, VersionWriter};
