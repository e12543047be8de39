//! The HTTP surface: one axum router over a shared [`SimState`].
//!
//! Layout mirrors Salesforce's:
//! - `/services/data/` (versions, no auth) and `/services/data/vNN.N/...` (REST, Bulk 2.0),
//!   behind [`data_api_layer`]: version check, session check, faults, API allocation and the
//!   `Sforce-Limit-Info` header;
//! - `/services/oauth2/*` and `/id/*` (OAuth 2.0, identity), `/services/Soap/u/NN.N` (SOAP login
//!   and `undelete()`);
//! - `/services/async/NN.N/*` (Bulk API 1.0, session in `X-SFDC-Session`);
//! - `/__admin/*` (clock, change rounds, schema changes, faults, truth dump).

pub mod admin;
pub mod admin_rules;
pub mod bulk1;
pub mod bulk2_ingest;
pub mod bulk2_query;
pub mod collections;
pub mod error;
pub mod metadata;
pub mod oauth;
pub mod query;
pub mod records;
pub mod soap;
pub mod soap_undelete;

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use parking_lot::RwLock;
use tower::Layer;

use crate::auth::{AuthStore, Session};
use crate::config::SimConfig;
use crate::faults::{Faults, RequestFault};
use crate::limits::ApiUsage;
use crate::org::Org;
pub use error::{ApiError, OAuthError};

/// Oldest and newest API versions served. Older versions answer 410 GONE.
pub const MIN_VERSION: u32 = 31;
pub const MAX_VERSION: u32 = 66;

/// Everything the handlers share.
pub struct SimState {
    pub org: RwLock<Org>,
    pub config: SimConfig,
    pub auth: AuthStore,
    pub usage: ApiUsage,
    /// Bulk API batches created (Bulk 1.0) or processed (Bulk 2.0 ingest), for `/limits`.
    pub bulk_batches: ApiUsage,
    pub faults: Faults,
    pub cursors: query::CursorStore,
    pub bulk2_query_jobs: bulk2_query::QueryJobStore,
    pub bulk2_ingest_jobs: bulk2_ingest::IngestJobStore,
    pub bulk1_jobs: bulk1::Bulk1Store,
    pub oauth: oauth::OAuthStore,
    /// Scheme, host and port clients reach us at; set once the listener is bound.
    pub base_url: OnceLock<String>,
}

impl std::fmt::Debug for SimState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimState").field("base_url", &self.base_url.get()).finish_non_exhaustive()
    }
}

pub type AppState = Arc<SimState>;

impl SimState {
    pub fn new(org: Org, config: SimConfig) -> SimState {
        let auth = AuthStore::new(org.org_id, config.token_lifetime.num_milliseconds());
        SimState {
            usage: ApiUsage::new(config.daily_api_requests),
            bulk_batches: ApiUsage::new(crate::limits::DAILY_BULK_BATCHES),
            faults: Faults::new(config.seed),
            org: RwLock::new(org),
            auth,
            cursors: Default::default(),
            bulk2_query_jobs: Default::default(),
            bulk2_ingest_jobs: Default::default(),
            bulk1_jobs: Default::default(),
            oauth: Default::default(),
            config,
            base_url: OnceLock::new(),
        }
    }

    pub fn now_millis(&self) -> i64 {
        self.org.read().now_millis()
    }

    /// The org's stamp for dates it records itself (job and batch dates), see
    /// [`Org::stamp_millis`].
    pub fn stamp_millis(&self) -> i64 {
        self.org.read().stamp_millis()
    }

    pub fn base_url(&self) -> &str {
        self.base_url.get().map(String::as_str).unwrap_or("http://127.0.0.1")
    }
}

/// The API version of a `/services/data/vNN.N/...` request, e.g. `"66.0"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiVersion(pub String);

impl ApiVersion {
    pub fn major(&self) -> u32 {
        self.0.split('.').next().and_then(|m| m.parse().ok()).unwrap_or(MAX_VERSION)
    }
}

/// Parses a path segment `v66.0` (or `latest`) into a supported version.
pub fn parse_version_segment(seg: &str) -> Result<ApiVersion, ApiError> {
    if seg == "latest" {
        return Ok(ApiVersion(format!("{MAX_VERSION}.0")));
    }
    let parsed = seg.strip_prefix('v').and_then(|v| v.strip_suffix(".0")).and_then(|m| m.parse::<u32>().ok());
    match parsed {
        Some(m) if (MIN_VERSION..=MAX_VERSION).contains(&m) => Ok(ApiVersion(format!("{m}.0"))),
        Some(m) if (7..MIN_VERSION).contains(&m) => Err(ApiError::new(
            StatusCode::GONE,
            "GONE",
            format!("Version {m}.0 of the API is no longer supported. Use version {MIN_VERSION}.0 or later."),
        )),
        _ => Err(ApiError::not_found()),
    }
}

/// The release label of a version: 31.0 → "Summer '14", +0.5 year per release.
pub fn release_label(major: u32) -> String {
    // 31 = Summer '14; each version is one release; three releases a year (Spring, Summer, Winter).
    let n = major as i32 - 31;
    let seasons = ["Summer", "Winter", "Spring"];
    let season = seasons[(n.rem_euclid(3)) as usize];
    // Summer '14 (n=0), Winter '15 (n=1), Spring '15 (n=2), Summer '15 (n=3)…
    let year = 14 + (n + 2).div_euclid(3);
    format!("{season} '{year:02}")
}

/// The bearer token of a request (`Authorization: Bearer x` or the legacy `OAuth x`).
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("OAuth ")).map(str::trim)
}

