//! `UNABLE_TO_LOCK_ROW` injected through `PUT /__admin/faults`: on chosen records
//! (`lock_row_ids`, optionally clearing after `lock_row_id_failures` attempts) and on a seeded
//! share of rows (`lock_row_rate`), in sObject Collections and Bulk API 2.0 ingest.

use crate::common::TestOrg;
use crate::common::ingest::{result_rows, run_job};
use reqwest::Method;
use serde_json::{Value as J, json};

async fn accounts(org: &TestOrg, n: usize) -> Vec<String> {
    let records: Vec<J> = (0..n).map(|i| json!({"attributes": {"type": "Account"}, "Name": format!("A{i}")})).collect();
    let r: J = org.post("/composite/sobjects").json(&json!({"records": records})).send().await.unwrap().json().await.unwrap();
    r.as_array().unwrap().iter().map(|x| x["id"].as_str().expect("created").to_owned()).collect()
}

async fn update_names(org: &TestOrg, ids: &[String], name: &str) -> J {
    let records: Vec<J> =
        ids.iter().map(|id| json!({"attributes": {"type": "Account"}, "Id": id, "Name": format!("{name}")})).collect();
    let resp = org.patch("/composite/sobjects").json(&json!({"allOrNone": false, "records": records})).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

fn lock_error(id: &str) -> J {
    json!([{"statusCode": "UNABLE_TO_LOCK_ROW", "message": format!("unable to obtain exclusive access to this record or 1 records: {id}"), "fields": []}])
}

#[tokio::test]
async fn chosen_records_fail_with_unable_to_lock_row_until_their_failures_are_served() {
    let org = TestOrg::start_empty().await;
    let ids = accounts(&org, 3).await;
    // 15-character ids are accepted; the record fails its first write only.
    let faults = json!({"lock_row_ids": [&ids[1][..15]], "lock_row_id_failures": 1});
    let set = org.admin_call(Method::PUT, "/faults", Some(faults), 200).await;
    assert_eq!(set["lock_row_ids"], json!([&ids[1][..15]]));

    let r = update_names(&org, &ids, "First").await;
    assert_eq!(r[0]["success"], true);
    assert_eq!(r[1]["errors"], lock_error(&ids[1]));
    assert!(r[1].get("id").is_none(), "a failed row has no id: {r}");
    assert_eq!(r[2]["success"], true);
    // The retry goes through.
    let r = update_names(&org, &ids[1..2], "Retried").await;
    assert_eq!(r[0]["success"], true, "{r}");
    assert_eq!(org.get_json(&format!("/sobjects/Account/{}", ids[1]), 200).await["Name"], "Retried");

    // Without a failure count the record stays locked; children that reference it lock too.
    org.admin_call(Method::PUT, "/faults", Some(json!({"lock_row_ids": [&ids[0]]})), 200).await;
    for _ in 0..2 {
        let r = update_names(&org, &ids[..1], "Never").await;
        assert_eq!(r[0]["errors"], lock_error(&ids[0]));
    }
    let child = json!({"attributes": {"type": "Contact"}, "LastName": "Kid", "AccountId": ids[0]});
    let r: J = org.post("/composite/sobjects").json(&json!({"records": [child]})).send().await.unwrap().json().await.unwrap();
    assert_eq!(r[0]["errors"], lock_error(&ids[0]));

    // Bulk ingest: the locked record's row fails, with its id in sf__Id and in the message.
    let csv = format!("Id,Name\n{},B0\n{},B1\n", ids[0], ids[2]);
    let (job, info) = run_job(&org, json!({"object": "Account", "operation": "update"}), &csv).await;
    assert_eq!(info["numberRecordsFailed"], 1);
    assert_eq!(
        result_rows(&org, &job, "failedResults").await,
        vec![format!(
            "\"{0}\",\"UNABLE_TO_LOCK_ROW:unable to obtain exclusive access to this record or 1 records: {0}:--\",\"{0}\",\"B0\"",
            ids[0]
        )]
    );
    let csv = format!("LastName,AccountId\nKid,{}\n", ids[0]);
    let (job, _) = run_job(&org, json!({"object": "Contact", "operation": "insert"}), &csv).await;
    let failed = result_rows(&org, &job, "failedResults").await;
    assert!(failed[0].starts_with("\"\",\"UNABLE_TO_LOCK_ROW:"), "{failed:?}");

    // Clearing the faults clears the lock.
    org.admin_call(Method::PUT, "/faults", Some(json!({})), 200).await;
    assert_eq!(update_names(&org, &ids[..1], "Free").await[0]["success"], true);
}

/// Which of `n` rows fail by lock when a fresh org runs a Collections update and a Bulk update
/// with `lock_row_rate` 0.3 and `seed`.
async fn locked_rows(seed: u64, n: usize) -> (Vec<usize>, Vec<usize>) {
    let org = TestOrg::start_empty().await;
    let ids = accounts(&org, n).await;
    org.admin_call(Method::PUT, "/faults", Some(json!({"lock_row_rate": 0.3, "seed": seed})), 200).await;
    let r = update_names(&org, &ids, "C").await;
    let collections: Vec<usize> = r
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .filter(|(_, x)| x["errors"][0]["statusCode"] == "UNABLE_TO_LOCK_ROW")
        .map(|(i, _)| i)
        .collect();
    let csv: String = std::iter::once("Id,Name\n".to_owned()).chain(ids.iter().map(|id| format!("{id},B\n"))).collect();
    let (job, _) = run_job(&org, json!({"object": "Account", "operation": "update"}), &csv).await;
    let failed = result_rows(&org, &job, "failedResults").await;
    let bulk: Vec<usize> =
        failed.iter().map(|l| ids.iter().position(|id| l.starts_with(&format!("\"{id}\""))).unwrap()).collect();
    assert!(
        failed.iter().all(|l| l.contains("UNABLE_TO_LOCK_ROW:unable to obtain exclusive access to this record or 1 records: "))
    );
    (collections, bulk)
}

#[tokio::test]
async fn a_seeded_share_of_rows_fails_the_same_way_on_every_run() {
    let (collections, bulk) = locked_rows(17, 100).await;
    assert!((15..=45).contains(&collections.len()), "about 30 of 100: {}", collections.len());
    assert!((15..=45).contains(&bulk.len()), "about 30 of 100: {}", bulk.len());
    assert_ne!(collections, bulk, "draws continue across requests");
    assert_eq!(locked_rows(17, 100).await, (collections.clone(), bulk), "same seed, same rows");
    assert_ne!(locked_rows(18, 100).await.0, collections, "another seed, other rows");
}
