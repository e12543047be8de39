//! `tidemark maintain` on a synced lake: a dry run changes nothing, a run compacts every table
//! and the history reads the same, a table a sync holds is skipped with exit code 2.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use tidemark_lake::{LakeLocation, Lease, LeaseOptions, ProcessIdentity};

use crate::crash::{change_round, snapshot, start_sim, sync_fully, write_config};

fn maintain(config: &Path, lake: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .arg("maintain")
        .args(extra)
        .arg("--config")
        .arg(config)
        .arg("--lake")
        .arg(lake)
        .env("SIM_SECRET", "unused by maintain")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("tidemark runs")
}

/// The `files` column ("12 → 1") of a table's row in the report.
fn files_of(stdout: &str, table: &str) -> (u64, u64) {
    let row =
        stdout.lines().find(|l| l.split_whitespace().next() == Some(table)).unwrap_or_else(|| panic!("{table} in {stdout}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    (cells[1].parse().unwrap(), cells[3].parse().unwrap())
}

fn data_files(table: &Path) -> usize {
    std::fs::read_dir(table).unwrap().filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "parquet")).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintain_compacts_a_synced_lake_and_skips_a_held_table() {
    let sim = start_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim);
    let lake = dir.path().join("lake");
    sync_fully(&config, &lake, &sim);
    for _ in 0..3 {
        change_round(&sim);
        sync_fully(&config, &lake, &sim);
    }
    let before = snapshot(&lake).await;
    let account = lake.join("objects/account");
    let files_before = data_files(&account);

    let dry = maintain(&config, &lake, &["--dry-run"]);
    assert!(dry.status.success(), "{}", String::from_utf8_lossy(&dry.stderr));
    let stderr = String::from_utf8_lossy(&dry.stderr);
    assert!(stderr.contains("would compact"), "{stderr}");
    assert_eq!(data_files(&account), files_before, "a dry run writes nothing");

    let run = maintain(&config, &lake, &[]);
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(run.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&run.stderr));
    for table in ["objects/account", "objects/contact", "objects/opportunity", "_tidemark/sync_runs"] {
        let (before, after) = files_of(&stdout, table);
        assert!(after < before, "{table}: {before} → {after}\n{stdout}");
    }
    assert_eq!(snapshot(&lake).await, before, "the history reads the same");

    // A sync's lease on Contact: the table is left alone and the run says so.
    let location = LakeLocation::parse(lake.to_str().unwrap()).unwrap();
    let options = LeaseOptions {
        purpose: "sync".into(),
        run_id: "elsewhere".into(),
        ttl: std::time::Duration::from_secs(300),
        clock: Arc::new(tidemark_core::SystemClock),
        identity: ProcessIdentity { host: "another-host".into(), boot_id: None, pid: 1, pid_start: None },
    };
    let held = Lease::acquire(&location, "objects/contact", options).await.unwrap();
    change_round(&sim);
    let busy = maintain(&config, &lake, &["--tables", "objects/contact,objects/account"]);
    assert_eq!(busy.status.code(), Some(2), "{}", String::from_utf8_lossy(&busy.stderr));
    let stdout = String::from_utf8_lossy(&busy.stdout);
    assert!(stdout.lines().any(|l| l.starts_with("objects/contact") && l.contains("busy: sync run elsewhere")), "{stdout}");
    assert!(String::from_utf8_lossy(&busy.stderr).contains("objects/contact was left for the next run"));
    held.release().await.unwrap();
}
