//! The standard and custom objects of the simulated org: realistic API names, labels, lengths,
//! picklist values and describe flags (Account mirrors a real org's describe field for field).
//!
//! Across the catalog every describe field type appears: id, reference (incl. polymorphic
//! `Task.WhoId`/`WhatId`, `Attachment.ParentId`), string, textarea (plain, long, rich),
//! picklist (restricted and not), multipicklist, combobox, boolean, int, double, currency,
//! percent, date, datetime, time, email, phone, url, encryptedstring, base64, address, location
//! and anyType. `long` is the one type no object here has: real orgs expose it only on a few
//! setup objects outside this catalog.

mod account;
mod custom;
mod sales;
mod service;

pub use custom::vendor;

/// Picklist values and other catalog constants the data generator draws from.
pub(crate) mod consts {
    pub(crate) use super::STATE_CODES;
    pub(crate) use super::account::{ACCOUNT_TYPES, INDUSTRIES, RATINGS, SOURCES};
    pub(crate) use super::custom::{FEATURES, INVOICE_STATUSES, PLANS, SUBSCRIPTION_STATUSES};
    pub(crate) use super::sales::{
        CAMPAIGN_STATUSES, CAMPAIGN_TYPES, CONTACT_LEVELS, LEAD_STATUSES, OPPORTUNITY_TYPES, PRODUCT_INTERESTS, SALUTATIONS,
        STAGES,
    };
    pub(crate) use super::service::{
        CASE_ORIGINS, CASE_REASONS, CASE_STATUSES, CASE_TYPES, PRIORITIES, TASK_PRIORITIES, TASK_STATUSES, TASK_SUBJECTS,
        TIME_ZONES,
    };
}

use tidemark_core::FieldType;

use crate::schema::{FieldDef, ObjectDef, ObjectFlags};
use crate::value::Value;

/// Every object of a fresh org, in describeGlobal order.
pub fn standard_objects() -> Vec<ObjectDef> {
    vec![
        account::account(),
        account::account_feed(),
        account::account_history(),
        service::attachment(),
        sales::campaign(),
        sales::campaign_member(),
        service::case(),
        sales::contact(),
        sales::lead(),
        sales::opportunity(),
        sales::opportunity_line_item(),
        service::task(),
        service::user(),
        service::user_license(),
        custom::invoice(),
        custom::subscription(),
    ]
}

/// A new object with the audit fields, patched to match real describes (`IsDeleted` reports a
/// `false` default; custom objects label their Id "Record ID").
pub(crate) fn object(name: &str, label: &str, plural: &str, prefix: &str) -> ObjectDef {
    let mut o = ObjectDef::new(name, label, plural, prefix);
    o.add_system_fields();
    if let Some(f) = o.fields.iter_mut().find(|f| f.name == "IsDeleted") {
        f.default_value = Some(Value::Bool(false));
        f.aggregatable = false;
    }
    if o.custom
        && let Some(f) = o.fields.iter_mut().find(|f| f.name == "Id")
    {
        f.label = "Record ID".to_owned();
    }
    o
}

/// Moves the audit fields (`CreatedDate` … `SystemModstamp`) right after `anchor` in describe
/// order, where real objects list them (after `OwnerId` on Account, after `Name` on custom
/// objects). Slots are unaffected.
pub(crate) fn move_audit_after(o: &mut ObjectDef, anchor: &str) {
    let audit = ["CreatedDate", "CreatedById", "LastModifiedDate", "LastModifiedById", "SystemModstamp"];
    let (moved, mut kept): (Vec<FieldDef>, Vec<FieldDef>) =
        std::mem::take(&mut o.fields).into_iter().partition(|f| audit.contains(&f.name.as_str()));
    let at = kept.iter().position(|f| f.name == anchor).map_or(kept.len(), |i| i + 1);
    kept.splice(at..at, moved);
    o.fields = kept;
}

