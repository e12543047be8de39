//! The lake on S3: a local moto server (a real S3 API over HTTP, state in memory) holds the
//! lake; an initial and an incremental sync land there and the oracle checks them, reading
//! back through the same `s3://` location. Covers the object-store paths of `LakeLocation`,
//! `HistoryTable` (a missing table is "none yet", not an error) and the ledger.
//!
//! Needs `python3` and PyPI: the venv (with moto) is created by `scripts/python-venv.sh`.

use crate::common::moto::Moto;
use crate::common::{CHECKED, Harness};
use serde_json::json;
use std::future::IntoFuture;

use tidemark_lake::LakeError;
use tidemark_lake::{HistoryTable, LakeLocation, Ledger, RunStatus};
use tidemark_sfsim::faults::FaultConfig;
use tidemark_sync::SyncError;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syncs_into_a_lake_on_s3() {
    let moto = Moto::start(&crate::common::python());
    assert_eq!(moto.request("PUT", "/tidemark-test").unwrap().0, 200, "bucket created");
    let lake = LakeLocation::parse("s3://tidemark-test/lake").unwrap().with_storage_options(moto.storage_options());

    // Nothing there yet: no table, no runs (not errors).
    assert!(HistoryTable::open(&lake, "Account").await.unwrap().is_none());
    assert!(Ledger::new(lake.clone()).runs().await.unwrap().is_empty());

    let dir = tempfile::tempdir().expect("temp dir");
    let mut h = Harness::start_with_lake(25, 5, lake, dir).await;
    let first = h.sync().await;
    assert_eq!(first.status(), RunStatus::Complete, "{first:#?}");
    h.check().await;

    h.advance(chrono::Duration::minutes(10));
    h.change(json!({"updates": {"share": 0.1}, "creates": 3, "deletes": 2, "hard_deletes": 1}), 1);
    let second = h.sync().await;
    assert_eq!(second.status(), RunStatus::Complete, "{second:#?}");
    assert!(second.versions_written() > 0, "{second:#?}");
    h.check().await;

    // The ledger on S3 has both runs of every object, and the second resumed from a bookmark.
    let runs = Ledger::new(h.lake.clone()).runs().await.unwrap();
    assert_eq!(runs.len(), 2 * CHECKED.len(), "{runs:#?}");
    for object in CHECKED {
        let modes: Vec<&str> = runs.iter().filter(|r| r.object == object).map(|r| r.mode.as_str()).collect();
        assert_eq!(modes, ["initial", "incremental"], "{object}");
    }
    assert!(runs.iter().all(|r| r.status == RunStatus::Complete && r.bookmark.is_some()), "{runs:#?}");

    // The tables are in the bucket, as S3 itself lists them.
    let (status, listing) = moto.request("GET", "/tidemark-test?list-type=2&prefix=lake/objects/account/_delta_log/").unwrap();
    assert_eq!(status, 200);
    assert!(listing.contains("lake/objects/account/_delta_log/00000000000000000000.json"), "account's first commit is on S3");
    assert!(h.dir.path().read_dir().unwrap().next().is_none(), "nothing was written locally");

    // Two runs at once on the S3 lake: leases are taken with conditional puts, so exactly one
    // run proceeds; the other stops before writing. The org is slowed so the runs overlap.
    h.sim.state.faults.set(FaultConfig { latency_ms: 40, ..FaultConfig::default() }, 1);
    let (a, b) = tokio::join!(h.sync_builder().with_run_id("a").into_future(), h.sync_builder().with_run_id("b").into_future());
    h.sim.state.faults.set(FaultConfig::default(), 1);
    let (won, lost) = match (a, b) {
        (Ok(won), Err(lost)) | (Err(lost), Ok(won)) => (won, lost),
        (a, b) => panic!("exactly one run must proceed: {a:?} / {b:?}"),
    };
    assert!(matches!(&lost, SyncError::Lake(LakeError::LeaseHeld { .. })), "{lost}");
    assert_eq!(won.status(), RunStatus::Complete);
    assert_eq!(won.versions_written(), 0, "nothing changed in the org: {won:#?}");
    h.check().await;
    let after = Ledger::new(h.lake.clone()).runs().await.unwrap();
    assert_eq!(after.len(), 3 * CHECKED.len(), "the stopped run recorded nothing");
}
