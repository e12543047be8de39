//! `tidemark model run | status` end to end: a config with models and no Salesforce section,
//! the post's files, and `model run` killed with SIGKILL at seeded random points.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tidemark_lake::LakeLocation;
use tidemark_lake::arrow::array::RecordBatch;
use tidemark_lake::arrow::compute::concat_batches;

use crate::crash::Lcg;

fn post_data() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/scd2-post"))
}

const MODEL: &str = "dim_customer:
  key: [customer_id]
  columns: { effective: rec_eff_dt, expiry: rec_exp_dt }
  sources:
    - name: customer_master
      files: landing/customer_master
      types: { customer_id: bigint, row_audit_ts: timestamp }
      order_by: row_audit_ts
      status_column: op
      columns: [first_name, last_name, employer_name]
    - name: customer_address
      files: landing/customer_address
      types: { customer_id: bigint, row_audit_ts: timestamp }
      order_by: row_audit_ts
      columns: [email_id, city, country]
";

/// A config folder: `tidemark.yaml` (lake only) and `models/customer.yaml`.
fn project(dir: &Path, model: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("models")).unwrap();
    std::fs::create_dir_all(dir.join("landing/customer_master")).unwrap();
    std::fs::create_dir_all(dir.join("landing/customer_address")).unwrap();
    std::fs::write(dir.join("models/customer.yaml"), model).unwrap();
    let config = dir.join("tidemark.yaml");
    std::fs::write(&config, format!("lake:\n  location: {}\n", dir.join("lake").display())).unwrap();
    config
}

fn tidemark(args: &[&str], config: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tidemark"));
    cmd.args(args).arg("--config").arg(config).env("RUST_LOG", "warn");
    cmd
}

fn run_ok(args: &[&str], config: &Path) -> String {
    let out = tidemark(args, config).output().unwrap();
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn model_run_and_status_on_the_post_files() {
    let dir = tempfile::tempdir().unwrap();
    // The post's files have no status column.
    let config = project(dir.path(), &MODEL.replace("      status_column: op\n", ""));
    let data = post_data();
    for (source, file) in
        [("customer_master", "customer_master_with_ts.csv"), ("customer_address", "customer_address_with_ts.csv")]
    {
        std::fs::copy(data.join(file), dir.path().join("landing").join(source).join(file)).unwrap();
    }
    let status = run_ok(&["model", "status"], &config);
    assert!(
        status.contains("dim_customer") && status.lines().nth(1).unwrap().trim_end().ends_with('2'),
        "two files wait:\n{status}"
    );
    let out = run_ok(&["model", "run", "--run-date", "2022-07-01"], &config);
    assert!(out.contains("dim_customer: load 1 (2022-07-01): 5 new"), "{out}");
    for (source, file) in
        [("customer_master", "customer_master_with_ts_incr.csv"), ("customer_address", "customer_address_with_ts_incr.csv")]
    {
        std::fs::copy(data.join(file), dir.path().join("landing").join(source).join(file)).unwrap();
    }
    let out = run_ok(&["model", "run", "dim_customer", "--run-date", "2023-03-19"], &config);
    assert!(out.contains("load 2 (2023-03-19): 3 new, 2 changed, 0 deleted"), "{out}");
    let out = run_ok(&["model", "run", "--run-date", "2023-03-19"], &config);
    assert!(out.contains("no new input"), "{out}");
    let status = run_ok(&["model", "status"], &config);
    assert!(status.contains("2023-03-19") && status.contains(" 10 ") && status.contains(" 8 "), "rows 10, current 8:\n{status}");

    // Errors: an unknown model, an earlier run date.
    let out = tidemark(&["model", "run", "dim_custmer"], &config).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("dim_customer"));
    std::fs::write(
        dir.path().join("landing/customer_master/late.csv"),
        "customer_id,first_name,last_name,employer_name,row_audit_ts\n1,A,B,C,2024-01-01 00:00:00\n",
    )
    .unwrap();
    let out = tidemark(&["model", "run", "--run-date", "2023-01-01"], &config).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("before the last load"), "{err}");
}

#[test]
fn a_config_error_in_a_model_file_names_the_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let config = project(
        dir.path(),
        &MODEL.replace(
            "order_by: row_audit_ts\n      status_column",
            "order_by: row_audit_ts\n      surprise: 1\n      status_column",
        ),
    );
    let out = tidemark(&["model", "run"], &config).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("customer.yaml")
            && err.contains("dim_customer.sources[0]")
            && err.contains("surprise"),
        "{err}"
    );
}

/// Seeded landed files: `keys` customers, then a change file (5% updated, 1% new, 0.5% deleted).
fn land(dir: &Path, keys: u64, seed: u64) {
    let mut rng = Lcg(seed);
    let mut master = String::from("customer_id,first_name,last_name,employer_name,row_audit_ts,op\n");
    let mut address = String::from("customer_id,email_id,city,country,row_audit_ts\n");
    for k in 1..=keys {
        master.push_str(&format!("{k},First{k},Last{},Employer {},2024-01-01 00:00:00,I\n", k % 97, k % 13));
        address.push_str(&format!("{k},c{k}@example.com,City {},Country {},2024-01-01 00:00:00\n", k % 50, k % 7));
    }
    std::fs::write(dir.join("landing/customer_master/0001.csv"), master).unwrap();
    std::fs::write(dir.join("landing/customer_address/0001.csv"), address).unwrap();
    let mut master = String::from("customer_id,first_name,last_name,employer_name,row_audit_ts,op\n");
    let mut address = String::from("customer_id,email_id,city,country,row_audit_ts\n");
    for k in 1..=keys {
        let r = rng.next_unit();
        if r < 0.05 {
            master.push_str(&format!("{k},First{k},Changed{k},Employer 1,2024-02-01 00:00:00,U\n"));
        } else if r < 0.055 {
            master.push_str(&format!("{k},First{k},Last,Employer 1,2024-02-01 00:00:00,D\n"));
        } else if r < 0.08 {
            address.push_str(&format!("{k},moved{k}@example.com,City 0,Country 0,2024-02-01 00:00:00\n"));
        }
    }
    for k in keys + 1..=keys + keys / 100 {
        master.push_str(&format!("{k},First{k},New,Employer 2,2024-02-01 00:00:00,I\n"));
    }
    std::fs::write(dir.join("landing/customer_master/0002.csv"), master).unwrap();
    std::fs::write(dir.join("landing/customer_address/0002.csv"), address).unwrap();
}