/// Middleware for `/services/data/vNN.N/...`: version, session, faults, allocation, limit header.
async fn data_api_layer(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    // Inside `nest` the URI has the prefix stripped; the version lives in the original one.
    let full_path = req
        .extensions()
        .get::<axum::extract::OriginalUri>()
        .map(|u| u.0.path().to_owned())
        .unwrap_or_else(|| req.uri().path().to_owned());
    let seg = full_path.trim_start_matches("/services/data/").split('/').next().unwrap_or("").to_owned();
    let version = match parse_version_segment(&seg) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let now = state.now_millis();
    let Some(session) = bearer_token(req.headers()).and_then(|t| state.auth.validate(t, now)) else {
        return ApiError::invalid_session().into_response();
    };
    let (used, max) = match state.usage.try_consume(now) {
        Ok(counts) => counts,
        Err(counts) => return with_limit_info(ApiError::request_limit_exceeded().into_response(), counts),
    };
    let fault = state.faults.for_request();
    let latency = state.faults.config().latency_ms;
    if latency > 0 {
        // The simulator's own injected latency, not a test wait.
        tokio::time::sleep(std::time::Duration::from_millis(latency)).await;
    }
    let resp = match fault {
        Some(RequestFault::Http500) => ApiError::server_error().into_response(),
        Some(RequestFault::Http503) => ApiError::service_unavailable().into_response(),
        Some(RequestFault::ConcurrentLimit) => ApiError::concurrent_limit_exceeded().into_response(),
        Some(RequestFault::DropConnection) | None => {
            req.extensions_mut().insert(version);
            req.extensions_mut().insert(session);
            let resp = next.run(req).await;
            if fault == Some(RequestFault::DropConnection) { drop_mid_body(resp).await } else { resp }
        }
    };
    with_limit_info(resp, (used, max))
}

/// Every response, whatever its endpoint, carries the org's clock in `Date` ([`with_org_date`]).
async fn org_date_layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    with_org_date(resp, state.now_millis())
}

/// `Date` carries the org's clock, as a real org's server time on every endpoint: clients that
/// stamp versions themselves (hard deletes, formula snapshots) then stay on the org's timeline
/// even when the simulated clock is far from the wall clock. One response dated by the wall clock
/// (a login, the versions list) would move such a client's idea of server time years ahead.
fn with_org_date(mut resp: Response, now_millis: i64) -> Response {
    if let Some(t) = chrono::DateTime::from_timestamp_millis(now_millis) {
        if let Ok(v) = HeaderValue::from_str(&t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()) {
            resp.headers_mut().insert(http::header::DATE, v);
        }
    }
    resp
}

fn with_limit_info(mut resp: Response, (used, max): (u64, u64)) -> Response {
    if let Ok(v) = HeaderValue::from_str(&format!("api-usage={used}/{max}")) {
        resp.headers_mut().insert("Sforce-Limit-Info", v);
    }
    resp
}

/// Sends the head and the first half of the body, then breaks the connection.
pub async fn drop_mid_body(resp: Response) -> Response {
    use axum::body::Body;
    use http_body_util::BodyExt;
    let (parts, body) = resp.into_parts();
    let bytes = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => bytes::Bytes::new(),
    };
    let half = bytes.slice(..bytes.len() / 2);
    let stream = futures::stream::iter(vec![
        Ok::<_, std::io::Error>(half),
        Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "fault injection: connection dropped")),
    ]);
    Response::from_parts(parts, Body::from_stream(stream))
}

/// The session a data-API handler runs under (inserted by the middleware).
pub type SessionExt = axum::Extension<Session>;
/// The API version a data-API handler runs under (inserted by the middleware).
pub type VersionExt = axum::Extension<ApiVersion>;

/// The whole application.
pub fn router(state: AppState) -> Router {
    let data = Router::new()
        .merge(metadata::routes())
        .merge(query::routes())
        .merge(records::routes())
        .merge(collections::routes())
        .merge(bulk2_query::routes())
        .merge(bulk2_ingest::routes())
        .fallback(|| async { ApiError::not_found() })
        .layer(middleware::from_fn_with_state(state.clone(), data_api_layer));
    let routes = Router::new()
        .merge(metadata::unauthenticated_routes())
        .nest("/services/data/{version}", data)
        .merge(oauth::routes())
        .merge(soap::routes())
        .merge(bulk1::routes())
        .merge(admin::routes(state.clone()))
        .layer(middleware::from_fn_with_state(state.clone(), org_date_layer))
        .with_state(state);
    // Salesforce serves every resource with and without a trailing slash. Paths are normalised
    // once, in front of routing, so each route is declared once.
    Router::new().fallback_service(tower_http::normalize_path::NormalizePathLayer::trim_trailing_slash().layer(routes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_labels() {
        assert_eq!(parse_version_segment("v66.0").unwrap().0, "66.0");
        assert_eq!(parse_version_segment("v31.0").unwrap().0, "31.0");
        assert_eq!(parse_version_segment("latest").unwrap().0, "66.0");
        assert_eq!(parse_version_segment("v30.0").unwrap_err().status, StatusCode::GONE);
        assert_eq!(parse_version_segment("v67.0").unwrap_err().status, StatusCode::NOT_FOUND);
        assert_eq!(parse_version_segment("66.0").unwrap_err().status, StatusCode::NOT_FOUND);
        assert_eq!(release_label(31), "Summer '14");
        assert_eq!(release_label(32), "Winter '15");
        assert_eq!(release_label(33), "Spring '15");
        assert_eq!(release_label(65), "Winter '26");
        assert_eq!(release_label(66), "Spring '26");
    }
}
