//! Restores against the simulator: records set back to an instant of the lake's history, a
//! parent re-created and its children re-linked, checked against the org's truth after the
//! next sync.

use std::collections::BTreeMap;

use crate::common::{Org, TruthRecord};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value as J, json};
use tidemark_push::RestoreRun;
use tidemark_push::id_map::IdMap;
use tidemark_salesforce::write::Record;
use tidemark_sync::{Sync, SyncSettings};

const OBJECTS: [&str; 3] = ["Account", "Contact", "Subscription__c"];

/// Records purged from the recycle bin leave no trace but their absence: every sync looks.
fn settings() -> SyncSettings {
    SyncSettings { reconcile_every: std::time::Duration::ZERO, ..SyncSettings::default() }
}

impl Org {
    async fn sync_objects(&self, objects: &[&str]) {
        let objects = objects.iter().map(|s| (*s).to_owned()).collect();
        let report =
            Sync::new(self.client.clone(), self.lake.clone(), settings()).with_objects(objects).await.expect("sync runs");
        assert!(report.objects.iter().all(|o| o.message.is_none()), "sync: {:?}", report.objects);
    }

    async fn sync(&self) {
        self.sync_objects(&OBJECTS).await;
    }

    /// Moves the org's clock on an hour; returns an instant after everything so far and before
    /// anything next.
    fn advance(&self) -> DateTime<Utc> {
        let mut org = self.sim.state.org.write();
        let instant = org.advance_clock(Duration::minutes(30));
        org.advance_clock(Duration::minutes(30));
        instant
    }

    fn restore(&self, objects: &[&str], at: DateTime<Utc>) -> RestoreRun {
        let objects: Vec<String> = objects.iter().map(|s| (*s).to_owned()).collect();
        RestoreRun::new(self.lake.clone(), self.client.clone(), &objects, at)
    }

    async fn update(&self, object: &str, records: Vec<J>) {
        let rows: Vec<Record> = records.into_iter().map(|r| r.as_object().cloned().unwrap()).collect();
        let outcomes = self.client.collections_update(object, &rows).await.expect("updates");
        assert!(outcomes.iter().all(|o| o.id().is_some()), "{object}: {outcomes:?}");
    }

    async fn delete(&self, ids: &[&str]) {
        let outcomes = self.client.collections_delete(ids).await.expect("deletes");
        assert!(outcomes.iter().all(|o| o.id().is_some()), "{outcomes:?}");
    }

    fn live(&self, object: &str, id: &str) -> TruthRecord {
        let record = self.truth(object).remove(id).unwrap_or_else(|| panic!("{object} {id} is gone"));
        assert!(!record.deleted, "{object} {id} is in the recycle bin");
        record
    }
}

fn fields(record: &TruthRecord, names: &[&str]) -> BTreeMap<String, J> {
    names.iter().map(|n| ((*n).to_owned(), record.fields.get(*n).cloned().unwrap_or(J::Null))).collect()
}

