//! Push runs against the simulated org, checked against its truth: each mode's first run sends
//! every row and later runs only the changes; the snapshot records what each key became.

use crate::common::{Org, flow};
use serde_json::Value as J;
use tidemark_push::PushStatus;

/// Invoices upserted by their external id: a first run, a run with nothing to send, then a run
/// with changed and new rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upsert_sends_everything_then_only_changes() {
    let org = Org::start(5).await;
    let query = |n: u64, changed: bool| {
        let amount = if changed { "CASE WHEN value % 10 = 0 THEN value * 2.5 + 1 ELSE value * 2.5 END" } else { "value * 2.5" };
        format!(
            "SELECT 'TM-' || CAST(value AS VARCHAR) AS invoice_number__c, CAST({amount} AS DOUBLE) AS amount__c, \
             'Draft' AS status__c FROM range(0, {n})"
        )
    };
    let yaml = |q: String| format!("query: \"{q}\"\nobject: Invoice__c\nmode: upsert\nexternal_id: Invoice_Number__c\n");

    let first = org.push("invoices", &flow(&yaml(query(50, false)))).await;
    assert_eq!(first.status, PushStatus::Complete);
    assert_eq!((first.counts.new, first.planned.upsert, first.succeeded, first.failed), (50, 50, 50, 0));
    assert_eq!(first.api, "collections");
    let invoices = org.live_by("Invoice__c", "Invoice_Number__c", "TM-");
    assert_eq!(invoices.len(), 50);
    assert!(invoices.values().all(|v| v.len() == 1), "one record per key");
    assert_eq!(invoices["TM-7"][0].fields["Amount__c"], serde_json::json!(17.5));

    let second = org.push("invoices", &flow(&yaml(query(50, false)))).await;
    assert_eq!((second.run, second.counts.unchanged, second.planned.total(), second.sent), (2, 50, 0, 0));
    assert_eq!(second.api, "none");

    let third = org.push("invoices", &flow(&yaml(query(53, true)))).await;
    assert_eq!((third.counts.new, third.counts.changed, third.counts.unchanged), (3, 5, 45));
    assert_eq!((third.planned.upsert, third.succeeded), (8, 8));
    let invoices = org.live_by("Invoice__c", "Invoice_Number__c", "TM-");
    assert_eq!(invoices.len(), 53);
    assert_eq!(invoices["TM-10"][0].fields["Amount__c"], serde_json::json!(26.0));
    assert_eq!(invoices["TM-11"][0].fields["Amount__c"], serde_json::json!(27.5));
}

/// Inserts keyed by a column that is not sent: created once (through Bulk jobs, whose ids make
/// them recoverable), a later change updates the same record by the Id kept in the snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insert_creates_once_and_updates_by_the_kept_id() {
    let org = Org::start(5).await;
    let query = |bump: u64| {
        format!(
            "SELECT value AS src, 'Pushed ' || CAST(value AS VARCHAR) AS name, \
             CASE WHEN value < {bump} THEN value * 10 + 1 ELSE value * 10 END AS numberofemployees FROM range(0, 30)"
        )
    };
    let yaml = |q: String| format!("query: \"{q}\"\nobject: Account\nmode: insert\nkey: [src]\nexclude: [src]\n");

    let first = org.push("accounts", &flow(&yaml(query(0)))).await;
    assert_eq!((first.planned.insert, first.succeeded, first.failed), (30, 30, 0));
    assert_eq!(first.api, "bulk", "inserts without a lookup field go through Bulk jobs");
    assert_eq!(first.bulk_jobs.len(), 1);
    let before = org.live_by("Account", "Name", "Pushed ");
    assert_eq!(before.len(), 30);

    let second = org.push("accounts", &flow(&yaml(query(3)))).await;
    assert_eq!((second.counts.changed, second.planned.update, second.planned.insert, second.succeeded), (3, 3, 0, 3));
    assert_eq!(second.api, "collections");
    let after = org.live_by("Account", "Name", "Pushed ");
    assert_eq!(after.len(), 30, "no record created twice");
    for (name, records) in &after {
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].id, before[name][0].id);
    }
    assert_eq!(after["Pushed 2"][0].fields["NumberOfEmployees"], J::from(21));
    assert_eq!(after["Pushed 3"][0].fields["NumberOfEmployees"], J::from(30));
}

