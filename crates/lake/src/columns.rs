//! How Salesforce fields become Delta Lake columns, and the metadata columns every history
//! table carries.
//!
//! | Salesforce type | Arrow / Delta type | why |
//! |---|---|---|
//! | id, reference, string, textarea, picklist, multipicklist, combobox, email, phone, url, encryptedstring, anyType | `Utf8` / `string` | text in every API; anyType values are rendered as text |
//! | boolean | `Boolean` | |
//! | int | `Int32` / `integer` | describe `digits` ≤ 9 |
//! | long | `Int64` / `long` | |
//! | double, currency, percent | `Decimal128(18, scale)` / `decimal(18,s)` (Salesforce's maximum precision), `decimal(38,s)` above 18 digits, `Float64` without a precision | exact money, no float drift; a widened field keeps its column |
//! | date | `Date32` / `date` | |
//! | datetime | `Timestamp(µs, UTC)` / `timestamp` | Delta timestamps are microseconds, UTC |
//! | time | `Utf8` (`HH:MM:SS.sssZ` as the API sends it) | Delta has no time-of-day type |
//! | base64 | not replicated | bodies are fetched one record at a time; never in bulk results |
//! | address, location | not replicated themselves | their components (`BillingCity`, `Geo__Latitude__s`, …) are ordinary fields |
//!
//! A column keeps its type for life. When a field's type changes to one the column cannot
//! hold, values go to a new column `<Field>_v2` (then `_v3`, …) — a name no Salesforce field can
//! have, since custom field names end in `__c` and standard ones have no underscores.

use std::sync::Arc;

use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use tidemark_core::{FieldType, SourceField};

/// When the version became the record's state: `SystemModstamp` (or the object's fallback
/// timestamp) for queried versions, the detection time for hard deletes and formula snapshots.
pub const VERSION_AT: &str = "_version_at";
/// The version is a delete (soft or hard). The record is not live from `_version_at` on.
pub const DELETED: &str = "_deleted";
/// How the version was captured: see [`Origin`].
pub const ORIGIN: &str = "_origin";
/// The sync run that wrote the version.
pub const RUN_ID: &str = "_run_id";
/// When Tidemark wrote the version.
pub const INGESTED_AT: &str = "_ingested_at";

/// The record key of tables from sources other than Salesforce (Postgres, CDC files): the
/// source's key columns as text — one column's value as the source prints it, or a JSON array of
/// several columns' values. The source's own columns are kept beside it with their types.
/// Salesforce tables (and Heroku Connect mirrors, keyed by `sfid`) use `Id` instead.
pub const KEY: &str = "_key";
/// The source's position of a change (Postgres: its LSN; the snapshot's consistent point for rows
/// of the initial copy). Versions with equal `_version_at` (changes within one transaction) are
/// ordered by it. Absent from Salesforce tables, whose API has no such position.
pub const LSN: &str = "_lsn";

pub const METADATA_COLUMNS: [&str; 7] = [VERSION_AT, DELETED, ORIGIN, RUN_ID, INGESTED_AT, KEY, LSN];

/// Versions of one record are ordered by these columns, ascending (`false` before `true` for
/// `_deleted`): a delete stamped at the same instant and in the same run as another version
/// comes after it. The last version in this order is the record's current state.
///
/// The one statement of the rule: the live-state operator (`latest.rs`) implements it, and every
/// SQL text that picks a record's last version spells it from this list (tidemark-query's
/// views and `catalog ddl` statements, tidemark-models' `model sql` reads of live state).
/// Tables of sources with a change position add [`LSN`] after `_version_at`: see
/// [`version_order`].
pub const VERSION_ORDER: [&str; 3] = [VERSION_AT, INGESTED_AT, DELETED];

/// The record key column.
pub const ID: &str = "Id";

/// The record key column of a history table: [`KEY`] where the table has it, else [`ID`].
pub fn key_column(schema: &Schema) -> &'static str {
    if schema.column_with_name(KEY).is_some() { KEY } else { ID }
}

/// The version order of a history table: [`VERSION_ORDER`], with [`LSN`] after `_version_at`
/// where the table has it.
pub fn version_order(schema: &Schema) -> Vec<&'static str> {
    let mut order = VERSION_ORDER.to_vec();
    if schema.column_with_name(LSN).is_some() {
        order.insert(1, LSN);
    }
    order
}

/// How a version was captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Read by an incremental or full query (soft deletes arrive this way too, via queryAll).
    Query,
    /// A delete found by Id reconciliation: the record vanished without a visible delete
    /// (hard delete, or purged from the recycle bin before a sync saw it).
    Reconcile,
    /// A re-read of fields whose values changed while `SystemModstamp` did not: formula
    /// fields on their schedule, and a field's values after its type changed.
    Snapshot,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Query => "query",
            Origin::Reconcile => "reconcile",
            Origin::Snapshot => "snapshot",
        }
    }
}

pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// The metadata columns, in table order (first, so Delta keeps statistics on them).
pub fn metadata_fields() -> Vec<Field> {
    vec![
        Field::new(VERSION_AT, timestamp_type(), false),
        Field::new(DELETED, DataType::Boolean, false),
        Field::new(ORIGIN, DataType::Utf8, false),
        Field::new(RUN_ID, DataType::Utf8, false),
        Field::new(INGESTED_AT, timestamp_type(), false),
    ]
}

