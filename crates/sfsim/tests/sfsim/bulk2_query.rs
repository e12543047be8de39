//! Bulk API 2.0 query jobs over real HTTP: lifecycle, result paging, gzip, version checks, state
//! rules and their error bodies, job list paging, queryAll.

use std::collections::HashSet;
use std::io::Read;

use crate::common::{SendJson, TestOrg, corpus, corpus_json};
use serde_json::{Value as J, json};
use tidemark_core::FieldType;
use tidemark_sfsim::faults::FaultConfig;
use tidemark_sfsim::org::write::Input;
use tidemark_sfsim::schema::{FieldDef, ObjectDef};

fn seed_accounts(org: &TestOrg, n: usize) -> Vec<String> {
    let mut o = org.sim.state.org.write();
    (0..n)
        .map(|i| {
            let name = format!("Account \"{i}\", Ltd");
            o.api_create("Account", &[("Name", Input::Text(&name))]).expect("seeded").as_str().to_owned()
        })
        .collect()
}

fn keys(v: &J) -> Vec<String> {
    v.as_object().expect("object").keys().cloned().collect()
}

async fn create(org: &TestOrg, body: J) -> J {
    let resp = org.post("/jobs/query").json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 200, "create query job");
    resp.json().await.unwrap()
}

/// Polls the job until it reaches a terminal state.
async fn wait_done(org: &TestOrg, id: &str) -> J {
    for _ in 0..2000 {
        let info = org.get_json(&format!("/jobs/query/{id}"), 200).await;
        if matches!(info["state"].as_str(), Some("JobComplete" | "Failed" | "Aborted")) {
            return info;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    panic!("job {id} did not finish");
}

/// Parses a result page: header plus `(Id, Name)` rows, undoing the quoting.
fn parse_rows(csv: &str) -> (String, Vec<(String, String)>) {
    let mut lines = csv.lines();
    let header = lines.next().unwrap_or("").to_owned();
    let rows = lines
        .map(|l| {
            let inner = l.strip_prefix('"').and_then(|l| l.strip_suffix('"')).expect("quoted");
            let (id, name) = inner.split_once("\",\"").expect("two columns");
            (id.to_owned(), name.replace("\"\"", "\""))
        })
        .collect();
    (header, rows)
}

#[tokio::test]
async fn full_lifecycle_with_paged_results_until_the_null_locator() {
    let org = TestOrg::start_empty().await;
    let ids = seed_accounts(&org, 25);
    let created = create(&org, json!({"operation": "query", "query": "SELECT Id, Name FROM Account"})).await;
    assert_eq!(keys(&created), keys(&corpus_json("bulk2-query-create-response.json")));
    assert_eq!(created["state"], "UploadComplete");
    assert_eq!(created["apiVersion"], json!(66.0));
    assert!(created["id"].as_str().unwrap().starts_with("750"));
    let id = created["id"].as_str().unwrap().to_owned();

    let info = wait_done(&org, &id).await;
    assert_eq!(keys(&info), keys(&corpus_json("bulk2-query-job-complete.json")));
    assert_eq!(info["state"], "JobComplete");
    assert_eq!(info["jobType"], "V2Query");
    assert_eq!(info["numberRecordsProcessed"], 25);
    assert_eq!(info["isPkChunkingSupported"], true);

    let mut seen = Vec::new();
    let mut locator: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &locator {
            Some(l) => format!("/jobs/query/{id}/results?locator={l}&maxRecords=10"),
            None => format!("/jobs/query/{id}/results?maxRecords=10"),
        };
        let resp = org.get(&path).header("Accept", "text/csv").send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "text/csv");
        let count: usize = resp.headers()["Sforce-NumberOfRecords"].to_str().unwrap().parse().unwrap();
        let next = resp.headers()["Sforce-Locator"].to_str().unwrap().to_owned();
        let (header, rows) = parse_rows(&resp.text().await.unwrap());
        assert_eq!(header, "\"Id\",\"Name\"");
        assert_eq!(rows.len(), count);
        seen.extend(rows);
        pages += 1;
        if next == "null" {
            break;
        }
        assert!(next.bytes().all(|b| b.is_ascii_alphanumeric()), "opaque locator {next}");
        locator = Some(next);
    }
    assert_eq!(pages, 3);
    let got: HashSet<&str> = seen.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(got, ids.iter().map(String::as_str).collect::<HashSet<_>>());
    assert!(seen.iter().any(|(_, n)| n == "Account \"3\", Ltd"), "quotes survive");

    // Locators stay valid: the second page again.
    let again = org.get(&format!("/jobs/query/{id}/results?locator={}&maxRecords=10", locator.unwrap())).send().await.unwrap();
    assert_eq!(again.headers()["Sforce-Locator"], "null");

    let pages_json = org.get_json(&format!("/jobs/query/{id}/resultPages?maxRecords=10"), 200).await;
    assert_eq!(pages_json["resultPages"].as_array().unwrap().len(), 3);
    assert_eq!(pages_json["done"], true);
    let first = pages_json["resultPages"][0]["resultUrl"].as_str().unwrap();
    assert!(first.starts_with(&format!("/services/data/v66.0/jobs/query/{id}/results?locator=")), "{first}");
}