/// Updates by Id: rows refused by a validation rule and by a row lock land in the error table
/// with Salesforce's codes; once fixed, the next run delivers them and closes their errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_failures_land_in_the_error_table_and_are_retried() {
    let org = Org::start(20).await;
    let ids: Vec<String> = org.truth("Account").into_values().filter(|r| !r.deleted).map(|r| r.id).take(12).collect();
    let values = |bad: &str| {
        ids.iter()
            .enumerate()
            .map(|(i, id)| format!("('{id}', '{}')", if i < 2 { bad.to_owned() } else { format!("Tier {i}") }))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let yaml = |bad: &str| {
        format!("query: \"SELECT * FROM (VALUES {}) AS t(id, description)\"\nobject: Account\nmode: update\n", values(bad))
    };
    org.admin(
        reqwest::Method::POST,
        "/__admin/validation-rules",
        serde_json::json!({"object": "Account", "name": "No_Bad", "field": "Description", "when": {"equals": "Bad"},
            "message": "Description must not be Bad", "error_field": "Description"}),
    )
    .await;
    org.faults(serde_json::json!({"lock_row_ids": [ids[5]]})).await;

    let first = org.push("tiers", &flow(&yaml("Bad"))).await;
    assert_eq!((first.planned.update, first.succeeded, first.failed), (12, 9, 3));
    let errors = tidemark_push::ErrorTable::new(&org.lake, "tiers").rows().await.unwrap();
    let mut codes: Vec<(String, String)> = errors.iter().map(|e| (e.key.clone(), e.status_code.clone())).collect();
    codes.sort();
    let mut expected = vec![
        (format!("[\"{}\"]", ids[0]), "FIELD_CUSTOM_VALIDATION_EXCEPTION".to_owned()),
        (format!("[\"{}\"]", ids[1]), "FIELD_CUSTOM_VALIDATION_EXCEPTION".to_owned()),
        (format!("[\"{}\"]", ids[5]), "UNABLE_TO_LOCK_ROW".to_owned()),
    ];
    expected.sort();
    assert_eq!(codes, expected);
    let validation = errors.iter().find(|e| e.status_code == "FIELD_CUSTOM_VALIDATION_EXCEPTION").unwrap();
    assert_eq!((validation.fields.as_str(), validation.attempt, validation.delivered_run), ("Description", 1, None));
    assert!(validation.record.contains("\"Description\":\"Bad\""), "the fields sent are kept: {}", validation.record);
    let truth = org.truth("Account");
    assert_eq!(truth[&ids[3]].fields["Description"], J::from("Tier 3"));
    assert_ne!(truth[&ids[5]].fields["Description"], J::from("Tier 5"));

    // Unchanged, still refused: sent again (a failed row is not delivered) and failing again.
    let second = org.push("tiers", &flow(&yaml("Bad"))).await;
    assert_eq!((second.planned.update, second.failed), (3, 3));
    let errors = tidemark_push::ErrorTable::new(&org.lake, "tiers").rows().await.unwrap();
    assert_eq!(errors.iter().filter(|e| e.run == 2).map(|e| e.attempt).collect::<Vec<_>>(), vec![2, 2, 2]);

    // Fixed: the rows changed (no longer Bad) and the lock cleared.
    org.faults(serde_json::json!({})).await;
    let third = org.push("tiers", &flow(&yaml("Good"))).await;
    assert_eq!((third.planned.update, third.succeeded, third.failed), (3, 3, 0));
    let errors = tidemark_push::ErrorTable::new(&org.lake, "tiers").rows().await.unwrap();
    assert!(errors.iter().all(|e| e.delivered_run == Some(3)), "{errors:#?}");
    let truth = org.truth("Account");
    assert_eq!(truth[&ids[0]].fields["Description"], J::from("Good"));
    assert_eq!(truth[&ids[5]].fields["Description"], J::from("Tier 5"));
}

