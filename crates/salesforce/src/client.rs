//! The request executor every Salesforce call goes through: session handling, retries with
//! backoff, usage tracking and the API budget.

use std::time::Duration;

use bytes::Bytes;
use reqwest::{Method, StatusCode, header::HeaderMap};
use secrecy::ExposeSecret;
use serde::Deserialize;
use tokio::sync::RwLock;

use crate::auth::{AuthConfig, Session};
use crate::error::SalesforceError;
use crate::retry::{RetryPolicy, parse_retry_after};
use crate::usage::{ApiBudget, ApiUsage};

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// API version used in every path, e.g. `"66.0"`.
    pub api_version: String,
    pub retry: RetryPolicy,
    /// Percent of the org's daily allocation this client may use before stopping.
    pub budget_percent: u32,
    /// Per-request timeout (connect + full body).
    pub request_timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            api_version: "66.0".to_owned(),
            retry: RetryPolicy::default(),
            budget_percent: 80,
            request_timeout: Duration::from_secs(600),
        }
    }
}

/// A fully read response.
#[derive(Debug)]
pub struct RawResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json<T: serde::de::DeserializeOwned>(&self, what: &str) -> Result<T, SalesforceError> {
        serde_json::from_slice(&self.body).map_err(|e| SalesforceError::Decode { what: what.to_owned(), detail: e.to_string() })
    }
}

/// A request to make: method, URL (absolute, or a path below the instance URL) and body.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    /// `/services/data/v66.0/...` or an absolute URL.
    pub path: String,
    pub query: Vec<(String, String)>,
    pub json: Option<serde_json::Value>,
    pub accept: Option<&'static str>,
    pub headers: Vec<(&'static str, String)>,
}

impl Request {
    pub fn get(path: impl Into<String>) -> Request {
        Request { method: Method::GET, path: path.into(), query: Vec::new(), json: None, accept: None, headers: Vec::new() }
    }

    pub fn post_json(path: impl Into<String>, body: serde_json::Value) -> Request {
        Request {
            method: Method::POST,
            path: path.into(),
            query: Vec::new(),
            json: Some(body),
            accept: None,
            headers: Vec::new(),
        }
    }

    pub fn query(mut self, key: &str, value: impl Into<String>) -> Request {
        self.query.push((key.to_owned(), value.into()));
        self
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Request {
        self.headers.push((name, value.into()));
        self
    }

    pub fn accept(mut self, mime: &'static str) -> Request {
        self.accept = Some(mime);
        self
    }
}

/// A Salesforce API client. Cheap to share behind an `Arc`; safe to use from many tasks.
#[derive(Debug)]
pub struct SalesforceClient {
    http: reqwest::Client,
    auth: AuthConfig,
    session: RwLock<Option<Session>>,
    config: ClientConfig,
    budget: ApiBudget,
    /// Requests sent (each retry counts: the org counts it too).
    requests: std::sync::atomic::AtomicU64,
    /// The org's clock as of the latest response (`Date` header).
    server_time: parking_lot::Mutex<Option<chrono::DateTime<chrono::Utc>>>,
}

#[derive(Deserialize)]
struct ErrorItem {
    #[serde(rename = "errorCode")]
    error_code: String,
    #[serde(default)]
    message: String,
}

impl SalesforceClient {
    /// Builds a client and logs in.
    pub async fn connect(auth: AuthConfig, config: ClientConfig) -> Result<SalesforceClient, SalesforceError> {
        Self::connect_with(reqwest::Client::builder(), auth, config).await
    }

    /// Like [`connect`](Self::connect) with a prepared HTTP client builder (extra root
    /// certificates, proxies).
    pub async fn connect_with(
        builder: reqwest::ClientBuilder,
        auth: AuthConfig,
        config: ClientConfig,
    ) -> Result<SalesforceClient, SalesforceError> {
        let http = builder
            .timeout(config.request_timeout)
            .gzip(true)
            .build()
            .map_err(|e| SalesforceError::Config(format!("building the HTTP client failed: {e}")))?;
        let client = SalesforceClient {
            budget: ApiBudget::new(config.budget_percent),
            http,
            auth,
            session: RwLock::new(None),
            config,
            requests: std::sync::atomic::AtomicU64::new(0),
            server_time: parking_lot::Mutex::new(None),
        };
        client.renew_session().await?;
        Ok(client)
    }

