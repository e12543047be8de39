//! `tidemark validate`: the whole configuration checked offline, an environment's overlay laid
//! over it, errors naming the field.

use std::process::{Command, Stdio};

fn validate(dir: &std::path::Path, extra: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .arg("validate")
        .arg("--config")
        .arg(dir.join("tidemark.yaml"))
        .args(extra)
        .env("TIDEMARK_SECRET", "not-shown")
        .env_remove("TIDEMARK_ENV")
        .stdin(Stdio::null())
        .output()
        .expect("tidemark runs");
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

const BASE: &str = "salesforce:\n  auth:\n    flow: client_credentials\n    login_url: https://login.example.com\n    client_id: abc\n    client_secret: ${TIDEMARK_SECRET}\n\
                    pipelines:\n  hourly:\n    schedule: \"5 * * * *\"\n    time_zone: America/New_York\n    steps:\n      - sync: {objects: [Account]}\n      - maintain: {}\n";

#[test]
fn validate_checks_offline_applies_the_overlay_and_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tidemark.yaml"), BASE).unwrap();
    let (code, stdout, stderr) = validate(dir.path(), &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("0 models, 0 push flows, 0 sources, 1 pipeline"), "{stdout}");
    let row = stdout.lines().find(|l| l.starts_with("hourly")).expect("the pipeline's row");
    assert!(row.contains("America/New_York") && row.contains("sync → maintain") && row.contains(":05:00"), "{row}");

    // The production overlay changes the schedule; a missing overlay is an error naming it.
    let (code, _, stderr) = validate(dir.path(), &["--env", "prod"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("tidemark.prod.yaml"), "{stderr}");
    std::fs::write(dir.path().join("tidemark.prod.yaml"), "pipelines:\n  hourly:\n    schedule: \"*/20 * * * *\"\n").unwrap();
    let (code, stdout, stderr) = validate(dir.path(), &["--env", "prod"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("tidemark.prod.yaml (TIDEMARK_ENV=prod): valid") && stdout.contains("*/20 * * * *"), "{stdout}");

    std::fs::write(dir.path().join("tidemark.prod.yaml"), "pipelines:\n  hourly:\n    steps: [push: {flows: [vendors]}]\n")
        .unwrap();
    let (code, _, stderr) = validate(dir.path(), &["--env", "prod"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("pipelines.hourly.steps[0].push.flows[0]: no push flow 'vendors'"), "{stderr}");
    assert!(!stderr.contains("not-shown"), "a secret in an error: {stderr}");
}
