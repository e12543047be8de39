//! The REST query resources over real HTTP: paging, queryAll, filters, ordering, relationships,
//! error shapes, cursor expiry and the QUERY_TIMEOUT fault.

use std::collections::HashSet;

use crate::common::{TestOrg, corpus_json};
use chrono::Duration;
use serde_json::Value as J;
use tidemark_core::{FieldType, SfId};
use tidemark_sfsim::faults::FaultConfig;
use tidemark_sfsim::schema::{FieldDef, ObjectDef};
use tidemark_sfsim::value::{Value, parse_datetime};

fn q(soql: &str) -> String {
    format!("/query?q={}", urlencode(soql))
}

fn qa(soql: &str) -> String {
    format!("/queryAll?q={}", urlencode(soql))
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn insert_accounts(org: &TestOrg, names: &[String]) -> Vec<SfId> {
    let mut o = org.sim.state.org.write();
    let slot = o.table("Account").unwrap().def.slot("Name");
    names.iter().map(|n| o.insert_record("Account", vec![(slot, Value::str(n.as_str()))]).unwrap()).collect()
}

/// GETs `url` (relative to the instance) and follows nextRecordsUrl verbatim until done.
async fn fetch_all(org: &TestOrg, first: &str, batch: Option<usize>) -> (Vec<J>, Vec<usize>, u64) {
    let mut url = org.data_url(first);
    let mut records = Vec::new();
    let mut pages = Vec::new();
    let mut total = None;
    loop {
        let mut req = org.http.get(&url).bearer_auth(&org.token);
        if let Some(b) = batch {
            req = req.header("Sforce-Query-Options", format!("batchSize={b}"));
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200, "GET {url}");
        let body: J = resp.json().await.unwrap();
        let t = body["totalSize"].as_u64().unwrap();
        assert_eq!(*total.get_or_insert(t), t, "totalSize is the same on every page");
        let page = body["records"].as_array().unwrap();
        pages.push(page.len());
        records.extend(page.iter().cloned());
        if body["done"] == true {
            assert!(body.get("nextRecordsUrl").is_none(), "last page omits nextRecordsUrl");
            break;
        }
        let next = body["nextRecordsUrl"].as_str().unwrap();
        assert!(next.starts_with("/services/data/v66.0/query/01g"), "{next}");
        url = org.url(next);
    }
    (records, pages, total.unwrap_or(0))
}

#[tokio::test]
async fn pages_follow_next_records_url_until_done() {
    let org = TestOrg::start_empty().await;
    let names: Vec<String> = (0..4_321).map(|i| format!("Account {i:05}")).collect();
    insert_accounts(&org, &names);

    let resp = org.get(&q("SELECT Id, Name FROM Account")).send().await.unwrap();
    assert_eq!(resp.headers()["content-type"], "application/json;charset=UTF-8");
    let text = resp.text().await.unwrap();
    assert!(
        text.starts_with("{\"totalSize\":4321,\"done\":false,\"nextRecordsUrl\":\"/services/data/v66.0/query/"),
        "{}",
        &text[..120]
    );
    let first: J = serde_json::from_str(&text).unwrap();
    let keys: Vec<&String> = first.as_object().unwrap().keys().collect();
    let doc = corpus_json("query-page1.json");
    assert_eq!(keys, doc.as_object().unwrap().keys().collect::<Vec<_>>(), "key order as documented");
    assert_eq!(first["records"].as_array().unwrap().len(), 2_000, "default batch");
    let rec = &first["records"][0];
    let id = rec["Id"].as_str().unwrap();
    assert_eq!(
        rec["attributes"],
        serde_json::json!({"type":"Account","url":format!("/services/data/v66.0/sobjects/Account/{id}")})
    );
    assert!(first["nextRecordsUrl"].as_str().unwrap().ends_with("-2000"));

    let (records, pages, total) = fetch_all(&org, &q("SELECT Id, Name FROM Account ORDER BY Name DESC"), Some(500)).await;
    assert_eq!(total, 4_321);
    assert_eq!(pages, [500, 500, 500, 500, 500, 500, 500, 500, 321]);
    let ids: HashSet<&str> = records.iter().map(|r| r["Id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 4_321, "no duplicates");
    assert_eq!(records[0]["Name"], "Account 04320");
    assert_eq!(records[4_320]["Name"], "Account 00000");

    // batchSize below 200 is raised to 200; above 2,000 lowered to 2,000.
    let (_, pages, _) = fetch_all(&org, &q("SELECT Id FROM Account LIMIT 450"), Some(50)).await;
    assert_eq!(pages, [200, 200, 50]);
    let (_, pages, _) = fetch_all(&org, &q("SELECT Id FROM Account"), Some(5_000)).await;
    assert_eq!(pages, [2_000, 2_000, 321]);
}

#[tokio::test]
async fn query_all_includes_the_recycle_bin_also_on_continuations() {
    let org = TestOrg::start_empty().await;
    let names: Vec<String> = (0..450).map(|i| format!("A{i}")).collect();
    let ids = insert_accounts(&org, &names);
    {
        let mut o = org.sim.state.org.write();
        for id in ids.iter().step_by(3) {
            o.soft_delete(id).unwrap();
        }
    }
    let (live, _, total) = fetch_all(&org, &q("SELECT Id, IsDeleted FROM Account"), Some(200)).await;
    assert_eq!((total, live.len()), (300, 300));
    assert!(live.iter().all(|r| r["IsDeleted"] == false));

    let (all, pages, total) = fetch_all(&org, &qa("SELECT Id, IsDeleted FROM Account"), Some(200)).await;
    assert_eq!((total, all.len()), (450, 450));
    assert_eq!(pages, [200, 200, 50]);
    let deleted_on_last_page = all[400..].iter().filter(|r| r["IsDeleted"] == true).count();
    assert!(deleted_on_last_page > 0, "continuations of queryAll still return deleted rows");
    assert_eq!(all.iter().filter(|r| r["IsDeleted"] == true).count(), 150);

    let doc = corpus_json("queryall-deleted.json");
    let small = org.get_json(&qa("SELECT Name FROM Account WHERE IsDeleted = true AND Name = 'A0'"), 200).await;
    let doc_keys: HashSet<&String> = doc.as_object().unwrap().keys().collect();
    assert_eq!(small.as_object().unwrap().keys().collect::<HashSet<_>>(), doc_keys);
    assert_eq!(small["records"][0]["Name"], "A0");
}

/// Adds `Widget__c` (every filterable kind) and `Gadget__c` (lookup to Account and Widget__c).
fn add_test_objects(org: &TestOrg) {
    let mut o = org.sim.state.org.write();
    let mut w = ObjectDef::new("Widget__c", "Widget", "Widgets", "a0W");
    w.add_system_fields();
    w.add_field(FieldDef::new("Name", FieldType::String).name_field());
    w.add_field(FieldDef::new("Price__c", FieldType::Currency));
    w.add_field(FieldDef::new("Due__c", FieldType::Datetime));
    w.add_field(FieldDef::new("Active__c", FieldType::Boolean));
    w.add_field(FieldDef::new("Code__c", FieldType::String));
    w.add_field(FieldDef::new("Where__c", FieldType::Location).compound(&["Where__Latitude__s", "Where__Longitude__s"]));
    w.add_field(FieldDef::new("Where__Latitude__s", FieldType::Double).component_of("Where__c"));
    w.add_field(FieldDef::new("Where__Longitude__s", FieldType::Double).component_of("Where__c"));
    o.add_object(w);
    let mut g = ObjectDef::new("Gadget__c", "Gadget", "Gadgets", "a0G");
    g.add_system_fields();
    g.add_field(FieldDef::new("Name", FieldType::String).name_field());
    g.add_field(FieldDef::new("Account__c", FieldType::Reference).lookup(&["Account"]));
    g.add_field(FieldDef::new("Widget__c", FieldType::Reference).lookup(&["Widget__c"]));
    o.add_object(g);
}

fn insert_widget(org: &TestOrg, name: &str, price: Option<f64>, due: Option<&str>, active: bool, code: Option<&str>) -> SfId {
    let mut o = org.sim.state.org.write();
    let def = &o.table("Widget__c").unwrap().def;
    let mut v = vec![(def.slot("Name"), Value::str(name)), (def.slot("Active__c"), Value::Bool(active))];
    if let Some(p) = price {
        v.push((def.slot("Price__c"), Value::Double(p)));
    }
    if let Some(d) = due {
        v.push((def.slot("Due__c"), Value::DateTime(parse_datetime(d).unwrap())));
    }
    if let Some(c) = code {
        v.push((def.slot("Code__c"), Value::str(c)));
    }
    v.push((def.slot("Where__Latitude__s"), Value::Double(48.5)));
    v.push((def.slot("Where__Longitude__s"), Value::Double(2.25)));
    o.insert_record("Widget__c", v).unwrap()
}

async fn widget_names(org: &TestOrg, soql: &str) -> Vec<String> {
    let body = org.get_json(&q(soql), 200).await;
    body["records"].as_array().unwrap().iter().map(|r| r["Name"].as_str().unwrap().to_owned()).collect()
}

fn seed_widgets(org: &TestOrg) {
    add_test_objects(org);
    insert_widget(org, "alpha", Some(10.0), Some("2024-03-01T10:00:00.000Z"), true, Some("A-1"));
    insert_widget(org, "Bravo", None, Some("2024-03-01T10:00:00.500Z"), false, None);
    insert_widget(org, "charlie", Some(30.5), None, true, Some("c_3"));
    insert_widget(org, "Delta", Some(20.0), Some("2024-02-29T23:00:00Z"), false, Some("D'4"));
}

#[tokio::test]
async fn where_clauses_over_http() {
    let org = TestOrg::start_empty().await;
    seed_widgets(&org);
    let cases: &[(&str, &[&str])] = &[
        ("SELECT Name FROM Widget__c WHERE Due__c > 2024-03-01T10:00:00Z", &["Bravo"]),
        ("SELECT Name FROM Widget__c WHERE Due__c >= 2024-03-01T10:00:00.000Z", &["alpha", "Bravo"]),
        ("SELECT Name FROM Widget__c WHERE Due__c = 2024-03-01T11:00:00.500+01:00", &["Bravo"]),
        ("SELECT Name FROM Widget__c WHERE Due__c < 2024-02-29T18:00:01-05:00", &["Delta"]),
        ("SELECT Name FROM Widget__c WHERE Due__c = null", &["charlie"]),
        ("SELECT Name FROM Widget__c WHERE Price__c != null AND Active__c = true", &["alpha", "charlie"]),
        ("SELECT Name FROM Widget__c WHERE Price__c <> 10", &["Bravo", "charlie", "Delta"]),
        ("SELECT Name FROM Widget__c WHERE Name LIKE '%a' OR Name LIKE 'b%'", &["alpha", "Bravo", "Delta"]),
        ("SELECT Name FROM Widget__c WHERE Code__c LIKE 'c\\_%'", &["charlie"]),
        ("SELECT Name FROM Widget__c WHERE Code__c = 'd\\'4'", &["Delta"]),
        ("SELECT Name FROM Widget__c WHERE Name IN ('ALPHA', 'delta')", &["alpha", "Delta"]),
        ("SELECT Name FROM Widget__c WHERE Name NOT IN ('ALPHA', 'delta')", &["Bravo", "charlie"]),
        ("SELECT Name FROM Widget__c WHERE NOT (Price__c > 15 OR Price__c = null)", &["alpha"]),
        ("select name from widget__c where (active__c = false and price__c = null) or code__c = 'A-1'", &["alpha", "Bravo"]),
        (
            "SELECT Name FROM Widget__c WHERE CreatedDate = TODAY AND CreatedDate > YESTERDAY",
            &["alpha", "Bravo", "charlie", "Delta"],
        ),
        ("SELECT Name FROM Widget__c WHERE CreatedDate < LAST_N_DAYS:2", &[]),
    ];
    for (soql, expected) in cases {
        assert_eq!(widget_names(&org, soql).await, *expected, "{soql}");
    }
}

#[tokio::test]
async fn order_by_nulls_limit_offset_and_count() {
    let org = TestOrg::start_empty().await;
    seed_widgets(&org);
    assert_eq!(widget_names(&org, "SELECT Name FROM Widget__c ORDER BY Price__c").await, ["Bravo", "alpha", "Delta", "charlie"]);
    assert_eq!(
        widget_names(&org, "SELECT Name FROM Widget__c ORDER BY Price__c DESC").await,
        ["charlie", "Delta", "alpha", "Bravo"]
    );
    assert_eq!(
        widget_names(&org, "SELECT Name FROM Widget__c ORDER BY Price__c NULLS LAST").await,
        ["alpha", "Delta", "charlie", "Bravo"]
    );
    assert_eq!(
        widget_names(&org, "SELECT Name FROM Widget__c ORDER BY Active__c DESC, Name DESC").await,
        ["charlie", "alpha", "Delta", "Bravo"]
    );
    assert_eq!(widget_names(&org, "SELECT Name FROM Widget__c ORDER BY Name LIMIT 2 OFFSET 1").await, ["Bravo", "charlie"]);
    let body = org.get_json(&q("SELECT Name FROM Widget__c ORDER BY Name LIMIT 2 OFFSET 1"), 200).await;
    assert_eq!(body["totalSize"], 2);

    let count = org.get_json(&q("SELECT count() FROM Widget__c WHERE Active__c = true"), 200).await;
    let doc = corpus_json("query-count-empty-records.json");
    assert_eq!(count.as_object().unwrap().keys().collect::<Vec<_>>(), doc.as_object().unwrap().keys().collect::<Vec<_>>());
    assert_eq!(count, serde_json::json!({"totalSize": 2, "done": true, "records": []}));

    let agg = org.get_json(&q("SELECT COUNT(Id) FROM Widget__c"), 200).await;
    assert_eq!(agg["records"][0], serde_json::json!({"attributes": {"type": "AggregateResult"}, "expr0": 4}));

    let resp = org.get(&q("SELECT Name FROM Widget__c OFFSET 2001")).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    let body: J = resp.json().await.unwrap();
    assert_eq!(body[0]["errorCode"], "NUMBER_OUTSIDE_VALID_RANGE");
}

#[tokio::test]
async fn parent_relationships_and_compound_fields() {
    let org = TestOrg::start_empty().await;
    seed_widgets(&org);
    let acme = insert_accounts(&org, &["Acme".to_owned()])[0];
    {
        let mut o = org.sim.state.org.write();
        let def = o.table("Gadget__c").unwrap().def.clone();
        let widget = o.table("Widget__c").unwrap();
        let alpha = widget.id_of(&widget.rows()[0]);
        o.insert_record(
            "Gadget__c",
            vec![
                (def.slot("Name"), Value::str("g1")),
                (def.slot("Account__c"), Value::str(acme.as_str())),
                (def.slot("Widget__c"), Value::str(alpha.as_str())),
            ],
        )
        .unwrap();
        o.insert_record("Gadget__c", vec![(def.slot("Name"), Value::str("g2"))]).unwrap();
    }
    let body = org
        .get_json(&q("SELECT Name, Account__r.Name, Widget__r.Price__c, Account__r.Id FROM Gadget__c ORDER BY Name"), 200)
        .await;
    let g1 = &body["records"][0];
    let keys: Vec<&String> = g1.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["attributes", "Name", "Account__r", "Widget__r"]);
    assert_eq!(g1["Account__r"]["attributes"]["type"], "Account");
    assert_eq!(g1["Account__r"]["attributes"]["url"], format!("/services/data/v66.0/sobjects/Account/{acme}"));
    assert_eq!(g1["Account__r"]["Name"], "Acme");
    assert_eq!(g1["Account__r"]["Id"], acme.as_str());
    assert_eq!(g1["Widget__r"]["Price__c"], 10.0);
    assert_eq!(body["records"][1]["Account__r"], J::Null);

    let parents = org.get_json(&q("SELECT Name, (SELECT Name FROM Gadgets__r) FROM Account"), 200).await;
    let children = &parents["records"][0]["Gadgets__r"];
    assert_eq!(children["totalSize"], 1);
    assert_eq!(children["done"], true);
    assert_eq!(children["records"][0]["Name"], "g1");
    assert_eq!(children["records"][0]["attributes"]["type"], "Gadget__c");

    let w = org.get_json(&q("SELECT Name, Where__c FROM Widget__c WHERE Name = 'alpha'"), 200).await;
    assert_eq!(w["records"][0]["Where__c"], serde_json::json!({"latitude": 48.5, "longitude": 2.25}));

    let resp = org.get(&q("SELECT Name, Acount__r.Name FROM Gadget__c")).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    let body: J = resp.json().await.unwrap();
    assert_eq!(body[0]["errorCode"], "INVALID_FIELD");
    assert!(body[0]["message"].as_str().unwrap().contains("Didn't understand relationship 'Acount__r' in field path."));
}

async fn error_body(org: &TestOrg, path: &str) -> J {
    let resp = org.get(path).send().await.unwrap();
    assert_eq!(resp.status(), 400, "GET {path}");
    resp.json().await.unwrap()
}

/// Same keys and JSON types as the corpus error array.
fn same_shape(ours: &J, doc: &J) {
    let (a, b) = (&ours[0], &doc[0]);
    assert_eq!(ours.as_array().unwrap().len(), 1);
    let ka: HashSet<&String> = a.as_object().unwrap().keys().collect();
    let kb: HashSet<&String> = b.as_object().unwrap().keys().collect();
    assert_eq!(ka, kb);
    for k in kb {
        assert_eq!(std::mem::discriminant(&a[k]), std::mem::discriminant(&b[k]), "{k}");
    }
}

/// Splits a located message into (excerpt, caret column, row, column, detail).
fn located(message: &str) -> (String, usize, usize, usize, String) {
    let lines: Vec<&str> = message.splitn(5, '\n').collect();
    assert_eq!(lines[0], "", "starts with a newline: {message:?}");
    let caret = lines[2].find('^').unwrap();
    assert!(lines[2][..caret].chars().all(|c| c == ' '));
    let pos = lines[3].strip_prefix("ERROR at Row:").unwrap();
    let (row, col) = pos.split_once(":Column:").unwrap();
    (lines[1].to_owned(), caret, row.parse().unwrap(), col.parse().unwrap(), lines[4].to_owned())
}

#[tokio::test]
async fn errors_match_the_corpus_shapes() {
    let org = TestOrg::start_empty().await;

    let doc = corpus_json("error-malformed-query.json");
    let soql = "SELECT Id,Name,CreatedById, CreatedDate, LastModifiedById, LastModifiedDate, From Account ";
    let ours = error_body(&org, &q(soql)).await;
    same_shape(&ours, &doc);
    assert_eq!(ours[0]["errorCode"], "MALFORMED_QUERY");
    let (excerpt, caret, row, col, detail) = located(ours[0]["message"].as_str().unwrap());
    let (doc_excerpt, _, doc_row, doc_col, doc_detail) = located(doc[0]["message"].as_str().unwrap());
    assert_eq!((row, col, detail.as_str()), (doc_row, doc_col, doc_detail.as_str()));
    assert_eq!(excerpt, doc_excerpt, "same excerpt window");
    assert_eq!(&excerpt[caret..caret + 4], "From", "caret under the token");

    let doc = corpus_json("error-invalid-type.json");
    assert_eq!(error_body(&org, &q("select count() from XYZZY")).await, doc);

    let ours = error_body(&org, &q("SELECT Id, Nmae FROM Account")).await;
    assert_eq!(ours[0]["errorCode"], "INVALID_FIELD");
    let (_, caret, _, col, detail) = located(ours[0]["message"].as_str().unwrap());
    assert_eq!((caret, col), (11, 12));
    assert_eq!(
        detail,
        "No such column 'Nmae' on entity 'Account'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names."
    );

    let ours = error_body(&org, &q("SELECT Id FROM Account WHERE CreatedDate > '2024-01-01'")).await;
    assert_eq!(ours[0]["errorCode"], "INVALID_FIELD");
    assert!(ours[0]["message"].as_str().unwrap().ends_with(
        "value of filter criterion for field 'CreatedDate' must be of type dateTime and should not be enclosed in quotes"
    ));

    let ours = error_body(&org, "/query").await;
    assert_eq!(ours[0]["errorCode"], "MALFORMED_QUERY");
    let ours = error_body(&org, "/query/01gDn0000000001AAA-2000").await;
    assert_eq!(ours, serde_json::json!([{"message": "invalid query locator", "errorCode": "INVALID_QUERY_LOCATOR"}]));
}

#[tokio::test]
async fn cursors_expire_after_two_days_of_org_time() {
    let org = TestOrg::start_empty().await;
    let names: Vec<String> = (0..500).map(|i| format!("N{i}")).collect();
    insert_accounts(&org, &names);
    let first = org
        .http
        .get(org.data_url(&q("SELECT Id FROM Account")))
        .bearer_auth(&org.token)
        .header("Sforce-Query-Options", "batchSize=200")
        .send()
        .await
        .unwrap()
        .json::<J>()
        .await
        .unwrap();
    let next = first["nextRecordsUrl"].as_str().unwrap().to_owned();
    org.sim.state.org.write().advance_clock(Duration::days(1));
    let token = org.sim.issue_token();
    let resp = org.http.get(org.url(&next)).bearer_auth(&token).send().await.unwrap();
    assert_eq!(resp.status(), 200, "still valid after one day");
    let page: J = resp.json().await.unwrap();
    assert_eq!(page["records"].as_array().unwrap().len(), 200);

    org.sim.state.org.write().advance_clock(Duration::days(1) + Duration::minutes(1));
    let token = org.sim.issue_token();
    let resp = org.http.get(org.url(&next)).bearer_auth(&token).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    let body: J = resp.json().await.unwrap();
    assert_eq!(body, serde_json::json!([{"message": "invalid query locator", "errorCode": "INVALID_QUERY_LOCATOR"}]));
}

#[tokio::test]
async fn query_timeout_fault_hits_unfiltered_queries_over_large_objects() {
    let org = TestOrg::start_empty().await;
    let names: Vec<String> = (0..30).map(|i| format!("T{i}")).collect();
    insert_accounts(&org, &names);
    org.sim.state.faults.set(FaultConfig { query_timeout_rows: 20, ..Default::default() }, 1);
    let body = error_body(&org, &q("SELECT Id, Name FROM Account")).await;
    assert_eq!(body, corpus_json("error-query-timeout.json"));
    let ok = org.get_json(&q("SELECT Id FROM Account WHERE Name LIKE 'T1%'"), 200).await;
    assert_eq!(ok["totalSize"], 11);
    let small = org.get_json(&q("SELECT Id FROM User"), 200).await;
    assert_eq!(small["done"], true);
}
