//! A source-time dimension over synced Salesforce history: `dim_contact` from Contact joined
//! with its Account gets a new row at the instant either record changed, deletes end a row,
//! undeletes start a new one. Checked after every load against an oracle built from the
//! simulator's records at each sync point (an independent, record-by-record computation).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;

use crate::common::{Row, check_invariants, model, to_rows};
use tidemark_lake::LakeLocation;
use tidemark_models::ModelLoad;
use tidemark_salesforce::{AuthConfig, ClientConfig, RetryPolicy, SalesforceClient};
use tidemark_sfsim::value::Value;
use tidemark_sfsim::{SimConfig, SimHandle, SimServer};
use tidemark_sync::{Sync, SyncSettings};

const MODEL: &str = r#"dating: source_time
key: [Id]
sources:
  - name: contact
    object: Contact
    columns: [FirstName, LastName, Email]
  - name: account
    object: Account
    join: { AccountId: Id }
    columns: [Name, Industry]
"#;

const CONTACT: [&str; 3] = ["FirstName", "LastName", "Email"];
const ACCOUNT: [&str; 2] = ["Name", "Industry"];

/// One observed version of a record: (instant µs, deleted, values, AccountId).
type Version = (i64, bool, Vec<Option<String>>, Option<String>);

struct World {
    sim: SimHandle,
    client: Arc<SalesforceClient>,
    lake: LakeLocation,
    _dir: tempfile::TempDir,
    /// Per object, per Id: the versions seen at sync points, in order.
    seen: HashMap<&'static str, BTreeMap<String, Vec<Version>>>,
}

