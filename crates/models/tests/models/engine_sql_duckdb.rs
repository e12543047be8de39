//! DuckDB runs the statements `engine_sql` writes, in one database file per scenario, through
//! the interop venv's Python (`scripts/python-venv.sh`):
//! - the post's two loads (initial files on 2022-07-01, the `_incr` files added on 2023-03-19)
//!   give the published `dim_customer`, in both hash modes and both ways of applying changes;
//! - a scenario of our own: status-column deletes (primary and secondary), a type-1 change,
//!   the concatenation and NULL-versus-'' traps (a new row by default, none in redshift-post
//!   mode), a same-date re-run replacing and removing rows, a tie and an earlier run date;
//! - every typed text form hashes to what `tidemark_models::hash` computes;
//! - `model run` and DuckDB build the same dimensions: from files, from a lake object's live
//!   records (with a file source), and source time from histories.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::NaiveDate;
use serde_json::Value;
use tidemark_core::models::{Compatibility, ModelConfig};
use tidemark_lake::arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int32Array, Int64Array, StringArray, TimestampMicrosecondArray,
};
use tidemark_models::engine_sql::{Apply, Engine, SqlOptions, load_statements_with};

const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/scd2-post");

/// Executes a SQL file in a DuckDB database file, then prints a query's rows as JSON.
const RUNNER: &str = r#"
import json, sys, duckdb
db, sql_file, query = sys.argv[1], sys.argv[2], sys.argv[3]
con = duckdb.connect(db)
sql = open(sql_file, encoding="utf-8").read()
if sql.strip():
    con.execute(sql)
if query:
    cur = con.execute(query)
    names = [d[0] for d in cur.description]
    plain = lambda v: v if v is None or isinstance(v, (bool, int, str)) else str(v)
    print(json.dumps([dict(zip(names, map(plain, row))) for row in cur.fetchall()]))
"#;

/// The interop venv's python (created on first use by `scripts/python-venv.sh`).
fn python() -> PathBuf {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/python-venv.sh");
    let out = std::process::Command::new("bash").arg(script).output().expect("runs the venv script");
    assert!(out.status.success(), "venv set-up failed:\n{}", String::from_utf8_lossy(&out.stderr));
    PathBuf::from(String::from_utf8(out.stdout).expect("utf-8").trim())
}

/// A DuckDB database file and the landing folders of one scenario.
struct Scenario {
    dir: tempfile::TempDir,
    python: PathBuf,
    runs: usize,
}

impl Scenario {
    fn new() -> Scenario {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("runner.py"), RUNNER).unwrap();
        Scenario { dir, python: python(), runs: 0 }
    }

    fn landing(&self, source: &str) -> String {
        self.dir.path().join("landing").join(source).to_str().unwrap().to_owned()
    }

    fn land(&self, source: &str, file: &str, content: &str) {
        let folder = PathBuf::from(self.landing(source));
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join(file), content).unwrap();
    }

    /// Runs `sql`, then `query`; the error is DuckDB's message.
    fn run(&mut self, sql: &str, query: &str) -> Result<Vec<Value>, String> {
        self.runs += 1;
        let file = self.dir.path().join(format!("load{}.sql", self.runs));
        std::fs::write(&file, sql).unwrap();
        let out = std::process::Command::new(&self.python)
            .arg(self.dir.path().join("runner.py"))
            .arg(self.dir.path().join("dim.duckdb"))
            .arg(&file)
            .arg(query)
            .output()
            .expect("python runs");
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        let stdout = String::from_utf8(out.stdout).unwrap();
        Ok(if query.is_empty() { Vec::new() } else { serde_json::from_str(&stdout).expect("JSON rows") })
    }

    /// One load of `model` dated `date`.
    fn load(&mut self, name: &str, model: &ModelConfig, date: &str, apply: Apply) -> Result<(), String> {
        let options = SqlOptions { apply: Some(apply), ..SqlOptions::default() };
        let sql = load_statements_with(name, model, Engine::DuckDb, day(date), &options).expect("statements");
        self.run(&sql, "").map(|_| ())
    }

    fn dump(&mut self, query: &str) -> Vec<Value> {
        self.run("", query).expect("query runs")
    }
}

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn model(json: Value) -> ModelConfig {
    serde_json::from_value(json).expect("model parses")
}

/// The post's configuration over the scenario's folders.
fn post_model(s: &Scenario, compatibility: &str) -> ModelConfig {
    let source = |name: &str, columns: [&str; 3]| {
        serde_json::json!({"name": name, "files": s.landing(name), "order_by": "row_audit_ts", "extract": "change_only",
            "types": {"customer_id": "bigint", "row_audit_ts": "timestamp"}, "columns": columns})
    };
    model(serde_json::json!({
        "key": ["customer_id"],
        "compatibility": compatibility,
        "columns": {"effective": "rec_eff_dt", "expiry": "rec_exp_dt"},
        "sources": [source("customer_master", ["first_name", "last_name", "employer_name"]), source("customer_address", ["email_id", "city", "country"])]
    }))
}

const POST_DUMP: &str = "SELECT customer_sk, customer_id, first_name, last_name, employer_name, email_id, city, country, \
    rec_eff_dt, rec_exp_dt, is_current, change_hash FROM dim_customer ORDER BY customer_id, rec_eff_dt";

