//! Governance over a lake's stored history.
//!
//! - [`apply`]: `tidemark govern apply`: every stored version brought under the field policies
//!   its table's columns record (a policy changed later applies forward; this rewrites the past),
//!   rewriting only the files written under another policy, then removing every trace of the
//!   old values (files, log statistics, checkpoints: see [`tidemark_lake::scrub`]).
//!
//! - [`erase`]: `tidemark erase`: every version of some records removed, no trace left, the
//!   records suppressed from later syncs, an audit record in `_tidemark/erasures`; the rows
//!   derived from them in dimensions, push snapshots and error tables cleared too ([`derived`]).
//!
//! The policies themselves (configuration, hashing, masks) are [`tidemark_core::governance`];
//! applying them to batches as versions are written is [`tidemark_lake::policy`].

pub mod apply;
pub mod derived;
pub mod erase;

pub use apply::{ApplyMetrics, GovernApply, GovernError, TableApply};
pub use erase::{Erase, EraseMetrics, ErasureRecord, Subjects};
