//! Conformance with the published examples in `../shared/salesforce-api/`.
//!
//! The per-area suites (query, records, collections, bulk…, oauth, metadata) compare their
//! responses with the corpus files of their area. This suite replays the documented *requests*
//! that they don't, compares what comes back with the documented *responses*, and keeps the
//! whole arrangement honest: `every_corpus_file_is_exercised_or_declared_not_applicable` fails
//! when a corpus file is neither used by some test nor listed in [`NOT_APPLICABLE`] with a reason.

use std::collections::BTreeSet;

use crate::common::shape::{Keys, assert_same_shape, shape_diff};
use crate::common::{SendJson, TestOrg, corpus, corpus_json};
use serde_json::{Value as J, json};
use tidemark_core::FieldType;
use tidemark_sfsim::schema::FieldDef;

/// Corpus files no test exercises, and why.
const NOT_APPLICABLE: &[(&str, &str)] = &[
    ("heroku-connect-conventions.json", "Heroku Connect mirrors are a later Tidemark source (Postgres), not part of the org"),
    ("heroku-connect-mapping-export.json", "Heroku Connect mirrors are a later Tidemark source (Postgres), not part of the org"),
    ("heroku-connect-row-synced.json", "Heroku Connect mirrors are a later Tidemark source (Postgres), not part of the org"),
    ("error-malformed-search.json", "SOSL search (/search) is not implemented"),
    ("composite-count-and-invalid-type.json", "the /composite resource is not implemented (sObject Collections are)"),
    ("composite-not-modified-304.json", "the /composite resource is not implemented (sObject Collections are)"),
    ("composite-subrequest-error-not-found.json", "the /composite resource is not implemented (sObject Collections are)"),
    (
        "error-malformed-query-implementation-restriction.json",
        "object-specific query restrictions of real orgs (e.g. on *Share objects) have no counterpart in the catalog",
    ),
    ("resources-by-version-v26.json", "v26.0 is retired: the simulator answers 410 GONE for it, as Salesforce does"),
];

#[test]
fn every_corpus_file_is_exercised_or_declared_not_applicable() {
    let corpus_dir = format!("{}/../../../shared/salesforce-api", env!("CARGO_MANIFEST_DIR"));
    let files: BTreeSet<String> = std::fs::read_dir(&corpus_dir)
        .expect("corpus directory")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8 name"))
        .filter(|n| n != "README.md")
        .collect();
    // Every test source of the repository that can drive the simulator.
    let mut sources = String::new();
    for dir in [
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sfsim"),
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/common"),
        concat!(env!("CARGO_MANIFEST_DIR"), "/../salesforce/tests/salesforce"),
        concat!(env!("CARGO_MANIFEST_DIR"), "/../salesforce/tests/common"),
    ] {
        for entry in std::fs::read_dir(dir).expect("tests directory") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("conformance.rs") {
                sources.push_str(&std::fs::read_to_string(&path).expect("readable"));
            }
        }
    }
    // This file too, minus the NOT_APPLICABLE table itself.
    let own = include_str!("conformance.rs");
    let table_start = own.find("const NOT_APPLICABLE").expect("table");
    let table_end = table_start + own[table_start..].find("\n];").expect("table end");
    sources.push_str(&own[..table_start]);
    sources.push_str(&own[table_end..]);
    let declared: BTreeSet<&str> = NOT_APPLICABLE.iter().map(|(f, _)| *f).collect();
    let mut problems = Vec::new();
    for f in &files {
        let used = sources.contains(&format!("\"{f}\""));
        match (used, declared.contains(f.as_str())) {
            (false, false) => problems.push(format!("{f}: not exercised by any test and not declared not applicable")),
            (true, true) => problems.push(format!("{f}: declared not applicable but a test uses it")),
            _ => {}
        }
    }
    for f in &declared {
        if !files.contains(*f) {
            problems.push(format!("{f}: declared not applicable but not in the corpus"));
        }
    }
    assert!(problems.is_empty(), "corpus coverage:\n  {}", problems.join("\n  "));
}

