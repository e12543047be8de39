//! `tidemark sql`, `tidemark serve-sql` and `tidemark catalog ddl` end to end, on a lake
//! `tidemark demo` wrote (soft and hard deletes, a new field) and on one where deleted records
//! come back (three syncs of a simulated org): the relations agree with the raw history, psql
//! gets what `tidemark sql` prints, and DuckDB's views return exactly tidemark's rows.
//!
//! Needs psql on PATH, and `python3` and PyPI for the DuckDB check (the venv is created by
//! `scripts/python-venv.sh` on first use).

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::{Value as J, json};

use crate::common::{Harness, python};

const BIN: &str = env!("CARGO_BIN_EXE_tidemark");
const PYTHON_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/python");

/// A lake in a temporary folder that goes with it.
struct Lake {
    dir: tempfile::TempDir,
    path: PathBuf,
}

impl Lake {
    /// What `tidemark demo` writes: an initial sync, then a new field, updates, creates, soft
    /// and hard deletes and an undelete (of a record deleted since the first sync, so the lake
    /// never sees it deleted), and a second sync.
    fn demo() -> Lake {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("lake");
        let mut demo = Command::new(BIN);
        demo.args(["demo", "--quiet", "--accounts", "40", "--seed", "7", "--lake"]).arg(&path);
        succeeded(&run(&mut demo), "tidemark demo");
        Lake { dir, path }
    }

    /// Three syncs of a simulated org: the second after deletes (soft and hard) and new fields;
    /// the third after undeletes of records the second saw deleted.
    fn with_undeletes() -> Lake {
        async fn sync(h: &mut Harness) {
            let report = h.sync().await;
            assert_eq!(report.status(), tidemark_lake::RunStatus::Complete, "{report:#?}");
        }
        let runtime = tokio::runtime::Runtime::new().expect("a runtime");
        runtime.block_on(async {
            let mut h = Harness::start(40, 7).await;
            sync(&mut h).await;
            h.advance(chrono::Duration::hours(1));
            h.schema_change("Account", json!({"op": "add_field", "field": "Tier__c", "type": "string", "length": 20}));
            h.schema_change(
                "Invoice__c",
                json!({"op": "add_field", "field": "Score__c", "type": "currency", "precision": 18, "scale": 2}),
            );
            h.change(json!({"updates": {"share": 0.2}, "creates": 5, "deletes": 8, "hard_deletes": 2, "parent_renames": 2}), 8);
            // The default change rounds leave Invoice__c alone; these versions fill its new column.
            h.change(json!({"objects": ["Invoice__c"], "updates": 6, "deletes": 2}), 10);
            sync(&mut h).await;
            h.advance(chrono::Duration::minutes(30));
            h.change(json!({"undeletes": 4, "updates": 4}), 9);
            sync(&mut h).await;
            let path = h.lake.root().to_file_path().expect("a local lake");
            let Harness { sim, dir, .. } = h;
            sim.shutdown().await;
            Lake { dir, path }
        })
    }

    /// The lake's tables (lower-case object names), from its folder.
    fn tables(&self) -> Vec<String> {
        let mut tables: Vec<String> = std::fs::read_dir(self.path.join("objects"))
            .expect("objects/")
            .map(|e| e.expect("entry").file_name().into_string().expect("utf-8 name"))
            .collect();
        tables.sort();
        tables
    }

    /// `tidemark sql --lake <lake> <args>`.
    fn sql(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command.arg("sql").arg("--lake").arg(&self.path).args(args);
        command
    }

    /// The output of a query that must succeed.
    fn query(&self, args: &[&str], sql: &str) -> String {
        let mut args = args.to_vec();
        args.push(sql);
        succeeded(&run(&mut self.sql(&args)), sql)
    }

    /// The rows of a query, from `--format csv`, header left out.
    fn csv(&self, args: &[&str], sql: &str) -> Vec<Vec<String>> {
        let mut args = [&["--format", "csv"], args].concat();
        args.push(sql);
        let mut rows = parse_csv(&succeeded(&run(&mut self.sql(&args)), sql));
        assert!(!rows.is_empty(), "{sql}: a CSV header");
        rows.remove(0);
        rows
    }

    /// The first column of every row.
    fn ids(&self, args: &[&str], sql: &str) -> Vec<String> {
        self.csv(args, sql).into_iter().map(|mut row| row.swap_remove(0)).collect()
    }

