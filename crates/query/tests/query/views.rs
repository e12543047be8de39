//! Live, history, SCD2 and as-of relations against the simulator's truth, across change rounds
//! with deletes, undeletes, hard deletes, formula changes and schema changes.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::json;
use tidemark_lake::HistoryTable;
use tidemark_lake::arrow::array::{AsArray, RecordBatch};
use tidemark_lake::arrow::datatypes::Int64Type;
use tidemark_query::{QuerySession, ReadOptions};

use crate::common::{CHECKED, Harness, Truth};

/// The org's state at one sync point.
struct Point {
    at: DateTime<Utc>,
    truth: HashMap<String, Truth>,
}

async fn point(h: &Harness) -> Point {
    let at = DateTime::from_timestamp_millis(h.sim.state.org.read().now_millis()).unwrap();
    let mut truth = HashMap::new();
    for object in CHECKED {
        truth.insert(object.to_owned(), h.org_truth(object).await);
    }
    Point { at, truth }
}

fn literal(at: DateTime<Utc>) -> String {
    format!("TIMESTAMP '{}'", at.format("%Y-%m-%dT%H:%M:%S%.6fZ"))
}

/// `SELECT <lake column> AS "<Field>", … FROM <from>` for the truth's fields.
fn select(truth: &Truth, from: &str) -> String {
    let cols = truth.targets.iter().map(|(f, c)| format!("{} AS \"{f}\"", c.to_lowercase())).collect::<Vec<_>>().join(", ");
    format!("SELECT {cols} FROM {from}")
}

async fn rows(session: &QuerySession, sql: &str) -> Vec<RecordBatch> {
    session.sql(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}")).collect().await.unwrap()
}

async fn count(session: &QuerySession, sql: &str) -> i64 {
    let batches = rows(session, sql).await;
    batches[0].column(0).as_primitive::<Int64Type>().value(0)
}

