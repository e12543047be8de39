//! `tidemark restore` end to end: a sync, a change round (updates, deletes to the recycle bin,
//! hard deletes), then a restore to the instant before it (the command syncs first): every
//! Account and Contact of that instant is live again with its writable values, lookups to
//! re-created Accounts through their new Ids.

use std::collections::{BTreeMap, HashMap};
use std::process::Stdio;

use serde_json::{Value as J, json};
use tidemark_sfsim::changes::{ChangeRoundSpec, apply_change_round};
use tidemark_sfsim::truth::record_fields_json;
use tidemark_sfsim::{SimConfig, SimHandle, SimServer};

use crate::crash::{sync_fully, tidemark_command, write_config};

/// Per record Id: its fields both createable and updateable (what a restore can set back).
fn writable(sim: &SimHandle, object: &str) -> BTreeMap<String, (bool, serde_json::Map<String, J>)> {
    let org = sim.state.org.read();
    let table = org.table(object).expect("object exists");
    let names: Vec<&str> = table.def.fields.iter().filter(|f| f.createable && f.updateable).map(|f| f.name.as_str()).collect();
    table
        .rows()
        .iter()
        .map(|row| {
            let J::Object(all) = record_fields_json(&table.def, row) else { unreachable!() };
            let fields = all.into_iter().filter(|(k, _)| names.contains(&k.as_str())).collect();
            (table.id_of(row).to_string(), (table.is_deleted(row), fields))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_sets_accounts_and_contacts_back_after_a_change_round() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimServer::new(SimConfig { accounts: 30, seed: 11, ..SimConfig::default() })
        .start(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("simulator starts");
    let config = write_config(dir.path(), &sim);
    let lake = dir.path().join("lake");
    sync_fully(&config, &lake, &sim);
    let at = sim.state.org.write().advance_clock(chrono::Duration::minutes(30));
    sim.state.org.write().advance_clock(chrono::Duration::minutes(30));
    let before: Vec<_> = ["Account", "Contact"].iter().map(|o| writable(&sim, o)).collect();
    let spec: ChangeRoundSpec = serde_json::from_value(json!({
        "objects": ["Account", "Contact"], "updates": 12, "creates": 3, "deletes": 3, "hard_deletes": 2
    }))
    .unwrap();
    let changed = apply_change_round(&mut sim.state.org.write(), &spec, 5).expect("change round");
    assert!(!changed.hard_deleted.is_empty() && !changed.deleted.is_empty());
    sim.state.org.write().advance_clock(chrono::Duration::minutes(30));

    let instant = at.to_rfc3339();
    let stderr = dir.path().join("restore.stderr");
    let run = |extra: &[&str]| {
        let mut args = vec!["restore", "Account", "Contact", "--as-of", instant.as_str()];
        args.extend_from_slice(extra);
        let status = tidemark_command(&args, &config, &lake, &sim, &stderr).status().expect("tidemark runs");
        assert!(status.success(), "restore {extra:?}: {status}: {}", std::fs::read_to_string(&stderr).unwrap_or_default());
    };
    let untouched = writable(&sim, "Account");
    run(&["--dry-run"]);
    assert_eq!(writable(&sim, "Account"), untouched, "a dry run changes nothing");
    run(&[]);

    // New Ids of re-created records, from the lake.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(["sql", "--lake"])
        .arg(&lake)
        .args(["--format", "csv", "SELECT old_id, new_id FROM restore_id_map"])
        .stderr(Stdio::inherit())
        .output()
        .expect("tidemark sql runs");
    assert!(out.status.success());
    let new_ids: HashMap<String, String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(',').map(|(a, b)| (a.to_owned(), b.to_owned())))
        .collect();
    assert!(new_ids.len() >= changed.hard_deleted.len(), "hard-deleted records were re-created: {new_ids:?}");
    let resolve = |v: &J| match v {
        J::String(s) => J::String(new_ids.get(s).cloned().unwrap_or_else(|| s.clone())),
        other => other.clone(),
    };
    for (object, earlier) in ["Account", "Contact"].iter().zip(&before) {
        let now = writable(&sim, object);
        for (id, (_, fields)) in earlier.iter().filter(|(_, (deleted, _))| !deleted) {
            let current = new_ids.get(id).unwrap_or(id);
            let (now_deleted, now_fields) = now.get(current).unwrap_or_else(|| panic!("{object} {id} is not back"));
            assert!(!now_deleted, "{object} {id} is still deleted");
            let expected: serde_json::Map<String, J> = fields.iter().map(|(k, v)| (k.clone(), resolve(v))).collect();
            assert_eq!(now_fields, &expected, "{object} {id}");
        }
    }
    for id in &changed.created {
        assert!(writable(&sim, "Account").contains_key(id) || writable(&sim, "Contact").contains_key(id), "created since: kept");
    }
    sim.shutdown().await;
}