/// Splits an `.http` transcript into (request line, request body, response status, response body).
/// Comment lines (`###`, `#`) are dropped.
fn transcript(name: &str) -> (String, String, Option<u16>, String) {
    let text: String = corpus(name).lines().filter(|l| !l.starts_with('#')).collect::<Vec<_>>().join("\n");
    let (request, response) = match text.find("\nHTTP/1.1 ") {
        _ if text.trim_start().starts_with("HTTP/1.1 ") => (String::new(), text.trim_start().to_owned()),
        Some(i) => (text[..i].to_owned(), text[i + 1..].to_owned()),
        None => (text.clone(), String::new()),
    };
    let request = request.trim().to_owned();
    let request_line = request.lines().next().unwrap_or_default().to_owned();
    let request_body = request.split_once("\n\n").map(|(_, b)| b.trim().to_owned()).unwrap_or_default();
    let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok());
    let response_body = response.split_once("\n\n").map(|(_, b)| b.trim().to_owned()).unwrap_or_default();
    (request_line, request_body, status, response_body)
}

/// The version-independent form of a query continuation URL
/// `/services/data/vNN.N/query/<locator>-<offset>`: (resource path, locator key prefix, numeric offset).
fn continuation_form(url: &str) -> (String, String, bool) {
    let (dir, last) = url.rsplit_once('/').expect("a path");
    let resource: Vec<&str> = dir.split('/').filter(|s| !(s.starts_with('v') && s.ends_with(".0"))).collect();
    let (locator, offset) = last.split_once('-').expect("<locator>-<offset>");
    (resource.join("/"), locator.chars().take(3).collect(), offset.parse::<u64>().is_ok())
}

/// A query result whose records keep only `attributes`: the structure of a fixture whose fields
/// belong to an object of its own org.
fn records_as_attributes(page: &J) -> J {
    let mut page = page.clone();
    if let Some(records) = page["records"].as_array_mut() {
        for r in records.iter_mut() {
            *r = json!({"attributes": r["attributes"].clone()});
        }
    }
    page
}

fn ids_of(body: &J) -> Vec<String> {
    body["records"].as_array().expect("records").iter().map(|r| r["Id"].as_str().expect("Id").to_owned()).collect()
}

#[tokio::test]
async fn rest_query_pages_have_the_documented_shapes() {
    let org = TestOrg::start_with(tidemark_sfsim::SimConfig { accounts: 450, ..Default::default() }).await;
    let first = org
        .get("/query")
        .query(&[("q", "SELECT Id, Name FROM Account")])
        .header("Sforce-Query-Options", "batchSize=200")
        .send()
        .await
        .unwrap();
    assert_eq!(first.headers()["content-type"], "application/json;charset=UTF-8");
    let first: J = first.json().await.unwrap();
    assert_same_shape("first page", &corpus_json("query-page1.json"), &first, Keys::Exact);
    assert_same_shape(
        "first page (restforce)",
        &records_as_attributes(&corpus_json("query-paginated-first-page-restforce.json")),
        &first,
        Keys::AllowExtra,
    );
    // The continuation URL has the documented form and is fetched verbatim.
    let next = first["nextRecordsUrl"].as_str().expect("more pages").to_owned();
    let (request_line, _, _, _) = transcript("query-more-request.http");
    let documented = request_line.split_whitespace().nth(1).expect("path");
    assert_eq!(continuation_form(&next), continuation_form(documented), "{next} vs {documented}");
    let mut page: J = org.http.get(org.url(&next)).bearer_auth(&org.token).send_json().await;
    while page["done"] == false {
        let next = page["nextRecordsUrl"].as_str().unwrap().to_owned();
        page = org.http.get(org.url(&next)).bearer_auth(&org.token).send_json().await;
    }
    assert_same_shape("last page", &corpus_json("query-more-last-page.json"), &page, Keys::Exact);
    assert_same_shape(
        "last page (restforce)",
        &records_as_attributes(&corpus_json("query-paginated-last-page-restforce.json")),
        &page,
        Keys::AllowExtra,
    );

    let single = org.get_json("/query?q=SELECT+Name+FROM+Account+LIMIT+3", 200).await;
    assert_same_shape("single page", &corpus_json("query-simple-done.json"), &single, Keys::Exact);
    let empty = org.get_json("/query?q=SELECT+Id+FROM+Account+WHERE+Name+=+'no+such+account'", 200).await;
    assert_same_shape("empty", &corpus_json("query-empty.json"), &empty, Keys::Exact);
}

