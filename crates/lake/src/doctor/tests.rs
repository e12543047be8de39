use std::sync::Arc;

use tidemark_core::{FieldType, SourceField};

use super::*;
use crate::columns::initial_schema;
use crate::testing::append;

async fn live_names(lake: &LakeLocation) -> Vec<(String, String)> {
    let table = HistoryTable::open(lake, "Account").await.unwrap().unwrap();
    let ctx = table.session().await.unwrap();
    let batches = table.collect(&ctx, "SELECT \"Id\", \"Name\" FROM live_versions ORDER BY \"Id\"").await.unwrap();
    let mut out = Vec::new();
    for b in batches {
        let (ids, names) = (utf8(b.column(0)).unwrap(), utf8(b.column(1)).unwrap());
        out.extend((0..b.num_rows()).map(|i| (ids.value(i).to_owned(), names.value(i).to_owned())));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removes_only_true_duplicates_in_one_data_commit() {
    let dir = tempfile::tempdir().unwrap();
    let lake = LakeLocation::parse(dir.path().join("lake").to_str().unwrap()).unwrap();
    let fields = [SourceField::of("Id", FieldType::Id), SourceField::text("Name")];
    let mut table = HistoryTable::create(&lake, "Account", &initial_schema(&fields)).await.unwrap();
    append(&mut table, "sync", &[("001A", 10, false, "A", 1, "r1"), ("001B", 10, false, "X", 1, "r1")]).await;
    // A second run wrote the same version of 001A again (a duplicate), and a second save of 001B
    // within the same second (same key, other content: not a duplicate).
    append(&mut table, "sync-2", &[("001A", 10, false, "A", 2, "r2"), ("001B", 10, false, "Y", 2, "r2")]).await;
    // A third copy of 001A's version, and 001B saved back to X (A, B, A: not a duplicate).
    append(&mut table, "sync-3", &[("001A", 10, false, "A", 3, "r3"), ("001B", 10, false, "X", 3, "r3")]).await;
    let before = live_names(&lake).await;

    let found = Doctor::new(lake.clone()).run().await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!((found[0].versions, found[0].duplicate_versions, found[0].repaired), (6, 2, false), "{found:?}");
    assert!(!found[0].append_only_missing, "history tables are created append-only");

    let version_before = HistoryTable::open(&lake, "Account").await.unwrap().unwrap().version().unwrap();
    let repaired = Doctor::new(lake.clone()).with_repair(true).run().await.unwrap();
    assert!(repaired[0].repaired && repaired[0].duplicate_versions == 2, "{repaired:?}");
    let table = HistoryTable::open(&lake, "Account").await.unwrap().unwrap();
    // Lift the property, rewrite (the one data commit), set it again.
    assert_eq!(table.version().unwrap(), version_before + 3);
    let (versions, live) = table.counts().await.unwrap();
    assert_eq!((versions, live), (4, 2));
    assert_eq!(live_names(&lake).await, before, "the live state is unchanged");
    assert_eq!(live_names(&lake).await, [("001A".to_owned(), "A".to_owned()), ("001B".to_owned(), "X".to_owned())]);

    let again = Doctor::new(lake.clone()).run().await.unwrap();
    assert!(again[0].is_healthy(), "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_append_only_property_is_reported_and_restored() {
    let dir = tempfile::tempdir().unwrap();
    let lake = LakeLocation::parse(dir.path().join("lake").to_str().unwrap()).unwrap();
    let fields = [SourceField::of("Id", FieldType::Id), SourceField::text("Name")];
    let mut table = HistoryTable::create(&lake, "Account", &initial_schema(&fields)).await.unwrap();
    append(&mut table, "sync", &[("001A", 10, false, "A", 1, "r1")]).await;
    table.set_append_only(false).await.unwrap();
    let found = Doctor::new(lake.clone()).run().await.unwrap();
    assert!(found[0].append_only_missing && !found[0].is_healthy());
    let repaired = Doctor::new(lake.clone()).with_repair(true).run().await.unwrap();
    assert!(repaired[0].repaired);
    assert!(Doctor::new(lake.clone()).run().await.unwrap()[0].is_healthy());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repair_refuses_while_a_sync_holds_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let lake = LakeLocation::parse(dir.path().join("lake").to_str().unwrap()).unwrap();
    let fields = [SourceField::of("Id", FieldType::Id), SourceField::text("Name")];
    HistoryTable::create(&lake, "Account", &initial_schema(&fields)).await.unwrap();
    let holder = ProcessIdentity { host: "sync-host".into(), boot_id: None, pid: 7, pid_start: None };
    let options = LeaseOptions {
        purpose: "sync".into(),
        run_id: "r9".into(),
        ttl: std::time::Duration::from_secs(60),
        clock: Arc::new(tidemark_core::SystemClock),
        identity: holder,
    };
    let _held = Lease::acquire(&lake, "objects/account", options).await.unwrap();
    let err = Doctor::new(lake.clone()).with_repair(true).run().await.unwrap_err();
    assert!(matches!(err, LakeError::LeaseHeld { .. }), "{err}");
    // A check alone reads without the lease.
    Doctor::new(lake).run().await.unwrap();
}