    /// Every version of `table`'s records, from `<table>_history`.
    fn versions(&self, table: &str) -> Vec<Version> {
        let sql = format!(
            "SELECT id, CAST(_version_at AS BIGINT) AS at, CAST(_ingested_at AS BIGINT) AS ingested, _deleted AS deleted \
             FROM {table}_history"
        );
        let out = self.query(&["--format", "json"], &sql);
        out.lines().map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{sql}: not JSON ({e}): {line}"))).collect()
    }
}

/// One version of a record: the columns that decide which version is a record's state.
#[derive(Debug, serde::Deserialize)]
struct Version {
    id: String,
    at: i64,
    ingested: i64,
    deleted: bool,
}

/// Ids whose last version (at or before `at`, if given) is not a delete, computed here from the
/// raw versions with the ordering the relations are specified with: `_version_at`, then
/// `_ingested_at`, then `_deleted` (false first).
fn live_ids(versions: &[Version], at: Option<i64>) -> BTreeSet<String> {
    let mut ordered: Vec<&Version> = versions.iter().filter(|v| at.is_none_or(|t| v.at <= t)).collect();
    ordered.sort_by_key(|v| (v.at, v.ingested, v.deleted));
    let mut last: HashMap<&str, bool> = HashMap::new();
    for v in ordered {
        last.insert(&v.id, v.deleted);
    }
    last.into_iter().filter(|(_, deleted)| !deleted).map(|(id, _)| id.to_owned()).collect()
}

/// Whether some record was deleted and then came back.
fn has_undelete(versions: &[Version]) -> bool {
    let mut ordered: Vec<&Version> = versions.iter().collect();
    ordered.sort_by_key(|v| (&v.id, v.at, v.ingested, v.deleted));
    ordered.windows(2).any(|w| w[0].id == w[1].id && w[0].deleted && !w[1].deleted)
}

pub(crate) fn run(command: &mut Command) -> Output {
    command.env("RUST_LOG", "warn").stdin(Stdio::null()).output().expect("tidemark runs")
}

pub(crate) fn succeeded(output: &Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what}: {}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).expect("utf-8 output")
}

fn failed(output: &Output, what: &str) -> String {
    assert!(!output.status.success(), "{what} succeeded but should not have:\n{}", String::from_utf8_lossy(&output.stdout));
    String::from_utf8(output.stderr.clone()).expect("utf-8 output")
}

/// RFC 4180 records (quoted fields may hold commas, quotes and line breaks).
pub(crate) fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let (mut rows, mut row, mut field) = (Vec::new(), Vec::new(), String::new());
    let (mut quoted, mut chars) = (false, text.chars().peekable());
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (_, c) => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

/// An instant in µs as `--as-of` and a TIMESTAMP literal take it.
pub(crate) fn instant(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros).expect("valid instant").format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Checks every relation of every table against the raw versions of `<table>_history`, now and
/// just before the first delete; returns every table's versions.
fn check_relations(lake: &Lake) -> HashMap<String, Vec<Version>> {
    let tables = lake.tables();
    assert!(tables.len() >= 5 && tables.contains(&"account".to_owned()), "{tables:?}");
    let versions: HashMap<String, Vec<Version>> = tables.iter().map(|t| (t.clone(), lake.versions(t))).collect();
    // Just before the first delete, that record is live; now it is not.
    let first_delete = versions.values().flatten().filter(|v| v.deleted).map(|v| v.at).min().expect("deletes in the lake");
    let before = instant(first_delete - 1);
    let mut as_of_differs = false;
    for (table, history) in &versions {
        // One run per table: every relation's ids, labelled.
        let sql = format!(
            "SELECT 'live' AS relation, id FROM {table} \
             UNION ALL SELECT 'count', CAST(count(*) AS VARCHAR) FROM {table} \
             UNION ALL SELECT 'current', id FROM {table}_scd2 WHERE is_current \
             UNION ALL SELECT 'scd2', id FROM {table}_scd2 \
             UNION ALL SELECT 'as_of()', id FROM as_of('{table}', TIMESTAMP '{before}')"
        );
        let mut got: HashMap<String, Vec<String>> = HashMap::new();
        for [relation, id] in lake.csv(&[], &sql).into_iter().map(|row| <[String; 2]>::try_from(row).expect("two columns")) {
            got.entry(relation).or_default().push(id);
        }
        let mut got = |relation: &str| {
            let mut ids = got.remove(relation).unwrap_or_default();
            ids.sort();
            ids
        };
        let live: Vec<String> = live_ids(history, None).into_iter().collect();
        assert_eq!(got("live"), live, "{table}: one row per record whose last version is not a delete");
        assert_eq!(got("count"), [live.len().to_string()], "{table}: count(*)");
        assert_eq!(got("current"), live, "{table}_scd2: one current row per live record");
        let mut kept: Vec<String> = history.iter().filter(|v| !v.deleted).map(|v| v.id.clone()).collect();
        kept.sort();
        assert_eq!(got("scd2"), kept, "{table}_scd2: one row per version that is not a delete");

        let then: Vec<String> = live_ids(history, Some(first_delete - 1)).into_iter().collect();
        as_of_differs |= then != live;
        assert_eq!(got("as_of()"), then, "as_of('{table}', {before})");
        let mut flag = lake.ids(&["--as-of", &before], &format!("SELECT id FROM {table}"));
        flag.sort();
        assert_eq!(flag, then, "{table} with --as-of {before}");
    }
    assert!(as_of_differs, "the state before the first delete differs from the live state");
    versions
}

