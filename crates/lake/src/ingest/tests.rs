//! `Ingest` driven by a scripted source: commits at transaction ends, nothing of an unfinished
//! transaction kept, positions stored with the versions.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use deltalake::arrow::array::{ArrayRef, BooleanArray, Int32Array, Int64Array, RecordBatch, TimestampMicrosecondArray};
use deltalake::arrow::datatypes::{DataType, Field, Schema};

use super::*;
use crate::columns::ORIGIN;
use tidemark_core::governance::Governance;

struct Script {
    steps: VecDeque<Change>,
    acknowledged: Vec<Position>,
    layout: TableLayout,
}

#[async_trait::async_trait]
impl Source for Script {
    fn name(&self) -> &str {
        "script"
    }
    async fn start(&mut self, _held: &HashMap<String, Position>) -> std::result::Result<(), SourceError> {
        Ok(())
    }
    async fn next(&mut self) -> std::result::Result<Option<Change>, SourceError> {
        Ok(self.steps.pop_front())
    }
    async fn acknowledge(&mut self, position: Position) -> std::result::Result<(), SourceError> {
        self.acknowledged.push(position);
        Ok(())
    }
    fn layout(&self) -> TableLayout {
        self.layout
    }
}

fn spec() -> Change {
    Change::Table(TableSpec {
        name: "t".into(),
        fields: vec![Field::new("id", DataType::Int32, true)],
        key: vec!["id".into()],
        policies: Vec::new(),
    })
}

fn rows(ids: &[i32], lsn: i64) -> Change {
    let n = ids.len();
    let schema = Schema::new(vec![
        Field::new(VERSION_AT, crate::columns::timestamp_type(), false),
        Field::new(DELETED, DataType::Boolean, false),
        Field::new(LSN, DataType::Int64, true),
        Field::new("id", DataType::Int32, true),
    ]);
    let batch = RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(TimestampMicrosecondArray::from(vec![1_000_000; n]).with_timezone("UTC")),
            Arc::new(BooleanArray::from(vec![false; n])),
            Arc::new(Int64Array::from(vec![lsn; n])),
            Arc::new(Int32Array::from(ids.to_vec())),
        ],
    )
    .unwrap();
    Change::Versions(Versions {
        table: "t".into(),
        kind: CaptureKind::Change,
        batch,
        unchanged: Vec::new(),
        continues: Vec::new(),
    })
}

fn commit(position: Position) -> Change {
    Change::Commit { position, table: None }
}

#[tokio::test]
async fn transactions_commit_whole_and_an_unfinished_one_is_not_kept() {
    let dir = tempfile::tempdir().unwrap();
    let lake = LakeLocation::parse(dir.path().to_str().unwrap()).unwrap();
    let run = |steps: Vec<Change>| {
        let lake = lake.clone();
        async move {
            Ingest::new(lake, Box::new(Script { steps: steps.into(), acknowledged: Vec::new(), layout: TableLayout::Source }))
                .await
        }
    };

    let done = run(vec![spec(), rows(&[1, 2], 10), commit(10), rows(&[3], 20), commit(20)]).await.unwrap();
    assert_eq!((done.versions(), done.acknowledged, done.tables["t"].position), (3, Some(20), Some(20)));
    assert_eq!(held_positions(&lake, "script").await.unwrap()["t"], 20);

    // A source that ends inside a transaction: an error, and not even the complete transaction
    // before it is committed under a position that would skip the unfinished one's rows.
    let cut = run(vec![spec(), rows(&[4], 30), commit(30), rows(&[5], 40)]).await.unwrap_err();
    assert!(cut.to_string().contains("ended inside a transaction"), "{cut}");
    assert!(!cut.is_retryable());
    assert_eq!(held_positions(&lake, "script").await.unwrap()["t"], 20, "nothing of that run was committed");
    let t = HistoryTable::open_source(&lake, "script", "t").await.unwrap().unwrap();
    let ctx = t.session().await.unwrap();
    let count = t.collect(&ctx, "SELECT count(*) FROM history").await.unwrap();
    assert_eq!(deltalake::arrow::util::display::array_value_to_string(count[0].column(0), 0).unwrap(), "3");
}

