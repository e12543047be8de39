//! `tidemark sync` killed with SIGKILL at seeded random points: each re-run converges to exactly
//! the lake an uninterrupted run produces.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tidemark_lake::arrow::array::RecordBatch;
use tidemark_lake::arrow::compute::concat_batches;
use tidemark_lake::read::{HISTORY, quote};
use tidemark_lake::{HistoryTable, LakeLocation, Ledger};
use tidemark_sfsim::changes::{Amount, ChangeRoundSpec, apply_change_round};
use tidemark_sfsim::{SimConfig, SimHandle, SimServer};

pub(crate) const OBJECTS: &str = "Account,Contact,Opportunity,Case,Invoice__c";
const TRIALS: u64 = 20;

pub(crate) async fn start_sim() -> SimHandle {
    SimServer::new(SimConfig { accounts: 120, seed: 3, ..SimConfig::default() })
        .start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("simulator starts")
}

pub(crate) fn write_config(dir: &Path, sim: &SimHandle) -> PathBuf {
    let path = dir.join("tidemark.yaml");
    let yaml = format!(
        "salesforce:\n  auth:\n    flow: client_credentials\n    login_url: {}\n    client_id: {}\n    client_secret: ${{SIM_SECRET}}\n\
         sync:\n  parallelism: 3\n  bulk_threshold: 150\n  commit_rows: 200\n  bulk_page_records: 150\n  reconcile_every: 0s\n\
         \x20 objects:\n    Contact:\n      formula_snapshot_every: 0s\n",
        sim.base_url(),
        sim.credentials.client_id
    );
    std::fs::write(&path, yaml).unwrap();
    path
}

pub(crate) fn sync_command(config: &Path, lake: &Path, sim: &SimHandle) -> Command {
    sync_command_logging_to(config, lake, sim, &lake.with_extension("stderr"))
}

/// [`sync_command`] with standard error into `stderr`.
pub(crate) fn sync_command_logging_to(config: &Path, lake: &Path, sim: &SimHandle, stderr: &Path) -> Command {
    tidemark_command(&["sync", "--quiet", "--objects", OBJECTS], config, lake, sim, stderr)
}

/// `tidemark ARGS --config CONFIG --lake LAKE` with the simulator's secret, warnings only, no
/// standard output and standard error into `stderr`.
pub(crate) fn tidemark_command(args: &[&str], config: &Path, lake: &Path, sim: &SimHandle, stderr: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tidemark"));
    cmd.args(args)
        .arg("--config")
        .arg(config)
        .arg("--lake")
        .arg(lake)
        .env("SIM_SECRET", &sim.credentials.client_secret)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(stderr).unwrap()));
    cmd
}

/// Runs a sync to completion; returns how long it took.
pub(crate) fn sync_fully(config: &Path, lake: &Path, sim: &SimHandle) -> Duration {
    let started = Instant::now();
    let status = sync_command(config, lake, sim).status().expect("tidemark runs");
    assert!(
        status.success(),
        "sync failed: {status}: {}",
        std::fs::read_to_string(lake.with_extension("stderr")).unwrap_or_default()
    );
    started.elapsed()
}

/// Starts a sync and SIGKILLs it after `after` (if it has not finished by then).
fn sync_killed(config: &Path, lake: &Path, sim: &SimHandle, after: Duration) -> bool {
    run_killed(sync_command(config, lake, sim), after, &lake.with_extension("stderr"))
}

