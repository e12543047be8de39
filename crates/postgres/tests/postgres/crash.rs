//! A Postgres sync killed with SIGKILL at seeded random points — during the initial copy, then
//! while streaming a random workload — converges, run after run, to the lake an uninterrupted
//! sync of the same database builds; and the slot's confirmed position never passes what the
//! lake holds.
//!
//! The killed syncs run in a child process: this test binary again, running the ignored test
//! `crash_child` with the job in the environment.

use std::process::{Command, Stdio};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use tidemark_lake::HistoryTable;
use tidemark_lake::LakeLocation;
use tidemark_lake::arrow::array::Array;
use tidemark_lake::arrow::util::display::array_value_to_string;
use tidemark_lake::ingest::{Ingest, held_positions};
use tidemark_postgres::{PostgresConfig, PostgresSource};

const CHILD: &str = "TIDEMARK_CRASH_CHILD";
const TABLES: [&str; 2] = ["accounts", "notes"];

fn config(port: u16, db: &str, slot: &str) -> PostgresConfig {
    let mut c = PostgresConfig::new("127.0.0.1", port, "postgres", db);
    c.slot = Some(slot.to_owned());
    c.publication = Some("crash_pub".to_owned());
    c
}

async fn ingest(lake: &LakeLocation, source: &str, config: PostgresConfig) -> tidemark_lake::ingest::IngestMetrics {
    let source = PostgresSource::new(source, config);
    // Short leases: a killed run's lease is taken over by the next run on this machine anyway
    // (its process is gone), small commits: many points to be killed between.
    Ingest::new(lake.clone(), Box::new(source)).with_commit_rows(200).await.unwrap()
}

/// The child: one sync of the source named in the environment, killed by the parent.
#[tokio::test]
#[ignore = "run by crash_safety_under_sigkill in a child process"]
async fn crash_child() {
    let Ok(job) = std::env::var(CHILD) else { return };
    let parts: Vec<&str> = job.split('|').collect();
    let [lake, port, db] = parts[..] else { panic!("bad job {job}") };
    let lake = LakeLocation::parse(lake).unwrap();
    ingest(&lake, "crash", config(port.parse().unwrap(), db, "crash_slot")).await;
}

/// Every version of every table, in a comparable form: ingestion columns left out.
async fn lake_rows(lake: &LakeLocation, source: &str) -> Vec<String> {
    let mut out = Vec::new();
    for table in TABLES {
        let Some(t) = HistoryTable::open_source(lake, source, table).await.unwrap() else { continue };
        let ctx = t.session().await.unwrap();
        // A copy's rows carry its own instant and consistent point: compared without them.
        let sql = "SELECT _key, _deleted, _origin, CASE WHEN _origin = 'copy' THEN NULL ELSE _lsn END AS lsn, \
                   CASE WHEN _origin = 'copy' THEN NULL ELSE _version_at END AS at, \
                   * EXCLUDE (_key, _deleted, _origin, _lsn, _version_at, _run_id, _ingested_at) FROM history";
        for b in t.collect(&ctx, sql).await.unwrap() {
            for r in 0..b.num_rows() {
                let cells: Vec<String> = b
                    .columns()
                    .iter()
                    .map(|c| if c.is_null(r) { "∅".into() } else { array_value_to_string(c, r).unwrap() })
                    .collect();
                out.push(format!("{table}|{}", cells.join("|")));
            }
        }
    }
    out.sort();
    out
}

