//! The generated org: determinism, ids, history, proportions, catalog coverage.

use std::collections::HashMap;

use tidemark_core::{FieldType, ManualClock, SfId};
use tidemark_sfsim::generate::{GenerateSpec, expected_counts, generate};
use tidemark_sfsim::org::{Org, OrgClock};
use tidemark_sfsim::truth::{TruthDump, TruthFilter};
use tidemark_sfsim::value::ValueRef;

const USERNAME: &str = "integration@tidemark.example";

fn org(seed: u64, accounts: u64) -> Org {
    let clock = OrgClock::Manual(ManualClock::new(ManualClock::default_start()));
    let mut org = Org::new(tidemark_sfsim::catalog::standard_objects(), clock);
    generate(&mut org, &GenerateSpec { seed, accounts, username: USERNAME.into() });
    org
}

fn dump(org: &Org) -> Vec<u8> {
    let mut out = Vec::new();
    TruthDump::snapshot(org, &TruthFilter::default()).write_to(&mut out).expect("dump writes");
    out
}

#[test]
fn same_seed_same_org_and_different_seed_different_org() {
    let a = dump(&org(7, 60));
    assert_eq!(a, dump(&org(7, 60)));
    assert_ne!(a, dump(&org(8, 60)));
    assert!(!a.is_empty());
}

#[test]
fn counts_follow_the_documented_ratios() {
    for accounts in [1, 37, 200] {
        let org = org(1, accounts);
        for (object, n) in expected_counts(accounts) {
            assert_eq!(org.table(object).expect("object").len() as u64, n, "{object} for {accounts} accounts");
        }
    }
}

#[test]
fn ids_are_valid_prefixed_and_references_resolve() {
    let org = org(2, 120);
    for table in org.tables() {
        for row in table.rows() {
            let raw = row.get(table.def.slot("Id")).as_str().expect("id");
            let id = SfId::parse(raw).expect("valid 18-char id");
            assert_eq!(id.as_str(), raw, "stored in canonical 18-char form");
            assert_eq!(id.key_prefix(), table.def.key_prefix);
            for f in table.def.fields.iter().filter(|f| f.field_type == FieldType::Reference) {
                let Some(slot) = f.slot else { continue };
                let Some(target) = row.get(slot).as_str() else { continue };
                let target = SfId::parse(target).expect("reference is an id");
                let (t, _) = org.find(&target).unwrap_or_else(|| panic!("{}.{} points nowhere", table.def.name, f.name));
                assert!(f.reference_to.contains(&t.def.name), "{}.{} → {}", table.def.name, f.name, t.def.name);
            }
        }
    }
}

#[test]
fn history_is_ordered_and_children_follow_parents() {
    let org = org(3, 120);
    let now = org.now_millis();
    let mut created: HashMap<SfId, i64> = HashMap::new();
    for table in org.tables() {
        let d = &table.def;
        for row in table.rows() {
            let ts = |name: &str| row.get(d.slot(name)).as_datetime_millis().expect("audit datetime");
            let (c, m, s) = (ts("CreatedDate"), ts("LastModifiedDate"), ts("SystemModstamp"));
            assert!(c <= m && m == s && s <= now, "{} {c} {m} {s} {now}", d.name);
            created.insert(table.id_of(row), c);
        }
    }
    let contacts = org.table("Contact").expect("Contact");
    let account_slot = contacts.def.slot("AccountId");
    for row in contacts.rows() {
        let account = SfId::parse(row.get(account_slot).as_str().expect("AccountId")).expect("id");
        let c = row.get(contacts.def.slot("CreatedDate")).as_datetime_millis().expect("created");
        assert!(created[&account] <= c, "contact created after its account");
    }
}

#[test]
fn the_integration_user_is_a_real_user_and_owns_the_writes() {
    let org = org(4, 10);
    let (table, row) = org.find(&org.integration_user).expect("integration user record");
    assert_eq!(table.def.name, "User");
    assert_eq!(row_str(row, table.def.slot("CreatedById")), org.integration_user.as_str());
    assert_eq!(row.get(table.def.slot("Username")), ValueRef::Str(USERNAME));
    let accounts = org.table("Account").expect("Account");
    let by = row_str(&accounts.rows()[0], accounts.def.slot("CreatedById"));
    assert_eq!(by, org.integration_user.as_str());
}