/// Runs `command` and SIGKILLs it after `after` unless it finished first (it must then have
/// succeeded; `stderr` holds its log); whether it was killed.
pub(crate) fn run_killed(mut command: Command, after: Duration, stderr: &Path) -> bool {
    let mut child = command.spawn().expect("tidemark starts");
    let deadline = Instant::now() + after;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(
                status.success(),
                "tidemark failed on its own: {status}: {}",
                std::fs::read_to_string(stderr).unwrap_or_default()
            );
            return false;
        }
        if Instant::now() >= deadline {
            child.kill().expect("SIGKILL");
            child.wait().unwrap();
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

pub(crate) fn change_round(sim: &SimHandle) {
    let mut org = sim.state.org.write();
    org.advance_clock(chrono::Duration::minutes(30));
    let spec = ChangeRoundSpec {
        updates: Amount::Share { share: 0.1 },
        creates: Amount::Count(4),
        deletes: Amount::Count(3),
        hard_deletes: Amount::Count(2),
        undeletes: Amount::Count(1),
        parent_renames: Amount::Count(3),
        ..ChangeRoundSpec::default()
    };
    apply_change_round(&mut org, &spec, 21).expect("change round");
}

/// The lake's content without what legitimately differs between runs (run ids, ingest times).
pub(crate) async fn snapshot(lake: &Path) -> Vec<(String, RecordBatch)> {
    let location = LakeLocation::parse(lake.to_str().unwrap()).unwrap();
    let mut out = Vec::new();
    for object in OBJECTS.split(',') {
        let table = HistoryTable::open(&location, object).await.unwrap().expect("table exists");
        let ctx = table.session().await.unwrap();
        let cols: Vec<String> =
            table.column_names().unwrap().into_iter().filter(|c| c != "_run_id" && c != "_ingested_at").collect();
        let list = cols.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", ");
        let sql =
            format!("SELECT {list} FROM {HISTORY} ORDER BY {}, {}, {}", quote("Id"), quote("_version_at"), quote("_origin"));
        let batches = table.collect(&ctx, &sql).await.unwrap();
        let schema = batches.first().map(|b| b.schema()).expect("rows");
        out.push((object.to_owned(), concat_batches(&schema, &batches).unwrap()));
    }
    let mut events: Vec<String> = Ledger::new(location)
        .schema_events()
        .await
        .unwrap()
        .into_iter()
        .map(|e| format!("{} {} {} {}", e.object, e.kind, e.field, e.column))
        .collect();
    events.sort();
    out.push((
        "schema events".into(),
        RecordBatch::try_from_iter([("e", std::sync::Arc::new(tidemark_lake::arrow::array::StringArray::from(events)) as _)])
            .unwrap(),
    ));
    out
}

/// A tiny seeded generator for kill points.
pub(crate) struct Lcg(pub(crate) u64);
impl Lcg {
    pub(crate) fn next_unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_syncs_converge_to_the_uninterrupted_lake() {
    // Reference: two uninterrupted syncs around one change round.
    let dir = tempfile::tempdir().unwrap();
    let sim = start_sim().await;
    let config = write_config(dir.path(), &sim);
    let reference_lake = dir.path().join("reference");
    let first_took = sync_fully(&config, &reference_lake, &sim);
    change_round(&sim);
    let second_took = sync_fully(&config, &reference_lake, &sim);
    let reference = snapshot(&reference_lake).await;
    sim.shutdown().await;

    let mut rng = Lcg(0x7469_6465);
    let mut kills = 0;
    for trial in 0..TRIALS {
        let sim = start_sim().await;
        let config = write_config(dir.path(), &sim);
        let lake = dir.path().join(format!("trial-{trial}"));
        // Both syncs are interrupted somewhere in the first 95% of their reference duration.
        let kill_first = Duration::from_secs_f64(first_took.as_secs_f64() * 0.95 * rng.next_unit());
        let kill_second = Duration::from_secs_f64(second_took.as_secs_f64() * 0.95 * rng.next_unit());
        kills += u32::from(sync_killed(&config, &lake, &sim, kill_first));
        sync_fully(&config, &lake, &sim);
        change_round(&sim);
        kills += u32::from(sync_killed(&config, &lake, &sim, kill_second));
        sync_fully(&config, &lake, &sim);
        let got = snapshot(&lake).await;
        for ((name, want), (_, have)) in reference.iter().zip(&got) {
            assert_eq!(have.schema(), want.schema(), "trial {trial}: {name} schema differs");
            assert_eq!(have.num_rows(), want.num_rows(), "trial {trial}: {name} version count differs");
            assert!(have == want, "trial {trial}: {name} content differs from the uninterrupted lake");
        }
        sim.shutdown().await;
    }
    assert!(kills >= TRIALS as u32, "at least {TRIALS} syncs were actually killed mid-run (got {kills} of {})", 2 * TRIALS);
}
