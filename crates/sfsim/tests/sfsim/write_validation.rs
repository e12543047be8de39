//! Per-row outcomes of the write paths reverse ETL uses (sObject Collections with
//! `allOrNone:false`, Bulk API 2.0 ingest, single-record upsert) in the corpus's shapes, and
//! validation rules configured through `/__admin/validation-rules`.

use crate::common::ingest::{result_rows, run_job};
use crate::common::{TestOrg, corpus_json};
use reqwest::Method;
use serde_json::{Value as J, json};
use tidemark_core::FieldType;
use tidemark_sfsim::schema::{FieldDef, ObjectDef};

/// `Vendor__c`: Name required, `Code__c` unique external id, `Ref__c` non-unique external id,
/// `Tier__c` restricted picklist, `Score__c`; `Line__c`: lookup `Vendor__c`.
async fn setup() -> TestOrg {
    let org = TestOrg::start_empty().await;
    let vendor = tidemark_sfsim::catalog::vendor();
    let mut line = ObjectDef::new("Line__c", "Line", "Lines", "a02");
    line.add_system_fields();
    line.add_field(FieldDef::new("Name", FieldType::String).name_field());
    line.add_field(FieldDef::new("Vendor__c", FieldType::Reference).label("Vendor").lookup(&["Vendor__c"]));
    {
        let mut o = org.sim.state.org.write();
        o.add_object(vendor);
        o.add_object(line);
    }
    org
}

async fn collection(org: &TestOrg, method: Method, path: &str, records: J) -> J {
    let body = json!({"allOrNone": false, "records": records});
    let resp = org.http.request(method, org.data_url(path)).bearer_auth(&org.token).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 200, "collections answer 200");
    resp.json().await.unwrap()
}

fn vendor(fields: J) -> J {
    let mut v = json!({"attributes": {"type": "Vendor__c"}});
    v.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
    v
}

async fn create_vendor(org: &TestOrg, fields: J) -> String {
    let r = collection(org, Method::POST, "/composite/sobjects", json!([vendor(fields)])).await;
    assert_eq!(r[0]["success"], true, "{r}");
    r[0]["id"].as_str().unwrap().to_owned()
}

fn error(code: &str, message: &str, fields: &[&str]) -> J {
    json!({"statusCode": code, "message": message, "fields": fields})
}

