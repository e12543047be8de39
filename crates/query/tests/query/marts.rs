//! Marts (dimension models' tables, written here by real model loads) next to history tables:
//! `<mart>` and `<mart>_current` in queries, listings, catalogs and error hints, refreshed,
//! pinned to a lake time, losing a name clash to an object; through psql; and in DuckDB, from
//! the DDL `catalog ddl` writes.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::NaiveDate;
use serde_json::Value as J;
use tidemark_core::models::ModelConfig;
use tidemark_lake::LakeLocation;
use tidemark_lake::arrow::array::RecordBatch;
use tidemark_lake::arrow::util::display::{ArrayFormatter, FormatOptions};
use tidemark_models::ModelLoad;
use tidemark_query::catalog::LakeSchema;
use tidemark_query::ddl::{DdlOptions, DdlTable, Engine, ddl, ddl_marts, write_mart_manifests};
use tidemark_query::session::TableListing;
use tidemark_query::views::Relation;
use tidemark_query::{QuerySession, ReadOptions, TableVersion};

use crate::ddl::{check, scenario_lake};
use crate::pg::{USER, ok, psql, start_server};

/// A load-date model whose current flag is not named `is_current`: the catalog must read it
/// from the table's partition column.
const MODEL: &str = "key: [customer_id]
columns: { current: active_row }
sources:
  - name: customers
    files: landing
    types: { customer_id: bigint, ts: timestamp }
    order_by: ts
    columns: [name, city]
";

const HEADER: &str = "customer_id,name,city,ts\n";

/// The columns of `dim_customer`, in the table's order.
const COLUMNS: [&str; 10] = [
    "customer_sk",
    "customer_id",
    "name",
    "city",
    "valid_from",
    "valid_to",
    "active_row",
    "change_hash",
    "_load_id",
    "_customers_at",
];

fn model() -> ModelConfig {
    #[derive(serde::Deserialize)]
    struct Doc {
        models: BTreeMap<String, ModelConfig>,
    }
    let text = format!("models:\n  m:\n{}", MODEL.lines().map(|l| format!("    {l}\n")).collect::<String>());
    let doc: Doc = tidemark_core::config::load_str(&text, &|_| None).unwrap();
    doc.models.into_values().next().unwrap()
}

/// The DDL scenario's lake (history tables `invoice__c` and `case`) with the mart
/// `dim_customer`: loaded on 2024-01-01 (customers 1 and 2), then on 2024-02-01 (1 moves from
/// Oslo to Paris, 3 arrives).
struct MartLake {
    dir: tempfile::TempDir,
    lake: LakeLocation,
    /// The mart's table version after its first load.
    first_load: u64,
}

impl MartLake {
    async fn new() -> MartLake {
        let dir = tempfile::tempdir().unwrap();
        let (lake, _, _) = scenario_lake(dir.path()).await;
        std::fs::create_dir_all(dir.path().join("landing")).unwrap();
        let mut m = MartLake { dir, lake, first_load: 0 };
        m.land("1.csv", "1,Ann,Oslo,2024-01-01 00:00:00\n2,Bob,Rome,2024-01-01 00:00:00\n");
        m.load("dim_customer", "2024-01-01").await;
        m.first_load = m.mart_version("dim_customer").await;
        m.land("2.csv", "1,Ann,Paris,2024-01-20 00:00:00\n3,Cid,Lima,2024-01-20 00:00:00\n");
        m.load("dim_customer", "2024-02-01").await;
        m
    }

    fn land(&self, file: &str, rows: &str) {
        std::fs::write(self.dir.path().join("landing").join(file), format!("{HEADER}{rows}")).unwrap();
    }

    async fn load(&self, name: &str, date: &str) {
        ModelLoad::new(self.lake.clone(), name, model())
            .with_base_dir(PathBuf::from(self.dir.path()))
            .with_run_date(NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap())
            .run()
            .await
            .unwrap_or_else(|e| panic!("loading {name} on {date}: {e}"));
    }

    async fn mart_version(&self, name: &str) -> u64 {
        let table = tidemark_lake::history::open_table(&self.lake, self.lake.mart_table_url(name)).await.unwrap().unwrap();
        table.version().unwrap() as u64
    }

