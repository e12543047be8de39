//! Tidemark's SQL layer over the history lake.
//!
//! Every synced object is visible as three relations (see [`names`] for the naming rules):
//!
//! - `<object>`: live records, each Id's latest version, records whose latest version is a
//!   delete left out; with an as-of instant, the state at that instant;
//! - `<object>_history`: every version with its metadata columns;
//! - `<object>_scd2`: one row per non-delete version with `valid_from`, `valid_to` and
//!   `is_current`.
//!
//! Every mart (a dimension model's table, `<lake>/marts/<model>/`) is visible as two:
//! `<mart>`, the table as stored, and `<mart>_current`, its current rows (see [`marts`]).
//!
//! Modules:
//! - [`session`]: a DataFusion session over a lake ([`QuerySession`]);
//! - [`catalog`]: the lake as a schema, tables opened on first use, read options (as-of,
//!   Delta table version);
//! - [`views`]: the relations as logical plans; [`as_of`]: the `as_of(...)` table function;
//!   [`marts`]: a mart's two relations;
//! - [`output`]: aligned table, CSV, JSON lines and Parquet writers;
//! - [`internal`]: the push flows' run log and error tables (`push_runs`,
//!   `push_<flow>_errors`), read as stored;
//! - [`names`]: table and column names shared by every engine; [`types`]: SQL names of
//!   column types (`text`, `numeric(18,2)`), as the Postgres endpoint names them;
//! - [`ddl`]: statements that register the lake and the same views in DuckDB, Athena, Trino,
//!   Spark and Redshift Spectrum;
//! - [`notes`]: hints about a result it cannot show itself (an as-of instant before the first
//!   version, an initial sync that never completed);
//! - [`pg`]: the Postgres wire protocol endpoint.

pub mod access;
pub mod as_of;
pub mod catalog;
pub mod ddl;
pub mod error;
pub mod internal;
pub mod marts;
pub mod names;
pub mod notes;
pub mod output;
pub mod pg;
pub mod session;
pub mod types;
pub mod views;

pub use catalog::{ReadOptions, TableVersion};
pub use error::{QueryError, TableError};
pub use output::{Format, OutputMetrics};
pub use session::QuerySession;
/// A parsed SQL statement (see [`QuerySession::parse`]).
pub use tidemark_lake::datafusion::sql::parser::Statement;