#[tokio::test]
async fn validation_rules_are_configured_over_the_admin_api_and_fail_every_write_path() {
    let org = setup().await;
    // "Name must not be Test", shown at the Name field.
    let rule = json!({"object": "vendor__c", "name": "No_Test_Vendors", "field": "name", "when": {"equals": "Test"},
        "message": "Test vendors are not allowed", "error_field": "Name"});
    let stored = org.admin_call(Method::POST, "/validation-rules", Some(rule), 200).await;
    assert_eq!(stored["object"], "Vendor__c");
    assert_eq!(stored["field"], "Name");
    // "Code must match V-%", shown at the top of the page (no field).
    let rule = json!({"object": "Vendor__c", "name": "Code_Format", "field": "Code__c", "when": {"not_like": "V-%"},
        "message": "Codes look like V-123"});
    org.admin_call(Method::POST, "/validation-rules", Some(rule), 200).await;
    let listed = org.admin_call(Method::GET, "/validation-rules?object=Vendor__c", None, 200).await;
    assert_eq!(listed["rules"].as_array().unwrap().len(), 2, "{listed}");

    // sObject Rows.
    let resp = org.post("/sobjects/Vendor__c").json(&json!({"Name": "Test"})).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.json::<J>().await.unwrap(),
        json!([{"message": "Test vendors are not allowed", "errorCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION", "fields": ["Name"]}])
    );

    // Collections, allOrNone false: both rules report, in the corpus's partial-failure shape.
    let records = json!([vendor(json!({"Name": "Test", "Code__c": "X-1"})), vendor(json!({"Name": "Fine", "Code__c": "V-1"}))]);
    let r = collection(&org, Method::POST, "/composite/sobjects", records).await;
    crate::common::shape::assert_same_shape_in_order(
        "collections",
        &corpus_json("collections-create-partial-failure-allornone-false.json"),
        &r,
    );
    assert_eq!(
        r[0]["errors"],
        json!([
            error("FIELD_CUSTOM_VALIDATION_EXCEPTION", "Test vendors are not allowed", &["Name"]),
            error("FIELD_CUSTOM_VALIDATION_EXCEPTION", "Codes look like V-123", &[]),
        ])
    );
    assert_eq!(r[1]["success"], true);
    // Updates see the merged record; a null code passes a "must match" rule.
    let id = r[1]["id"].as_str().unwrap();
    let r = collection(
        &org,
        Method::PATCH,
        "/composite/sobjects",
        json!([vendor(json!({"Id": id, "Code__c": "bad"})), vendor(json!({"Id": id, "Code__c": null}))]),
    )
    .await;
    assert_eq!(r[0]["errors"][0]["statusCode"], "FIELD_CUSTOM_VALIDATION_EXCEPTION", "{r}");
    assert_eq!(r[1]["success"], true, "{r}");

    // Bulk API 2.0.
    let (job, info) =
        run_job(&org, json!({"object": "Vendor__c", "operation": "insert"}), "Name,Code__c\nTest,V-2\nOk,V-3\n").await;
    assert_eq!((info["numberRecordsProcessed"].clone(), info["numberRecordsFailed"].clone()), (json!(2), json!(1)));
    assert_eq!(
        result_rows(&org, &job, "failedResults").await,
        vec!["\"\",\"FIELD_CUSTOM_VALIDATION_EXCEPTION:Test vendors are not allowed:Name --\",\"Test\",\"V-2\"".to_owned()]
    );

    // Removing the rule lets the write through.
    let removed = org.admin_call(Method::DELETE, "/validation-rules?object=Vendor__c&name=No_Test_Vendors", None, 200).await;
    assert_eq!(removed["removed"], 1);
    let resp = org.post("/sobjects/Vendor__c").json(&json!({"Name": "Test"})).send().await.unwrap();
    assert_eq!(resp.status(), 201);

    // Bad rules name the request field at fault.
    for (body, field) in [
        (json!({"object": "Nope__c", "name": "R", "field": "Name", "when": {"blank": true}, "message": "m"}), "object"),
        (json!({"object": "Vendor__c", "name": "R", "field": "Nope__c", "when": {"blank": true}, "message": "m"}), "field"),
        (json!({"object": "Vendor__c", "name": "R", "field": "Name", "when": {"less_than": 1}, "message": "m"}), "when"),
        (json!({"object": "Vendor__c", "name": "R", "field": "Name", "when": {"sounds_like": "x"}, "message": "m"}), "when"),
        (json!({"object": "Vendor__c", "name": "R", "field": "Name", "when": {"blank": true}, "message": ""}), "message"),
    ] {
        let e = org.admin_call(Method::POST, "/validation-rules", Some(body.clone()), 400).await;
        assert_eq!(e["field"], field, "{body}: {e}");
    }
}

#[tokio::test]
async fn rules_run_before_unique_indexes_and_read_only_fields_are_reported_together() {
    let org = setup().await;
    let first = create_vendor(&org, json!({"Name": "A", "Code__c": "V-1"})).await;
    org.admin_call(
        Method::POST,
        "/validation-rules",
        Some(json!({"object": "Vendor__c", "name": "Score", "field": "Score__c", "when": {"less_than": 0}, "message": "Score must not be negative", "error_field": "Score__c"})),
        200,
    )
    .await;
    let records = json!([
        // Breaks the rule and duplicates the code: the rule stops the save first.
        vendor(json!({"Name": "B", "Code__c": "v-1", "Score__c": -1})),
        vendor(json!({"Name": "C", "Code__c": "v-1"})),
        vendor(json!({"Name": "D", "CreatedDate": "2020-01-01T00:00:00Z", "SystemModstamp": "2020-01-01T00:00:00Z"})),
        vendor(json!({"Tier__c": "Bronze"})),
    ]);
    let r = collection(&org, Method::POST, "/composite/sobjects", records).await;
    assert_eq!(r[0]["errors"], json!([error("FIELD_CUSTOM_VALIDATION_EXCEPTION", "Score must not be negative", &["Score__c"])]));
    let dup = format!("duplicate value found: Code__c duplicates value on record with id: {}", &first[..15]);
    assert_eq!(r[1]["errors"], json!([error("DUPLICATE_VALUE", &dup, &[])]));
    assert_eq!(
        r[2]["errors"],
        json!([error(
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            "Unable to create/update fields: CreatedDate, SystemModstamp. Please check the security settings of this field and verify that it is read/write for your Profile or Permission set.",
            &["CreatedDate", "SystemModstamp"],
        )])
    );
    assert_eq!(
        r[3]["errors"],
        json!([
            error("REQUIRED_FIELD_MISSING", "Required fields are missing: [Name]", &["Name"]),
            error(
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                "Tier: bad value for restricted picklist field: Bronze",
                &["Tier__c"]
            ),
        ])
    );

    // The same outcomes as Bulk rows: `STATUS_CODE:message:fields --`, the first error of each.
    let csv = "Name,Code__c,Tier__c\n,V-9,\nE,V-1,\nF,V-8,Bronze\n";
    let (job, _) = run_job(&org, json!({"object": "Vendor__c", "operation": "insert"}), csv).await;
    assert_eq!(
        result_rows(&org, &job, "failedResults").await,
        vec![
            "\"\",\"REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --\",\"\",\"V-9\",\"\"".to_owned(),
            format!("\"\",\"DUPLICATE_VALUE:{dup}:--\",\"E\",\"V-1\",\"\""),
            "\"\",\"INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST:Tier: bad value for restricted picklist field: Bronze:Tier__c --\",\"F\",\"V-8\",\"Bronze\"".to_owned(),
        ]
    );
}