/// Writes every relation with `tidemark sql --format parquet`, then has DuckDB run the DDL of
/// `tidemark catalog ddl` and compare its views with the files.
fn check_duckdb_views(lake: &Lake) {
    let python = python();
    let check = Path::new(PYTHON_DIR).join("duckdb_ddl_check.py");
    let extension =
        succeeded(&Command::new(&python).arg(&check).arg("extension").output().expect("python runs"), "extension path");

    let mut ddl = Command::new(BIN);
    ddl.args(["catalog", "ddl", "--engine", "duckdb", "--duckdb-extension", extension.trim(), "--lake"]).arg(&lake.path);
    let ddl_path = lake.dir.path().join("duckdb.sql");
    std::fs::write(&ddl_path, succeeded(&run(&mut ddl), "catalog ddl")).expect("writes the DDL");

    let rows = lake.dir.path().join("tidemark-rows");
    std::fs::create_dir(&rows).expect("a folder");
    let objects = lake.tables().into_iter().flat_map(|t| [t.clone(), format!("{t}_history"), format!("{t}_scd2")]);
    // The lake's marts (the demo builds dim_contact), as DuckDB reads them through the same DDL.
    let marts: Vec<String> = std::fs::read_dir(lake.path.join("marts"))
        .map(|dir| dir.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().into_owned()).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .flat_map(|m| [format!("{m}_current"), m])
        .collect();
    for relation in objects.chain(marts) {
        let file = rows.join(format!("{relation}.parquet"));
        lake.query(&["--format", "parquet", "--out", file.to_str().expect("utf-8 path")], &format!("SELECT * FROM {relation}"));
    }

    let script = Path::new(PYTHON_DIR).join("duckdb_views_vs_tidemark.py");
    let compared = Command::new(&python).arg(&script).arg(&ddl_path).arg(&rows).output().expect("python runs");
    let report = format!("{}{}", String::from_utf8_lossy(&compared.stdout), String::from_utf8_lossy(&compared.stderr));
    println!("{report}");
    assert!(compared.status.success(), "DuckDB's views differ from tidemark sql ({}):\n{report}", compared.status);
}

