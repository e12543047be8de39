//! OAuth 2.0 token endpoint (every grant), the web-server flow with PKCE, revocation, identity,
//! session expiry on the org clock, and SOAP login — over real HTTP, against the corpus shapes.

use crate::common::{SendJson, TestOrg, corpus, corpus_json};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::ExposeSecret;
use serde_json::{Value as J, json};
use sha2::{Digest, Sha256};
use tidemark_sfsim::SimConfig;

const TEST_CERT: &str = include_str!("../fixtures/jwt-test-cert.pem");
const TEST_KEY: &str = include_str!("../fixtures/jwt-test-key.pem");
const OTHER_KEY: &str = include_str!("../fixtures/jwt-other-key.pem");
const CALLBACK: &str = "http://localhost:8765/callback";

async fn start_jwt_org() -> TestOrg {
    TestOrg::start_with(SimConfig { jwt_certificate_pem: Some(TEST_CERT.to_owned()), ..SimConfig::default() }).await
}

/// The JSON body of an `.http` corpus transcript (after the blank line).
fn http_body(name: &str) -> J {
    let text = corpus(name);
    let body = text.split_once("\n\n").map(|(_, b)| b).expect("transcript has a body");
    serde_json::from_str(body).expect("transcript body is JSON")
}

impl TestOrg {
    async fn token_request(&self, form: &[(&str, &str)]) -> reqwest::Response {
        self.http.post(self.url("/services/oauth2/token")).form(form).send().await.expect("token request")
    }

    async fn token_ok(&self, form: &[(&str, &str)]) -> J {
        let resp = self.token_request(form).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "application/json;charset=UTF-8");
        resp.json().await.unwrap()
    }

    /// Asserts a 400 OAuth error with the exact body, JSON content type and `no-store`.
    async fn token_error(&self, form: &[(&str, &str)], expected: &J) {
        let resp = self.token_request(form).await;
        assert_eq!(resp.status(), 400, "{form:?}");
        assert_eq!(resp.headers()["content-type"], "application/json");
        assert_eq!(resp.headers()["cache-control"], "no-store");
        assert_eq!(&resp.json::<J>().await.unwrap(), expected, "{form:?}");
    }

    async fn limits_status(&self, token: &str) -> u16 {
        self.http.get(self.data_url("/limits")).bearer_auth(token).send().await.unwrap().status().as_u16()
    }

    fn secret(&self) -> String {
        self.sim.state.config.client_secret.expose_secret().to_owned()
    }

    fn advance_past_token_lifetime(&self) {
        let lifetime = self.sim.state.config.token_lifetime;
        self.sim.state.org.write().advance_clock(lifetime + chrono::Duration::seconds(1));
    }
}

fn assertion(key_pem: &str, claims: &J) -> String {
    let key = EncodingKey::from_rsa_pem(key_pem.as_bytes()).expect("test key");
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), claims, &key).expect("sign")
}

fn claims(t: &TestOrg, aud: &str, exp_offset_secs: i64) -> J {
    json!({
        "iss": t.sim.state.config.client_id,
        "sub": t.sim.state.config.username,
        "aud": aud,
        // simple-salesforce sends exp as a string.
        "exp": (chrono::Utc::now().timestamp() + exp_offset_secs).to_string(),
    })
}

const JWT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

