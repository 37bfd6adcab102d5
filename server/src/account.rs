//! Account endpoints of a signed-in user (authenticated by the access token, like the sessions
//! list): change the password, sign out other devices or everywhere, delete the account.
//!
//! The current password is checked as sign-in checks it — argon2 on the bounded hashing pool,
//! throttled per (account, IP) / account / IP by the same counters — so a stolen access token
//! cannot be turned into guessing the password faster than sign-in allows.

use api_types::{codes, paths, ChangePasswordRequest, DeleteAccountRequest, MessageResponse};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use axum::{Json, Router};

use crate::auth::extract::{client_ip, expired_refresh_cookie, ApiJson, AuthUser};
use crate::auth::{no_store, set_cookie, validate};
use crate::db::UserRow;
use crate::error::ApiError;
use crate::metrics::SigninOutcome;
use crate::state::AppState;

/// Message of a successful password change.
pub const PASSWORD_CHANGED: &str = "Password changed. Your other sessions were signed out.";
/// Message of a wrong current password.
pub const WRONG_PASSWORD: &str = "The current password is not correct.";
/// Message when the new password is the current one.
pub const PASSWORD_UNCHANGED: &str = "The new password must differ from the current one.";
/// Message of sign-out everywhere.
pub const SIGNED_OUT_ALL: &str = "You've been signed out everywhere!";
/// Message of sign-out of the other devices.
pub const SIGNED_OUT_OTHERS: &str = "Your other sessions were signed out.";
/// Message of a deleted account.
pub const ACCOUNT_DELETED: &str = "Your account was deleted.";

/// The account routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(paths::PASSWORD, post(change_password))
        .route(paths::SIGNOUT_ALL, post(signout_all))
        .route(paths::SIGNOUT_OTHERS, post(signout_others))
        .route(paths::ACCOUNT, delete(delete_account))
}

fn message(text: &'static str) -> Response {
    let mut res = Json(MessageResponse::new(text)).into_response();
    no_store(&mut res);
    res
}

/// Checks `password` against the caller's stored hash, throttled like sign-in: a wrong one is
/// a failed sign-in for the account and the client's IP (403 `wrong_password`, not 401, which
/// clients read as "access token expired, refresh"); while throttled, 429 before any hashing.
async fn check_current_password(
    st: &AppState,
    user: &AuthUser,
    ip: &str,
    password: String,
) -> Result<UserRow, ApiError> {
    let row = st.db().user_by_id(user.id).await?.ok_or_else(|| {
        ApiError::Refused(
            StatusCode::UNAUTHORIZED,
            api_types::messages::UNAUTHORIZED,
            codes::SESSION_ENDED,
        )
    })?;
    if let Some(wait) = st
        .throttle()
        .retry_after(&row.username, ip, st.now_ms())
        .await?
    {
        st.metrics().signin(SigninOutcome::Throttled);
        tracing::warn!(ip, user_id = row.id, "current-password check throttled");
        return Err(ApiError::TooManyRequests(wait));
    }
    let length_ok = password.chars().count() <= validate::MAX_PASSWORD;
    let ok = length_ok
        && st
            .passwords()
            .verify(password, Some(row.password_hash.clone()))
            .await?;
    if !ok {
        st.throttle()
            .record_failure(&row.username, ip, st.now_ms())
            .await?;
        st.metrics().signin(SigninOutcome::Invalid);
        return Err(ApiError::Refused(
            StatusCode::FORBIDDEN,
            WRONG_PASSWORD,
            codes::WRONG_PASSWORD,
        ));
    }
    st.throttle().record_success(&row.username, ip).await?;
    Ok(row)
}

/// The authenticated caller, the client's IP and the JSON body.
async fn caller_and_body<T: serde::de::DeserializeOwned>(
    st: &AppState,
    req: Request,
) -> Result<(AuthUser, String, T), ApiError> {
    use axum::extract::{FromRequest, FromRequestParts};
    let (mut parts, body) = req.into_parts();
    let user = AuthUser::from_request_parts(&mut parts, st).await?;
    let ip = client_ip(&parts.extensions, &parts.headers, st.settings());
    let ApiJson(v) = ApiJson::<T>::from_request(Request::from_parts(parts, body), st).await?;
    Ok((user, ip, v))
}

async fn change_password(State(st): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let (user, ip, req) = caller_and_body::<ChangePasswordRequest>(&st, req).await?;
    // The new password's rules first: nothing hashed, nothing counted, nothing changed.
    validate::password(&req.new_password)
        .map_err(|m| ApiError::RefusedWith(StatusCode::BAD_REQUEST, m, codes::INVALID_PASSWORD))?;
    let same = req.new_password == req.current_password;
    check_current_password(&st, &user, &ip, req.current_password).await?;
    if same {
        return Err(ApiError::Refused(
            StatusCode::BAD_REQUEST,
            PASSWORD_UNCHANGED,
            codes::PASSWORD_UNCHANGED,
        ));
    }
    // Every accepted access token names a live family (the extractor refuses one without).
    let keep = user
        .sid
        .as_deref()
        .ok_or_else(|| ApiError::Internal("access token without a session".into()))?;
    let hash = st.passwords().hash(req.new_password).await?;
    st.db()
        .change_password_keeping(user.id, &hash, keep, st.now_ms())
        .await?;
    tracing::info!(user_id = user.id, "password changed, other sessions ended");
    Ok(message(PASSWORD_CHANGED))
}

async fn signout_all(State(st): State<AppState>, user: AuthUser) -> Result<Response, ApiError> {
    let n = st
        .db()
        .revoke_user_families(user.id, None, st.now_ms())
        .await?;
    tracing::info!(user_id = user.id, sessions = n, "signed out everywhere");
    let mut res = message(SIGNED_OUT_ALL);
    // This browser's session ended too: its refresh cookie goes, as on sign-out.
    set_cookie(&mut res, &expired_refresh_cookie())?;
    Ok(res)
}

async fn signout_others(State(st): State<AppState>, user: AuthUser) -> Result<Response, ApiError> {
    let keep = user
        .sid
        .as_deref()
        .ok_or_else(|| ApiError::Internal("access token without a session".into()))?;
    let n = st
        .db()
        .revoke_user_families(user.id, Some(keep), st.now_ms())
        .await?;
    tracing::info!(user_id = user.id, sessions = n, "other sessions signed out");
    Ok(message(SIGNED_OUT_OTHERS))
}

async fn delete_account(State(st): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let (user, ip, req) = caller_and_body::<DeleteAccountRequest>(&st, req).await?;
    check_current_password(&st, &user, &ip, req.current_password).await?;
    st.db().delete_user(user.id).await?;
    tracing::info!(user_id = user.id, "account deleted");
    let mut res = message(ACCOUNT_DELETED);
    set_cookie(&mut res, &expired_refresh_cookie())?;
    Ok(res)
}