    async fn session(&self, options: ReadOptions) -> QuerySession {
        QuerySession::open(self.lake.clone(), options).await.unwrap()
    }
}

/// Each row as its values joined by `|` (NULL for nulls), in the result's order.
async fn rows(session: &QuerySession, sql: &str) -> Vec<String> {
    let batches = session.sql(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}")).collect().await.unwrap();
    text_rows(&batches)
}

fn text_rows(batches: &[RecordBatch]) -> Vec<String> {
    let options = FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for b in batches {
        let formatters: Vec<_> = b.columns().iter().map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap()).collect();
        for i in 0..b.num_rows() {
            out.push(formatters.iter().map(|f| f.value(i).to_string()).collect::<Vec<_>>().join("|"));
        }
    }
    out
}

async fn error(session: &QuerySession, sql: &str) -> String {
    match session.sql(sql).await {
        Ok(frame) => frame.collect().await.map(|_| String::new()).unwrap_or_else(|e| e.to_string()),
        Err(e) => e.to_string(),
    }
}

const CURRENT_ROWS: [&str; 3] =
    ["1|Paris|2024-02-01|9999-12-31|true", "2|Rome|2024-01-01|9999-12-31|true", "3|Lima|2024-02-01|9999-12-31|true"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mart_is_its_table_and_its_current_view() {
    let m = MartLake::new().await;
    let session = m.session(ReadOptions::default()).await;

    // `<mart>`: every row and column as stored, in the table's order (the Delta provider puts
    // the partition column last; the relation does not).
    let schema = session.describe("dim_customer").await.unwrap();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, COLUMNS);
    assert_eq!(schema.field_with_name("active_row").unwrap().data_type(), &tidemark_lake::arrow::datatypes::DataType::Boolean);
    let sql = "SELECT customer_id, city, valid_from, valid_to, active_row FROM dim_customer ORDER BY customer_id, valid_from";
    assert_eq!(
        rows(&session, sql).await,
        [
            "1|Oslo|2024-01-01|2024-01-31|false",
            "1|Paris|2024-02-01|9999-12-31|true",
            "2|Rome|2024-01-01|9999-12-31|true",
            "3|Lima|2024-02-01|9999-12-31|true"
        ]
    );
    // `<mart>_current`: the rows whose flag is true, every column.
    assert_eq!(session.describe("dim_customer_current").await.unwrap().fields().len(), COLUMNS.len());
    let sql = "SELECT customer_id, city, valid_from, valid_to, active_row FROM dim_customer_current ORDER BY customer_id";
    assert_eq!(rows(&session, sql).await, CURRENT_ROWS);
    // The flag is a partition filter: only the current partition's files are read.
    let plan = rows(&session, "EXPLAIN SELECT city FROM dim_customer_current").await.join("\n");
    assert!(plan.contains("/active_row=true/") && !plan.contains("/active_row=false/"), "{plan}");
    // Objects and marts in one query, names in any case.
    assert_eq!(rows(&session, "SELECT count(*) FROM invoice__c, \"DIM_CUSTOMER_CURRENT\"").await, ["9"]);

    // Listed like every other relation: the shell's \d, information_schema, and the names a
    // session's own view may not take.
    let listing = session.tables();
    let mart = |name: &str, relation| TableListing { name: name.into(), table: "dim_customer".into(), relation };
    assert!(listing.contains(&mart("dim_customer", Relation::Mart)), "{listing:?}");
    assert!(listing.contains(&mart("dim_customer_current", Relation::MartCurrent)), "{listing:?}");
    assert_eq!(listing.len(), 2 * 3 + 2, "{listing:?}");
    let sql = "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = 'public' AND table_name LIKE 'dim%' ORDER BY 1";
    assert_eq!(rows(&session, sql).await, ["dim_customer|BASE TABLE", "dim_customer_current|VIEW"]);
    let sql =
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'dim_customer_current' ORDER BY ordinal_position";
    assert_eq!(rows(&session, sql).await, COLUMNS);
    let e = error(&session, "CREATE VIEW dim_customer_current AS SELECT 1").await;
    assert!(e.contains("'dim_customer_current'"), "{e}");
    let ctx = session.context();
    let e = ctx.register_table("Dim_Customer", ctx.table_provider("invoice__c").await.unwrap()).unwrap_err().to_string();
    assert!(e.contains("'dim_customer' is a mart"), "{e}");

    // Typos name the mart's relations; as_of is the objects' (record time).
    let e = error(&session, "SELECT * FROM dim_custmer").await;
    assert!(e.contains("did you mean 'dim_customer'"), "{e}");
    let e = error(&session, "SELECT * FROM dim_customer_curent").await;
    assert!(e.contains("'dim_customer_current'"), "{e}");
    let e = error(&session, "SELECT * FROM as_of('dim_customer', TIMESTAMP '2024-01-15T00:00:00Z')").await;
    assert!(e.contains("'dim_customer' is a mart"), "{e}");

    // --as-of is record time: it changes what objects mean, never a mart.
    let as_of = "2000-01-01T00:00:00Z".parse().unwrap();
    let then = m.session(ReadOptions { as_of: Some(as_of), ..ReadOptions::default() }).await;
    assert_eq!(rows(&then, "SELECT count(*) FROM dim_customer").await, ["4"]);
    assert_eq!(rows(&then, "SELECT count(*) FROM dim_customer_current").await, ["3"]);

    // The view's definition (what psql's \d+ shows) is SQL with the same rows.
    let sql = "SELECT definition FROM information_schema.views WHERE table_name = 'dim_customer_current'";
    let definition = rows(&session, sql).await.remove(0);
    assert!(definition.ends_with("FROM \"dim_customer\"\nWHERE \"active_row\""), "{definition}");
    let sql = format!("SELECT customer_id, city, valid_from, valid_to, active_row FROM ({definition}) AS d ORDER BY customer_id");
    assert_eq!(rows(&session, &sql).await, CURRENT_ROWS);
}

