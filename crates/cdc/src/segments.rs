//! What one change file holds, in the lake's terms: segments of versions, each a unit the lake
//! commits at its own position.
//!
//! A file is one transaction for the lake, unless a table's columns change inside it (a
//! Debezium event with a new schema): the lake never changes a table's columns inside a
//! transaction, so the file is cut there into segments, committed one after the other.

use std::collections::BTreeMap;

use globset::{Glob, GlobSet, GlobSetBuilder};
use tidemark_core::sources::CdcFilesConfig;
use tidemark_lake::source::{Position, TableSpec, Versions};

use crate::error::CdcError;

/// The part of a file, in order.
#[derive(Debug)]
pub enum Item {
    Versions(Versions),
    /// `key`: the table's key fields (a truncate of a table the file has no rows of needs them).
    Truncate {
        table: String,
        at: chrono::DateTime<chrono::Utc>,
        lsn: Position,
        key: Vec<String>,
    },
}

impl Item {
    pub fn table(&self) -> &str {
        match self {
            Item::Versions(v) => &v.table,
            Item::Truncate { table, .. } => table,
        }
    }
}

/// A run of a file's items under one definition per table.
#[derive(Debug, Default)]
pub struct Segment {
    /// The definition of every table with items in the segment.
    pub specs: BTreeMap<String, TableSpec>,
    pub items: Vec<Item>,
}

/// Bits of a position below a file's ordinal: a file's segments are `ordinal << 24 | segment`,
/// its last one `ordinal << 24 | 0xFFFFFF`, so the lake holding that position means the file
/// is in whole.
pub const SEGMENT_BITS: u32 = 24;

/// The position of segment `index` of `count` in the file numbered `ordinal`.
pub fn segment_position(ordinal: i64, index: usize, count: usize) -> Position {
    let segment = if index + 1 == count { (1 << SEGMENT_BITS) - 1 } else { index as i64 };
    (ordinal << SEGMENT_BITS) | segment
}

/// The position at which the file numbered `ordinal` is in the lake whole.
pub fn file_end(ordinal: i64) -> Position {
    segment_position(ordinal, 0, 1)
}

/// Bits of a version's `_lsn` below its file's ordinal, when the files carry no log position:
/// the row's index in its file.
pub const ROW_BITS: u32 = 32;

/// Which tables a source keeps, what the lake calls them, and their keys.
#[derive(Debug)]
pub struct Tables {
    wanted: GlobSet,
    config: CdcFilesConfig,
}

impl Tables {
    pub fn new(config: &CdcFilesConfig, patterns: &[String]) -> Result<Tables, CdcError> {
        let mut set = GlobSetBuilder::new();
        for p in patterns {
            set.add(Glob::new(p).map_err(|e| CdcError::Config(format!("tables: '{p}': {e}")))?);
        }
        let wanted = set.build().map_err(|e| CdcError::Config(format!("tables: {e}")))?;
        Ok(Tables { wanted, config: config.clone() })
    }

    /// The lake name of `schema.table` (the table for schema `public`, `<schema>_<table>`
    /// otherwise, as the Postgres source names them), or `None` when it is not kept.
    pub fn lake_name(&self, schema: &str, table: &str) -> Option<String> {
        if !self.wanted.is_match(format!("{schema}.{table}")) {
            return None;
        }
        Some(if schema == "public" || schema.is_empty() {
            table.to_ascii_lowercase()
        } else {
            format!("{schema}_{table}").to_ascii_lowercase()
        })
    }

    pub fn key(&self, schema: &str, table: &str) -> Vec<String> {
        self.config.key_of(&format!("{schema}.{table}")).to_vec()
    }

    pub fn config(&self) -> &CdcFilesConfig {
        &self.config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_order_files_then_segments_and_end_each_file_at_its_top() {
        assert!(segment_position(7, 0, 3) < segment_position(7, 1, 3));
        assert!(segment_position(7, 1, 3) < segment_position(7, 2, 3));
        assert_eq!(segment_position(7, 2, 3), file_end(7));
        assert!(file_end(7) < segment_position(8, 0, 2));
    }

    #[test]
    fn tables_are_named_as_the_postgres_source_names_them() {
        let mut config = CdcFilesConfig::new("x");
        config.keys.insert("sales.lines".into(), vec!["order_id".into(), "line".into()]);
        let tables = Tables::new(&config, &["public.*".to_owned(), "sales.lines".to_owned()]).unwrap();
        assert_eq!(tables.lake_name("public", "Orders").as_deref(), Some("orders"));
        assert_eq!(tables.lake_name("sales", "lines").as_deref(), Some("sales_lines"));
        assert_eq!(tables.lake_name("sales", "other"), None);
        assert_eq!(tables.key("sales", "lines"), ["order_id", "line"]);
        assert_eq!(tables.key("public", "orders"), ["id"]);
    }
}
