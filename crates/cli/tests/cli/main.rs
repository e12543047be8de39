//! End-to-end tests of the `tidemark` binary: one test binary, so the crates link once.

// The sync tests' helpers (the interop venv's python).
#[path = "../../../sync/tests/common/mod.rs"]
mod common;

mod crash;
mod erase;
mod first_hour;
mod govern;
mod maintain;
mod models;
mod push_crash;
mod restore;
mod runs;
mod sources;
mod sql;
mod sql_access;
mod validate;
