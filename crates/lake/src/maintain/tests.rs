use std::collections::{BTreeMap, BTreeSet};

use tidemark_core::{FieldType, ManualClock, SourceField};

use super::*;
use crate::columns::initial_schema;
use crate::history::HistoryTable;
use crate::lease::{LeaseOptions, ProcessIdentity};
use crate::testing::{Row, batch};
use crate::writer::{VersionWriter, app_id};

const POLICY: (&str, &str) = ("tidemark.policies", r#"{"Name":"hash"}"#);

/// Small thresholds, so a few rows make a "small" file and a few thousand a large one.
fn settings() -> MaintenanceSettings {
    MaintenanceSettings {
        target_file_size: 4 * 1024 * 1024,
        small_file_size: 16 * 1024,
        min_files: 4,
        vacuum_retention: Duration::from_secs(3600),
        log_retention: Duration::from_secs(3600),
    }
}

async fn lake_with_account() -> (tempfile::TempDir, LakeLocation, HistoryTable) {
    let dir = tempfile::tempdir().unwrap();
    let lake = LakeLocation::parse(dir.path().join("lake").to_str().unwrap()).unwrap();
    let fields = [SourceField::of("Id", FieldType::Id), SourceField::text("Name")];
    let table = HistoryTable::create(&lake, "Account", &initial_schema(&fields)).await.unwrap();
    (dir, lake, table)
}

/// One sync-like commit: `rows` versions numbered from `first`, stamped with `run`.
async fn commit(table: &mut HistoryTable, run: &str, first: usize, rows: usize, tag: Option<(&str, &str)>) {
    let schema = table.schema().unwrap();
    let ids: Vec<&'static str> = (first..first + rows).map(|i| &*Box::leak(format!("001{i:012}").into_boxed_str())).collect();
    let run: &'static str = Box::leak(run.to_owned().into_boxed_str());
    let rows: Vec<Row> = ids.iter().enumerate().map(|(i, id)| (*id, 1_000 + i as i64, false, *id, 7, run)).collect();
    let metadata = vec![("tidemark.run_id".to_owned(), serde_json::Value::from(run))];
    let mut writer = VersionWriter::new(table, app_id("sync", "Account"), metadata)
        .await
        .unwrap()
        .with_file_tag(tag.map(|(k, v)| (k.to_owned(), v.to_owned())));
    writer.write(batch(&schema, &rows)).await.unwrap();
    writer.commit(table).await.unwrap();
}

/// Every row of the table as text, sorted.
async fn rows(lake: &LakeLocation) -> Vec<String> {
    let table = HistoryTable::open(lake, "Account").await.unwrap().unwrap();
    let ctx = table.session().await.unwrap();
    let batches = table.collect(&ctx, "SELECT * FROM history").await.unwrap();
    let text = deltalake::arrow::util::pretty::pretty_format_batches(&batches).unwrap().to_string();
    let mut lines: Vec<String> = text.lines().filter(|l| l.starts_with("| ")).skip(1).map(str::to_owned).collect();
    lines.sort();
    lines
}

/// Path → tags of the table's data files.
async fn files(table: &DeltaTable) -> BTreeMap<String, Option<String>> {
    use futures::StreamExt;
    let mut out = BTreeMap::new();
    let mut views = table.get_active_add_actions_by_partitions(&[]);
    while let Some(view) = views.next().await {
        #[allow(deprecated)]
        let add = view.unwrap().add_action();
        out.insert(add.path, add.tags.and_then(|t| t.get(POLICY.0).cloned().flatten()));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_files_merge_by_tag_large_ones_stay_and_every_row_is_kept() {
    let (_dir, lake, mut table) = lake_with_account().await;
    commit(&mut table, "big", 0, 20_000, None).await;
    let big: BTreeSet<String> = files(table.delta()).await.into_keys().collect();
    for i in 0..12 {
        commit(&mut table, &format!("plain-{i}"), 100_000 + i * 10, 10, None).await;
    }
    for i in 0..6 {
        commit(&mut table, &format!("hashed-{i}"), 200_000 + i * 10, 10, Some(POLICY)).await;
    }
    // Fewer than min_files under a third policy: left alone.
    commit(&mut table, "other", 300_000, 10, Some((POLICY.0, r#"{"Name":"null"}"#))).await;
    let before_rows = rows(&lake).await;
    let before = files(table.delta()).await;
    assert_eq!(before.len(), 20);

    let metrics = Maintain::new(lake.clone(), settings()).run().await.unwrap();
    let account = metrics.tables.iter().find(|t| t.table == "objects/account").unwrap();
    assert_eq!(account.outcome, TableOutcome::Done);
    assert_eq!((account.files_before, account.compaction.files_removed, account.compaction.files_added), (20, 18, 2));
    assert_eq!(account.files_after, 4);
    assert_eq!(account.compaction.rows, 180);

    let table = HistoryTable::open(&lake, "Account").await.unwrap().unwrap();
    let after = files(table.delta()).await;
    assert!(big.iter().all(|f| after.contains_key(f)), "the large file was rewritten");
    let mut tags: Vec<Option<String>> = after.values().cloned().collect();
    tags.sort();
    assert_eq!(
        tags,
        vec![None, None, Some(r#"{"Name":"hash"}"#.to_owned()), Some(r#"{"Name":"null"}"#.to_owned())],
        "each policy's files merged apart, keeping their tag"
    );
    assert_eq!(rows(&lake).await, before_rows, "the rows are the same");
    // Compaction is data-neutral: the table stays append-only, and the last writer is still the
    // sync although the last commit is the compaction (vacuum, with nothing to delete, commits nothing).
    let properties = table.delta().snapshot().unwrap().table_config().append_only == Some(true);
    assert!(properties, "delta.appendOnly is kept");
    assert_eq!(table.last_commit_run().await.unwrap().as_deref(), Some("other"));
    let last = table.last_commit().await.unwrap().unwrap();
    assert_eq!(last.info.get(MAINTENANCE_COMMIT).and_then(|v| v.as_str()), Some("compact"));

    // Nothing left to merge: a second run rewrites nothing.
    let again = Maintain::new(lake.clone(), settings()).run().await.unwrap();
    assert_eq!(again.files_compacted(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vacuum_and_log_cleanup_wait_for_their_retention() {
    let (_dir, lake, mut table) = lake_with_account().await;
    for i in 0..8 {
        commit(&mut table, &format!("r{i}"), i * 10, 10, None).await;
    }
    let root = table.delta().table_url().to_file_path().unwrap();
    // A file a crashed writer left behind: never committed.
    let some_file = files(table.delta()).await.into_keys().next().unwrap();
    std::fs::copy(root.join(&some_file), root.join("part-orphan.zstd.parquet")).unwrap();
    let clock = ManualClock::new(chrono::Utc::now());
    let maintain = || Maintain::new(lake.clone(), settings()).with_clock(Arc::new(clock.clone()));

    let first = maintain().run().await.unwrap();
    let account = first.tables.iter().find(|t| t.table == "objects/account").unwrap();
    assert_eq!(account.compaction.files_removed, 8);
    assert_eq!(account.files_vacuumed, 0, "nothing is older than the retention yet");
    assert_eq!(account.logs_removed, 0);
    assert!(account.checkpoint.is_some());
    let parquet = |root: &std::path::Path| {
        std::fs::read_dir(root)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "parquet"))
            .count()
    };
    assert_eq!(parquet(&root), 10, "8 compacted, 1 merged, 1 orphan");

    clock.advance(chrono::Duration::hours(2));
    let dry = maintain().with_dry_run(true).run().await.unwrap();
    assert_eq!(dry.files_vacuumed(), 9);
    assert_eq!(parquet(&root), 10, "a dry run deletes nothing");
    let second = maintain().run().await.unwrap();
    let account = second.tables.iter().find(|t| t.table == "objects/account").unwrap();
    assert_eq!(account.files_vacuumed, 9, "the compacted files and the orphan");
    assert!(account.logs_removed > 0, "log entries before the checkpoint went");
    assert_eq!(parquet(&root), 1);
    let reopened = HistoryTable::open(&lake, "Account").await.unwrap().unwrap();
    let ctx = reopened.session().await.unwrap();
    let count = reopened.collect(&ctx, "SELECT count(*) FROM history").await.unwrap();
    assert_eq!(deltalake::arrow::util::pretty::pretty_format_batches(&count).unwrap().to_string().matches("80").count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_table_is_left_alone_and_a_writer_waits_for_maintenance() {
    let (_dir, lake, mut table) = lake_with_account().await;
    for i in 0..6 {
        commit(&mut table, &format!("r{i}"), i * 10, 10, None).await;
    }
    let options = |purpose: &str, host: &str| LeaseOptions {
        purpose: purpose.into(),
        run_id: format!("{purpose}-run"),
        ttl: Duration::from_secs(60),
        clock: Arc::new(SystemClock),
        identity: ProcessIdentity { host: host.into(), boot_id: None, pid: 7, pid_start: None },
    };
    let sync = Lease::acquire(&lake, "objects/account", options("sync", "sync-host")).await.unwrap();
    let metrics = Maintain::new(lake.clone(), settings()).run().await.unwrap();
    let account = metrics.tables.iter().find(|t| t.table == "objects/account").unwrap();
    assert!(matches!(&account.outcome, TableOutcome::Busy { holder } if holder.contains("sync run")), "{account:?}");
    assert_eq!(files(table.delta()).await.len(), 6, "nothing compacted");
    sync.release().await.unwrap();

    // Maintenance (of another machine) holds the table: a writer waits until it is released.
    let maintaining = Lease::acquire(&lake, "objects/account", options(MAINTENANCE_PURPOSE, "other-host")).await.unwrap();
    let waiter = tokio::spawn({
        let lake = lake.clone();
        let options = options("sync", "sync-host");
        async move { Lease::acquire(&lake, "objects/account", options).await }
    });
    // Long enough for several looks at the lease: a writer that did not wait would be done.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!waiter.is_finished(), "the writer went ahead of maintenance");
    maintaining.release().await.unwrap();
    let taken = tokio::time::timeout(Duration::from_secs(30), waiter).await.unwrap().unwrap().unwrap();
    taken.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_table_of_the_lake_is_found() {
    let (_dir, lake, _table) = lake_with_account().await;
    let ledger = crate::Ledger::new(lake.clone());
    ledger
        .record_schema_events(&[crate::SchemaEvent {
            at: chrono::Utc::now(),
            run_id: "r".into(),
            object: "Account".into(),
            kind: "field_added".into(),
            field: "Name".into(),
            column: "Name".into(),
            detail: String::new(),
        }])
        .await
        .unwrap();
    let tables = lake.all_tables().await.unwrap();
    assert_eq!(tables, vec!["_tidemark/schema_events".to_owned(), "objects/account".to_owned()]);
    assert_eq!(lease_resource("objects/account").as_deref(), Some("objects/account"));
    assert_eq!(lease_resource("sources/app/orders").as_deref(), Some("sources/app"));
    assert_eq!(lease_resource("_tidemark/model_state/contact_dim").as_deref(), Some("marts/contact_dim"));
    assert_eq!(lease_resource("_tidemark/push/vendors/snapshot").as_deref(), Some("push/vendors"));
    assert_eq!(lease_resource("_tidemark/sync_runs"), None);
}
