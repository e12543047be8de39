//! The lake against the simulator's truth across change rounds: every version present at each
//! sync point, none duplicated, hard deletes reconciled, live state equal to the org.

use crate::common::Harness;
use serde_json::json;
use tidemark_lake::{Ledger, RunStatus};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_rounds_land_exactly_once() {
    let mut h = Harness::start(120, 7).await;
    let first = h.sync().await;
    assert_eq!(first.status(), RunStatus::Complete, "{first:#?}");
    assert!(first.objects.iter().any(|o| o.api == Some(tidemark_sync::Api::Bulk)), "some object read with Bulk");
    assert!(first.objects.iter().any(|o| o.api == Some(tidemark_sync::Api::Rest)), "some object read with REST");
    h.check().await;

    // A sync with nothing new writes nothing (the overlap re-read is de-duplicated).
    let idle = h.sync().await;
    assert_eq!(idle.versions_written(), 0, "{idle:#?}");

    // Updates, creates, soft deletes.
    h.advance(chrono::Duration::minutes(10));
    h.change(json!({"updates": {"share": 0.1}, "creates": 5, "deletes": 3}), 1);
    let r = h.sync().await;
    assert_eq!(r.status(), RunStatus::Complete);
    assert!(r.objects.iter().map(|o| o.deletes).sum::<u64>() > 0);
    h.check().await;

    // Hard deletes, undeletes, parent renames (Contact formulas change without SystemModstamp).
    h.advance(chrono::Duration::minutes(10));
    h.change(json!({"hard_deletes": 2, "undeletes": 1, "parent_renames": 5, "updates": 3}), 2);
    let r = h.sync().await;
    let contact = r.objects.iter().find(|o| o.object == "Contact").unwrap();
    assert!(contact.snapshot_versions > 0, "formula changes captured: {contact:#?}");
    assert!(r.objects.iter().map(|o| o.hard_deletes).sum::<u64>() > 0);
    h.check().await;

    // Schema changes: a new field, a type change, a removed field.
    h.advance(chrono::Duration::minutes(10));
    h.schema_change("Account", json!({"op": "add_field", "field": "Tier__c", "type": "string", "length": 20}));
    h.schema_change("Invoice__c", json!({"op": "change_type", "field": "Amount__c", "type": "string", "length": 40}));
    h.schema_change("Invoice__c", json!({"op": "remove_field", "field": "Payment_Portal__c"}));
    h.change(json!({"objects": ["Account", "Invoice__c"], "updates": 4}), 3);
    let r = h.sync().await;
    assert_eq!(r.status(), RunStatus::Complete, "{r:#?}");
    h.check().await;
    let events = Ledger::new(h.lake.clone()).schema_events().await.unwrap();
    let kinds: Vec<(&str, &str)> =
        events.iter().filter(|e| e.kind != "table_created").map(|e| (e.kind.as_str(), e.field.as_str())).collect();
    assert!(kinds.contains(&("field_added", "Tier__c")), "{kinds:?}");
    assert!(kinds.contains(&("type_changed", "Amount__c")), "{kinds:?}");
    assert!(kinds.contains(&("field_removed", "Payment_Portal__c")), "{kinds:?}");

    // Sixteen days later the recycle bin is purged: deleted records vanish without a trace in
    // queryAll; the ones the lake already saw deleted need nothing, others are reconciled.
    h.advance(chrono::Duration::days(16));
    h.change(json!({"deletes": 2, "updates": 2}), 4);
    let r = h.sync().await;
    assert_eq!(r.status(), RunStatus::Complete);
    h.check().await;
    // Removing the field again is not a new event.
    let again = Ledger::new(h.lake.clone()).schema_events().await.unwrap();
    assert_eq!(again.len(), events.len(), "schema events are recorded once");
}

/// Objects without a usable timestamp are read whole and diffed against the lake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_and_diff_keeps_live_state_exact() {
    let mut h = Harness::start(60, 8).await;
    for object in crate::common::CHECKED {
        h.settings.objects.get_mut(object).unwrap().snapshot_diff = true;
    }
    let first = h.sync().await;
    assert_eq!(first.status(), RunStatus::Complete, "{first:#?}");
    assert!(first.objects.iter().all(|o| o.bookmark_field.is_empty()), "no timestamp followed");
    h.check_live_all().await;

    h.advance(chrono::Duration::minutes(10));
    h.change(json!({"updates": 4, "creates": 2, "deletes": 2, "hard_deletes": 1, "parent_renames": 2}), 5);
    let second = h.sync().await;
    assert_eq!(second.status(), RunStatus::Complete, "{second:#?}");
    let account = second.objects.iter().find(|o| o.object == "Account").unwrap();
    assert!(account.versions_written >= 4 + 2 + 2 + 1, "every change is a version: {account:#?}");
    h.check_live_all().await;

    // Nothing changed: nothing written.
    let idle = h.sync().await;
    assert_eq!(idle.versions_written(), 0, "{idle:#?}");
}

/// A history table removed by hand is rebuilt from the beginning, not from the ledger's bookmark.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_table_is_rebuilt_whole() {
    let mut h = Harness::start(40, 9).await;
    h.sync().await;
    h.advance(chrono::Duration::minutes(10));
    h.change(json!({"objects": ["Account"], "updates": 3}), 1);
    std::fs::remove_dir_all(h.dir.path().join("lake/objects/account")).unwrap();
    let r = h.sync().await;
    let account = r.objects.iter().find(|o| o.object == "Account").unwrap();
    assert_eq!((account.status, account.mode), (RunStatus::Complete, "initial"), "{account:#?}");
    h.check_live_all().await;
}
