//! The parts of describe responses Tidemark uses. Unknown keys are ignored: newer API versions
//! add keys all the time.

use serde::Deserialize;
use tidemark_core::FieldType;

/// `GET /sobjects`: one entry per object.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GlobalObject {
    pub name: String,
    pub label: String,
    pub custom: bool,
    pub queryable: bool,
    pub replicateable: bool,
    pub retrieveable: bool,
    #[serde(default)]
    pub key_prefix: Option<String>,
    #[serde(default)]
    pub deprecated_and_hidden: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DescribeGlobal {
    pub sobjects: Vec<GlobalObject>,
}

/// One field of an sObject describe.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldDescribe {
    pub name: String,
    pub label: String,
    /// `None` for types this version of Tidemark does not know (newer API versions add some,
    /// e.g. `complexvalue`); such fields are skipped, never a reason to fail a describe.
    #[serde(rename = "type", deserialize_with = "known_field_type")]
    pub field_type: Option<FieldType>,
    #[serde(default)]
    pub length: u32,
    #[serde(default)]
    pub precision: u32,
    #[serde(default)]
    pub scale: u32,
    #[serde(default)]
    pub digits: u32,
    #[serde(default)]
    pub nillable: bool,
    #[serde(default)]
    pub calculated: bool,
    #[serde(default)]
    pub compound_field_name: Option<String>,
    #[serde(default)]
    pub reference_to: Vec<String>,
    #[serde(default)]
    pub relationship_name: Option<String>,
    #[serde(default)]
    pub external_id: bool,
    #[serde(default)]
    pub unique: bool,
    #[serde(default)]
    pub encrypted: bool,
    #[serde(default)]
    pub html_formatted: bool,
    #[serde(default)]
    pub extra_type_info: Option<String>,
}

fn known_field_type<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<FieldType>, D::Error> {
    let name = String::deserialize(d)?;
    Ok(FieldType::parse(&name))
}

/// `GET /sobjects/{name}/describe`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SObjectDescribe {
    pub name: String,
    pub label: String,
    pub custom: bool,
    pub queryable: bool,
    pub replicateable: bool,
    pub retrieveable: bool,
    #[serde(default)]
    pub key_prefix: Option<String>,
    pub fields: Vec<FieldDescribe>,
}

impl SObjectDescribe {
    pub fn field(&self, name: &str) -> Option<&FieldDescribe> {
        self.fields.iter().find(|f| f.name.eq_ignore_ascii_case(name))
    }
}
