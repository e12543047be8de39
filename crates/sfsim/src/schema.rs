//! Object and field metadata, and its rendering as describe JSON in Salesforce's exact shapes.

use serde_json::{Value as J, json};
use tidemark_core::FieldType;

use crate::row::Slot;
use crate::value::Value;

/// One picklist entry.
#[derive(Debug, Clone, PartialEq)]
pub struct PicklistValue {
    pub value: String,
    pub label: String,
    pub active: bool,
    pub default_value: bool,
}

/// How a calculated (formula) field computes its value. Formulas are evaluated when a record is
/// read, so a change to a parent changes the child's formula value without touching the child's
/// `SystemModstamp`, exactly as in a real org.
#[derive(Debug, Clone, PartialEq)]
pub enum Formula {
    /// `Parent__r.Field`: a field of the record a reference field points to.
    ParentField { reference_field: String, parent_field: String },
    /// `A * B / divisor` over two numeric fields of the same record (null if either is null).
    Product { left: String, right: String, divisor: f64 },
    /// `TODAY() - DateField` in days, relative to the org clock at read time.
    DaysSince { field: String },
}

impl Formula {
    /// The formula text describe reports in `calculatedFormula`.
    pub fn text(&self) -> String {
        match self {
            Formula::ParentField { reference_field, parent_field } => {
                format!("{}.{parent_field}", relationship_name_for(reference_field))
            }
            Formula::Product { left, right, divisor } if *divisor == 1.0 => format!("{left} * {right}"),
            Formula::Product { left, right, divisor } => format!("{left} * {right} / {divisor}"),
            Formula::DaysSince { field } => format!("TODAY() - DATEVALUE({field})"),
        }
    }
}

/// The relationship name Salesforce derives from a reference field's API name:
/// `AccountId` → `Account`, `Account__c` → `Account__r`.
pub fn relationship_name_for(reference_field: &str) -> String {
    if let Some(base) = reference_field.strip_suffix("__c") {
        format!("{base}__r")
    } else if let Some(base) = reference_field.strip_suffix("Id") {
        base.to_owned()
    } else {
        reference_field.to_owned()
    }
}

/// A field of an object. Construct with [`FieldDef::new`] and the chained modifiers.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldDef {
    pub name: String,
    pub label: String,
    pub field_type: FieldType,
    /// Where the value lives in rows; `None` for fields computed on read (compound, formula).
    pub slot: Option<Slot>,
    pub length: u32,
    pub precision: u8,
    pub scale: u8,
    pub digits: u8,
    pub nillable: bool,
    pub createable: bool,
    pub updateable: bool,
    pub defaulted_on_create: bool,
    pub unique: bool,
    pub case_sensitive: bool,
    pub external_id: bool,
    pub id_lookup: bool,
    pub name_field: bool,
    pub custom: bool,
    pub auto_number: bool,
    pub html_formatted: bool,
    pub encrypted: bool,
    pub filterable: bool,
    pub sortable: bool,
    pub groupable: bool,
    pub aggregatable: bool,
    pub restricted_picklist: bool,
    pub picklist_values: Vec<PicklistValue>,
    pub reference_to: Vec<String>,
    pub relationship_name: Option<String>,
    /// 0 for the first master-detail, 1 for the second; `None` for lookups.
    pub relationship_order: Option<u8>,
    pub cascade_delete: bool,
    pub restricted_delete: bool,
    pub write_requires_master_read: bool,
    pub compound_field_name: Option<String>,
    /// Component field names of an `address`/`location` compound, in describe order.
    pub components: Vec<String>,
    pub formula: Option<Formula>,
    pub default_value: Option<Value>,
    pub extra_type_info: Option<String>,
    pub mask_type: Option<String>,
    pub inline_help_text: Option<String>,
}