/// The dimension (every column, by surrogate key) and the load records.
async fn snapshot(lake: &Path) -> (RecordBatch, Vec<String>) {
    let location = LakeLocation::parse(lake.to_str().unwrap()).unwrap();
    let table = tidemark_lake::history::open_table(&location, location.mart_table_url("dim_customer")).await.unwrap().unwrap();
    let ctx = tidemark_lake::datafusion::prelude::SessionContext::new();
    table.update_datafusion_session(&ctx.state()).unwrap();
    ctx.register_table("dim", table.table_provider().await.unwrap()).unwrap();
    let batches = ctx.sql("SELECT * FROM dim ORDER BY customer_sk").await.unwrap().collect().await.unwrap();
    let dimension = concat_batches(&batches[0].schema(), &batches).unwrap();
    let loads = tidemark_models::ledger::LoadLedger::new(location).loads("dim_customer").await.unwrap();
    (dimension, loads.iter().map(|l| format!("{} {} {} {}", l.load, l.run_date, l.files, l.counts)).collect())
}

fn load_command(config: &Path, date: &str, stderr: &Path) -> Command {
    let mut cmd = tidemark(&["model", "run", "--run-date", date], config);
    cmd.stdout(Stdio::null()).stderr(Stdio::from(std::fs::File::create(stderr).unwrap()));
    cmd
}

fn load_fully(config: &Path, date: &str) -> Duration {
    let started = Instant::now();
    let log = config.with_file_name("stderr.log");
    let status = load_command(config, date, &log).status().unwrap();
    assert!(status.success(), "model run failed: {}", std::fs::read_to_string(&log).unwrap_or_default());
    started.elapsed()
}

/// Starts a load and SIGKILLs it after `after` (unless it finished first).
fn load_killed(config: &Path, date: &str, after: Duration) -> bool {
    let log = config.with_file_name("stderr.log");
    let mut child = load_command(config, date, &log).spawn().unwrap();
    let deadline = Instant::now() + after;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "model run failed on its own: {}", std::fs::read_to_string(&log).unwrap_or_default());
            return false;
        }
        if Instant::now() >= deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_model_runs_converge_to_the_uninterrupted_dimension() {
    const TRIALS: u64 = 20;
    const KEYS: u64 = 20_000;
    let root = tempfile::tempdir().unwrap();
    let reference_dir = root.path().join("reference");
    let config = project(&reference_dir, MODEL);
    land(&reference_dir, KEYS, 11);
    // The reference loads as the trials do: the first files on one day, the second on the next.
    std::fs::rename(reference_dir.join("landing/customer_master/0002.csv"), reference_dir.join("m2.csv")).unwrap();
    std::fs::rename(reference_dir.join("landing/customer_address/0002.csv"), reference_dir.join("a2.csv")).unwrap();
    let first_took = load_fully(&config, "2024-01-01");
    std::fs::rename(reference_dir.join("m2.csv"), reference_dir.join("landing/customer_master/0002.csv")).unwrap();
    std::fs::rename(reference_dir.join("a2.csv"), reference_dir.join("landing/customer_address/0002.csv")).unwrap();
    let second_took = load_fully(&config, "2024-02-01");
    let reference = snapshot(&reference_dir.join("lake")).await;
    assert!(reference.0.num_rows() as u64 > KEYS, "the second load changed rows");

    let mut rng = Lcg(0x6d6f_6465);
    let mut kills = 0;
    for trial in 0..TRIALS {
        let dir = root.path().join(format!("trial-{trial}"));
        let config = project(&dir, MODEL);
        land(&dir, KEYS, 11);
        let m2 = dir.join("landing/customer_master/0002.csv");
        let a2 = dir.join("landing/customer_address/0002.csv");
        std::fs::rename(&m2, dir.join("m2.csv")).unwrap();
        std::fs::rename(&a2, dir.join("a2.csv")).unwrap();
        let kill_first = Duration::from_secs_f64(first_took.as_secs_f64() * 0.95 * rng.next_unit());
        kills += u32::from(load_killed(&config, "2024-01-01", kill_first));
        load_fully(&config, "2024-01-01");
        std::fs::rename(dir.join("m2.csv"), &m2).unwrap();
        std::fs::rename(dir.join("a2.csv"), &a2).unwrap();
        let kill_second = Duration::from_secs_f64(second_took.as_secs_f64() * 0.95 * rng.next_unit());
        kills += u32::from(load_killed(&config, "2024-02-01", kill_second));
        load_fully(&config, "2024-02-01");
        let got = snapshot(&dir.join("lake")).await;
        assert_eq!(got.1, reference.1, "trial {trial}: the load records differ");
        assert_eq!(got.0.num_rows(), reference.0.num_rows(), "trial {trial}: row count differs");
        assert!(got.0 == reference.0, "trial {trial}: the dimension differs from the uninterrupted one");
    }
    assert!(kills >= TRIALS as u32, "at least {TRIALS} runs were killed mid-load (got {kills} of {})", 2 * TRIALS);
}