/// `--table-version N` reads the mart at its own commit N, as history tables are read;
/// `--table-timestamp` before its first commit fails, naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_lake_time_reads_an_older_mart() {
    let m = MartLake::new().await;
    let pinned =
        m.session(ReadOptions { table_version: Some(TableVersion::Version(m.first_load)), ..ReadOptions::default() }).await;
    let sql = "SELECT customer_id, city, active_row FROM dim_customer ORDER BY customer_id";
    assert_eq!(rows(&pinned, sql).await, ["1|Oslo|true", "2|Rome|true"]);
    let sql = "SELECT customer_id, city FROM dim_customer_current ORDER BY customer_id";
    assert_eq!(rows(&pinned, sql).await, ["1|Oslo", "2|Rome"]);

    let last = m.mart_version("dim_customer").await;
    let beyond = m.session(ReadOptions { table_version: Some(TableVersion::Version(last + 5)), ..ReadOptions::default() }).await;
    let e = error(&beyond, "SELECT * FROM dim_customer_current").await;
    assert!(e.contains(&format!("table 'dim_customer' has no version {}: its last version is {last}", last + 5)), "{e}");

    let early = "2000-01-01T00:00:00Z".parse().unwrap();
    let before = m.session(ReadOptions { table_version: Some(TableVersion::Timestamp(early)), ..ReadOptions::default() }).await;
    let e = error(&before, "SELECT * FROM dim_customer").await;
    assert!(e.contains("'dim_customer'") && e.contains("its first commit is at"), "{e}");
}

/// An open session (a `serve-sql` endpoint) sees a mart's later loads, and a mart first
/// loaded after it opened, as it sees new syncs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_session_sees_new_loads_and_new_marts() {
    let m = MartLake::new().await;
    let session = m.session(ReadOptions::default()).await;
    assert_eq!(rows(&session, "SELECT count(*) FROM dim_customer").await, ["4"]);
    m.land("3.csv", "2,Bob,Turin,2024-02-20 00:00:00\n");
    m.load("dim_customer", "2024-03-01").await;
    m.load("dim_client", "2024-03-01").await;
    tokio::time::sleep(LakeSchema::REFRESH_AFTER + std::time::Duration::from_millis(100)).await;
    assert_eq!(rows(&session, "SELECT count(*) FROM dim_customer").await, ["5"]);
    let sql = "SELECT city FROM dim_customer_current WHERE customer_id = 2";
    assert_eq!(rows(&session, sql).await, ["Turin"]);
    assert_eq!(rows(&session, "SELECT count(*) FROM dim_client_current").await, ["3"]);
    assert!(session.tables().iter().any(|t| t.name == "dim_client"));
}

