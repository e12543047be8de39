//! The push flows' tables under `_tidemark/` (`push_runs`, `push_<flow>_errors`), read as
//! stored through the lake's schema; a name whose table was never written is not found.

use std::sync::Arc;

use serde_json::json;
use tidemark_lake::arrow::array::{AsArray, RecordBatch};
use tidemark_lake::arrow::datatypes::{DataType, Field, Int64Type, Schema};
use tidemark_lake::arrow::util::display::array_value_to_string;
use tidemark_lake::{LakeLocation, Ledger};
use tidemark_query::{QuerySession, ReadOptions};

async fn batches(session: &QuerySession, sql: &str) -> Vec<RecordBatch> {
    session.sql(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}")).collect().await.unwrap()
}

async fn count(session: &QuerySession, sql: &str) -> i64 {
    batches(session, sql).await[0].column(0).as_primitive::<Int64Type>().value(0)
}

async fn error(session: &QuerySession, sql: &str) -> String {
    match session.sql(sql).await {
        Ok(frame) => frame.collect().await.map(|_| String::new()).unwrap_or_else(|e| e.to_string()),
        Err(e) => e.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_runs_and_errors_are_queryable() {
    let dir = tempfile::tempdir().unwrap();
    let lake = LakeLocation::parse(dir.path().to_str().unwrap()).unwrap();

    // Before any push: neither name is a table, and push_runs is not listed.
    let before = QuerySession::open(lake.clone(), ReadOptions::default()).await.unwrap();
    let e = error(&before, "SELECT * FROM push_runs").await;
    assert!(e.contains("'push_runs' not found"), "{e}");

    let ledger = Ledger::new(lake.clone());
    let runs = Arc::new(Schema::new(vec![
        Field::new("flow", DataType::Utf8, false),
        Field::new("run", DataType::Int64, false),
        Field::new("status", DataType::Utf8, false),
    ]));
    let run_rows =
        [json!({"flow": "f1", "run": 1, "status": "complete"}), json!({"flow": "f1", "run": 2, "status": "incomplete"})];
    ledger.append_rows("push_runs", runs, &run_rows).await.unwrap();
    let errors = Arc::new(Schema::new(vec![
        Field::new("run", DataType::Int64, false),
        Field::new("key", DataType::Utf8, false),
        Field::new("status_code", DataType::Utf8, false),
        Field::new("delivered_run", DataType::Int64, true),
    ]));
    let error_rows = [json!({"run": 2, "key": "[\"k1\"]", "status_code": "REQUIRED_FIELD_MISSING", "delivered_run": null})];
    ledger.append_rows("push/f1/errors", errors, &error_rows).await.unwrap();

    // A session opened before the tables were written finds them when a query names them.
    assert_eq!(count(&before, "SELECT count(*) FROM push_runs").await, 2);

    let session = QuerySession::open(lake.clone(), ReadOptions::default()).await.unwrap();
    assert_eq!(count(&session, "SELECT count(*) FROM push_runs").await, 2);
    assert_eq!(count(&session, "SELECT count(*) FROM PUSH_RUNS WHERE status = 'incomplete'").await, 1);
    let found = batches(&session, "SELECT * FROM push_f1_errors").await;
    assert_eq!(found.iter().map(RecordBatch::num_rows).sum::<usize>(), 1);
    let schema = found[0].schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["run", "key", "status_code", "delivered_run"]);
    // Strings come back as the Delta provider reads them (string views): compare their text.
    assert_eq!(array_value_to_string(found[0].column(1), 0).unwrap(), "[\"k1\"]");
    assert!(found[0].column(3).is_null(0));

    // Listed for clients that list tables; a flow without an error table is not found.
    let listed = batches(&session, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'push_runs'").await;
    assert_eq!(listed[0].column(0).as_primitive::<Int64Type>().value(0), 1);
    let e = error(&session, "SELECT * FROM push_f2_errors").await;
    assert!(e.contains("'push_f2_errors' not found"), "{e}");
}
