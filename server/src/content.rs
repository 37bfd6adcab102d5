//! `/api/test/*`: the tutorial's role-protected sample content.

use api_types::{messages, paths, roles};
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::auth::extract::AuthUser;
use crate::error::ApiError;
use crate::state::AppState;

fn text(s: &'static str) -> impl IntoResponse {
    ([(CONTENT_TYPE, "text/plain; charset=utf-8")], s)
}

async fn all() -> impl IntoResponse {
    text(messages::PUBLIC_CONTENT)
}

async fn user(_u: AuthUser) -> impl IntoResponse {
    text(messages::USER_CONTENT)
}

async fn moderator(u: AuthUser) -> Result<impl IntoResponse, ApiError> {
    if !u.has(roles::MODERATOR) {
        return Err(ApiError::Forbidden(messages::REQUIRE_MODERATOR.into()));
    }
    Ok(text(messages::MODERATOR_CONTENT))
}

async fn admin(u: AuthUser) -> Result<impl IntoResponse, ApiError> {
    if !u.has(roles::ADMIN) {
        return Err(ApiError::Forbidden(messages::REQUIRE_ADMIN.into()));
    }
    Ok(text(messages::ADMIN_CONTENT))
}

/// The content routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(paths::TEST_ALL, get(all))
        .route(paths::TEST_USER, get(user))
        .route(paths::TEST_MOD, get(moderator))
        .route(paths::TEST_ADMIN, get(admin))
}