#[tokio::test]
async fn relationship_and_aggregate_queries_have_the_documented_shapes() {
    let org = TestOrg::start().await;
    let example = corpus_json("query-relationships-parent-child.json");
    let body = org
        .get_json(
            "/query?q=SELECT+Id,+LastName,+Account.Name,+Account.Industry+FROM+Contact+WHERE+AccountId+!=+null+LIMIT+5",
            200,
        )
        .await;
    // The example's fields belong to its custom object; the structure is what must match: a
    // nested record with its own `attributes`.
    let parent = &body["records"][0]["Account"];
    assert_same_shape(
        "parent record",
        &json!({"attributes": example["records"][0]["ParentWhizbang__r"]["attributes"]}),
        parent,
        Keys::AllowExtra,
    );
    assert!(parent["Name"].is_string(), "{parent}");
    let parents = org.get_json("/query?q=SELECT+Id,+Name,+(SELECT+Id,+LastName+FROM+Contacts)+FROM+Account+LIMIT+20", 200).await;
    let with_children =
        parents["records"].as_array().unwrap().iter().find(|r| !r["Contacts"].is_null()).expect("an account with contacts");
    let child_example = &example["records"][0]["Whizbangs__r"];
    let child_structure = json!({
        "totalSize": child_example["totalSize"],
        "done": child_example["done"],
        "records": [{"attributes": child_example["records"][0]["attributes"]}],
    });
    assert_same_shape("child subquery", &child_structure, &with_children["Contacts"], Keys::AllowExtra);

    let sums = org.get_json("/query?q=SELECT+CampaignId,+SUM(Amount)+FROM+Opportunity+GROUP+BY+CampaignId", 200).await;
    assert_same_shape("aggregate", &corpus_json("query-aggregate-restforce.json"), &sums, Keys::Exact);
    let grouped = org
        .get_json(
            "/query?q=SELECT+WhatId,+ActivityDate,+Status,+COUNT(Id)+MyCount+FROM+Task+GROUP+BY+WhatId,+ActivityDate,+Status",
            200,
        )
        .await;
    assert_same_shape("aliased aggregate", &corpus_json("query-aggregate-groupby.json"), &grouped, Keys::Exact);
}

#[tokio::test]
async fn discovery_resources_have_the_documented_shapes() {
    let org = TestOrg::start().await;
    let versions: J = org.http.get(org.url("/services/data/")).send_json().await;
    assert_same_shape("versions", &corpus_json("versions.json"), &versions, Keys::Exact);

    let resources = org.get_json("/", 200).await;
    let documented = corpus_json("resources-by-version.json");
    for (key, value) in resources.as_object().unwrap() {
        assert!(documented.get(key).is_some(), "resource {key} is documented");
        let v = value.as_str().unwrap();
        assert!(v.starts_with("/services/data/v66.0/") || key == "identity", "{key}: {v}");
    }
    assert!(resources["identity"].as_str().unwrap().contains("/id/00D"));

    let global = org.get_json("/sobjects", 200).await;
    assert_same_shape("describeGlobal (doc)", &corpus_json("describe-global-doc.json"), &global, Keys::AllowExtra);
    assert_same_shape(
        "describeGlobal (restforce)",
        &corpus_json("describe-global-restforce-minimal.json"),
        &global,
        Keys::AllowExtra,
    );

    let account = org.get_json("/sobjects/Account/describe", 200).await;
    let real = corpus_json("describe-account.json");
    let ours: std::collections::HashMap<&str, &J> =
        account["fields"].as_array().unwrap().iter().map(|f| (f["name"].as_str().unwrap(), f)).collect();
    let mut shared = 0;
    for field in real["fields"].as_array().unwrap() {
        if let Some(o) = ours.get(field["name"].as_str().unwrap()) {
            assert_same_shape(&format!("Account.{}", field["name"]), field, o, Keys::Exact);
            assert_eq!(
                (o["type"].clone(), o["soapType"].clone()),
                (field["type"].clone(), field["soapType"].clone()),
                "Account.{}",
                field["name"]
            );
            shared += 1;
        }
    }
    assert!(shared >= 40, "the real Account's standard fields are modelled ({shared})");

    let counts = org.get_json("/limits/recordCount?sObjects=Account,Invoice__c", 200).await;
    assert_same_shape("recordCount", &corpus_json("limits-record-count.json"), &counts, Keys::Exact);
    let live = org.sim.state.org.read().table("Account").unwrap().live_count();
    assert!(counts["sObjects"].as_array().unwrap().iter().any(|e| e["name"] == "Account" && e["count"] == live));

    let limits = org.get_json("/limits", 200).await;
    for file in ["limits-doc-v60.json", "limits.json"] {
        let doc = corpus_json(file);
        for (name, entry) in limits.as_object().unwrap() {
            let documented = doc.get(name).unwrap_or_else(|| panic!("{name} is a documented limit in {file}"));
            let diff = shape_diff(&json!({"Max": 0, "Remaining": 0}), entry, Keys::Exact);
            assert!(diff.is_empty() && documented.get("Max").is_some(), "{file} {name}: {diff:?}");
        }
    }
    let resp = org.get("/limits").send().await.unwrap();
    let header = resp.headers()["Sforce-Limit-Info"].to_str().unwrap().to_owned();
    let documented = corpus("sforce-limit-info-header.http");
    let example = documented.lines().find_map(|l| l.strip_prefix("Sforce-Limit-Info: ")).expect("documented header");
    let form = |h: &str| h.split('=').next().map(str::to_owned);
    assert_eq!(form(&header), form(example));
    let (used, max) = header.trim_start_matches("api-usage=").split_once('/').expect("used/max");
    assert!(used.parse::<u64>().is_ok() && max.parse::<u64>().is_ok(), "{header}");
}

