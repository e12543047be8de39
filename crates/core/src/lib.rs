//! Tidemark's light core: the domain types every other crate shares.
//!
//! It deliberately depends on nothing heavy (no HTTP, no Arrow) so that the simulator, the
//! Salesforce client and the lake can all use it without pulling each other's weight.

pub mod access;
pub mod clock;
pub mod config;
pub mod field_type;
pub mod governance;
pub mod maintenance;
pub mod models;
pub mod pipelines;
pub mod push;
pub mod schedule;
pub mod schema;
pub mod sfid;
pub mod sources;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::ConfigError;
pub use field_type::FieldType;
pub use schema::{SourceField, SourceSchema};
pub use sfid::{SfId, SfIdError};
