//! `tidemark govern apply`: a policy added after the history was written is brought to every
//! stored version, the old values leave no trace under the lake, and nothing else changes.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};

use tidemark_lake::arrow::array::{Array, RecordBatch};
use tidemark_lake::read::{HISTORY, quote, utf8};
use tidemark_lake::{HistoryTable, LakeLocation};
use tidemark_sfsim::SimHandle;

use crate::crash::{OBJECTS, snapshot, start_sim, write_config};

fn with_governance(config: &Path, rules: &str) {
    let base = std::fs::read_to_string(config).unwrap();
    let base = base.split("governance:").next().unwrap().to_owned();
    let section = format!("governance:\n  hash_key: ${{TEST_HASH_KEY}}\n  policies:\n    Contact:\n{rules}");
    std::fs::write(config, format!("{base}{section}")).unwrap();
}

/// `tidemark ARGS --config --lake` with the simulator's secret and the hash key.
fn command(args: &[&str], config: &Path, lake: &Path, sim: &SimHandle) -> Command {
    let mut cmd = crate::crash::tidemark_command(args, config, lake, sim, &lake.with_extension("stderr"));
    cmd.env("TEST_HASH_KEY", "a hash key of thirty-two characters");
    cmd
}

fn tidemark(args: &[&str], config: &Path, lake: &Path, sim: &SimHandle) -> (bool, String, String) {
    let out = command(args, config, lake, sim).stdout(Stdio::piped()).stderr(Stdio::piped()).output().expect("tidemark runs");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Contact's distinct values of `column` in the lake (every version).
async fn values(lake: &Path, column: &str) -> BTreeSet<String> {
    let location = LakeLocation::parse(lake.to_str().unwrap()).unwrap();
    let table = HistoryTable::open(&location, "Contact").await.unwrap().unwrap();
    let ctx = table.session().await.unwrap();
    let sql = format!("SELECT DISTINCT {} FROM {HISTORY}", quote(column));
    let mut out = BTreeSet::new();
    for b in table.collect(&ctx, &sql).await.unwrap() {
        let text = utf8(b.column(0)).unwrap();
        out.extend((0..text.len()).filter(|&r| text.is_valid(r)).map(|r| text.value(r).to_owned()));
    }
    out
}

/// Every data file tagged with Title's hash holds only hashes there.
async fn tags_tell_the_truth(lake: &Path) {
    let location = LakeLocation::parse(lake.to_str().unwrap()).unwrap();
    let table = HistoryTable::open(&location, "Contact").await.unwrap().unwrap();
    let mut checked = 0;
    for file in tidemark_lake::policy::file_tokens(table.delta(), "Contact").await.unwrap() {
        if !file.tokens.get("Title").is_some_and(|t| t.starts_with("hash:")) {
            continue;
        }
        let path = lake.join("objects/contact").join(&file.path);
        let reader = tidemark_lake::deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            std::fs::File::open(path).unwrap(),
        )
        .unwrap()
        .build()
        .unwrap();
        for batch in reader {
            let titles = utf8(batch.unwrap().column_by_name("Title").unwrap()).unwrap();
            for t in titles.iter().flatten() {
                assert!(
                    t.len() == 64 && t.bytes().all(|c| c.is_ascii_hexdigit()),
                    "{} is tagged hashed but holds {t}",
                    file.path
                );
            }
        }
        checked += 1;
    }
    assert!(checked > 0);
}

