//! The sfsim crate's integration tests: one test binary, so the workspace links once for them.

#[path = "../common/mod.rs"]
mod common;

mod admin;
mod bulk1;
mod bulk1_clients;
mod bulk2_ingest;
mod bulk2_query;
mod collections;
mod conformance;
mod faults;
mod generate;
mod interop_simple_salesforce;
mod lock_faults;
mod metadata;
mod oauth;
mod query;
mod records;
mod soap_undelete;
mod stamps;
mod tls;
mod write_validation;
