//! Bulk API 1.0 as third-party clients drive it, request by request: Singer's tap-salesforce in
//! BULK mode (a CSV job driven with `Content-Type: application/json` on every call, answers
//! parsed as XML and CSV), dlt's Salesforce source through simple-salesforce (a JSON job whose
//! datetimes it reads as epoch milliseconds), and the `DailyBulkApiBatches` allocation both
//! kinds of client watch in `/limits`.

use std::collections::{BTreeMap, BTreeSet};

use crate::common::{SendJson, TestOrg};
use chrono::{DateTime, Duration};
use quick_xml::events::Event;
use serde_json::{Value as J, json};
use tidemark_core::SfId;
use tidemark_sfsim::org::write::Input;
use tidemark_sfsim::value::{format_datetime_rest, parse_datetime};

fn async_url(org: &TestOrg, path: &str) -> String {
    org.url(&format!("/services/async/61.0{path}"))
}

/// tap-salesforce's `_get_bulk_headers()`: the session and `Content-Type: application/json`, on
/// every Bulk call whatever the job's content type.
fn tap(org: &TestOrg, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
    org.http.request(method, async_url(org, path)).header("X-SFDC-Session", &org.token).header("Content-Type", "application/json")
}

/// An XML element as xmltodict sees it: its name, its text and its child elements.
#[derive(Debug, Default)]
struct Node {
    name: String,
    text: String,
    children: Vec<Node>,
}

impl Node {
    fn child(&self, name: &str) -> &Node {
        self.children.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("<{name}> in {self:?}"))
    }

    fn text_of(&self, name: &str) -> &str {
        &self.child(name).text
    }

    /// xmltodict's `force_list`: every child called `name`.
    fn list(&self, name: &str) -> Vec<&Node> {
        self.children.iter().filter(|c| c.name == name).collect()
    }
}

/// Parses a whole XML document strictly and returns its root element, as `xmltodict.parse` does.
fn parse_xml(text: &str) -> Node {
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().trim_text(true);
    let name = |raw: &[u8]| String::from_utf8(raw.to_vec()).expect("UTF-8 name");
    let mut stack = vec![Node::default()];
    loop {
        match reader.read_event().unwrap_or_else(|e| panic!("well-formed XML ({e}): {text}")) {
            Event::Start(e) => stack.push(Node { name: name(e.local_name().as_ref()), ..Node::default() }),
            Event::Empty(e) => {
                let node = Node { name: name(e.local_name().as_ref()), ..Node::default() };
                stack.last_mut().expect("open element").children.push(node);
            }
            Event::Text(t) => stack.last_mut().expect("open element").text.push_str(&t.unescape().expect("escaped text")),
            Event::End(_) => {
                let node = stack.pop().expect("balanced");
                stack.last_mut().expect("balanced").children.push(node);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let mut document = stack.pop().expect("document");
    assert!(stack.is_empty() && document.children.len() == 1, "one root element: {text}");
    document.children.pop().expect("root")
}

/// Python's `csv.reader` over a whole body, then `dict(zip(header, line))` per line.
fn parse_csv(text: &str) -> Vec<BTreeMap<String, String>> {
    let (mut rows, mut row, mut field) = (Vec::new(), Vec::new(), String::new());
    let (mut quoted, mut chars) = (false, text.chars().peekable());
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, '\r') => {}
            (false, c) => field.push(c),
        }
    }
    assert!(field.is_empty() && row.is_empty() && !quoted, "the body ends with a complete line");
    let mut lines = rows.into_iter();
    let header = lines.next().expect("a header line");
    lines.map(|line| header.iter().cloned().zip(line).collect()).collect()
}

fn content_type(resp: &reqwest::Response) -> String {
    resp.headers()[reqwest::header::CONTENT_TYPE].to_str().unwrap().to_owned()
}