impl World {
    async fn start() -> World {
        let sim = SimServer::new(SimConfig { accounts: 12, seed: 5, ..SimConfig::default() })
            .start(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let auth = AuthConfig::ClientCredentials {
            login_url: sim.base_url().to_owned(),
            client_id: sim.credentials.client_id.clone(),
            client_secret: sim.credentials.client_secret.clone().into(),
        };
        let client = Arc::new(
            SalesforceClient::connect(auth, ClientConfig { retry: RetryPolicy::immediate(8), ..ClientConfig::default() })
                .await
                .unwrap(),
        );
        let dir = tempfile::tempdir().unwrap();
        let lake = LakeLocation::parse(dir.path().join("lake").to_str().unwrap()).unwrap();
        World { sim, client, lake, _dir: dir, seen: HashMap::new() }
    }

    async fn sync(&mut self) {
        let settings = SyncSettings { reconcile_every: std::time::Duration::ZERO, ..SyncSettings::default() };
        Sync::new(self.client.clone(), self.lake.clone(), settings)
            .with_objects(vec!["Account".into(), "Contact".into()])
            .await
            .unwrap();
        let org = self.sim.state.org.read();
        for (object, fields) in [("Contact", &CONTACT[..]), ("Account", &ACCOUNT[..])] {
            let table = org.table(object).unwrap();
            let stamp = table.def.field("SystemModstamp").unwrap();
            let deleted = table.def.field("IsDeleted").unwrap();
            for row in table.rows() {
                let text = |name: &str| match org.field_json(table, row, table.def.field(name).unwrap()) {
                    serde_json::Value::Null => None,
                    serde_json::Value::String(s) => Some(s),
                    other => Some(other.to_string()),
                };
                let at = org.field_json(table, row, stamp);
                let at =
                    chrono::DateTime::parse_from_str(at.as_str().unwrap(), "%Y-%m-%dT%H:%M:%S%.3f%z").unwrap().timestamp_micros();
                let version: Version = (
                    at,
                    org.field_json(table, row, deleted).as_bool().unwrap(),
                    fields.iter().map(|f| text(f)).collect(),
                    if object == "Contact" { text("AccountId") } else { None },
                );
                let versions = self.seen.entry(object).or_default().entry(table.id_of(row).to_string()).or_default();
                if versions.last() != Some(&version) {
                    versions.push(version);
                }
            }
        }
    }

    fn with_org<T>(&self, f: impl FnOnce(&mut tidemark_sfsim::org::Org) -> T) -> T {
        f(&mut self.sim.state.org.write())
    }

    fn update(&self, object: &str, id: &str, field: &str, value: &str) {
        self.with_org(|org| {
            let slot = org.table(object).unwrap().def.slot(field);
            org.update_record(&id.parse().unwrap(), vec![(slot, Value::str(value))]).unwrap();
        });
    }

    fn ids(&self, object: &str) -> Vec<String> {
        self.with_org(|org| {
            let table = org.table(object).unwrap();
            let mut ids: Vec<String> = table.rows().iter().map(|r| table.id_of(r).to_string()).collect();
            ids.sort();
            ids
        })
    }

    fn advance(&self, seconds: i64) {
        self.with_org(|org| org.advance_clock(chrono::Duration::seconds(seconds)));
    }

    /// The dimension the oracle expects: (Id, values…, from, to, current) as text.
    fn expected(&self) -> Vec<Vec<String>> {
        let empty = BTreeMap::new();
        let accounts = self.seen.get("Account").unwrap_or(&empty);
        let mut out = Vec::new();
        for (id, versions) in self.seen.get("Contact").unwrap_or(&empty) {
            // Instants: each contact version, and each version of the account it points at
            // while it points at it.
            let mut instants: Vec<i64> = versions.iter().map(|v| v.0).collect();
            for (k, v) in versions.iter().enumerate() {
                let end = versions.get(k + 1).map_or(i64::MAX, |n| n.0);
                if let Some(account) = v.3.as_ref().and_then(|a| accounts.get(a)) {
                    instants.extend(account.iter().map(|a| a.0).filter(|t| *t > v.0 && *t < end));
                }
            }
            instants.sort();
            instants.dedup();
            let state_at = |t: i64| -> Option<Vec<Option<String>>> {
                let v = versions.iter().rev().find(|v| v.0 <= t)?;
                if v.1 {
                    return None;
                }
                let account =
                    v.3.as_ref().and_then(|a| accounts.get(a)).and_then(|a| a.iter().rev().find(|x| x.0 <= t)).filter(|x| !x.1);
                let mut values = v.2.clone();
                values.extend(match account {
                    Some(a) => a.2.clone(),
                    None => vec![None; ACCOUNT.len()],
                });
                Some(values)
            };
            let mut rows: Vec<(i64, Vec<Option<String>>)> = Vec::new();
            let mut ends: Vec<Option<i64>> = Vec::new();
            let mut open: Option<Vec<Option<String>>> = None;
            for t in instants {
                let state = state_at(t);
                if state == open {
                    continue;
                }
                if open.is_some() {
                    *ends.last_mut().unwrap() = Some(t);
                }
                if let Some(s) = &state {
                    rows.push((t, s.clone()));
                    ends.push(None);
                }
                open = state;
            }
            for ((from, values), to) in rows.into_iter().zip(ends) {
                let mut row = vec![id.clone()];
                row.extend(values.into_iter().map(|v| v.unwrap_or_else(|| "NULL".into())));
                let ts =
                    |us: i64| chrono::DateTime::from_timestamp_micros(us).unwrap().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
                row.push(ts(from));
                row.push(to.map_or("9999-12-31T00:00:00.000000Z".into(), ts));
                row.push(to.is_none().to_string());
                out.push(row);
            }
        }
        out
    }
}

async fn dimension(lake: &LakeLocation) -> Vec<Row> {
    let table = tidemark_lake::history::open_table(lake, lake.mart_table_url("dim_contact")).await.unwrap().unwrap();
    let ctx = tidemark_lake::datafusion::prelude::SessionContext::new();
    table.update_datafusion_session(&ctx.state()).unwrap();
    let provider = table.table_provider().await.unwrap();
    to_rows(&ctx.read_table(provider).unwrap().collect().await.unwrap())
}

async fn load_and_check(w: &World, date: &str) -> tidemark_models::LoadMetrics {
    let m = model(MODEL);
    let metrics = ModelLoad::new(w.lake.clone(), "dim_contact", m.clone())
        .with_run_date(chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap())
        .run()
        .await
        .unwrap();
    let rows = dimension(&w.lake).await;
    check_invariants(&rows, &m, "dim_contact");
    let columns = ["Id", "FirstName", "LastName", "Email", "Name", "Industry", "valid_from", "valid_to", "is_current"];
    let ts = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
            .unwrap_or_else(|_| s.to_owned())
    };
    let mut got: Vec<Vec<String>> = rows
        .iter()
        .map(|r| columns.iter().map(|c| if c.starts_with("valid") { ts(&r[*c]) } else { r[*c].clone() }).collect())
        .collect();
    got.sort();
    let mut want = w.expected();
    want.sort();
    assert_eq!(got.len(), want.len(), "row count");
    assert_eq!(got, want);
    metrics
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dim_contact_follows_contact_and_account_history_exactly() {
    let mut w = World::start().await;
    w.sync().await;
    let first = load_and_check(&w, "2026-01-01").await;
    assert!(first.counts.inserted > 0);

    // Nothing synced since: nothing to do.
    let idle = ModelLoad::new(w.lake.clone(), "dim_contact", model(MODEL)).run().await.unwrap();
    assert_eq!(idle.load, None);

    let contacts = w.ids("Contact");
    let accounts = w.ids("Account");
    // Contact changes, an Account change (every contact of it gets a row at that instant),
    // a change to a column the model does not track (no new row).
    w.advance(60);
    w.update("Contact", &contacts[0], "Email", "first@example.com");
    w.update("Contact", &contacts[1], "LastName", "Renamed");
    w.advance(5);
    w.update("Account", &accounts[0], "Industry", "Shipping");
    w.update("Contact", &contacts[2], "Title", "Untracked change");
    w.sync().await;
    load_and_check(&w, "2026-01-02").await;

    // A contact moves to another account; the old account changes after (no new row for it).
    w.advance(60);
    let moved = contacts[3].clone();
    w.with_org(|org| {
        let slot = org.table("Contact").unwrap().def.slot("AccountId");
        org.update_record(&moved.parse().unwrap(), vec![(slot, Value::str(accounts[1].clone()))]).unwrap();
    });
    w.advance(5);
    w.update("Account", &accounts[1], "Name", "New Name Ltd");
    w.sync().await;
    load_and_check(&w, "2026-01-03").await;

    // Delete, then undelete a contact: its row ends, and a new row starts.
    w.advance(60);
    let gone = contacts[4].clone();
    w.with_org(|org| org.soft_delete(&gone.parse().unwrap()).unwrap());
    w.sync().await;
    load_and_check(&w, "2026-01-04").await;
    w.advance(60);
    w.with_org(|org| org.undelete(&gone.parse().unwrap()).unwrap());
    w.update("Contact", &contacts[0], "Email", "second@example.com");
    w.sync().await;
    let last = load_and_check(&w, "2026-01-05").await;
    assert!(last.counts.unchanged > 0, "existing rows keep their surrogate keys: {last:?}");
    let rows = dimension(&w.lake).await;
    let mut gone_rows: Vec<&Row> = rows.iter().filter(|r| r["Id"] == gone).collect();
    gone_rows.sort_by(|a, b| a["valid_from"].cmp(&b["valid_from"]));
    let [.., before, after] = gone_rows.as_slice() else { panic!("a row before the delete and one after the undelete") };
    assert_eq!((before["is_current"].as_str(), after["is_current"].as_str()), ("false", "true"));
    assert!(before["valid_to"] < after["valid_from"], "the deleted time is a gap: {before:?} {after:?}");
}

/// A load-date dimension over an object's live state: each load takes the live records as a
/// full extract (a record deleted since is deleted from the dimension).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_date_model_over_live_accounts() {
    const LIVE_MODEL: &str = "key: [Id]\nsources:\n  - { name: account, object: Account, columns: [Name, Industry] }\n";
    let mut w = World::start().await;
    w.sync().await;
    let lake = w.lake.clone();
    let run = |date: &str| {
        ModelLoad::new(lake.clone(), "dim_account", model(LIVE_MODEL))
            .with_run_date(chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap())
            .run()
    };
    let accounts = w.ids("Account");
    let first = run("2026-01-01").await.unwrap();
    assert_eq!(first.counts.inserted as usize, accounts.len());