fn without(snapshot: Vec<(String, RecordBatch)>, columns: &[&str]) -> Vec<(String, RecordBatch)> {
    snapshot
        .into_iter()
        .map(|(name, batch)| {
            let keep: Vec<usize> =
                (0..batch.num_columns()).filter(|&i| !columns.contains(&batch.schema().field(i).name().as_str())).collect();
            (name, batch.project(&keep).unwrap())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn govern_apply_brings_the_whole_history_under_a_later_policy_and_leaves_no_trace() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start_sim().await;
    let config = write_config(dir.path(), &sim);
    let lake = dir.path().join("lake");
    with_governance(&config, "      Email: hash\n");
    let (ok, _, err) = tidemark(&["sync", "--quiet", "--objects", OBJECTS], &config, &lake, &sim);
    assert!(ok, "{err}");
    let raw_titles: BTreeSet<String> = values(&lake, "Title").await.into_iter().filter(|t| t.len() >= 6).collect();
    let raw_phones: BTreeSet<String> = values(&lake, "MobilePhone").await.into_iter().filter(|t| t.len() >= 6).collect();
    assert!(raw_titles.len() > 5 && raw_phones.len() > 20, "{} titles, {} phones", raw_titles.len(), raw_phones.len());

    // The policy changes and applies forward; the older versions wait for `govern apply`.
    with_governance(&config, "      Email: hash\n      Title: hash\n      MobilePhone: mask:last4\n");
    let (ok, _, err) = tidemark(&["sync", "--quiet", "--objects", OBJECTS], &config, &lake, &sim);
    assert!(ok, "{err}");
    let (ok, status, err) = tidemark(&["status"], &config, &lake, &sim);
    assert!(ok, "{err}");
    assert!(
        status.lines().any(|l| l.to_ascii_lowercase().starts_with("contact") && l.contains("Title") && l.contains("not yet")),
        "status shows the pending policy:\n{status}"
    );
    assert!(status.lines().any(|l| l.contains("Email") && l.contains("all versions")), "{status}");
    let (ok, dry, err) = tidemark(&["govern", "apply", "--dry-run"], &config, &lake, &sim);
    assert!(ok && dry.contains("MobilePhone, Title") && dry.contains("nothing written"), "{dry}{err}");
    // A checkpoint written before the apply holds the old files' statistics (min/max titles).
    let location = LakeLocation::parse(lake.to_str().unwrap()).unwrap();
    let contact = HistoryTable::open(&location, "Contact").await.unwrap().unwrap();
    tidemark_lake::deltalake::checkpoints::create_checkpoint(contact.delta(), None).await.unwrap();
    let checkpoints = |folder: &Path| -> Vec<String> {
        std::fs::read_dir(folder.join("objects/contact/_delta_log"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".checkpoint."))
            .collect()
    };
    let old_checkpoints = checkpoints(&lake);
    assert_eq!(old_checkpoints.len(), 1);
    assert!(!crate::common::find_anywhere(&lake, &raw_titles).is_empty(), "the scan sees the old values before the apply");
    let before = without(snapshot(&lake).await, &["Title", "MobilePhone"]);

    let (ok, applied, err) = tidemark(&["govern", "apply"], &config, &lake, &sim);
    assert!(ok, "{err}");
    assert!(
        applied.lines().any(|l| l.to_ascii_lowercase().starts_with("contact") && l.contains("MobilePhone, Title")),
        "{applied}"
    );

    // Every stored version is under the policy; no old value is left in any data file, log
    // entry or checkpoint; everything else is exactly as before.
    let titles = values(&lake, "Title").await;
    assert!(titles.iter().all(|t| t.len() == 64 && t.bytes().all(|c| c.is_ascii_hexdigit())), "{titles:?}");
    let phones = values(&lake, "MobilePhone").await;
    assert!(phones.iter().all(|p| p.chars().rev().skip(4).all(|c| c == '*')), "{phones:?}");
    let raw: BTreeSet<String> = raw_titles.union(&raw_phones).cloned().collect();
    let leaks = crate::common::find_anywhere(&lake, &raw);
    assert!(leaks.is_empty(), "old values left in the lake: {:?}", &leaks[..leaks.len().min(5)]);
    let now = checkpoints(&lake);
    assert!(now.len() == 1 && now != old_checkpoints, "the old checkpoint is replaced by a newer one: {now:?}");
    assert!(without(snapshot(&lake).await, &["Title", "MobilePhone"]) == before, "other columns changed");
    let (_, status, _) = tidemark(&["status"], &config, &lake, &sim);
    assert!(!status.contains("not yet"), "{status}");

    // Done is done: a second apply rewrites nothing, and syncs carry on without duplicates.
    let (ok, again, err) = tidemark(&["govern", "apply"], &config, &lake, &sim);
    assert!(ok && again.lines().any(|l| l.to_ascii_lowercase().starts_with("contact") && l.contains(" - ")), "{again}{err}");
    let (ok, synced, err) = tidemark(&["sync", "--objects", OBJECTS], &config, &lake, &sim);
    assert!(ok && synced.contains("0 new versions"), "{synced}{err}");
}

pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_applies_converge_to_the_uninterrupted_one() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start_sim().await;
    let config = write_config(dir.path(), &sim);
    let prepared = dir.path().join("prepared");
    with_governance(&config, "      Email: hash\n");
    assert!(tidemark(&["sync", "--quiet", "--objects", OBJECTS], &config, &prepared, &sim).0);
    let raw: BTreeSet<String> = values(&prepared, "Title").await.into_iter().filter(|t| t.len() >= 6).collect();
    with_governance(&config, "      Email: hash\n      Title: hash\n      MobilePhone: mask:last4\n");
    assert!(tidemark(&["sync", "--quiet", "--objects", OBJECTS], &config, &prepared, &sim).0);
    let location = LakeLocation::parse(prepared.to_str().unwrap()).unwrap();
    let contact = HistoryTable::open(&location, "Contact").await.unwrap().unwrap();
    tidemark_lake::deltalake::checkpoints::create_checkpoint(contact.delta(), None).await.unwrap();

    let reference_lake = dir.path().join("reference");
    copy_dir(&prepared, &reference_lake);
    let started = std::time::Instant::now();
    let (ok, _, err) = tidemark(&["govern", "apply"], &config, &reference_lake, &sim);
    let took = started.elapsed();
    assert!(ok, "{err}");
    let reference = snapshot(&reference_lake).await;

    let mut rng = crate::crash::Lcg(0x676f_7665);
    let mut kills = 0;
    // Trials until 20 were killed mid-run (a trial whose kill point came after the run finished
    // still checks the re-run, and does not count).
    let mut trial = 0;
    while kills < 20 && trial < 60 {
        trial += 1;
        let lake = dir.path().join(format!("trial-{trial}"));
        copy_dir(&prepared, &lake);
        let stderr = lake.with_extension("stderr");
        let mut killed = command(&["govern", "apply"], &config, &lake, &sim);
        killed.stdout(Stdio::null()).stderr(Stdio::from(std::fs::File::create(&stderr).unwrap()));
        let after = std::time::Duration::from_secs_f64(took.as_secs_f64() * 0.95 * rng.next_unit());
        kills += u32::from(crate::crash::run_killed(killed, after, &stderr));
        let (ok, _, err) = tidemark(&["govern", "apply"], &config, &lake, &sim);
        assert!(ok, "trial {trial}: the re-run completes: {err}");
        let got = snapshot(&lake).await;
        for ((name, want), (_, have)) in reference.iter().zip(&got) {
            assert!(have == want, "trial {trial}: {name} differs from the uninterrupted apply");
        }
        let leaks = crate::common::find_anywhere(&lake, &raw);
        assert!(leaks.is_empty(), "trial {trial}: old values left: {:?}", &leaks[..leaks.len().min(3)]);
        let (_, status, _) = tidemark(&["status"], &config, &lake, &sim);
        assert!(!status.contains("not yet"), "trial {trial}: {status}");
        std::fs::remove_dir_all(&lake).unwrap();
    }
    assert_eq!(kills, 20, "20 applies killed mid-run within 60 trials");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_brings_the_rows_it_rewrites_under_the_policies_their_new_files_state() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start_sim().await;
    let config = write_config(dir.path(), &sim);
    let lake = dir.path().join("lake");
    with_governance(&config, "      Email: hash\n");
    assert!(tidemark(&["sync", "--quiet", "--objects", OBJECTS], &config, &lake, &sim).0);
    with_governance(&config, "      Email: hash\n      Title: hash\n");
    assert!(tidemark(&["sync", "--quiet", "--objects", OBJECTS], &config, &lake, &sim).0);
    // The erased record's file also holds other records' titles, written before Title's policy.
    let subject = values(&lake, "Id").await.into_iter().next().unwrap();
    std::fs::write(dir.path().join("one.txt"), &subject).unwrap();
    let (ok, _, err) =
        tidemark(&["erase", "Contact", "--ids", dir.path().join("one.txt").to_str().unwrap()], &config, &lake, &sim);
    assert!(ok, "{err}");
    tags_tell_the_truth(&lake).await;
}