#[tokio::test]
async fn lookups_and_deleted_records_fail_rows_with_salesforce_codes() {
    let org = setup().await;
    let live = create_vendor(&org, json!({"Name": "Live"})).await;
    let gone = create_vendor(&org, json!({"Name": "Gone"})).await;
    let r = collection(&org, Method::DELETE, &format!("/composite/sobjects?ids={gone}"), J::Null).await;
    assert_eq!(r[0]["success"], true);
    let unknown = tidemark_core::SfId::from_parts("a01", "Dn", 999_999).to_string();
    let line = |v: &str| json!({"attributes": {"type": "Line__c"}, "Name": "L", "Vendor__c": v});
    let r = collection(&org, Method::POST, "/composite/sobjects", json!([line("bad"), line(&unknown), line(&gone), line(&live)]))
        .await;
    assert_eq!(r[0]["errors"], json!([error("MALFORMED_ID", "Vendor: id value of incorrect type: bad", &["Vendor__c"])]));
    assert_eq!(r[1]["errors"], json!([error("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", &[])]));
    assert_eq!(r[2]["errors"], json!([error("ENTITY_IS_DELETED", "entity is deleted", &[])]));
    assert_eq!(r[3]["success"], true);
    // Writing the deleted record itself.
    let r = collection(&org, Method::PATCH, "/composite/sobjects", json!([vendor(json!({"Id": gone, "Name": "Back"}))])).await;
    assert_eq!(r[0]["errors"], json!([error("ENTITY_IS_DELETED", "entity is deleted", &[])]));
    let r = collection(&org, Method::DELETE, &format!("/composite/sobjects?ids={gone},{unknown}"), J::Null).await;
    // A failed delete names a record that exists, as recorded results do; an unknown id has none.
    assert_eq!(r[0], json!({"id": gone, "success": false, "errors": [error("ENTITY_IS_DELETED", "entity is deleted", &[])]}));
    assert_eq!(
        r[1],
        json!({"success": false, "errors": [error("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", &[])]})
    );
    let (job, _) = run_job(&org, json!({"object": "Vendor__c", "operation": "update"}), &format!("Id,Name\n{gone},Back\n")).await;
    assert_eq!(
        result_rows(&org, &job, "failedResults").await,
        vec![format!("\"{gone}\",\"ENTITY_IS_DELETED:entity is deleted:--\",\"{gone}\",\"Back\"")]
    );
}

#[tokio::test]
async fn an_external_id_matching_several_records_fails_the_upsert_on_every_path() {
    let org = setup().await;
    let a = create_vendor(&org, json!({"Name": "A", "Ref__c": "R-1"})).await;
    let b = create_vendor(&org, json!({"Name": "B", "Ref__c": "r-1"})).await;

    // sObject Rows: 300 with the matching records' URLs (error-upsert-multiple-matches-300.json).
    let resp = org.patch("/sobjects/Vendor__c/Ref__c/R-1").json(&json!({"Name": "C"})).send().await.unwrap();
    assert_eq!(resp.status(), 300);
    let body: J = resp.json().await.unwrap();
    crate::common::shape::assert_same_shape_in_order("upsert 300", &corpus_json("error-upsert-multiple-matches-300.json"), &body);
    assert_eq!(
        body,
        json!([format!("/services/data/v66.0/sobjects/Vendor__c/{a}"), format!("/services/data/v66.0/sobjects/Vendor__c/{b}")])
    );

    // Collections and Bulk: a row error naming the field's label and the records.
    let message = format!("Legacy Reference: more than one record found for external id field: [{a}, {b}]");
    let r = collection(
        &org,
        Method::PATCH,
        "/composite/sobjects/Vendor__c/Ref__c",
        json!([vendor(json!({"Ref__c": "R-1", "Name": "C"}))]),
    )
    .await;
    crate::common::shape::assert_same_shape_in_order(
        "collections",
        &corpus_json("collections-upsert-partial-failure-allornone-false.json")[1],
        &r[0],
    );
    assert_eq!(r[0]["errors"], json!([error("DUPLICATE_EXTERNAL_ID", &message, &["Ref__c"])]));
    let job = json!({"object": "Vendor__c", "operation": "upsert", "externalIdFieldName": "Ref__c"});
    let (id, _) = run_job(&org, job, "Ref__c,Name\nR-1,C\n").await;
    assert_eq!(
        result_rows(&org, &id, "failedResults").await,
        vec![format!("\"\",\"DUPLICATE_EXTERNAL_ID:{message}:Ref__c --\",\"R-1\",\"C\"")]
    );
}

