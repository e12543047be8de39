//! The Postgres source checked against a change oracle kept by the database itself (triggers and
//! commit timestamps: `common/oracle.rs`): after each of several syncs of a workload committed
//! in many transactions, every lake table holds exactly the committed versions of its rows, in
//! order, each dated by its transaction's commit. The workload has inserts, updates, deletes,
//! key changes, unchanged TOAST values, rolled-back work, `TRUNCATE`, a transaction of 54,001
//! changes (landing in one commit), added, dropped and retyped columns, and a keyless table
//! under `REPLICA IDENTITY FULL`; a keyless table without it is refused.

use crate::common::oracle;
use tidemark_lake::LakeLocation;
use tidemark_lake::arrow::datatypes::DataType;
use tidemark_lake::ingest::{Ingest, IngestMetrics};
use tidemark_postgres::{PostgresConfig, PostgresSource};

/// The source's name: its slot (`tidemark_oracle_src`) is global to the server.
const SOURCE: &str = "oracle_src";
/// The compared tables (schema `public`: SQL and lake names agree).
const TABLES: [&str; 4] = ["items", "pairs", "bulk", "loose"];

async fn sync(lake: &LakeLocation, config: &PostgresConfig) -> IngestMetrics {
    let source = PostgresSource::new(SOURCE, config.clone());
    Ingest::new(lake.clone(), Box::new(source)).with_commit_rows(1000).await.unwrap()
}

/// Each entry is one transaction (a simple query of several statements is one).
async fn commit_each(db: &tokio_postgres::Client, transactions: &[String]) {
    for t in transactions {
        db.batch_execute(t).await.unwrap_or_else(|e| panic!("{t}: {e}"));
    }
}

async fn compare_all(db: &tokio_postgres::Client, lake: &LakeLocation, after: &str) -> usize {
    let mut versions = 0;
    for table in TABLES {
        let n = oracle::assert_lake_matches(db, lake, SOURCE, table, table).await;
        assert!(n > 0 || after == "the first sync", "{table}: no versions to compare after {after}");
        versions += n;
    }
    versions
}

/// The server's clock, µs since the Unix epoch.
async fn server_micros(db: &tokio_postgres::Client) -> i64 {
    db.query_one("SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint", &[]).await.unwrap().get(0)
}

