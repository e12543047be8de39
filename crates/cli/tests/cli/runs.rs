//! Runs that overlap: two syncs of one lake at once, and a holder killed mid-run.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use tidemark_lake::{Lease, LeaseOptions, ProcessIdentity};
use tidemark_sfsim::SimHandle;
use tidemark_sfsim::faults::FaultConfig;

use crate::crash::{snapshot, start_sim, sync_command, sync_command_logging_to, sync_fully, write_config};

fn output(mut cmd: Command, lake: &Path) -> (Option<i32>, String) {
    let status = cmd.status().expect("tidemark runs");
    (status.code(), std::fs::read_to_string(lake.with_extension("stderr")).unwrap_or_default())
}

/// Every response slowed, so a run holds its leases for seconds, far longer than the gap
/// between two processes started together.
fn slow_org(sim: &SimHandle) {
    sim.state.faults.set(FaultConfig { latency_ms: 40, ..FaultConfig::default() }, 1);
}

fn stdout_of(cmd: &mut Command) -> Output {
    cmd.stdout(std::process::Stdio::piped()).output().expect("tidemark runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_syncs_at_once_one_completes_and_the_lake_is_a_single_runs() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start_sim().await;
    let config = write_config(dir.path(), &sim);
    slow_org(&sim);
    let lake = dir.path().join("shared");
    // Both started together; the second writes its stderr beside another name.
    let mut first = sync_command(&config, &lake, &sim).spawn().unwrap();
    let second_lake_alias = dir.path().join("shared-second");
    let mut second = sync_command_logging_to(&config, &lake, &sim, &second_lake_alias.with_extension("stderr")).spawn().unwrap();
    let codes = [first.wait().unwrap().code(), second.wait().unwrap().code()];
    let errors = [
        std::fs::read_to_string(lake.with_extension("stderr")).unwrap(),
        std::fs::read_to_string(second_lake_alias.with_extension("stderr")).unwrap(),
    ];
    let mut sorted = codes;
    sorted.sort();
    assert_eq!(sorted, [Some(0), Some(3)], "exactly one run completes, the other exits 3: {codes:?}\n{errors:#?}");
    let loser = &errors[codes.iter().position(|c| *c == Some(3)).unwrap()];
    assert!(loser.contains("another run holds objects/"), "the loser names what is held: {loser}");
    assert!(!loser.contains("panicked"), "{loser}");

    // A single run into another lake from the same org state is the reference.
    sim.state.faults.set(FaultConfig::default(), 1);
    let reference_lake = dir.path().join("reference");
    sync_fully(&config, &reference_lake, &sim);
    let (reference, got) = (snapshot(&reference_lake).await, snapshot(&lake).await);
    for ((name, want), (_, have)) in reference.iter().zip(&got) {
        assert_eq!(have.num_rows(), want.num_rows(), "{name}: version count differs from a single run's");
        assert!(have == want, "{name}: content differs from a single run's");
    }

    // A third run afterwards adds nothing.
    let mut third = sync_command(&config, &lake, &sim);
    let out = stdout_of(&mut third);
    assert!(out.status.success(), "{}", std::fs::read_to_string(lake.with_extension("stderr")).unwrap());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("complete: 0 new versions"), "{text}");

    // Duplicates injected as a lake written before leases would hold them: doctor finds them,
    // refuses to call the lake healthy, and --repair restores exactly the single run's lake.
    let injected = inject_duplicates(&lake, "Contact").await;
    assert!(injected > 0);
    let doctor = |repair: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tidemark"));
        cmd.args(["doctor", "--lake", lake.to_str().unwrap()]);
        if repair {
            cmd.arg("--repair");
        }
        cmd.output().unwrap()
    };
    let found = doctor(false);
    let table = String::from_utf8_lossy(&found.stdout);
    assert_eq!(found.status.code(), Some(1), "{table}");
    assert!(
        table.lines().any(|l| l.starts_with("contact") && l.contains(&injected.to_string()) && l.contains("needs repair")),
        "{table}"
    );
    let fixed = doctor(true);
    assert!(fixed.status.success(), "{}", String::from_utf8_lossy(&fixed.stderr));
    assert_eq!(doctor(false).status.code(), Some(0));
    let got = snapshot(&lake).await;
    for ((name, want), (_, have)) in reference.iter().zip(&got) {
        assert!(have == want, "{name}: the repaired lake differs from a single run's");
    }
    sim.shutdown().await;
}

