//! An independent reader checks the lake: DuckDB's delta extension (a different Delta
//! implementation, delta-kernel) reads every history table Tidemark wrote, and every row and
//! value must equal what Tidemark's own DataFusion reading returns. Covers every column type
//! the lake uses, the metadata columns, all three origins, and a column added by schema
//! evolution that older data files lack.
//!
//! Needs `python3` and PyPI: the venv is created by `scripts/python-venv.sh` on first use.

use std::collections::{BTreeMap, BTreeSet};

use crate::common::Harness;
use serde_json::{Value as J, json};
use tidemark_lake::arrow::array::{Array, ArrayRef, AsArray};
use tidemark_lake::arrow::compute::cast;
use tidemark_lake::arrow::datatypes::{DataType, Float64Type, Int32Type, Int64Type, TimeUnit, TimestampMicrosecondType};
use tidemark_lake::read::{HISTORY, quote, utf8};
use tidemark_lake::{HistoryTable, RunStatus};
use tidemark_sfsim::value::Value;

/// What DuckDB's reader printed for one table.
#[derive(serde::Deserialize)]
struct DuckTable {
    columns: Vec<(String, String)>,
    rows: Vec<Vec<J>>,
    versions: u64,
    live: u64,
}

/// The same total order the Python script uses.
const ORDER: [&str; 6] = ["Id", "_version_at", "_origin", "_deleted", "_ingested_at", "_run_id"];

/// The DuckDB type an Arrow column of the lake must read as.
fn duckdb_type(t: &DataType) -> String {
    match t {
        DataType::Utf8 | DataType::Utf8View => "VARCHAR".into(),
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int32 => "INTEGER".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Decimal128(p, s) => format!("DECIMAL({p},{s})"),
        DataType::Date32 => "DATE".into(),
        DataType::Timestamp(TimeUnit::Microsecond, Some(_)) => "TIMESTAMP WITH TIME ZONE".into(),
        other => panic!("the lake has a column type the check does not cover: {other}"),
    }
}

/// A column's values rendered as the Python script renders DuckDB's: timestamps as epoch µs,
/// decimals as text with their scale, dates as YYYY-MM-DD, nulls as null.
fn canonical(col: &ArrayRef) -> Vec<J> {
    let text = |c: &ArrayRef| cast(c, &DataType::Utf8).expect("renders as text");
    let values: Vec<J> = match col.data_type() {
        DataType::Utf8 | DataType::Utf8View => {
            let s = utf8(col).unwrap();
            (0..col.len()).map(|i| json!(s.value(i))).collect()
        }
        DataType::Decimal128(..) | DataType::Date32 => {
            let t = text(col);
            let s = t.as_string::<i32>();
            (0..col.len()).map(|i| json!(s.value(i))).collect()
        }
        DataType::Boolean => (0..col.len()).map(|i| json!(col.as_boolean().value(i))).collect(),
        DataType::Int32 => (0..col.len()).map(|i| json!(col.as_primitive::<Int32Type>().value(i))).collect(),
        DataType::Int64 => (0..col.len()).map(|i| json!(col.as_primitive::<Int64Type>().value(i))).collect(),
        DataType::Float64 => (0..col.len()).map(|i| json!(col.as_primitive::<Float64Type>().value(i))).collect(),
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            (0..col.len()).map(|i| json!(col.as_primitive::<TimestampMicrosecondType>().value(i))).collect()
        }
        other => panic!("no canonical rendering for {other}"),
    };
    values.into_iter().enumerate().map(|(i, v)| if col.is_null(i) { J::Null } else { v }).collect()
}

/// Every row of `table` through DataFusion, in [`ORDER`], values rendered canonically.
async fn tidemark_rows(table: &HistoryTable) -> Vec<Vec<J>> {
    let ctx = table.session().await.unwrap();
    let order = ORDER.map(quote).join(", ");
    let batches = table.collect(&ctx, &format!("SELECT * FROM {HISTORY} ORDER BY {order}")).await.unwrap();
    let mut rows = Vec::new();
    for b in &batches {
        let cols: Vec<Vec<J>> = b.columns().iter().map(canonical).collect();
        rows.extend((0..b.num_rows()).map(|r| cols.iter().map(|c| c[r].clone()).collect::<Vec<J>>()));
    }
    rows
}