#[tokio::test]
async fn jwt_bearer_issues_an_access_token_without_refresh_token() {
    let t = start_jwt_org().await;
    let a = assertion(TEST_KEY, &claims(&t, "https://login.salesforce.com", 180));
    let body = t.token_ok(&[("grant_type", JWT), ("assertion", &a)]).await;
    crate::common::shape::assert_shape_except("jwt bearer", &corpus_json("oauth-jwt-bearer-token.json"), &body, &[], &[]);
    assert!(body.get("refresh_token").is_none());
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["instance_url"], t.sim.base_url());
    let org = t.sim.state.org.read().org_id;
    let user = t.sim.state.org.read().integration_user;
    assert_eq!(body["id"], format!("{}/id/{}/{}", t.sim.base_url(), org.as_str(), user.as_str()));
    let token = body["access_token"].as_str().unwrap();
    assert!(token.starts_with(&format!("{}!", org.short())));
    assert_eq!(t.limits_status(token).await, 200);

    // Numeric exp, an audience list, and the simulator's own URL as audience are accepted too.
    let mut c = claims(&t, t.sim.base_url(), 60);
    c["exp"] = json!(chrono::Utc::now().timestamp() + 60);
    c["aud"] = json!(["https://example.invalid", format!("{}/", t.sim.base_url())]);
    t.token_ok(&[("grant_type", JWT), ("assertion", &assertion(TEST_KEY, &c))]).await;
    let test_aud = assertion(TEST_KEY, &claims(&t, "https://test.salesforce.com", 60));
    t.token_ok(&[("grant_type", JWT), ("assertion", &test_aud)]).await;
}

#[tokio::test]
async fn jwt_bearer_errors_are_worded_as_salesforce() {
    let t = start_jwt_org().await;
    // Wrong audience: the documented transcript, headers and body.
    let a = assertion(TEST_KEY, &claims(&t, "https://evil.example.com", 180));
    t.token_error(&[("grant_type", JWT), ("assertion", &a)], &http_body("oauth-error-jwt-audience.http")).await;
    // Signed by another key.
    let a = assertion(OTHER_KEY, &claims(&t, "https://login.salesforce.com", 180));
    t.token_error(&[("grant_type", JWT), ("assertion", &a)], &corpus_json("oauth-error-invalid-assertion.json")).await;
    // Garbage.
    t.token_error(&[("grant_type", JWT), ("assertion", "abc.def.ghi")], &corpus_json("oauth-error-invalid-assertion.json")).await;
    // A user who has not approved the app.
    let mut c = claims(&t, "https://login.salesforce.com", 180);
    c["sub"] = json!("someone-else@example.com");
    t.token_error(
        &[("grant_type", JWT), ("assertion", &assertion(TEST_KEY, &c))],
        &corpus_json("oauth-error-user-not-approved.json"),
    )
    .await;
    // Expired by the wall clock.
    let a = assertion(TEST_KEY, &claims(&t, "https://login.salesforce.com", -10));
    t.token_error(
        &[("grant_type", JWT), ("assertion", &a)],
        &json!({"error": "invalid_grant", "error_description": "expired authorization code"}),
    )
    .await;
    // Unknown consumer key.
    let mut c = claims(&t, "https://login.salesforce.com", 180);
    c["iss"] = json!("3MVG9SomeOtherApp");
    t.token_error(
        &[("grant_type", JWT), ("assertion", &assertion(TEST_KEY, &c))],
        &json!({"error": "invalid_client_id", "error_description": "client identifier invalid"}),
    )
    .await;

    // Without a configured certificate no assertion verifies.
    let plain = TestOrg::start().await;
    let a = assertion(TEST_KEY, &claims(&plain, "https://login.salesforce.com", 180));
    plain.token_error(&[("grant_type", JWT), ("assertion", &a)], &corpus_json("oauth-error-invalid-assertion.json")).await;
}