impl FieldDef {
    /// A custom-or-standard field with the defaults Salesforce gives a plain field of `ty`.
    pub fn new(name: &str, ty: FieldType) -> FieldDef {
        let is_text_like = ty.is_textual() && !matches!(ty, FieldType::Textarea);
        let (length, precision, scale, digits) = match ty {
            FieldType::Id | FieldType::Reference => (18, 0, 0, 0),
            FieldType::String | FieldType::Combobox => (255, 0, 0, 0),
            FieldType::Textarea => (255, 0, 0, 0),
            FieldType::Picklist | FieldType::Multipicklist => (255, 0, 0, 0),
            FieldType::Email | FieldType::Url => (255, 0, 0, 0),
            FieldType::Phone => (40, 0, 0, 0),
            FieldType::Encryptedstring => (175, 0, 0, 0),
            FieldType::Int => (0, 0, 0, 9),
            FieldType::Long => (0, 0, 0, 18),
            FieldType::Double | FieldType::Percent => (0, 18, 2, 0),
            FieldType::Currency => (0, 18, 2, 0),
            FieldType::Location => (0, 0, 0, 0),
            _ => (0, 0, 0, 0),
        };
        let custom = name.ends_with("__c");
        let compound = ty.is_compound();
        FieldDef {
            name: name.to_owned(),
            label: default_label(name),
            field_type: ty,
            slot: None,
            length,
            precision,
            scale,
            digits,
            nillable: !matches!(ty, FieldType::Id | FieldType::Boolean),
            createable: !compound && ty != FieldType::Id,
            updateable: !compound && ty != FieldType::Id,
            defaulted_on_create: matches!(ty, FieldType::Id | FieldType::Boolean),
            unique: false,
            case_sensitive: false,
            external_id: false,
            id_lookup: ty == FieldType::Id,
            name_field: false,
            custom,
            auto_number: false,
            html_formatted: false,
            encrypted: ty == FieldType::Encryptedstring,
            filterable: !matches!(ty, FieldType::Textarea | FieldType::Base64 | FieldType::Location) && !compound,
            sortable: !matches!(
                ty,
                FieldType::Textarea | FieldType::Multipicklist | FieldType::Base64 | FieldType::Encryptedstring
            ) && !compound,
            groupable: is_text_like || matches!(ty, FieldType::Boolean | FieldType::Int | FieldType::Date | FieldType::Picklist),
            aggregatable: !matches!(ty, FieldType::Textarea | FieldType::Multipicklist | FieldType::Base64 | FieldType::Boolean)
                && !compound,
            restricted_picklist: false,
            picklist_values: Vec::new(),
            reference_to: Vec::new(),
            relationship_name: None,
            relationship_order: None,
            cascade_delete: false,
            restricted_delete: false,
            write_requires_master_read: false,
            compound_field_name: None,
            components: Vec::new(),
            formula: None,
            default_value: None,
            extra_type_info: None,
            mask_type: None,
            inline_help_text: None,
        }
    }

    pub fn label(mut self, label: &str) -> Self {
        self.label = label.to_owned();
        self
    }

    pub fn length(mut self, length: u32) -> Self {
        self.length = length;
        self
    }

    pub fn precision_scale(mut self, precision: u8, scale: u8) -> Self {
        self.precision = precision;
        self.scale = scale;
        self
    }

    /// Required on create: not nillable.
    pub fn required(mut self) -> Self {
        self.nillable = false;
        self
    }

    /// System-maintained: neither createable nor updateable.
    pub fn read_only(mut self) -> Self {
        self.createable = false;
        self.updateable = false;
        self
    }

    fn not_nillable(mut self) -> Self {
        self.nillable = false;
        self
    }

    pub fn create_only(mut self) -> Self {
        self.updateable = false;
        self
    }

    pub fn defaulted(mut self) -> Self {
        self.defaulted_on_create = true;
        self
    }

    pub fn default_value(mut self, v: Value) -> Self {
        self.default_value = Some(v);
        self.defaulted_on_create = true;
        self
    }

    pub fn unique(mut self) -> Self {
        self.unique = true;
        self.id_lookup = true;
        self
    }

    /// An external id (`externalId`, `idLookup`); usable for upserts.
    pub fn external_id(mut self) -> Self {
        self.external_id = true;
        self.id_lookup = true;
        self.filterable = true;
        self.sortable = true;
        self.groupable = true;
        self
    }

    pub fn name_field(mut self) -> Self {
        self.name_field = true;
        self.id_lookup = true;
        self
    }

    pub fn html(mut self) -> Self {
        self.html_formatted = true;
        self.extra_type_info = Some("richtextarea".to_owned());
        self
    }

    pub fn extra_type_info(mut self, info: &str) -> Self {
        self.extra_type_info = Some(info.to_owned());
        self
    }

    pub fn auto_number(mut self) -> Self {
        self.auto_number = true;
        self.createable = false;
        self.updateable = false;
        self.defaulted_on_create = true;
        self.nillable = false;
        self
    }

