//! `/api/auth/sessions`: a user lists and ends their own sessions (refresh-token families).

use api_types::{paths, MessageResponse, SessionsResponse};
use axum::extract::{Path, State};
use axum::routing::{delete, get};
use axum::{Json, Router};

use crate::auth::extract::AuthUser;
use crate::error::ApiError;
use crate::state::AppState;

/// Message when a session was ended.
pub const SESSION_ENDED: &str = "Session ended.";
/// Message when the session is not the caller's or does not exist.
pub const SESSION_NOT_FOUND: &str = "Session not found!";

async fn list(
    State(st): State<AppState>,
    user: AuthUser,
) -> Result<Json<SessionsResponse>, ApiError> {
    let mut sessions = st
        .db()
        .list_families(user.id, st.now_ms(), st.settings().refresh_idle_ms)
        .await?;
    for s in &mut sessions {
        s.current = user.sid.as_deref() == Some(s.id.as_str());
    }
    Ok(Json(SessionsResponse { sessions }))
}

async fn end(
    State(st): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<MessageResponse>, ApiError> {
    if st.db().revoke_family(user.id, &id, st.now_ms()).await? {
        tracing::info!(user_id = user.id, family = id, "session ended by its user");
        Ok(Json(MessageResponse::new(SESSION_ENDED)))
    } else {
        Err(ApiError::NotFound(SESSION_NOT_FOUND.into()))
    }
}

/// The sessions routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(paths::SESSIONS, get(list))
        .route(&format!("{}/{{id}}", paths::SESSIONS), delete(end))
}
