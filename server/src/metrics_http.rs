//! The HTTP side of [`crate::metrics`]: `GET /metrics` (every response is counted by status
//! with its latency in `web::Exchange`).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::metrics::CONTENT_TYPE;
use crate::state::AppState;

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        state.metrics().encode(),
    )
}

/// `GET /metrics`.
pub fn router() -> Router<AppState> {
    Router::new().route(api_types::paths::METRICS, get(metrics))
}
