//! Rows Salesforce rejects, on both write paths: each lands in the error table with
//! Salesforce's code and is delivered by a later run once fixed; injected faults and an
//! exhausted API budget lose nothing and create nothing twice.

use crate::common::{Org, flow};
use serde_json::{Value as J, json};
use tidemark_push::PushStatus;
use tidemark_salesforce::{ClientConfig, RetryPolicy};

fn values(rows: &[(&str, Option<&str>, &str)]) -> String {
    rows.iter()
        .map(|(code, name, tier)| format!("('{code}', {}, '{tier}')", name.map_or("NULL".to_owned(), |n| format!("'{n}'"))))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Inserts keyed by a unique external id (so Collections can be used: a re-run finds them by it)
/// and the same through Bulk jobs: a missing required field, a value outside a restricted
/// picklist and a duplicate unique value fail their rows alone; fixed, they are delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insert_row_errors_on_both_paths_are_recorded_then_delivered() {
    for (threshold, api) in [(2000, "collections"), (1, "bulk")] {
        let org = Org::start(0).await;
        org.add_vendor();
        let taken = org.create("Vendor__c", vec![json!({"Name": "Existing", "Code__c": "V-4"})]).await;
        let yaml = |rows: &[(&str, Option<&str>, &str)]| {
            format!(
                "query: \"SELECT * FROM (VALUES {}) AS t(code__c, name, tier__c)\"\nobject: Vendor__c\nmode: insert\n\
                 key: [code__c]\nbulk_threshold: {threshold}\n",
                values(rows)
            )
        };
        let bad = [
            ("V-1", Some("One"), "Gold"),
            ("V-2", None, "Gold"),
            ("V-3", Some("Three"), "Bronze"),
            ("V-4", Some("Four"), "Silver"),
            ("V-5", Some("Five"), "Silver"),
        ];
        let first = org.push("vendors", &flow(&yaml(&bad))).await;
        assert_eq!((first.api.as_str(), first.succeeded, first.failed), (api, 2, 3), "{api}");
        assert_eq!(
            org.open_errors("vendors").await,
            vec![
                ("[\"V-2\"]".to_owned(), "REQUIRED_FIELD_MISSING".to_owned()),
                ("[\"V-3\"]".to_owned(), "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST".to_owned()),
                ("[\"V-4\"]".to_owned(), "DUPLICATE_VALUE".to_owned()),
            ],
            "{api}"
        );

        // Fixed: a name, a valid tier, and the record holding the code removed.
        org.client.collections_delete(&taken).await.unwrap();
        let good = [
            ("V-1", Some("One"), "Gold"),
            ("V-2", Some("Two"), "Gold"),
            ("V-3", Some("Three"), "Gold"),
            ("V-4", Some("Four"), "Silver"),
            ("V-5", Some("Five"), "Silver"),
        ];
        let second = org.push("vendors", &flow(&yaml(&good))).await;
        assert_eq!((second.planned.insert, second.succeeded, second.failed), (3, 3, 0), "{api}");
        assert!(org.open_errors("vendors").await.is_empty());
        let live = org.live_by("Vendor__c", "Code__c", "V-");
        assert_eq!(live.len(), 5);
        assert!(live.values().all(|r| r.len() == 1), "{api}: one record per key");
        assert_eq!(live["V-3"][0].fields["Tier__c"], J::from("Gold"));
    }
}

/// An upsert whose external id matches several records is that row's error
/// (`DUPLICATE_EXTERNAL_ID`), on both paths; the other rows are written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_id_matching_several_records_is_a_row_error() {
    for threshold in [2000, 1] {
        let org = Org::start(0).await;
        org.add_vendor();
        org.create("Vendor__c", vec![json!({"Name": "A", "Ref__c": "R-1"}), json!({"Name": "B", "Ref__c": "r-1"})]).await;
        let yaml = format!(
            "query: \"SELECT * FROM (VALUES ('R-1', 'C'), ('R-2', 'D')) AS t(ref__c, name)\"\nobject: Vendor__c\n\
             mode: upsert\nexternal_id: Ref__c\nbulk_threshold: {threshold}\n"
        );
        let m = org.push("refs", &flow(&yaml)).await;
        assert_eq!((m.status, m.succeeded, m.failed), (PushStatus::Complete, 1, 1));
        assert_eq!(org.open_errors("refs").await, vec![("[\"R-1\"]".to_owned(), "DUPLICATE_EXTERNAL_ID".to_owned())]);
        assert_eq!(org.live_by("Vendor__c", "Ref__c", "R-2").len(), 1);
    }
}

