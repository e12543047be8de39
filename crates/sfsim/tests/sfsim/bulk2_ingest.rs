//! Bulk API 2.0 ingest jobs over real HTTP: every operation with partial failures, the three
//! result CSVs, delimiters and line endings, multipart create, relationship columns, faults,
//! state rules.

use crate::common::ingest::upload;
use crate::common::{SendJson, TestOrg, corpus, corpus_json};
use serde_json::{Value as J, json};
use tidemark_core::{FieldType, SfId};
use tidemark_sfsim::faults::FaultConfig;
use tidemark_sfsim::org::write::Input;
use tidemark_sfsim::schema::{FieldDef, ObjectDef};

/// `Widget__c` (Name required, `Ext_Id__c` external id, `Count__c`, `Notes__c`), `Part__c`
/// (lookup `Widget__c`) and `Note__c` (polymorphic `Target__c` → Widget__c | Account).
async fn org_with_widgets() -> TestOrg {
    let org = TestOrg::start().await;
    {
        let mut o = org.sim.state.org.write();
        let mut w = ObjectDef::new("Widget__c", "Widget", "Widgets", "a01");
        w.add_system_fields();
        w.add_field(FieldDef::new("Name", FieldType::String).required());
        w.add_field(FieldDef::new("Ext_Id__c", FieldType::String).external_id().unique());
        w.add_field(FieldDef::new("Count__c", FieldType::Int));
        w.add_field(FieldDef::new("Notes__c", FieldType::Textarea));
        o.add_object(w);
        let mut p = ObjectDef::new("Part__c", "Part", "Parts", "a02");
        p.add_system_fields();
        p.add_field(FieldDef::new("Name", FieldType::String));
        p.add_field(FieldDef::new("Widget__c", FieldType::Reference).lookup(&["Widget__c"]));
        o.add_object(p);
        let mut n = ObjectDef::new("Note__c", "Note", "Notes", "a03");
        n.add_system_fields();
        n.add_field(FieldDef::new("Name", FieldType::String));
        n.add_field(FieldDef::new("Target__c", FieldType::Reference).lookup(&["Account", "Widget__c"]));
        o.add_object(n);
    }
    org
}

fn keys(v: &J) -> Vec<String> {
    v.as_object().expect("object").keys().cloned().collect()
}

fn field(org: &TestOrg, id: &str, name: &str) -> Option<String> {
    let o = org.sim.state.org.read();
    let (table, row) = o.find(&SfId::parse(id).ok()?)?;
    let v = o.field_value_by_name(table, row, name)?;
    let mut out = String::new();
    v.as_ref().write_csv_text(FieldType::String, 0, &mut out);
    if v.as_ref().is_null() { None } else { Some(out) }
}

async fn create(org: &TestOrg, body: J) -> J {
    let resp = org.post("/jobs/ingest").json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 200, "create ingest job");
    resp.json().await.unwrap()
}

