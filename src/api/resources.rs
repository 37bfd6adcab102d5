//! One-liners per resource of the contract, all through the interceptor.

use api_types::{paths, SessionsResponse};

use super::client::ApiClient;
use crate::session::ClientError;

/// `GET /api/test/all` (public).
pub async fn public_content(api: &ApiClient) -> Result<String, ClientError> {
    api.get_text(paths::TEST_ALL).await
}

/// `GET /api/test/user`.
pub async fn user_content(api: &ApiClient) -> Result<String, ClientError> {
    api.get_text(paths::TEST_USER).await
}

/// `GET /api/test/mod`.
pub async fn moderator_content(api: &ApiClient) -> Result<String, ClientError> {
    api.get_text(paths::TEST_MOD).await
}

/// `GET /api/test/admin`.
pub async fn admin_content(api: &ApiClient) -> Result<String, ClientError> {
    api.get_text(paths::TEST_ADMIN).await
}

/// `GET /api/auth/sessions`.
pub async fn list_sessions(api: &ApiClient) -> Result<SessionsResponse, ClientError> {
    api.get_json(paths::SESSIONS).await
}

/// `DELETE /api/auth/sessions/:id`.
pub async fn end_session(api: &ApiClient, id: &str) -> Result<(), ClientError> {
    api.delete(&format!("{}/{}", paths::SESSIONS, id)).await
}