#[tokio::test]
async fn describe_field_objects_match_the_published_samples_per_type() {
    let org = TestOrg::start().await;
    let samples = corpus_json("describe-field-type-samples.json");
    let mut ours_by_type: std::collections::HashMap<String, J> = std::collections::HashMap::new();
    let names: Vec<String> = org.sim.state.org.read().tables().iter().map(|t| t.def.name.clone()).collect();
    for name in names {
        let d = org.get_json(&format!("/sobjects/{name}/describe"), 200).await;
        for f in d["fields"].as_array().unwrap() {
            ours_by_type.entry(f["type"].as_str().unwrap().to_owned()).or_insert_with(|| f.clone());
        }
    }
    // `fields` holds `{_source, _object, field}` entries: `field` is the unmodified field object.
    let sample_fields: Vec<&J> = samples["fields"].as_array().expect("fields").iter().map(|e| &e["field"]).collect();
    let mut checked = 0;
    for sample in sample_fields.iter().filter(|s| s.get("type").is_some()) {
        let ty = sample["type"].as_str().unwrap();
        let ours = ours_by_type.get(ty).unwrap_or_else(|| panic!("the catalog has a {ty} field"));
        // Some samples come from older API versions: ours may add keys newer versions have.
        assert_same_shape(&format!("{ty} field"), sample, ours, Keys::AllowExtra);
        assert_eq!(ours["soapType"], sample["soapType"], "{ty} soapType");
        checked += 1;
    }
    assert!(checked >= 21, "every sampled type checked ({checked} of {})", sample_fields.len());
}

