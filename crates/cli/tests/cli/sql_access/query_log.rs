//! The query log: the scenario the fixture runs on its own server before the shared one starts
//! (alice's SELECT, PREPARE, EXECUTE, refusal and contact query, root's SELECT, then SIGINT),
//! and `_tidemark/query_log` afterwards: one record per statement with its user, role, kind,
//! outcome, row count, relations and SQLSTATE, and no statement's text in the records or in the
//! Parquet files.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output};

use serde_json::Value as J;

use super::{ALICE, BIN, Fixture, ROOT, assert_denied, fixture, run, succeeded, tail, tidemark_csv};

/// A literal only the query-log scenario sends: the log must never hold it.
const LITERAL: &str = "Zebra-7781";

/// What the query-log scenario saw: each psql run's output, then how the server stopped.
#[derive(Default)]
pub(super) struct LogSession {
    /// Rows alice's contact query returned.
    contact_rows: usize,
    outputs: Vec<(String, Output)>,
    stopped: Option<ExitStatus>,
    log: PathBuf,
}

impl LogSession {
    /// alice: a SELECT, PREPARE and EXECUTE in one session; a refused SELECT; a contact query;
    /// then root: one SELECT. Every text carries [`LITERAL`]. Then SIGINT, and the wait for exit.
    pub(super) fn run(fixture: &Fixture, config: &Path) -> LogSession {
        let mut server = fixture.start(config, &[], "serve-sql-query-log");
        let log = server.log.clone();
        let mut outputs = Vec::new();
        let session = [
            format!("SELECT count(*) FROM account WHERE name <> '{LITERAL}'"),
            "PREPARE z(text) AS SELECT phone FROM account WHERE name = $1".to_owned(),
            format!("EXECUTE z('{LITERAL}')"),
        ];
        let args: Vec<&str> = session.iter().flat_map(|s| ["-c", s.as_str()]).collect();
        outputs.push(("alice: SELECT, PREPARE, EXECUTE".to_owned(), server.psql(ALICE, &args)));
        let refused = format!("SELECT id FROM opportunity WHERE name = '{LITERAL}'");
        outputs.push(("alice: refused".to_owned(), server.psql(ALICE, &["-c", &refused])));
        let contact = format!("SELECT id FROM contact WHERE lastname <> '{LITERAL}'");
        let out = server.psql(ALICE, &["-c", &contact]);
        let contact_rows = String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.is_empty()).count();
        outputs.push(("alice: contact".to_owned(), out));
        let root = format!("SELECT count(*) FROM opportunity WHERE name <> '{LITERAL}'");
        outputs.push(("root: SELECT".to_owned(), server.psql(ROOT, &["-c", &root])));
        let stopped = server.interrupt();
        LogSession { contact_rows, outputs, stopped, log }
    }
}