#[tokio::test]
async fn gzip_caret_crlf_and_version_mismatch() {
    let org = TestOrg::start_empty().await;
    seed_accounts(&org, 3);
    let created = create(
        &org,
        json!({"operation": "query", "query": "SELECT Id, Name FROM Account", "columnDelimiter": "CARET", "lineEnding": "CRLF"}),
    )
    .await;
    assert_eq!(created["columnDelimiter"], "CARET");
    let id = created["id"].as_str().unwrap().to_owned();
    wait_done(&org, &id).await;

    let raw = reqwest::Client::builder().no_gzip().build().unwrap();
    let resp = raw
        .get(org.data_url(&format!("/jobs/query/{id}/results")))
        .bearer_auth(&org.token)
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    let bytes = resp.bytes().await.unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&bytes[..]).read_to_string(&mut text).unwrap();
    assert!(text.starts_with("\"Id\"^\"Name\"\r\n"), "{text}");
    assert_eq!(text.matches("\r\n").count(), 4);
    assert!(text.contains("\"Account \"\"0\"\", Ltd\""));

    let resp = org
        .http
        .get(org.url(&format!("/services/data/v60.0/jobs/query/{id}/results")))
        .bearer_auth(&org.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 409);
    let body: J = resp.json().await.unwrap();
    assert!(body[0]["errorCode"].is_string() && body[0]["message"].is_string());
}

#[tokio::test]
async fn abort_and_delete_follow_the_state_rules() {
    let org = TestOrg::start_empty().await;
    seed_accounts(&org, 2);
    org.sim.state.bulk2_query_jobs.gate.set_paused(true);
    let held = create(&org, json!({"operation": "query", "query": "SELECT Id FROM Account"})).await;
    let held_id = held["id"].as_str().unwrap().to_owned();
    let resp = org.delete(&format!("/jobs/query/{held_id}")).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.json::<J>().await.unwrap(), corpus_json("bulk2-query-delete-not-terminated-error.json"));

    let aborted =
        org.patch(&format!("/jobs/query/{held_id}")).json(&corpus_json("bulk2-query-abort-request.json")).send().await.unwrap();
    assert_eq!(aborted.status(), 200);
    let aborted: J = aborted.json().await.unwrap();
    assert_eq!(keys(&aborted), keys(&corpus_json("bulk2-query-job-aborted.json")));
    assert_eq!(aborted["state"], "Aborted");
    org.sim.state.bulk2_query_jobs.gate.set_paused(false);
    let done = create(&org, json!({"operation": "query", "query": "SELECT Id FROM Account"})).await;
    let done_id = done["id"].as_str().unwrap().to_owned();
    wait_done(&org, &done_id).await;
    assert_eq!(org.get_json(&format!("/jobs/query/{held_id}"), 200).await["state"], "Aborted", "abort wins");

    let resp = org.patch(&format!("/jobs/query/{done_id}")).json(&json!({"state": "Aborted"})).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.json::<J>().await.unwrap(), corpus_json("bulk2-query-abort-completed-job-error.json"));

    for id in [&held_id, &done_id] {
        assert_eq!(org.delete(&format!("/jobs/query/{id}")).send().await.unwrap().status(), 204);
        let resp = org.get(&format!("/jobs/query/{id}")).send().await.unwrap();
        assert_eq!(resp.status(), 404);
        assert_eq!(resp.json::<J>().await.unwrap(), corpus_json("bulk2-job-not-found-error.json"));
    }
}

