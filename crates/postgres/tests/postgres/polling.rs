//! `mode: poll` against a real PostgreSQL server: rows read by a modification-time column, the
//! overlap's re-reads dropped, a row saved twice with one stamp kept twice, a transaction that
//! commits late caught by the overlap, deletes found by key.

#[allow(dead_code)]
use std::time::Duration;

use tidemark_core::sources::{CaptureMode, PollConfig};
use tidemark_lake::LakeLocation;
use tidemark_lake::arrow::array::RecordBatch;
use tidemark_lake::arrow::util::display::array_value_to_string;
use tidemark_lake::ingest::{Ingest, IngestMetrics};
use tidemark_postgres::PollingSource;

fn polled(config: &tidemark_postgres::PostgresConfig, overlap: Duration) -> tidemark_postgres::PostgresConfig {
    let mut config = config.clone();
    config.mode = CaptureMode::Poll;
    config.poll = Some(PollConfig { overlap, ..PollConfig::default() });
    config
}

async fn poll(lake: &LakeLocation, source: &str, config: &tidemark_postgres::PostgresConfig) -> IngestMetrics {
    let s = PollingSource::new(source, config.clone(), lake.clone());
    Ingest::new(lake.clone(), Box::new(s)).await.unwrap_or_else(|e| panic!("{e:#}"))
}

/// Rows of a query over the source's `accounts` table, as text.
async fn query(lake: &LakeLocation, source: &str, sql: &str) -> Vec<String> {
    let t = tidemark_lake::HistoryTable::open_source(lake, source, "accounts").await.unwrap().unwrap();
    let ctx = t.session().await.unwrap();
    let batches: Vec<RecordBatch> = t.collect(&ctx, sql).await.unwrap();
    let mut rows = Vec::new();
    for b in &batches {
        for r in 0..b.num_rows() {
            rows.push(b.columns().iter().map(|c| array_value_to_string(c, r).unwrap()).collect::<Vec<_>>().join("|"));
        }
    }
    rows
}