/// A Salesforce-shaped table: versions already in the table's columns.
fn account_versions(ids: &[&str], names: &[&str]) -> Change {
    let n = ids.len();
    let text = |v: &[&str]| Arc::new(deltalake::arrow::array::StringArray::from(v.to_vec())) as ArrayRef;
    let schema = Schema::new(vec![
        Field::new(VERSION_AT, crate::columns::timestamp_type(), false),
        Field::new(DELETED, DataType::Boolean, false),
        Field::new(ORIGIN, DataType::Utf8, true),
        Field::new("Id", DataType::Utf8, false),
        Field::new("Name", DataType::Utf8, true),
    ]);
    let batch = RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(TimestampMicrosecondArray::from(vec![1_000_000; n]).with_timezone("UTC")),
            Arc::new(BooleanArray::from(vec![false; n])),
            text(&vec!["reconcile"; n]),
            text(ids),
            text(names),
        ],
    )
    .unwrap();
    Change::Versions(Versions {
        table: "Account".into(),
        kind: CaptureKind::Change,
        batch,
        unchanged: Vec::new(),
        continues: Vec::new(),
    })
}

fn account_spec(extra: &[(&str, &str)]) -> Change {
    let typed = |name: &str, source_type: &str| {
        Field::new(name, DataType::Utf8, true).with_metadata(HashMap::from([(SOURCE_TYPE.to_owned(), source_type.to_owned())]))
    };
    let mut fields = vec![typed("Id", "id"), typed("Name", "string")];
    fields.extend(extra.iter().map(|(n, t)| typed(n, t)));
    Change::Table(TableSpec { name: "Account".into(), fields, key: Vec::new(), policies: Vec::new() })
}

#[tokio::test]
async fn the_objects_layout_writes_salesforce_shaped_tables_under_the_syncs_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let lake = LakeLocation::parse(dir.path().to_str().unwrap()).unwrap();
    let run = |steps: Vec<Change>| {
        let lake = lake.clone();
        async move {
            let script = Script { steps: steps.into(), acknowledged: Vec::new(), layout: TableLayout::Objects };
            Ingest::new(lake, Box::new(script)).with_run_records(false).await
        }
    };
    let table_commit = |position| Change::Commit { position, table: Some("Account".into()) };
    run(vec![account_spec(&[]), account_versions(&["001A", "001B"], &["a", "b"]), table_commit(1)]).await.unwrap();
    run(vec![account_spec(&[("Phone", "phone")]), account_versions(&["001A"], &["a2"]), table_commit(2)]).await.unwrap();

    let t = HistoryTable::open(&lake, "Account").await.unwrap().expect("under objects/");
    assert!(lake.source_tables("script").await.unwrap().is_empty());
    let schema = t.schema().unwrap();
    assert!(schema.field_with_name(KEY).is_err() && schema.field_with_name(LSN).is_err(), "no _key or _lsn: {schema:?}");
    assert!(!schema.field_with_name("Id").unwrap().is_nullable());
    assert!(schema.field_with_name("Phone").unwrap().metadata().is_empty(), "the source type stays out of the table");
    assert_eq!(t.transaction_version(&app_id("sync", "Account")).await.unwrap(), Some(2), "the sync's commit numbers");
    let ctx = t.session().await.unwrap();
    let rows = t.collect(&ctx, r#"SELECT "_origin", "Id", "Name" FROM history ORDER BY "Name""#).await.unwrap();
    let text = deltalake::arrow::util::pretty::pretty_format_batches(&rows).unwrap().to_string();
    assert!(text.contains("| reconcile | 001A | a2   |"), "the batch's own metadata is kept:\n{text}");
    assert_eq!(rows.iter().map(|b| b.num_rows()).sum::<usize>(), 3);
    let events = Ledger::new(lake.clone()).schema_events().await.unwrap();
    let added = events.iter().find(|e| e.kind == "field_added").expect("Phone added");
    assert_eq!(
        (added.object.as_str(), added.detail.as_str()),
        ("Account", "phone as Utf8"),
        "named by object and Salesforce type"
    );

    // Numbers the table already holds, and what the objects namespace cannot hold, are refused.
    let stale = run(vec![account_spec(&[]), account_versions(&["001C"], &["c"]), table_commit(2)]).await.unwrap_err();
    assert!(stale.to_string().contains("already holds 2"), "{stale}");
    let truncate = Change::Truncate { table: "Account".into(), at: chrono::Utc::now(), lsn: 3 };
    let refused = run(vec![account_spec(&[]), truncate]).await.unwrap_err();
    assert!(refused.to_string().contains("truncate in the objects namespace"), "{refused}");
}