/// Inserts and updates of every covered type (values chosen to be awkward to render: numeric
/// scales, offsets and fractions of seconds, quotes and commas in array items, nested JSON),
/// key changes, deletes, unchanged TOAST values, a savepoint rolled back, and a rolled-back
/// transaction.
fn first_workload() -> Vec<String> {
    let mut out = Vec::new();
    for i in 1..=30 {
        let body = if i % 3 == 0 { format!("repeat(md5('{i}'), 700)") } else { "'short'".to_owned() };
        let doc = match i % 4 {
            0 => r#"'{"n": 1.50, "list": [1, "two", null, {"deep": true}], "e": 1e3}'"#.to_owned(),
            1 => r#"'"a json string"'"#.to_owned(),
            2 => format!("'[{i}, {i}.0, -{i}.25]'"),
            _ => "NULL".to_owned(),
        };
        out.push(format!(
            "INSERT INTO items (id, name, price, qty, tags, body, seen, born, uid, doc, big, active) VALUES ({i}, \
             'item {i} ''quoted''\n\tline', {i} * 1.25 - 10, {i}, ARRAY['a', 'b c', 'x,y', 'q\"uote', NULL], {body}, \
             '2024-03-10 12:00:00.5+05:30'::timestamptz + {i} * interval '1 hour 0.000123 second', date '2024-02-29' + {i}, \
             md5('{i}')::uuid, {doc}::jsonb, {i} * 10000000000, {active})",
            active = if i % 5 == 0 { "NULL".to_owned() } else { (i % 2 == 0).to_string() },
        ));
    }
    out.extend(
        [
            // Unchanged TOAST values (ids 15 and 30 have large bodies; 5, 10, 20, 25 do not).
            "UPDATE items SET name = 'renamed ' || id WHERE id % 5 = 0",
            "UPDATE items SET price = price + 1, seen = NULL WHERE id = 3",
            "UPDATE items SET tags = ARRAY['only'], doc = '{\"b\": [1, 2.50, {\"c\": null}], \"a\": \"x\"}', active = true WHERE id = 4",
            // Key changes: the old record ends, the new one continues it (9 has a large body).
            "UPDATE items SET id = 1000 + id WHERE id IN (6, 9)",
            "DELETE FROM items WHERE id IN (2, 7)",
            "BEGIN; INSERT INTO items (id, name) VALUES (500, 'x'); UPDATE items SET name = 'y' WHERE id = 500; \
             DELETE FROM items WHERE id = 500; INSERT INTO items (id, name, price) VALUES (500, 'z', 0.01); COMMIT",
            "BEGIN; UPDATE items SET name = 'kept' WHERE id = 1; SAVEPOINT s; UPDATE items SET name = 'rolled back' WHERE id = 1; \
             ROLLBACK TO s; UPDATE items SET qty = -1 WHERE id = 1; COMMIT",
            "BEGIN; DELETE FROM items; ROLLBACK",
            "INSERT INTO pairs VALUES (1, 'one', NULL), (2, 'tw\"o', 'n'), (3, 'three', 'n'), (3, 'thr,ee', NULL)",
            "UPDATE pairs SET note = 'noted' WHERE a = 1",
            "UPDATE pairs SET b = 'two' WHERE a = 2",
            "DELETE FROM pairs WHERE a = 3 AND b = 'three'",
            "INSERT INTO loose VALUES (1, 'one', 1.50, true, '2024-01-01'), (2, 'two', -2.25, false, NULL), \
             (3, 'three', NULL, NULL, '2024-01-03'), (4, 'four', 4.00, true, '2024-01-04')",
            "UPDATE loose SET label = 'changed' WHERE n = 2",
            "UPDATE loose SET amount = NULL, flag = NULL WHERE n = 4",
            "DELETE FROM loose WHERE n = 3",
            "INSERT INTO bulk VALUES (1, 1, 'one')",
        ]
        .map(str::to_owned),
    );
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_committed_version_in_order_as_the_oracle_saw_it() {
    let started = std::time::Instant::now();
    let (db, config) = crate::common::database("oracle_workload").await;
    db.batch_execute(
        "CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(10,2), qty int, tags text[], body text,
             seen timestamptz, born date, uid uuid, doc jsonb, big bigint, active boolean);
         ALTER TABLE items ALTER COLUMN body SET STORAGE EXTERNAL;
         CREATE TABLE pairs (a int, b text, note text, PRIMARY KEY (a, b));
         CREATE TABLE bulk (id bigint PRIMARY KEY, v int, note text);
         CREATE TABLE loose (n int, label text, amount numeric(8,2), flag boolean, day date);
         ALTER TABLE loose REPLICA IDENTITY FULL;",
    )
    .await
    .unwrap();
    oracle::install(&db, &TABLES).await;
    let dir = tempfile::tempdir().unwrap();
    let lake = LakeLocation::parse(dir.path().join("lake").to_str().unwrap()).unwrap();

    let first = sync(&lake, &config).await;
    for table in TABLES {
        assert_eq!(first.tables[table].copied, 0, "{table}: an empty copy");
    }
    compare_all(&db, &lake, "the first sync").await;

    commit_each(&db, &first_workload()).await;
    let second = sync(&lake, &config).await;
    // 15 and 30 renamed, 3 repriced, 6 and 9 re-keyed: their large bodies came from earlier versions.
    assert_eq!(second.tables["items"].filled, 5, "unchanged TOAST values filled");
    compare_all(&db, &lake, "the first workload").await;

    // TRUNCATE (alone, and between writes in one transaction), on a keyed and a FULL table; and
    // one transaction of 54,001 changes, far past commit_rows.
    let big = "BEGIN; INSERT INTO bulk SELECT g, g % 100, 'row ' || g FROM generate_series(2, 40001) g; \
               UPDATE bulk SET v = v + 1, note = note || '!' WHERE id % 4 = 0; DELETE FROM bulk WHERE id % 10 = 1; COMMIT";
    commit_each(
        &db,
        &[
            "TRUNCATE pairs",
            "INSERT INTO pairs VALUES (1, 'one', 'again')",
            "BEGIN; INSERT INTO pairs VALUES (7, 'seven', NULL); TRUNCATE pairs; INSERT INTO pairs VALUES (8, 'eight', NULL); COMMIT",
            "TRUNCATE loose",
            "INSERT INTO loose VALUES (1, 'one', 1.50, true, '2024-01-01')",
            big,
            "UPDATE bulk SET v = -1 WHERE id = 8",
        ]
        .map(str::to_owned),
    )
    .await;
    let third = sync(&lake, &config).await;
    assert_eq!((third.tables["pairs"].truncates, third.tables["loose"].truncates), (2, 1));
    compare_all(&db, &lake, "the truncates and the large transaction").await;
    let changes = oracle::changes(&db).await;
    let per_commit = oracle::changes_per_commit(&changes, "public.bulk");
    let (&big_at, &big_changes) = per_commit.iter().max_by_key(|(_, n)| **n).unwrap();
    // 40,000 inserts, 10,000 updates, 4,001 deletes (id 1 was there before).
    assert_eq!(big_changes, 54_001);
    let counts = oracle::versions_at_each_commit(&lake, SOURCE, "bulk", big_at).await;
    assert!(
        counts.iter().all(|&n| n == 0 || n == 54_001) && counts.last() == Some(&54_001),
        "the large transaction landed in one commit: its versions at each Delta version {counts:?}"
    );

    // An added column (with a default old rows show on their next change), a dropped one.
    commit_each(
        &db,
        &[
            "ALTER TABLE items ADD COLUMN note text DEFAULT 'n/a'",
            "INSERT INTO items (id, name, note) VALUES (600, 'with note', 'noted')",
            "UPDATE items SET name = name || '+' WHERE id = 1",
            "ALTER TABLE items DROP COLUMN born",
            "UPDATE items SET name = 'after drop' WHERE id = 3",
            "DELETE FROM items WHERE id = 4",
        ]
        .map(str::to_owned),
    )
    .await;
    let fourth = sync(&lake, &config).await;
    assert_eq!(fourth.tables["items"].filled, 1, "id 3's body, across the column changes");
    compare_all(&db, &lake, "the added and dropped columns").await;

    // A retype: int → bigint does not fit the Int32 column (the lake's `fits`), so values from
    // then on go to a second generation column qty_v2; the old column keeps the old values.
    // And text → int with a change before it in the same run: that change is read as text (its
    // relation message's type, not the catalog's, which would not parse it).
    commit_each(&db, &["UPDATE pairs SET note = 'before retype' WHERE a = 8".to_owned()]).await;
    db.batch_execute("ALTER TABLE items ALTER COLUMN qty TYPE bigint").await.unwrap();
    let retyped_at = server_micros(&db).await;
    commit_each(
        &db,
        &[
            "ALTER TABLE pairs ALTER COLUMN note TYPE int USING length(note)",
            "UPDATE pairs SET note = note + 1 WHERE a = 8",
            "INSERT INTO pairs VALUES (9, 'nine', 9)",
            "UPDATE items SET qty = 5000000000 WHERE id = 1",
            "INSERT INTO items (id, name, qty) VALUES (700, 'big qty', -5000000000)",
            "UPDATE items SET name = 'after retype' WHERE id = 3",
        ]
        .map(str::to_owned),
    )
    .await;
    let fifth = sync(&lake, &config).await;
    assert_eq!(fifth.tables["items"].filled, 1, "id 3's body, across the retype");
    let compared = compare_all(&db, &lake, "the retype").await;
    assert_column_layout(&lake, retyped_at).await;

    let sixth = sync(&lake, &config).await;
    assert_eq!(sixth.versions(), 0, "nothing new, nothing written");
    println!("{compared} versions compared; {:?}", started.elapsed());
}

