//! Serializable mirrors of the schema types (which carry no serde derives of their own).

use serde::{Deserialize, Serialize};
use tidemark_core::FieldType;

use crate::row::Slot;
use crate::schema::{FieldDef, Formula, ObjectDef, ObjectFlags, PicklistValue, RuleCondition, ValidationRule};
use crate::value::Value;

#[derive(Serialize, Deserialize)]
pub(super) enum FormulaDto {
    ParentField { reference_field: String, parent_field: String },
    Product { left: String, right: String, divisor: f64 },
    DaysSince { field: String },
}

#[derive(Serialize, Deserialize)]
pub(super) struct PicklistDto {
    value: String,
    label: String,
    active: bool,
    default_value: bool,
}

/// Every `FieldDef` attribute, by name.
#[derive(Serialize, Deserialize)]
pub(super) struct FieldDto {
    name: String,
    label: String,
    field_type: FieldType,
    slot: Option<Slot>,
    length: u32,
    precision: u8,
    scale: u8,
    digits: u8,
    flags: Vec<String>,
    picklist_values: Vec<PicklistDto>,
    reference_to: Vec<String>,
    relationship_name: Option<String>,
    relationship_order: Option<u8>,
    compound_field_name: Option<String>,
    components: Vec<String>,
    formula: Option<FormulaDto>,
    default_value: Option<Value>,
    extra_type_info: Option<String>,
    mask_type: Option<String>,
    inline_help_text: Option<String>,
}

/// The boolean attributes of a field, stored as the list of those that are true.
macro_rules! bool_flags {
    ($($flag:ident),* $(,)?) => {
        fn flags_of(f: &FieldDef) -> Vec<String> {
            let mut out = Vec::new();
            $(if f.$flag { out.push(stringify!($flag).to_owned()); })*
            out
        }
        fn set_flags(f: &mut FieldDef, flags: &[String]) {
            $(f.$flag = flags.iter().any(|x| x == stringify!($flag));)*
        }
    };
}

bool_flags!(
    nillable,
    createable,
    updateable,
    defaulted_on_create,
    unique,
    case_sensitive,
    external_id,
    id_lookup,
    name_field,
    custom,
    auto_number,
    html_formatted,
    encrypted,
    filterable,
    sortable,
    groupable,
    aggregatable,
    restricted_picklist,
    cascade_delete,
    restricted_delete,
    write_requires_master_read,
);

impl From<&FieldDef> for FieldDto {
    fn from(f: &FieldDef) -> Self {
        FieldDto {
            name: f.name.clone(),
            label: f.label.clone(),
            field_type: f.field_type,
            slot: f.slot,
            length: f.length,
            precision: f.precision,
            scale: f.scale,
            digits: f.digits,
            flags: flags_of(f),
            picklist_values: f
                .picklist_values
                .iter()
                .map(|p| PicklistDto {
                    value: p.value.clone(),
                    label: p.label.clone(),
                    active: p.active,
                    default_value: p.default_value,
                })
                .collect(),
            reference_to: f.reference_to.clone(),
            relationship_name: f.relationship_name.clone(),
            relationship_order: f.relationship_order,
            compound_field_name: f.compound_field_name.clone(),
            components: f.components.clone(),
            formula: f.formula.as_ref().map(|fm| match fm {
                Formula::ParentField { reference_field, parent_field } => {
                    FormulaDto::ParentField { reference_field: reference_field.clone(), parent_field: parent_field.clone() }
                }
                Formula::Product { left, right, divisor } => {
                    FormulaDto::Product { left: left.clone(), right: right.clone(), divisor: *divisor }
                }
                Formula::DaysSince { field } => FormulaDto::DaysSince { field: field.clone() },
            }),
            default_value: f.default_value.clone(),
            extra_type_info: f.extra_type_info.clone(),
            mask_type: f.mask_type.clone(),
            inline_help_text: f.inline_help_text.clone(),
        }
    }
}

impl From<FieldDto> for FieldDef {
    fn from(d: FieldDto) -> Self {
        let mut f = FieldDef::new(&d.name, d.field_type);
        f.label = d.label;
        f.slot = d.slot;
        f.length = d.length;
        f.precision = d.precision;
        f.scale = d.scale;
        f.digits = d.digits;
        set_flags(&mut f, &d.flags);
        f.picklist_values = d
            .picklist_values
            .into_iter()
            .map(|p| PicklistValue { value: p.value, label: p.label, active: p.active, default_value: p.default_value })
            .collect();
        f.reference_to = d.reference_to;
        f.relationship_name = d.relationship_name;
        f.relationship_order = d.relationship_order;
        f.compound_field_name = d.compound_field_name;
        f.components = d.components;
        f.formula = d.formula.map(|fm| match fm {
            FormulaDto::ParentField { reference_field, parent_field } => Formula::ParentField { reference_field, parent_field },
            FormulaDto::Product { left, right, divisor } => Formula::Product { left, right, divisor },
            FormulaDto::DaysSince { field } => Formula::DaysSince { field },
        });
        f.default_value = d.default_value;
        f.extra_type_info = d.extra_type_info;
        f.mask_type = d.mask_type;
        f.inline_help_text = d.inline_help_text;
        f
    }
}

