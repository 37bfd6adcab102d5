//! The HTTP side of [`crate::metrics`]: `GET /metrics` and the middleware that counts every
//! response by status and observes its latency.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::metrics::CONTENT_TYPE;
use crate::state::AppState;

/// Middleware: counts every response by status and observes its latency.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let res = next.run(req).await;
    state
        .metrics()
        .response(res.status().as_u16(), start.elapsed().as_secs_f64());
    res
}

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