/// Bulk jobs under row locks, 503s and failed jobs: every row is either delivered or recorded;
/// the next run (faults off) sends exactly the undelivered ones, and the org ends with one
/// record per key holding the result's values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_jobs_with_injected_faults_lose_nothing() {
    let org = Org::start(0).await;
    org.add_vendor();
    let yaml = "query: \"SELECT 'B-' || CAST(value AS VARCHAR) AS code__c, 'Vendor ' || CAST(value AS VARCHAR) AS name, \
                CAST(value % 100 AS DOUBLE) AS score__c FROM range(0, 3000)\"\nobject: Vendor__c\nmode: upsert\n\
                external_id: Code__c\nbulk_threshold: 500\nbulk_job_rows: 1000\n";
    org.faults(json!({"lock_row_rate": 0.05, "http_503_rate": 0.05, "bulk_job_failure_rate": 0.3, "seed": 11})).await;
    let first = org.push("bulk", &flow(yaml)).await;
    assert_eq!(first.api, "bulk");
    assert!(first.bulk_jobs.len() >= 3, "{:?}", first.bulk_jobs);
    assert_eq!(first.succeeded + first.failed + first.not_processed, 3000);
    assert!(first.failed > 0, "row locks fail rows: {first:?}");
    let open = org.open_errors("bulk").await;
    assert_eq!(open.len() as u64, first.failed);
    assert!(open.iter().all(|(_, code)| code == "UNABLE_TO_LOCK_ROW"), "{open:?}");

    org.faults(json!({})).await;
    let second = org.push("bulk", &flow(yaml)).await;
    assert_eq!(second.planned.upsert, first.failed + first.not_processed, "only what was not delivered is sent again");
    assert_eq!((second.failed, second.status), (0, PushStatus::Complete));
    assert!(org.open_errors("bulk").await.is_empty());
    let live = org.live_by("Vendor__c", "Code__c", "B-");
    assert_eq!(live.len(), 3000);
    assert!(live.values().all(|r| r.len() == 1));
    assert_eq!(live["B-1234"][0].fields["Score__c"], J::from(34.0));
    let third = org.push("bulk", &flow(yaml)).await;
    assert_eq!(third.planned.total(), 0);
}

/// The API budget runs out mid-run: the run ends incomplete (never complete), keeps what it
/// delivered, and the next run sends the rest, nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_budget_ends_incomplete_and_the_next_run_finishes() {
    let config = ClientConfig { retry: RetryPolicy::immediate(3), budget_percent: 50, ..ClientConfig::default() };
    let org = Org::start_with(0, config).await;
    org.add_vendor();
    let yaml = "query: \"SELECT 'Q-' || CAST(value AS VARCHAR) AS code__c, 'Vendor ' || CAST(value AS VARCHAR) AS name \
                FROM range(0, 1800)\"\nobject: Vendor__c\nmode: upsert\nexternal_id: Code__c\n";
    org.admin(reqwest::Method::PUT, "/__admin/limits", json!({"max": 100, "used": 45})).await;
    let first = org.push("budget", &flow(yaml)).await;
    assert_eq!(first.status, PushStatus::Incomplete, "{first:?}");
    assert!(first.succeeded > 0 && first.succeeded < 1800, "{first:?}");
    assert_eq!(first.succeeded + first.not_processed, 1800);
    assert!(first.message.as_deref().is_some_and(|m| m.contains("budget")), "{:?}", first.message);

    org.admin(reqwest::Method::PUT, "/__admin/limits", json!({"max": 100000, "used": 0})).await;
    // A later run is a new process: its client has not seen the exhausted usage.
    let client = crate::common::connect(&org.sim, ClientConfig::default()).await;
    let second = tidemark_push::PushRun::new(org.lake.clone(), client, "budget", flow(yaml)).execute().await.unwrap();
    assert_eq!(second.status, PushStatus::Complete);
    assert_eq!(second.planned.upsert, 1800 - first.succeeded);
    let live = org.live_by("Vendor__c", "Code__c", "Q-");
    assert_eq!(live.len(), 1800);
    assert!(live.values().all(|r| r.len() == 1));
    let runs = tidemark_push::RunLog::new(&org.lake).runs(Some("budget")).await.unwrap();
    assert_eq!(runs.iter().map(|r| r.status).collect::<Vec<_>>(), vec![PushStatus::Incomplete, PushStatus::Complete]);
}

/// The budget runs out while a Bulk insert job runs: its outcome cannot be read, so the run
/// records none of its rows and leaves the job in the journal; the next run reads the job's
/// results first and inserts nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_insert_cut_off_by_the_budget_is_resolved_by_the_next_run() {
    let config = ClientConfig { retry: RetryPolicy::immediate(3), budget_percent: 50, ..ClientConfig::default() };
    let org = Org::start_with(0, config).await;
    let yaml = "query: \"SELECT value AS src, 'Cut ' || CAST(value AS VARCHAR) AS name FROM range(0, 40)\"\n\
                object: Account\nmode: insert\nkey: [src]\nexclude: [src]\n";
    org.admin(reqwest::Method::PUT, "/__admin/limits", json!({"max": 100, "used": 46})).await;
    let first = org.push("cut", &flow(yaml)).await;
    assert_eq!(first.status, PushStatus::Incomplete, "{first:?}");
    assert_eq!((first.bulk_jobs.len(), first.succeeded), (1, 0), "the job ran but its results were not read: {first:?}");
    assert_eq!(org.live_by("Account", "Name", "Cut ").len(), 40, "Salesforce created the rows");

    org.admin(reqwest::Method::PUT, "/__admin/limits", json!({"max": 100000, "used": 0})).await;
    let client = crate::common::connect(&org.sim, ClientConfig::default()).await;
    let second = tidemark_push::PushRun::new(org.lake.clone(), client, "cut", flow(yaml)).execute().await.unwrap();
    assert_eq!((second.recovered, second.planned.insert, second.status), (40, 0, PushStatus::Complete), "{second:?}");
    let live = org.live_by("Account", "Name", "Cut ");
    assert_eq!(live.len(), 40);
    assert!(live.values().all(|r| r.len() == 1), "nothing inserted twice");
}
