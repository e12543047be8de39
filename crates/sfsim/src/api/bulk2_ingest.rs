//! (to be written)

use axum::Router;

use super::AppState;

#[derive(Debug, Default)]
pub struct IngestJobStore {}

pub fn routes() -> Router<AppState> {
    Router::new()
}