/// The Arrow type a field is stored as, or `None` when the field is not replicated.
pub fn arrow_type(field: &SourceField) -> Option<DataType> {
    Some(match field.field_type {
        FieldType::Boolean => DataType::Boolean,
        FieldType::Int => DataType::Int32,
        FieldType::Long => DataType::Int64,
        FieldType::Double | FieldType::Currency | FieldType::Percent => decimal_type(field.precision, field.scale),
        FieldType::Date => DataType::Date32,
        FieldType::Datetime => timestamp_type(),
        FieldType::Base64 | FieldType::Address | FieldType::Location => return None,
        // Ids, references, text of every kind, anyType (rendered as text) and time
        // (`HH:MM:SS.sssZ`): text in every API.
        _ => DataType::Utf8,
    })
}

/// Salesforce numbers have at most 18 digits, so `decimal(18, scale)` holds every value a field
/// can take whatever its declared precision: widening a field (16 → 18 digits) keeps its column,
/// and Parquet stores the values as 64-bit integers.
fn decimal_type(precision: u32, scale: u32) -> DataType {
    match (u8::try_from(precision), i8::try_from(scale)) {
        (Ok(p @ 1..=18), Ok(s)) if s >= 0 && u32::from(p) >= scale => DataType::Decimal128(18, s),
        (Ok(p @ 19..=38), Ok(s)) if s >= 0 && u32::from(p) >= scale => DataType::Decimal128(38, s),
        _ => DataType::Float64,
    }
}

/// Whether every value of type `new` fits a column of type `existing` without loss, so a field
/// whose describe changed can keep writing to its column.
pub fn fits(new: &DataType, existing: &DataType) -> bool {
    use DataType::*;
    match (new, existing) {
        (a, b) if a == b => true,
        (Int32, Int64) => true,
        (Int32 | Int64, Decimal128(p, 0)) => *p >= 19,
        (Decimal128(np, ns), Decimal128(ep, es)) => {
            ns <= es && (i16::from(*np) - i16::from(*ns)) <= (i16::from(*ep) - i16::from(*es))
        }
        _ => false,
    }
}

/// The column name a field's values go to for type generation `generation` (1 = the field name).
pub fn column_name(field: &str, generation: u32) -> String {
    if generation <= 1 { field.to_owned() } else { format!("{field}_v{generation}") }
}

/// Splits a column name into its field and generation (`Amount__c_v2` → `("Amount__c", 2)`).
pub fn parse_column_name(column: &str) -> (&str, u32) {
    if let Some((field, digits)) = column.rsplit_once("_v") {
        if let Ok(n) = digits.parse::<u32>() {
            if n >= 2 && !field.is_empty() && !digits.starts_with('0') && digits.bytes().all(|b| b.is_ascii_digit()) {
                return (field, n);
            }
        }
    }
    (column, 1)
}

/// The schema of a brand-new history table for these fields (metadata columns first, then
/// `Id`, then the fields in query order). Fields that are not replicated are left out.
pub fn initial_schema(fields: &[SourceField]) -> SchemaRef {
    let mut out = metadata_fields();
    for f in fields {
        if let Some(t) = arrow_type(f) {
            out.push(Field::new(f.name.clone(), t, f.name != ID));
        }
    }
    Arc::new(Schema::new(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(t: FieldType, p: u32, s: u32) -> SourceField {
        SourceField { precision: p, scale: s, ..SourceField::of("X__c", t) }
    }

    #[test]
    fn numbers_map_by_precision_and_scale() {
        assert_eq!(arrow_type(&num(FieldType::Currency, 18, 2)), Some(DataType::Decimal128(18, 2)));
        assert_eq!(arrow_type(&num(FieldType::Double, 18, 15)), Some(DataType::Decimal128(18, 15)));
        assert_eq!(arrow_type(&num(FieldType::Currency, 16, 2)), Some(DataType::Decimal128(18, 2)));
        assert_eq!(arrow_type(&num(FieldType::Percent, 0, 0)), Some(DataType::Float64));
        assert_eq!(arrow_type(&num(FieldType::Double, 40, 2)), Some(DataType::Float64));
        assert_eq!(arrow_type(&SourceField::of("Body", FieldType::Base64)), None);
        assert_eq!(arrow_type(&SourceField::of("BillingAddress", FieldType::Address)), None);
        assert_eq!(arrow_type(&SourceField::of("CreatedDate", FieldType::Datetime)), Some(timestamp_type()));
    }

    #[test]
    fn widening_is_only_allowed_without_loss() {
        assert!(fits(&DataType::Decimal128(16, 2), &DataType::Decimal128(18, 2)));
        assert!(fits(&DataType::Decimal128(19, 3), &DataType::Decimal128(20, 4)));
        assert!(!fits(&DataType::Decimal128(18, 4), &DataType::Decimal128(18, 2)));
        assert!(!fits(&DataType::Decimal128(20, 2), &DataType::Decimal128(18, 2)));
        assert!(fits(&DataType::Int32, &DataType::Int64));
        assert!(!fits(&DataType::Utf8, &DataType::Decimal128(18, 2)));
        assert!(!fits(&DataType::Decimal128(18, 2), &DataType::Utf8));
    }

    #[test]
    fn generations_name_new_columns() {
        assert_eq!(column_name("Score__c", 1), "Score__c");
        assert_eq!(column_name("Score__c", 3), "Score__c_v3");
        assert_eq!(parse_column_name("Score__c_v3"), ("Score__c", 3));
        assert_eq!(parse_column_name("Score__c"), ("Score__c", 1));
        assert_eq!(parse_column_name("My_v1__c"), ("My_v1__c", 1));
        assert_eq!(parse_column_name("X_v02"), ("X_v02", 1));
    }
}
