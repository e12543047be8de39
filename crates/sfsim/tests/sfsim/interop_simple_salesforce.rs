//! A third-party client against the simulator: Python's simple-salesforce, over HTTPS with the
//! generated certificate trusted and a session from the simulator's OAuth endpoint. It
//! describes, pages through a query, runs queryAll, upserts through sObject Collections and runs
//! a Bulk API 2.0 query; everything it saw is compared with the org's truth dump.
//!
//! Needs `python3` and PyPI: the venv is created by `scripts/python-venv.sh` on first use.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;

use serde_json::{Value as J, json};
use tidemark_sfsim::{SimConfig, SimServer};

fn python() -> PathBuf {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/python-venv.sh");
    let out = std::process::Command::new("bash").arg(script).output().expect("runs the venv script");
    assert!(out.status.success(), "venv set-up failed:\n{}", String::from_utf8_lossy(&out.stderr));
    PathBuf::from(String::from_utf8(out.stdout).expect("utf-8").trim())
}

/// The truth dump's current records of `object`, by id.
async fn truth_records(http: &reqwest::Client, base: &str, object: &str) -> BTreeMap<String, J> {
    let body = http
        .get(format!("{base}/__admin/truth"))
        .query(&[("object", object)])
        .send()
        .await
        .expect("truth dump")
        .text()
        .await
        .expect("NDJSON");
    body.lines()
        .map(|l| serde_json::from_str::<J>(l).expect("NDJSON line"))
        .filter(|l| l["type"] == "record")
        .map(|l| (l["id"].as_str().expect("id").to_owned(), l))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_salesforce_sees_exactly_the_org() {
    let python = python();
    let dir = tempfile::tempdir().expect("temp dir");
    let sim = SimServer::new(SimConfig { accounts: 450, ..SimConfig::default() })
        .with_tls(dir.path())
        .start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("simulator starts");
    let ca = std::fs::read(sim.credentials.certificate_path.as_ref().expect("CA path")).expect("CA");
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("PEM"))
        .build()
        .expect("client");

    // Soft-delete a few accounts so queryAll has something to find.
    let (deleted, existing_invoice, an_account) = {
        let mut org = sim.state.org.write();
        let accounts = org.table("Account").expect("Account");
        let ids: Vec<_> = accounts.rows().iter().filter(|r| !accounts.is_deleted(r)).map(|r| accounts.id_of(r)).take(3).collect();
        let invoices = org.table("Invoice__c").expect("Invoice__c");
        let slot = invoices.def.slot("Invoice_Number__c");
        let existing = invoices
            .rows()
            .iter()
            .filter(|r| !invoices.is_deleted(r))
            .find_map(|r| r.get(slot).as_str().map(str::to_owned))
            .expect("generated invoices have numbers");
        for id in &ids {
            org.api_delete(Some("Account"), id.as_str()).expect("delete");
        }
        let keep = org
            .table("Account")
            .and_then(|t| t.rows().iter().find(|r| !t.is_deleted(r)).map(|r| t.id_of(r)))
            .expect("a live account");
        (ids, existing, keep)
    };

    let creds_path = dir.path().join("creds.json");
    let plan_path = dir.path().join("plan.json");
    let out_path = dir.path().join("out.json");
    std::fs::write(&creds_path, serde_json::to_vec(&sim.credentials).expect("JSON")).expect("write creds");
    let upsert_records = json!([
        {"attributes": {"type": "Invoice__c"}, "Invoice_Number__c": existing_invoice, "Amount__c": 1234.5},
        {"attributes": {"type": "Invoice__c"}, "Invoice_Number__c": "INTEROP-1", "Amount__c": 10.0, "Account__c": an_account.as_str()},
        {"attributes": {"type": "Invoice__c"}, "Invoice_Number__c": "INTEROP-2", "Amount__c": 20.0, "Account__c": an_account.as_str()},
    ]);
    let plan = json!({
        "version": "59.0",
        "paged_query": "SELECT Id, Name FROM Account",
        "deleted_query": "SELECT Id FROM Account WHERE IsDeleted = true",
        "bulk_query": "SELECT Id, Name FROM Account",
        "bulk_page": 200,
        "upsert": {"object": "Invoice__c", "external_id_field": "Invoice_Number__c", "records": upsert_records},
    });
    std::fs::write(&plan_path, serde_json::to_vec(&plan).expect("JSON")).expect("write plan");

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/python/simple_salesforce_interop.py");
    let run = tokio::process::Command::new(&python)
        .arg(script)
        .arg(&creds_path)
        .arg(&plan_path)
        .arg(&out_path)
        .output()
        .await
        .expect("python runs");
    assert!(
        run.status.success(),
        "simple-salesforce run failed:\n{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    let out: J = serde_json::from_slice(&std::fs::read(&out_path).expect("output")).expect("output JSON");

    let base = sim.base_url().to_owned();
    let accounts = truth_records(&http, &base, "Account").await;
    let live: BTreeSet<String> =
        accounts.values().filter(|r| r["deleted"] == false).map(|r| r["id"].as_str().unwrap().to_owned()).collect();
    let dead: BTreeSet<String> =
        accounts.values().filter(|r| r["deleted"] == true).map(|r| r["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(dead, deleted.iter().map(|i| i.to_string()).collect());

    // describe
    let org_objects: BTreeSet<String> = sim.state.org.read().tables().iter().map(|t| t.def.name.clone()).collect();
    let seen_objects: BTreeSet<String> =
        out["global_objects"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
    assert_eq!(seen_objects, org_objects);
    let account_fields = out["account_fields"].as_object().unwrap();
    assert_eq!(account_fields["Name"], "string");
    assert_eq!(account_fields["BillingAddress"], "address");

    // paged query: every live account exactly once, in pages of at most 200
    let paged: Vec<String> = out["paged"]["ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
    assert_eq!(paged.len(), live.len(), "no duplicates, nothing missing");
    assert_eq!(paged.iter().cloned().collect::<BTreeSet<_>>(), live);
    assert_eq!(out["paged"]["total_size"].as_u64().unwrap() as usize, live.len());
    assert_eq!(out["paged"]["pages"].as_u64().unwrap() as usize, live.len().div_ceil(200));

    // queryAll
    let seen_deleted: BTreeSet<String> =
        out["query_all_deleted_ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
    assert_eq!(seen_deleted, dead);

    // Collections upsert: one update, two creates, and the org has them
    let results = out["upsert_results"].as_array().unwrap();
    assert_eq!(
        results.iter().map(|r| (r["success"].clone(), r["created"].clone())).collect::<Vec<_>>(),
        vec![(json!(true), json!(false)), (json!(true), json!(true)), (json!(true), json!(true)),]
    );
    let invoices = truth_records(&http, &base, "Invoice__c").await;
    for (result, amount) in results.iter().zip([1234.5, 10.0, 20.0]) {
        let record = &invoices[result["id"].as_str().unwrap()];
        assert_eq!(record["fields"]["Amount__c"].as_f64(), Some(amount));
    }

    // Bulk 2.0 query: the same live accounts with their names
    let bulk: BTreeMap<String, String> = out["bulk_rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["Id"].as_str().unwrap().to_owned(), r["Name"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(bulk.len(), out["bulk_rows"].as_array().unwrap().len(), "no duplicate rows across result pages");
    let truth_names: BTreeMap<String, String> = accounts
        .values()
        .filter(|r| r["deleted"] == false)
        .map(|r| (r["id"].as_str().unwrap().to_owned(), r["fields"]["Name"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(bulk, truth_names);
}