/// Gives `Score__c` (added by a schema change) values on a few live accounts: positive,
/// negative, zero and one with fourteen integer digits, so the decimal rendering is exercised
/// at its edges.
fn set_scores(h: &Harness) -> usize {
    let scores = [1234.5, -0.05, 0.0, 12_345_678_901_234.56];
    let mut org = h.sim.state.org.write();
    let (slot, ids) = {
        let t = org.table("Account").unwrap();
        let ids: Vec<_> = t.rows().iter().filter(|r| !t.is_deleted(r)).map(|r| t.id_of(r)).take(scores.len()).collect();
        (t.def.slot("Score__c"), ids)
    };
    for (id, score) in ids.iter().zip(scores) {
        org.update_record(id, vec![(slot, Value::Double(score))]).expect("account updates");
    }
    ids.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duckdb_reads_exactly_what_tidemark_reads() {
    let python = crate::common::python();
    let mut h = Harness::start(60, 11).await;
    assert_eq!(h.sync().await.status(), RunStatus::Complete);

    // Updates, creates, soft and hard deletes, parent renames (formula snapshots), and a new
    // decimal field: rows written before it read as null from files without the column.
    h.advance(chrono::Duration::minutes(10));
    h.change(json!({"updates": {"share": 0.2}, "creates": 4, "deletes": 3, "hard_deletes": 2, "parent_renames": 3}), 1);
    h.schema_change("Account", json!({"op": "add_field", "field": "Score__c", "type": "currency", "precision": 18, "scale": 2}));
    let scored = set_scores(&h);
    let r = h.sync().await;
    assert_eq!(r.status(), RunStatus::Complete, "{r:#?}");
    h.check().await;

    let lake_dir = h.lake.root().to_file_path().expect("a local lake");
    let out_path = h.dir.path().join("duckdb.json");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/python/delta_reader_check.py");
    let run =
        tokio::process::Command::new(&python).arg(script).arg(&lake_dir).arg(&out_path).output().await.expect("python runs");
    assert!(
        run.status.success(),
        "DuckDB reader failed:\n{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    let out: J = serde_json::from_slice(&std::fs::read(&out_path).expect("output")).expect("output JSON");
    let duck: BTreeMap<String, DuckTable> = serde_json::from_value(out["tables"].clone()).expect("tables");

    // DuckDB saw exactly the tables in the lake, every checked object among them.
    let on_disk: BTreeSet<String> =
        std::fs::read_dir(lake_dir.join("objects")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(duck.keys().cloned().collect::<BTreeSet<_>>(), on_disk);
    for object in crate::common::CHECKED {
        assert!(on_disk.contains(&object.to_ascii_lowercase()), "{object} has a table");
    }

    let mut types_seen = BTreeSet::new();
    let mut origins_seen = BTreeSet::new();
    for (name, d) in &duck {
        let table = HistoryTable::open(&h.lake, name).await.unwrap().expect("table exists");
        let schema = table.schema().unwrap();
        let expected_columns: Vec<(String, String)> =
            schema.fields().iter().map(|f| (f.name().clone(), duckdb_type(f.data_type()))).collect();
        assert_eq!(d.columns, expected_columns, "{name}: columns and types as DuckDB reads them");
        types_seen.extend(expected_columns.iter().map(|(_, t)| t.split('(').next().unwrap().to_owned()));

        let rows = tidemark_rows(&table).await;
        assert_eq!(d.rows.len(), rows.len(), "{name}: row count");
        let id = schema.index_of("Id").unwrap();
        for (i, (a, b)) in d.rows.iter().zip(&rows).enumerate() {
            if a != b {
                let col = a.iter().zip(b).position(|(x, y)| x != y).unwrap();
                panic!(
                    "{name}: row {i} (Id {}) differs in {}: DuckDB {} vs Tidemark {}",
                    b[id],
                    schema.field(col).name(),
                    a[col],
                    b[col]
                );
            }
        }
        let (versions, live) = table.counts().await.unwrap();
        assert_eq!((d.versions, d.live), (versions, live), "{name}: versions and live records");
        assert_eq!(versions as usize, rows.len());
        let origin = schema.index_of("_origin").unwrap();
        origins_seen.extend(rows.iter().map(|r| r[origin].as_str().unwrap().to_owned()));
    }
    let want_types = ["VARCHAR", "DECIMAL", "TIMESTAMP WITH TIME ZONE", "DATE", "BOOLEAN", "INTEGER"];
    for t in want_types {
        assert!(types_seen.contains(t), "no {t} column in the lake: {types_seen:?}");
    }
    assert_eq!(origins_seen, ["query", "reconcile", "snapshot"].map(String::from).into(), "all three origins are covered");

    // The evolved column: null in every row written before it existed, set where the org set it.
    let account = &duck["account"];
    let col = |n: &str| account.columns.iter().position(|(c, _)| c == n).unwrap();
    let (score, run_id) = (col("Score__c"), col("_run_id"));
    let first_run = &account.rows.iter().min_by_key(|r| r[col("_ingested_at")].as_i64()).unwrap()[run_id];
    assert!(
        account.rows.iter().filter(|r| &r[run_id] == first_run).all(|r| r[score].is_null()),
        "old files read the new column as null"
    );
    let scores: BTreeSet<&str> = account.rows.iter().filter_map(|r| r[score].as_str()).collect();
    assert_eq!(scores.len(), scored);
    assert_eq!(scores, ["1234.50", "-0.05", "0.00", "12345678901234.56"].into());
}
