//! The postgres crate's integration tests: one test binary, so the workspace links once for them.

#[path = "../common/mod.rs"]
mod common;

mod crash;
mod oracle;
mod polling;
mod replication;
