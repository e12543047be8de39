//! A new user's first hour: read-only commands never create a lake, a second demo does not
//! corrupt the first, printing commands end quietly in a pipe, an interrupted first sync shows
//! as such, and no log level prints record values or secrets.

use std::collections::BTreeSet;
use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};

use tidemark_sfsim::{SimConfig, SimServer};

use crate::crash::{start_sim, sync_command, write_config};

fn tidemark(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tidemark"));
    cmd.args(args).env("RUST_LOG", "warn");
    cmd
}

fn run(cmd: &mut Command) -> (Option<i32>, String, String) {
    let out = cmd.output().expect("tidemark runs");
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn read_only_commands_name_a_missing_lake_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("typo");
    let t = typo.to_str().unwrap();
    for args in [
        vec!["status", "--lake", t],
        vec!["sql", "--lake", t, "SELECT 1"],
        vec!["catalog", "ddl", "--engine", "duckdb", "--lake", t],
        vec!["catalog", "manifest", "--lake", t],
    ] {
        let (code, _, stderr) = run(&mut tidemark(&args));
        assert_eq!(code, Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains("no lake at") && stderr.contains("typo"), "{args:?}: {stderr}");
        assert!(!typo.exists(), "{args:?} created the lake folder");
    }
}

/// A config logging in with client credentials at `login_url`.
fn config_at(dir: &Path, login_url: &str) -> std::path::PathBuf {
    let config = dir.join("tidemark.yaml");
    let yaml = format!(
        "salesforce:\n  auth:\n    flow: client_credentials\n    login_url: {login_url}\n    client_id: a\n    client_secret: 'b'\n"
    );
    std::fs::write(&config, yaml).unwrap();
    config
}

#[test]
fn a_failed_login_creates_no_lake() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 9 of loopback: the login fails at once.
    let config = config_at(dir.path(), "http://127.0.0.1:9");
    let lake = dir.path().join("lake");
    let (code, _, stderr) =
        run(tidemark(&["sync", "--quiet", "--lake", lake.to_str().unwrap(), "--config"]).arg(&config).env("RUST_LOG", "off"));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("connecting to Salesforce"), "{stderr}");
    assert!(!lake.exists(), "a failed login left a lake folder behind");
}

#[test]
fn a_login_url_without_a_scheme_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_at(dir.path(), "login.salesforce.com");
    let (code, _, stderr) = run(tidemark(&["sync", "--config"]).arg(&config));
    assert_eq!(code, Some(1));
    assert!(stderr.contains("salesforce.auth.login_url") && stderr.contains("https://"), "{stderr}");
}

/// The demo into `lake` with a small org; returns (exit code, stdout, stderr).
fn demo(lake: &Path, extra: &[&str], rust_log: &str) -> (Option<i32>, String, String) {
    let mut cmd = tidemark(&["demo", "--quiet", "--accounts", "40", "--lake", lake.to_str().unwrap()]);
    cmd.args(extra).env("RUST_LOG", rust_log);
    run(&mut cmd)
}

