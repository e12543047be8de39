//! Versions, resources, limits, describe, sessions and the limit header over real HTTP.

use crate::common::{TestOrg, corpus_json};

#[tokio::test]
async fn versions_need_no_session_and_match_the_documented_shape() {
    let org = TestOrg::start().await;
    let resp = org.http.get(org.url("/services/data/")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("Sforce-Limit-Info").is_none());
    let versions: serde_json::Value = resp.json().await.unwrap();
    let doc = corpus_json("versions-current-doc-head.json");
    let ours = versions.as_array().unwrap();
    for (i, entry) in doc.as_array().unwrap().iter().enumerate() {
        assert_eq!(&ours[i], entry, "entry {i} equals the documented one");
    }
    assert_eq!(ours.last().unwrap()["version"], "66.0");
    assert_eq!(ours.last().unwrap()["label"], "Spring '26");
}

#[tokio::test]
async fn every_data_call_needs_a_valid_session_and_reports_usage() {
    let org = TestOrg::start().await;
    let resp = org.http.get(org.data_url("/limits")).bearer_auth("00Dbogus!token").send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body, serde_json::json!([{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]));

    let resp = org.get("/limits").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let header = resp.headers()["Sforce-Limit-Info"].to_str().unwrap().to_owned();
    assert!(header.starts_with("api-usage=1/"), "{header}");
    let limits: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(limits["DailyApiRequests"]["Max"], 1_000_000);
    assert!(limits["DailyApiRequests"]["Remaining"].as_u64().unwrap() < 1_000_000);
}

#[tokio::test]
async fn retired_and_unknown_versions_are_refused() {
    let org = TestOrg::start().await;
    let resp = org.http.get(org.url("/services/data/v30.0/limits")).bearer_auth(&org.token).send().await.unwrap();
    assert_eq!(resp.status(), 410);
    let resp = org.http.get(org.url("/services/data/v99.0/limits")).bearer_auth(&org.token).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    let resp = org.http.get(org.url("/services/data/latest/limits")).bearer_auth(&org.token).send().await.unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn describe_global_and_describe_have_salesforce_keys() {
    let org = TestOrg::start().await;
    let global = org.get_json("/sobjects", 200).await;
    let real = corpus_json("describe-global.json");
    assert_eq!(global["maxBatchSize"], 200);
    let real_entry_keys: Vec<String> = real["sobjects"][0].as_object().unwrap().keys().cloned().collect();
    for entry in global["sobjects"].as_array().unwrap() {
        let keys: Vec<String> = entry.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, real_entry_keys, "describeGlobal entry keys of {}", entry["name"]);
    }
    let account = org.get_json("/sobjects/account/describe", 200).await;
    // The v52 capture has the keys newer orgs send (`associateEntityType`, `sobjectDescribeOption`).
    let real_account = corpus_json("describe-custom-object-all-field-types.json");
    let mut real_keys: Vec<&String> = real_account.as_object().unwrap().keys().collect();
    let mut our_keys: Vec<&String> = account.as_object().unwrap().keys().collect();
    real_keys.sort();
    our_keys.sort();
    assert_eq!(our_keys, real_keys);
    assert_eq!(account["name"], "Account");
    assert_eq!(account["keyPrefix"], "001");
    let missing = org.get("/sobjects/Nope__c/describe").send().await.unwrap();
    assert_eq!(missing.status(), 404);
}

fn insert_account(org: &TestOrg, name: &str) -> tidemark_core::SfId {
    let mut o = org.sim.state.org.write();
    let slot = o.table("Account").unwrap().def.slot("Name");
    o.insert_record("Account", vec![(slot, tidemark_sfsim::value::Value::str(name))]).unwrap()
}

fn window(org: &TestOrg, back: chrono::Duration, ahead: chrono::Duration) -> String {
    let now = org.sim.state.org.read().clock().now();
    let fmt = |t: chrono::DateTime<chrono::Utc>| {
        t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string().replace(':', "%3A").replace('+', "%2B")
    };
    format!("start={}&end={}", fmt(now - back), fmt(now + ahead))
}

#[tokio::test]
async fn get_updated_lists_ids_by_system_modstamp_in_the_documented_shape() {
    let mut org = TestOrg::start().await;
    org.advance_clock(chrono::Duration::days(2));
    let a = insert_account(&org, "Acme");
    org.advance_clock(chrono::Duration::hours(1));
    let b = insert_account(&org, "Globex");
    org.advance_clock(chrono::Duration::minutes(5));
    let body = org
        .get_json(
            &format!("/sobjects/Account/updated/?{}", window(&org, chrono::Duration::minutes(30), chrono::Duration::zero())),
            200,
        )
        .await;
    crate::common::shape::assert_same_shape(
        "getUpdated",
        &corpus_json("get-updated.json"),
        &body,
        crate::common::shape::Keys::Exact,
    );
    let ids: Vec<&str> = body["ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(ids.contains(&b.as_str()) && !ids.contains(&a.as_str()), "{ids:?}");
    // The covered end never passes the org's now and is truncated to the minute.
    let latest = body["latestDateCovered"].as_str().unwrap();
    assert!(latest.ends_with(":00.000+0000"), "{latest}");

    let resp = org.get("/sobjects/Account/updated/?start=yesterday&end=today").send().await.unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn get_deleted_reads_the_delete_log_until_the_recycle_bin_purges() {
    let mut org = TestOrg::start().await;
    let doomed = insert_account(&org, "Initech");
    let hard = insert_account(&org, "Hooli");
    org.advance_clock(chrono::Duration::hours(1));
    {
        let mut o = org.sim.state.org.write();
        o.soft_delete(&doomed).unwrap();
        o.hard_delete(&hard).unwrap();
    }
    org.advance_clock(chrono::Duration::minutes(2));
    let query = window(&org, chrono::Duration::days(1), chrono::Duration::zero());
    let body = org.get_json(&format!("/sobjects/Account/deleted/?{query}"), 200).await;
    crate::common::shape::assert_same_shape(
        "getDeleted",
        &corpus_json("get-deleted.json"),
        &body,
        crate::common::shape::Keys::Exact,
    );
    let listed: Vec<&str> = body["deletedRecords"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert!(listed.contains(&doomed.as_str()) && listed.contains(&hard.as_str()), "{listed:?}");

    // After the 15-day recycle-bin window the entries are purged.
    org.advance_clock(chrono::Duration::days(16));
    let query = window(&org, chrono::Duration::days(20), chrono::Duration::zero());
    let body = org.get_json(&format!("/sobjects/Account/deleted/?{query}"), 200).await;
    assert_eq!(body["deletedRecords"].as_array().unwrap().len(), 0, "{body}");
    assert!(org.sim.state.org.read().table("Account").unwrap().get(&doomed).is_none(), "purged from the recycle bin");
}

#[tokio::test]
async fn exhausted_allocation_answers_request_limit_exceeded() {
    let mut org = TestOrg::start().await;
    let now = org.sim.state.now_millis();
    org.sim.state.usage.set_max(5);
    org.sim.state.usage.set_used(now, 5);
    let resp = org.get("/limits").send().await.unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(resp.headers()["Sforce-Limit-Info"], "api-usage=5/5");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body, corpus_json("error-request-limit-exceeded.json"));
    // A rolling 24 hours later the allocation is available again.
    org.advance_clock(chrono::Duration::hours(25));
    let resp = org.get("/limits").send().await.unwrap();
    assert_eq!(resp.status(), 200);
}