#[tokio::test]
async fn records_and_updates_match_the_documented_exchanges() {
    let org = TestOrg::start().await;
    let account_id =
        ids_of(&org.get_json("/query?q=SELECT+Id+FROM+Account+WHERE+BillingCity+!=+null+LIMIT+1", 200).await).remove(0);
    let record = org.get_json(&format!("/sobjects/Account/{account_id}"), 200).await;
    let example = corpus_json("record-get-account-swiftly.json");
    // Their org has managed-package fields ours doesn't: compare the fields both have.
    let common_fields: serde_json::Map<String, J> = example
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| record.get(*k).is_some())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert!(common_fields.len() > 20, "most standard Account fields are present ({})", common_fields.len());
    assert_same_shape("Account record", &J::Object(common_fields), &record, Keys::AllowExtra);
    assert_same_shape("BillingAddress", &example["BillingAddress"], &record["BillingAddress"], Keys::Exact);
    assert_same_shape(
        "attributes",
        &corpus_json("record-get-custom-object-restforce.json")["attributes"],
        &record["attributes"],
        Keys::Exact,
    );

    let (request_line, body, status, _) = transcript("record-update-no-content.http");
    assert!(request_line.starts_with("PATCH /services/data/v60.0/sobjects/Account/"));
    let body: J = serde_json::from_str(&body).unwrap();
    let resp = org.patch(&format!("/sobjects/Account/{account_id}")).json(&body).send().await.unwrap();
    assert_eq!(Some(resp.status().as_u16()), status);
    assert!(resp.bytes().await.unwrap().is_empty());
    let after = org.get_json(&format!("/sobjects/Account/{account_id}?fields=BillingCity"), 200).await;
    assert_eq!(after["BillingCity"], body["BillingCity"]);

    let resp = org.post("/sobjects/Invoice__c").json(&json!({"Invoice_Number__c": "DUP-1"})).send().await.unwrap();
    assert_eq!(resp.status(), 201);
    let resp = org.post("/sobjects/Invoice__c").json(&json!({"Invoice_Number__c": "DUP-1"})).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    let dup: J = resp.json().await.unwrap();
    assert_same_shape("duplicate value", &corpus_json("error-duplicate-value.json"), &dup, Keys::Exact);
    assert!(
        dup[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("duplicate value found: Invoice_Number__c duplicates value on record with id: ")
    );

    let (_, _, status, body) = transcript("error-invalid-session.http");
    let resp = org.http.get(org.data_url("/sobjects")).bearer_auth("expired").send().await.unwrap();
    assert_eq!(Some(resp.status().as_u16()), status);
    assert_eq!(resp.headers()["content-type"], "application/json;charset=UTF-8");
    assert_eq!(resp.json::<J>().await.unwrap(), serde_json::from_str::<J>(&body).unwrap());

    let updated = org
        .get_json("/sobjects/Contact/updated/?start=2025-01-05T00%3A00%3A00%2B00%3A00&end=2025-01-06T09%3A00%3A00%2B00%3A00", 200)
        .await;
    assert_same_shape("getUpdated on Contact", &corpus_json("get-updated-restforce-contacts.json"), &updated, Keys::Exact);
}

#[tokio::test]
async fn collections_accept_the_documented_requests() {
    let org = TestOrg::start().await;
    let created = org.post("/composite/sobjects").json(&corpus_json("collections-create-request.json")).send().await.unwrap();
    assert_eq!(created.status(), 200);
    let created: J = created.json().await.unwrap();
    assert_same_shape("create", &corpus_json("collections-create-response.json"), &created, Keys::Exact);
    assert!(created.as_array().unwrap().iter().all(|r| r["success"] == true), "{created}");
    let mut update = corpus_json("collections-update-request.json");
    for (record, result) in update["records"].as_array_mut().unwrap().iter_mut().zip(created.as_array().unwrap()) {
        record["id"] = result["id"].clone();
    }
    let updated: J = org.patch("/composite/sobjects").json(&update).send_json().await;
    assert_same_shape("update", &corpus_json("collections-update-response.json"), &updated, Keys::Exact);
    assert!(updated.as_array().unwrap().iter().all(|r| r["success"] == true), "{updated}");
}

/// Adds an external-id text field to `object` (the docs' examples use fields our catalog lacks).
fn add_external_id(org: &TestOrg, object: &str, field: &str) {
    let mut o = org.sim.state.org.write();
    let table = o.table_mut(object).expect("object exists");
    table.def.add_field(FieldDef::new(field, FieldType::String).length(80).external_id().unique());
}

async fn wait_for_ingest(org: &TestOrg, id: &str) -> J {
    for _ in 0..2000 {
        let info = org.get_json(&format!("/jobs/ingest/{id}"), 200).await;
        if matches!(info["state"].as_str(), Some("JobComplete" | "Failed" | "Aborted")) {
            return info;
        }
        tokio::task::yield_now().await;
    }
    panic!("ingest job {id} did not finish");
}

/// Runs a documented ingest: create from `job`, upload `csv`, UploadComplete; returns final info.
async fn ingest(org: &TestOrg, job: &J, csv: &str, documented_create: Option<&str>) -> (String, J) {
    let documented = if job["operation"] == "upsert" {
        "bulk2-ingest-upsert-uploadcomplete-response.json"
    } else {
        "bulk2-ingest-uploadcomplete-response.json"
    };
    ingest_documented(org, job, csv, documented_create, documented).await
}

