//! Logical replication into the lake against a real PostgreSQL server: the initial copy, then
//! inserts, updates (an unchanged TOAST value among them), deletes, a key change, a
//! multi-statement transaction, `TRUNCATE` and `ALTER TABLE`; re-runs add nothing.

mod common;

use tidemark_lake::HistoryTable;
use tidemark_lake::LakeLocation;
use tidemark_lake::arrow::array::{Array, RecordBatch};
use tidemark_lake::arrow::util::display::array_value_to_string;
use tidemark_lake::ingest::{Ingest, held_positions};
use tidemark_postgres::PostgresSource;

async fn ingest(lake: &LakeLocation, config: &tidemark_postgres::PostgresConfig) -> tidemark_lake::ingest::IngestMetrics {
    let source = PostgresSource::new("app", config.clone());
    Ingest::new(lake.clone(), Box::new(source)).with_commit_rows(1000).await.unwrap()
}

/// `(key, lsn order, deleted, origin, name, body length, note)` of every version, in version order.
async fn versions(lake: &LakeLocation, table: &str, columns: &str) -> Vec<Vec<String>> {
    let t = HistoryTable::open_source(lake, "app", table).await.unwrap().unwrap();
    let ctx = t.session().await.unwrap();
    let sql = format!("SELECT {columns} FROM history ORDER BY _key, _version_at, _lsn, _ingested_at, _deleted");
    let batches: Vec<RecordBatch> = t.collect(&ctx, &sql).await.unwrap();
    let mut rows = Vec::new();
    for b in &batches {
        for r in 0..b.num_rows() {
            rows.push(
                b.columns()
                    .iter()
                    .map(|c| if c.is_null(r) { "∅".to_owned() } else { array_value_to_string(c, r).unwrap() })
                    .collect(),
            );
        }
    }
    rows
}

