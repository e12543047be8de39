//! Table maintenance on a synced lake: compaction after many incremental syncs keeps every
//! version, and syncs running beside maintenance lose nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;
use tidemark_core::maintenance::MaintenanceSettings;
use tidemark_lake::HistoryTable;
use tidemark_lake::RunStatus;
use tidemark_lake::maintain::{Maintain, MaintenanceMetrics, TableOutcome};

use crate::common::{CHECKED, Harness};

/// Every file of a test lake is small: compaction merges whatever it finds.
fn settings() -> MaintenanceSettings {
    MaintenanceSettings {
        target_file_size: 8 * 1024 * 1024,
        small_file_size: 1024 * 1024,
        min_files: 2,
        vacuum_retention: Duration::from_secs(3600),
        log_retention: Duration::from_secs(3600),
    }
}

/// Each checked object's history, every column, as sorted text.
async fn histories(h: &Harness) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for object in CHECKED {
        let table = HistoryTable::open(&h.lake, object).await.unwrap().expect("table");
        let ctx = table.session().await.unwrap();
        let batches = table.collect(&ctx, "SELECT * FROM history").await.unwrap();
        let text = tidemark_lake::arrow::util::pretty::pretty_format_batches(&batches).unwrap().to_string();
        let mut lines: Vec<String> = text.lines().filter(|l| l.starts_with("| ")).map(str::to_owned).collect();
        lines.sort();
        out.push((object.to_owned(), lines));
    }
    out
}

async fn sync_round(h: &mut Harness, round: u64) {
    h.change(json!({"updates": 3, "creates": 1, "deletes": 1}), round);
    h.advance(chrono::Duration::minutes(5));
    let report = h.sync().await;
    assert_eq!(report.status(), RunStatus::Complete, "round {round}: {report:#?}");
}

fn object_table(metrics: &MaintenanceMetrics, object: &str) -> (u64, u64) {
    let name = format!("objects/{}", object.to_ascii_lowercase());
    let t = metrics.tables.iter().find(|t| t.table == name).unwrap_or_else(|| panic!("{name} maintained"));
    assert_eq!(t.outcome, TableOutcome::Done, "{t:?}");
    (t.files_before, t.files_after)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_incremental_syncs_compact_into_few_files_that_read_the_same() {
    let mut h = Harness::start(20, 41).await;
    h.sync().await;
    for round in 1..100 {
        sync_round(&mut h, round).await;
    }
    h.check().await;
    let before = histories(&h).await;

    let metrics = Maintain::new(h.lake.clone(), settings()).run().await.unwrap();
    for object in CHECKED {
        let (before, after) = object_table(&metrics, object);
        assert!(before >= 50 && after <= 2, "{object}: {before} files → {after}");
    }
    assert!(metrics.tables.iter().any(|t| t.table == "_tidemark/sync_runs" && t.files_after < t.files_before));
    assert_eq!(histories(&h).await, before, "the same rows before and after compaction");
    h.check().await;

    // Syncs go on over the compacted tables.
    sync_round(&mut h, 100).await;
    h.check().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syncs_running_beside_maintenance_lose_nothing() {
    let mut h = Harness::start(20, 42).await;
    h.sync().await;
    let stop = Arc::new(AtomicBool::new(false));
    let maintenance = tokio::spawn({
        let (lake, stop) = (h.lake.clone(), stop.clone());
        async move {
            let mut runs: Vec<MaintenanceMetrics> = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                runs.push(Maintain::new(lake.clone(), settings()).run().await.expect("maintenance runs"));
            }
            runs
        }
    });
    for round in 1..=15 {
        sync_round(&mut h, round).await;
    }
    stop.store(true, Ordering::Relaxed);
    let runs = maintenance.await.unwrap();
    let failed: Vec<_> = runs.iter().flat_map(|r| r.failed()).collect();
    assert!(failed.is_empty(), "{failed:#?}");
    let compacted: u64 = runs.iter().map(MaintenanceMetrics::files_compacted).sum();
    let yielded = runs.iter().flat_map(|r| r.busy()).count();
    eprintln!("{} maintenance runs beside 15 syncs: {compacted} files compacted, {yielded} tables left to a sync", runs.len());
    assert!(compacted > 0, "maintenance compacted nothing while the syncs ran");
    h.check().await;
}