    w.advance(60);
    w.update("Account", &accounts[0], "Industry", "Shipping");
    w.update("Account", &accounts[1], "Description", "not a column of the model");
    w.with_org(|org| org.soft_delete(&accounts[2].parse().unwrap()).unwrap());
    w.sync().await;
    let second = run("2026-01-02").await.unwrap();
    assert_eq!((second.counts.updated, second.counts.deleted, second.counts.inserted), (1, 1, 0), "{second:?}");
    assert_eq!(run("2026-01-03").await.unwrap().load, None, "the object did not change: nothing to do");

    let table = tidemark_lake::history::open_table(&w.lake, w.lake.mart_table_url("dim_account")).await.unwrap().unwrap();
    let ctx = tidemark_lake::datafusion::prelude::SessionContext::new();
    table.update_datafusion_session(&ctx.state()).unwrap();
    let rows = to_rows(&ctx.read_table(table.table_provider().await.unwrap()).unwrap().collect().await.unwrap());
    let m = model(LIVE_MODEL);
    check_invariants(&rows, &m, "dim_account");
    let of = |id: &str| -> Vec<(String, String, String)> {
        let mut v: Vec<_> = rows
            .iter()
            .filter(|r| r["Id"] == id)
            .map(|r| (r["Industry"].clone(), r["valid_from"].clone(), r["valid_to"].clone()))
            .collect();
        v.sort();
        v
    };
    let shipping = of(&accounts[0]);
    assert_eq!(shipping.len(), 2);
    assert!(shipping.iter().any(|r| r.0 == "Shipping" && r.1 == "2026-01-02" && r.2 == "9999-12-31"), "{shipping:?}");
    assert_eq!(of(&accounts[1]).len(), 1, "a change outside the model's columns makes no row");
    assert_eq!(
        of(&accounts[2]),
        [(of(&accounts[2])[0].0.clone(), "2026-01-01".into(), "2026-01-01".into())],
        "deleted: ends the day before"
    );
}
