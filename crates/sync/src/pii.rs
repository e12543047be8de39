//! `tidemark objects --pii`: field policies suggested from an object's describe, for a person
//! to review and paste under `governance.policies`. Suggestions, not decisions: a describe
//! says a field holds an email address or a phone number, never whether the business may keep it.

use tidemark_core::FieldType;
use tidemark_core::governance::{FieldPolicy, MaskPattern};
use tidemark_salesforce::describe::SObjectDescribe;

/// A suggested policy and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suggestion {
    pub field: String,
    pub policy: FieldPolicy,
    pub reason: &'static str,
}

/// Name fields of objects that name a person (their `Name` is a `personname`).
const PERSON_NAME_PARTS: [&str; 4] = ["LastName", "MiddleName", "Suffix", "AssistantName"];

/// The policies the describe suggests, in describe order. The key and the timestamps syncs
/// follow are never suggested (they cannot take a policy).
pub fn suggest(describe: &SObjectDescribe) -> Vec<Suggestion> {
    let person = describe.fields.iter().any(|f| f.extra_type_info.as_deref() == Some("personname"));
    let mut out = Vec::new();
    for f in &describe.fields {
        let Some(field_type) = f.field_type else { continue };
        let lower = f.name.to_ascii_lowercase();
        let in_address = f.compound_field_name.as_deref().is_some_and(|c| c.to_ascii_lowercase().ends_with("address"));
        let (policy, reason) = match field_type {
            FieldType::Encryptedstring => (FieldPolicy::Exclude, "encrypted in Salesforce: keep it out of the lake"),
            _ if f.encrypted => (FieldPolicy::Exclude, "encrypted in Salesforce: keep it out of the lake"),
            FieldType::Email => (FieldPolicy::Hash, "an email address (hashed, it still joins and counts)"),
            FieldType::Phone => (FieldPolicy::Mask(MaskPattern::Last4), "a phone number"),
            FieldType::Address | FieldType::Location | FieldType::Base64 => continue,
            _ if f.extra_type_info.as_deref() == Some("personname") => (FieldPolicy::Hash, "a person's full name"),
            FieldType::String if person && f.name == "FirstName" => (FieldPolicy::Mask(MaskPattern::Initial), "a first name"),
            FieldType::String if person && PERSON_NAME_PARTS.contains(&f.name.as_str()) => {
                (FieldPolicy::Hash, "part of a person's name")
            }
            FieldType::String | FieldType::Textarea
                if in_address && (lower.ends_with("street") || lower.ends_with("postalcode")) =>
            {
                (FieldPolicy::Null, "a street address or postal code")
            }
            FieldType::Double if in_address => (FieldPolicy::Null, "an address's coordinates"),
            FieldType::Date if lower.contains("birth") => (FieldPolicy::Null, "a date of birth"),
            _ => continue,
        };
        out.push(Suggestion { field: f.name.clone(), policy, reason });
    }
    out
}

/// The suggestions as a `governance:` section, commented with the reasons.
pub fn as_yaml(objects: &[(String, Vec<Suggestion>)]) -> String {
    let mut out = String::from(
        "# Suggested from the objects' describes: review every line before use.\n# Hashing needs governance.hash_key (16+ characters, from the environment).\ngovernance:\n  hash_key: ${TIDEMARK_HASH_KEY}\n  policies:\n",
    );
    for (object, suggestions) in objects.iter().filter(|(_, s)| !s.is_empty()) {
        out.push_str(&format!("    {object}:\n"));
        let width = suggestions.iter().map(|s| s.field.len() + s.policy.name().len()).max().unwrap_or(0) + 2;
        for s in suggestions {
            let entry = format!("{}: {}", s.field, s.policy.name());
            out.push_str(&format!("      {entry:width$}  # {}\n", s.reason));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn describe(fields: serde_json::Value) -> SObjectDescribe {
        serde_json::from_value(serde_json::json!({"name": "Contact", "label": "Contact", "custom": false, "queryable": true, "replicateable": true, "retrieveable": true, "fields": fields})).unwrap()
    }

    #[test]
    fn personal_fields_get_suggestions_and_the_rest_none() {
        let d = describe(serde_json::json!([
            {"name": "Id", "label": "Id", "type": "id"},
            {"name": "Name", "label": "Full Name", "type": "string", "extraTypeInfo": "personname"},
            {"name": "FirstName", "label": "First", "type": "string"},
            {"name": "LastName", "label": "Last", "type": "string"},
            {"name": "Email", "label": "Email", "type": "email"},
            {"name": "MobilePhone", "label": "Mobile", "type": "phone"},
            {"name": "MailingStreet", "label": "Street", "type": "textarea", "compoundFieldName": "MailingAddress"},
            {"name": "MailingCity", "label": "City", "type": "string", "compoundFieldName": "MailingAddress"},
            {"name": "MailingLatitude", "label": "Lat", "type": "double", "compoundFieldName": "MailingAddress"},
            {"name": "Birthdate", "label": "Birthdate", "type": "date"},
            {"name": "Tax_Id__c", "label": "Tax ID", "type": "encryptedstring"},
            {"name": "Title", "label": "Title", "type": "string"},
            {"name": "SystemModstamp", "label": "Stamp", "type": "datetime"}
        ]));
        let got: Vec<(String, String)> = suggest(&d).into_iter().map(|s| (s.field, s.policy.name())).collect();
        let want = [
            ("Name", "hash"),
            ("FirstName", "mask:initial"),
            ("LastName", "hash"),
            ("Email", "hash"),
            ("MobilePhone", "mask:last4"),
            ("MailingStreet", "null"),
            ("MailingLatitude", "null"),
            ("Birthdate", "null"),
            ("Tax_Id__c", "exclude"),
        ];
        assert_eq!(got, want.map(|(f, p)| (f.to_owned(), p.to_owned())));
    }

    #[test]
    fn the_yaml_is_a_governance_section_that_compiles() {
        let d = describe(serde_json::json!([
            {"name": "Email", "label": "Email", "type": "email"},
            {"name": "Phone", "label": "Phone", "type": "phone"}
        ]));
        let yaml = as_yaml(&[("Contact".to_owned(), suggest(&d)), ("Account".to_owned(), Vec::new())]);
        assert!(!yaml.contains("Account:"), "{yaml}");
        #[derive(serde::Deserialize)]
        struct File {
            governance: tidemark_core::governance::GovernanceConfig,
        }
        let file: File =
            tidemark_core::config::load_str(&yaml, &|v| (v == "TIDEMARK_HASH_KEY").then(|| "sixteen characters+".to_owned()))
                .unwrap();
        let g = tidemark_core::governance::Governance::compile(&file.governance).unwrap();
        assert!(!g.is_empty());
    }
}
