//! The catalog against real describes: same flags for the same kind of field.

use serde_json::Value as J;
use tidemark_core::FieldType;

use super::standard_objects;
use crate::schema::ObjectDef;

fn corpus(name: &str) -> J {
    let path = format!("{}/../../../shared/salesforce-api/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("corpus file")).expect("corpus JSON")
}

fn object(name: &str) -> ObjectDef {
    standard_objects().into_iter().find(|o| o.name == name).expect("object in catalog")
}

/// Keys where our describe knowingly differs: `permissionable` is derived by the schema module
/// (custom fields only), `mask` is rendered by the schema module, picklist entries are compared
/// separately, and `compoundFieldName` of Account.Name is a person-account artefact.
/// `searchPrefilterable`, `queryByDistance`, `displayLocationInDecimal` and `encrypted` are
/// likewise fixed by the schema module (which ties masking to `encrypted`).
const TOLERATED: [&str; 8] = [
    "permissionable",
    "mask",
    "picklistValues",
    "compoundFieldName",
    "searchPrefilterable",
    "queryByDistance",
    "displayLocationInDecimal",
    "encrypted",
];

fn assert_same_field(ours: &J, real: &J, context: &str, mismatches: &mut Vec<String>) {
    let ours = ours.as_object().expect("field object");
    let real = real.as_object().expect("field object");
    let mut ours_keys: Vec<&String> = ours.keys().collect();
    let mut real_keys: Vec<&String> = real.keys().collect();
    ours_keys.sort();
    real_keys.sort();
    assert_eq!(ours_keys, real_keys, "{context}: keys");
    for (k, v) in real {
        if TOLERATED.contains(&k.as_str()) {
            continue;
        }
        if &ours[k] != v {
            mismatches.push(format!("{context}.{k}: ours {} real {v}", ours[k]));
        }
    }
    let values = |f: &serde_json::Map<String, J>| -> Vec<J> {
        f["picklistValues"].as_array().expect("array").iter().map(|p| p["value"].clone()).collect()
    };
    let (ours_values, real_values) = (values(ours), values(real));
    for v in &real_values {
        assert!(ours_values.contains(v), "{context}: picklist value {v} missing");
    }
}

#[test]
fn account_fields_match_the_real_account_describe() {
    let real = corpus("describe-account.json");
    let ours = object("Account");
    let mut compared = 0;
    let mut mismatches = Vec::new();
    for real_field in real["fields"].as_array().expect("fields") {
        let name = real_field["name"].as_str().expect("name");
        let Some(f) = ours.field(name) else { continue };
        assert_same_field(&f.describe(), real_field, &format!("Account.{name}"), &mut mismatches);
        compared += 1;
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    assert!(compared >= 60, "compared {compared} Account fields");
    // Describe order follows the real one for the fields we share.
    let real_order: Vec<&str> = real["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(|f| f["name"].as_str())
        .filter(|n| ours.has_field(n))
        .collect();
    let our_order: Vec<&str> = ours.fields.iter().map(|f| f.name.as_str()).filter(|n| real_order.contains(n)).collect();
    assert_eq!(our_order, real_order);
}

#[test]
fn each_kind_of_field_matches_a_real_sample() {
    // (real sample object, real field) → (our object, our field of the same kind)
    let pairs = [
        ("All_Field__c", "Email__c", "Invoice__c", "Billing_Email__c"),
        ("All_Field__c", "GeoLocation__c", "Subscription__c", "Site_Location__c"),
        ("All_Field__c", "GeoLocation__Latitude__s", "Subscription__c", "Site_Location__Latitude__s"),
        ("All_Field__c", "Text_Encrypted__c", "Contact", "Tax_Id__c"),
        ("All_Field__c", "Time__c", "Contact", "Preferred_Call_Time__c"),
        ("All_Field__c", "Picklist_Multi_Select__c", "Subscription__c", "Features__c"),
        ("All_Field__c", "Address__City__s", "Invoice__c", "Service_Address__City__s"),
        ("All_Field__c", "Master_Detail_Relationship__c", "Subscription__c", "Account__c"),
        ("All_Field__c", "Text_Area_Rich__c", "Invoice__c", "Terms__c"),
        ("All_Field__c", "Auto_Number__c", "Subscription__c", "Name"),
        ("Event", "Subject", "Task", "Subject"),
        ("Account", "BillingAddress", "Contact", "MailingAddress"),
        ("Account", "OwnerId", "Opportunity", "OwnerId"),
        ("Account", "Phone", "Lead", "Phone"),
    ];
    let samples = corpus("describe-field-type-samples.json");
    let catalog = standard_objects();
    // Keys that legitimately differ between two fields of the same kind.
    let own_keys = [
        "name",
        "label",
        "custom",
        "picklistValues",
        "compoundFieldName",
        "referenceTo",
        "relationshipName",
        "byteLength",
        "length",
        "precision",
        "scale",
        "nameField",
        "idLookup",
        "permissionable",
        "mask",
        "restrictedPicklist",
        "relationshipOrder",
        "cascadeDelete",
    ];
    let mut mismatches = Vec::new();
    for (real_obj, real_name, our_obj, our_name) in pairs {
        let real = samples["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .find(|e| e["_object"] == real_obj && e["field"]["name"] == real_name)
            .map(|e| &e["field"])
            .unwrap_or_else(|| panic!("sample {real_obj}.{real_name}"));
        let def = catalog.iter().find(|o| o.name == our_obj).expect("object");
        let ours = def.field(our_name).unwrap_or_else(|| panic!("{our_obj}.{our_name}")).describe();
        for (k, v) in real.as_object().expect("object") {
            if own_keys.contains(&k.as_str()) || TOLERATED.contains(&k.as_str()) {
                continue;
            }
            if &ours[k] != v {
                mismatches.push(format!("{our_obj}.{our_name} vs {real_obj}.{real_name}: {k} ours {} real {v}", ours[k]));
            }
        }
        assert_eq!(ours.as_object().expect("object").len(), 57);
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn catalog_covers_every_field_type_and_key_prefix() {
    let catalog = standard_objects();
    for ty in FieldType::ALL {
        if ty == FieldType::Long {
            continue;
        }
        assert!(catalog.iter().any(|o| o.fields.iter().any(|f| f.field_type == ty)), "no field of type {ty}");
    }
    let mut prefixes: Vec<&str> = catalog.iter().map(|o| o.key_prefix.as_str()).collect();
    for p in ["001", "003", "00Q", "006", "00k", "500", "005", "701", "00v", "00T", "a00", "a01"] {
        assert!(prefixes.contains(&p), "prefix {p}");
    }
    let n = prefixes.len();
    prefixes.sort();
    prefixes.dedup();
    assert_eq!(prefixes.len(), n, "key prefixes are unique");
    assert!(catalog.iter().any(|o| !o.flags.bulk_queryable));
    assert!(catalog.iter().any(|o| o.flags.queryable && !o.flags.replicateable));
    let task = catalog.iter().find(|o| o.name == "Task").expect("Task");
    assert!(task.field("WhoId").expect("WhoId").is_polymorphic());
    assert!(task.field("WhatId").expect("WhatId").is_polymorphic());
    // Every compound component names an existing compound, and every compound's components exist.
    for o in &catalog {
        for f in &o.fields {
            if let Some(c) = &f.compound_field_name {
                assert!(o.field(c).is_some_and(|c| c.field_type.is_compound()), "{}.{}", o.name, f.name);
            }
            for c in &f.components {
                assert!(o.has_field(c), "{}.{c}", o.name);
            }
            for target in &f.reference_to {
                let known = catalog.iter().any(|o| &o.name == target);
                let external = ["DandBCompany", "OperatingHours"].contains(&target.as_str());
                assert!(known || external, "{}.{} → {target}", o.name, f.name);
            }
        }
    }
}
