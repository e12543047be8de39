//! A simulated org, a lake in a temporary folder, and the org's truth to check pushes against.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::{Map, Value as J};
use tidemark_core::push::PushConfig;
use tidemark_lake::LakeLocation;
use tidemark_push::{PushMetrics, PushRun};
use tidemark_salesforce::{AuthConfig, ClientConfig, RetryPolicy, SalesforceClient};
use tidemark_sfsim::truth::record_fields_json;
use tidemark_sfsim::{SimConfig, SimHandle, SimServer};

pub struct Org {
    pub sim: SimHandle,
    pub client: Arc<SalesforceClient>,
    pub lake: LakeLocation,
    pub dir: tempfile::TempDir,
}

/// A record as the org holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct TruthRecord {
    pub id: String,
    pub deleted: bool,
    pub fields: Map<String, J>,
}

impl Org {
    pub async fn start(accounts: u64) -> Org {
        Org::start_with(accounts, ClientConfig { retry: RetryPolicy::immediate(4), ..ClientConfig::default() }).await
    }

    pub async fn start_with(accounts: u64, client: ClientConfig) -> Org {
        let sim = SimServer::new(SimConfig { accounts, seed: 7, ..SimConfig::default() })
            .start(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("simulator starts");
        let client = connect(&sim, client).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let lake = LakeLocation::parse(dir.path().join("lake").to_str().unwrap()).unwrap();
        Org { sim, client, lake, dir }
    }

    /// Every stored record of `object` (live and in the recycle bin), by Id.
    pub fn truth(&self, object: &str) -> BTreeMap<String, TruthRecord> {
        let org = self.sim.state.org.read();
        let table = org.table(object).expect("object exists");
        table
            .rows()
            .iter()
            .map(|row| {
                let id = table.id_of(row).to_string();
                let J::Object(fields) = record_fields_json(&table.def, row) else { unreachable!() };
                (id.clone(), TruthRecord { id, deleted: table.is_deleted(row), fields })
            })
            .collect()
    }

    /// Live records of `object` whose `field` is a string starting with `prefix`, by that value.
    pub fn live_by(&self, object: &str, field: &str, prefix: &str) -> BTreeMap<String, Vec<TruthRecord>> {
        let mut out: BTreeMap<String, Vec<TruthRecord>> = BTreeMap::new();
        for r in self.truth(object).into_values().filter(|r| !r.deleted) {
            if let Some(v) = r.fields.get(field).and_then(J::as_str).filter(|v| v.starts_with(prefix)) {
                out.entry(v.to_owned()).or_default().push(r.clone());
            }
        }
        out
    }

    pub async fn admin(&self, method: reqwest::Method, path: &str, body: J) -> J {
        let response = reqwest::Client::new()
            .request(method, format!("{}{path}", self.sim.base_url()))
            .json(&body)
            .send()
            .await
            .expect("admin request");
        assert!(response.status().is_success(), "{path}: {}", response.status());
        response.json().await.expect("admin JSON")
    }

    pub async fn faults(&self, faults: J) {
        self.admin(reqwest::Method::PUT, "/__admin/faults", faults).await;
    }

    pub fn run(&self, flow: &str, config: &PushConfig) -> PushRun {
        PushRun::new(self.lake.clone(), self.client.clone(), flow, config.clone())
    }

    pub async fn push(&self, flow: &str, config: &PushConfig) -> PushMetrics {
        self.run(flow, config).execute().await.unwrap_or_else(|e| panic!("push {flow}: {e:#}"))
    }

    /// Every file under the lake, with its size (to prove a dry run wrote nothing).
    pub fn lake_files(&self) -> BTreeMap<String, u64> {
        let root = self.dir.path().join("lake");
        let mut out = BTreeMap::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                    out.insert(path.strip_prefix(&root).unwrap().display().to_string(), size);
                }
            }
        }
        out
    }
}

/// A new client (as a new process would have: no usage remembered).
pub async fn connect(sim: &SimHandle, config: ClientConfig) -> Arc<SalesforceClient> {
    let auth = AuthConfig::ClientCredentials {
        login_url: sim.base_url().to_owned(),
        client_id: sim.credentials.client_id.clone(),
        client_secret: sim.credentials.client_secret.clone().into(),
    };
    Arc::new(SalesforceClient::connect(auth, config).await.expect("client connects"))
}

pub fn flow(yaml: &str) -> PushConfig {
    let config: PushConfig = serde_yaml_ng::from_str(yaml).expect("flow YAML");
    config.validate("f").expect("valid flow");
    config
}

impl Org {
    /// Adds `Vendor__c` (`tidemark_sfsim::catalog::vendor`).
    pub fn add_vendor(&self) {
        self.sim.state.org.write().add_object(tidemark_sfsim::catalog::vendor());
    }

    /// Creates records directly (set-up, not under test).
    pub async fn create(&self, object: &str, records: Vec<J>) -> Vec<String> {
        let rows: Vec<Map<String, J>> = records.into_iter().map(|r| r.as_object().cloned().unwrap()).collect();
        let outcomes = self.client.collections_create(object, &rows).await.expect("set-up records are created");
        outcomes.iter().map(|o| o.id().expect("created").to_owned()).collect()
    }

    /// The flow's open errors: (key, status code) sorted.
    pub async fn open_errors(&self, flow: &str) -> Vec<(String, String)> {
        let rows = tidemark_push::ErrorTable::new(&self.lake, flow).rows().await.expect("error table reads");
        let mut out: Vec<(String, String)> = rows.into_iter().filter(|e| e.is_open()).map(|e| (e.key, e.status_code)).collect();
        out.sort();
        out
    }
}
