//! Integration tests of the SQL layer: one test binary, so DataFusion is linked once.

// The sync tests' simulated org, lake and oracle.
#[path = "../../../sync/tests/common/mod.rs"]
mod common;

mod access;
mod ddl;
mod marts;
mod notes;
mod pg;
mod push;
mod views;