#[tokio::test]
async fn client_credentials_runs_as_the_integration_user() {
    let t = TestOrg::start().await;
    let id = t.sim.state.config.client_id.clone();
    let secret = t.secret();
    let body = t.token_ok(&[("grant_type", "client_credentials"), ("client_id", &id), ("client_secret", &secret)]).await;
    crate::common::shape::assert_shape_except(
        "client credentials",
        &corpus_json("oauth-client-credentials-token.json"),
        &body,
        &[],
        &[],
    );
    assert!(body.get("refresh_token").is_none());
    // signature = base64 HMAC-SHA256(id + issued_at) keyed by the client secret.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{}{}", body["id"].as_str().unwrap(), body["issued_at"].as_str().unwrap()).as_bytes());
    assert_eq!(body["signature"], STANDARD.encode(mac.finalize().into_bytes()));
    assert_eq!(body["issued_at"], t.sim.state.now_millis().to_string());
    assert_eq!(t.limits_status(body["access_token"].as_str().unwrap()).await, 200);

    // HTTP Basic client authentication works too.
    let resp = t
        .http
        .post(t.url("/services/oauth2/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let invalid_client = json!({"error": "invalid_client", "error_description": "invalid client credentials"});
    t.token_error(&[("grant_type", "client_credentials"), ("client_id", &id), ("client_secret", "wrong")], &invalid_client).await;
    t.token_error(
        &[("grant_type", "client_credentials"), ("client_id", "nope"), ("client_secret", &secret)],
        &json!({"error": "invalid_client_id", "error_description": "client identifier invalid"}),
    )
    .await;
}

#[tokio::test]
async fn password_grant_with_and_without_security_token() {
    let t = TestOrg::start().await;
    let c = &t.sim.state.config;
    let (id, secret, user) = (c.client_id.clone(), t.secret(), c.username.clone());
    let password = c.password.expose_secret().to_owned();
    let with_token = format!("{password}{}", c.security_token.expose_secret());
    for pw in [&password, &with_token] {
        let body = t
            .token_ok(&[
                ("grant_type", "password"),
                ("client_id", &id),
                ("client_secret", &secret),
                ("username", &user),
                ("password", pw),
            ])
            .await;
        crate::common::shape::assert_shape_except(
            "password",
            &corpus_json("oauth-username-password-token.json"),
            &body,
            &[],
            &[],
        );
        assert_eq!(t.limits_status(body["access_token"].as_str().unwrap()).await, 200);
    }
    let form = |pw: &'static str| {
        vec![
            ("grant_type", "password"),
            ("client_id", id.as_str()),
            ("client_secret", secret.as_str()),
            ("username", user.as_str()),
            ("password", pw),
        ]
    };
    t.token_error(&form("wrong"), &corpus_json("oauth-error-invalid-grant-password.json")).await;
    let mut unknown_user = form("wrong");
    unknown_user[3].1 = "nobody@example.com";
    t.token_error(&unknown_user, &json!({"error": "invalid_grant", "error_description": "authentication failure"})).await;
}

#[tokio::test]
async fn unknown_or_missing_grant_type_is_unsupported() {
    let t = TestOrg::start().await;
    let expected = corpus_json("oauth-error-unsupported-grant-type.json");
    t.token_error(&[("grant_type", "urn:ietf:params:oauth:grant-type:saml2-bearer-x")], &expected).await;
    t.token_error(&[("assertion", "x")], &expected).await;
}

/// Runs the web-server flow's authorize step; returns the `Location` query pairs.
async fn authorize(t: &TestOrg, extra: &[(&str, &str)]) -> (u16, Vec<(String, String)>) {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let id = t.sim.state.config.client_id.clone();
    let mut query = vec![("response_type", "code"), ("client_id", id.as_str()), ("redirect_uri", CALLBACK), ("state", "xyz 1")];
    query.extend_from_slice(extra);
    let resp = client.get(t.url("/services/oauth2/authorize")).query(&query).send().await.unwrap();
    let status = resp.status().as_u16();
    let location = resp.headers().get("location").map(|l| l.to_str().unwrap().to_owned()).unwrap_or_default();
    let pairs = location
        .split_once('?')
        .map(|(base, q)| {
            assert_eq!(base, CALLBACK);
            serde_urlencoded::from_str::<Vec<(String, String)>>(q).unwrap()
        })
        .unwrap_or_default();
    (status, pairs)
}

fn as_refs(v: &[(String, String)]) -> Vec<(&str, &str)> {
    v.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect()
}

fn refs<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'a str, &'a str)> {
    v.iter().map(|(a, b)| (*a, b.as_str())).collect()
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn web_server_flow_with_pkce_then_refresh_after_expiry_and_revoke() {
    let t = TestOrg::start().await;
    let id = t.sim.state.config.client_id.clone();
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-tidemark";
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let (status, pairs) = authorize(&t, &[("code_challenge", &challenge), ("code_challenge_method", "S256")]).await;
    assert_eq!(status, 302);
    assert_eq!(param(&pairs, "state"), Some("xyz 1"));
    let code = param(&pairs, "code").expect("code").to_owned();

    let exchange = |code: &str, verifier: &str, redirect: &str| {
        vec![
            ("grant_type".to_owned(), "authorization_code".to_owned()),
            ("code".to_owned(), code.to_owned()),
            ("client_id".to_owned(), id.clone()),
            ("redirect_uri".to_owned(), redirect.to_owned()),
            ("code_verifier".to_owned(), verifier.to_owned()),
        ]
    };

    // Wrong verifier and wrong callback are refused without consuming the code.
    let bad = exchange(&code, "not-the-verifier", CALLBACK);
    t.token_error(&as_refs(&bad), &json!({"error": "invalid_grant", "error_description": "invalid code verifier"})).await;
    let bad = exchange(&code, verifier, "http://localhost:1/other");
    t.token_error(
        &as_refs(&bad),
        &json!({"error": "redirect_uri_mismatch", "error_description": "redirect_uri must match configuration"}),
    )
    .await;

    let good = exchange(&code, verifier, CALLBACK);
    let body = t.token_ok(&as_refs(&good)).await;
    crate::common::shape::assert_shape_except(
        "web server",
        &corpus_json("oauth-web-server-token.json"),
        &body,
        &["refresh_token"],
        &["id_token"],
    );
    let refresh_token = body["refresh_token"].as_str().expect("refresh token").to_owned();
    let access_token = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(t.limits_status(&access_token).await, 200);

    // Codes are single use.
    t.token_error(&as_refs(&good), &json!({"error": "invalid_grant", "error_description": "expired authorization code"})).await;

    // The access token expires on the org clock with the documented 401 body…
    t.advance_past_token_lifetime();
    let resp = t.http.get(t.data_url("/limits")).bearer_auth(&access_token).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.json::<J>().await.unwrap(), corpus_json("error-invalid-session.json"));

    // …and the refresh token mints a new one (no new refresh token).
    let secret = t.secret();
    let refreshed = t
        .token_ok(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh_token),
            ("client_id", &id),
            ("client_secret", &secret),
        ])
        .await;
    crate::common::shape::assert_shape_except("refresh", &corpus_json("oauth-refresh-token-response.json"), &refreshed, &[], &[]);
    let new_access = refreshed["access_token"].as_str().unwrap().to_owned();
    assert_ne!(new_access, access_token);
    assert_eq!(t.limits_status(&new_access).await, 200);

    // Revoking the refresh token revokes it and the access tokens minted from it.
    let resp = t.http.post(t.url("/services/oauth2/revoke")).form(&[("token", &refresh_token)]).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(t.limits_status(&new_access).await, 401);
    t.token_error(
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh_token), ("client_id", &id)],
        &corpus_json("oauth-error-refresh-expired.json"),
    )
    .await;
}

