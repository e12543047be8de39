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
    /// What the integration user may do with its records.
    #[serde(flatten)]
    pub access: ObjectAccess,
}

/// What may be done with an object's records (the same keys in describeGlobal and describe).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectAccess {
    /// Records may be inserted.
    #[serde(default)]
    pub createable: bool,
    #[serde(default)]
    pub updateable: bool,
    #[serde(default)]
    pub deletable: bool,
    /// Deleted records may be restored from the recycle bin.
    #[serde(default)]
    pub undeletable: bool,
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
    /// May be set on insert.
    #[serde(default)]
    pub createable: bool,
    /// May be changed on update.
    #[serde(default)]
    pub updateable: bool,
    /// Salesforce fills it when an insert leaves it out (e.g. `OwnerId`, checkboxes).
    #[serde(default)]
    pub defaulted_on_create: bool,
    /// Usable as the key of an upsert (with `externalId`) and of relationship lookups.
    #[serde(default)]
    pub id_lookup: bool,
    /// Whether `unique`/`externalId` matching is case sensitive.
    #[serde(default)]
    pub case_sensitive: bool,
    #[serde(default)]
    pub auto_number: bool,
    /// Values outside `picklist_values` are refused (`INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST`).
    #[serde(default)]
    pub restricted_picklist: bool,
    #[serde(default)]
    pub dependent_picklist: bool,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub picklist_values: Vec<PicklistValue>,
    /// Length in bytes (UTF-8), where `length` counts characters.
    #[serde(default)]
    pub byte_length: u32,
    /// A master-detail child is deleted with its parent.
    #[serde(default)]
    pub cascade_delete: bool,
    /// The parent cannot be deleted while this reference points at it.
    #[serde(default)]
    pub restricted_delete: bool,
}

/// One value of a picklist field.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PicklistValue {
    pub value: String,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub active: bool,
    #[serde(default)]
    pub default_value: bool,
}

impl FieldDescribe {
    /// An insert must give it a value: not nillable, createable, and not filled by Salesforce.
    /// (Booleans are never nillable but always have a default.)
    pub fn required_on_create(&self) -> bool {
        self.createable && !self.nillable && !self.defaulted_on_create && self.field_type != Some(FieldType::Boolean)
    }

    /// Usable as an upsert key: an external id, or `Id` itself.
    pub fn is_upsert_key(&self) -> bool {
        self.name == "Id" || (self.external_id && self.id_lookup)
    }

    /// Whether `value` is an active value of this picklist (any value passes an unrestricted
    /// one). Multi-select values are checked one by one (`a;b`).
    pub fn accepts_picklist_value(&self, value: &str) -> bool {
        if !self.restricted_picklist {
            return true;
        }
        let allowed = |v: &str| self.picklist_values.iter().any(|p| p.active && p.value == v);
        match self.field_type {
            Some(FieldType::Multipicklist) => value.split(';').all(allowed),
            _ => allowed(value),
        }
    }
}

fn null_as_empty<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
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
    #[serde(flatten)]
    pub access: ObjectAccess,
    pub fields: Vec<FieldDescribe>,
}

impl SObjectDescribe {
    pub fn field(&self, name: &str) -> Option<&FieldDescribe> {
        self.fields.iter().find(|f| f.name.eq_ignore_ascii_case(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/salesforce-api");

    fn spec_describe(name: &str) -> SObjectDescribe {
        let text = std::fs::read_to_string(format!("{SPEC}/{name}")).expect("spec file");
        serde_json::from_str(&text).expect("parses")
    }

    #[test]
    fn reads_what_a_push_validates_from_real_describes() {
        let account = spec_describe("describe-account.json");
        let a = account.access;
        assert!(a.createable && a.updateable && a.deletable && a.undeletable);
        let name = account.field("Name").unwrap();
        assert!(name.createable && name.updateable && !name.nillable && name.required_on_create());
        let id = account.field("Id").unwrap();
        assert!(!id.createable && !id.updateable && id.id_lookup && id.is_upsert_key());
        let ty = account.field("Type").unwrap();
        assert_eq!(ty.field_type, Some(FieldType::Picklist));
        assert!(ty.picklist_values.iter().any(|p| p.value == "Prospect" && p.active));
        assert!(!ty.restricted_picklist && ty.accepts_picklist_value("anything"));
        let owner = account.field("OwnerId").unwrap();
        assert!(owner.defaulted_on_create && !owner.required_on_create());
        assert_eq!(owner.reference_to, vec!["User".to_owned()]);
        let revenue = account.field("AnnualRevenue").unwrap();
        assert_eq!((revenue.precision, revenue.scale), (18, 0));
        assert_eq!(account.field("Name").unwrap().length, 255);

        let custom = spec_describe("describe-custom-object-all-field-types.json");
        assert!(custom.access.createable && custom.access.undeletable);
        let restricted = custom.field("Picklist__c").unwrap();
        assert!(restricted.restricted_picklist);
        let allowed = restricted.picklist_values.iter().find(|p| p.active).unwrap().value.clone();
        assert!(restricted.accepts_picklist_value(&allowed));
        assert!(!restricted.accepts_picklist_value("not a value"));
        let multi = custom.field("Picklist_Multi_Select__c").unwrap();
        let values: Vec<&str> = multi.picklist_values.iter().filter(|p| p.active).map(|p| p.value.as_str()).collect();
        assert!(values.len() >= 2);
        assert!(multi.accepts_picklist_value(&values[..2].join(";")));
        assert!(!multi.accepts_picklist_value(&format!("{};nope", values[0])));
    }
}
