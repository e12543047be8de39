//! Tidemark's Postgres source: tables of a Postgres database (and Heroku Connect mirrors in
//! one) kept in the lake with every version of every row, by logical replication.
//!
//! - [`PostgresSource`]: the [`tidemark_lake::source::Source`] driven by
//!   [`tidemark_lake::ingest::Ingest`]: a consistent initial copy from a slot's exported
//!   snapshot, then `pgoutput` changes, acknowledged after the lake's commit.
//! - [`PollingSource`]: `mode: poll`, for databases where logical replication is not allowed:
//!   rows read by a modification-time column, re-reads dropped, deletes found by key.
//! - [`config`]: the `sources:` entry of kind `postgres`.
//! - [`types`]: Postgres types as the lake stores them; [`pgoutput`]: the protocol decoder.

mod catalog;
pub mod config;
mod copy;
pub mod error;
pub mod pgoutput;
mod poll;
mod rows;
mod source;
mod tls;
pub mod types;

pub use config::{PostgresConfig, SslMode};
pub use error::PgError;
pub use poll::PollingSource;
pub use source::PostgresSource;

/// Parses a WAL position as Postgres prints it (`16/B374D848`).
pub fn parse_lsn(text: &str) -> Option<u64> {
    let (high, low) = text.trim().split_once('/')?;
    Some((u64::from_str_radix(high, 16).ok()? << 32) | u64::from_str_radix(low, 16).ok()?)
}

/// Prints a WAL position the way Postgres does.
pub fn format_lsn(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xffff_ffff)
}

#[cfg(test)]
mod tests {
    #[test]
    fn lsns_round_trip() {
        assert_eq!(super::parse_lsn("16/B374D848"), Some(0x16_B374_D848));
        assert_eq!(super::format_lsn(0x16_B374_D848), "16/B374D848");
        assert_eq!(super::parse_lsn("nope"), None);
    }
}