#[tokio::test]
async fn authorization_codes_expire_and_confidential_clients_need_the_secret() {
    let t = TestOrg::start().await;
    let id = t.sim.state.config.client_id.clone();
    let secret = t.secret();
    // Without PKCE the secret is required.
    let (_, pairs) = authorize(&t, &[("scope", "api refresh_token")]).await;
    let code = param(&pairs, "code").unwrap().to_owned();
    let form = |secret: &str| {
        vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.clone()),
            ("client_id", id.clone()),
            ("redirect_uri", CALLBACK.to_owned()),
            ("client_secret", secret.to_owned()),
        ]
    };
    t.token_error(&refs(&form("wrong")), &json!({"error": "invalid_client", "error_description": "invalid client credentials"}))
        .await;
    let body = t.token_ok(&refs(&form(&secret))).await;
    assert_eq!(body["scope"], "api refresh_token");
    assert!(body["refresh_token"].is_string());

    // A code not exchanged within 15 minutes (org clock) is expired; unknown codes are invalid.
    let (_, pairs) =
        authorize(&t, &[("scope", "api"), ("code_challenge", "plain-verifier"), ("code_challenge_method", "plain")]).await;
    let code = param(&pairs, "code").unwrap().to_owned();
    t.sim.state.org.write().advance_clock(chrono::Duration::minutes(16));
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("client_id", id.as_str()),
        ("redirect_uri", CALLBACK),
        ("code_verifier", "plain-verifier"),
    ];
    t.token_error(&form, &json!({"error": "invalid_grant", "error_description": "expired authorization code"})).await;
    let mut unknown = form;
    unknown[1].1 = "aPrxNotACode";
    t.token_error(&unknown, &json!({"error": "invalid_grant", "error_description": "invalid authorization code"})).await;

    // A scope outside the app's is sent back to the callback as an error.
    let (status, pairs) = authorize(&t, &[("scope", "api cdp_query_api")]).await;
    assert_eq!(status, 302);
    assert_eq!(param(&pairs, "error"), Some("invalid_scope"));
    assert_eq!(param(&pairs, "state"), Some("xyz 1"));
}