/// Appends a copy of every version of `object` as another run would have: returns how many.
async fn inject_duplicates(lake: &Path, object: &str) -> usize {
    use tidemark_lake::arrow::array::{RecordBatch, StringArray};
    let location = tidemark_lake::LakeLocation::parse(lake.to_str().unwrap()).unwrap();
    let mut table = tidemark_lake::HistoryTable::open(&location, object).await.unwrap().unwrap();
    let schema = table.schema().unwrap();
    let ctx = table.session().await.unwrap();
    let rows = table.collect(&ctx, "SELECT * FROM history").await.unwrap();
    let mut writer = tidemark_lake::VersionWriter::new(&table, "tidemark-injected:contact".into(), Vec::new()).await.unwrap();
    let mut n = 0;
    for b in rows {
        let columns = schema
            .fields()
            .iter()
            .map(|f| match f.name().as_str() {
                "_run_id" => std::sync::Arc::new(StringArray::from(vec!["injected"; b.num_rows()])) as _,
                name => tidemark_lake::arrow::compute::cast(b.column_by_name(name).unwrap(), f.data_type()).unwrap(),
            })
            .collect();
        n += b.num_rows();
        writer.write(RecordBatch::try_new(schema.clone(), columns).unwrap()).await.unwrap();
    }
    writer.commit(&mut table).await.unwrap();
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_holder_blocks_no_longer_than_its_lease() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start_sim().await;
    let config = write_config(dir.path(), &sim);
    let lake = dir.path().join("lake");

    // Killed on this machine: the next run sees the holder's process is gone and goes on.
    slow_org(&sim);
    let mut child = sync_command(&config, &lake, &sim).spawn().unwrap();
    let lease_dir = lake.join("_tidemark/leases/objects/account");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !lease_dir.is_dir() || std::fs::read_dir(&lease_dir).unwrap().next().is_none() {
        assert!(Instant::now() < deadline, "the first run never took its leases");
        assert!(child.try_wait().unwrap().is_none(), "the first run ended before it could be killed");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    sim.state.faults.set(FaultConfig::default(), 1);
    let (code, stderr) = output(sync_command(&config, &lake, &sim), &lake);
    assert_eq!(code, Some(0), "a SIGKILLed holder on this machine does not block: {stderr}");

    // Held by a run on another machine that stopped renewing: refused until the lease expires.
    let location = tidemark_lake::LakeLocation::parse(lake.to_str().unwrap()).unwrap();
    let elsewhere = ProcessIdentity { host: "other-host".into(), boot_id: Some("x".into()), pid: 4242, pid_start: None };
    let ttl = Duration::from_secs(4);
    let options = LeaseOptions {
        purpose: "sync".into(),
        run_id: "run-on-other-host".into(),
        ttl,
        clock: std::sync::Arc::new(tidemark_core::SystemClock),
        identity: elsewhere,
    };
    let taken_at = Instant::now();
    let held = Lease::acquire(&location, "objects/contact", options).await.unwrap();
    let (code, stderr) = output(sync_command(&config, &lake, &sim), &lake);
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("run-on-other-host") && stderr.contains("other-host"), "the holder is named: {stderr}");
    let (code, _) = loop {
        let (code, stderr) = output(sync_command(&config, &lake, &sim), &lake);
        if code != Some(3) || taken_at.elapsed() > Duration::from_secs(60) {
            break (code, stderr);
        }
    };
    assert_eq!(code, Some(0));
    assert!(taken_at.elapsed() >= ttl, "the lease was honoured until it expired");
    drop(held);
    sim.shutdown().await;
}