async fn close(org: &TestOrg, id: &str) -> J {
    let resp = org
        .patch(&format!("/jobs/ingest/{id}"))
        .json(&corpus_json("bulk2-ingest-uploadcomplete-request.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

async fn wait_done(org: &TestOrg, id: &str) -> J {
    for _ in 0..2000 {
        let info = org.get_json(&format!("/jobs/ingest/{id}"), 200).await;
        if matches!(info["state"].as_str(), Some("JobComplete" | "Failed" | "Aborted")) {
            return info;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    panic!("job {id} did not finish");
}

async fn run(org: &TestOrg, job: J, csv: &str) -> (String, J) {
    let created = create(org, job).await;
    let id = created["id"].as_str().unwrap().to_owned();
    upload(org, &id, csv).await;
    close(org, &id).await;
    let info = wait_done(org, &id).await;
    (id, info)
}

async fn result(org: &TestOrg, id: &str, kind: &str) -> String {
    let resp = org.get(&format!("/jobs/ingest/{id}/{kind}/")).header("Accept", "text/csv").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.text().await.unwrap()
}

/// The first line of a corpus CSV (its header).
fn corpus_header(name: &str) -> String {
    corpus(name).lines().next().unwrap().to_owned()
}

#[tokio::test]
async fn insert_lifecycle_with_partial_failures_and_three_result_files() {
    let org = org_with_widgets().await;
    let created =
        create(&org, json!({"object": "Widget__c", "contentType": "CSV", "operation": "insert", "lineEnding": "LF"})).await;
    assert_eq!(keys(&created), keys(&corpus_json("bulk2-ingest-create-insert-response.json")));
    assert_eq!(created["state"], "Open");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["contentUrl"], format!("services/data/v66.0/jobs/ingest/{id}/batches"));
    let open = org.get_json(&format!("/jobs/ingest/{id}"), 200).await;
    assert_eq!(keys(&open), keys(&corpus_json("bulk2-ingest-job-info-open.json")));

    upload(&org, &id, "Name,Ext_Id__c,Count__c\nAlpha,A1,5\n,A2,6\n").await;
    upload(&org, &id, "Name,Ext_Id__c,Count__c\n\"Gamma, \"\"the\"\" third\",A3,notanumber\nDelta,A4\n").await;
    let closed = close(&org, &id).await;
    assert_eq!(keys(&closed), keys(&corpus_json("bulk2-ingest-uploadcomplete-response.json")));
    assert_eq!(closed["state"], "UploadComplete");
    let info = wait_done(&org, &id).await;
    assert_eq!(keys(&info), keys(&corpus_json("bulk2-ingest-job-complete.json")));
    assert_eq!(info["state"], "JobComplete");
    assert_eq!(info["jobType"], "V2Ingest");
    assert_eq!(info["numberRecordsProcessed"], 4);
    assert_eq!(info["numberRecordsFailed"], 3);

    let ok = result(&org, &id, "successfulResults").await;
    let lines: Vec<&str> = ok.lines().collect();
    assert_eq!(lines[0], "\"sf__Id\",\"sf__Created\",Name,Ext_Id__c,Count__c");
    assert_eq!(lines.len(), 2);
    let new_id = lines[1][1..19].to_owned();
    assert_eq!(lines[1], format!("\"{new_id}\",\"true\",\"Alpha\",\"A1\",\"5\""));
    assert_eq!(field(&org, &new_id, "Name").as_deref(), Some("Alpha"));

    let failed = result(&org, &id, "failedResults").await;
    let lines: Vec<&str> = failed.lines().collect();
    assert_eq!(lines[0], "\"sf__Id\",\"sf__Error\",Name,Ext_Id__c,Count__c");
    assert_eq!(lines[1], "\"\",\"REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --\",\"\",\"A2\",\"6\"");
    assert!(lines[2].starts_with("\"\",\"INVALID_TYPE_ON_FIELD_IN_RECORD:"), "{}", lines[2]);
    assert!(lines[2].ends_with(",\"Gamma, \"\"the\"\" third\",\"A3\",\"notanumber\""), "{}", lines[2]);
    // The observed shape of a row whose field count does not match the header.
    assert_eq!(
        lines[3],
        "\"\",\"INVALID_FIELD:Number of fields in header is different from the row. header = 3 row = 2:--\",\"\",\"\",\"\""
    );
    assert!(corpus("bulk2-ingest-failed-results.csv").contains("header = 4 row = 3:--\",\"\",\"\",\"\",\"\""));

    assert_eq!(result(&org, &id, "unprocessedrecords").await, "Name,Ext_Id__c,Count__c\n");
    assert_eq!(corpus_header("bulk2-ingest-unprocessed-records-empty.csv"), "Id,Phone");
}

#[tokio::test]
async fn update_upsert_delete_and_hard_delete() {
    let org = org_with_widgets().await;
    let ids: Vec<String> = {
        let mut o = org.sim.state.org.write();
        ["W1", "W2", "W3", "W4"]
            .iter()
            .map(|n| {
                o.api_create(
                    "Widget__c",
                    &[("Name", Input::Text(n)), ("Ext_Id__c", Input::Text(&n.to_lowercase())), ("Count__c", Input::Text("1"))],
                )
                .unwrap()
                .as_str()
                .to_owned()
            })
            .collect()
    };
    let unknown = SfId::from_parts("a01", "Dn", 999_999).as_str().to_owned();
    let csv = format!("Id,Count__c,Notes__c\n{},7,\n{},#N/A,kept\n{unknown},8,\n", ids[0], ids[1]);
    let (id, info) = run(&org, json!({"object": "Widget__c", "operation": "update"}), &csv).await;
    assert_eq!((info["numberRecordsProcessed"].clone(), info["numberRecordsFailed"].clone()), (json!(3), json!(1)));
    assert_eq!(field(&org, &ids[0], "Count__c").as_deref(), Some("7"));
    assert_eq!(field(&org, &ids[1], "Count__c"), None, "#N/A nulls");
    assert_eq!(field(&org, &ids[1], "Notes__c").as_deref(), Some("kept"));
    let ok = result(&org, &id, "successfulResults").await;
    assert!(ok.contains(&format!("\"{}\",\"false\",\"{}\",\"7\",\"\"", ids[0], ids[0])), "{ok}");
    let failed = result(&org, &id, "failedResults").await;
    assert!(failed.lines().nth(1).unwrap().starts_with(&format!("\"{unknown}\",\"")), "{failed}");

    let upsert_job =
        json!({"object": "Widget__c", "operation": "upsert", "externalIdFieldName": "Ext_Id__c", "contentType": "CSV"});
    let (id, info) = run(&org, upsert_job.clone(), "Ext_Id__c,Name,Count__c\nw3,W3 renamed,30\nnew1,Brand New,1\n").await;
    assert!(keys(&info).contains(&"externalIdFieldName".to_owned()));
    assert_eq!(info["numberRecordsFailed"], 0);
    let ok = result(&org, &id, "successfulResults").await;
    let lines: Vec<&str> = ok.lines().collect();
    assert_eq!(lines[0], "\"sf__Id\",\"sf__Created\",Ext_Id__c,Name,Count__c");
    assert_eq!(lines[1], format!("\"{}\",\"false\",\"w3\",\"W3 renamed\",\"30\"", ids[2]));
    assert!(lines[2].contains("\"true\",\"new1\",\"Brand New\",\"1\""));
    assert_eq!(field(&org, &ids[2], "Name").as_deref(), Some("W3 renamed"));

    let (_, info) =
        run(&org, json!({"object": "Widget__c", "operation": "delete"}), &format!("Id\n{}\n{unknown}\n", ids[0])).await;
    assert_eq!(info["numberRecordsFailed"], 1);
    {
        let o = org.sim.state.org.read();
        let t = o.table("Widget__c").unwrap();
        assert!(t.is_deleted(t.get(&SfId::parse(&ids[0]).unwrap()).unwrap()), "soft-deleted");
    }
    let (_, info) = run(&org, json!({"object": "Widget__c", "operation": "hardDelete"}), &format!("Id\n{}\n", ids[3])).await;
    assert_eq!(info["numberRecordsFailed"], 0);
    assert!(org.sim.state.org.read().find(&SfId::parse(&ids[3]).unwrap()).is_none(), "gone for good");
}

#[tokio::test]
async fn semicolon_delimiter_with_crlf_line_endings() {
    let org = org_with_widgets().await;
    let csv = "Name;Notes__c\r\nTom;\"Self-described as \"\"the top\"\" guru\"\r\nIan;\"Fuzzy logic; AI\r\nInfluential.\"\r\n";
    let (id, info) = run(
        &org,
        json!({"object": "Widget__c", "operation": "insert", "columnDelimiter": "SEMICOLON", "lineEnding": "CRLF"}),
        csv,
    )
    .await;
    assert_eq!(info["columnDelimiter"], "SEMICOLON");
    assert_eq!(info["lineEnding"], "CRLF");
    assert_eq!(info["numberRecordsFailed"], 0, "{info}");
    let ok = result(&org, &id, "successfulResults").await;
    let rows: Vec<&str> = ok.split("\r\n").collect();
    assert_eq!(rows[0], "\"sf__Id\";\"sf__Created\";Name;Notes__c");
    let ian = &rows[2][1..19];
    assert_eq!(field(&org, ian, "Notes__c").as_deref(), Some("Fuzzy logic; AI\r\nInfluential."));
    assert!(ok.contains("\"Self-described as \"\"the top\"\" guru\""));

    // The same data declared LF fails the job as Salesforce does.
    let (id, info) = run(&org, json!({"object": "Widget__c", "operation": "insert", "columnDelimiter": "SEMICOLON"}), csv).await;
    assert_eq!(info["state"], "Failed");
    assert_eq!(info["errorMessage"], "ClientInputError : LineEnding is invalid on user data. Current LineEnding setting is LF");
    assert_eq!(result(&org, &id, "unprocessedrecords").await.lines().count(), 1 + 3);
}

#[tokio::test]
async fn multipart_create_starts_in_upload_complete() {
    let org = org_with_widgets().await;
    let body = "--BOUNDARY\r\nContent-Type: application/json\r\nContent-Disposition: form-data; name=\"job\"\r\n\r\n{\"object\":\"Widget__c\",\"contentType\":\"CSV\",\"operation\":\"insert\",\"lineEnding\":\"LF\"}\r\n--BOUNDARY\r\nContent-Type: text/csv\r\nContent-Disposition: form-data; name=\"content\"; filename=\"content\"\r\n\r\nName,Notes__c\nAstro,San Francisco\nHootie,San Francisco\n\r\n--BOUNDARY--\r\n";
    let resp = org
        .post("/jobs/ingest/")
        .header("Content-Type", "multipart/form-data; boundary=\"BOUNDARY\"")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let created: J = resp.json().await.unwrap();
    let doc = corpus("bulk2-ingest-multipart-create.http");
    let doc_response: J = serde_json::from_str(&doc[doc.rfind("\n{").unwrap()..]).unwrap();
    assert_eq!(keys(&created), keys(&doc_response));
    assert_eq!(created["state"], "UploadComplete");
    let id = created["id"].as_str().unwrap();
    let info = wait_done(&org, id).await;
    assert_eq!(keys(&info), keys(&corpus_json("bulk2-ingest-multipart-job-complete.json")));
    assert_eq!(info["numberRecordsProcessed"], 2);
    let ok = result(&org, id, "successfulResults").await;
    assert_eq!(ok.lines().count(), 3);
    assert!(ok.lines().nth(2).unwrap().ends_with("\"true\",\"Hootie\",\"San Francisco\""));
    let too_big = format!(
        "--B\r\nContent-Disposition: form-data; name=\"job\"\r\n\r\n{{\"object\":\"Widget__c\",\"operation\":\"insert\"}}\r\n--B\r\nContent-Disposition: form-data; name=\"content\"\r\n\r\nName\n{}\r\n--B--\r\n",
        "x".repeat(100_001)
    );
    let resp =
        org.post("/jobs/ingest").header("Content-Type", "multipart/form-data; boundary=B").body(too_big).send().await.unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn relationship_columns_resolve_parents_by_external_id() {
    let org = org_with_widgets().await;
    let (widget, account) = {
        let mut o = org.sim.state.org.write();
        let w = o.api_create("Widget__c", &[("Name", Input::Text("Parent")), ("Ext_Id__c", Input::Text("P-1"))]).unwrap();
        let a = o.api_create("Account", &[("Name", Input::Text("Acme"))]).unwrap();
        (w.as_str().to_owned(), a.as_str().to_owned())
    };
    let (id, info) =
        run(&org, json!({"object": "Part__c", "operation": "insert"}), "Name,Widget__r.Ext_Id__c\nbolt,p-1\nnut,missing\n").await;
    assert_eq!(info["numberRecordsFailed"], 1);
    let ok = result(&org, &id, "successfulResults").await;
    let part = &ok.lines().nth(1).unwrap()[1..19];
    assert_eq!(field(&org, part, "Widget__c").as_deref(), Some(widget.as_str()));
    let failed = result(&org, &id, "failedResults").await;
    assert!(
        failed.contains("INVALID_FIELD:Foreign key external ID: missing not found for field Ext_Id__c in entity Widget__c:--"),
        "{failed}"
    );

    let csv = format!("Name,Widget__c:Target__r.Ext_Id__c,Target__r.Id\nn1,P-1,\nn2,,{account}\n");
    let (id, info) = run(&org, json!({"object": "Note__c", "operation": "insert"}), &csv).await;
    assert_eq!(info["numberRecordsFailed"], 0, "{}", result(&org, &id, "failedResults").await);
    let ok = result(&org, &id, "successfulResults").await;
    let n1 = &ok.lines().nth(1).unwrap()[1..19];
    let n2 = &ok.lines().nth(2).unwrap()[1..19];
    assert_eq!(field(&org, n1, "Target__c").as_deref(), Some(widget.as_str()));
    assert_eq!(field(&org, n2, "Target__c").as_deref(), Some(account.as_str()));
}

#[tokio::test]
async fn unknown_header_field_fails_the_job() {
    let org = org_with_widgets().await;
    let job = json!({"object": "Widget__c", "operation": "upsert", "externalIdFieldName": "Ext_Id__c"});
    let (id, info) = run(&org, job, "Ext_Id__c,ContactId__c\na,b\n").await;
    let observed = corpus_json("bulk2-ingest-job-failed.json");
    let mut ours = keys(&info);
    let mut theirs = keys(&observed);
    ours.sort();
    theirs.sort();
    assert_eq!(ours, theirs, "same keys as the observed failed job (re-serialized, so order differs)");
    assert_eq!(info["errorMessage"], "InvalidBatch : Field name not found : ContactId__c");
    assert_eq!((info["numberRecordsProcessed"].clone(), info["numberRecordsFailed"].clone()), (json!(0), json!(0)));
    assert_eq!(result(&org, &id, "unprocessedrecords").await, "Ext_Id__c,ContactId__c\n\"a\",\"b\"\n");
    assert_eq!(result(&org, &id, "failedResults").await, "\"sf__Id\",\"sf__Error\",Ext_Id__c,ContactId__c\n");
}

#[tokio::test]
async fn lock_contention_and_failed_jobs_from_faults() {
    let org = org_with_widgets().await;
    org.sim.state.faults.set(FaultConfig { lock_row_rate: 1.0, ..Default::default() }, 3);
    let (id, info) = run(&org, json!({"object": "Widget__c", "operation": "insert"}), "Name\na\nb\n").await;
    assert_eq!(info["state"], "JobComplete");
    assert_eq!(info["numberRecordsFailed"], 2);
    let failed = result(&org, &id, "failedResults").await;
    assert_eq!(
        failed.lines().nth(1).unwrap(),
        "\"\",\"UNABLE_TO_LOCK_ROW:unable to obtain exclusive access to this record:--\",\"a\""
    );

    org.sim.state.faults.set(FaultConfig { bulk_job_failure_rate: 1.0, ..Default::default() }, 3);
    let (id, info) = run(&org, json!({"object": "Widget__c", "operation": "insert"}), "Name\na\nb\n").await;
    assert_eq!(info["state"], "Failed");
    assert!(info["errorMessage"].as_str().unwrap().starts_with("InternalServerError : "));
    assert_eq!(info["numberRecordsProcessed"], 0);
    assert_eq!(result(&org, &id, "unprocessedrecords").await, "Name\n\"a\"\n\"b\"\n");
    assert_eq!(org.sim.state.org.read().table("Widget__c").unwrap().len(), 0);
}

#[tokio::test]
async fn state_rules_uploads_deletes_and_listing() {
    let org = org_with_widgets().await;
    let job = create(&org, json!({"object": "Widget__c", "operation": "insert"})).await;
    let id = job["id"].as_str().unwrap().to_owned();
    let resp = org
        .put(&format!("/jobs/ingest/{id}/batches"))
        .header("Content-Type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);
    let resp = org.delete(&format!("/jobs/ingest/{id}")).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.json::<J>().await.unwrap(), corpus_json("bulk2-query-delete-not-terminated-error.json"));
    let aborted: J =
        org.patch(&format!("/jobs/ingest/{id}")).json(&corpus_json("bulk2-ingest-abort-request.json")).send_json().await;
    assert_eq!(aborted["state"], "Aborted");
    let resp =
        org.put(&format!("/jobs/ingest/{id}/batches")).header("Content-Type", "text/csv").body("Name\nx\n").send().await.unwrap();
    assert_eq!(resp.status(), 400, "no uploads after abort");

    let list = org.get_json("/jobs/ingest", 200).await;
    assert_eq!(list["done"], true);
    assert_eq!(list["records"][0]["jobType"], "V2Ingest");
    assert_eq!(org.delete(&format!("/jobs/ingest/{id}")).send().await.unwrap().status(), 204);
    let resp = org.get(&format!("/jobs/ingest/{id}/successfulResults")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.json::<J>().await.unwrap(), corpus_json("bulk2-job-not-found-error.json"));

    let resp = org
        .post("/jobs/ingest")
        .json(&json!({"object": "Widget__c", "operation": "upsert", "externalIdFieldName": "Count__c"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = org.post("/jobs/ingest").json(&json!({"object": "Nope__c", "operation": "insert"})).send().await.unwrap();
    assert_eq!(resp.status(), 400);
}
