//! An offline Salesforce org.
//!
//! `tidemark-sfsim` serves the REST API, Bulk API 2.0 and 1.0, OAuth 2.0 and SOAP login and
//! `undelete()` over an in-memory org with realistic metadata and deterministic data, so
//! Tidemark's tests, demo and benchmarks (and any other Salesforce client) can run without a
//! real org.
//!
//! Start one in-process with [`server::SimServer`]; drive time and change through the admin API
//! ([`api::admin`]); compare what a client saw with the truth dump.

// The describe JSON literals are deep.
#![recursion_limit = "256"]

pub mod api;
pub mod auth;
pub mod bulk;
pub mod catalog;
pub mod changes;
pub mod cli;
pub mod config;
pub mod faults;
pub mod generate;
pub mod limits;
pub mod org;
pub mod persist;
pub mod row;
pub mod schema;
pub mod server;
pub mod soql;
pub mod tls;
pub mod truth;
pub mod value;

pub use config::SimConfig;
pub use org::Org;
pub use server::{SimHandle, SimServer};