/// A mart named like an object: every name an object relation takes stays the object's; the
/// mart keeps the others (`case_current`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_tables_win_a_name_clash() {
    let m = MartLake::new().await;
    m.load("case", "2024-02-01").await;
    let session = m.session(ReadOptions::default()).await;
    let columns = session.describe("case").await.unwrap();
    assert_eq!(columns.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>(), ["id", "subject", "_version_at"]);
    assert_eq!(rows(&session, "SELECT subject FROM \"case\"").await, ["Fixed"]);
    assert_eq!(rows(&session, "SELECT count(*) FROM case_current WHERE active_row").await, ["3"]);
    let listing = session.tables();
    let named: Vec<(&str, Relation)> =
        listing.iter().filter(|t| t.name.starts_with("case")).map(|t| (t.name.as_str(), t.relation)).collect();
    assert_eq!(
        named,
        [
            ("case", Relation::Live),
            ("case_current", Relation::MartCurrent),
            ("case_history", Relation::History),
            ("case_scd2", Relation::Scd2)
        ]
    );
    let sql = "SELECT table_name, table_type FROM information_schema.tables WHERE table_name LIKE 'case%' ORDER BY 1";
    assert_eq!(rows(&session, sql).await, ["case|VIEW", "case_current|VIEW", "case_history|BASE TABLE", "case_scd2|VIEW"]);
}

/// psql's `\dt` and `\dv` list the mart and its view; `\d+` shows the view's definition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_lists_the_mart_and_its_view() {
    let m = MartLake::new().await;
    let session = m.session(ReadOptions::default()).await;
    let server = start_server(session.context(), None).await;
    let run = async |args: &[&str]| ok(&psql(server.addr, USER, None, args).await);
    let tables = run(&["-A", "-t", "-c", "\\dt"]).await;
    assert!(tables.lines().any(|l| l.starts_with("public|dim_customer|table|")), "{tables}");
    let views = run(&["-A", "-t", "-c", "\\dv"]).await;
    assert!(views.lines().any(|l| l.starts_with("public|dim_customer_current|view|")), "{views}");
    let view = run(&["-A", "-c", "\\d+ dim_customer_current"]).await;
    assert!(view.starts_with("View \"public.dim_customer_current\"\n") && view.contains("WHERE \"active_row\""), "{view}");
    assert_eq!(run(&["-A", "-t", "-c", "SELECT count(*) FROM dim_customer_current"]).await, "3\n");
    server.stop().await;
}

