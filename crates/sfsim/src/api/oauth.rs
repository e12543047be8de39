//! OAuth 2.0: the token endpoint (JWT bearer, client credentials, username-password, refresh
//! token, authorization code with PKCE), the authorize endpoint of the web-server flow, token
//! revocation, and the identity URL / userinfo (in [`identity`]).
//!
//! The simulated org has one connected app (`SimConfig.client_id`/`client_secret`, optionally a
//! certificate for JWT bearer) and one API user (`SimConfig.username`, the org's integration
//! user). Every flow logs that user in. The connected app accepts any callback URL, and the user
//! has pre-approved it, so the authorize endpoint approves at once (no login page).
//!
//! Access tokens are sessions in [`crate::auth::AuthStore`] and expire on the org clock.
//! Refresh tokens and authorization codes live here. Refresh tokens are valid until revoked
//! (Salesforce's default refresh-token policy); codes live 15 minutes on the org clock and are
//! single-use.

pub(crate) mod identity;
pub mod jwt;

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use jsonwebtoken::DecodingKey;
use parking_lot::Mutex;
use secrecy::ExposeSecret;
use serde_json::{Value as J, json};
use sha2::{Digest, Sha256};
use tidemark_core::SfId;

use super::AppState;
use super::error::{OAuthError, json_body};
use crate::auth::random_token;

pub const GRANT_JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// How long an authorization code can be exchanged (org clock).
pub const CODE_LIFETIME_MILLIS: i64 = 15 * 60 * 1000;
/// Scopes of the simulated connected app; a web-server request may ask for a subset.
pub const APP_SCOPES: [&str; 9] = ["api", "web", "full", "id", "profile", "email", "address", "phone", "refresh_token"];
/// Scopes reported by flows that carry a `scope` but no user choice.
const DEFAULT_SCOPE: &str = "api web id";

/// Refresh tokens, authorization codes and the JWT verification key.
#[derive(Default)]
pub struct OAuthStore {
    refresh_tokens: Mutex<HashMap<String, RefreshGrant>>,
    codes: Mutex<HashMap<String, AuthCode>>,
    jwt_key: OnceLock<Option<DecodingKey>>,
}

impl std::fmt::Debug for OAuthStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthStore")
            .field("refresh_tokens", &self.refresh_tokens.lock().len())
            .field("codes", &self.codes.lock().len())
            .finish()
    }
}

struct RefreshGrant {
    user_id: SfId,
    client_id: String,
    scope: String,
    /// Access tokens minted from this grant; revoking the refresh token revokes them too.
    access_tokens: Vec<String>,
}

struct AuthCode {
    user_id: SfId,
    client_id: String,
    redirect_uri: String,
    scope: String,
    challenge: Option<(String, ChallengeMethod)>,
    expires_millis: i64,
    used: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChallengeMethod {
    S256,
    Plain,
}

impl OAuthStore {
    /// The verification key of the configured certificate, parsed once. A certificate that does
    /// not parse disables the JWT flow (logged once, without its content).
    fn jwt_key(&self, pem: Option<&str>) -> Option<&DecodingKey> {
        self.jwt_key
            .get_or_init(|| {
                let pem = pem?;
                match jwt::decoding_key_from_certificate(pem) {
                    Ok(k) => Some(k),
                    Err(e) => {
                        tracing::warn!(error = %e, "JWT bearer flow disabled: unusable certificate");
                        None
                    }
                }
            })
            .as_ref()
    }

    fn new_refresh_token(&self, org_id: &SfId, user_id: SfId, client_id: &str, scope: &str, access_token: &str) -> String {
        let token = format!("5Aep861{}{}", org_id.short(), random_token(64));
        let grant = RefreshGrant {
            user_id,
            client_id: client_id.to_owned(),
            scope: scope.to_owned(),
            access_tokens: vec![access_token.to_owned()],
        };
        self.refresh_tokens.lock().insert(token.clone(), grant);
        token
    }

    /// Revokes a refresh token and every access token minted from it.
    fn revoke_refresh(&self, token: &str) -> Option<Vec<String>> {
        self.refresh_tokens.lock().remove(token).map(|g| g.access_tokens)
    }