#[test]
fn the_query_log_records_each_statement_without_its_text() {
    let fx = fixture();
    let session = &fx.log;
    let log = std::fs::read_to_string(&session.log).unwrap_or_default();
    // What the scenario's statements did.
    let [(_, first), (_, refused), (_, contact), (_, root)] = &session.outputs[..] else {
        panic!("four psql runs: {}", session.outputs.len())
    };
    let first = succeeded(first, "alice's SELECT, PREPARE, EXECUTE");
    assert_eq!(first.lines().filter(|l| !l.is_empty()).count(), 1, "one count, EXECUTE finds nothing: {first}");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "alice's opportunity query must fail");
    assert_denied(&stderr, "opportunity", "the scenario's refusal");
    succeeded(contact, "alice's contact query");
    succeeded(root, "root's opportunity query");
    let stopped = session.stopped.unwrap_or_else(|| panic!("the scenario's server ended before SIGINT; log:\n{log}"));
    assert!(stopped.success(), "serve-sql stops cleanly on SIGINT: {stopped}; log:\n{}", tail(&log, 30));

    // The columns, then the records in statement order.
    let header: Vec<String> = tidemark_csv(&fx.lake, &[], "DESCRIBE query_log").into_iter().map(|r| r[0].clone()).collect();
    for column in
        ["at", "duration_ms", "user", "role", "peer", "protocol", "kind", "relations", "row_count", "outcome", "sqlstate"]
    {
        assert!(header.iter().any(|c| c == column), "query_log has {column}: {header:?}");
    }
    let mut command = Command::new(BIN);
    command.arg("sql").arg("--lake").arg(&fx.lake).args([
        "--format",
        "json",
        "SELECT CAST(\"at\" AS VARCHAR) AS \"at\", duration_ms, \"user\", role, peer, protocol, kind, relations, \
         row_count, outcome, sqlstate FROM query_log ORDER BY \"at\"",
    ]);
    let text = succeeded(&run(&mut command), "root reads query_log");
    assert!(!text.contains(LITERAL) && !text.contains("Zebra"), "the query log holds a literal of a query:\n{text}");
    let records: Vec<J> = text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("JSON ({e}): {l}"))).collect();
    let show = || records.iter().map(J::to_string).collect::<Vec<_>>().join("\n");
    let expected = [
        ("alice", "analyst", "SELECT", "ok", Some(1), Some("account")),
        ("alice", "analyst", "PREPARE", "ok", None, None),
        ("alice", "analyst", "EXECUTE", "ok", Some(0), Some("account")),
        ("alice", "analyst", "SELECT", "error", None, None),
        ("alice", "analyst", "SELECT", "ok", Some(session.contact_rows as u64), Some("contact")),
        ("root", "admin", "SELECT", "ok", Some(1), Some("opportunity")),
    ];
    assert_eq!(records.len(), expected.len(), "one record per statement:\n{}", show());
    let text_of = |v: &J| v.as_str().unwrap_or_default().to_owned();
    // Every mismatch at once, with all the records.
    let mut wrong = Vec::new();
    for (i, (record, (user, role, kind, outcome, rows, relation))) in records.iter().zip(expected).enumerate() {
        let mut check = |ok: bool, field: &str| {
            if !ok {
                wrong.push(format!("record {i} ({user} {kind}): {field}"));
            }
        };
        check(text_of(&record["user"]) == user, "user");
        check(text_of(&record["role"]) == role, "role");
        check(text_of(&record["kind"]).to_uppercase() == kind, "kind");
        check(text_of(&record["outcome"]) == outcome, "outcome");
        check(text_of(&record["peer"]).starts_with("127.0.0.1:"), "peer");
        check(!text_of(&record["protocol"]).is_empty(), "protocol");
        check(record["duration_ms"].as_f64().is_some_and(|d| d >= 0.0), "duration_ms");
        check(!text_of(&record["at"]).is_empty(), "at");
        if let Some(rows) = rows {
            check(record["row_count"].as_u64() == Some(rows), &format!("row_count {rows} expected"));
        }
        if let Some(relation) = relation {
            let relations: Vec<String> =
                record["relations"].as_array().map(|a| a.iter().map(text_of).collect()).unwrap_or_default();
            // The object read, in any of its forms (an unguarded view may be logged by the table it reads).
            let object = |r: &str| {
                r.rsplit('.').next() == Some(relation)
                    || r.strip_prefix(relation).is_some_and(|f| ["_history", "_scd2"].contains(&f))
            };
            check(relations.iter().any(|r| object(r)), &format!("relations name {relation}"));
        }
        match outcome {
            "error" => check(text_of(&record["sqlstate"]) == "42501", "sqlstate 42501 expected"),
            _ => check(record["sqlstate"].is_null() || text_of(&record["sqlstate"]).is_empty(), "no sqlstate expected"),
        }
    }
    assert!(wrong.is_empty(), "query_log records differ from the statements:\n{}\nrecords:\n{}", wrong.join("\n"), show());

    // Nor do the files hold any statement's text (Parquet statistics and pages included).
    let folder = fx.lake.join("_tidemark/query_log");
    let mut files = Vec::new();
    let mut stack = vec![folder.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("an entry").path();
            if path.is_dir() { stack.push(path) } else { files.push(path) }
        }
    }
    assert!(files.iter().any(|f| f.extension().is_some_and(|e| e == "parquet")), "Parquet files in {}", folder.display());
    for file in &files {
        let bytes = std::fs::read(file).expect("reads a file");
        for needle in [LITERAL, "Zebra", "opportunity WHERE", "PREPARE z", "lastname <>"] {
            assert!(!bytes.windows(needle.len()).any(|w| w == needle.as_bytes()), "{} holds '{needle}'", file.display());
        }
    }
}