#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<String>>);

impl IngestObserver for Recorder {
    fn versions_written(&self, source: &str, table: &str, versions: u64) {
        self.0.lock().unwrap().push(format!("wrote {source}.{table} {versions}"));
    }
    fn committed(&self, source: &str, table: &str, versions: u64, position: Position) {
        self.0.lock().unwrap().push(format!("committed {source}.{table} {versions} at {position}"));
    }
}

#[tokio::test]
async fn an_observer_sees_every_write_and_commit() {
    let dir = tempfile::tempdir().unwrap();
    let lake = LakeLocation::parse(dir.path().to_str().unwrap()).unwrap();
    let recorder = Arc::new(Recorder::default());
    let steps = vec![spec(), rows(&[1, 2], 10), commit(10), rows(&[3], 20), commit(20)];
    let script = Script { steps: steps.into(), acknowledged: Vec::new(), layout: TableLayout::Source };
    Ingest::new(lake, Box::new(script)).with_commit_rows(2).with_observer(recorder.clone()).await.unwrap();
    assert_eq!(
        *recorder.0.lock().unwrap(),
        ["wrote script.t 2", "committed script.t 2 at 10", "wrote script.t 1", "committed script.t 1 at 20"]
    );
}

fn people(ids: &[i32], emails: &[&str], lsn: i64, unchanged_notes: bool) -> Change {
    let n = ids.len();
    let text = |v: &[&str]| Arc::new(deltalake::arrow::array::StringArray::from(v.to_vec())) as ArrayRef;
    let schema = Schema::new(vec![
        Field::new(VERSION_AT, crate::columns::timestamp_type(), false),
        Field::new(DELETED, DataType::Boolean, false),
        Field::new(LSN, DataType::Int64, true),
        Field::new("id", DataType::Int32, true),
        Field::new("email", DataType::Utf8, true),
        Field::new("phone", DataType::Utf8, true),
        Field::new("secret", DataType::Utf8, true),
        Field::new("notes", DataType::Utf8, true),
    ]);
    let batch = RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(TimestampMicrosecondArray::from(vec![1_000_000 + lsn; n]).with_timezone("UTC")),
            Arc::new(BooleanArray::from(vec![false; n])),
            Arc::new(Int64Array::from(vec![lsn; n])),
            Arc::new(Int32Array::from(ids.to_vec())),
            text(emails),
            text(&vec!["+44 20 7946 0958"; n]),
            text(&vec!["s3cr3t-value"; n]),
            text(&vec!["a note about a person"; n]),
        ],
    )
    .unwrap();
    let unchanged = if unchanged_notes { vec![("notes".to_owned(), (0..n as u32).collect())] } else { Vec::new() };
    Change::Versions(Versions { table: "people".into(), kind: CaptureKind::Change, batch, unchanged, continues: Vec::new() })
}

fn people_spec() -> Change {
    let text = |n: &str| Field::new(n, DataType::Utf8, true);
    let fields = vec![Field::new("id", DataType::Int32, true), text("email"), text("phone"), text("secret"), text("notes")];
    Change::Table(TableSpec { name: "people".into(), fields, key: vec!["id".into()], policies: Vec::new() })
}