fn text(row: &Value, column: &str) -> String {
    match &row[column] {
        Value::Null => "NULL".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn sk(row: &Value) -> i64 {
    row["customer_sk"].as_i64().expect("surrogate key")
}

/// The post's two loads; returns the dimension after each.
fn post_loads(compatibility: &str, apply: Apply) -> (Vec<Value>, Vec<Value>) {
    let mut s = Scenario::new();
    let post = post_model(&s, compatibility);
    for (source, file) in
        [("customer_master", "customer_master_with_ts.csv"), ("customer_address", "customer_address_with_ts.csv")]
    {
        s.land(source, file, &std::fs::read_to_string(Path::new(SHARED).join(file)).unwrap());
    }
    s.load("dim_customer", &post, "2022-07-01", apply).unwrap();
    let first = s.dump(POST_DUMP);
    for (source, file) in
        [("customer_master", "customer_master_with_ts_incr.csv"), ("customer_address", "customer_address_with_ts_incr.csv")]
    {
        s.land(source, file, &std::fs::read_to_string(Path::new(SHARED).join(file)).unwrap());
    }
    s.load("dim_customer", &post, "2023-03-19", apply).unwrap();
    let second = s.dump(POST_DUMP);
    // The same load again changes nothing.
    s.load("dim_customer", &post, "2023-03-19", apply).unwrap();
    assert_eq!(s.dump(POST_DUMP), second, "a re-run with no new data changes nothing");
    (first, second)
}

/// The published table without its surrogate keys, in our dump's order.
fn published() -> Vec<Vec<String>> {
    let csv = std::fs::read_to_string(Path::new(SHARED).join("published_dim_customer_after_incremental.csv")).unwrap();
    let mut rows: Vec<Vec<String>> =
        csv.lines().skip(1).map(|l| l.trim_end().split(',').skip(1).map(str::to_owned).collect()).collect();
    rows.sort_by(|a, b| (a[0].parse::<i64>().unwrap(), &a[7]).cmp(&(b[0].parse::<i64>().unwrap(), &b[7])));
    rows
}

fn check_post(first: &[Value], second: &[Value], hash_of: impl Fn(&Value) -> String) {
    let columns =
        ["customer_id", "first_name", "last_name", "employer_name", "email_id", "city", "country", "rec_eff_dt", "rec_exp_dt"];
    let got: Vec<Vec<String>> = second.iter().map(|r| columns.iter().map(|c| text(r, c)).collect()).collect();
    assert_eq!(got, published(), "same rows and dates as the published table");
    for row in second {
        assert_eq!(row["is_current"], Value::Bool(text(row, "rec_exp_dt") == "9999-12-31"), "{row}");
        assert_eq!(text(row, "change_hash"), hash_of(row), "{row}");
    }
    // The post's surrogate-key contract: unique, growing from one load to the next, existing
    // keys unchanged. Ours also numbers each load's new keys in business-key order.
    let sks: BTreeSet<i64> = second.iter().map(sk).collect();
    assert_eq!(sks.len(), second.len(), "unique surrogate keys");
    let before: BTreeMap<i64, i64> = first.iter().map(|r| (r["customer_id"].as_i64().unwrap(), sk(r))).collect();
    for row in second.iter().filter(|r| text(r, "rec_eff_dt") == "2022-07-01") {
        assert_eq!(before[&row["customer_id"].as_i64().unwrap()], sk(row), "existing key unchanged: {row}");
    }
    let old_max = before.values().max().unwrap();
    let new: Vec<i64> = second.iter().filter(|r| text(r, "rec_eff_dt") == "2023-03-19").map(sk).collect();
    assert!(new.iter().all(|k| k > old_max), "new keys above every earlier key: {new:?}");
    assert!(new.windows(2).all(|w| w[0] < w[1]), "new keys in business-key order: {new:?}");
    assert_eq!(before.values().copied().collect::<Vec<_>>(), [1, 2, 3, 4, 5], "the first load numbers keys in key order");
}

fn attributes(row: &Value) -> Vec<Option<String>> {
    ["first_name", "last_name", "employer_name", "email_id", "city", "country"]
        .iter()
        .map(|c| row[*c].as_str().map(str::to_owned))
        .collect()
}

/// Tidemark's default hash, as `tidemark_models::hash` computes it.
fn tidemark_hash(values: &[Option<String>]) -> String {
    let columns: Vec<ArrayRef> = values.iter().map(|v| Arc::new(StringArray::from(vec![v.clone()])) as ArrayRef).collect();
    tidemark_models::hash::change_hashes(&columns, 1, Compatibility::Default).unwrap().value(0).to_owned()
}

#[test]
fn the_posts_loads_give_the_published_dimension() {
    let (first, second) = post_loads("default", Apply::Merge);
    check_post(&first, &second, |row| tidemark_hash(&attributes(row)));
}

#[test]
fn the_posts_loads_give_the_published_dimension_staged() {
    let (first, second) = post_loads("default", Apply::Staged);
    check_post(&first, &second, |row| tidemark_hash(&attributes(row)));
}

#[test]
fn the_posts_loads_give_the_published_dimension_in_redshift_post_mode() {
    use sha2::Digest;
    // DuckDB has no SHA-512: its redshift-post hash is SHA-256 of the same concatenation.
    let concatenated = |row: &Value| {
        let text: String = attributes(row).into_iter().map(Option::unwrap_or_default).collect();
        hex::encode(sha2::Sha256::digest(text.as_bytes()))
    };
    for apply in [Apply::Merge, Apply::Staged] {
        let (first, second) = post_loads("redshift-post", apply);
        check_post(&first, &second, concatenated);
    }
}

/// Our scenario's model: two sources with status columns, a type-1 nickname.
fn person_model(s: &Scenario, compatibility: &str) -> ModelConfig {
    let source = |name: &str, columns: &[&str]| {
        serde_json::json!({"name": name, "files": s.landing(name), "order_by": "ts", "status_column": "op",
            "types": {"id": "bigint", "ts": "timestamp"}, "columns": columns})
    };
    model(serde_json::json!({
        "key": ["id"],
        "compatibility": compatibility,
        "type1": ["nickname"],
        "sources": [source("person", &["first", "last", "nickname"]), source("contact", &["email"])]
    }))
}

const PERSON_DUMP: &str = "SELECT person_sk, id, first, last, nickname, email, valid_from, valid_to, is_current FROM dim_person ORDER BY id, valid_from";

fn lines(rows: &[Value]) -> Vec<String> {
    let columns = ["person_sk", "id", "first", "last", "nickname", "email", "valid_from", "valid_to", "is_current"];
    rows.iter().map(|r| columns.iter().map(|c| text(r, c)).collect::<Vec<_>>().join("|")).collect()
}

/// Runs the scenario in one hash mode and way of applying; `expected[i]` is the dimension after load i.
fn person_scenario(compatibility: &str, apply: Apply, expected: [&[&str]; 3]) {
    let mut s = Scenario::new();
    let m = person_model(&s, compatibility);
    let head = "id,first,last,nickname,op,ts\n";
    s.land(
        "person",
        "p1.csv",
        &format!(
            "{head}1,ANNA,BELLE,An,I,2024-01-01 10:00:00\n2,Bob,Stone,,I,2024-01-01 10:00:00\n3,Cy,Moss,Cyd,I,2024-01-01 10:00:00\n\
             4,Dee,Lane,,I,2024-01-01 10:00:00\n6,Fay,\"\",,I,2024-01-01 10:00:00\n"
        ),
    );
    s.land("contact", "c1.csv", "id,email,op,ts\n1,anna@x.org,I,2024-01-01 10:00:00\n2,bob@x.org,I,2024-01-01 10:00:00\n4,dee@x.org,I,2024-01-01 10:00:00\n");
    s.load("dim_person", &m, "2024-01-01", apply).unwrap();
    assert_eq!(lines(&s.dump(PERSON_DUMP)), expected[0], "after the first load ({compatibility})");

    // 1: the concatenation trap; 2: type-1 only; 3: deleted; 4: an older row (ignored) and
    // deleted from the secondary source; 5: new, delivered twice (I and U, same content);
    // 6: '' becomes NULL.
    s.land(
        "person",
        "p2.csv",
        &format!(
            "{head}1,ANNABELLE,,An,U,2024-01-15 10:00:00\n2,Bob,Stone,Bobby,U,2024-01-15 10:00:00\n3,Cy,Moss,Cyd, d ,2024-01-15 10:00:00\n\
             4,Dee,Old,,U,2023-12-01 00:00:00\n5,Eve,Park,,I,2024-01-15 10:00:00\n5,Eve,Park,,U,2024-01-15 10:00:00\n6,Fay,,,U,2024-01-15 10:00:00\n"
        ),
    );
    s.land("contact", "c2.csv", "id,email,op,ts\n4,dee@x.org,D,2024-01-15 10:00:00\n");
    s.load("dim_person", &m, "2024-02-01", apply).unwrap();
    assert_eq!(lines(&s.dump(PERSON_DUMP)), expected[1], "after the second load ({compatibility})");

    // The same run date again: 5's row of today is replaced in place, 6 is deleted.
    s.land("person", "p3.csv", &format!("{head}5,Eve,Parker,,U,2024-01-20 10:00:00\n6,Fay,,,D,2024-01-20 10:00:00\n"));
    s.load("dim_person", &m, "2024-02-01", apply).unwrap();
    let after = s.dump(PERSON_DUMP);
    assert_eq!(lines(&after), expected[2], "after the same-date re-run ({compatibility})");

    // A tie stops the load before the dimension changes.
    s.land(
        "person",
        "p4.csv",
        &format!("{head}2,Bob,Stone,Bobby,U,2024-03-01 10:00:00\n2,Rob,Stone,Bobby,U,2024-03-01 10:00:00\n"),
    );
    let err = s.load("dim_person", &m, "2024-03-01", apply).unwrap_err();
    assert!(
        err.contains(
            "model dim_person, source person: two different rows of key 2 have the same ts; which is latest cannot be decided"
        ),
        "{err}"
    );
    std::fs::remove_file(PathBuf::from(s.landing("person")).join("p4.csv")).unwrap();
    s.land("person", "p5.csv", &format!("{head}2,Bob,Stone,Bobby,Q,2024-03-01 10:00:00\n"));
    let err = s.load("dim_person", &m, "2024-03-01", apply).unwrap_err();
    assert!(err.contains("model dim_person, source person: op must be I, U or D on every row"), "{err}");
    std::fs::remove_file(PathBuf::from(s.landing("person")).join("p5.csv")).unwrap();
    let err = s.load("dim_person", &m, "2024-01-15", apply).unwrap_err();
    assert!(err.contains("model dim_person: run date 2024-01-15 is before the last load's date"), "{err}");
    assert_eq!(s.dump(PERSON_DUMP), after, "failed loads change nothing");
}

#[test]
fn deletes_same_day_reruns_and_the_concatenation_trap() {
    let first: &[&str] = &[
        "1|1|ANNA|BELLE|An|anna@x.org|2024-01-01|9999-12-31|true",
        "2|2|Bob|Stone|NULL|bob@x.org|2024-01-01|9999-12-31|true",
        "3|3|Cy|Moss|Cyd|NULL|2024-01-01|9999-12-31|true",
        "4|4|Dee|Lane|NULL|dee@x.org|2024-01-01|9999-12-31|true",
        "5|6|Fay||NULL|NULL|2024-01-01|9999-12-31|true",
    ];
    let expected: [&[&str]; 3] = [
        first,
        &[
            "1|1|ANNA|BELLE|An|anna@x.org|2024-01-01|2024-01-31|false",
            "6|1|ANNABELLE|NULL|An|anna@x.org|2024-02-01|9999-12-31|true",
            "2|2|Bob|Stone|Bobby|bob@x.org|2024-01-01|9999-12-31|true",
            "3|3|Cy|Moss|Cyd|NULL|2024-01-01|2024-01-31|false",
            "4|4|Dee|Lane|NULL|dee@x.org|2024-01-01|2024-01-31|false",
            "7|4|Dee|Lane|NULL|NULL|2024-02-01|9999-12-31|true",
            "8|5|Eve|Park|NULL|NULL|2024-02-01|9999-12-31|true",
            "5|6|Fay||NULL|NULL|2024-01-01|2024-01-31|false",
            "9|6|Fay|NULL|NULL|NULL|2024-02-01|9999-12-31|true",
        ],
        &[
            "1|1|ANNA|BELLE|An|anna@x.org|2024-01-01|2024-01-31|false",
            "6|1|ANNABELLE|NULL|An|anna@x.org|2024-02-01|9999-12-31|true",
            "2|2|Bob|Stone|Bobby|bob@x.org|2024-01-01|9999-12-31|true",
            "3|3|Cy|Moss|Cyd|NULL|2024-01-01|2024-01-31|false",
            "4|4|Dee|Lane|NULL|dee@x.org|2024-01-01|2024-01-31|false",
            "7|4|Dee|Lane|NULL|NULL|2024-02-01|9999-12-31|true",
            "8|5|Eve|Parker|NULL|NULL|2024-02-01|9999-12-31|true",
            "5|6|Fay||NULL|NULL|2024-01-01|2024-01-31|false",
        ],
    ];
    person_scenario("default", Apply::Merge, expected);
    person_scenario("default", Apply::Staged, expected);
}

#[test]
fn redshift_post_mode_falls_into_the_posts_traps() {
    let first: &[&str] = &[
        "1|1|ANNA|BELLE|An|anna@x.org|2024-01-01|9999-12-31|true",
        "2|2|Bob|Stone|NULL|bob@x.org|2024-01-01|9999-12-31|true",
        "3|3|Cy|Moss|Cyd|NULL|2024-01-01|9999-12-31|true",
        "4|4|Dee|Lane|NULL|dee@x.org|2024-01-01|9999-12-31|true",
        "5|6|Fay||NULL|NULL|2024-01-01|9999-12-31|true",
    ];
    // ('ANNA','BELLE') → ('ANNABELLE',NULL) and '' → NULL make no new row.
    let expected: [&[&str]; 3] = [
        first,
        &[
            "1|1|ANNA|BELLE|An|anna@x.org|2024-01-01|9999-12-31|true",
            "2|2|Bob|Stone|Bobby|bob@x.org|2024-01-01|9999-12-31|true",
            "3|3|Cy|Moss|Cyd|NULL|2024-01-01|2024-01-31|false",
            "4|4|Dee|Lane|NULL|dee@x.org|2024-01-01|2024-01-31|false",
            "6|4|Dee|Lane|NULL|NULL|2024-02-01|9999-12-31|true",
            "7|5|Eve|Park|NULL|NULL|2024-02-01|9999-12-31|true",
            "5|6|Fay||NULL|NULL|2024-01-01|9999-12-31|true",
        ],
        &[
            "1|1|ANNA|BELLE|An|anna@x.org|2024-01-01|9999-12-31|true",
            "2|2|Bob|Stone|Bobby|bob@x.org|2024-01-01|9999-12-31|true",
            "3|3|Cy|Moss|Cyd|NULL|2024-01-01|2024-01-31|false",
            "4|4|Dee|Lane|NULL|dee@x.org|2024-01-01|2024-01-31|false",
            "6|4|Dee|Lane|NULL|NULL|2024-02-01|9999-12-31|true",
            "7|5|Eve|Parker|NULL|NULL|2024-02-01|9999-12-31|true",
            "5|6|Fay||NULL|NULL|2024-01-01|2024-01-31|false",
        ],
    ];
    person_scenario("redshift-post", Apply::Merge, expected);
    person_scenario("redshift-post", Apply::Staged, expected);
}

#[test]
fn a_full_extract_deletes_the_keys_its_newest_file_lacks() {
    let mut s = Scenario::new();
    let m = model(serde_json::json!({
        "key": ["id"],
        "sources": [{"name": "item", "files": s.landing("item"), "extract": "full", "order_by": "ts",
            "types": {"id": "bigint", "ts": "date"}, "columns": ["label"]}]
    }));
    let dump = "SELECT item_sk, id, label, valid_from, valid_to FROM dim_item ORDER BY id, valid_from";
    let rows = |s: &mut Scenario| -> Vec<String> {
        s.dump(dump).iter().map(|r| ["item_sk", "id", "label", "valid_from", "valid_to"].map(|c| text(r, c)).join("|")).collect()
    };
    s.land("item", "2024-01-01.csv", "id,label,ts\n1,a,2024-01-01\n2,b,2024-01-01\n3,c,2024-01-01\n");
    s.load("dim_item", &m, "2024-01-01", Apply::Merge).unwrap();
    // Marker and hidden files are not data.
    s.land("item", "_SUCCESS.csv", "id,label,ts\n9,z,2030-01-01\n");
    s.land("item", "2024-01-02.csv", "id,label,ts\n1,a,2024-01-02\n3,C,2024-01-02\n");
    s.load("dim_item", &m, "2024-01-02", Apply::Merge).unwrap();
    assert_eq!(
        rows(&mut s),
        [
            "1|1|a|2024-01-01|9999-12-31",
            "2|2|b|2024-01-01|2024-01-01",
            "3|3|c|2024-01-01|2024-01-01",
            "4|3|C|2024-01-02|9999-12-31",
        ]
    );
    // An empty newest extract deletes every key.
    s.land("item", "2024-01-03.csv", "id,label,ts\n");
    s.load("dim_item", &m, "2024-01-03", Apply::Staged).unwrap();
    assert_eq!(
        rows(&mut s),
        [
            "1|1|a|2024-01-01|2024-01-02",
            "2|2|b|2024-01-01|2024-01-01",
            "3|3|c|2024-01-01|2024-01-01",
            "4|3|C|2024-01-02|2024-01-02",
        ]
    );
}

#[test]
fn typed_text_forms_hash_as_tidemark_hashes() {
    let mut s = Scenario::new();
    let m = model(serde_json::json!({
        "key": ["id"],
        "sources": [{"name": "typed", "files": s.landing("typed"), "order_by": "at",
            "types": {"id": "bigint", "at": "timestamp", "b": "bigint", "i": "int", "f": "double", "ok": "boolean", "d": "date", "t": "timestamp"},
            "columns": ["b", "i", "f", "ok", "d", "t", "s"]}]
    }));
    let doubles = [
        1.0,
        1e20,
        1.5e-7,
        -0.0,
        0.1,
        123.456,
        1e300,
        5e-324,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        100.0,
        0.001,
        12345678.9,
        f64::MAX,
        -2.5e-5,
    ];
    let bigints = [Some(i64::MAX), Some(-5), None, Some(0)];
    let ints = [Some(i32::MIN), Some(42), None];
    let bools = [Some(true), Some(false), None];
    let dates = [Some("2022-07-01"), Some("1900-01-01"), None];
    // (as written in the file, UTC microseconds)
    let at = |s: &str| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap().and_utc().timestamp_micros();
    let stamps = [
        Some(("2019-05-03 14:52:36", at("2019-05-03 14:52:36"))),
        Some(("2019-05-03 14:52:36.5", at("2019-05-03 14:52:36.5"))),
        Some(("2019-05-03T14:52:36.123456Z", at("2019-05-03 14:52:36.123456"))),
        Some(("2019-05-03 16:52:36+02:00", at("2019-05-03 14:52:36"))),
        Some(("1969-12-31 23:59:59.999999", -1)),
        None,
    ];
    let strings =
        [Some(("é", "é")), Some(("\"\"", "")), None, Some(("\"a,b\"", "a,b")), Some(("\"say \"\"hi\"\"\"", "say \"hi\""))];
    let n = doubles.len();
    let mut csv = String::from("id,at,b,i,f,ok,d,t,s\n");
    for r in 0..n {
        let cell = |v: Option<String>| v.unwrap_or_default();
        csv.push_str(&format!(
            "{r},2024-01-01 00:00:00,{},{},{},{},{},{},{}\n",
            cell(bigints[r % 4].map(|v| v.to_string())),
            cell(ints[r % 3].map(|v| v.to_string())),
            doubles[r],
            cell(bools[r % 3].map(|v| v.to_string())),
            cell(dates[r % 3].map(str::to_owned)),
            cell(stamps[r % 6].map(|(written, _)| written.to_owned())),
            cell(strings[r % 5].map(|(written, _)| written.to_owned())),
        ));
    }
    s.land("typed", "t.csv", &csv);
    s.load("dim_typed", &m, "2024-01-01", Apply::Merge).unwrap();
    let got: Vec<String> =
        s.dump("SELECT change_hash FROM dim_typed ORDER BY id").iter().map(|r| text(r, "change_hash")).collect();
    let days = |d: &str| (day(d) - day("1970-01-01")).num_days() as i32;
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from((0..n).map(|r| bigints[r % 4]).collect::<Vec<_>>())),
        Arc::new(Int32Array::from((0..n).map(|r| ints[r % 3]).collect::<Vec<_>>())),
        Arc::new(Float64Array::from(doubles.to_vec())),
        Arc::new(BooleanArray::from((0..n).map(|r| bools[r % 3]).collect::<Vec<_>>())),
        Arc::new(Date32Array::from((0..n).map(|r| dates[r % 3].map(days)).collect::<Vec<_>>())),
        Arc::new(
            TimestampMicrosecondArray::from((0..n).map(|r| stamps[r % 6].map(|(_, us)| us)).collect::<Vec<_>>())
                .with_timezone("UTC"),
        ),
        Arc::new(StringArray::from((0..n).map(|r| strings[r % 5].map(|(_, v)| v)).collect::<Vec<_>>())),
    ];
    let want = tidemark_models::hash::change_hashes(&columns, n, Compatibility::Default).unwrap();
    for (r, hash) in got.iter().enumerate() {
        assert_eq!(
            hash,
            want.value(r),
            "row {r}: f = {}, timestamp {:?}, string {:?}",
            doubles[r],
            stamps[r % 6],
            strings[r % 5]
        );
    }
}