async fn ingest_documented(
    org: &TestOrg,
    job: &J,
    csv: &str,
    documented_create: Option<&str>,
    documented_upload_complete: &str,
) -> (String, J) {
    let created: J = org.post("/jobs/ingest/").json(job).send_json().await;
    if let Some(file) = documented_create {
        assert_same_shape("ingest create", &corpus_json(file), &created, Keys::Exact);
    }
    let id = created["id"].as_str().unwrap().to_owned();
    let upload = org
        .put(&format!("/jobs/ingest/{id}/batches/"))
        .header("Content-Type", "text/csv")
        .body(csv.to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), 201);
    let done: J = org
        .patch(&format!("/jobs/ingest/{id}/"))
        .json(&corpus_json("bulk2-ingest-uploadcomplete-request.json"))
        .send_json()
        .await;
    assert_eq!(done["state"], "UploadComplete");
    assert_same_shape("upload complete", &corpus_json(documented_upload_complete), &done, Keys::Exact);
    (id.clone(), wait_for_ingest(org, &id).await)
}

#[tokio::test]
async fn bulk_ingest_replays_the_documented_jobs() {
    let org = TestOrg::start().await;
    add_external_id(&org, "Account", "customExtIdField__c");
    add_external_id(&org, "Contact", "ExternalId__c");

    // The quick-start upsert, byte for byte as the transcript uploads it.
    let (_, upload, upload_status, _) = transcript("bulk2-ingest-upload-batches.http");
    assert_eq!(upload, corpus("bulk2-ingest-upsert-upload.csv").trim());
    assert_eq!(upload_status, Some(201));
    let (id, info) = ingest_documented(
        &org,
        &corpus_json("bulk2-ingest-create-upsert-request.json"),
        &corpus("bulk2-ingest-upsert-upload.csv"),
        Some("bulk2-ingest-create-upsert-response.json"),
        "bulk2-ingest-upsert-uploadcomplete-response.json",
    )
    .await;
    assert_eq!(info["state"], "JobComplete", "{info}");
    assert_same_shape("job info", &corpus_json("bulk2-ingest-job-inprogress.json"), &info, Keys::AllowExtra);
    assert_eq!(info["numberRecordsProcessed"], 12);
    let ok = org.get(&format!("/jobs/ingest/{id}/successfulResults/")).send().await.unwrap().text().await.unwrap();
    let documented = corpus("bulk2-ingest-successful-results.csv");
    assert_eq!(ok.lines().next(), documented.lines().next(), "header row");
    assert_eq!(ok.lines().count(), documented.lines().count());
    let mut ours: Vec<Vec<String>> =
        ok.lines().skip(1).map(|l| l.split("\",\"").skip(1).map(|c| c.trim_matches('"').to_owned()).collect()).collect();
    let mut theirs: Vec<Vec<String>> =
        documented.lines().skip(1).map(|l| l.split("\",\"").skip(1).map(|c| c.trim_matches('"').to_owned()).collect()).collect();
    ours.sort();
    theirs.sort();
    assert_eq!(ours, theirs, "sf__Created and the original columns, whatever the row order");
    let failed = org.get(&format!("/jobs/ingest/{id}/failedResults/")).send().await.unwrap().text().await.unwrap();
    let documented_prefix =
        corpus("bulk2-ingest-failed-results-empty.csv").trim_end().strip_suffix("Id,Phone").expect("doc header").to_owned();
    assert_eq!(failed.trim_end(), format!("{documented_prefix}customExtIdField__c,name,NumberOfEmployees"));

    // An update keyed by Id with no failures: the failed results are exactly the observed file.
    let ids = ids_of(&org.get_json("/query?q=SELECT+Id+FROM+Account+LIMIT+2", 200).await);
    let update = json!({"object": "Account", "contentType": "CSV", "operation": "update", "lineEnding": "LF"});
    let (update_id, info) = ingest(&org, &update, &format!("Id,Phone\n{},555-0100\n{},555-0101\n", ids[0], ids[1]), None).await;
    assert_eq!(info["numberRecordsFailed"], 0, "{info}");
    let failed = org.get(&format!("/jobs/ingest/{update_id}/failedResults/")).send().await.unwrap().text().await.unwrap();
    assert_eq!(failed, corpus("bulk2-ingest-failed-results-empty.csv"));

    // Upserting again updates: sf__Created is "false" for every row.
    let (_, again) =
        ingest(&org, &corpus_json("bulk2-ingest-create-upsert-request.json"), &corpus("bulk2-ingest-upsert-upload.csv"), None)
            .await;
    assert_eq!((again["numberRecordsProcessed"].clone(), again["numberRecordsFailed"].clone()), (json!(12), json!(0)));

    // Semicolon-delimited contacts with quotes, an embedded delimiter and a line break.
    let (_, info) = ingest(
        &org,
        &corpus_json("bulk2-ingest-csv-semicolon-delimiter-job.json"),
        &corpus("bulk2-ingest-csv-semicolon-delimiter.csv"),
        None,
    )
    .await;
    assert_eq!((info["numberRecordsProcessed"].clone(), info["numberRecordsFailed"].clone()), (json!(2), json!(0)), "{info}");
    let ian = org.get_json("/query?q=SELECT+Description,+Birthdate+FROM+Contact+WHERE+LastName+=+'Dury'", 200).await;
    assert_eq!(
        ian["records"][0]["Description"],
        "Expert in fuzzy logic design; Knowledgeable in AI\nInfluential in technology purchases."
    );
    assert_eq!(ian["records"][0]["Birthdate"], "1965-12-11");

    // Upsert on a Contact external id.
    let (_, info) = ingest(
        &org,
        &corpus_json("bulk2-ingest-csv-upsert-external-id-job.json"),
        &corpus("bulk2-ingest-csv-upsert-external-id.csv"),
        None,
    )
    .await;
    assert_eq!((info["numberRecordsProcessed"].clone(), info["numberRecordsFailed"].clone()), (json!(3), json!(0)), "{info}");

    // A polymorphic relationship column (Lead:Who.Email) and a parent by Id (Owner.Id).
    let lead: J = org
        .post("/sobjects/Lead")
        .json(&json!({"LastName": "Sample", "Company": "Sample Co", "Email": "lead@salesforcesample.com"}))
        .send_json()
        .await;
    let owner = org.sim.state.org.read().integration_user;
    let csv = corpus("bulk2-ingest-csv-relationship-polymorphic.csv").replace("005D0000001AXYz", owner.short());
    let mut job = corpus_json("bulk2-ingest-create-insert-request.json");
    job["object"] = json!("Task");
    let (_, info) = ingest(&org, &job, &csv, Some("bulk2-ingest-create-insert-response.json")).await;
    assert_eq!((info["numberRecordsProcessed"].clone(), info["numberRecordsFailed"].clone()), (json!(1), json!(0)), "{info}");
    let task = org
        .get_json("/query?q=SELECT+WhoId,+OwnerId+FROM+Task+WHERE+Subject+=+'Test+Bulk+API+polymorphic+reference+field'", 200)
        .await;
    assert_eq!(task["records"][0]["WhoId"], lead["id"]);
    assert_eq!(task["records"][0]["OwnerId"], owner.as_str());
}