    pub fn picklist(mut self, values: &[&str], restricted: bool) -> Self {
        self.picklist_values = values
            .iter()
            .map(|v| PicklistValue { value: (*v).to_owned(), label: (*v).to_owned(), active: true, default_value: false })
            .collect();
        self.restricted_picklist = restricted;
        self
    }

    /// A lookup (`references` several objects when polymorphic).
    pub fn lookup(mut self, to: &[&str]) -> Self {
        self.reference_to = to.iter().map(|s| (*s).to_owned()).collect();
        self.relationship_name = Some(relationship_name_for(&self.name));
        self
    }

    /// A master-detail relationship: required, cascade delete, parent set on create.
    pub fn master_detail(mut self, to: &str, order: u8) -> Self {
        self = self.lookup(&[to]);
        self.relationship_order = Some(order);
        self.cascade_delete = true;
        self.nillable = false;
        self.write_requires_master_read = false;
        self.updateable = false;
        self
    }

    pub fn formula(mut self, formula: Formula) -> Self {
        self.formula = Some(formula);
        self.createable = false;
        self.updateable = false;
        self.nillable = true;
        self
    }

    /// A compound `address`/`location` over its component field names.
    pub fn compound(mut self, components: &[&str]) -> Self {
        self.components = components.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    pub fn component_of(mut self, compound: &str) -> Self {
        self.compound_field_name = Some(compound.to_owned());
        self
    }

    pub fn help(mut self, text: &str) -> Self {
        self.inline_help_text = Some(text.to_owned());
        self
    }

    pub fn is_calculated(&self) -> bool {
        self.formula.is_some()
    }

    /// Stored in rows (as opposed to computed when read).
    pub fn is_stored(&self) -> bool {
        self.slot.is_some()
    }

    pub fn is_polymorphic(&self) -> bool {
        self.reference_to.len() > 1
    }

    /// The describe field object: exactly the 57 keys of a real org, alphabetically ordered.
    pub fn describe(&self) -> J {
        let ty = self.field_type;
        let byte_length = match ty {
            FieldType::Id | FieldType::Reference => 18,
            _ if ty.is_textual() || ty == FieldType::Textarea => self.length * 3,
            _ => 0,
        };
        json!({
            "aggregatable": self.aggregatable,
            "aiPredictionField": false,
            "autoNumber": self.auto_number,
            "byteLength": byte_length,
            "calculated": self.is_calculated(),
            "calculatedFormula": self.formula.as_ref().map(Formula::text),
            "cascadeDelete": self.cascade_delete,
            "caseSensitive": self.case_sensitive,
            "compoundFieldName": self.compound_field_name,
            "controllerName": null,
            "createable": self.createable,
            "custom": self.custom,
            "defaultValue": self.default_value.as_ref().map(|v| v.as_ref().to_json(ty, self.scale)),
            "defaultValueFormula": null,
            "defaultedOnCreate": self.defaulted_on_create,
            "dependentPicklist": false,
            "deprecatedAndHidden": false,
            "digits": self.digits,
            "displayLocationInDecimal": ty == FieldType::Location,
            "encrypted": self.encrypted,
            "externalId": self.external_id,
            "extraTypeInfo": self.extra_type_info,
            "filterable": self.filterable,
            "filteredLookupInfo": null,
            "formulaTreatNullNumberAsZero": self.is_calculated() && ty.is_numeric(),
            "groupable": self.groupable,
            "highScaleNumber": false,
            "htmlFormatted": self.html_formatted,
            "idLookup": self.id_lookup,
            "inlineHelpText": self.inline_help_text,
            "label": self.label,
            "length": self.length,
            "mask": if self.encrypted { Some("X") } else { None },
            "maskType": if self.encrypted { Some(self.mask_type.clone().unwrap_or_else(|| "all".to_owned())) } else { None },
            "name": self.name,
            "nameField": self.name_field,
            "namePointing": self.is_polymorphic(),
            "nillable": self.nillable,
            "permissionable": self.custom && self.nillable && !self.is_calculated(),
            "picklistValues": self.picklist_values.iter().map(|p| json!({
                "active": p.active,
                "defaultValue": p.default_value,
                "label": p.label,
                "validFor": null,
                "value": p.value,
            })).collect::<Vec<_>>(),
            "polymorphicForeignKey": self.is_polymorphic(),
            "precision": self.precision,
            "queryByDistance": false,
            "referenceTargetField": null,
            "referenceTo": self.reference_to,
            "relationshipName": self.relationship_name,
            "relationshipOrder": self.relationship_order,
            "restrictedDelete": self.restricted_delete,
            "restrictedPicklist": self.restricted_picklist,
            "scale": self.scale,
            "searchPrefilterable": false,
            "soapType": ty.soap_type(),
            "sortable": self.sortable,
            "type": ty.as_str(),
            "unique": self.unique,
            "updateable": self.updateable,
            "writeRequiresMasterRead": self.write_requires_master_read,
        })
    }
}

/// `Annual_Revenue__c` → `Annual Revenue`, `BillingCity` → `Billing City`.
fn default_label(name: &str) -> String {
    let base = name.trim_end_matches("__c").trim_end_matches("__s");
    let mut out = String::with_capacity(base.len() + 4);
    let mut prev_lower = false;
    for c in base.chars() {
        if c == '_' {
            out.push(' ');
            prev_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower {
            out.push(' ');
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        out.push(c);
    }
    out
}

/// Object-level describe flags.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectFlags {
    pub queryable: bool,
    pub replicateable: bool,
    pub retrieveable: bool,
    pub createable: bool,
    pub updateable: bool,
    pub deletable: bool,
    pub undeletable: bool,
    pub triggerable: bool,
    pub searchable: bool,
    pub layoutable: bool,
    pub mergeable: bool,
    pub feed_enabled: bool,
    /// Bulk API 2.0 (and 1.0) refuse to query objects without this.
    pub bulk_queryable: bool,
    pub pk_chunking_supported: bool,
}

impl Default for ObjectFlags {
    fn default() -> Self {
        ObjectFlags {
            queryable: true,
            replicateable: true,
            retrieveable: true,
            createable: true,
            updateable: true,
            deletable: true,
            undeletable: true,
            triggerable: true,
            searchable: true,
            layoutable: true,
            mergeable: false,
            feed_enabled: false,
            bulk_queryable: true,
            pk_chunking_supported: true,
        }
    }
}

/// A validation rule, evaluated on create and update (not on delete or undelete). It fails
/// when `field`'s value (the merged record's on update) matches `when`, answering
/// `FIELD_CUSTOM_VALIDATION_EXCEPTION` with `message`; `error_field` is the field the error is
/// shown at (`fields: [error_field]`), or none for a top-of-page error (`fields: []`).
#[derive(Debug, Clone, PartialEq)]
pub struct ValidationRule {
    pub name: String,
    pub field: String,
    pub when: RuleCondition,
    pub message: String,
    pub error_field: Option<String>,
}

/// When a validation rule fails. A null (or empty text) value only fails [`RuleCondition::IsBlank`].
#[derive(Debug, Clone, PartialEq)]
pub enum RuleCondition {
    /// The numeric value is below the bound.
    LessThan(f64),
    /// The numeric value is above the bound.
    GreaterThan(f64),
    /// The value is null/blank.
    IsBlank,
    /// The value equals this one ("must not be X"): numbers numerically, booleans as
    /// `true`/`false`, text case-sensitively as a formula's `=` compares.
    Equals(String),
    /// The value differs from this one ("must be X").
    NotEquals(String),
    /// The text matches a SOQL `LIKE` pattern (`%` any run, `_` one character, case-insensitive).
    Like(String),
    /// The text does not match the `LIKE` pattern ("must match").
    NotLike(String),
}

/// An sObject type with its fields in describe order.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectDef {
    pub name: String,
    pub label: String,
    pub label_plural: String,
    pub key_prefix: String,
    pub custom: bool,
    pub flags: ObjectFlags,
    pub fields: Vec<FieldDef>,
    pub validation_rules: Vec<ValidationRule>,
    /// The next unassigned row slot.
    pub next_slot: Slot,
}

impl ObjectDef {
    pub fn new(name: &str, label: &str, label_plural: &str, key_prefix: &str) -> ObjectDef {
        ObjectDef {
            name: name.to_owned(),
            label: label.to_owned(),
            label_plural: label_plural.to_owned(),
            key_prefix: key_prefix.to_owned(),
            custom: name.ends_with("__c"),
            flags: ObjectFlags::default(),
            fields: Vec::new(),
            validation_rules: Vec::new(),
            next_slot: 0,
        }
    }

