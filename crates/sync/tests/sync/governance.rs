//! Field policies at ingestion: hashed, masked, nulled and excluded fields in every version the
//! syncs write, the oracle's exactness kept under them, no raw value anywhere under the lake,
//! a policy changed later applied forward, and a foreign hash key refused.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::common::Harness;
use serde_json::json;
use tidemark_core::governance::{Governance, GovernanceConfig, POLICY_METADATA};
use tidemark_lake::arrow::array::{Array, AsArray};
use tidemark_lake::policy::unsettled_columns;
use tidemark_lake::read::utf8;
use tidemark_lake::{HistoryTable, Ledger, RunStatus};

const KEY: &str = "the lake's hash key, 32 characters";

fn governance(key: &str, extra: &str) -> Arc<Governance> {
    let yaml = format!(
        "hash_key: {key}\npolicies:\n  \"*\":\n    \"*Email\": hash\n    \"*Phone\": mask:last4\n    Fax: mask:last4\n  Task:\n    Subject: hash\n  Contact:\n    Name: hash\n    LastName: hash\n    FirstName: mask:initial\n    AssistantName: hash\n    Birthdate: null\n    Tax_Id__c: exclude\n{extra}"
    );
    let config: GovernanceConfig = tidemark_core::config::load_str(&yaml, &|_| None).expect("valid section");
    Arc::new(Governance::compile(&config).expect("compiles"))
}

