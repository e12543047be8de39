//! API errors in Salesforce's wire shapes.
//!
//! REST and Bulk 2.0 errors are a JSON array of `{message, errorCode[, fields]}`; OAuth errors
//! are `{error, error_description}`. Bulk 1.0 (XML) and SOAP have their own renderers in their
//! modules.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// A REST/Bulk 2.0 error response.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub error_code: String,
    pub message: String,
    pub fields: Vec<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, error_code: &str, message: impl Into<String>) -> ApiError {
        ApiError { status, error_code: error_code.to_owned(), message: message.into(), fields: Vec::new() }
    }

    pub fn with_fields(mut self, fields: Vec<String>) -> ApiError {
        self.fields = fields;
        self
    }

    pub fn invalid_session() -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "INVALID_SESSION_ID", "Session expired or invalid")
    }

    pub fn not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "The requested resource does not exist")
    }

    pub fn request_limit_exceeded() -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
    }

    pub fn concurrent_limit_exceeded() -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded.")
    }

    pub fn bad_request(code: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn json_parser_error(message: impl Into<String>) -> ApiError {
        ApiError::bad_request("JSON_PARSER_ERROR", message)
    }

    pub fn method_not_allowed(method: &str) -> ApiError {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            format!("HTTP Method '{method}' not allowed. Allowed are GET,HEAD"),
        )
    }

    pub fn server_error() -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UNKNOWN_EXCEPTION",
            "An unexpected error occurred. Please include this ErrorId if you contacting support: 1234567890-12345 (-1234567890)",
        )
    }

    pub fn service_unavailable() -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "SERVER_UNAVAILABLE", "Service temporarily unavailable")
    }

    pub fn body(&self) -> serde_json::Value {
        let mut e = json!({ "message": self.message, "errorCode": self.error_code });
        if !self.fields.is_empty() {
            e["fields"] = json!(self.fields);
        }
        json!([e])
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, json_body(&self.body())).into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8));
        resp
    }
}

pub const JSON_UTF8: &str = "application/json;charset=UTF-8";

/// Serialises JSON compactly, as Salesforce does.
pub fn json_body(v: &serde_json::Value) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".to_owned())
}

/// A 200 JSON response with Salesforce's content type.
pub fn json_ok(v: &serde_json::Value) -> Response {
    json_response(StatusCode::OK, v)
}

pub fn json_response(status: StatusCode, v: &serde_json::Value) -> Response {
    let mut resp = (status, json_body(v)).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8));
    resp
}

/// An OAuth token-endpoint error: `{error, error_description}`, never cached.
#[derive(Debug, Clone, PartialEq)]
pub struct OAuthError {
    pub status: StatusCode,
    pub error: String,
    pub description: String,
}

impl OAuthError {
    pub fn new(error: &str, description: impl Into<String>) -> OAuthError {
        OAuthError { status: StatusCode::BAD_REQUEST, error: error.to_owned(), description: description.into() }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.error, "error_description": self.description });
        let mut resp = (self.status, json_body(&body)).into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        resp
    }
}
