//! Shared set-up of the write tests: an in-process simulator and a client on a session.

#![allow(dead_code)]

use std::net::SocketAddr;

use secrecy::SecretString;
use serde_json::Value as J;
use tidemark_salesforce::{AuthConfig, ClientConfig, Record, RetryPolicy, SalesforceClient};
use tidemark_sfsim::{SimConfig, SimHandle, SimServer};

pub async fn sim() -> SimHandle {
    SimServer::new(SimConfig { accounts: 20, ..SimConfig::default() })
        .start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("simulator starts")
}

pub async fn client_with(sim: &SimHandle, config: ClientConfig) -> SalesforceClient {
    let auth =
        AuthConfig::Session { instance_url: sim.base_url().to_owned(), access_token: SecretString::from(sim.issue_token()) };
    SalesforceClient::connect(auth, config).await.expect("connects")
}

pub async fn client(sim: &SimHandle, attempts: u32) -> SalesforceClient {
    client_with(sim, ClientConfig { retry: RetryPolicy::immediate(attempts), ..ClientConfig::default() }).await
}

/// Rows from a JSON array of objects.
pub fn rows(values: J) -> Vec<Record> {
    values.as_array().expect("an array").iter().map(|r| r.as_object().expect("an object").clone()).collect()
}

/// Records of a SOQL query (all pages).
pub async fn query(client: &SalesforceClient, soql: &str, all: bool) -> Vec<serde_json::Map<String, J>> {
    let mut pager = client.query(soql, all);
    let mut out = Vec::new();
    while let Some(page) = pager.next_page().await.expect("query") {
        out.extend(page.records);
    }
    out
}

/// One record by id (including deleted ones), or `None`.
pub async fn record(client: &SalesforceClient, object: &str, fields: &str, id: &str) -> Option<serde_json::Map<String, J>> {
    query(client, &format!("SELECT {fields} FROM {object} WHERE Id = '{id}'"), true).await.into_iter().next()
}

/// Live records of `object`, counted in the simulator (no API call).
pub fn live_count(sim: &SimHandle, object: &str) -> usize {
    sim.state.org.read().table(object).expect("object exists").live_count()
}

/// An id of an existing Account (the simulator generates some).
pub async fn some_account_ids(client: &SalesforceClient, n: usize) -> Vec<String> {
    query(client, &format!("SELECT Id FROM Account ORDER BY Id LIMIT {n}"), false)
        .await
        .into_iter()
        .map(|r| r["Id"].as_str().unwrap().to_owned())
        .collect()
}