/// Every Contact value the policies protect, as the org held it at this moment.
fn raw_values(h: &Harness, into: &mut BTreeSet<String>) {
    let org = h.sim.state.org.read();
    let table = org.table("Contact").expect("Contact");
    for row in table.rows() {
        for field in ["Email", "Phone", "MobilePhone", "HomePhone", "Fax", "Name", "AssistantName", "Tax_Id__c", "Birthdate"] {
            if let Some(text) = org.field_json(table, row, table.def.field(field).expect("field")).as_str() {
                // Short values (a two-letter name) could occur by chance in other data.
                if text.len() >= 6 {
                    into.insert(text.to_owned());
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_hold_in_every_version_and_no_raw_value_reaches_the_lake() {
    let mut h = Harness::start(40, 11).await;
    // Free text names people too: the simulator's task subjects read "Follow up with <Name>",
    // so a policy that protects names covers them (without it, this test finds them).
    h.governance = governance(KEY, "");
    let mut raw = BTreeSet::new();
    raw_values(&h, &mut raw);
    let first = h.sync().await;
    assert_eq!(first.status(), RunStatus::Complete, "{first:#?}");
    h.check().await;

    h.advance(chrono::Duration::minutes(10));
    h.change(json!({"updates": {"share": 0.3}, "creates": 5, "deletes": 3}), 1);
    raw_values(&h, &mut raw);
    let second = h.sync().await;
    assert_eq!(second.status(), RunStatus::Complete, "{second:#?}");
    // The oracle under the policies: every version exactly once (the overlap re-read is
    // recognised under them), the live state equal to the org's values hashed and masked.
    h.check().await;
    assert!(raw.len() > 100, "the org holds personal values to look for: {}", raw.len());

    let contact = HistoryTable::open(&h.lake, "Contact").await.unwrap().unwrap();
    let schema = contact.schema().unwrap();
    let token = |column: &str| schema.field_with_name(column).unwrap().metadata().get(POLICY_METADATA).cloned();
    let key_id = h.governance.key().unwrap().id().to_owned();
    assert_eq!(token("Email"), Some(format!("hash:{key_id}")));
    assert_eq!(token("MobilePhone").as_deref(), Some("mask:last4"));
    assert_eq!(token("Birthdate").as_deref(), Some("null"));
    assert_eq!(token("Title"), None);
    assert!(schema.field_with_name("Tax_Id__c").is_err(), "an excluded field is never a column");
    // Boolean `HasOptedOutOfEmail` matches `*Email` but is not text: the glob skips it.
    assert_eq!(token("HasOptedOutOfEmail"), None);

    let ctx = contact.session().await.unwrap();
    let sql = "SELECT \"Email\", \"Phone\", \"FirstName\", \"Birthdate\" FROM history";
    let mut versions = 0;
    for b in contact.collect(&ctx, sql).await.unwrap() {
        versions += b.num_rows();
        let email = utf8(b.column(0)).unwrap();
        let phone = utf8(b.column(1)).unwrap();
        let first_name = utf8(b.column(2)).unwrap();
        assert_eq!(b.column(3).null_count(), b.num_rows(), "Birthdate is null in every version");
        for r in 0..b.num_rows() {
            if email.is_valid(r) {
                let e = email.value(r);
                assert!(e.len() == 64 && e.bytes().all(|c| c.is_ascii_hexdigit()), "email not hashed: {e}");
            }
            if phone.is_valid(r) {
                let p = phone.value(r);
                assert!(p.chars().rev().skip(4).all(|c| c == '*'), "phone not masked: {p}");
            }
            if first_name.is_valid(r) {
                assert!(first_name.value(r).chars().count() == 2 && first_name.value(r).ends_with('.'));
            }
        }
    }
    assert!(versions > 40, "{versions} Contact versions");

    let leaks = crate::common::find_anywhere(h.dir.path(), &raw);
    assert!(leaks.is_empty(), "raw values in the lake: {:?}", &leaks[..leaks.len().min(5)]);

    // A policy added later applies forward: Title is hashed from now on, the change is a schema
    // event, and the older files are reported as not yet under it.
    let mut titles = BTreeSet::new();
    {
        let org = h.sim.state.org.read();
        let t = org.table("Contact").unwrap();
        titles.extend(
            t.rows().iter().filter_map(|r| org.field_json(t, r, t.def.field("Title").unwrap()).as_str().map(str::to_owned)),
        );
    }
    h.governance = governance(KEY, "    Title: hash\n");
    h.advance(chrono::Duration::minutes(10));
    h.change(json!({"updates": {"share": 0.2}}), 2);
    let third = h.sync().await;
    assert_eq!(third.status(), RunStatus::Complete, "{third:#?}");
    let contact = HistoryTable::open(&h.lake, "Contact").await.unwrap().unwrap();
    let schema = contact.schema().unwrap();
    assert_eq!(schema.field_with_name("Title").unwrap().metadata().get(POLICY_METADATA), Some(&format!("hash:{key_id}")));
    let events = Ledger::new(h.lake.clone()).schema_events().await.unwrap();
    let changed: Vec<_> = events.iter().filter(|e| e.kind == "policy_changed").collect();
    assert_eq!(changed.len(), 1, "{changed:#?}");
    assert_eq!((changed[0].object.as_str(), changed[0].column.as_str()), ("Contact", "Title"));
    assert_eq!(changed[0].detail, format!("none → hash:{key_id}"));
    let unsettled = unsettled_columns(contact.delta(), &schema, "Contact").await.unwrap();
    assert_eq!(unsettled, vec!["Title".to_owned()]);
    // This run's versions carry hashes; older ones keep their titles until `govern apply`.
    let ctx = contact.session().await.unwrap();
    let sql = format!("SELECT \"Title\", \"_run_id\" = '{}' FROM history WHERE \"Title\" IS NOT NULL", third.run_id);
    let (mut hashed, mut older) = (0, 0);
    for b in contact.collect(&ctx, &sql).await.unwrap() {
        let (title, now) = (utf8(b.column(0)).unwrap(), b.column(1).as_boolean());
        for r in 0..b.num_rows() {
            if now.value(r) {
                assert!(!titles.contains(title.value(r)) && title.value(r).len() == 64, "{}", title.value(r));
                hashed += 1;
            } else {
                older += 1;
            }
        }
    }
    assert!(hashed > 0 && older > 0, "{hashed} hashed, {older} older titles");

    // Another key would split every hashed column's history: refused, naming the setting.
    h.governance = governance("a different key, also 32 characters", "    Title: hash\n");
    let refused = h.sync_builder().with_objects(vec!["Contact".into()]).await.expect("the run itself completes");
    let contact_report = refused.objects.iter().find(|o| o.object == "Contact").unwrap();
    assert_eq!(contact_report.status, RunStatus::Failed, "{contact_report:#?}");
    let message = contact_report.message.clone().unwrap_or_default();
    assert!(message.contains("governance.hash_key") && message.contains(&key_id), "{message}");
}
