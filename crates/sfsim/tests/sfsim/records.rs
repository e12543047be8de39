//! sObject Rows over real HTTP: retrieve, create, update, upsert, delete, and every write
//! validation error, compared with the conformance corpus.

use crate::common::shape::kind;
use crate::common::{TestOrg, corpus, corpus_json};
use serde_json::{Value as J, json};
use tidemark_core::FieldType;
use tidemark_sfsim::faults::FaultConfig;
use tidemark_sfsim::schema::{FieldDef, ObjectDef, RuleCondition, ValidationRule};

/// Vendor__c (unique external id, email, restricted picklists, numbers, a validation rule),
/// Line__c (master-detail to Vendor__c, lookup), Audit__c (restricted-delete lookup), Site__c
/// (a location compound).
fn add_test_objects(org: &TestOrg) {
    let mut vendor = ObjectDef::new("Vendor__c", "Vendor", "Vendors", "a01");
    vendor.add_system_fields();
    vendor.add_field(FieldDef::new("Name", FieldType::String).label("Vendor Name").required().name_field().length(80));
    vendor.add_field(FieldDef::new("Code__c", FieldType::String).length(20).external_id().unique());
    vendor.add_field(FieldDef::new("Ref__c", FieldType::String).length(20).external_id());
    vendor.add_field(FieldDef::new("Email__c", FieldType::Email));
    vendor.add_field(FieldDef::new("Tier__c", FieldType::Picklist).picklist(&["Gold", "Silver"], true));
    vendor.add_field(FieldDef::new("Tags__c", FieldType::Multipicklist).picklist(&["a", "b", "c"], true));
    vendor.add_field(FieldDef::new("Score__c", FieldType::Double).precision_scale(5, 2));
    vendor.add_field(FieldDef::new("Seats__c", FieldType::Int));
    vendor.add_field(FieldDef::new("Active__c", FieldType::Boolean));
    vendor.validation_rules.push(ValidationRule {
        name: "Score_Not_Negative".into(),
        field: "Score__c".into(),
        when: RuleCondition::LessThan(0.0),
        message: "Score must not be negative".into(),
        error_field: Some("Score__c".into()),
    });
    let mut line = ObjectDef::new("Line__c", "Line", "Lines", "a02");
    line.add_system_fields();
    line.add_field(FieldDef::new("Name", FieldType::String).name_field());
    line.add_field(FieldDef::new("Vendor__c", FieldType::Reference).master_detail("Vendor__c", 0));
    line.add_field(FieldDef::new("Backup__c", FieldType::Reference).lookup(&["Vendor__c"]));
    let mut audit = ObjectDef::new("Audit__c", "Audit", "Audits", "a03");
    audit.add_system_fields();
    audit.add_field(FieldDef::new("Name", FieldType::String).name_field());
    let mut guarded = FieldDef::new("Vendor__c", FieldType::Reference).lookup(&["Vendor__c"]);
    guarded.restricted_delete = true;
    audit.add_field(guarded);
    let mut site = ObjectDef::new("Site__c", "Site", "Sites", "a04");
    site.add_system_fields();
    site.add_field(FieldDef::new("Name", FieldType::String).name_field());
    site.add_field(FieldDef::new("Geo__c", FieldType::Location).compound(&["Geo__Latitude__s", "Geo__Longitude__s"]));
    site.add_field(FieldDef::new("Geo__Latitude__s", FieldType::Double).precision_scale(11, 8).component_of("Geo__c"));
    site.add_field(FieldDef::new("Geo__Longitude__s", FieldType::Double).precision_scale(11, 8).component_of("Geo__c"));
    let mut o = org.sim.state.org.write();
    for def in [vendor, line, audit, site] {
        o.add_object(def);
    }
}

async fn setup() -> TestOrg {
    let org = TestOrg::start().await;
    add_test_objects(&org);
    org
}

/// The JSON body of a corpus `.http` transcript's response (after the status line's headers).
fn http_response_json(name: &str) -> J {
    let text = corpus(name);
    let start = text.rfind("\n{").expect("response body");
    serde_json::from_str(&text[start..]).expect("JSON response body")
}

fn keys(v: &J) -> Vec<String> {
    v.as_object().expect("object").keys().cloned().collect()
}

async fn create(org: &TestOrg, object: &str, body: J) -> String {
    let resp = org.post(&format!("/sobjects/{object}")).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 201, "create {object}");
    let j: J = resp.json().await.unwrap();
    j["id"].as_str().unwrap().to_owned()
}

