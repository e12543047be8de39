//! The identity URL (`GET /id/<orgId>/<userId>`) and OpenID Connect userinfo
//! (`GET /services/oauth2/userinfo`), with the keys of Salesforce's identity service.
//!
//! Errors are Salesforce's identity-service codes as plain text: 403 `Bad_OAuth_Token` (missing,
//! invalid or expired token), 403 `Wrong_Org`, 404 `Bad_Id`.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value as J, json};
use tidemark_core::SfId;

use crate::api::error::json_response;
use crate::api::{AppState, MAX_VERSION, bearer_token};
use crate::auth::Session;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/id/{org_id}/{user_id}", get(identity).post(identity))
        .route("/services/oauth2/userinfo", get(userinfo).post(userinfo))
}

/// The profile of the simulated API user, shared by identity, userinfo and SOAP `userInfo`.
#[derive(Debug, Clone)]
pub(crate) struct UserProfile {
    pub user_id: SfId,
    pub org_id: SfId,
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub time_zone: &'static str,
    /// Standard (not daylight) offset of `time_zone`, as Salesforce reports it.
    pub utc_offset_millis: i64,
    pub locale: &'static str,
    pub last_modified: String,
}

impl UserProfile {
    pub fn of(state: &AppState) -> UserProfile {
        let (user_id, org_id) = {
            let org = state.org.read();
            (org.integration_user, org.org_id)
        };
        let username = state.config.username.clone();
        UserProfile {
            user_id,
            org_id,
            first_name: "Integration".to_owned(),
            last_name: "User".to_owned(),
            email: username.clone(),
            username,
            time_zone: "America/Los_Angeles",
            utc_offset_millis: -8 * 3600 * 1000,
            locale: "en_US",
            last_modified: tidemark_core::ManualClock::default_start().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        }
    }

    pub fn display_name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name)
    }

    pub fn nick_name(&self) -> String {
        self.username.split('@').next().unwrap_or(&self.username).to_owned()
    }
}

fn identity_error(status: StatusCode, code: &'static str) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain;charset=UTF-8")], code).into_response()
}

/// The session of a bearer token, or of the `oauth_token` parameter the identity service accepts.
fn session(state: &AppState, headers: &HeaderMap, query: &std::collections::HashMap<String, String>) -> Option<Session> {
    let token = bearer_token(headers).or_else(|| query.get("oauth_token").map(String::as_str))?;
    state.auth.validate(token, state.now_millis())
}

/// `{version}` in identity URLs is left as a template unless the caller asks for a version.
fn version_param(query: &std::collections::HashMap<String, String>) -> Option<String> {
    match query.get("version").map(String::as_str) {
        Some("latest") => Some(format!("{MAX_VERSION}.0")),
        Some(v) if v.split('.').all(|p| p.parse::<u32>().is_ok()) => Some(v.to_owned()),
        _ => None,
    }
}

fn urls(state: &AppState, p: &UserProfile, version: Option<&str>) -> J {
    let base = state.base_url();
    let v = version.unwrap_or("{version}");
    let org15 = p.org_id.short();
    json!({
        "enterprise": format!("{base}/services/Soap/c/{v}/{org15}"),
        "metadata": format!("{base}/services/Soap/m/{v}/{org15}"),
        "partner": format!("{base}/services/Soap/u/{v}/{org15}"),
        "rest": format!("{base}/services/data/v{v}/"),
        "sobjects": format!("{base}/services/data/v{v}/sobjects/"),
        "search": format!("{base}/services/data/v{v}/search/"),
        "query": format!("{base}/services/data/v{v}/query/"),
        "recent": format!("{base}/services/data/v{v}/recent/"),
        "tooling_soap": format!("{base}/services/Soap/T/{v}/{org15}"),
        "tooling_rest": format!("{base}/services/data/v{v}/tooling/"),
        "profile": format!("{base}/{}", p.user_id.as_str()),
        "feeds": format!("{base}/services/data/v{v}/chatter/feeds"),
        "groups": format!("{base}/services/data/v{v}/chatter/groups"),
        "users": format!("{base}/services/data/v{v}/chatter/users"),
        "feed_items": format!("{base}/services/data/v{v}/chatter/feed-items"),
        "feed_elements": format!("{base}/services/data/v{v}/chatter/feed-elements"),
        "custom_domain": base,
    })
}

