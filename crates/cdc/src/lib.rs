//! Tidemark's change-file sources: CDC output landed as files in a folder or under an `s3://`
//! prefix, read in place into the lake's history tables through the lake's source seam.
//!
//! - [`CdcSource`]: the [`tidemark_lake::source::Source`] for `kind: debezium` (Debezium JSON
//!   change events) and `kind: dms` (AWS DMS CSV or Parquet output).
//! - [`claims`]: which files a source has read, kept in the lake (`_tidemark/source_files`).
//! - [`debezium`], [`dms`]: the formats; [`json_values`]: Debezium's JSON values as Arrow.

pub mod claims;
pub mod debezium;
pub mod dms;
pub mod error;
pub mod json_values;
pub mod segments;
mod source;

pub use error::CdcError;
pub use source::{CdcFormat, CdcSource};