async fn write_errors(resp: reqwest::Response, status: u16) -> J {
    assert_eq!(resp.status().as_u16(), status);
    resp.json().await.unwrap()
}

#[tokio::test]
async fn create_returns_201_like_the_recorded_response() {
    let org = setup().await;
    let resp = org.post("/sobjects/Account/").json(&json!({"Name": "xyzzy"})).send().await.unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.headers()["content-type"], "application/json;charset=UTF-8");
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let body: J = resp.json().await.unwrap();
    crate::common::shape::assert_same_shape_in_order("records", &http_response_json("record-create-response.http"), &body);
    let id = body["id"].as_str().unwrap();
    assert!(id.starts_with("001") && id.len() == 18);
    assert_eq!(location, format!("/services/data/v66.0/sobjects/Account/{id}"));
    assert_eq!(body["success"], true);
    assert_eq!(body["errors"], json!([]));
}

#[tokio::test]
async fn get_returns_every_field_and_honours_the_fields_parameter() {
    let org = setup().await;
    let id = create(&org, "Vendor__c", json!({"Name": "Acme", "Code__c": "A-1", "Score__c": 12.5, "Tags__c": "a;c"})).await;
    let rec = org.get_json(&format!("/sobjects/Vendor__c/{id}"), 200).await;
    let real = corpus_json("record-get-all-field-types.json");
    assert_eq!(rec["attributes"], json!({"type": "Vendor__c", "url": format!("/services/data/v66.0/sobjects/Vendor__c/{id}")}));
    assert_eq!(keys(&rec["attributes"]), keys(&real["attributes"]));
    for k in ["Id", "IsDeleted", "Name", "CreatedDate", "CreatedById", "LastModifiedDate", "LastModifiedById", "SystemModstamp"] {
        assert_eq!(kind(&rec[k]), kind(&real[k]), "{k}");
    }
    assert_eq!(rec["Tags__c"], "a;c");
    assert_eq!(rec["Score__c"], 12.5);
    assert_eq!(rec["Email__c"], J::Null);
    let sub = org.get_json(&format!("/sobjects/Vendor__c/{id}?fields=name,Code__c"), 200).await;
    assert_eq!(keys(&sub), vec!["attributes", "Name", "Code__c"]);
    assert_eq!(sub["Code__c"], "A-1");
    let bad = org.get(&format!("/sobjects/Vendor__c/{id}?fields=Nope__c")).send().await.unwrap();
    let bad = write_errors(bad, 400).await;
    assert_eq!(bad[0]["errorCode"], "INVALID_FIELD");

    // A location compound comes back both as an object and as its components.
    let site =
        create(&org, "Site__c", json!({"Name": "HQ", "Geo__Latitude__s": 12.1212211, "Geo__Longitude__s": 13.12312321})).await;
    let rec = org.get_json(&format!("/sobjects/Site__c/{site}"), 200).await;
    assert_eq!(rec["Geo__c"], real["GeoLocation__c"]);
    assert_eq!(rec["Geo__Latitude__s"], real["GeoLocation__Latitude__s"]);
    let compound_write = org.patch(&format!("/sobjects/Site__c/{site}")).json(&json!({"Geo__c": null})).send().await.unwrap();
    assert_eq!(write_errors(compound_write, 400).await[0]["errorCode"], "INVALID_FIELD_FOR_INSERT_UPDATE");
}

#[tokio::test]
async fn unknown_and_deleted_records_answer_404_like_the_corpus() {
    let org = setup().await;
    let unknown = tidemark_core::SfId::from_parts("001", "Dn", 999_999);
    let missing = org.get(&format!("/sobjects/Account/{unknown}")).send().await.unwrap();
    assert_eq!(write_errors(missing, 404).await, corpus_json("error-not-found.json"));
    let no_object = org.get("/sobjects/Nope__c/001Dn00000ZZZZZAAA").send().await.unwrap();
    assert_eq!(no_object.status(), 404);

    let id = create(&org, "Account", json!({"Name": "Gone"})).await;
    let resp = org.delete(&format!("/sobjects/Account/{id}")).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    assert!(resp.bytes().await.unwrap().is_empty());
    let real = corpus_json("error-entity-is-deleted.json");
    let get = org.get(&format!("/sobjects/Account/{id}")).send().await.unwrap();
    assert_eq!(write_errors(get, 404).await, real);
    let again = org.delete(&format!("/sobjects/Account/{id}")).send().await.unwrap();
    assert_eq!(write_errors(again, 404).await, real);
}