/// A dry run reports what would be sent, with the records' current values, and writes nothing:
/// the org and the lake are as they were, and the real run then sends what it announced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_changes_nothing_in_the_org_or_the_lake() {
    let org = Org::start(0).await;
    org.add_vendor();
    let yaml = |n: u64, tier: &str| {
        format!(
            "query: \"SELECT 'D-' || CAST(value AS VARCHAR) AS code__c, 'Vendor ' || CAST(value AS VARCHAR) AS name, \
             CASE WHEN value = 0 THEN '{tier}' ELSE 'Gold' END AS tier__c FROM range(0, {n})\"\nobject: Vendor__c\n\
             mode: upsert\nexternal_id: Code__c\n"
        )
    };
    org.push("dry", &flow(&yaml(20, "Gold"))).await;
    let (truth, files) = (org.truth("Vendor__c"), org.lake_files());

    let dry = org.run("dry", &flow(&yaml(23, "Silver"))).with_dry_run(2).execute().await.unwrap();
    assert!(dry.dry_run);
    assert_eq!((dry.counts.new, dry.counts.changed, dry.planned.upsert, dry.sent), (3, 1, 4, 0));
    assert_eq!(org.truth("Vendor__c"), truth, "the org is unchanged");
    assert_eq!(org.lake_files(), files, "the lake is unchanged");
    // The changed row is shown against the record's current values; new rows have none.
    let changed = dry.sample.iter().find(|r| r.key == "[\"D-0\"]").expect("the changed row is sampled");
    let tier = changed.fields.iter().find(|f| f.field == "Tier__c").unwrap();
    assert_eq!((tier.value.clone(), tier.current.clone()), (J::from("Silver"), Some(J::from("Gold"))));
    assert!(changed.id.is_some());
    assert_eq!(dry.sample.len(), 2, "at most the sample size per operation");

    let real = org.push("dry", &flow(&yaml(23, "Silver"))).await;
    assert_eq!((real.run, real.planned.upsert, real.succeeded), (2, 4, 4));
}

/// `delete_vanished` deletes the record of a key that left the result (by the Id kept in the
/// snapshot); `mode: delete` deletes each Id the result gains, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_happen_only_where_enabled() {
    let org = Org::start(0).await;
    org.add_vendor();
    let yaml = |n: u64, extra: &str| {
        format!(
            "query: \"SELECT 'X-' || CAST(value AS VARCHAR) AS code__c, 'V' AS name FROM range(0, {n})\"\n\
             object: Vendor__c\nmode: upsert\nexternal_id: Code__c\n{extra}"
        )
    };
    org.push("vanish", &flow(&yaml(10, ""))).await;
    let kept = org.push("vanish", &flow(&yaml(8, ""))).await;
    assert_eq!((kept.counts.vanished, kept.planned.delete), (2, 0), "no deletes unless enabled");
    assert_eq!(org.live_by("Vendor__c", "Code__c", "X-").len(), 10);
    let deleting = "allow_delete: true\ndelete_vanished: true\n";
    let deleted = org.push("vanish", &flow(&yaml(7, deleting))).await;
    assert_eq!((deleted.planned.delete, deleted.succeeded), (3, 3));
    let live = org.live_by("Vendor__c", "Code__c", "X-");
    assert_eq!(live.keys().cloned().collect::<Vec<_>>(), (0..7).map(|i| format!("X-{i}")).collect::<Vec<_>>());
    let again = org.push("vanish", &flow(&yaml(7, deleting))).await;
    assert_eq!(again.planned.total(), 0, "deleted keys left the snapshot");

    let ids: Vec<String> = live.values().take(3).map(|r| r[0].id.clone()).collect();
    let list = ids.iter().map(|id| format!("('{id}')")).collect::<Vec<_>>().join(", ");
    let yaml =
        format!("query: \"SELECT * FROM (VALUES {list}) AS t(id)\"\nobject: Vendor__c\nmode: delete\nallow_delete: true\n");
    let m = org.push("purge", &flow(&yaml)).await;
    assert_eq!((m.planned.delete, m.succeeded), (3, 3));
    let truth = org.truth("Vendor__c");
    assert!(ids.iter().all(|id| truth[id].deleted));
    assert_eq!(org.push("purge", &flow(&yaml)).await.planned.total(), 0);
}