#[derive(Serialize, Deserialize)]
pub(super) enum ConditionDto {
    LessThan(f64),
    GreaterThan(f64),
    IsBlank,
    Equals(String),
    NotEquals(String),
    Like(String),
    NotLike(String),
}

#[derive(Serialize, Deserialize)]
pub(super) struct RuleDto {
    name: String,
    field: String,
    when: ConditionDto,
    message: String,
    /// Where the error shows: a field name, or `""` for the top of the page. Absent in snapshots
    /// written before rules had a choice, whose rules all showed at their field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error_at: Option<String>,
}

#[derive(Serialize, Deserialize)]
pub(super) struct ObjectDto {
    name: String,
    label: String,
    label_plural: String,
    key_prefix: String,
    custom: bool,
    flags: Vec<String>,
    fields: Vec<FieldDto>,
    validation_rules: Vec<RuleDto>,
    next_slot: Slot,
}

macro_rules! object_flags {
    ($($flag:ident),* $(,)?) => {
        fn object_flags_of(f: &ObjectFlags) -> Vec<String> {
            let mut out = Vec::new();
            $(if f.$flag { out.push(stringify!($flag).to_owned()); })*
            out
        }
        fn object_flags_from(flags: &[String]) -> ObjectFlags {
            ObjectFlags { $($flag: flags.iter().any(|x| x == stringify!($flag)),)* }
        }
    };
}

object_flags!(
    queryable,
    replicateable,
    retrieveable,
    createable,
    updateable,
    deletable,
    undeletable,
    triggerable,
    searchable,
    layoutable,
    mergeable,
    feed_enabled,
    bulk_queryable,
    pk_chunking_supported,
);

impl From<&ObjectDef> for ObjectDto {
    fn from(o: &ObjectDef) -> Self {
        ObjectDto {
            name: o.name.clone(),
            label: o.label.clone(),
            label_plural: o.label_plural.clone(),
            key_prefix: o.key_prefix.clone(),
            custom: o.custom,
            flags: object_flags_of(&o.flags),
            fields: o.fields.iter().map(FieldDto::from).collect(),
            validation_rules: o
                .validation_rules
                .iter()
                .map(|r| RuleDto {
                    name: r.name.clone(),
                    field: r.field.clone(),
                    when: match &r.when {
                        RuleCondition::LessThan(b) => ConditionDto::LessThan(*b),
                        RuleCondition::GreaterThan(b) => ConditionDto::GreaterThan(*b),
                        RuleCondition::IsBlank => ConditionDto::IsBlank,
                        RuleCondition::Equals(s) => ConditionDto::Equals(s.clone()),
                        RuleCondition::NotEquals(s) => ConditionDto::NotEquals(s.clone()),
                        RuleCondition::Like(s) => ConditionDto::Like(s.clone()),
                        RuleCondition::NotLike(s) => ConditionDto::NotLike(s.clone()),
                    },
                    message: r.message.clone(),
                    error_at: Some(r.error_field.clone().unwrap_or_default()),
                })
                .collect(),
            next_slot: o.next_slot,
        }
    }
}

impl From<ObjectDto> for ObjectDef {
    fn from(d: ObjectDto) -> Self {
        let mut o = ObjectDef::new(&d.name, &d.label, &d.label_plural, &d.key_prefix);
        o.custom = d.custom;
        o.flags = object_flags_from(&d.flags);
        o.fields = d.fields.into_iter().map(FieldDef::from).collect();
        o.validation_rules = d
            .validation_rules
            .into_iter()
            .map(|r| ValidationRule {
                name: r.name,
                field: r.field.clone(),
                when: match r.when {
                    ConditionDto::LessThan(b) => RuleCondition::LessThan(b),
                    ConditionDto::GreaterThan(b) => RuleCondition::GreaterThan(b),
                    ConditionDto::IsBlank => RuleCondition::IsBlank,
                    ConditionDto::Equals(s) => RuleCondition::Equals(s),
                    ConditionDto::NotEquals(s) => RuleCondition::NotEquals(s),
                    ConditionDto::Like(s) => RuleCondition::Like(s),
                    ConditionDto::NotLike(s) => RuleCondition::NotLike(s),
                },
                error_field: match r.error_at {
                    None => Some(r.field.clone()),
                    Some(f) if f.is_empty() => None,
                    Some(f) => Some(f),
                },
                message: r.message,
            })
            .collect();
        o.next_slot = d.next_slot;
        o
    }
}
