//! Source-time dimensions never depend on arrival order: a version ingested late takes its
//! place in the timeline, splitting the row it falls in, and the result equals the dimension
//! built from all versions at once. Histories are written with the lake's own writer.

use std::sync::Arc;

use crate::common::{Row, check_invariants, model, to_rows};
use tidemark_lake::arrow::array::{ArrayRef, BooleanArray, RecordBatch, StringArray, TimestampMicrosecondArray};
use tidemark_lake::arrow::datatypes::{DataType, Field, Schema};
use tidemark_lake::columns::metadata_fields;
use tidemark_lake::{HistoryTable, LakeLocation, VersionWriter};
use tidemark_models::ModelLoad;

const MODEL: &str = r#"dating: source_time
key: [Id]
type1: [Note]
sources:
  - { name: widget, object: Widget, columns: [Name, Note] }
"#;

/// (Id, version second, deleted, Name, Note).
type V = (&'static str, i64, bool, &'static str, &'static str);

async fn append(lake: &LakeLocation, versions: &[V], ingested: i64) {
    let mut fields = metadata_fields();
    fields.extend([
        Field::new("Id", DataType::Utf8, false),
        Field::new("Name", DataType::Utf8, true),
        Field::new("Note", DataType::Utf8, true),
    ]);
    let schema = Arc::new(Schema::new(fields));
    let mut table = match HistoryTable::open(lake, "Widget").await.unwrap() {
        Some(t) => t,
        None => HistoryTable::create(lake, "Widget", &schema).await.unwrap(),
    };
    let ts = |v: Vec<i64>| -> ArrayRef { Arc::new(TimestampMicrosecondArray::from(v).with_timezone("UTC")) };
    let n = versions.len();
    let columns: Vec<ArrayRef> = vec![
        ts(versions.iter().map(|v| v.1 * 1_000_000).collect()),
        Arc::new(BooleanArray::from(versions.iter().map(|v| v.2).collect::<Vec<_>>())),
        Arc::new(StringArray::from(vec!["query"; n])),
        Arc::new(StringArray::from(vec!["run"; n])),
        ts(vec![ingested; n]),
        Arc::new(StringArray::from(versions.iter().map(|v| v.0).collect::<Vec<_>>())),
        Arc::new(StringArray::from(versions.iter().map(|v| v.3).collect::<Vec<_>>())),
        Arc::new(StringArray::from(versions.iter().map(|v| v.4).collect::<Vec<_>>())),
    ];
    let mut writer = VersionWriter::new(&table, "tidemark-test:widget".into(), Vec::new()).await.unwrap();
    writer.write(RecordBatch::try_new(schema, columns).unwrap()).await.unwrap();
    writer.commit(&mut table).await.unwrap();
}

async fn build(lake: &LakeLocation) -> Vec<Row> {
    let m = model(MODEL);
    ModelLoad::new(lake.clone(), "dim_widget", m.clone()).run().await.unwrap();
    let table = tidemark_lake::history::open_table(lake, lake.mart_table_url("dim_widget")).await.unwrap().unwrap();
    let ctx = tidemark_lake::datafusion::prelude::SessionContext::new();
    table.update_datafusion_session(&ctx.state()).unwrap();
    let mut rows = to_rows(&ctx.read_table(table.table_provider().await.unwrap()).unwrap().collect().await.unwrap());
    check_invariants(&rows, &m, "dim_widget");
    rows.sort_by(|a, b| (&a["Id"], &a["valid_from"]).cmp(&(&b["Id"], &b["valid_from"])));
    rows
}

fn shape(rows: &[Row]) -> Vec<[String; 6]> {
    rows.iter()
        .map(|r| [&r["Id"], &r["Name"], &r["Note"], &r["valid_from"], &r["valid_to"], &r["is_current"]].map(|s| s.to_string()))
        .collect()
}

const EARLY: [V; 4] =
    [("w1", 100, false, "A", "n1"), ("w1", 300, false, "C", "n3"), ("w2", 100, false, "X", "m1"), ("w2", 400, true, "X", "m1")];
const LATE: [V; 3] = [("w1", 200, false, "B", "n2"), ("w1", 250, false, "B", "n2.5"), ("w2", 200, false, "Y", "m2")];

#[tokio::test]
async fn a_late_version_splits_the_row_it_falls_in_and_the_result_is_order_independent() {
    let dir = tempfile::tempdir().unwrap();
    let lake = LakeLocation::parse(dir.path().join("late").to_str().unwrap()).unwrap();
    append(&lake, &EARLY, 1).await;
    let before = build(&lake).await;
    let w1_rows: Vec<&Row> = before.iter().filter(|r| r["Id"] == "w1").collect();
    assert_eq!(w1_rows.len(), 2);
    append(&lake, &LATE, 2).await;
    let after = build(&lake).await;

    let all_at_once = tempfile::tempdir().unwrap();
    let fresh = LakeLocation::parse(all_at_once.path().to_str().unwrap()).unwrap();
    let mut every: Vec<V> = EARLY.iter().chain(LATE.iter()).copied().collect();
    every.sort_by_key(|v| (v.0, v.1));
    append(&fresh, &every, 1).await;
    assert_eq!(shape(&after), shape(&build(&fresh).await), "the same dimension whatever the arrival order");

    let s = |t: i64| chrono::DateTime::from_timestamp(t, 0).unwrap().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let w1: Vec<[String; 6]> = shape(&after).into_iter().filter(|r| r[0] == "w1").collect();
    assert_eq!(
        w1,
        [
            ["w1", "A", "n1", &s(100), &s(200), "false"].map(String::from),
            // The type-1 Note takes the value at the row's end (250), not a new row.
            ["w1", "B", "n2.5", &s(200), &s(300), "false"].map(String::from),
            ["w1", "C", "n3", &s(300), "9999-12-31T00:00:00Z", "true"].map(String::from),
        ]
    );
    let key = |rows: &[Row], from: i64| {
        rows.iter().find(|r| r["Id"] == "w1" && r["valid_from"] == s(from)).unwrap()["widget_sk"].clone()
    };
    assert_eq!(key(&before, 100), key(&after, 100), "the split row keeps its surrogate key");
    assert_eq!(key(&before, 300), key(&after, 300));
    let w2: Vec<[String; 6]> = shape(&after).into_iter().filter(|r| r[0] == "w2").collect();
    assert_eq!(w2.len(), 2, "w2: X then Y, closed by its delete: {w2:?}");
    assert_eq!(w2[1][4], s(400));
}