    /// Adds a field, assigning it a row slot unless it is computed on read.
    pub fn add_field(&mut self, mut field: FieldDef) -> &mut FieldDef {
        if !field.field_type.is_compound() && field.formula.is_none() {
            field.slot = Some(self.next_slot);
            self.next_slot += 1;
        }
        self.fields.push(field);
        self.fields.last_mut().expect("just pushed")
    }

    /// Adds the audit fields every sObject has: `Id`, `IsDeleted`, `CreatedDate`,
    /// `CreatedById`, `LastModifiedDate`, `LastModifiedById`, `SystemModstamp`.
    pub fn add_system_fields(&mut self) {
        let label = self.label.clone();
        self.add_field(FieldDef::new("Id", FieldType::Id).label(&format!("{label} ID")));
        self.add_field(FieldDef::new("IsDeleted", FieldType::Boolean).label("Deleted").read_only());
        self.add_field(FieldDef::new("CreatedDate", FieldType::Datetime).read_only().defaulted().not_nillable());
        self.add_field(
            FieldDef::new("CreatedById", FieldType::Reference)
                .lookup(&["User"])
                .label("Created By ID")
                .read_only()
                .defaulted()
                .not_nillable(),
        );
        self.add_field(FieldDef::new("LastModifiedDate", FieldType::Datetime).read_only().defaulted().not_nillable());
        self.add_field(
            FieldDef::new("LastModifiedById", FieldType::Reference)
                .lookup(&["User"])
                .label("Last Modified By ID")
                .read_only()
                .defaulted()
                .not_nillable(),
        );
        self.add_field(
            FieldDef::new("SystemModstamp", FieldType::Datetime).label("System Modstamp").read_only().defaulted().not_nillable(),
        );
    }

