//! Tidemark's push flows (reverse ETL): a flow's query over the lake, diffed against the result
//! it delivered last time, so that only new and changed rows (and, where enabled, vanished
//! keys) are sent to Salesforce.
//!
//! - [`row_hash`]: the 128-bit hash that says whether a row changed.
//! - [`snapshot`]: the flow's snapshot table, `<lake>/_tidemark/push/<flow>/snapshot`.
//! - [`diff`]: the result against the snapshot, as a stream of changes in key order.
//! - [`mapping`]: the result's columns checked against the target's describe before a write.
//! - [`run`]: one run of a flow, [`PushRun`] → [`PushMetrics`]: plan ([`plan`]), send
//!   ([`send`]), journal inserts in flight ([`journal`]), record errors and runs ([`errors`]).
//! - [`restore`]: records set back to their state at an instant of the lake's history,
//!   [`RestoreRun`] → [`RestoreMetrics`] ([`restore_plan`]; re-created records' new Ids in
//!   [`id_map`]), through the same sender, journal and error tables.
//! - [`erase`]: an erasure's records forgotten from snapshots, error tables and the Id map.

pub mod diff;
pub mod dry_run;
pub mod erase;
pub mod error;
pub mod errors;
pub mod id_map;
pub mod journal;
pub mod mapping;
pub mod plan;
pub mod records;
pub mod restore;
pub mod restore_plan;
pub mod row_hash;
pub mod run;
pub mod send;
pub mod snapshot;

pub use error::{PushError, Result};
pub use errors::{ErrorRow, ErrorTable, PushRunRecord, PushStatus, RunLog};
pub use restore::{ObjectRestore, RestoreMetrics, RestoreRun};
pub use run::{PushMetrics, PushRun};