#[tokio::test]
async fn copy_then_changes_then_nothing_twice() {
    let (db, config) = common::database("repl_basic").await;
    db.batch_execute(
        "CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(10,2), tags text[], body text, seen timestamptz);
         ALTER TABLE items ALTER COLUMN body SET STORAGE EXTERNAL;
         CREATE TABLE events (a int, b text, PRIMARY KEY (a, b));
         INSERT INTO items SELECT i, 'item ' || i, i * 1.25, ARRAY['x', 'y z'], repeat(md5(i::text), 400), '2024-01-01 00:00:00+00' FROM generate_series(1, 3) i;
         INSERT INTO events VALUES (1, 'one'), (2, 'two');",
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lake = LakeLocation::parse(dir.path().join("lake").to_str().unwrap()).unwrap();

    let first = ingest(&lake, &config).await;
    assert_eq!(first.tables["items"].copied, 3);
    assert_eq!(first.tables["events"].copied, 2);

    // One transaction each (a simple query of several statements would be one).
    for statement in [
        "UPDATE items SET name = 'renamed' WHERE id = 1",
        "DELETE FROM items WHERE id = 2",
        "BEGIN; INSERT INTO items (id, name) VALUES (4, 'four'); UPDATE items SET name = 'four again' WHERE id = 4; COMMIT",
        "UPDATE items SET id = 30 WHERE id = 3",
        "TRUNCATE events",
        "INSERT INTO events VALUES (3, 'three')",
        "ALTER TABLE items ADD COLUMN note text",
        "INSERT INTO items (id, name, note) VALUES (5, 'five', 'noted')",
    ] {
        db.batch_execute(statement).await.unwrap();
    }
    let second = ingest(&lake, &config).await;
    let items = &second.tables["items"];
    assert_eq!(items.copied, 0);
    assert_eq!(items.filled, 2, "unchanged bodies filled: the renamed row from its copy, the re-keyed row from its old key");

    let rows = versions(&lake, "items", "_key, CAST(_deleted AS VARCHAR) AS d, _origin, name, length(body), note, price").await;
    let expect: Vec<Vec<&str>> = vec![
        vec!["1", "false", "copy", "item 1", "12800", "∅", "1.25"],
        vec!["1", "false", "change", "renamed", "12800", "∅", "1.25"],
        vec!["2", "false", "copy", "item 2", "12800", "∅", "2.50"],
        vec!["2", "true", "change", "∅", "∅", "∅", "∅"],
        vec!["3", "false", "copy", "item 3", "12800", "∅", "3.75"],
        vec!["3", "true", "change", "∅", "∅", "∅", "∅"],
        vec!["30", "false", "change", "item 3", "12800", "∅", "3.75"],
        vec!["4", "false", "change", "four", "∅", "∅", "∅"],
        vec!["4", "false", "change", "four again", "∅", "∅", "∅"],
        vec!["5", "false", "change", "five", "∅", "noted", "∅"],
    ];
    assert_eq!(rows, expect);

    let events = versions(&lake, "events", "_key, CAST(_deleted AS VARCHAR) AS d, _origin").await;
    assert_eq!(
        events,
        vec![
            vec![r#"["1","one"]"#, "false", "copy"],
            vec![r#"["1","one"]"#, "true", "truncate"],
            vec![r#"["2","two"]"#, "false", "copy"],
            vec![r#"["2","two"]"#, "true", "truncate"],
            vec![r#"["3","three"]"#, "false", "change"],
        ]
    );

    // Nothing new: nothing written; the slot never passes what the lake holds.
    let third = ingest(&lake, &config).await;
    assert_eq!(third.versions(), 0);
    let held = held_positions(&lake, "app").await.unwrap();
    let confirmed: String = db
        .query_one("SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = 'tidemark_app'", &[])
        .await
        .unwrap()
        .get(0);
    let confirmed = tidemark_postgres::parse_lsn(&confirmed).unwrap() as i64;
    assert!(held.values().all(|&p| p <= confirmed.max(p)), "positions {held:?}, slot {confirmed}");
    assert!(confirmed >= *held.values().max().unwrap(), "the slot was acknowledged up to the lake's commits");

    // The live state answers as the database does.
    let t = HistoryTable::open_source(&lake, "app", "items").await.unwrap().unwrap();
    let (_, live) = t.counts().await.unwrap();
    let n: i64 = db.query_one("SELECT count(*) FROM items", &[]).await.unwrap().get(0);
    assert_eq!(live as i64, n);
    // SQL reaches the source's tables as <source>.<table>, with the same three relations.
    let session = tidemark_query::QuerySession::open(lake.clone(), Default::default()).await.unwrap();
    let sql = |q: &'static str| {
        let session = &session;
        async move {
            let batches = session.sql(q).await.unwrap().collect().await.unwrap();
            tidemark_lake::arrow::util::pretty::pretty_format_batches(&batches).unwrap().to_string()
        }
    };
    let live = sql("SELECT id, name, note FROM app.items ORDER BY id").await;
    assert!(live.contains("| 1  | renamed    |       |") && live.contains("| 30 | item 3     |       |"), "{live}");
    assert!(!live.contains("| 2 "), "deleted rows are not live:\n{live}");
    let scd2 = sql("SELECT id, name, is_current FROM app.items_scd2 WHERE id IN (1, 4) ORDER BY id, valid_from").await;
    assert!(scd2.contains("| 1  | item 1     | false"), "{scd2}");
    assert!(scd2.contains("| 4  | four again | true"), "{scd2}");
    let history = sql("SELECT count(*) AS n FROM app.events_history").await;
    assert!(history.contains("| 5 |"), "{history}");

    let tags = versions(&lake, "items", "tags").await;
    assert_eq!(tags[0][0], "[x, y z]");

    // A slot dropped behind the lake's back: the next run refuses to stream past the gap.
    loop {
        let active: bool =
            db.query_one("SELECT active FROM pg_replication_slots WHERE slot_name = 'tidemark_app'", &[]).await.unwrap().get(0);
        if !active {
            break;
        }
        tokio::task::yield_now().await;
    }
    db.batch_execute("SELECT pg_drop_replication_slot('tidemark_app')").await.unwrap();
    let source = PostgresSource::new("app", config.clone());
    let error = Ingest::new(lake.clone(), Box::new(source)).await.unwrap_err().to_string();
    assert!(error.contains("tidemark_app no longer exists") && error.contains("sources/app/"), "{error}");
}
