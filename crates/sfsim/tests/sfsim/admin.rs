//! The admin API over real HTTP: clock, change rounds, schema changes, faults, sessions,
//! limits, the truth dump and persistence.

use crate::common::{SendJson, TestOrg};
use serde_json::{Value as J, json};
use tidemark_sfsim::SimConfig;

impl TestOrg {
    fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, self.url(&format!("/__admin{path}")))
    }

    async fn admin_json(&self, method: reqwest::Method, path: &str, body: Option<J>, status: u16) -> J {
        let mut req = self.admin(method, path);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("admin request");
        assert_eq!(resp.status().as_u16(), status, "{path}");
        resp.json().await.expect("JSON body")
    }

    async fn truth(&self, query: &str) -> Vec<J> {
        let resp = self.admin(reqwest::Method::GET, &format!("/truth{query}")).send().await.expect("truth");
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
        let text = resp.text().await.expect("body");
        text.lines().map(|l| serde_json::from_str(l).expect("NDJSON line")).collect()
    }
}

use reqwest::Method;

async fn start_with_org(config: SimConfig, org: tidemark_sfsim::Org) -> TestOrg {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let sim = tidemark_sfsim::SimServer::new(config).start_with_org(org, addr).await.expect("starts");
    let token = sim.issue_token();
    TestOrg { sim, http: reqwest::Client::new(), token }
}

#[tokio::test]
async fn clock_advances_and_the_recycle_bin_is_purged_after_15_days() {
    let org = TestOrg::start().await;
    let clock = org.admin_json(Method::GET, "/clock", None, 200).await;
    assert_eq!(clock["now"], "2025-01-06T09:00:00.000+0000");
    assert_eq!(clock["manual"], true);
    let round =
        org.admin_json(Method::POST, "/changes", Some(json!({"objects": ["Account"], "deletes": 2, "seed": 1})), 200).await;
    let deleted: Vec<String> = serde_json::from_value(round["deleted"].clone()).unwrap();
    assert_eq!(deleted.len(), 2);
    let accounts = org.truth("?object=Account&changes=false").await;
    assert_eq!(accounts.iter().filter(|l| l["deleted"] == true).count(), 2);

    let after = org.admin_json(Method::POST, "/clock/advance", Some(json!({"days": 14, "hours": 23})), 200).await;
    assert_eq!(after["now"], "2025-01-21T08:00:00.000+0000");
    assert_eq!(after["purged"], 0, "still inside the 15-day window");
    let after = org.admin_json(Method::POST, "/clock/advance", Some(json!({"hours": 2})), 200).await;
    assert_eq!(after["purged"], 2);
    let accounts = org.truth("?object=Account&changes=false").await;
    assert!(accounts.iter().all(|l| !deleted.contains(&l["id"].as_str().unwrap().to_owned())));
    let changes = org.truth("?object=Account&records=false").await;
    let ops: Vec<&str> = changes.iter().map(|l| l["op"].as_str().unwrap()).collect();
    assert_eq!(ops, ["delete", "delete", "purge", "purge"]);

    let bad = org.admin_json(Method::POST, "/clock/advance", Some(json!({"days": -1})), 400).await;
    assert_eq!(bad["field"], "days");
}

#[tokio::test]
async fn a_change_round_shows_in_the_truth_dump_and_renames_reach_child_formulas() {
    let org = TestOrg::start().await;
    org.admin_json(Method::POST, "/clock/advance", Some(json!({"minutes": 5})), 200).await;
    let spec = json!({"objects": ["Account", "Contact"], "updates": 3, "creates": 2, "parent_renames": 2, "seed": 11});
    let summary = org.admin_json(Method::POST, "/changes", Some(spec.clone()), 200).await;
    assert_eq!(summary["updated"].as_array().unwrap().len(), 6);
    assert_eq!(summary["created"].as_array().unwrap().len(), 4);
    assert_eq!(summary["renamed_parents"].as_array().unwrap().len(), 2);
    let changes = org.truth("?records=false").await;
    let now = "2025-01-06T09:05:00.000+0000";
    for id in summary["updated"].as_array().unwrap() {
        let e = changes.iter().find(|e| e["id"] == *id && e["op"] == "update").expect("update event");
        assert_eq!(e["at"], now);
        assert_eq!(e["fields"]["SystemModstamp"], now);
    }
    for id in summary["created"].as_array().unwrap() {
        assert!(changes.iter().any(|e| e["id"] == *id && e["op"] == "create"));
    }
    // A renamed account's contacts see the new name through their formula, untouched.
    let renamed = summary["renamed_parents"][0].as_str().unwrap().to_owned();
    let records = org.truth("?changes=false").await;
    let account = records.iter().find(|r| r["id"] == renamed.as_str()).unwrap();
    let new_name = account["fields"]["Name"].as_str().unwrap().to_owned();
    let contact = records.iter().find(|r| {
        r["object"] == "Contact" && r["fields"]["AccountId"] == renamed.as_str() && r["fields"]["SystemModstamp"] != now
    });
    let contact = contact.expect("every account has a contact this round did not touch");
    let id = tidemark_core::SfId::parse(contact["id"].as_str().unwrap()).unwrap();
    {
        // Scoped: the handlers below take the org lock on this same runtime thread.
        let o = org.sim.state.org.read();
        let (table, row) = o.find(&id).unwrap();
        let formula = o.field_value_by_name(table, row, "Account_Name__c").unwrap();
        assert_eq!(formula.as_ref().as_str(), Some(new_name.as_str()));
    }
    // Same seed on the same state would repeat; the dump lists seq-ordered events after `since`.
    let last_seq = changes.last().unwrap()["seq"].as_u64().unwrap();
    assert!(org.truth(&format!("?records=false&since={last_seq}")).await.is_empty());
    let bad = org.admin_json(Method::POST, "/changes", Some(json!({"objects": ["Nope__c"], "updates": 1})), 400).await;
    assert_eq!(bad["field"], "objects");
    let bad = org.admin_json(Method::POST, "/changes", Some(json!({"updatez": 1})), 400).await;
    assert_eq!(bad["field"], "body");
}

