//! Salesforce stamps `SystemModstamp` to the whole second: two saves of one record within a
//! second, with a sync reading it in between, share one version key. The second save must
//! still land as a new version, and re-reading either must add nothing.

use crate::common::Harness;
use tidemark_lake::HistoryTable;
use tidemark_lake::RunStatus;
use tidemark_lake::read::{quote, utf8};
use tidemark_sfsim::value::Value;

/// Saves `name` on the Account and returns its `SystemModstamp` as the API shows it.
fn save_name(h: &Harness, id: &str, name: &str) -> String {
    let mut org = h.sim.state.org.write();
    let table = org.table("Account").expect("Account");
    let name_slot = table.def.slot("Name");
    let id = id.parse().expect("an id");
    org.update_record(&id, vec![(name_slot, Value::str(name))]).expect("update");
    let table = org.table("Account").expect("Account");
    let stamp_field = table.def.field("SystemModstamp").expect("stamp");
    let row = table.rows().iter().find(|r| table.id_of(r) == id).expect("row");
    org.field_json(table, row, stamp_field).as_str().expect("a datetime").to_owned()
}

async fn versions_of(h: &Harness, id: &str) -> Vec<String> {
    let table = HistoryTable::open(&h.lake, "Account").await.unwrap().expect("table");
    let ctx = table.session().await.unwrap();
    let sql = format!(
        "SELECT {name} FROM history WHERE {id} = '{id_value}' AND _origin = 'query' AND {name} LIKE 'Same second %' ORDER BY {ing}",
        name = quote("Name"),
        id = quote("Id"),
        id_value = id,
        ing = quote("_ingested_at")
    );
    table
        .collect(&ctx, &sql)
        .await
        .unwrap()
        .iter()
        .flat_map(|b| utf8(b.column(0)).unwrap().iter().flatten().map(str::to_owned).collect::<Vec<_>>())
        .collect()
}

async fn live_name(h: &Harness, id: &str) -> String {
    let table = HistoryTable::open(&h.lake, "Account").await.unwrap().expect("table");
    let ctx = table.session().await.unwrap();
    let sql = format!("SELECT {} FROM live_versions WHERE {} = '{id}'", quote("Name"), quote("Id"));
    let batches = table.collect(&ctx, &sql).await.unwrap();
    utf8(batches[0].column(0)).unwrap().value(0).to_owned()
}

async fn sync_account(h: &mut Harness) -> u64 {
    let report = h.sync_builder().with_objects(vec!["Account".into()]).await.expect("sync runs");
    assert_eq!(report.status(), RunStatus::Complete, "{report:#?}");
    report.versions_written()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_saves_within_one_second_are_two_versions() {
    let mut h = Harness::start(20, 11).await;
    sync_account(&mut h).await;
    let id = {
        let org = h.sim.state.org.read();
        let table = org.table("Account").unwrap();
        table.rows().iter().find(|r| !table.is_deleted(r)).map(|r| table.id_of(r).to_string()).unwrap()
    };

    // A whole second plus 100 ms, then 500 ms later: one second as Salesforce stamps it.
    let now = chrono::DateTime::from_timestamp_millis(h.sim.state.org.read().now_millis()).unwrap();
    let to_next_second = 1_000 - i64::from(now.timestamp_subsec_millis()) + 100;
    h.advance(chrono::Duration::milliseconds(to_next_second));
    let first_stamp = save_name(&h, &id, "Same second A");
    assert_eq!(sync_account(&mut h).await, 1, "the first save is one new version");
    h.advance(chrono::Duration::milliseconds(500));
    let second_stamp = save_name(&h, &id, "Same second B");
    assert_eq!(first_stamp, second_stamp, "Salesforce stamps whole seconds: both saves share a SystemModstamp");

    assert_eq!(sync_account(&mut h).await, 1, "the second save is a new version despite its key");
    assert_eq!(versions_of(&h, &id).await, ["Same second A", "Same second B"]);
    assert_eq!(live_name(&h, &id).await, "Same second B", "the newer content is the live state");

    // The overlap re-reads the record with nothing changed: nothing is added.
    assert_eq!(sync_account(&mut h).await, 0, "a re-read of the stored version adds nothing");

    // Back to the first content, still within the second: compared with the latest version of
    // the key, not any version, so this is new too.
    h.advance(chrono::Duration::milliseconds(200));
    assert_eq!(save_name(&h, &id, "Same second A"), first_stamp);
    assert_eq!(sync_account(&mut h).await, 1);
    assert_eq!(versions_of(&h, &id).await, ["Same second A", "Same second B", "Same second A"]);
    assert_eq!(live_name(&h, &id).await, "Same second A");
    assert_eq!(sync_account(&mut h).await, 0);
}