fn policies(rules: &str) -> Arc<Governance> {
    let yaml = format!("hash_key: sixteen characters or more\npolicies:\n  script.people:\n{rules}");
    let config: tidemark_core::governance::GovernanceConfig = tidemark_core::config::load_str(&yaml, &|_| None).unwrap();
    Arc::new(Governance::compile(&config).unwrap())
}

#[tokio::test]
async fn a_sources_policies_are_applied_recorded_per_column_and_per_file() {
    let dir = tempfile::tempdir().unwrap();
    let lake = LakeLocation::parse(dir.path().to_str().unwrap()).unwrap();
    let run = |steps: Vec<Change>, governance: Arc<Governance>| {
        let lake = lake.clone();
        async move {
            let script = Script { steps: steps.into(), acknowledged: Vec::new(), layout: TableLayout::Source };
            Ingest::new(lake, Box::new(script)).with_governance(governance).await
        }
    };
    let first = policies("    email: hash\n    phone: mask:last4\n    secret: exclude\n");
    let steps = vec![people_spec(), people(&[1, 2], &["ann@example.com", "bob@example.org"], 10, false), commit(10)];
    run(steps, first.clone()).await.unwrap();

    let t = HistoryTable::open_source(&lake, "script", "people").await.unwrap().unwrap();
    let schema = t.schema().unwrap();
    assert!(schema.field_with_name("secret").is_err(), "an excluded field never becomes a column");
    let tokens = crate::policy::column_tokens(&schema);
    assert_eq!(tokens.get("phone").map(String::as_str), Some("mask:last4"));
    assert_eq!(tokens.get("email"), Some(&first.token(tidemark_core::governance::FieldPolicy::Hash)));
    let files = crate::policy::file_tokens(t.delta(), "people").await.unwrap();
    assert!(!files.is_empty() && files.iter().all(|f| f.tokens == tokens), "{files:?}");
    let ctx = t.session().await.unwrap();
    let got = t.collect(&ctx, "SELECT email, phone, notes FROM history ORDER BY id").await.unwrap();
    let email = crate::read::utf8(got[0].column(0)).unwrap();
    assert_eq!(email.value(0), first.key().unwrap().hash("ann@example.com"));
    assert_eq!(crate::read::utf8(got[0].column(1)).unwrap().value(1), "************0958");
    assert_eq!(crate::read::utf8(got[0].column(2)).unwrap().value(0), "a note about a person");

    // notes becomes hashed: recorded as a schema event and in the column; the older file is
    // not under it, so an unchanged value cannot be filled from it.
    let second = policies("    email: hash\n    phone: mask:last4\n    secret: exclude\n    notes: hash\n");
    let steps = vec![people_spec(), people(&[1], &["ann@example.com"], 20, true), commit(20)];
    let refused = run(steps, second.clone()).await.unwrap_err();
    assert!(refused.to_string().contains("govern apply"), "{refused}");
    let steps = vec![people_spec(), people(&[3], &["cy@example.net"], 30, false), commit(30)];
    run(steps, second.clone()).await.unwrap();
    let t = HistoryTable::open_source(&lake, "script", "people").await.unwrap().unwrap();
    let schema = t.schema().unwrap();
    assert_eq!(crate::policy::unsettled_columns(t.delta(), &schema, "people").await.unwrap(), vec!["notes".to_owned()]);
    let events = Ledger::new(lake.clone()).schema_events().await.unwrap();
    let changed: Vec<&str> = events.iter().filter(|e| e.kind == "policy_changed").map(|e| e.detail.as_str()).collect();
    assert_eq!(changed.len(), 1, "recorded once although the first attempt was refused after it: {changed:?}");
    assert!(changed[0].starts_with("none → hash:"), "{changed:?}");

    // A rule naming the key is refused before anything is written.
    let bad = run(vec![people_spec(), people(&[4], &["d@example.com"], 40, false), commit(40)], policies("    id: hash\n"))
        .await
        .unwrap_err();
    assert!(bad.to_string().contains("governance.policies.script.people.id") && !bad.is_retryable(), "{bad}");
}
