//! A crash between the steps of a load, made exact: the step that "did not happen" is removed
//! from the Delta log it wrote (its last commit file), then the load runs again. (The killed
//! `tidemark model run` test in the CLI crate covers random points in time.)

use std::path::{Path, PathBuf};

use crate::common::{Scenario, model};

const MODEL: &str = r#"key: [id]
sources:
  - name: people
    files: people
    types: { id: bigint, ts: timestamp }
    order_by: ts
    status_column: op
    columns: [name]
  - name: address
    files: address
    types: { id: bigint, ts: timestamp }
    order_by: ts
    columns: [city]
"#;

/// Removes the newest commit of the Delta table at `table`, as if it never landed.
fn forget_last_commit(table: &Path) {
    let log = table.join("_delta_log");
    let mut commits: Vec<PathBuf> = std::fs::read_dir(&log)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    commits.sort();
    std::fs::remove_file(commits.pop().unwrap()).unwrap();
}

fn scenario() -> Scenario {
    let s = Scenario::new("dim_person", model(MODEL));
    s.land("people", "1.csv", "id,name,ts,op\n1,Ann,2024-01-01 00:00:00,I\n2,Bo,2024-01-01 00:00:00,I\n");
    s.land("address", "1.csv", "id,city,ts\n1,Oslo,2024-01-01 00:00:00\n3,Lima,2024-01-01 00:00:00\n");
    s
}

fn second_round(s: &Scenario) {
    s.land(
        "people",
        "2.csv",
        "id,name,ts,op\n1,Ann,2024-01-02 00:00:00,D\n2,Bob,2024-01-02 00:00:00,U\n3,Cy,2024-01-02 00:00:00,I\n",
    );
}

#[tokio::test]
async fn a_load_whose_ledger_row_was_lost_is_recorded_from_its_commit_and_not_repeated() {
    let s = scenario();
    s.run("2024-02-01").await;
    second_round(&s);
    s.run("2024-02-02").await;
    let built = s.dimension().await;
    // The dimension committed load 2; the ledger append after it "crashed".
    forget_last_commit(&s.dir.path().join("lake/_tidemark/model_loads"));
    let again = s.run("2024-02-02").await;
    assert_eq!((again.load, again.files_read), (None, 0), "no file is read twice");
    assert_eq!(s.dimension().await, built);
    let loads = tidemark_models::ledger::LoadLedger::new(s.lake.clone()).loads("dim_person").await.unwrap();
    assert_eq!(loads.iter().map(|l| l.load).collect::<Vec<_>>(), [1, 2], "the lost record is back");
}

#[tokio::test]
async fn a_load_that_wrote_its_state_but_not_its_dimension_is_redone_from_the_previous_state() {
    // Reference: no crash.
    let reference = scenario();
    reference.run("2024-02-01").await;
    second_round(&reference);
    reference.run("2024-02-02").await;

    let s = scenario();
    s.run("2024-02-01").await;
    second_round(&s);
    s.run("2024-02-02").await;
    // Load 2 wrote the state table (key 1 deleted, key 3's orphan address consumed), then its
    // dimension commit and ledger row "never landed".
    forget_last_commit(&s.dir.path().join("lake/_tidemark/model_loads"));
    forget_last_commit(&s.dir.path().join("lake/marts/dim_person"));
    let redo = s.run("2024-02-02").await;
    assert_eq!(redo.load, Some(2));
    assert_eq!(s.dimension().await, reference.dimension().await);
    let cy = s.dimension().await.into_iter().find(|r| r["id"] == "3").expect("key 3 exists");
    assert_eq!(cy["city"], "Lima", "the orphan address waited in the state of load 1");
}
