//! The diff of a flow's result against its snapshot, over a real lake session: every key
//! classified as the semantics say (checked against an oracle computed from the same
//! formulas), the snapshot written by one run read back by the next, bad keys refused, and a
//! result larger than the memory limit sorted by spilling with the same answer.

use std::collections::BTreeMap;
use std::sync::Arc;

use tidemark_lake::LakeLocation;
use tidemark_lake::arrow::array::{Array, AsArray, Int64Array, RecordBatch, StringArray};
use tidemark_lake::arrow::datatypes::UInt8Type;
use tidemark_push::diff::{CHANGE, CHANGED, Diff, NEW, UNCHANGED, VANISHED};
use tidemark_push::snapshot::{self, ROW_HASH, RUN, SF_ID, Snapshot, SnapshotWriter};
use tidemark_query::{QuerySession, ReadOptions};

/// Run 1: keys 0..n. Run 2: every 20th value changed (NULL ↔ '' included), every 33rd key
/// gone, 300 new keys. Values are long so that a small memory limit must spill.
fn query(run: u32, n: u64) -> String {
    let value = "CASE WHEN value % 7 = 0 THEN NULL WHEN value % 11 = 0 THEN '' ELSE repeat('v' || CAST(value * 31 % 1000 AS VARCHAR), 40) END";
    match run {
        1 => format!("SELECT 'k' || CAST(value AS VARCHAR) AS k, {value} AS v, value AS n FROM range(0, {n})"),
        _ => format!(
            "SELECT 'k' || CAST(value AS VARCHAR) AS k, \
             CASE WHEN value % 20 = 0 THEN (CASE WHEN value % 7 = 0 THEN '' ELSE 'changed' END) ELSE {value} END AS v, \
             value AS n FROM range(0, {}) WHERE value % 33 <> 0 OR value >= {n}",
            n + 300
        ),
    }
}

fn expected(n: u64) -> BTreeMap<String, u8> {
    let mut out = BTreeMap::new();
    for value in 0..n + 300 {
        let change = if value >= n {
            NEW
        } else if value % 33 == 0 {
            VANISHED
        } else if value % 20 == 0 {
            CHANGED
        } else {
            UNCHANGED
        };
        out.insert(format!("k{value}"), change);
    }
    out
}

async fn session(lake: &LakeLocation, memory_limit: usize) -> QuerySession {
    QuerySession::open_bounded(lake.clone(), ReadOptions::default(), memory_limit).await.unwrap()
}

/// Runs a diff to the end; the changes by key and the batches.
async fn run(diff: &mut Diff) -> (BTreeMap<String, u8>, Vec<RecordBatch>) {
    let mut changes = BTreeMap::new();
    let mut batches = Vec::new();
    let mut last: Option<String> = None;
    while let Some(batch) = diff.next().await.unwrap() {
        let keys = batch.column_by_name("k").unwrap().as_string::<i32>();
        let kinds = batch.column_by_name(CHANGE).unwrap().as_primitive::<UInt8Type>();
        for i in 0..batch.num_rows() {
            let key = keys.value(i).to_owned();
            assert!(last.as_ref().is_none_or(|l| *l < key), "keys come in order");
            last = Some(key.clone());
            changes.insert(key, kinds.value(i));
        }
        batches.push(batch);
    }
    (changes, batches)
}

