//! Every authentication flow against the simulator's OAuth endpoint, over HTTPS, and transparent
//! re-authentication when a session expires mid-run.

use std::net::SocketAddr;

use secrecy::{ExposeSecret, SecretString};
use tidemark_salesforce::{AuthConfig, ClientConfig, ErrorClass, RetryPolicy, SalesforceClient, SalesforceError};
use tidemark_sfsim::{SimConfig, SimHandle, SimServer};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../sfsim/tests/fixtures");

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURES}/{name}")).expect("fixture exists")
}

async fn tls_sim(dir: &tempfile::TempDir) -> SimHandle {
    let config = SimConfig { jwt_certificate_pem: Some(fixture("jwt-test-cert.pem")), ..SimConfig::default() };
    SimServer::new(config).with_tls(dir.path()).start(SocketAddr::from(([127, 0, 0, 1], 0))).await.expect("starts")
}

fn trusting(sim: &SimHandle) -> reqwest::ClientBuilder {
    let pem = std::fs::read(sim.credentials.certificate_path.as_ref().expect("TLS writes its CA")).expect("CA file");
    reqwest::Client::builder().add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("PEM"))
}

fn config() -> ClientConfig {
    ClientConfig { retry: RetryPolicy::immediate(3), ..ClientConfig::default() }
}

fn flows(sim: &SimHandle) -> Vec<(&'static str, AuthConfig)> {
    let c = &sim.credentials;
    vec![
        (
            "password",
            AuthConfig::Password {
                login_url: c.base_url.clone(),
                client_id: c.client_id.clone(),
                client_secret: SecretString::from(c.client_secret.clone()),
                username: c.username.clone(),
                password: SecretString::from(c.password.clone()),
                security_token: Some(SecretString::from(c.security_token.clone())),
            },
        ),
        (
            "client_credentials",
            AuthConfig::ClientCredentials {
                login_url: c.base_url.clone(),
                client_id: c.client_id.clone(),
                client_secret: SecretString::from(c.client_secret.clone()),
            },
        ),
        (
            "jwt_bearer",
            AuthConfig::JwtBearer {
                login_url: c.base_url.clone(),
                client_id: c.client_id.clone(),
                username: c.username.clone(),
                private_key_pem: SecretString::from(fixture("jwt-test-key.pem")),
            },
        ),
    ]
}

#[tokio::test]
async fn every_flow_logs_in_and_survives_session_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let sim = tls_sim(&dir).await;
    for (name, auth) in flows(&sim) {
        let client =
            SalesforceClient::connect_with(trusting(&sim), auth, config()).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(client.instance_url().await.unwrap().starts_with("https://"), "{name}");
        client.describe("Account").await.unwrap_or_else(|e| panic!("{name}: {e}"));
        // Every session dies; the client logs in again and replays the call.
        sim.state.auth.expire_all();
        client.describe("Account").await.unwrap_or_else(|e| panic!("{name} after expiry: {e}"));
        // So does ageing past the token lifetime on the org clock.
        sim.state.org.write().advance_clock(chrono::Duration::hours(3));
        client.describe_global().await.unwrap_or_else(|e| panic!("{name} after the clock moved: {e}"));
    }
}

#[tokio::test]
async fn refresh_token_flow_renews_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let sim = tls_sim(&dir).await;
    let c = sim.credentials.clone();
    // Obtain a refresh token through the web-server flow the simulator auto-approves.
    let http = trusting(&sim).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let authorize = http
        .get(format!("{}/services/oauth2/authorize", c.base_url))
        .query(&[
            ("response_type", "code"),
            ("client_id", &c.client_id),
            ("redirect_uri", "http://localhost/cb"),
            ("state", "s1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(authorize.status(), 302);
    let location = url::Url::parse(authorize.headers()["location"].to_str().unwrap()).unwrap();
    let code = location.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned()).expect("code");
    let token: serde_json::Value = http
        .post(format!("{}/services/oauth2/token", c.base_url))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", &c.client_id),
            ("client_secret", &c.client_secret),
            ("redirect_uri", "http://localhost/cb"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refresh_token = token["refresh_token"].as_str().expect("web-server flow issues a refresh token").to_owned();
    let auth = AuthConfig::RefreshToken {
        login_url: c.base_url.clone(),
        client_id: c.client_id.clone(),
        client_secret: Some(SecretString::from(c.client_secret.clone())),
        refresh_token: SecretString::from(refresh_token),
    };
    let client = SalesforceClient::connect_with(trusting(&sim), auth, config()).await.unwrap();
    sim.state.auth.expire_all();
    client.describe("Account").await.expect("refreshed after expiry");
    let debug = format!("{client:?}");
    assert!(!debug.contains(&c.client_secret), "no secret in Debug output");
}

#[tokio::test]
async fn bad_credentials_are_auth_errors_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let sim = tls_sim(&dir).await;
    let c = &sim.credentials;
    let wrong = SecretString::from("not-the-password".to_owned());
    let auth = AuthConfig::Password {
        login_url: c.base_url.clone(),
        client_id: c.client_id.clone(),
        client_secret: SecretString::from(c.client_secret.clone()),
        username: c.username.clone(),
        password: wrong.clone(),
        security_token: None,
    };
    let err = SalesforceClient::connect_with(trusting(&sim), auth, config()).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Auth, "{err}");
    assert!(matches!(&err, SalesforceError::OAuth { error, .. } if error == "invalid_grant"), "{err}");
    assert!(!format!("{err} {err:?}").contains(wrong.expose_secret()));

    let auth = AuthConfig::JwtBearer {
        login_url: c.base_url.clone(),
        client_id: c.client_id.clone(),
        username: c.username.clone(),
        private_key_pem: SecretString::from(fixture("jwt-other-key.pem")),
    };
    let err = SalesforceClient::connect_with(trusting(&sim), auth, config()).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Auth, "a key the app does not know: {err}");
}
