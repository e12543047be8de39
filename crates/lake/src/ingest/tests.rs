//! `Ingest` driven by a scripted source: commits at transaction ends, nothing of an unfinished
//! transaction kept, positions stored with the versions.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use deltalake::arrow::array::{BooleanArray, Int32Array, Int64Array, RecordBatch, TimestampMicrosecondArray};
use deltalake::arrow::datatypes::{DataType, Field, Schema};

use super::*;

struct Script {
    steps: VecDeque<Change>,
    acknowledged: Vec<Position>,
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
}

fn spec() -> Change {
    Change::Table(TableSpec { name: "t".into(), fields: vec![Field::new("id", DataType::Int32, true)], key: vec!["id".into()] })
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
        async move { Ingest::new(lake, Box::new(Script { steps: steps.into(), acknowledged: Vec::new() })).await }
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