#[test]
fn demo_lake_answers_sql_in_every_format_and_in_duckdb() {
    let lake = Lake::demo();
    check_relations(&lake);

    // The field the demo adds between its syncs: unset in the first sync's versions, set later.
    let tier = lake.csv(&[], "SELECT count(tier__c), count(*) - count(tier__c) FROM account_history");
    assert!(tier[0].iter().all(|n| n != "0"), "tier__c set and unset: {tier:?}");

    let accounts = lake.csv(&[], "SELECT id, name FROM account ORDER BY id");
    let header = lake.query(&["--format", "csv"], "SELECT id, name FROM account ORDER BY id");
    assert!(header.starts_with("id,name\n"), "{header}");
    let json = lake.query(&["--format", "json"], "SELECT id, name FROM account ORDER BY id");
    let objects: Vec<J> =
        json.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("JSON line ({e}): {l}"))).collect();
    let from_json: Vec<Vec<String>> =
        objects.iter().map(|o| ["id", "name"].map(|k| o[k].as_str().expect("a string").to_owned()).to_vec()).collect();
    assert_eq!(from_json, accounts, "JSON lines and CSV hold the same rows");

    let parquet = lake.dir.path().join("accounts.parquet");
    let out = lake.query(
        &["--format", "parquet", "--out", parquet.to_str().expect("utf-8 path")],
        "SELECT id, name FROM account ORDER BY id",
    );
    assert!(out.is_empty(), "the result goes to the file: {out}");
    use tidemark_lake::deltalake::parquet::file::reader::{FileReader, SerializedFileReader};
    let reader = SerializedFileReader::new(std::fs::File::open(&parquet).expect("the parquet file")).expect("a parquet file");
    let metadata = reader.metadata().file_metadata();
    assert_eq!(metadata.num_rows(), accounts.len() as i64);
    let columns: Vec<&str> = metadata.schema_descr().columns().iter().map(|c| c.name()).collect();
    assert_eq!(columns, ["id", "name"]);
    // A Parquet file holds one result: a second one, or a listing, is refused, not appended.
    let two = lake.dir.path().join("two.parquet");
    let two_arg = two.to_str().expect("utf-8 path");
    let message =
        failed(&run(&mut lake.sql(&["--format", "parquet", "--out", two_arg, "SELECT 1 AS a; SELECT 2 AS b"])), "two results");
    assert!(message.contains("one result to a file"), "{message}");
    let reader = SerializedFileReader::new(std::fs::File::open(&two).expect("the first result")).expect("a valid parquet file");
    let columns: Vec<&str> = reader.metadata().file_metadata().schema_descr().columns().iter().map(|c| c.name()).collect();
    assert_eq!((reader.metadata().file_metadata().num_rows(), columns), (1, vec!["a"]));
    let message = failed(
        &piped(&lake, &["--format", "parquet", "--out", two_arg], "\\d\nSELECT 1 AS a;\n"),
        "a listing into a Parquet file",
    );
    assert!(message.contains("backslash commands (\\d"), "{message}");

    let message = failed(&run(&mut lake.sql(&["SELECT * FROM acount"])), "a misspelt table");
    assert!(message.contains("did you mean") && message.contains("'account'"), "{message}");

    // Scripts on standard input take the shell's backslash commands.
    // Three per object, two for the demo's mart (dim_contact, dim_contact_current).
    let relations = 3 * lake.tables().len() + 2;
    let out = succeeded(&piped(&lake, &[], "\\d\nSELECT 41 + 1 AS answer;\n\\d account\n"), "a script with \\d");
    assert!(out.contains(" account_scd2 ") && out.contains(&format!("({relations} tables)")), "{out}");
    assert!(out.contains("answer") && out.contains("42"), "{out}");
    assert!(out.contains(" tier__c ") && out.contains(" _version_at "), "\\d account describes it: {out}");
    // Column types by their SQL names, not Arrow's.
    let typed = |column: &str, sql_type: &str| out.lines().any(|l| l.split('|').map(str::trim).eq([column, sql_type]));
    for (column, sql_type) in [
        ("name", "text"),
        ("isdeleted", "boolean"),
        ("annualrevenue", "numeric(18,0)"),
        ("numberofemployees", "integer"),
        ("lastactivitydate", "date"),
        ("_version_at", "timestamp with time zone"),
    ] {
        assert!(typed(column, sql_type), "{column} {sql_type} in:\n{out}");
    }
    assert!(!out.contains("Utf8") && !out.contains("Timestamp("), "Arrow type names in:\n{out}");
    let out = succeeded(&piped(&lake, &[], "SELECT 'before' AS here;\n\\q\nSELECT * FROM nowhere;\n"), "a script with \\q");
    assert!(out.contains("before"), "{out}");
    let message = failed(&piped(&lake, &[], "\\d acount\n"), "\\d of a misspelt table");
    assert!(message.contains("did you mean") && message.contains("'account'"), "{message}");
    let message = failed(&piped(&lake, &[], "SELECT 1;\n\\frobnicate\n"), "an unknown command");
    assert!(message.contains("unknown command \\frobnicate"), "{message}");

    check_duckdb_views(&lake);
}