/// A run that died after its Bulk insert job ran (before its snapshot commit) left the chunk in
/// the journal: the next run reads the job's results by its recorded id and records the created
/// Ids instead of inserting the rows again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inserts_left_in_flight_are_recovered_not_repeated() {
    use tidemark_push::journal::{Journal, WritePath};
    use tidemark_push::send::{Operation, OutRow, Sender};
    let org = Org::start(0).await;
    let yaml = "query: \"SELECT value AS src, 'Flight ' || CAST(value AS VARCHAR) AS name FROM range(0, 12)\"\n\
                object: Account\nmode: insert\nkey: [src]\nexclude: [src]\n";
    // What the dead run sent: its rows as the run would plan them, through a journaled Bulk job.
    let journal = Journal::new(&org.lake, "flight").unwrap();
    let mut sender = Sender::new(&org.client, &journal, "Account", 1, "dead0000");
    let rows: Vec<OutRow> = (0..12)
        .map(|i| OutRow {
            key: format!("[{i}]"),
            hash: vec![0; 16],
            record: serde_json::json!({"Name": format!("Flight {i}")}).as_object().unwrap().clone(),
        })
        .collect();
    let sent = sender.send(Operation::Insert, WritePath::Bulk, &rows).await.unwrap();
    assert!(sent.outcomes.iter().all(|o| o.is_success()));
    assert_eq!(journal.chunks().await.unwrap().len(), 1, "the chunk is journaled until a snapshot holds it");
    assert_eq!(org.live_by("Account", "Name", "Flight ").len(), 12);

    let m = org.push("flight", &flow(yaml)).await;
    assert_eq!((m.recovered, m.planned.insert), (12, 0), "{m:?}");
    let live = org.live_by("Account", "Name", "Flight ");
    assert_eq!(live.len(), 12);
    assert!(live.values().all(|r| r.len() == 1), "nothing inserted twice");
    assert!(journal.chunks().await.unwrap().is_empty(), "the journal is cleared once the snapshot holds the chunk");
    assert_eq!(org.push("flight", &flow(yaml)).await.planned.total(), 0);
}

/// A push flow over a Heroku Connect mirror replicated into the lake runs as over a synced
/// object: its query reads `crm.account` (the mirror's table under its object name, keyed by
/// the Salesforce Id), sends what changed, and later only the mirror's changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_flow_reads_a_heroku_connect_mirror_like_a_synced_object() {
    use tidemark_lake::ingest::Ingest;
    use tidemark_postgres::PostgresSource;
    let org = Org::start(5).await;
    let ids: Vec<String> = org.truth("Account").into_keys().take(3).collect();
    let (db, config) = crate::pg::database("push_mirror").await;
    db.batch_execute(
        "CREATE SCHEMA salesforce;
         CREATE TABLE salesforce.account (id serial PRIMARY KEY, sfid varchar(18) UNIQUE, systemmodstamp timestamp,
             isdeleted boolean, _hc_lastop varchar(32), _hc_err text, name varchar(255));
         ALTER TABLE salesforce.account REPLICA IDENTITY FULL;",
    )
    .await
    .unwrap();
    for (i, id) in ids.iter().enumerate() {
        db.execute(
            "INSERT INTO salesforce.account (sfid, systemmodstamp, isdeleted, _hc_lastop, name) VALUES ($1, now(), false, 'SYNCED', $2)",
            &[id, &format!("Mirror {i}")],
        )
        .await
        .unwrap();
    }
    let replicate = || Ingest::new(org.lake.clone(), Box::new(PostgresSource::heroku_connect("crm_push", config.clone())));
    replicate().await.unwrap();
    let yaml = "query: \"SELECT id, 'Seen as ' || name AS description FROM crm_push.account\"\nobject: Account\nmode: update\n";
    let description = |org: &Org, id: &str| org.truth("Account")[id].fields["Description"].clone();

    let first = org.push("mirror", &flow(yaml)).await;
    assert_eq!((first.counts.new, first.succeeded, first.failed), (3, 3, 0));
    assert_eq!(description(&org, &ids[1]), J::from("Seen as Mirror 1"));
    assert_eq!(org.push("mirror", &flow(yaml)).await.sent, 0, "nothing changed in the mirror");

    db.batch_execute(&format!(
        "UPDATE salesforce.account SET name = 'Renamed', _hc_lastop = 'UPDATED' WHERE sfid = '{}'",
        ids[0]
    ))
    .await
    .unwrap();
    replicate().await.unwrap();
    let third = org.push("mirror", &flow(yaml)).await;
    assert_eq!((third.counts.changed, third.counts.unchanged, third.succeeded), (1, 2, 1));
    assert_eq!(description(&org, &ids[0]), J::from("Seen as Renamed"));
}