    /// Case-insensitive field lookup, as SOQL and the REST API resolve names.
    pub fn field(&self, name: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| f.name.eq_ignore_ascii_case(name))
    }

    pub fn field_index(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// The slot of a stored field (panics on a missing system field: a catalog bug).
    pub fn slot(&self, name: &str) -> Slot {
        self.field(name).and_then(|f| f.slot).unwrap_or_else(|| panic!("{}.{name} is not a stored field", self.name))
    }

    /// The reference field whose relationship name is `relationship` (case-insensitive).
    pub fn relationship(&self, relationship: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| f.relationship_name.as_deref().is_some_and(|r| r.eq_ignore_ascii_case(relationship)))
    }

    pub fn has_field(&self, name: &str) -> bool {
        self.field(name).is_some()
    }

    /// The entry of this object in describeGlobal's `sobjects` array.
    pub fn describe_global_entry(&self, version: &str) -> J {
        let f = &self.flags;
        let url_base = format!("/services/data/v{version}/sobjects/{}", self.name);
        json!({
            "activateable": false,
            "associateEntityType": null,
            "associateParentEntity": null,
            "createable": f.createable,
            "custom": self.custom,
            "customSetting": false,
            "deepCloneable": false,
            "deletable": f.deletable,
            "deprecatedAndHidden": false,
            "feedEnabled": f.feed_enabled,
            "hasSubtypes": false,
            "isInterface": false,
            "isSubtype": false,
            "keyPrefix": self.key_prefix,
            "label": self.label,
            "labelPlural": self.label_plural,
            "layoutable": f.layoutable,
            "mergeable": f.mergeable,
            "mruEnabled": f.layoutable,
            "name": self.name,
            "queryable": f.queryable,
            "replicateable": f.replicateable,
            "retrieveable": f.retrieveable,
            "searchable": f.searchable,
            "triggerable": f.triggerable,
            "undeletable": f.undeletable,
            "updateable": f.updateable,
            "urls": {
                "compactLayouts": format!("{url_base}/describe/compactLayouts"),
                "rowTemplate": format!("{url_base}/{{ID}}"),
                "approvalLayouts": format!("{url_base}/describe/approvalLayouts"),
                "listviews": format!("{url_base}/listviews"),
                "describe": format!("{url_base}/describe"),
                "quickActions": format!("{url_base}/quickActions"),
                "layouts": format!("{url_base}/describe/layouts"),
                "sobject": url_base,
            }
        })
    }