#[tokio::test]
async fn query_all_includes_the_recycle_bin_and_failures_are_reported() {
    let org = TestOrg::start_empty().await;
    let ids = seed_accounts(&org, 3);
    org.sim.state.org.write().api_delete(Some("Account"), &ids[0]).unwrap();
    for (op, expected) in [("query", 2), ("queryAll", 3)] {
        let job = create(&org, json!({"operation": op, "query": "SELECT Id, Name FROM Account"})).await;
        let id = job["id"].as_str().unwrap();
        assert_eq!(wait_done(&org, id).await["numberRecordsProcessed"], expected, "{op}");
        let text = org.get(&format!("/jobs/query/{id}/results")).send().await.unwrap().text().await.unwrap();
        assert_eq!(text.contains(&ids[0]), op == "queryAll");
    }

    org.sim.state.faults.set(FaultConfig { bulk_job_failure_rate: 1.0, ..Default::default() }, 1);
    let job = create(&org, json!({"operation": "query", "query": "SELECT Id FROM Account"})).await;
    let id = job["id"].as_str().unwrap();
    let info = wait_done(&org, id).await;
    assert_eq!(info["state"], "Failed");
    assert!(info["errorMessage"].as_str().unwrap().contains("Retried more than 15 times"));
    assert_eq!(org.get(&format!("/jobs/query/{id}/results")).send().await.unwrap().status(), 400);
}

#[tokio::test]
async fn bulk_refuses_compound_fields_and_unqueryable_objects() {
    let org = TestOrg::start_empty().await;
    {
        let mut o = org.sim.state.org.write();
        let mut site = ObjectDef::new("Site__c", "Site", "Sites", "a05");
        site.add_system_fields();
        site.add_field(FieldDef::new("Name", FieldType::String).required());
        site.add_field(FieldDef::new("Where__c", FieldType::Location).compound(&["Where__Latitude__s", "Where__Longitude__s"]));
        site.add_field(FieldDef::new("Where__Latitude__s", FieldType::Double).component_of("Where__c"));
        site.add_field(FieldDef::new("Where__Longitude__s", FieldType::Double).component_of("Where__c"));
        o.add_object(site);
        let mut feed = ObjectDef::new("Feed__c", "Feed", "Feeds", "a06");
        feed.add_system_fields();
        feed.flags.bulk_queryable = false;
        o.add_object(feed);
    }
    let resp = org
        .post("/jobs/query")
        .json(&json!({"operation": "query", "query": "SELECT Id, Where__c FROM Site__c"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: J = resp.json().await.unwrap();
    assert_eq!(body[0]["errorCode"], "FUNCTIONALITY_NOT_ENABLED");
    assert_eq!(body[0]["message"], "Selecting compound data not supported in Bulk Query");
    let ok = create(&org, json!({"operation": "query", "query": "SELECT Id, Where__Latitude__s FROM Site__c"})).await;
    assert_eq!(ok["object"], "Site__c");

    let resp =
        org.post("/jobs/query").json(&json!({"operation": "query", "query": "SELECT Id FROM Feed__c"})).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.json::<J>().await.unwrap()[0]["errorCode"], "INVALIDENTITY");
    let resp =
        org.post("/jobs/query").json(&json!({"operation": "upsert", "query": "SELECT Id FROM Account"})).send().await.unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn job_list_pages_at_one_thousand_and_limits_count_jobs() {
    let org = TestOrg::start_empty().await;
    org.sim.state.bulk2_query_jobs.gate.set_paused(true);
    for _ in 0..1001 {
        create(&org, json!({"operation": "query", "query": "SELECT Id FROM Account"})).await;
    }
    let first = org.get_json("/jobs/query", 200).await;
    assert_eq!(keys(&first), keys(&corpus_json("bulk2-query-job-list.json")));
    assert_eq!(first["done"], false);
    assert_eq!(first["records"].as_array().unwrap().len(), 1000);
    assert_eq!(keys(&first["records"][0]), keys(&corpus_json("bulk2-query-job-list.json")["records"][0]));
    let next = first["nextRecordsUrl"].as_str().unwrap();
    assert!(next.starts_with("/services/data/v66.0/jobs/query?queryLocator=") && next.ends_with("-1000"), "{next}");
    let second: J = org.http.get(org.url(next)).bearer_auth(&org.token).send_json().await;
    assert_eq!(second["done"], true);
    assert_eq!(second["records"].as_array().unwrap().len(), 1);

    let limits = org.get_json("/limits", 200).await;
    assert_eq!(limits["DailyBulkV2QueryJobs"]["Remaining"], 10_000 - 1001);
    // The documented results sample has the shape our pages have.
    assert!(corpus("bulk2-query-results.csv").starts_with("\"Id\",\"Name\"\n"));
}
