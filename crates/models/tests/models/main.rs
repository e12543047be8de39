//! The models crate's integration tests: one test binary, so the workspace links once for them.

#[path = "../common/mod.rs"]
mod common;
#[path = "../../../sync/tests/common/mod.rs"]
#[allow(dead_code, unused_imports)]
mod sync_common;

mod engine_sql_duckdb;
mod lake_sources;
mod late_versions;
mod load_date_spill;
mod post;
mod recovery;
mod s3;
mod scenarios;
mod source_time_spill;