#[tokio::test]
async fn a_bulk_upsert_refuses_a_key_repeated_within_one_chunk_of_200() {
    let org = setup().await;
    // Rows 0 and 1 share a key (same chunk); rows 2 and 202 share one across chunks.
    let mut csv = String::from("Code__c,Name\nK-1,first\nk-1,second\nK-2,third\n");
    for i in 3..202 {
        csv.push_str(&format!("F-{i},filler\n"));
    }
    csv.push_str("K-2,last\n");
    let job = json!({"object": "Vendor__c", "operation": "upsert", "externalIdFieldName": "Code__c"});
    let (id, info) = run_job(&org, job, &csv).await;
    assert_eq!((info["numberRecordsProcessed"].clone(), info["numberRecordsFailed"].clone()), (json!(203), json!(2)));
    assert_eq!(
        result_rows(&org, &id, "failedResults").await,
        vec![
            "\"\",\"DUPLICATE_VALUE:Duplicate external id specified: K-1:Code__c --\",\"K-1\",\"first\"".to_owned(),
            "\"\",\"DUPLICATE_VALUE:Duplicate external id specified: k-1:Code__c --\",\"k-1\",\"second\"".to_owned(),
        ]
    );
    // Across chunks the second row updates what the first created.
    let ok = result_rows(&org, &id, "successfulResults").await;
    let k2: Vec<&String> = ok.iter().filter(|l| l.contains("\"K-2\"")).collect();
    assert_eq!(k2.len(), 2);
    assert!(k2[0].contains("\"true\"") && k2[1].contains("\"false\""), "{k2:?}");
    assert_eq!(k2[0][..20], k2[1][..20], "the same record");

    // Collections refuse a repeated key within the request the same way.
    let r = collection(
        &org,
        Method::PATCH,
        "/composite/sobjects/Vendor__c/Code__c",
        json!([vendor(json!({"Code__c": "D-1", "Name": "x"})), vendor(json!({"Code__c": "D-1", "Name": "y"}))]),
    )
    .await;
    for item in r.as_array().unwrap() {
        assert_eq!(item["errors"], json!([error("DUPLICATE_VALUE", "Duplicate external id specified: D-1", &["Code__c"])]));
    }
}

#[tokio::test]
async fn rules_and_removed_records_survive_a_save_and_reload() {
    let dir = tempfile::tempdir().unwrap();
    let org = TestOrg::start_empty().await;
    let rule = json!({"object": "Account", "name": "Site_Format", "field": "Site", "when": {"not_like": "HQ-%"},
        "message": "Sites look like HQ-1"});
    let stored = org.admin_call(Method::POST, "/validation-rules", Some(rule), 200).await;
    let gone = {
        let mut o = org.sim.state.org.write();
        let id = o.api_create("Account", &[("Name", tidemark_sfsim::org::write::Input::Json(&json!("Gone")))]).unwrap();
        o.api_hard_delete(Some("Account"), id.as_str()).unwrap();
        tidemark_sfsim::persist::save(&o, dir.path()).unwrap();
        id
    };
    let loaded = tidemark_sfsim::persist::load(dir.path()).unwrap();
    let rules = loaded.validation_rules(Some("Account"));
    let site = rules.iter().find(|(_, r)| r.name == "Site_Format").expect("saved");
    assert_eq!(site.1.error_field, None);
    assert_eq!(site.1.when, tidemark_sfsim::schema::RuleCondition::NotLike("HQ-%".into()));
    assert_eq!(stored["error_field"], J::Null);
    let amount = &loaded.validation_rules(Some("Opportunity"))[0].1;
    assert_eq!(amount.error_field.as_deref(), Some("Amount"), "the built-in rule shows at its field");
    assert!(loaded.was_removed(&gone), "hard deletes are remembered across a reload");
}