/// The round trip of the issue: sync; change and delete records (a parent, its children);
/// sync; restore to the earlier instant; sync again: the org's values are the earlier ones,
/// the re-created parent's children point at its new Id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_and_its_children_come_back_as_they_were() {
    let org = Org::start(0).await;
    let accounts =
        org.create("Account", vec![json!({"Name": "Parent", "Rating": "Hot"}), json!({"Name": "Other", "Rating": "Warm"})]).await;
    let (a, b) = (accounts[0].clone(), accounts[1].clone());
    let contacts = org
        .create(
            "Contact",
            vec![
                json!({"LastName": "One", "AccountId": a}),
                json!({"LastName": "Two", "AccountId": a}),
                json!({"LastName": "Three", "AccountId": a, "Email": "three@example.com"}),
            ],
        )
        .await;
    let subscriptions =
        org.create("Subscription__c", vec![json!({"Account__c": a, "Plan__c": "Professional", "Seats__c": 5})]).await;
    org.advance();
    org.sync().await;
    let at = org.advance();
    let before: BTreeMap<String, TruthRecord> = OBJECTS.iter().flat_map(|o| org.truth(o)).collect();

    // What happens afterwards: a rename, a re-parented and renamed child, the parent deleted
    // (its subscription with it, by master-detail) and purged, a child deleted into the
    // recycle bin, a child created.
    org.update("Account", vec![json!({"Id": b, "Name": "Other, renamed"})]).await;
    org.update("Contact", vec![json!({"Id": contacts[0], "LastName": "Uno", "AccountId": b})]).await;
    org.update("Contact", vec![json!({"Id": contacts[2], "Email": null})]).await;
    org.delete(&[&a]).await;
    org.admin(reqwest::Method::POST, "/__admin/recycle-bin/empty", json!({})).await;
    org.delete(&[&contacts[1]]).await;
    let later = org.create("Contact", vec![json!({"LastName": "Later", "AccountId": b})]).await;
    org.advance();
    org.sync().await;

    // A dry run plans the restore and changes nothing.
    let (truth, files) = (org.truth("Contact"), org.lake_files());
    let dry = org.restore(&OBJECTS, at).with_dry_run(5).execute().await.expect("dry run");
    assert_eq!(org.truth("Contact"), truth);
    assert_eq!(org.lake_files(), files, "a dry run writes nothing to the lake");
    let planned: Vec<(String, u64, u64, u64)> =
        dry.objects.iter().map(|o| (o.object.clone(), o.planned.insert, o.planned.undelete, o.planned.update)).collect();
    assert_eq!(
        planned,
        [
            ("Account".to_owned(), 1, 0, 1),
            // Children of a parent not yet re-created (a dry run creates nothing) keep their
            // old lookups in the plan: two renames/lookups, the undeleted child's lookup.
            ("Contact".to_owned(), 0, 1, 2),
            ("Subscription__c".to_owned(), 1, 0, 0),
        ]
    );

    // Named children first: restored parents first all the same.
    let metrics = org.restore(&["Subscription__c", "Contact", "Account"], at).execute().await.expect("restore");
    let order: Vec<&str> = metrics.objects.iter().map(|o| o.object.as_str()).collect();
    assert_eq!(order, ["Account", "Subscription__c", "Contact"], "the parent first, the children as named");
    assert!(
        metrics.objects.iter().all(|o| o.failed == 0 && o.status == Some(tidemark_push::PushStatus::Complete)),
        "{metrics:#?}"
    );
    let account = &metrics.objects[0];
    assert_eq!((account.recreated.len(), account.planned.update), (1, 1), "{account:?}");
    let new_a = account.recreated[0].1.clone();
    assert_eq!(account.recreated[0].0, a);
    assert_ne!(new_a, a);
    let contact = &metrics.objects[2];
    assert_eq!((contact.planned.undelete, contact.planned.insert), (1, 0), "{contact:?}");
    assert_eq!(contact.relinked, 3, "every child's lookup goes to the new parent: {contact:?}");
    assert_eq!(IdMap::load(&org.lake).await.unwrap().resolve(&a), new_a);

    // The org holds the earlier values again, lookups through the new parent Id.
    assert_eq!(fields(&org.live("Account", &new_a), &["Name", "Rating"]), fields(&before[&a], &["Name", "Rating"]));
    assert_eq!(fields(&org.live("Account", &b), &["Name", "Rating"]), fields(&before[&b], &["Name", "Rating"]));
    for c in &contacts {
        let now = org.live("Contact", c);
        assert_eq!(fields(&now, &["LastName", "Email"]), fields(&before[c], &["LastName", "Email"]), "contact {c}");
        assert_eq!(now.fields["AccountId"], json!(new_a), "contact {c} is re-linked");
    }
    let subs: Vec<TruthRecord> = org.truth("Subscription__c").into_values().filter(|r| !r.deleted).collect();
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].fields["Account__c"], json!(new_a));
    assert_eq!(fields(&subs[0], &["Plan__c", "Seats__c"]), fields(&before[&subscriptions[0]], &["Plan__c", "Seats__c"]));
    assert_eq!(org.live("Contact", &later[0]).fields["LastName"], json!("Later"), "records created since are left alone");

    // The next sync captures the restored values; restoring again then has nothing to do.
    org.advance();
    org.sync().await;
    let again = org.restore(&OBJECTS, at).execute().await.expect("second restore");
    for o in &again.objects {
        assert_eq!(o.planned.total(), 0, "{o:?}");
    }
    let session = tidemark_query::QuerySession::open(org.lake.clone(), Default::default()).await.unwrap();
    let rows =
        session.sql(&format!("SELECT count(*) FROM contact WHERE accountid = '{new_a}'")).await.unwrap().collect().await.unwrap();
    let count = rows[0].column(0).as_any().downcast_ref::<tidemark_lake::arrow::array::Int64Array>().unwrap().value(0);
    assert_eq!(count, 3, "the lake sees the children under their re-created parent");
}

