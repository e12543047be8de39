//! `tidemark sync --source` end to end with change-file sources (no database needed): a config
//! with a Debezium source and a DMS source under relative paths, files landing between runs,
//! SQL over `<source>.<table>`, and a bad file refused by name.

use std::path::Path;
use std::process::Command;

fn tidemark(args: &[&str], config: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tidemark")).args(args).arg("--config").arg(config).env("RUST_LOG", "warn").output().unwrap()
}

fn run_ok(args: &[&str], config: &Path) -> String {
    let out = tidemark(args, config);
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn sql(config: &Path, query: &str) -> String {
    run_ok(&["sql", "--format", "csv", query], config)
}

/// A schema-less Debezium event (`schemas.enable=false`) for `public.docs`.
fn event(op: &str, id: i64, body: Option<&str>, ts_ms: i64) -> String {
    let row = serde_json::json!({"id": id, "body": body});
    let (before, after) = if op == "d" { (row, serde_json::Value::Null) } else { (serde_json::Value::Null, row) };
    serde_json::json!({"before": before, "after": after, "op": op,
        "source": {"connector": "postgresql", "schema": "public", "table": "docs", "ts_ms": ts_ms}})
    .to_string()
}

#[test]
fn file_sources_sync_by_name_and_answer_sql() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let debezium = root.join("landing/debezium");
    let dms = root.join("landing/dms/sales/orders");
    std::fs::create_dir_all(&debezium).unwrap();
    std::fs::create_dir_all(&dms).unwrap();
    let config = root.join("tidemark.yaml");
    std::fs::write(
        &config,
        format!(
            "lake:\n  location: {}\nsources:\n  events:\n    kind: debezium\n    path: landing/debezium\n  \
             legacy:\n    kind: dms\n    path: landing/dms\n    timestamp_column: ts\n    \
             column_types: {{sales.orders: {{id: integer, amount: 'decimal(8,2)'}}}}\n",
            root.join("lake").display()
        ),
    )
    .unwrap();
    let lines = [event("c", 1, Some("one"), 1_000), event("c", 2, Some("two"), 2_000), event("u", 1, Some("uno"), 3_000)];
    std::fs::write(debezium.join("docs-0001.json"), lines.join("\n")).unwrap();
    std::fs::write(dms.join("LOAD00000001.csv"), "id,amount,ts\n1,10.00,2024-01-01 00:00:00\n2,20.50,2024-01-01 00:00:00\n")
        .unwrap();

    let out = run_ok(&["sync", "--source", "events"], &config);
    assert!(out.contains("events.docs") && out.contains("complete: 3 new versions"), "{out}");
    assert!(out.contains("file 1"), "positions are shown as files: {out}");
    assert_eq!(sql(&config, "SELECT id, body FROM events.docs ORDER BY id"), "id,body\n1,uno\n2,two\n");
    assert!(!root.join("lake/sources/legacy").exists(), "--source runs only the named source");
    let earlier = sql(&config, "SELECT id, body FROM as_of('events.docs', TIMESTAMP '1970-01-01 00:00:02.5') ORDER BY id");
    assert_eq!(earlier, "id,body\n1,one\n2,two\n", "as_of reads a source's table at an instant");

    // Plain `sync` without a salesforce section runs every source; read files are not read again.
    std::fs::write(debezium.join("docs-0002.json"), [event("d", 2, None, 4_000), "null".to_owned()].join("\n")).unwrap();
    let out = run_ok(&["sync"], &config);
    assert!(out.contains("source events") && out.contains("complete: 1 new versions"), "{out}");
    assert!(out.contains("legacy.sales_orders") && out.contains("complete: 2 new versions"), "{out}");
    assert_eq!(sql(&config, "SELECT id FROM events.docs"), "id\n1\n");
    assert_eq!(sql(&config, "SELECT count(*) AS n FROM events.docs_history"), "n\n4\n");
    assert_eq!(sql(&config, "SELECT sum(amount) AS total FROM legacy.sales_orders"), "total\n30.50\n");

    // Outside engines: `catalog ddl` registers a source's tables as `<source>_<table>` (keyed by
    // `_key`), and DuckDB's views give what tidemark sql gives.
    let python = crate::common::python();
    let check = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/python/duckdb_ddl_check.py"));
    let extension = Command::new(&python).arg(check).arg("extension").output().unwrap();
    let extension = String::from_utf8(extension.stdout).unwrap();
    let ddl = run_ok(&["catalog", "ddl", "--engine", "duckdb", "--duckdb-extension", extension.trim()], &config);
    assert!(
        ddl.contains("\"events_docs_scd2\"")
            && ddl.contains("PARTITION BY \"_key\" ORDER BY \"_version_at\" DESC, \"_lsn\" DESC"),
        "{ddl}"
    );
    let (ddl_file, out_file) = (root.join("ddl.sql"), root.join("views.json"));
    std::fs::write(&ddl_file, &ddl).unwrap();
    let ran = Command::new(&python).arg(check).arg("run").arg(&ddl_file).arg(&out_file).output().unwrap();
    assert!(ran.status.success(), "{}", String::from_utf8_lossy(&ran.stderr));
    let views: serde_json::Value = serde_json::from_slice(&std::fs::read(&out_file).unwrap()).unwrap();
    let rows = |view: &str, column: &str| -> Vec<String> {
        let v = &views["views"][view];
        let i = v["columns"].as_array().unwrap().iter().position(|c| c[0] == column).unwrap_or_else(|| panic!("{view}: {v}"));
        let mut out: Vec<String> = v["rows"].as_array().unwrap().iter().map(|r| r[i].to_string()).collect();
        out.sort();
        out
    };
    assert_eq!(rows("main.events_docs", "body"), ["\"uno\""], "the live view: {views}");
    assert_eq!(rows("main.events_docs_scd2", "body"), ["\"one\"", "\"two\"", "\"uno\""]);
    assert_eq!(rows("main.legacy_sales_orders", "id").len(), 2);

    // `status` lists source tables beside objects, from the same ledger.
    let status = run_ok(&["status"], &config);
    let line = status.lines().find(|l| l.starts_with("events.docs")).unwrap_or_else(|| panic!("{status}"));
    let cells: Vec<&str> = line.split_whitespace().collect();
    assert!(line.contains("complete") && cells.ends_with(&["4", "1", "0"]), "versions, live, schema changes: {line}");
    assert!(status.contains("legacy.sales_orders"), "{status}");

    // A file that cannot be read is named, with its line, and never quoted.
    std::fs::write(
        debezium.join("docs-0003.json"),
        format!("{}\n{{\"op\": \"c\", \"after\": {{\"id\": \"secret@example.com\"}}}}\n", event("c", 5, Some("five"), 5_000)),
    )
    .unwrap();
    let out = tidemark(&["sync", "--source", "events"], &config);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("docs-0003.json, line 2") && stderr.contains("source block"), "{stderr}");
    assert!(!stderr.contains("secret@example.com"), "no record value in errors: {stderr}");
    assert_eq!(
        sql(&config, "SELECT id FROM events.docs ORDER BY id"),
        "id\n1\n",
        "the bad file's good lines are not half applied"
    );

    let unknown = tidemark(&["sync", "--source", "nope"], &config);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no source named 'nope'"));
}

