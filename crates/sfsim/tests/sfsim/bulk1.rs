//! Bulk API 1.0 query jobs over real HTTP: XML and JSON jobs, batches, results, PK chunking,
//! compound-field failures and session errors.

use std::collections::HashSet;

use crate::common::{SendJson, TestOrg};
use serde_json::{Value as J, json};
use tidemark_core::FieldType;
use tidemark_sfsim::org::write::Input;
use tidemark_sfsim::schema::{FieldDef, ObjectDef};

const NS: &str = "http://www.force.com/2009/06/asyncapi/dataload";

fn async_url(org: &TestOrg, path: &str) -> String {
    org.url(&format!("/services/async/66.0{path}"))
}

fn post_xml(org: &TestOrg, path: &str, body: String) -> reqwest::RequestBuilder {
    org.http
        .post(async_url(org, path))
        .header("X-SFDC-Session", &org.token)
        .header("Content-Type", "application/xml; charset=UTF-8")
        .body(body)
}

fn get(org: &TestOrg, path: &str) -> reqwest::RequestBuilder {
    org.http.get(async_url(org, path)).header("X-SFDC-Session", &org.token)
}

/// The text of every `<tag>` element, in document order.
fn all(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    xml.split(&open).skip(1).filter_map(|s| s.split_once(&close).map(|(v, _)| v.to_owned())).collect()
}

fn one(xml: &str, tag: &str) -> String {
    all(xml, tag).into_iter().next().unwrap_or_else(|| panic!("<{tag}> in {xml}"))
}

fn seed(org: &TestOrg, n: usize) -> Vec<String> {
    let mut o = org.sim.state.org.write();
    (0..n).map(|i| o.api_create("Account", &[("Name", Input::Text(&format!("Acct {i}")))]).unwrap().as_str().to_owned()).collect()
}

async fn create_job(org: &TestOrg, object: &str, chunking: Option<&str>) -> String {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<jobInfo xmlns=\"{NS}\">\n <operation>query</operation>\n <object>{object}</object>\n <concurrencyMode>Parallel</concurrencyMode>\n <contentType>CSV</contentType>\n</jobInfo>"
    );
    let mut req = post_xml(org, "/job", body);
    if let Some(c) = chunking {
        req = req.header("Sforce-Enable-PKChunking", c);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.headers()["content-type"], "application/xml");
    let text = resp.text().await.unwrap();
    assert!(text.contains(&format!("xmlns=\"{NS}\"")), "{text}");
    assert_eq!(one(&text, "state"), "Open");
    assert_eq!(one(&text, "contentType"), "CSV");
    assert_eq!(one(&text, "apiVersion"), "66.0");
    assert!(one(&text, "createdDate").ends_with(".000Z"));
    one(&text, "id")
}