#[test]
fn lake_with_undeletes_answers_alike_in_sql_and_duckdb() {
    let lake = Lake::with_undeletes();
    let versions = check_relations(&lake);
    assert!(versions.values().any(|v| has_undelete(v)), "a record deleted in one sync is back in the next");
    let score = lake.csv(&[], "SELECT count(score__c), count(*) - count(score__c) FROM invoice__c_history");
    assert!(score[0].iter().all(|n| n != "0"), "the new field is set in later versions only: {score:?}");
    check_duckdb_views(&lake);
}

/// `tidemark sql <args>` with `script` on standard input.
fn piped(lake: &Lake, args: &[&str], script: &str) -> Output {
    let mut child =
        lake.sql(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("tidemark runs");
    child.stdin.take().expect("stdin").write_all(script.as_bytes()).expect("writes the script");
    child.wait_with_output().expect("tidemark ends")
}

/// A `tidemark serve-sql` process, killed when dropped (a failing test included).
struct Server {
    child: Child,
    port: u16,
}

const SQL_USER: &str = "tm";
const SQL_PASSWORD: &str = "s3cret 'pass'";

impl Server {
    fn start(lake: &Path, stderr: &Path) -> Server {
        let mut child = Command::new(BIN)
            .args(["serve-sql", "--listen", "127.0.0.1:0", "--user", SQL_USER, "--lake"])
            .arg(lake)
            .env("TIDEMARK_SQL_PASSWORD", SQL_PASSWORD)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(stderr).expect("a log file"))
            .spawn()
            .expect("serve-sql starts");
        let mut line = String::new();
        // The server prints this line once it listens; reading it is the wait.
        let read = BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line);
        let mut server = Server { child, port: 0 };
        read.expect("reads the first line");
        let addr = line.strip_prefix("listening on ").and_then(|rest| rest.split_once(' ')).map(|(addr, _)| addr);
        let addr: std::net::SocketAddr = addr.and_then(|a| a.parse().ok()).unwrap_or_else(|| {
            panic!("'listening on ADDR …' expected, got {line:?}; log:\n{}", std::fs::read_to_string(stderr).unwrap_or_default())
        });
        server.port = addr.port();
        server
    }

    /// psql as the server's user with `password`, then `args`.
    fn psql(&self, password: &str, args: &[&str]) -> Output {
        Command::new("/usr/bin/psql")
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", SQL_USER, "-d", "tidemark"])
            .args(args)
            .env("PGPASSWORD", password)
            .env("PGPASSFILE", "/nonexistent/pgpass")
            .env("PGCONNECT_TIMEOUT", "30")
            .env_remove("PGSERVICE")
            .env_remove("PGOPTIONS")
            .stdin(Stdio::null())
            .output()
            .expect("psql runs")
    }

    /// Stops the server; it must still have been running.
    fn stop(mut self) {
        assert!(self.child.try_wait().expect("waits").is_none(), "serve-sql exited before it was stopped");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn serve_sql_gives_psql_what_sql_prints() {
    let lake = Lake::demo();
    let server = Server::start(&lake.path, &lake.dir.path().join("serve-sql.log"));

    let first_delete = lake.versions("account").iter().filter(|v| v.deleted).map(|v| v.at).min().expect("deleted accounts");
    let as_of = format!("SELECT id, name FROM as_of('account', TIMESTAMP '{}')", instant(first_delete - 1));
    // Timestamps and booleans cast to text, so both sides print DataFusion's rendering.
    let queries = [
        "SELECT id, name, CAST(_version_at AS VARCHAR) AS v FROM account",
        "SELECT id, CAST(valid_from AS VARCHAR) AS f, CAST(valid_to AS VARCHAR) AS t, CAST(is_current AS VARCHAR) AS c FROM contact_scd2",
        "SELECT _origin, CAST(_deleted AS VARCHAR) AS deleted, count(*) AS n FROM opportunity_history GROUP BY 1, 2",
        &as_of,
    ];
    for sql in queries {
        let mut want: Vec<String> = lake.csv(&[], sql).iter().map(|row| row.join("|")).collect();
        let got = succeeded(&server.psql(SQL_PASSWORD, &["-c", sql]), sql);
        let mut got: Vec<&str> = got.lines().collect();
        // Rows in any order: what is compared is what crosses the wire.
        want.sort();
        got.sort_unstable();
        assert!(!want.is_empty(), "{sql}: rows to compare");
        assert_eq!(got, want, "{sql}");
    }

    let accounts = lake.csv(&[], "SELECT id, name FROM account ORDER BY id DESC LIMIT 1");
    let [id, name] = [&accounts[0][0], &accounts[0][1]];
    let prepared = server.psql(
        SQL_PASSWORD,
        &[
            "-c",
            "PREPARE q(text) AS SELECT name FROM account WHERE id = $1",
            "-c",
            &format!("EXECUTE q('{id}')"),
            "-c",
            "EXECUTE q('001nobody')",
        ],
    );
    assert_eq!(succeeded(&prepared, "PREPARE/EXECUTE").lines().filter(|l| !l.is_empty()).collect::<Vec<_>>(), [name.as_str()]);

    // psql's listings: the stored version tables under \dt, the relations derived from them under \dv.
    let tables = succeeded(&server.psql(SQL_PASSWORD, &["-c", "\\dt"]), "\\dt");
    let views = succeeded(&server.psql(SQL_PASSWORD, &["-c", "\\dv"]), "\\dv");
    for table in lake.tables() {
        assert!(
            tables.lines().any(|l| l.starts_with(&format!("public|{table}_history|table|"))),
            "{table}_history in:\n{tables}"
        );
        for view in [table.clone(), format!("{table}_scd2")] {
            assert!(views.lines().any(|l| l.starts_with(&format!("public|{view}|view|"))), "{view} in:\n{views}");
        }
    }

    // psql's meta-commands (psql 15 sends ARRAY(SELECT …), pg_function_is_visible, …).
    let describe = succeeded(&server.psql(SQL_PASSWORD, &["-c", "\\d+ account"]), "\\d+ account");
    for column in
        ["id|text||not null||extended|", "name|text||||extended|", "_version_at|timestamp with time zone||not null||plain|"]
    {
        assert!(describe.lines().any(|l| l == column), "{column} in:\n{describe}");
    }
    assert_eq!(succeeded(&server.psql(SQL_PASSWORD, &["-c", "\\du"]), "\\du"), format!("{SQL_USER}||{{}}\n"));
    let functions = succeeded(&server.psql(SQL_PASSWORD, &["-c", "\\df"]), "\\df");
    assert!(functions.is_empty(), "no function outside pg_catalog: {functions}");
    let databases = succeeded(&server.psql(SQL_PASSWORD, &["-c", "\\l"]), "\\l");
    assert!(databases.lines().any(|l| l.starts_with("datafusion|")), "{databases}");
    assert_eq!(succeeded(&server.psql(SQL_PASSWORD, &["-c", "\\dn"]), "\\dn"), "public|postgres\n");

    let typo = failed(&server.psql(SQL_PASSWORD, &["-c", "SELECT * FROM acount"]), "a misspelt table over psql");
    assert!(typo.contains("did you mean 'account'"), "{typo}");

    let refused = failed(&server.psql("wrong", &["-c", "SELECT 1"]), "a wrong password");
    assert!(refused.contains("password authentication failed for user \"tm\""), "{refused}");
    server.stop();
}

/// The last commit number of each table, from its Delta log.
fn last_versions(lake: &Lake) -> HashMap<String, u64> {
    let version = |table: &str| {
        let log = lake.path.join("objects").join(table).join("_delta_log");
        let commits = std::fs::read_dir(log).expect("a Delta log").filter_map(|e| {
            let name = e.expect("entry").file_name().into_string().expect("utf-8 name");
            name.strip_suffix(".json").and_then(|n| n.parse::<u64>().ok())
        });
        commits.max().expect("a commit")
    };
    lake.tables().into_iter().map(|t| (t.clone(), version(&t))).collect()
}

#[test]
fn lake_time_as_of_and_a_corrupt_log_say_which_table() {
    let lake = Lake::demo();

    // --table-version applies to each table's own commits and names the tables without it.
    let versions = last_versions(&lake);
    let top = *versions.values().max().expect("tables");
    let newest = versions.iter().find(|(_, v)| **v == top).map(|(t, _)| t.clone()).expect("a table");
    let mut short: Vec<(&String, &u64)> = versions.iter().filter(|(_, v)| **v < top).collect();
    short.sort();
    assert!(short.len() >= 2, "tables with fewer commits than {newest}: {versions:?}");
    let pinned = top.to_string();
    let count = lake.csv(&["--table-version", &pinned], &format!("SELECT count(*) FROM {newest}_history"));
    assert_ne!(count[0][0], "0", "{newest} at version {top}");
    let sql = format!("SELECT (SELECT count(*) FROM \"{}\") + (SELECT count(*) FROM \"{}_scd2\")", short[0].0, short[1].0);
    let message = failed(&run(&mut lake.sql(&["--table-version", &pinned, &sql])), "tables without that version");
    let listed = format!(
        "tables {} (its last version is {}), {} (its last version is {}) have no version {top}",
        short[0].0, short[0].1, short[1].0, short[1].1
    );
    assert!(message.contains(&listed), "{listed} in:\n{message}");

    // An as-of instant before the lake's first version: the empty result, and a note why.
    let out = run(&mut lake.sql(&["--format", "csv", "--as-of", "2000-01-01", "SELECT count(*) AS n FROM account"]));
    assert_eq!(succeeded(&out, "--as-of 2000-01-01"), "n\n0\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("note: 2000-01-01T00:00:00Z is before the first version of account (")
            && stderr.contains("); no record existed yet in the lake"),
        "{stderr}"
    );
    let now = run(&mut lake.sql(&["--format", "csv", "SELECT count(*) AS n FROM account"]));
    assert!(succeeded(&now, "live") != "n\n0\n" && hints(&now).is_empty(), "{:?}", hints(&now));

    // A commit file overwritten with garbage: the error names the table and where it lives.
    let table = std::fs::canonicalize(lake.path.join("objects/contact")).expect("contact's folder");
    std::fs::write(table.join("_delta_log/00000000000000000001.json"), "garbage").expect("overwrites a commit");
    let message = failed(&run(&mut lake.sql(&["SELECT count(*) FROM contact"])), "a corrupt commit");
    assert!(message.contains(&format!("cannot read table 'contact' at {}", table.display())), "{message}");
    assert!(!message.contains("   0: "), "no backtrace in the message: {message}");
    lake.query(&[], "SELECT count(*) FROM account");
}

#[test]
fn a_live_query_warns_when_the_initial_sync_never_completed() {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let lake = runtime.block_on(async {
        let mut h = Harness::start(20, 9).await;
        h.sync().await;
        // The ledger an interrupted first sync of Account leaves: no complete run for it.
        let ledger = tidemark_lake::Ledger::new(h.lake.clone());
        let runs = ledger.runs().await.expect("the ledger");
        let path = h.lake.root().to_file_path().expect("a local lake");
        std::fs::remove_dir_all(path.join("_tidemark/sync_runs")).expect("removes the ledger");
        for mut run in runs {
            if run.object == "Account" {
                run.status = tidemark_lake::RunStatus::Incomplete;
                run.bookmark = None;
            }
            ledger.record_run(&run).await.expect("records a run");
        }
        let Harness { sim, dir, .. } = h;
        sim.shutdown().await;
        Lake { dir, path }
    });
    let records = lake.csv(&[], "SELECT count(*) FROM account")[0][0].clone();
    let out = run(&mut lake.sql(&["--format", "csv", "SELECT count(*) AS a FROM account; SELECT count(*) AS b FROM account"]));
    assert_eq!(succeeded(&out, "two live queries"), format!("a\n{records}\nb\n{records}\n"));
    let warning = format!(
        "warning: account's initial sync has not completed (the lake's ledger has no complete run for it): the live state \
         holds only the {records} records read so far"
    );
    assert_eq!(hints(&out), [warning], "one warning per session");
    let other = run(&mut lake.sql(&["SELECT count(*) FROM contact"]));
    succeeded(&other, "contact");
    assert!(hints(&other).is_empty(), "contact's sync completed: {:?}", hints(&other));
}

/// The notes and warnings `tidemark sql` printed on standard error (not log records).
fn hints(output: &Output) -> Vec<String> {
    let stderr = String::from_utf8_lossy(&output.stderr);
    stderr.lines().filter(|l| l.starts_with("note: ") || l.starts_with("warning: ")).map(str::to_owned).collect()
}