/// An erasure from another source's table: every version of the key gone from every byte under
/// the lake, and a later change of the key at the source is left out.
#[test]
fn a_source_table_record_is_erased_and_stays_out() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let debezium = root.join("landing/debezium");
    std::fs::create_dir_all(&debezium).unwrap();
    let config = root.join("tidemark.yaml");
    std::fs::write(
        &config,
        format!(
            "lake:\n  location: {}\nsources:\n  events:\n    kind: debezium\n    path: landing/debezium\n",
            root.join("lake").display()
        ),
    )
    .unwrap();
    let lines = [
        event("c", 1, Some("alice-kept-note"), 1_000),
        event("c", 2, Some("bobby-erased-note"), 2_000),
        event("u", 2, Some("bobby-erased-again"), 3_000),
        event("u", 1, Some("alice-kept-later"), 4_000),
    ];
    std::fs::write(debezium.join("docs-0001.json"), lines.join("\n")).unwrap();
    run_ok(&["sync", "--source", "events"], &config);
    let theirs: std::collections::BTreeSet<String> =
        ["bobby-erased-note", "bobby-erased-again", "bobby-erased-later"].map(str::to_owned).into();
    assert!(!crate::common::find_anywhere(&root.join("lake"), &theirs).is_empty());

    let keys = root.join("keys.txt");
    std::fs::write(&keys, "2\n").unwrap();
    let out = run_ok(&["erase", "events.docs", "--ids", keys.to_str().unwrap(), "--reason", "DSR-7"], &config);
    assert!(out.contains("1 records, 2 versions erased"), "{out}");
    assert!(crate::common::find_anywhere(&root.join("lake"), &theirs).is_empty(), "an erased value is left");
    assert_eq!(
        sql(&config, "SELECT id, body FROM events.docs_history ORDER BY body"),
        "id,body\n1,alice-kept-later\n1,alice-kept-note\n"
    );

    // The record changes again at the source: the next sync leaves it out.
    std::fs::write(
        debezium.join("docs-0002.json"),
        [event("u", 2, Some("bobby-erased-later"), 5_000), event("u", 1, Some("alice-kept-last"), 6_000)].join("\n"),
    )
    .unwrap();
    run_ok(&["sync", "--source", "events"], &config);
    assert_eq!(sql(&config, "SELECT id, body FROM events.docs ORDER BY id"), "id,body\n1,alice-kept-last\n");
    assert!(crate::common::find_anywhere(&root.join("lake"), &theirs).is_empty(), "the erased record came back");
}