/// `--where`, `--ids` and `--fields` narrow a restore; a record Salesforce refuses to re-create
/// lands in the error table and is delivered by a later restore once the conflict is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selections_narrow_a_restore_and_refusals_are_kept_until_delivered() {
    let org = Org::start(0).await;
    let ids = org
        .create(
            "Account",
            vec![
                json!({"Name": "North", "Rating": "Hot", "Industry": "Energy"}),
                json!({"Name": "South", "Rating": "Hot", "Industry": "Banking"}),
                json!({"Name": "East", "Rating": "Hot", "Industry": "Energy"}),
            ],
        )
        .await;
    org.advance();
    org.sync().await;
    let at = org.advance();
    let all: Vec<J> = ids.iter().map(|id| json!({"Id": id, "Name": "Renamed", "Rating": "Cold"})).collect();
    org.update("Account", all).await;
    org.advance();
    org.sync().await;

    // Only Rating, only Energy, only the Ids listed.
    let m = org
        .restore(&["Account"], at)
        .with_where("industry = 'Energy'")
        .with_ids(vec![ids[0].clone(), ids[1].clone()])
        .with_fields(vec!["rating".into()])
        .execute()
        .await
        .unwrap();
    assert_eq!((m.objects[0].selected, m.objects[0].planned.update), (1, 1), "{:?}", m.objects[0]);
    assert_eq!(fields(&org.live("Account", &ids[0]), &["Name", "Rating"]), fields_of(&[("Name", "Renamed"), ("Rating", "Hot")]));
    for id in &ids[1..] {
        assert_eq!(org.live("Account", id).fields["Rating"], json!("Cold"), "{id} was not selected");
    }
    let e = org.restore(&["Account"], at).with_fields(vec!["CreatedDate".into()]).execute().await.unwrap_err();
    assert!(e.to_string().contains("CreatedDate cannot be updated"), "{e}");
    let e = org.restore(&["Account"], at).with_ids(vec!["not-an-id".into()]).execute().await.unwrap_err();
    assert!(e.to_string().contains("not-an-id"), "{e}");
    let e = org.restore(&["Account"], at).with_where("no_such_column = 1").execute().await.unwrap_err();
    assert!(e.to_string().starts_with("restore Account: --where \"no_such_column = 1\""), "{e}");
    let e = org.restore(&["Lead"], at).execute().await.unwrap_err();
    assert!(e.to_string().contains("sync it first"), "{e}");

    // A vendor deleted and purged, its unique code taken meanwhile: the re-creation is refused.
    org.add_vendor();
    let vendors = org.create("Vendor__c", vec![json!({"Name": "Acme", "Code__c": "V-1"})]).await;
    org.advance();
    org.sync_objects(&["Vendor__c"]).await;
    let at = org.advance();
    org.delete(&[&vendors[0]]).await;
    org.admin(reqwest::Method::POST, "/__admin/recycle-bin/empty", json!({})).await;
    let taker = org.create("Vendor__c", vec![json!({"Name": "Usurper", "Code__c": "V-1"})]).await;
    org.advance();
    org.sync_objects(&["Vendor__c"]).await;
    let first = org.restore(&["Vendor__c"], at).with_ids(vendors.clone()).execute().await.unwrap();
    assert_eq!((first.objects[0].failed, first.objects[0].recreated.len()), (1, 0), "{:?}", first.objects[0]);
    let errors = tidemark_push::ErrorTable::at(&org.lake, "restore/vendor__c/errors").rows().await.unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!((errors[0].status_code.as_str(), errors[0].operation.as_str()), ("DUPLICATE_VALUE", "insert"));
    assert_eq!(errors[0].key, format!("[\"{}\"]", vendors[0]));

    org.update("Vendor__c", vec![json!({"Id": taker[0], "Code__c": "V-2"})]).await;
    let second = org.restore(&["Vendor__c"], at).with_ids(vendors.clone()).execute().await.unwrap();
    assert_eq!(second.objects[0].recreated.len(), 1, "{:?}", second.objects[0]);
    let errors = tidemark_push::ErrorTable::at(&org.lake, "restore/vendor__c/errors").rows().await.unwrap();
    assert_eq!(errors[0].delivered_run, Some(second.objects[0].run), "{errors:?}");
    let restored = org.live("Vendor__c", &second.objects[0].recreated[0].1);
    assert_eq!(fields(&restored, &["Name", "Code__c"]), fields_of(&[("Name", "Acme"), ("Code__c", "V-1")]));
}