#[tokio::test]
async fn update_answers_204_and_changes_the_record() {
    let org = setup().await;
    let id = create(&org, "Vendor__c", json!({"Name": "Acme", "Score__c": 5})).await;
    let before = org.get_json(&format!("/sobjects/Vendor__c/{id}"), 200).await;
    org.sim.state.org.write().advance_clock(chrono::Duration::seconds(5));
    let resp = org
        .patch(&format!("/sobjects/Vendor__c/{id}"))
        .json(&json!({"Name": "Acme 2", "attributes": {"type": "Vendor__c"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert!(resp.bytes().await.unwrap().is_empty());
    let after = org.get_json(&format!("/sobjects/Vendor__c/{id}"), 200).await;
    assert_eq!(after["Name"], "Acme 2");
    assert_eq!(after["Score__c"], 5.0);
    assert_ne!(after["SystemModstamp"], before["SystemModstamp"]);
    assert_eq!(after["CreatedDate"], before["CreatedDate"]);
}

#[tokio::test]
async fn upsert_creates_updates_and_reports_ambiguity() {
    let org = setup().await;
    let resp = org.patch("/sobjects/Vendor__c/Code__c/X-1").json(&json!({"Name": "One"})).send().await.unwrap();
    assert_eq!(resp.status(), 201);
    let created: J = resp.json().await.unwrap();
    crate::common::shape::assert_same_shape_in_order("records", &corpus_json("record-upsert-created.json"), &created);
    assert_eq!(created["created"], true);
    let id = created["id"].as_str().unwrap().to_owned();

    let resp = org.patch("/sobjects/Vendor__c/code__c/x-1").json(&json!({"Name": "One b"})).send().await.unwrap();
    assert_eq!(resp.status(), 200, "external ids match case-insensitively");
    let updated: J = resp.json().await.unwrap();
    crate::common::shape::assert_same_shape_in_order(
        "records",
        &http_response_json("record-upsert-by-external-id.http"),
        &updated,
    );
    assert_eq!(updated["id"], id.as_str());
    assert_eq!(updated["created"], false);

    let old = org
        .http
        .patch(org.url("/services/data/v45.0/sobjects/Vendor__c/Code__c/X-1"))
        .bearer_auth(&org.token)
        .json(&json!({"Name": "One c"}))
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), 204, "API 45.0 and earlier answer 204 for an update");

    let by_ext = org.get_json("/sobjects/Vendor__c/Code__c/X-1", 200).await;
    assert_eq!(by_ext["Name"], "One c");

    let missing = org.patch("/sobjects/Vendor__c/Namez/1").json(&json!({"Name": "x"})).send().await.unwrap();
    let real = corpus_json("error-external-id-field-not-found.json");
    assert_eq!(write_errors(missing, 404).await, real);

    // Ref__c is an external id without a uniqueness constraint: two records can share a value.
    let a = create(&org, "Vendor__c", json!({"Name": "A", "Ref__c": "dup"})).await;
    let b = create(&org, "Vendor__c", json!({"Name": "B", "Ref__c": "dup"})).await;
    let resp = org.patch("/sobjects/Vendor__c/Ref__c/dup").json(&json!({"Name": "C"})).send().await.unwrap();
    assert_eq!(resp.status(), 300);
    let urls: J = resp.json().await.unwrap();
    let real = corpus_json("error-upsert-multiple-matches-300.json");
    assert_eq!(urls.as_array().unwrap().len(), 2);
    assert_eq!(kind(&urls[0]), kind(&real[0]));
    assert_eq!(
        urls,
        json!([format!("/services/data/v66.0/sobjects/Vendor__c/{a}"), format!("/services/data/v66.0/sobjects/Vendor__c/{b}")])
    );
    assert_eq!(org.get("/sobjects/Vendor__c/Ref__c/dup").send().await.unwrap().status(), 300);

    let resp = org.post("/sobjects/Vendor__c/Id").json(&json!({"Name": "By Id"})).send().await.unwrap();
    assert_eq!(resp.status(), 201, "POST …/Id inserts");
    let body: J = resp.json().await.unwrap();
    assert_eq!(body["created"], true);

    let del = org.delete("/sobjects/Vendor__c/Code__c/X-1").send().await.unwrap();
    assert_eq!(del.status(), 204);
    assert_eq!(org.get(&format!("/sobjects/Vendor__c/{id}")).send().await.unwrap().status(), 404);
}

#[tokio::test]
async fn basic_info_lists_the_object_and_recent_items() {
    let org = setup().await;
    let id = create(&org, "Account", json!({"Name": "Recent"})).await;
    let info = org.get_json("/sobjects/Account", 200).await;
    assert_eq!(keys(&info), vec!["objectDescribe", "recentItems"]);
    assert_eq!(info["objectDescribe"]["keyPrefix"], "001");
    assert_eq!(info["recentItems"][0]["Id"], id.as_str());
    assert_eq!(info["recentItems"][0]["Name"], "Recent");
}

#[tokio::test]
async fn required_field_missing_matches_the_corpus_exactly() {
    let org = setup().await;
    let resp = org.post("/sobjects/Account").json(&json!({"AccountNumber": null})).send().await.unwrap();
    let _ = write_errors(resp, 400).await;
    let resp = org.post("/sobjects/Account").json(&json!({})).send().await.unwrap();
    assert_eq!(write_errors(resp, 400).await, corpus_json("error-required-field-missing.json"));
}

#[tokio::test]
async fn unknown_field_and_malformed_bodies_are_refused() {
    let org = setup().await;
    let resp = org.post("/sobjects/Account").json(&json!({"Name": "x", "foo": 1})).send().await.unwrap();
    let body = write_errors(resp, 400).await;
    let real = corpus_json("error-invalid-field-write.json");
    crate::common::shape::assert_same_shape_in_order("records", &real[0], &body[0]);
    assert_eq!(body[0]["message"], "No such column 'foo' on sobject of type Account");

    let resp = org.post("/sobjects/Account").header("content-type", "application/json").body("{\"Name\": ").send().await.unwrap();
    let body = write_errors(resp, 400).await;
    assert_eq!(body[0]["errorCode"], "JSON_PARSER_ERROR");
    let resp = org.post("/sobjects/Account").header("content-type", "text/csv").body("Name\nx\n").send().await.unwrap();
    assert_eq!(write_errors(resp, 415).await[0]["errorCode"], "UNSUPPORTED_MEDIA_TYPE");
}

/// Posts `body` to Vendor__c and returns the error codes.
async fn vendor_errors(org: &TestOrg, body: J) -> Vec<(String, String, J)> {
    let resp = org.post("/sobjects/Vendor__c").json(&body).send().await.unwrap();
    let errors = write_errors(resp, 400).await;
    errors
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["errorCode"].as_str().unwrap().to_owned(), e["message"].as_str().unwrap().to_owned(), e["fields"].clone()))
        .collect()
}