fn row_str(row: &tidemark_sfsim::row::Row, slot: u16) -> String {
    row.get(slot).as_str().unwrap_or_default().to_owned()
}

#[test]
fn formulas_read_parents_and_products() {
    let org = org(5, 30);
    let contacts = org.table("Contact").expect("Contact");
    let row = &contacts.rows()[0];
    let account_id = SfId::parse(&row_str(row, contacts.def.slot("AccountId"))).expect("id");
    let (accounts, account) = org.find(&account_id).expect("account");
    let name = row_str(account, accounts.def.slot("Name"));
    let formula = org.field_value_by_name(contacts, row, "Account_Name__c").expect("formula field");
    assert_eq!(formula.as_ref(), ValueRef::Str(&name));
    let opps = org.table("Opportunity").expect("Opportunity");
    let opp = &opps.rows()[0];
    let amount = opp.get(opps.def.slot("Amount")).as_f64().expect("amount");
    let probability = opp.get(opps.def.slot("Probability")).as_f64().expect("probability");
    let expected = org.field_value_by_name(opps, opp, "ExpectedRevenue").expect("formula");
    assert_eq!(expected.as_ref().as_f64(), Some(amount * probability / 100.0));
}

#[test]
fn catalog_has_every_field_type_and_real_describe_keys() {
    let catalog = tidemark_sfsim::catalog::standard_objects();
    for ty in FieldType::ALL {
        // No object of the catalog has a `long` field: real orgs expose it only on setup objects.
        if ty == FieldType::Long {
            continue;
        }
        assert!(catalog.iter().any(|o| o.fields.iter().any(|f| f.field_type == ty)), "{ty}");
    }
    for o in &catalog {
        let describe = o.describe("66.0", Vec::new());
        for f in describe["fields"].as_array().expect("fields") {
            assert_eq!(f.as_object().expect("field").len(), 57, "{}.{}", o.name, f["name"]);
        }
    }
}

#[test]
fn generation_is_quick_at_test_scale() {
    // The default scale every integration test starts with (SimConfig::default().accounts).
    let start = std::time::Instant::now();
    let org = org(42, tidemark_sfsim::SimConfig::default().accounts);
    assert!(org.tables().iter().map(|t| t.len()).sum::<usize>() > 400);
    assert!(start.elapsed() < std::time::Duration::from_secs(5), "took {:?}", start.elapsed());
}

/// Every stored datetime of every generated record, in milliseconds.
fn generated_datetimes(millisecond_stamps: bool) -> Vec<i64> {
    // A clock inside a second, so that nothing is whole-second by accident.
    let start = ManualClock::default_start() + chrono::Duration::milliseconds(567);
    let mut org = Org::new(tidemark_sfsim::catalog::standard_objects(), OrgClock::Manual(ManualClock::new(start)));
    org.millisecond_stamps = millisecond_stamps;
    generate(&mut org, &GenerateSpec { seed: 6, accounts: 40, username: USERNAME.into() });
    let mut out = Vec::new();
    for table in org.tables() {
        for f in table.def.fields.iter().filter(|f| f.field_type == FieldType::Datetime) {
            let Some(slot) = f.slot else { continue };
            out.extend(table.rows().iter().filter_map(|r| r.get(slot).as_datetime_millis()));
        }
    }
    assert!(out.len() > 200, "audit fields of every record at least");
    out
}

#[test]
fn generated_datetimes_are_whole_seconds_unless_the_org_keeps_milliseconds() {
    let whole = generated_datetimes(false);
    assert!(whole.iter().all(|t| t % 1000 == 0), "{:?}", whole.iter().find(|t| *t % 1000 != 0));
    let precise = generated_datetimes(true);
    assert!(precise.iter().filter(|t| *t % 1000 != 0).count() > precise.len() / 2);
}
