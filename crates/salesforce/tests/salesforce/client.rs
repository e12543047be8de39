//! The client against the in-process simulator: describe, paging, retries under injected
//! faults, the budget stop, session expiry.

use std::net::SocketAddr;

use secrecy::SecretString;
use tidemark_salesforce::{AuthConfig, ClientConfig, ErrorClass, RetryPolicy, SalesforceClient, SalesforceError};
use tidemark_sfsim::faults::FaultConfig;
use tidemark_sfsim::value::Value;
use tidemark_sfsim::{SimConfig, SimHandle, SimServer};

async fn sim() -> SimHandle {
    SimServer::new(SimConfig::default()).start(SocketAddr::from(([127, 0, 0, 1], 0))).await.expect("simulator starts")
}

fn session_auth(sim: &SimHandle) -> AuthConfig {
    AuthConfig::Session { instance_url: sim.base_url().to_owned(), access_token: SecretString::from(sim.issue_token()) }
}

fn fast_retries(attempts: u32) -> ClientConfig {
    ClientConfig { retry: RetryPolicy::immediate(attempts), ..ClientConfig::default() }
}

fn add_accounts(sim: &SimHandle, n: usize) {
    let mut org = sim.state.org.write();
    let slot = org.table("Account").expect("Account exists").def.slot("Name");
    for i in 0..n {
        org.insert_record("Account", vec![(slot, Value::str(format!("Account {i}")))]).expect("insert");
    }
}

#[tokio::test]
async fn describes_and_pages_through_a_query() {
    let sim = sim().await;
    add_accounts(&sim, 2_345);
    let total = sim.state.org.read().table("Account").unwrap().live_count();
    let client = SalesforceClient::connect(session_auth(&sim), fast_retries(1)).await.unwrap();
    let global = client.describe_global().await.unwrap();
    assert!(global.sobjects.iter().any(|o| o.name == "Account" && o.queryable));
    let account = client.describe("Account").await.unwrap();
    assert_eq!(account.field("name").unwrap().field_type, Some(tidemark_core::FieldType::String));

    let mut pager = client.query("SELECT Id, Name FROM Account", false).batch_size(500);
    let (mut ids, mut pages) = (std::collections::HashSet::new(), 0);
    while let Some(page) = pager.next_page().await.unwrap() {
        pages += 1;
        assert_eq!(page.total_size as usize, total);
        for r in page.records {
            assert!(ids.insert(r["Id"].as_str().unwrap().to_owned()), "no duplicates across pages");
        }
    }
    assert_eq!(ids.len(), total);
    assert!(pages >= 2, "paged ({pages} pages)");
    let usage = client.api_usage().expect("Sforce-Limit-Info seen");
    assert!(usage.used >= pages as u64 + 2);
}

#[tokio::test]
async fn retries_through_server_errors_and_dropped_connections() {
    let sim = sim().await;
    add_accounts(&sim, 300);
    let client = SalesforceClient::connect(session_auth(&sim), fast_retries(30)).await.unwrap();
    sim.state.faults.set(
        FaultConfig {
            http_500_rate: 0.2,
            http_503_rate: 0.1,
            drop_connection_rate: 0.2,
            concurrent_limit_rate: 0.1,
            ..Default::default()
        },
        5,
    );
    for _ in 0..10 {
        let d = client.describe("Account").await.expect("retried to success");
        assert_eq!(d.name, "Account");
    }
    sim.state.faults.set(FaultConfig { http_500_rate: 1.0, ..Default::default() }, 5);
    let err = client.describe("Account").await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Retryable, "{err}");
    assert_eq!(err.error_code(), Some("UNKNOWN_EXCEPTION"));
}

#[tokio::test]
async fn stops_cleanly_at_the_api_budget() {
    let sim = sim().await;
    let now = sim.state.now_millis();
    sim.state.usage.set_max(100);
    let client =
        SalesforceClient::connect(session_auth(&sim), ClientConfig { budget_percent: 50, ..fast_retries(1) }).await.unwrap();
    sim.state.usage.set_used(now, 48);
    client.describe("Account").await.expect("49th request is within budget");
    client.describe("Account").await.expect("50th request is within budget");
    let err = client.describe("Account").await.unwrap_err();
    assert!(matches!(err, SalesforceError::BudgetExhausted { used: 50, max: 100, budget_percent: 50 }), "{err}");
    assert_eq!(err.class(), ErrorClass::Quota);
    assert!(err.to_string().contains("the next run resumes"));
}

#[tokio::test]
async fn an_exhausted_org_allocation_is_a_quota_error() {
    let sim = sim().await;
    let client = SalesforceClient::connect(session_auth(&sim), fast_retries(5)).await.unwrap();
    let now = sim.state.now_millis();
    sim.state.usage.set_max(10);
    sim.state.usage.set_used(now, 10);
    let err = client.describe("Account").await.unwrap_err();
    assert_eq!(err.error_code(), Some("REQUEST_LIMIT_EXCEEDED"));
    assert_eq!(err.class(), ErrorClass::Quota, "{err}");
}

#[tokio::test]
async fn a_given_session_that_expires_is_an_auth_error() {
    let sim = sim().await;
    let client = SalesforceClient::connect(session_auth(&sim), fast_retries(3)).await.unwrap();
    sim.state.auth.expire_all();
    let err = client.describe("Account").await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Auth);
    let shown = format!("{err:?} {err} {client:?}");
    let org_id = sim.state.org.read().org_id;
    assert!(!shown.contains(&format!("{}!", org_id.short())), "no access token in errors or Debug: {shown}");
}
