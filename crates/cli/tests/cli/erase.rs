//! `tidemark erase`: every version of the subjects gone from every byte under the lake, the
//! other records' history unchanged, the subjects not re-imported by later syncs, an audit
//! record kept; and killed erasures converge to the uninterrupted one.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::process::Stdio;

use tidemark_lake::arrow::array::{Array, BooleanArray, RecordBatch};
use tidemark_lake::arrow::compute::filter_record_batch;
use tidemark_lake::read::{HISTORY, quote, utf8};
use tidemark_lake::{HistoryTable, LakeLocation, Ledger};
use tidemark_sfsim::SimHandle;
use tidemark_sfsim::changes::{Amount, ChangeRoundSpec, apply_change_round};

use crate::crash::{Lcg, OBJECTS, run_killed, snapshot, start_sim, tidemark_command, write_config};

fn tidemark(args: &[&str], config: &Path, lake: &Path, sim: &SimHandle) -> (bool, String, String) {
    let out = tidemark_command(args, config, lake, sim, &lake.with_extension("stderr"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("tidemark runs");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn update_every_contact(sim: &SimHandle, seed: u64) {
    let mut org = sim.state.org.write();
    org.advance_clock(chrono::Duration::minutes(30));
    let spec = ChangeRoundSpec {
        objects: Some(vec!["Contact".into()]),
        updates: Amount::Share { share: 1.0 },
        ..ChangeRoundSpec::default()
    };
    apply_change_round(&mut org, &spec, seed).expect("change round");
}

/// `(Id, personal values)` of every Contact version in the lake.
async fn contact_values(lake: &Path) -> Vec<(String, Vec<String>)> {
    let location = LakeLocation::parse(lake.to_str().unwrap()).unwrap();
    let table = HistoryTable::open(&location, "Contact").await.unwrap().unwrap();
    let ctx = table.session().await.unwrap();
    // Not the mailing street: the simulator gives contacts their account's address.
    let fields = ["Email", "Name", "Phone", "MobilePhone"];
    let list = fields.iter().map(|f| quote(f)).collect::<Vec<_>>().join(", ");
    let mut out = Vec::new();
    for b in table.collect(&ctx, &format!("SELECT {}, {list} FROM {HISTORY}", quote("Id"))).await.unwrap() {
        let columns: Vec<_> = (0..b.num_columns()).map(|i| utf8(b.column(i)).unwrap()).collect();
        for r in 0..b.num_rows() {
            let values = columns[1..].iter().filter(|c| c.is_valid(r)).map(|c| c.value(r).to_owned()).collect();
            out.push((columns[0].value(r).to_owned(), values));
        }
    }
    out
}

/// The subjects' values no other record shares (a shared phone number is not theirs alone).
fn own_values(all: &[(String, Vec<String>)], subjects: &HashSet<String>) -> BTreeSet<String> {
    let theirs: BTreeSet<String> = all.iter().filter(|(id, _)| subjects.contains(id)).flat_map(|(_, v)| v.clone()).collect();
    let others: BTreeSet<String> = all.iter().filter(|(id, _)| !subjects.contains(id)).flat_map(|(_, v)| v.clone()).collect();
    theirs.difference(&others).filter(|v| v.len() >= 6).cloned().collect()
}

/// The snapshot without the subjects' versions.
fn others(snapshot: Vec<(String, RecordBatch)>, subjects: &HashSet<String>) -> Vec<(String, RecordBatch)> {
    snapshot
        .into_iter()
        .map(|(name, batch)| {
            if name != "Contact" {
                return (name, batch);
            }
            let ids = utf8(batch.column_by_name("Id").unwrap()).unwrap();
            let keep: BooleanArray = (0..ids.len()).map(|r| Some(!subjects.contains(ids.value(r)))).collect();
            (name, filter_record_batch(&batch, &keep).unwrap())
        })
        .collect()
}

/// Two dimensions of the contacts (one joined to their accounts) and a push flow keyed by their Ids whose rows with an
/// even-length email are rejected (the error names the email).
const DERIVED: &str = r#"models:
  contact_dim:
    key: [Id]
    sources:
      - { name: contact, object: Contact, columns: [Email, LastName, Phone] }
  contact_accounts:
    dating: source_time
    key: [Id]
    sources:
      - { name: contact, object: Contact, columns: [LastName] }
      - { name: account, object: Account, join: { AccountId: Id }, columns: [Name, Industry] }
push:
  vendors:
    query: SELECT id AS code__c, lastname AS name, CASE WHEN length(email) % 2 = 0 THEN email ELSE 'Gold' END AS tier__c FROM contact
    object: Vendor__c
    mode: upsert
    external_id: Code__c
"#;

/// A lake of two syncs (every Contact updated in between), each followed by a model load and
/// a push run, and a checkpoint; the subjects.
async fn prepared(dir: &Path, sim: &SimHandle) -> (std::path::PathBuf, std::path::PathBuf, HashSet<String>) {
    let config = write_config(dir, sim);
    let yaml = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{yaml}{DERIVED}")).unwrap();
    sim.state.org.write().add_object(tidemark_sfsim::catalog::vendor());
    let lake = dir.join("prepared");
    for (round, date) in [(0, "2026-01-01"), (1, "2026-01-02")] {
        if round > 0 {
            update_every_contact(sim, 5);
        }
        for args in [&["sync", "--quiet", "--objects", OBJECTS][..], &["model", "run", "--run-date", date], &["push", "vendors"]]
        {
            let (ok, out, err) = tidemark(args, &config, &lake, sim);
            assert!(ok, "{args:?}: {out}{err}");
        }
    }
    let location = LakeLocation::parse(lake.to_str().unwrap()).unwrap();
    let contact = HistoryTable::open(&location, "Contact").await.unwrap().unwrap();
    tidemark_lake::deltalake::checkpoints::create_checkpoint(contact.delta(), None).await.unwrap();
    let mut ids: Vec<String> = contact_values(&lake).await.into_iter().map(|(id, _)| id).collect();
    ids.sort();
    ids.dedup();
    let subjects: HashSet<String> = ids.iter().step_by(40).cloned().collect();
    std::fs::write(dir.join("subjects.txt"), subjects.iter().cloned().collect::<Vec<_>>().join("\n")).unwrap();
    (config, lake, subjects)
}

/// The derived tables' rows (dimension, its state, the flow's snapshot and errors), each row as
/// text, sorted.
async fn derived_rows(lake: &Path) -> Vec<(&'static str, Vec<String>)> {
    let location = LakeLocation::parse(lake.to_str().unwrap()).unwrap();
    let mut out = Vec::new();
    for (name, url) in [
        ("dimension", location.mart_table_url("contact_dim")),
        ("state", location.internal_table_url("model_state/contact_dim")),
        ("snapshot", location.internal_table_url("push/vendors/snapshot")),
        ("errors", location.internal_table_url("push/vendors/errors")),
    ] {
        let table = tidemark_lake::history::open_table(&location, url).await.unwrap().unwrap_or_else(|| panic!("{name}"));
        let ctx = tidemark_lake::datafusion::prelude::SessionContext::new();
        table.update_datafusion_session(&ctx.state()).unwrap();
        let batches = ctx.read_table(table.table_provider().await.unwrap()).unwrap().collect().await.unwrap();
        let text = tidemark_lake::arrow::util::pretty::pretty_format_batches(&batches).unwrap().to_string();
        let mut rows: Vec<String> = text.lines().filter(|l| l.starts_with("| ")).skip(1).map(str::to_owned).collect();
        rows.sort();
        out.push((name, rows));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_record_leaves_no_byte_behind_and_does_not_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start_sim().await;
    let (config, lake, subjects) = prepared(dir.path(), &sim).await;
    let all = contact_values(&lake).await;
    let values = own_values(&all, &subjects);
    let versions = all.iter().filter(|(id, _)| subjects.contains(id)).count();
    assert!(subjects.len() >= 3 && versions >= 2 * subjects.len() && values.len() > 10, "{subjects:?} {versions} {values:?}");
    assert!(!crate::common::find_anywhere(&lake, &values).is_empty(), "the scan sees the subjects before the erasure");
    let before = others(snapshot(&lake).await, &subjects);
    let derived_before = derived_rows(&lake).await;
    let mentions = |row: &String| subjects.iter().any(|id| row.contains(id.as_str()));
    // (The state holds keys without a current row: none here.)
    for (name, rows) in derived_before.iter().filter(|(name, _)| *name != "state") {
        assert!(rows.iter().any(mentions) && !rows.iter().all(mentions), "{name}: some rows of subjects and of others");
    }
    let ids_file = dir.path().join("subjects.txt");

    let (ok, dry, err) = tidemark(&["erase", "Contact", "--ids", ids_file.to_str().unwrap(), "--dry-run"], &config, &lake, &sim);
    assert!(ok && dry.contains(&format!("{} records, {versions} versions would be erased", subjects.len())), "{dry}{err}");
    assert!(dry.contains("model contact_dim, push vendors, restores"), "{dry}");
    let (ok, out, err) =
        tidemark(&["erase", "Contact", "--ids", ids_file.to_str().unwrap(), "--reason", "ticket 42"], &config, &lake, &sim);
    assert!(ok, "{err}");
    assert!(out.contains(&format!("{} records, {versions} versions erased", subjects.len())), "{out}");

    let leaks = crate::common::find_anywhere(&lake, &values);
    assert!(leaks.is_empty(), "the subjects' values are still in the lake: {:?}", &leaks[..leaks.len().min(5)]);
    assert!(others(snapshot(&lake).await, &subjects) == before, "other records' history changed");
    assert!(contact_values(&lake).await.iter().all(|(id, _)| !subjects.contains(id)));
    // The derived rows of the subjects are gone; the others' are as they were.
    for ((name, want), (_, have)) in derived_before.iter().zip(derived_rows(&lake).await) {
        let kept: Vec<&String> = want.iter().filter(|r| !mentions(r)).collect();
        assert_eq!(have.iter().collect::<Vec<_>>(), kept, "{name}");
    }
    assert!(out.contains("model contact_dim: ") && out.contains("push vendors errors: "), "{out}");

    // The audit: who, why, which Ids and how many versions; started then completed.
    let audit: Vec<tidemark_govern::ErasureRecord> =
        Ledger::new(LakeLocation::parse(lake.to_str().unwrap()).unwrap()).read_rows("erasures").await.unwrap();
    let statuses: BTreeSet<&str> = audit.iter().map(|r| r.status.as_str()).collect();
    assert_eq!(statuses, BTreeSet::from(["started", "completed"]));
    assert!(audit.iter().all(|r| r.reason == "ticket 42" && r.versions.contains(&versions.to_string())), "{audit:?}");
    let audited: HashSet<String> = serde_json::from_str(&audit[0].ids).unwrap();
    assert_eq!(audited, subjects);

    // The org still has them and changes them: the next sync leaves them out.
    update_every_contact(&sim, 6);
    let (ok, _, err) = tidemark(&["sync", "--quiet", "--objects", OBJECTS], &config, &lake, &sim);
    assert!(ok, "{err}");
    assert!(contact_values(&lake).await.iter().all(|(id, _)| !subjects.contains(id)), "an erased record came back");
    assert!(contact_values(&lake).await.len() > all.len() - versions, "the other contacts' updates landed");
    // The next load and push run pick up from where they were (past the erasure's commits),
    // and bring nothing of the subjects back.
    for args in [&["model", "run", "--run-date", "2026-01-03"][..], &["push", "vendors"]] {
        let (ok, out, err) = tidemark(args, &config, &lake, &sim);
        assert!(ok, "{args:?}: {out}{err}");
    }
    let leaks = crate::common::find_anywhere(&lake, &values);
    assert!(leaks.is_empty(), "the subjects' values came back: {:?}", &leaks[..leaks.len().min(5)]);
    for (name, rows) in derived_rows(&lake).await {
        assert!(!rows.iter().any(mentions), "{name}: a subject is back");
    }

    // Lifting the suppression: a full sync brings back their current state only.
    let (ok, out, err) = tidemark(&["erase", "Contact", "--ids", ids_file.to_str().unwrap(), "--lift"], &config, &lake, &sim);
    assert!(ok && out.contains(&format!("{} records no longer suppressed", subjects.len())), "{out}{err}");
    let (ok, _, err) = tidemark(&["sync", "--quiet", "--full", "--objects", OBJECTS], &config, &lake, &sim);
    assert!(ok, "{err}");
    let back = contact_values(&lake).await;
    let returned: HashSet<&String> = back.iter().map(|(id, _)| id).filter(|id| subjects.contains(*id)).collect();
    assert_eq!(returned.len(), subjects.len(), "every lifted record is back");
    assert_eq!(
        back.iter().filter(|(id, _)| subjects.contains(id)).count(),
        subjects.len(),
        "their current state, not their history"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_erasures_converge_to_the_uninterrupted_one() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start_sim().await;
    let (config, prepared_lake, subjects) = prepared(dir.path(), &sim).await;
    let values = own_values(&contact_values(&prepared_lake).await, &subjects);
    let ids_file = dir.path().join("subjects.txt");
    let erase = ["erase", "Contact", "--ids", ids_file.to_str().unwrap()];

    let reference_lake = dir.path().join("reference");
    crate::govern::copy_dir(&prepared_lake, &reference_lake);
    let started = std::time::Instant::now();
    let (ok, _, err) = tidemark(&erase, &config, &reference_lake, &sim);
    let took = started.elapsed();
    assert!(ok, "{err}");
    let reference = snapshot(&reference_lake).await;
    let reference_derived = derived_rows(&reference_lake).await;

    let mut rng = Lcg(0x6572_6173);
    let mut kills = 0;
    // Trials until 20 were killed mid-run (a trial whose kill point came after the run finished
    // still checks the re-run, and does not count).
    let mut trial = 0;
    while kills < 20 && trial < 60 {
        trial += 1;
        let lake = dir.path().join(format!("trial-{trial}"));
        crate::govern::copy_dir(&prepared_lake, &lake);
        let stderr = lake.with_extension("stderr");
        let killed = tidemark_command(&erase, &config, &lake, &sim, &stderr);
        let after = std::time::Duration::from_secs_f64(took.as_secs_f64() * 0.95 * rng.next_unit());
        kills += u32::from(run_killed(killed, after, &stderr));
        // Running it again completes the interrupted erasure (or, if it never started, does it).
        let (ok, out, err) = tidemark(&erase, &config, &lake, &sim);
        assert!(ok, "trial {trial}: {out}{err}");
        let got = snapshot(&lake).await;
        for ((name, want), (_, have)) in reference.iter().zip(&got) {
            assert!(have == want, "trial {trial}: {name} differs from the uninterrupted erasure");
        }
        assert!(derived_rows(&lake).await == reference_derived, "trial {trial}: the derived tables differ");
        let leaks = crate::common::find_anywhere(&lake, &values);
        assert!(leaks.is_empty(), "trial {trial}: values left: {:?}", &leaks[..leaks.len().min(3)]);
        std::fs::remove_dir_all(&lake).unwrap();
    }
    assert_eq!(kills, 20, "20 erasures killed mid-run within 60 trials");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rectification_rewrites_a_field_in_every_version_and_the_old_value_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start_sim().await;
    let (config, lake, subjects) = prepared(dir.path(), &sim).await;
    let location = LakeLocation::parse(lake.to_str().unwrap()).unwrap();
    let emails = |lake: &Path| {
        let location = LakeLocation::parse(lake.to_str().unwrap()).unwrap();
        async move {
            let table = HistoryTable::open(&location, "Contact").await.unwrap().unwrap();
            let ctx = table.session().await.unwrap();
            let sql = format!("SELECT {}, {} FROM {HISTORY}", quote("Id"), quote("Email"));
            let mut out = Vec::new();
            for b in table.collect(&ctx, &sql).await.unwrap() {
                let (ids, emails) = (utf8(b.column(0)).unwrap(), utf8(b.column(1)).unwrap());
                out.extend(
                    (0..b.num_rows()).map(|r| (ids.value(r).to_owned(), emails.is_valid(r).then(|| emails.value(r).to_owned()))),
                );
            }
            out
        }
    };
    let old: BTreeSet<String> = {
        let all = emails(&lake).await;
        let theirs: BTreeSet<String> =
            all.iter().filter(|(id, _)| subjects.contains(id)).filter_map(|(_, e)| e.clone()).collect();
        let others: BTreeSet<String> =
            all.iter().filter(|(id, _)| !subjects.contains(id)).filter_map(|(_, e)| e.clone()).collect();
        theirs.difference(&others).cloned().collect()
    };
    assert!(!old.is_empty());
    let before = without_email(snapshot(&lake).await);
    let ids_file = dir.path().join("subjects.txt");
    let args = ["erase", "Contact", "--ids", ids_file.to_str().unwrap(), "--rectify", "Email=fixed@example.com"];
    let (ok, out, err) = tidemark(&args, &config, &lake, &sim);
    assert!(ok && out.contains("rectified") && !out.contains("suppressed"), "{out}{err}");

    for (id, email) in emails(&lake).await {
        if subjects.contains(&id) {
            assert_eq!(email.as_deref(), Some("fixed@example.com"), "{id}");
        }
    }
    assert!(crate::common::find_anywhere(&lake, &old).is_empty(), "an old email is left in the lake");
    // The dimension's rows of the subjects carry the new value too.
    let (_, dimension) = derived_rows(&lake).await.remove(0);
    let theirs: Vec<&String> = dimension.iter().filter(|r| subjects.iter().any(|id| r.contains(id.as_str()))).collect();
    assert!(!theirs.is_empty() && theirs.iter().all(|r| r.contains("fixed@example.com")), "{theirs:?}");
    assert!(without_email(snapshot(&lake).await) == before, "only the rectified field changed");
    let suppressed = Ledger::new(location).suppressed().await.unwrap();
    assert!(suppressed.values().all(|ids| ids.is_empty()), "rectified records are not suppressed");
    let (ok, _, err) =
        tidemark(&["erase", "Contact", "--ids", ids_file.to_str().unwrap(), "--rectify", "Birthdate=soon"], &config, &lake, &sim);
    assert!(!ok && err.contains("Birthdate") && err.contains("not a Date32"), "{err}");

    // Under a hash policy, the rectified value is stored hashed, as a sync would store it.
    const KEY: &str = "a hash key of thirty-two characters";
    let yaml = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!("{yaml}governance:\n  hash_key: ${{TEST_HASH_KEY}}\n  policies:\n    Contact:\n      Email: hash\n"),
    )
    .unwrap();
    let with_key = |args: &[&str]| {
        let out = tidemark_command(args, &config, &lake, &sim, &lake.with_extension("stderr"))
            .env("TEST_HASH_KEY", KEY)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    with_key(&["sync", "--quiet", "--objects", OBJECTS]);
    with_key(&["erase", "Contact", "--ids", ids_file.to_str().unwrap(), "--rectify", "Email=again@example.com"]);
    let hashed = tidemark_core::governance::HashKey::new(KEY.to_owned().into()).hash("again@example.com");
    for (id, email) in emails(&lake).await {
        if subjects.contains(&id) {
            assert_eq!(email.as_deref(), Some(hashed.as_str()), "{id}");
        }
    }
}

fn without_email(snapshot: Vec<(String, RecordBatch)>) -> Vec<(String, RecordBatch)> {
    snapshot
        .into_iter()
        .map(|(name, batch)| {
            let keep: Vec<usize> = (0..batch.num_columns()).filter(|&i| batch.schema().field(i).name() != "Email").collect();
            (name, batch.project(&keep).unwrap())
        })
        .collect()
}

/// `(Id, text of every column)` of the `contact_accounts` dimension's rows, sorted.
async fn contact_accounts(lake: &Path) -> Vec<(String, Option<String>, Option<String>, String)> {
    let location = LakeLocation::parse(lake.to_str().unwrap()).unwrap();
    let table =
        tidemark_lake::history::open_table(&location, location.mart_table_url("contact_accounts")).await.unwrap().unwrap();
    let ctx = tidemark_lake::datafusion::prelude::SessionContext::new();
    table.update_datafusion_session(&ctx.state()).unwrap();
    ctx.register_table("d", table.table_provider().await.unwrap()).unwrap();
    let sql = "SELECT \"Id\", \"Name\", \"Industry\", CAST(valid_from AS VARCHAR) || ' ' || \"LastName\" FROM d";
    let mut out = Vec::new();
    for b in ctx.sql(sql).await.unwrap().collect().await.unwrap() {
        let c: Vec<_> = (0..4).map(|i| utf8(b.column(i)).unwrap()).collect();
        let text = |i: usize, r: usize| c[i].is_valid(r).then(|| c[i].value(r).to_owned());
        out.extend((0..b.num_rows()).map(|r| (c[0].value(r).to_owned(), text(1, r), text(2, r), c[3].value(r).to_owned())));
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasing_an_account_clears_its_attributes_from_a_contact_dimension_and_keeps_the_rows() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start_sim().await;
    let (config, lake, _) = prepared(dir.path(), &sim).await;
    let location = LakeLocation::parse(lake.to_str().unwrap()).unwrap();
    let read = |object: &'static str, sql: String| {
        let location = location.clone();
        async move {
            let table = HistoryTable::open(&location, object).await.unwrap().unwrap();
            let ctx = table.session().await.unwrap();
            let mut out = Vec::new();
            for b in table.collect(&ctx, &sql).await.unwrap() {
                let (a, z) = (utf8(b.column(0)).unwrap(), utf8(b.column(1)).unwrap());
                out.extend((0..b.num_rows()).filter(|&r| z.is_valid(r)).map(|r| (a.value(r).to_owned(), z.value(r).to_owned())));
            }
            out
        }
    };
    // Accounts with contacts: every fifth is erased.
    let contact_account: Vec<(String, String)> = read("Contact", format!("SELECT \"Id\", \"AccountId\" FROM {HISTORY}")).await;
    let mut with_contacts: Vec<String> = contact_account.iter().map(|(_, a)| a.clone()).collect();
    with_contacts.sort();
    with_contacts.dedup();
    let erased: HashSet<String> = with_contacts.iter().step_by(5).cloned().collect();
    let affected: HashSet<String> = contact_account.iter().filter(|(_, a)| erased.contains(a)).map(|(c, _)| c.clone()).collect();
    let names: Vec<(String, String)> = read("Account", format!("SELECT \"Id\", \"Name\" FROM {HISTORY}")).await;
    let theirs: BTreeSet<String> = names.iter().filter(|(id, _)| erased.contains(id)).map(|(_, n)| n.clone()).collect();
    let others: BTreeSet<String> = names.iter().filter(|(id, _)| !erased.contains(id)).map(|(_, n)| n.clone()).collect();
    let values: BTreeSet<String> = theirs.difference(&others).filter(|n| n.len() >= 6).cloned().collect();
    let before = contact_accounts(&lake).await;
    assert!(!values.is_empty() && !affected.is_empty() && before.iter().any(|(id, ..)| affected.contains(id)));
    assert!(!crate::common::find_anywhere(&lake.join("marts"), &values).is_empty(), "the dimension holds the names");

    let ids_file = dir.path().join("accounts.txt");
    std::fs::write(&ids_file, erased.iter().cloned().collect::<Vec<_>>().join("\n")).unwrap();
    let (ok, out, err) = tidemark(&["erase", "Account", "--ids", ids_file.to_str().unwrap()], &config, &lake, &sim);
    assert!(ok, "{out}{err}");

    // Every row stays; the erased accounts' attributes are gone from their contacts' rows,
    // the other rows are as they were.
    let after = contact_accounts(&lake).await;
    assert_eq!(after.len(), before.len(), "no contact's row is lost");
    for (was, now) in before.iter().zip(&after) {
        assert_eq!((&was.0, &was.3), (&now.0, &now.3));
        if affected.contains(&was.0) && was.1.as_ref().is_some_and(|n| theirs.contains(n)) {
            assert_eq!((&now.1, &now.2), (&None, &None), "{}", now.0);
        } else if !affected.contains(&was.0) {
            assert_eq!(was, now);
        }
    }
    let leaks = crate::common::find_anywhere(&lake.join("marts"), &values);
    assert!(leaks.is_empty(), "an erased account's name is left in a dimension: {:?}", &leaks[..leaks.len().min(3)]);
}
