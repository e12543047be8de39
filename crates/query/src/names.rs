//! How lake tables are named in SQL, shared by the DataFusion catalog and the DDL for outside
//! engines so that every engine sees the same names.
//!
//! Every name is lower case: the object's API name for the table (`account`, `invoice__c`)
//! and each column's name (`industry`, `annualrevenue`, `amount_v2`). Salesforce API names are
//! unique regardless of case, so lower-casing never makes two names collide, and unquoted
//! identifiers then work the same in DataFusion, DuckDB, Trino, Athena, Spark and Redshift.
//! Marts are named by their model (lower case) and `<model>_current`; their columns as
//! [`mart_column_names`] says.

use tidemark_lake::columns::{ID, METADATA_COLUMNS};

/// Suffix of the every-version table.
pub const HISTORY_SUFFIX: &str = "_history";
/// Suffix of the slowly-changing-dimension (type 2) view.
pub const SCD2_SUFFIX: &str = "_scd2";
/// SCD2 column: when a version became current (its `_version_at`).
pub const VALID_FROM: &str = "valid_from";
/// SCD2 column: when the next version (or the delete) replaced it; [`END_OF_TIME`] if none did.
pub const VALID_TO: &str = "valid_to";
/// SCD2 column: true on the version with no successor.
pub const IS_CURRENT: &str = "is_current";
/// `valid_to` of a current version, as an ISO date (midnight UTC).
pub const END_OF_TIME: &str = "9999-12-31";
/// Suffix of a mart's view of its current rows (`dim_customer_current`).
pub const CURRENT_SUFFIX: &str = "_current";

/// The SQL name of an object's live table (`Invoice__c` → `invoice__c`).
pub fn table_name(object: &str) -> String {
    object.to_lowercase()
}

/// The SQL name of a history-table column (`AnnualRevenue` → `annualrevenue`).
pub fn column_name(physical: &str) -> String {
    physical.to_lowercase()
}

/// The SQL names of a mart's columns, in order: lower case like every other name, unless two
/// of them differ only by case (model column names are case-sensitive, Salesforce's are not);
/// then every name is kept as stored, since lower-casing would make two columns one.
pub fn mart_column_names<'a>(physical: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let physical: Vec<&str> = physical.into_iter().collect();
    let lower: Vec<String> = physical.iter().map(|c| column_name(c)).collect();
    let distinct: std::collections::HashSet<&String> = lower.iter().collect();
    if distinct.len() == lower.len() { lower } else { physical.into_iter().map(str::to_owned).collect() }
}

/// Whether a physical column is one of Tidemark's metadata columns (`_version_at`, ...).
pub fn is_metadata(physical: &str) -> bool {
    METADATA_COLUMNS.contains(&physical)
}

/// The SQL names of the id and of the metadata columns used to order versions.
pub fn id_column() -> String {
    column_name(ID)
}

/// Versions of one record are ordered by these columns, ascending (`false` before `true` for
/// `_deleted`): the last version in this order is the record's current state. Stated once in
/// tidemark-lake, which tidemark-models' `model sql` reads too.
pub use tidemark_lake::columns::VERSION_ORDER;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lower_case() {
        assert_eq!(table_name("Invoice__c"), "invoice__c");
        assert_eq!(column_name("AnnualRevenue_v2"), "annualrevenue_v2");
        assert!(is_metadata("_version_at"));
        assert!(!is_metadata("Id"));
        assert_eq!(id_column(), "id");
        assert_eq!(mart_column_names(["Customer_SK", "city"]), ["customer_sk", "city"]);
        assert_eq!(mart_column_names(["Name", "name"]), ["Name", "name"], "kept when lower case would merge them");
    }
}