fn fields_of(pairs: &[(&str, &str)]) -> BTreeMap<String, J> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect()
}

/// A restore that died after its Bulk job re-created a record (before the Id map held the new
/// Id) left the chunk in the journal: the next restore reads the job's results, records the new
/// Id and updates that record instead of creating the record a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_creations_left_in_flight_are_recovered_not_repeated() {
    use tidemark_push::journal::{Journal, WritePath};
    use tidemark_push::send::{Operation, OutRow, Sender};
    let org = Org::start(0).await;
    let ids = org.create("Account", vec![json!({"Name": "Phoenix", "Rating": "Hot"})]).await;
    org.advance();
    org.sync().await;
    let at = org.advance();
    org.delete(&[&ids[0]]).await;
    org.admin(reqwest::Method::POST, "/__admin/recycle-bin/empty", json!({})).await;
    org.advance();
    org.sync().await;

    // What the dead restore sent: the record re-created through a journaled Bulk job, with a
    // value that differs from the instant's so the recovery's follow-up update shows.
    let journal = Journal::at(&org.lake, "restore/account/inflight").unwrap();
    let mut sender = Sender::new(&org.client, &journal, "Account", 1, "dead0000");
    let row = OutRow {
        key: format!("[\"{}\"]", ids[0]),
        hash: Vec::new(),
        record: json!({"Name": "Phoenix", "Rating": "Cold"}).as_object().unwrap().clone(),
    };
    let sent = sender.send(Operation::Insert, WritePath::Bulk, std::slice::from_ref(&row)).await.unwrap();
    let created = sent.outcomes[0].id().expect("created").to_owned();

    let m = org.restore(&["Account"], at).execute().await.expect("restore");
    let o = &m.objects[0];
    assert_eq!((o.recovered, o.planned.insert, o.planned.update), (1, 0, 1), "{o:?}");
    assert!(journal.chunks().await.unwrap().is_empty(), "the journal is cleared once the Id map holds the chunk");
    assert_eq!(IdMap::load(&org.lake).await.unwrap().resolve(&ids[0]), created);
    assert_eq!(org.live_by("Account", "Name", "Phoenix").values().map(Vec::len).sum::<usize>(), 1, "created once");
    assert_eq!(org.live("Account", &created).fields["Rating"], json!("Hot"));
}