async fn bulk_batches_remaining(org: &TestOrg) -> u64 {
    let limits: J = org.get("/limits").send_json().await;
    assert_eq!(limits["DailyBulkApiBatches"]["Max"], 15_000);
    limits["DailyBulkApiBatches"]["Remaining"].as_u64().expect("Remaining")
}

/// Creates Accounts one second and a quarter apart (distinct whole-second stamps).
fn seed_accounts(org: &mut TestOrg, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        org.advance_clock(Duration::milliseconds(1250));
        let mut o = org.sim.state.org.write();
        ids.push(o.api_create("Account", &[("Name", Input::Text(&format!("Tap \"{i}\", Inc.")))]).unwrap().as_str().to_owned());
    }
    ids
}

fn stored_millis(org: &TestOrg, id: &str, field: &str) -> i64 {
    let o = org.sim.state.org.read();
    let (table, row) = o.find(&SfId::parse(id).expect("id")).expect("record");
    row.get(table.def.slot(field)).as_datetime_millis().expect("datetime")
}

#[tokio::test]
async fn tap_salesforce_bulk_mode_reads_xml_and_csv_from_a_csv_job_it_drives_in_json() {
    let mut org = TestOrg::start_empty().await;
    let ids = seed_accounts(&mut org, 4);
    org.sim.state.org.write().api_delete(Some("Account"), &ids[1]).unwrap();
    let quota_before = bulk_batches_remaining(&org).await;

    // _create_job: the JSON body makes the job info JSON (the job is not known yet).
    let resp = tap(&org, reqwest::Method::POST, "/job")
        .header("Sforce-Disable-Batch-Retry", "true")
        .body(json!({"operation": "queryAll", "object": "Account", "contentType": "CSV"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(content_type(&resp), "application/json");
    let job: J = resp.json().await.unwrap();
    assert_eq!((job["contentType"].as_str(), job["state"].as_str()), (Some("CSV"), Some("Open")));
    let job = job["id"].as_str().unwrap().to_owned();

    // _add_batch: the SOQL as the body; the answer is XML because the job is a CSV job.
    let soql = "SELECT Id,Name,IsDeleted,SystemModstamp FROM Account WHERE SystemModstamp >= 2025-01-01T00:00:00Z ORDER BY SystemModstamp ASC";
    let resp = tap(&org, reqwest::Method::POST, &format!("/job/{job}/batch")).body(soql).send().await.unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(content_type(&resp), "application/xml");
    let batch_info = parse_xml(&resp.text().await.unwrap());
    assert_eq!(batch_info.name, "batchInfo");
    assert_eq!(batch_info.text_of("jobId"), job);
    let batch = batch_info.text_of("id").to_owned();

    // _close_job: a JSON body for a CSV job is read as JSON; the answer is the job's XML.
    let resp = tap(&org, reqwest::Method::POST, &format!("/job/{job}")).body(r#"{"state": "Closed"}"#).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(parse_xml(&resp.text().await.unwrap()).text_of("state"), "Closed");

    // _poll_on_batch_status
    let mut state = String::new();
    for _ in 0..2000 {
        let resp = tap(&org, reqwest::Method::GET, &format!("/job/{job}/batch/{batch}")).send().await.unwrap();
        assert_eq!(content_type(&resp), "application/xml");
        state = parse_xml(&resp.text().await.unwrap()).text_of("state").to_owned();
        if ["Completed", "Failed", "Not Processed"].contains(&state.as_str()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    assert_eq!(state, "Completed");

    // _get_batches (the PK-chunking path reads the same list)
    let resp = tap(&org, reqwest::Method::GET, &format!("/job/{job}/batch")).send().await.unwrap();
    let list = parse_xml(&resp.text().await.unwrap());
    assert_eq!(list.name, "batchInfoList");
    assert_eq!(list.list("batchInfo").iter().map(|b| b.text_of("id")).collect::<Vec<_>>(), [batch.as_str()]);

    // get_batch_results: an XML result list, then each result as CSV.
    let resp = tap(&org, reqwest::Method::GET, &format!("/job/{job}/batch/{batch}/result")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(content_type(&resp), "application/xml");
    let result_list = parse_xml(&resp.text().await.unwrap());
    assert_eq!(result_list.name, "result-list");
    let mut records = Vec::new();
    for result in result_list.list("result") {
        let path = format!("/job/{job}/batch/{batch}/result/{}", result.text);
        let resp = tap(&org, reqwest::Method::GET, &path).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(content_type(&resp), "text/csv");
        records.extend(parse_csv(&resp.text().await.unwrap()));
    }
    assert_eq!(records.iter().map(|r| r["Id"].clone()).collect::<BTreeSet<_>>(), ids.iter().cloned().collect());
    let stamps: Vec<i64> = records.iter().map(|r| parse_datetime(&r["SystemModstamp"]).expect("datetime")).collect();
    assert!(stamps.is_sorted(), "ORDER BY SystemModstamp ASC");
    for r in &records {
        assert_eq!(parse_datetime(&r["SystemModstamp"]), Some(stored_millis(&org, &r["Id"], "SystemModstamp")), "{r:?}");
        assert_eq!(r["IsDeleted"], if r["Id"] == ids[1] { "true" } else { "false" }, "queryAll: {r:?}");
    }
    assert!(records.iter().any(|r| r["Name"] == "Tap \"2\", Inc."), "quotes and commas survive: {records:?}");

    // job_exists: an unknown job answers JSON to a JSON request, and the tap checks exactly that.
    let resp = tap(&org, reqwest::Method::GET, "/job/750Dn0000000000AAA").send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(content_type(&resp), "application/json");
    assert_eq!(resp.json::<J>().await.unwrap()["exceptionCode"], "InvalidJob");
    let resp = tap(&org, reqwest::Method::GET, &format!("/job/{job}")).send().await.unwrap();
    assert_eq!((resp.status().as_u16(), content_type(&resp)), (200, "application/xml".to_owned()));

    // check_bulk_quota_usage sees the one batch it spent.
    assert_eq!(bulk_batches_remaining(&org).await, quota_before - 1);
}

/// simple-salesforce's Bulk 1.0 handler: JSON jobs, every call `Content-Type: application/json`.
fn simple_salesforce(org: &TestOrg, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
    tap(org, method, path)
}

async fn settled_json_batch(org: &TestOrg, job: &str, batch: &str) -> J {
    for _ in 0..2000 {
        let info: J = simple_salesforce(org, reqwest::Method::GET, &format!("/job/{job}/batch/{batch}")).send_json().await;
        if !matches!(info["state"].as_str(), Some("Queued" | "InProgress")) {
            return info;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    panic!("batch {batch} did not settle");
}

/// dlt's `_process_record` for the Bulk API: `pendulum.from_timestamp(value / 1000)`.
fn from_bulk_timestamp(value: &J) -> DateTime<chrono::Utc> {
    let seconds = value.as_f64().unwrap_or_else(|| panic!("a number of milliseconds, got {value}")) / 1000.0;
    let nanos = ((seconds - seconds.floor()) * 1e9).round() as u32;
    DateTime::from_timestamp(seconds.floor() as i64, nanos).expect("in range")
}

#[tokio::test]
async fn json_job_results_carry_dates_and_datetimes_as_epoch_milliseconds() {
    let mut org = TestOrg::start_empty().await;
    let accounts = seed_accounts(&mut org, 2);
    let invoices: Vec<String> = {
        let mut o = org.sim.state.org.write();
        let paid = [Some("2024-03-01T10:20:30.000Z"), None];
        accounts
            .iter()
            .zip(paid)
            .enumerate()
            .map(|(i, (account, paid))| {
                let number = format!("INV-{i}");
                let mut inputs = vec![
                    ("Invoice_Number__c", Input::Text(&number)),
                    ("Account__c", Input::Text(account)),
                    ("Invoice_Date__c", Input::Text("2024-02-29")),
                ];
                inputs.extend(paid.map(|p| ("Paid_At__c", Input::Text(p))));
                o.api_create("Invoice__c", &inputs).unwrap().as_str().to_owned()
            })
            .collect()
    };
    org.advance_clock(Duration::milliseconds(2600));
    let touched = &invoices[0];
    org.sim.state.org.write().api_update(Some("Invoice__c"), touched, &[("Amount__c", Input::Text("10"))]).unwrap();

    let job: J = simple_salesforce(&org, reqwest::Method::POST, "/job")
        .body(json!({"operation": "queryAll", "object": "Invoice__c", "contentType": "JSON"}).to_string())
        .send_json()
        .await;
    let job = job["id"].as_str().expect("job id").to_owned();
    let soql = "SELECT Id, Invoice_Date__c, Paid_At__c, CreatedDate, SystemModstamp, Account__r.SystemModstamp FROM Invoice__c";
    let batch: J = simple_salesforce(&org, reqwest::Method::POST, &format!("/job/{job}/batch")).body(soql).send_json().await;
    let batch = batch["id"].as_str().expect("batch id").to_owned();
    assert_eq!(settled_json_batch(&org, &job, &batch).await["state"], "Completed");
    // A JSON job answers JSON even to a request that names XML.
    let resp = org
        .http
        .get(async_url(&org, &format!("/job/{job}/batch/{batch}")))
        .header("X-SFDC-Session", &org.token)
        .header("Content-Type", "application/xml")
        .send()
        .await
        .unwrap();
    assert_eq!(content_type(&resp), "application/json");
    let results: Vec<String> =
        simple_salesforce(&org, reqwest::Method::GET, &format!("/job/{job}/batch/{batch}/result")).send_json().await;
    let mut records: Vec<J> = Vec::new();
    for result in results {
        let path = format!("/job/{job}/batch/{batch}/result/{result}");
        let page: Vec<J> = simple_salesforce(&org, reqwest::Method::GET, &path).send_json().await;
        records.extend(page);
    }
    assert_eq!(records.len(), 2);

    for record in &records {
        let id = record["Id"].as_str().expect("Id");
        for field in ["CreatedDate", "SystemModstamp"] {
            let seen = from_bulk_timestamp(&record[field]);
            assert_eq!(seen.timestamp_millis(), stored_millis(&org, id, field), "{field} of {record}");
            // What the REST API says of the same record, for the same instant.
            let rest: J = org.get(&format!("/sobjects/Invoice__c/{id}?fields={field}")).send_json().await;
            assert_eq!(rest[field], format_datetime_rest(seen.timestamp_millis()));
        }
        let parent = &record["Account__r"];
        let account = parent["attributes"]["url"].as_str().expect("parent url").rsplit('/').next().unwrap();
        assert_eq!(
            from_bulk_timestamp(&parent["SystemModstamp"]).timestamp_millis(),
            stored_millis(&org, account, "SystemModstamp")
        );
        assert_eq!(from_bulk_timestamp(&record["Invoice_Date__c"]).to_rfc3339(), "2024-02-29T00:00:00+00:00", "midnight UTC");
    }
    let by_id: BTreeMap<&str, &J> = records.iter().map(|r| (r["Id"].as_str().unwrap(), r)).collect();
    assert_eq!(from_bulk_timestamp(&by_id[touched.as_str()]["Paid_At__c"]).to_rfc3339(), "2024-03-01T10:20:30+00:00");
    assert_eq!(by_id[invoices[1].as_str()]["Paid_At__c"], J::Null, "nulls stay null");
    let touched_record = by_id[touched.as_str()];
    assert!(touched_record["SystemModstamp"].as_i64() > touched_record["CreatedDate"].as_i64(), "the update moved the stamp");
}

/// The Bulk 1.0 batch list of a job as the clients read it: `(id, state)` per batch.
async fn batch_states(org: &TestOrg, job: &str) -> Vec<(String, String)> {
    for _ in 0..2000 {
        let text = tap(org, reqwest::Method::GET, &format!("/job/{job}/batch")).send().await.unwrap().text().await.unwrap();
        let list = parse_xml(&text);
        let batches: Vec<(String, String)> =
            list.list("batchInfo").iter().map(|b| (b.text_of("id").to_owned(), b.text_of("state").to_owned())).collect();
        if !batches.is_empty() && batches.iter().all(|(_, s)| s != "Queued" && s != "InProgress") {
            return batches;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    panic!("batches of {job} did not settle");
}

#[tokio::test]
async fn daily_bulk_api_batches_count_bulk_1_batches_and_bulk_2_ingest_only() {
    let mut org = TestOrg::start_empty().await;
    seed_accounts(&mut org, 25);
    assert_eq!(bulk_batches_remaining(&org).await, 15_000);

    // Two batches of a plain job.
    let job: J = tap(&org, reqwest::Method::POST, "/job")
        .body(json!({"operation": "query", "object": "Account", "contentType": "CSV"}).to_string())
        .send_json()
        .await;
    let job = job["id"].as_str().unwrap().to_owned();
    for soql in ["SELECT Id FROM Account", "SELECT Name FROM Account"] {
        let resp = tap(&org, reqwest::Method::POST, &format!("/job/{job}/batch")).body(soql).send().await.unwrap();
        assert_eq!(resp.status(), 201);
    }
    assert_eq!(bulk_batches_remaining(&org).await, 14_998);

    // PK chunking as tap-salesforce asks for it: the submitted batch and each of its 3 chunks.
    let job: J = tap(&org, reqwest::Method::POST, "/job")
        .header("Sforce-Enable-PKChunking", "true; chunkSize=10")
        .body(json!({"operation": "queryAll", "object": "Account", "contentType": "CSV"}).to_string())
        .send_json()
        .await;
    let job = job["id"].as_str().unwrap().to_owned();
    tap(&org, reqwest::Method::POST, &format!("/job/{job}/batch")).body("SELECT Id FROM Account").send().await.unwrap();
    let states: Vec<String> = batch_states(&org, &job).await.into_iter().map(|(_, s)| s).collect();
    assert_eq!(states, ["NotProcessed", "Completed", "Completed", "Completed"]);
    assert_eq!(bulk_batches_remaining(&org).await, 14_994);

    // A Bulk 2.0 query job spends none.
    let query: J =
        org.post("/jobs/query").json(&json!({"operation": "query", "query": "SELECT Id FROM Account"})).send_json().await;
    let query_id = query["id"].as_str().unwrap().to_owned();
    for _ in 0..2000 {
        let info: J = org.get(&format!("/jobs/query/{query_id}")).send_json().await;
        if info["state"] == "JobComplete" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    assert_eq!(bulk_batches_remaining(&org).await, 14_994);

    // A Bulk 2.0 ingest job of three records is one internal batch.
    let ingest: J = org.post("/jobs/ingest").json(&json!({"object": "Account", "operation": "insert"})).send_json().await;
    let ingest_id = ingest["id"].as_str().unwrap().to_owned();
    let put = org.put(&format!("/jobs/ingest/{ingest_id}/batches")).header("Content-Type", "text/csv").body("Name\nA\nB\nC\n");
    assert_eq!(put.send().await.unwrap().status(), 201);
    let _: J = org.patch(&format!("/jobs/ingest/{ingest_id}")).json(&json!({"state": "UploadComplete"})).send_json().await;
    let mut state = J::Null;
    for _ in 0..2000 {
        let info: J = org.get(&format!("/jobs/ingest/{ingest_id}")).send_json().await;
        state = info["state"].clone();
        if state == "JobComplete" || state == "Failed" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    assert_eq!(state, "JobComplete");
    assert_eq!(bulk_batches_remaining(&org).await, 14_993);

    // The allocation is a rolling 24 hours.
    org.advance_clock(Duration::hours(24));
    assert_eq!(bulk_batches_remaining(&org).await, 15_000);
}