#[tokio::test]
async fn revoke_access_tokens_and_unknown_tokens() {
    let t = TestOrg::start().await;
    let token = t.sim.issue_token();
    assert_eq!(t.limits_status(&token).await, 200);
    let resp = t.http.post(t.url("/services/oauth2/revoke")).form(&[("token", &token)]).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(t.limits_status(&token).await, 401);
    let resp = t.http.get(t.url("/services/oauth2/revoke")).query(&[("token", &token)]).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.text().await.unwrap(),
        "error=unsupported_token_type&error_description=this%20token%20type%20is%20not%20supported"
    );
}

#[tokio::test]
async fn identity_url_and_userinfo() {
    let t = TestOrg::start().await;
    let id = t.sim.state.config.client_id.clone();
    let secret = t.secret();
    let body = t.token_ok(&[("grant_type", "client_credentials"), ("client_id", &id), ("client_secret", &secret)]).await;
    let id_url = body["id"].as_str().unwrap().to_owned();
    let token = body["access_token"].as_str().unwrap().to_owned();

    let resp = t.http.get(&id_url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let identity: J = resp.json().await.unwrap();
    crate::common::shape::assert_shape_except("identity", &corpus_json("oauth-identity-url-response.json"), &identity, &[], &[]);
    assert_eq!(identity["id"], id_url);
    assert_eq!(identity["username"], t.sim.state.config.username);
    let org = t.sim.state.org.read().org_id;
    assert_eq!(identity["urls"]["partner"], format!("{}/services/Soap/u/{{version}}/{}", t.sim.base_url(), org.short()));
    // `version` fills the URL templates.
    let v: J = t.http.get(&id_url).query(&[("version", "latest")]).bearer_auth(&token).send_json().await;
    assert_eq!(v["urls"]["rest"], format!("{}/services/data/v66.0/", t.sim.base_url()));

    let resp = t.http.get(&id_url).bearer_auth("00Dbogus!token").send().await.unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(resp.text().await.unwrap(), "Bad_OAuth_Token");
    let other_user = id_url.rsplit_once('/').unwrap().0.to_owned() + "/005Dn0000000999AAA";
    assert_eq!(t.http.get(&other_user).bearer_auth(&token).send().await.unwrap().status(), 404);

    let info: J = t.http.get(t.url("/services/oauth2/userinfo")).bearer_auth(&token).send_json().await;
    assert_eq!(info["sub"], id_url);
    assert_eq!(info["preferred_username"], t.sim.state.config.username);
    assert_eq!(info["organization_id"], org.as_str());
}

fn soap_login_envelope(username: &str, password: &str) -> String {
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    format!(
        r#"<?xml version="1.0" encoding="utf-8" ?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:partner.soap.sforce.com">
  <soapenv:Header><urn:CallOptions><urn:client>RestForce</urn:client><urn:defaultNamespace>sf</urn:defaultNamespace></urn:CallOptions></soapenv:Header>
  <soapenv:Body><urn:login><urn:username>{}</urn:username><urn:password>{}</urn:password></urn:login></soapenv:Body>
</soapenv:Envelope>"#,
        esc(username),
        esc(password)
    )
}

/// The text of the only element with this (prefixed) name, as simple-salesforce reads it.
fn element_text(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    assert!(xml[end + 1..].find(&open).is_none(), "{name} is unique");
    Some(xml[start..end].to_owned())
}

#[tokio::test]
async fn soap_login_success_and_fault() {
    let t = TestOrg::start().await;
    let c = &t.sim.state.config;
    let password = format!("{}{}", c.password.expose_secret(), c.security_token.expose_secret());
    let resp = t
        .http
        .post(t.url("/services/Soap/u/59.0"))
        .header("content-type", "text/xml")
        .header("SOAPAction", "login")
        .body(soap_login_envelope(&c.username, &password))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/xml;charset=UTF-8");
    let xml = resp.text().await.unwrap();
    assert!(xml.contains(r#"xmlns="urn:partner.soap.sforce.com""#));
    assert!(xml.contains("<soapenv:Body><loginResponse><result>"));
    let org = t.sim.state.org.read().org_id;
    let user = t.sim.state.org.read().integration_user;
    let base = t.sim.base_url();
    assert_eq!(element_text(&xml, "serverUrl").unwrap(), format!("{base}/services/Soap/u/59.0/{}", org.short()));
    assert_eq!(element_text(&xml, "metadataServerUrl").unwrap(), format!("{base}/services/Soap/m/59.0/{}", org.short()));
    assert_eq!(element_text(&xml, "passwordExpired").unwrap(), "false");
    assert_eq!(element_text(&xml, "sandbox").unwrap(), "false");
    assert_eq!(element_text(&xml, "organizationId").unwrap(), org.as_str());
    assert_eq!(element_text(&xml, "userName").unwrap(), c.username);
    assert_eq!(element_text(&xml, "sessionSecondsValid").unwrap(), "7200");
    assert!(xml.contains(r#"<roleId xsi:nil="true"/>"#));
    assert!(xml.contains(&format!("<userId>{}</userId>", user.as_str())));
    let session_id = element_text(&xml, "sessionId").unwrap();
    assert_eq!(t.limits_status(&session_id).await, 200);

    // Bad credentials: HTTP 500 with the LoginFault simple-salesforce reads.
    let resp = t
        .http
        .post(t.url("/services/Soap/u/59.0"))
        .header("content-type", "text/xml")
        .body(soap_login_envelope(&c.username, "wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 500);
    let xml = resp.text().await.unwrap();
    assert_eq!(element_text(&xml, "faultcode").unwrap(), "sf:INVALID_LOGIN");
    assert_eq!(
        element_text(&xml, "faultstring").unwrap(),
        "INVALID_LOGIN: Invalid username, password, security token; or user locked out."
    );
    assert_eq!(element_text(&xml, "sf:exceptionCode").unwrap(), "INVALID_LOGIN");
    assert_eq!(
        element_text(&xml, "sf:exceptionMessage").unwrap(),
        "Invalid username, password, security token; or user locked out."
    );
    assert!(xml.contains(r#"xmlns:sf="urn:fault.partner.soap.sforce.com""#));

    // Retired versions and unknown operations are faults too.
    let resp = t.http.post(t.url("/services/Soap/u/20.0")).body(soap_login_envelope("a", "b")).send().await.unwrap();
    assert_eq!(resp.status(), 500);
    assert_eq!(element_text(&resp.text().await.unwrap(), "sf:exceptionCode").unwrap(), "UNSUPPORTED_API_VERSION");
    let query = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><query xmlns="urn:partner.soap.sforce.com"/></s:Body></s:Envelope>"#;
    let resp = t.http.post(t.url("/services/Soap/u/59.0")).body(query).send().await.unwrap();
    assert_eq!(resp.status(), 500);
    assert_eq!(element_text(&resp.text().await.unwrap(), "faultcode").unwrap(), "soapenv:Client");
}