#[test]
fn a_second_demo_refuses_the_first_lake_unless_fresh_and_pipes_end_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("demo");
    let (code, _, stderr) = demo(&lake, &[], "warn");
    assert_eq!(code, Some(0), "{stderr}");
    let reconciled = |lake: &Path| {
        let q = "SELECT count(*) AS n FROM account_history WHERE _origin = 'reconcile'";
        run(&mut tidemark(&["sql", "--format", "csv", "--lake", lake.to_str().unwrap(), q])).1
    };
    let first_deletes = reconciled(&lake);
    let (code, _, stderr) = demo(&lake, &[], "warn");
    assert_eq!(code, Some(1));
    assert!(stderr.contains("--fresh"), "{stderr}");
    let (code, _, stderr) = demo(&lake, &["--fresh"], "warn");
    assert_eq!(code, Some(0), "{stderr}");
    // A fresh lake, not the old one plus the new org's records seen as hard deletes.
    assert_eq!(reconciled(&lake), first_deletes);
    let (_, status, _) = run(&mut tidemark(&["status", "--lake", lake.to_str().unwrap()]));
    assert!(status.contains("Account") && status.contains("complete"), "{status}");

    // `status | head -1`: the reader goes away before status writes.
    let mut child =
        tidemark(&["status", "--lake", lake.to_str().unwrap()]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    drop(child.stdout.take());
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    child.wait().unwrap();
    assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{stderr}");

    // No colour codes in logs written to a file or pipe.
    let (_, _, logs) = demo(&dir.path().join("demo2"), &[], "info");
    assert!(logs.contains("INFO") && !logs.contains('\u{1b}'), "ANSI codes in a non-terminal log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_first_sync_shows_as_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start_sim().await;
    let config = write_config(dir.path(), &sim);
    let lake = dir.path().join("lake");
    // SIGKILL right after the first commit of any object: its first sync never completes.
    let mut child = sync_command(&config, &lake, &sim).spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let committed = |p: &Path| p.join("_delta_log/00000000000000000001.json").exists();
    loop {
        let tables: Vec<_> =
            std::fs::read_dir(lake.join("objects")).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
        if tables.iter().any(|t| committed(t)) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no commit appeared");
        assert!(child.try_wait().unwrap().is_none(), "the sync finished before it could be interrupted");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let (code, stdout, stderr) = run(&mut tidemark(&["status", "--lake", lake.to_str().unwrap()]));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("interrupted, initial load not complete"), "{stdout}");
    assert!(stderr.contains("never completed a first sync"), "{stderr}");
    sim.shutdown().await;
}

/// Values no log line may hold: emails, phones and names of the org's records.
fn record_values(sim: &tidemark_sfsim::SimHandle) -> BTreeSet<String> {
    let org = sim.state.org.read();
    let mut values = BTreeSet::new();
    for object in ["Account", "Contact", "Lead"] {
        let Some(table) = org.table(object) else { continue };
        for field in ["Name", "Email", "Phone", "MobilePhone", "LastName"] {
            let Some(f) = table.def.field(field) else { continue };
            for row in table.rows() {
                if let Some(v) = org.field_json(table, row, f).as_str() {
                    if v.len() >= 8 {
                        values.insert(v.to_owned());
                    }
                }
            }
        }
    }
    values
}

fn assert_clean(what: &str, output: &str, values: &BTreeSet<String>, secrets: &[&str]) {
    assert!(output.contains(" TRACE ") || output.contains(" DEBUG "), "{what}: trace logging was not on");
    for v in values {
        // The simulator's data are synthetic: the offending line is shown to find its source.
        let line = output.lines().find(|l| l.contains(v.as_str()));
        assert!(line.is_none(), "{what}: a record value appears in the output: {}", line.unwrap_or_default());
    }
    for s in secrets {
        assert!(!output.contains(s), "{what}: a secret appears in the output");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_logging_prints_no_record_value_and_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    // The demo's org, generated again from the same seed and size, to know its values.
    let twin = SimServer::new(SimConfig { accounts: 40, seed: 42, ..SimConfig::default() })
        .start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let values = record_values(&twin);
    assert!(values.iter().any(|v| v.contains('@')), "the org has emails to look for");
    let (code, stdout, stderr) = demo(&dir.path().join("demo"), &[], "trace");
    assert_eq!(code, Some(0), "{stderr}");
    assert_clean("demo", &format!("{stdout}{stderr}"), &values, &[twin.credentials.client_secret.as_str()]);
    twin.shutdown().await;

    let sim = start_sim().await;
    let config = write_config(dir.path(), &sim);
    let lake = dir.path().join("lake");
    let mut cmd = sync_command(&config, &lake, &sim);
    cmd.env("RUST_LOG", "trace").stderr(Stdio::piped()).stdout(Stdio::piped());
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_clean("sync", &all, &record_values(&sim), &[sim.credentials.client_secret.as_str()]);
    sim.shutdown().await;
}