async fn database_rows(db: &tokio_postgres::Client) -> Vec<String> {
    db.query("SELECT id::text || '|' || name || '|' || balance::text FROM accounts ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test]
async fn polling_keeps_each_runs_changes_once_and_finds_deletes() {
    let (db, config) = crate::common::database("poll_basic").await;
    db.batch_execute(
        "CREATE TABLE accounts (id int PRIMARY KEY, name text NOT NULL, balance numeric(10,2), updated_at timestamptz NOT NULL DEFAULT now());
         CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$;
         CREATE TRIGGER touch BEFORE UPDATE ON accounts FOR EACH ROW WHEN (NEW.updated_at = OLD.updated_at) EXECUTE FUNCTION touch();
         INSERT INTO accounts (id, name, balance) SELECT i, 'account ' || i, i * 10 FROM generate_series(1, 50) i;",
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lake = LakeLocation::parse(dir.path().join("lake").to_str().unwrap()).unwrap();
    let config = polled(&config, Duration::from_secs(300));

    let first = poll(&lake, "polled", &config).await;
    assert_eq!(first.tables["accounts"].copied, 50);
    let again = poll(&lake, "polled", &config).await;
    assert_eq!(again.versions(), 0, "every row is re-read in the overlap, and none is new");

    db.batch_execute(
        "UPDATE accounts SET balance = balance + 1 WHERE id <= 10;
         DELETE FROM accounts WHERE id BETWEEN 41 AND 45;
         INSERT INTO accounts (id, name, balance) SELECT i, 'account ' || i, 0 FROM generate_series(51, 55) i;",
    )
    .await
    .unwrap();
    let changed = poll(&lake, "polled", &config).await;
    let m = &changed.tables["accounts"];
    assert_eq!((m.changes, m.deletes), (20, 5), "10 updates, 5 inserts, 5 deletes: {m:?}");
    let reconciled = query(&lake, "polled", "SELECT count(*) FROM history WHERE _origin = 'reconcile' AND _deleted").await;
    assert_eq!(reconciled, ["5"]);

    // Two saves with one stamp (as a whole-second clock gives): the second differs in content
    // and is kept, ordered after the first.
    db.batch_execute(
        "UPDATE accounts SET name = 'first', updated_at = date_trunc('second', now()) + interval '1 second' WHERE id = 1",
    )
    .await
    .unwrap();
    assert_eq!(poll(&lake, "polled", &config).await.versions(), 1);
    db.batch_execute("ALTER TABLE accounts DISABLE TRIGGER touch; UPDATE accounts SET name = 'second' WHERE id = 1; ALTER TABLE accounts ENABLE TRIGGER touch")
        .await
        .unwrap();
    assert_eq!(poll(&lake, "polled", &config).await.versions(), 1, "same stamp, new content: a new version");
    assert_eq!(poll(&lake, "polled", &config).await.versions(), 0, "and no re-read of it");
    let one = query(&lake, "polled", "SELECT name FROM live_versions WHERE id = 1").await;
    assert_eq!(one, ["second"], "the later save is the live one");
    let stamps =
        query(&lake, "polled", "SELECT count(DISTINCT _version_at) FROM history WHERE id = 1 AND name IN ('first', 'second')")
            .await;
    assert_eq!(stamps, ["1"], "both saves carry one stamp");

    // A row stamped in the future (a clock set wrong) does not hide later changes.
    db.batch_execute("ALTER TABLE accounts DISABLE TRIGGER touch; UPDATE accounts SET updated_at = '2099-01-01 00:00:00+00' WHERE id = 2; ALTER TABLE accounts ENABLE TRIGGER touch")
        .await
        .unwrap();
    assert_eq!(poll(&lake, "polled", &config).await.versions(), 1);
    db.batch_execute("UPDATE accounts SET name = 'after the future' WHERE id = 3").await.unwrap();
    assert_eq!(poll(&lake, "polled", &config).await.versions(), 1, "the bookmark is at most the last run's instant");

    // A transaction that stamps its rows when it starts and commits after a run has read a
    // later stamp: the overlap reads it; without an overlap it is missed (the documented limit).
    let blind = polled(&config, Duration::ZERO);
    poll(&lake, "blind", &blind).await;
    let late = crate::common::connect(crate::common::server().port, "poll_basic").await;
    late.batch_execute("BEGIN; UPDATE accounts SET name = 'late' WHERE id = 20;").await.unwrap();
    db.batch_execute("UPDATE accounts SET name = 'early' WHERE id = 21").await.unwrap();
    assert_eq!(poll(&lake, "polled", &config).await.versions(), 1);
    assert_eq!(poll(&lake, "blind", &blind).await.versions(), 1);
    late.batch_execute("COMMIT").await.unwrap();
    assert_eq!(poll(&lake, "polled", &config).await.versions(), 1, "the overlap catches the late commit");
    assert_eq!(poll(&lake, "blind", &blind).await.versions(), 0, "no overlap, no late commit");

    // The lake's live state is the table's.
    let live = query(&lake, "polled", "SELECT id, name, balance FROM live_versions ORDER BY id").await;
    assert_eq!(live, database_rows(&db).await);
    // No record has two consecutive versions with the same content.
    let repeats = query(
        &lake,
        "polled",
        "SELECT count(*) FROM (SELECT name, balance, updated_at, _deleted, lag(name) OVER w AS pn, lag(balance) OVER w AS pb, \
         lag(updated_at) OVER w AS pu, lag(_deleted) OVER w AS pd FROM history \
         WINDOW w AS (PARTITION BY _key ORDER BY _version_at, _lsn)) \
         WHERE pn = name AND pb = balance AND pu = updated_at AND pd = _deleted",
    )
    .await;
    assert_eq!(repeats, ["0"]);
}

#[tokio::test]
async fn a_table_without_its_modification_column_is_named() {
    let (db, config) = crate::common::database("poll_missing").await;
    db.batch_execute("CREATE TABLE things (id int PRIMARY KEY, changed timestamptz, note text); CREATE TABLE other (id int PRIMARY KEY, modified int);")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lake = LakeLocation::parse(dir.path().join("lake").to_str().unwrap()).unwrap();
    let mut config = polled(&config, Duration::from_secs(60));
    config.tables = vec!["public.things".into()];
    let err = Ingest::new(lake.clone(), Box::new(PollingSource::new("p", config.clone(), lake.clone()))).await.unwrap_err();
    assert!(
        err.to_string().contains("public.things has no column updated_at") && err.to_string().contains("poll.columns"),
        "{err}"
    );
    config.poll.as_mut().unwrap().columns.insert("public.things".into(), "changed".into());
    let ok = Ingest::new(lake.clone(), Box::new(PollingSource::new("p", config.clone(), lake.clone()))).await.unwrap();
    assert_eq!(ok.tables["things"].copied, 0);
    config.tables = vec!["public.other".into()];
    config.poll.as_mut().unwrap().column = Some("modified".into());
    let err = Ingest::new(lake.clone(), Box::new(PollingSource::new("q", config, lake.clone()))).await.unwrap_err();
    assert!(err.to_string().contains("modified is not a timestamp"), "{err}");
}