#[tokio::test]
async fn every_validation_error_has_salesforce_codes_and_wording() {
    let org = setup().await;
    let vendor = create(&org, "Vendor__c", json!({"Name": "V", "Code__c": "Dup-1"})).await;
    let short = &vendor[..15];

    let cases: Vec<(J, &str, String, J)> = vec![
        (json!({"Name": "x".repeat(81)}), "STRING_TOO_LONG", format!("Vendor Name: data value too large: {} (max length=80)", "x".repeat(40)), json!(["Name"])),
        (json!({"Name": "x", "Tier__c": "Bronze"}), "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "Tier: bad value for restricted picklist field: Bronze".into(), json!(["Tier__c"])),
        (json!({"Name": "x", "Tags__c": "a;z"}), "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "Tags: bad value for restricted picklist field: z".into(), json!(["Tags__c"])),
        (json!({"Name": "x", "Code__c": "dup-1"}), "DUPLICATE_VALUE", format!("duplicate value found: Code__c duplicates value on record with id: {short}"), json!([])),
        (json!({"Name": "x", "Email__c": "not-an-email"}), "INVALID_EMAIL_ADDRESS", "Email: invalid email address: not-an-email".into(), json!(["Email__c"])),
        (json!({"Name": "x", "Score__c": -1}), "FIELD_CUSTOM_VALIDATION_EXCEPTION", "Score must not be negative".into(), json!(["Score__c"])),
        (json!({"Name": "x", "Score__c": 1000}), "NUMBER_OUTSIDE_VALID_RANGE", "Score: value outside of valid range on numeric field: 1000".into(), json!(["Score__c"])),
        (json!({"Name": "x", "Seats__c": "many"}), "INVALID_TYPE_ON_FIELD_IN_RECORD", "Seats: value not of required type: many".into(), json!(["Seats__c"])),
        (json!({"Name": "x", "CreatedDate": "2020-01-01T00:00:00Z"}), "INVALID_FIELD_FOR_INSERT_UPDATE",
            "Unable to create/update fields: CreatedDate. Please check the security settings of this field and verify that it is read/write for your Profile or Permission set.".into(), json!(["CreatedDate"])),
    ];
    for (body, code, message, fields) in cases {
        let errors = vendor_errors(&org, body.clone()).await;
        assert_eq!(errors, vec![(code.to_owned(), message, fields)], "{body}");
    }
    // Several problems at once are all reported.
    let errors = vendor_errors(&org, json!({"Tier__c": "Bronze", "Email__c": "x@"})).await;
    let codes: Vec<&str> = errors.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(codes, vec!["REQUIRED_FIELD_MISSING", "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "INVALID_EMAIL_ADDRESS"]);

    // References: malformed, unknown, of the wrong object, deleted.
    let line = |v: &str| json!({"Name": "L", "Vendor__c": v});
    let post_line = |body: J| org.post("/sobjects/Line__c").json(&body).send();
    let e = write_errors(post_line(line("nope")).await.unwrap(), 400).await;
    assert_eq!(e[0]["errorCode"], "MALFORMED_ID");
    let unknown = tidemark_core::SfId::from_parts("a01", "Dn", 999_999);
    let e = write_errors(post_line(line(unknown.as_str())).await.unwrap(), 400).await;
    assert_eq!(e, json!([{"message": "invalid cross reference id", "errorCode": "INVALID_CROSS_REFERENCE_KEY", "fields": []}]));
    let account = create(&org, "Account", json!({"Name": "A"})).await;
    let e = write_errors(post_line(line(&account)).await.unwrap(), 400).await;
    assert_eq!(e[0]["errorCode"], "INVALID_CROSS_REFERENCE_KEY");
    assert_eq!(e[0]["message"], format!("Vendor: id value of incorrect type: {account}"));
    let gone = create(&org, "Vendor__c", json!({"Name": "Gone"})).await;
    assert_eq!(org.delete(&format!("/sobjects/Vendor__c/{gone}")).send().await.unwrap().status(), 204);
    let e = write_errors(post_line(line(&gone)).await.unwrap(), 400).await;
    assert_eq!(e, corpus_json("error-entity-is-deleted.json"));
    create(&org, "Line__c", line(&vendor)).await;
}

#[tokio::test]
async fn validation_rules_see_the_merged_record_on_update() {
    let org = setup().await;
    let id = create(&org, "Vendor__c", json!({"Name": "V", "Score__c": 3, "Code__c": "U-1"})).await;
    let other = create(&org, "Vendor__c", json!({"Name": "W", "Code__c": "U-2"})).await;
    // Updating another field keeps the stored score, which passes the rule.
    let ok = org.patch(&format!("/sobjects/Vendor__c/{id}")).json(&json!({"Name": "V2"})).send().await.unwrap();
    assert_eq!(ok.status(), 204);
    let bad = org.patch(&format!("/sobjects/Vendor__c/{id}")).json(&json!({"Score__c": -2})).send().await.unwrap();
    assert_eq!(write_errors(bad, 400).await[0]["errorCode"], "FIELD_CUSTOM_VALIDATION_EXCEPTION");
    // Re-saving its own unique value is fine; taking another record's is not.
    let same = org.patch(&format!("/sobjects/Vendor__c/{id}")).json(&json!({"Code__c": "u-1"})).send().await.unwrap();
    assert_eq!(same.status(), 204);
    let dup = org.patch(&format!("/sobjects/Vendor__c/{id}")).json(&json!({"Code__c": "U-2"})).send().await.unwrap();
    let e = write_errors(dup, 400).await;
    assert_eq!(e[0]["message"], format!("duplicate value found: Code__c duplicates value on record with id: {}", &other[..15]));
    let cleared = org.patch(&format!("/sobjects/Vendor__c/{id}")).json(&json!({"Name": null})).send().await.unwrap();
    assert_eq!(write_errors(cleared, 400).await[0]["errorCode"], "REQUIRED_FIELD_MISSING");
}

#[tokio::test]
async fn master_detail_children_follow_their_parent_through_the_recycle_bin() {
    let org = setup().await;
    let vendor = create(&org, "Vendor__c", json!({"Name": "Parent"})).await;
    let l1 = create(&org, "Line__c", json!({"Name": "L1", "Vendor__c": vendor})).await;
    let l2 = create(&org, "Line__c", json!({"Name": "L2", "Vendor__c": vendor, "Backup__c": vendor})).await;
    let other = create(&org, "Vendor__c", json!({"Name": "Other"})).await;
    let l3 = create(&org, "Line__c", json!({"Name": "L3", "Vendor__c": other})).await;

    assert_eq!(org.delete(&format!("/sobjects/Vendor__c/{vendor}")).send().await.unwrap().status(), 204);
    for l in [&l1, &l2] {
        assert_eq!(org.get(&format!("/sobjects/Line__c/{l}")).send().await.unwrap().status(), 404);
    }
    assert_eq!(org.get(&format!("/sobjects/Line__c/{l3}")).send().await.unwrap().status(), 200);

    org.sim.state.org.write().api_undelete(&vendor).unwrap();
    for l in [&l1, &l2] {
        let rec = org.get_json(&format!("/sobjects/Line__c/{l}"), 200).await;
        assert_eq!(rec["IsDeleted"], false);
    }

    // A restricted-delete lookup blocks deleting its target.
    create(&org, "Audit__c", json!({"Name": "Audit 7", "Vendor__c": other})).await;
    let resp = org.delete(&format!("/sobjects/Vendor__c/{other}")).send().await.unwrap();
    let e = write_errors(resp, 400).await;
    assert_eq!(e[0]["errorCode"], "DELETE_FAILED");
    assert_eq!(
        e[0]["message"],
        "Your attempt to delete Other could not be completed because it is associated with the following audits.: Audit 7"
    );
    assert_eq!(org.get(&format!("/sobjects/Line__c/{l3}")).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn lock_faults_fail_the_write_and_change_nothing() {
    let org = setup().await;
    let id = create(&org, "Account", json!({"Name": "Locked"})).await;
    let log_len = org.sim.state.org.read().change_log().len();
    org.sim.state.faults.set(FaultConfig { lock_row_rate: 1.0, ..Default::default() }, 7);
    let resp = org.patch(&format!("/sobjects/Account/{id}")).json(&json!({"Name": "Changed"})).send().await.unwrap();
    let e = write_errors(resp, 400).await;
    assert_eq!(
        e,
        json!([{"message": format!("unable to obtain exclusive access to this record or 1 records: {id}"), "errorCode": "UNABLE_TO_LOCK_ROW", "fields": []}])
    );
    let resp = org.delete(&format!("/sobjects/Account/{id}")).send().await.unwrap();
    assert_eq!(write_errors(resp, 400).await[0]["errorCode"], "UNABLE_TO_LOCK_ROW");
    assert_eq!(org.sim.state.org.read().change_log().len(), log_len);
    org.sim.state.faults.set(FaultConfig::default(), 7);
    assert_eq!(org.get_json(&format!("/sobjects/Account/{id}"), 200).await["Name"], "Locked");
}

#[tokio::test]
async fn the_platform_sets_owner_and_person_names() {
    let org = TestOrg::start_empty().await;
    let id = create(&org, "Contact", json!({"FirstName": "Ada", "LastName": "Lovelace"})).await;
    let got = org.get_json(&format!("/sobjects/Contact/{id}?fields=Name,OwnerId"), 200).await;
    assert_eq!(got["Name"], "Ada Lovelace");
    let user = org.sim.state.org.read().integration_user;
    assert_eq!(got["OwnerId"], user.as_str(), "OwnerId defaults to the running user");

    let resp = org.patch(&format!("/sobjects/Contact/{id}")).json(&json!({"FirstName": "Augusta Ada"})).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    let got = org.get_json(&format!("/sobjects/Contact/{id}?fields=Name"), 200).await;
    assert_eq!(got["Name"], "Augusta Ada Lovelace");

    // Name itself stays read-only.
    let resp = org.patch(&format!("/sobjects/Contact/{id}")).json(&json!({"Name": "Someone Else"})).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.json::<J>().await.unwrap()[0]["errorCode"], "INVALID_FIELD_FOR_INSERT_UPDATE");
}
