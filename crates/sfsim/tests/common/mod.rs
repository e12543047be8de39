//! Shared set-up for the simulator's integration tests: an in-process org on an ephemeral port
//! and an HTTP client with a valid session.
#![allow(dead_code)]

use std::net::SocketAddr;

use tidemark_sfsim::{SimConfig, SimHandle, SimServer};

pub struct TestOrg {
    pub sim: SimHandle,
    pub http: reqwest::Client,
    pub token: String,
}

impl TestOrg {
    pub async fn start() -> TestOrg {
        Self::start_with(SimConfig::default()).await
    }

    /// An org with metadata, users and campaigns but no generated Accounts or their children:
    /// for tests that seed exactly the records they reason about.
    pub async fn start_empty() -> TestOrg {
        Self::start_with(SimConfig { accounts: 0, ..SimConfig::default() }).await
    }

    pub async fn start_with(config: SimConfig) -> TestOrg {
        let sim = SimServer::new(config).start(SocketAddr::from(([127, 0, 0, 1], 0))).await.expect("simulator starts");
        let token = sim.issue_token();
        TestOrg { sim, http: reqwest::Client::new(), token }
    }

    /// Moves the org clock forward and logs in again (sessions age on the org clock too).
    pub fn advance_clock(&mut self, by: chrono::Duration) {
        self.sim.state.org.write().advance_clock(by);
        self.token = self.sim.issue_token();
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sim.base_url())
    }

    /// `path` under `/services/data/v66.0`.
    pub fn data_url(&self, path: &str) -> String {
        self.url(&format!("/services/data/v66.0{path}"))
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(self.data_url(path)).bearer_auth(&self.token)
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(self.data_url(path)).bearer_auth(&self.token)
    }

    pub fn patch(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.patch(self.data_url(path)).bearer_auth(&self.token)
    }

    pub fn delete(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.delete(self.data_url(path)).bearer_auth(&self.token)
    }

    pub fn put(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.put(self.data_url(path)).bearer_auth(&self.token)
    }

    /// A request to the admin API (`/__admin{path}`).
    pub fn admin_req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, self.url(&format!("/__admin{path}")))
    }

    /// Calls the admin API with an optional JSON body, asserting the status; returns the JSON.
    pub async fn admin_call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
        status: u16,
    ) -> serde_json::Value {
        let mut req = self.admin_req(method, path);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("admin request");
        assert_eq!(resp.status().as_u16(), status, "{path}");
        resp.json().await.expect("JSON body")
    }

    /// The truth dump's lines for `query` (e.g. `?object=Account&records=false`).
    pub async fn truth_lines(&self, query: &str) -> Vec<serde_json::Value> {
        let resp = self.admin_req(reqwest::Method::GET, &format!("/truth{query}")).send().await.expect("truth");
        assert_eq!(resp.status(), 200);
        let text = resp.text().await.expect("body");
        text.lines().map(|l| serde_json::from_str(l).expect("NDJSON line")).collect()
    }

    /// GETs a data-API path and parses the JSON body, asserting the status.
    pub async fn get_json(&self, path: &str, status: u16) -> serde_json::Value {
        let resp = self.get(path).send().await.expect("request succeeds");
        assert_eq!(resp.status().as_u16(), status, "GET {path}");
        resp.json().await.expect("JSON body")
    }
}

/// Sends a request and decodes its JSON body, failing the test on a transport or decoding error
/// (the status is the caller's to check, when it matters, on the body).
#[allow(async_fn_in_trait)]
pub trait SendJson {
    async fn send_json<T: serde::de::DeserializeOwned>(self) -> T;
}

impl SendJson for reqwest::RequestBuilder {
    async fn send_json<T: serde::de::DeserializeOwned>(self) -> T {
        self.send().await.expect("request succeeds").json().await.expect("JSON body")
    }
}

/// Loads a file of the conformance corpus in `../shared/salesforce-api/`.
pub fn corpus(name: &str) -> String {
    let path = format!("{}/../../../shared/salesforce-api/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

pub fn corpus_json(name: &str) -> serde_json::Value {
    serde_json::from_str(&corpus(name)).unwrap_or_else(|e| panic!("{name} is JSON: {e}"))
}

pub mod ingest;
pub mod shape;