#[tokio::test]
async fn schema_changes_show_in_describe_and_the_truth_dump() {
    let org = TestOrg::start().await;
    let describe = |org: &TestOrg| {
        let req = org.get("/sobjects/Contact/describe");
        async move {
            let d: J = req.send_json().await;
            d["fields"].as_array().unwrap().clone()
        }
    };
    let field = |fields: &[J], name: &str| fields.iter().find(|f| f["name"] == name).cloned();

    let add = json!({"object": "Contact", "op": "add_field", "field": "Tier__c", "type": "picklist", "picklist_values": ["Gold", "Silver"]});
    let r = org.admin_json(Method::POST, "/schema", Some(add), 200).await;
    assert_eq!(r["detail"], "add_field Tier__c (picklist)");
    let tier = field(&describe(&org).await, "Tier__c").expect("new field in describe");
    assert_eq!(tier["type"], "picklist");
    assert_eq!(tier["nillable"], true);
    assert_eq!(tier["picklistValues"][0]["value"], "Gold");

    let widen = json!({"object": "Contact", "op": "widen_field", "field": "Languages__c", "length": 255});
    org.admin_json(Method::POST, "/schema", Some(widen), 200).await;
    assert_eq!(field(&describe(&org).await, "Languages__c").unwrap()["length"], 255);

    let change = json!({"object": "Contact", "op": "change_type", "field": "Level__c", "type": "string"});
    org.admin_json(Method::POST, "/schema", Some(change), 200).await;
    assert_eq!(field(&describe(&org).await, "Level__c").unwrap()["type"], "string");

    let remove = json!({"object": "Contact", "op": "remove_field", "field": "Languages__c"});
    org.admin_json(Method::POST, "/schema", Some(remove), 200).await;
    assert!(field(&describe(&org).await, "Languages__c").is_none());

    let records = org.truth("?object=Contact&changes=false").await;
    assert!(records.iter().all(|r| r["fields"].get("Languages__c").is_none()));
    assert!(records.iter().all(|r| r["fields"]["Tier__c"].is_null()));
    let schema: Vec<J> = org.truth("?records=false").await.into_iter().filter(|e| e["op"] == "schema").collect();
    assert_eq!(schema.len(), 4);
    assert!(schema.iter().all(|e| e["object"] == "Contact" && e["id"].is_null() && e["fields"].is_null()));
    assert_eq!(schema[3]["detail"], "remove_field Languages__c");

    let no_object = org.admin_json(Method::POST, "/schema", Some(json!({"op": "remove_field", "field": "X__c"})), 400).await;
    assert_eq!(no_object["field"], "object");
    let bad_op = org.admin_json(Method::POST, "/schema", Some(json!({"object": "Contact", "op": "rename"})), 400).await;
    assert_eq!(bad_op["field"], "op");
    let standard = org
        .admin_json(Method::POST, "/schema", Some(json!({"object": "Contact", "op": "remove_field", "field": "Email"})), 400)
        .await;
    assert_eq!(standard["field"], "field");
    let unknown = org
        .admin_json(Method::POST, "/schema", Some(json!({"object": "Nope", "op": "remove_field", "field": "X__c"})), 400)
        .await;
    assert_eq!(unknown["field"], "object");
}