async fn add_batch(org: &TestOrg, job: &str, soql: &str) -> String {
    let resp = org
        .http
        .post(async_url(org, &format!("/job/{job}/batch")))
        .header("X-SFDC-Session", &org.token)
        .header("Content-Type", "text/csv; charset=UTF-8")
        .body(soql.to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let text = resp.text().await.unwrap();
    assert_eq!(one(&text, "jobId"), job);
    one(&text, "id")
}

/// Polls the batch list until no batch is queued or in progress.
async fn settled_batches(org: &TestOrg, job: &str) -> String {
    for _ in 0..2000 {
        let text = get(org, &format!("/job/{job}/batch")).send().await.unwrap().text().await.unwrap();
        let states = all(&text, "state");
        if !states.is_empty() && states.iter().all(|s| !matches!(s.as_str(), "Queued" | "InProgress")) {
            return text;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    panic!("batches of {job} did not settle");
}

async fn batch_ids_from_results(org: &TestOrg, job: &str, batch: &str) -> Vec<String> {
    let list = get(org, &format!("/job/{job}/batch/{batch}/result")).send().await.unwrap().text().await.unwrap();
    assert!(list.contains("<result-list"), "{list}");
    let result = one(&list, "result");
    let resp = get(org, &format!("/job/{job}/batch/{batch}/result/{result}")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let csv = resp.text().await.unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("\"Id\",\"Name\""));
    lines.map(|l| l[1..19].to_owned()).collect()
}

#[tokio::test]
async fn xml_query_job_without_chunking() {
    let org = TestOrg::start_empty().await;
    let ids = seed(&org, 5);
    let job = create_job(&org, "Account", None).await;
    let batch = add_batch(&org, &job, "SELECT Id, Name FROM Account").await;
    let list = settled_batches(&org, &job).await;
    assert_eq!(all(&list, "state"), ["Completed"]);
    let info = get(&org, &format!("/job/{job}/batch/{batch}")).send().await.unwrap().text().await.unwrap();
    assert_eq!(one(&info, "numberRecordsProcessed"), "5");
    let got = batch_ids_from_results(&org, &job, &batch).await;
    assert_eq!(got.iter().collect::<HashSet<_>>(), ids.iter().collect::<HashSet<_>>());

    let closed = post_xml(
        &org,
        &format!("/job/{job}"),
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><jobInfo xmlns=\"{NS}\"><state>Closed</state></jobInfo>"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(closed.status(), 200);
    let closed = closed.text().await.unwrap();
    assert_eq!(one(&closed, "state"), "Closed");
    assert_eq!(one(&closed, "numberBatchesCompleted"), "1");
    assert_eq!(one(&closed, "numberRecordsProcessed"), "5");
    let resp = org
        .http
        .post(async_url(&org, &format!("/job/{job}/batch")))
        .header("X-SFDC-Session", &org.token)
        .header("Content-Type", "text/csv")
        .body("SELECT Id FROM Account")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(one(&resp.text().await.unwrap(), "exceptionCode"), "InvalidJobState");
}

#[tokio::test]
async fn pk_chunking_splits_by_id_range_without_duplicates() {
    let org = TestOrg::start_empty().await;
    let ids = seed(&org, 25);
    org.sim.state.org.write().api_delete(Some("Account"), &ids[3]).unwrap();
    let job = create_job(&org, "Account", Some("chunkSize=10")).await;
    let original = add_batch(&org, &job, "SELECT Id, Name FROM Account").await;
    let list = settled_batches(&org, &job).await;
    let batch_ids = all(&list, "id");
    let states = all(&list, "state");
    assert_eq!(batch_ids.len(), 4, "{list}");
    assert_eq!(batch_ids[0], original);
    assert_eq!(states, ["NotProcessed", "Completed", "Completed", "Completed"]);
    let mut seen = Vec::new();
    for chunk in &batch_ids[1..] {
        let got = batch_ids_from_results(&org, &job, chunk).await;
        assert!(got.len() <= 10);
        seen.extend(got);
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no duplicates");
    let live: HashSet<&String> = ids.iter().filter(|i| **i != ids[3]).collect();
    assert_eq!(unique, live, "all rows, deleted one excluded");
    let request = get(&org, &format!("/job/{job}/batch/{}/request", batch_ids[2])).send().await.unwrap().text().await.unwrap();
    assert!(request.starts_with("SELECT Id, Name FROM Account WHERE Id >= '001"), "{request}");
    assert!(request.contains("AND Id < '001"), "{request}");

    // Default chunking (100,000) makes one chunk here; oversized chunks are refused.
    let job = create_job(&org, "Account", Some("true")).await;
    add_batch(&org, &job, "SELECT Id, Name FROM Account").await;
    assert_eq!(all(&settled_batches(&org, &job).await, "state"), ["NotProcessed", "Completed"]);
    let body = format!(
        "<jobInfo xmlns=\"{NS}\"><operation>query</operation><object>Account</object><contentType>CSV</contentType></jobInfo>"
    );
    let resp = post_xml(&org, "/job", body).header("Sforce-Enable-PKChunking", "chunkSize=250001").send().await.unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn compound_fields_fail_the_batch_as_salesforce_reports_it() {
    let org = TestOrg::start_empty().await;
    {
        let mut o = org.sim.state.org.write();
        let mut site = ObjectDef::new("Site__c", "Site", "Sites", "a05");
        site.add_system_fields();
        site.add_field(FieldDef::new("Where__c", FieldType::Location).compound(&["Where__Latitude__s"]));
        site.add_field(FieldDef::new("Where__Latitude__s", FieldType::Double).component_of("Where__c"));
        o.add_object(site);
    }
    let job = create_job(&org, "Site__c", None).await;
    let batch = add_batch(&org, &job, "SELECT Id, Where__c FROM Site__c").await;
    let list = settled_batches(&org, &job).await;
    assert_eq!(all(&list, "state"), ["Failed"]);
    assert_eq!(
        one(&list, "stateMessage"),
        "InvalidBatch : Failed to process query: FUNCTIONALITY_NOT_ENABLED: Selecting compound data not supported in Bulk Query"
    );
    let resp = get(&org, &format!("/job/{job}/batch/{batch}/result")).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(one(&resp.text().await.unwrap(), "exceptionCode"), "InvalidBatch");
}

#[tokio::test]
async fn sessions_and_errors_are_bulk_xml() {
    let org = TestOrg::start_empty().await;
    let resp = org
        .http
        .post(async_url(&org, "/job"))
        .header("X-SFDC-Session", "00Dbogus!session")
        .header("Content-Type", "application/xml")
        .body("<jobInfo/>")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let text = resp.text().await.unwrap();
    assert!(text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?><error"), "{text}");
    assert!(text.contains(&format!("xmlns=\"{NS}\"")));
    assert_eq!(one(&text, "exceptionCode"), "InvalidSessionId");
    assert_eq!(one(&text, "exceptionMessage"), "Invalid session id");

    let resp = post_xml(&org, "/job", "<jobInfo><operation>query</operation><object>Nope__c</object></jobInfo>".to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let text = resp.text().await.unwrap();
    assert_eq!(one(&text, "exceptionCode"), "InvalidJob");
    assert_eq!(one(&text, "exceptionMessage"), "Unable to find object: Nope__c");
    let resp = post_xml(&org, "/job", "<jobInfo><operation>query".to_owned()).send().await.unwrap();
    assert_eq!(one(&resp.text().await.unwrap(), "exceptionCode"), "InvalidXML");
    let resp = get(&org, "/job/750Dn0000000000AAA").send().await.unwrap();
    assert_eq!(one(&resp.text().await.unwrap(), "exceptionCode"), "InvalidJob");
    // Bulk 1.0 calls count toward the daily allocation.
    let (used, _) = org.sim.state.usage.snapshot(org.sim.state.now_millis());
    assert!(used >= 3, "{used}");
}

#[tokio::test]
async fn json_jobs_answer_in_json() {
    let org = TestOrg::start_empty().await;
    let ids = seed(&org, 2);
    let resp = org
        .http
        .post(async_url(&org, "/job"))
        .header("X-SFDC-Session", &org.token)
        .header("Content-Type", "application/json")
        .json(&json!({"operation": "queryAll", "object": "Account", "contentType": "JSON"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let job: J = resp.json().await.unwrap();
    assert_eq!(job["apiVersion"], json!(66.0));
    assert_eq!(job["operation"], "queryAll");
    let job_id = job["id"].as_str().unwrap().to_owned();
    let resp = org
        .http
        .post(async_url(&org, &format!("/job/{job_id}/batch")))
        .header("X-SFDC-Session", &org.token)
        .header("Content-Type", "application/json")
        .body("SELECT Id, Name FROM Account")
        .send()
        .await
        .unwrap();
    let batch: J = resp.json().await.unwrap();
    let batch_id = batch["id"].as_str().unwrap().to_owned();
    let mut state = String::new();
    for _ in 0..2000 {
        let info: J = get(&org, &format!("/job/{job_id}/batch/{batch_id}")).send_json().await;
        state = info["state"].as_str().unwrap().to_owned();
        if state != "Queued" && state != "InProgress" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    assert_eq!(state, "Completed");
    let results: J = get(&org, &format!("/job/{job_id}/batch/{batch_id}/result")).send_json().await;
    let result_id = results[0].as_str().unwrap();
    let records: J = get(&org, &format!("/job/{job_id}/batch/{batch_id}/result/{result_id}")).send_json().await;
    let got: HashSet<&str> = records.as_array().unwrap().iter().map(|r| r["Id"].as_str().unwrap()).collect();
    assert_eq!(got, ids.iter().map(String::as_str).collect());
    assert_eq!(records[0]["attributes"]["type"], "Account");
}

#[tokio::test]
async fn xml_job_results_are_xml_records_with_zulu_datetimes() {
    let mut org = TestOrg::start_empty().await;
    org.advance_clock(chrono::Duration::milliseconds(1500));
    let ids = seed(&org, 2);
    let body = format!(
        "<jobInfo xmlns=\"{NS}\"><operation>query</operation><object>Account</object><contentType>XML</contentType></jobInfo>"
    );
    let job = one(&post_xml(&org, "/job", body).send().await.unwrap().text().await.unwrap(), "id");
    let batch = add_batch(&org, &job, "SELECT Id, Name, CreatedDate FROM Account").await;
    assert_eq!(all(&settled_batches(&org, &job).await, "state"), ["Completed"]);
    let list = get(&org, &format!("/job/{job}/batch/{batch}/result")).send().await.unwrap().text().await.unwrap();
    let result = one(&list, "result");
    let resp = get(&org, &format!("/job/{job}/batch/{batch}/result/{result}")).send().await.unwrap();
    assert_eq!(resp.headers()["content-type"], "application/xml");
    let text = resp.text().await.unwrap();
    assert!(text.contains("<records xsi:type=\"sObject\"><type>Account</type>"), "{text}");
    assert_eq!(all(&text, "Id").iter().collect::<HashSet<_>>(), ids.iter().collect::<HashSet<_>>());
    // Stamped to the whole second, written as Bulk API 1.0 XML writes datetimes.
    assert_eq!(all(&text, "CreatedDate"), ["2025-01-06T09:00:01.000Z"; 2]);
}
