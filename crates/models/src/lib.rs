//! Tidemark's dimension models: SCD Type 2 dimensions built declaratively from landed files
//! (CSV, Parquet) and lake objects, each load one Delta commit to `<lake>/marts/<name>`.
//!
//! - [`ModelLoad`]: one load (builder), returning [`LoadMetrics`].
//! - [`ledger::LoadLedger`]: the loads committed so far (`_tidemark/model_loads`).
//! - [`hash`]: the change hash; [`csv`]: the landed-file reader.

pub use tidemark_lake::bounded;
pub mod csv;
pub mod engine_sql;
pub mod erase;
pub mod error;
pub mod extract;
pub mod files;
pub mod hash;
pub mod ledger;
pub mod load;
pub mod mart;
pub mod merge;
pub mod status;
pub mod timeline;

pub use error::{ModelError, Result};
pub use load::{LoadMetrics, ModelLoad};
pub use status::{ModelStatus, model_status};
