//! Logical replication into the lake against a real PostgreSQL server: the initial copy, then
//! inserts, updates (an unchanged TOAST value among them), deletes, a key change, a
//! multi-statement transaction, `TRUNCATE` and `ALTER TABLE`; re-runs add nothing.

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
    source_versions(lake, "app", table, columns).await
}

async fn source_versions(lake: &LakeLocation, source: &str, table: &str, columns: &str) -> Vec<Vec<String>> {
    let t = HistoryTable::open_source(lake, source, table).await.unwrap().unwrap();
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
    let (db, config) = crate::common::database("repl_basic").await;
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

/// A Heroku Connect mirror, built from Heroku's documented table layout: tables under their
/// object names, keyed by `sfid` (as `Id`), bookkeeping columns and tables left out, rows
/// without an `sfid` waiting until they get one.
#[tokio::test]
async fn heroku_connect_mirror_tables_look_like_salesforce_objects() {
    let (db, config) = crate::common::database("repl_heroku").await;
    db.batch_execute(
        "CREATE SCHEMA salesforce;
         CREATE TABLE salesforce.account (id serial PRIMARY KEY, sfid varchar(18) UNIQUE, systemmodstamp timestamp,
             isdeleted boolean, _hc_lastop varchar(32), _hc_err text, name varchar(255), annualrevenue numeric(18,2));
         ALTER TABLE salesforce.account REPLICA IDENTITY FULL;
         CREATE TABLE salesforce._trigger_log (id serial PRIMARY KEY, txid bigint, created_at timestamptz, state varchar(8),
             action varchar(7), table_name varchar(128), record_id integer, sfid varchar(18), old text, \"values\" text);
         CREATE TABLE salesforce._hcmeta (id serial PRIMARY KEY, hcver integer, org_id varchar(50), details text);
         INSERT INTO salesforce.account (sfid, systemmodstamp, isdeleted, _hc_lastop, name, annualrevenue) VALUES
             ('001000000000001AAA', '2024-01-01 10:00:00', false, 'SYNCED', 'Acme', 1000.50),
             ('001000000000002AAA', '2024-01-01 10:00:00', false, 'SYNCED', 'Globex', NULL);
         INSERT INTO salesforce.account (name, _hc_lastop) VALUES ('Pending Co', 'PENDING');",
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lake = LakeLocation::parse(dir.path().join("lake").to_str().unwrap()).unwrap();
    let run = |lake: LakeLocation, config: tidemark_postgres::PostgresConfig| async move {
        let source = PostgresSource::heroku_connect("crm", config);
        Ingest::new(lake, Box::new(source)).await.unwrap()
    };
    let first = run(lake.clone(), config.clone()).await;
    assert_eq!(first.tables.keys().collect::<Vec<_>>(), ["account"], "Heroku Connect's own tables are left out");
    assert_eq!(first.tables["account"].copied, 2, "the row without an sfid waits");

    for statement in [
        "UPDATE salesforce.account SET name = 'Acme Corp', _hc_lastop = 'UPDATED' WHERE sfid = '001000000000001AAA'",
        "UPDATE salesforce.account SET sfid = '001000000000003AAA', _hc_lastop = 'SYNCED' WHERE name = 'Pending Co'",
        "UPDATE salesforce.account SET _hc_lastop = 'SYNCED' WHERE sfid = '001000000000001AAA'",
        "DELETE FROM salesforce.account WHERE sfid = '001000000000002AAA'",
        "INSERT INTO salesforce._trigger_log (txid, state, action, table_name) VALUES (1, 'NEW', 'UPDATE', 'account')",
    ] {
        db.batch_execute(statement).await.unwrap();
    }
    run(lake.clone(), config.clone()).await;

    let t = HistoryTable::open_source(&lake, "crm", "account").await.unwrap().unwrap();
    let columns: Vec<String> = t.schema().unwrap().fields().iter().map(|f| f.name().clone()).collect();
    for left_out in ["id", "sfid", "_hc_lastop", "_hc_err"] {
        assert!(!columns.contains(&left_out.to_owned()), "{left_out} in {columns:?}");
    }
    assert!(columns.contains(&"Id".to_owned()) && columns.contains(&"annualrevenue".to_owned()));
    let session = tidemark_query::QuerySession::open(lake.clone(), Default::default()).await.unwrap();
    let batches =
        session.sql("SELECT id, name, annualrevenue FROM crm.account ORDER BY id").await.unwrap().collect().await.unwrap();
    let live = tidemark_lake::arrow::util::pretty::pretty_format_batches(&batches).unwrap().to_string();
    assert!(live.contains("| 001000000000001AAA | Acme Corp  | 1000.50"), "{live}");
    assert!(live.contains("| 001000000000003AAA | Pending Co |"), "{live}");
    assert!(!live.contains("001000000000002AAA"), "the deleted account is not live:\n{live}");
    let history = source_versions(&lake, "crm", "account", "\"Id\", CAST(_deleted AS VARCHAR) AS d, name").await;
    let expect: Vec<Vec<&str>> = vec![
        vec!["001000000000001AAA", "false", "Acme"],
        vec!["001000000000001AAA", "false", "Acme Corp"],
        vec!["001000000000002AAA", "false", "Globex"],
        vec!["001000000000002AAA", "true", "Globex"],
        vec!["001000000000003AAA", "false", "Pending Co"],
    ];
    assert_eq!(history, expect, "a change of Heroku Connect's bookkeeping alone is no version");

    // A source-time SCD2 dimension over the mirror, configured as over a synced object.
    let model: tidemark_core::models::ModelConfig = tidemark_core::config::load_str(
        "dating: source_time\nkey: [Id]\nsources:\n  - name: account\n    object: crm.account\n    columns: [name, annualrevenue]\n",
        &|_| None,
    )
    .unwrap();
    model.validate("dim_account").unwrap();
    tidemark_models::ModelLoad::new(lake.clone(), "dim_account", model).run().await.unwrap();
    let session = tidemark_query::QuerySession::open(lake.clone(), Default::default()).await.unwrap();
    let batches = session
        .sql("SELECT id, name, is_current FROM dim_account ORDER BY id, valid_from")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let dimension = tidemark_lake::arrow::util::pretty::pretty_format_batches(&batches).unwrap().to_string();
    let rows: Vec<&str> = dimension.lines().filter(|l| l.starts_with("| 00")).collect();
    assert_eq!(
        rows,
        [
            "| 001000000000001AAA | Acme       | false      |",
            "| 001000000000001AAA | Acme Corp  | true       |",
            "| 001000000000002AAA | Globex     | false      |",
            "| 001000000000003AAA | Pending Co | true       |",
        ],
        "{dimension}"
    );
}

/// Changes committed while the initial copy is taken come after the copied rows in every
/// record's version order: the copy is dated before its slot was created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_during_the_initial_copy_order_after_it() {
    let (db, config) = crate::common::database("repl_during_copy").await;
    db.batch_execute("CREATE TABLE counter (id int PRIMARY KEY, n int); INSERT INTO counter VALUES (1, 0)").await.unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let writer_db = crate::common::connect(crate::common::server().port, "repl_during_copy").await;
        tokio::spawn(async move {
            let mut updates = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                writer_db.batch_execute("UPDATE counter SET n = n + 1 WHERE id = 1").await.unwrap();
                updates += 1;
            }
            updates
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let lake = LakeLocation::parse(dir.path().join("lake").to_str().unwrap()).unwrap();
    let run = || async {
        // Slot names are global to the server: each test's source has its own.
        let source = PostgresSource::new("race", config.clone());
        Ingest::new(lake.clone(), Box::new(source)).await.unwrap()
    };
    run().await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let updates = writer.await.unwrap();
    run().await;

    let values: Vec<i64> =
        source_versions(&lake, "race", "counter", "CAST(n AS BIGINT)").await.iter().map(|r| r[0].parse().unwrap()).collect();
    let out_of_order = values.windows(2).position(|w| w[1] != w[0] + 1);
    assert!(
        out_of_order.is_none(),
        "every update once, in order; at version {out_of_order:?} of {}: {:?}",
        values.len(),
        out_of_order.map(|i| &values[i.saturating_sub(2)..(i + 3).min(values.len())])
    );
    let n: i32 = db.query_one("SELECT n FROM counter WHERE id = 1", &[]).await.unwrap().get(0);
    assert_eq!(*values.last().unwrap(), i64::from(n));
    assert!(updates > 10 && values.len() > 2, "the updates ran during the copy: {updates} updates, {} versions", values.len());
}

/// `sslmode: verify-full` with a private CA's `ca_file`: the copy and the replication stream
/// both run over TLS (the user may not connect in plain text, so success proves it). A wrong
/// CA, or a host name the certificate does not name, is refused with an error saying so, as
/// something a later run does not fix by itself.
#[tokio::test]
async fn verify_full_tls_with_a_private_ca() {
    let (db, config) = crate::common::database("repl_tls").await;
    let user = crate::common::TLS_ONLY_USER;
    db.batch_execute(&format!(
        "DO $$ BEGIN CREATE ROLE {user} LOGIN REPLICATION SUPERUSER; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
         CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'one')"
    ))
    .await
    .unwrap();
    let server = crate::common::server();
    let mut tls = config.clone();
    tls.host = "localhost".into();
    tls.user = user.into();
    tls.sslmode = tidemark_postgres::SslMode::VerifyFull;
    tls.ca_file = Some(server.ca_file.clone());
    let dir = tempfile::tempdir().unwrap();
    let lake = LakeLocation::parse(dir.path().join("lake").to_str().unwrap()).unwrap();
    let run = |config: tidemark_postgres::PostgresConfig| Ingest::new(lake.clone(), Box::new(PostgresSource::new("tls", config)));

    assert_eq!(run(tls.clone()).await.unwrap().tables["t"].copied, 1);
    db.batch_execute("INSERT INTO t VALUES (2, 'two')").await.unwrap();
    assert_eq!(run(tls.clone()).await.unwrap().tables["t"].changes, 1, "streamed over TLS");

    let refused = |config: tidemark_postgres::PostgresConfig| {
        let run = &run;
        async move {
            let error = run(config).await.unwrap_err();
            (error.to_string(), error.is_retryable())
        }
    };
    let plain = tidemark_postgres::PostgresConfig {
        host: "127.0.0.1".into(),
        sslmode: tidemark_postgres::SslMode::Disable,
        ..tls.clone()
    };
    let (message, _) = refused(plain).await;
    assert!(message.contains("no encryption"), "the server refuses this user in plain text: {message}");

    let wrong_ca = tidemark_postgres::PostgresConfig { ca_file: Some(server.other_ca_file.clone()), ..tls.clone() };
    let (message, retryable) = refused(wrong_ca).await;
    assert!(message.contains("localhost") && message.contains("UnknownIssuer"), "{message}");
    assert!(!retryable, "a certificate the CA did not sign: {message}");

    let wrong_host = tidemark_postgres::PostgresConfig { host: "127.0.0.1".into(), ..tls.clone() };
    let (message, retryable) = refused(wrong_host).await;
    assert!(message.contains("not valid for name") && message.contains("127.0.0.1"), "{message}");
    assert!(!retryable, "a host name the certificate does not name: {message}");
}

/// Waits (up to a minute) until `count` of the source's table `ticks` reaches `want`.
async fn wait_for_versions(lake: &LakeLocation, source: &str, sql: &str, want: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let seen = match HistoryTable::open_source(lake, source, "ticks").await.unwrap() {
            Some(t) => {
                let ctx = t.session().await.unwrap();
                let b = t.collect(&ctx, sql).await.unwrap();
                array_value_to_string(b[0].column(0), 0).unwrap().parse::<usize>().unwrap()
            }
            None => 0,
        };
        if seen == want {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{sql}: {seen}, waited for {want}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn following_streams_until_stopped_and_never_ends_inside_a_transaction() {
    let (db, config) = crate::common::database("repl_follow").await;
    db.batch_execute("CREATE TABLE ticks (id int PRIMARY KEY, n int)").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lake = LakeLocation::parse(dir.path().join("lake").to_str().unwrap()).unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let source = PostgresSource::new("follow", config.clone()).following(stopped, std::time::Duration::from_millis(200));
    let run = tokio::spawn(std::future::IntoFuture::into_future(
        Ingest::new(lake.clone(), Box::new(source)).with_commit_rows(1_000_000),
    ));

    // Each change reaches the lake while the run goes on, though far fewer than commit_rows.
    for i in 0..5 {
        db.execute("INSERT INTO ticks VALUES ($1, 0)", &[&i]).await.unwrap();
        wait_for_versions(&lake, "follow", "SELECT count(*) FROM history", i as usize + 1).await;
    }
    // A large transaction, and a stop while it streams: the run ends with all of it or none.
    db.batch_execute("INSERT INTO ticks SELECT i, 1 FROM generate_series(100, 30099) i").await.unwrap();
    stop.send(true).unwrap();
    let metrics = run.await.unwrap().unwrap();
    assert!(!metrics.tables.is_empty());
    let t = HistoryTable::open_source(&lake, "follow", "ticks").await.unwrap().unwrap();
    let ctx = t.session().await.unwrap();
    let b = t.collect(&ctx, "SELECT count(*) FROM history WHERE n = 1").await.unwrap();
    let landed: usize = array_value_to_string(b[0].column(0), 0).unwrap().parse().unwrap();
    assert!(landed == 0 || landed == 30_000, "a stop never splits a transaction: {landed} of 30000");

    // A plain run reads the rest, once.
    let rest = Ingest::new(lake.clone(), Box::new(PostgresSource::new("follow", config))).await.unwrap();
    assert_eq!(rest.versions() as usize, 30_000 - landed);
    wait_for_versions(&lake, "follow", "SELECT count(*) FROM history", 30_005).await;
}