#[tokio::test]
async fn faults_sessions_and_limits() {
    let org = TestOrg::start().await;
    let faults = org.admin_json(Method::GET, "/faults", None, 200).await;
    assert_eq!(faults["http_500_rate"], 0.0);
    let set = org.admin_json(Method::PUT, "/faults", Some(json!({"http_503_rate": 1.0, "latency_ms": 0})), 200).await;
    assert_eq!(set["http_503_rate"], 1.0);
    assert_eq!(org.admin_json(Method::GET, "/faults", None, 200).await, set);
    assert_eq!(org.get("/limits").send().await.unwrap().status(), 503);
    org.admin_json(Method::PUT, "/faults", Some(json!({})), 200).await;
    assert_eq!(org.get("/limits").send().await.unwrap().status(), 200);
    let bad = org.admin_json(Method::PUT, "/faults", Some(json!({"lock_row_rate": 2.0})), 400).await;
    assert_eq!(bad["field"], "lock_row_rate");

    let limits = org.admin_json(Method::PUT, "/limits", Some(json!({"max": 10, "used": 10})), 200).await;
    assert_eq!(limits, json!({"max": 10, "used": 10, "remaining": 0}));
    let resp = org.get("/limits").send().await.unwrap();
    assert_eq!(resp.status(), 403);
    let body: J = resp.json().await.unwrap();
    assert_eq!(body[0]["errorCode"], "REQUEST_LIMIT_EXCEEDED");
    org.admin_json(Method::PUT, "/limits", Some(json!({"max": 1000})), 200).await;
    assert_eq!(org.get("/limits").send().await.unwrap().status(), 200);

    let expired = org.admin_json(Method::POST, "/sessions/expire", None, 200).await;
    assert!(expired["expired"].as_u64().unwrap() >= 1);
    let resp = org.get("/limits").send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let body: J = resp.json().await.unwrap();
    assert_eq!(body[0]["errorCode"], "INVALID_SESSION_ID");
}

#[tokio::test]
async fn recycle_bin_empty_and_purge_now() {
    let org = TestOrg::start().await;
    org.admin_json(Method::POST, "/changes", Some(json!({"objects": ["Lead"], "deletes": 3, "seed": 5})), 200).await;
    assert_eq!(org.admin_json(Method::POST, "/purge", None, 200).await["purged"], 0);
    assert_eq!(org.admin_json(Method::POST, "/recycle-bin/empty", None, 200).await["purged"], 3);
    let leads = org.truth("?object=Lead&changes=false").await;
    assert!(leads.iter().all(|l| l["deleted"] == false));
}

#[tokio::test]
async fn save_and_reload_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let config = SimConfig { data_dir: Some(dir.path().to_owned()), accounts: 30, ..SimConfig::default() };
    let org = TestOrg::start_with(config.clone()).await;
    org.admin_json(Method::POST, "/clock/advance", Some(json!({"hours": 1})), 200).await;
    org.admin_json(Method::POST, "/changes", Some(json!({"updates": 2, "deletes": 1, "creates": 1, "seed": 3})), 200).await;
    let saved = org.admin_json(Method::POST, "/save", None, 200).await;
    assert_eq!(saved["saved"], true);
    let before = org.truth("").await;

    let loaded = tidemark_sfsim::SimServer::load_or_build_org(&config).expect("loads");
    let second = start_with_org(config, loaded).await;
    assert_eq!(second.truth("").await, before);
    assert_eq!(second.admin_json(Method::GET, "/clock", None, 200).await["now"], "2025-01-06T10:00:00.000+0000");

    let memory_only = TestOrg::start().await;
    let err = memory_only.admin_json(Method::POST, "/save", None, 409).await;
    assert!(err["error"].as_str().unwrap().contains("data directory"));
}

#[tokio::test]
async fn an_admin_token_guards_the_admin_api() {
    let config = SimConfig { admin_token: Some("s3cret".into()), accounts: 5, ..SimConfig::default() };
    let org = TestOrg::start_with(config).await;
    let resp = org.admin(Method::GET, "/clock").send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let resp = org.admin(Method::GET, "/clock").header("X-Admin-Token", "s3cret").send().await.unwrap();
    assert_eq!(resp.status(), 200);
}

/// A real org's `Date` header is its server time on every endpoint. The simulated org's clock
/// can be years from the wall clock: a login or the versions list dated by the wall clock
/// would move a client's idea of server time (which dates formula snapshots and hard deletes)
/// off the org's timeline.
#[tokio::test]
async fn every_endpoint_dates_its_response_by_the_org_clock() {
    let mut org = TestOrg::start().await;
    org.advance_clock(chrono::Duration::days(3));
    let clock = org.admin_json(Method::GET, "/clock", None, 200).await;
    let now = chrono::DateTime::parse_from_str(clock["now"].as_str().unwrap(), "%Y-%m-%dT%H:%M:%S%.3f%z").unwrap();
    let credentials = &org.sim.credentials;
    let responses = [
        ("versions list", org.http.get(org.url("/services/data")).send().await.unwrap()),
        ("limits", org.get("/limits").send().await.unwrap()),
        ("unknown resource", org.get("/no-such-resource").send().await.unwrap()),
        (
            "login",
            org.http
                .post(org.url("/services/oauth2/token"))
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", credentials.client_id.as_str()),
                    ("client_secret", credentials.client_secret.as_str()),
                ])
                .send()
                .await
                .unwrap(),
        ),
        ("expired session", org.http.get(org.data_url("/limits")).bearer_auth("not-a-session").send().await.unwrap()),
    ];
    for (what, resp) in responses {
        let date = resp.headers().get("date").unwrap_or_else(|| panic!("{what}: no Date")).to_str().unwrap().to_owned();
        let date = chrono::DateTime::parse_from_rfc2822(&date).unwrap();
        assert!((date - now).num_seconds().abs() <= 5, "{what}: Date {date}, org clock {now}");
    }
}