/// One random transaction of inserts, updates (some leaving the large value unchanged),
/// deletes and key changes.
fn transaction(rng: &mut rand_chacha::ChaCha8Rng, next_id: &mut i64) -> String {
    let mut sql = String::from("BEGIN;");
    for _ in 0..rng.random_range(1..6) {
        let id = rng.random_range(1..*next_id);
        match rng.random_range(0..10) {
            0..=2 => {
                *next_id += 1;
                sql.push_str(&format!(
                    "INSERT INTO accounts VALUES ({n}, 'acct {n}', {}, repeat(md5('{n}'), 70));",
                    rng.random_range(0..100_000),
                    n = *next_id
                ));
            }
            3..=5 => sql.push_str(&format!("UPDATE accounts SET balance = balance + 1 WHERE id = {id};")),
            6 => sql.push_str(&format!("UPDATE accounts SET name = name || '+' WHERE id = {id};")),
            7 => sql.push_str(&format!("DELETE FROM accounts WHERE id = {id};")),
            8 => sql.push_str(&format!(
                "INSERT INTO notes VALUES ({id}, {}, 'note') ON CONFLICT DO NOTHING;",
                rng.random_range(0..5)
            )),
            // A changed key: the old record ends, the new one continues it.
            9 if rng.random_bool(0.5) => sql.push_str(&format!("UPDATE notes SET n = n + 10 WHERE account = {id};")),
            _ => sql.push_str(&format!("DELETE FROM notes WHERE account = {id};")),
        }
    }
    sql.push_str("COMMIT;");
    sql
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_safety_under_sigkill() {
    let (db, _) = crate::common::database("crash").await;
    let port = crate::common::server().port;
    db.batch_execute(
        "CREATE TABLE accounts (id bigint PRIMARY KEY, name text, balance numeric(12,2), bio text);
         ALTER TABLE accounts ALTER COLUMN bio SET STORAGE EXTERNAL;
         CREATE TABLE notes (account bigint, n int, body text, PRIMARY KEY (account, n));
         INSERT INTO accounts SELECT i, 'acct ' || i, i, repeat(md5(i::text), 70) FROM generate_series(1, 5000) i;
         INSERT INTO notes SELECT i, 0, 'first' FROM generate_series(1, 5000, 3) i;",
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let crash_lake = LakeLocation::parse(dir.path().join("crash").to_str().unwrap()).unwrap();
    let reference = LakeLocation::parse(dir.path().join("reference").to_str().unwrap()).unwrap();
    // The reference's slot first, then its uninterrupted copy: nothing writes meanwhile.
    ingest(&reference, "reference", config(port, "crash", "reference_slot")).await;

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(16);
    let mut next_id = 5_000i64;
    let (mut killed, mut killed_copying) = (0, 0);
    let mut copy_done = false;
    for trial in 0..30u64 {
        // While the copy is not done the database stays still (a re-copy takes a new snapshot);
        // afterwards each trial streams a fresh batch of transactions.
        if copy_done {
            for _ in 0..40 {
                db.batch_execute(&transaction(&mut rng, &mut next_id)).await.unwrap();
            }
        }
        // During the copy, kill points spread further each trial until one lets it finish.
        let delay =
            Duration::from_millis(if copy_done { rng.random_range(0..800) } else { rng.random_range(0..150 * (trial + 1)) });
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "crash::crash_child", "--ignored", "--nocapture"])
            .env(CHILD, format!("{}|{port}|crash", dir.path().join("crash").display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        tokio::time::sleep(delay).await;
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            killed += 1;
            killed_copying += usize::from(!copy_done);
        }
        let status = child.wait().unwrap();
        let held = held_positions(&crash_lake, "crash").await.unwrap();
        copy_done = TABLES.iter().all(|t| held.contains_key(*t));
        if let (Some(row), Some(max)) = (
            db.query_opt("SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = 'crash_slot'", &[])
                .await
                .unwrap(),
            held.values().max(),
        ) {
            let confirmed = row.get::<_, Option<String>>(0).and_then(|t| tidemark_postgres::parse_lsn(&t)).unwrap_or(0) as i64;
            assert!(confirmed <= *max, "trial {trial}: the slot confirmed {confirmed} beyond the lake's {max} ({status})");
        }
    }
    eprintln!("{killed} of 30 runs killed, {killed_copying} of them before the copy finished");
    assert!(killed >= 20, "only {killed} of 30 runs were killed: lengthen the workload");
    assert!(killed_copying >= 3, "{killed_copying} kills before the copy finished");

    // Converge: one more run of each, uninterrupted, then the same history.
    ingest(&crash_lake, "crash", config(port, "crash", "crash_slot")).await;
    ingest(&reference, "reference", config(port, "crash", "reference_slot")).await;
    let (crashed, uninterrupted) = (lake_rows(&crash_lake, "crash").await, lake_rows(&reference, "reference").await);
    assert!(uninterrupted.len() > 7_000, "the workload reached the lake: {} versions", uninterrupted.len());
    if crashed != uninterrupted {
        let missing: Vec<&String> = uninterrupted.iter().filter(|r| !crashed.contains(r)).take(5).collect();
        let extra: Vec<&String> = crashed.iter().filter(|r| !uninterrupted.contains(r)).take(5).collect();
        panic!(
            "{} versions after crashes, {} uninterrupted; missing {missing:?}, extra {extra:?}",
            crashed.len(),
            uninterrupted.len()
        );
    }
}