#[tokio::test]
async fn bulk_ingest_replays_the_documented_multipart_request() {
    let org = TestOrg::start().await;
    // Reassemble the transcript's two parts with the CRLF framing multipart requires.
    let (_, body, _, _) = transcript("bulk2-ingest-multipart-create.http");
    let part = |name: &str| -> String {
        let start = body.find(&format!("name=\"{name}\"")).expect("part");
        let after = &body[start..];
        let content = &after[after.find("\n\n").expect("part body") + 2..];
        content[..content.find("\n--BOUNDARY").expect("part end")].to_owned()
    };
    let (job, csv) = (part("job"), part("content"));
    let multipart = format!(
        "--BOUNDARY\r\nContent-Type: application/json\r\nContent-Disposition: form-data; name=\"job\"\r\n\r\n{job}\r\n--BOUNDARY\r\nContent-Type: text/csv\r\nContent-Disposition: form-data; name=\"content\"; filename=\"content\"\r\n\r\n{csv}\n\r\n--BOUNDARY--\r\n"
    );
    let resp = org
        .post("/jobs/ingest/")
        .header("Content-Type", "multipart/form-data; boundary=\"BOUNDARY\"")
        .body(multipart)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let created: J = resp.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let info = wait_for_ingest(&org, &id).await;
    assert_eq!(info["numberRecordsProcessed"], 4, "{info}");
    let ok = org.get(&format!("/jobs/ingest/{id}/successfulResults/")).send().await.unwrap().text().await.unwrap();
    let documented = corpus("bulk2-ingest-multipart-successful-results.csv");
    let without_ids = |csv: &str| -> BTreeSet<String> {
        csv.lines().map(|l| l.split_once(',').map(|(_, rest)| rest.to_owned()).unwrap_or_default()).collect()
    };
    assert_eq!(without_ids(&ok), without_ids(&documented));
}