fn photos(state: &AppState) -> J {
    let base = state.base_url();
    json!({ "picture": format!("{base}/profilephoto/005/F"), "thumbnail": format!("{base}/profilephoto/005/T") })
}

async fn identity(
    State(state): State<AppState>,
    Path((org_id, user_id)): Path<(String, String)>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let Some(session) = session(&state, &headers, &query) else {
        return identity_error(StatusCode::FORBIDDEN, "Bad_OAuth_Token");
    };
    let p = UserProfile::of(&state);
    match SfId::parse(&org_id) {
        Ok(o) if o == p.org_id => {}
        _ => return identity_error(StatusCode::FORBIDDEN, "Wrong_Org"),
    }
    // The org has one user; any other id is not a user of this org.
    match SfId::parse(&user_id) {
        Ok(u) if u == p.user_id && u == session.user_id => {}
        _ => return identity_error(StatusCode::NOT_FOUND, "Bad_Id"),
    }
    let version = version_param(&query);
    let body = json!({
        "id": super::identity_url(&state, &p.user_id),
        "asserted_user": true,
        "user_id": p.user_id.as_str(),
        "organization_id": p.org_id.as_str(),
        "username": p.username,
        "nick_name": p.nick_name(),
        "display_name": p.display_name(),
        "email": p.email,
        "email_verified": true,
        "first_name": p.first_name,
        "last_name": p.last_name,
        "timezone": p.time_zone,
        "photos": photos(&state),
        "addr_street": null,
        "addr_city": null,
        "addr_state": null,
        "addr_country": null,
        "addr_zip": null,
        "mobile_phone": null,
        "mobile_phone_verified": false,
        "is_lightning_login_user": false,
        "status": { "created_date": null, "body": null },
        "urls": urls(&state, &p, version.as_deref()),
        "active": true,
        "user_type": "STANDARD",
        "language": p.locale,
        "locale": p.locale,
        "utcOffset": p.utc_offset_millis,
        "last_modified_date": p.last_modified,
        "is_app_installed": true,
    });
    json_response(StatusCode::OK, &body)
}

async fn userinfo(
    State(state): State<AppState>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let Some(session) = session(&state, &headers, &query) else {
        return identity_error(StatusCode::FORBIDDEN, "Bad_OAuth_Token");
    };
    let p = UserProfile::of(&state);
    if session.user_id != p.user_id {
        return identity_error(StatusCode::NOT_FOUND, "Bad_Id");
    }
    let photos = photos(&state);
    let body = json!({
        "sub": super::identity_url(&state, &p.user_id),
        "user_id": p.user_id.as_str(),
        "organization_id": p.org_id.as_str(),
        "preferred_username": p.username,
        "nickname": p.nick_name(),
        "name": p.display_name(),
        "email": p.email,
        "email_verified": true,
        "given_name": p.first_name,
        "family_name": p.last_name,
        "zoneinfo": p.time_zone,
        "photos": photos,
        "profile": format!("{}/{}", state.base_url(), p.user_id.as_str()),
        "picture": photos["picture"],
        "address": {},
        "is_salesforce_integration_user": false,
        "urls": urls(&state, &p, version_param(&query).as_deref()),
        "active": true,
        "user_type": "STANDARD",
        "language": p.locale,
        "locale": p.locale,
        "utcOffset": p.utc_offset_millis,
        "updated_at": p.last_modified,
        "is_app_installed": true,
    });
    json_response(StatusCode::OK, &body)
}