/// Flags of objects the API can read but nobody writes (history, licences).
pub(crate) fn read_only_flags(replicateable: bool) -> ObjectFlags {
    ObjectFlags {
        queryable: true,
        replicateable,
        retrieveable: true,
        createable: false,
        updateable: false,
        deletable: false,
        undeletable: false,
        triggerable: false,
        searchable: false,
        layoutable: false,
        mergeable: false,
        feed_enabled: false,
        bulk_queryable: true,
        pk_chunking_supported: false,
    }
}

pub(crate) fn field(name: &str, ty: FieldType, label: &str) -> FieldDef {
    let mut f = FieldDef::new(name, ty).label(label);
    match ty {
        // Real describes: time fields are neither groupable nor aggregatable; combobox and
        // encrypted fields are not groupable; encrypted fields are not filterable either.
        FieldType::Time => f.aggregatable = false,
        FieldType::Combobox => f.groupable = false,
        FieldType::Encryptedstring => {
            f.groupable = false;
            f.aggregatable = false;
            f.filterable = false;
        }
        FieldType::Multipicklist => {
            f.precision = 4;
            f.groupable = false;
        }
        FieldType::AnyType => {
            f.filterable = false;
            f.sortable = false;
            f.aggregatable = false;
        }
        _ => {}
    }
    f
}

pub(crate) fn text(name: &str, label: &str, length: u32) -> FieldDef {
    field(name, FieldType::String, label).length(length)
}

/// A short plain textarea (address streets): unlike long text it filters, sorts and groups.
pub(crate) fn short_textarea(name: &str, label: &str, length: u32) -> FieldDef {
    let mut f = field(name, FieldType::Textarea, label).length(length).extra_type_info("plaintextarea");
    f.filterable = true;
    f.sortable = true;
    f.groupable = true;
    f.aggregatable = true;
    f
}

/// A long plain textarea (descriptions).
pub(crate) fn long_textarea(name: &str, label: &str, length: u32) -> FieldDef {
    field(name, FieldType::Textarea, label).length(length).extra_type_info("plaintextarea")
}

/// A standard picklist (length 40) or a custom one (length 255).
pub(crate) fn picklist(name: &str, label: &str, values: &[&str], restricted: bool) -> FieldDef {
    let length = if name.ends_with("__c") || name.ends_with("__s") { 255 } else { 40 };
    field(name, FieldType::Picklist, label).length(length).picklist(values, restricted)
}

pub(crate) fn number(name: &str, ty: FieldType, label: &str, precision: u8, scale: u8) -> FieldDef {
    field(name, ty, label).precision_scale(precision, scale)
}

pub(crate) fn checkbox(name: &str, label: &str, default: bool) -> FieldDef {
    field(name, FieldType::Boolean, label).default_value(Value::Bool(default)).not_nillable_bool()
}

pub(crate) fn lookup(name: &str, label: &str, to: &[&str]) -> FieldDef {
    field(name, FieldType::Reference, label).lookup(to)
}

/// `OwnerId`: required, defaulted to the running user by the platform.
pub(crate) fn owner() -> FieldDef {
    lookup("OwnerId", "Owner ID", &["User"]).defaulted().required()
}

/// A system-maintained field: read-only and, for references, not marked required.
pub(crate) fn system(mut f: FieldDef) -> FieldDef {
    f = f.read_only();
    f
}

/// `LastViewedDate` and `LastReferencedDate`, which most objects carry.
pub(crate) fn add_recently_viewed(o: &mut ObjectDef) {
    o.add_field(system(field("LastViewedDate", FieldType::Datetime, "Last Viewed Date")));
    o.add_field(system(field("LastReferencedDate", FieldType::Datetime, "Last Referenced Date")));
}

pub(crate) const GEOCODE_ACCURACY: [&str; 11] =
    ["Address", "NearAddress", "Block", "Street", "ExtendedZip", "Zip", "Neighborhood", "City", "County", "State", "Unknown"];