/// The snapshot a run that delivered every row writes: key, hash, an Id, the run.
async fn write_snapshot(lake: &LakeLocation, batches: &[RecordBatch], run: i64) {
    let key = batches[0].schema().field_with_name("k").unwrap().clone();
    let schema = snapshot::schema(&[key]);
    let mut writer = SnapshotWriter::new(lake, "scores", schema.clone(), 128 << 20).await.unwrap();
    for b in batches {
        let kinds = b.column_by_name(CHANGE).unwrap().as_primitive::<UInt8Type>();
        let keep: tidemark_lake::arrow::array::BooleanArray = kinds.iter().map(|k| Some(k != Some(VANISHED))).collect();
        let b = tidemark_lake::arrow::compute::filter_record_batch(b, &keep).unwrap();
        let keys = b.column_by_name("k").unwrap().clone();
        let ids: StringArray = keys.as_string::<i32>().iter().map(|k| k.map(|k| format!("001{k}"))).collect();
        let columns = vec![
            keys,
            b.column_by_name(ROW_HASH).unwrap().clone(),
            Arc::new(ids) as _,
            Arc::new(Int64Array::from(vec![run; b.num_rows()])) as _,
        ];
        writer.write(RecordBatch::try_new(schema.clone(), columns).unwrap()).await.unwrap();
    }
    writer.commit(run, Default::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_classify_every_key_and_a_small_limit_spills_to_the_same_answer() {
    let dir = tempfile::tempdir().unwrap();
    let lake = LakeLocation::parse(dir.path().to_str().unwrap()).unwrap();
    let n = 30_000;
    let s = session(&lake, 256 << 20).await;
    let mut first = Diff::start(&s.context(), "scores", &query(1, n), &["k".into()], &[], None).await.unwrap();
    let (changes, batches) = run(&mut first).await;
    assert_eq!(changes.len() as u64, n);
    assert!(changes.values().all(|c| *c == NEW));
    write_snapshot(&lake, &batches, 1).await;

    let snapshot = Snapshot::open(&lake, "scores").await.unwrap().unwrap();
    assert_eq!(snapshot.last_run("scores").await.unwrap(), 1);
    let mut second = Diff::start(&s.context(), "scores", &query(2, n), &["k".into()], &[], Some(&snapshot)).await.unwrap();
    let (changes, batches) = run(&mut second).await;
    assert!(changes == expected(n), "the diff differs from the oracle");
    // A vanished key keeps its Id; a new one has none; values of a vanished key are NULL.
    let all = tidemark_lake::arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
    let kinds = all.column_by_name(CHANGE).unwrap().as_primitive::<UInt8Type>();
    let ids = all.column_by_name(SF_ID).unwrap().as_string::<i32>();
    let values = all.column_by_name("n").unwrap();
    for i in 0..all.num_rows() {
        match kinds.value(i) {
            NEW => assert!(ids.is_null(i)),
            VANISHED => assert!(!ids.is_null(i) && values.is_null(i)),
            _ => assert!(!ids.is_null(i) && !values.is_null(i)),
        }
    }
    let counts = second.counts;
    assert_eq!((counts.new, counts.vanished), (300, n.div_ceil(33)));

    // The same diff under a 16 MiB pool: the result's sort spills, the answer is the same.
    let small = session(&lake, 16 << 20).await;
    let mut spilling = Diff::start(&small.context(), "scores", &query(2, n), &["k".into()], &[], Some(&snapshot)).await.unwrap();
    let (same, _) = run(&mut spilling).await;
    assert!(spilling.spilled_bytes() > 0, "nothing spilled");
    assert!(same == changes);
    let _ = RUN;
}

#[tokio::test]
async fn a_missing_or_repeated_key_is_refused_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let lake = LakeLocation::parse(dir.path().to_str().unwrap()).unwrap();
    let s = session(&lake, 64 << 20).await;
    let repeated = "SELECT CAST(value % 5 AS BIGINT) AS id, value AS v FROM range(0, 10)";
    let mut diff = Diff::start(&s.context(), "f", repeated, &["id".into()], &[], None).await.unwrap();
    let err = loop {
        match diff.next().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("a repeated key was accepted"),
            Err(e) => break e.to_string(),
        }
    };
    assert!(err.contains("more than one row with the key (0)"), "{err}");
    let null = "SELECT CASE WHEN value = 3 THEN NULL ELSE value END AS id FROM range(0, 10)";
    let mut diff = Diff::start(&s.context(), "f", null, &["id".into()], &[], None).await.unwrap();
    let err = diff.next().await.unwrap_err().to_string();
    assert!(err.contains("no value in the key column id"), "{err}");
    let err = Diff::start(&s.context(), "f", null, &["Id".into()], &[], None).await.err().unwrap().to_string();
    assert!(err.contains("key column Id is not a column"), "{err}");
}