    /// Like [`connect`](Self::connect), also trusting the root certificates in `ca_pem` (a
    /// private CA, or the simulator's local one).
    pub async fn connect_trusting(
        auth: AuthConfig,
        config: ClientConfig,
        ca_pem: &[u8],
    ) -> Result<SalesforceClient, SalesforceError> {
        let certs = reqwest::Certificate::from_pem_bundle(ca_pem)
            .map_err(|e| SalesforceError::Config(format!("the CA file is not PEM certificates: {e}")))?;
        let builder = certs.into_iter().fold(reqwest::Client::builder(), |b, c| b.add_root_certificate(c));
        Self::connect_with(builder, auth, config).await
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// `/services/data/vNN.N`
    pub fn data_path(&self) -> String {
        format!("/services/data/v{}", self.config.api_version)
    }

    /// The latest `Sforce-Limit-Info` usage seen.
    pub fn api_usage(&self) -> Option<ApiUsage> {
        self.budget.last()
    }

    /// Requests sent so far, retries included.
    pub fn requests_sent(&self) -> u64 {
        self.requests.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The org's time according to the latest response's `Date` header (second precision).
    /// Versions Tidemark stamps itself (hard deletes, formula snapshots) use it, so they sit
    /// on the org's timeline rather than the local machine's.
    pub fn server_time(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        *self.server_time.lock()
    }

    pub async fn instance_url(&self) -> Option<String> {
        self.session.read().await.as_ref().map(|s| s.instance_url.clone())
    }

    async fn renew_session(&self) -> Result<Session, SalesforceError> {
        let session = self.auth.login(&self.http).await?;
        *self.session.write().await = Some(session.clone());
        tracing::debug!(instance_url = %session.instance_url, "authenticated");
        Ok(session)
    }

    async fn current_session(&self) -> Result<Session, SalesforceError> {
        if let Some(s) = self.session.read().await.as_ref() {
            return Ok(s.clone());
        }
        self.renew_session().await
    }

    /// Executes a request with retries. Succeeds only with a 2xx; the body is read fully, so a
    /// connection dropped mid-body is retried like any transport failure.
    pub async fn execute(&self, req: &Request) -> Result<RawResponse, SalesforceError> {
        let mut attempt = 0u32;
        let mut renewed = false;
        loop {
            attempt += 1;
            if let Some(usage) = self.budget.exhausted() {
                return Err(SalesforceError::BudgetExhausted {
                    used: usage.used,
                    max: usage.max,
                    budget_percent: self.budget.percent(),
                });
            }
            let session = self.current_session().await?;
            let result = self.send_once(&session, req).await;
            let err = match result {
                Ok(resp) => return Ok(resp),
                Err(e) => e,
            };
            if err.error_code() == Some("INVALID_SESSION_ID") && self.auth.can_renew() && !renewed {
                renewed = true;
                attempt -= 1;
                self.renew_session().await?;
                continue;
            }
            if !err.is_retryable() || attempt >= self.config.retry.max_attempts {
                return Err(err);
            }
            let retry_after = match &err {
                SalesforceError::Api { retry_after, .. } => *retry_after,
                _ => None,
            };
            let wait = self.config.retry.backoff(attempt, retry_after);
            tracing::warn!(attempt, wait_ms = wait.as_millis() as u64, error = %err, "retrying Salesforce request");
            tokio::time::sleep(wait).await;
        }
    }

    async fn send_once(&self, session: &Session, req: &Request) -> Result<RawResponse, SalesforceError> {
        let url = if req.path.starts_with("http://") || req.path.starts_with("https://") {
            req.path.clone()
        } else {
            format!("{}{}", session.instance_url, req.path)
        };
        let mut builder = self.http.request(req.method.clone(), &url).bearer_auth(session.access_token.expose_secret());
        if !req.query.is_empty() {
            builder = builder.query(&req.query);
        }
        if let Some(body) = &req.json {
            builder = builder.json(body);
        }
        for (name, value) in &req.headers {
            builder = builder.header(*name, value);
        }
        if let Some(accept) = req.accept {
            builder = builder.header(reqwest::header::ACCEPT, accept);
        }
        let transport =
            |source: reqwest::Error| SalesforceError::Transport { url: strip_query(&url), source: source.without_url() };
        self.requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let resp = builder.send().await.map_err(transport)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        if let Some(date) = headers.get(reqwest::header::DATE).and_then(|v| v.to_str().ok()) {
            if let Ok(t) = chrono::DateTime::parse_from_rfc2822(date) {
                let t = t.with_timezone(&chrono::Utc);
                let mut seen = self.server_time.lock();
                // Responses can arrive out of order across tasks; the clock only moves forward.
                if seen.is_none_or(|s| s < t) {
                    *seen = Some(t);
                }
            }
        }
        if let Some(usage) = headers.get("Sforce-Limit-Info").and_then(|v| v.to_str().ok()).and_then(ApiUsage::parse) {
            self.budget.record(usage);
        }
        let body = resp.bytes().await.map_err(transport)?;
        if status.is_success() {
            return Ok(RawResponse { status, headers, body });
        }
        let retry_after = headers.get("Retry-After").and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
        let (error_code, message) = match serde_json::from_slice::<Vec<ErrorItem>>(&body) {
            Ok(items) if !items.is_empty() => (items[0].error_code.clone(), items[0].message.clone()),
            _ => (format!("HTTP_{}", status.as_u16()), String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned()),
        };
        Err(SalesforceError::Api { status: status.as_u16(), error_code, message, retry_after })
    }
}

/// URLs in errors lose their query string: SOQL in it may contain record values.
fn strip_query(url: &str) -> String {
    url.split('?').next().unwrap_or(url).to_owned()
}