/// A standard address: `<Prefix>Street`, `City`, `State`, `PostalCode`, `Country`, `Latitude`,
/// `Longitude`, `GeocodeAccuracy`, then the compound `<compound>` itself.
pub(crate) fn add_standard_address(o: &mut ObjectDef, prefix: &str, label: &str, compound: &str) {
    let n = |s: &str| format!("{prefix}{s}");
    let l = |s: &str| if label.is_empty() { s.to_owned() } else { format!("{label} {s}") };
    let parts = [
        short_textarea(&n("Street"), &l("Street"), 255),
        text(&n("City"), &l("City"), 40),
        text(&n("State"), &l("State/Province"), 80),
        text(&n("PostalCode"), &l("Zip/Postal Code"), 20),
        text(&n("Country"), &l("Country"), 80),
        number(&n("Latitude"), FieldType::Double, &l("Latitude"), 18, 15),
        number(&n("Longitude"), FieldType::Double, &l("Longitude"), 18, 15),
        picklist(&n("GeocodeAccuracy"), &l("Geocode Accuracy"), &GEOCODE_ACCURACY, true),
    ];
    let names: Vec<String> = parts.iter().map(|f| f.name.clone()).collect();
    for p in parts {
        o.add_field(p.component_of(compound));
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut c = field(compound, FieldType::Address, &l("Address")).compound(&refs);
    c.filterable = true;
    o.add_field(c);
}

/// A custom address compound `<Base>__c` with `<Base>__Street__s` … components.
pub(crate) fn add_custom_address(o: &mut ObjectDef, base: &str, label: &str) {
    let compound = format!("{base}__c");
    let n = |s: &str| format!("{base}__{s}__s");
    let l = |s: &str| format!("{label} ({s})");
    let parts = [
        short_textarea(&n("Street"), &l("Street"), 255),
        text(&n("City"), &l("City"), 40),
        text(&n("PostalCode"), &l("ZIP/Postal Code"), 20),
        picklist(&n("StateCode"), &l("State/Province"), &STATE_CODES, true).length(10),
        picklist(&n("CountryCode"), &l("Country/Territory"), &COUNTRY_CODES, true).length(10),
        number(&n("Latitude"), FieldType::Double, &l("Latitude"), 18, 15),
        number(&n("Longitude"), FieldType::Double, &l("Longitude"), 18, 15),
        picklist(&n("GeocodeAccuracy"), &l("Geocode Accuracy"), &GEOCODE_ACCURACY, true).length(80),
    ];
    let names: Vec<String> = parts.iter().map(|f| f.name.clone()).collect();
    for p in parts {
        o.add_field(p.component_of(&compound));
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut c = field(&compound, FieldType::Address, label).compound(&refs);
    c.filterable = true;
    o.add_field(c);
}

/// A custom geolocation `<Base>__c` with `__Latitude__s`/`__Longitude__s` components.
pub(crate) fn add_custom_location(o: &mut ObjectDef, base: &str, label: &str, precision: u8, scale: u8) {
    let compound = format!("{base}__c");
    let lat = format!("{base}__Latitude__s");
    let lon = format!("{base}__Longitude__s");
    o.add_field(number(&lat, FieldType::Double, &format!("{label} (Latitude)"), precision, scale).component_of(&compound));
    o.add_field(number(&lon, FieldType::Double, &format!("{label} (Longitude)"), precision, scale).component_of(&compound));
    o.add_field(field(&compound, FieldType::Location, label).compound(&[&lat, &lon]));
}

/// US state codes offered by custom address state pickers (the real list is per country).
pub(crate) const STATE_CODES: [&str; 12] = ["CA", "NY", "TX", "WA", "IL", "MA", "CO", "GA", "FL", "OR", "BE", "BY"];
pub(crate) const COUNTRY_CODES: [&str; 6] = ["US", "CA", "GB", "DE", "FR", "MX"];

/// Builder helpers the schema module does not offer.
pub(crate) trait FieldDefExt {
    fn not_nillable_bool(self) -> Self;
    fn no_id_lookup(self) -> Self;
    fn id_lookup(self) -> Self;
}

impl FieldDefExt for FieldDef {
    fn not_nillable_bool(mut self) -> Self {
        self.nillable = false;
        self
    }

    fn no_id_lookup(mut self) -> Self {
        self.id_lookup = false;
        self
    }

    fn id_lookup(mut self) -> Self {
        self.id_lookup = true;
        self
    }
}

#[cfg(test)]
mod tests;