async fn check_now(h: &Harness, session: &QuerySession, p: &Point) {
    for object in CHECKED {
        let truth = &p.truth[object];
        let table = object.to_lowercase();
        truth.assert_equals(object, "live", rows(session, &select(truth, &table)).await);
        // Case does not matter, quoted or not.
        let upper = format!("SELECT count(*) FROM \"{}\"", object.to_uppercase());
        assert_eq!(count(session, &upper).await as usize, truth.batch.num_rows(), "{object}: upper-case name");
        let versions = HistoryTable::open(&h.lake, object).await.unwrap().unwrap().counts().await.unwrap().0;
        assert_eq!(count(session, &format!("SELECT count(*) FROM {table}_history")).await as u64, versions, "{object}_history");
        // Current SCD2 windows are exactly the live records.
        let current = format!("{table}_scd2 WHERE is_current");
        truth.assert_equals(object, "scd2 current", rows(session, &select(truth, &current)).await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relations_match_the_org_at_every_sync_point() {
    let mut h = Harness::start(80, 21).await;
    let mut points = Vec::new();
    let rounds: Vec<Box<dyn Fn(&Harness)>> = vec![
        Box::new(|_| {}),
        Box::new(|h| h.change(json!({"updates": {"share": 0.2}, "creates": 4, "deletes": 3}), 1)),
        Box::new(|h| h.change(json!({"hard_deletes": 2, "undeletes": 2, "parent_renames": 4, "updates": 3}), 2)),
        Box::new(|h| {
            h.schema_change("Account", json!({"op": "add_field", "field": "Tier__c", "type": "string", "length": 20}));
            h.schema_change("Invoice__c", json!({"op": "change_type", "field": "Amount__c", "type": "string", "length": 40}));
            h.schema_change("Invoice__c", json!({"op": "remove_field", "field": "Payment_Portal__c"}));
            h.change(json!({"objects": ["Account", "Invoice__c"], "updates": 5, "deletes": 1}), 3);
        }),
        Box::new(|h| h.change(json!({"updates": 3, "undeletes": 1, "deletes": 2}), 4)),
    ];
    for round in &rounds {
        h.advance(chrono::Duration::minutes(10));
        round(&h);
        let report = h.sync().await;
        assert_eq!(report.status(), tidemark_lake::RunStatus::Complete, "{report:#?}");
        let p = point(&h).await;
        let session = QuerySession::open(h.lake.clone(), ReadOptions::default()).await.unwrap();
        check_now(&h, &session, &p).await;
        points.push(p);
    }

    // Every earlier state, from the same lake: the as_of function, SCD2 windows and --as-of.
    let session = QuerySession::open(h.lake.clone(), ReadOptions::default()).await.unwrap();
    for (i, p) in points.iter().enumerate() {
        for object in CHECKED {
            let truth = &p.truth[object];
            let table = object.to_lowercase();
            let as_of = format!("as_of('{object}', {})", literal(p.at));
            truth.assert_equals(object, &format!("as_of point {i}"), rows(&session, &select(truth, &as_of)).await);
            let window = format!("{table}_scd2 WHERE valid_from <= {t} AND valid_to > {t}", t = literal(p.at));
            truth.assert_equals(object, &format!("scd2 window at point {i}"), rows(&session, &select(truth, &window)).await);
        }
        let pinned = QuerySession::open(h.lake.clone(), ReadOptions { as_of: Some(p.at), ..Default::default() }).await.unwrap();
        let truth = &p.truth["Contact"];
        truth.assert_equals("Contact", &format!("--as-of point {i}"), rows(&pinned, &select(truth, "contact")).await);
    }

    // SCD2 rows are the non-delete versions, and windows of one record never overlap.
    for object in CHECKED {
        let table = object.to_lowercase();
        let scd2 = count(&session, &format!("SELECT count(*) FROM {table}_scd2")).await;
        let kept = count(&session, &format!("SELECT count(*) FROM {table}_history WHERE NOT _deleted")).await;
        assert_eq!(scd2, kept, "{object}: one SCD2 row per non-delete version");
        let overlaps = format!(
            "SELECT count(*) FROM (SELECT valid_to, lead(valid_from) OVER (PARTITION BY id ORDER BY valid_from, valid_to) AS next_from \
             FROM {table}_scd2) WHERE next_from < valid_to"
        );
        assert_eq!(count(&session, &overlaps).await, 0, "{object}: overlapping SCD2 windows");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_clear_and_name_close_tables() {
    let mut h = Harness::start(20, 22).await;
    h.sync().await;
    let session = QuerySession::open(h.lake.clone(), ReadOptions::default()).await.unwrap();
    let e = session.sql("SELECT * FROM acount").await.unwrap_err().to_string();
    assert!(e.contains("'acount' not found") && e.contains("'account'"), "{e}");
    let e = session.sql("SELECT * FROM account_histroy").await.unwrap_err().to_string();
    assert!(e.contains("'account_history'"), "{e}");
    let e = session.sql("SELEC 1").await.unwrap_err();
    assert!(e.to_string().contains("SELEC"), "{e}");
    let e = session.sql("SELECT nope FROM account").await.unwrap_err().to_string();
    assert!(e.contains("nope"), "{e}");
    let e = session.sql("SELECT * FROM as_of('account')").await.unwrap_err().to_string();
    assert!(e.contains("two arguments"), "{e}");
    let e = session.sql("SELECT * FROM as_of('account', 'not a time')").await.unwrap_err().to_string();
    assert!(e.contains("timestamp"), "{e}");
    // A session's own views work and cannot shadow lake tables.
    session.sql("CREATE VIEW big AS SELECT id FROM account").await.unwrap().collect().await.unwrap();
    assert!(count(&session, "SELECT count(*) FROM big").await > 0);
    let e = session.sql("CREATE VIEW account_scd2 AS SELECT 1").await.unwrap_err().to_string();
    assert!(e.contains("account_scd2"), "{e}");
    let listing = session.tables();
    assert!(listing.iter().any(|t| t.name == "invoice__c_scd2"), "{listing:?}");
    assert_eq!(listing.len(), CHECKED.len() * 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_versions_read_the_lake_as_it_was() {
    let mut h = Harness::start(20, 23).await;
    h.sync().await;
    let table = HistoryTable::open(&h.lake, "Account").await.unwrap().unwrap();
    let (first_version, first_versions) = (table.version().unwrap(), table.counts().await.unwrap().0);
    h.advance(chrono::Duration::minutes(10));
    h.change(json!({"objects": ["Account"], "updates": 5, "creates": 2}), 1);
    h.sync().await;
    let pinned = ReadOptions { table_version: Some(tidemark_query::TableVersion::Version(first_version)), ..Default::default() };
    let session = QuerySession::open(h.lake.clone(), pinned).await.unwrap();
    assert_eq!(count(&session, "SELECT count(*) FROM account_history").await as u64, first_versions);
    let latest = QuerySession::open(h.lake.clone(), ReadOptions::default()).await.unwrap();
    assert!(count(&latest, "SELECT count(*) FROM account_history").await as u64 >= first_versions + 7);
    let missing = ReadOptions { table_version: Some(tidemark_query::TableVersion::Version(10_000)), ..Default::default() };
    let session = QuerySession::open(h.lake.clone(), missing).await.unwrap();
    let e = session.sql("SELECT count(*) FROM account").await.unwrap_err().to_string();
    assert!(e.contains("account") && e.contains("version 10000"), "{e}");
}
