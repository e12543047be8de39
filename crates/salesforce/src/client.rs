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

/// A fully read response. `Debug` shows the status and body size, not the body.
pub struct RawResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl std::fmt::Debug for RawResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawResponse").field("status", &self.status).field("body_bytes", &self.body.len()).finish()
    }
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json<T: serde::de::DeserializeOwned>(&self, what: &str) -> Result<T, SalesforceError> {
        serde_json::from_slice(&self.body).map_err(|e| SalesforceError::Decode { what: what.to_owned(), detail: e.to_string() })
    }
}

/// What a request sends.
#[derive(Clone, Default)]
pub enum Body {
    #[default]
    None,
    /// Sent as `application/json`.
    Json(serde_json::Value),
    /// Bytes with their content type, e.g. a Bulk upload as `text/csv`.
    Raw { content_type: &'static str, bytes: Bytes },
    /// The inside of a SOAP partner `<soapenv:Body>`: the executor wraps it in an envelope whose
    /// `SessionHeader` carries the current session at each attempt, so a session renewed
    /// mid-call is used by the replay and the token never sits in the request.
    Soap { operation: &'static str, body_xml: String },
}

impl Body {
    fn kind(&self) -> &'static str {
        match self {
            Body::None => "none",
            Body::Json(_) => "json",
            Body::Raw { .. } => "raw",
            Body::Soap { .. } => "soap",
        }
    }

    fn len_hint(&self) -> Option<usize> {
        match self {
            Body::None | Body::Json(_) => None,
            Body::Raw { bytes, .. } => Some(bytes.len()),
            Body::Soap { body_xml, .. } => Some(body_xml.len()),
        }
    }
}

/// A request to make: method, URL (absolute, or a path below the instance URL) and body.
///
/// `Debug` shows the method, the path, the names of query parameters and headers and the kind
/// and size of the body, never their values: a body or a query string (SOQL, ids) may hold
/// customer data.
#[derive(Clone)]
pub struct Request {
    pub method: Method,
    /// `/services/data/v66.0/...` or an absolute URL.
    pub path: String,
    pub query: Vec<(String, String)>,
    pub body: Body,
    pub accept: Option<&'static str>,
    pub headers: Vec<(&'static str, String)>,
    /// Whether sending the request twice has the same effect as once (true by default). When
    /// false (inserts, Bulk uploads) the executor repeats it only after failures that prove
    /// Salesforce did not apply it (no connection made, or Salesforce answered with an error);
    /// a failure after sending becomes [`SalesforceError::OutcomeUnknown`].
    pub idempotent: bool,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let query: Vec<&str> = self.query.iter().map(|(k, _)| k.as_str()).collect();
        let headers: Vec<&str> = self.headers.iter().map(|(k, _)| *k).collect();
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("path", &strip_query(&self.path))
            .field("query_keys", &query)
            .field("body", &self.body.kind())
            .field("body_bytes", &self.body.len_hint())
            .field("accept", &self.accept)
            .field("header_names", &headers)
            .field("idempotent", &self.idempotent)
            .finish()
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Body::{}", self.kind())?;
        if let Some(n) = self.len_hint() {
            write!(f, "({n} bytes)")?;
        }
        Ok(())
    }
}

impl Request {
    fn new(method: Method, path: impl Into<String>, body: Body) -> Request {
        Request { method, path: path.into(), query: Vec::new(), body, accept: None, headers: Vec::new(), idempotent: true }
    }

    pub fn get(path: impl Into<String>) -> Request {
        Request::new(Method::GET, path, Body::None)
    }

    pub fn delete(path: impl Into<String>) -> Request {
        Request::new(Method::DELETE, path, Body::None)
    }

    pub fn post_json(path: impl Into<String>, body: serde_json::Value) -> Request {
        Request::new(Method::POST, path, Body::Json(body))
    }

    pub fn patch_json(path: impl Into<String>, body: serde_json::Value) -> Request {
        Request::new(Method::PATCH, path, Body::Json(body))
    }

    /// Any method with raw bytes, e.g. `PUT` of a CSV upload as `text/csv`.
    pub fn raw(method: Method, path: impl Into<String>, content_type: &'static str, bytes: Bytes) -> Request {
        Request::new(method, path, Body::Raw { content_type, bytes })
    }

    /// A SOAP partner call: `POST /services/Soap/u/{version}` with `body_xml` (the elements
    /// inside `<soapenv:Body>`, in the `urn:partner.soap.sforce.com` namespace bound to `urn`).
    pub fn soap(path: impl Into<String>, operation: &'static str, body_xml: String) -> Request {
        Request::new(Method::POST, path, Body::Soap { operation, body_xml })
    }

    /// Marks the request as unsafe to repeat (see [`Request::idempotent`]).
    pub fn non_idempotent(mut self) -> Request {
        self.idempotent = false;
        self
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

    /// Records usage reported outside `Sforce-Limit-Info` (SOAP's `LimitInfoHeader`).
    pub(crate) fn record_usage(&self, usage: ApiUsage) {
        self.budget.record(usage);
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
            if !req.idempotent && err.is_retryable() && !not_applied(&err) {
                return Err(SalesforceError::OutcomeUnknown {
                    what: format!("{} {}", req.method, strip_query(&req.path)),
                    source: Box::new(err),
                });
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
        match &req.body {
            Body::None => {}
            Body::Json(body) => builder = builder.json(body),
            Body::Raw { content_type, bytes } => {
                builder = builder.header(reqwest::header::CONTENT_TYPE, *content_type).body(bytes.clone());
            }
            Body::Soap { operation, body_xml } => {
                let envelope = crate::soap::envelope(session.access_token.expose_secret(), body_xml);
                builder = builder
                    .header(reqwest::header::CONTENT_TYPE, "text/xml; charset=UTF-8")
                    .header("SOAPAction", *operation)
                    .body(envelope);
            }
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
        if let Some((code, message)) = crate::soap::parse_fault(&body) {
            return Err(SalesforceError::SoapFault { code, message });
        }
        let (error_code, message) = match serde_json::from_slice::<Vec<ErrorItem>>(&body) {
            Ok(items) if !items.is_empty() => (items[0].error_code.clone(), items[0].message.clone()),
            _ => (format!("HTTP_{}", status.as_u16()), String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned()),
        };
        Err(SalesforceError::Api { status: status.as_u16(), error_code, message, retry_after })
    }
}

/// Whether a failed attempt proves the request was not applied, so even a non-idempotent request
/// may be repeated: no connection was made, or Salesforce itself answered with an error (its API
/// calls are transactions: an error answer means nothing was committed). A connection that broke
/// or timed out after sending, or an error page that is not Salesforce's, proves nothing.
fn not_applied(err: &SalesforceError) -> bool {
    match err {
        SalesforceError::Transport { source, .. } => source.is_connect(),
        SalesforceError::Api { error_code, .. } => !error_code.starts_with("HTTP_"),
        SalesforceError::SoapFault { .. } => true,
        _ => false,
    }
}

/// URLs in errors lose their query string: SOQL in it may contain record values.
fn strip_query(url: &str) -> String {
    url.split('?').next().unwrap_or(url).to_owned()
}
