//! The salesforce crate's integration tests: one test binary, so the workspace links once for them.

#[path = "../common/mod.rs"]
mod common;

mod auth;
mod bulk_ingest;
mod client;
mod collections;
