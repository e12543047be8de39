//! HTTPS: the simulator serves the same API over rustls with a generated certificate whose CA is
//! written to disk for clients to trust.

use std::net::SocketAddr;

use secrecy::ExposeSecret;
use tidemark_sfsim::{SimConfig, SimServer};

async fn start_tls(dir: &std::path::Path) -> tidemark_sfsim::SimHandle {
    SimServer::new(SimConfig::default())
        .with_tls(dir)
        .start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("HTTPS simulator starts")
}

fn trusting_client(ca_path: &str) -> reqwest::Client {
    let pem = std::fs::read(ca_path).expect("CA certificate written");
    let ca = reqwest::Certificate::from_pem(&pem).expect("PEM certificate");
    reqwest::Client::builder().add_root_certificate(ca).build().expect("client")
}

#[tokio::test]
async fn serves_the_api_over_https_with_a_trustable_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start_tls(dir.path()).await;
    assert!(sim.base_url().starts_with("https://127.0.0.1:"), "{}", sim.base_url());
    let ca_path = sim.credentials.certificate_path.clone().expect("certificate path reported");
    assert!(ca_path.starts_with(dir.path().to_str().unwrap()));
    let http = trusting_client(&ca_path);

    // Unauthenticated versions list.
    let resp = http.get(format!("{}/services/data/", sim.base_url())).send().await.expect("TLS handshake");
    assert_eq!(resp.status(), 200);
    let versions: serde_json::Value = resp.json().await.unwrap();
    assert!(versions.as_array().is_some_and(|v| !v.is_empty()));

    // Log in over HTTPS and call an authenticated endpoint; URLs in the answers are https.
    let c = &sim.state.config;
    let resp = http
        .post(format!("{}/services/oauth2/token", sim.base_url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", c.client_id.as_str()),
            ("client_secret", c.client_secret.expose_secret()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let token: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(token["instance_url"], sim.base_url());
    let access_token = token["access_token"].as_str().unwrap();
    let resp = http.get(format!("{}/services/data/v66.0/limits", sim.base_url())).bearer_auth(access_token).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("sforce-limit-info"));

    // `localhost` is in the certificate as well as 127.0.0.1.
    let localhost = sim.base_url().replace("127.0.0.1", "localhost");
    assert_eq!(http.get(format!("{localhost}/services/data/")).send().await.unwrap().status(), 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn clients_that_do_not_trust_the_certificate_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start_tls(dir.path()).await;
    let err = reqwest::Client::new().get(format!("{}/services/data/", sim.base_url())).send().await.unwrap_err();
    assert!(err.is_connect() || err.is_request(), "{err:?}");

    // Another simulator's CA does not vouch for this one: each start generates its own.
    let other_dir = tempfile::tempdir().unwrap();
    let other = start_tls(other_dir.path()).await;
    let other_ca = other.credentials.certificate_path.clone().unwrap();
    let http = trusting_client(&other_ca);
    assert!(http.get(format!("{}/services/data/", sim.base_url())).send().await.is_err());
    assert!(http.get(format!("{}/services/data/", other.base_url())).send().await.is_ok());
}
