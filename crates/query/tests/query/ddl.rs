//! The DuckDB DDL, executed by a real DuckDB (with its delta extension, loaded offline from the
//! `duckdb-extension-delta` wheel) over a lake written with the lake crate: the live, SCD2 and
//! history views must return exactly the rows the semantics in `tidemark_query::ddl` define.
//! Also checks the symlink manifests Redshift Spectrum reads.
//!
//! Needs `python3` and PyPI: the venv is created by `scripts/python-venv.sh` on first use.

use crate::common::python;
use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Value as J, json};
use tidemark_lake::arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use tidemark_lake::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use tidemark_lake::columns::metadata_fields;
use tidemark_lake::writer::app_id;
use tidemark_lake::{HistoryTable, LakeLocation, VersionWriter};
use tidemark_query::ddl::{DdlOptions, DdlTable, Engine, MANIFEST_PATH, ddl, write_symlink_manifests};

/// `_version_at` of the n-th instant of the scenario, in epoch µs (n minutes after 10:00 UTC).
fn t(n: i64) -> i64 {
    base().timestamp_micros() + n * 60_000_000
}

fn base() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2024-03-01T10:00:00Z").unwrap().with_timezone(&Utc)
}

/// 9999-12-31T00:00:00Z, `valid_to` of current versions.
const END_OF_TIME: i64 = 253_402_214_400_000_000;

/// One sync run: its id and when it wrote.
struct Run {
    id: &'static str,
    ingested_at: i64,
}

const RUN_1: Run = Run { id: "run-1", ingested_at: 100 };
const RUN_2: Run = Run { id: "run-2", ingested_at: 200 };

/// One invoice version as the scenario writes it.
#[derive(Default)]
struct Invoice {
    id: &'static str,
    at: i64,
    deleted: bool,
    origin: &'static str,
    name: Option<&'static str>,
    /// Decimal text with two digits after the point.
    amount: Option<&'static str>,
    due: Option<&'static str>,
    paid_at: Option<i64>,
    paid: Option<bool>,
}

fn invoice_schema() -> Schema {
    let mut fields = metadata_fields();
    fields.extend([
        Field::new("Id", DataType::Utf8, false),
        Field::new("Name", DataType::Utf8, true),
        Field::new("Amount__c", DataType::Decimal128(18, 2), true),
        Field::new("Due_Date__c", DataType::Date32, true),
        Field::new("Paid_At__c", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
        Field::new("Is_Paid__c", DataType::Boolean, true),
    ]);
    Schema::new(fields)
}

fn timestamps(values: impl IntoIterator<Item = Option<i64>>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from(values.into_iter().collect::<Vec<_>>()).with_timezone("UTC"))
}

fn metadata_columns(run: &Run, at: &[i64], deleted: &[bool], origin: &[&str]) -> Vec<ArrayRef> {
    let n = at.len();
    vec![
        timestamps(at.iter().map(|m| Some(t(*m)))),
        Arc::new(BooleanArray::from(deleted.to_vec())),
        Arc::new(StringArray::from(origin.to_vec())),
        Arc::new(StringArray::from(vec![run.id; n])),
        timestamps(vec![Some(t(run.ingested_at)); n]),
    ]
}

fn invoice_batch(schema: &Arc<Schema>, run: &Run, versions: &[Invoice]) -> RecordBatch {
    let at: Vec<i64> = versions.iter().map(|v| v.at).collect();
    let deleted: Vec<bool> = versions.iter().map(|v| v.deleted).collect();
    let origin: Vec<&str> = versions.iter().map(|v| v.origin).collect();
    let mut columns = metadata_columns(run, &at, &deleted, &origin);
    let cents = |a: &str| a.replace('.', "").parse::<i128>().unwrap();
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
    let days = |d: &str| i32::try_from((NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap() - epoch).num_days()).unwrap();
    columns.extend([
        Arc::new(StringArray::from(versions.iter().map(|v| v.id).collect::<Vec<_>>())) as ArrayRef,
        Arc::new(StringArray::from(versions.iter().map(|v| v.name).collect::<Vec<_>>())),
        Arc::new(
            Decimal128Array::from(versions.iter().map(|v| v.amount.map(cents)).collect::<Vec<_>>())
                .with_precision_and_scale(18, 2)
                .unwrap(),
        ),
        Arc::new(Date32Array::from(versions.iter().map(|v| v.due.map(days)).collect::<Vec<_>>())),
        timestamps(versions.iter().map(|v| v.paid_at.map(t))),
        Arc::new(BooleanArray::from(versions.iter().map(|v| v.paid).collect::<Vec<_>>())),
    ]);
    RecordBatch::try_new(schema.clone(), columns).unwrap()
}

