//! Versions, resources, limits, describe, sessions and the limit header over real HTTP.

mod common;

use common::{TestOrg, corpus_json};

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