    /// The full sObject describe. `child_relationships` comes from the org, which knows which
    /// other objects point here.
    pub fn describe(&self, version: &str, child_relationships: Vec<J>) -> J {
        let mut d = self.describe_global_entry(version);
        let obj = d.as_object_mut().expect("describe is an object");
        obj.insert("actionOverrides".into(), json!([]));
        obj.insert("childRelationships".into(), J::Array(child_relationships));
        obj.insert("compactLayoutable".into(), json!(self.flags.layoutable));
        obj.insert("defaultImplementation".into(), J::Null);
        obj.insert("extendedBy".into(), J::Null);
        obj.insert("extendsInterfaces".into(), J::Null);
        obj.insert("fields".into(), J::Array(self.fields.iter().map(FieldDef::describe).collect()));
        obj.insert("implementedBy".into(), J::Null);
        obj.insert("implementsInterfaces".into(), J::Null);
        obj.insert("listviewable".into(), J::Null);
        obj.insert("lookupLayoutable".into(), J::Null);
        obj.insert("namedLayoutInfos".into(), json!([]));
        obj.insert("networkScopeFieldName".into(), J::Null);
        obj.insert(
            "recordTypeInfos".into(),
            json!([{
                "active": true,
                "available": true,
                "defaultRecordTypeMapping": true,
                "developerName": "Master",
                "master": true,
                "name": "Master",
                "recordTypeId": "012000000000000AAA",
                "urls": { "layout": format!("/services/data/v{version}/sobjects/{}/describe/layouts/012000000000000AAA", self.name) }
            }]),
        );
        obj.insert("searchLayoutable".into(), json!(self.flags.searchable));
        obj.insert("supportedScopes".into(), json!([{ "label": "All", "name": "everything" }]));
        obj.insert("sobjectDescribeOption".into(), json!("FULL"));
        let urls = obj.get_mut("urls").and_then(J::as_object_mut).expect("urls object");
        urls.insert("uiDetailTemplate".into(), J::String("https://tidemark-sim.my.salesforce.com/{ID}".to_owned()));
        urls.insert("uiEditTemplate".into(), J::String("https://tidemark-sim.my.salesforce.com/{ID}/e".to_owned()));
        urls.insert("uiNewRecord".into(), J::String(format!("https://tidemark-sim.my.salesforce.com/{}/e", self.key_prefix)));
        sort_object_keys(d)
    }
}

/// Describe output is alphabetically ordered in real orgs; `preserve_order` keeps insertion
/// order, so sort explicitly.
fn sort_object_keys(v: J) -> J {
    match v {
        J::Object(map) => {
            let mut entries: Vec<(String, J)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            J::Object(entries.into_iter().map(|(k, v)| (k, sort_object_keys(v))).collect())
        }
        J::Array(items) => J::Array(items.into_iter().map(sort_object_keys).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_describe_has_exactly_the_real_keys() {
        let real: J = serde_json::from_str(include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/salesforce-api/describe-account.json"
        )))
        .expect("corpus parses");
        let real_keys: Vec<&String> = real["fields"][0].as_object().unwrap().keys().collect();
        let ours = FieldDef::new("Name", FieldType::String).describe();
        let our_keys: Vec<&String> = ours.as_object().unwrap().keys().collect();
        assert_eq!(our_keys, real_keys);
        assert_eq!(our_keys.len(), 57);
    }

    #[test]
    fn relationship_names_follow_salesforce_conventions() {
        assert_eq!(relationship_name_for("AccountId"), "Account");
        assert_eq!(relationship_name_for("Account__c"), "Account__r");
        assert_eq!(default_label("Annual_Revenue__c"), "Annual Revenue");
        assert_eq!(default_label("BillingCity"), "Billing City");
    }

    #[test]
    fn slots_go_to_stored_fields_only() {
        let mut o = ObjectDef::new("Thing__c", "Thing", "Things", "a01");
        o.add_field(FieldDef::new("Id", FieldType::Id));
        o.add_field(FieldDef::new("Where__c", FieldType::Location).compound(&["Where__Latitude__s"]));
        o.add_field(FieldDef::new("Where__Latitude__s", FieldType::Double).component_of("Where__c"));
        assert_eq!(o.field("id").unwrap().slot, Some(0));
        assert_eq!(o.field("where__c").unwrap().slot, None);
        assert_eq!(o.slot("Where__Latitude__s"), 1);
    }
}