fn case_batch(schema: &Arc<Schema>, run: &Run, at: i64, subject: &str) -> RecordBatch {
    let mut columns = metadata_columns(run, &[at], &[false], &["query"]);
    columns.extend([Arc::new(StringArray::from(vec!["c1"])) as ArrayRef, Arc::new(StringArray::from(vec![subject]))]);
    RecordBatch::try_new(schema.clone(), columns).unwrap()
}

fn live(id: &'static str, name: &'static str, amount: &'static str, at: i64) -> Invoice {
    Invoice { id, at, origin: "query", name: Some(name), amount: Some(amount), paid: Some(false), ..Invoice::default() }
}

fn delete(id: &'static str, at: i64, origin: &'static str) -> Invoice {
    Invoice { id, at, deleted: true, origin, ..Invoice::default() }
}

/// Run 1: creates and updates, a soft delete (a3). Rows are out of order on purpose.
fn run_1() -> Vec<Invoice> {
    vec![
        live("a5", "Invoice 5", "50.00", 1),
        Invoice { deleted: true, ..live("a3", "Invoice 3", "30.00", 2) },
        live("a1", "Invoice 1", "100.00", 1),
        live("a4", "Invoice 4", "40.00", 2),
        live("a3", "Invoice 3", "30.00", 1),
        Invoice { due: Some("2024-04-30"), ..live("a1", "Invoice 1", "150.50", 2) },
        Invoice { due: Some("2024-05-01"), ..live("a2", "Invoice 2", "20.00", 1) },
    ]
}

/// Run 2: a1 paid; a2 hard-deleted (its last version); a3 undeleted; a4 re-snapshotted at the
/// same `_version_at` (the later `_ingested_at` wins); a5 updated and deleted at the same
/// instant in the same run (the delete sorts last).
fn run_2() -> Vec<Invoice> {
    vec![
        delete("a5", 3, "reconcile"),
        Invoice { due: Some("2024-04-30"), paid_at: Some(4), paid: Some(true), ..live("a1", "Invoice 1", "150.50", 5) },
        delete("a2", 3, "reconcile"),
        live("a3", "Invoice 3 (restored)", "30.00", 4),
        Invoice { origin: "snapshot", ..live("a4", "Invoice 4", "44.00", 2) },
        live("a5", "Invoice 5", "55.00", 3),
    ]
}

async fn write(lake: &LakeLocation, object: &str, schema: &Schema, batches: Vec<Vec<RecordBatch>>) -> HistoryTable {
    let mut table = HistoryTable::create(lake, object, schema).await.unwrap();
    let mut writer = VersionWriter::new(&table, app_id("ddl-test", object), Vec::new()).await.unwrap();
    for run in batches {
        for batch in run {
            writer.write(batch).await.unwrap();
        }
        writer.commit(&mut table).await.unwrap().expect("a commit");
    }
    table
}

const CHECK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/python/duckdb_ddl_check.py");

