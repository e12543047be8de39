//! (to be written)

use axum::Router;

use super::AppState;

#[derive(Debug, Default)]
pub struct OAuthStore {}

pub fn routes() -> Router<AppState> {
    Router::new()
}