/// The DuckDB DDL registers the mart and its `_current` view; DuckDB returns the current rows.
/// Also the mart's Redshift Spectrum manifests: one per flag value, listing that partition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duckdb_reads_the_mart_through_its_ddl() {
    let m = MartLake::new().await;
    let python = crate::common::python();
    let mut tables = Vec::new();
    for object in m.lake.history_tables().await.unwrap() {
        let history = tidemark_lake::HistoryTable::open(&m.lake, &object).await.unwrap().unwrap();
        tables.push(DdlTable {
            object: object.clone(),
            location: m.lake.object_table_url(&object),
            schema: history.schema().unwrap(),
        });
    }
    let marts = ddl_marts(&m.lake).await.unwrap();
    assert_eq!(marts.iter().map(|m| (m.name.as_str(), m.current.as_str())).collect::<Vec<_>>(), [("dim_customer", "active_row")]);
    let extension = check(&python, &["extension".as_ref()]).await.trim().to_owned();
    let options = DdlOptions { schema: Some("crm".into()), duckdb_extension: Some(extension), ..DdlOptions::default() };
    let sql = ddl(Engine::DuckDb, &tables, &marts, &options).unwrap();
    assert!(sql.contains("-- Marts: dim_customer\n"), "{sql}");
    let sql_path = m.dir.path().join("ddl.sql");
    std::fs::write(&sql_path, &sql).unwrap();
    let out_path = m.dir.path().join("views.json");
    check(&python, &["run".as_ref(), sql_path.as_os_str(), out_path.as_os_str()]).await;
    let out: J = serde_json::from_slice(&std::fs::read(&out_path).unwrap()).unwrap();
    let views = out["views"].as_object().unwrap();
    assert_eq!(views.len(), 2 * 3 + 2, "{:?}", views.keys());

    let view = |name: &str| {
        let v = &views[name];
        let columns: Vec<String> = v["columns"].as_array().unwrap().iter().map(|c| c[0].as_str().unwrap().to_owned()).collect();
        let rows: Vec<Vec<J>> = v["rows"].as_array().unwrap().iter().map(|r| r.as_array().unwrap().clone()).collect();
        (columns, rows)
    };
    let (columns, rows) = view("crm.dim_customer_current");
    assert_eq!(columns, COLUMNS);
    let at = |name: &str| columns.iter().position(|c| c == name).unwrap();
    let mut current: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{}|{}|{}|{}|{}",
                r[at("customer_id")],
                r[at("city")],
                r[at("valid_from")],
                r[at("valid_to")],
                r[at("active_row")]
            )
        })
        .collect();
    current.sort();
    assert_eq!(
        current,
        CURRENT_ROWS.map(|r| {
            let f: Vec<&str> = r.split('|').collect();
            format!("{}|\"{}\"|\"{}\"|\"{}\"|{}", f[0], f[1], f[2], f[3], f[4])
        })
    );
    let (columns, rows) = view("crm.dim_customer");
    assert_eq!((columns.len(), rows.len()), (COLUMNS.len(), 4));

    let written = write_mart_manifests(&m.lake, &["dim_customer".to_owned()]).await.unwrap();
    let folder = m.dir.path().join("lake/marts/dim_customer/_symlink_format_manifest");
    for (manifest, value) in written.iter().zip(["true", "false"]) {
        let text = std::fs::read_to_string(folder.join(format!("active_row={value}/manifest"))).unwrap();
        assert_eq!(text.lines().count(), manifest.files, "{text}");
        assert!(manifest.files > 0 && text.lines().all(|l| l.contains(&format!("/active_row={value}/"))), "{value}:\n{text}");
    }
    assert_eq!(written.len(), 2, "{written:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mart_is_granted_by_name_and_guarded_in_both_relations() {
    use tidemark_core::access::{Access, RoleConfig, UserConfig};
    use tidemark_query::access::{AccessDenied, UserRules, user_context};

    let m = MartLake::new().await;
    let session = m.session(ReadOptions::default()).await;
    let env = |_: &str| None;
    let users: BTreeMap<String, UserConfig> =
        tidemark_core::config::load_str("dora: {password: pw, role: r, attributes: {city: Paris}}", &env).unwrap();
    let roles: BTreeMap<String, RoleConfig> = tidemark_core::config::load_str(
        "r: {marts: [dim_*], columns: {dim_customer: {name: deny}}, rows: {dim_customer: \"city <> user_attr('city')\"}}",
        &env,
    )
    .unwrap();
    let access = Access::compile(&users, &roles, None).unwrap();
    let dora = access.principal("dora").unwrap().clone();
    let ctx = user_context(&session, UserRules { principal: dora, hash_key: None }).unwrap();
    let query = |sql: &'static str| {
        let ctx = ctx.clone();
        async move {
            let batches = ctx.sql(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}")).collect().await.unwrap();
            text_rows(&batches)
        }
    };
    // Both relations of the mart, filtered on their own rows (Paris left out), `name` gone.
    let all = "SELECT customer_id, city, valid_from, valid_to, active_row FROM dim_customer ORDER BY customer_id, valid_from";
    let expected: Vec<String> = rows(&session, all).await.into_iter().filter(|r| !r.contains("|Paris|")).collect();
    assert_eq!(query(all).await, expected);
    let current = "SELECT customer_id, city FROM dim_customer_current ORDER BY customer_id";
    assert_eq!(query(current).await, ["2|Rome", "3|Lima"]);
    for sql in ["SELECT name FROM dim_customer", "SELECT name FROM dim_customer_current"] {
        let error = ctx.sql(sql).await.expect_err(sql).to_string();
        assert!(error.contains("name"), "{sql}: {error}");
    }
    // The objects beside it are not granted by a mart grant.
    let error = ctx.sql("SELECT * FROM invoice__c").await.expect_err("objects are not granted");
    assert_eq!(AccessDenied::find(&error).map(|d| d.relation.as_str()), Some("invoice__c"));
}