/// The dimension `tidemark model run` built, in DuckDB's JSON shape (dates as text).
async fn tidemark_dimension(lake: &tidemark_lake::LakeLocation, name: &str, query: &str) -> Vec<Value> {
    let table = tidemark_lake::history::open_table(lake, lake.mart_table_url(name)).await.unwrap().expect("a dimension");
    let ctx = tidemark_lake::datafusion::prelude::SessionContext::new();
    table.update_datafusion_session(&ctx.state()).unwrap();
    ctx.register_table(name, table.table_provider().await.unwrap()).unwrap();
    let batches = ctx.sql(query).await.unwrap().collect().await.unwrap();
    let mut json = tidemark_lake::arrow::json::ArrayWriter::new(Vec::new());
    for b in &batches {
        json.write(b).unwrap();
    }
    json.finish().unwrap();
    let bytes = json.into_inner();
    if bytes.is_empty() { Vec::new() } else { serde_json::from_slice(&bytes).unwrap() }
}

/// Every public column as text, for comparing the two engines' rows.
fn as_text(rows: &[Value], columns: &[&str]) -> Vec<Vec<String>> {
    rows.iter().map(|r| columns.iter().map(|c| text(r, c)).collect()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duckdb_running_model_sql_builds_the_same_dimension_as_model_run() {
    let mut s = Scenario::new();
    let m = person_model(&s, "default");
    let lake = tidemark_lake::LakeLocation::parse(s.dir.path().join("lake").to_str().unwrap()).unwrap();
    let head = "id,first,last,nickname,op,ts\n";
    let rounds: [(&str, Vec<(&str, &str, String)>); 3] = [
        (
            "2024-01-01",
            vec![
                ("person", "p1.csv", format!("{head}1,ANNA,BELLE,An,I,2024-01-01 10:00:00\n2,Bob,Stone,,I,2024-01-01 10:00:00\n3,Cy,Moss,Cyd,I,2024-01-01 10:00:00\n4,Dee,\"Lane, Jr.\",,I,2024-01-01 10:00:00\n6,Fay,\"\",,I,2024-01-01 10:00:00\n")),
                ("contact", "c1.csv", "id,email,op,ts\n1,anna@x.org,I,2024-01-01 10:00:00\n2,bob@x.org,I,2024-01-01 10:00:00\n4,dëe@x.org,I,2024-01-01 10:00:00\n7,orphan@x.org,I,2024-01-01 10:00:00\n".to_owned()),
            ],
        ),
        (
            "2024-02-01",
            vec![
                ("person", "p2.csv", format!("{head}1,ANNABELLE,,An,U,2024-01-15 10:00:00\n2,Bob,Stone,Bobby,U,2024-01-15 10:00:00\n3,Cy,Moss,Cyd,D,2024-01-15 10:00:00\n4,Dee,Old,,U,2023-12-01 00:00:00\n5,Eve,Park,,I,2024-01-15 10:00:00\n6,Fay,,,U,2024-01-15 10:00:00\n7,Gus,Ng,,I,2024-01-15 10:00:00\n")),
                ("contact", "c2.csv", "id,email,op,ts\n4,dee@x.org,D,2024-01-15 10:00:00\n".to_owned()),
            ],
        ),
        ("2024-02-01", vec![("person", "p3.csv", format!("{head}5,Eve,Parker,,U,2024-01-20 10:00:00\n6,Fay,,,D,2024-01-20 10:00:00\n3,Cy,Moss,Cyd,I,2024-01-21 10:00:00\n"))]),
    ];
    let query = "SELECT person_sk, id, first, last, nickname, email, CAST(valid_from AS VARCHAR) AS valid_from, \
        CAST(valid_to AS VARCHAR) AS valid_to, is_current, change_hash FROM dim_person ORDER BY person_sk";
    let columns =
        ["person_sk", "id", "first", "last", "nickname", "email", "valid_from", "valid_to", "is_current", "change_hash"];
    for (date, files) in rounds {
        for (source, file, content) in &files {
            s.land(source, file, content);
        }
        tidemark_models::ModelLoad::new(lake.clone(), "dim_person", m.clone()).with_run_date(day(date)).run().await.unwrap();
        s.load("dim_person", &m, date, Apply::Merge).unwrap();
        let ours = as_text(&tidemark_dimension(&lake, "dim_person", query).await, &columns);
        let duck = as_text(&s.dump(query), &columns);
        assert!(ours.len() >= 5, "the dimension has rows: {ours:?}");
        assert_eq!(ours, duck, "after the load of {date}: model run and DuckDB running model sql differ");
    }
}

/// A DuckDB view like `tidemark catalog ddl --engine duckdb` registers: the history table's
/// current Parquet files, every column renamed to lower case.
async fn history_view(lake: &tidemark_lake::LakeLocation, object: &str) -> String {
    let table = tidemark_lake::HistoryTable::open(lake, object).await.unwrap().expect("synced");
    let files: Vec<String> = table.delta().get_file_uris().unwrap().map(|f| format!("'{f}'")).collect();
    let columns: Vec<String> =
        table.column_names().unwrap().iter().map(|c| format!("\"{c}\" AS \"{}\"", c.to_lowercase())).collect();
    format!(
        "CREATE OR REPLACE VIEW \"{}_history\" AS SELECT {} FROM read_parquet([{}]);\n",
        object.to_lowercase(),
        columns.join(", "),
        files.join(", ")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duckdb_rebuilds_a_source_time_dimension_as_model_run_does() {
    use crate::common::histories::{PERSON_MODEL, histories, write_people};
    let mut s = Scenario::new();
    let m = crate::common::model(PERSON_MODEL);
    let lake = tidemark_lake::LakeLocation::parse(s.dir.path().join("lake").to_str().unwrap()).unwrap();
    let (people, teams) = histories(11, 400, 30);
    write_people(&lake, &people, &teams).await;
    tidemark_models::ModelLoad::new(lake.clone(), "dim_person", m.clone()).run().await.unwrap();

    let mut schemas = std::collections::BTreeMap::new();
    for object in ["Person", "Team"] {
        let table = tidemark_lake::HistoryTable::open(&lake, object).await.unwrap().unwrap();
        schemas.insert(object.to_owned(), table.schema().unwrap());
    }
    let statements =
        tidemark_models::engine_sql::source_time_statements("dim_person", &m, Engine::DuckDb, &SqlOptions::default(), &schemas)
            .unwrap();
    let views = history_view(&lake, "Person").await + &history_view(&lake, "Team").await;
    let query = "SELECT person_sk, \"Id\", \"Name\", \"Note\", \"TeamId\", \"TeamName\", \
        strftime(valid_from, '%Y-%m-%d %H:%M:%S') AS valid_from, strftime(valid_to, '%Y-%m-%d %H:%M:%S') AS valid_to, \
        is_current, change_hash FROM dim_person ORDER BY person_sk";
    let columns =
        ["person_sk", "Id", "Name", "Note", "TeamId", "TeamName", "valid_from", "valid_to", "is_current", "change_hash"];
    // DataFusion formats through nanoseconds, which 9999-12-31 overflows: ours as JSON text.
    let ours_query = query
        .replace("strftime(valid_from, '%Y-%m-%d %H:%M:%S') AS valid_from", "valid_from")
        .replace("strftime(valid_to, '%Y-%m-%d %H:%M:%S') AS valid_to", "valid_to");
    let mut ours = as_text(&tidemark_dimension(&lake, "dim_person", &ours_query).await, &columns);
    for row in &mut ours {
        for at in &mut row[6..8] {
            *at = at.replace('T', " ").trim_end_matches('Z').to_owned();
        }
    }
    assert!(ours.len() > 400, "the dimension has rows: {}", ours.len());
    let first = as_text(&s.run(&(views + &statements), query).expect("DuckDB runs the statements"), &columns);
    assert_eq!(first.len(), ours.len(), "as many rows");
    for (a, b) in first.iter().zip(&ours) {
        assert_eq!(a, b, "DuckDB's row differs from model run's");
    }
    // A second run over unchanged histories keeps every row and surrogate key.
    let again = as_text(&s.run(&statements, query).expect("DuckDB runs them again"), &columns);
    assert_eq!(again, first, "a re-run changes nothing");
}

/// One version of an Account: Id, second, ingestion instant (µs), deleted, Name,
/// AnnualRevenue in cents, Rating.
type AccountVersion = (&'static str, i64, i64, bool, Option<&'static str>, Option<i128>, Option<&'static str>);

async fn append_accounts(lake: &tidemark_lake::LakeLocation, versions: &[AccountVersion]) {
    use tidemark_lake::arrow::array::Decimal128Array;
    use tidemark_lake::arrow::datatypes::{DataType, Field};
    let meta: Vec<(&str, i64, i64, bool)> = versions.iter().map(|v| (v.0, v.1, v.2, v.3)).collect();
    let strings = |f: fn(&AccountVersion) -> Option<&'static str>| -> ArrayRef {
        Arc::new(StringArray::from(versions.iter().map(f).collect::<Vec<_>>()))
    };
    let cents = Decimal128Array::from(versions.iter().map(|v| v.5).collect::<Vec<_>>()).with_precision_and_scale(18, 2).unwrap();
    let columns = vec![
        (Field::new("Name", DataType::Utf8, true), strings(|v| v.4)),
        (Field::new("AnnualRevenue", DataType::Decimal128(18, 2), true), Arc::new(cents) as ArrayRef),
        (Field::new("Rating", DataType::Utf8, true), strings(|v| v.6)),
    ];
    crate::common::histories::append(lake, "Account", &meta, columns).await;
}

/// A load-date model over the lake object Account's live records, a file source left-joined:
/// three loads with updates, deletes, an undelete and new records between them, by `model run`
/// and by DuckDB running `model sql` over the same history and files. The versions make each
/// column of the version order decide a record's state: two versions of one instant (the later
/// ingested wins), an update and a delete of one instant and run (the delete wins), a delete
/// after an update (no older version may surface).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duckdb_reads_a_lake_objects_live_records_as_model_run_does() {
    let mut s = Scenario::new();
    let lake = tidemark_lake::LakeLocation::parse(s.dir.path().join("lake").to_str().unwrap()).unwrap();
    let m = model(serde_json::json!({
        "key": ["Id"],
        "type1": ["Rating"],
        "sources": [
            {"name": "account", "object": "Account", "columns": ["Name", "AnnualRevenue", "Rating"]},
            {"name": "segment", "files": s.landing("segment"), "order_by": "ts", "types": {"ts": "timestamp"},
             "columns": ["segment"]}
        ]
    }));
    let head = "Id,segment,ts\n";
    let rounds: [(&str, Vec<AccountVersion>, String); 3] = [
        (
            "2024-01-01",
            vec![
                ("001A", 100, 1, false, Some("Acme"), Some(100000), Some("Hot")),
                ("001A", 200, 1, false, Some("Acme Corp"), Some(100000), Some("Hot")),
                ("001B", 100, 1, false, Some("Bolt"), Some(25050), Some("Warm")),
                ("001B", 100, 2, false, Some("Bolt Ltd"), Some(25050), Some("Warm")),
                ("001C", 100, 1, false, Some("Crane"), None, None),
                ("001C", 150, 1, true, Some("Crane"), None, None),
                ("001D", 100, 1, false, Some("Delta"), Some(-5), Some("Cold")),
                ("001D", 100, 1, true, Some("Delta"), Some(-5), Some("Cold")),
                ("001E", 100, 1, false, Some("Echo"), Some(9999999), None),
            ],
            format!(
                "{head}001A,Enterprise,2024-01-01 00:00:00\n001B,SMB,2024-01-01 00:00:00\n001E,Mid,2024-01-01 00:00:00\n001F,Orphan,2024-01-01 00:00:00\n"
            ),
        ),
        (
            // 001A changes twice at one instant; 001B only its type-1 Rating; 001C is undeleted,
            // 001E deleted; 001F arrives, its segment row waiting since the first load.
            "2024-02-01",
            vec![
                ("001A", 300, 10, false, Some("Acme Corp"), Some(200000), Some("Hot")),
                ("001A", 300, 11, false, Some("Acme Corp"), Some(210000), Some("Hot")),
                ("001B", 300, 10, false, Some("Bolt Ltd"), Some(25050), Some("Cold")),
                ("001C", 300, 10, false, Some("Crane"), Some(0), None),
                ("001E", 300, 10, true, Some("Echo"), Some(9999999), None),
                ("001F", 300, 10, false, Some("Fox"), None, Some("Warm")),
            ],
            format!("{head}001F,Partner,2024-01-15 00:00:00\n"),
        ),
        // The object unchanged (model run does not read it again), the files changed.
        ("2024-03-01", Vec::new(), format!("{head}001A,Strategic,2024-02-20 00:00:00\n001C,SMB,2024-02-20 00:00:00\n")),
    ];
    let query = "SELECT account_sk, \"Id\", \"Name\", CAST(\"AnnualRevenue\" AS VARCHAR) AS revenue, \"Rating\", segment, \
        CAST(valid_from AS VARCHAR) AS valid_from, CAST(valid_to AS VARCHAR) AS valid_to, is_current, change_hash \
        FROM dim_account ORDER BY account_sk";
    let columns =
        ["account_sk", "Id", "Name", "revenue", "Rating", "segment", "valid_from", "valid_to", "is_current", "change_hash"];
    let mut ours = Vec::new();
    for (i, (date, versions, segments)) in rounds.into_iter().enumerate() {
        if !versions.is_empty() {
            append_accounts(&lake, &versions).await;
        }
        s.land("segment", &format!("s{i}.csv"), &segments);
        tidemark_models::ModelLoad::new(lake.clone(), "dim_account", m.clone()).with_run_date(day(date)).run().await.unwrap();
        let table = tidemark_lake::HistoryTable::open(&lake, "Account").await.unwrap().expect("synced");
        let schemas = BTreeMap::from([("Account".to_owned(), table.schema().unwrap())]);
        let statements = tidemark_models::engine_sql::load_statements_over(
            "dim_account",
            &m,
            Engine::DuckDb,
            day(date),
            &SqlOptions::default(),
            &schemas,
        )
        .unwrap();
        let views = history_view(&lake, "Account").await;
        s.run(&(views + &statements), "").expect("DuckDB runs the statements");
        ours = as_text(&tidemark_dimension(&lake, "dim_account", query).await, &columns);
        let duck = as_text(&s.dump(query), &columns);
        assert_eq!(ours, duck, "after the load of {date}: model run and DuckDB running model sql differ");
    }
    // Both agree on what the version order says (the hashes aside).
    let got: Vec<String> = ours.iter().map(|r| r[..9].join("|")).collect();
    assert_eq!(
        got,
        [
            "1|001A|Acme Corp|1000.00|Hot|Enterprise|2024-01-01|2024-01-31|false",
            "2|001B|Bolt Ltd|250.50|Cold|SMB|2024-01-01|9999-12-31|true",
            "3|001E|Echo|99999.99|NULL|Mid|2024-01-01|2024-01-31|false",
            "4|001A|Acme Corp|2100.00|Hot|Enterprise|2024-02-01|2024-02-29|false",
            "5|001C|Crane|0.00|NULL|NULL|2024-02-01|2024-02-29|false",
            "6|001F|Fox|NULL|Warm|Partner|2024-02-01|9999-12-31|true",
            "7|001A|Acme Corp|2100.00|Hot|Strategic|2024-03-01|9999-12-31|true",
            "8|001C|Crane|0.00|NULL|SMB|2024-03-01|9999-12-31|true",
        ]
    );
}