#[tokio::test]
async fn bulk_query_replays_the_documented_jobs() {
    let org = TestOrg::start().await;
    let created = org.post("/jobs/query").json(&corpus_json("bulk2-query-create-request.json")).send().await.unwrap();
    assert_eq!(created.status(), 200);
    let created: J = created.json().await.unwrap();
    assert_same_shape("query create", &corpus_json("bulk2-query-walkthrough-create-response.json"), &created, Keys::Exact);
    let id = created["id"].as_str().unwrap().to_owned();
    let mut info = J::Null;
    for _ in 0..2000 {
        info = org.get_json(&format!("/jobs/query/{id}"), 200).await;
        if info["state"] == "JobComplete" {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_same_shape("query complete", &corpus_json("bulk2-query-walkthrough-job-complete.json"), &info, Keys::Exact);

    // Paging by locator, as the transcript shows: a locator until the last set says `null`.
    let (request_line, _, _, _) = transcript("bulk2-query-results-paging.http");
    assert!(request_line.contains("/results?maxRecords="));
    let (mut locator, mut rows, mut sets) = (None::<String>, 0usize, 0usize);
    loop {
        let mut req = org.get(&format!("/jobs/query/{id}/results")).query(&[("maxRecords", "40")]).header("Accept", "text/csv");
        if let Some(l) = &locator {
            req = req.query(&[("locator", l)]);
        }
        let resp = req.send().await.unwrap();
        let next = resp.headers()["Sforce-Locator"].to_str().unwrap().to_owned();
        let n: usize = resp.headers()["Sforce-NumberOfRecords"].to_str().unwrap().parse().unwrap();
        let body = resp.text().await.unwrap();
        assert_eq!(body.lines().next(), Some("\"Id\",\"Name\""));
        assert_eq!(body.lines().count(), n + 1);
        rows += n;
        sets += 1;
        if next == "null" {
            break;
        }
        locator = Some(next);
    }
    let live = org.sim.state.org.read().table("Account").unwrap().live_count();
    assert_eq!(rows, live);
    assert_eq!(sets, live.div_ceil(40));

    let pages = org.get_json(&format!("/jobs/query/{id}/resultPages"), 200).await;
    assert_same_shape("resultPages", &corpus_json("bulk2-query-result-pages.json"), &pages, Keys::Exact);

    // CARET + CRLF as the documented options ask.
    let created: J = org.post("/jobs/query").json(&corpus_json("bulk2-query-create-request-options.json")).send_json().await;
    assert_eq!((created["columnDelimiter"].clone(), created["lineEnding"].clone()), (json!("CARET"), json!("CRLF")));
    let id = created["id"].as_str().unwrap().to_owned();
    for _ in 0..2000 {
        if org.get_json(&format!("/jobs/query/{id}"), 200).await["state"] == "JobComplete" {
            break;
        }
        tokio::task::yield_now().await;
    }
    let body = org.get(&format!("/jobs/query/{id}/results")).send().await.unwrap().text().await.unwrap();
    assert!(body.starts_with("\"Id\"\r\n\"001"), "{}", &body[..40.min(body.len())]);
}

#[tokio::test]
async fn documented_token_requests_are_accepted() {
    let org = TestOrg::start().await;
    let (request_line, body, _, _) = transcript("oauth-client-credentials-request.http");
    assert!(request_line.starts_with("POST /services/oauth2/token"));
    let c = &org.sim.credentials;
    let form = body.replace("client-key", &c.client_id).replace("client-secret", &c.client_secret);
    let resp = org
        .http
        .post(org.url("/services/oauth2/token"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_same_shape(
        "client credentials",
        &corpus_json("oauth-client-credentials-token.json"),
        &resp.json::<J>().await.unwrap(),
        Keys::Exact,
    );

    let (request_line, body, _, _) = transcript("oauth-jwt-bearer-token-request.http");
    assert!(request_line.starts_with("POST /services/oauth2/token"));
    assert!(body.starts_with("grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion="));
    // The documented grant type is accepted; a placeholder assertion is refused as invalid.
    let resp = org
        .http
        .post(org.url("/services/oauth2/token"))
        .form(&[("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", "not.a.jwt")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.json::<J>().await.unwrap()["error"], "invalid_grant");
}
