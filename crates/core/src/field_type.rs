//! Salesforce field types as describe reports them (`"type"` of a field object).

use serde::{Deserialize, Serialize};

/// The `type` of a Salesforce describe field. Serialises to the exact describe spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    Id,
    Reference,
    String,
    Textarea,
    Picklist,
    Multipicklist,
    Combobox,
    Boolean,
    Int,
    Long,
    Double,
    Currency,
    Percent,
    Date,
    Datetime,
    Time,
    Email,
    Phone,
    Url,
    Encryptedstring,
    Base64,
    Address,
    Location,
    #[serde(rename = "anyType")]
    AnyType,
}

impl FieldType {
    pub const ALL: [FieldType; 24] = [
        FieldType::Id,
        FieldType::Reference,
        FieldType::String,
        FieldType::Textarea,
        FieldType::Picklist,
        FieldType::Multipicklist,
        FieldType::Combobox,
        FieldType::Boolean,
        FieldType::Int,
        FieldType::Long,
        FieldType::Double,
        FieldType::Currency,
        FieldType::Percent,
        FieldType::Date,
        FieldType::Datetime,
        FieldType::Time,
        FieldType::Email,
        FieldType::Phone,
        FieldType::Url,
        FieldType::Encryptedstring,
        FieldType::Base64,
        FieldType::Address,
        FieldType::Location,
        FieldType::AnyType,
    ];

    /// The describe spelling, e.g. `"datetime"`, `"anyType"`.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::Id => "id",
            FieldType::Reference => "reference",
            FieldType::String => "string",
            FieldType::Textarea => "textarea",
            FieldType::Picklist => "picklist",
            FieldType::Multipicklist => "multipicklist",
            FieldType::Combobox => "combobox",
            FieldType::Boolean => "boolean",
            FieldType::Int => "int",
            FieldType::Long => "long",
            FieldType::Double => "double",
            FieldType::Currency => "currency",
            FieldType::Percent => "percent",
            FieldType::Date => "date",
            FieldType::Datetime => "datetime",
            FieldType::Time => "time",
            FieldType::Email => "email",
            FieldType::Phone => "phone",
            FieldType::Url => "url",
            FieldType::Encryptedstring => "encryptedstring",
            FieldType::Base64 => "base64",
            FieldType::Address => "address",
            FieldType::Location => "location",
            FieldType::AnyType => "anyType",
        }
    }

    /// Parses the describe spelling (case-sensitive, as Salesforce sends it).
    pub fn parse(s: &str) -> Option<FieldType> {
        FieldType::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The `soapType` describe reports for this type.
    pub fn soap_type(self) -> &'static str {
        match self {
            FieldType::Id | FieldType::Reference => "tns:ID",
            FieldType::Boolean => "xsd:boolean",
            FieldType::Double | FieldType::Currency | FieldType::Percent => "xsd:double",
            FieldType::Int => "xsd:int",
            FieldType::Long => "xsd:long",
            FieldType::Date => "xsd:date",
            FieldType::Datetime => "xsd:dateTime",
            FieldType::Time => "xsd:time",
            FieldType::Base64 => "xsd:base64Binary",
            FieldType::Address => "urn:address",
            FieldType::Location => "urn:location",
            FieldType::AnyType => "xsd:anyType",
            FieldType::String
            | FieldType::Textarea
            | FieldType::Picklist
            | FieldType::Multipicklist
            | FieldType::Combobox
            | FieldType::Email
            | FieldType::Phone
            | FieldType::Url
            | FieldType::Encryptedstring => "xsd:string",
        }
    }

    /// Compound fields are read-only aggregates of their component fields.
    pub fn is_compound(self) -> bool {
        matches!(self, FieldType::Address | FieldType::Location)
    }

    /// Types whose values are text in every API representation.
    pub fn is_textual(self) -> bool {
        self.soap_type() == "xsd:string" || matches!(self, FieldType::Id | FieldType::Reference)
    }

    /// Numeric types (`precision`/`scale` or `digits` apply).
    pub fn is_numeric(self) -> bool {
        matches!(self, FieldType::Int | FieldType::Long | FieldType::Double | FieldType::Currency | FieldType::Percent)
    }
}

impl std::fmt::Display for FieldType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spelling_round_trips_through_serde_and_parse() {
        for t in FieldType::ALL {
            let json = serde_json::to_string(&t).expect("serialises");
            assert_eq!(json, format!("\"{}\"", t.as_str()));
            let back: FieldType = serde_json::from_str(&json).expect("parses");
            assert_eq!(back, t);
            assert_eq!(FieldType::parse(t.as_str()), Some(t));
        }
        assert_eq!(FieldType::parse("DateTime"), None);
    }
}