/// Schema evolution as the lake's rules have it: `born` (dropped) and `qty` (retyped) keep their
/// columns, `qty_v2` holds the values written after the retype, and the ledger tells it.
async fn assert_column_layout(lake: &LakeLocation, retyped_at: i64) {
    let t = tidemark_lake::HistoryTable::open_source(lake, SOURCE, "items").await.unwrap().unwrap();
    let schema = t.schema().unwrap();
    let type_of = |c: &str| schema.field_with_name(c).map(|f| f.data_type().clone()).ok();
    assert_eq!(type_of("born"), Some(DataType::Date32), "a dropped column stays");
    assert_eq!(type_of("note"), Some(DataType::Utf8));
    assert_eq!((type_of("qty"), type_of("qty_v2")), (Some(DataType::Int32), Some(DataType::Int64)));
    let ctx = t.session().await.unwrap();
    let sql = format!(
        "SELECT CAST(CAST(_version_at AS BIGINT) >= {retyped_at} AS VARCHAR) AS after, \
         CAST(count(qty) AS BIGINT), CAST(count(qty_v2) AS BIGINT), CAST(count(born) AS BIGINT) \
         FROM history GROUP BY 1 ORDER BY 1"
    );
    let rows: Vec<Vec<String>> = t
        .collect(&ctx, &sql)
        .await
        .unwrap()
        .iter()
        .flat_map(|b| {
            (0..b.num_rows()).map(|r| {
                b.columns()
                    .iter()
                    .map(|c| tidemark_lake::arrow::util::display::array_value_to_string(c, r).unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    // Before the retype: every qty in the old column; after it: only in qty_v2, and no born.
    assert_eq!(rows.len(), 2, "{rows:?}");
    let (before, after) = (&rows[0], &rows[1]);
    assert!(before[0] == "false" && before[1] != "0" && before[2] == "0", "{rows:?}");
    assert!(after[0] == "true" && after[1] == "0" && after[2] == "3" && after[3] == "0", "{rows:?}");
    let events = tidemark_lake::Ledger::new(lake.clone()).schema_events().await.unwrap();
    let has = |kind: &str, column: &str| {
        events.iter().any(|e| e.object == format!("{SOURCE}.items") && e.kind == kind && e.column == column)
    };
    assert!(has("type_changed", "qty_v2") && has("field_added", "note") && has("field_removed", "born"), "{events:#?}");
}

/// A table with neither a key nor `REPLICA IDENTITY FULL` is refused, naming it and the
/// `ALTER TABLE` that fixes it; after that statement it is replicated, keyed by all its values.
#[tokio::test]
async fn a_keyless_table_without_full_identity_is_refused() {
    let (db, config) = crate::common::database("oracle_keyless").await;
    db.batch_execute("CREATE TABLE keyless (a int, b text); INSERT INTO keyless VALUES (1, 'one')").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lake = LakeLocation::parse(dir.path().join("lake").to_str().unwrap()).unwrap();
    let run = || Ingest::new(lake.clone(), Box::new(PostgresSource::new("oracle_keyless", config.clone())));
    let error = run().await.unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("table public.keyless has no primary key")
            && message.contains(r#"ALTER TABLE "public"."keyless" REPLICA IDENTITY FULL"#),
        "{message}"
    );
    assert!(!error.is_retryable(), "a run does not fix it by itself");
    let table = tidemark_lake::HistoryTable::open_source(&lake, "oracle_keyless", "keyless").await.unwrap();
    assert!(table.is_none(), "nothing written");

    db.batch_execute(r#"ALTER TABLE "public"."keyless" REPLICA IDENTITY FULL"#).await.unwrap();
    let metrics = run().await.unwrap();
    assert_eq!(metrics.tables["keyless"].copied, 1);
}
