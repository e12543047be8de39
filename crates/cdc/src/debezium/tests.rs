use serde_json::json;
use tidemark_core::sources::CdcFilesConfig;
use tidemark_lake::arrow::array::{Array, AsArray};
use tidemark_lake::arrow::datatypes::{Int32Type, Int64Type, TimestampMicrosecondType};

use super::*;
use crate::json_values::UNAVAILABLE;

fn tables() -> Tables {
    Tables::new(&CdcFilesConfig::new("x"), &["public.*".to_owned()]).unwrap()
}

fn row_schema(extra: bool) -> Value {
    let mut fields = vec![
        json!({"type": "int32", "optional": false, "field": "id"}),
        json!({"type": "string", "optional": true, "field": "body"}),
    ];
    if extra {
        fields.push(json!({"type": "boolean", "optional": true, "field": "flag"}));
    }
    json!({"type": "struct", "fields": [
        {"type": "struct", "optional": true, "field": "before", "fields": fields},
        {"type": "struct", "optional": true, "field": "after", "fields": fields},
        {"type": "struct", "field": "source", "fields": []},
        {"type": "string", "field": "op"}
    ]})
}

fn event(op: &str, before: Value, after: Value, ts_us: i64, lsn: i64, extra: bool) -> String {
    let payload = json!({"before": before, "after": after, "op": op, "ts_ms": 1,
        "source": {"connector": "postgresql", "schema": "public", "table": "docs", "ts_ms": ts_us / 1000, "ts_us": ts_us, "lsn": lsn}});
    json!({"schema": row_schema(extra), "payload": payload}).to_string()
}

