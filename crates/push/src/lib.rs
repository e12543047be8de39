//! Tidemark's push flows (reverse ETL): a flow's query over the lake, diffed against the result
//! it delivered last time, so that only new and changed rows (and, where enabled, vanished
//! keys) are sent to Salesforce.
//!
//! - [`row_hash`]: the 128-bit hash that says whether a row changed.
//! - [`snapshot`]: the flow's snapshot table, `<lake>/_tidemark/push/<flow>/snapshot`.
//! - [`diff`]: the result against the snapshot, as a stream of changes in key order.
//! - [`mapping`]: the result's columns checked against the target's describe before a write.

pub mod diff;
pub mod error;
pub mod mapping;
pub mod row_hash;
pub mod snapshot;

pub use error::{PushError, Result};