    /// Number of live refresh tokens (admin/diagnostics).
    pub fn refresh_token_count(&self) -> usize {
        self.refresh_tokens.lock().len()
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/services/oauth2/token", post(token))
        .route("/services/oauth2/authorize", get(authorize))
        .route("/services/oauth2/revoke", post(revoke_post).get(revoke_get))
        .merge(identity::routes())
}

/// Form parameters, from the body and (as Salesforce also accepts) the query string.
struct Params(HashMap<String, String>);

impl Params {
    fn parse(query: Option<&str>, body: &[u8]) -> Params {
        let mut map = HashMap::new();
        if let Some(q) = query
            && let Ok(pairs) = serde_urlencoded::from_str::<Vec<(String, String)>>(q)
        {
            map.extend(pairs);
        }
        if let Ok(pairs) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(body) {
            map.extend(pairs);
        }
        Params(map)
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }
}

fn invalid_client_id() -> OAuthError {
    OAuthError::new("invalid_client_id", "client identifier invalid")
}

fn invalid_client() -> OAuthError {
    OAuthError::new("invalid_client", "invalid client credentials")
}

fn expired_token() -> OAuthError {
    OAuthError::new("invalid_grant", "expired access/refresh token")
}

/// Client id and secret from the form or from HTTP Basic authentication.
fn client_auth(params: &Params, headers: &HeaderMap) -> (Option<String>, Option<String>) {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.split_once(':').map(|(i, s)| (i.to_owned(), s.to_owned())));
    let id = params.get("client_id").map(str::to_owned).or_else(|| basic.as_ref().map(|b| b.0.clone()));
    let secret = params.get("client_secret").map(str::to_owned).or_else(|| basic.map(|b| b.1));
    (id, secret)
}

fn check_client_id(state: &AppState, id: Option<&str>) -> Result<(), OAuthError> {
    if id == Some(state.config.client_id.as_str()) { Ok(()) } else { Err(invalid_client_id()) }
}

fn check_secret(state: &AppState, secret: Option<&str>) -> Result<(), OAuthError> {
    if secret == Some(state.config.client_secret.expose_secret()) { Ok(()) } else { Err(invalid_client()) }
}

/// `password`, or `password` followed by the security token (both accepted, as from a trusted
/// IP range).
pub(crate) fn password_matches(state: &AppState, given: &str) -> bool {
    let password = state.config.password.expose_secret();
    let token = state.config.security_token.expose_secret();
    given == password || given.strip_prefix(password) == Some(token)
}

pub(crate) fn username_matches(state: &AppState, given: &str) -> bool {
    given.eq_ignore_ascii_case(&state.config.username)
}

/// What one grant produced, shaped per flow as Salesforce answers it.
struct Grant {
    user_id: SfId,
    client_id: String,
    scope: Option<String>,
    /// Whether the response carries `issued_at` and `signature` (not for JWT bearer).
    signed: bool,
    /// Issue a refresh token bound to this scope.
    refresh_scope: Option<String>,
}

/// `POST /services/oauth2/token`.
async fn token(State(state): State<AppState>, uri: axum::http::Uri, headers: HeaderMap, body: Bytes) -> Response {
    let params = Params::parse(uri.query(), &body);
    let result = match params.get("grant_type") {
        Some(GRANT_JWT_BEARER) => jwt_bearer(&state, &params),
        Some("client_credentials") => client_credentials(&state, &params, &headers),
        Some("password") => password(&state, &params, &headers),
        Some("refresh_token") => return refresh(&state, &params, &headers),
        Some("authorization_code") => authorization_code(&state, &params, &headers),
        _ => Err(OAuthError::new("unsupported_grant_type", "grant type not supported")),
    };
    match result {
        Ok(grant) => issue(&state, grant),
        Err(e) => {
            tracing::debug!(error = %e.error, "token request refused");
            e.into_response()
        }
    }
}

fn jwt_bearer(state: &AppState, params: &Params) -> Result<Grant, OAuthError> {
    let assertion = params.get("assertion").ok_or_else(|| OAuthError::new("invalid_grant", "invalid assertion"))?;
    let expect = jwt::Expectations {
        client_id: &state.config.client_id,
        username: &state.config.username,
        own_audience: state.base_url(),
        key: state.oauth.jwt_key(state.config.jwt_certificate_pem.as_deref()),
        wall_now_secs: chrono::Utc::now().timestamp(),
    };
    match jwt::verify(assertion, &expect) {
        Ok(_) => Ok(Grant {
            user_id: state.org.read().integration_user,
            client_id: state.config.client_id.clone(),
            scope: Some(DEFAULT_SCOPE.to_owned()),
            signed: false,
            refresh_scope: None,
        }),
        Err(jwt::AssertionError::UnknownClient) => Err(invalid_client_id()),
        Err(e) => Err(OAuthError::new("invalid_grant", e.to_string())),
    }
}

fn client_credentials(state: &AppState, params: &Params, headers: &HeaderMap) -> Result<Grant, OAuthError> {
    let (id, secret) = client_auth(params, headers);
    check_client_id(state, id.as_deref())?;
    check_secret(state, secret.as_deref())?;
    Ok(Grant {
        user_id: state.org.read().integration_user,
        client_id: state.config.client_id.clone(),
        scope: Some(DEFAULT_SCOPE.to_owned()),
        signed: true,
        refresh_scope: None,
    })
}

fn password(state: &AppState, params: &Params, headers: &HeaderMap) -> Result<Grant, OAuthError> {
    let (id, secret) = client_auth(params, headers);
    check_client_id(state, id.as_deref())?;
    check_secret(state, secret.as_deref())?;
    let username = params.get("username").unwrap_or("");
    if !username_matches(state, username) {
        return Err(OAuthError::new("invalid_grant", "authentication failure"));
    }
    if !password_matches(state, params.get("password").unwrap_or("")) {
        return Err(OAuthError::new("invalid_grant", "authentication failure - Invalid Password"));
    }
    Ok(Grant {
        user_id: state.org.read().integration_user,
        client_id: state.config.client_id.clone(),
        scope: None,
        signed: true,
        refresh_scope: None,
    })
}

/// The refresh grant mints an access token only; the refresh token stays the same (no rotation).
fn refresh(state: &AppState, params: &Params, headers: &HeaderMap) -> Response {
    let (id, secret) = client_auth(params, headers);
    if let Err(e) = check_client_id(state, id.as_deref()) {
        return e.into_response();
    }
    if secret.is_some()
        && let Err(e) = check_secret(state, secret.as_deref())
    {
        return e.into_response();
    }
    let Some(refresh_token) = params.get("refresh_token") else {
        return expired_token().into_response();
    };
    let now = state.now_millis();
    let mut grants = state.oauth.refresh_tokens.lock();
    let Some(grant) = grants.get_mut(refresh_token).filter(|g| Some(g.client_id.as_str()) == id.as_deref()) else {
        return expired_token().into_response();
    };
    let access_token = state.auth.issue(grant.user_id, &grant.client_id, now);
    grant.access_tokens.push(access_token.clone());
    let (user_id, scope) = (grant.user_id, grant.scope.clone());
    drop(grants);
    token_response(state, &access_token, user_id, now, Some(&scope), true, None)
}

fn authorization_code(state: &AppState, params: &Params, headers: &HeaderMap) -> Result<Grant, OAuthError> {
    let (id, secret) = client_auth(params, headers);
    check_client_id(state, id.as_deref())?;
    let code = params.get("code").ok_or_else(|| OAuthError::new("invalid_grant", "invalid authorization code"))?;
    let now = state.now_millis();
    let mut codes = state.oauth.codes.lock();
    let entry = codes.get_mut(code).ok_or_else(|| OAuthError::new("invalid_grant", "invalid authorization code"))?;
    if entry.used || entry.expires_millis <= now {
        return Err(OAuthError::new("invalid_grant", "expired authorization code"));
    }
    if Some(entry.client_id.as_str()) != id.as_deref() {
        return Err(OAuthError::new("invalid_grant", "invalid authorization code"));
    }
    if params.get("redirect_uri") != Some(entry.redirect_uri.as_str()) {
        return Err(OAuthError::new("redirect_uri_mismatch", "redirect_uri must match configuration"));
    }
    // A PKCE verifier replaces the secret for public clients; a secret, if sent, must match.
    match &entry.challenge {
        Some((challenge, method)) => {
            let verifier =
                params.get("code_verifier").ok_or_else(|| OAuthError::new("invalid_grant", "invalid code verifier"))?;
            if !verifier_matches(verifier, challenge, *method) {
                return Err(OAuthError::new("invalid_grant", "invalid code verifier"));
            }
            if secret.is_some() {
                check_secret(state, secret.as_deref())?;
            }
        }
        None => check_secret(state, secret.as_deref())?,
    }
    entry.used = true;
    let scope = entry.scope.clone();
    let refresh_scope = scope.split(' ').any(|s| s == "refresh_token" || s == "offline_access").then(|| scope.clone());
    Ok(Grant { user_id: entry.user_id, client_id: entry.client_id.clone(), scope: Some(scope), signed: true, refresh_scope })
}

fn verifier_matches(verifier: &str, challenge: &str, method: ChallengeMethod) -> bool {
    match method {
        ChallengeMethod::Plain => verifier == challenge,
        ChallengeMethod::S256 => URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == challenge,
    }
}

fn issue(state: &AppState, grant: Grant) -> Response {
    let now = state.now_millis();
    let access_token = state.auth.issue(grant.user_id, &grant.client_id, now);
    let org_id = state.org.read().org_id;
    let refresh_token = grant
        .refresh_scope
        .as_deref()
        .map(|scope| state.oauth.new_refresh_token(&org_id, grant.user_id, &grant.client_id, scope, &access_token));
    tracing::debug!(user = %grant.user_id, refresh = refresh_token.is_some(), "access token issued");
    token_response(state, &access_token, grant.user_id, now, grant.scope.as_deref(), grant.signed, refresh_token.as_deref())
}

/// The identity URL of a user: `<base>/id/<orgId>/<userId>`.
pub fn identity_url(state: &AppState, user_id: &SfId) -> String {
    let org_id = state.org.read().org_id;
    format!("{}/id/{}/{}", state.base_url(), org_id.as_str(), user_id.as_str())
}

/// `signature`: base64 HMAC-SHA256 of `id + issued_at`, keyed by the consumer secret, so the
/// client can check the response came from the server that knows its secret.
pub fn token_signature(client_secret: &str, id_url: &str, issued_at: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(client_secret.as_bytes()) else {
        return String::new();
    };
    mac.update(id_url.as_bytes());
    mac.update(issued_at.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

fn token_response(
    state: &AppState,
    access_token: &str,
    user_id: SfId,
    issued_millis: i64,
    scope: Option<&str>,
    signed: bool,
    refresh_token: Option<&str>,
) -> Response {
    let id_url = identity_url(state, &user_id);
    let mut body = serde_json::Map::new();
    body.insert("access_token".into(), json!(access_token));
    if let Some(r) = refresh_token {
        body.insert("refresh_token".into(), json!(r));
    }
    let issued_at = issued_millis.to_string();
    if signed {
        let signature = token_signature(state.config.client_secret.expose_secret(), &id_url, &issued_at);
        body.insert("signature".into(), json!(signature));
    }
    if let Some(s) = scope {
        body.insert("scope".into(), json!(s));
    }
    body.insert("instance_url".into(), json!(state.base_url()));
    body.insert("id".into(), json!(id_url));
    body.insert("token_type".into(), json!("Bearer"));
    if signed {
        body.insert("issued_at".into(), json!(issued_at));
    }
    let mut resp = (StatusCode::OK, json_body(&J::Object(body))).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json;charset=UTF-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache,must-revalidate,max-age=0,no-store,private"));
    resp
}

/// `GET /services/oauth2/authorize` of the web-server flow: approves at once and redirects to
/// the callback with `code` (and `state`). Errors that cannot be sent to a trusted callback are
/// shown as a 400 page, as Salesforce does.
async fn authorize(State(state): State<AppState>, Query(params): Query<HashMap<String, String>>) -> Response {
    let params = Params(params);
    let error_page = |error: &str, description: &str| {
        let body = serde_urlencoded::to_string([("error", error), ("error_description", description)]).unwrap_or_default();
        (StatusCode::BAD_REQUEST, [(header::CONTENT_TYPE, "text/plain;charset=UTF-8")], body).into_response()
    };
    if check_client_id(&state, params.get("client_id")).is_err() {
        return error_page("invalid_client_id", "client identifier invalid");
    }
    let Some(redirect_uri) = params.get("redirect_uri").filter(|r| r.contains(':')) else {
        return error_page("redirect_uri_mismatch", "redirect_uri must match configuration");
    };
    let redirect_with = |pairs: Vec<(&str, &str)>| {
        let mut pairs = pairs;
        if let Some(s) = params.get("state") {
            pairs.push(("state", s));
        }
        let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        let sep = if redirect_uri.contains('?') { '&' } else { '?' };
        let location = format!("{redirect_uri}{sep}{query}");
        match HeaderValue::from_str(&location) {
            Ok(v) => (StatusCode::FOUND, [(header::LOCATION, v)]).into_response(),
            Err(_) => error_page("redirect_uri_mismatch", "redirect_uri must match configuration"),
        }
    };
    if params.get("response_type") != Some("code") {
        return redirect_with(vec![("error", "unsupported_response_type"), ("error_description", "response type not supported")]);
    }
    let scope = match params.get("scope") {
        None => APP_SCOPES.join(" "),
        Some(requested) => {
            let scopes: Vec<&str> = requested.split([' ', '+']).filter(|s| !s.is_empty()).collect();
            if scopes.iter().any(|s| !APP_SCOPES.contains(s) && *s != "offline_access") {
                return redirect_with(vec![
                    ("error", "invalid_scope"),
                    ("error_description", "the requested scope is not allowed"),
                ]);
            }
            scopes.join(" ")
        }
    };
    let challenge = match (params.get("code_challenge"), params.get("code_challenge_method")) {
        (None, _) => None,
        // Salesforce's challenge is the SHA-256 of the verifier; `plain` is accepted on request.
        (Some(c), None | Some("S256")) => Some((c.to_owned(), ChallengeMethod::S256)),
        (Some(c), Some("plain")) => Some((c.to_owned(), ChallengeMethod::Plain)),
        (Some(_), Some(_)) => {
            return redirect_with(vec![("error", "invalid_request"), ("error_description", "invalid code_challenge_method")]);
        }
    };
    let (user_id, now, org_short) = {
        let org = state.org.read();
        (org.integration_user, org.now_millis(), org.org_id.short().to_owned())
    };
    let code = format!("aPrx{}{}", org_short, random_token(48));
    {
        let mut codes = state.oauth.codes.lock();
        codes.retain(|_, c| !c.used && c.expires_millis > now);
        codes.insert(
            code.clone(),
            AuthCode {
                user_id,
                client_id: state.config.client_id.clone(),
                redirect_uri: redirect_uri.to_owned(),
                scope,
                challenge,
                expires_millis: now + CODE_LIFETIME_MILLIS,
                used: false,
            },
        );
    }
    redirect_with(vec![("code", &code)])
}

async fn revoke_post(State(state): State<AppState>, uri: axum::http::Uri, body: Bytes) -> Response {
    revoke(&state, &Params::parse(uri.query(), &body))
}

async fn revoke_get(State(state): State<AppState>, uri: axum::http::Uri) -> Response {
    revoke(&state, &Params::parse(uri.query(), b""))
}

/// Revokes an access token, or a refresh token with every access token minted from it. An
/// unknown token answers 400 with a form-encoded body (observed Salesforce behaviour).
fn revoke(state: &AppState, params: &Params) -> Response {
    let token = params.get("token").unwrap_or("");
    let revoked = if let Some(access_tokens) = state.oauth.revoke_refresh(token) {
        for t in &access_tokens {
            state.auth.revoke(t);
        }
        true
    } else {
        state.auth.revoke(token)
    };
    if revoked {
        tracing::debug!("token revoked");
        return (StatusCode::OK, [(header::CACHE_CONTROL, "no-store")]).into_response();
    }
    let body = serde_urlencoded::to_string([
        ("error", "unsupported_token_type"),
        ("error_description", "this token type is not supported"),
    ])
    .unwrap_or_default()
    .replace('+', "%20");
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "application/x-www-form-urlencoded"), (header::CACHE_CONTROL, "no-store")],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_verifiers() {
        // RFC 7636 appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(verifier_matches(verifier, challenge, ChallengeMethod::S256));
        assert!(!verifier_matches("other", challenge, ChallengeMethod::S256));
        assert!(verifier_matches("abc", "abc", ChallengeMethod::Plain));
        assert!(!verifier_matches("abc", challenge, ChallengeMethod::Plain));
    }

    #[test]
    fn signature_is_hmac_of_id_and_issued_at() {
        let sig = token_signature("secret", "https://x/id/00D/005", "1278448832702");
        let mut mac = Hmac::<Sha256>::new_from_slice(b"secret").unwrap();
        mac.update(b"https://x/id/00D/0051278448832702");
        assert_eq!(STANDARD.decode(&sig).unwrap(), mac.finalize().into_bytes().to_vec());
    }
}