fn versions(item: &Item) -> &Versions {
    match item {
        Item::Versions(v) => v,
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_event_file_becomes_ordered_versions_with_placeholders_marked() {
    let lines = [
        event("r", json!(null), json!({"id": 1, "body": "a"}), 1_000_000, 10, false),
        event("c", json!(null), json!({"id": 2, "body": "b"}), 2_000_007, 20, false),
        "null".to_owned(),
        String::new(),
        event("u", json!(null), json!({"id": 2, "body": UNAVAILABLE}), 3_000_000, 30, false),
        event("d", json!({"id": 1, "body": null}), json!(null), 4_000_000, 40, false),
        json!({"before": null, "after": null, "op": "t", "source": {"schema": "public", "table": "docs", "ts_us": 5_000_000, "lsn": 50}})
            .to_string(),
        event("c", json!(null), json!({"id": 9, "body": "x"}), 1, 1, false).replace("\"docs\"", "\"other\"").replace("public", "audit"),
    ];
    let file = lines.join("\n");
    let segments = parse(file.as_bytes(), "f.json", 4, &tables(), &mut HashMap::new()).unwrap();
    assert_eq!(segments.len(), 1, "one definition throughout: one segment");
    let items = &segments[0].items;
    assert_eq!(items.len(), 3, "the snapshot read, then the changes, then the truncate: {items:?}");
    let copy = versions(&items[0]);
    assert_eq!((copy.kind, copy.batch.num_rows()), (CaptureKind::Copy, 1));
    let changes = versions(&items[1]);
    assert_eq!((changes.kind, changes.batch.num_rows()), (CaptureKind::Change, 3));
    let b = &changes.batch;
    assert_eq!(
        b.column_by_name(VERSION_AT).unwrap().as_primitive::<TimestampMicrosecondType>().value(0),
        2_000_007,
        "ts_us, not ts_ms"
    );
    assert_eq!(b.column_by_name(LSN).unwrap().as_primitive::<Int64Type>().values().to_vec(), [20, 30, 40]);
    assert!(b.column_by_name(DELETED).unwrap().as_boolean().value(2));
    assert_eq!(
        b.column_by_name("id").unwrap().as_primitive::<Int32Type>().value(2),
        1,
        "a delete carries the before image's key"
    );
    assert_eq!(changes.unchanged, [("body".to_owned(), vec![1])], "the placeholder is filled by the lake, never stored");
    assert!(b.column_by_name("body").unwrap().is_null(1));
    assert!(matches!(&items[2], Item::Truncate { table, lsn: 50, .. } if table == "docs"));
    assert_eq!(segments[0].specs["docs"].key, ["id"]);
}

#[test]
fn a_schema_change_inside_a_file_cuts_it() {
    let file = [
        event("c", json!(null), json!({"id": 1, "body": "a"}), 1, 1, false),
        event("c", json!(null), json!({"id": 2, "body": "b", "flag": true}), 2, 2, true),
        event("u", json!(null), json!({"id": 1, "body": "c", "flag": false}), 3, 3, true),
    ]
    .join("\n");
    let segments = parse(file.as_bytes(), "f.json", 1, &tables(), &mut HashMap::new()).unwrap();
    assert_eq!(segments.len(), 2);
    assert_eq!(segments[0].specs["docs"].fields.len(), 2);
    assert_eq!(segments[1].specs["docs"].fields.len(), 3);
    assert_eq!(versions(&segments[1].items[0]).batch.num_rows(), 2);
}

#[test]
fn schemaless_events_are_typed_by_their_values_and_keep_earlier_types() {
    let line = |id: i64, score: Value, ts: i64| {
        json!({"before": null, "after": {"id": id, "score": score, "note": {"a": 1}}, "op": "c",
            "source": {"schema": "public", "table": "t", "ts_ms": ts}})
        .to_string()
    };
    let mut inferred = HashMap::new();
    let first = [line(1, json!(1), 5), line(2, json!(2.5), 6)].join("\n");
    let segments = parse(first.as_bytes(), "a.json", 1, &tables(), &mut inferred).unwrap();
    let spec = &segments[0].specs["t"];
    let types: Vec<String> = spec.fields.iter().map(|f| format!("{}:{}", f.name(), f.data_type())).collect();
    assert_eq!(types, ["id:Int64", "score:Float64", "note:Utf8"]);
    let v = versions(&segments[0].items[0]);
    assert_eq!(v.batch.column_by_name(VERSION_AT).unwrap().as_primitive::<TimestampMicrosecondType>().value(0), 5000);
    assert_eq!(
        v.batch.column_by_name(LSN).unwrap().as_primitive::<Int64Type>().value(1),
        (1 << ROW_BITS) | 1,
        "no lsn: the event's place"
    );
    let second = line(3, json!(null), 7);
    let segments = parse(second.as_bytes(), "b.json", 2, &tables(), &mut inferred).unwrap();
    assert_eq!(segments[0].specs["t"].fields[1].data_type(), &DataType::Float64, "a column null throughout keeps its type");
}

#[test]
fn bad_events_are_named_by_file_and_line() {
    let bad = parse(b"{\"op\": \"c\"}\n", "f.json", 1, &tables(), &mut HashMap::new()).unwrap_err().to_string();
    assert!(bad.contains("f.json, line 1") && bad.contains("source block"), "{bad}");
    let garbage = parse(b"\n{not json\n", "f.json", 1, &tables(), &mut HashMap::new()).unwrap_err().to_string();
    assert!(garbage.contains("line 2"), "{garbage}");
    let no_key =
        json!({"before": null, "after": {"uuid": "x"}, "op": "c", "source": {"schema": "public", "table": "t", "ts_ms": 1}});
    let err = parse(no_key.to_string().as_bytes(), "f.json", 1, &tables(), &mut HashMap::new()).unwrap_err().to_string();
    assert!(err.contains("no key column id") && err.contains("keys:"), "{err}");
    let secret = event("c", json!(null), json!({"id": "secret@example.com", "body": "b"}), 1, 1, false);
    let err = parse(secret.as_bytes(), "f.json", 1, &tables(), &mut HashMap::new()).unwrap_err().to_string();
    assert!(err.contains("column id") && !err.contains("secret"), "{err}");
}
