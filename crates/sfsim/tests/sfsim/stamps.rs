//! Audit datetimes over real HTTP: stamped to the whole second as Salesforce stores them, so two
//! saves within one second share a `SystemModstamp`; milliseconds only with
//! `SimConfig::millisecond_stamps`.

use crate::common::{SendJson, TestOrg};
use chrono::Duration;
use serde_json::{Value as J, json};
use tidemark_sfsim::SimConfig;
use tidemark_sfsim::value::parse_datetime;

const AUDIT: &str = "CreatedDate,LastModifiedDate,SystemModstamp";

/// Moves the org clock by `ms` milliseconds without reissuing the session (it outlives them).
fn tick(org: &TestOrg, ms: i64) {
    org.sim.state.org.write().advance_clock(Duration::milliseconds(ms));
}

async fn audit(org: &TestOrg, id: &str) -> J {
    org.get(&format!("/sobjects/Account/{id}?fields={AUDIT}")).send_json().await
}

fn millis(record: &J, field: &str) -> i64 {
    let text = record[field].as_str().unwrap_or_else(|| panic!("{field} in {record}"));
    parse_datetime(text).unwrap_or_else(|| panic!("{field} = {text} parses"))
}

/// Creates an Account 100 ms into a second, saves it twice more 300 ms apart (all within that
/// second), deletes it, and returns the audit fields after each save plus the delete-log and
/// change-log times.
async fn saves_within_one_second(config: SimConfig) -> (Vec<J>, i64, Vec<i64>) {
    let org = TestOrg::start_with(SimConfig { accounts: 0, ..config }).await;
    tick(&org, 100);
    let created: J = org.post("/sobjects/Account").json(&json!({"Name": "Stamp"})).send_json().await;
    let id = created["id"].as_str().expect("created").to_owned();
    let mut seen = vec![audit(&org, &id).await];
    for name in ["Stamp 2", "Stamp 3"] {
        tick(&org, 300);
        let resp = org.patch(&format!("/sobjects/Account/{id}")).json(&json!({"Name": name})).send().await.unwrap();
        assert_eq!(resp.status(), 204);
        seen.push(audit(&org, &id).await);
    }
    assert_eq!(org.delete(&format!("/sobjects/Account/{id}")).send().await.unwrap().status(), 204);
    let o = org.sim.state.org.read();
    let deleted_at = o.table("Account").unwrap().delete_log().iter().find(|(d, _)| d.as_str() == id).expect("logged").1;
    let logged: Vec<i64> =
        o.change_log().iter().filter(|e| e.id.is_some_and(|d| d.as_str() == id)).map(|e| e.at_millis).collect();
    (seen, deleted_at, logged)
}

#[tokio::test]
async fn saves_within_one_second_share_a_whole_second_stamp_by_default() {
    let (seen, deleted_at, logged) = saves_within_one_second(SimConfig::default()).await;
    let second = parse_datetime("2025-01-06T09:00:00Z").unwrap();
    for record in &seen {
        for field in AUDIT.split(',') {
            assert_eq!(millis(record, field), second, "{field} of {record}");
            assert!(record[field].as_str().unwrap().ends_with(":00.000+0000"), "{record}");
        }
    }
    assert_eq!(seen[1]["SystemModstamp"], seen[2]["SystemModstamp"], "two saves in one second, one stamp");
    assert_eq!(deleted_at, second);
    assert_eq!(logged, [second; 4], "create, two updates, delete");
}

#[tokio::test]
async fn millisecond_stamps_are_an_explicit_option() {
    let (seen, deleted_at, logged) =
        saves_within_one_second(SimConfig { millisecond_stamps: true, ..SimConfig::default() }).await;
    let at = |ms: i64| parse_datetime("2025-01-06T09:00:00Z").unwrap() + ms;
    let stamps: Vec<i64> = seen.iter().map(|r| millis(r, "SystemModstamp")).collect();
    assert_eq!(stamps, [at(100), at(400), at(700)]);
    assert_eq!(seen[2]["SystemModstamp"], "2025-01-06T09:00:00.700+0000");
    assert!(seen.iter().all(|r| millis(r, "CreatedDate") == at(100)));
    assert_eq!(deleted_at, at(700));
    assert_eq!(logged, [at(100), at(400), at(700), at(700)]);
}