pub(crate) async fn check(python: &std::path::Path, args: &[&std::ffi::OsStr]) -> String {
    let run = tokio::process::Command::new(python).arg(CHECK).args(args).output().await.expect("python runs");
    assert!(
        run.status.success(),
        "{CHECK} failed:\n{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    String::from_utf8(run.stdout).unwrap()
}

/// What DuckDB returned for one view.
#[derive(serde::Deserialize)]
struct View {
    columns: Vec<(String, String)>,
    rows: Vec<Vec<J>>,
}

/// Rows in a canonical order, so the comparison ignores the order DuckDB returned them in.
fn sorted(rows: &[Vec<J>]) -> Vec<String> {
    let mut out: Vec<String> = rows.iter().map(|r| J::from(r.clone()).to_string()).collect();
    out.sort();
    out
}

fn assert_view(views: &serde_json::Map<String, J>, name: &str, columns: &[(&str, &str)], expected: &[J]) {
    let view: View =
        serde_json::from_value(views.get(name).unwrap_or_else(|| panic!("no view {name}: {:?}", views.keys())).clone()).unwrap();
    let got: Vec<(&str, &str)> = view.columns.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
    assert_eq!(got, columns, "{name}: columns");
    let expected: Vec<Vec<J>> = expected.iter().map(|r| r.as_array().unwrap().clone()).collect();
    assert_eq!(sorted(&view.rows), sorted(&expected), "{name}: rows");
}

const TSTZ: &str = "TIMESTAMP WITH TIME ZONE";

fn invoice_fields() -> Vec<(&'static str, &'static str)> {
    vec![
        ("id", "VARCHAR"),
        ("name", "VARCHAR"),
        ("amount__c", "DECIMAL(18,2)"),
        ("due_date__c", "DATE"),
        ("paid_at__c", TSTZ),
        ("is_paid__c", "BOOLEAN"),
    ]
}

/// The scenario's lake: Invoice__c (run 1 and run 2 above) and Case (two versions).
pub(crate) async fn scenario_lake(dir: &std::path::Path) -> (LakeLocation, HistoryTable, HistoryTable) {
    let lake = LakeLocation::parse(dir.join("lake").to_str().unwrap()).unwrap();
    let invoice = Arc::new(invoice_schema());
    let invoices = write(
        &lake,
        "Invoice__c",
        &invoice,
        vec![vec![invoice_batch(&invoice, &RUN_1, &run_1())], vec![invoice_batch(&invoice, &RUN_2, &run_2())]],
    )
    .await;
    let mut case_fields = metadata_fields();
    case_fields.extend([Field::new("Id", DataType::Utf8, false), Field::new("Subject", DataType::Utf8, true)]);
    let case = Arc::new(Schema::new(case_fields));
    let cases = write(
        &lake,
        "Case",
        &case,
        vec![vec![case_batch(&case, &RUN_1, 1, "Broken")], vec![case_batch(&case, &RUN_2, 2, "Fixed")]],
    )
    .await;
    (lake, invoices, cases)
}

/// Tidemark's own live and as-of relations on the scenario's ties (same `_version_at`, later
/// `_ingested_at` wins; an update and a delete in one instant and run, the delete last), its
/// undelete and its hard delete: the rows the DuckDB views must return too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_and_as_of_follow_the_version_order() {
    let dir = tempfile::tempdir().unwrap();
    let (lake, _, _) = scenario_lake(dir.path()).await;
    let session = tidemark_query::QuerySession::open(lake, tidemark_query::ReadOptions::default()).await.unwrap();
    let rows = |from: String| {
        let session = &session;
        async move {
            let sql = format!(
                "SELECT concat_ws('|', id, name, CAST(amount__c AS VARCHAR), CAST(CAST(_version_at AS BIGINT) AS VARCHAR)) AS r FROM {from} ORDER BY r"
            );
            let batches = session.sql(&sql).await.unwrap().collect().await.unwrap();
            let text = |b: &RecordBatch| tidemark_lake::arrow::compute::cast(b.column(0), &DataType::Utf8).unwrap();
            let strings = |a: ArrayRef| {
                a.as_any().downcast_ref::<StringArray>().unwrap().iter().map(|v| v.unwrap().to_owned()).collect::<Vec<_>>()
            };
            batches.iter().flat_map(|b| strings(text(b))).collect::<Vec<_>>()
        }
    };
    let at = |n: i64| format!("as_of('invoice__c', TIMESTAMP '{}')", DateTime::from_timestamp_micros(t(n)).unwrap().to_rfc3339());
    let row = |id: &str, name: &str, amount: &str, n: i64| format!("{id}|{name}|{amount}|{}", t(n));
    assert_eq!(
        rows("invoice__c".into()).await,
        [row("a1", "Invoice 1", "150.50", 5), row("a3", "Invoice 3 (restored)", "30.00", 4), row("a4", "Invoice 4", "44.00", 2)]
    );
    assert_eq!(
        rows(at(2)).await,
        [
            row("a1", "Invoice 1", "150.50", 2),
            row("a2", "Invoice 2", "20.00", 1),
            row("a4", "Invoice 4", "44.00", 2),
            row("a5", "Invoice 5", "50.00", 1)
        ]
    );
    assert_eq!(rows(at(3)).await, [row("a1", "Invoice 1", "150.50", 2), row("a4", "Invoice 4", "44.00", 2)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duckdb_executes_the_duckdb_ddl() {
    let python = python();
    let dir = tempfile::tempdir().unwrap();
    let (lake, invoices, cases) = scenario_lake(dir.path()).await;

    let tables: Vec<DdlTable> = [&invoices, &cases]
        .into_iter()
        .map(|t| DdlTable {
            object: t.object().to_owned(),
            location: lake.object_table_url(t.object()),
            schema: t.schema().unwrap(),
        })
        .collect();
    let extension = check(&python, &["extension".as_ref()]).await.trim().to_owned();
    // `case` is a reserved word: the schema and quoting must make it work.
    let options = DdlOptions { schema: Some("crm".into()), duckdb_extension: Some(extension), ..DdlOptions::default() };
    let sql = ddl(Engine::DuckDb, &tables, &[], &options).unwrap();
    let sql_path = dir.path().join("ddl.sql");
    std::fs::write(&sql_path, &sql).unwrap();
    let out_path = dir.path().join("views.json");
    check(&python, &["run".as_ref(), sql_path.as_os_str(), out_path.as_os_str()]).await;
    let out: J = serde_json::from_slice(&std::fs::read(&out_path).unwrap()).unwrap();
    let views = out["views"].as_object().unwrap();
    assert_eq!(views.len(), 6, "three views per table: {:?}", views.keys());

    let mut live_columns = invoice_fields();
    live_columns.push(("_version_at", TSTZ));
    assert_view(
        views,
        "crm.invoice__c",
        &live_columns,
        &[
            json!(["a1", "Invoice 1", "150.50", "2024-04-30", t(4), true, t(5)]),
            json!(["a3", "Invoice 3 (restored)", "30.00", null, null, false, t(4)]),
            json!(["a4", "Invoice 4", "44.00", null, null, false, t(2)]),
        ],
    );

    let mut scd2_columns = invoice_fields();
    scd2_columns.extend([("valid_from", TSTZ), ("valid_to", TSTZ), ("is_current", "BOOLEAN")]);
    assert_view(
        views,
        "crm.invoice__c_scd2",
        &scd2_columns,
        &[
            json!(["a1", "Invoice 1", "100.00", null, null, false, t(1), t(2), false]),
            json!(["a1", "Invoice 1", "150.50", "2024-04-30", null, false, t(2), t(5), false]),
            json!(["a1", "Invoice 1", "150.50", "2024-04-30", t(4), true, t(5), END_OF_TIME, true]),
            // Closed by the hard delete, which has no row.
            json!(["a2", "Invoice 2", "20.00", "2024-05-01", null, false, t(1), t(3), false]),
            // Closed by the soft delete; the undelete opens a new window.
            json!(["a3", "Invoice 3", "30.00", null, null, false, t(1), t(2), false]),
            json!(["a3", "Invoice 3 (restored)", "30.00", null, null, false, t(4), END_OF_TIME, true]),
            // Same `_version_at`: a zero-length window, kept.
            json!(["a4", "Invoice 4", "40.00", null, null, false, t(2), t(2), false]),
            json!(["a4", "Invoice 4", "44.00", null, null, false, t(2), END_OF_TIME, true]),
            json!(["a5", "Invoice 5", "50.00", null, null, false, t(1), t(3), false]),
            // The delete at the same instant and in the same run comes after it.
            json!(["a5", "Invoice 5", "55.00", null, null, false, t(3), t(3), false]),
        ],
    );

    let mut history_columns = vec![
        ("_version_at", TSTZ),
        ("_deleted", "BOOLEAN"),
        ("_origin", "VARCHAR"),
        ("_run_id", "VARCHAR"),
        ("_ingested_at", TSTZ),
    ];
    history_columns.extend(invoice_fields());
    let history_row = |run: &Run, v: &Invoice| {
        json!([t(v.at), v.deleted, v.origin, run.id, t(run.ingested_at), v.id, v.name, v.amount, v.due, v.paid_at.map(t), v.paid])
    };
    let history: Vec<J> =
        run_1().iter().map(|v| history_row(&RUN_1, v)).chain(run_2().iter().map(|v| history_row(&RUN_2, v))).collect();
    assert_view(views, "crm.invoice__c_history", &history_columns, &history);

    assert_view(
        views,
        "crm.case",
        &[("id", "VARCHAR"), ("subject", "VARCHAR"), ("_version_at", TSTZ)],
        &[json!(["c1", "Fixed", t(2)])],
    );
    assert_view(
        views,
        "crm.case_scd2",
        &[("id", "VARCHAR"), ("subject", "VARCHAR"), ("valid_from", TSTZ), ("valid_to", TSTZ), ("is_current", "BOOLEAN")],
        &[json!(["c1", "Broken", t(1), t(2), false]), json!(["c1", "Fixed", t(2), END_OF_TIME, true])],
    );
    assert_eq!(views["crm.case_history"]["rows"].as_array().unwrap().len(), 2);
}

/// Every data file of the current snapshot, as a `file://` URI, one per line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlink_manifests_list_the_snapshot_files() {
    let dir = tempfile::tempdir().unwrap();
    let lake = LakeLocation::parse(dir.path().join("lake").to_str().unwrap()).unwrap();
    let invoice = Arc::new(invoice_schema());
    write(
        &lake,
        "Invoice__c",
        &invoice,
        vec![vec![invoice_batch(&invoice, &RUN_1, &run_1())], vec![invoice_batch(&invoice, &RUN_2, &run_2())]],
    )
    .await;
    HistoryTable::create(&lake, "Empty__c", &invoice).await.unwrap();

    let written = write_symlink_manifests(&lake, &["Invoice__c".to_owned(), "Empty__c".to_owned()]).await.unwrap();
    assert_eq!(written.iter().map(|m| (m.object.as_str(), m.files)).collect::<Vec<_>>(), [("Invoice__c", 2), ("Empty__c", 0)]);

    let table_dir = dir.path().join("lake/objects/invoice__c");
    let manifest = std::fs::read_to_string(table_dir.join(MANIFEST_PATH)).unwrap();
    assert_eq!(written[0].location.to_file_path().unwrap(), std::fs::canonicalize(table_dir.join(MANIFEST_PATH)).unwrap());
    let listed: BTreeSet<std::path::PathBuf> =
        manifest.lines().map(|l| url::Url::parse(l).unwrap().to_file_path().unwrap()).collect();
    let on_disk: BTreeSet<std::path::PathBuf> = std::fs::read_dir(std::fs::canonicalize(&table_dir).unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    assert_eq!(listed, on_disk, "append-only: every data file is live\n{manifest}");
    assert!(manifest.ends_with('\n') && manifest.lines().all(|l| l.starts_with("file:///")));
    assert_eq!(std::fs::read_to_string(dir.path().join("lake/objects/empty__c").join(MANIFEST_PATH)).unwrap(), "");

    let err = write_symlink_manifests(&lake, &["Missing__c".to_owned()]).await.unwrap_err();
    assert!(err.to_string().contains("Missing__c"), "{err}");
}
