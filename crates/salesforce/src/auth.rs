//! OAuth 2.0 flows that obtain a session: JWT bearer, client credentials, refresh token,
//! username-password, or a session given directly.

use std::time::{SystemTime, UNIX_EPOCH};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::error::SalesforceError;

/// How to authenticate. `Debug` never shows secrets (they are `SecretString`s).
#[derive(Debug, Clone)]
pub enum AuthConfig {
    /// JWT bearer: a connected app's consumer key, the user, and the private key (PEM) whose
    /// certificate is uploaded to the app. No refresh token; a new assertion each time.
    JwtBearer { login_url: String, client_id: String, username: String, private_key_pem: SecretString },
    /// Client credentials: runs as the app's configured execution user.
    ClientCredentials { login_url: String, client_id: String, client_secret: SecretString },
    /// A refresh token from an earlier web-server flow.
    RefreshToken { login_url: String, client_id: String, client_secret: Option<SecretString>, refresh_token: SecretString },
    /// Username and password (plus the security token, appended, where the org requires it).
    Password {
        login_url: String,
        client_id: String,
        client_secret: SecretString,
        username: String,
        password: SecretString,
        security_token: Option<SecretString>,
    },
    /// An access token obtained elsewhere. It cannot be renewed: expiry ends the run.
    Session { instance_url: String, access_token: SecretString },
}

/// A session: where the org is and the bearer token for it.
#[derive(Clone)]
pub struct Session {
    pub instance_url: String,
    pub access_token: SecretString,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("instance_url", &self.instance_url).finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    instance_url: String,
}

#[derive(Deserialize)]
struct TokenError {
    error: String,
    #[serde(default)]
    error_description: String,
}

impl AuthConfig {
    /// Whether a new session can be obtained without user interaction.
    pub fn can_renew(&self) -> bool {
        !matches!(self, AuthConfig::Session { .. })
    }

    /// Obtains a session.
    pub async fn login(&self, http: &reqwest::Client) -> Result<Session, SalesforceError> {
        let (login_url, form): (&str, Vec<(&str, String)>) = match self {
            AuthConfig::Session { instance_url, access_token } => {
                return Ok(Session {
                    instance_url: instance_url.trim_end_matches('/').to_owned(),
                    access_token: access_token.clone(),
                });
            }
            AuthConfig::JwtBearer { login_url, client_id, username, private_key_pem } => {
                let assertion = jwt_assertion(login_url, client_id, username, private_key_pem)?;
                (
                    login_url,
                    vec![("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer".to_owned()), ("assertion", assertion)],
                )
            }
            AuthConfig::ClientCredentials { login_url, client_id, client_secret } => (
                login_url,
                vec![
                    ("grant_type", "client_credentials".to_owned()),
                    ("client_id", client_id.clone()),
                    ("client_secret", client_secret.expose_secret().to_owned()),
                ],
            ),
            AuthConfig::RefreshToken { login_url, client_id, client_secret, refresh_token } => {
                let mut form = vec![
                    ("grant_type", "refresh_token".to_owned()),
                    ("client_id", client_id.clone()),
                    ("refresh_token", refresh_token.expose_secret().to_owned()),
                ];
                if let Some(secret) = client_secret {
                    form.push(("client_secret", secret.expose_secret().to_owned()));
                }
                (login_url, form)
            }
            AuthConfig::Password { login_url, client_id, client_secret, username, password, security_token } => {
                let mut pw = password.expose_secret().to_owned();
                if let Some(t) = security_token {
                    pw.push_str(t.expose_secret());
                }
                (
                    login_url,
                    vec![
                        ("grant_type", "password".to_owned()),
                        ("client_id", client_id.clone()),
                        ("client_secret", client_secret.expose_secret().to_owned()),
                        ("username", username.clone()),
                        ("password", pw),
                    ],
                )
            }
        };
        let url = format!("{}/services/oauth2/token", login_url.trim_end_matches('/'));
        let resp = http
            .post(&url)
            .form(&form)
            .send()
            .await
            .map_err(|source| SalesforceError::Transport { url: url.clone(), source: source.without_url() })?;
        let status = resp.status();
        let body =
            resp.bytes().await.map_err(|source| SalesforceError::Transport { url: url.clone(), source: source.without_url() })?;
        if !status.is_success() {
            return Err(match serde_json::from_slice::<TokenError>(&body) {
                Ok(e) => SalesforceError::OAuth { error: e.error, description: e.error_description },
                Err(_) if status.is_server_error() => SalesforceError::Api {
                    status: status.as_u16(),
                    error_code: "SERVER_ERROR".to_owned(),
                    message: "the token endpoint failed".to_owned(),
                    retry_after: None,
                },
                Err(_) => SalesforceError::OAuth { error: format!("http_{}", status.as_u16()), description: String::new() },
            });
        }
        let token: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| SalesforceError::Decode { what: "token response".to_owned(), detail: e.to_string() })?;
        Ok(Session {
            instance_url: token.instance_url.trim_end_matches('/').to_owned(),
            access_token: SecretString::from(token.access_token),
        })
    }
}

/// A signed RS256 assertion valid for three minutes, as Salesforce documents.
fn jwt_assertion(audience: &str, client_id: &str, username: &str, key_pem: &SecretString) -> Result<String, SalesforceError> {
    #[derive(serde::Serialize)]
    struct Claims<'a> {
        iss: &'a str,
        sub: &'a str,
        aud: &'a str,
        exp: u64,
    }
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(key_pem.expose_secret().as_bytes())
        .map_err(|e| SalesforceError::Config(format!("the JWT private key is not an RSA PEM key: {e}")))?;
    // The JWT's exp is checked against real time by Salesforce, so this uses the wall clock.
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let claims = Claims { iss: client_id, sub: username, aud: audience.trim_end_matches('/'), exp: now + 180 };
    jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256), &claims, &key)
        .map_err(|e| SalesforceError::Config(format!("signing the JWT assertion failed: {e}")))
}
