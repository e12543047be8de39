//! The push crate's integration tests: one test binary, so the workspace links once for them.

#[path = "../common/mod.rs"]
mod common;
#[path = "../../../postgres/tests/common/mod.rs"]
#[allow(dead_code)]
mod pg;

mod diff;
mod push_failures;
mod push_run;
mod restore;
