//! The sync crate's integration tests: one test binary, so the workspace links once for them.

#[path = "../common/mod.rs"]
mod common;

mod faults;
mod governance;
mod interop_duckdb;
mod maintenance;
mod oracle;
mod s3_lake;
mod same_second;
