//! Source schemas: the fields of a replicated object, independent of where they came from
//! (a Salesforce describe today; other sources later) and of how the lake stores them.

use serde::{Deserialize, Serialize};

use crate::FieldType;

/// One field of a source object as Tidemark replicates it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceField {
    /// API name, e.g. `AnnualRevenue` or `Tier__c`.
    pub name: String,
    pub field_type: FieldType,
    /// Text length (characters).
    pub length: u32,
    /// Total significant digits of a number (`double`, `currency`, `percent`).
    pub precision: u32,
    /// Digits right of the decimal point.
    pub scale: u32,
    /// Digits of an `int`.
    pub digits: u32,
    /// A formula or roll-up: its value can change without the record's timestamp moving.
    pub calculated: bool,
}

impl SourceField {
    /// A text field, the common case in tests and fallbacks.
    pub fn text(name: impl Into<String>) -> SourceField {
        SourceField::of(name, FieldType::String)
    }

    pub fn of(name: impl Into<String>, field_type: FieldType) -> SourceField {
        SourceField { name: name.into(), field_type, length: 255, precision: 0, scale: 0, digits: 0, calculated: false }
    }
}

/// The fields of one object selected for replication, in the order they are queried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceSchema {
    pub object: String,
    pub fields: Vec<SourceField>,
}

impl SourceSchema {
    pub fn field(&self, name: &str) -> Option<&SourceField> {
        self.fields.iter().find(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// Formula fields, which need a periodic re-snapshot to stay current.
    pub fn calculated_fields(&self) -> impl Iterator<Item = &SourceField> {
        self.fields.iter().filter(|f| f.calculated)
    }
}
