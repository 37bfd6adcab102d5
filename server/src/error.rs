//! The API's error type: every failure becomes a JSON `{"message": ...}` with the right status.
//! Internal details (database errors, bugs) are logged with tracing and never echoed.

use api_types::MessageResponse;
use axum::extract::rejection::JsonRejection;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// Message sent with 503 when the database cannot be reached.
pub const UNAVAILABLE: &str = "Service temporarily unavailable, please retry.";
/// Message sent with 429.
pub const TOO_MANY_ATTEMPTS: &str = "Too many failed sign-in attempts, please retry later.";
/// Message sent with a cross-site (CSRF) rejection.
pub const CROSS_SITE: &str = "Forbidden: cross-site request rejected!";
/// Message sent with a generic 500.
pub const INTERNAL: &str = "Internal server error.";

/// An error answered to the client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 with a message safe to show.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 401 with one of the contract's messages.
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    /// 403 with a message safe to show.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// A refusal with the contract's message and a machine-readable `code` (`api_types::codes`).
    #[error("refused ({0}): {1} [{2}]")]
    Refused(StatusCode, &'static str, &'static str),
    /// Like `Refused`, with a message made for this request (a field rule's wording).
    #[error("refused ({0}): {1} [{2}]")]
    RefusedWith(StatusCode, String, &'static str),
    /// 404.
    #[error("not found: {0}")]
    NotFound(String),
    /// Other 4xx from a rejected request (wrong content type, body too large...).
    #[error("rejected ({0}): {1}")]
    Rejected(StatusCode, String),
    /// 429 with Retry-After in seconds.
    #[error("too many requests, retry after {0}s")]
    TooManyRequests(u64),
    /// A transient conflict the client should retry: 503 with `Retry-After: 1`.
    #[error("busy, retry")]
    Busy,
    /// The database failed or is unreachable: 503.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A bug or an unexpected failure: 500, logged.
    #[error("internal: {0}")]
    Internal(String),
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        // serde's messages name the field and the problem, which is what a client needs; they
        // never contain server internals. axum answers 422 for well-formed JSON of the wrong
        // shape: the contract wants 400 for missing/invalid fields.
        let status = match r.status() {
            StatusCode::UNPROCESSABLE_ENTITY => StatusCode::BAD_REQUEST,
            s => s,
        };
        ApiError::Rejected(status, r.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match &self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m.clone()),
            ApiError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, (*m).to_owned()),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, m.clone()),
            ApiError::Refused(status, m, code) => {
                return (*status, Json(MessageResponse::with_code(*m, code))).into_response();
            }
            ApiError::RefusedWith(status, m, code) => {
                return (*status, Json(MessageResponse::with_code(m.clone(), code)))
                    .into_response();
            }
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, m.clone()),
            ApiError::Rejected(s, m) => (*s, m.clone()),
            ApiError::TooManyRequests(_) => {
                (StatusCode::TOO_MANY_REQUESTS, TOO_MANY_ATTEMPTS.to_owned())
            }
            ApiError::Busy => (StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE.to_owned()),
            ApiError::Database(e) => {
                tracing::error!(error = %e, "database error");
                (StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE.to_owned())
            }
            ApiError::Internal(e) => {
                tracing::error!(error = %e, "internal error");
                (StatusCode::INTERNAL_SERVER_ERROR, INTERNAL.to_owned())
            }
        };
        let mut res = (status, Json(MessageResponse::new(message))).into_response();
        match self {
            ApiError::TooManyRequests(s) => {
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(s.max(1)));
            }
            ApiError::Database(_) | ApiError::Busy => {
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        res
    }
}
