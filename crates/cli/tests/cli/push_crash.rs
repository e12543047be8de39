//! `tidemark push` killed with SIGKILL at seeded random points, in insert and upsert modes:
//! after each re-run the org holds exactly the records an uninterrupted run creates, none twice.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value as J;
use tidemark_sfsim::truth::record_fields_json;
use tidemark_sfsim::{SimConfig, SimHandle, SimServer};

use crate::crash::{Lcg, run_killed, tidemark_command};

const TRIALS: u64 = 21;
const ROWS: u64 = 900;

/// The three flows a trial kills: inserts through Bulk jobs (no field finds them again),
/// inserts through Collections (keyed by a unique external id), and upserts.
const FLOWS: [(&str, &str, &str, &str); 3] = [
    ("insert_bulk", "Account", "Name", "Crash "),
    ("insert_lookup", "Vendor__c", "Code__c", "L-"),
    ("upsert", "Vendor__c", "Code__c", "U-"),
];

async fn start_sim() -> SimHandle {
    let sim = SimServer::new(SimConfig { accounts: 0, seed: 5, ..SimConfig::default() })
        .start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("simulator starts");
    sim.state.org.write().add_object(tidemark_sfsim::catalog::vendor());
    sim
}

fn write_config(dir: &Path, sim: &SimHandle) -> PathBuf {
    let path = dir.join("push.yaml");
    let range = format!("range(0, {ROWS})");
    let yaml = format!(
        "salesforce:\n  auth:\n    flow: client_credentials\n    login_url: {url}\n    client_id: {id}\n    client_secret: ${{SIM_SECRET}}\n\
         push:\n\
         \x20 insert_bulk:\n    query: SELECT value AS src, 'Crash ' || CAST(value AS VARCHAR) AS name, value AS numberofemployees FROM {range}\n\
         \x20   object: Account\n    mode: insert\n    key: [src]\n    exclude: [src]\n    bulk_threshold: 100\n    bulk_job_rows: 200\n\
         \x20 insert_lookup:\n    query: SELECT 'L-' || CAST(value AS VARCHAR) AS code__c, 'Lookup' AS name, CAST(value AS DOUBLE) AS score__c FROM {range}\n\
         \x20   object: Vendor__c\n    mode: insert\n    key: [code__c]\n\
         \x20 upsert:\n    query: SELECT 'U-' || CAST(value AS VARCHAR) AS code__c, 'Upsert' AS name, CAST(value AS DOUBLE) AS score__c FROM {range}\n\
         \x20   object: Vendor__c\n    mode: upsert\n    external_id: Code__c\n    bulk_threshold: 300\n    bulk_job_rows: 250\n",
        url = sim.base_url(),
        id = sim.credentials.client_id
    );
    std::fs::write(&path, yaml).unwrap();
    path
}

fn push_command(config: &Path, lake: &Path, sim: &SimHandle, flow: &str) -> Command {
    tidemark_command(&["push", flow], config, lake, sim, &lake.with_extension("stderr"))
}

fn push_fully(config: &Path, lake: &Path, sim: &SimHandle, flow: &str) -> Duration {
    let started = Instant::now();
    let status = push_command(config, lake, sim, flow).status().expect("tidemark runs");
    assert!(status.success(), "push failed: {status}: {}", std::fs::read_to_string(lake.with_extension("stderr")).unwrap());
    started.elapsed()
}

/// Starts a push and SIGKILLs it after `after` unless it finished first; whether it was killed.
fn push_killed(config: &Path, lake: &Path, sim: &SimHandle, flow: &str, after: Duration) -> bool {
    run_killed(push_command(config, lake, sim, flow), after, &lake.with_extension("stderr"))
}

/// Live records of `object` whose `field` starts with `prefix`, by that value, with each one's
/// (Name, number) values.
fn live(sim: &SimHandle, object: &str, field: &str, prefix: &str) -> BTreeMap<String, Vec<(J, J)>> {
    let org = sim.state.org.read();
    let table = org.table(object).unwrap();
    let number = if object == "Account" { "NumberOfEmployees" } else { "Score__c" };
    let mut out: BTreeMap<String, Vec<(J, J)>> = BTreeMap::new();
    for row in table.rows().iter().filter(|r| !table.is_deleted(r)) {
        let fields = record_fields_json(&table.def, row);
        if let Some(key) = fields[field].as_str().filter(|k| k.starts_with(prefix)) {
            out.entry(key.to_owned()).or_default().push((fields["Name"].clone(), fields[number].clone()));
        }
    }
    out
}

/// What an uninterrupted run of `flow` leaves: one record per row, holding the row's values.
fn expected(flow: &str) -> BTreeMap<String, Vec<(J, J)>> {
    (0..ROWS)
        .map(|i| match flow {
            "insert_bulk" => (format!("Crash {i}"), vec![(J::from(format!("Crash {i}")), J::from(i))]),
            "insert_lookup" => (format!("L-{i}"), vec![(J::from("Lookup"), J::from(i as f64))]),
            _ => (format!("U-{i}"), vec![(J::from("Upsert"), J::from(i as f64))]),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_pushes_create_every_record_once() {
    let dir = tempfile::tempdir().unwrap();
    // Reference durations of uninterrupted runs, to spread the kills over a whole run.
    let mut took = BTreeMap::new();
    let sim = start_sim().await;
    let config = write_config(dir.path(), &sim);
    let lake = dir.path().join("reference");
    std::fs::create_dir_all(&lake).unwrap();
    for (flow, object, field, prefix) in FLOWS {
        took.insert(flow, push_fully(&config, &lake, &sim, flow));
        assert!(live(&sim, object, field, prefix) == expected(flow), "{flow}: the uninterrupted run");
    }
    sim.shutdown().await;

    let mut rng = Lcg(0x7075_7368);
    let mut kills = 0;
    for trial in 0..TRIALS {
        let (flow, object, field, prefix) = FLOWS[(trial % 3) as usize];
        let sim = start_sim().await;
        let config = write_config(dir.path(), &sim);
        let lake = dir.path().join(format!("trial-{trial}"));
        std::fs::create_dir_all(&lake).unwrap();
        // Killed up to twice in a row (a crash during the recovery of a crash), then finished.
        for _ in 0..2 {
            let after = Duration::from_secs_f64(took[flow].as_secs_f64() * rng.next_unit());
            kills += u32::from(push_killed(&config, &lake, &sim, flow, after));
        }
        push_fully(&config, &lake, &sim, flow);
        let got = live(&sim, object, field, prefix);
        let twice: Vec<&String> = got.iter().filter(|(_, r)| r.len() > 1).map(|(k, _)| k).collect();
        assert!(twice.is_empty(), "trial {trial} ({flow}): created twice: {twice:?}");
        let want = expected(flow);
        let differ: Vec<&String> = want.keys().filter(|k| got.get(*k) != want.get(*k)).collect();
        assert!(
            differ.is_empty() && got.len() == want.len(),
            "trial {trial} ({flow}): differs from an uninterrupted run at {differ:?}"
        );
        sim.shutdown().await;
    }
    assert!(kills >= TRIALS as u32, "at least {TRIALS} pushes were actually killed mid-run (got {kills})");
}
